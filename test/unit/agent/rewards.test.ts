import {
  MetricInputError,
  outcomeReward,
  parseMemoryTurn,
  stateRewards,
  type MemoryTurnRecord,
} from '../../../lib/agent';

const question = 'Where was Alice born?';

/** Builds a record from a raw model response, as the episode does. */
function turn(
  response: string,
  previous: string | null,
  chunk: string,
  retrieved: string | null,
): MemoryTurnRecord {
  return { turn: parseMemoryTurn(response, 'rememr1', previous), chunk, retrieved };
}

describe('outcomeReward', () => {
  it('is the exact match of the final boxed answer, max over gold answers', () => {
    expect(outcomeReward('<thinking>from memory</thinking>\\boxed{paris}', ['Rome', 'Paris'])).toBe(1);
    expect(outcomeReward('\\boxed{Paris, France}', ['Paris'])).toBe(0);
    expect(outcomeReward('Paris', ['Paris'])).toBe(0); // no box, no answer
  });
});

describe('stateRewards', () => {
  it('scores format, memory gain and callback gain per turn (hand-worked trajectory)', () => {
    // m1: the multi-line update (the released patterns saw none) holds "paris": recall 1
    const t1 = turn(
      '<thinking>found it</thinking>\n<update>\nAlice\nborn in Paris\n</update>',
      null,
      'Alice was born in Paris.',
      null,
    );
    // m2 forgets Paris (recall 0); no query
    const t2 = turn('<update>Bob likes tea</update>', t1.turn.memory, 'Bob likes tea.', null);
    // turn 3 is malformed (memory kept: "Bob likes tea"); its query retrieved m1
    const t3 = turn('<update>Carol paints', t2.turn.memory, 'Carol paints.', 'Alice\nborn in Paris');
    const rewards = stateRewards({
      question,
      goldAnswers: ['Paris'],
      memoryTurns: [t1, t2, t3],
      finalText: '\\boxed{Paris}',
    });
    expect(rewards.memoryTurns).toEqual([
      // turn 1: format 1; gain recall(m1) − recall(none) = 1 − 0 = 1; no retrieval → 0; total 2
      { format: 1, memoryGain: 1, callbackGain: 0, total: 2 },
      // turn 2: format 1; gain 0 − 1 = −1; no retrieval; total 0
      { format: 1, memoryGain: -1, callbackGain: 0, total: 0 },
      // turn 3: format 0; memory unchanged → gain 0; context = question + (nothing recalled) + "Bob likes tea"
      // + "Carol paints." has recall 0, with the retrieved m1 it has 1 → callback gain max(0, 1 − 0) = 1; total 1
      { format: 0, memoryGain: 0, callbackGain: 1, total: 1 },
    ]);
    expect(rewards.finalTurn).toEqual({ format: 1, total: 1 });
  });

  it('gives no callback gain when the prompt already showed the answer words', () => {
    // turn 2 shows m1 ("… paris") as its previous memory, so retrieving m1 again adds nothing
    const t1 = turn('<update>born in Paris</update>', null, 'Alice was born in Paris.', null);
    const t2 = turn(
      '<update>born in Paris; Bob likes tea</update>',
      t1.turn.memory,
      'Bob likes tea.',
      'born in Paris',
    );
    const rewards = stateRewards({ question, goldAnswers: ['Paris'], memoryTurns: [t1, t2], finalText: '' });
    expect(rewards.memoryTurns[1]).toEqual({ format: 1, memoryGain: 0, callbackGain: 0, total: 1 });
    // the final turn has no box: format 0
    expect(rewards.finalTurn).toEqual({ format: 0, total: 0 });
  });

  it('uses the recall shown in the prompt (the previous turn’s retrieval) as context', () => {
    // turn 1 retrieves nothing useful; turn 2's prompt shows what turn 1 retrieved ("paris"),
    // so turn 2 retrieving "Paris" again gains nothing
    const t1 = turn('<update>tea</update>', null, 'Bob likes tea.', 'Paris');
    const t2 = turn('<update>tea and cake</update>', t1.turn.memory, 'Cake.', 'Paris');
    const rewards = stateRewards({ question, goldAnswers: ['Paris'], memoryTurns: [t1, t2], finalText: '' });
    // turn 1: context question + "Bob likes tea." has recall 0, with "Paris" 1 → gain 1
    expect(rewards.memoryTurns[0].callbackGain).toBe(1);
    expect(rewards.memoryTurns[1].callbackGain).toBe(0);
  });

  it('takes recall as a max over several gold answers, on whole words', () => {
    // golds "New York City" (3 words) and "NYC"; m1 "new york" → max(2/3, 0) = 2/3
    const t1 = turn('<update>He lives in New York</update>', null, 'c', null);
    const rewards = stateRewards({
      question,
      goldAnswers: ['New York City', 'NYC'],
      memoryTurns: [t1],
      finalText: '',
    });
    expect(rewards.memoryTurns[0].memoryGain).toBeCloseTo(2 / 3, 12);
  });

  it('does not count the first-step placeholder text as memory', () => {
    // gold "no": an invalid first turn keeps no memory (null), so its gain is 0 rather than recall("No memory yet…") = 1
    const t1 = turn('garbage', null, 'c', null);
    const rewards = stateRewards({
      question: 'Is it?',
      goldAnswers: ['no'],
      memoryTurns: [t1],
      finalText: '',
    });
    expect(rewards.memoryTurns[0]).toEqual({ format: 0, memoryGain: 0, callbackGain: 0, total: 0 });
  });

  it('applies weights to the totals only', () => {
    const t1 = turn('<update>Paris</update>', null, 'c', null);
    const rewards = stateRewards(
      { question, goldAnswers: ['Paris'], memoryTurns: [t1], finalText: '\\boxed{x}' },
      { format: 0.5, memoryGain: 2, callbackGain: 1 },
    );
    // 0.5 · 1 + 2 · 1 + 1 · 0 = 2.5; final 0.5 · 1
    expect(rewards.memoryTurns[0]).toEqual({ format: 1, memoryGain: 1, callbackGain: 0, total: 2.5 });
    expect(rewards.finalTurn).toEqual({ format: 1, total: 0.5 });
  });

  it('refuses empty gold answers and non-finite weights', () => {
    expect(() => stateRewards({ question, goldAnswers: [], memoryTurns: [], finalText: '' })).toThrow(
      MetricInputError,
    );
    expect(() =>
      stateRewards(
        { question, goldAnswers: ['x'], memoryTurns: [], finalText: '' },
        { format: NaN, memoryGain: 1, callbackGain: 1 },
      ),
    ).toThrow('state reward weight format must be a finite number, got NaN');
  });
});
