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
