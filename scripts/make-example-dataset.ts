/**
 * Writes the bundled example dataset, examples/synthetic-mini.jsonl: a few seeded two-hop questions over
 * documents of a few thousand characters (`npx tsx scripts/make-example-dataset.ts`; same bytes every time).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateSyntheticRows, toJsonLines } from '../lib/data/synthetic';

const rows = generateSyntheticRows({ seed: 2025, questions: 6, documentsPerQuestion: 16, hops: 2, wordsPerDocument: 50, minEvidenceGap: 4 });
const file = path.join(__dirname, '..', 'examples', 'synthetic-mini.jsonl');
fs.writeFileSync(file, toJsonLines(rows));
console.log(`wrote ${rows.length} rows to ${path.relative(process.cwd(), file)}`);
