/**
 * The generation loop: prompts are prefilled in chunks, then every row of the batch advances one token per
 * forward pass with the key/value cache, until EOS, a stop string or the token budget.
 *
 * Same seed, same tokens, whatever else is in the batch: each row draws its own uniform numbers
 * (random.ts) and chooses its own token (sampling.ts), and rows are laid out so that ONNX Runtime computes
 * each row with bit-identical arithmetic. That last part needs care:
 * - a row's softmax and attention sums run over its cache columns in SIMD lanes, so shifting a row by a
 *   number of padding columns that is not a multiple of the vector width changes the rounding. Every row is
 *   padded on the left to a multiple of CACHE_ALIGNMENT when it is prefilled, rows join a running batch
 *   only when its column count is a multiple of it (at most CACHE_ALIGNMENT - 1 steps of waiting), and
 *   padding is only ever added or removed in multiples of it;
 * - matrix products with more than one row sum long inner dimensions in blocks (1024 in ONNX Runtime's
 *   CPU kernels), so a prompt is only prefilled with prompts of the same padded width, never padded to a
 *   longer neighbour, and attention must be one query row per (row, head) when decoding: true of optimum's
 *   exports (they repeat key/value heads) and of onnx-builder.ts.
 */
import { GenerationRequestError } from './errors';
import { KvCache } from './kv-cache';
import { SamplingStream, type Seed } from './random';
import {
  candidatesNeeded,
  chooseToken,
  usesOpenNucleus,
  type RowChoice,
  type SamplingParams,
} from './sampling';
import { rowHeadOutputs } from './sampling-head-io';
import type { DecoderRunner, ForwardInput, ForwardOutput } from './session';
import { IncrementalDecoder, type ChatMessage, type PolicyTokenizer } from './tokenizer';

export type FinishReason = 'stop' | 'eos' | 'length';

export interface GenerateRequest {
  /** Text, or chat messages rendered with the model's chat template (ending with the assistant's turn). */
  prompt: string | ChatMessage[];
  maxNewTokens: number;
  /** 0 is greedy. */
  temperature: number;
  /** Keep the smallest set of most probable tokens reaching this mass. Omitted or 1: off. */
  topP?: number;
  /** Keep the k most probable tokens. Omitted or 0: off. */
  topK?: number;
  /** The same seed gives the same tokens and log-probs. */
  seed: Seed;
  /** Generation ends when the text contains one of these; the text returned stops before it. */
  stop?: string[];
}

export interface GenerateResult {
  /** The generated text: without the final EOS token, and cut before the stop string if one matched. */
  text: string;
  /** Every generated token, including the EOS or the token that completed a stop string. */
  tokenIds: number[];
  /** log-probability of each generated token under the distribution it was sampled from (0 for greedy). */
  logProbs: number[];
  /** The prompt's token ids exactly as the model was fed them (chat template applied, special tokens added). */
  promptIds: number[];
  promptTokens: number;
  finishReason: FinishReason;
  /** The stop string that ended generation, when finishReason is 'stop'. */
  stopString?: string;
}

/** Rows are padded, prefilled and joined in multiples of this many cache columns (see the file comment). */
export const CACHE_ALIGNMENT = 16;
/** Top-p candidates a row reads at first; adapted to the sizes of its recent top-p sets. */
const INITIAL_NUCLEUS_BUDGET = 256;
const MIN_NUCLEUS_BUDGET = 64;
const MAX_NUCLEUS_BUDGET = 1024;

export interface PreparedRequest {
  promptIds: number[];
  params: SamplingParams;
  maxNewTokens: number;
  stop: string[];
  seed: Seed;
}

function fail(message: string): never {
  throw new GenerationRequestError(message);
}

/** Validates a request and tokenises its prompt. */
export function prepareRequest(
  request: GenerateRequest,
  tokenizer: PolicyTokenizer,
  maxPositions: number,
): PreparedRequest {
  if (typeof request !== 'object' || request === null) fail('a generate request must be an object');
  const { maxNewTokens, temperature } = request;
  const topP = request.topP ?? 1;
  const topK = request.topK ?? 0;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1)
    fail(`maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0)
    fail(`temperature must be a finite number >= 0 (0 is greedy), got ${temperature}`);
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1))
    fail(`topP must be in (0, 1] (1 turns it off), got ${topP}`);
  if (!Number.isInteger(topK) || topK < 0) fail(`topK must be an integer >= 0 (0 turns it off), got ${topK}`);
  const stop = request.stop ?? [];
  if (!Array.isArray(stop) || stop.some((entry) => typeof entry !== 'string' || entry.length === 0))
    fail('stop must be a list of non-empty strings');
  let promptIds: number[];
  if (typeof request.prompt === 'string') {
    promptIds = tokenizer.encode(request.prompt, { addSpecialTokens: true });
  } else if (Array.isArray(request.prompt)) {
    for (const message of request.prompt) {
      if (
        typeof message !== 'object' ||
        message === null ||
        typeof message.content !== 'string' ||
        !['system', 'user', 'assistant', 'tool'].includes(message.role)
      ) {
        fail('each chat message must be { role: "system" | "user" | "assistant" | "tool", content: string }');
      }
    }
    promptIds = tokenizer.encodeChat(request.prompt);
  } else {
    fail('prompt must be a string or a list of chat messages');
  }
  if (promptIds.length === 0) fail('the prompt encodes to no tokens; give at least one character');
  if (promptIds.length + maxNewTokens > maxPositions) {
    fail(
      `the prompt (${promptIds.length} tokens) plus maxNewTokens (${maxNewTokens}) exceeds the model's ${maxPositions} positions`,
    );
  }
  return {
    promptIds,
    params: { temperature, topK, topP },
    maxNewTokens,
    stop: [...stop],
    seed: request.seed,
  };
}

/** One request's progress. */
export class Sequence {
  readonly generated: number[] = [];
  readonly logProbs: number[] = [];
  finishReason: FinishReason | null = null;
  /** Tokens whose keys and values are in the cache (the pending token is not yet). */
  cachedTokens = 0;
  /** The last chosen token, fed to the next forward pass. */
  pending = -1;
  nucleusBudget = INITIAL_NUCLEUS_BUDGET;
  /** Open top-p rows fetch the full distribution on their first token and while their sets are large. */
  wantsFullDistribution: boolean;
  private readonly stream: SamplingStream;
  private readonly decoder: IncrementalDecoder | null;
  private readonly longestStop: number;
  private stopMatch: { index: number; stop: string } | null = null;

  constructor(
    readonly request: PreparedRequest,
    private readonly tokenizer: PolicyTokenizer,
    private readonly eosTokenIds: ReadonlySet<number>,
  ) {
    this.stream = SamplingStream.fromSeed(request.seed);
    this.decoder = request.stop.length > 0 ? new IncrementalDecoder(tokenizer) : null;
    this.longestStop = Math.max(0, ...request.stop.map((stop) => stop.length));
    this.wantsFullDistribution = usesOpenNucleus(request.params);
  }

  get finished(): boolean {
    return this.finishReason !== null;
  }

  /** The two uniform numbers for the next token: draws 2t and 2t+1 of the request's stream. */
  drawUniforms(): [number, number] {
    return [this.stream.next(), this.stream.next()];
  }

  /** Rows that will search the full distribution read no candidates. */
  candidatesNeeded(vocabularySize: number): number {
    return this.wantsFullDistribution
      ? 0
      : candidatesNeeded(this.request.params, this.nucleusBudget, vocabularySize);
  }

  accept(token: number, logProb: number, keptCount: number): void {
    this.generated.push(token);
    this.logProbs.push(logProb);
    this.pending = token;
    if (usesOpenNucleus(this.request.params)) {
      // Depends only on this row's own history, so the path it takes is the same in any batch.
      this.nucleusBudget = Math.min(
        MAX_NUCLEUS_BUDGET,
        Math.max(MIN_NUCLEUS_BUDGET, 2 ** Math.ceil(Math.log2(2 * keptCount))),
      );
      this.wantsFullDistribution = keptCount > MAX_NUCLEUS_BUDGET;
    }
    if (this.eosTokenIds.has(token)) {
      this.finishReason = 'eos';
      return;
    }
    if (this.decoder !== null) {
      const before = this.decoder.text.length;
      this.decoder.push(token);
      const text = this.decoder.text;
      const searchFrom = Math.max(0, before - this.longestStop + 1);
      for (const stop of this.request.stop) {
        const index = text.indexOf(stop, searchFrom);
        if (index >= 0 && (this.stopMatch === null || index < this.stopMatch.index))
          this.stopMatch = { index, stop };
      }
      if (this.stopMatch !== null) {
        this.finishReason = 'stop';
        return;
      }
    }
    if (this.generated.length >= this.request.maxNewTokens) this.finishReason = 'length';
  }

  result(): GenerateResult {
    const finishReason = this.finishReason ?? 'length';
    const textIds = finishReason === 'eos' ? this.generated.slice(0, -1) : this.generated;
    let text = this.tokenizer.decode(textIds);
    if (this.stopMatch !== null) text = text.slice(0, this.stopMatch.index);
    return {
      text,
      tokenIds: [...this.generated],
      logProbs: [...this.logProbs],
      promptIds: [...this.request.promptIds],
      promptTokens: this.request.promptIds.length,
      finishReason,
      ...(this.stopMatch === null ? {} : { stopString: this.stopMatch.stop }),
    };
  }
}

/** A running batch: its rows (finished rows stay until the next compaction) and their cache. */
export interface BatchState {
  rows: Sequence[];
  cache: KvCache;
}

export interface GenerationEngineOptions {
  /** Most prompt tokens per prefill pass; bounds the memory of the attention scores. */
  prefillTokenBudget: number;
}

/** Runs forward passes for batches of sequences; knows nothing of queues or scheduling (batcher.ts). */
export class GenerationEngine {
  constructor(
    private readonly runner: DecoderRunner,
    private readonly padTokenId: number,
    private readonly options: GenerationEngineOptions,
  ) {}

  private get vocabularySize(): number {
    return this.runner.head.vocabularySize;
  }

  /**
   * One forward pass whose last position chooses a token for every unfinished row. If a top-p row needs
   * the full distribution that was not fetched, the pass is repeated with it (same inputs, same outputs).
   */
  private async forwardAndChoose(
    rows: readonly Sequence[],
    input: Omit<ForwardInput, 'inverseTemperature' | 'blockUniform' | 'topCount' | 'fetchProbabilities'>,
  ): Promise<ForwardOutput> {
    // Runs once per decode step for every row: plain loops, no per-step closures.
    const count = rows.length;
    const inverseTemperature = new Float32Array(count);
    const blockUniform = new Float32Array(count);
    const uniforms: [number, number][] = new Array(count);
    let topCount = 0;
    let fetchProbabilities = false;
    for (let r = 0; r < count; r++) {
      const row = rows[r];
      const { temperature } = row.request.params;
      inverseTemperature[r] = temperature > 0 ? 1 / temperature : 1;
      if (row.finished) {
        uniforms[r] = [0, 0];
        continue;
      }
      uniforms[r] = row.drawUniforms();
      blockUniform[r] = uniforms[r][0];
      topCount = Math.max(topCount, row.candidatesNeeded(this.vocabularySize));
      fetchProbabilities ||= row.wantsFullDistribution;
    }
    const sampling = { ...input, inverseTemperature, blockUniform, topCount };
    let output = await this.runner.forward({ ...sampling, fetchProbabilities });
    let choices = this.choose(rows, output, topCount, uniforms);
    if (!fetchProbabilities && choices.some((choice) => choice?.kind === 'needs-full-distribution')) {
      output = await this.runner.forward({ ...sampling, fetchProbabilities: true });
      choices = this.choose(rows, output, topCount, uniforms);
    }
    for (let r = 0; r < count; r++) {
      const choice = choices[r];
      if (choice === null) continue;
      if (choice.kind !== 'token')
        throw new Error('internal error: full probabilities were fetched but a row still lacked them');
      rows[r].accept(choice.token, choice.logProb, choice.keptCount);
    }
    return output;
  }

  private choose(
    rows: readonly Sequence[],
    output: ForwardOutput,
    topCount: number,
    uniforms: readonly [number, number][],
  ): (RowChoice | null)[] {
    const shape = {
      rows: rows.length,
      topCount,
      vocabularySize: this.vocabularySize,
      paddedVocabularySize: this.runner.head.paddedVocabularySize,
    };
    const choices: (RowChoice | null)[] = new Array(rows.length);
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r];
      if (row.finished) {
        choices[r] = null;
        continue;
      }
      const needed = row.candidatesNeeded(shape.vocabularySize);
      choices[r] = chooseToken(
        row.request.params,
        uniforms[r],
        rowHeadOutputs(output, shape, r, needed),
        needed,
      );
    }
    return choices;
  }

  /**
   * Prefills sequences whose prompts pad to the same width (so none is shifted by another: each row's
   * cache is what it would be alone) in chunks of at most prefillTokenBudget columns counted from the end,
   * and chooses their first tokens.
   */
  async prefill(sequences: readonly Sequence[]): Promise<BatchState> {
    const count = sequences.length;
    const width = alignUp(sequences[0].request.promptIds.length);
    if (sequences.some((sequence) => alignUp(sequence.request.promptIds.length) !== width)) {
      throw new Error('internal error: sequences prefilled together must pad to the same width');
    }
    const chunk = Math.max(
      CACHE_ALIGNMENT,
      Math.floor(this.options.prefillTokenBudget / CACHE_ALIGNMENT) * CACHE_ALIGNMENT,
    );
    let cache = KvCache.empty(this.runner.cacheShape, count);
    for (let end = width - Math.floor((width - 1) / chunk) * chunk; ; end += chunk) {
      const start = cache.columns;
      const inputIds = new BigInt64Array(count * (end - start)).fill(BigInt(this.padTokenId));
      const positionIds = new BigInt64Array(count * (end - start));
      const attentionMask = new BigInt64Array(count * end);
      sequences.forEach((sequence, r) => {
        const prompt = sequence.request.promptIds;
        const padding = width - prompt.length;
        for (let column = padding; column < end; column++) {
          attentionMask[r * end + column] = 1n;
          if (column < start) continue;
          inputIds[r * (end - start) + column - start] = BigInt(prompt[column - padding]);
          positionIds[r * (end - start) + column - start] = BigInt(column - padding);
        }
      });
      const input = { rows: count, sequence: end - start, inputIds, attentionMask, positionIds, cache };
      if (end === width) {
        cache = (await this.forwardAndChoose(sequences, input)).cache;
        break;
      }
      cache = (
        await this.runner.forward({
          ...input,
          inverseTemperature: new Float32Array(count).fill(1),
          blockUniform: new Float32Array(count),
          topCount: 0,
          fetchProbabilities: false,
        })
      ).cache;
    }
    for (const sequence of sequences) sequence.cachedTokens = sequence.request.promptIds.length;
    return { rows: [...sequences], cache };
  }

  /** Feeds every row its pending token and chooses the next one. */
  async decode(batch: BatchState): Promise<BatchState> {
    const { rows, cache } = batch;
    const count = rows.length;
    const columns = cache.columns + 1;
    const ids = new BigInt64Array(count);
    const positions = new BigInt64Array(count);
    const mask = new BigInt64Array(count * columns);
    for (let r = 0; r < count; r++) {
      const row = rows[r];
      ids[r] = BigInt(row.pending);
      positions[r] = BigInt(row.cachedTokens);
      mask.fill(1n, r * columns + columns - (row.cachedTokens + 1), (r + 1) * columns);
    }
    const output = await this.forwardAndChoose(rows, {
      rows: count,
      sequence: 1,
      inputIds: ids,
      attentionMask: mask,
      positionIds: positions,
      cache,
    });
    for (const row of rows) row.cachedTokens += 1;
    return { rows, cache: output.cache };
  }

  /**
   * Drops finished rows, trims padding every remaining row has (in whole alignment units) and appends the
   * joining batches. Only valid when every column count is a multiple of CACHE_ALIGNMENT.
   */
  static merge(batch: BatchState | null, joining: readonly BatchState[]): BatchState | null {
    const parts: { cache: KvCache; rows: number[] }[] = [];
    const rows: Sequence[] = [];
    let columns = 0;
    for (const part of batch === null ? joining : [batch, ...joining]) {
      const kept = part.rows.map((row, index) => ({ row, index })).filter(({ row }) => !row.finished);
      if (kept.length === 0) continue;
      if (part.cache.columns % CACHE_ALIGNMENT !== 0)
        throw new Error(`internal error: merging a cache of ${part.cache.columns} columns`);
      columns = Math.max(columns, alignUp(Math.max(...kept.map(({ row }) => row.cachedTokens))));
      parts.push({ cache: part.cache, rows: kept.map(({ index }) => index) });
      rows.push(...kept.map(({ row }) => row));
    }
    if (rows.length === 0) return null;
    const unchanged =
      batch !== null &&
      parts.length === 1 &&
      parts[0].cache === batch.cache &&
      parts[0].rows.length === batch.rows.length &&
      columns === batch.cache.columns;
    if (unchanged) return batch;
    return { rows, cache: KvCache.assemble(parts[0].cache.shape, parts, columns) };
  }
}

export function alignUp(length: number): number {
  return Math.ceil(length / CACHE_ALIGNMENT) * CACHE_ALIGNMENT;
}
