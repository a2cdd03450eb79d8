/**
 * Token-level losses of the trainer (REMEMR1.md §4), after verl's `core_algos.py`: each a pure function of
 * per-token arrays, flattened over the response tokens of a mini-batch (or of one of its micro-batches).
 *
 * The engine computes log π(token) for every response token; a loss returns its value and dL/dlogp for
 * each token, the gradient autograd would give for the same expression, so the engine only has to
 * back-propagate through log π. Arithmetic is in float64; the gradient is stored as float32.
 *
 * Token-mean aggregation: loss = Σ mask·ℓ / tokenCount. tokenCount defaults to Σ mask; when a mini-batch is
 * split into micro-batches, pass the mini-batch's Σ mask to each so their gradients add up to the gradient of
 * the mini-batch's token mean. Statistics are token means over each call's own mask; `stats.tokens` (Σ mask)
 * lets a caller weight them when combining micro-batches.
 */
import { TrainingInputError } from './errors';

/** The result of a token loss: the value, dL/dlogp per token (0 where mask = 0) and diagnostics. */
export interface TokenLoss<Stats> {
  loss: number;
  dLogProbs: Float32Array;
  stats: Stats;
}

export interface GrpoLossInput {
  /** log π_θ(token) under the policy being trained. */
  logProbs: ArrayLike<number>;
  /** log π_old(token) under the policy that sampled it. */
  oldLogProbs: ArrayLike<number>;
  /** log π_ref(token) under the reference policy; may be absent when klCoef = 0. */
  refLogProbs?: ArrayLike<number> | null;
  /** The advantage of each token (its turn's A(i,t)). */
  advantages: ArrayLike<number>;
  /** 1 for a token the loss falls on, 0 for padding. */
  mask: ArrayLike<number>;
}

export interface GrpoLossSettings {
  /** ε of the PPO clip, both sides; `clipRatioLow` / `clipRatioHigh` override one side. */
  clipRatio: number;
  clipRatioLow?: number;
  clipRatioHigh?: number;
  /** c of the dual clip: the loss of a negative-advantage token is at most −A·c. Must exceed 1. */
  dualClip: number;
  /** β, the weight of the KL penalty to the reference policy. */
  klCoef: number;
  /** The denominator of the token mean; defaults to Σ mask. */
  tokenCount?: number;
}

/** The released ReMemR1 settings. */
export const defaultGrpoLossSettings: GrpoLossSettings = { clipRatio: 0.2, dualClip: 3, klCoef: 0.001 };

export interface GrpoLossStats {
  /** Σ mask. */
  tokens: number;
  /** Tokens whose clipped branch is active (PPO's clip fraction). */
  clipFraction: number;
  /** Negative-advantage tokens whose loss the dual clip caps. */
  dualClipFraction: number;
  /** Mean k3 KL to the reference policy (0 without one). */
  meanKl: number;
  /** Mean π_θ / π_old. */
  meanRatio: number;
  /** Mean of log π_old − log π_θ (verl's `ppo_kl`). */
  approxKl: number;
}

/** verl clamps the log-ratio before exp, so a far-off token gives a large but finite ratio. */
const LOG_RATIO_LIMIT = 20;
/** verl clamps k3 to [−10, 10] (and its log-ratio to ±20): one token that drifted far cannot dominate. */
const KL_LIMIT = 10;

/**
 * GRPO's clipped-ratio loss with dual clip and k3 KL, per token:
 *
 *   r = exp(logp − logp_old)
 *   pg = max(−A·r, −A·clip(r, 1 − ε_low, 1 + ε_high)),   then for A < 0: pg = min(pg, −A·c)
 *   kl = exp(d) − d − 1 with d = logp_ref − logp, clamped to [−10, 10]   (verl's "low_var_kl")
 *   ℓ = pg + β·kl;   L = Σ mask·ℓ / tokenCount
 *
 * Gradients: d(−A·r)/dlogp = −A·r on the unclipped branch, 0 where the clip or the dual clip is active (the
 * value is then a constant), dkl/dlogp = 1 − exp(d), 0 where a clamp is active. At an exact tie between two
 * branches the unclipped one's gradient is taken (autograd halves it there; ties have measure zero).
 */
export function grpoTokenLoss(
  input: GrpoLossInput,
  settings: Partial<GrpoLossSettings> = {},
): TokenLoss<GrpoLossStats> {
  const { clipRatio, dualClip, klCoef } = { ...defaultGrpoLossSettings, ...settings };
  const low = settings.clipRatioLow ?? clipRatio;
  const high = settings.clipRatioHigh ?? clipRatio;
  if (!(low >= 0 && low < 1) || !(high >= 0)) {
    throw new TrainingInputError(
      `clip ratios must satisfy 0 <= low < 1 and high >= 0, got low ${low}, high ${high}`,
    );
  }
  if (!(dualClip > 1)) throw new TrainingInputError(`dualClip must be greater than 1, got ${dualClip}`);
  if (!(klCoef >= 0)) throw new TrainingInputError(`klCoef must be >= 0, got ${klCoef}`);
  const ref = input.refLogProbs ?? null;
  if (klCoef > 0 && ref === null) {
    throw new TrainingInputError(`refLogProbs are required when klCoef is ${klCoef} (> 0)`);
  }
  const { logProbs, oldLogProbs, advantages, mask } = input;
  const n = checkLengths({ logProbs, oldLogProbs, advantages, mask, ...(ref ? { refLogProbs: ref } : {}) });
  const tokens = countMask(mask);
  const denominator = tokenCountOf(settings.tokenCount, tokens);

  const dLogProbs = new Float32Array(n);
  let total = 0;
  let clipped = 0;
  let dualClipped = 0;
  let klSum = 0;
  let ratioSum = 0;
  let logRatioSum = 0;
  for (let i = 0; i < n; i++) {
    if (mask[i] === 0) continue;
    const logp = logProbs[i];
    const advantage = advantages[i];
    const rawLogRatio = logp - oldLogProbs[i];
    const logRatio = clamp(rawLogRatio, -LOG_RATIO_LIMIT, LOG_RATIO_LIMIT);
    const ratio = Math.exp(logRatio);
    const dRatio = logRatio === rawLogRatio ? ratio : 0;
    let pg = -advantage * ratio;
    let dPg = -advantage * dRatio;
    const pgClipped = -advantage * clamp(ratio, 1 - low, 1 + high);
    if (pgClipped > pg) {
      pg = pgClipped;
      dPg = 0;
      clipped += 1;
    }
    if (advantage < 0 && pg > -advantage * dualClip) {
      pg = -advantage * dualClip;
      dPg = 0;
      dualClipped += 1;
    }
    let kl = 0;
    let dKl = 0;
    if (ref !== null) {
      const rawD = ref[i] - logp;
      const d = clamp(rawD, -LOG_RATIO_LIMIT, LOG_RATIO_LIMIT);
      const rawKl = Math.exp(d) - d - 1;
      kl = clamp(rawKl, -KL_LIMIT, KL_LIMIT);
      dKl = d === rawD && kl === rawKl ? 1 - Math.exp(d) : 0;
    }
    const tokenLoss = pg + klCoef * kl;
    const gradient = (dPg + klCoef * dKl) / denominator;
    if (!Number.isFinite(tokenLoss) || !Number.isFinite(gradient)) {
      throw new TrainingInputError(
        `token ${i} has a non-finite loss (logp ${logp}, old ${oldLogProbs[i]}, ref ${ref?.[i]}, advantage ${advantage})`,
      );
    }
    total += tokenLoss;
    dLogProbs[i] = gradient;
    klSum += kl;
    ratioSum += ratio;
    logRatioSum += logRatio;
  }
  const mean = (sum: number): number => (tokens === 0 ? 0 : sum / tokens);
  return {
    loss: tokens === 0 ? 0 : total / denominator,
    dLogProbs,
    stats: {
      tokens,
      clipFraction: mean(clipped),
      dualClipFraction: mean(dualClipped),
      meanKl: mean(klSum),
      meanRatio: mean(ratioSum),
      approxKl: mean(-logRatioSum),
    },
  };
}

export interface SupervisedLossInput {
  logProbs: ArrayLike<number>;
  mask: ArrayLike<number>;
}

export interface SupervisedLossStats {
  /** Σ mask. */
  tokens: number;
  /** Mean −log π(token) over the mask (the loss itself when tokenCount = Σ mask). */
  meanNll: number;
}

/**
 * The cross-entropy's gradient w.r.t. log π: dL/dlogp = −mask / tokenCount. It does not depend on π, so a
 * supervised update needs no forward pass before its backward pass.
 */
export function supervisedLogProbGradient(mask: ArrayLike<number>, tokenCount?: number): Float32Array {
  const denominator = tokenCountOf(tokenCount, countMask(mask));
  const dLogProbs = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) dLogProbs[i] = -1 / denominator;
  return dLogProbs;
}

/** Cross-entropy on the given tokens: L = −Σ mask·logp / tokenCount, dL/dlogp = −mask / tokenCount. */
export function supervisedTokenLoss(
  input: SupervisedLossInput,
  settings: { tokenCount?: number } = {},
): TokenLoss<SupervisedLossStats> {
  const { logProbs, mask } = input;
  const n = checkLengths({ logProbs, mask });
  const tokens = countMask(mask);
  const denominator = tokenCountOf(settings.tokenCount, tokens);
  const dLogProbs = supervisedLogProbGradient(mask, settings.tokenCount);
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (mask[i] === 0) continue;
    if (!Number.isFinite(logProbs[i])) {
      throw new TrainingInputError(`token ${i} has a non-finite log-probability ${logProbs[i]}`);
    }
    total -= logProbs[i];
  }
  return {
    loss: tokens === 0 ? 0 : total / denominator,
    dLogProbs,
    stats: { tokens, meanNll: tokens === 0 ? 0 : total / tokens },
  };
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}

/** Every array must be as long as the first; returns that length. */
function checkLengths(arrays: Record<string, ArrayLike<number>>): number {
  const [[firstName, first], ...rest] = Object.entries(arrays);
  for (const [name, array] of rest) {
    if (array.length !== first.length) {
      throw new TrainingInputError(`${name} has ${array.length} tokens but ${firstName} has ${first.length}`);
    }
  }
  return first.length;
}

function countMask(mask: ArrayLike<number>): number {
  let tokens = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] !== 0 && mask[i] !== 1)
      throw new TrainingInputError(`mask[${i}] is ${mask[i]}; expected 0 or 1`);
    tokens += mask[i];
  }
  return tokens;
}

function tokenCountOf(tokenCount: number | undefined, tokens: number): number {
  if (tokenCount === undefined) return tokens;
  if (!(tokenCount > 0 && Number.isFinite(tokenCount))) {
    throw new TrainingInputError(`tokenCount must be a positive number, got ${tokenCount}`);
  }
  if (tokenCount < tokens) {
    throw new TrainingInputError(
      `tokenCount ${tokenCount} is smaller than this batch's ${tokens} masked tokens`,
    );
  }
  return tokenCount;
}
