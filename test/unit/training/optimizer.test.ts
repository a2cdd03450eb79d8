import { Xoshiro128 } from '../../../lib/model/random';
import { TrainingInputError } from '../../../lib/training/errors';
import {
  adamWStep,
  clipGradients,
  createAdamWState,
  decaysByDefault,
  defaultAdamWSettings,
  globalGradNorm,
  learningRateAt,
  type AdamWSettings,
} from '../../../lib/training/optimizer';
import { shuffledOrder } from '../../../lib/training/shuffle';

function tensors(entries: Record<string, number[]>): Map<string, Float32Array> {
  return new Map(Object.entries(entries).map(([name, values]) => [name, Float32Array.from(values)]));
}

/** Within a float32 rounding of values near 1. */
function expectFloat32Close(actual: number, expected: number): void {
  expect(Math.abs(actual - expected)).toBeLessThan(1e-7);
}

const SETTINGS: AdamWSettings = {
  learningRate: 0.1,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  weightDecay: 0.01,
  warmupSteps: 0,
  maxGradNorm: Infinity,
};

describe('adamWStep', () => {
  it('matches a hand-computed two-step example, with and without weight decay', () => {
    const params = tensors({ 'layer.weight': [1], 'layer.norm.weight': [1] });
    const state = createAdamWState(params);

    // Step 1, t = 1, g = 0.5, lr = 0.1:
    //   decayed: p = 1·(1 − 0.1·0.01) = 0.999
    //   m = 0.1·0.5 = 0.05, v = 0.001·0.25 = 0.00025; m̂ = 0.05/0.1 = 0.5, √v̂ = √(0.00025/0.001) = 0.5
    //   update = 0.1·0.5/(0.5 + 1e-8) = 0.099999998
    //   p = 0.999 − 0.099999998 = 0.899000002 (decayed), 1 − 0.099999998 = 0.900000002 (norm, not decayed)
    const first = adamWStep(
      params,
      tensors({ 'layer.weight': [0.5], 'layer.norm.weight': [0.5] }),
      state,
      SETTINGS,
    );
    expect(first).toEqual({ learningRate: 0.1, gradNorm: Math.sqrt(0.5), clipScale: 1 });
    expectFloat32Close(params.get('layer.weight')![0], 0.899000002);
    expectFloat32Close(params.get('layer.norm.weight')![0], 0.900000002);
    expectFloat32Close(state.firstMoment.get('layer.weight')![0], 0.05);
    expect(state.secondMoment.get('layer.weight')![0]).toBeCloseTo(0.00025, 10);
    expect(state.step).toBe(1);

    // Step 2, t = 2, g = −0.25:
    //   decayed: p = 0.899000002·0.999 = 0.898101002
    //   m = 0.9·0.05 + 0.1·(−0.25) = 0.02; v = 0.999·0.00025 + 0.001·0.0625 = 0.00031225
    //   m̂ = 0.02/(1 − 0.81) = 0.1052632; √v̂ = √(0.00031225/0.001999) = 0.3952254
    //   update = 0.1·0.1052632/0.3952254 = 0.0266337
    //   p = 0.898101002 − 0.0266337 = 0.8714673 (decayed), 0.900000002 − 0.0266337 = 0.8733663
    adamWStep(params, tensors({ 'layer.weight': [-0.25], 'layer.norm.weight': [-0.25] }), state, SETTINGS);
    expectFloat32Close(params.get('layer.weight')![0], 0.8714673);
    expectFloat32Close(params.get('layer.norm.weight')![0], 0.8733663);
    expectFloat32Close(state.firstMoment.get('layer.weight')![0], 0.02);
    expect(state.secondMoment.get('layer.weight')![0]).toBeCloseTo(0.00031225, 10);
    expect(state.step).toBe(2);
  });

  it('with a zero gradient only the decay acts, and only on decayed tensors', () => {
    // m = v = 0 → update 0/(0 + ε) = 0; decayed: p·(1 − 0.1·0.01) = 2·0.999 = 1.998
    const names = ['mlp.up_proj.weight', 'mlp.up_proj.bias', 'input_layernorm.weight', 'model.norm.weight'];
    const params = new Map(names.map((name) => [name, Float32Array.from([2])]));
    const grads = new Map(names.map((name) => [name, Float32Array.from([0])]));
    adamWStep(params, grads, createAdamWState(params), SETTINGS);
    expect(names.map((name) => params.get(name)![0])).toEqual([Math.fround(1.998), 2, 2, 2]);

    const everything = new Map(names.map((name) => [name, Float32Array.from([2])]));
    adamWStep(everything, grads, createAdamWState(everything), SETTINGS, () => true);
    expect(names.map((name) => everything.get(name)![0])).toEqual(names.map(() => Math.fround(1.998)));
  });

  it('clips the gradients before the moments see them and reports norm and scale', () => {
    // ‖(3, 4)‖ = 5 > 1 → scale 1/(5 + 1e-6); the clipped gradient is (0.6, 0.8)
    const params = tensors({ a: [0], b: [0] });
    const grads = tensors({ a: [3], b: [4] });
    const state = createAdamWState(params);
    const result = adamWStep(params, grads, state, { ...SETTINGS, maxGradNorm: 1 });
    expect(result.gradNorm).toBe(5);
    expect(result.clipScale).toBeCloseTo(1 / (5 + 1e-6), 15);
    expect(grads.get('a')![0]).toBeCloseTo(0.6, 6);
    expect(state.firstMoment.get('b')![0]).toBeCloseTo(0.08, 6); // (1 − β1)·0.8
  });

  it('follows the warm-up schedule through state.step', () => {
    const params = tensors({ w: [1] });
    const state = createAdamWState(params);
    const rates = [0, 1, 2, 3, 4].map(
      () =>
        adamWStep(params, tensors({ w: [1] }), state, { ...SETTINGS, learningRate: 1e-3, warmupSteps: 4 })
          .learningRate,
    );
    expect(rates).toEqual([0.25e-3, 0.5e-3, 0.75e-3, 1e-3, 1e-3]);
  });

  it('leaves a parameter without a gradient untouched', () => {
    const params = tensors({ frozen: [1], trained: [1] });
    adamWStep(params, tensors({ trained: [1] }), createAdamWState(params), SETTINGS);
    expect(params.get('frozen')![0]).toBe(1);
    expect(params.get('trained')![0]).not.toBe(1);
  });

  it('is bit-identical run to run, whatever the maps’ insertion order', () => {
    const random = Xoshiro128.forLabel('optimizer-test', 'determinism');
    const names = [
      'model.embed_tokens.weight',
      'model.norm.weight',
      'lm_head.weight',
      'layers.0.q_proj.bias',
    ];
    const initial = names.map(
      (name) => [name, Float32Array.from({ length: 257 }, () => random.nextFloat() - 0.5)] as const,
    );
    const gradients = [0, 1, 2].map(() =>
      names.map(
        (name) => [name, Float32Array.from({ length: 257 }, () => 3 * (random.nextFloat() - 0.5))] as const,
      ),
    );
    const run = (
      order: (list: (readonly [string, Float32Array])[]) => (readonly [string, Float32Array])[],
    ): Buffer[] => {
      const params = new Map(order([...initial]).map(([name, value]) => [name, Float32Array.from(value)]));
      const state = createAdamWState(params);
      for (const step of gradients) {
        const grads = new Map(order([...step]).map(([name, value]) => [name, Float32Array.from(value)]));
        adamWStep(params, grads, state, { ...defaultAdamWSettings, learningRate: 1e-2, warmupSteps: 2 });
      }
      return [...params, ...state.firstMoment, ...state.secondMoment]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([, value]) => Buffer.from(value.buffer));
    };
    const forward = run((list) => list);
    expect(run((list) => list)).toEqual(forward);
    expect(run((list) => list.reverse())).toEqual(forward);
  });

  it('rejects unknown or mis-sized gradients, a bad state or settings, changing nothing', () => {
    const params = tensors({ a: [1, 2] });
    const state = createAdamWState(params);
    expect(() => adamWStep(params, tensors({ b: [1, 2] }), state, SETTINGS)).toThrow(
      new TrainingInputError("gradient 'b' matches no parameter"),
    );
    expect(() => adamWStep(params, tensors({ a: [1] }), state, SETTINGS)).toThrow(
      "gradient 'a' has 1 elements but the parameter has 2",
    );
    expect(() => adamWStep(params, tensors({ a: [1, 2] }), createAdamWState(new Map()), SETTINGS)).toThrow(
      /first moment of 'a' is missing/,
    );
    expect(() => adamWStep(params, tensors({ a: [1, 2] }), state, { ...SETTINGS, beta2: 1 })).toThrow(
      /invalid AdamW settings: beta2 1/,
    );
    expect(Array.from(params.get('a')!)).toEqual([1, 2]);
    expect(state.step).toBe(0);
  });

  it('refuses a non-finite gradient norm, naming the first tensor at fault, changing nothing', () => {
    const params = tensors({ a: [1], m: [1], z: [1] });
    const state = createAdamWState(params);
    const grads = tensors({ z: [Number.NaN], a: [1], m: [Infinity] });
    expect(() => adamWStep(params, grads, state, SETTINGS)).toThrow(
      new TrainingInputError("gradient 'm' holds a non-finite value; no update was made"),
    );
    expect([...params.values()].map((value) => value[0])).toEqual([1, 1, 1]);
    expect(grads.get('a')![0]).toBe(1);
    expect(state.step).toBe(0);
  });
});

describe('learningRateAt', () => {
  it('warms up linearly from lr/warmup, then stays constant', () => {
    const settings = { learningRate: 1, warmupSteps: 4 };
    expect([0, 1, 2, 3, 4, 100].map((step) => learningRateAt(step, settings))).toEqual([
      0.25, 0.5, 0.75, 1, 1, 1,
    ]);
    expect(learningRateAt(0, { learningRate: 2, warmupSteps: 0 })).toBe(2);
  });
});

describe('globalGradNorm and clipGradients', () => {
  it('computes √Σg² over all tensors', () => {
    expect(globalGradNorm(tensors({ a: [1, 2], b: [2] }))).toBe(3); // √(1 + 4 + 4)
    expect(globalGradNorm(new Map())).toBe(0);
  });

  it('scales by maxNorm/(norm + 1e-6) only above maxNorm', () => {
    const grads = tensors({ a: [1, 2], b: [2] });
    const { gradNorm, clipScale } = clipGradients(grads, 1.5);
    expect(gradNorm).toBe(3);
    expect(clipScale).toBe(1.5 / (3 + 1e-6));
    expect(Array.from(grads.get('a')!)).toEqual([Math.fround(clipScale), Math.fround(2 * clipScale)]);

    const small = tensors({ a: [0.3, 0.4] });
    const unclipped = clipGradients(small, 1);
    expect(unclipped.gradNorm).toBeCloseTo(0.5, 7);
    expect(unclipped.clipScale).toBe(1);
    expect(Array.from(small.get('a')!)).toEqual([Math.fround(0.3), Math.fround(0.4)]);
  });

  it('rejects a non-positive maxNorm', () => {
    expect(() => clipGradients(tensors({ a: [1] }), 0)).toThrow(TrainingInputError);
  });
});

describe('decaysByDefault', () => {
  it('excludes biases and normalisation weights', () => {
    expect(decaysByDefault('model.layers.0.mlp.down_proj.weight')).toBe(true);
    expect(decaysByDefault('model.embed_tokens.weight')).toBe(true);
    expect(decaysByDefault('model.layers.0.self_attn.q_proj.bias')).toBe(false);
    expect(decaysByDefault('model.layers.0.post_attention_layernorm.weight')).toBe(false);
    expect(decaysByDefault('model.norm.weight')).toBe(false);
  });
});

describe('shuffledOrder', () => {
  it('is a permutation determined by seed and epoch alone', () => {
    const order = shuffledOrder(50, 'run-1', 3);
    expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(shuffledOrder(50, 'run-1', 3)).toEqual(order);
    expect(shuffledOrder(50, 'run-1', 4)).not.toEqual(order);
    expect(shuffledOrder(50, 'run-2', 3)).not.toEqual(order);
    expect(shuffledOrder(0, 'run-1', 0)).toEqual([]);
    expect(shuffledOrder(1, 'run-1', 0)).toEqual([0]);
  });

  it('draws the orderings of three items about equally often', () => {
    const counts = new Map<string, number>();
    for (let epoch = 0; epoch < 6000; epoch++) {
      const key = shuffledOrder(3, 'uniformity', epoch).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    for (const count of counts.values()) expect(Math.abs(count - 1000)).toBeLessThan(150); // ~5 standard deviations
  });

  it('rejects a bad count or epoch', () => {
    expect(() => shuffledOrder(-1, 's', 0)).toThrow(TrainingInputError);
    expect(() => shuffledOrder(3, 's', 1.5)).toThrow(/epoch must be a non-negative integer/);
  });
});
