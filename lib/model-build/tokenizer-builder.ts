/**
 * Builds a small byte-level BPE tokenizer in Hugging Face's `tokenizer.json` format, shaped like Qwen2's:
 * the same pre-tokenisation regex (single digits, letter runs with one leading non-letter, punctuation
 * runs, whitespace), a byte-level alphabet so every Unicode string encodes and decodes losslessly (no
 * normaliser), merges learned from pre-token counts, and added tokens after the BPE vocabulary: the chat
 * specials (`<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, special) and the agent's tags (not special,
 * like Qwen's `<think>`, so decoding keeps them). Also writes `tokenizer_config.json` with a Qwen-style
 * chat template.
 */
import { ModelSpecError } from '../model/errors';

export const CHAT_SPECIAL_TOKENS = {
  endOfText: '<|endoftext|>',
  imStart: '<|im_start|>',
  imEnd: '<|im_end|>',
} as const;
export const AGENT_TAG_TOKENS = [
  '<thinking>',
  '</thinking>',
  '<update>',
  '</update>',
  '<recall>',
  '</recall>',
] as const;

/** Qwen2's pre-tokenisation pattern, as written in its tokenizer.json (Oniguruma syntax). */
export const QWEN2_SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** The same pattern for JavaScript (no inline case-insensitive groups), used to count training pre-tokens. */
const SPLIT_REGEX =
  /'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/** A Qwen-style ChatML template (without Qwen's default system prompt or tool calling). */
export const CHATML_TEMPLATE =
  "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** GPT-2's byte-to-character table: printable bytes map to themselves, the others to U+0100 onwards. */
export function byteToCharacterTable(): string[] {
  const table: string[] = new Array(256);
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255);
    table[byte] = String.fromCodePoint(printable ? byte : next++);
  }
  return table;
}

/** Splits text into pre-tokens the way the tokenizer will, and counts them. */
export function countPretokens(text: string, counts: Map<string, number> = new Map()): Map<string, number> {
  for (const match of text.matchAll(SPLIT_REGEX)) counts.set(match[0], (counts.get(match[0]) ?? 0) + 1);
  return counts;
}

export interface TokenizerBuildOptions {
  /** Pre-tokens (as `countPretokens` splits text) and how often they occur; merges are learned from them. */
  pretokenCounts: ReadonlyMap<string, number>;
  /**
   * Merges to start from, in rank order, over byte-level symbols (e.g. ["Ġ", "t"]): taken as they are
   * (each part must be a byte or an earlier merge's result); learning then fills the remaining budget.
   */
  merges?: readonly (readonly [string, string])[];
  /** Target size of the whole vocabulary: 256 bytes + merges + added tokens. Fewer if merges run out. */
  vocabularySize: number;
  /** Pairs seen fewer times than this are not merged. */
  minPairCount?: number;
  chatTemplate?: string;
  modelMaxLength?: number;
}

export interface BuiltTokenizer {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfigJson: Record<string, unknown>;
  /** Number of ids the tokenizer uses (BPE vocabulary plus added tokens). */
  vocabularySize: number;
  ids: { endOfText: number; imStart: number; imEnd: number };
}

interface Word {
  symbols: string[];
  count: number;
}

function pairKey(left: string, right: string): string {
  // Byte-level symbols never contain a plain space, so it can separate the halves.
  return `${left} ${right}`;
}

/** Learns merges greedily: the most frequent adjacent pair (ties: smallest pair key) until the budget is spent. */
function learnMerges(words: Word[], maxMerges: number, minPairCount: number): [string, string][] {
  const merges: [string, string][] = [];
  while (merges.length < maxMerges) {
    const counts = new Map<string, number>();
    for (const word of words) {
      for (let i = 0; i + 1 < word.symbols.length; i++) {
        const key = pairKey(word.symbols[i], word.symbols[i + 1]);
        counts.set(key, (counts.get(key) ?? 0) + word.count);
      }
    }
    let bestKey: string | null = null;
    let bestCount = 0;
    for (const [key, count] of counts) {
      if (count > bestCount || (count === bestCount && bestKey !== null && key < bestKey)) {
        bestKey = key;
        bestCount = count;
      }
    }
    if (bestKey === null || bestCount < minPairCount) break;
    const separator = bestKey.indexOf(' ');
    const left = bestKey.slice(0, separator);
    const right = bestKey.slice(separator + 1);
    merges.push([left, right]);
    const merged = left + right;
    for (const word of words) {
      const symbols = word.symbols;
      for (let i = 0; i + 1 < symbols.length; i++) {
        if (symbols[i] === left && symbols[i + 1] === right) symbols.splice(i, 2, merged);
      }
    }
  }
  return merges;
}

/** Applies merges in rank order to a word's symbols (how BPE tokenises, written for clarity, not speed). */
function applyMerges(symbols: string[], rank: ReadonlyMap<string, number>): string[] {
  if (rank.size === 0) return symbols;
  const out = [...symbols];
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < out.length; i++) {
      const r = rank.get(pairKey(out[i], out[i + 1]));
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) return out;
    out.splice(best, 2, out[best] + out[best + 1]);
  }
}

export function buildByteLevelTokenizer(options: TokenizerBuildOptions): BuiltTokenizer {
  const addedContents = [
    CHAT_SPECIAL_TOKENS.endOfText,
    CHAT_SPECIAL_TOKENS.imStart,
    CHAT_SPECIAL_TOKENS.imEnd,
    ...AGENT_TAG_TOKENS,
  ];
  const minimum = 256 + addedContents.length;
  if (!Number.isInteger(options.vocabularySize) || options.vocabularySize < minimum) {
    throw new ModelSpecError(
      `vocabularySize must be an integer of at least ${minimum} (256 bytes + ${addedContents.length} added tokens), got ${options.vocabularySize}`,
    );
  }
  const byteCharacters = byteToCharacterTable();
  const encoder = new TextEncoder();
  const words: Word[] = [...options.pretokenCounts]
    .filter(([pretoken, count]) => pretoken.length > 0 && count > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([pretoken, count]) => ({
      symbols: Array.from(encoder.encode(pretoken), (byte) => byteCharacters[byte]),
      count,
    }));
  const given = options.merges ?? [];
  const known = new Set(byteCharacters);
  for (const [left, right] of given) {
    if (!known.has(left) || !known.has(right))
      throw new ModelSpecError(
        `merge "${left} ${right}" uses a symbol that is neither a byte nor the result of an earlier merge`,
      );
    known.add(left + right);
  }
  if (given.length > options.vocabularySize - minimum)
    throw new ModelSpecError(
      `${given.length} merges do not fit in a vocabulary of ${options.vocabularySize}`,
    );
  const rank = new Map(given.map(([left, right], index) => [pairKey(left, right), index]));
  for (const word of words) word.symbols = applyMerges(word.symbols, rank);
  const merges = [
    ...given,
    ...learnMerges(words, options.vocabularySize - minimum - given.length, options.minPairCount ?? 2),
  ];

  const vocab = new Map<string, number>(byteCharacters.map((character, byte) => [character, byte]));
  for (const [left, right] of merges) {
    const merged = left + right;
    if (!vocab.has(merged)) vocab.set(merged, vocab.size);
  }
  const bpeSize = vocab.size;
  const added = addedContents.map((content, index) => ({
    id: bpeSize + index,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: (Object.values(CHAT_SPECIAL_TOKENS) as string[]).includes(content),
  }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: QWEN2_SPLIT_PATTERN }, behavior: 'Isolated', invert: false },
        byteLevel,
      ],
    },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: merges.map(([left, right]) => pairKey(left, right)),
    },
  };
  const addedTokensDecoder = Object.fromEntries(added.map(({ id, ...token }) => [String(id), token]));
  const tokenizerConfigJson = {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: addedTokensDecoder,
    additional_special_tokens: [CHAT_SPECIAL_TOKENS.imStart, CHAT_SPECIAL_TOKENS.imEnd],
    bos_token: null,
    chat_template: options.chatTemplate ?? CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: CHAT_SPECIAL_TOKENS.imEnd,
    errors: 'replace',
    model_max_length: options.modelMaxLength ?? 32768,
    pad_token: CHAT_SPECIAL_TOKENS.endOfText,
    split_special_tokens: false,
    tokenizer_class: 'Qwen2Tokenizer',
    unk_token: null,
  };
  return {
    tokenizerJson,
    tokenizerConfigJson,
    vocabularySize: bpeSize + added.length,
    ids: { endOfText: bpeSize, imStart: bpeSize + 1, imEnd: bpeSize + 2 },
  };
}
