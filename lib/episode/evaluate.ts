/**
 * Evaluation in this process: rows run through the real episode steps (prepare, memory steps, answer) on a
 * blob store, several episodes at once so that a model policy batches their turns. Used for benchmark tables,
 * where starting a batch on a Temporal server per variant adds nothing but waiting.
 */
import type { QaRow } from '../data/dataset';
import type { Policy } from '../model';
import type { BlobStore } from '../storage';
import { episodeIdOf, runEpisodeLocally } from './rule-traces';
import { EpisodeSteps } from './steps';
import type { EpisodeResult, EpisodeSettings } from './types';

export interface LocalEvaluationOptions {
  policy: Policy;
  store: BlobStore;
  runId: string;
  settings: EpisodeSettings;
  /** Episodes in flight at once (a model policy batches their generate calls). */
  concurrency: number;
  /** Called after each episode, in completion order. */
  onEpisode?: (result: EpisodeResult) => void;
}

/** Every row's result, in row order. A row already finished in `store` under `runId` is read back, not rerun. */
export async function evaluateLocally(
  rows: readonly QaRow[],
  options: LocalEvaluationOptions,
): Promise<EpisodeResult[]> {
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${options.concurrency}`);
  }
  const ids = new Set(rows.map(episodeIdOf));
  if (ids.size !== rows.length)
    throw new Error('rows must have distinct row indexes (episode ids are derived from them)');
  const steps = new EpisodeSteps({ store: options.store, policy: options.policy });
  const results: EpisodeResult[] = new Array<EpisodeResult>(rows.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < rows.length) {
      const index = next;
      next += 1;
      results[index] = await runEpisodeLocally(
        steps,
        options.store,
        options.runId,
        rows[index],
        options.settings,
      );
      options.onEpisode?.(results[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, rows.length) }, lane));
  return results;
}
