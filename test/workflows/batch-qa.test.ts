/**
 * Batch QA end to end on the real dev server: an all-in-one worker in this process, the bundled model, the
 * filesystem blob store. Checks result rows, memory records, paging with continue-as-new, malformed rows,
 * visibility, a rerun that recomputes nothing, and that Temporal and the in-process loop give the same records.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { BatchSummary } from '../../lib/episode/summary';
import { generateSyntheticRows, toJsonLines } from '../../lib/data/synthetic';
import { EpisodeSteps } from '../../lib/episode/steps';
import type { EpisodeInputRecord, EpisodeResult, MemoryStepRecord } from '../../lib/episode/types';
import {
  episodeInputKey,
  episodeMemoryPrefix,
  runResultsPrefix,
  batchRowErrorsKey,
  type BlobStore,
} from '../../lib/storage';
import {
  batchProgressQuery,
  batchQAWorkflow,
  type BatchProgress,
  type BatchQAInput,
} from '../../workflows/batch';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../../workers/worker';
import { WorkerRig } from '../support/rig';
import { eventually, requireStackEnvironment, testConfig, testSettings } from '../support/stack';

async function keysUnder(store: BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of store.list(prefix)) keys.push(key);
  return keys;
}

describe('batch QA on the Temporal dev server', () => {
  requireStackEnvironment();
  const config = testConfig('batch');
  let rig: WorkerRig;
  let store: BlobStore;
  let client: Client;

  beforeAll(async () => {
    rig = await WorkerRig.start(config);
    ({ store, client } = rig);
  });

  afterAll(async () => {
    await rig?.close();
  });

  // Run ids are unique per test run: the dev server keeps history across runs of the suite.
  const uniqueRunId = `batch-${Date.now().toString(36)}`;
  const rows = generateSyntheticRows({
    seed: 11,
    questions: 3,
    documentsPerQuestion: 6,
    wordsPerDocument: 30,
  });
  const datasetText = toJsonLines(rows).replace(/\n/, '\n{"question": "no context here"}\n');

  function batchInput(runId: string): BatchQAInput {
    return {
      runId,
      datasetKey: 'datasets/test/synthetic.jsonl',
      dataset: 'synthetic.jsonl',
      settings: testSettings,
      runtime: { taskQueues: config.taskQueues, activities: config.activities },
      width: 2,
      pageSize: 2,
      stopOnBadRow: false,
    };
  }

  /** Progress and the UI's current details, read together while the batch ran (equal progress on both sides). */
  const samples: Array<{ progress: BatchProgress; details: string }> = [];
  let summary: BatchSummary;
  let handle: WorkflowHandle<typeof batchQAWorkflow>;

  // The batch runs once here, so that each test below stands on its own.
  beforeAll(async () => {
    await store.put('datasets/test/synthetic.jsonl', datasetText);
    handle = await client.workflow.start(batchQAWorkflow, {
      workflowId: `batch.${uniqueRunId}`,
      taskQueue: config.taskQueues.orchestration,
      args: [batchInput(uniqueRunId)],
    });
    let finished = false;
    const result = handle.result().finally(() => (finished = true));
    while (!finished) {
      const before = await handle.query(batchProgressQuery).catch(() => undefined);
      const metadata = await handle
        .query<{ currentDetails?: string }>('__temporal_workflow_metadata')
        .catch(() => undefined);
      const after = await handle.query(batchProgressQuery).catch(() => undefined);
      if (before && after && metadata?.currentDetails && JSON.stringify(before) === JSON.stringify(after))
        samples.push({ progress: after, details: metadata.currentDetails });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    summary = await result;
  }, 300_000);

  it("shows in the UI's current details what its progress query says, also while episodes run", () => {
    const whileRunning = samples.filter(
      (sample) => sample.progress.status === 'running' && sample.progress.running > 0,
    );
    expect(whileRunning.length).toBeGreaterThan(0);
    for (const { progress, details } of whileRunning) {
      expect(details).toContain(
        `${progress.done} of ${progress.validRows} episodes done, ${progress.running} running, ${progress.failed} failed`,
      );
    }
  });

  it('answers every valid row once, reports the malformed one, and is visible in search', async () => {
    const runId = uniqueRunId;

    // Four rows in the file: three valid (rows 0, 2, 3) and one without a context (row 1).
    expect(summary.overall.episodes).toBe(3);
    expect(summary.overall.scored).toBe(3);
    expect(summary.invalidRows).toBe(1);
    expect(summary.failedEpisodes).toBe(0);
    const rowErrors = await store.getJson<{ errors: Array<{ rowIndex: number; reason: string }> }>(
      batchRowErrorsKey(runId),
    );
    expect(rowErrors.errors).toEqual([
      { rowIndex: 1, reason: expect.stringContaining('"context" must be a string') },
    ]);

    const resultKeys = await keysUnder(store, runResultsPrefix(runId));
    expect(resultKeys).toHaveLength(3);
    for (const key of resultKeys) {
      const result = await store.getJson<EpisodeResult>(key);
      const records = await keysUnder(store, episodeMemoryPrefix(runId, result.episodeId));
      expect(records).toHaveLength(result.chunkCount);
      expect(result.chunkCount).toBeGreaterThan(1);
    }

    // Two pages of two → the batch continued as new once; the final progress says all done.
    const progress = await handle.query(batchProgressQuery);
    expect(progress).toMatchObject({ status: 'done', page: 1, pages: 2, done: 3, failed: 0 });
    const description = await handle.describe();
    expect(description.status.name).toBe('COMPLETED');

    // Replaying the recorded histories with today's workflow code reproduces them (determinism check).
    const bundle = await workflowBundle();
    await Worker.runReplayHistory({ workflowBundle: bundle }, await handle.fetchHistory(), `batch.${runId}`);
    const episodeHandle = client.workflow.getHandle(`${runId}.row-000000002`);
    await Worker.runReplayHistory(
      { workflowBundle: bundle },
      await episodeHandle.fetchHistory(),
      `${runId}.row-000000002`,
    );

    const episodes = await eventually('episodes in visibility', async () => {
      const found: string[] = [];
      for await (const info of client.workflow.list({
        query: `RememRunId = '${runId}' AND RememKind = 'episode' AND RememStatus = 'done'`,
      }))
        found.push(info.workflowId);
      return found.length === 3 ? found : undefined;
    });
    expect(episodes.sort()).toEqual([
      `${runId}.row-000000000`,
      `${runId}.row-000000002`,
      `${runId}.row-000000003`,
    ]);

    // Starting the same batch again recomputes nothing: same summary, no new episode executions.
    const again = await client.workflow.execute(batchQAWorkflow, {
      workflowId: `batch.${runId}`,
      taskQueue: config.taskQueues.orchestration,
      args: [batchInput(runId)],
    });
    expect(again).toEqual(summary);
    let executions = 0;
    for await (const _info of client.workflow.list({
      query: `RememRunId = '${runId}' AND RememKind = 'episode'`,
    }))
      executions += 1;
    expect(executions).toBe(3);
  });

  it('writes the same memory records as the plain in-process loop', async () => {
    // Reads the records of the batch run in beforeAll, not anything another test did.
    const runId = uniqueRunId;
    const reference = new EpisodeSteps({ store, policy: rig.policy! });
    const referenceRun = { runId: 'in-process-reference', episodeId: 'row-000000000' };
    const input = await store.getJson<EpisodeInputRecord>(episodeInputKey(runId, 'row-000000000'));
    await store.putJson(episodeInputKey(referenceRun.runId, referenceRun.episodeId), input);
    const manifest = await reference.prepare(referenceRun, testSettings);
    for (let step = 0; step < manifest.chunkCount; step += 1)
      await reference.memoryStep(referenceRun, testSettings, step);
    const referenceResult = await reference.answer(referenceRun, testSettings, manifest.chunkCount);

    const temporalKeys = await keysUnder(store, episodeMemoryPrefix(runId, 'row-000000000'));
    const referenceKeys = await keysUnder(
      store,
      episodeMemoryPrefix(referenceRun.runId, referenceRun.episodeId),
    );
    expect(referenceKeys).toHaveLength(temporalKeys.length);
    for (let i = 0; i < temporalKeys.length; i += 1) {
      expect(await store.getJson<MemoryStepRecord>(referenceKeys[i])).toEqual(
        await store.getJson<MemoryStepRecord>(temporalKeys[i]),
      );
    }
    const temporalResult = await store.getJson<EpisodeResult>(
      (await keysUnder(store, runResultsPrefix(runId)))[0],
    );
    expect({ ...referenceResult, runId }).toEqual(temporalResult);
  });
});
