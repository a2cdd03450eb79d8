/**
 * The object users hold: a loaded model folder serving `generate` requests through one batched
 * ONNX Runtime session.
 */
import type { ModelConfig } from './config';
import { ExecutionProviderError, ModelFolderError, PolicyDisposedError } from './errors';
import { loadModelFolder } from './folder';
import { RequestBatcher, type BatcherStats } from './batcher';
import {
  GenerationEngine,
  Sequence,
  prepareRequest,
  type GenerateRequest,
  type GenerateResult,
} from './generate';
import { encodeModel } from './onnx-graph';
import { attachSamplingHead } from './sampling-head';
import { DecoderRunner, createSession, type RuntimeOptions } from './session';
import type { ChatMessage, PolicyTokenizer } from './tokenizer';

export interface PolicyOptions extends RuntimeOptions {
  /** Most requests sharing one forward pass. Default 8. */
  maxBatchSize?: number;
  /**
   * Most prompt tokens per prefill pass; longer prompts are prefilled in chunks, which bounds the attention
   * scores (heads × chunk × context floats, several copies) to a few hundred MB for Qwen2.5-0.5B at 5K
   * tokens. Default 1024.
   */
  prefillTokenBudget?: number;
}

export interface PolicyStats extends BatcherStats {
  /** Every session.run so far (prefill and decode). */
  sessionRuns: number;
  sessionRunMs: number;
  /** Runs that copied out the full probabilities for a large top-p set. */
  fullDistributionRuns: number;
}

export interface Policy {
  readonly folder: string;
  readonly config: ModelConfig;
  readonly tokenizer: PolicyTokenizer;
  /** Ids that end generation. */
  readonly eosTokenIds: readonly number[];
  generate(request: GenerateRequest): Promise<GenerateResult>;
  /** The prompt text the chat template makes of `messages`, ending with the assistant's turn. */
  applyChatTemplate(messages: readonly ChatMessage[]): string;
  stats(): PolicyStats;
  /** Rejects queued requests, waits for the running pass and releases the session. */
  dispose(): Promise<void>;
}

export async function loadPolicy(folderPath: string, options: PolicyOptions = {}): Promise<Policy> {
  const maxBatchSize = options.maxBatchSize ?? 8;
  const prefillTokenBudget = options.prefillTokenBudget ?? 1024;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1)
    throw new RangeError(`maxBatchSize must be a positive integer, got ${maxBatchSize}`);
  if (!Number.isInteger(prefillTokenBudget) || prefillTokenBudget < 16)
    throw new RangeError(`prefillTokenBudget must be an integer >= 16, got ${prefillTokenBudget}`);

  const folder = await loadModelFolder(folderPath);
  const { config, tokenizer } = folder;
  const head = attachSamplingHead(
    folder.onnxModel,
    config.vocabSize,
    tokenizer.vocabularySize,
    folder.onnxPath,
  );
  let session;
  try {
    session = await createSession(encodeModel(folder.onnxModel), options, {
      externalDataFolder: folder.externalDataFolder,
    });
  } catch (error) {
    if (error instanceof ExecutionProviderError) throw error;
    throw new ModelFolderError(
      folder.onnxPath,
      `ONNX Runtime cannot load the model (${(error as Error).message.split('\n')[0]})`,
    );
  }
  const runner = new DecoderRunner(
    session,
    { layers: config.numHiddenLayers, kvHeads: config.numKeyValueHeads, headDim: config.headDim },
    head,
  );
  const engine = new GenerationEngine(runner, folder.padTokenId, { prefillTokenBudget });
  const batcher = new RequestBatcher(engine, maxBatchSize, () => runner.stats.runMs);
  const eos = new Set(folder.eosTokenIds);
  let disposed = false;

  return {
    folder: folderPath,
    config,
    tokenizer,
    eosTokenIds: [...folder.eosTokenIds],
    async generate(request: GenerateRequest): Promise<GenerateResult> {
      if (disposed) throw new PolicyDisposedError();
      const prepared = prepareRequest(request, tokenizer, config.maxPositionEmbeddings);
      return batcher.submit(new Sequence(prepared, tokenizer, eos));
    },
    applyChatTemplate: (messages) => tokenizer.applyChatTemplate(messages),
    stats: () => ({
      ...batcher.stats,
      sessionRuns: runner.stats.runs,
      sessionRunMs: runner.stats.runMs,
      fullDistributionRuns: runner.stats.fullDistributionRuns,
    }),
    async dispose(): Promise<void> {
      if (disposed) return;
      disposed = true;
      await batcher.dispose();
      await runner.release();
    },
  };
}
