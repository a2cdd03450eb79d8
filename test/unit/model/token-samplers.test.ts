/**
 * The fused sampling head against the plain reference sampler, at the distribution level: for fixed logits
 * and sampling parameters, many draws from each are compared with the reference's exact distribution and with
 * each other by chi-square tests. Seeds are fixed, so the outcome is the same at every run.
 */
import { FusedSampler } from '../../../lib/model/fused-sampler';
import { Xoshiro128 } from '../../../lib/model/random';
import {
  drawFromDistribution,
  referenceDistribution,
  referenceSampler,
  type KeptToken,
} from '../../../lib/model/reference-sampler';
import type { SamplingParams, TokenChoice, TokenRequest, TokenSampler } from '../../../lib/model/sampling';

/** More than two of the head's draw blocks (512 ids), and not a multiple of them. */
const VOCABULARY = 1300;
const DRAWS = 20_000;
const ROWS_PER_CALL = 500;

/** Seeded logits with a long tail: a few likely ids, many unlikely ones. */
function seededLogits(seed: string): Float32Array {
  const random = Xoshiro128.forLabel(seed, 'logits');
  return Float32Array.from({ length: VOCABULARY }, () => {
    // Sum of uniforms: roughly normal, scaled so the top ids hold most of the mass.
    let sum = 0;
    for (let i = 0; i < 4; i++) sum += random.nextFloat();
    return 3 * (sum - 2) * 1.7;
  });
}

/** `draws` tokens from `sampler` for the same logits, in calls of ROWS_PER_CALL rows with seeded uniforms. */
async function drawMany(
  sampler: TokenSampler,
  logits: Float32Array,
  params: SamplingParams,
  seed: string,
  draws = DRAWS,
): Promise<TokenChoice[]> {
  const random = Xoshiro128.forLabel(seed, 'uniforms');
  const choices: TokenChoice[] = [];
  for (let done = 0; done < draws; done += ROWS_PER_CALL) {
    const batch = new Float32Array(ROWS_PER_CALL * VOCABULARY);
    for (let row = 0; row < ROWS_PER_CALL; row++) batch.set(logits, row * VOCABULARY);
    const requests: TokenRequest[] = Array.from({ length: ROWS_PER_CALL }, () => ({
      params,
      uniforms: [random.nextFloat(), random.nextFloat()] as const,
    }));
    choices.push(...(await sampler.choose(batch, VOCABULARY, requests)));
  }
  return choices;
}

/**
 * Pearson's chi-square of observed counts against expected counts, over bins of expected count ≥ 5 (the
 * rarer ids pooled into one bin); returns the statistic and its degrees of freedom.
 */
function chiSquare(observed: Map<number, number>, expected: Map<number, number>): { statistic: number; df: number } {
  let statistic = 0;
  let bins = 0;
  let pooledObserved = 0;
  let pooledExpected = 0;
  for (const [token, count] of expected) {
    if (count >= 5) {
      statistic += ((observed.get(token) ?? 0) - count) ** 2 / count;
      bins += 1;
    } else {
      pooledObserved += observed.get(token) ?? 0;
      pooledExpected += count;
    }
  }
  if (pooledExpected > 0) {
    statistic += (pooledObserved - pooledExpected) ** 2 / pooledExpected;
    bins += 1;
  }
  return { statistic, df: bins - 1 };
}

/** The chi-square quantile at 1 − 1e-6 (Wilson–Hilferty): a sampler this far off its distribution is wrong. */
function criticalValue(df: number): number {
  const z = 4.753;
  const h = 2 / (9 * df);
  return df * (1 - h + z * Math.sqrt(h)) ** 3;
}

function counts(choices: readonly TokenChoice[]): Map<number, number> {
  const tally = new Map<number, number>();
  for (const { token } of choices) tally.set(token, (tally.get(token) ?? 0) + 1);
  return tally;
}

function expectedCounts(kept: readonly KeptToken[], draws: number): Map<number, number> {
  return new Map(kept.map(({ token, probability }) => [token, probability * draws]));
}

describe('the fused sampling head against the reference sampler', () => {
  let fused: FusedSampler;
  /** A small top-p candidate budget, so top-p sets larger than it take the full-distribution path. */
  let fusedSmallBudget: FusedSampler;
  const logits = seededLogits('token-samplers');

  beforeAll(async () => {
    fused = await FusedSampler.create(VOCABULARY);
    fusedSmallBudget = await FusedSampler.create(VOCABULARY, { nucleusBudget: 8 });
  });
  afterAll(async () => {
    await fused.release();
    await fusedSmallBudget.release();
  });

  it('chooses the most probable id, with log-prob 0, when greedy', async () => {
    const params = { temperature: 0, topK: 0, topP: 1 };
    const [expected] = referenceDistribution(logits, params);
    const choices = await fused.choose(logits, VOCABULARY, [{ params, uniforms: [0.3, 0.7] }]);
    expect(choices).toEqual([{ token: expected.token, logProb: 0 }]);
  });

  it.each([
    ['temperature only', { temperature: 1, topK: 0, topP: 1 }, 'fused'],
    ['a low temperature', { temperature: 0.6, topK: 0, topP: 1 }, 'fused'],
    ['top-k', { temperature: 1, topK: 20, topP: 1 }, 'fused'],
    ['top-p', { temperature: 0.8, topK: 0, topP: 0.9 }, 'fused'],
    ['top-k and top-p', { temperature: 1.2, topK: 40, topP: 0.7 }, 'fused'],
    ['top-p beyond the candidates read (full distribution)', { temperature: 1, topK: 0, topP: 0.95 }, 'small budget'],
  ] as const)('draws from the same distribution with %s', async (_name, params, which) => {
    const sampler = which === 'fused' ? fused : fusedSmallBudget;
    const kept = referenceDistribution(logits, params);
    const keptTokens = new Set(kept.map(({ token }) => token));
    if (which === 'small budget') expect(kept.length).toBeGreaterThan(8);

    const fusedDraws = await drawMany(sampler, logits, params, `fused ${JSON.stringify(params)}`);
    // The reference sorts the vocabulary at every call: its many draws reuse one computed distribution, with
    // the same inverse CDF as its `choose`, which a few hundred draws check.
    const uniforms = Xoshiro128.forLabel(`reference ${JSON.stringify(params)}`, 'uniforms');
    const referenceDraws = Array.from({ length: DRAWS }, () => drawFromDistribution(kept, uniforms.nextFloat()));
    const checked = await drawMany(referenceSampler, logits, params, 'reference choose', ROWS_PER_CALL);
    const again = Xoshiro128.forLabel('reference choose', 'uniforms');
    expect(checked).toEqual(
      checked.map(() => {
        const choice = drawFromDistribution(kept, again.nextFloat());
        again.nextFloat();
        return choice;
      }),
    );

    // The same support, and the same log-probability for each token (float32 softmax against float64).
    const probabilityOf = new Map(kept.map(({ token, probability }) => [token, probability]));
    expect(fusedDraws.filter((choice) => !keptTokens.has(choice.token))).toEqual([]);
    const worstLogProbError = Math.max(
      ...fusedDraws.map((choice) => Math.abs(choice.logProb - Math.log(probabilityOf.get(choice.token) ?? 0))),
    );
    expect(worstLogProbError).toBeLessThan(1e-4);

    // Each sampler against the exact distribution.
    const expected = expectedCounts(kept, DRAWS);
    for (const draws of [fusedDraws, referenceDraws]) {
      const { statistic, df } = chiSquare(counts(draws), expected);
      if (df > 0) expect(statistic).toBeLessThan(criticalValue(df));
    }
    // And against each other: with equal sample sizes, the two-sample statistic is Σ (a − b)² / (a + b).
    const fusedCounts = counts(fusedDraws);
    const referenceCounts = counts(referenceDraws);
    let statistic = 0;
    let bins = 0;
    for (const token of keptTokens) {
      const a = fusedCounts.get(token) ?? 0;
      const b = referenceCounts.get(token) ?? 0;
      if (a + b < 10) continue;
      statistic += (a - b) ** 2 / (a + b);
      bins += 1;
    }
    if (bins > 1) expect(statistic).toBeLessThan(criticalValue(bins - 1));
  });

  it('would notice a sampler off by a little: a temperature 10% too high fails the test', async () => {
    const params = { temperature: 1, topK: 0, topP: 1 };
    const drawn = await drawMany(fused, logits, { ...params, temperature: 1.1 }, 'sensitivity');
    const { statistic, df } = chiSquare(counts(drawn), expectedCounts(referenceDistribution(logits, params), DRAWS));
    expect(statistic).toBeGreaterThan(criticalValue(df));
  });
});
