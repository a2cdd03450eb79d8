import { Xoshiro128 } from '../../../lib/model/random';
import { TrainingInputError } from '../../../lib/training/errors';
import { grpoTokenLoss, supervisedTokenLoss, type GrpoLossInput } from '../../../lib/training/loss';

/** ε = 0.2, c = 3, no KL: the policy-gradient branches alone. */
const PG_ONLY = { clipRatio: 0.2, dualClip: 3, klCoef: 0 };

/** One token with old log-prob 0, so logp = ln r. */
function oneToken(ratio: number, advantage: number): GrpoLossInput {
  return {
    logProbs: [Math.log(ratio)],
    oldLogProbs: [0],
    advantages: [advantage],
    mask: [1],
  };
}

describe('grpoTokenLoss: the policy-gradient branches (hand-worked, tokenCount 1)', () => {
  it('A > 0 inside the clip range: loss −A·r, gradient −A·r', () => {
    // r = 1.1, A = 2: pg1 = −2.2, pg2 = −2·clip(1.1, 0.8, 1.2) = −2.2 → max −2.2, unclipped; d/dlogp = −A·r = −2.2
    const { loss, dLogProbs, stats } = grpoTokenLoss(oneToken(1.1, 2), PG_ONLY);
    expect(loss).toBeCloseTo(-2.2, 12);
    expect(dLogProbs[0]).toBeCloseTo(-2.2, 6);
    expect(stats).toMatchObject({ tokens: 1, clipFraction: 0, dualClipFraction: 0 });
    expect(stats.meanRatio).toBeCloseTo(1.1, 12);
    expect(stats.approxKl).toBeCloseTo(-Math.log(1.1), 12);
  });

  it('A > 0 above 1 + ε: the clipped constant −A·(1 + ε), gradient 0', () => {
    // r = 1.5, A = 1: pg1 = −1.5, pg2 = −1·1.2 = −1.2 → max −1.2 (clipped branch), no gradient
    const { loss, dLogProbs, stats } = grpoTokenLoss(oneToken(1.5, 1), PG_ONLY);
    expect(loss).toBeCloseTo(-1.2, 12);
    expect(dLogProbs[0]).toBe(0);
    expect(stats.clipFraction).toBe(1);
    expect(stats.dualClipFraction).toBe(0);
  });

  it('A > 0 below 1 − ε stays unclipped (the pessimistic bound is the ratio itself)', () => {
    // r = 0.5, A = 1: pg1 = −0.5, pg2 = −0.8 → max −0.5 (unclipped); gradient −A·r = −0.5
    const { loss, dLogProbs, stats } = grpoTokenLoss(oneToken(0.5, 1), PG_ONLY);
    expect(loss).toBeCloseTo(-0.5, 12);
    expect(dLogProbs[0]).toBeCloseTo(-0.5, 6);
    expect(stats.clipFraction).toBe(0);
  });

  it('A < 0 below 1 − ε: the clipped constant −A·(1 − ε), gradient 0', () => {
    // r = 0.5, A = −1: pg1 = 0.5, pg2 = 1·0.8 = 0.8 → max 0.8 (clipped); dual cap −A·c = 3 > 0.8 inactive
    const { loss, dLogProbs, stats } = grpoTokenLoss(oneToken(0.5, -1), PG_ONLY);
    expect(loss).toBeCloseTo(0.8, 12);
    expect(dLogProbs[0]).toBe(0);
    expect(stats).toMatchObject({ clipFraction: 1, dualClipFraction: 0 });
  });

  it('A < 0 between 1 + ε and c stays unclipped', () => {
    // r = 2, A = −1: pg1 = 2, pg2 = 1.2 → max 2; dual cap 3 > 2 inactive; gradient −A·r = 2
    const { loss, dLogProbs, stats } = grpoTokenLoss(oneToken(2, -1), PG_ONLY);
    expect(loss).toBeCloseTo(2, 12);
    expect(dLogProbs[0]).toBeCloseTo(2, 6);
    expect(stats).toMatchObject({ clipFraction: 0, dualClipFraction: 0 });
  });

  it('A < 0 above c: the dual clip caps the loss at −A·c, gradient 0', () => {
    // r = 4, A = −0.5: pg1 = 2, pg2 = 0.5·1.2 = 0.6 → max 2; dual cap −A·c = 1.5 < 2 → 1.5, no gradient
    const { loss, dLogProbs, stats } = grpoTokenLoss(oneToken(4, -0.5), PG_ONLY);
    expect(loss).toBeCloseTo(1.5, 12);
    expect(dLogProbs[0]).toBe(0);
    expect(stats).toMatchObject({ clipFraction: 0, dualClipFraction: 1 });
  });

  it('takes separate low and high clip ratios', () => {
    // r = 1.25, A = 1, ε_high = 0.28: pg1 = −1.25, pg2 = −1.25 → unclipped (with ε = 0.2 it would be −1.2)
    expect(grpoTokenLoss(oneToken(1.25, 1), { ...PG_ONLY, clipRatioHigh: 0.28 }).loss).toBeCloseTo(-1.25, 12);
    // r = 0.75, A = −1, ε_low = 0.1: pg2 = 1·0.9 = 0.9 > pg1 = 0.75 → clipped
    expect(grpoTokenLoss(oneToken(0.75, -1), { ...PG_ONLY, clipRatioLow: 0.1 }).loss).toBeCloseTo(0.9, 12);
  });
});

describe('grpoTokenLoss: the k3 KL term', () => {
  // A = 0 and logp = logp_old, so only β·kl remains; β = 0.1.
  function klOnly(d: number): GrpoLossInput {
    return { logProbs: [-1], oldLogProbs: [-1], refLogProbs: [-1 + d], advantages: [0], mask: [1] };
  }

  it('d = ln 2: kl = 2 − ln 2 − 1 = 0.30685…, dkl/dlogp = 1 − 2 = −1', () => {
    const { loss, dLogProbs, stats } = grpoTokenLoss(klOnly(Math.LN2), { klCoef: 0.1 });
    expect(loss).toBeCloseTo(0.1 * (1 - Math.LN2), 12); // 0.030685…
    expect(dLogProbs[0]).toBeCloseTo(-0.1, 7);
    expect(stats.meanKl).toBeCloseTo(1 - Math.LN2, 12);
  });

  it('d = −ln 2: kl = 0.5 + ln 2 − 1 = 0.19315…, dkl/dlogp = 1 − 0.5 = 0.5', () => {
    const { loss, dLogProbs } = grpoTokenLoss(klOnly(-Math.LN2), { klCoef: 0.1 });
    expect(loss).toBeCloseTo(0.1 * (Math.LN2 - 0.5), 12);
    expect(dLogProbs[0]).toBeCloseTo(0.05, 7);
  });

  it('clamps kl at 10 (as verl does) with no gradient there', () => {
    // d = 15: e^15 − 16 ≈ 3.3e6 → 10
    const { loss, dLogProbs, stats } = grpoTokenLoss(klOnly(15), { klCoef: 0.1 });
    expect(loss).toBeCloseTo(1, 12);
    expect(dLogProbs[0]).toBe(0);
    expect(stats.meanKl).toBe(10);
  });

  it('adds β·kl to the policy-gradient term', () => {
    // r = 1.1, A = 2 → pg = −2.2, d/dlogp −2.2; d = ln 2 → kl = 0.30685, dkl/dlogp = −1; β = 0.001
    const input = { ...oneToken(1.1, 2), refLogProbs: [Math.log(1.1) + Math.LN2] };
    const { loss, dLogProbs } = grpoTokenLoss(input, { clipRatio: 0.2, dualClip: 3, klCoef: 0.001 });
    expect(loss).toBeCloseTo(-2.2 + 0.001 * (1 - Math.LN2), 12);
    expect(dLogProbs[0]).toBeCloseTo(-2.2 - 0.001, 6);
  });
});

describe('grpoTokenLoss: token-mean aggregation', () => {
  // The four hand-worked tokens above plus one padding token holding garbage.
  const batch: GrpoLossInput = {
    logProbs: [Math.log(1.1), Math.log(1.5), Number.NaN, Math.log(0.5), Math.log(4)],
    oldLogProbs: [0, 0, 0, 0, 0],
    advantages: [2, 1, 7, -1, -0.5],
    mask: [1, 1, 0, 1, 1],
  };

  it('divides by Σ mask and ignores masked tokens', () => {
    // (−2.2 − 1.2 + 0.8 + 1.5) / 4 = −1.1 / 4 = −0.275; gradients (−2.2, 0, 0, 0, 0) / 4
    const { loss, dLogProbs, stats } = grpoTokenLoss(batch, PG_ONLY);
    expect(loss).toBeCloseTo(-0.275, 12);
    expect(dLogProbs[0]).toBeCloseTo(-0.55, 6);
    expect(Array.from(dLogProbs.subarray(1))).toEqual([0, 0, 0, 0]);
    expect(stats.tokens).toBe(4);
    expect(stats.clipFraction).toBe(0.5); // tokens 1 and 3
    expect(stats.dualClipFraction).toBe(0.25); // token 4
    expect(stats.meanRatio).toBeCloseTo((1.1 + 1.5 + 0.5 + 4) / 4, 12);
  });

  it('with a shared tokenCount, micro-batches add up to the mini-batch', () => {
    const whole = grpoTokenLoss(batch, PG_ONLY);
    const part = (from: number, to: number): GrpoLossInput => ({
      logProbs: Array.from(batch.logProbs).slice(from, to),
      oldLogProbs: Array.from(batch.oldLogProbs).slice(from, to),
      advantages: Array.from(batch.advantages).slice(from, to),
      mask: Array.from(batch.mask).slice(from, to),
    });
    const first = grpoTokenLoss(part(0, 2), { ...PG_ONLY, tokenCount: 4 });
    const second = grpoTokenLoss(part(2, 5), { ...PG_ONLY, tokenCount: 4 });
    expect(first.loss + second.loss).toBeCloseTo(whole.loss, 12);
    expect([...first.dLogProbs, ...second.dLogProbs]).toEqual([...whole.dLogProbs]);
  });

  it('gives 0 and no NaN for a batch with no masked-in tokens', () => {
    const { loss, dLogProbs, stats } = grpoTokenLoss({ ...batch, mask: [0, 0, 0, 0, 0] }, PG_ONLY);
    expect(loss).toBe(0);
    expect(Array.from(dLogProbs)).toEqual([0, 0, 0, 0, 0]);
    expect(stats).toEqual({
      tokens: 0,
      clipFraction: 0,
      dualClipFraction: 0,
      meanKl: 0,
      meanRatio: 0,
      approxKl: 0,
    });
  });

  it('stays finite for a token whose log-prob underflowed to −∞ (the log-ratio is clamped at −20)', () => {
    const input = { ...oneToken(1, 1), logProbs: [-Infinity], refLogProbs: [-1] };
    const { loss, dLogProbs } = grpoTokenLoss(input, { klCoef: 0.001 });
    // r = e^−20, A = 1 → pg = −e^−20 (unclipped, but the clamp stops the gradient); kl clamped to 10
    expect(loss).toBeCloseTo(-Math.exp(-20) + 0.01, 12);
    expect(dLogProbs[0]).toBe(0);
  });
});

describe('grpoTokenLoss: gradients against central finite differences', () => {
  it('matches on random inputs covering every branch (float64)', () => {
    const random = Xoshiro128.forLabel('loss-test', 'finite-differences');
    const uniform = (low: number, high: number): number => low + (high - low) * random.nextFloat();
    const settings = { clipRatioLow: 0.2, clipRatioHigh: 0.28, dualClip: 3, klCoef: 0.05 };
    const boundaries = [Math.log(0.8), Math.log(1.28), Math.log(3)];
    const n = 200;
    const input = {
      logProbs: new Float64Array(n),
      oldLogProbs: new Float64Array(n),
      refLogProbs: new Float64Array(n),
      advantages: new Float64Array(n),
      mask: new Float64Array(n),
    };
    for (let i = 0; i < n; i++) {
      let logRatio = uniform(-1.5, 1.5);
      // Keep away from the kinks, where the loss is not differentiable.
      while (boundaries.some((boundary) => Math.abs(logRatio - boundary) < 1e-3))
        logRatio = uniform(-1.5, 1.5);
      input.oldLogProbs[i] = uniform(-4, -0.1);
      input.logProbs[i] = input.oldLogProbs[i] + logRatio;
      input.refLogProbs[i] = input.logProbs[i] + uniform(-2, 2); // k3 ≤ e² − 3 < 10: no clamp
      input.advantages[i] = uniform(-2, 2);
      input.mask[i] = random.nextFloat() < 0.8 ? 1 : 0;
    }
    const tokenCount = input.mask.reduce((sum, m) => sum + m, 0) + 5;
    const result = grpoTokenLoss(input, { ...settings, tokenCount });
    expect(result.stats.clipFraction).toBeGreaterThan(0);
    expect(result.stats.dualClipFraction).toBeGreaterThan(0);

    const h = 1e-6;
    for (let i = 0; i < n; i++) {
      const at = (delta: number): number => {
        const logProbs = Float64Array.from(input.logProbs);
        logProbs[i] += delta;
        return grpoTokenLoss({ ...input, logProbs }, { ...settings, tokenCount }).loss;
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      expect(Math.abs(result.dLogProbs[i] - numeric)).toBeLessThan(1e-7 + 1e-6 * Math.abs(numeric));
    }
  });
});

describe('grpoTokenLoss: rejected input', () => {
  it('names the mismatch, the missing reference, a bad mask, setting or value', () => {
    const good = oneToken(1.1, 1);
    expect(() => grpoTokenLoss({ ...good, advantages: [1, 2] }, PG_ONLY)).toThrow(
      new TrainingInputError('advantages has 2 tokens but logProbs has 1'),
    );
    expect(() => grpoTokenLoss(good, { klCoef: 0.001 })).toThrow(/refLogProbs are required/);
    expect(() => grpoTokenLoss({ ...good, mask: [0.5] }, PG_ONLY)).toThrow(/mask\[0\] is 0.5/);
    expect(() => grpoTokenLoss(good, { ...PG_ONLY, dualClip: 1 })).toThrow(/dualClip must be greater than 1/);
    expect(() => grpoTokenLoss(good, { ...PG_ONLY, tokenCount: 0 })).toThrow(/tokenCount must be a positive/);
    expect(() => grpoTokenLoss({ ...good, advantages: [Number.NaN] }, PG_ONLY)).toThrow(TrainingInputError);
    expect(() => grpoTokenLoss({ ...good, advantages: [Number.NaN] }, PG_ONLY)).toThrow(
      /token 0 has a non-finite/,
    );
  });
});

describe('supervisedTokenLoss', () => {
  it('is the token-mean negative log-likelihood', () => {
    // −(−1 − 3) / 2 = 2; dL/dlogp = −1/2 on masked-in tokens
    const { loss, dLogProbs, stats } = supervisedTokenLoss({ logProbs: [-1, -2, -3], mask: [1, 0, 1] });
    expect(loss).toBe(2);
    expect(Array.from(dLogProbs)).toEqual([-0.5, 0, -0.5]);
    expect(stats).toEqual({ tokens: 2, meanNll: 2 });
  });

  it('divides by the given tokenCount', () => {
    // 4 / 4 = 1; dL/dlogp = −1/4
    const { loss, dLogProbs } = supervisedTokenLoss(
      { logProbs: [-1, -2, -3], mask: [1, 0, 1] },
      { tokenCount: 4 },
    );
    expect(loss).toBe(1);
    expect(Array.from(dLogProbs)).toEqual([-0.25, 0, -0.25]);
  });

  it('rejects mismatched lengths and non-finite log-probs', () => {
    expect(() => supervisedTokenLoss({ logProbs: [-1], mask: [1, 1] })).toThrow(TrainingInputError);
    expect(() => supervisedTokenLoss({ logProbs: [-Infinity], mask: [1] })).toThrow(/token 0/);
  });
});
