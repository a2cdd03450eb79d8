/**
 * A long document keeps a bounded history: on a dev server told to suggest continue-as-new after 40 events,
 * one episode of many chunks spreads over several runs and still reads every chunk exactly once. Its progress
 * search attribute is exact at the end without an upsert per step.
 */
import { generateSyntheticRows } from '../../lib/data/synthetic';
import type { EpisodeInputRecord } from '../../lib/episode/types';
import { episodeInputKey, episodeMemoryPrefix } from '../../lib/storage';
import { startTemporal, stopTemporal, type StackPaths } from '../../infra/local-stack';
import { searchAttributes } from '../../lib/temporal/search-attributes';
import { episodeWorkflow } from '../../workflows/episode';
import { WorkerRig, privateServerSlot } from '../support/rig';
import { requireStackEnvironment, testConfig, testSettings, testNamespace } from '../support/stack';

describe('an episode longer than one history', () => {
  requireStackEnvironment();
  let paths: StackPaths;
  let address: string;
  let rig: WorkerRig | undefined;

  beforeAll(async () => {
    ({ paths, address } = await privateServerSlot('long'));
    await startTemporal({ paths, address, namespace: testNamespace(), ui: false, dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 40 } });
  });

  afterAll(async () => {
    await rig?.close();
    await stopTemporal(paths);
  });

  it('continues as new and reads every chunk once', async () => {
    rig = await WorkerRig.start(testConfig('long', { address }));
    const { client, config, store } = rig;
    const [row] = generateSyntheticRows({ seed: 8, questions: 1, documentsPerQuestion: 30, wordsPerDocument: 40 });
    const input: EpisodeInputRecord = { id: row.id, rowIndex: 0, question: row.question, context: row.context, answers: row.answers };
    const ref = { runId: 'long-run', episodeId: 'long-episode' };
    await store.putJson(episodeInputKey(ref.runId, ref.episodeId), input);

    const result = await client.workflow.execute(episodeWorkflow, {
      workflowId: `${ref.runId}.${ref.episodeId}`,
      taskQueue: config.taskQueues.orchestration,
      args: [{ ...ref, settings: { ...testSettings, memoryMaxNewTokens: 4 }, runtime: { taskQueues: config.taskQueues, activities: config.activities } }],
    });
    // Each chunk step adds six events, so 40 events hold about six steps.
    expect(result.chunkCount).toBeGreaterThan(12);
    const records: string[] = [];
    for await (const key of store.list(episodeMemoryPrefix(ref.runId, ref.episodeId))) records.push(key);
    expect(records).toHaveLength(result.chunkCount);

    let runs = 0;
    let largestHistory = 0;
    let memorySteps = 0;
    let upserts = 0;
    const workflowId = `${ref.runId}.${ref.episodeId}`;
    for await (const info of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      runs += 1;
      largestHistory = Math.max(largestHistory, info.historyLength);
      const { events } = await client.workflow.getHandle(workflowId, info.runId).fetchHistory();
      for (const event of events ?? []) {
        if (event.activityTaskScheduledEventAttributes?.activityType?.name === 'memoryStep') memorySteps += 1;
        if (event.upsertWorkflowSearchAttributesEventAttributes) upserts += 1;
      }
    }
    expect(runs).toBeGreaterThan(1);
    expect(largestHistory).toBeLessThan(80);
    expect(memorySteps).toBe(result.chunkCount);
    // One upsert per run at its start, one after preparing, one when answering, one when done, and one per
    // PROGRESS_UPSERT_INTERVAL_MS of reading: fewer than the steps (one per step would add up to more than them).
    expect(upserts).toBeLessThan(memorySteps);
    const { typedSearchAttributes } = await client.workflow.getHandle(workflowId).describe();
    expect(typedSearchAttributes.get(searchAttributes.chunksDone)).toBe(result.chunkCount);
    expect(typedSearchAttributes.get(searchAttributes.chunksTotal)).toBe(result.chunkCount);
    expect(typedSearchAttributes.get(searchAttributes.status)).toBe('done');
  });
});
