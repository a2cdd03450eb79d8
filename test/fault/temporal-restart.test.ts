/**
 * Fault (b): restart the Temporal dev server in the middle of a batch. The batch finishes and every result row
 * exists exactly once. Uses a dedicated dev server (its own port and SQLite file) so other suites are undisturbed.
 */
import { loadPolicy, type Policy } from '../../lib/model';
import { createBlobStore, type BlobStore } from '../../lib/storage';
import { stackPaths, startTemporal, stopTemporal, type StackPaths } from '../../infra/local-stack';
import { startWorkers, type RunningWorkers } from '../../workers/worker';
import { expectEveryRowOnce, startSyntheticBatch, waitForFirstResult } from '../support/batch';
import { connectTestClient, eventually, freePortPair, requireStackEnvironment, tempDir, testConfig } from '../support/stack';

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
    workers = await startWorkers({ role: 'all', config, policy, store });
    const client = await connectTestClient(config);
    const runId = 'restart-run';
    try {
      await startSyntheticBatch(client, config, store, runId, { seed: 21, questions: 6 });
      await waitForFirstResult(store, runId);

      await stopTemporal(paths);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      await startTemporal({ paths, address, namespace: 'default', ui: false });

      // The client reconnects on its own; poll until the batch is closed, then read its result.
      const handle = client.workflow.getHandle(`batch.${runId}`);
      await eventually('the batch to complete', async () => (await handle.describe()).status.name === 'COMPLETED', 180_000);
      const summary = await handle.result();
      expect(summary.overall.episodes).toBe(6);
      expect(summary.failedEpisodes).toBe(0);

      await expectEveryRowOnce(store, runId, 6);
    } finally {
      await client.connection.close();
    }
  });
});
