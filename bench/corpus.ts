/**
 * Corpus-scale input in bounded memory: a sharded JSONL corpus made on disk (streamed, not committed), then, in a
 * child process under a small V8 heap limit, the CLI's path (list the shards, check columns, streamed sha256s,
 * streaming uploads into a filesystem blob store) and the workers' reading path (every row of every stored shard
 * parsed and validated, as `indexShard` reads them, without the per-row writes). Prints rows per second and the
 * child's peak RSS for each corpus size; the memory test (test/storage/corpus-memory.test.ts) runs it small.
 *
 *   npx tsx bench/corpus.ts --rows 200000,800000 [--shards 16] [--context-chars 1000] [--heap-mb 64]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import { prepareDataset, stageDataset } from '../cli/dataset-source';
import { blobDatasetSource, readDataset } from '../lib/data/dataset';
import { FsBlobStore } from '../lib/storage';
import { loadConfig } from '../temporal.config';

export interface CorpusMeasurement {
  rows: number;
  bytes: number;
  /** Listing, column check, sha256s and streaming uploads. */
  stageSeconds: number;
  /** Reading and validating every row of the stored shards. */
  readSeconds: number;
  rowsPerSecond: number;
  peakRssMiB: number;
}

/** Writes `rows` short rows over `shards` JSONL files, streamed (one row in memory at a time). */
export async function makeCorpus(dir: string, rows: number, shards: number, contextChars: number): Promise<number> {
  fs.mkdirSync(dir, { recursive: true });
  const filler = 'lorem ipsum dolor sit amet '.repeat(Math.ceil(contextChars / 27)).slice(0, contextChars);
  let bytes = 0;
  const perShard = Math.ceil(rows / shards);
  for (let shard = 0; shard < shards; shard += 1) {
    const out = fs.createWriteStream(path.join(dir, `part-${String(shard).padStart(5, '0')}.jsonl`));
    for (let row = shard * perShard; row < Math.min(rows, (shard + 1) * perShard); row += 1) {
      const line = `${JSON.stringify({ id: `r${row}`, question: `What is r${row}?`, context: `r${row} is ${row}. ${filler}`, answers: [String(row)] })}\n`;
      bytes += Buffer.byteLength(line);
      if (!out.write(line)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
  }
  return bytes;
}

/** Runs the measured part in a child process with a `heapMiB` V8 heap, and returns what it measured. */
export async function measureInChild(corpusDir: string, storeDir: string, heapMiB: number): Promise<CorpusMeasurement> {
  const child = spawn(
    process.execPath,
    [`--max-old-space-size=${heapMiB}`, '--require', require.resolve('tsx/cjs'), __filename, '--child', corpusDir, storeDir],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, REMEMR1_STORAGE: 'fs', REMEMR1_STORAGE_ROOT: storeDir } },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`the measured process failed (exit ${code}):\n${stderr.slice(-2000)}`);
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as CorpusMeasurement;
}

async function child(corpusDir: string, storeDir: string): Promise<void> {
  const started = process.hrtime.bigint();
  const seconds = (from: bigint): number => Number(process.hrtime.bigint() - from) / 1e9;
  const store = new FsBlobStore({ root: storeDir });
  const dataset = await prepareDataset(loadConfig(), corpusDir, {});
  const staged = await stageDataset(store, dataset);
  const stageSeconds = seconds(started);
  const reading = process.hrtime.bigint();
  let rows = 0;
  let invalid = 0;
  const shards = staged.source?.shards ?? [{ key: staged.datasetKey, name: staged.datasetKey }];
  for (const shard of shards) {
    for await (const item of readDataset(blobDatasetSource(store, shard.key), dataset.resolved.format)) {
      rows += 1;
      if (!item.ok) invalid += 1;
    }
  }
  if (invalid > 0) throw new Error(`${invalid} rows did not validate`);
  const readSeconds = seconds(reading);
  const bytes = dataset.resolved.shards.reduce((sum, shard) => sum + shard.size, 0);
  const measurement: CorpusMeasurement = {
    rows,
    bytes,
    stageSeconds,
    readSeconds,
    rowsPerSecond: rows / readSeconds,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
  console.log(JSON.stringify(measurement));
}

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index === -1 ? fallback : process.argv[index + 1];
}

async function main(): Promise<void> {
  const sizes = option('--rows', '200000,800000').split(',').map(Number);
  const shards = Number(option('--shards', '16'));
  const contextChars = Number(option('--context-chars', '1000'));
  const heapMiB = Number(option('--heap-mb', '64'));
  for (const rows of sizes) {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rememr1-corpus-'));
    try {
      const bytes = await makeCorpus(path.join(work, 'corpus'), rows, shards, contextChars);
      const m = await measureInChild(path.join(work, 'corpus'), path.join(work, 'store'), heapMiB);
      console.log(
        `${rows} rows, ${(bytes / 2 ** 20).toFixed(0)} MiB in ${shards} shards, V8 heap ${heapMiB} MiB: ` +
          `staged (sha256 + streamed upload) in ${m.stageSeconds.toFixed(1)} s, read ${m.rowsPerSecond.toFixed(0)} rows/s, ` +
          `peak RSS ${m.peakRssMiB.toFixed(0)} MiB`,
      );
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
}

if (require.main === module) {
  const run = process.argv[2] === '--child' ? child(process.argv[3], process.argv[4]) : main();
  run.catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  });
}
