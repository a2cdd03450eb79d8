/**
 * The three side-effecting steps of one ReMemR1 episode — prepare, memory step, answer — shared by the
 * Temporal activities and the plain in-process loop, so both compute exactly the same thing.
 *
 * Every step is idempotent: it derives its sampling seed from (settings.seed, episode, step), so a retried
 * step produces the same text, and it writes its record with put-if-absent, so a step that already finished
 * (say, just before its worker died) is read back instead of being recomputed or written twice.
 */
import { LRUCache } from 'lru-cache';
import {
  MemoryHistory,
  buildFinalPrompt,
  DEFAULT_MEMORY_CONTENT,
  DEFAULT_METRICS_MODE,
  MEMORY_CONTENTS,
  buildMemoryStepPrompt,
  formatRecalled,
  parseFinalTurn,
  parseMemoryTurn,
  parsePromptTemplates,
  scoreAnswer,
  type PromptTemplates,
} from '../agent';
import type { BlobStore } from '../storage';
import {
  storedOrComputed,
  episodeAnswerKey,
  episodeChunkKey,
  episodeChunkManifestKey,
  episodeInputKey,
  episodeMemoryKey,
  runResultKey,
} from '../storage';
import type { GenerateResult, Policy } from '../model';
import { EpisodeInputError } from './errors';
import { isPolicyProvider, policyProvider, type PolicyProvider } from './policies';
import type {
  AnswerRecord,
  ChunkManifest,
  EpisodeInputRecord,
  EpisodeRef,
  EpisodeResult,
  EpisodeSettings,
  MemoryStepRecord,
  MemoryStepSummary,
  TurnSampling,
} from './types';

export { EpisodeInputError };

export interface EpisodeStepsDeps {
  store: BlobStore;
  /** The policy of every episode, or a provider choosing one by the settings' `policyVersion`. */
  policy: Policy | PolicyProvider;
  /** How many episodes' retrieval indexes one worker keeps warm. */
  historyCacheSize?: number;
  /** Called while a long step runs (activities heartbeat from it). */
  onProgress?: () => void;
  /** Told how long generation and retrieval took (activities turn this into metrics); not for cached steps. */
  observe?: (observation: StepObservation) => void;
}

/** One timed piece of a step: a model turn's generation (tokens produced) or a callback query's retrieval. */
export type StepObservation =
  | { kind: 'generation'; turn: 'memory' | 'answer'; tokens: number; milliseconds: number }
  | { kind: 'retrieval'; milliseconds: number };

interface CachedHistory {
  history: MemoryHistory;
  /** Steps 0..throughStep are in the index. */
  throughStep: number;
}

const PREVIEW_CHARS = 240;

export function stepSeed(settings: EpisodeSettings, episodeId: string, step: number | 'final'): string {
  return `${settings.seed}/${episodeId}/${step}`;
}

export class EpisodeSteps {
  private readonly store: BlobStore;
  private readonly policies: PolicyProvider;
  private readonly histories: LRUCache<string, CachedHistory>;
  private readonly inputs: LRUCache<string, EpisodeInputRecord>;
  private readonly parsedTemplates = new LRUCache<string, PromptTemplates>({ max: 16 });
  private readonly onProgress: () => void;
  private readonly observe: (observation: StepObservation) => void;

  constructor(deps: EpisodeStepsDeps) {
    this.store = deps.store;
    this.policies = isPolicyProvider(deps.policy) ? deps.policy : policyProvider(deps.policy);
    this.histories = new LRUCache({ max: deps.historyCacheSize ?? 256 });
    this.inputs = new LRUCache({ max: 64 });
    this.onProgress = deps.onProgress ?? (() => undefined);
    this.observe = deps.observe ?? (() => undefined);
  }

  /** Tokenises and chunks the document, storing one blob per chunk and a manifest. */
  async prepare(ref: EpisodeRef, settings: EpisodeSettings): Promise<ChunkManifest> {
    // The manifest is stored last: its presence means every chunk is stored.
    return storedOrComputed(this.store, episodeChunkManifestKey(ref.runId, ref.episodeId), () => this.chunk(ref, settings));
  }

  /** Tokenises the document and stores its chunks; returns their manifest. */
  private async chunk(ref: EpisodeRef, settings: EpisodeSettings): Promise<ChunkManifest> {
    if (!Number.isInteger(settings.chunkTokens) || settings.chunkTokens < 16) {
      throw new EpisodeInputError(`chunkTokens must be an integer ≥ 16, got ${settings.chunkTokens}`);
    }
    const input = await this.input(ref);
    const policy = await this.policies.policyFor(settings.policyVersion);
    const tokens = policy.tokenizer.encodePlain(input.context);
    if (tokens.length === 0) throw new EpisodeInputError(`episode ${ref.episodeId}: the document is empty after tokenisation`);
    const ranges: Array<[number, number]> = [];
    for (let start = 0; start < tokens.length; start += settings.chunkTokens) {
      ranges.push([start, Math.min(tokens.length, start + settings.chunkTokens)]);
    }
    const kept = settings.maxChunks > 0 ? ranges.slice(0, settings.maxChunks) : ranges;
    for (let index = 0; index < kept.length; index += 1) {
      const [start, end] = kept[index];
      await this.store.put(episodeChunkKey(ref.runId, ref.episodeId, index), policy.tokenizer.decode(tokens.slice(start, end)));
      if (index % 64 === 63) this.onProgress();
    }
    return { chunkCount: kept.length, documentTokens: tokens.length, chunkTokenRanges: kept };
  }

  /** Reads chunk `step`, generates, parses, runs the callback query over memories of steps < step. */
  async memoryStep(ref: EpisodeRef, settings: EpisodeSettings, step: number): Promise<MemoryStepSummary> {
    const record = await storedOrComputed(this.store, episodeMemoryKey(ref.runId, ref.episodeId, step), () =>
      this.readChunk(ref, settings, step),
    );
    this.remember(ref, record);
    return summarise(record);
  }

  /** One memory turn over chunk `step`, and the callback query's retrieval. */
  private async readChunk(ref: EpisodeRef, settings: EpisodeSettings, step: number): Promise<MemoryStepRecord> {
    if (settings.memoryContent !== undefined && !MEMORY_CONTENTS.includes(settings.memoryContent)) {
      throw new EpisodeInputError(`memoryContent must be one of ${MEMORY_CONTENTS.join(', ')}, got ${JSON.stringify(settings.memoryContent)}`);
    }
    const input = await this.input(ref);
    const previous = step > 0 ? await this.store.getJson<MemoryStepRecord>(episodeMemoryKey(ref.runId, ref.episodeId, step - 1)) : null;
    const chunk = new TextDecoder().decode(await this.store.get(episodeChunkKey(ref.runId, ref.episodeId, step)));
    const previousMemory = previous?.memory ?? null;
    const prompt = buildMemoryStepPrompt({
      question: input.question,
      recalled: settings.mode === 'rememr1' ? formatRecalled(previous?.recalled ?? []) : null,
      memory: previousMemory,
      chunk,
      mode: settings.mode,
      templates: this.templates(settings),
    });
    const { generated, sampling } = await this.generate(prompt, settings, settings.memoryMaxNewTokens, stepSeed(settings, ref.episodeId, step), 'memory');
    this.onProgress();
    const parsed = parseMemoryTurn(generated.text, settings.mode, previousMemory, settings.memoryContent ?? DEFAULT_MEMORY_CONTENT);
    const recallQuery = settings.mode === 'rememr1' ? parsed.recallQuery : null;
    let recalled: MemoryStepRecord['recalled'] = [];
    if (recallQuery !== null && settings.callback !== false) {
      const started = performance.now();
      recalled = (await this.historyBefore(ref, step)).recallForStep(step, recallQuery, settings.retrieval);
      this.observe({ kind: 'retrieval', milliseconds: performance.now() - started });
    }
    return {
      step,
      memory: parsed.memory,
      recallQuery,
      recalled,
      formatValid: parsed.formatValid,
      issues: parsed.issues,
      response: generated.text,
      tokenIds: generated.tokenIds,
      logProbs: generated.logProbs,
      promptIds: generated.promptIds,
      promptTokens: generated.promptTokens,
      finishReason: generated.finishReason,
      sampling,
    };
  }

  /** The final turn: answer from the last memory, score against the gold answers, write the result row. */
  async answer(ref: EpisodeRef, settings: EpisodeSettings, chunkCount: number): Promise<EpisodeResult> {
    const result = await storedOrComputed(this.store, runResultKey(ref.runId, ref.episodeId), () =>
      this.scoredResult(ref, settings, chunkCount),
    );
    this.histories.delete(historyKey(ref));
    return result;
  }

  /** The episode's result row: its answer (generated unless stored) scored against the gold answers. */
  private async scoredResult(ref: EpisodeRef, settings: EpisodeSettings, chunkCount: number): Promise<EpisodeResult> {
    const input = await this.input(ref);
    const answer = await storedOrComputed(this.store, episodeAnswerKey(ref.runId, ref.episodeId), () =>
      this.finalTurn(ref, settings, chunkCount),
    );
    const steps = await this.readRecords(ref, chunkCount);
    const manifest = await this.store.getJson<ChunkManifest>(episodeChunkManifestKey(ref.runId, ref.episodeId));
    const metricsMode = settings.metricsMode ?? DEFAULT_METRICS_MODE;
    return {
      ...ref,
      rowIndex: input.rowIndex,
      id: input.id,
      question: input.question,
      answer: answer.answer,
      answers: input.answers,
      scores: input.answers.length === 0 ? null : scoreAnswer(answer.answer, input.answers, metricsMode),
      metricsMode,
      chunkCount,
      documentTokens: manifest.documentTokens,
      formatValidSteps: steps.filter((record) => record.formatValid).length,
      recallQueries: steps.filter((record) => record.recallQuery !== null).length,
    };
  }

  /** The final model turn: the answer from the last memory (and, in rememr1 mode, what its recall found). */
  private async finalTurn(ref: EpisodeRef, settings: EpisodeSettings, chunkCount: number): Promise<AnswerRecord> {
    const input = await this.input(ref);
    const last = await this.store.getJson<MemoryStepRecord>(episodeMemoryKey(ref.runId, ref.episodeId, chunkCount - 1));
    const prompt = buildFinalPrompt({
      question: input.question,
      recalled: settings.mode === 'rememr1' ? formatRecalled(last.recalled) : null,
      memory: last.memory,
      mode: settings.mode,
      templates: this.templates(settings),
    });
    const { generated, sampling } = await this.generate(prompt, settings, settings.answerMaxNewTokens, stepSeed(settings, ref.episodeId, 'final'), 'answer');
    const parsed = parseFinalTurn(generated.text);
    return {
      response: generated.text,
      answer: parsed.answer,
      formatValid: parsed.formatValid,
      tokenIds: generated.tokenIds,
      logProbs: generated.logProbs,
      promptIds: generated.promptIds,
      promptTokens: generated.promptTokens,
      sampling,
    };
  }

  /**
   * One model turn: the prompt as the user message, sampled by the settings' policy version as the settings
   * say, seeded per step. Returns the generation (with the prompt ids the model saw) and how it was sampled.
   */
  private async generate(
    prompt: string,
    settings: EpisodeSettings,
    maxNewTokens: number,
    seed: string,
    turn: 'memory' | 'answer',
  ): Promise<{ generated: GenerateResult; sampling: TurnSampling }> {
    const policy = await this.policies.policyFor(settings.policyVersion);
    const started = performance.now();
    const generated = await policy.generate({
      prompt: [{ role: 'user', content: prompt }],
      maxNewTokens,
      temperature: settings.temperature,
      topP: settings.topP,
      topK: settings.topK,
      seed,
    });
    this.observe({
      kind: 'generation',
      turn,
      tokens: generated.tokenIds.length,
      milliseconds: performance.now() - started,
    });
    const sampling: TurnSampling = {
      temperature: settings.temperature,
      topP: settings.topP,
      topK: settings.topK,
      seed,
      policyVersion: settings.policyVersion ?? null,
      maxNewTokens,
    };
    return { generated, sampling };
  }

  private async input(ref: EpisodeRef): Promise<EpisodeInputRecord> {
    const key = episodeInputKey(ref.runId, ref.episodeId);
    const cached = this.inputs.get(key);
    if (cached) return cached;
    const input = await this.store.getJson<EpisodeInputRecord>(key);
    this.inputs.set(key, input);
    return input;
  }

  /** User templates are parsed once per distinct text, not at every step. */
  private templates(settings: EpisodeSettings): PromptTemplates | undefined {
    const text = settings.promptTemplates;
    if (!text) return undefined;
    let parsed = this.parsedTemplates.get(text);
    if (!parsed) {
      parsed = parsePromptTemplates(text);
      this.parsedTemplates.set(text, parsed);
    }
    return parsed;
  }

  private async readRecords(ref: EpisodeRef, count: number): Promise<MemoryStepRecord[]> {
    const records: MemoryStepRecord[] = [];
    for (let step = 0; step < count; step += 1) {
      records.push(await this.store.getJson<MemoryStepRecord>(episodeMemoryKey(ref.runId, ref.episodeId, step)));
    }
    return records;
  }

  /**
   * The memory history of steps < `step`. Kept warm per episode in this worker; a worker that picks up an
   * episode mid-way (another worker died, or continue-as-new moved it) rebuilds it once from the stored records.
   */
  private async historyBefore(ref: EpisodeRef, step: number): Promise<MemoryHistory> {
    const cached = this.histories.get(historyKey(ref));
    if (cached && cached.throughStep === step - 1) return cached.history;
    const history = new MemoryHistory();
    for (const record of await this.readRecords(ref, step)) addToHistory(history, record);
    this.histories.set(historyKey(ref), { history, throughStep: step - 1 });
    return history;
  }

  private remember(ref: EpisodeRef, record: MemoryStepRecord): void {
    const cached = this.histories.get(historyKey(ref));
    if (cached && cached.throughStep === record.step - 1) {
      addToHistory(cached.history, record);
      cached.throughStep = record.step;
    } else if (record.step === 0) {
      const history = new MemoryHistory();
      addToHistory(history, record);
      this.histories.set(historyKey(ref), { history, throughStep: 0 });
    }
  }
}

/** A step whose turn was invalid before any memory existed has no memory to remember. */
function addToHistory(history: MemoryHistory, record: MemoryStepRecord): void {
  if (record.memory !== null) history.add(record.step, record.memory);
}

function historyKey(ref: EpisodeRef): string {
  return `${ref.runId}/${ref.episodeId}`;
}

function preview(text: string): string {
  return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}…` : text;
}

function summarise(record: MemoryStepRecord): MemoryStepSummary {
  return {
    step: record.step,
    memoryPreview: preview(record.memory ?? ''),
    recallQuery: record.recallQuery,
    recalledStep: record.recalled.length > 0 ? record.recalled[0].step : null,
    formatValid: record.formatValid,
    generatedTokens: record.tokenIds.length,
  };
}
