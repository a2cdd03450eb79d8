/**
 * The official HotpotQA answer scorer (hotpot_evaluate_v1.py), reproduced exactly, and the sub-EM of the released
 * ReMemR1 evaluation, which uses the same normalisation. Each function scores one prediction against one gold
 * answer, as the Python code does; `metrics.ts` takes the maximum over gold answers and applies the released
 * evaluation's guard for a missing answer (see `scoreAnswer` there).
 *
 * What "exactly" means here, since the Python code leans on Python's string semantics:
 * - `str.lower()` is JavaScript's `toLowerCase()` (both apply Unicode's full lower-case mapping, final sigma
 *   included); no NFKC or other Unicode folding: "ｅ" and "e" stay different, as do "é" and "e" + U+0301.
 * - `string.punctuation` is the 32 ASCII characters !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ and nothing else:
 *   “ ” ‘ ’ – — … « » ¿ stay in the text (and so inside words).
 * - `re.sub(r'\b(a|an|the)\b', ' ', text)` on a `str` uses Python's Unicode `\b`: a word character is a letter
 *   (L*), a number (N*) or "_"; combining marks are not. "éthe" keeps its "the" (é is a letter), "the–end"
 *   loses it (– is not a word character).
 * - `' '.join(text.split())` splits on Python's white space: \t \n \v \f \r, U+001C–U+001F, space, U+0085,
 *   U+00A0, U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000 (not U+200B or U+FEFF).
 * - Letter and number classes follow the running engine's Unicode version; Python's differ only for characters
 *   added to Unicode after its own version.
 * Pure functions, no I/O: safe in workflow code.
 */

/** The characters of Python's `string.punctuation`. */
export const ASCII_PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

const ASCII_PUNCTUATION_PATTERN = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;
/** Python's `\b(a|an|the)\b` on a str: no letter, number or "_" on either side. */
const ARTICLE_PATTERN = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;
/** Python's `str.isspace()` characters, the separators of `str.split()`. */
const PYTHON_WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/**
 * normalize_answer(s) = white_space_fix(remove_articles(remove_punc(lower(s)))):
 * lower-case; delete each ASCII punctuation character; replace each article a/an/the standing between
 * non-word characters by a space; split on white space and join with single spaces.
 */
export function officialNormalizeAnswer(text: string): string {
  const lowered = text.toLowerCase().replace(ASCII_PUNCTUATION_PATTERN, '');
  return officialTokens(lowered.replace(ARTICLE_PATTERN, ' ')).join(' ');
}

/** Python's `str.split()` with no argument: the non-empty runs between white space. */
function officialTokens(text: string): string[] {
  return text.split(PYTHON_WHITESPACE).filter((token) => token !== '');
}

/** exact_match_score = [normalize(prediction) == normalize(gold)] (two empty normalisations are equal: 1). */
export function officialExactMatch(prediction: string, gold: string): number {
  return officialNormalizeAnswer(prediction) === officialNormalizeAnswer(gold) ? 1 : 0;
}

export interface OfficialF1 {
  f1: number;
  precision: number;
  recall: number;
}

const ZERO_F1: OfficialF1 = { f1: 0, precision: 0, recall: 0 };
const YES_NO_NOANSWER: ReadonlySet<string> = new Set(['yes', 'no', 'noanswer']);

/**
 * f1_score with p = normalize(prediction), g = normalize(gold):
 *   (0, 0, 0)  when p ∈ {yes, no, noanswer} or g ∈ {yes, no, noanswer}, and p ≠ g;
 *   common = |tokens(p) ∩ tokens(g)| as multisets (Counter &); (0, 0, 0) when common = 0 (so also when p or g
 *   is empty);
 *   precision = common / |tokens(p)|, recall = common / |tokens(g)|, F1 = 2·precision·recall / (precision + recall),
 * computed in this order, so the doubles are the ones Python computes.
 */
export function officialF1(prediction: string, gold: string): OfficialF1 {
  const p = officialNormalizeAnswer(prediction);
  const g = officialNormalizeAnswer(gold);
  if ((YES_NO_NOANSWER.has(p) || YES_NO_NOANSWER.has(g)) && p !== g) return ZERO_F1;
  const predictionTokens = officialTokens(p);
  const goldTokens = officialTokens(g);
  const goldCounts = new Map<string, number>();
  for (const token of goldTokens) goldCounts.set(token, (goldCounts.get(token) ?? 0) + 1);
  let common = 0;
  for (const token of predictionTokens) {
    const left = goldCounts.get(token) ?? 0;
    if (left > 0) {
      common += 1;
      goldCounts.set(token, left - 1);
    }
  }
  if (common === 0) return ZERO_F1;
  const precision = common / predictionTokens.length;
  const recall = common / goldTokens.length;
  return { f1: (2 * precision * recall) / (precision + recall), precision, recall };
}

/**
 * sub_exact_match_score of the released ReMemR1 evaluation = [g in p or p in g] on the normalised strings
 * (character-level substring: "1" is in "1990"). Python's `'' in s` is true for every s, so:
 * - a prediction that normalises to nothing ("The", "!!!", "a.") scores 1 against every gold answer;
 * - a gold answer that normalises to nothing ("The", "a") is matched by every prediction.
 * (The released evaluation scores 0 only when the extracted answer itself is None or "", before
 * normalisation: `metrics.ts` applies that guard.)
 */
export function officialSubExactMatch(prediction: string, gold: string): number {
  const p = officialNormalizeAnswer(prediction);
  const g = officialNormalizeAnswer(gold);
  return p.includes(g) || g.includes(p) ? 1 : 0;
}
