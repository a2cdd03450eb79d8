/**
 * A plain TypeScript forward pass of the Qwen2 decoder, in float64 over float32 weights, written from the
 * Hugging Face modelling code and not from the ONNX graph. Tests compare the ONNX model against it. Slow by
 * design (no cache, no batching tricks): use it on small models.
 */
import { rotaryInverseFrequencies, type DecoderSpec } from './onnx-builder';
import { layerPrefix, lmHeadWeightName } from './qwen2-weights';

export interface ReferenceInput {
  /** [batch][seq] token ids. */
  inputIds: number[][];
  /** [batch][seq] 1 for tokens, 0 for padding. */
  attentionMask: number[][];
  /** [batch][seq] rotary positions. */
  positionIds: number[][];
}

type Vector = Float64Array;

/** y = W x + b for W stored [out, in]. */
function linear(
  weight: Float32Array,
  bias: Float32Array | undefined,
  x: Vector,
  outFeatures: number,
): Vector {
  const inFeatures = x.length;
  const y = new Float64Array(outFeatures);
  for (let o = 0; o < outFeatures; o++) {
    let sum = bias === undefined ? 0 : bias[o];
    const row = o * inFeatures;
    for (let i = 0; i < inFeatures; i++) sum += weight[row + i] * x[i];
    y[o] = sum;
  }
  return y;
}

function rmsNorm(x: Vector, weight: Float32Array, eps: number): Vector {
  let meanSquare = 0;
  for (let i = 0; i < x.length; i++) meanSquare += x[i] * x[i];
  meanSquare /= x.length;
  const inverse = 1 / Math.sqrt(meanSquare + eps);
  return x.map((value, i) => value * inverse * weight[i]);
}

/** Rotates one head vector by its position (rotate_half convention). */
function rotary(vector: Vector, position: number, inverseFrequencies: Float32Array): Vector {
  const half = vector.length / 2;
  const out = new Float64Array(vector.length);
  for (let i = 0; i < half; i++) {
    const angle = Math.fround(position * inverseFrequencies[i]);
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    out[i] = vector[i] * c - vector[i + half] * s;
    out[i + half] = vector[i + half] * c + vector[i] * s;
  }
  return out;
}

/** Logits [batch][seq] (each a Float64Array of vocabulary size). Rows at padding positions are not meaningful. */
export function referenceForward(
  spec: DecoderSpec,
  weights: ReadonlyMap<string, Float32Array>,
  input: ReferenceInput,
): Float64Array[][] {
  const {
    hiddenSize: H,
    intermediateSize: I,
    numAttentionHeads: nH,
    numKeyValueHeads: nKV,
    headDim: D,
    vocabSize: V,
  } = spec;
  const w = (name: string): Float32Array => {
    const values = weights.get(name);
    if (values === undefined) throw new Error(`reference forward: weight "${name}" is missing`);
    return values;
  };
  const groups = nH / nKV;
  const inverseFrequencies = rotaryInverseFrequencies(D, spec.ropeTheta);
  const embedding = w('model.embed_tokens.weight');

  return input.inputIds.map((ids, b) => {
    const mask = input.attentionMask[b];
    const positions = input.positionIds[b];
    let hidden: Vector[] = ids.map((id) => Float64Array.from(embedding.subarray(id * H, (id + 1) * H)));
    for (let layer = 0; layer < spec.numHiddenLayers; layer++) {
      const p = layerPrefix(layer);
      const normed = hidden.map((x) => rmsNorm(x, w(`${p}.input_layernorm.weight`), spec.rmsNormEps));
      const queries = normed.map((x) =>
        linear(w(`${p}.self_attn.q_proj.weight`), w(`${p}.self_attn.q_proj.bias`), x, nH * D),
      );
      const keys = normed.map((x) =>
        linear(w(`${p}.self_attn.k_proj.weight`), w(`${p}.self_attn.k_proj.bias`), x, nKV * D),
      );
      const values = normed.map((x) =>
        linear(w(`${p}.self_attn.v_proj.weight`), w(`${p}.self_attn.v_proj.bias`), x, nKV * D),
      );
      const rotatedKeys = keys.map((k, t) =>
        Array.from({ length: nKV }, (_, head) =>
          rotary(k.subarray(head * D, (head + 1) * D), positions[t], inverseFrequencies),
        ),
      );

      const attended = queries.map((q, t) => {
        const out = new Float64Array(nH * D);
        for (let head = 0; head < nH; head++) {
          const kvHead = Math.floor(head / groups);
          const rotatedQuery = rotary(q.subarray(head * D, (head + 1) * D), positions[t], inverseFrequencies);
          const visible: number[] = [];
          for (let j = 0; j <= t; j++) if (mask[j] === 1) visible.push(j);
          const scores = visible.map((j) => {
            let dot = 0;
            for (let d = 0; d < D; d++) dot += rotatedQuery[d] * rotatedKeys[j][kvHead][d];
            return dot / Math.sqrt(D);
          });
          const max = Math.max(...scores);
          const exps = scores.map((score) => Math.exp(score - max));
          const sum = exps.reduce((a, e) => a + e, 0);
          visible.forEach((j, index) => {
            const weight = exps[index] / sum;
            for (let d = 0; d < D; d++) out[head * D + d] += weight * values[j][kvHead * D + d];
          });
        }
        return out;
      });
      hidden = hidden.map((x, t) => {
        const projected = linear(w(`${p}.self_attn.o_proj.weight`), undefined, attended[t], H);
        return x.map((value, i) => value + projected[i]);
      });
      hidden = hidden.map((x) => {
        const n = rmsNorm(x, w(`${p}.post_attention_layernorm.weight`), spec.rmsNormEps);
        const gate = linear(w(`${p}.mlp.gate_proj.weight`), undefined, n, I);
        const up = linear(w(`${p}.mlp.up_proj.weight`), undefined, n, I);
        const activated = gate.map((value, i) => (value / (1 + Math.exp(-value))) * up[i]);
        const down = linear(w(`${p}.mlp.down_proj.weight`), undefined, activated, H);
        return x.map((value, i) => value + down[i]);
      });
    }
    const head = w(lmHeadWeightName(spec));
    return hidden.map((x) => linear(head, undefined, rmsNorm(x, w('model.norm.weight'), spec.rmsNormEps), V));
  });
}
