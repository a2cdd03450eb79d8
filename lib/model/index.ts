/** The model runtime: load a model folder, generate, and the builders behind the project's own model. */
export { loadPolicy, type Policy, type PolicyOptions, type PolicyStats } from './policy';
export { CACHE_ALIGNMENT, type FinishReason, type GenerateRequest, type GenerateResult } from './generate';
export {
  PolicyTokenizer,
  IncrementalDecoder,
  ChatTemplateError,
  type ChatMessage,
  type ChatRole,
} from './tokenizer';
export {
  parseModelConfig,
  parseGenerationConfig,
  modelConfigToJson,
  ConfigSchemaError,
  type ModelConfig,
  type GenerationDefaults,
} from './config';
export { loadModelFolder, MODEL_FILES, type ModelFolder } from './folder';
export { EXECUTION_PROVIDERS, createSession, type ExecutionProvider, type RuntimeOptions } from './session';
export {
  ModelFolderError,
  SafetensorsError,
  GenerationRequestError,
  ExecutionProviderError,
  ModelSpecError,
  PolicyDisposedError,
} from './errors';
export {
  parseSafetensors,
  serializeSafetensors,
  SafetensorsFile,
  type SafetensorsDtype,
  type Float32TensorData,
} from './safetensors';
export { buildDecoderOnnx, DECODER_NAMES, type DecoderSpec, type DecoderOnnx } from './onnx-builder';
export {
  buildByteLevelTokenizer,
  countPretokens,
  AGENT_TAG_TOKENS,
  CHAT_SPECIAL_TOKENS,
  type BuiltTokenizer,
} from './tokenizer-builder';
export {
  qwen2TensorSpecs,
  randomQwen2Weights,
  parameterCount,
  type Qwen2Shape,
  type WeightSource,
} from './qwen2-weights';
export { writeModelFolder, SAFETENSORS_FILE, type ModelFolderSpec } from './model-folder-builder';
export { referenceForward } from './reference';
export { seedKey, SamplingStream, type Seed } from './random';
