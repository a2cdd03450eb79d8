/**
 * Writes a complete model folder in the Hugging Face shape from a decoder shape, a built tokenizer and a
 * seed: config.json, generation_config.json, tokenizer.json, tokenizer_config.json, model.safetensors
 * (Hugging Face Qwen2 tensor names) and onnx/model.onnx. The same inputs give byte-identical files.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { modelConfigToJson, type ModelConfig } from './config';
import { ModelSpecError } from './errors';
import { MODEL_FILES } from './folder';
import { buildDecoderOnnx, type DecoderSpec } from './onnx-builder';
import { randomQwen2Weights, qwen2TensorSpecs, weightMap } from './qwen2-weights';
import type { Seed } from './random';
import { serializeSafetensors, type Float32TensorData } from './safetensors';
import type { BuiltTokenizer } from './tokenizer-builder';

export const SAFETENSORS_FILE = 'model.safetensors';
export const EXTERNAL_DATA_FILE = 'model.onnx_data';

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

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

export async function writeModelFolder(folder: string, spec: ModelFolderSpec): Promise<WrittenModelFolder> {
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
  const tensors: Record<string, Float32TensorData> = {};
  for (const tensor of qwen2TensorSpecs(shape)) {
    const data = weights.get(tensor.name);
    if (data === undefined) throw new ModelSpecError(`weights have no tensor "${tensor.name}"`);
    tensors[tensor.name] = { shape: tensor.shape, data };
  }
  const onnx = buildDecoderOnnx(
    shape,
    weightMap(weights),
    spec.externalData ? { externalDataFile: EXTERNAL_DATA_FILE } : {},
  );

  await fs.mkdir(path.join(folder, path.dirname(MODEL_FILES.onnx)), { recursive: true });
  await fs.writeFile(path.join(folder, MODEL_FILES.config), json(modelConfigToJson(config)));
  await fs.writeFile(
    path.join(folder, MODEL_FILES.generationConfig),
    json({
      bos_token_id: null,
      eos_token_id: config.eosTokenIds,
      pad_token_id: config.padTokenId,
      do_sample: true,
      temperature: 0.7,
      top_p: 0.95,
    }),
  );
  await fs.writeFile(path.join(folder, MODEL_FILES.tokenizer), json(tokenizer.tokenizerJson));
  await fs.writeFile(path.join(folder, MODEL_FILES.tokenizerConfig), json(tokenizer.tokenizerConfigJson));
  await fs.writeFile(path.join(folder, SAFETENSORS_FILE), serializeSafetensors(tensors, { format: 'pt' }));
  await fs.writeFile(path.join(folder, MODEL_FILES.onnx), onnx.model);
  if (onnx.externalData !== null)
    await fs.writeFile(
      path.join(folder, path.dirname(MODEL_FILES.onnx), onnx.externalData.path),
      onnx.externalData.data,
    );
  return { config, weights };
}
