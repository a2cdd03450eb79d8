/**
 * The ONNX Runtime engine: the Qwen2 training graph (qwen2-graph.ts) with its backward pass from the
 * autodiff module, run by ONNX Runtime on the same execution providers as inference.
 *
 * Sequences are right-padded into a [rows, length] block; a session is built per block shape (length rounded
 * and rows padded as `paddedBlock` says) and kept in a small LRU cache, since ONNX Runtime
 * plans memory best for fixed shapes. Rows added for padding hold no tokens and no loss.
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { LRUCache } from 'lru-cache';
import { createSession, type RuntimeOptions } from '../model/session';
import type { DecoderSpec } from '../model-build/onnx-builder';
import { qwen2TensorSpecs } from '../model-build/qwen2-weights';
import { TrainingInputError } from './errors';
import {
  lossTokenCount,
  paddedBlock,
  type LossSequence,
  type TokenLogProbs,
  type TrainerEngine,
} from './engine';
import { addEmbeddingRows, buildQwen2TrainingGraph, TRAINING_GRAPH_NAMES as N } from './qwen2-graph';

const EMBEDDING = 'model.embed_tokens.weight';

const SESSION_CACHE_SIZE = 8;

export interface OnnxEngineOptions {
  spec: DecoderSpec;
  usableVocabularySize: number;
  /** Copied: the engine owns its weights. */
  weights: ReadonlyMap<string, Float32Array>;
  padTokenId: number;
  runtime?: RuntimeOptions;
  /** Longest sequence accepted (the model's context); longer input is a TrainingInputError. */
  maxSequenceLength?: number;
}

interface Block {
  rows: number;
  length: number;
  feeds: Record<string, Tensor>;
  lossTokens: number;
}

export class OnnxTrainerEngine implements TrainerEngine {
  readonly parameterNames: readonly string[];
  readonly weights: Map<string, Float32Array>;
  private readonly shapes: Map<string, readonly number[]>;
  private readonly sessions: LRUCache<string, Promise<InferenceSession>>;

  constructor(private readonly options: OnnxEngineOptions) {
    const specs = qwen2TensorSpecs(options.spec);
    this.parameterNames = specs.map((tensor) => tensor.name);
    this.shapes = new Map(specs.map((tensor) => [tensor.name, tensor.shape]));
    this.weights = new Map();
    for (const tensor of specs) {
      const values = options.weights.get(tensor.name);
      const expected = tensor.shape.reduce((a, b) => a * b, 1);
      if (values === undefined || values.length !== expected) {
        throw new TrainingInputError(
          `trainer weights: tensor "${tensor.name}" is ${values === undefined ? 'missing' : `${values.length} values`}; expected shape [${tensor.shape.join(', ')}]`,
        );
      }
      this.weights.set(tensor.name, Float32Array.from(values));
    }
    this.sessions = new LRUCache({
      max: SESSION_CACHE_SIZE,
      dispose: (session) => void session.then((s) => s.release()).catch(() => undefined),
    });
  }

  /** Copies `weights` into the engine's own arrays (same names and sizes), keeping its sessions. */
  loadWeights(weights: ReadonlyMap<string, Float32Array>): void {
    for (const name of this.parameterNames) {
      const values = weights.get(name);
      const target = this.weights.get(name)!;
      if (values === undefined || values.length !== target.length) {
        throw new TrainingInputError(
          `trainer weights: tensor "${name}" is ${values === undefined ? 'missing' : `${values.length} values`}; expected ${target.length}`,
        );
      }
      target.set(values);
    }
  }

  async logProbs(
    sequences: readonly LossSequence[],
    weights: ReadonlyMap<string, Float32Array> = this.weights,
  ): Promise<TokenLogProbs> {
    const block = this.pack(sequences);
    const session = await this.session(block, false);
    const out = await session.run({ ...block.feeds, ...this.weightFeeds(weights) });
    return this.unpack(out, block);
  }

  async accumulateGradients(
    sequences: readonly LossSequence[],
    dLogProbs: Float32Array,
    into: Map<string, Float32Array>,
  ): Promise<TokenLogProbs> {
    const block = this.pack(sequences);
    if (dLogProbs.length !== block.lossTokens) {
      throw new TrainingInputError(
        `dLogProbs has ${dLogProbs.length} values for ${block.lossTokens} loss tokens`,
      );
    }
    const session = await this.session(block, true);
    const out = await session.run({
      ...block.feeds,
      ...this.weightFeeds(this.weights),
      [N.dLogProbs]: new Tensor('float32', dLogProbs, [dLogProbs.length]),
    });
    for (const name of this.parameterNames) {
      const grad = out[N.grad(name)].data as Float32Array;
      const sum = into.get(name);
      if (sum === undefined) throw new TrainingInputError(`no gradient buffer for "${name}"`);
      for (let i = 0; i < sum.length; i++) sum[i] += grad[i];
    }
    addEmbeddingRows(
      into.get(EMBEDDING)!,
      block.feeds[N.inputIds].data as BigInt64Array,
      out[N.embeddedGrad].data as Float32Array,
      this.options.spec.hiddenSize,
    );
    return this.unpack(out, block);
  }

  async dispose(): Promise<void> {
    const pending = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled(pending);
  }

  private weightFeeds(weights: ReadonlyMap<string, Float32Array>): Record<string, Tensor> {
    const feeds: Record<string, Tensor> = {};
    for (const name of this.parameterNames) {
      const values = weights.get(name);
      if (values === undefined) throw new TrainingInputError(`weights have no tensor "${name}"`);
      feeds[name] = new Tensor('float32', values, this.shapes.get(name));
    }
    return feeds;
  }

  private session(block: Block, gradients: boolean): Promise<InferenceSession> {
    const key = `${block.rows}x${block.length}${gradients ? '+grad' : ''}`;
    let session = this.sessions.get(key);
    if (session === undefined) {
      const model = buildQwen2TrainingGraph(this.options.spec, {
        batch: block.rows,
        sequence: block.length,
        usableVocabularySize: this.options.usableVocabularySize,
        gradients,
      });
      session = createSession(model, this.options.runtime ?? {});
      session.catch(() => this.sessions.delete(key));
      this.sessions.set(key, session);
    }
    return session;
  }

  /** Right-pads the sequences into one block; loss positions index the flattened [rows · length] tokens. */
  private pack(sequences: readonly LossSequence[]): Block {
    if (sequences.length === 0) throw new TrainingInputError('a micro-batch needs at least one sequence');
    const longest = Math.max(...sequences.map((sequence) => sequence.tokens.length));
    const limit = this.options.maxSequenceLength;
    if (limit !== undefined && longest > limit) {
      throw new TrainingInputError(
        `a training sequence has ${longest} tokens; the model takes at most ${limit}`,
      );
    }
    const { rows, length } = paddedBlock(sequences.length, longest);
    const vocabulary = this.options.usableVocabularySize;
    const lossTokens = lossTokenCount(sequences);
    const ids = new BigInt64Array(rows * length).fill(BigInt(this.options.padTokenId));
    const mask = new BigInt64Array(rows * length);
    const positions = new BigInt64Array(rows * length);
    const lossPositions = new BigInt64Array(lossTokens);
    const targets = new BigInt64Array(lossTokens);
    let k = 0;
    sequences.forEach((sequence, row) => {
      const { tokens, lossStart } = sequence;
      if (!Number.isInteger(lossStart) || lossStart < 1 || lossStart > tokens.length) {
        throw new TrainingInputError(
          `sequence ${row}: loss start ${lossStart} is outside 1..${tokens.length} (a turn needs a prompt)`,
        );
      }
      for (let t = 0; t < length; t++) positions[row * length + t] = BigInt(t);
      tokens.forEach((token, t) => {
        if (!Number.isInteger(token) || token < 0 || token >= vocabulary) {
          throw new TrainingInputError(
            `sequence ${row}: token ${t} is ${token}; ids must be integers in 0..${vocabulary - 1}`,
          );
        }
        ids[row * length + t] = BigInt(token);
        mask[row * length + t] = 1n;
      });
      for (let t = lossStart; t < tokens.length; t++) {
        lossPositions[k] = BigInt(row * length + t - 1);
        targets[k] = BigInt(tokens[t]);
        k++;
      }
    });
    return {
      rows,
      length,
      lossTokens,
      feeds: {
        [N.inputIds]: new Tensor('int64', ids, [rows, length]),
        [N.attentionMask]: new Tensor('int64', mask, [rows, length]),
        [N.positionIds]: new Tensor('int64', positions, [rows, length]),
        [N.lossPositions]: new Tensor('int64', lossPositions, [lossTokens]),
        [N.targets]: new Tensor('int64', targets, [lossTokens]),
      },
    };
  }

  private unpack(out: InferenceSession.OnnxValueMapType, block: Block): TokenLogProbs {
    const logProbs = Float32Array.from(out[N.logProbs].data as Float32Array);
    const entropy = Float32Array.from(out[N.entropy].data as Float32Array);
    if (logProbs.length !== block.lossTokens)
      throw new Error('training graph returned the wrong number of log-probs');
    return { logProbs, entropy };
  }
}
