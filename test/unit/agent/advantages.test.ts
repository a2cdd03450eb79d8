import { AdvantageInputError, multiLevelAdvantages, spreadOverTokens } from '../../../lib/agent';

function expectClose(actual: readonly number[], expected: readonly number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, index) => expect(value).toBeCloseTo(expected[index], 12));
}

describe('multiLevelAdvantages', () => {
  const group = [
    { outcome: 1, memoryTurns: [2, 1], finalTurn: 1 },
    { outcome: 0, memoryTurns: [1, 1], finalTurn: 1 },
    { outcome: 0, memoryTurns: [0, 1], finalTurn: 0 },
  ];

  it('mixes outcome and state advantages with alpha = 0.8 (hand-worked)', () => {
    // mean R = 1/3 → A_out = [2/3, −1/3, −1/3]
    // turn 0: r = [2, 1, 0], mean 1 → A_state = [1, 0, −1]
    // turn 1: r = [1, 1, 1] → A_state = 0
    // final: r = [1, 1, 0], mean 2/3 → A_state = [1/3, 1/3, −2/3]
    // A = 0.8 · A_out + 0.2 · A_state
    const [result] = multiLevelAdvantages([group]);
    expectClose(
      result.map((rollout) => rollout.outcome),
      [2 / 3, -1 / 3, -1 / 3],
    );
    expectClose(result[0].memoryTurns, [0.8 * (2 / 3) + 0.2 * 1, 0.8 * (2 / 3)]); // [0.7333…, 0.5333…]
    expectClose(result[1].memoryTurns, [0.8 * (-1 / 3), 0.8 * (-1 / 3)]); // [−0.2666…, −0.2666…]
    expectClose(result[2].memoryTurns, [0.8 * (-1 / 3) - 0.2, 0.8 * (-1 / 3)]); // [−0.4666…, −0.2666…]
    expectClose(
      result.map((rollout) => rollout.finalTurn as number),
      [0.8 * (2 / 3) + 0.2 / 3, 0.8 * (-1 / 3) + 0.2 / 3, 0.8 * (-1 / 3) - 0.2 * (2 / 3)], // [0.6, −0.2, −0.4]
    );
  });

  it('divides by the sample standard deviation when asked', () => {
    // R = [1, 0, 0]: centred [2/3, −1/3, −1/3]; variance (4/9 + 1/9 + 1/9) / (3 − 1) = 1/3; std = 0.57735…
    // turn 0: centred [1, 0, −1]; variance (1 + 0 + 1) / 2 = 1; std 1
    const epsilon = 1e-6;
    const [result] = multiLevelAdvantages([group], { alpha: 0.5, normalizeStd: true, epsilon });
    const outcomeStd = Math.sqrt(1 / 3) + epsilon;
    expectClose(
      result.map((rollout) => rollout.outcome),
      [2 / 3 / outcomeStd, -1 / 3 / outcomeStd, -1 / 3 / outcomeStd],
    );
    expect(result[0].memoryTurns[0]).toBeCloseTo(0.5 * (2 / 3 / outcomeStd) + 0.5 * (1 / (1 + epsilon)), 12);
  });

  it('gives alpha = 1 the MemAgent objective and alpha = 0 the state advantage counted once', () => {
    const [outcomeOnly] = multiLevelAdvantages([group], { alpha: 1 });
    expectClose(outcomeOnly[0].memoryTurns, [2 / 3, 2 / 3]);
    const [stateOnly] = multiLevelAdvantages([group], { alpha: 0 });
    // the released code doubled this term: 2 · 1 = 2 would be its turn-0 value for rollout 0
    expectClose(stateOnly[0].memoryTurns, [1, 0]);
  });

  it('gives a one-rollout group zero advantages, also with std normalisation (no NaN)', () => {
    for (const normalizeStd of [false, true]) {
      const [[only]] = multiLevelAdvantages([[{ outcome: 1, memoryTurns: [3, 2], finalTurn: 1 }]], {
        normalizeStd,
      });
      expect(only).toEqual({ outcome: 0, memoryTurns: [0, 0], finalTurn: 0 });
    }
  });

  it('gives a group with all rewards equal zero advantages, even when the mean rounds', () => {
    // 0.1 + 0.1 + 0.1 = 0.30000000000000004, / 3 ≠ 0.1: an exact check keeps the advantage at 0
    const equal = [0.1, 0.1, 0.1].map((reward) => ({
      outcome: reward,
      memoryTurns: [reward],
      finalTurn: reward,
    }));
    for (const normalizeStd of [false, true]) {
      const [result] = multiLevelAdvantages([equal], { normalizeStd });
      for (const rollout of result) expect(rollout).toEqual({ outcome: 0, memoryTurns: [0], finalTurn: 0 });
    }
  });

  it('baselines each turn over the rollouts that have it (ragged trajectories)', () => {
    // R = [1, 0] → A_out = [0.5, −0.5]
    // turn 0: r = [1, 0] → [0.5, −0.5]; turns 1 and 2: only rollout 0 → 0
    // final turns: only rollout 0 has one → 0
    const [result] = multiLevelAdvantages([
      [
        { outcome: 1, memoryTurns: [1, 1, 1], finalTurn: 1 },
        { outcome: 0, memoryTurns: [0] },
      ],
    ]);
    expectClose(result[0].memoryTurns, [0.8 * 0.5 + 0.2 * 0.5, 0.4, 0.4]);
    expect(result[0].finalTurn).toBeCloseTo(0.4, 12);
    expectClose(result[1].memoryTurns, [-0.5]);
    expect(result[1].finalTurn).toBeUndefined();
  });

  it('treats groups independently', () => {
    const result = multiLevelAdvantages([
      [
        { outcome: 1, memoryTurns: [] },
        { outcome: 0, memoryTurns: [] },
      ],
      [{ outcome: 0, memoryTurns: [] }],
    ]);
    expect(result.map((g) => g.map((rollout) => rollout.outcome))).toEqual([[0.5, -0.5], [0]]);
  });

  it('refuses bad input with a message naming the place', () => {
    expect(() => multiLevelAdvantages([[]])).toThrow(
      'group 0 has no rollouts; every group needs at least one',
    );
    expect(() => multiLevelAdvantages([[{ outcome: 0, memoryTurns: [1, NaN] }]])).toThrow(
      'group 0 rollout 0: state reward of memory turn 1 must be a finite number, got NaN',
    );
    expect(() => multiLevelAdvantages([], { alpha: 1.5 })).toThrow(AdvantageInputError);
    expect(() => multiLevelAdvantages([], { epsilon: 0 })).toThrow(/epsilon/);
  });
});

describe('spreadOverTokens', () => {
  it('puts the turn advantage on each generated token', () => {
    expect(Array.from(spreadOverTokens(0.25, 3))).toEqual([0.25, 0.25, 0.25]);
    expect(spreadOverTokens(1, 0)).toHaveLength(0);
    expect(() => spreadOverTokens(1, -1)).toThrow(AdvantageInputError);
    expect(() => spreadOverTokens(NaN, 1)).toThrow(/advantage must be a finite number/);
  });
});
