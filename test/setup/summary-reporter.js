/**
 * Prints one line per test file with its counts, then the plain closing line
 * "Tests: N passed, N failed, N skipped" that CI reads.
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const lines = [];
    for (const file of results.testResults) {
      const relative = file.testFilePath.slice(process.cwd().length + 1);
      const failed = file.numFailingTests + (file.testExecError ? 1 : 0);
      lines.push(`  ${relative}: ${file.numPassingTests} passed, ${failed} failed, ${file.numPendingTests + file.numTodoTests} skipped`);
    }
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    process.stdout.write(`\nPer file:\n${lines.sort().join('\n')}\n`);
    process.stdout.write(`Tests: ${results.numPassedTests} passed, ${failed} failed, ${results.numPendingTests + results.numTodoTests} skipped\n`);
  }
}
module.exports = SummaryReporter;
