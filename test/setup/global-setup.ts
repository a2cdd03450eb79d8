/**
 * Jest global setup: make sure the real servers the tests need are up (a running one is reused), and hand
 * their addresses to the test workers through the environment. Set REMEMR1_SKIP_STACK=1 to run only
 * suites that need no server.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../temporal.config';
import { ensureNamespace, stackPaths, startTemporal } from '../../infra/local-stack';
import { localS3Environment, startLocalS3 } from '../../infra/stack';
import { TEST_MODEL_FOLDER, TEST_TMPDIR_VARIABLE, testNamespace, testStackStateFile } from './stack-state';

export default async function globalSetup(): Promise<void> {
  // Quiet test output: warnings and errors only from workers; no AWS SDK notice about future Node versions.
  process.env.REMEMR1_LOG_LEVEL ??= 'WARN';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // The tests' model is the random, fast `rememr1-tiny` whatever the embedded default or the user's REMEMR1_MODEL:
  // tests pin its outputs and its generation config. A test of the default model clears this for its child.
  process.env.REMEMR1_MODEL = TEST_MODEL_FOLDER;
  // Every temporary folder of the run (the tests', and those of the processes they start) lives under one folder
  // that the teardown removes, so repeated runs do not fill the disk. Servers started below keep the outer one.
  const outerTmp = os.tmpdir();
  const runTmp = fs.mkdtempSync(path.join(outerTmp, 'rememr1-tests-'));
  const useRunTmp = (): void => {
    process.env[TEST_TMPDIR_VARIABLE] = runTmp;
    process.env.TMPDIR = runTmp;
  };
  if (process.env.REMEMR1_SKIP_STACK === '1') {
    useRunTmp();
    return;
  }
  const config = loadConfig();
  const paths = stackPaths(config.localDir);
  const log = (message: string): void => console.log(`\n[test stack] ${message}`);
  const temporal = await startTemporal({
    paths,
    address: config.temporal.address,
    namespace: config.temporal.namespace,
    ui: false,
    log,
  });
  // The tests' workflows live in a namespace of their own, never in the user's (created if missing).
  const namespace = testNamespace();
  await ensureNamespace({ paths, address: config.temporal.address, namespace, log });
  const s3 = await startLocalS3(paths, log);
  Object.assign(process.env, localS3Environment(), {
    REMEMR1_TEMPORAL_ADDRESS: config.temporal.address,
    REMEMR1_TEMPORAL_NAMESPACE: namespace,
  });
  useRunTmp();
  fs.mkdirSync(path.dirname(testStackStateFile(paths)), { recursive: true });
  fs.writeFileSync(testStackStateFile(paths), JSON.stringify({ temporalStarted: temporal.started, s3Started: s3.started }));
}
