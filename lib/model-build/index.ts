/**
 * The tools that build the project's own model: the ONNX decoder writer, Qwen2 weights and their names, the
 * byte-level tokenizer builder, the model-folder writer, and a plain forward pass that checks what they build.
 * The runtime that loads and runs a model folder is lib/model.
 */
export { buildDecoderOnnx, type DecoderSpec, type DecoderOnnx } from './onnx-builder';
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
