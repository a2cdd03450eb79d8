import fc from 'fast-check';
import {
  DEFAULT_BM25_B,
  DEFAULT_BM25_K1,
  MemoryHistory,
  MemoryHistoryError,
  RetrievalOptionsError,
  bm25Idf,
  bm25TermWeight,
  smoothIdf,
  tokenizeWords,
  type MemoryEntry,
  type RecalledMemory,
  type RetrievalOptions,
  type RetrievalScorer,
} from '../../../lib/agent';

/**
 * m1 "red apple red": red×2, apple×1, 3 words, ‖tf‖ = √5
 * m2 "green apple":   green, apple,     2 words, ‖tf‖ = √2
 * m3 "red car":       red, car,         2 words, ‖tf‖ = √2
 */
function threeMemories(): MemoryHistory {
  const history = new MemoryHistory();
  history.add(1, 'Red apple, red!');
  history.add(2, 'green APPLE');
  history.add(3, 'red car');
  return history;
}

const steps = (results: RecalledMemory[]): number[] => results.map((result) => result.step);
const scores = (results: RecalledMemory[]): number[] => results.map((result) => result.score);

describe('MemoryHistory scorers (hand-worked)', () => {
  it('recall: fraction of the query words in the memory; ties go to the more recent step', () => {
    // Q = {red, apple}: m1 has both → 1; m2 has apple → 1/2; m3 has red → 1/2 (m3 is more recent than m2)
    const results = threeMemories().query('red apple', { scorer: 'recall', topK: 3 });
    expect(steps(results)).toEqual([1, 3, 2]);
    expect(scores(results)).toEqual([1, 0.5, 0.5]);
  });

  it('tfidf: cosine of the query tf·idf vector and the memory tf vector', () => {
    // N = 3, df(red) = df(apple) = 2 → idf = ln(4/3) + 1 for both; q = idf·(1, 1), ‖q‖ = idf·√2
    // m1: q·tf = idf·(2 + 1) → 3·idf / (idf·√2·√5) = 3/√10; m2, m3: idf / (idf·√2·√2) = 1/2
    const results = threeMemories().query('red apple', { scorer: 'tfidf', topK: 3 });
    expect(steps(results)).toEqual([1, 3, 2]);
    expect(results[0].score).toBeCloseTo(3 / Math.sqrt(10), 12);
    expect(results[1].score).toBeCloseTo(0.5, 12);
    expect(results[2].score).toBeCloseTo(0.5, 12);

    // "apple car": idf(apple) = ln(4/3) + 1, idf(car) = ln(4/2) + 1 (df 1); ‖q‖ = √(idfA² + idfC²)
    // m3: idfC / (‖q‖·√2); m2: idfA / (‖q‖·√2); m1: idfA / (‖q‖·√5)
    const idfA = Math.log(4 / 3) + 1;
    const idfC = Math.log(2) + 1;
    const norm = Math.hypot(idfA, idfC);
    const ranked = threeMemories().query('apple car', { scorer: 'tfidf', topK: 3 });
    expect(steps(ranked)).toEqual([3, 2, 1]);
    expectClose(scores(ranked), [
      idfC / (norm * Math.SQRT2),
      idfA / (norm * Math.SQRT2),
      idfA / (norm * Math.sqrt(5)),
    ]);
  });

  it('bm25: idf ln(1 + (N − df + 0.5)/(df + 0.5)) and length-normalised tf', () => {
    // "red": N = 3, df = 2 → idf = ln(1 + 1.5/2.5) = ln 1.6; average length 7/3
    // m1: tf 2, 3 words: 2·2.2 / (2 + 1.2·(0.25 + 0.75·3/(7/3))) = 4.4 / 3.457142… = 1.272727…
    // m3: tf 1, 2 words: 2.2 / (1 + 1.2·(0.25 + 0.75·2/(7/3))) = 2.2 / 2.071428… = 1.062068…
    // m2 has no "red": it fills the third place with score 0
    const results = threeMemories().query('red', { scorer: 'bm25', topK: 3 });
    expect(steps(results)).toEqual([1, 3, 2]);
    const idf = Math.log(1.6);
    expectClose(scores(results), [
      idf * (4.4 / (2 + 1.2 * (0.25 + (0.75 * 3) / (7 / 3)))),
      idf * (2.2 / (1 + 1.2 * (0.25 + (0.75 * 2) / (7 / 3)))),
      0,
    ]);
    expect(results[0].score).toBeCloseTo(0.5981864, 6); // ln 1.6 = 0.4700036 × 1.2727273
  });

  it('has the formula helpers the scorers use', () => {
    expect(smoothIdf(3, 2)).toBeCloseTo(Math.log(4 / 3) + 1, 15);
    expect(bm25Idf(3, 3)).toBeCloseTo(Math.log(1 + 0.5 / 3.5), 15); // positive even when every memory has the word
    expect(bm25TermWeight(1, 2, 2, DEFAULT_BM25_K1, DEFAULT_BM25_B)).toBeCloseTo(1, 15); // tf 1 at average length: 2.2/2.2
  });
});

describe('MemoryHistory options and semantics', () => {
  it('recallForStep(t) sees only the steps before t, whatever was added', () => {
    const history = threeMemories();
    // at step 3 the history is {m1, m2}: "car" is in neither, so the most recent one fills with score 0
    expect(history.recallForStep(3, 'car', { scorer: 'recall' })).toEqual([
      { step: 2, text: 'green APPLE', score: 0 },
    ]);
    expect(history.recallForStep(4, 'car', { scorer: 'recall' })).toEqual([
      { step: 3, text: 'red car', score: 1 },
    ]);
    expect(history.recallForStep(1, 'car', { scorer: 'recall' })).toEqual([]);
  });

  it('uses the statistics of the steps before t only', () => {
    // at step 3, N = 2 and df(apple) = 2: idf = ln(1 + 0.5/2.5) = ln 1.2; average length (3 + 2)/2 = 2.5
    // m2: tf 1, 2 words → 2.2 / (1 + 1.2·(0.25 + 0.75·2/2.5)) = 2.2 / 2.02
    const [best] = threeMemories().recallForStep(3, 'apple', { scorer: 'bm25' });
    expect(best.step).toBe(2);
    expect(best.score).toBeCloseTo(Math.log(1.2) * (2.2 / 2.02), 12);
  });

  it('applies the score threshold, with no zero-score filling', () => {
    const history = threeMemories();
    expect(steps(history.query('red apple', { scorer: 'recall', topK: 3, minScore: 0.6 }))).toEqual([1]);
    expect(history.query('zebra', { scorer: 'recall', minScore: 0.01 })).toEqual([]);
    expect(history.query('zebra', { scorer: 'tfidf', topK: 2 })).toEqual([
      { step: 3, text: 'red car', score: 0 },
      { step: 2, text: 'green APPLE', score: 0 },
    ]);
  });

  it('keeps duplicates as separate steps and prefers the most recent', () => {
    const history = new MemoryHistory();
    history.add(0, 'same text');
    history.add(5, 'same text');
    history.add(9, 'other');
    for (const scorer of ['recall', 'tfidf', 'bm25'] as const) {
      expect(steps(history.query('same', { scorer, topK: 2 }))).toEqual([5, 0]);
    }
  });

  it('returns nothing from an empty history, and handles a query without words', () => {
    expect(new MemoryHistory().query('x', { scorer: 'bm25' })).toEqual([]);
    expect(steps(threeMemories().query('?!', { scorer: 'bm25', topK: 2 }))).toEqual([3, 2]);
  });

  it('refuses bad steps and options with clear errors', () => {
    const history = threeMemories();
    expect(() => history.add(3, 'x')).toThrow('steps must increase: step 3 added after step 3');
    expect(() => history.add(1.5, 'x')).toThrow(MemoryHistoryError);
    expect(() => history.query('x', { scorer: 'cosine' as RetrievalScorer })).toThrow(
      'unknown scorer "cosine"; expected one of recall, tfidf, bm25',
    );
    expect(() => history.query('x', { scorer: 'recall', topK: 0 })).toThrow(RetrievalOptionsError);
    expect(() => history.query('x', { scorer: 'bm25', bm25B: 2 })).toThrow(
      'bm25B must be between 0 and 1, got 2',
    );
  });

  it('serialises to its entries and back', () => {
    const history = threeMemories();
    const json = JSON.parse(JSON.stringify(history));
    expect(json).toEqual({
      format: 'rememr1.memory-history',
      version: 1,
      entries: [
        { step: 1, text: 'Red apple, red!' },
        { step: 2, text: 'green APPLE' },
        { step: 3, text: 'red car' },
      ],
    });
    const restored = MemoryHistory.fromJSON(json);
    expect(restored.size).toBe(3);
    expect(restored.lastStep).toBe(3);
    expect(() => MemoryHistory.fromJSON({ format: 'x', version: 1, entries: [] })).toThrow(
      /unsupported memory history format/,
    );
    expect(() => MemoryHistory.fromJSON({ ...json, entries: [{ step: 1 }] })).toThrow(
      'entry 0 of the memory history must be {step, text}',
    );
    expect(() =>
      MemoryHistory.fromJSON({
        ...json,
        entries: [
          { step: 2, text: 'a' },
          { step: 1, text: 'b' },
        ],
      }),
    ).toThrow(/steps must increase/);
  });
});

function expectClose(actual: readonly number[], expected: readonly number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, index) => expect(value).toBeCloseTo(expected[index], 12));
}

/**
 * From-scratch reference: scores every memory of the steps before `beforeStep` straight from the
 * definitions (no index, no pruning), sorts by score then recency, applies the threshold and top-k.
 * Sums run over the query words in sorted order, as the index does, so equal inputs give equal bits.
 */
function fromScratch(
  entries: MemoryEntry[],
  beforeStep: number,
  query: string,
  options: RetrievalOptions,
): RecalledMemory[] {
  const eligible = entries.filter((entry) => entry.step < beforeStep);
  const memories = eligible.map((entry) => {
    const words = tokenizeWords(entry.text);
    const counts = new Map<string, number>();
    for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1);
    let squares = 0;
    for (const count of counts.values()) squares += count * count;
    return { entry, counts, length: words.length, norm: Math.sqrt(squares) };
  });
  const queryCounts = new Map<string, number>();
  for (const word of tokenizeWords(query)) queryCounts.set(word, (queryCounts.get(word) ?? 0) + 1);
  const queryWords = [...queryCounts.keys()].sort();
  const count = memories.length;
  const frequency = (word: string): number => memories.filter((memory) => memory.counts.has(word)).length;
  const present = queryWords.filter((word) => frequency(word) > 0);
  let totalLength = 0;
  for (const memory of memories) totalLength += memory.length;
  const averageLength = totalLength / count;
  const k1 = options.bm25K1 ?? DEFAULT_BM25_K1;
  const b = options.bm25B ?? DEFAULT_BM25_B;
  const weight = (word: string): number =>
    options.scorer === 'tfidf'
      ? (queryCounts.get(word) ?? 0) * smoothIdf(count, frequency(word))
      : bm25Idf(count, frequency(word));
  let squares = 0;
  for (const word of present) squares += weight(word) * weight(word);
  const queryNorm = Math.sqrt(squares);

  const scored = memories.map((memory, index) => {
    let sum = 0;
    for (const word of present) {
      const tf = memory.counts.get(word) ?? 0;
      if (tf === 0) continue;
      if (options.scorer === 'recall') sum += 1;
      else if (options.scorer === 'tfidf') sum += weight(word) * tf;
      else sum += weight(word) * bm25TermWeight(tf, memory.length, averageLength, k1, b);
    }
    const score =
      options.scorer === 'recall'
        ? queryWords.length === 0
          ? 0
          : sum / queryWords.length
        : options.scorer === 'tfidf'
          ? sum === 0
            ? 0
            : sum / (queryNorm * memory.norm)
          : sum;
    return { index, score };
  });
  return scored
    .filter((item) => item.score >= (options.minScore ?? 0))
    .sort((x, y) => y.score - x.score || y.index - x.index)
    .slice(0, options.topK ?? 1)
    .map(({ index, score }) => ({ step: eligible[index].step, text: eligible[index].text, score }));
}

// A small vocabulary makes shared words, ties and duplicates common, which is what stresses the pruning.
const word = fc.constantFrom(
  'red',
  'Apple',
  'car',
  'the',
  'a',
  'blue',
  'sky',
  'Ä',
  '北',
  'x1',
  "don't",
  'RED',
);
const memoryText = fc
  .array(fc.tuple(word, fc.constantFrom(' ', ', ', '\n', '. ')), { maxLength: 12 })
  .map((parts) => parts.map(([w, sep]) => w + sep).join(''));
const historyArbitrary = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 3 }), memoryText), { maxLength: 25 })
  .map((items) => {
    let step = -1;
    return items.map(([gap, text]) => {
      step += gap;
      return { step, text };
    });
  });
const optionsArbitrary: fc.Arbitrary<RetrievalOptions> = fc.record({
  scorer: fc.constantFrom<RetrievalScorer>('recall', 'tfidf', 'bm25'),
  topK: fc.integer({ min: 1, max: 5 }),
  minScore: fc.constantFrom(0, 0, 0.2, 0.5, 1, -1),
  bm25K1: fc.constantFrom(0, 0.5, 1.2, 2),
  bm25B: fc.constantFrom(0, 0.75, 1),
});

describe('MemoryHistory properties', () => {
  it('incremental retrieval equals a from-scratch recomputation, at every point of the history', () => {
    fc.assert(
      fc.property(
        historyArbitrary,
        memoryText,
        optionsArbitrary,
        fc.integer({ min: -1, max: 80 }),
        (entries, query, options, t) => {
          const history = new MemoryHistory();
          entries.forEach((entry, index) => {
            history.add(entry.step, entry.text);
            // after each add, the query over everything held so far
            if (index % 5 === 4) {
              expect(history.query(query, options)).toEqual(
                fromScratch(entries.slice(0, index + 1), Infinity, query, options),
              );
            }
          });
          expect(history.query(query, options)).toEqual(fromScratch(entries, Infinity, query, options));
          expect(history.recallForStep(t, query, options)).toEqual(fromScratch(entries, t, query, options));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('a history restored from its JSON gives identical results', () => {
    fc.assert(
      fc.property(
        historyArbitrary,
        fc.array(fc.tuple(memoryText, optionsArbitrary), { minLength: 1, maxLength: 5 }),
        (entries, queries) => {
          const history = new MemoryHistory();
          for (const entry of entries) history.add(entry.step, entry.text);
          const restored = MemoryHistory.fromJSON(JSON.parse(JSON.stringify(history.toJSON())));
          expect(restored.entries()).toEqual(history.entries());
          for (const [query, options] of queries) {
            expect(restored.query(query, options)).toEqual(history.query(query, options));
            const t = entries.length > 0 ? entries[entries.length >> 1].step : 0;
            expect(restored.recallForStep(t, query, options)).toEqual(
              history.recallForStep(t, query, options),
            );
          }
          // and it keeps growing the same way
          const next = (history.lastStep ?? 0) + 1;
          history.add(next, 'red sky');
          restored.add(next, 'red sky');
          expect(restored.query('red', queries[0][1])).toEqual(history.query('red', queries[0][1]));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps arbitrary Unicode text exactly through JSON', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }), { maxLength: 5 }), (texts) => {
        const history = new MemoryHistory();
        texts.forEach((text, index) => history.add(index, text));
        expect(MemoryHistory.fromJSON(JSON.parse(JSON.stringify(history))).entries()).toEqual(
          history.entries(),
        );
      }),
    );
  });
});
