/**
 * Fault (c): stop the S3 server for 20 s during a batch that keeps everything in S3. Activities fail with
 * retryable errors while it is down; the batch finishes once it is back. A dedicated MinIO (own port and data
 * folder) keeps other suites undisturbed.
 */
import { generateSyntheticRows, toJsonLines } from '../../lib/data/synthetic';
import type { EpisodeResult } from '../../lib/episode/types';
import { loadPolicy, type Policy } from '../../lib/model';
import { createBlobStore, runResultsPrefix, type BlobStore } from '../../lib/storage';
import { LOCAL_S3_DEFAULTS, stackPaths, startS3, stopS3, type StackPaths } from '../../infra/local-stack';
import { batchQAWorkflow } from '../../workflows/batch';
import { startWorkers, type RunningWorkers } from '../../workers/worker';
import { connectTestClient, eventually, freePortPair, requireStackEnvironment, tempDir, testConfig, testSettings } from '../support/stack';

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
    const rows = generateSyntheticRows({ seed: 31, questions: 6, documentsPerQuestion: 6, wordsPerDocument: 30 });
    await store.put('datasets/outage/rows.jsonl', toJsonLines(rows));
    workers = await startWorkers({ role: 'all', config, policy, store });
    const client = await connectTestClient(config);
    const runId = 'outage-run';
    try {
      const handle = await client.workflow.start(batchQAWorkflow, {
        workflowId: `batch.${runId}`,
        taskQueue: config.taskQueues.orchestration,
        args: [{ runId, datasetKey: 'datasets/outage/rows.jsonl', dataset: 'rows.jsonl', settings: testSettings, runtime: { taskQueues: config.taskQueues, activities: config.activities }, width: 2, pageSize: 3, stopOnBadRow: false }],
      });
      await eventually('a first result row', async () => {
        for await (const _key of store.list(runResultsPrefix(runId))) return true;
        return false;
      }, 120_000);

      await stopS3(paths);
      const outageEnded = Date.now() + OUTAGE_MS;
      const during = await handle.describe();
      expect(during.status.name).toBe('RUNNING');
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, outageEnded - Date.now())));
      await startServer();

      const summary = await handle.result();
      expect(summary.overall.episodes).toBe(6);
      expect(summary.failedEpisodes).toBe(0);
      const keys: string[] = [];
      for await (const key of store.list(runResultsPrefix(runId))) keys.push(key);
      expect(keys).toHaveLength(6);
      const rowsSeen = await Promise.all(keys.map(async (key) => (await store.getJson<EpisodeResult>(key)).rowIndex));
      expect(rowsSeen.sort()).toEqual([0, 1, 2, 3, 4, 5]);
    } finally {
      await client.connection.close();
    }
  });
});
