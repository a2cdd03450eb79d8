/**
 * Exports a run's result rows from the project's blob store to another place (a folder or an S3 prefix) as
 * sharded Parquet or JSON Lines, plus the run summary and a manifest written last.
 *
 * Streamed: result rows are listed page by page and read a few at a time, and at most one shard of rows is held
 * in memory, so a run of millions of rows exports in bounded memory. Layout of the destination:
 *
 *   part-00000.parquet, part-00001.parquet, …   (or .jsonl) `rowsPerShard` rows each, in row order
 *   traces/part-00000.parquet, …                  with `traces`: one row per memory step, in row and step order
 *   summary.json                                  the batch summary (EM / F1 / sub-EM overall and by length)
 *   manifest.json                                 run, format, schema version, columns, shards and row counts
 */
import type { SchemaElement } from 'hyparquet';
import type { ColumnSource } from 'hyparquet-writer';
import { SummaryBuilder, type BatchSummary } from '../episode/summary';
import type { AnswerRecord, EpisodeInputRecord, EpisodeResult, MemoryStepRecord } from '../episode/types';
import {
  BlobNotFoundError,
  batchRunKey,
  batchSummaryKey,
  episodeAnswerKey,
  episodeInputKey,
  episodeMemoryPrefix,
  runResultsPrefix,
  type BlobStore,
} from '../storage';
import {
  RESULT_COLUMNS,
  RESULT_SCHEMA_VERSION,
  SHARD_FILE_PATTERN,
  resultColumnData,
  resultParquetSchema,
  shardFileName,
  type ExportFormat,
  toExportRow,
  type ExportRow,
  type RunBindingInfo,
} from './result-rows';
import {
  TRACE_COLUMNS,
  TRACE_SCHEMA_VERSION,
  TRACE_SHARD_FILE_PATTERN,
  toTraceRow,
  traceColumnData,
  traceParquetSchema,
  traceShardFileName,
  type TraceRow,
} from './trace-rows';

export { EXPORT_FORMATS, type ExportFormat } from './result-rows';

export interface ExportOptions {
  format: ExportFormat;
  /** Rows per shard file (and the most rows held in memory at once). */
  rowsPerShard: number;
  /** Replace an earlier export's files at the destination instead of refusing a non-empty destination. */
  overwrite: boolean;
  /** Result rows read at once (default 8). */
  concurrency?: number;
  /** Also write the memory trace: one row per memory step (`traces/`), in shards of `rowsPerShard` rows. */
  traces?: boolean;
  /** Called after each shard is written, with the rows exported so far. */
  onShard?: (rows: number, file: string) => void;
}

/** Rows, shards and columns of one exported table. */
export interface ExportedTable {
  schemaVersion: number;
  columns: string[];
  rows: number;
  shards: Array<{ file: string; rows: number }>;
}

export interface ExportManifest {
  runId: string;
  format: ExportFormat;
  schemaVersion: number;
  columns: string[];
  rows: number;
  shards: Array<{ file: string; rows: number }>;
  summary: 'summary.json';
  /** Present when the memory trace was exported. */
  traces?: ExportedTable;
}

/** A mistake in what was asked (no such run, a destination in use): one line, nothing written. */
export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}

const SUMMARY_FILE = 'summary.json';
const MANIFEST_FILE = 'manifest.json';

export async function exportRun(
  source: BlobStore,
  runId: string,
  destination: BlobStore,
  options: ExportOptions,
): Promise<ExportManifest> {
  if (!Number.isSafeInteger(options.rowsPerShard) || options.rowsPerShard < 1) {
    throw new ExportError(`rows per shard must be a positive integer, got ${options.rowsPerShard}`);
  }
  const binding = await getJsonIfPresent<RunBindingInfo & { dataset?: string }>(source, batchRunKey(runId));
  const resultKeys = source.list(runResultsPrefix(runId));
  const first = await firstOf(resultKeys);
  if (binding === undefined && first.done) {
    throw new ExportError(`run ${runId} has no result rows in ${String(source)}: check the run id (rememr1 status ${runId})`);
  }
  await prepareDestination(destination, options.overwrite);

  const builder = new SummaryBuilder();
  const results = new ShardWriter<ExportRow>(destination, options, (index) => shardFileName(index, options.format), (rows) => encodeResults(rows, options.format));
  const traces = options.traces
    ? new ShardWriter<TraceRow>(destination, options, (index) => traceShardFileName(index, options.format), (rows) => encodeTraces(rows, options.format))
    : undefined;
  const readRow = async (key: string): Promise<{ row: ExportRow; steps: TraceRow[] }> => {
    const result = await source.getJson<EpisodeResult>(key);
    const answer = await getJsonIfPresent<AnswerRecord>(source, episodeAnswerKey(runId, result.episodeId));
    // Results written before they kept the row's id: the episode input has it (with the whole document).
    const input =
      result.id === undefined
        ? await getJsonIfPresent<EpisodeInputRecord>(source, episodeInputKey(runId, result.episodeId))
        : undefined;
    builder.add(result);
    const steps = traces === undefined ? [] : await traceRowsOf(source, result);
    return { row: toExportRow(result, answer, binding, input?.id), steps };
  };
  for await (const { row, steps } of mapOrdered(first.rest, options.concurrency ?? 8, readRow)) {
    await results.add(row);
    for (const step of steps) await traces?.add(step);
  }
  // A run without rows still gets one (empty) shard, so readers find the schema.
  await results.finish();
  await traces?.finish();

  const summary =
    (await getJsonIfPresent<BatchSummary>(source, batchSummaryKey(runId))) ??
    builder.build({ runId, dataset: binding?.dataset ?? '', invalidRows: 0, failedEpisodes: 0 });
  await destination.putJson(SUMMARY_FILE, summary);
  const manifest: ExportManifest = {
    runId,
    format: options.format,
    schemaVersion: RESULT_SCHEMA_VERSION,
    columns: RESULT_COLUMNS.map((column) => column.name),
    rows: results.rows,
    shards: results.shards,
    summary: SUMMARY_FILE,
  };
  if (traces !== undefined) {
    manifest.traces = {
      schemaVersion: TRACE_SCHEMA_VERSION,
      columns: TRACE_COLUMNS.map((column) => column.name),
      rows: traces.rows,
      shards: traces.shards,
    };
  }
  // Written last: its presence means the export is complete.
  await destination.putJson(MANIFEST_FILE, manifest);
  return manifest;
}

/** Refuses a destination holding anything, unless overwriting, which removes only an earlier export's files. */
async function prepareDestination(destination: BlobStore, overwrite: boolean): Promise<void> {
  const existing: string[] = [];
  for await (const key of destination.list('')) {
    existing.push(key);
    if (!overwrite) break;
  }
  if (existing.length === 0) return;
  if (!overwrite) {
    throw new ExportError(
      `${String(destination)} is not empty (it holds ${existing[0]}): choose an empty folder or prefix, or pass --overwrite to replace an earlier export`,
    );
  }
  for (const key of existing) {
    if (SHARD_FILE_PATTERN.test(key) || TRACE_SHARD_FILE_PATTERN.test(key) || key === SUMMARY_FILE || key === MANIFEST_FILE)
      await destination.delete(key);
  }
}

/** Writes rows into shards of `rowsPerShard` as they come: at most one shard is held in memory. */
class ShardWriter<Row> {
  readonly shards: Array<{ file: string; rows: number }> = [];
  rows = 0;
  private pending: Row[] = [];

  constructor(
    private readonly destination: BlobStore,
    private readonly options: Pick<ExportOptions, 'format' | 'rowsPerShard' | 'onShard'>,
    private readonly fileName: (index: number) => string,
    private readonly encode: (rows: readonly Row[]) => Promise<Uint8Array | string>,
  ) {}

  async add(row: Row): Promise<void> {
    this.pending.push(row);
    if (this.pending.length === this.options.rowsPerShard) await this.flush();
  }

  /** Writes the last shard; a table without rows still gets one empty shard, so readers find its schema. */
  async finish(): Promise<void> {
    if (this.pending.length > 0 || this.shards.length === 0) await this.flush();
  }

  private async flush(): Promise<void> {
    const file = this.fileName(this.shards.length);
    await this.destination.put(file, await this.encode(this.pending), {
      contentType: this.options.format === 'parquet' ? 'application/vnd.apache.parquet' : 'application/x-ndjson',
    });
    this.shards.push({ file, rows: this.pending.length });
    this.rows += this.pending.length;
    this.pending = [];
    this.options.onShard?.(this.rows, file);
  }
}

/** The episode's stored memory steps as trace rows, in step order. */
async function traceRowsOf(source: BlobStore, result: EpisodeResult): Promise<TraceRow[]> {
  const keys: string[] = [];
  for await (const key of source.list(episodeMemoryPrefix(result.runId, result.episodeId))) keys.push(key);
  const records: MemoryStepRecord[] = [];
  for (const key of keys) records.push(await source.getJson<MemoryStepRecord>(key));
  return records.sort((a, b) => a.step - b.step).map((record) => toTraceRow(result, record));
}

function jsonLines(rows: readonly unknown[]): string {
  return rows.map((row) => JSON.stringify(row)).join('\n') + (rows.length > 0 ? '\n' : '');
}

async function encodeResults(rows: readonly ExportRow[], format: ExportFormat): Promise<Uint8Array | string> {
  if (format === 'jsonl') return jsonLines(rows);
  return writeParquet(resultColumnData(rows) as ColumnSource[], resultParquetSchema(), 'rememr1.result_schema_version', RESULT_SCHEMA_VERSION);
}

async function encodeTraces(rows: readonly TraceRow[], format: ExportFormat): Promise<Uint8Array | string> {
  if (format === 'jsonl') return jsonLines(rows);
  return writeParquet(traceColumnData(rows) as ColumnSource[], traceParquetSchema(), 'rememr1.trace_schema_version', TRACE_SCHEMA_VERSION);
}

async function writeParquet(columnData: ColumnSource[], schema: SchemaElement[], versionKey: string, version: number): Promise<Uint8Array> {
  const { parquetWriteBuffer } = await import('hyparquet-writer');
  return new Uint8Array(
    parquetWriteBuffer({
      columnData,
      schema,
      // Row groups of up to 10,000 rows: readers can skip through a large shard a group at a time.
      rowGroupSize: 10_000,
      kvMetadata: [{ key: versionKey, value: String(version) }],
      createdBy: 'rememr1 export',
    }),
  );
}

async function getJsonIfPresent<T>(store: BlobStore, key: string): Promise<T | undefined> {
  try {
    return await store.getJson<T>(key);
  } catch (error) {
    if (error instanceof BlobNotFoundError) return undefined;
    throw error;
  }
}

/** Takes the first item off an async iterable, keeping the rest (first item included) iterable. */
async function firstOf<T>(items: AsyncIterable<T>): Promise<{ done: boolean; rest: AsyncIterable<T> }> {
  const iterator = items[Symbol.asyncIterator]();
  const head = await iterator.next();
  async function* rest(): AsyncGenerator<T> {
    if (head.done) return;
    yield head.value;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  }
  return { done: head.done === true, rest: rest() };
}

/** Maps with at most `concurrency` calls in flight, yielding results in input order. */
export async function* mapOrdered<T, R>(
  items: AsyncIterable<T>,
  concurrency: number,
  map: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const inFlight: Array<Promise<R>> = [];
  for await (const item of items) {
    const pending = map(item);
    // Awaited in order below; a later failure must not surface as an unhandled rejection meanwhile.
    pending.catch(() => undefined);
    inFlight.push(pending);
    if (inFlight.length >= concurrency) yield await (inFlight.shift() as Promise<R>);
  }
  while (inFlight.length > 0) yield await (inFlight.shift() as Promise<R>);
}
