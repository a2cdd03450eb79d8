/**
 * The whole training graph's gradients against finite differences, in float64: the objective Σ c·log π over
 * the loss tokens of a padded block, nudged at sampled elements of every weight tensor (tied and untied
 * heads, grouped-query attention, padding rows, a vocabulary padded past the tokenizer's ids).
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { randomQwen2Weights, qwen2TensorSpecs } from '../../../lib/model-build/qwen2-weights';
import { Xoshiro128 } from '../../../lib/model/random';
import {
  addEmbeddingRows,
  buildQwen2TrainingGraph,
  TRAINING_GRAPH_NAMES as N,
} from '../../../lib/training/qwen2-graph';
import { smallSpec } from '../model/helpers';

const B = 2;
const S = 6;

it.each([
  ['tied head', smallSpec({ vocabSize: 48, hiddenSize: 16, intermediateSize: 24, headDim: 4 })],
  [
    'untied head, one key/value head per query head',
    smallSpec({
      vocabSize: 40,
      hiddenSize: 16,
      intermediateSize: 24,
      headDim: 4,
      numKeyValueHeads: 4,
      tieWordEmbeddings: false,
    }),
  ],
])('matches central differences at sampled elements of every weight (%s)', async (_label, spec) => {
  const usable = spec.vocabSize - 5;
  const session = await InferenceSession.create(
    buildQwen2TrainingGraph(spec, {
      batch: B,
      sequence: S,
      usableVocabularySize: usable,
      gradients: true,
      floatType: 'float64',
    }),
    { logSeverityLevel: 3 },
  );
  const random = Xoshiro128.forLabel('qwen2-gradients', String(spec.vocabSize));
  const weights = new Map(
    [...randomQwen2Weights(spec, 'qwen2-gradients', 0.3)].map(([name, values]) => [
      name,
      Float64Array.from(values),
    ]),
  );
  // Row 0: five tokens then padding; row 1: six tokens. Loss on the last three tokens of each row.
  const ids = [3, 17, 5, 9, 30, 0, 11, 2, 40 % usable, 7, 7, 25];
  const mask = [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1];
  const lossPositions = [1, 2, 3, 8, 9, 10];
  const targets = lossPositions.map((p) => ids[p + 1]);
  const seed = Float64Array.from(lossPositions, () => random.nextFloat() * 2 - 1);
  const int64 = (values: number[], dims: number[]) =>
    new Tensor('int64', BigInt64Array.from(values.map(BigInt)), dims);
  const feeds = (): Record<string, Tensor> => {
    const out: Record<string, Tensor> = {
      [N.inputIds]: int64(ids, [B, S]),
      [N.attentionMask]: int64(mask, [B, S]),
      [N.positionIds]: int64([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5], [B, S]),
      [N.lossPositions]: int64(lossPositions, [lossPositions.length]),
      [N.targets]: int64(targets, [targets.length]),
      [N.dLogProbs]: new Tensor('float64', seed, [seed.length]),
    };
    for (const tensor of qwen2TensorSpecs(spec))
      out[tensor.name] = new Tensor('float64', weights.get(tensor.name)!, tensor.shape);
    return out;
  };
  const objective = async (): Promise<number> => {
    const logProbs = (await session.run(feeds()))[N.logProbs].data as Float64Array;
    return logProbs.reduce((sum, value, i) => sum + seed[i] * value, 0);
  };
  const result = await session.run(feeds());
  // The embedding's full gradient: the graph's part (the tied head) plus the looked-up rows, added as the engine does.
  addEmbeddingRows(
    result[N.grad('model.embed_tokens.weight')].data as Float64Array,
    ids,
    result[N.embeddedGrad].data as Float64Array,
    spec.hiddenSize,
  );
  const h = 1e-6;
  for (const tensor of qwen2TensorSpecs(spec)) {
    const values = weights.get(tensor.name)!;
    const grad = result[N.grad(tensor.name)].data as Float64Array;
    expect(grad.length).toBe(values.length);
    const picks =
      tensor.name === 'model.embed_tokens.weight'
        ? [3 * spec.hiddenSize + 1, 7 * spec.hiddenSize + 2, 30 * spec.hiddenSize]
        : [0, 1, 2].map(() => Math.floor(random.nextFloat() * values.length));
    for (const k of picks) {
      const original = values[k];
      values[k] = original + h;
      const plus = await objective();
      values[k] = original - h;
      const minus = await objective();
      values[k] = original;
      const numeric = (plus - minus) / (2 * h);
      expect(Math.abs(grad[k] - numeric)).toBeLessThan(1e-6 * Math.max(1, Math.abs(numeric)));
    }
    // Gradients are not trivially zero: some element of each tensor moves the objective.
    expect(grad.some((value) => Math.abs(value) > 1e-8)).toBe(true);
  }
  await session.release();
});
