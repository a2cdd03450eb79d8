import * as path from 'node:path';
import type { StackPaths } from '../../infra/local-stack';

/** Which servers the test run started itself (and so must stop). */
export interface TestStackState {
  temporalStarted: boolean;
  s3Started: boolean;
}

export function testStackStateFile(paths: StackPaths): string {
  return path.join(paths.run, 'jest-stack.json');
}

/** The namespace the tests' workflows run in: never the user's own (REMEMR1_TEST_NAMESPACE overrides it). */
export function testNamespace(): string {
  return process.env.REMEMR1_TEST_NAMESPACE ?? 'rememr1-test';
}

/** The model every test runs with (random weights, small and fast); the embedded default may be another. */
export const TEST_MODEL_FOLDER = path.join(__dirname, '..', '..', 'models', 'rememr1-tiny');

/** Names the test run's temporary folder (every TMPDIR of the run is under it; the global teardown removes it). */
export const TEST_TMPDIR_VARIABLE = 'REMEMR1_TEST_TMPDIR';
