/**
 * Fault (a): kill -9 the inference worker in the middle of an episode and start another. The answer and the
 * stored memory history must equal those of an uninterrupted run with the same seeds: one record per step,
 * none lost or doubled.
 */
import type { Client } from '@temporalio/client';
import { generateSyntheticRows } from '../../lib/data/synthetic';
import { EpisodeSteps } from '../../lib/episode/steps';
import type { EpisodeInputRecord, EpisodeSettings, MemoryStepRecord } from '../../lib/episode/types';
import { loadPolicy } from '../../lib/model';
import { episodeInputKey, episodeMemoryKey, episodeMemoryPrefix, type BlobStore } from '../../lib/storage';
import { episodeWorkflow } from '../../workflows/episode';
import { killHard } from '../../workers/spawn';
import { CrashHarness } from '../support/crash';
import { eventually, requireStackEnvironment, testConfig, testSettings } from '../support/stack';

describe('an inference worker killed mid-episode', () => {
  requireStackEnvironment();
  const config = testConfig('crash');
  const settings: EpisodeSettings = { ...testSettings, memoryMaxNewTokens: 24 };
  let harness: CrashHarness;
  let store: BlobStore;
  let client: Client;

  beforeAll(async () => {
    harness = await CrashHarness.start(config);
    ({ store, client } = harness);
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('is replaced without losing, doubling or changing any step', async () => {
    const [row] = generateSyntheticRows({
      seed: 5,
      questions: 1,
      documentsPerQuestion: 14,
      wordsPerDocument: 40,
    });
    const input: EpisodeInputRecord = {
      id: row.id,
      rowIndex: 0,
      question: row.question,
      context: row.context,
      answers: row.answers,
    };
    const ref = { runId: 'crash-run', episodeId: 'episode-0' };
    await store.putJson(episodeInputKey(ref.runId, ref.episodeId), input);

    const first = await harness.startProcess('inference');
    const handle = await client.workflow.start(episodeWorkflow, {
      workflowId: `${ref.runId}.${ref.episodeId}`,
      taskQueue: config.taskQueues.orchestration,
      args: [{ ...ref, settings, runtime: { taskQueues: config.taskQueues, activities: config.activities } }],
    });
    // Kill once two steps are stored and the third is (very likely) being generated.
    await eventually(
      'two stored steps',
      () => store.exists(episodeMemoryKey(ref.runId, ref.episodeId, 1)),
      120_000,
    );
    await killHard(first);
    const stepsAtKill = (await collect(store.list(episodeMemoryPrefix(ref.runId, ref.episodeId)))).length;

    await harness.startProcess('inference');
    const result = await handle.result();
    expect(result.chunkCount).toBeGreaterThan(stepsAtKill);
    // The fault was real: the model step the kill cut short ran again (a later attempt), on the new worker.
    const history = await handle.fetchHistory();
    const attempts = (history.events ?? []).flatMap((event) =>
      event.activityTaskStartedEventAttributes ? [event.activityTaskStartedEventAttributes.attempt ?? 1] : [],
    );
    expect(Math.max(...attempts)).toBeGreaterThan(1);

    // The uninterrupted reference: same episode id and seeds, computed in this process.
    const policy = await loadPolicy(config.model.path);
    try {
      const reference = new EpisodeSteps({ store, policy });
      const referenceRef = { runId: 'crash-reference', episodeId: ref.episodeId };
      await store.putJson(episodeInputKey(referenceRef.runId, referenceRef.episodeId), input);
      const manifest = await reference.prepare(referenceRef, settings);
      for (let step = 0; step < manifest.chunkCount; step += 1)
        await reference.memoryStep(referenceRef, settings, step);
      const referenceResult = await reference.answer(referenceRef, settings, manifest.chunkCount);
      expect({ ...referenceResult, runId: ref.runId }).toEqual(result);

      const crashed = await collect(store.list(episodeMemoryPrefix(ref.runId, ref.episodeId)));
      expect(crashed).toHaveLength(manifest.chunkCount);
      for (let step = 0; step < manifest.chunkCount; step += 1) {
        expect(
          await store.getJson<MemoryStepRecord>(episodeMemoryKey(ref.runId, ref.episodeId, step)),
        ).toEqual(
          await store.getJson<MemoryStepRecord>(
            episodeMemoryKey(referenceRef.runId, referenceRef.episodeId, step),
          ),
        );
      }
    } finally {
      await policy.dispose();
    }
  });
});

async function collect(items: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const item of items) out.push(item);
  return out;
}
