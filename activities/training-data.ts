/**
 * The light activities of a training run, on the orchestration queue: sample a step's questions from the
 * indexed training split and lay out their G rollout episodes, and record a step's metrics.
 *
 * Sampling is seeded by (run seed, step) only, so a retried or replayed step picks the same questions.
 */
import type { BatchIndex, PageEntry } from './batch';
import { rolloutEpisodeId, type EpisodeInputRecord } from '../lib/episode/types';
import { Xoshiro128 } from '../lib/model/random';
import {
  batchPageKey,
  episodeInputKey,
  trainingMetricsKey,
  trainingMetricsPrefix,
  type BlobStore,
} from '../lib/storage';
import { TrainingInputError } from '../lib/training/errors';
import { failFastOnBadInput } from './failures';

export interface SampleRolloutsInput {
  /** The run the training split was indexed under (runs/{dataRun}/…). */
  dataRun: string;
  index: BatchIndex;
  /** Where the rollout episodes of this step live (a run id of their own). */
  rolloutRun: string;
  questions: number;
  groupSize: number;
  seed: number;
  step: number;
}

/** k distinct indices of 0 … n−1, seeded (partial Fisher–Yates over a sparse map). */
export function sampleDistinct(n: number, k: number, seed: string): number[] {
  const random = Xoshiro128.forLabel(seed, 'training/questions');
  const swapped = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random.nextFloat() * (n - i));
    const atJ = swapped.get(j) ?? j;
    swapped.set(j, swapped.get(i) ?? i);
    out.push(atJ);
  }
  return out;
}

export function createTrainingDataActivities(deps: { store: BlobStore }) {
  const { store } = deps;
  return {
    /** Picks the step's questions and writes each one's input G times (one per rollout); returns the groups. */
    async sampleRollouts(input: SampleRolloutsInput): Promise<string[][]> {
      return failFastOnBadInput(async () => {
        const { index } = input;
        if (input.groupSize < 2)
          throw new TrainingInputError(
            `group size must be at least 2 (GRPO compares rollouts), got ${input.groupSize}`,
          );
        if (input.questions < 1 || input.questions > index.validRows) {
          throw new TrainingInputError(
            `questions per step must be in 1..${index.validRows} (the split's valid rows), got ${input.questions}`,
          );
        }
        // Valid rows are numbered page by page; every page but the last is full.
        const picks = sampleDistinct(index.validRows, input.questions, `${input.seed}/step-${input.step}`);
        const pages = new Map<number, PageEntry[]>();
        const groups: string[][] = [];
        for (const pick of picks) {
          const page = Math.floor(pick / index.pageSize);
          if (!pages.has(page))
            pages.set(page, await store.getJson<PageEntry[]>(batchPageKey(input.dataRun, page)));
          const entry = pages.get(page)![pick % index.pageSize];
          const record = await store.getJson<EpisodeInputRecord>(
            episodeInputKey(input.dataRun, entry.episodeId),
          );
          if (record.answers.length === 0) {
            throw new TrainingInputError(
              `row ${record.rowIndex} (${record.id}) of the training split has no gold answers; training needs them for the outcome reward`,
            );
          }
          const group: string[] = [];
          for (let g = 0; g < input.groupSize; g++) {
            const episodeId = rolloutEpisodeId(entry.episodeId, g);
            await store.putJson(episodeInputKey(input.rolloutRun, episodeId), record);
            group.push(episodeId);
          }
          groups.push(group);
        }
        return groups;
      });
    },

    async recordTrainingStep(run: string, step: number, metrics: Record<string, unknown>): Promise<void> {
      await store.putJson(trainingMetricsKey(run, step), metrics);
    },

    /** Every recorded step's metrics, in step order (for reports). */
    async trainingMetrics(run: string): Promise<Record<string, unknown>[]> {
      const out: Record<string, unknown>[] = [];
      for await (const key of store.list(trainingMetricsPrefix(run)))
        out.push(await store.getJson<Record<string, unknown>>(key));
      return out;
    },
  };
}

export type TrainingDataActivities = ReturnType<typeof createTrainingDataActivities>;
