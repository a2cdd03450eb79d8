/**
 * Callback retrieval cost per query at 10, 100, 1,000 and 10,000 memories, for each scorer of the
 * incremental index (lib/agent/retrieval.ts), against the released code's approach run in the same
 * process: a TF-IDF vectoriser re-fitted on the whole history at every call (smoothed idf, idf on both
 * sides, L2-normalised, cosine, arg-max), re-tokenising every memory as a re-fit does.
 *
 *   npx tsx bench/retrieval.ts [--rounds 3]
 *
 * Workload (seeded, the same at every size): memories of 150 words drawn from a Zipf(1) vocabulary of
 * 30,000 words, so the commonest words are in nearly every memory. Each of 16 fixed queries holds two
 * entity names planted in exactly two memories (one memory holds both), one word of middling frequency
 * and four of the commonest words; a second set of queries holds only words found in nearly every
 * memory, the case the pruning cannot shorten. Every figure is the median of the rounds.
 */
import {
  MemoryHistory,
  RETRIEVAL_SCORERS,
  smoothIdf,
  tokenizeWords,
  type RetrievalScorer,
} from '../lib/agent';
import { Xoshiro128 } from '../lib/model/random';

const SIZES = [10, 100, 1_000, 10_000];
const WORDS_PER_MEMORY = 150;
const VOCABULARY_SIZE = 30_000;
const QUERY_COUNT = 16;
/**
 * Assumed time of one model step (one memory turn), not measured here: 512 generated tokens at the
 * 10.6 ms per decoding step measured for the project's 27M-parameter model at batch 8 (NOTES.md).
 * The released setting (a 7B model, up to 2,048 new tokens a turn) takes longer, so the fractions
 * below are upper bounds for it.
 */
const MODEL_STEP_MICROSECONDS = 512 * 10.6 * 1000;

function parseRounds(argv: string[]): number {
  const at = argv.indexOf('--rounds');
  if (at < 0) return 3;
  const rounds = Number(argv[at + 1]);
  if (!Number.isSafeInteger(rounds) || rounds < 1) {
    throw new Error(`--rounds needs a whole number ≥ 1, got ${JSON.stringify(argv[at + 1])}`);
  }
  return rounds;
}

const SYLLABLES = [
  'ka',
  'lo',
  'mi',
  'ne',
  'ru',
  'sa',
  'ti',
  'vo',
  'ze',
  'ba',
  'do',
  'fu',
  'gi',
  'ha',
  'je',
  'po',
];

function syntheticWord(index: number, prefix: string): string {
  let word = prefix;
  let rest = index;
  do {
    word += SYLLABLES[rest % SYLLABLES.length];
    rest = Math.floor(rest / SYLLABLES.length);
  } while (rest > 0);
  return word;
}

class Workload {
  private readonly random = new Xoshiro128(20250923n);
  private readonly vocabulary = Array.from({ length: VOCABULARY_SIZE }, (_, rank) => syntheticWord(rank, ''));
  private readonly cumulative: Float64Array;

  constructor() {
    this.cumulative = new Float64Array(VOCABULARY_SIZE);
    let total = 0;
    for (let rank = 0; rank < VOCABULARY_SIZE; rank += 1) {
      total += 1 / (rank + 1);
      this.cumulative[rank] = total;
    }
  }

  private zipfWord(): string {
    const target = this.random.nextFloat() * this.cumulative[VOCABULARY_SIZE - 1];
    let low = 0;
    let high = VOCABULARY_SIZE - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.cumulative[middle] < target) low = middle + 1;
      else high = middle;
    }
    return this.vocabulary[low];
  }

  private below(limit: number): number {
    return Math.floor(this.random.nextFloat() * limit);
  }

  memoryText(): string {
    const words: string[] = [];
    for (let index = 0; index < WORDS_PER_MEMORY; index += 1) {
      words.push(index % 12 === 11 ? `${this.zipfWord()}.` : this.zipfWord());
    }
    return words.join(' ');
  }

  /** Fixed queries: two planted entities, one middling word, four common words. */
  plantedQueries(): Array<{ text: string; entities: [string, string] }> {
    return Array.from({ length: QUERY_COUNT }, (_, index) => {
      const entities: [string, string] = [syntheticWord(index, 'qx'), syntheticWord(index, 'qy')];
      const common = Array.from({ length: 4 }, () => this.vocabulary[this.below(10)]);
      const middling = this.vocabulary[500 + this.below(1500)];
      return {
        text: [entities[0], common[0], middling, common[1], entities[1], common[2], common[3]].join(' '),
        entities,
      };
    });
  }

  /** Queries of common words only: nearly every memory matches every word. */
  commonQueries(): string[] {
    return Array.from({ length: QUERY_COUNT }, () =>
      Array.from({ length: 6 }, () => this.vocabulary[this.below(10)]).join(' '),
    );
  }

  /** `count` memories, with each query's two entities planted in two of them (one holds both). */
  history(
    count: number,
    queries: ReadonlyArray<{ entities: [string, string] }>,
  ): { texts: string[]; targets: number[] } {
    const texts = Array.from({ length: count }, () => this.memoryText());
    const targets = queries.map(({ entities }) => {
      const target = this.below(count);
      const other = this.below(count);
      texts[target] += ` ${entities[0]} ${entities[1]}.`;
      texts[other] += ` ${entities[this.below(2)]}.`;
      return target;
    });
    return { texts, targets };
  }
}

/** The released retriever: fit TF-IDF on the whole history, then score the query; top-1 by arg-max. */
function refitTfidfTop1(history: readonly string[] | readonly string[][], query: string): number {
  const documents = history.map((memory) => (typeof memory === 'string' ? tokenizeWords(memory) : memory));
  const documentFrequency = new Map<string, number>();
  const counts = documents.map((words) => {
    const tf = new Map<string, number>();
    for (const word of words) tf.set(word, (tf.get(word) ?? 0) + 1);
    for (const word of tf.keys()) documentFrequency.set(word, (documentFrequency.get(word) ?? 0) + 1);
    return tf;
  });
  const idf = new Map<string, number>();
  for (const [word, df] of documentFrequency) idf.set(word, smoothIdf(documents.length, df));
  const norms = counts.map((tf) => {
    let squares = 0;
    for (const [word, count] of tf) squares += (count * (idf.get(word) ?? 0)) ** 2;
    return Math.sqrt(squares);
  });
  const queryWeights = new Map<string, number>();
  for (const word of tokenizeWords(query)) {
    if (idf.has(word)) queryWeights.set(word, (queryWeights.get(word) ?? 0) + 1);
  }
  let best = 0;
  let bestScore = -1;
  counts.forEach((tf, index) => {
    let dot = 0;
    for (const [word, count] of queryWeights) dot += count * (idf.get(word) ?? 0) ** 2 * (tf.get(word) ?? 0);
    const score = norms[index] === 0 ? 0 : dot / norms[index];
    if (score > bestScore) {
      bestScore = score;
      best = index;
    }
  });
  return best;
}

function microseconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Mean µs per call of `run` over the queries, repeated until at least `budgetMs` have passed. */
function timePerQuery(
  queries: readonly string[],
  run: (query: string) => number,
  budgetMs: number,
  minCalls: number,
): number {
  let calls = 0;
  let sink = 0;
  const start = process.hrtime.bigint();
  while (calls < minCalls || microseconds(start) < budgetMs * 1000) {
    sink += run(queries[calls % queries.length]);
    calls += 1;
  }
  const elapsed = microseconds(start);
  if (Number.isNaN(sink)) throw new Error('unreachable: keeps the results alive');
  return elapsed / calls;
}

interface SizeResult {
  addMicros: number;
  planted: Record<RetrievalScorer, number>;
  common: Record<RetrievalScorer, number>;
  baseline: number;
  baselinePretokenised: number;
  found: Record<RetrievalScorer, number>;
  agreement: number;
}

function measureSize(size: number): SizeResult {
  const workload = new Workload();
  const plantedQueries = workload.plantedQueries();
  const commonQueries = workload.commonQueries();
  const { texts, targets } = workload.history(size, plantedQueries);
  const queryTexts = plantedQueries.map((query) => query.text);

  const history = new MemoryHistory();
  const start = process.hrtime.bigint();
  texts.forEach((text, step) => history.add(step, text));
  const addMicros = microseconds(start) / size;

  const planted = {} as Record<RetrievalScorer, number>;
  const common = {} as Record<RetrievalScorer, number>;
  const found = {} as Record<RetrievalScorer, number>;
  for (const scorer of RETRIEVAL_SCORERS) {
    const run = (query: string): number => history.query(query, { scorer })[0].step;
    timePerQuery(queryTexts, run, 20, 16); // warm-up
    planted[scorer] = timePerQuery(queryTexts, run, 150, 32);
    common[scorer] = timePerQuery(commonQueries, run, 150, 32);
    found[scorer] = plantedQueries.filter((query, index) => run(query.text) === targets[index]).length;
  }

  const calls = size >= 10_000 ? 3 : size >= 1_000 ? 8 : 32;
  const baseline = timePerQuery(queryTexts, (query) => refitTfidfTop1(texts, query), 0, calls);
  const tokenised = texts.map((text) => tokenizeWords(text));
  const baselinePretokenised = timePerQuery(
    queryTexts,
    (query) => refitTfidfTop1(tokenised, query),
    0,
    calls,
  );
  const agreement = queryTexts.filter(
    (query) => refitTfidfTop1(tokenised, query) === history.query(query, { scorer: 'tfidf' })[0].step,
  ).length;
  return { addMicros, planted, common, baseline, baselinePretokenised, found, agreement };
}

function format(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((cell, column) =>
    Math.max(cell.length, ...rows.map((row) => row[column].length)),
  );
  const line = (cells: string[]): string =>
    cells.map((cell, column) => cell.padStart(widths[column])).join('  ');
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

/** Runs the code paths once so that the first measured size does not pay for compilation. */
function warmUp(): void {
  const workload = new Workload();
  const queries = workload.plantedQueries();
  const history = new MemoryHistory();
  workload.history(300, queries).texts.forEach((text, step) => history.add(step, text));
  for (const scorer of RETRIEVAL_SCORERS) {
    for (let repeat = 0; repeat < 50; repeat += 1)
      for (const query of queries) history.query(query.text, { scorer });
  }
}

function main(): void {
  const rounds = parseRounds(process.argv.slice(2));
  warmUp();
  const results = new Map<number, SizeResult[]>();
  for (let round = 0; round < rounds; round += 1) {
    for (const size of SIZES) {
      const result = measureSize(size);
      results.set(size, [...(results.get(size) ?? []), result]);
      process.stderr.write(`round ${round + 1}/${rounds}: ${size} memories done\n`);
    }
  }
  const med = (size: number, pick: (result: SizeResult) => number): number =>
    median((results.get(size) ?? []).map(pick));

  console.log(
    `Callback retrieval, µs per query (median of ${rounds} rounds), ${WORDS_PER_MEMORY} words per memory`,
  );
  console.log(
    'Queries: 2 planted entities + 1 middling word + 4 of the commonest words (16 fixed queries)\n',
  );
  console.log(
    table(
      [
        'memories',
        'recall',
        'tfidf',
        'bm25',
        'baseline re-fit',
        'ratio recall',
        'ratio tfidf',
        'ratio bm25',
        're-fit w/o tokenising',
      ],
      SIZES.map((size) => {
        const baseline = med(size, (r) => r.baseline);
        return [
          String(size),
          ...RETRIEVAL_SCORERS.map((scorer) => format(med(size, (r) => r.planted[scorer]))),
          format(baseline),
          ...RETRIEVAL_SCORERS.map((scorer) => `${format(baseline / med(size, (r) => r.planted[scorer]))}×`),
          format(med(size, (r) => r.baselinePretokenised)),
        ];
      }),
    ),
  );
  console.log(
    '\nWorst case for the pruning: queries of 6 words found in nearly every memory, µs per query\n',
  );
  console.log(
    table(
      ['memories', 'recall', 'tfidf', 'bm25'],
      SIZES.map((size) => [
        String(size),
        ...RETRIEVAL_SCORERS.map((scorer) => format(med(size, (r) => r.common[scorer]))),
      ]),
    ),
  );
  console.log(
    `\nPer step = add one memory + one query, as a share of one model step (ASSUMED ${format(MODEL_STEP_MICROSECONDS / 1e6)} s:` +
      ' 512 generated tokens × 10.6 ms per decoding step, the 27M model at batch 8 in NOTES.md; not measured here)\n',
  );
  console.log(
    table(
      ['memories', 'add µs', 'recall %', 'tfidf %', 'bm25 %', 'baseline %'],
      SIZES.map((size) => {
        const add = med(size, (r) => r.addMicros);
        const share = (micros: number): string =>
          `${((100 * micros) / MODEL_STEP_MICROSECONDS).toPrecision(2)}%`;
        return [
          String(size),
          format(add),
          ...RETRIEVAL_SCORERS.map((scorer) => share(add + med(size, (r) => r.planted[scorer]))),
          share(med(size, (r) => r.baseline)),
        ];
      }),
    ),
  );
  console.log(
    '\nQuality checks (last round): planted memory found at top-1, and top-1 agreement of tfidf with the re-fit baseline',
  );
  console.log(
    table(
      ['memories', 'recall', 'tfidf', 'bm25', 'tfidf = baseline'],
      SIZES.map((size) => {
        const last = (results.get(size) ?? []).at(-1) as SizeResult;
        return [
          String(size),
          ...RETRIEVAL_SCORERS.map((scorer) => `${last.found[scorer]}/${QUERY_COUNT}`),
          `${last.agreement}/${QUERY_COUNT}`,
        ];
      }),
    ),
  );
  const largest = SIZES[SIZES.length - 1];
  const ratios = RETRIEVAL_SCORERS.map(
    (scorer) =>
      `${scorer} ${format(med(largest, (r) => r.baseline) / med(largest, (r) => r.planted[scorer]))}×`,
  );
  console.log(`\nRatio baseline/ours at ${largest.toLocaleString('en')} memories: ${ratios.join(', ')}`);
}

main();
