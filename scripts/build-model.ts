/**
 * Builds the bundled model folder models/rememr1-tiny: a byte-level BPE tokenizer learned from a fixed
 * English word list, and a 2-layer Qwen2-architecture decoder with seeded random weights (untrained).
 * Deterministic: running it again rewrites byte-identical files.
 *
 *   npx tsx scripts/build-model.ts [--out models/rememr1-tiny]
 */
import { Command, InvalidArgumentError } from 'commander';
import * as path from 'node:path';
import { COMMON_ENGLISH_WORDS } from '../lib/model-build/english-words';
import { writeModelFolder } from '../lib/model-build/model-folder-builder';
import { parameterCount, type Qwen2Shape } from '../lib/model-build/qwen2-weights';
import { buildByteLevelTokenizer } from '../lib/model-build/tokenizer-builder';

export const TINY_MODEL_SEED = 'rememr1-tiny-v1';
export const TINY_VOCABULARY_SIZE = 4096;

export const TINY_SHAPE: Qwen2Shape & { rmsNormEps: number; ropeTheta: number } = {
  vocabSize: TINY_VOCABULARY_SIZE,
  hiddenSize: 128,
  intermediateSize: 384,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  headDim: 32,
  tieWordEmbeddings: true,
  rmsNormEps: 1e-6,
  ropeTheta: 1_000_000,
};

/** Pre-token counts from the word list: Zipf-like weights, with and without a leading space, lower and capitalised. */
function pretokenCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (pretoken: string, count: number) => counts.set(pretoken, (counts.get(pretoken) ?? 0) + count);
  COMMON_ENGLISH_WORDS.forEach((word, rank) => {
    const weight = Math.round(100_000 / (rank + 10));
    const capitalised = word[0].toUpperCase() + word.slice(1);
    add(` ${word}`, weight);
    add(word, Math.ceil(weight / 5));
    add(` ${capitalised}`, Math.ceil(weight / 4));
    add(capitalised, Math.ceil(weight / 8));
  });
  for (const [punctuation, count] of [
    ['.', 5000],
    [',', 5000],
    ['\n', 3000],
    ['\n\n', 2000],
    [':', 1500],
    ['?', 800],
    ['!', 300],
    [' (', 400],
    [')', 400],
    ['."', 200],
    [' "', 300],
    ["'s", 600],
    [' -', 300],
    ['...', 100],
    ['\\boxed{', 100],
    ['}', 200],
  ] as const) {
    add(punctuation, count);
  }
  return counts;
}

/** The decoder's size; the rest of the shape (vocabulary, head width, norms, RoPE) is the tiny model's. */
export interface DecoderSize {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
}

/**
 * Writes a model folder with the bundled tokenizer and seeded random weights. The default size and seed
 * give the tiny model; a larger size is the untrained start of a model trained by the project.
 */
export async function buildTinyModel(
  folder: string,
  size: DecoderSize = TINY_SHAPE,
  seed: string = TINY_MODEL_SEED,
): Promise<{ parameters: number; tokenizerSize: number }> {
  const tokenizer = buildByteLevelTokenizer({
    pretokenCounts: pretokenCounts(),
    vocabularySize: TINY_VOCABULARY_SIZE,
  });
  const shape = { ...TINY_SHAPE, ...size };
  await writeModelFolder(folder, { shape, tokenizer, seed });
  return { parameters: parameterCount(shape), tokenizerSize: tokenizer.vocabularySize };
}

function sizeArgument(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1)
    throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return parsed;
}

if (require.main === module) {
  const program = new Command()
    .description('Build the bundled model folder (deterministic)')
    .option('--out <folder>', 'output folder', path.join(__dirname, '..', 'models', 'rememr1-tiny'))
    .option('--hidden <n>', 'hidden size (head width stays 32)', sizeArgument, TINY_SHAPE.hiddenSize)
    .option('--intermediate <n>', 'MLP width', sizeArgument, TINY_SHAPE.intermediateSize)
    .option('--layers <n>', 'decoder layers', sizeArgument, TINY_SHAPE.numHiddenLayers)
    .option('--kv-heads <n>', 'key/value heads', sizeArgument, TINY_SHAPE.numKeyValueHeads)
    .option('--seed <text>', 'weight seed', TINY_MODEL_SEED)
    .parse();
  const options = program.opts<{
    out: string;
    hidden: number;
    intermediate: number;
    layers: number;
    kvHeads: number;
    seed: string;
  }>();
  const { out } = options;
  if (options.hidden % TINY_SHAPE.headDim !== 0) {
    console.error(
      `--hidden must be a multiple of the head width ${TINY_SHAPE.headDim}, got ${options.hidden}`,
    );
    process.exit(1);
  }
  const size: DecoderSize = {
    hiddenSize: options.hidden,
    intermediateSize: options.intermediate,
    numHiddenLayers: options.layers,
    numAttentionHeads: options.hidden / TINY_SHAPE.headDim,
    numKeyValueHeads: options.kvHeads,
  };
  buildTinyModel(out, size, options.seed).then(
    ({ parameters, tokenizerSize }) =>
      console.log(`wrote ${out}: ${parameters} parameters, ${tokenizerSize} tokenizer ids`),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
