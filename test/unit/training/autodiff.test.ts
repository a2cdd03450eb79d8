/**
 * Every autodiff operator's gradient against central finite differences, in float64: a one-operator graph,
 * the objective Σ c·op(x) with fixed random weights c, and each input element nudged by ±h.
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import {
  AutodiffGraph,
  AutodiffShapeError,
  broadcastShapes,
  type Value,
} from '../../../lib/training/autodiff';
import { Xoshiro128 } from '../../../lib/model/random';

interface Operand {
  shape: number[];
  /** Values drawn from this range (positive ranges for sqrt, divisors). */
  range?: [number, number];
}

type Build = (ad: AutodiffGraph, inputs: Value[]) => Value;

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function draw(count: number, label: string, [low, high]: [number, number] = [-1, 1]): Float64Array {
  const random = Xoshiro128.forLabel('autodiff-test', label);
  return Float64Array.from({ length: count }, () => low + (high - low) * random.nextFloat());
}

/** Builds the one-operator graph with its backward pass and returns (analytic gradients, objective). */
async function prepare(operands: Operand[], build: Build) {
  const ad = new AutodiffGraph('float64');
  const inputs = operands.map((operand, i) => ad.floatInput(`x${i}`, operand.shape, true));
  const out = build(ad, inputs);
  const outShape = out.shape.map((d) => {
    if (typeof d !== 'number') throw new Error('test outputs need fixed shapes');
    return d;
  });
  ad.output(out, 'y');
  const seed = ad.floatInput('c', outShape, false);
  const grads = ad.gradients([{ value: out, grad: seed }], inputs);
  inputs.forEach((input, i) => ad.output(ad.nonDifferentiable(grads.get(input.name)!, input.shape), `g${i}`));
  const session = await InferenceSession.create(ad.encode('check'), { logSeverityLevel: 3 });
  const c = draw(size(outShape), 'c');
  const run = async (values: Float64Array[]) => {
    const feeds: Record<string, Tensor> = { c: new Tensor('float64', c, outShape) };
    values.forEach((value, i) => (feeds[`x${i}`] = new Tensor('float64', value, operands[i].shape)));
    const result = await session.run(feeds);
    const y = result.y.data as Float64Array;
    let objective = 0;
    for (let k = 0; k < y.length; k++) objective += c[k] * y[k];
    return { objective, grads: operands.map((_, i) => result[`g${i}`].data as Float64Array) };
  };
  return { run, session };
}

async function expectGradientsMatch(operands: Operand[], build: Build, tolerance = 1e-6): Promise<void> {
  const { run, session } = await prepare(operands, build);
  const values = operands.map((operand, i) => draw(size(operand.shape), `x${i}`, operand.range));
  const { grads } = await run(values);
  const h = 1e-6;
  for (let i = 0; i < operands.length; i++) {
    for (let k = 0; k < values[i].length; k++) {
      const original = values[i][k];
      values[i][k] = original + h;
      const plus = (await run(values)).objective;
      values[i][k] = original - h;
      const minus = (await run(values)).objective;
      values[i][k] = original;
      const numeric = (plus - minus) / (2 * h);
      expect(Math.abs(grads[i][k] - numeric)).toBeLessThan(tolerance * Math.max(1, Math.abs(numeric)));
    }
  }
  await session.release();
}

describe('operator gradients against finite differences', () => {
  it('add, with broadcasting on both sides', () =>
    expectGradientsMatch([{ shape: [2, 3, 4] }, { shape: [3, 1] }], (ad, [a, b]) => ad.add(a, b)));
  it('sub, with a broadcast scalar-like operand', () =>
    expectGradientsMatch([{ shape: [1, 4] }, { shape: [3, 4] }], (ad, [a, b]) => ad.sub(a, b)));
  it('mul, both operands differentiable and broadcast', () =>
    expectGradientsMatch([{ shape: [2, 1, 4] }, { shape: [3, 1] }], (ad, [a, b]) => ad.mul(a, b)));
  it('mul of a value with itself', () => expectGradientsMatch([{ shape: [5] }], (ad, [a]) => ad.mul(a, a)));
  it('div', () =>
    expectGradientsMatch([{ shape: [2, 3] }, { shape: [2, 1], range: [0.5, 2] }], (ad, [a, b]) =>
      ad.div(a, b),
    ));
  it('neg', () => expectGradientsMatch([{ shape: [3, 2] }], (ad, [a]) => ad.neg(a)));
  it('sqrt', () => expectGradientsMatch([{ shape: [4], range: [0.2, 3] }], (ad, [a]) => ad.sqrt(a)));
  it('sigmoid', () => expectGradientsMatch([{ shape: [2, 5], range: [-4, 4] }], (ad, [a]) => ad.sigmoid(a)));
  it('where with a constant fill', () =>
    expectGradientsMatch([{ shape: [2, 3] }], (ad, [a]) => {
      const condition = ad.g.op('Greater', [a.name, ad.scalar(0).name]);
      return ad.whereElse(condition, a, -7);
    }));
  it('mean and sum over the last axis', () =>
    expectGradientsMatch([{ shape: [2, 3, 4] }], (ad, [a]) =>
      ad.add(ad.meanLastAxis(a), ad.sumLastAxis(ad.mul(a, a))),
    ));
  it('softmax', () => expectGradientsMatch([{ shape: [3, 5], range: [-3, 3] }], (ad, [a]) => ad.softmax(a)));
  it('log-softmax', () =>
    expectGradientsMatch([{ shape: [3, 5], range: [-3, 3] }], (ad, [a]) => ad.logSoftmax(a)));
  it('batched matmul', () =>
    expectGradientsMatch([{ shape: [2, 2, 3, 4] }, { shape: [2, 2, 4, 2] }], (ad, [a, b]) =>
      ad.matmul(a, b),
    ));
  it('linear with and without bias', () =>
    expectGradientsMatch([{ shape: [3, 4] }, { shape: [5, 4] }, { shape: [5] }], (ad, [x, w, b]) =>
      ad.add(ad.linear(x, w, b), ad.linear(x, w)),
    ));
  it('gather rows, with repeated indices', () =>
    expectGradientsMatch([{ shape: [5, 3] }], (ad, [table]) => {
      const indices = ad.nonDifferentiable(ad.g.int64Constant([4, 0, 4, 2]), [4]);
      return ad.gatherRows(table, indices);
    }));
  it('pick one element per row', () =>
    expectGradientsMatch([{ shape: [3, 6] }], (ad, [x]) =>
      ad.pickPerRow(ad.logSoftmax(x), ad.nonDifferentiable(ad.g.int64Constant([5, 0, 2]), [3])),
    ));
  it('reshape and transpose', () =>
    expectGradientsMatch([{ shape: [2, 6] }], (ad, [x]) =>
      ad.transpose(ad.reshapeTo(x, [2, 3, 2]), [2, 0, 1]),
    ));
  it('repeat along a new axis', () =>
    expectGradientsMatch([{ shape: [2, 3] }], (ad, [x]) => ad.repeatAxis(x, 1, 4)));
  it('split with an unused part, and concat', () =>
    expectGradientsMatch([{ shape: [2, 6] }], (ad, [x]) => {
      const [first, second, third] = ad.splitLastAxis(x, [2, 3, 1]);
      void second;
      return ad.concatLastAxis([ad.neg(third), first, first]);
    }));
});

describe('shape checks', () => {
  it('broadcasts like numpy and refuses shapes that do not', () => {
    expect(broadcastShapes([2, 1, 4], [3, 1])).toEqual([2, 3, 4]);
    expect(broadcastShapes(['n', 4], [4])).toEqual(['n', 4]);
    expect(() => broadcastShapes([2, 3], [4, 3])).toThrow(AutodiffShapeError);
  });
});
