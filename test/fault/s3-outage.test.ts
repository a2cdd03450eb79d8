/**
 * Fault (c): stop the S3 server for 20 s during a batch that keeps everything in S3. Activities fail with
 * retryable errors while it is down; the batch finishes once it is back. A dedicated MinIO (own port and data
 * folder) keeps other suites undisturbed.
 */
import { LOCAL_S3_DEFAULTS, startS3, stopS3, type StackPaths } from '../../infra/local-stack';
import { expectEveryRowOnce, startSyntheticBatch, waitForFirstResult } from '../support/batch';
import { WorkerRig, privateServerSlot } from '../support/rig';
import { requireStackEnvironment, testConfig } from '../support/stack';

const OUTAGE_MS = 20_000;

describe('an S3 outage during a batch', () => {
  requireStackEnvironment();
  let paths: StackPaths;
  let address: string;
  let rig: WorkerRig | undefined;

  const startServer = (): ReturnType<typeof startS3> =>
    startS3({ paths, address, bucket: 'outage', accessKeyId: LOCAL_S3_DEFAULTS.accessKeyId, secretAccessKey: LOCAL_S3_DEFAULTS.secretAccessKey });

  beforeAll(async () => {
    ({ paths, address } = await privateServerSlot('outage'));
    await startServer();
  });

  afterAll(async () => {
    await rig?.close();
    await stopS3(paths);
  });

  it('finishes once the server is back, with every result row exactly once', async () => {
    // Credentials come from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), as in production.
    rig = await WorkerRig.start(
      testConfig('outage', {
        storage: { kind: 's3', endpoint: `http://${address}`, region: LOCAL_S3_DEFAULTS.region, bucket: 'outage', prefix: 'test', forcePathStyle: true },
      }),
    );
    const { client, config, store } = rig;
    const runId = 'outage-run';
    const handle = await startSyntheticBatch(client, config, store, runId, { seed: 31, questions: 6 });
    await waitForFirstResult(store, runId);

    await stopS3(paths);
    const outageEnds = Date.now() + OUTAGE_MS;
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, outageEnds - Date.now())));
    await startServer();

    const summary = await handle.result();
    expect(summary.overall.episodes).toBe(6);
    expect(summary.failedEpisodes).toBe(0);
    await expectEveryRowOnce(store, runId, 6);
  });
});
