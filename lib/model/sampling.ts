/**
 * Choosing the next token of one row from the sampling head's outputs (sampling-head.ts), and the
 * log-probability of that choice under the distribution it was drawn from:
 *
 *   greedy (temperature 0)   the most probable id; log-prob 0 (the distribution is a point mass)
 *   temperature only         softmax(logits / T) by two-stage inverse CDF: the head drew a block with the
 *                            first uniform number, the second picks the id inside it; log-prob log p
 *   top-k and/or top-p       a draw from the kept ids renormalised; log-prob log(p / kept mass)
 *
 * Top-k keeps the k most probable ids; top-p then keeps the smallest prefix (by probability) whose mass
 * reaches top_p of what is left, as Hugging Face and vLLM do. Kept ids come from the head's sorted
 * candidates (runs of equal probability ordered by id) and are drawn by inverse CDF in that order; a top-p
 * set larger than the candidates the row read is found in the full probabilities instead and drawn in id
 * order. Which of the two a row uses depends only on its own parameters and history (see Sequence), never
 * on the other rows of the batch, so a seed gives the same tokens in any batch.
 */

export interface SamplingParams {
  /** 0 means greedy. */
  temperature: number;
  /** 0 means no top-k limit. */
  topK: number;
  /** 1 means no top-p limit. */
  topP: number;
}

/** The head's outputs for one row. */
export interface RowHeadOutputs {
  /** The first id of the block the head drew, and the probabilities of the block's ids. */
  blockStart: number;
  blockProbabilities: Float32Array;
  /** The row's candidates (at least as many as it needs), most probable first. */
  candidateIds: Int32Array;
  candidateProbabilities: Float32Array;
  /** Probabilities of the whole vocabulary, when they were fetched. */
  probabilities: Float32Array | null;
}

export type RowChoice =
  | { kind: 'token'; token: number; logProb: number; keptCount: number }
  /** The top-p set is larger than the candidates the row read: run again with the full probabilities. */
  | { kind: 'needs-full-distribution' };

export function isGreedy(params: SamplingParams): boolean {
  return params.temperature === 0;
}

/** True for rows whose kept set comes from a top-p search without a top-k bound. */
export function usesOpenNucleus(params: SamplingParams): boolean {
  return !isGreedy(params) && params.topK === 0 && params.topP < 1;
}

/**
 * How many of the head's top candidates a row reads: 1 for greedy, k for top-k, `nucleusBudget` for top-p
 * alone, none for plain temperature sampling.
 */
export function candidatesNeeded(
  params: SamplingParams,
  nucleusBudget: number,
  vocabularySize: number,
): number {
  if (isGreedy(params)) return 1;
  if (params.topK > 0) return Math.min(params.topK, vocabularySize);
  if (params.topP < 1) return Math.min(nucleusBudget, vocabularySize);
  return 0;
}

/** The first `count` candidates, with runs of equal probability put in id order (TopK leaves ties unordered). */
function orderedCandidates(
  head: RowHeadOutputs,
  count: number,
): { ids: Int32Array; probabilities: Float32Array } {
  const ids = head.candidateIds.slice(0, count);
  const probabilities = head.candidateProbabilities.slice(0, count);
  for (let start = 0; start < count;) {
    let end = start + 1;
    while (end < count && probabilities[end] === probabilities[start]) end++;
    if (end - start > 1) ids.subarray(start, end).sort();
    start = end;
  }
  return { ids, probabilities };
}

/** Inverse CDF over the first `count` probabilities, in order: the index drawn (never one of probability 0). */
function inverseCdf(
  probabilities: Float32Array,
  count: number,
  uniform: number,
): { index: number; mass: number } {
  let mass = 0;
  for (let i = 0; i < count; i++) mass += probabilities[i];
  const threshold = uniform * mass;
  let cumulative = 0;
  let index = 0;
  for (let i = 0; i < count; i++) {
    if (probabilities[i] <= 0) continue;
    index = i;
    cumulative += probabilities[i];
    if (cumulative > threshold) break;
  }
  return { index, mass };
}

/** A draw from the first `kept` candidates, renormalised. */
function drawFromPrefix(
  ids: Int32Array,
  probabilities: Float32Array,
  kept: number,
  uniform: number,
): RowChoice {
  const { index, mass } = inverseCdf(probabilities, kept, uniform);
  return {
    kind: 'token',
    token: ids[index],
    logProb: Math.log(probabilities[index] / mass),
    keptCount: kept,
  };
}

/** Stage two of the head's draw: an id of the drawn block. Its probabilities are shares of the whole distribution. */
function drawInBlock(head: RowHeadOutputs, uniform: number): RowChoice {
  const { index } = inverseCdf(head.blockProbabilities, head.blockProbabilities.length, uniform);
  return {
    kind: 'token',
    token: head.blockStart + index,
    logProb: Math.log(head.blockProbabilities[index]),
    keptCount: Number.NaN,
  };
}

/**
 * Chooses the row's token with its two uniform numbers (the first also drew the head's block).
 * `candidateCount` is what `candidatesNeeded` returned for the row (the head may have provided more for
 * other rows; they are ignored).
 */
export function chooseToken(
  params: SamplingParams,
  uniforms: readonly [number, number],
  head: RowHeadOutputs,
  candidateCount: number,
): RowChoice {
  const uniform = uniforms[0];
  if (isGreedy(params)) return { kind: 'token', token: head.candidateIds[0], logProb: 0, keptCount: 1 };
  if (params.topK === 0 && params.topP >= 1) return drawInBlock(head, uniforms[1]);
  const { ids, probabilities } = orderedCandidates(head, candidateCount);
  if (params.topP >= 1) return drawFromPrefix(ids, probabilities, candidateCount, uniform);

  // Top-p over the top-k set (renormalised), or over the whole distribution (mass 1).
  let reference = 1;
  if (params.topK > 0) {
    reference = 0;
    for (let i = 0; i < candidateCount; i++) reference += probabilities[i];
  }
  const target = params.topP * reference;
  let cumulative = 0;
  for (let i = 0; i < candidateCount; i++) {
    cumulative += probabilities[i];
    if (cumulative >= target) return drawFromPrefix(ids, probabilities, i + 1, uniform);
  }
  if (params.topK > 0) return drawFromPrefix(ids, probabilities, candidateCount, uniform);
  if (head.probabilities === null) return { kind: 'needs-full-distribution' };
  return drawFromNucleus(head.probabilities, params.topP, uniform);
}

// Scratch space for the full-distribution search, reused across calls (single-threaded). Between calls every
// bin is zero: a call resets only the bins it touched, so a small vocabulary does not pay for 65,536 bins.
const BIN_COUNT = 1 << 16;
const binMass = new Float64Array(BIN_COUNT);
const binCount = new Uint32Array(BIN_COUNT);
const touchedBins = new Uint32Array(BIN_COUNT);

/**
 * Exact top-p over the whole vocabulary without sorting it. Probabilities are binned by the top 16 bits of
 * their float32 encoding (monotonic for non-negative floats, bins 0.8% wide); bins are walked from the top
 * until the mass reaches top_p, and only the boundary bin is sorted. The kept ids are drawn in two stages,
 * like the head's draw: a bin by its mass (highest first), then an id inside it (the boundary bin's kept
 * ids by probability, other bins' ids in id order). About two passes over the vocabulary.
 */
export function drawFromNucleus(probabilities: Float32Array, topP: number, uniform: number): RowChoice {
  const p = probabilities.byteOffset % 4 === 0 ? probabilities : probabilities.slice();
  const bits = new Uint32Array(p.buffer, p.byteOffset, p.length);
  let touched = 0;
  let highest = 0;
  let total = 0;
  for (let i = 0; i < p.length; i++) {
    const bin = bits[i] >>> 16;
    if (binCount[bin] === 0) touchedBins[touched++] = bin;
    binMass[bin] += p[i];
    binCount[bin] += 1;
    total += p[i];
    if (bin > highest) highest = bin;
  }
  try {
    return nucleusDraw(p, bits, highest, total, topP, uniform);
  } finally {
    for (let k = 0; k < touched; k++) {
      binMass[touchedBins[k]] = 0;
      binCount[touchedBins[k]] = 0;
    }
  }
}

/** The rest of drawFromNucleus, once the bins hold the row's masses and counts. */
function nucleusDraw(
  p: Float32Array,
  bits: Uint32Array,
  highest: number,
  total: number,
  topP: number,
  uniform: number,
): RowChoice {
  const target = topP * total;
  let above = 0;
  let aboveCount = 0;
  let boundary = highest;
  for (; boundary > 0; boundary--) {
    if (binCount[boundary] === 0) continue;
    if (above + binMass[boundary] >= target) break;
    above += binMass[boundary];
    aboveCount += binCount[boundary];
  }
  const members: number[] = [];
  for (let i = 0; i < p.length; i++) if (bits[i] >>> 16 === boundary) members.push(i);
  members.sort((a, b) => p[b] - p[a] || a - b);
  let boundaryKept = 0;
  let boundaryMass = 0;
  while (boundaryKept < members.length) {
    boundaryMass += p[members[boundaryKept]];
    boundaryKept += 1;
    if (above + boundaryMass >= target) break;
  }
  const mass = above + boundaryMass;
  const chosen = (token: number): RowChoice => ({
    kind: 'token',
    token,
    logProb: Math.log(p[token] / mass),
    keptCount: aboveCount + boundaryKept,
  });

  // Stage one: the bin. Stage two: the id inside it.
  let threshold = uniform * mass;
  let bin = highest;
  for (; bin > boundary; bin--) {
    if (binMass[bin] <= 0) continue;
    if (threshold < binMass[bin]) break;
    threshold -= binMass[bin];
  }
  if (bin === boundary) {
    let cumulative = 0;
    let last = members[0];
    for (let k = 0; k < boundaryKept; k++) {
      const id = members[k];
      if (p[id] <= 0) continue;
      last = id;
      cumulative += p[id];
      if (cumulative > threshold) break;
    }
    return chosen(last);
  }
  let cumulative = 0;
  let last = -1;
  for (let i = 0; i < p.length; i++) {
    if (bits[i] >>> 16 !== bin || p[i] <= 0) continue;
    last = i;
    cumulative += p[i];
    if (cumulative > threshold) break;
  }
  return chosen(last);
}

/** One row's request to a token sampler: how to sample, and its two uniform numbers in [0, 1). */
export interface TokenRequest {
  params: SamplingParams;
  uniforms: readonly [number, number];
}

export interface TokenChoice {
  token: number;
  /** Log-probability of the token under the distribution it was drawn from (0 for greedy). */
  logProb: number;
}

/**
 * Chooses each row's next token from its logits. The plain implementation (reference-sampler.ts) is the
 * definition and the test oracle; the fused ONNX sampling head (fused-sampler.ts, the head generation runs)
 * is the optimisation, equal to it in distribution, not draw for draw: it spends the uniform numbers differently.
 */
export interface TokenSampler {
  /** `logits` is [rows, vocabularySize], one row per request. */
  choose(logits: Float32Array, vocabularySize: number, requests: readonly TokenRequest[]): Promise<TokenChoice[]>;
}
