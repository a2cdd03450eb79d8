/** Stops the servers that the global setup started (never ones it found already running) and removes the run's temporary folder. */
import * as fs from 'node:fs';
import { loadConfig } from '../../temporal.config';
import { stackPaths, stopS3, stopTemporal } from '../../infra/local-stack';
import { TEST_TMPDIR_VARIABLE, testStackStateFile, type TestStackState } from './stack-state';

export default async function globalTeardown(): Promise<void> {
  await stopStartedServers();
  // The run's temporary folders (set up by the global setup); kept when asked, to look into a failure.
  const runTmp = process.env[TEST_TMPDIR_VARIABLE];
  if (runTmp !== undefined && process.env.REMEMR1_KEEP_TEST_TMP !== '1') fs.rmSync(runTmp, { recursive: true, force: true });
}

async function stopStartedServers(): Promise<void> {
  if (process.env.REMEMR1_SKIP_STACK === '1') return;
  const paths = stackPaths(loadConfig().localDir);
  const file = testStackStateFile(paths);
  if (!fs.existsSync(file)) return;
  const state = JSON.parse(fs.readFileSync(file, 'utf8')) as TestStackState;
  fs.rmSync(file, { force: true });
  if (state.temporalStarted) await stopTemporal(paths);
  if (state.s3Started) await stopS3(paths);
}
