/**
 * The one word tokenizer of the agent core, shared by callback retrieval, answer recall and the answer
 * metrics, so that "a word" means the same thing in training rewards, retrieval and evaluation.
 *
 * Rules, in order:
 * 1. Unicode NFKC normalisation (full-width letters, ligatures and compatibility digits fold to their
 *    plain forms), then lower-casing.
 * 2. Punctuation and symbol characters (Unicode categories P and S) are deleted, not turned into spaces,
 *    as the standard SQuAD/HotpotQA normalisation does with ASCII punctuation: "don't" → "dont",
 *    "1,000" → "1000", "well-known" → "wellknown".
 * 3. Words are maximal runs of letters, digits and combining marks; everything else (white space,
 *    control characters) separates words.
 * 4. Han, Hiragana and Katakana characters are one word each, since those scripts do not put spaces
 *    between words (the usual character-level treatment of Chinese and Japanese answers).
 */

const PUNCTUATION_OR_SYMBOL = /[\p{P}\p{S}]/gu;
const WORD =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]\p{M}*|(?:(?![\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}])[\p{L}\p{N}\p{M}])+/gu;

/** The articles the standard answer normalisation removes. */
export const ARTICLES: ReadonlySet<string> = new Set(['a', 'an', 'the']);

/** Splits text into lower-cased words by the rules above (the articles are kept; see `normalizeAnswer`). */
export function tokenizeWords(text: string): string[] {
  const cleaned = text.normalize('NFKC').toLowerCase().replace(PUNCTUATION_OR_SYMBOL, '');
  return cleaned.match(WORD) ?? [];
}
