/**
 * `rememr1 bench-data --out DIR`: the distant-evidence benchmark's fixed train, dev and test splits
 * (lib/data/distant-evidence.ts) as JSON Lines, plus manifest.json with the knobs and each file's sha256.
 * The same options give the same bytes; documents are laid out in chunks of the given tokenizer (the bundled
 * model's by default), so episodes must read them with `--chunk-tokens` equal to the benchmark's.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import {
  BenchmarkSpecError,
  ENTITY_VOCABULARIES,
  EVIDENCE_ORDERS,
  defaultDistantEvidenceOptions,
  distantEvidenceJsonLines,
  generateSplits,
  type BenchmarkSpec,
  type EntityVocabulary,
  type EvidenceOrder,
} from '../lib/data/distant-evidence';
import { loadModelFolder } from '../lib/model';
import { BUNDLED_MODEL_FOLDER } from '../lib/episode/rule-policy';
import { CliExit, nonNegativeInt, positiveInt, probability } from './main';

/** "4,8,16" → [4, 8, 16]. */
export function positiveIntList(value: string): number[] {
  const items = value.split(',').map((item) => Number(item.trim()));
  if (items.length === 0 || items.some((item) => !Number.isInteger(item) || item < 1))
    throw new InvalidArgumentError('expected positive integers separated by commas, e.g. 4,8,16');
  return items;
}

interface BenchDataOptions {
  out: string;
  seed: number;
  train: number;
  dev: number;
  test: number;
  chunks: number[];
  trainChunks?: number[];
  chunkTokens: number;
  hops: number[];
  order: EvidenceOrder;
  minGap: number;
  distractors: number;
  similarity: number;
  vocabulary: EntityVocabulary;
  tokenizer: string;
}

export const BENCHMARK_MANIFEST_FORMAT = 'rememr1-distant-evidence/1';

async function benchData(options: BenchDataOptions): Promise<void> {
  const folder = await loadModelFolder(options.tokenizer);
  const countTokens = (text: string): number => folder.tokenizer.encodePlain(text).length;
  const spec: BenchmarkSpec = {
    options: {
      seed: options.seed,
      chunkTokens: options.chunkTokens,
      hops: options.hops,
      order: options.order,
      minEvidenceGap: options.minGap,
      distractorsPerChunk: options.distractors,
      distractorSimilarity: options.similarity,
      vocabulary: options.vocabulary,
    },
    splits: {
      train: { questions: options.train, chunks: options.trainChunks ?? options.chunks },
      dev: { questions: options.dev, chunks: options.chunks },
      test: { questions: options.test, chunks: options.chunks },
    },
  };
  let splits;
  try {
    splits = generateSplits(spec, countTokens);
  } catch (error) {
    if (error instanceof BenchmarkSpecError) throw new CliExit(error.message, 2);
    throw error;
  }
  fs.mkdirSync(options.out, { recursive: true });
  const files: Record<string, { rows: number; sha256: string }> = {};
  for (const [split, rows] of Object.entries(splits)) {
    const text = distantEvidenceJsonLines(rows);
    const file = `${split}.jsonl`;
    fs.writeFileSync(path.join(options.out, file), text);
    files[file] = { rows: rows.length, sha256: createHash('sha256').update(text).digest('hex') };
    console.log(`${path.join(options.out, file)}: ${rows.length} questions at ${spec.splits[split].chunks.join(', ')} chunks of ${options.chunkTokens} tokens`);
  }
  const manifest = { format: BENCHMARK_MANIFEST_FORMAT, tokenizer: path.basename(path.resolve(options.tokenizer)), ...spec, files };
  fs.writeFileSync(path.join(options.out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`read them with --chunk-tokens ${options.chunkTokens}`);
}

export function registerBenchDataCommand(program: Command): void {
  const defaults = defaultDistantEvidenceOptions;
  program
    .command('bench-data')
    .description('write the distant-evidence benchmark: train, dev and test JSONL splits and manifest.json')
    .requiredOption('--out <dir>', 'folder to write train.jsonl, dev.jsonl, test.jsonl and manifest.json to')
    .option('--seed <n>', 'seed of every split', (value) => nonNegativeInt(value), defaults.seed)
    .option('--train <n>', 'training questions per document length', nonNegativeInt, 256)
    .option('--dev <n>', 'dev questions per document length', nonNegativeInt, 16)
    .option('--test <n>', 'test questions per document length', nonNegativeInt, 32)
    .option('--chunks <list>', 'document lengths in chunks (dev and test)', positiveIntList, [4, 8, 16, 32, 64])
    .option('--train-chunks <list>', 'document lengths in chunks of the training split (default: --chunks)', positiveIntList)
    .option('--chunk-tokens <n>', 'tokens per chunk (read the documents with the same --chunk-tokens)', positiveInt, defaults.chunkTokens)
    .option('--hops <list>', 'hops per question, drawn per question from the list (1 to 4)', positiveIntList, [...defaults.hops])
    .addOption(new Option('--order <order>', 'evidence order: chain order, last-needed first, or shuffled per question').choices(EVIDENCE_ORDERS).default(defaults.order))
    .option('--min-gap <chunks>', 'least number of chunks between consecutive evidence facts', nonNegativeInt, defaults.minEvidenceGap)
    .option('--distractors <n>', 'distractor facts per chunk', nonNegativeInt, defaults.distractorsPerChunk)
    .option('--similarity <p>', 'probability that a distractor entity is a near miss of the question entity', probability, defaults.distractorSimilarity)
    .addOption(new Option('--vocabulary <kind>', 'entity names from common words (one token each) or made-up syllables').choices(ENTITY_VOCABULARIES).default(defaults.vocabulary))
    .option('--tokenizer <folder>', 'model folder whose tokenizer lays out the chunks', BUNDLED_MODEL_FOLDER)
    .action(async (options: BenchDataOptions) => benchData(options));
}
