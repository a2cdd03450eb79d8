/**
 * The model's tokenizer (`@huggingface/tokenizers` over tokenizer.json + tokenizer_config.json) and chat
 * template (`@huggingface/jinja`), plus an incremental decoder for watching generated text token by token.
 */
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { ChatTemplateError } from './errors';

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface EncodeOptions {
  /** Add what the tokenizer's post-processor adds (a BOS for some models; nothing for Qwen). Default false. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (`<|im_end|>` and the like). Default false, so text round-trips. */
  skipSpecialTokens?: boolean;
}

export { ChatTemplateError };

type JsonObject = Record<string, unknown>;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The token text of a `bos_token` / `eos_token` entry, which is a string or an AddedToken object. */
function tokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as JsonObject).content === 'string')
    return (value as JsonObject).content as string;
  return null;
}

/** A chat template entry: a string, or a list of named templates (the one named "default" is used). */
function selectChatTemplate(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.find(
      (entry) => typeof entry === 'object' && entry !== null && (entry as JsonObject).name === 'default',
    );
    if (named !== undefined && typeof (named as JsonObject).template === 'string')
      return (named as JsonObject).template as string;
  }
  return null;
}

export class PolicyTokenizer {
  private readonly tokenizer: Tokenizer;
  private readonly template: Template | null;
  /** Ids of tokens marked special (skipped by `decode(..., { skipSpecialTokens: true })`). */
  readonly specialTokenIds: ReadonlySet<number>;
  /** One more than the largest id the tokenizer can produce or decode. */
  readonly vocabularySize: number;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  /** Matches the text of any special token (null when there is none). */
  private readonly specialTokenPattern: RegExp | null;

  /**
   * `tokenizerJson` and `tokenizerConfig` are the parsed files; `chatTemplate` overrides the config's
   * (newer checkpoints ship it as chat_template.jinja).
   */
  constructor(tokenizerJson: JsonObject, tokenizerConfig: JsonObject, chatTemplate?: string) {
    this.tokenizer = new Tokenizer(tokenizerJson, {
      clean_up_tokenization_spaces: false,
      ...tokenizerConfig,
    });
    const templateText = chatTemplate ?? selectChatTemplate(tokenizerConfig.chat_template);
    this.template = templateText === null ? null : new Template(templateText);
    const added = this.tokenizer.get_added_tokens_decoder();
    this.specialTokenIds = new Set([...added].filter(([, token]) => token.special).map(([id]) => id));
    let largest = -1;
    for (const id of this.tokenizer.get_vocab(true).values()) largest = Math.max(largest, id);
    this.vocabularySize = largest + 1;
    this.bosToken = tokenContent(tokenizerConfig.bos_token);
    this.eosToken = tokenContent(tokenizerConfig.eos_token);
    const specialContents = [...added.values()]
      .filter((token) => token.special && token.content.length > 0)
      .map((token) => token.content)
      // longest first, so a token that is a prefix of another never wins the match
      .sort((a, b) => b.length - a.length);
    this.specialTokenPattern =
      specialContents.length === 0 ? null : new RegExp(specialContents.map(escapeRegExp).join('|'), 'g');
  }

  get hasChatTemplate(): boolean {
    return this.template !== null;
  }

  /**
   * Encodes text in which special-token strings (`<|im_end|>`, …) are meant as tokens: a template's rendering,
   * a raw prompt the caller built. Data (documents, questions, memories) goes through `encodePlain`.
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids;
  }

  /**
   * Encodes text as plain text: a special-token string in it (`<|im_end|>`, `<|im_start|>system`) becomes the
   * ordinary tokens that spell it, never the control token, so data cannot end a turn or open a system
   * message. Text without such strings encodes exactly as `encode` does.
   */
  encodePlain(text: string): number[] {
    return this.encodeKeepingSpansPlain(text, [[0, text.length]]);
  }

  /**
   * Encodes chat messages with the template: the template's own text keeps its control tokens, a special-token
   * string inside a message's content is plain text. Without such strings in the contents this is exactly
   * `encode(applyChatTemplate(messages))`.
   */
  encodeChat(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): number[] {
    const rendered = this.applyChatTemplate(messages, options);
    const pattern = this.specialTokenPattern;
    if (pattern === null || !messages.some((message) => message.content.match(pattern) !== null)) {
      return this.encode(rendered);
    }
    // Where each content sits in the rendering: render again with a marker per content (a run of NULs found
    // nowhere in the rendering fences the message's index), and check the contents were inserted unchanged.
    let fence = '\u0000';
    while (rendered.includes(fence)) fence += '\u0000';
    const marked = this.applyChatTemplate(
      messages.map((message, index) => ({ role: message.role, content: `${fence}${index}${fence}` })),
      options,
    );
    // split() with a capture group alternates the template's text and the message indexes.
    const parts = marked.split(new RegExp(`${fence}(\\d+)${fence}`));
    const contentSpans: Array<[number, number]> = [];
    let rebuilt = '';
    parts.forEach((part, i) => {
      const text = i % 2 === 1 ? messages[Number(part)].content : part;
      if (i % 2 === 1) contentSpans.push([rebuilt.length, rebuilt.length + text.length]);
      rebuilt += text;
    });
    if (rebuilt !== rendered) {
      throw new ChatTemplateError(
        'the chat template changes message contents, so a special-token string in a message cannot be kept as plain text',
      );
    }
    return this.encodeKeepingSpansPlain(rendered, contentSpans);
  }

  /**
   * `encode`, except that a special-token string overlapping one of `plainSpans` is spelled with ordinary
   * tokens; the text is cut only around those strings, so everything else encodes as `encode` would.
   */
  private encodeKeepingSpansPlain(text: string, plainSpans: ReadonlyArray<readonly [number, number]>): number[] {
    if (this.specialTokenPattern === null) return this.encode(text);
    const ids: number[] = [];
    let last = 0;
    for (const match of text.matchAll(this.specialTokenPattern)) {
      const start = match.index ?? 0;
      const end = start + match[0].length;
      if (!plainSpans.some(([from, to]) => start < to && end > from)) continue;
      if (start > last) ids.push(...this.encode(text.slice(last, start)));
      ids.push(...this.encodeWithoutAddedTokens(match[0]));
      last = end;
    }
    if (last < text.length) ids.push(...this.encode(text.slice(last)));
    return ids;
  }

  /** Normaliser, pre-tokeniser and model only: what the tokenizer does to text between added tokens. */
  private encodeWithoutAddedTokens(text: string): number[] {
    const { normalizer, pre_tokenizer: preTokenizer, model } = this.tokenizer;
    if (model === null) throw new ChatTemplateError('the tokenizer has no model');
    const normalized = normalizer === null ? text : normalizer.normalize(text);
    const pieces = preTokenizer === null ? [normalized] : preTokenizer.pre_tokenize(normalized);
    return model.encode(pieces).map((token) => model.tokens_to_ids.get(token) ?? model.unk_token_id ?? 0);
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  /** The id of a token string (an added token such as `<|im_end|>`, or a vocabulary entry). */
  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /** Renders messages with the chat template; by default ends with the assistant's turn opening. */
  applyChatTemplate(
    messages: readonly ChatMessage[],
    options: { addGenerationPrompt?: boolean } = {},
  ): string {
    if (this.template === null) {
      throw new ChatTemplateError(
        'this tokenizer has no chat template (tokenizer_config.json "chat_template" or chat_template.jinja); pass the prompt as a string',
      );
    }
    return this.template.render({
      messages: messages.map((message) => ({ role: message.role, content: message.content })),
      add_generation_prompt: options.addGenerationPrompt ?? true,
      bos_token: this.bosToken ?? '',
      eos_token: this.eosToken ?? '',
    });
  }
}

/**
 * Turns a growing list of token ids into text without re-decoding everything at each step: it decodes a
 * short window (the last stable prefix plus the new tokens) and holds back text that ends in an incomplete
 * UTF-8 sequence (decoded as U+FFFD) until the next token completes it.
 */
export class IncrementalDecoder {
  private readonly ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;
  private textSoFar = '';

  constructor(
    private readonly tokenizer: PolicyTokenizer,
    private readonly options: DecodeOptions = {},
  ) {}

  /** Adds a token; returns the text that became final with it (possibly empty). */
  push(id: number): string {
    this.ids.push(id);
    const prefixText = this.tokenizer.decode(
      this.ids.slice(this.prefixOffset, this.readOffset),
      this.options,
    );
    const fullText = this.tokenizer.decode(this.ids.slice(this.prefixOffset), this.options);
    if (fullText.length > prefixText.length && !fullText.endsWith('\uFFFD')) {
      const added = fullText.slice(prefixText.length);
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      this.textSoFar += added;
      return added;
    }
    return '';
  }

  /** Text of every token pushed so far that is final. */
  get text(): string {
    return this.textSoFar;
  }
}
