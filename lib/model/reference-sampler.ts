/**
 * The plain token sampler: the definition of token choice, written for reading, and the oracle the fused
 * sampling head is tested against (test/unit/model/token-samplers.test.ts). Per row:
 *
 *   greedy (T = 0)   the most probable id (the lower id on a tie); log-prob 0
 *   otherwise        p = softmax(logits / T); ids ordered by p, descending (ties by id);
 *                    top-k > 0 keeps the first k; top-p < 1 then keeps the shortest prefix whose mass reaches
 *                    top_p × the mass kept so far; the kept ids are drawn renormalised, by inverse CDF in that
 *                    order with the first uniform number; log-prob = log(p / kept mass)
 *
 * Sorting the whole vocabulary per token is what the fused head avoids; here it is the point.
 */
import type { SamplingParams, TokenChoice, TokenRequest, TokenSampler } from './sampling';

export interface KeptToken {
  token: number;
  /** The token's probability among the kept ids (they sum to 1). */
  probability: number;
}

/** The distribution a row's token is drawn from: the kept ids, in draw order, with their renormalised probabilities. */
export function referenceDistribution(logits: ArrayLike<number>, params: SamplingParams): KeptToken[] {
  const ids = Array.from({ length: logits.length }, (_, id) => id);
  if (params.temperature === 0) {
    const best = ids.reduce((top, id) => (logits[id] > logits[top] ? id : top), 0);
    return [{ token: best, probability: 1 }];
  }
  const scaled = ids.map((id) => logits[id] / params.temperature);
  const max = Math.max(...scaled);
  const weights = scaled.map((value) => Math.exp(value - max));
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  const probability = weights.map((weight) => weight / total);

  let kept = ids.sort((a, b) => probability[b] - probability[a] || a - b);
  if (params.topK > 0) kept = kept.slice(0, params.topK);
  if (params.topP < 1) {
    const target = params.topP * kept.reduce((sum, id) => sum + probability[id], 0);
    let cumulative = 0;
    const last = kept.findIndex((id) => (cumulative += probability[id]) >= target);
    kept = kept.slice(0, last + 1);
  }
  const keptMass = kept.reduce((sum, id) => sum + probability[id], 0);
  return kept.map((token) => ({ token, probability: probability[token] / keptMass }));
}

/** Inverse CDF over the kept ids in order: the first whose cumulative probability exceeds `uniform`. */
export function drawFromDistribution(kept: readonly KeptToken[], uniform: number): TokenChoice {
  let cumulative = 0;
  const drawn = kept.find((entry) => (cumulative += entry.probability) > uniform) ?? kept[kept.length - 1];
  return { token: drawn.token, logProb: Math.log(drawn.probability) };
}

export function referenceChoose(logits: ArrayLike<number>, params: SamplingParams, uniform: number): TokenChoice {
  const kept = referenceDistribution(logits, params);
  return params.temperature === 0 ? { token: kept[0].token, logProb: 0 } : drawFromDistribution(kept, uniform);
}

export const referenceSampler: TokenSampler = {
  choose: async (logits, vocabularySize, requests: readonly TokenRequest[]) =>
    requests.map((request, row) =>
      referenceChoose(logits.subarray(row * vocabularySize, (row + 1) * vocabularySize), request.params, request.uniforms[0]),
    ),
};
