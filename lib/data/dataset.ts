/**
 * Dataset readers for question-answering rows in the MemAgent / ReMemR1 evaluation shape:
 * `{ "question": str, "context": str, "answers": [str, …] }` (HotpotQA's single `"answer": str` is accepted too,
 * and an optional `"id"` / `"_id"`).
 *
 * Formats: JSON Lines, a JSON array, or Parquet. JSONL and JSON arrays are streamed (a corpus never has to fit in
 * memory at once); Parquet is read one row group at a time. A bad row never stops the reader: it yields an error
 * with the row number and the reason, and the caller decides whether to go on.
 */
import type { Readable } from 'node:stream';
import { Transform, pipeline } from 'node:stream';
// Static imports: stream-json is CommonJS whose exports are properties of a function, which a native dynamic
// import() (what tsx leaves in place) exposes only as `default`; a static import compiles to require() everywhere.
import { parser } from 'stream-json';
import { streamArray } from 'stream-json/streamers/StreamArray';
import { z } from 'zod';
import type { AsyncBuffer, FileMetaData } from 'hyparquet';
import { pieceRowRange, rowGroupSizes, type ParquetPiece, type RowGroupSize } from './parquet-pieces';
import type { BlobStore } from '../storage/blob-store';

export type DatasetFormat = 'jsonl' | 'json' | 'parquet';

export interface QaRow {
  /** 0-based position of the row in the file. */
  rowIndex: number;
  /** The row's own id if it has one, else `row-<rowIndex>`. */
  id: string;
  question: string;
  context: string;
  answers: string[];
}

export interface RowError {
  rowIndex: number;
  reason: string;
  /** For a dataset of shards (or read with mapped columns): the shard, and the 0-based row within it. */
  file?: string;
  fileRow?: number;
}

export type DatasetItem = { ok: true; row: QaRow } | { ok: false; error: RowError };

/** Limits that keep one bad row from exhausting a worker; a document itself may be very long. */
export const DATASET_LIMITS = {
  questionChars: 16_384,
  answerChars: 4_096,
  answers: 64,
  contextChars: 512 * 1024 * 1024,
} as const;

export class DatasetFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetFormatError';
  }
}

export function detectDatasetFormat(name: string): DatasetFormat {
  const lower = name.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.json')) return 'json';
  if (lower.endsWith('.parquet')) return 'parquet';
  throw new DatasetFormatError(
    `cannot tell the format of dataset "${name}": expected a .jsonl, .json or .parquet file`,
  );
}

const answerText = z
  .string({ error: 'field "answers" must hold strings' })
  .max(
    DATASET_LIMITS.answerChars,
    `field "answers" has an answer longer than ${DATASET_LIMITS.answerChars} characters (the limit)`,
  );

/**
 * Which column (or JSON field) holds what. Defaults: `question`, `context`, `answers` (else HotpotQA's `answer`),
 * `id` (else `_id`); e.g. LongBench's question is `input`. A named column that a row lacks is an error for that
 * row (answers and id excepted: a row without them has no gold answers, or the id `row-N`).
 */
export interface FieldMapping {
  question?: string;
  context?: string;
  answers?: string;
  id?: string;
}

interface ResolvedFields {
  question: string;
  context: string;
  answers: string;
  id: string;
}

function rowSchemaFor(fields: ResolvedFields) {
  const q = JSON.stringify(fields.question);
  const c = JSON.stringify(fields.context);
  return z.object({
    id: z
      .union([z.string(), z.number(), z.bigint()], {
        error: `field ${JSON.stringify(fields.id)} must be a string or a number`,
      })
      .optional(),
    question: z
      .string({ error: `field ${q} must be a string` })
      .trim()
      .min(1, `field ${q} is empty`)
      .max(
        DATASET_LIMITS.questionChars,
        `field ${q} is longer than ${DATASET_LIMITS.questionChars} characters (the limit)`,
      ),
    context: z
      .string({ error: `field ${c} must be a string (the document)` })
      .max(DATASET_LIMITS.contextChars, `field ${c} is larger than 512 MiB (the limit)`)
      .refine((text) => text.trim().length > 0, `the document (${c}) is empty`),
    // One answer may be given as a plain string.
    answers: z
      .preprocess(
        (value) => (typeof value === 'string' ? [value] : value),
        z
          .array(answerText, {
            error: `field ${JSON.stringify(fields.answers)} must be a string or a list of strings`,
          })
          .max(
            DATASET_LIMITS.answers,
            `field ${JSON.stringify(fields.answers)} has more than ${DATASET_LIMITS.answers} answers (the limit is ${DATASET_LIMITS.answers})`,
          ),
      )
      .optional(),
  });
}

const schemaCache = new Map<string, ReturnType<typeof rowSchemaFor>>();

function schemaOf(fields: ResolvedFields): ReturnType<typeof rowSchemaFor> {
  const cacheKey = JSON.stringify(fields);
  let schema = schemaCache.get(cacheKey);
  if (schema === undefined) {
    schema = rowSchemaFor(fields);
    schemaCache.set(cacheKey, schema);
  }
  return schema;
}

/** The column names a row is read with: the mapping's, else the defaults (`answer` / `_id` when the row has those). */
function resolveFields(record: Record<string, unknown>, fields: FieldMapping | undefined): ResolvedFields {
  return {
    question: fields?.question ?? 'question',
    context: fields?.context ?? 'context',
    answers:
      fields?.answers ?? (record.answers === undefined && record.answer !== undefined ? 'answer' : 'answers'),
    id: fields?.id ?? (record.id === undefined && record._id !== undefined ? '_id' : 'id'),
  };
}

/** Validates one parsed row, reading its fields by `fields` (see `FieldMapping`); never throws. */
export function validateRow(value: unknown, rowIndex: number, fields?: FieldMapping): DatasetItem {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      ok: false,
      error: { rowIndex, reason: 'a row must be a JSON object with "question", "context" and "answers"' },
    };
  }
  const record = value as Record<string, unknown>;
  const names = resolveFields(record, fields);
  const projected = {
    id: record[names.id] ?? undefined,
    question: record[names.question],
    context: record[names.context],
    answers: record[names.answers] ?? undefined,
  };
  const parsed = schemaOf(names).safeParse(projected);
  if (!parsed.success) {
    const reason = parsed.error.issues
      .map((issue) =>
        /field "|the document \(/.test(issue.message) || issue.path.length === 0
          ? issue.message
          : `field "${issue.path.map(String).join('.')}": ${issue.message}`,
      )
      .join('; ');
    return { ok: false, error: { rowIndex, reason } };
  }
  const data = parsed.data;
  const rawAnswers = data.answers;
  const answers = (Array.isArray(rawAnswers) ? rawAnswers : rawAnswers === undefined ? [] : [rawAnswers])
    .map((answer) => answer.trim())
    .filter((answer) => answer.length > 0);
  return {
    ok: true,
    row: {
      rowIndex,
      id: data.id === undefined ? `row-${rowIndex}` : String(data.id),
      question: data.question,
      context: data.context,
      answers,
    },
  };
}

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Byte offset of the first byte that makes `bytes` invalid UTF-8 (bytes cut off at the end are not invalid). */
function firstInvalidUtf8Byte(bytes: Uint8Array): number {
  const invalid = (length: number): boolean => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, length), { stream: true });
      return false;
    } catch {
      return true;
    }
  };
  // The shortest invalid prefix: invalidity only grows with the prefix.
  let low = 0;
  let high = bytes.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (invalid(middle + 1)) high = middle;
    else low = middle + 1;
  }
  // The byte at `low` shows the text is invalid; if it cuts short a character begun just before, that character's
  // first byte is where the invalid bytes start.
  for (let back = 1; back <= 3 && low - back >= 0; back += 1) {
    const byte = bytes[low - back];
    if ((byte & 0xc0) === 0x80) continue;
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return back < length ? low - back : low;
  }
  return low;
}

function utf8Problem(bytes: Uint8Array): string | undefined {
  try {
    new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    return undefined;
  } catch {
    return `is not valid UTF-8 text (invalid bytes at byte ${firstInvalidUtf8Byte(bytes)} of the line); save the file as UTF-8`;
  }
}

/**
 * Splits a byte stream into lines (LF or CRLF), each decoded as strict UTF-8: invalid bytes are reported, never
 * replaced by U+FFFD. A UTF-8 byte order mark at the start of the file is dropped.
 */
async function* utf8Lines(stream: Readable): AsyncGenerator<{ text: string } | { problem: string }> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const pieces: Buffer[] = [];
  let first = true;
  const line = (bytes: Buffer): { text: string } | { problem: string } => {
    if (first && bytes.subarray(0, 3).equals(UTF8_BOM)) bytes = bytes.subarray(3);
    first = false;
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, -1);
    try {
      return { text: decoder.decode(bytes) };
    } catch {
      return { problem: utf8Problem(bytes) ?? 'is not valid UTF-8 text' };
    }
  };
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let start = 0;
    for (let end = bytes.indexOf(0x0a, start); end !== -1; end = bytes.indexOf(0x0a, start)) {
      pieces.push(bytes.subarray(start, end));
      yield line(pieces.length === 1 ? pieces[0] : Buffer.concat(pieces));
      pieces.length = 0;
      start = end + 1;
    }
    if (start < bytes.length) pieces.push(bytes.subarray(start));
  }
  if (pieces.length > 0) yield line(Buffer.concat(pieces));
}

/** Streams JSON Lines; blank lines are skipped but still counted, so row numbers equal line numbers − 1. */
export async function* readJsonLines(stream: Readable, fields?: FieldMapping): AsyncGenerator<DatasetItem> {
  let rowIndex = -1;
  try {
    for await (const line of utf8Lines(stream)) {
      rowIndex += 1;
      if ('problem' in line) {
        yield { ok: false, error: { rowIndex, reason: `line ${rowIndex + 1} ${line.problem}` } };
        continue;
      }
      if (line.text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line.text);
      } catch (error) {
        yield {
          ok: false,
          error: { rowIndex, reason: `line ${rowIndex + 1} is not valid JSON: ${(error as Error).message}` },
        };
        continue;
      }
      yield validateRow(value, rowIndex, fields);
    }
  } finally {
    // Also when the reader fails or its consumer stops early: no file handle is left for the garbage collector.
    stream.destroy();
  }
}

/**
 * Passes bytes on only while they are valid UTF-8 (a byte order mark at the start is dropped); at the first
 * invalid byte it fails with the line and byte offset, instead of letting a decoder replace them with U+FFFD.
 */
function strictUtf8(): Transform {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let offset = 0;
  let lines = 1;
  let first = true;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      let bytes = chunk;
      if (first && bytes.subarray(0, 3).equals(UTF8_BOM)) bytes = bytes.subarray(3);
      first = false;
      try {
        decoder.decode(bytes, { stream: true });
      } catch {
        const bad = firstInvalidUtf8Byte(bytes);
        const valid = bytes.subarray(0, bad);
        for (const byte of valid) if (byte === 0x0a) lines += 1;
        callback(
          new DatasetFormatError(
            `the dataset is not valid UTF-8 text: invalid bytes on line ${lines} (byte ${offset + bad} of the file); save it as UTF-8`,
          ),
        );
        return;
      }
      for (const byte of bytes) if (byte === 0x0a) lines += 1;
      offset += chunk.length;
      callback(null, bytes);
    },
    flush(callback) {
      try {
        decoder.decode();
        callback();
      } catch {
        callback(
          new DatasetFormatError(
            `the dataset is not valid UTF-8 text: it ends inside a character (line ${lines})`,
          ),
        );
      }
    },
  });
}

/** Streams the elements of a top-level JSON array. A syntax error ends the stream with a DatasetFormatError. */
export async function* readJsonArray(stream: Readable, fields?: FieldMapping): AsyncGenerator<DatasetItem> {
  // stream-json emits one element at a time, so memory holds one row, not the file.
  try {
    // pipeline() carries a parse error from any stage to the last one, where the loop below sees it.
    const elements = pipeline(stream, strictUtf8(), parser(), streamArray(), () => undefined);
    try {
      for await (const item of elements as AsyncIterable<{ key: number; value: unknown }>) {
        yield validateRow(item.value, item.key, fields);
      }
    } catch (error) {
      if (error instanceof DatasetFormatError) throw error;
      throw new DatasetFormatError(
        `the dataset is not a valid JSON array of rows: ${(error as Error).message}`,
      );
    } finally {
      elements.destroy();
    }
  } finally {
    // Also when the reader fails or its consumer stops early: no file handle is left for the garbage collector.
    stream.destroy();
  }
}

/**
 * Reads a Parquet file one row group at a time (columns question, context, answers|answer, optional id, or as
 * mapped). Given an `AsyncBuffer` (byte ranges read on demand) only the footer and one row group's columns are
 * ever in memory. Given a `piece`, only its row groups are read, and rows are numbered from the piece's first.
 */
export async function* readParquet(
  file: Uint8Array | AsyncBuffer,
  fields?: FieldMapping,
  piece?: ParquetPiece,
): AsyncGenerator<DatasetItem> {
  const { parquetReadObjects } = await import('hyparquet');
  const { buffer, metadata } = await parquetFooter(file);
  const groups = rowGroupSizes(metadata);
  const range = piece === undefined ? { rowStart: 0, rowEnd: Infinity } : pieceRowRange(groups, piece);
  if (typeof range === 'string') throw new DatasetFormatError(range);
  let rowStart = 0;
  for (const group of groups) {
    const rowEnd = rowStart + group.rows;
    if (rowStart >= range.rowStart && rowEnd <= range.rowEnd) {
      const rows = await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd });
      for (let offset = 0; offset < rows.length; offset += 1) {
        // A missing id defaults to the file's row number, as when the file is read whole.
        const item = validateRow(rows[offset], rowStart + offset, fields);
        yield range.rowStart === 0 ? item : withRowIndex(item, rowStart - range.rowStart + offset);
      }
    }
    rowStart = rowEnd;
  }
}

function withRowIndex(item: DatasetItem, rowIndex: number): DatasetItem {
  return item.ok ? { ok: true, row: { ...item.row, rowIndex } } : { ok: false, error: { ...item.error, rowIndex } };
}

/** A Parquet file's footer, read through the byte-range view (or from the bytes); a bad file is a format error. */
async function parquetFooter(file: Uint8Array | AsyncBuffer): Promise<{ buffer: AsyncBuffer; metadata: FileMetaData }> {
  const { parquetMetadataAsync } = await import('hyparquet');
  const buffer: AsyncBuffer =
    file instanceof Uint8Array
      ? (file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer)
      : file;
  try {
    return { buffer, metadata: await parquetMetadataAsync(buffer) };
  } catch (error) {
    throw new DatasetFormatError(`the dataset is not a valid Parquet file: ${(error as Error).message}`);
  }
}

/** The row groups of a Parquet file (rows and compressed bytes each), from its footer only, to plan pieces. */
export async function parquetRowGroups(file: AsyncBuffer): Promise<RowGroupSize[]> {
  return rowGroupSizes((await parquetFooter(file)).metadata);
}

/** The column names of a Parquet file, from its footer only. */
export async function parquetColumnNames(file: AsyncBuffer): Promise<string[]> {
  const { parquetMetadataAsync, parquetSchema } = await import('hyparquet');
  let metadata;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (error) {
    throw new DatasetFormatError(`not a valid Parquet file: ${(error as Error).message}`);
  }
  return parquetSchema(metadata).children.map((child) => child.element.name);
}

/** A byte-range view of a stored object for the Parquet reader (`AsyncBuffer`): nothing is read until asked. */
export async function blobAsyncBuffer(store: BlobStore, key: string): Promise<AsyncBuffer> {
  const { size } = await store.stat(key);
  return {
    byteLength: size,
    slice: async (start: number, end?: number): Promise<ArrayBuffer> => {
      const bytes = await store.getRange(key, start, end ?? size);
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    },
  };
}

export interface DatasetSource {
  stream(): Promise<Readable>;
  bytes(): Promise<Uint8Array>;
  /** Byte-range access for Parquet; without it a Parquet file is read whole with `bytes()`. */
  file?(): Promise<AsyncBuffer>;
}

/** A dataset file in a blob store: streamed for JSON, read by byte ranges for Parquet. */
export function blobDatasetSource(store: BlobStore, key: string): DatasetSource {
  return {
    stream: () => store.getStream(key),
    bytes: () => store.get(key),
    file: () => blobAsyncBuffer(store, key),
  };
}

/** Reads a dataset file's rows in order; `piece` (Parquet only) reads some of its row groups, numbered from 0. */
export async function* readDataset(
  source: DatasetSource,
  format: DatasetFormat,
  fields?: FieldMapping,
  piece?: ParquetPiece,
): AsyncGenerator<DatasetItem> {
  if (piece !== undefined && format !== 'parquet') throw new Error(`a ${format} dataset cannot be read in row-group pieces`);
  if (format === 'jsonl') yield* readJsonLines(await source.stream(), fields);
  else if (format === 'json') yield* readJsonArray(await source.stream(), fields);
  else yield* readParquet(source.file === undefined ? await source.bytes() : await source.file(), fields, piece);
}

/**
 * The row numbers a dataset file spans: its last row's number + 1, as `readDataset` numbers rows (blank JSONL
 * lines are numbered but yield nothing, so a trailing run of them spans nothing). Lets shards be indexed in
 * parallel into disjoint row ranges that give the same row numbers as reading them one after another. Parquet
 * reads only the footer; JSONL is streamed line by line without parsing; a JSON array is streamed and parsed.
 */
export async function datasetRowSpan(
  source: DatasetSource,
  format: DatasetFormat,
  fields?: FieldMapping,
  piece?: ParquetPiece,
): Promise<number> {
  if (format === 'parquet') {
    const { metadata } = await parquetFooter(source.file === undefined ? await source.bytes() : await source.file());
    const groups = rowGroupSizes(metadata);
    if (piece === undefined) return groups.reduce((sum, group) => sum + group.rows, 0);
    const range = pieceRowRange(groups, piece);
    if (typeof range === 'string') throw new DatasetFormatError(range);
    return range.rowEnd - range.rowStart;
  }
  if (piece !== undefined) throw new Error(`a ${format} dataset cannot be read in row-group pieces`);
  let span = 0;
  if (format === 'json') {
    for await (const item of readJsonArray(await source.stream(), fields))
      span = (item.ok ? item.row.rowIndex : item.error.rowIndex) + 1;
    return span;
  }
  const stream = await source.stream();
  try {
    let line = 0;
    for await (const text of utf8Lines(stream)) {
      line += 1;
      if ('problem' in text || text.text.trim() !== '') span = line;
    }
  } finally {
    stream.destroy();
  }
  return span;
}
