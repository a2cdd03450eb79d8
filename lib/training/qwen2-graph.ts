/**
 * The Qwen2 policy as a training graph, written once against the autodiff operators so that ONNX Runtime
 * runs its forward pass and (optionally) its backward pass. The architecture is the ONNX decoder's
 * (lib/model-build/onnx-builder.ts) operator for operator: RMSNorm → q/k/v projections with bias → rotary
 * positions → grouped-query attention with causal and padding masks → o_proj → residual → RMSNorm → gated
 * SiLU MLP → residual → final RMSNorm → output head (tied or not), so that its log-probabilities equal the
 * policy's to float rounding.
 *
 * Training differs from decoding in two ways only: no key/value cache (a whole sequence per row), and the
 * output head runs only at the positions that carry a loss (the tokens each turn generated), since the
 * prompt tokens are context. Each such position gives log π(target) and the entropy of π there.
 *
 *   inputs   weights by Hugging Face name [their shapes], input_ids [B, S], attention_mask [B, S],
 *            position_ids [B, S], loss_positions [M] (flat indices b·S + s), targets [M]
 *            (+ d_log_probs [M] when gradients are built: d(objective)/d(log_probs))
 *   outputs  log_probs [M], entropy [M] (+ grad.{weight name} for every weight, and grad.embedded_tokens
 *            [B·S, hidden]: the embedding table's full gradient is grad.model.embed_tokens.weight plus these rows
 *            added at their ids, see addEmbeddingRows)
 */
import { rotaryInverseFrequencies, type DecoderSpec } from '../model-build/onnx-builder';
import { DataType, intAttr } from '../model/onnx-graph';
import { DECODER_NAMES } from '../model/tensor-names';
import { layerPrefix, lmHeadWeightName, qwen2TensorSpecs } from '../model-build/qwen2-weights';
import { AutodiffGraph, type FloatType, type Value } from './autodiff';

export const TRAINING_GRAPH_NAMES = {
  inputIds: DECODER_NAMES.inputIds,
  attentionMask: DECODER_NAMES.attentionMask,
  positionIds: DECODER_NAMES.positionIds,
  lossPositions: 'loss_positions',
  targets: 'targets',
  logProbs: 'log_probs',
  entropy: 'entropy',
  dLogProbs: 'd_log_probs',
  grad: (weight: string): string => `grad.${weight}`,
  /** d(objective)/d(the looked-up embedding rows) [B·S, hidden], added into the table by addEmbeddingRows. */
  embeddedGrad: 'grad.embedded_tokens',
} as const;

/**
 * Adds the looked-up rows' gradient into the embedding table's, row by row in token order (a fixed order:
 * float additions do not commute bit for bit). `ids` are the block's token ids, flattened.
 */
export function addEmbeddingRows(
  tableGrad: Float32Array | Float64Array,
  ids: ArrayLike<bigint | number>,
  rowsGrad: ArrayLike<number>,
  hidden: number,
): void {
  for (let n = 0; n < ids.length; n++) {
    const row = Number(ids[n]) * hidden;
    const from = n * hidden;
    for (let h = 0; h < hidden; h++) tableGrad[row + h] += rowsGrad[from + h];
  }
}

/** The symbolic length of the loss positions: the one dimension that varies within a session. */
const LOSS_TOKENS = 'loss_tokens';
const FLOAT32_LOWEST = -3.4028234663852886e38;
/** Logit offset of ids the tokenizer lacks, as the policy's sampling head masks them. */
export const MASKED_LOGIT = -1e30;

export interface TrainingGraphOptions {
  batch: number;
  sequence: number;
  /** Ids at or above this are never sampled (a vocabulary padded past the tokenizer's ids). */
  usableVocabularySize: number;
  /** Emit the backward pass (the `grad.*` outputs). */
  gradients: boolean;
  /** float64 is for gradient checks against finite differences; training runs in float32. */
  floatType?: FloatType;
}

export function buildQwen2TrainingGraph(spec: DecoderSpec, options: TrainingGraphOptions): Uint8Array {
  const { batch: B, sequence: S } = options;
  const { numAttentionHeads: nH, numKeyValueHeads: nKV, headDim: D, vocabSize: V } = spec;
  const floatType = options.floatType ?? 'float32';
  const ad = new AutodiffGraph(floatType);
  const g = ad.g;
  const N = TRAINING_GRAPH_NAMES;

  const weights = new Map<string, Value>();
  for (const tensor of qwen2TensorSpecs(spec))
    weights.set(tensor.name, ad.floatInput(tensor.name, tensor.shape, true));
  const w = (name: string): Value => weights.get(name)!;
  const inputIds = ad.int64Input(N.inputIds, [B, S]);
  const attentionMask = ad.int64Input(N.attentionMask, [B, S]);
  const positionIds = ad.int64Input(N.positionIds, [B, S]);
  const lossPositions = ad.int64Input(N.lossPositions, [LOSS_TOKENS]);
  const targets = ad.int64Input(N.targets, [LOSS_TOKENS]);

  // Constant tables (no gradient): rotary cos/sin computed as the decoder does, in float32, [B, 1, S, D].
  const toFloat = (name: string): string =>
    floatType === 'float32' ? name : g.op('Cast', [name], { to: intAttr(DataType.DOUBLE) });
  const positions = g.op('Unsqueeze', [
    g.op('Cast', [positionIds.name], { to: intAttr(DataType.FLOAT) }),
    g.int64Constant([2]),
  ]);
  const frequencies = g.op('Mul', [positions, g.floatConstant(rotaryInverseFrequencies(D, spec.ropeTheta))]);
  const angles = g.op('Concat', [frequencies, frequencies], { axis: intAttr(-1) });
  const table = (op: 'Cos' | 'Sin'): Value =>
    ad.nonDifferentiable(toFloat(g.op('Unsqueeze', [g.op(op, [angles]), g.int64Constant([1])])), [
      B,
      1,
      S,
      D,
    ]);
  const cos = table('Cos');
  const sin = table('Sin');

  // Which keys each query may see: causal and not padding, [B, 1, S, S].
  const range = g.op('Range', [g.int64Constant([0], []), g.int64Constant([S], []), g.int64Constant([1], [])]);
  const causal = g.op('LessOrEqual', [
    g.op('Unsqueeze', [range, g.int64Constant([0])]),
    g.op('Unsqueeze', [range, g.int64Constant([1])]),
  ]);
  const notPadding = g.op('Unsqueeze', [
    g.op('Cast', [attentionMask.name], { to: intAttr(DataType.BOOL) }),
    g.int64Constant([1, 2]),
  ]);
  const allowed = g.op('And', [causal, notPadding]);

  const rmsNorm = (x: Value, weight: Value): Value => {
    const rms = ad.sqrt(ad.add(ad.meanLastAxis(ad.mul(x, x)), ad.scalar(spec.rmsNormEps)));
    return ad.mul(ad.div(x, rms), weight);
  };
  const heads = (x: Value, count: number): Value =>
    ad.transpose(ad.reshapeTo(x, [B, S, count, D]), [0, 2, 1, 3]);
  const rotate = (x: Value): Value => {
    const [first, second] = ad.splitLastAxis(x, [D / 2, D / 2]);
    const rotated = ad.concatLastAxis([ad.neg(second), first]);
    return ad.add(ad.mul(x, cos), ad.mul(rotated, sin));
  };
  const repeatHeads = (x: Value): Value =>
    nH === nKV ? x : ad.reshapeTo(ad.repeatAxis(x, 2, nH / nKV), [B, nH, S, D]);
  const scale = ad.scalar(1 / Math.sqrt(D));

  // The token embedding's gradient is a scatter-add over repeated ids, whose order ONNX Runtime's threads
  // change from run to run; the graph returns the gradient of the looked-up rows instead and the engine adds
  // them into the table in token order (addEmbeddingRows), so that an update is bit-identical on every run.
  const embedded = ad.leaf(
    g.op(
      'Gather',
      [w('model.embed_tokens.weight').name, g.op('Reshape', [inputIds.name, g.int64Constant([-1])])],
      {
        axis: intAttr(0),
      },
    ),
    [B * S, spec.hiddenSize],
  );
  let hidden = embedded;
  for (let layer = 0; layer < spec.numHiddenLayers; layer++) {
    const p = layerPrefix(layer);
    const normed = rmsNorm(hidden, w(`${p}.input_layernorm.weight`));
    const projection = (name: string, count: number): Value =>
      heads(ad.linear(normed, w(`${p}.self_attn.${name}.weight`), w(`${p}.self_attn.${name}.bias`)), count);
    const query = rotate(projection('q_proj', nH));
    const key = repeatHeads(rotate(projection('k_proj', nKV)));
    const value = repeatHeads(projection('v_proj', nKV));
    const scores = ad.matmul(ad.mul(query, scale), ad.transpose(key, [0, 1, 3, 2]));
    const attention = ad.softmax(ad.whereElse(allowed, scores, FLOAT32_LOWEST));
    const context = ad.matmul(attention, value);
    const merged = ad.reshapeTo(ad.transpose(context, [0, 2, 1, 3]), [B * S, nH * D]);
    hidden = ad.add(hidden, ad.linear(merged, w(`${p}.self_attn.o_proj.weight`)));

    const normedAgain = rmsNorm(hidden, w(`${p}.post_attention_layernorm.weight`));
    const gate = ad.linear(normedAgain, w(`${p}.mlp.gate_proj.weight`));
    const up = ad.linear(normedAgain, w(`${p}.mlp.up_proj.weight`));
    const activated = ad.mul(ad.mul(gate, ad.sigmoid(gate)), up);
    hidden = ad.add(hidden, ad.linear(activated, w(`${p}.mlp.down_proj.weight`)));
  }
  const final = rmsNorm(hidden, w('model.norm.weight'));

  // The head only where a loss is taken.
  let logits = ad.linear(ad.gatherRows(final, lossPositions), w(lmHeadWeightName(spec)));
  if (options.usableVocabularySize < V) {
    const mask = new Array<number>(V).fill(0).fill(MASKED_LOGIT, options.usableVocabularySize);
    logits = ad.add(logits, ad.constant(mask, [V]));
  }
  const logSoftmax = ad.logSoftmax(logits);
  const logProbs = ad.pickPerRow(logSoftmax, targets);
  ad.output(logProbs, N.logProbs);
  // Entropy −Σ p·log p is reported, not trained on: plain nodes outside the tape.
  const plogp = g.op('Mul', [g.op('Exp', [logSoftmax.name]), logSoftmax.name]);
  const entropy = g.op('Neg', [g.op('ReduceSum', [plogp, g.int64Constant([-1])], { keepdims: intAttr(0) })]);
  ad.output(ad.nonDifferentiable(entropy, [LOSS_TOKENS]), N.entropy);

  if (options.gradients) {
    const seed = ad.floatInput(N.dLogProbs, [LOSS_TOKENS], false);
    const all = [...weights.values()];
    const grads = ad.gradients([{ value: logProbs, grad: seed }], [...all, embedded]);
    for (const weight of all) {
      ad.output(ad.nonDifferentiable(grads.get(weight.name)!, weight.shape), N.grad(weight.name));
    }
    ad.output(ad.nonDifferentiable(grads.get(embedded.name)!, embedded.shape), N.embeddedGrad);
  }
  return ad.encode('qwen2_training');
}
