/**
 * Answer metrics, one definition for training rewards and evaluation.
 *
 * Normalisation (the SQuAD/HotpotQA one, on the shared word tokenizer of text.ts): lower-case, delete
 * punctuation and symbols, drop the articles a/an/the, fold white space. Every metric is the maximum
 * over the gold answers. F1 follows the HotpotQA evaluation: when the normalised prediction or gold is
 * "yes", "no" or "noanswer" and the two differ, F1 is 0 (no partial credit for "no" against "yes").
 * Sub-EM is 1 when the normalised gold is a substring of the normalised prediction or the reverse, as
 * in the released evaluation (character level, so "1" is in "1990"); an empty prediction scores 0.
 * A null prediction (no answer found), or one without a word, scores 0 everywhere: no answer never scores.
 * A gold answer made only of articles ("a", "The") would normalise to nothing and so match an empty
 * prediction; it is compared with its articles kept instead, so only a prediction saying it matches.
 *
 * This is the `project` metrics mode. `scoreAnswer` can score in the `hotpotqa-official` mode instead
 * (metrics-official.ts), which reproduces the official HotpotQA scorer for figures comparable with the paper's.
 * Where they differ: the official one deletes only ASCII punctuation (“Paris” keeps its quotes), folds no
 * Unicode (NFKC), removes an article wherever Python's `\b` allows ("the–end" → "–end" there, "theend" here), and
 * scores an empty normalisation as Python does (see `scoreAnswer`).
 */

import { MetricInputError } from './errors';
import { officialExactMatch, officialF1, officialSubExactMatch } from './metrics-official';
import { ARTICLES, tokenizeWords } from './text';

/**
 * Which normalisation the evaluation metrics use (rewards always use the project's):
 * - `project`: the functions of this file (Unicode-aware, module comment); the default.
 * - `hotpotqa-official`: the official HotpotQA scorer, exactly (metrics-official.ts): ASCII punctuation only, no
 *   Unicode folding, sub-EM as the released ReMemR1 evaluation computes it; for figures comparable with the
 *   paper's.
 */
export const METRICS_MODES = ['project', 'hotpotqa-official'] as const;

export type MetricsMode = (typeof METRICS_MODES)[number];

export const DEFAULT_METRICS_MODE: MetricsMode = 'project';

/** Throws a {@link MetricInputError} unless `mode` is one of {@link METRICS_MODES} (for values read from config). */
export function assertMetricsMode(mode: unknown): asserts mode is MetricsMode {
  if (!METRICS_MODES.includes(mode as MetricsMode)) {
    throw new MetricInputError(
      `unknown metrics mode ${JSON.stringify(mode)}; expected ${METRICS_MODES.map((name) => `"${name}"`).join(' or ')}`,
    );
  }
}

/** A metric's column title naming the mode that produced it, e.g. "EM (hotpotqa-official)". */
export function metricLabel(metric: 'EM' | 'F1' | 'sub-EM', mode: MetricsMode | 'mixed' | undefined): string {
  return `${metric} (${mode === 'mixed' ? 'mixed modes' : (mode ?? DEFAULT_METRICS_MODE)})`;
}

/** The normalised words of an answer: the tokenizer's words without the articles. */
function answerWords(text: string): string[] {
  return tokenizeWords(text).filter((word) => !ARTICLES.has(word));
}

/** The standard answer normalisation: lower-case, no punctuation, no articles, single spaces. */
export function normalizeAnswer(text: string): string {
  return answerWords(text).join(' ');
}

/**
 * The words a prediction and a gold answer are compared on: without articles, unless the gold has no other
 * word (then both keep theirs). A prediction with no words compares as empty, which never scores.
 */
function comparedWords(prediction: string, gold: string): { prediction: string[]; gold: string[] } {
  const goldWords = answerWords(gold);
  if (goldWords.length > 0) return { prediction: answerWords(prediction), gold: goldWords };
  return { prediction: tokenizeWords(prediction), gold: tokenizeWords(gold) };
}

/** Throws unless `golds` is a non-empty array of strings. */
export function checkGoldAnswers(golds: readonly string[]): void {
  if (!Array.isArray(golds) || golds.length === 0) {
    throw new MetricInputError('at least one gold answer is needed to score a prediction');
  }
  golds.forEach((gold, index) => {
    if (typeof gold !== 'string')
      throw new MetricInputError(`gold answer ${index} must be a string, got ${typeof gold}`);
  });
}

function maxOverGolds(golds: readonly string[], score: (gold: string) => number): number {
  checkGoldAnswers(golds);
  let best = 0;
  for (const gold of golds) best = Math.max(best, score(gold));
  return best;
}

/** 1 when the normalised prediction equals a normalised gold answer, else 0. */
export function exactMatch(prediction: string | null, golds: readonly string[]): number {
  return maxOverGolds(golds, (gold) => {
    if (prediction === null) return 0;
    const words = comparedWords(prediction, gold);
    return words.prediction.length > 0 && words.prediction.join(' ') === words.gold.join(' ') ? 1 : 0;
  });
}

const YES_NO_NOANSWER = new Set(['yes', 'no', 'noanswer']);

function f1Against(prediction: string, gold: string): number {
  const { prediction: predictionWords, gold: goldWords } = comparedWords(prediction, gold);
  const normalisedPrediction = predictionWords.join(' ');
  const normalisedGold = goldWords.join(' ');
  if (
    (YES_NO_NOANSWER.has(normalisedPrediction) || YES_NO_NOANSWER.has(normalisedGold)) &&
    normalisedPrediction !== normalisedGold
  ) {
    return 0;
  }
  const goldCounts = new Map<string, number>();
  for (const word of goldWords) goldCounts.set(word, (goldCounts.get(word) ?? 0) + 1);
  let common = 0;
  for (const word of predictionWords) {
    const left = goldCounts.get(word) ?? 0;
    if (left > 0) {
      common += 1;
      goldCounts.set(word, left - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / predictionWords.length;
  const recall = common / goldWords.length;
  return (2 * precision * recall) / (precision + recall);
}

/** Word-level F1 (bag of words, HotpotQA yes/no rule), maximum over the gold answers. */
export function f1Score(prediction: string | null, golds: readonly string[]): number {
  return maxOverGolds(golds, (gold) => (prediction === null ? 0 : f1Against(prediction, gold)));
}

/** 1 when a normalised gold contains the normalised prediction or the reverse (non-empty prediction). */
export function subExactMatch(prediction: string | null, golds: readonly string[]): number {
  return maxOverGolds(golds, (gold) => {
    if (prediction === null) return 0;
    const words = comparedWords(prediction, gold);
    if (words.prediction.length === 0 || words.gold.length === 0) return 0;
    const normalisedPrediction = words.prediction.join(' ');
    const normalisedGold = words.gold.join(' ');
    return normalisedGold.includes(normalisedPrediction) || normalisedPrediction.includes(normalisedGold)
      ? 1
      : 0;
  });
}

export interface AnswerScores {
  exactMatch: number;
  f1: number;
  subExactMatch: number;
}

/**
 * The three evaluation metrics of one prediction in a metrics mode, each the maximum over the gold answers.
 *
 * `hotpotqa-official`: EM = max_g officialExactMatch(p, g), F1 = max_g officialF1(p, g).f1,
 * sub-EM = max_g officialSubExactMatch(p, g), except that a missing prediction (null, or the empty string) scores
 * 0 on all three, as the released ReMemR1 evaluation's `if pred else 0` does (the official scorer counts a
 * missing answer as 0 too). A non-empty prediction that normalises to nothing is scored as Python scores it:
 * EM 1 against a gold answer that also normalises to nothing ("a" vs "The"), F1 0, sub-EM 1 against every gold.
 * The maximum over gold answers is the SQuAD convention; with one gold answer (HotpotQA) it is the official
 * score. (The released evaluation scores only the first gold answer and rounds each F1 to 2 decimals; neither
 * is reproduced.)
 */
export function scoreAnswer(
  prediction: string | null,
  golds: readonly string[],
  mode: MetricsMode = DEFAULT_METRICS_MODE,
): AnswerScores {
  if (mode === 'hotpotqa-official') {
    checkGoldAnswers(golds);
    if (prediction === null || prediction === '') return { exactMatch: 0, f1: 0, subExactMatch: 0 };
    return {
      exactMatch: maxOverGolds(golds, (gold) => officialExactMatch(prediction, gold)),
      f1: maxOverGolds(golds, (gold) => officialF1(prediction, gold).f1),
      subExactMatch: maxOverGolds(golds, (gold) => officialSubExactMatch(prediction, gold)),
    };
  }
  return {
    exactMatch: exactMatch(prediction, golds),
    f1: f1Score(prediction, golds),
    subExactMatch: subExactMatch(prediction, golds),
  };
}

/**
 * Answer recall of a text: the fraction of a gold answer's distinct normalised words that occur as
 * words of the text (case-insensitive, whole words, articles ignored), maximum over the gold answers.
 * A gold answer without words (say "—") counts 0. A null text scores 0.
 */
export function answerRecall(text: string | null, golds: readonly string[]): number {
  const words = new Set(text === null ? [] : tokenizeWords(text));
  return maxOverGolds(golds, (gold) => {
    const goldWords = new Set(answerWords(gold));
    if (goldWords.size === 0) return 0;
    let found = 0;
    for (const word of goldWords) if (words.has(word)) found += 1;
    return found / goldWords.size;
  });
}
