/**
 * Fault (b): restart the Temporal dev server in the middle of a batch. The batch finishes and every result row
 * exists exactly once. Uses a dedicated dev server (its own port and SQLite file) so other suites are undisturbed.
 */
import { startTemporal, stopTemporal, type StackPaths } from '../../infra/local-stack';
import { expectEveryRowOnce, resultKeys, startSyntheticBatch, waitForFirstResult } from '../support/batch';
import { WorkerRig, privateServerSlot } from '../support/rig';
import { eventually, requireStackEnvironment, testConfig, testNamespace } from '../support/stack';

describe('a Temporal server restart during a batch', () => {
  requireStackEnvironment();
  let paths: StackPaths;
  let address: string;
  let rig: WorkerRig | undefined;

  beforeAll(async () => {
    ({ paths, address } = await privateServerSlot('restart'));
    await startTemporal({ paths, address, namespace: testNamespace(), ui: false });
  });

  afterAll(async () => {
    await rig?.close();
    await stopTemporal(paths);
  });

  it('finishes the batch with every result row exactly once', async () => {
    rig = await WorkerRig.start(testConfig('restart', { address }));
    const { client, config, store } = rig;
    const runId = 'restart-run';
    const started = await startSyntheticBatch(client, config, store, runId, { seed: 21, questions: 6 });
    await waitForFirstResult(store, runId);

    // The server goes down in the middle of the batch: still running, with rows left to answer.
    expect((await started.describe()).status.name).toBe('RUNNING');
    const doneAtStop = (await resultKeys(store, runId)).length;
    expect(doneAtStop).toBeLessThan(6);
    await stopTemporal(paths);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await startTemporal({ paths, address, namespace: testNamespace(), ui: false });

    // The client reconnects on its own; poll until the batch is closed, then read its result.
    const handle = client.workflow.getHandle(`batch.${runId}`);
    await eventually('the batch to complete', async () => (await handle.describe()).status.name === 'COMPLETED', 180_000);
    const summary = await handle.result();
    expect(summary.overall.episodes).toBe(6);
    expect(summary.failedEpisodes).toBe(0);
    await expectEveryRowOnce(store, runId, 6);
  });
});
