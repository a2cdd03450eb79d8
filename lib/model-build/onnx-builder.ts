/**
 * Writes a Qwen2-architecture decoder as ONNX with the input and output names Hugging Face optimum uses for
 * decoders with past key values, so the project's own models and users' Qwen exports run on one runtime:
 *
 *   inputs   input_ids [batch, seq] int64, attention_mask [batch, past + seq] int64,
 *            position_ids [batch, seq] int64, past_key_values.{i}.key|value [batch, kv_heads, past, head_dim]
 *   outputs  logits [batch, seq, vocab], present.{i}.key|value [batch, kv_heads, past + seq, head_dim]
 *
 * The graph: token embedding → per layer (RMSNorm → q/k/v projections with bias → rotary positions →
 * grouped-query attention over past + new keys (key/value heads repeated per query head), causal and
 * padding masks → o_proj → residual → RMSNorm →
 * gated SiLU MLP → residual) → final RMSNorm → output head (tied to the embedding or separate).
 *
 * Linear layers are Gemm with transB=1, so weights stay in Hugging Face's [out, in] layout (the same bytes
 * as in model.safetensors); the head is a MatMul over [batch, seq, hidden] as in optimum's exports.
 */
import type { ModelConfig } from '../model/config';
import { ModelSpecError } from '../model/errors';
import {
  DataType,
  GraphBuilder,
  IR_VERSION,
  OPSET_VERSION,
  encodeModel,
  externalFloat32Tensor,
  float32Tensor,
  intAttr,
  intsAttr,
  valueInfo,
  type onnx,
} from '../model/onnx-graph';
import { DECODER_NAMES } from '../model/tensor-names';
import {
  collectQwen2Weights,
  layerPrefix,
  lmHeadWeightName,
  qwen2TensorSpecs,
  type Qwen2Shape,
  type WeightSource,
} from './qwen2-weights';

export type DecoderSpec = Qwen2Shape & Pick<ModelConfig, 'rmsNormEps' | 'ropeTheta'>;

export interface DecoderOnnxOptions {
  /**
   * Store the weights in an external data file of this name (next to model.onnx) instead of inside it.
   * Needed beyond protobuf's 2 GB limit; optimum names it `model.onnx_data`.
   */
  externalDataFile?: string;
}

export interface DecoderOnnx {
  model: Uint8Array;
  /** The external data file, when `externalDataFile` was given. */
  externalData: { path: string; data: Uint8Array } | null;
}


const DIM = {
  batch: 'batch_size',
  sequence: 'sequence_length',
  past: 'past_sequence_length',
  total: 'past_sequence_length + sequence_length',
} as const;

const EXTERNAL_ALIGNMENT = 64;
const FLOAT32_LOWEST = -3.4028234663852886e38;

/** Rotary inverse frequencies as Hugging Face computes them: 1 / theta^(2i/d), in float32. */
export function rotaryInverseFrequencies(headDim: number, ropeTheta: number): Float32Array {
  const half = headDim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = 1 / Math.pow(ropeTheta, Math.fround((2 * i) / headDim));
  return out;
}

function checkSpec(spec: DecoderSpec): void {
  if (spec.headDim % 2 !== 0)
    throw new ModelSpecError(`head_dim must be even for rotary positions, got ${spec.headDim}`);
  if (spec.numAttentionHeads % spec.numKeyValueHeads !== 0) {
    throw new ModelSpecError(
      `num_attention_heads (${spec.numAttentionHeads}) must be a multiple of num_key_value_heads (${spec.numKeyValueHeads})`,
    );
  }
}

/** Builds the decoder from `weights` (checked against the layout first). */
export function buildDecoderOnnx(
  spec: DecoderSpec,
  weights: WeightSource,
  options: DecoderOnnxOptions = {},
): DecoderOnnx {
  checkSpec(spec);
  const tensors = collectQwen2Weights(spec, weights, 'weights');
  const shapes = new Map(qwen2TensorSpecs(spec).map((tensor) => [tensor.name, tensor.shape]));
  const { hiddenSize: H, numAttentionHeads: nH, numKeyValueHeads: nKV, headDim: D, vocabSize: V } = spec;
  const groups = nH / nKV;
  const g = new GraphBuilder();

  // Weights: embedded raw data, or laid out in one external file at aligned offsets.
  const initializers: onnx.ITensorProto[] = [];
  const externalChunks: { offset: number; values: Float32Array }[] = [];
  let externalLength = 0;
  for (const [name, values] of tensors) {
    const dims = shapes.get(name) ?? [values.length];
    if (options.externalDataFile === undefined) {
      initializers.push(float32Tensor(name, dims, values));
    } else {
      externalLength = Math.ceil(externalLength / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
      initializers.push(
        externalFloat32Tensor(name, dims, options.externalDataFile, externalLength, values.byteLength),
      );
      externalChunks.push({ offset: externalLength, values });
      externalLength += values.byteLength;
    }
  }

  // Dynamic sizes as 1-D int64 tensors, used to build reshape targets.
  const idsShape = g.op('Shape', [DECODER_NAMES.inputIds]);
  const batch = g.op('Gather', [idsShape, g.int64Constant([0])], { axis: intAttr(0) });
  const sequence = g.op('Gather', [idsShape, g.int64Constant([1])], { axis: intAttr(0) });
  const total = g.op('Gather', [g.op('Shape', [DECODER_NAMES.attentionMask]), g.int64Constant([1])], {
    axis: intAttr(0),
  });
  const shape = (...parts: (string | number[])[]): string =>
    g.op(
      'Concat',
      parts.map((part) => (typeof part === 'string' ? part : g.int64Constant(part))),
      { axis: intAttr(0) },
    );
  const unsqueeze = (input: string, axes: number[]): string =>
    g.op('Unsqueeze', [input, g.int64Constant(axes)]);

  // Token embedding, flattened to [batch * seq, hidden] for the Gemm layers.
  let hidden = g.op(
    'Gather',
    ['model.embed_tokens.weight', g.op('Reshape', [DECODER_NAMES.inputIds, g.int64Constant([-1])])],
    { axis: intAttr(0) },
  );

  // Rotary tables shared by all layers: [batch, 1, seq, head_dim].
  const positions = unsqueeze(
    g.op('Cast', [DECODER_NAMES.positionIds], { to: intAttr(DataType.FLOAT) }),
    [2],
  );
  const frequencies = g.op('Mul', [positions, g.floatConstant(rotaryInverseFrequencies(D, spec.ropeTheta))]);
  const angles = g.op('Concat', [frequencies, frequencies], { axis: intAttr(-1) });
  const cos = unsqueeze(g.op('Cos', [angles]), [1]);
  const sin = unsqueeze(g.op('Sin', [angles]), [1]);

  // Which keys each query may see: causal (key position <= query position) and not padding.
  // Queries are the last `seq` of the `past + seq` positions. Shape [batch, 1, seq, past + seq].
  const scalar = (oneElement: string): string => g.op('Squeeze', [oneElement, g.int64Constant([0])]);
  const totalScalar = scalar(total);
  const pastScalar = g.op('Sub', [totalScalar, scalar(sequence)]);
  const zero = g.int64Constant([0], []);
  const one = g.int64Constant([1], []);
  const keyPositions = unsqueeze(g.op('Range', [zero, totalScalar, one]), [0]);
  const queryPositions = unsqueeze(g.op('Range', [pastScalar, totalScalar, one]), [1]);
  const causal = g.op('LessOrEqual', [keyPositions, queryPositions]);
  const notPadding = unsqueeze(
    g.op('Cast', [DECODER_NAMES.attentionMask], { to: intAttr(DataType.BOOL) }),
    [1, 2],
  );
  const allowed = g.op('And', [causal, notPadding]);
  const lowest = g.floatConstant([FLOAT32_LOWEST], []);

  const rmsNorm = (input: string, weight: string): string => {
    const meanSquare = g.op('ReduceMean', [g.op('Mul', [input, input])], {
      axes: intsAttr([-1]),
      keepdims: intAttr(1),
    });
    const rms = g.op('Sqrt', [g.op('Add', [meanSquare, g.floatConstant([spec.rmsNormEps], [])])]);
    return g.op('Mul', [g.op('Div', [input, rms]), weight]);
  };
  const linear = (input: string, weight: string, bias?: string): string =>
    g.op('Gemm', bias === undefined ? [input, weight] : [input, weight, bias], { transB: intAttr(1) });
  const heads = (input: string, count: number): string =>
    g.op('Transpose', [g.op('Reshape', [input, shape(batch, sequence, [count, D])])], {
      perm: intsAttr([0, 2, 1, 3]),
    });
  const halfSplit = g.int64Constant([D / 2, D / 2]);
  const rotate = (input: string): string => {
    const [first, second] = g.node('Split', [input, halfSplit], { axis: intAttr(-1) }, 2);
    const rotated = g.op('Concat', [g.op('Neg', [second]), first], { axis: intAttr(-1) });
    return g.op('Add', [g.op('Mul', [input, cos]), g.op('Mul', [rotated, sin])]);
  };
  const scale = g.floatConstant([1 / Math.sqrt(D)], []);

  const inputs: onnx.IValueInfoProto[] = [
    valueInfo(DECODER_NAMES.inputIds, DataType.INT64, [DIM.batch, DIM.sequence]),
    valueInfo(DECODER_NAMES.attentionMask, DataType.INT64, [DIM.batch, DIM.total]),
    valueInfo(DECODER_NAMES.positionIds, DataType.INT64, [DIM.batch, DIM.sequence]),
  ];
  const outputs: onnx.IValueInfoProto[] = [
    valueInfo(DECODER_NAMES.logits, DataType.FLOAT, [DIM.batch, DIM.sequence, V]),
  ];

  for (let layer = 0; layer < spec.numHiddenLayers; layer++) {
    const p = layerPrefix(layer);
    const normed = rmsNorm(hidden, `${p}.input_layernorm.weight`);
    const query = rotate(
      heads(linear(normed, `${p}.self_attn.q_proj.weight`, `${p}.self_attn.q_proj.bias`), nH),
    );
    const key = rotate(
      heads(linear(normed, `${p}.self_attn.k_proj.weight`, `${p}.self_attn.k_proj.bias`), nKV),
    );
    const value = heads(linear(normed, `${p}.self_attn.v_proj.weight`, `${p}.self_attn.v_proj.bias`), nKV);

    const pastKey = DECODER_NAMES.pastKey(layer);
    const pastValue = DECODER_NAMES.pastValue(layer);
    inputs.push(
      valueInfo(pastKey, DataType.FLOAT, [DIM.batch, nKV, DIM.past, D]),
      valueInfo(pastValue, DataType.FLOAT, [DIM.batch, nKV, DIM.past, D]),
    );
    const presentKey = g.op('Concat', [pastKey, key], { axis: intAttr(2) }, DECODER_NAMES.presentKey(layer));
    const presentValue = g.op(
      'Concat',
      [pastValue, value],
      { axis: intAttr(2) },
      DECODER_NAMES.presentValue(layer),
    );
    outputs.push(
      valueInfo(presentKey, DataType.FLOAT, [DIM.batch, nKV, DIM.total, D]),
      valueInfo(presentValue, DataType.FLOAT, [DIM.batch, nKV, DIM.total, D]),
    );

    // Grouped-query attention as Hugging Face's eager attention and optimum's exports do it: each key/value
    // head is repeated for the query heads sharing it, so every (row, head) is its own matrix product with
    // one query row when decoding. ONNX Runtime computes those with the same arithmetic whatever the batch
    // holds and wherever the row's keys start (generate.ts relies on it); a broadcast over the groups would
    // be folded into larger products whose rounding depends on both.
    const repeated = (cache: string) =>
      groups === 1
        ? cache
        : g.op('Reshape', [
            g.op('Expand', [
              g.op('Unsqueeze', [cache, g.int64Constant([2])]),
              shape(batch, [nKV, groups], total, [D]),
            ]),
            shape(batch, [nH], total, [D]),
          ]);
    const scores = g.op('MatMul', [
      g.op('Mul', [query, scale]),
      g.op('Transpose', [repeated(presentKey)], { perm: intsAttr([0, 1, 3, 2]) }),
    ]);
    const weights = g.op('Softmax', [g.op('Where', [allowed, scores, lowest])], { axis: intAttr(-1) });
    const context = g.op('MatMul', [weights, repeated(presentValue)]);
    const merged = g.op('Reshape', [
      g.op('Transpose', [context], { perm: intsAttr([0, 2, 1, 3]) }),
      g.int64Constant([-1, nH * D]),
    ]);
    hidden = g.op('Add', [hidden, linear(merged, `${p}.self_attn.o_proj.weight`)]);

    const normedAgain = rmsNorm(hidden, `${p}.post_attention_layernorm.weight`);
    const gate = linear(normedAgain, `${p}.mlp.gate_proj.weight`);
    const up = linear(normedAgain, `${p}.mlp.up_proj.weight`);
    const activated = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
    hidden = g.op('Add', [hidden, linear(activated, `${p}.mlp.down_proj.weight`)]);
  }

  const final = g.op('Reshape', [rmsNorm(hidden, 'model.norm.weight'), shape(batch, sequence, [H])]);
  const headTransposed = g.op('Transpose', [lmHeadWeightName(spec)], { perm: intsAttr([1, 0]) });
  g.op('MatMul', [final, headTransposed], {}, DECODER_NAMES.logits);

  const model = encodeModel({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET_VERSION }],
    producerName: 'rememr1-onnx-builder',
    graph: {
      name: 'qwen2_decoder',
      node: g.nodes,
      initializer: [...initializers, ...g.initializers],
      input: inputs,
      output: outputs,
    },
  });
  if (options.externalDataFile === undefined) return { model, externalData: null };
  const data = new Uint8Array(externalLength);
  for (const chunk of externalChunks)
    data.set(
      new Uint8Array(chunk.values.buffer, chunk.values.byteOffset, chunk.values.byteLength),
      chunk.offset,
    );
  return { model, externalData: { path: options.externalDataFile, data } };
}
