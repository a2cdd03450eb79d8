/**
 * The `score` activity of a training step: reads the finished rollout episodes of each question from the blob
 * store, computes rewards and multi-level advantages (lib/training/scoring.ts) and writes the training batch
 * to training/{run}/batches/{step}.json. Only small statistics travel back to the workflow.
 *
 * Idempotent: the batch is a pure function of the stored records and the options, and it is written with
 * put-if-absent, so a retried activity writes nothing new and returns the same statistics.
 */
import type { AnswerRecord, ChunkManifest, EpisodeInputRecord, MemoryStepRecord } from '../lib/episode/types';
import {
  episodeAnswerKey,
  episodeChunkKey,
  episodeChunkManifestKey,
  episodeInputKey,
  episodeMemoryKey,
  trainingBatchKey,
  type BlobStore,
} from '../lib/storage';
import { ScoringInputError, scoreRolloutGroups, type RolloutRecords, type ScoringStats } from '../lib/training/scoring';
import { failFastOnBadInput, withHeartbeat } from './failures';
import { recordTrainingStep } from './observability';

export interface ScoreInput {
  /** The training run and step the batch belongs to: it is written at trainingBatchKey(trainingRunId, step). */
  trainingRunId: string;
  step: number;
  /** The run whose episodes are the rollouts (runs/{rolloutRunId}/episodes/…). */
  rolloutRunId: string;
  /** One entry per question: the episode ids of its G ≥ 2 rollouts. */
  groups: string[][];
  /** The policy version the rollouts were sampled with. */
  policyVersion: string;
  /** Weight of the outcome advantage, 0 … 1 (default 0.8; 1 = MemAgent). */
  alpha?: number;
  /** Divide each level's advantages by its group standard deviation (default false). */
  normalizeStd?: boolean;
}

export interface ScoreResult {
  batchKey: string;
  stats: ScoringStats;
}

export interface ScoringActivityDeps {
  store: BlobStore;
}

/** Everything scoring needs of one finished rollout episode. */
async function readRollout(store: BlobStore, runId: string, episodeId: string): Promise<RolloutRecords> {
  const manifestKey = episodeChunkManifestKey(runId, episodeId);
  const answerKey = episodeAnswerKey(runId, episodeId);
  if (!(await store.exists(manifestKey)) || !(await store.exists(answerKey))) {
    throw new ScoringInputError(`rollout episode ${episodeId} of run ${runId} has not finished (no answer record); score reads finished episodes only`);
  }
  const input = await store.getJson<EpisodeInputRecord>(episodeInputKey(runId, episodeId));
  const manifest = await store.getJson<ChunkManifest>(manifestKey);
  const chunks: string[] = [];
  const memorySteps: MemoryStepRecord[] = [];
  const decoder = new TextDecoder();
  for (let step = 0; step < manifest.chunkCount; step += 1) {
    chunks.push(decoder.decode(await store.get(episodeChunkKey(runId, episodeId, step))));
    memorySteps.push(await store.getJson<MemoryStepRecord>(episodeMemoryKey(runId, episodeId, step)));
  }
  const answer = await store.getJson<AnswerRecord>(answerKey);
  return { episodeId, question: input.question, answers: input.answers, chunks, memorySteps, answer };
}

function checkInput(input: ScoreInput): void {
  if (!Array.isArray(input.groups) || input.groups.length === 0) throw new ScoringInputError('score needs at least one question group');
  input.groups.forEach((group, index) => {
    if (!Array.isArray(group) || group.some((id) => typeof id !== 'string')) {
      throw new ScoringInputError(`group ${index} must be a list of rollout episode ids`);
    }
    if (group.length < 2) {
      throw new ScoringInputError(`group ${index} has ${group.length} rollout(s); GRPO compares the rollouts of a question, so G must be at least 2`);
    }
    if (new Set(group).size !== group.length) throw new ScoringInputError(`group ${index} lists a rollout episode twice`);
  });
}

export function createScoringActivities(deps: ScoringActivityDeps) {
  const { store } = deps;
  return {
    async score(input: ScoreInput): Promise<ScoreResult> {
      return withHeartbeat(() =>
        failFastOnBadInput(async () => {
          checkInput(input);
          const batchKey = trainingBatchKey(input.trainingRunId, input.step);
          const groups: RolloutRecords[][] = [];
          for (const group of input.groups) {
            const rollouts: RolloutRecords[] = [];
            for (const episodeId of group) rollouts.push(await readRollout(store, input.rolloutRunId, episodeId));
            groups.push(rollouts);
          }
          const { batch, stats } = scoreRolloutGroups(groups, {
            policyVersion: input.policyVersion,
            alpha: input.alpha,
            normalizeStd: input.normalizeStd,
          });
          await store.putIfAbsent(batchKey, JSON.stringify(batch));
          recordTrainingStep(stats.accuracy, stats.reward);
          return { batchKey, stats };
        }),
      );
    },
  };
}

export type ScoringActivities = ReturnType<typeof createScoringActivities>;
