/**
 * Fault (b): restart the Temporal dev server in the middle of a batch. The batch finishes and every result row
 * exists exactly once. Uses a dedicated dev server (its own port and SQLite file) so other suites are undisturbed.
 */
import { generateSyntheticRows, toJsonLines } from '../../lib/data/synthetic';
import type { EpisodeResult } from '../../lib/episode/types';
import { loadPolicy, type Policy } from '../../lib/model';
import { createBlobStore, runResultsPrefix, type BlobStore } from '../../lib/storage';
import { stackPaths, startTemporal, stopTemporal, type StackPaths } from '../../infra/local-stack';
import { batchQAWorkflow } from '../../workflows/batch';
import { startWorkers, type RunningWorkers } from '../../workers/worker';
import { connectTestClient, eventually, freePortPair, requireStackEnvironment, tempDir, testConfig, testSettings } from '../support/stack';

describe('a Temporal server restart during a batch', () => {
  requireStackEnvironment();
  let paths: StackPaths;
  let address: string;
  let policy: Policy;
  let store: BlobStore;
  let workers: RunningWorkers | undefined;

  beforeAll(async () => {
    paths = stackPaths(tempDir('restart-stack'));
    address = `127.0.0.1:${await freePortPair()}`;
    await startTemporal({ paths, address, namespace: 'default', ui: false });
    policy = await loadPolicy(testConfig('restart').model.path, { maxBatchSize: 4 });
  });

  afterAll(async () => {
    await workers?.shutdown().catch(() => undefined);
    await policy?.dispose();
    await store?.close();
    await stopTemporal(paths);
  });

  it('finishes the batch with every result row exactly once', async () => {
    const config = testConfig('restart', { address });
    store = createBlobStore(config.storage);
    const rows = generateSyntheticRows({ seed: 21, questions: 6, documentsPerQuestion: 6, wordsPerDocument: 30 });
    await store.put('datasets/restart/rows.jsonl', toJsonLines(rows));
    workers = await startWorkers({ role: 'all', config, policy, store });
    const client = await connectTestClient(config);
    const runId = 'restart-run';
    try {
      await client.workflow.start(batchQAWorkflow, {
        workflowId: `batch.${runId}`,
        taskQueue: config.taskQueues.orchestration,
        args: [{ runId, datasetKey: 'datasets/restart/rows.jsonl', dataset: 'rows.jsonl', settings: testSettings, runtime: { taskQueues: config.taskQueues, activities: config.activities }, width: 2, pageSize: 3, stopOnBadRow: false }],
      });
      await eventually('a first result row', async () => {
        for await (const _key of store.list(runResultsPrefix(runId))) return true;
        return false;
      }, 120_000);

      await stopTemporal(paths);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      await startTemporal({ paths, address, namespace: 'default', ui: false });

      // The client reconnects on its own; poll until the batch is closed, then read its result.
      const handle = client.workflow.getHandle(`batch.${runId}`);
      await eventually('the batch to complete', async () => (await handle.describe()).status.name === 'COMPLETED', 180_000);
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
