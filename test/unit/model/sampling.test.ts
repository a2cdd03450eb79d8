/** Token choice from the sampling head's outputs, against brute-force definitions. */
import fc from 'fast-check';
import {
  candidatesNeeded,
  chooseToken,
  drawFromNucleus,
  type RowHeadOutputs,
  type SamplingParams,
} from '../../../lib/model/sampling';

/** A head output built from a full distribution the way the head would report it (one block holding it all). */
function headFor(probabilities: number[], candidates: number): RowHeadOutputs {
  const order = probabilities.map((_, id) => id).sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  return {
    blockStart: 0,
    blockProbabilities: Float32Array.from(probabilities),
    candidateIds: Int32Array.from(order.slice(0, candidates)),
    candidateProbabilities: Float32Array.from(order.slice(0, candidates), (id) => probabilities[id]),
    probabilities: Float32Array.from(probabilities),
  };
}

/** The kept set by definition: sort, cut at k, cut at the smallest prefix reaching top_p of the rest. */
function keptByDefinition(probabilities: Float32Array, params: SamplingParams): number[] {
  let order = Array.from(probabilities.keys()).sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  if (params.topK > 0) order = order.slice(0, params.topK);
  if (params.topP < 1) {
    const mass = order.reduce((sum, id) => sum + probabilities[id], 0);
    let cumulative = 0;
    const cut = order.findIndex((id) => (cumulative += probabilities[id]) >= params.topP * mass);
    order = order.slice(0, cut + 1);
  }
  return order;
}

const normalised = (weights: number[]) => {
  const total = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => Math.fround(w / total));
};

describe('choosing a token', () => {
  const distribution = normalised([5, 1, 9, 3, 3, 0, 2, 7]);

  it('greedy takes the most probable id with log-prob 0', () => {
    expect(
      chooseToken({ temperature: 0, topK: 0, topP: 1 }, [0.99, 0.5], headFor(distribution, 1), 1),
    ).toEqual({ kind: 'token', token: 2, logProb: 0, keptCount: 1 });
  });

  it('plain temperature sampling draws inside the head block with the second number, with log p', () => {
    const head = { ...headFor(distribution, 1), blockStart: 256 };
    const counts = new Map<number, number>();
    const draws = 20_000;
    for (let i = 0; i < draws; i++) {
      const choice = chooseToken({ temperature: 1, topK: 0, topP: 1 }, [0.123, (i + 0.5) / draws], head, 1);
      if (choice.kind !== 'token') throw new Error('expected a token');
      expect(choice.logProb).toBeCloseTo(Math.log(distribution[choice.token - 256]), 12);
      counts.set(choice.token - 256, (counts.get(choice.token - 256) ?? 0) + 1);
    }
    distribution.forEach((p, id) => expect((counts.get(id) ?? 0) / draws).toBeCloseTo(p, 3));
  });

  it.each([
    [{ temperature: 1, topK: 3, topP: 1 }],
    [{ temperature: 1, topK: 0, topP: 0.6 }],
    [{ temperature: 1, topK: 5, topP: 0.7 }],
    [{ temperature: 1, topK: 0, topP: 1e-9 }],
  ])(
    'draws the kept ids in proportion to their probability, with log-probs of the renormalised distribution (%p)',
    (params) => {
      const kept = keptByDefinition(Float32Array.from(distribution), params);
      const mass = kept.reduce((sum, id) => sum + distribution[id], 0);
      const counts = new Map<number, number>();
      const draws = 20_000;
      const count = candidatesNeeded(params, 8, 8);
      const head = headFor(distribution, count);
      for (let i = 0; i < draws; i++) {
        const choice = chooseToken(params, [(i + 0.5) / draws, 0.5], head, count);
        if (choice.kind !== 'token') throw new Error('expected a token');
        expect(kept).toContain(choice.token);
        expect(choice.logProb).toBeCloseTo(Math.log(distribution[choice.token] / mass), 6);
        counts.set(choice.token, (counts.get(choice.token) ?? 0) + 1);
      }
      for (const id of kept) expect((counts.get(id) ?? 0) / draws).toBeCloseTo(distribution[id] / mass, 3);
    },
  );

  it('asks for the full distribution when a top-p set is larger than the candidates it read', () => {
    const head = { ...headFor(distribution, 2), probabilities: null };
    expect(chooseToken({ temperature: 1, topK: 0, topP: 0.9 }, [0.5, 0.5], head, 2)).toEqual({
      kind: 'needs-full-distribution',
    });
    const withFull = chooseToken(
      { temperature: 1, topK: 0, topP: 0.9 },
      [0.5, 0.5],
      headFor(distribution, 2),
      2,
    );
    expect(withFull.kind).toBe('token');
  });

  it('orders candidates of equal probability by id', () => {
    const tied = normalised([1, 4, 4, 4, 1]);
    const head = headFor(tied, 3);
    head.candidateIds.reverse();
    const first = chooseToken({ temperature: 1, topK: 3, topP: 1 }, [0, 0], head, 3);
    expect(first).toMatchObject({ token: 1 });
  });

  it('reads 1 candidate for greedy, none for plain sampling, k for top-k, the budget for top-p alone', () => {
    expect(candidatesNeeded({ temperature: 0, topK: 50, topP: 0.5 }, 256, 1000)).toBe(1);
    expect(candidatesNeeded({ temperature: 1, topK: 0, topP: 1 }, 256, 1000)).toBe(0);
    expect(candidatesNeeded({ temperature: 1, topK: 50, topP: 0.5 }, 256, 1000)).toBe(50);
    expect(candidatesNeeded({ temperature: 1, topK: 5000, topP: 1 }, 256, 1000)).toBe(1000);
    expect(candidatesNeeded({ temperature: 1, topK: 0, topP: 0.9 }, 256, 1000)).toBe(256);
  });
});

describe('top-p over the full distribution', () => {
  const weights = fc.array(
    fc.oneof(fc.constant(0), fc.constant(1), fc.float({ min: Math.fround(1e-6), max: 1000, noNaN: true })),
    { minLength: 1, maxLength: 300 },
  );

  it('keeps exactly the set the definition keeps and draws only from it', () => {
    fc.assert(
      fc.property(
        weights,
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (raw, topP, uniform) => {
          fc.pre(raw.some((w) => w > 0));
          const probabilities = Float32Array.from(normalised(raw));
          const expected = keptByDefinition(probabilities, { temperature: 1, topK: 0, topP });
          const choice = drawFromNucleus(probabilities, topP, uniform);
          if (choice.kind !== 'token') return false;
          const keptMass = expected.reduce((sum, id) => sum + probabilities[id], 0);
          const zeros = expected.filter((id) => probabilities[id] === 0).length;
          // The definition may keep zero-probability ids when top_p is not reached before them; they are never drawn.
          expect(choice.keptCount).toBeGreaterThanOrEqual(expected.length - zeros);
          expect(choice.keptCount).toBeLessThanOrEqual(expected.length);
          expect(expected).toContain(choice.token);
          expect(probabilities[choice.token]).toBeGreaterThan(0);
          expect(choice.logProb).toBeCloseTo(Math.log(probabilities[choice.token] / keptMass), 5);
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });

  it('draws each kept id in proportion to its probability', () => {
    const probabilities = Float32Array.from(normalised([8, 1, 1, 6, 0, 3, 3, 2, 5]));
    const kept = keptByDefinition(probabilities, { temperature: 1, topK: 0, topP: 0.75 });
    const mass = kept.reduce((sum, id) => sum + probabilities[id], 0);
    const counts = new Map<number, number>();
    const draws = 20_000;
    for (let i = 0; i < draws; i++) {
      const choice = drawFromNucleus(probabilities, 0.75, (i + 0.5) / draws);
      if (choice.kind === 'token') counts.set(choice.token, (counts.get(choice.token) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([...kept].sort());
    for (const id of kept) expect((counts.get(id) ?? 0) / draws).toBeCloseTo(probabilities[id] / mass, 3);
  });
});
