/**
 * Memory history and callback retrieval.
 *
 * Semantics (one for the whole project): the recall query written at step t searches the memories of
 * steps strictly before t, m_1 … m_(t-1). {@link MemoryHistory.recallForStep} enforces it whatever
 * has been added already, so the order "add m_t, then recall" and "recall, then add m_t" give the
 * same result. Statistics the scorers use (number of memories, document frequencies, average
 * length) are those of the same steps.
 *
 * Scorers: `recall` (the paper), `tfidf` and `bm25`, one object each in {@link RETRIEVAL_SCORER_DEFINITIONS}
 * with its formula. Query and memories are tokenised by `tokenizeWords`.
 *
 * Results: the `topK` best memories (default 1) whose score is at least `minScore` (default 0, that is
 * no threshold), best first. Ties go to the more recent step. With no threshold, when fewer than
 * `topK` memories share a word with the query, the most recent other memories (score 0) fill the list,
 * so a query always returns something once the history is not empty, as the released retriever does.
 *
 * Cost: adding a memory costs its length. A query touches only the posting lists of its own words,
 * rarest first, and stops as soon as the memories it has not scored cannot reach the results (an
 * upper bound per word; the MaxScore idea); it never reads the history as a whole.
 */

import { MemoryHistoryError, RetrievalOptionsError } from './errors';
import { tokenizeWords } from './text';

export const RETRIEVAL_SCORERS = ['recall', 'tfidf', 'bm25'] as const;
export type RetrievalScorer = (typeof RETRIEVAL_SCORERS)[number];

export interface RetrievalOptions {
  scorer: RetrievalScorer;
  /** How many memories to return at most; default 1. */
  topK?: number;
  /** Lowest score a result may have; default 0 (no threshold). */
  minScore?: number;
  /** BM25 term-frequency saturation; default 1.2. */
  bm25K1?: number;
  /** BM25 length normalisation, 0 … 1; default 0.75. */
  bm25B?: number;
}

export interface MemoryEntry {
  step: number;
  text: string;
}

export interface RecalledMemory {
  step: number;
  text: string;
  score: number;
}

/** The serialised form of a {@link MemoryHistory}: its entries, in order. The index is rebuilt from them. */
export interface MemoryHistoryJSON {
  format: 'rememr1.memory-history';
  version: 1;
  entries: MemoryEntry[];
}

export const DEFAULT_BM25_K1 = 1.2;
export const DEFAULT_BM25_B = 0.75;

/** Smoothed idf of the released TF-IDF: ln((1 + N) / (1 + df)) + 1. */
export function smoothIdf(memoryCount: number, documentFrequency: number): number {
  return Math.log((1 + memoryCount) / (1 + documentFrequency)) + 1;
}

/** BM25 idf with the +1 inside the logarithm, so that it is positive even for words in every memory. */
export function bm25Idf(memoryCount: number, documentFrequency: number): number {
  return Math.log(1 + (memoryCount - documentFrequency + 0.5) / (documentFrequency + 0.5));
}

/** The BM25 term-frequency factor of one word in one memory (without the idf). */
export function bm25TermWeight(
  termFrequency: number,
  memoryLength: number,
  averageLength: number,
  k1: number,
  b: number,
): number {
  return (termFrequency * (k1 + 1)) / (termFrequency + k1 * (1 - b + (b * memoryLength) / averageLength));
}

/** A query word present in the searched memories: what a scorer weighs it by. */
export interface QueryTermStats {
  /** How many of the searched memories hold the word. */
  documentFrequency: number;
  /** How many times the word occurs in the query. */
  queryFrequency: number;
  /** Over the memories holding the word: its largest term frequency, smallest memory length, largest tf/‖tf‖. */
  maxTf: number;
  minLength: number;
  maxNormalisedTf: number;
}

/** The searched memories as a whole, and the BM25 constants. */
export interface SearchedMemories {
  /** N: how many memories are searched. */
  memoryCount: number;
  /** avg|m|: their mean length in words. */
  averageLength: number;
  k1: number;
  b: number;
}

/**
 * One retrieval scorer. A memory m scores
 *   score(m) = finish(Σ over query words w in m of contribution(weight(w), tf(w, m), |m|), scale, ‖tf(m)‖)
 * where `weigh` gives each query word found in the searched memories its weight and an upper bound of its contribution to any memory (for
 * the search's pruning), and the query's scale. The raw sum keeps `recall` exact in integers; the finishing
 * division is the same for every memory of a query.
 */
export interface RetrievalScorerDefinition {
  /** Scores are ratios of integers, compared exactly (no float margin, ties broken by recency alone). */
  exact: boolean;
  weigh(
    terms: readonly QueryTermStats[],
    memories: SearchedMemories,
    queryWordCount: number,
  ): { weights: number[]; bounds: number[]; scale: number };
  contribution(weight: number, termFrequency: number, memoryLength: number, memories: SearchedMemories): number;
  finish(rawSum: number, scale: number, tfNorm: number): number;
  /** The score bound of a memory whose raw sum is at most `rawBound`. */
  finishBound(rawBound: number, scale: number): number;
}

/** `recall` (the paper), Q = the distinct words of the query: |Q ∩ words(m)| / |Q|. */
const recallScorer: RetrievalScorerDefinition = {
  exact: true,
  weigh: (terms, _memories, queryWordCount) => ({
    weights: terms.map(() => 1),
    bounds: terms.map(() => 1),
    scale: queryWordCount,
  }),
  contribution: () => 1,
  finish: (rawSum, scale) => rawSum / scale,
  finishBound: (rawBound, scale) => rawBound / scale,
};

/**
 * `tfidf`: the cosine between the query's tf·idf vector and the memory's term-frequency vector,
 *   score(m) = Σ_w qtf(w)·idf(w)·tf(w, m) / (‖qtf·idf‖ · ‖tf(m)‖),
 * with the smoothed idf of the released code, idf(w) = ln((1 + N) / (1 + df(w))) + 1; query words found in
 * no memory are dropped from the query vector, as a fitted vectoriser drops them. In SMART notation this is
 * nnc.ntc. The released code (a re-fitted vectoriser) also weights the memory side by idf, which makes every
 * memory's norm depend on the whole history, so it changes whenever a memory is added and cannot be kept up
 * to date incrementally; weighting the query side only keeps the score exact at a cost independent of the
 * history.
 */
const tfidfScorer: RetrievalScorerDefinition = {
  exact: false,
  weigh: (terms, memories) => {
    const weights = terms.map((term) => term.queryFrequency * smoothIdf(memories.memoryCount, term.documentFrequency));
    let squares = 0;
    for (const weight of weights) squares += weight * weight;
    const bounds = terms.map((term, index) => weights[index] * term.maxNormalisedTf);
    return { weights, bounds, scale: Math.sqrt(squares) };
  },
  contribution: (weight, termFrequency) => weight * termFrequency,
  finish: (rawSum, scale, tfNorm) => rawSum / (scale * tfNorm),
  finishBound: (rawBound, scale) => rawBound / scale,
};

/**
 * `bm25`: score(m) = Σ_w idf(w) · tf·(k1+1) / (tf + k1·(1 − b + b·|m|/avg|m|)), with
 * idf(w) = ln(1 + (N − df(w) + 0.5) / (df(w) + 0.5)) (always positive), k1 = 1.2 and b = 0.75 by default.
 */
const bm25Scorer: RetrievalScorerDefinition = {
  exact: false,
  weigh: (terms, memories) => {
    const weights = terms.map((term) => bm25Idf(memories.memoryCount, term.documentFrequency));
    const bounds = terms.map(
      (term, index) =>
        weights[index] * bm25TermWeight(term.maxTf, term.minLength, memories.averageLength, memories.k1, memories.b),
    );
    return { weights, bounds, scale: 1 };
  },
  contribution: (weight, termFrequency, memoryLength, memories) =>
    weight * bm25TermWeight(termFrequency, memoryLength, memories.averageLength, memories.k1, memories.b),
  finish: (rawSum) => rawSum,
  finishBound: (rawBound) => rawBound,
};

export const RETRIEVAL_SCORER_DEFINITIONS: Readonly<Record<RetrievalScorer, RetrievalScorerDefinition>> = {
  recall: recallScorer,
  tfidf: tfidfScorer,
  bm25: bm25Scorer,
};

interface ResolvedOptions {
  scorer: RetrievalScorerDefinition;
  topK: number;
  minScore: number;
  k1: number;
  b: number;
}

function resolveOptions(options: RetrievalOptions): ResolvedOptions {
  if (!RETRIEVAL_SCORERS.includes(options.scorer)) {
    throw new RetrievalOptionsError(
      `unknown scorer ${JSON.stringify(options.scorer)}; expected one of ${RETRIEVAL_SCORERS.join(', ')}`,
    );
  }
  const topK = options.topK ?? 1;
  if (!Number.isSafeInteger(topK) || topK < 1) {
    throw new RetrievalOptionsError(`topK must be a whole number ≥ 1, got ${topK}`);
  }
  const minScore = options.minScore ?? 0;
  if (!Number.isFinite(minScore))
    throw new RetrievalOptionsError(`minScore must be a finite number, got ${minScore}`);
  const k1 = options.bm25K1 ?? DEFAULT_BM25_K1;
  if (!Number.isFinite(k1) || k1 < 0)
    throw new RetrievalOptionsError(`bm25K1 must be a finite number ≥ 0, got ${k1}`);
  const b = options.bm25B ?? DEFAULT_BM25_B;
  if (!(b >= 0 && b <= 1)) throw new RetrievalOptionsError(`bm25B must be between 0 and 1, got ${b}`);
  return { scorer: RETRIEVAL_SCORER_DEFINITIONS[options.scorer], topK, minScore, k1, b };
}

/** Number of elements of the ascending array `values` that are < `limit`. */
function countBelow(values: ArrayLike<number>, limit: number): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (values[middle] < limit) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** A query word present in the searched memories, weighed by the scorer. */
interface QueryTerm {
  termId: number;
  documentFrequency: number;
  weight: number;
  /** Upper bound of this word's contribution to any memory's raw sum. */
  bound: number;
}

interface Scored {
  index: number;
  score: number;
}

/**
 * The ordered memory history of one episode with an incremental inverted index. Steps must be added
 * in increasing order; several steps may hold the same text (the history is not de-duplicated).
 */
export class MemoryHistory {
  private readonly steps: number[] = [];
  private readonly texts: string[] = [];
  private readonly vocabulary = new Map<string, number>();
  /** Per word: the indices of the memories holding it, ascending. */
  private readonly postings: number[][] = [];
  /** Per word: its largest term frequency, smallest memory length and largest tf/‖tf‖ over the memories. */
  private readonly maxTf: number[] = [];
  private readonly minLength: number[] = [];
  private readonly maxNormalisedTf: number[] = [];
  /** Per memory: its word ids, ascending, and their term frequencies. */
  private readonly memoryTerms: Int32Array[] = [];
  private readonly memoryTfs: Int32Array[] = [];
  /** Per memory: Euclidean norm of its term-frequency vector. */
  private readonly tfNorms: number[] = [];
  /** lengthPrefix[i] = number of words in memories 0 … i-1. */
  private readonly lengthPrefix: number[] = [0];

  /** Number of memories held. */
  get size(): number {
    return this.steps.length;
  }

  /** The step of the last memory added, or null when empty. */
  get lastStep(): number | null {
    return this.steps.length === 0 ? null : this.steps[this.steps.length - 1];
  }

  /** The memories, in the order added. */
  entries(): MemoryEntry[] {
    return this.steps.map((step, index) => ({ step, text: this.texts[index] }));
  }

  /** Adds the memory written at `step`; `step` must be a whole number greater than every step held. */
  add(step: number, text: string): void {
    if (!Number.isSafeInteger(step)) throw new MemoryHistoryError(`step must be a whole number, got ${step}`);
    const last = this.lastStep;
    if (last !== null && step <= last) {
      throw new MemoryHistoryError(`steps must increase: step ${step} added after step ${last}`);
    }
    if (typeof text !== 'string')
      throw new MemoryHistoryError(`memory text must be a string, got ${typeof text}`);

    const index = this.steps.length;
    const words = tokenizeWords(text);
    const counts = new Map<number, number>();
    for (const word of words) {
      let termId = this.vocabulary.get(word);
      if (termId === undefined) {
        termId = this.postings.length;
        this.vocabulary.set(word, termId);
        this.postings.push([]);
        this.maxTf.push(0);
        this.minLength.push(Infinity);
        this.maxNormalisedTf.push(0);
      }
      counts.set(termId, (counts.get(termId) ?? 0) + 1);
    }
    const termIds = Int32Array.from(counts.keys()).sort();
    const tfs = Int32Array.from(termIds, (termId) => counts.get(termId) ?? 0);
    let squares = 0;
    for (const tf of tfs) squares += tf * tf;
    const norm = Math.sqrt(squares);
    termIds.forEach((termId, position) => {
      const tf = tfs[position];
      this.postings[termId].push(index);
      this.maxTf[termId] = Math.max(this.maxTf[termId], tf);
      this.minLength[termId] = Math.min(this.minLength[termId], words.length);
      this.maxNormalisedTf[termId] = Math.max(this.maxNormalisedTf[termId], tf / norm);
    });

    this.steps.push(step);
    this.texts.push(text);
    this.memoryTerms.push(termIds);
    this.memoryTfs.push(tfs);
    this.tfNorms.push(norm);
    this.lengthPrefix.push(this.lengthPrefix[index] + words.length);
  }

  /** Searches every memory held. */
  query(text: string, options: RetrievalOptions): RecalledMemory[] {
    return this.search(text, this.steps.length, resolveOptions(options));
  }

  /**
   * The retrieval of the recall query written at step `step`: searches only the memories of steps
   * before `step` (the project's one history semantics), whether or not later ones were added.
   */
  recallForStep(step: number, text: string, options: RetrievalOptions): RecalledMemory[] {
    if (typeof step !== 'number' || Number.isNaN(step)) {
      throw new MemoryHistoryError(`step must be a number, got ${step}`);
    }
    return this.search(text, countBelow(this.steps, step), resolveOptions(options));
  }

  toJSON(): MemoryHistoryJSON {
    return { format: 'rememr1.memory-history', version: 1, entries: this.entries() };
  }

  /** Rebuilds a history from {@link MemoryHistory.toJSON}'s output; queries give identical results. */
  static fromJSON(value: unknown): MemoryHistory {
    if (typeof value !== 'object' || value === null) {
      throw new MemoryHistoryError('a serialised memory history must be an object');
    }
    const record = value as Partial<Record<keyof MemoryHistoryJSON, unknown>>;
    if (record.format !== 'rememr1.memory-history' || record.version !== 1) {
      throw new MemoryHistoryError(
        `unsupported memory history format ${JSON.stringify(record.format)} version ${JSON.stringify(record.version)}; expected "rememr1.memory-history" version 1`,
      );
    }
    if (!Array.isArray(record.entries))
      throw new MemoryHistoryError('a serialised memory history needs an entries array');
    const history = new MemoryHistory();
    record.entries.forEach((entry: unknown, position) => {
      const candidate = entry as Partial<MemoryEntry> | null;
      if (typeof candidate !== 'object' || candidate === null || typeof candidate.text !== 'string') {
        throw new MemoryHistoryError(`entry ${position} of the memory history must be {step, text}`);
      }
      history.add(candidate.step as number, candidate.text);
    });
    return history;
  }

  private termFrequency(memory: number, termId: number): number {
    const terms = this.memoryTerms[memory];
    const at = countBelow(terms, termId);
    return at < terms.length && terms[at] === termId ? this.memoryTfs[memory][at] : 0;
  }

  /** Ranks memories 0 … cutoff-1 (see the module comment for the scores and the pruning). */
  private search(queryText: string, cutoff: number, options: ResolvedOptions): RecalledMemory[] {
    const queryCounts = new Map<string, number>();
    for (const word of tokenizeWords(queryText)) queryCounts.set(word, (queryCounts.get(word) ?? 0) + 1);
    // Canonical word order: every memory's score is summed in this order, so it does not depend on
    // the order in which the search happens to meet the memory.
    const queryWords = [...queryCounts.keys()].sort();
    const memories: SearchedMemories = {
      memoryCount: cutoff,
      averageLength: cutoff > 0 ? this.lengthPrefix[cutoff] / cutoff : 0,
      k1: options.k1,
      b: options.b,
    };
    const stats: Array<QueryTermStats & { termId: number }> = [];
    for (const word of queryWords) {
      const termId = this.vocabulary.get(word);
      if (termId === undefined) continue;
      const documentFrequency = countBelow(this.postings[termId], cutoff);
      if (documentFrequency === 0) continue;
      stats.push({
        termId,
        documentFrequency,
        queryFrequency: queryCounts.get(word) ?? 0,
        maxTf: this.maxTf[termId],
        minLength: this.minLength[termId],
        maxNormalisedTf: this.maxNormalisedTf[termId],
      });
    }
    const { scorer } = options;
    const weighed = scorer.weigh(stats, memories, queryWords.length);
    const scale = weighed.scale;
    const terms: QueryTerm[] = stats.map(({ termId, documentFrequency }, index) => ({
      termId,
      documentFrequency,
      weight: weighed.weights[index],
      bound: weighed.bounds[index],
    }));

    const finalScore = (memory: number): number => {
      const memoryLength = this.lengthPrefix[memory + 1] - this.lengthPrefix[memory];
      let sum = 0;
      for (const term of terms) {
        const tf = this.termFrequency(memory, term.termId);
        if (tf === 0) continue;
        sum += scorer.contribution(term.weight, tf, memoryLength, memories);
      }
      return scorer.finish(sum, scale, this.tfNorms[memory]);
    };
    const boundScore = (bound: number): number => scorer.finishBound(bound, scale);
    // Bounds are sums of per-word bounds while scores are summed per memory; the two roundings can
    // differ by a few units in the last place, so float comparisons leave a margin on the safe side.
    const exact = scorer.exact;
    const margin = (value: number): number => (exact ? 0 : 1e-9 * Math.max(1, Math.abs(value)));

    const order = [...terms].sort((x, y) => x.documentFrequency - y.documentFrequency || x.termId - y.termId);
    const remainingBound: number[] = new Array<number>(order.length + 1).fill(0);
    for (let position = order.length - 1; position >= 0; position -= 1) {
      remainingBound[position] = remainingBound[position + 1] + order[position].bound;
    }

    const top: Scored[] = [];
    const { topK, minScore } = options;
    const better = (x: Scored, y: Scored): boolean =>
      x.score > y.score || (x.score === y.score && x.index > y.index);
    // Can a memory not yet scored, whose score is at most `bound`, still enter the results?
    const canEnter = (bound: number, memory: number): boolean => {
      const best = boundScore(bound);
      if (best < minScore - margin(minScore)) return false;
      if (top.length < topK) return true;
      const worst = top[top.length - 1].score;
      if (best > worst + margin(worst)) return true;
      if (best < worst - margin(worst)) return false;
      return exact ? memory > top[top.length - 1].index : true;
    };

    const seen = new Set<number>();
    for (let position = 0; position < order.length; position += 1) {
      const list = this.postings[order[position].termId];
      const bound = remainingBound[position];
      for (let at = order[position].documentFrequency - 1; at >= 0; at -= 1) {
        const memory = list[at];
        if (!canEnter(bound, memory)) break;
        if (seen.has(memory)) continue;
        seen.add(memory);
        const candidate: Scored = { index: memory, score: finalScore(memory) };
        if (candidate.score < minScore) continue;
        if (top.length === topK && !better(candidate, top[top.length - 1])) continue;
        let insertAt = top.length;
        while (insertAt > 0 && better(candidate, top[insertAt - 1])) insertAt -= 1;
        top.splice(insertAt, 0, candidate);
        if (top.length > topK) top.pop();
      }
    }

    if (top.length < topK && minScore <= 0) {
      // Every memory sharing a word with the query is already in `top`; the rest score 0.
      const chosen = new Set(top.map((entry) => entry.index));
      for (let memory = cutoff - 1; memory >= 0 && top.length < topK; memory -= 1) {
        if (!chosen.has(memory)) top.push({ index: memory, score: 0 });
      }
    }
    return top.map(({ index, score }) => ({ step: this.steps[index], text: this.texts[index], score }));
  }
}
