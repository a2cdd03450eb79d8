/**
 * One policy update over a training batch, as verl runs its actor update (REMEMR1.md §4):
 *
 *   shuffle the batch's sequences (seeded by the update's seed only) and cut them into mini-batches;
 *   for each mini-batch: for each micro-batch (a block the engine runs at once)
 *       log π(token) ← engine forward;  (loss, dL/dlog π) ← token loss;  ∇w += engine backward(dL/dlog π)
 *     then one AdamW step with the summed gradient (the loss is a token mean over the whole mini-batch).
 *
 * GRPO mode uses the clipped-ratio loss against the sampling log-probs plus β·KL to a reference policy;
 * supervised mode uses cross-entropy on the given traces. Given the same engine weights, optimiser state,
 * batch and settings the result is bit-identical, so a retried update reaches the same weights.
 */
import type { TrainingBatch, TrainingSequence } from './batch';
import {
  lossTokenCount,
  paddedBlock,
  zeroGradients,
  type LossSequence,
  type TokenLogProbs,
  type TrainerEngine,
} from './engine';
import { TrainingInputError } from './errors';
import {
  defaultGrpoLossSettings,
  grpoTokenLoss,
  supervisedLogProbGradient,
  supervisedTokenLoss,
  type GrpoLossSettings,
} from './loss';
import { adamWStep, type AdamWSettings, type AdamWState } from './optimizer';
import { shuffledOrder } from './shuffle';

export type UpdateMode = 'grpo' | 'sft';

export interface UpdateSettings {
  mode: UpdateMode;
  /** Optimiser steps per update: the batch's sequences are split into this many mini-batches. */
  miniBatches: number;
  /** Most padded tokens (rows × block length) the engine runs at once. */
  microBatchTokens: number;
  loss: GrpoLossSettings;
  optimizer: AdamWSettings;
  /** Seeds the mini-batch shuffle (e.g. run id and step). */
  shuffleSeed: string;
}

export const defaultUpdateSettings: Omit<UpdateSettings, 'shuffleSeed' | 'mode'> = {
  miniBatches: 4,
  microBatchTokens: 4096,
  loss: defaultGrpoLossSettings,
  optimizer: {
    learningRate: 1e-4,
    beta1: 0.9,
    beta2: 0.999,
    epsilon: 1e-8,
    weightDecay: 0.01,
    warmupSteps: 4,
    maxGradNorm: 1,
  },
};

export interface MiniBatchMetrics {
  miniBatch: number;
  sequences: number;
  tokens: number;
  loss: number;
  /** Mean entropy of π at the loss tokens (before this mini-batch's step). */
  entropy: number;
  /** Mean log π of the loss tokens before the step. */
  meanLogProb: number;
  clipFraction: number;
  dualClipFraction: number;
  kl: number;
  approxKl: number;
  ratioMean: number;
  gradNorm: number;
  learningRate: number;
  microBatches: number;
}

export interface UpdateHooks {
  /** Reference-policy log-probs for the KL term (same layout as the engine's log-probs); omitted when β = 0. */
  referenceLogProbs?: (sequences: readonly LossSequence[]) => Promise<Float32Array>;
  /** After each optimiser step (a heartbeat, a progress bar). */
  onMiniBatch?: (metrics: MiniBatchMetrics) => Promise<void> | void;
}

/** A training sequence as the engine reads it: the prompt as context, the loss on the generated tokens. */
export function toLossSequence(sequence: TrainingSequence): LossSequence {
  return { tokens: [...sequence.promptIds, ...sequence.responseIds], lossStart: sequence.promptIds.length };
}

/**
 * Splits `order` (indices into `lengths`) into micro-batches: longest first, each one's padded block
 * (`paddedBlock`) within `tokenBudget` tokens. A sequence longer than the budget runs alone.
 */
export function planMicroBatches(
  order: readonly number[],
  lengths: readonly number[],
  tokenBudget: number,
): number[][] {
  const sorted = [...order].sort((a, b) => lengths[b] - lengths[a] || a - b);
  const plans: number[][] = [];
  let current: number[] = [];
  for (const index of sorted) {
    // Sorted longest first: the block's length is its first sequence's.
    const block = current.length === 0 ? null : paddedBlock(current.length + 1, lengths[current[0]]);
    if (block !== null && block.rows * block.length > tokenBudget) {
      plans.push(current);
      current = [];
    }
    current.push(index);
  }
  if (current.length > 0) plans.push(current);
  return plans;
}

function checkBatch(batch: TrainingBatch, mode: UpdateMode): void {
  if (batch.sequences.length === 0) throw new TrainingInputError('the training batch has no sequences');
  batch.sequences.forEach((sequence, i) => {
    if (sequence.promptIds.length === 0)
      throw new TrainingInputError(`training sequence ${i} has no prompt tokens`);
    if (sequence.responseIds.length === 0)
      throw new TrainingInputError(`training sequence ${i} has no generated tokens`);
    if (mode === 'grpo' && sequence.samplingLogProbs.length !== sequence.responseIds.length) {
      throw new TrainingInputError(
        `training sequence ${i} has ${sequence.samplingLogProbs.length} sampling log-probs for ${sequence.responseIds.length} generated tokens`,
      );
    }
    if (mode === 'grpo' && !Number.isFinite(sequence.advantage)) {
      throw new TrainingInputError(
        `training sequence ${i} has a non-finite advantage (${sequence.advantage})`,
      );
    }
  });
}

/**
 * Runs the update's mini-batches, stepping `optimizer` and the engine's weights in place; returns every
 * mini-batch's metrics. A retried update starts again from the checkpoint it started from and, being
 * deterministic, ends on the same weights.
 */
export async function runUpdate(
  engine: TrainerEngine,
  optimizer: AdamWState,
  batch: TrainingBatch,
  settings: UpdateSettings,
  hooks: UpdateHooks = {},
): Promise<MiniBatchMetrics[]> {
  checkBatch(batch, settings.mode);
  const { miniBatches } = settings;
  if (!Number.isInteger(miniBatches) || miniBatches < 1 || miniBatches > batch.sequences.length) {
    throw new TrainingInputError(
      `miniBatches must be an integer in 1..${batch.sequences.length} (the batch's sequences), got ${miniBatches}`,
    );
  }
  const klCoef = settings.mode === 'grpo' ? settings.loss.klCoef : 0;
  if (klCoef > 0 && hooks.referenceLogProbs === undefined) {
    throw new TrainingInputError('the KL term (klCoef > 0) needs reference log-probs');
  }
  const sequences = batch.sequences.map(toLossSequence);
  const lengths = sequences.map((sequence) => sequence.tokens.length);
  const order = shuffledOrder(sequences.length, settings.shuffleSeed, 0);
  const metrics: MiniBatchMetrics[] = [];
  for (let m = 0; m < miniBatches; m++) {
    const members = order.slice(
      Math.floor((m * order.length) / miniBatches),
      Math.floor(((m + 1) * order.length) / miniBatches),
    );
    const tokenCount = members.reduce((sum, i) => sum + lengths[i] - sequences[i].lossStart, 0);
    const plans = planMicroBatches(members, lengths, settings.microBatchTokens);
    const grads = zeroGradients(engine);
    const totals = { loss: 0, entropy: 0, logProb: 0, clip: 0, dualClip: 0, kl: 0, approxKl: 0, ratio: 0 };
    for (const plan of plans) {
      const micro = plan.map((i) => sequences[i]);
      const count = lossTokenCount(micro);
      const mask = new Float32Array(count).fill(1);
      let current: TokenLogProbs;
      if (settings.mode === 'sft') {
        // The gradient w.r.t. log π does not depend on π: one forward + backward pass gives it and the loss.
        current = await engine.accumulateGradients(micro, supervisedLogProbGradient(mask, tokenCount), grads);
        totals.loss += supervisedTokenLoss({ logProbs: current.logProbs, mask }, { tokenCount }).loss;
      } else {
        current = await engine.logProbs(micro);
        const old = new Float32Array(count);
        const advantages = new Float32Array(count);
        let k = 0;
        for (const i of plan) {
          const source = batch.sequences[i];
          old.set(source.samplingLogProbs, k);
          advantages.fill(source.advantage, k, k + source.responseIds.length);
          k += source.responseIds.length;
        }
        const reference = klCoef > 0 ? await hooks.referenceLogProbs!(micro) : null;
        const loss = grpoTokenLoss(
          { logProbs: current.logProbs, oldLogProbs: old, refLogProbs: reference, advantages, mask },
          { ...settings.loss, klCoef, tokenCount },
        );
        // Token means over the mini-batch, summed micro-batch by micro-batch.
        const share = count / tokenCount;
        totals.clip += loss.stats.clipFraction * share;
        totals.dualClip += loss.stats.dualClipFraction * share;
        totals.kl += loss.stats.meanKl * share;
        totals.approxKl += loss.stats.approxKl * share;
        totals.ratio += loss.stats.meanRatio * share;
        totals.loss += loss.loss;
        await engine.accumulateGradients(micro, loss.dLogProbs, grads);
      }
      for (let t = 0; t < count; t++) {
        totals.entropy += current.entropy[t] / tokenCount;
        totals.logProb += current.logProbs[t] / tokenCount;
      }
    }
    const step = adamWStep(engine.weights, grads, optimizer, settings.optimizer);
    const result: MiniBatchMetrics = {
      miniBatch: m,
      sequences: members.length,
      tokens: tokenCount,
      loss: totals.loss,
      entropy: totals.entropy,
      meanLogProb: totals.logProb,
      clipFraction: totals.clip,
      dualClipFraction: totals.dualClip,
      kl: totals.kl,
      approxKl: totals.approxKl,
      ratioMean: settings.mode === 'grpo' ? totals.ratio : 1,
      gradNorm: step.gradNorm,
      learningRate: step.learningRate,
      microBatches: plans.length,
    };
    metrics.push(result);
    await hooks.onMiniBatch?.(result);
  }
  return metrics;
}
