/** Stops the servers that the global setup started (never ones it found already running). */
import * as fs from 'node:fs';
import { loadConfig } from '../../temporal.config';
import { stackPaths, stopS3, stopTemporal } from '../../infra/local-stack';
import { testStackStateFile, type TestStackState } from './stack-state';

export default async function globalTeardown(): Promise<void> {
  if (process.env.REMEMR1_SKIP_STACK === '1') return;
  const paths = stackPaths(loadConfig().localDir);
  const file = testStackStateFile(paths);
  if (!fs.existsSync(file)) return;
  const state = JSON.parse(fs.readFileSync(file, 'utf8')) as TestStackState;
  fs.rmSync(file, { force: true });
  if (state.temporalStarted) await stopTemporal(paths);
  if (state.s3Started) await stopS3(paths);
}
