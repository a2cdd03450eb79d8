/** The `score` activity on a filesystem blob store: reads stored rollouts, writes the training batch, fails fast on bad input. */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createScoringActivities, type ScoreInput, type ScoreResult } from '../../../activities/scoring';
import type { ChunkManifest, EpisodeInputRecord } from '../../../lib/episode/types';
import {
  createBlobStore,
  episodeAnswerKey,
  episodeChunkKey,
  episodeChunkManifestKey,
  episodeInputKey,
  episodeMemoryKey,
  trainingBatchKey,
  type BlobStore,
} from '../../../lib/storage';
import type { TrainingBatch } from '../../../lib/training/batch';
import { scoreRolloutGroups, type RolloutRecords } from '../../../lib/training/scoring';
import { POLICY_VERSION, handWorkedGroup } from '../../support/rollouts';
import { tempDir } from '../../support/stack';

async function storeRollout(store: BlobStore, runId: string, rollout: RolloutRecords, answers = rollout.answers): Promise<void> {
  const { episodeId } = rollout;
  const input: EpisodeInputRecord = { id: 'q', rowIndex: 0, question: rollout.question, context: rollout.chunks.join(' '), answers };
  await store.putJson(episodeInputKey(runId, episodeId), input);
  for (const [index, chunk] of rollout.chunks.entries()) await store.put(episodeChunkKey(runId, episodeId, index), chunk);
  const manifest: ChunkManifest = { chunkCount: rollout.chunks.length, documentTokens: 30, chunkTokenRanges: rollout.chunks.map((_, i) => [10 * i, 10 * i + 10]) };
  await store.putJson(episodeChunkManifestKey(runId, episodeId), manifest);
  for (const record of rollout.memorySteps) await store.putJson(episodeMemoryKey(runId, episodeId, record.step), record);
  await store.putJson(episodeAnswerKey(runId, episodeId), rollout.answer);
}

describe('the score activity', () => {
  let store: BlobStore;
  const env = new MockActivityEnvironment();
  const score = async (input: ScoreInput): Promise<ScoreResult> => (await env.run(createScoringActivities({ store }).score, input)) as ScoreResult;

  beforeAll(async () => {
    store = createBlobStore({ kind: 'fs', root: tempDir('score') });
    for (const prefix of ['a', 'b']) for (const rollout of handWorkedGroup(prefix)) await storeRollout(store, 'rollouts-1', rollout);
    for (const rollout of handWorkedGroup('noanswers')) await storeRollout(store, 'rollouts-1', rollout, []);
  });
  afterAll(() => store.close());

  const input: ScoreInput = {
    trainingRunId: 'train-1',
    step: 4,
    rolloutRunId: 'rollouts-1',
    groups: [
      ['a.g0', 'a.g1'],
      ['b.g0', 'b.g1'],
    ],
    policyVersion: POLICY_VERSION,
    alpha: 0.8,
  };

  it('writes the training batch of the step and returns its statistics; a retry returns the same', async () => {
    const result = await score(input);
    expect(result.batchKey).toBe(trainingBatchKey('train-1', 4));
    const expected = scoreRolloutGroups([handWorkedGroup('a'), handWorkedGroup('b')], { policyVersion: POLICY_VERSION, alpha: 0.8 });
    expect(await store.getJson<TrainingBatch>(result.batchKey)).toEqual(expected.batch);
    expect(result.stats).toEqual(expected.stats);
    expect(result.stats).toMatchObject({ groups: 2, rollouts: 4, sequences: 16, accuracy: 0.5 });
    expect(expected.batch.sequences[0].advantage).toBeCloseTo(0.6, 12);

    const bytes = await store.get(result.batchKey);
    expect(await score(input)).toEqual(result);
    expect(await store.get(result.batchKey)).toEqual(bytes);
  });

  async function failure(bad: ScoreInput): Promise<ApplicationFailure> {
    const error: unknown = await score(bad).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ApplicationFailure);
    return error as ApplicationFailure;
  }

  it('fails without retries when G < 2, gold answers are missing or a rollout has not finished', async () => {
    const single = await failure({ ...input, step: 5, groups: [['a.g0']] });
    expect(single).toMatchObject({ nonRetryable: true, type: 'ScoringInputError' });
    expect(single.message).toBe('group 0 has 1 rollout(s); GRPO compares the rollouts of a question, so G must be at least 2');

    const noAnswers = await failure({ ...input, step: 6, groups: [['noanswers.g0', 'noanswers.g1']] });
    expect(noAnswers).toMatchObject({ nonRetryable: true, message: 'rollout episode noanswers.g0 has no gold answers; rollouts are scored against them' });

    const unfinished = await failure({ ...input, step: 7, groups: [['a.g0', 'a.g9']] });
    expect(unfinished).toMatchObject({
      nonRetryable: true,
      message: 'rollout episode a.g9 of run rollouts-1 has not finished (no answer record); score reads finished episodes only',
    });

    const badAlpha = await failure({ ...input, step: 8, alpha: 1.5 });
    expect(badAlpha).toMatchObject({ nonRetryable: true, message: 'alpha must be between 0 and 1, got 1.5' });

    for (const step of [5, 6, 7, 8]) expect(await store.exists(trainingBatchKey('train-1', step))).toBe(false);
  });
});
