/**
 * Copies an exported policy version (a training run's step, `policies/{version}/` in the configured blob store)
 * into a model folder, verified against its manifest, and records the reading settings it was trained with in
 * its generation_config.json (`rememr1.chunk_tokens`, per-turn token limits), so that episodes read documents
 * the way the model learned to:
 *
 *   npx tsx scripts/export-model.ts --version RUN.step-N --out models/NAME --chunk-tokens 128 --memory-tokens 160 --answer-tokens 64
 *
 * `--weights-only` leaves out onnx/ (lib/model-build/weights-only-folder.ts): for the replication's trained
 * variants, committed only to be evaluated.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { MODEL_FILES } from '../lib/model/folder';
import { createBlobStore } from '../lib/storage';
import { fetchPolicyVersion } from '../lib/training/policy-versions';
import { loadConfig } from '../temporal.config';

interface ExportOptions {
  version: string;
  out: string;
  chunkTokens: number;
  memoryTokens: number;
  answerTokens: number;
  weightsOnly?: boolean;
}

function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1)
    throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return parsed;
}

async function exportModel(options: ExportOptions): Promise<void> {
  const config = loadConfig();
  const store = createBlobStore(config.storage);
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'rememr1-export-'));
  try {
    const { folder } = await fetchPolicyVersion(store, options.version, cache);
    fs.rmSync(options.out, { recursive: true, force: true });
    fs.cpSync(folder, options.out, {
      recursive: true,
      // A weights-only folder leaves out onnx/: the replication rebuilds it from model.safetensors.
      filter: (source) =>
        path.basename(source) !== 'manifest.json' &&
        !(options.weightsOnly === true && path.relative(folder, source) === path.dirname(MODEL_FILES.onnx)),
    });
    const generationFile = path.join(options.out, MODEL_FILES.generationConfig);
    const generation = JSON.parse(fs.readFileSync(generationFile, 'utf8')) as Record<string, unknown>;
    generation.rememr1 = {
      chunk_tokens: options.chunkTokens,
      memory_max_new_tokens: options.memoryTokens,
      answer_max_new_tokens: options.answerTokens,
    };
    fs.writeFileSync(generationFile, `${JSON.stringify(generation, null, 2)}\n`);
    console.log(`wrote ${options.out} from policy version ${options.version}`);
  } finally {
    await store.close();
    fs.rmSync(cache, { recursive: true, force: true });
  }
}

const program = new Command()
  .description(
    'Copy an exported policy version into a model folder, with the reading settings it was trained with',
  )
  .requiredOption('--version <version>', 'policy version (RUN.step-N or RUN.base)')
  .requiredOption('--out <folder>', 'model folder to write (replaced)')
  .requiredOption('--chunk-tokens <n>', 'chunk size the model was trained on', positiveInt)
  .requiredOption('--memory-tokens <n>', 'max new tokens of a memory turn', positiveInt)
  .requiredOption('--answer-tokens <n>', 'max new tokens of the final turn', positiveInt)
  .option('--weights-only', 'leave out onnx/ (rebuilt from model.safetensors when the replication loads it)')
  .parse();
exportModel(program.opts<ExportOptions>()).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
