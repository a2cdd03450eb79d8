/**
 * Loads a model folder in the Hugging Face shape and checks it before any request is served:
 *
 *   config.json              Qwen2 config (config.ts)
 *   tokenizer.json           @huggingface/tokenizers
 *   tokenizer_config.json    special tokens and chat template (or chat_template.jinja beside it)
 *   generation_config.json   optional: EOS and pad ids
 *   onnx/model.onnx          optimum-style decoder with past key values, plus the external data files its
 *                            initializers name, when there are any
 *
 * The ONNX graph's inputs and outputs are checked against the config (names, element types, ranks and the
 * dimensions the graph fixes). Every problem is one ModelFolderError naming the file and what was expected.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  ConfigSchemaError,
  parseGenerationConfig,
  parseModelConfig,
  type GenerationDefaults,
  type ModelConfig,
} from './config';
import { ModelFolderError } from './errors';
import {
  DataType,
  EXTERNAL_DATA_LOCATION,
  dataTypeName,
  decodeModel,
  describeValueInfo,
  int64ToNumber,
  type DeclaredTensor,
  type onnx,
} from './onnx-graph';
import { DECODER_NAMES, KV_PARTS } from './tensor-names';
import { PolicyTokenizer } from './tokenizer';

export const MODEL_FILES = {
  config: 'config.json',
  tokenizer: 'tokenizer.json',
  tokenizerConfig: 'tokenizer_config.json',
  generationConfig: 'generation_config.json',
  chatTemplate: 'chat_template.jinja',
  onnx: path.join('onnx', 'model.onnx'),
} as const;

export interface ModelFolder {
  folder: string;
  config: ModelConfig;
  generation: GenerationDefaults | null;
  tokenizer: PolicyTokenizer;
  /** The decoded graph (the caller may modify it: it is not shared). */
  onnxModel: onnx.ModelProto;
  onnxPath: string;
  /** Folder holding the external data files, when the graph has external initializers. */
  externalDataFolder: string | null;
  /** Ids that end generation: generation_config.json's, else config.json's, else the tokenizer's EOS. */
  eosTokenIds: number[];
  /** Id written under padding (never attended to). */
  padTokenId: number;
}

async function readFileOrFail(file: string, what: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ModelFolderError(file, `missing; expected ${what}`);
    if (code === 'EISDIR') throw new ModelFolderError(file, `is a directory; expected ${what}`);
    throw new ModelFolderError(file, `cannot be read (${(error as Error).message}); expected ${what}`);
  }
}

async function readJsonOrFail(file: string, what: string): Promise<Record<string, unknown>> {
  const text = (await readFileOrFail(file, what)).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ModelFolderError(file, `is not valid JSON (${(error as Error).message}); expected ${what}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ModelFolderError(file, `must hold a JSON object; expected ${what}`);
  return value as Record<string, unknown>;
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** What each graph input and output must be, given the config. null dims are not checked. */
interface ExpectedTensor {
  name: string;
  elemType: number;
  dims: (number | null)[];
  describe: string;
}

function expectedInputs(config: ModelConfig): ExpectedTensor[] {
  const kv = [null, config.numKeyValueHeads, null, config.headDim];
  const kvDescription = `[batch, ${config.numKeyValueHeads} (num_key_value_heads), past_sequence, ${config.headDim} (head_dim)] float32`;
  const tensors: ExpectedTensor[] = [
    { name: DECODER_NAMES.inputIds, elemType: DataType.INT64, dims: [null, null], describe: '[batch, sequence] int64' },
    {
      name: DECODER_NAMES.attentionMask,
      elemType: DataType.INT64,
      dims: [null, null],
      describe: '[batch, past_sequence + sequence] int64',
    },
    {
      name: DECODER_NAMES.positionIds,
      elemType: DataType.INT64,
      dims: [null, null],
      describe: '[batch, sequence] int64',
    },
  ];
  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    for (const part of KV_PARTS)
      tensors.push({
        name: DECODER_NAMES.past(layer, part),
        elemType: DataType.FLOAT,
        dims: kv,
        describe: kvDescription,
      });
  }
  return tensors;
}

function expectedOutputs(config: ModelConfig): ExpectedTensor[] {
  const kv = [null, config.numKeyValueHeads, null, config.headDim];
  const kvDescription = `[batch, ${config.numKeyValueHeads} (num_key_value_heads), past_sequence + sequence, ${config.headDim} (head_dim)] float32`;
  const tensors: ExpectedTensor[] = [
    {
      name: DECODER_NAMES.logits,
      elemType: DataType.FLOAT,
      dims: [null, null, config.vocabSize],
      describe: `[batch, sequence, ${config.vocabSize} (vocab_size)] float32`,
    },
  ];
  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    for (const part of KV_PARTS)
      tensors.push({
        name: DECODER_NAMES.present(layer, part),
        elemType: DataType.FLOAT,
        dims: kv,
        describe: kvDescription,
      });
  }
  return tensors;
}

function formatDims(dims: DeclaredTensor['dims']): string {
  return dims === null
    ? 'no declared shape'
    : `[${dims.map((dim) => (dim === null ? '?' : String(dim))).join(', ')}]`;
}

function checkDeclared(
  file: string,
  kind: 'input' | 'output',
  declared: DeclaredTensor[],
  expected: ExpectedTensor[],
  config: ModelConfig,
): void {
  const byName = new Map(declared.map((tensor) => [tensor.name, tensor]));
  const expectedNames = new Set(expected.map((tensor) => tensor.name));
  for (const want of expected) {
    const have = byName.get(want.name);
    if (have === undefined) {
      throw new ModelFolderError(
        file,
        `graph ${kind} "${want.name}" is missing; expected ${want.describe} (an optimum-style decoder export with past key values, ${config.numHiddenLayers} layers as config.json says); the graph's ${kind}s are: ${declared.map((tensor) => tensor.name).join(', ')}`,
      );
    }
    if (have.elemType !== want.elemType) {
      throw new ModelFolderError(
        file,
        `graph ${kind} "${want.name}" is ${dataTypeName(have.elemType)}; expected ${want.describe}`,
      );
    }
    if (have.dims !== null) {
      const rankOk = have.dims.length === want.dims.length;
      const dimsOk =
        rankOk &&
        want.dims.every(
          (dim, index) => dim === null || typeof have.dims?.[index] !== 'number' || have.dims[index] === dim,
        );
      if (!dimsOk)
        throw new ModelFolderError(
          file,
          `graph ${kind} "${want.name}" has shape ${formatDims(have.dims)}; expected ${want.describe}`,
        );
    }
  }
  if (kind === 'input') {
    const unexpected = declared.filter((tensor) => !expectedNames.has(tensor.name));
    if (unexpected.length > 0) {
      throw new ModelFolderError(
        file,
        `graph input "${unexpected[0].name}" is not one the runtime can feed; expected only input_ids, attention_mask, position_ids and past_key_values.{0..${config.numHiddenLayers - 1}}.key|value (a decoder exported with past key values, not a merged decoder)`,
      );
    }
  }
}

/** External data files named by the graph's initializers, each with the largest byte offset it must reach. */
function externalDataExtents(model: onnx.ModelProto): Map<string, number> {
  const extents = new Map<string, number>();
  for (const tensor of model.graph?.initializer ?? []) {
    if (tensor.dataLocation !== EXTERNAL_DATA_LOCATION) continue;
    const entries = new Map((tensor.externalData ?? []).map((entry) => [entry.key ?? '', entry.value ?? '']));
    const location = entries.get('location');
    if (location === undefined || location === '') continue;
    const end = Number(entries.get('offset') ?? 0) + Number(entries.get('length') ?? 0);
    extents.set(location, Math.max(extents.get(location) ?? 0, end));
  }
  return extents;
}

async function checkExternalData(onnxPath: string, model: onnx.ModelProto): Promise<string | null> {
  const extents = externalDataExtents(model);
  if (extents.size === 0) return null;
  const folder = path.dirname(onnxPath);
  for (const [location, end] of extents) {
    const file = path.resolve(folder, location);
    if (path.relative(folder, file).startsWith('..')) {
      throw new ModelFolderError(
        onnxPath,
        `initializer data location "${location}" points outside the onnx folder; expected a file beside model.onnx`,
      );
    }
    let size: number;
    try {
      size = (await fs.stat(file)).size;
    } catch {
      throw new ModelFolderError(
        file,
        `missing; ${path.basename(onnxPath)} keeps its weights in this external data file`,
      );
    }
    if (size < end)
      throw new ModelFolderError(
        file,
        `is ${size} bytes but ${path.basename(onnxPath)} reads weights up to byte ${end}; the file is truncated or from another export`,
      );
  }
  return folder;
}

function loadOnnx(onnxPath: string, bytes: Buffer): onnx.ModelProto {
  let model: onnx.ModelProto;
  try {
    model = decodeModel(bytes);
  } catch (error) {
    throw new ModelFolderError(
      onnxPath,
      `is not a valid ONNX model (protobuf decoding failed: ${(error as Error).message})`,
    );
  }
  const nodes = model.graph?.node ?? [];
  if (
    !model.graph ||
    nodes.length === 0 ||
    int64ToNumber(model.irVersion) <= 0 ||
    (model.opsetImport ?? []).length === 0
  ) {
    throw new ModelFolderError(
      onnxPath,
      'is not a valid ONNX model (no graph, no nodes, no IR version or no opset); the file is corrupt or not an ONNX export',
    );
  }
  return model;
}

function createTokenizer(
  folder: string,
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
  chatTemplate: string | undefined,
): PolicyTokenizer {
  try {
    return new PolicyTokenizer(tokenizerJson, tokenizerConfig, chatTemplate);
  } catch (error) {
    throw new ModelFolderError(
      path.join(folder, MODEL_FILES.tokenizer),
      `cannot be loaded as a Hugging Face tokenizer (${(error as Error).message})`,
    );
  }
}

export async function loadModelFolder(folder: string): Promise<ModelFolder> {
  const stat = await fs.stat(folder).catch(() => null);
  if (stat === null || !stat.isDirectory())
    throw new ModelFolderError(
      folder,
      'is not a directory; expected a model folder holding config.json, tokenizer files and onnx/model.onnx',
    );
  const file = (name: string) => path.join(folder, name);

  const configJson = await readJsonOrFail(
    file(MODEL_FILES.config),
    "the model's Hugging Face config (Qwen2 schema)",
  );
  let config: ModelConfig;
  try {
    config = parseModelConfig(configJson);
  } catch (error) {
    if (error instanceof ConfigSchemaError)
      throw new ModelFolderError(
        file(MODEL_FILES.config),
        `does not match the Qwen2 config schema: ${error.message}`,
      );
    throw error;
  }

  let generation: GenerationDefaults | null = null;
  if (await exists(file(MODEL_FILES.generationConfig))) {
    const generationJson = await readJsonOrFail(
      file(MODEL_FILES.generationConfig),
      'generation defaults (eos_token_id, pad_token_id)',
    );
    try {
      generation = parseGenerationConfig(generationJson);
    } catch (error) {
      if (error instanceof ConfigSchemaError)
        throw new ModelFolderError(
          file(MODEL_FILES.generationConfig),
          `does not match the generation config schema: ${error.message}`,
        );
      throw error;
    }
  }

  const tokenizerJson = await readJsonOrFail(
    file(MODEL_FILES.tokenizer),
    'a Hugging Face tokenizer (tokenizer.json)',
  );
  const tokenizerConfig = await readJsonOrFail(
    file(MODEL_FILES.tokenizerConfig),
    'the tokenizer config (special tokens, chat template)',
  );
  const chatTemplate = (await exists(file(MODEL_FILES.chatTemplate)))
    ? (await fs.readFile(file(MODEL_FILES.chatTemplate))).toString('utf8')
    : undefined;
  const tokenizer = createTokenizer(folder, tokenizerJson, tokenizerConfig, chatTemplate);
  if (tokenizer.vocabularySize > config.vocabSize) {
    throw new ModelFolderError(
      file(MODEL_FILES.tokenizer),
      `uses ids up to ${tokenizer.vocabularySize - 1} but config.json says vocab_size = ${config.vocabSize}; the tokenizer belongs to another model`,
    );
  }

  const onnxPath = file(MODEL_FILES.onnx);
  const onnxModel = loadOnnx(
    onnxPath,
    await readFileOrFail(onnxPath, 'the decoder exported to ONNX with past key values (optimum layout)'),
  );
  const initializerNames = new Set((onnxModel.graph?.initializer ?? []).map((tensor) => tensor.name));
  // Before IR version 4, initializers were also listed as graph inputs.
  const declaredInputs = (onnxModel.graph?.input ?? [])
    .map(describeValueInfo)
    .filter((tensor) => !initializerNames.has(tensor.name));
  checkDeclared(onnxPath, 'input', declaredInputs, expectedInputs(config), config);
  checkDeclared(
    onnxPath,
    'output',
    (onnxModel.graph?.output ?? []).map(describeValueInfo),
    expectedOutputs(config),
    config,
  );
  const externalDataFolder = await checkExternalData(onnxPath, onnxModel);

  const eosCandidates =
    generation !== null && generation.eosTokenIds.length > 0 ? generation.eosTokenIds : config.eosTokenIds;
  const tokenizerEos = tokenizer.eosToken === null ? undefined : tokenizer.tokenId(tokenizer.eosToken);
  const eosTokenIds =
    eosCandidates.length > 0 ? eosCandidates : tokenizerEos === undefined ? [] : [tokenizerEos];
  for (const id of eosTokenIds) {
    if (id >= tokenizer.vocabularySize)
      throw new ModelFolderError(
        file(MODEL_FILES.config),
        `eos_token_id ${id} is not an id of the tokenizer (it has ${tokenizer.vocabularySize} ids)`,
      );
  }
  const padTokenId = generation?.padTokenId ?? config.padTokenId ?? eosTokenIds[0] ?? 0;
  return {
    folder,
    config,
    generation,
    tokenizer,
    onnxModel,
    onnxPath,
    externalDataFolder,
    eosTokenIds,
    padTokenId,
  };
}
