/**
 * The model runtime: load a model folder, tokenise, run ONNX Runtime sessions, generate and sample. The tools
 * that build the project's own model (ONNX writer, weights, tokenizer, reference forward pass) are in
 * lib/model-build.
 */
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
export { seedKey, SamplingStream, type Seed } from './random';
