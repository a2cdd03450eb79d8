/**
 * Writes a complete model folder in the Hugging Face shape from a decoder shape, a built tokenizer and a
 * seed: config.json, generation_config.json, tokenizer.json, tokenizer_config.json, model.safetensors
 * (Hugging Face Qwen2 tensor names) and onnx/model.onnx. The same inputs give byte-identical files.
 *
 * The files are built in memory first (`buildModelFolderFiles`, `buildWeightFiles`) so that other writers
 * (policy versions in the blob store) lay out the same bytes without going through a local folder.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { modelConfigToJson, type ModelConfig } from '../model/config';
import { ModelSpecError } from '../model/errors';
import { MODEL_FILES } from '../model/folder';
import { buildDecoderOnnx, type DecoderSpec } from './onnx-builder';
import { randomQwen2Weights, qwen2TensorSpecs, weightMap, type Qwen2Shape } from './qwen2-weights';
import type { Seed } from '../model/random';
import { serializeSafetensors, type Float32TensorData } from '../model/safetensors';
import type { BuiltTokenizer } from './tokenizer-builder';

export const SAFETENSORS_FILE = 'model.safetensors';
export const EXTERNAL_DATA_FILE = 'model.onnx_data';
/** The ONNX graph's path inside a model folder, '/'-separated whatever the platform. */
export const ONNX_FILE = 'onnx/model.onnx';

export interface ModelFolderSpec {
  shape: DecoderSpec;
  maxPositionEmbeddings?: number;
  tokenizer: BuiltTokenizer;
  /** Seed of the random weights; not needed when `weights` are given. */
  seed?: Seed;
  /** Standard deviation of the random weights (Hugging Face's initializer_range). Default 0.02. */
  initStd?: number;
  /** Keep the ONNX weights in onnx/model.onnx_data instead of inside model.onnx. */
  externalData?: boolean;
  /** Weights to write instead of random ones (a trained checkpoint). */
  weights?: ReadonlyMap<string, Float32Array>;
}

export interface WrittenModelFolder {
  config: Omit<ModelConfig, 'raw' | 'modelType'>;
  weights: ReadonlyMap<string, Float32Array>;
}

/** One file of a model folder: its '/'-separated path inside the folder and its bytes. */
export interface ModelFolderFile {
  path: string;
  data: Uint8Array;
}

export interface BuiltModelFolder extends WrittenModelFolder {
  files: ModelFolderFile[];
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
const utf8 = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));

/** The decoder fields of a config: what the ONNX builder and the weight layout need. */
export function decoderSpecOf(config: DecoderSpec): DecoderSpec {
  return {
    vocabSize: config.vocabSize,
    hiddenSize: config.hiddenSize,
    intermediateSize: config.intermediateSize,
    numHiddenLayers: config.numHiddenLayers,
    numAttentionHeads: config.numAttentionHeads,
    numKeyValueHeads: config.numKeyValueHeads,
    headDim: config.headDim,
    tieWordEmbeddings: config.tieWordEmbeddings,
    rmsNormEps: config.rmsNormEps,
    ropeTheta: config.ropeTheta,
  };
}

/**
 * The config.json of a parsed config: its unknown keys kept as they were, the fields the runtime reads
 * written from the typed values (so a config edited in code is not contradicted by a stale `raw`).
 */
export function modelConfigFileText(config: ModelConfig): string {
  return json({ ...config.raw, ...modelConfigToJson(config) });
}

/**
 * Weights as a safetensors file with Hugging Face's Qwen2 names (float32, name order), refusing a map
 * that lacks a tensor of the layout or holds one of another size.
 */
export function serializeQwen2Weights(
  shape: Qwen2Shape,
  weights: ReadonlyMap<string, Float32Array>,
): Uint8Array {
  const tensors: Record<string, Float32TensorData> = {};
  for (const tensor of qwen2TensorSpecs(shape)) {
    const data = weights.get(tensor.name);
    if (data === undefined) throw new ModelSpecError(`weights have no tensor "${tensor.name}"`);
    tensors[tensor.name] = { shape: tensor.shape, data };
  }
  return serializeSafetensors(tensors, { format: 'pt' });
}

/** model.safetensors and onnx/model.onnx (plus onnx/model.onnx_data with `externalData`) of these weights. */
export function buildWeightFiles(
  shape: DecoderSpec,
  weights: ReadonlyMap<string, Float32Array>,
  options: { externalData?: boolean } = {},
): ModelFolderFile[] {
  const safetensors = serializeQwen2Weights(shape, weights);
  const onnx = buildDecoderOnnx(
    shape,
    weightMap(weights),
    options.externalData ? { externalDataFile: EXTERNAL_DATA_FILE } : {},
  );
  const files: ModelFolderFile[] = [
    { path: SAFETENSORS_FILE, data: safetensors },
    { path: ONNX_FILE, data: onnx.model },
  ];
  if (onnx.externalData !== null)
    files.push({
      path: `${path.posix.dirname(ONNX_FILE)}/${onnx.externalData.path}`,
      data: onnx.externalData.data,
    });
  return files;
}

/** Every file `writeModelFolder` writes, in memory. */
export function buildModelFolderFiles(spec: ModelFolderSpec): BuiltModelFolder {
  const { shape, tokenizer } = spec;
  if (shape.vocabSize < tokenizer.vocabularySize) {
    throw new ModelSpecError(
      `vocabSize ${shape.vocabSize} is smaller than the tokenizer's ${tokenizer.vocabularySize} ids`,
    );
  }
  const config: WrittenModelFolder['config'] = {
    ...shape,
    maxPositionEmbeddings: spec.maxPositionEmbeddings ?? 32768,
    bosTokenId: null,
    eosTokenIds: [tokenizer.ids.imEnd, tokenizer.ids.endOfText],
    padTokenId: tokenizer.ids.endOfText,
  };
  if (spec.weights === undefined && spec.seed === undefined)
    throw new ModelSpecError('give either weights or a seed for random weights');
  const weights = spec.weights ?? randomQwen2Weights(shape, spec.seed as Seed, spec.initStd ?? 0.02);
  const files: ModelFolderFile[] = [
    { path: MODEL_FILES.config, data: utf8(json(modelConfigToJson(config))) },
    {
      path: MODEL_FILES.generationConfig,
      data: utf8(
        json({
          bos_token_id: null,
          eos_token_id: config.eosTokenIds,
          pad_token_id: config.padTokenId,
          do_sample: true,
          temperature: 0.7,
          top_p: 0.95,
        }),
      ),
    },
    { path: MODEL_FILES.tokenizer, data: utf8(json(tokenizer.tokenizerJson)) },
    { path: MODEL_FILES.tokenizerConfig, data: utf8(json(tokenizer.tokenizerConfigJson)) },
    ...buildWeightFiles(shape, weights, { externalData: spec.externalData }),
  ];
  return { config, weights, files };
}

/** Writes `files` under `folder`, creating the sub-folders they name. */
export async function writeModelFolderFiles(
  folder: string,
  files: readonly ModelFolderFile[],
): Promise<void> {
  for (const file of files) {
    const target = path.join(folder, ...file.path.split('/'));
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.writeFile(target, file.data);
  }
}

export async function writeModelFolder(folder: string, spec: ModelFolderSpec): Promise<WrittenModelFolder> {
  const { config, weights, files } = buildModelFolderFiles(spec);
  await writeModelFolderFiles(folder, files);
  return { config, weights };
}
