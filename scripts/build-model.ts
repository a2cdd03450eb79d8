/**
 * Builds the bundled model folder models/rememr1-tiny: a byte-level BPE tokenizer learned from a fixed
 * English word list, and a 2-layer Qwen2-architecture decoder with seeded random weights (untrained).
 * Deterministic: running it again rewrites byte-identical files.
 *
 *   npx tsx scripts/build-model.ts [--out models/rememr1-tiny]
 */
import { Command } from 'commander';
import * as path from 'node:path';
import { COMMON_ENGLISH_WORDS } from '../lib/model/english-words';
import { writeModelFolder } from '../lib/model/model-folder-builder';
import { parameterCount, type Qwen2Shape } from '../lib/model/qwen2-weights';
import { buildByteLevelTokenizer } from '../lib/model/tokenizer-builder';

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

export async function buildTinyModel(folder: string): Promise<{ parameters: number; tokenizerSize: number }> {
  const tokenizer = buildByteLevelTokenizer({
    pretokenCounts: pretokenCounts(),
    vocabularySize: TINY_VOCABULARY_SIZE,
  });
  await writeModelFolder(folder, { shape: TINY_SHAPE, tokenizer, seed: TINY_MODEL_SEED });
  return { parameters: parameterCount(TINY_SHAPE), tokenizerSize: tokenizer.vocabularySize };
}

if (require.main === module) {
  const program = new Command()
    .description('Build the bundled model folder (deterministic)')
    .option('--out <folder>', 'output folder', path.join(__dirname, '..', 'models', 'rememr1-tiny'))
    .parse();
  const { out } = program.opts<{ out: string }>();
  buildTinyModel(out).then(
    ({ parameters, tokenizerSize }) =>
      console.log(`wrote ${out}: ${parameters} parameters, ${tokenizerSize} tokenizer ids`),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
