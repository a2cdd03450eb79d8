/**
 * The model's `config.json` (Hugging Face Qwen2 schema) and `generation_config.json`, parsed with zod into
 * camel-cased, defaulted values. Unknown keys are kept in `raw` and written back unchanged.
 */
import { z } from 'zod';

const positiveInt = z.number().int().positive();
const tokenIdList = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]);

const configJsonSchema = z
  .looseObject({
    architectures: z.array(z.string()).optional(),
    model_type: z.string().optional(),
    vocab_size: positiveInt,
    hidden_size: positiveInt,
    intermediate_size: positiveInt,
    num_hidden_layers: positiveInt,
    num_attention_heads: positiveInt,
    num_key_value_heads: positiveInt.optional(),
    head_dim: positiveInt.optional(),
    hidden_act: z.string().optional(),
    max_position_embeddings: positiveInt.optional(),
    rms_norm_eps: z.number().positive().optional(),
    rope_theta: z.number().positive().optional(),
    rope_scaling: z.union([z.null(), z.looseObject({})]).optional(),
    tie_word_embeddings: z.boolean().optional(),
    bos_token_id: z.union([z.null(), z.number().int().nonnegative()]).optional(),
    eos_token_id: z.union([z.null(), tokenIdList]).optional(),
    pad_token_id: z.union([z.null(), z.number().int().nonnegative()]).optional(),
  })
  .superRefine((config, context) => {
    const kvHeads = config.num_key_value_heads ?? config.num_attention_heads;
    if (config.num_attention_heads % kvHeads !== 0) {
      context.addIssue({
        code: 'custom',
        path: ['num_key_value_heads'],
        message: `num_attention_heads (${config.num_attention_heads}) must be a multiple of num_key_value_heads (${kvHeads})`,
      });
    }
    if (config.head_dim === undefined && config.hidden_size % config.num_attention_heads !== 0) {
      context.addIssue({
        code: 'custom',
        path: ['hidden_size'],
        message: `hidden_size (${config.hidden_size}) must be a multiple of num_attention_heads (${config.num_attention_heads}) when head_dim is not given`,
      });
    }
  });

const generationConfigJsonSchema = z.looseObject({
  eos_token_id: z.union([z.null(), tokenIdList]).optional(),
  bos_token_id: z.union([z.null(), z.number().int().nonnegative()]).optional(),
  pad_token_id: z.union([z.null(), z.number().int().nonnegative()]).optional(),
  do_sample: z.boolean().optional(),
  temperature: z.number().nonnegative().optional(),
  top_p: z.number().positive().max(1).optional(),
  top_k: z.number().int().nonnegative().optional(),
  max_new_tokens: positiveInt.optional(),
  /** The project's per-turn limits (lib/episode/generation-limits.ts); other keys in the block are ignored. */
  rememr1: z
    .looseObject({
      memory_max_new_tokens: positiveInt.optional(),
      answer_max_new_tokens: positiveInt.optional(),
      /** The chunk size the model was trained to read (the episode default when none is configured). */
      chunk_tokens: positiveInt.optional(),
    })
    .optional(),
});

export type ConfigJson = z.infer<typeof configJsonSchema>;
export type GenerationConfigJson = z.infer<typeof generationConfigJsonSchema>;

/** A decoder's shape as the runtime and the builders need it. */
export interface ModelConfig {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** The parsed JSON, unknown keys included. */
  raw: ConfigJson;
}

export interface GenerationDefaults {
  eosTokenIds: number[];
  padTokenId: number | null;
  raw: GenerationConfigJson;
}

/** Thrown with a readable list of every problem zod found. */
export class ConfigSchemaError extends Error {
  override readonly name = 'ConfigSchemaError';
}

function toIdList(value: number | number[] | null | undefined): number[] {
  if (value === null || value === undefined) return [];
  return Array.isArray(value) ? [...value] : [value];
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

/** Parses `config.json` content. Throws ConfigSchemaError naming every bad field. */
export function parseModelConfig(json: unknown): ModelConfig {
  const parsed = configJsonSchema.safeParse(json);
  if (!parsed.success) throw new ConfigSchemaError(describeIssues(parsed.error));
  const raw = parsed.data;
  return {
    modelType: raw.model_type ?? 'qwen2',
    vocabSize: raw.vocab_size,
    hiddenSize: raw.hidden_size,
    intermediateSize: raw.intermediate_size,
    numHiddenLayers: raw.num_hidden_layers,
    numAttentionHeads: raw.num_attention_heads,
    numKeyValueHeads: raw.num_key_value_heads ?? raw.num_attention_heads,
    headDim: raw.head_dim ?? raw.hidden_size / raw.num_attention_heads,
    maxPositionEmbeddings: raw.max_position_embeddings ?? 32768,
    rmsNormEps: raw.rms_norm_eps ?? 1e-6,
    ropeTheta: raw.rope_theta ?? 10000,
    tieWordEmbeddings: raw.tie_word_embeddings ?? false,
    bosTokenId: raw.bos_token_id ?? null,
    eosTokenIds: toIdList(raw.eos_token_id),
    padTokenId: raw.pad_token_id ?? null,
    raw,
  };
}

/** Parses `generation_config.json` content. */
export function parseGenerationConfig(json: unknown): GenerationDefaults {
  const parsed = generationConfigJsonSchema.safeParse(json);
  if (!parsed.success) throw new ConfigSchemaError(describeIssues(parsed.error));
  return {
    eosTokenIds: toIdList(parsed.data.eos_token_id),
    padTokenId: parsed.data.pad_token_id ?? null,
    raw: parsed.data,
  };
}

/** The `config.json` a Hugging Face Qwen2 checkpoint of this shape carries. */
export function modelConfigToJson(config: Omit<ModelConfig, 'raw' | 'modelType'>): ConfigJson {
  return {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numHiddenLayers,
    num_attention_heads: config.numAttentionHeads,
    num_key_value_heads: config.numKeyValueHeads,
    ...(config.headDim * config.numAttentionHeads === config.hiddenSize ? {} : { head_dim: config.headDim }),
    hidden_act: 'silu',
    max_position_embeddings: config.maxPositionEmbeddings,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: null,
    tie_word_embeddings: config.tieWordEmbeddings,
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds,
    pad_token_id: config.padTokenId,
    torch_dtype: 'float32',
    use_cache: true,
    use_sliding_window: false,
    attention_dropout: 0,
  };
}
