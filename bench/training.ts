/**
 * Trainer speed against inference in the same process: one ONNX Runtime forward pass of the policy's own
 * decoder (logits at every position) is the baseline; the trainer's forward, forward + backward, and a whole
 * update step (forward, reference forward for the KL term, forward + backward, AdamW) are timed on the
 * same batch and reported as multiples of it. Forward + backward + AdamW ideally costs about 3 forward passes.
 * Also: trainer tokens per second, and the time to write a checkpoint and export a policy version.
 *
 *   npx tsx bench/training.ts [--rounds 5] [--batch 16] [--length 256] [--threads 2]
 *
 * Model: the bundled model's shape (vocabulary 4,096, width 128, 2 layers, grouped-query attention) with
 * random weights. Two loss layouts: every position (a pre-training-style step, comparable with the
 * baseline's logits at every position) and a ReMemR1 turn (loss on the last quarter: the generated tokens
 * after a prompt). Every figure is the median of the rounds, with the range.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Tensor } from 'onnxruntime-node';
import { parseModelConfig } from '../lib/model/config';
import { buildDecoderOnnx, type DecoderSpec } from '../lib/model-build/onnx-builder';
import { randomQwen2Weights, weightMap } from '../lib/model-build/qwen2-weights';
import { Xoshiro128 } from '../lib/model/random';
import { createSession } from '../lib/model/session';
import { DECODER_NAMES } from '../lib/model/tensor-names';
import { FsBlobStore } from '../lib/storage';
import type { TrainingBatch } from '../lib/training/batch';
import { checkpointConfigHash, writeCheckpoint } from '../lib/training/checkpoint';
import { OnnxTrainerEngine } from '../lib/training/onnx-engine';
import { createAdamWState } from '../lib/training/optimizer';
import { exportPolicyVersion } from '../lib/training/policy-versions';
import { defaultUpdateSettings, runUpdate } from '../lib/training/update';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} needs a whole number ≥ 1`);
  return value;
}

const rounds = option('rounds', 5);
const batch = option('batch', 16);
const length = option('length', 256);
const threads = option('threads', 2);
const BUNDLED = path.join(__dirname, '..', 'models', 'rememr1-tiny');

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const describe = (values: number[]): string =>
  `${median(values).toFixed(1)} ms (range ${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)})`;

async function time(run: () => Promise<unknown>): Promise<number[]> {
  await run(); // warm-up: session creation and first-run planning
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    await run();
    out.push(performance.now() - start);
  }
  return out;
}

async function main(): Promise<void> {
  const config = parseModelConfig(JSON.parse(await fs.readFile(path.join(BUNDLED, 'config.json'), 'utf8')));
  const spec: DecoderSpec = config;
  const weights = randomQwen2Weights(spec, 'bench-training');
  const runtime = { intraOpThreads: threads };
  const random = Xoshiro128.forLabel('bench-training', 'tokens');
  const rows = Array.from({ length: batch }, () =>
    Array.from({ length }, () => Math.floor(random.nextFloat() * (spec.vocabSize - 16))),
  );

  // Baseline: the inference graph's forward pass over the same tokens.
  const decoder = await createSession(buildDecoderOnnx(spec, weightMap(weights)).model, runtime);
  const int64 = (values: number[]) => new Tensor('int64', BigInt64Array.from(values.map(BigInt)), [batch, length]);
  const feeds: Record<string, Tensor> = {
    [DECODER_NAMES.inputIds]: int64(rows.flat()),
    [DECODER_NAMES.attentionMask]: int64(rows.flat().map(() => 1)),
    [DECODER_NAMES.positionIds]: int64(rows.flatMap((row) => row.map((_, t) => t))),
  };
  for (let layer = 0; layer < spec.numHiddenLayers; layer++) {
    const empty = new Tensor('float32', new Float32Array(0), [batch, spec.numKeyValueHeads, 0, spec.headDim]);
    feeds[DECODER_NAMES.pastKey(layer)] = empty;
    feeds[DECODER_NAMES.pastValue(layer)] = empty;
  }
  const forward = await time(() => decoder.run(feeds));
  await decoder.release();
  const tokens = batch * length;
  console.log(`shape: batch ${batch} × ${length} tokens, vocabulary ${spec.vocabSize}, width ${spec.hiddenSize}, ${spec.numHiddenLayers} layers; ${threads} threads; ${rounds} rounds`);
  console.log(`baseline  ONNX Runtime forward of the inference graph (logits at every position): ${describe(forward)}`);
  const base = median(forward);

  for (const [label, lossStart] of [
    ['loss at every position', 1],
    ['ReMemR1 turn (loss on the last quarter)', Math.floor((3 * length) / 4)],
  ] as const) {
    const engine = new OnnxTrainerEngine({
      spec,
      weights,
      usableVocabularySize: spec.vocabSize,
      padTokenId: 0,
      runtime,
    });
    const sequences = rows.map((row) => ({ tokens: row, lossStart }));
    const lossTokens = batch * (length - lossStart);
    const trainerForward = await time(() => engine.logProbs(sequences));
    const grads = new Map([...engine.weights].map(([name, values]) => [name, new Float32Array(values.length)]));
    const backward = await time(() => engine.accumulateGradients(sequences, new Float32Array(lossTokens).fill(-1 / lossTokens), grads));
    const { logProbs } = await engine.logProbs(sequences);
    const trainingBatch: TrainingBatch = {
      format: 'rememr1-training-batch/1',
      policyVersion: 'bench',
      sequences: rows.map((row, i) => ({
        promptIds: row.slice(0, lossStart),
        responseIds: row.slice(lossStart),
        samplingLogProbs: Array.from(logProbs.subarray(i * (length - lossStart), (i + 1) * (length - lossStart))),
        advantage: i % 2 === 0 ? 1 : -1,
        group: 0,
        rollout: i,
        turn: 0,
      })),
    };
    const reference = new Map([...engine.weights].map(([name, values]) => [name, Float32Array.from(values)]));
    const optimizer = createAdamWState(engine.weights);
    const update = await time(() =>
      runUpdate(engine, optimizer, trainingBatch, {
        ...defaultUpdateSettings,
        mode: 'grpo',
        miniBatches: 1,
        microBatchTokens: tokens,
        shuffleSeed: 'bench',
      }, { referenceLogProbs: async (micro) => (await engine.logProbs(micro, reference)).logProbs }),
    );
    await engine.dispose();
    const ratio = (values: number[]) => `${(median(values) / base).toFixed(2)}×`;
    console.log(`\n${label}: ${lossTokens} loss tokens`);
    console.log(`  trainer forward (log-probs)             ${describe(trainerForward)}  = ${ratio(trainerForward)} baseline`);
    console.log(`  trainer forward + backward              ${describe(backward)}  = ${ratio(backward)} baseline`);
    console.log(`  update step (fwd, ref fwd, fwd+bwd, AdamW) ${describe(update)}  = ${ratio(update)} baseline`);
    console.log(`  trainer throughput                      ${Math.round(tokens / (median(update) / 1000))} tokens/s (${Math.round(lossTokens / (median(update) / 1000))} loss tokens/s)`);
  }

  // Checkpoint and export of the bundled shape, to a filesystem blob store.
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'rememr1-bench-training-'));
  const store = new FsBlobStore({ root });
  const optimizer = createAdamWState(weights);
  let step = 0;
  const checkpoint = await time(() =>
    writeCheckpoint(store, 'bench', ++step, {
      step,
      weights,
      optimizer: { step, firstMoment: optimizer.firstMoment, secondMoment: optimizer.secondMoment },
      modelConfig: config,
      configHash: checkpointConfigHash(spec, {}),
      extra: {},
    }),
  );
  let version = 0;
  const exported = await time(() =>
    exportPolicyVersion(store, `bench-${++version}`, { config, weights, tokenizerFolder: BUNDLED }),
  );
  await fs.rm(root, { recursive: true, force: true });
  console.log(`\ncheckpoint write (weights, optimiser state, manifest)  ${describe(checkpoint)}`);
  console.log(`policy version export (ONNX build, safetensors, tokenizer, manifest)  ${describe(exported)}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
