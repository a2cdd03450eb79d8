/**
 * Fault (c): stop the S3 server for 20 s during a batch that keeps everything in S3. Activities fail with
 * retryable errors while it is down; the batch finishes once it is back. A dedicated MinIO (own port and data
 * folder) keeps other suites undisturbed.
 */
import { loadPolicy, type Policy } from '../../lib/model';
import { createBlobStore, type BlobStore } from '../../lib/storage';
import { LOCAL_S3_DEFAULTS, stackPaths, startS3, stopS3, type StackPaths } from '../../infra/local-stack';
import { startWorkers, type RunningWorkers } from '../../workers/worker';
import { expectEveryRowOnce, startSyntheticBatch, waitForFirstResult } from '../support/batch';
import { connectTestClient, freePortPair, requireStackEnvironment, tempDir, testConfig } from '../support/stack';

const OUTAGE_MS = 20_000;

describe('an S3 outage during a batch', () => {
  requireStackEnvironment();
  let paths: StackPaths;
  let address: string;
  let policy: Policy;
  let store: BlobStore;
  let workers: RunningWorkers | undefined;
  const credentials = { accessKeyId: LOCAL_S3_DEFAULTS.accessKeyId, secretAccessKey: LOCAL_S3_DEFAULTS.secretAccessKey };

  const startServer = (): ReturnType<typeof startS3> => startS3({ paths, address, bucket: 'outage', ...credentials });

  beforeAll(async () => {
    paths = stackPaths(tempDir('outage-stack'));
    address = `127.0.0.1:${await freePortPair()}`;
    await startServer();
    policy = await loadPolicy(testConfig('outage').model.path, { maxBatchSize: 4 });
  });

  afterAll(async () => {
    await workers?.shutdown().catch(() => undefined);
    await policy?.dispose();
    await store?.close();
    await stopS3(paths);
  });

  it('finishes once the server is back, with every result row exactly once', async () => {
    const config = testConfig('outage', {
      storage: { kind: 's3', endpoint: `http://${address}`, region: LOCAL_S3_DEFAULTS.region, bucket: 'outage', prefix: 'test', forcePathStyle: true },
    });
    // Credentials come from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), as in production.
    store = createBlobStore(config.storage);
    workers = await startWorkers({ role: 'all', config, policy, store });
    const client = await connectTestClient(config);
    const runId = 'outage-run';
    try {
      const handle = await startSyntheticBatch(client, config, store, runId, { seed: 31, questions: 6 });
      await waitForFirstResult(store, runId);

      await stopS3(paths);
      const outageEnded = Date.now() + OUTAGE_MS;
      const during = await handle.describe();
      expect(during.status.name).toBe('RUNNING');
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, outageEnded - Date.now())));
      await startServer();

      const summary = await handle.result();
      expect(summary.overall.episodes).toBe(6);
      expect(summary.failedEpisodes).toBe(0);
      await expectEveryRowOnce(store, runId, 6);
    } finally {
      await client.connection.close();
    }
  });
});
