/**
 * Writes the bundled example dataset, examples/distant-evidence-mini.jsonl: a few questions of the
 * distant-evidence benchmark (lib/data/distant-evidence.ts) that the bundled model was trained on, at 4 and 8
 * chunks of 128 tokens, from a seed of their own (not the benchmark's splits). Same bytes every time:
 *
 *   npx tsx scripts/make-example-dataset.ts
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  defaultDistantEvidenceOptions,
  distantEvidenceJsonLines,
  generateSplits,
} from '../lib/data/distant-evidence';
import { loadModelFolder } from '../lib/model';
import { BUNDLED_MODEL_FOLDER } from '../lib/episode/rule-policy';

export const EXAMPLE_DATASET = path.join(__dirname, '..', 'examples', 'distant-evidence-mini.jsonl');

const { chunks: _lengths, ...benchmarkDefaults } = defaultDistantEvidenceOptions;

async function main(): Promise<void> {
  const { tokenizer } = await loadModelFolder(BUNDLED_MODEL_FOLDER);
  const rows = generateSplits(
    {
      options: { ...benchmarkDefaults, seed: 2025, chunkTokens: 128 },
      splits: { example: { questions: 6, chunks: [4, 8] } },
    },
    (text) => tokenizer.encodePlain(text).length,
  ).example;
  fs.writeFileSync(EXAMPLE_DATASET, distantEvidenceJsonLines(rows));
  console.log(`wrote ${rows.length} rows to ${path.relative(process.cwd(), EXAMPLE_DATASET)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
