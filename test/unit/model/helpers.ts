/** Small random models built into temporary folders, and a plain ONNX Runtime forward pass for parity tests. */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import {
  buildByteLevelTokenizer,
  countPretokens,
  type BuiltTokenizer,
} from '../../../lib/model-build/tokenizer-builder';
import { writeModelFolder, type ModelFolderSpec } from '../../../lib/model-build/model-folder-builder';
import type { DecoderSpec } from '../../../lib/model-build/onnx-builder';
import { DECODER_NAMES, KV_PARTS } from '../../../lib/model/tensor-names';

export const SMALL_CORPUS = [
  'The quick brown fox jumps over the lazy dog. The dog sleeps in the sun.',
  'Document 1: The capital of Northland is Ostara. Document 2: Ostara has a museum founded in 1887.',
  'Question: who founded the museum? Answer: the museum was founded by the first director.',
  'Memory: the capital is Ostara; the museum is in the capital. Nothing recalled.',
].join('\n');

export function smallTokenizer(vocabularySize = 360): BuiltTokenizer {
  return buildByteLevelTokenizer({ pretokenCounts: countPretokens(SMALL_CORPUS.repeat(4)), vocabularySize });
}

export function smallSpec(overrides: Partial<DecoderSpec> = {}): DecoderSpec {
  return {
    vocabSize: 384,
    hiddenSize: 32,
    intermediateSize: 64,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    headDim: 8,
    tieWordEmbeddings: true,
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    ...overrides,
  };
}

export async function temporaryFolder(label: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `rememr1-${label}-`));
}

/** Writes a small model folder; weights are drawn wide (std 0.5) so distributions are far from flat. */
export async function smallModelFolder(
  label: string,
  overrides: Partial<ModelFolderSpec> = {},
): Promise<string> {
  const folder = await temporaryFolder(label);
  await writeModelFolder(folder, {
    shape: smallSpec(),
    tokenizer: smallTokenizer(),
    seed: label,
    initStd: 0.5,
    ...overrides,
  });
  return folder;
}

export interface RawForwardInput {
  inputIds: number[][];
  attentionMask: number[][];
  positionIds: number[][];
  /** present tensors of an earlier call, by output name. */
  past?: Record<string, Tensor>;
}

/** Runs a decoder graph as exported (logits for every position), without the runtime's sampling head. */
export async function rawForward(
  session: InferenceSession,
  spec: DecoderSpec,
  input: RawForwardInput,
): Promise<{ logits: Float32Array; present: Record<string, Tensor> }> {
  const rows = input.inputIds.length;
  const sequence = input.inputIds[0].length;
  const int64 = (values: number[][], columns: number) =>
    new Tensor(
      'int64',
      BigInt64Array.from(values.flat(), (v) => BigInt(v)),
      [rows, columns],
    );
  const feeds: Record<string, Tensor> = {
    [DECODER_NAMES.inputIds]: int64(input.inputIds, sequence),
    [DECODER_NAMES.attentionMask]: int64(input.attentionMask, input.attentionMask[0].length),
    [DECODER_NAMES.positionIds]: int64(input.positionIds, sequence),
  };
  for (let layer = 0; layer < spec.numHiddenLayers; layer++) {
    for (const part of KV_PARTS) {
      feeds[DECODER_NAMES.past(layer, part)] =
        input.past?.[DECODER_NAMES.present(layer, part)] ??
        new Tensor('float32', new Float32Array(0), [rows, spec.numKeyValueHeads, 0, spec.headDim]);
    }
  }
  const outputs = await session.run(feeds);
  const present: Record<string, Tensor> = {};
  for (const [name, tensor] of Object.entries(outputs))
    if (name.startsWith('present.')) present[name] = tensor as Tensor;
  return { logits: outputs.logits.data as Float32Array, present };
}

/** log softmax in float64. */
export function logSoftmax(logits: ArrayLike<number>, inverseTemperature = 1): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] * inverseTemperature);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] * inverseTemperature - max);
  const logSum = Math.log(sum) + max;
  return Float64Array.from(logits, (value) => value * inverseTemperature - logSum);
}
