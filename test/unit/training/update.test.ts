/**
 * The update loop on the real engine: a supervised update lowers the loss on a fixed batch; one GRPO update
 * raises the log-probability of positively-advantaged tokens and lowers that of negative ones; the same
 * start gives bit-identical weights; bad batches fail with one clear line.
 */
import { spawn } from 'node:child_process';
import { randomQwen2Weights } from '../../../lib/model-build/qwen2-weights';
import { Xoshiro128 } from '../../../lib/model/random';
import type { TrainingBatch, TrainingSequence } from '../../../lib/training/batch';
import { weightsDigest } from '../../../lib/training/checkpoint';
import { TrainingInputError } from '../../../lib/training/errors';
import { OnnxTrainerEngine } from '../../../lib/training/onnx-engine';
import { createAdamWState } from '../../../lib/training/optimizer';
import {
  defaultUpdateSettings,
  planMicroBatches,
  runUpdate,
  toLossSequence,
  type UpdateSettings,
} from '../../../lib/training/update';
import { smallSpec } from '../model/helpers';

const spec = smallSpec({ vocabSize: 64, hiddenSize: 32, intermediateSize: 48 });
const USABLE = 60;

function engineFor(seed: string): OnnxTrainerEngine {
  return new OnnxTrainerEngine({
    spec,
    weights: randomQwen2Weights(spec, seed, 0.1),
    usableVocabularySize: USABLE,
    padTokenId: 0,
  });
}

function sequences(count: number, label: string): TrainingSequence[] {
  const random = Xoshiro128.forLabel('update-test', label);
  const token = () => 1 + Math.floor(random.nextFloat() * (USABLE - 1));
  return Array.from({ length: count }, (_, i) => ({
    promptIds: Array.from({ length: 5 + (i % 7) }, token),
    responseIds: Array.from({ length: 3 + (i % 4) }, token),
    samplingLogProbs: [],
    advantage: 0,
    group: 0,
    rollout: i,
    turn: 0,
  }));
}

const batchOf = (list: TrainingSequence[]): TrainingBatch => ({
  format: 'rememr1-training-batch/1',
  policyVersion: 'test',
  sequences: list,
});

function settings(mode: UpdateSettings['mode'], overrides: Partial<UpdateSettings> = {}): UpdateSettings {
  return {
    ...defaultUpdateSettings,
    mode,
    miniBatches: 2,
    microBatchTokens: 64,
    optimizer: { ...defaultUpdateSettings.optimizer, learningRate: 3e-3, warmupSteps: 1 },
    loss: { ...defaultUpdateSettings.loss, klCoef: 0 },
    shuffleSeed: 'test',
    ...overrides,
  };
}

const meanLogProb = async (engine: OnnxTrainerEngine, list: TrainingSequence[]): Promise<number> => {
  const { logProbs } = await engine.logProbs(list.map(toLossSequence));
  return logProbs.reduce((a, b) => a + b, 0) / logProbs.length;
};

it('a supervised update lowers the cross-entropy of the traces it trains on', async () => {
  const engine = engineFor('sft');
  const traces = sequences(8, 'sft');
  const before = await meanLogProb(engine, traces);
  const optimizer = createAdamWState(engine.weights);
  for (let step = 0; step < 3; step++) await runUpdate(engine, optimizer, batchOf(traces), settings('sft'));
  const after = await meanLogProb(engine, traces);
  expect(after).toBeGreaterThan(before + 0.5);
  await engine.dispose();
});

it('one GRPO update raises log π of positively-advantaged turns and lowers that of negative ones', async () => {
  const engine = engineFor('grpo');
  const list = sequences(8, 'grpo');
  // Sampled from the current policy: old log-probs are today's.
  const { logProbs } = await engine.logProbs(list.map(toLossSequence));
  let k = 0;
  list.forEach((sequence, i) => {
    sequence.samplingLogProbs = Array.from(logProbs.subarray(k, k + sequence.responseIds.length));
    k += sequence.responseIds.length;
    sequence.advantage = i % 2 === 0 ? 1 : -1;
  });
  const positive = list.filter((s) => s.advantage > 0);
  const negative = list.filter((s) => s.advantage < 0);
  const [positiveBefore, negativeBefore] = [
    await meanLogProb(engine, positive),
    await meanLogProb(engine, negative),
  ];
  const reference = new Map([...engine.weights].map(([name, values]) => [name, Float32Array.from(values)]));
  const metrics = await runUpdate(
    engine,
    createAdamWState(engine.weights),
    batchOf(list),
    settings('grpo', { miniBatches: 1, loss: { ...defaultUpdateSettings.loss, klCoef: 0.001 } }),
    {
      referenceLogProbs: async (micro) => (await engine.logProbs(micro, reference)).logProbs,
    },
  );
  // The first mini-batch sees the sampling policy itself: every ratio is 1.
  expect(metrics[0].ratioMean).toBeCloseTo(1, 5);
  expect(metrics[0].clipFraction).toBe(0);
  expect(await meanLogProb(engine, positive)).toBeGreaterThan(positiveBefore);
  expect(await meanLogProb(engine, negative)).toBeLessThan(negativeBefore);
  await engine.dispose();
});

it('gives bit-identical weights from the same start, batch and settings', async () => {
  const digests: string[] = [];
  for (let run = 0; run < 2; run++) {
    const engine = engineFor('same');
    await runUpdate(
      engine,
      createAdamWState(engine.weights),
      batchOf(sequences(6, 'same')),
      settings('sft', { miniBatches: 3 }),
    );
    digests.push(weightsDigest(engine.weights));
    await engine.dispose();
  }
  expect(digests[1]).toBe(digests[0]);
});

it('computes bit-identical gradients run after run while other processes compete for the cores', async () => {
  // ONNX Runtime's threads take work in an order that depends on timing; nothing in the gradient may depend on it.
  const busy = [0, 1].map(() =>
    spawn(process.execPath, ['-e', 'const end = Date.now() + 30000; while (Date.now() < end) {}'], {
      stdio: 'ignore',
    }),
  );
  try {
    // Large enough that ONNX Runtime splits the work between threads; many repeated ids.
    const wide = smallSpec({
      vocabSize: 4096,
      hiddenSize: 128,
      intermediateSize: 384,
      numHiddenLayers: 2,
      headDim: 32,
    });
    const engine = new OnnxTrainerEngine({
      spec: wide,
      weights: randomQwen2Weights(wide, 'contention', 0.1),
      usableVocabularySize: 4096,
      padTokenId: 0,
    });
    const list = Array.from({ length: 8 }, (_, i) => ({
      tokens: Array.from({ length: 200 }, (_, t) => (t * 7 + i * 13) % 300),
      lossStart: 150,
    }));
    const count = 8 * 50;
    const digests = new Set<string>();
    for (let run = 0; run < 6; run++) {
      const grads = new Map(
        [...engine.weights].map(([name, values]) => [name, new Float32Array(values.length)]),
      );
      await engine.accumulateGradients(list, new Float32Array(count).fill(0.1), grads);
      digests.add(weightsDigest(grads));
    }
    expect(digests.size).toBe(1);
    await engine.dispose();
  } finally {
    for (const child of busy) child.kill('SIGKILL');
  }
});

it('plans micro-batches within the token budget, longest first', () => {
  const lengths = [10, 40, 33, 5, 64, 12];
  const plans = planMicroBatches([0, 1, 2, 3, 4, 5], lengths, 128);
  expect(plans.flat().sort()).toEqual([0, 1, 2, 3, 4, 5]);
  expect(plans[0][0]).toBe(4);
  for (const plan of plans) {
    const block = Math.ceil(Math.max(...plan.map((i) => lengths[i])) / 32) * 32;
    if (plan.length > 1) expect(2 ** Math.ceil(Math.log2(plan.length)) * block).toBeLessThanOrEqual(128);
  }
});

it('refuses batches it cannot train on, with one line naming the problem', async () => {
  const engine = engineFor('bad');
  const optimizer = createAdamWState(engine.weights);
  const list = sequences(2, 'bad');
  await expect(runUpdate(engine, optimizer, batchOf([]), settings('sft'))).rejects.toThrow(
    'the training batch has no sequences',
  );
  await expect(runUpdate(engine, optimizer, batchOf(list), settings('grpo'))).rejects.toThrow(
    /sampling log-probs for/,
  );
  await expect(
    runUpdate(engine, optimizer, batchOf(list), settings('sft', { miniBatches: 3 })),
  ).rejects.toThrow(TrainingInputError);
  const outOfVocabulary = sequences(1, 'oov');
  outOfVocabulary[0].responseIds[0] = USABLE + 1;
  await expect(
    runUpdate(engine, optimizer, batchOf(outOfVocabulary), settings('sft', { miniBatches: 1 })),
  ).rejects.toThrow(/ids must be integers in 0\.\.59/);
  await engine.dispose();
});
