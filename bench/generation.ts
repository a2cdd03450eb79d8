/**
 * Generation benchmark: time to first token and tokens per second at batch 1 and batch 8, the batching
 * speed-up, the share of decode-step time spent outside session.run (JavaScript sampling and bookkeeping),
 * and the share of session.run spent in the sampling head (wall time against the bare decoder, with a
 * per-operator breakdown from an ONNX Runtime profile). Run for the bundled model and for a ~25M-parameter
 * random Qwen2-shaped model with Qwen's vocabulary (151,936 ids).
 *
 *   npx tsx bench/generation.ts [--repeats 3] [--new-tokens 128] [--prompt-tokens 256] [--threads 2] [--head-pairs 400] [--only bundled|large]
 *
 * The machine is shared: each figure is the best of `--repeats` runs, and the repeats alternate between
 * batch 1 and batch 8 so that the speed-up compares runs made under the same conditions.
 */
import { Command } from 'commander';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Tensor } from 'onnxruntime-node';
import { COMMON_ENGLISH_WORDS } from '../lib/model-build/english-words';
import type { ModelConfig } from '../lib/model/config';
import { loadModelFolder } from '../lib/model/folder';
import type { GenerateRequest } from '../lib/model/generate';
import { writeModelFolder } from '../lib/model-build/model-folder-builder';
import { DataType, GraphBuilder, encodeModel, unshapedValueInfo, type onnx } from '../lib/model/onnx-graph';
import { loadPolicy, type Policy, type PolicyStats } from '../lib/model/policy';
import { parameterCount, type Qwen2Shape } from '../lib/model-build/qwen2-weights';
import { SAMPLER_NODE_PREFIX, SAMPLING_HEAD, attachSamplingHead } from '../lib/model/sampling-head';
import { createSession } from '../lib/model/session';
import { DECODER_NAMES } from '../lib/model/tensor-names';
import { buildByteLevelTokenizer } from '../lib/model-build/tokenizer-builder';

const QWEN_VOCABULARY = 151_936;

/** ~25.8M parameters, 24.3M of them in the (tied) embedding of Qwen's vocabulary. */
const LARGE_SHAPE: Qwen2Shape & { rmsNormEps: number; ropeTheta: number } = {
  vocabSize: QWEN_VOCABULARY,
  hiddenSize: 160,
  intermediateSize: 640,
  numHiddenLayers: 4,
  numAttentionHeads: 5,
  numKeyValueHeads: 1,
  headDim: 32,
  tieWordEmbeddings: true,
  rmsNormEps: 1e-6,
  ropeTheta: 1_000_000,
};

interface Options {
  repeats: number;
  newTokens: number;
  promptTokens: number;
  threads: number;
  /** Timed pairs of decode steps (with and without the head) behind the head's share. */
  headPairs: number;
  only?: 'bundled' | 'large';
}

type Sampling = Pick<GenerateRequest, 'temperature' | 'topP' | 'topK'>;
/** Settings measured, with the candidate count the sampling head is profiled with for each. */
const SAMPLINGS: [string, Sampling, number][] = [
  ['temperature 1 (training)', { temperature: 1 }, 0],
  ['temperature 0.7, top-p 0.95 (evaluation)', { temperature: 0.7, topP: 0.95 }, 64],
];

function promptOf(policy: Policy, tokens: number): string {
  let text = '';
  for (let i = 0; policy.tokenizer.encode(text).length < tokens; i++)
    text += `${COMMON_ENGLISH_WORDS[(i * 7919) % COMMON_ENGLISH_WORDS.length]} `;
  const ids = policy.tokenizer.encode(text).slice(0, tokens);
  return policy.tokenizer.decode(ids);
}

function delta(after: PolicyStats, before: PolicyStats): PolicyStats {
  const out = { ...after };
  for (const key of Object.keys(out) as (keyof PolicyStats)[]) out[key] = after[key] - before[key];
  return out;
}

interface Measurement {
  ttftMs: number;
  decodeTokensPerSecond: number;
  endToEndTokensPerSecond: number;
  outsideRunShare: number;
  generated: number;
}

/**
 * Best measurement of each batch size. Repeats alternate between the batch sizes, so a drift in the
 * machine's speed over the run affects both alike and their ratio stays meaningful.
 */
async function measure(
  policy: Policy,
  batches: readonly number[],
  prompt: string,
  sampling: Sampling,
  options: Options,
): Promise<{ best: Measurement[]; decodeRates: number[][] }> {
  const best: (Measurement | undefined)[] = batches.map(() => undefined);
  /** [repeat][batch index] decode tokens per second. */
  const decodeRates: number[][] = [];
  for (let repeat = 0; repeat < options.repeats; repeat++) {
    decodeRates.push([]);
    for (const [index, batch] of batches.entries()) {
      const requests = (maxNewTokens: number) =>
        Array.from({ length: batch }, (_, row) =>
          policy.generate({ prompt, maxNewTokens, seed: `bench-${repeat}-${row}`, ...sampling }),
        );
      let started = performance.now();
      await Promise.all(requests(1));
      const ttftMs = performance.now() - started;
      const before = policy.stats();
      started = performance.now();
      const results = await Promise.all(requests(options.newTokens));
      const wallMs = performance.now() - started;
      const stats = delta(policy.stats(), before);
      const generated = results.reduce((sum, result) => sum + result.tokenIds.length, 0);
      const measurement: Measurement = {
        ttftMs,
        decodeTokensPerSecond: (1000 * stats.decodeRowSteps) / stats.decodeStepMs,
        endToEndTokensPerSecond: (1000 * generated) / wallMs,
        outsideRunShare: (stats.decodeStepMs - stats.decodeRunMs) / stats.decodeStepMs,
        generated,
      };
      decodeRates[repeat].push(measurement.decodeTokensPerSecond);
      const previous = best[index];
      const fastestTtft = Math.min(measurement.ttftMs, previous?.ttftMs ?? Infinity);
      const kept =
        previous === undefined || measurement.decodeTokensPerSecond > previous.decodeTokensPerSecond
          ? measurement
          : previous;
      best[index] = { ...kept, ttftMs: fastestTtft };
    }
  }
  return {
    best: best.map((measurement) => {
      if (measurement === undefined) throw new RangeError('--repeats must be at least 1');
      return measurement;
    }),
    decodeRates,
  };
}

/**
 * Inputs of one batch-8 decode step halfway through the measured generation (past length = prompt + half the
 * new tokens), for the head or the bare decoder.
 */
function decodeStepFeeds(
  config: Pick<ModelConfig, 'numHiddenLayers' | 'numKeyValueHeads' | 'headDim'>,
  options: Options,
  sampling: Sampling,
  topCount: number,
): Record<string, Tensor> {
  const rows = 8;
  const past = options.promptTokens + Math.floor(options.newTokens / 2);
  const feeds: Record<string, Tensor> = {
    [DECODER_NAMES.inputIds]: new Tensor('int64', new BigInt64Array(rows).fill(1n), [rows, 1]),
    [DECODER_NAMES.attentionMask]: new Tensor('int64', new BigInt64Array(rows * (past + 1)).fill(1n), [rows, past + 1]),
    [DECODER_NAMES.positionIds]: new Tensor('int64', new BigInt64Array(rows).fill(BigInt(past)), [rows, 1]),
    [SAMPLING_HEAD.inverseTemperature]: new Tensor(
      'float32',
      new Float32Array(rows).fill(1 / (sampling.temperature || 1)),
      [rows],
    ),
    [SAMPLING_HEAD.blockUniform]: new Tensor('float32', new Float32Array(rows).fill(0.5), [rows, 1]),
    [SAMPLING_HEAD.topCount]: new Tensor('int64', BigInt64Array.of(BigInt(Math.max(1, topCount))), [1]),
    [SAMPLING_HEAD.searchCandidates]: new Tensor('bool', Uint8Array.of(topCount > 0 ? 1 : 0), []),
  };
  // Random keys and values: all-zero ones would make attention's exponentials trivially equal.
  let state = 1;
  const random = () => ((state = (state * 48271) % 2147483647) / 2147483647) * 2 - 1;
  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    const cache = () =>
      new Tensor(
        'float32',
        Float32Array.from({ length: rows * config.numKeyValueHeads * past * config.headDim }, random),
        [rows, config.numKeyValueHeads, past, config.headDim],
      );
    feeds[DECODER_NAMES.pastKey(layer)] = cache();
    feeds[DECODER_NAMES.pastValue(layer)] = cache();
  }
  return feeds;
}

const HEAD_FETCHES = [
  SAMPLING_HEAD.sampledBlock,
  SAMPLING_HEAD.blockProbabilities,
  SAMPLING_HEAD.candidateBlocks,
  SAMPLING_HEAD.candidatePositions,
  SAMPLING_HEAD.candidateProbabilities,
];
const LOGITS_SAMPLE = 'bench.logits_sample';

/**
 * The decoder as exported, with its logits computed but only one of them copied out, so that it differs
 * from the policy's graph by the sampling head alone.
 */
function bareDecoder(model: onnx.IModelProto): Uint8Array {
  const graph = model.graph as onnx.IGraphProto;
  const tail = new GraphBuilder('bench/');
  const flat = tail.op('Reshape', [DECODER_NAMES.logits, tail.int64Constant([-1])]);
  tail.op('Slice', [flat, tail.int64Constant([0]), tail.int64Constant([1])], {}, LOGITS_SAMPLE);
  graph.node = [...(graph.node ?? []), ...tail.nodes];
  graph.initializer = [...(graph.initializer ?? []), ...tail.initializers];
  graph.output = [
    ...(graph.output ?? []).filter((output) => output.name !== DECODER_NAMES.logits),
    unshapedValueInfo(LOGITS_SAMPLE, DataType.FLOAT),
  ];
  return encodeModel(model);
}

/** The graph the policy runs: the model folder's decoder with the sampling head attached. */
async function policyGraph(folderPath: string): Promise<{ config: ModelConfig; model: Uint8Array }> {
  const folder = await loadModelFolder(folderPath);
  const { config } = folder;
  attachSamplingHead(folder.onnxModel, config.vocabSize, folder.tokenizer.vocabularySize, folder.onnxPath);
  return { config, model: encodeModel(folder.onnxModel) };
}

const median = (values: readonly number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * The sampling head's share of a batch-8 decode step's session.run, in wall time: the policy's graph
 * (decoder + head) against the bare decoder, created alike, run in alternating pairs on the same inputs.
 * This counts everything the head adds (its nodes, the executor's overhead between them, the vocabulary
 * mask inside the output head's MatMul), which per-node kernel times do not.
 */
async function samplingHeadShare(
  folderPath: string,
  options: Options,
  sampling: Sampling,
  topCount: number,
): Promise<number> {
  const { config, model } = await policyGraph(folderPath);
  const runtime = { intraOpThreads: options.threads };
  const headSession = await createSession(model, runtime);
  const bareSession = await createSession(
    bareDecoder((await loadModelFolder(folderPath)).onnxModel),
    runtime,
  );
  const feeds = decodeStepFeeds(config, options, sampling, topCount);
  const presents = Array.from({ length: config.numHiddenLayers }, (_, layer) => [
    DECODER_NAMES.presentKey(layer),
    DECODER_NAMES.presentValue(layer),
  ]).flat();
  const bareFeeds = Object.fromEntries(bareSession.inputNames.map((name) => [name, feeds[name]]));
  const timed = async (run: () => Promise<unknown>) => {
    const started = performance.now();
    await run();
    return performance.now() - started;
  };
  const head = () => headSession.run(feeds, [...HEAD_FETCHES, ...presents]);
  const bare = () => bareSession.run(bareFeeds, [LOGITS_SAMPLE, ...presents]);
  const headMs: number[] = [];
  const differenceMs: number[] = [];
  for (let pair = 0; pair < 20 + options.headPairs; pair++) {
    // Alternate which runs first, so neither always follows the other.
    let headTime: number;
    let bareTime: number;
    if (pair % 2 === 0) {
      headTime = await timed(head);
      bareTime = await timed(bare);
    } else {
      bareTime = await timed(bare);
      headTime = await timed(head);
    }
    if (pair < 20) continue;
    headMs.push(headTime);
    differenceMs.push(headTime - bareTime);
  }
  await headSession.release();
  await bareSession.release();
  return median(differenceMs) / median(headMs);
}

/**
 * Kernel time of the head's nodes by operator, as shares of all nodes' kernel time, from an ONNX Runtime
 * profile of the policy's graph: where the head's time goes (it misses what samplingHeadShare counts
 * beyond the nodes themselves).
 */
async function headOperators(
  folderPath: string,
  options: Options,
  sampling: Sampling,
  topCount: number,
): Promise<[string, number][]> {
  const { config, model } = await policyGraph(folderPath);
  const profileFolder = await fs.mkdtemp(path.join(os.tmpdir(), 'rememr1-profile-'));
  // Created as the policy creates its session, so the operators run as they do in generation.
  const session = await createSession(model, {
    intraOpThreads: options.threads,
    profileFilePrefix: path.join(profileFolder, 'profile'),
  });
  const feeds = decodeStepFeeds(config, options, sampling, topCount);
  for (let i = 0; i < 60; i++) await session.run(feeds, HEAD_FETCHES);
  session.endProfiling();
  await session.release();
  const [file] = await fs.readdir(profileFolder);
  const events = JSON.parse(await fs.readFile(path.join(profileFolder, file), 'utf8')) as {
    cat: string;
    name: string;
    dur: number;
  }[];
  await fs.rm(profileFolder, { recursive: true, force: true });
  let total = 0;
  const byOperator = new Map<string, number>();
  for (const event of events) {
    if (event.cat !== 'Node' || !event.name.endsWith('_kernel_time')) continue;
    total += event.dur;
    if (!event.name.startsWith(SAMPLER_NODE_PREFIX)) continue;
    // Node names are `sampler/<Operator>_<n>`, or `sampler/<branch>/<Operator>_<n>` inside an If.
    const operator = event.name.slice(SAMPLER_NODE_PREFIX.length).replace(/_node_\d+.*$/, '');
    byOperator.set(operator, (byOperator.get(operator) ?? 0) + event.dur);
  }
  return [...byOperator]
    .sort((a, b) => b[1] - a[1])
    .map(([operator, dur]): [string, number] => [operator, dur / total]);
}

/** Qwen's BPE vocabulary size (its tokenizer adds 22 special tokens; ours adds 9). */
const QWEN_BPE_SIZE = 151_643;

/**
 * Merges that make every letter n-gram (with and without a leading space) a token, shortest first, up
 * to `count`: a tokenizer as large as Qwen's, so the sampler sees as many ids as it would with Qwen.
 */
function letterNgramMerges(count: number): [string, string][] {
  const letters = Array.from({ length: 26 }, (_, i) => String.fromCharCode(97 + i));
  const merges: [string, string][] = [];
  let level = ['Ġ', ...letters];
  while (merges.length < count) {
    const next: string[] = [];
    for (const prefix of level) {
      for (const letter of letters) {
        if (merges.length === count) return merges;
        merges.push([prefix, letter]);
        next.push(prefix + letter);
      }
    }
    level = next;
  }
  return merges;
}

async function buildLargeModel(folder: string): Promise<void> {
  const tokenizer = buildByteLevelTokenizer({
    pretokenCounts: new Map(),
    merges: letterNgramMerges(QWEN_BPE_SIZE - 256),
    vocabularySize: QWEN_BPE_SIZE + 9,
  });
  await writeModelFolder(folder, { shape: LARGE_SHAPE, tokenizer, seed: 'bench-25m' });
}

const percent = (value: number) => `${(100 * value).toFixed(1)}%`;
const fixed = (value: number, digits = 0) => value.toFixed(digits);

async function benchmark(label: string, folder: string, options: Options): Promise<void> {
  const policy = await loadPolicy(folder, { maxBatchSize: 8, intraOpThreads: options.threads });
  const prompt = promptOf(policy, options.promptTokens);
  console.log(
    `\n## ${label}: ${parameterCount({ ...policy.config })} parameters, vocabulary ${policy.config.vocabSize} (tokenizer ${policy.tokenizer.vocabularySize}), prompt ${policy.tokenizer.encode(prompt).length} tokens, ${options.newTokens} new tokens`,
  );
  await policy.generate({ prompt, maxNewTokens: 8, temperature: 1, seed: 'warm-up' });
  console.log(
    '| sampling | batch | TTFT ms | decode tok/s | end-to-end tok/s | outside session.run | sampling head in session.run | sampling + bookkeeping |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  const headLines: string[] = [];
  const speedUpLines: string[] = [];
  for (const [name, sampling, topCount] of SAMPLINGS) {
    const {
      best: [one, eight],
      decodeRates,
    } = await measure(policy, [1, 8], prompt, sampling, options);
    // Batch 1 and batch 8 of one repeat run back to back: their ratio is less exposed to the machine's drift
    // than the ratio of the best of each, which may come from different phases.
    const pairedSpeedUps = decodeRates.map(([rateOne, rateEight]) => rateEight / rateOne);
    speedUpLines.push(
      `${name}: ${pairedSpeedUps.map((ratio) => `${fixed(ratio, 2)}×`).join(', ')} (median ${fixed(median(pairedSpeedUps), 2)}×)`,
    );
    const headShare = await samplingHeadShare(folder, options, sampling, topCount);
    const operators = await headOperators(folder, options, sampling, topCount);
    headLines.push(
      `${name}: ${operators.map(([operator, share]) => `${operator} ${percent(share)}`).join(', ')}`,
    );
    for (const [batch, m] of [
      [1, one],
      [8, eight],
    ] as const) {
      const head = batch === 8 ? `${percent(headShare)} (${topCount} candidates)` : '';
      const total = batch === 8 ? percent(m.outsideRunShare + (1 - m.outsideRunShare) * headShare) : '';
      console.log(
        `| ${name} | ${batch} | ${fixed(m.ttftMs, 1)} | ${fixed(m.decodeTokensPerSecond)} | ${fixed(m.endToEndTokensPerSecond)} | ${percent(m.outsideRunShare)} | ${head} | ${total} |`,
      );
    }
    console.log(
      `| ${name} | speed-up 8 vs 1 | | ${fixed(eight.decodeTokensPerSecond / one.decodeTokensPerSecond, 2)}× | ${fixed(eight.endToEndTokensPerSecond / one.endToEndTokensPerSecond, 2)}× | | | |`,
    );
  }
  console.log('\nDecode speed-up 8 vs 1 per repeat (batch 1 and batch 8 back to back):');
  for (const line of speedUpLines) console.log(`- ${line}`);
  console.log(
    '\nSampling head at batch 8, kernel time by operator (ONNX Runtime profile; share of all kernel time):',
  );
  for (const line of headLines) console.log(`- ${line}`);
  const stats = policy.stats();
  console.log(
    `(full-distribution copies for large top-p sets: ${stats.fullDistributionRuns} of ${stats.sessionRuns} runs)`,
  );
  await policy.dispose();
}

async function main(): Promise<void> {
  const program = new Command()
    .option('--repeats <n>', 'runs per figure (best is kept)', (value) => Number.parseInt(value, 10), 3)
    .option('--new-tokens <n>', 'tokens generated per request', (value) => Number.parseInt(value, 10), 128)
    .option('--prompt-tokens <n>', 'prompt length in tokens', (value) => Number.parseInt(value, 10), 256)
    .option('--threads <n>', 'ONNX Runtime intra-op threads', (value) => Number.parseInt(value, 10), 2)
    .option(
      '--head-pairs <n>',
      'timed decode-step pairs (with / without the head) for the head share',
      (value) => Number.parseInt(value, 10),
      400,
    )
    .option('--only <model>', 'bundled or large')
    .parse();
  const options = program.opts<Options>();
  console.log(
    `# generation benchmark (${os.cpus().length} cores, ${options.threads} threads, best of ${options.repeats})`,
  );
  if (options.only !== 'large')
    await benchmark(
      'bundled model (models/rememr1-tiny)',
      path.join(__dirname, '..', 'models', 'rememr1-tiny'),
      options,
    );
  if (options.only !== 'bundled') {
    const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'rememr1-bench-25m-'));
    try {
      await buildLargeModel(folder);
      await benchmark('random ~25M-parameter model, Qwen vocabulary', folder, options);
    } finally {
      await fs.rm(folder, { recursive: true, force: true });
    }
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
