/**
 * The Qwen2 checkpoint layout: tensor names and shapes exactly as Hugging Face's Qwen2ForCausalLM stores
 * them (linear weights are [out_features, in_features]; q/k/v projections carry a bias, o_proj does not;
 * `lm_head.weight` is absent when the head is tied to the embedding). The ONNX builder, the reference
 * forward pass and the trainer all read weights through this one description.
 */
import { ModelSpecError } from '../model/errors';
import type { ModelConfig } from '../model/config';
import { Xoshiro128, type Seed } from '../model/random';

/** The fields of a config that fix the tensor shapes. */
export type Qwen2Shape = Pick<
  ModelConfig,
  | 'vocabSize'
  | 'hiddenSize'
  | 'intermediateSize'
  | 'numHiddenLayers'
  | 'numAttentionHeads'
  | 'numKeyValueHeads'
  | 'headDim'
  | 'tieWordEmbeddings'
>;

export interface TensorSpec {
  name: string;
  shape: number[];
  kind: 'embedding' | 'linear' | 'bias' | 'norm';
}

/** Anything that can hand out named float32 tensors (a parsed safetensors file, a Map). */
export interface WeightSource {
  has(name: string): boolean;
  float32(name: string): Float32Array;
  /** The stored shape, when the source records one. */
  shapeOf?(name: string): readonly number[];
}

export const layerPrefix = (layer: number): string => `model.layers.${layer}`;

export function qwen2TensorSpecs(shape: Qwen2Shape): TensorSpec[] {
  const {
    vocabSize: V,
    hiddenSize: H,
    intermediateSize: I,
    numAttentionHeads: nH,
    numKeyValueHeads: nKV,
    headDim: D,
  } = shape;
  const specs: TensorSpec[] = [{ name: 'model.embed_tokens.weight', shape: [V, H], kind: 'embedding' }];
  for (let layer = 0; layer < shape.numHiddenLayers; layer++) {
    const p = layerPrefix(layer);
    specs.push(
      { name: `${p}.input_layernorm.weight`, shape: [H], kind: 'norm' },
      { name: `${p}.self_attn.q_proj.weight`, shape: [nH * D, H], kind: 'linear' },
      { name: `${p}.self_attn.q_proj.bias`, shape: [nH * D], kind: 'bias' },
      { name: `${p}.self_attn.k_proj.weight`, shape: [nKV * D, H], kind: 'linear' },
      { name: `${p}.self_attn.k_proj.bias`, shape: [nKV * D], kind: 'bias' },
      { name: `${p}.self_attn.v_proj.weight`, shape: [nKV * D, H], kind: 'linear' },
      { name: `${p}.self_attn.v_proj.bias`, shape: [nKV * D], kind: 'bias' },
      { name: `${p}.self_attn.o_proj.weight`, shape: [H, nH * D], kind: 'linear' },
      { name: `${p}.post_attention_layernorm.weight`, shape: [H], kind: 'norm' },
      { name: `${p}.mlp.gate_proj.weight`, shape: [I, H], kind: 'linear' },
      { name: `${p}.mlp.up_proj.weight`, shape: [I, H], kind: 'linear' },
      { name: `${p}.mlp.down_proj.weight`, shape: [H, I], kind: 'linear' },
    );
  }
  specs.push({ name: 'model.norm.weight', shape: [H], kind: 'norm' });
  if (!shape.tieWordEmbeddings) specs.push({ name: 'lm_head.weight', shape: [V, H], kind: 'linear' });
  return specs;
}

/** The output head's weight name: the embedding when tied. */
export function lmHeadWeightName(shape: Pick<Qwen2Shape, 'tieWordEmbeddings'>): string {
  return shape.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
}

export function parameterCount(shape: Qwen2Shape): number {
  return qwen2TensorSpecs(shape).reduce((sum, spec) => sum + spec.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * Random weights: embeddings and linear weights uniform with standard deviation `initStd` (Hugging Face's
 * initializer_range), biases uniform with a tenth of it (non-zero so parity tests exercise them), norm
 * weights uniform in [0.5, 1.5]. Each tensor's values depend only on (seed, tensor name).
 */
export function randomQwen2Weights(shape: Qwen2Shape, seed: Seed, initStd = 0.02): Map<string, Float32Array> {
  const weights = new Map<string, Float32Array>();
  const halfWidth = initStd * Math.sqrt(3);
  for (const spec of qwen2TensorSpecs(shape)) {
    const random = Xoshiro128.forLabel(seed, spec.name);
    const values = new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < values.length; i++) {
      const unit = random.nextFloat();
      values[i] =
        spec.kind === 'norm'
          ? 0.5 + unit
          : spec.kind === 'bias'
            ? (2 * unit - 1) * halfWidth * 0.1
            : (2 * unit - 1) * halfWidth;
    }
    weights.set(spec.name, values);
  }
  return weights;
}

/** A WeightSource over a Map, for weights built in memory. */
export function weightMap(weights: ReadonlyMap<string, Float32Array>): WeightSource {
  return {
    has: (name) => weights.has(name),
    float32: (name) => {
      const values = weights.get(name);
      if (values === undefined) throw new ModelSpecError(`weight "${name}" is missing`);
      return values;
    },
  };
}

/**
 * Checks that `source` holds every tensor of the layout with the right element count, and returns the
 * tensors in layout order. `describe` names the source in errors.
 */
export function collectQwen2Weights(
  shape: Qwen2Shape,
  source: WeightSource,
  describe: string,
): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const spec of qwen2TensorSpecs(shape)) {
    if (!source.has(spec.name)) {
      throw new ModelSpecError(
        `${describe} has no tensor "${spec.name}" (expected shape [${spec.shape.join(', ')}])`,
      );
    }
    const storedShape = source.shapeOf?.(spec.name);
    if (storedShape !== undefined && storedShape.join(',') !== spec.shape.join(',')) {
      throw new ModelSpecError(
        `${describe}: tensor "${spec.name}" has shape [${storedShape.join(', ')}]; expected [${spec.shape.join(', ')}]`,
      );
    }
    const values = source.float32(spec.name);
    const expected = spec.shape.reduce((a, b) => a * b, 1);
    if (values.length !== expected) {
      throw new ModelSpecError(
        `${describe}: tensor "${spec.name}" has ${values.length} values; expected shape [${spec.shape.join(', ')}] (${expected} values)`,
      );
    }
    out.set(spec.name, values);
  }
  return out;
}
