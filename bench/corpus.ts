/**
 * Corpus-scale input in bounded memory: a sharded JSONL corpus made on disk (streamed, not committed), then, in a
 * child process under a small V8 heap limit, the CLI's path (list the shards, check columns, streamed sha256s,
 * streaming uploads into a filesystem blob store) and the workers' reading path (every row of every stored shard
 * parsed and validated, as `indexShard` reads them, without the per-row writes). Prints rows per second and the
 * child's peak RSS for each corpus size; the memory test (test/storage/corpus-memory.test.ts) runs it small.
 *
 *   npx tsx bench/corpus.ts --rows 200000,800000 [--shards 16] [--context-chars 1000] [--heap-mb 64]
 *
 * With `--temporal`, indexing runs through the real workflows instead: the CLI's staging and a batch started in one
 * process, an orchestration worker in another (both under the heap limit), the Temporal dev server of the local
 * stack. Each `--modes` entry is `SHARDSxWRITES`: shards indexed at once (`indexParallelism`) and episode inputs
 * written at once per shard (`worker.indexWritesInFlight`); the first mode is the in-run baseline (default
 * `1x1`, everything one after another). Modes alternate, `--repeats` times each, for each corpus size. Prints rows
 * indexed per second (batch start to the run's index written) and each process's peak RSS; the batch is
 * terminated once indexed (no episodes run) and its objects deleted.
 *
 *   npx tsx bench/corpus.ts --temporal --rows 20000,80000 --shards 8 --repeats 3 [--modes 1x1,4x1,4x8] [--heap-mb 128]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import { Client, Connection } from '@temporalio/client';
import { prepareDataset, stageDataset } from '../cli/dataset-source';
import { stackPaths, startTemporal } from '../infra/local-stack';
import { blobDatasetSource, readDataset } from '../lib/data/dataset';
import { defaultEpisodeSettings } from '../lib/episode/types';
import type { BatchIndex } from '../activities/batch';
import { FsBlobStore, batchIndexKey } from '../lib/storage';
import { loadConfig, type RememConfig } from '../temporal.config';
import { killHard, startWorkerProcess, workerEnvironment } from '../workers/spawn';
import { batchQAWorkflow } from '../workflows/batch';

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

/** One indexing of a staged corpus through Temporal: rows per second and each process's peak RSS. */
/** How a measured indexing runs: shards indexed at once, and episode inputs written at once per shard. */
export interface IndexingMode {
  shards: number;
  writes: number;
}

export function parseModes(text: string): IndexingMode[] {
  return text.split(',').map((entry) => {
    const match = /^(\d+)x(\d+)$/.exec(entry.trim());
    if (match === null || Number(match[1]) < 1 || Number(match[2]) < 1) throw new Error(`--modes: expected SHARDSxWRITES such as 4x8, got "${entry}"`);
    return { shards: Number(match[1]), writes: Number(match[2]) };
  });
}

const modeName = (mode: IndexingMode): string => `${mode.shards}x${mode.writes}`;

export interface IndexingMeasurement {
  mode: IndexingMode;
  rows: number;
  stageSeconds: number;
  indexSeconds: number;
  rowsPerSecond: number;
  cliPeakRssMiB: number;
  workerPeakRssMiB: number;
}

/** A process's peak resident set (Linux: VmHWM), read before it is stopped. */
function peakRssMiBOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmHWM for process ${pid}`);
  return Number(kib) / 1024;
}

/**
 * The CLI's side, in a child process under the heap limit (configured through the environment, as a worker is):
 * stage the corpus, start a batch, wait for its index, terminate it. Prints its measurement as one JSON line.
 */
async function cliChild(corpusDir: string, runId: string, parallelism: number): Promise<void> {
  const config = loadConfig();
  const started = process.hrtime.bigint();
  const seconds = (from: bigint): number => Number(process.hrtime.bigint() - from) / 1e9;
  const store = new FsBlobStore({ root: config.storage.kind === 'fs' ? config.storage.root : '' });
  const dataset = await prepareDataset(config, corpusDir, {});
  const staged = await stageDataset(store, dataset);
  const stageSeconds = seconds(started);
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const indexing = process.hrtime.bigint();
  const handle = await client.workflow.start(batchQAWorkflow, {
    workflowId: `batch.${runId}`,
    taskQueue: config.taskQueues.orchestration,
    args: [
      {
        runId,
        datasetKey: staged.datasetKey,
        source: staged.source,
        dataset: dataset.name,
        settings: defaultEpisodeSettings,
        runtime: { taskQueues: config.taskQueues, activities: config.activities },
        width: 1,
        pageSize: 200,
        stopOnBadRow: false,
        indexParallelism: parallelism,
      },
    ],
  });
  const deadline = Date.now() + 6 * 3_600_000;
  while (!(await store.exists(batchIndexKey(runId)))) {
    if (Date.now() > deadline) throw new Error(`${runId} not indexed within six hours`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const indexSeconds = seconds(indexing);
  await handle.terminate('indexing measured');
  const index = await store.getJson<BatchIndex>(batchIndexKey(runId));
  await connection.close();
  await store.close();
  const measurement = { rows: index.rows, stageSeconds, indexSeconds, cliPeakRssMiB: process.resourceUsage().maxRSS / 1024 };
  console.log(JSON.stringify(measurement));
}

/** One measured indexing: a fresh worker process and a fresh CLI process over the same stored corpus. */
async function indexThroughTemporal(base: RememConfig, corpusDir: string, heapMiB: number, mode: IndexingMode): Promise<IndexingMeasurement> {
  const heap = { NODE_OPTIONS: `--max-old-space-size=${heapMiB}` };
  const config: RememConfig = { ...base, worker: { ...base.worker, indexWritesInFlight: mode.writes } };
  const worker = startWorkerProcess('orchestration', config, heap);
  const runId = `corpus-${process.pid}-${Date.now().toString(36)}-${modeName(mode)}`;
  try {
    await worker.ready;
    const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), __filename, '--cli-child', corpusDir, runId, String(mode.shards)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...workerEnvironment(config), ...heap },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    if (code !== 0) throw new Error(`the CLI process failed (exit ${code}):\n${stderr.slice(-2000)}`);
    const cli = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Omit<IndexingMeasurement, 'mode' | 'rowsPerSecond' | 'workerPeakRssMiB'>;
    const workerPeakRssMiB = peakRssMiBOf(worker.child.pid as number);
    return { ...cli, mode, rowsPerSecond: cli.rows / cli.indexSeconds, workerPeakRssMiB };
  } finally {
    await killHard(worker);
    // A million rows are a million input objects: each measurement's go before the next one's.
    if (config.storage.kind === 'fs') fs.rmSync(path.join(config.storage.root, 'runs', runId), { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

async function temporalMain(sizes: number[], shards: number, contextChars: number, heapMiB: number): Promise<void> {
  const repeats = Number(option('--repeats', '3'));
  const modes = parseModes(option('--modes', '1x1,4x1,4x8'));
  const base = loadConfig();
  await startTemporal({ paths: stackPaths(base.localDir), address: base.temporal.address, namespace: base.temporal.namespace, ui: false });
  const range = (values: number[], digits = 0): string => `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
  for (const rows of sizes) {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rememr1-corpus-'));
    const stamp = `${process.pid}-${Date.now().toString(36)}`;
    const config: RememConfig = {
      ...base,
      taskQueues: { orchestration: `corpus-orch-${stamp}`, inference: `corpus-inf-${stamp}`, trainer: `corpus-train-${stamp}` },
      storage: { kind: 'fs', root: path.join(work, 'store') },
    };
    try {
      const bytes = await makeCorpus(path.join(work, 'corpus'), rows, shards, contextChars);
      const results: IndexingMeasurement[] = [];
      for (let repeat = 0; repeat < repeats; repeat += 1) {
        for (const mode of modes) {
          const m = await indexThroughTemporal(config, path.join(work, 'corpus'), heapMiB, mode);
          results.push(m);
          console.log(
            `  ${rows} rows, mode ${modeName(mode)}: ${m.rowsPerSecond.toFixed(0)} rows/s (${m.indexSeconds.toFixed(1)} s), ` +
              `peak RSS worker ${m.workerPeakRssMiB.toFixed(0)} MiB, CLI ${m.cliPeakRssMiB.toFixed(0)} MiB`,
          );
        }
      }
      const of = (mode: IndexingMode): IndexingMeasurement[] => results.filter((m) => modeName(m.mode) === modeName(mode));
      console.log(`${rows} rows, ${(bytes / 2 ** 20).toFixed(0)} MiB in ${shards} shards, V8 heap ${heapMiB} MiB, ${repeats} runs each (mode = shards at once x input writes at once):`);
      for (const mode of modes) {
        const ms = of(mode);
        const ratios = ms.map((m, i) => m.rowsPerSecond / of(modes[0])[i].rowsPerSecond);
        console.log(
          `  ${modeName(mode)}: median ${median(ms.map((m) => m.rowsPerSecond)).toFixed(0)} rows/s (${range(ms.map((m) => m.rowsPerSecond))}), ` +
            `${median(ratios).toFixed(2)}× ${modeName(modes[0])} per repeat (${range(ratios, 2)}×); ` +
            `peak RSS worker ${range(ms.map((m) => m.workerPeakRssMiB))} MiB, CLI ${range(ms.map((m) => m.cliPeakRssMiB))} MiB`,
        );
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
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
  if (process.argv.includes('--temporal')) return temporalMain(sizes, shards, contextChars, heapMiB);
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
  const run =
    process.argv[2] === '--child'
      ? child(process.argv[3], process.argv[4])
      : process.argv[2] === '--cli-child'
        ? cliChild(process.argv[3], process.argv[4], Number(process.argv[5]))
        : main();
  run.catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  });
}
