/**
 * The trainer's engine interface: what an automatic-differentiation backend must provide. The update loop
 * (update.ts), the losses (loss.ts) and the optimiser (optimizer.ts) are written against it, so another
 * engine (a GPU trainer, another autodiff library) can take the trainer queue without touching them.
 *
 * A training sequence is one turn: `tokens` = prompt ids followed by generated ids, and the loss falls on
 * tokens[lossStart …] (each predicted from the tokens before it). Per-token values are laid out sequence
 * after sequence, token after token: the layout of `lossTokenCount`.
 */

export interface LossSequence {
  tokens: readonly number[];
  /** Index of the first token that carries a loss (≥ 1: the first token has no prefix to predict it from). */
  lossStart: number;
}

export interface TokenLogProbs {
  /** log π(token | prefix) for every loss token. */
  logProbs: Float32Array;
  /** The entropy of π at the position that predicts each loss token. */
  entropy: Float32Array;
}

export interface TrainerEngine {
  /** Parameter names in a fixed order (Hugging Face names). */
  readonly parameterNames: readonly string[];
  /** The live weights, by name: the optimiser updates these arrays in place. */
  readonly weights: Map<string, Float32Array>;
  /** Forward only; with `weights` given, under those instead of the live ones (e.g. the reference policy). */
  logProbs(
    sequences: readonly LossSequence[],
    weights?: ReadonlyMap<string, Float32Array>,
  ): Promise<TokenLogProbs>;
  /**
   * Forward + backward: adds Σ dObjective/dlogπ · ∂logπ/∂w to `into` (one Float32Array per parameter) and
   * returns the forward's values. `dLogProbs` has the layout of `logProbs`.
   */
  accumulateGradients(
    sequences: readonly LossSequence[],
    dLogProbs: Float32Array,
    into: Map<string, Float32Array>,
  ): Promise<TokenLogProbs>;
  /** Releases sessions and native memory. */
  dispose(): Promise<void>;
}

/** Block lengths are multiples of this (fewer distinct shapes, so fewer sessions to build). */
export const BLOCK_LENGTH_STEP = 32;

/**
 * The padded block a micro-batch of `rows` sequences, the longest `longest` tokens, is run as: rows rounded up to
 * a power of two, length up to a multiple of BLOCK_LENGTH_STEP. Engines pad this way; the planner budgets by it.
 */
export function paddedBlock(rows: number, longest: number): { rows: number; length: number } {
  return {
    rows: 2 ** Math.ceil(Math.log2(Math.max(1, rows))),
    length: Math.ceil(longest / BLOCK_LENGTH_STEP) * BLOCK_LENGTH_STEP,
  };
}

export function lossTokenCount(sequences: readonly LossSequence[]): number {
  let count = 0;
  for (const sequence of sequences) count += sequence.tokens.length - sequence.lossStart;
  return count;
}

export function zeroGradients(engine: Pick<TrainerEngine, 'weights'>): Map<string, Float32Array> {
  const grads = new Map<string, Float32Array>();
  for (const [name, values] of engine.weights) grads.set(name, new Float32Array(values.length));
  return grads;
}
