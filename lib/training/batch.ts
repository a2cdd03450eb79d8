/**
 * The training batch: what `score` writes to the blob store and `policyUpdate` / `sft` read. Plain data, safe
 * to import from workflow code.
 *
 * Each turn of an episode (a memory step or the final answer) is its own sequence: the prompt tokens are
 * context only, the loss falls on the generated tokens. REMEMR1.md §4: every generated token of a turn
 * carries that turn's advantage A(i,t) = α·A_out(i) + (1−α)·A_state(i,t).
 */

/** One turn as a training sequence. */
export interface TrainingSequence {
  /** The chat-templated prompt's token ids (context; no loss on them). */
  promptIds: number[];
  /** The generated token ids, including the final EOS when generation ended on it (the loss applies here). */
  responseIds: number[];
  /**
   * log π_old(token): the log-probability of each response token under the policy that sampled it, at
   * temperature 1 over the full distribution. Empty for supervised traces.
   */
  samplingLogProbs: number[];
  /** The turn's advantage, the same on every response token (ignored by the supervised mode). */
  advantage: number;
  /** Which question group, rollout and turn this came from (for metrics and debugging). */
  group: number;
  rollout: number;
  turn: number;
}

export interface TrainingBatch {
  format: 'rememr1-training-batch/1';
  /** The policy version the rollouts were sampled with (the update starts from its weights). */
  policyVersion: string;
  sequences: TrainingSequence[];
}

export const TRAINING_BATCH_FORMAT = 'rememr1-training-batch/1' as const;
