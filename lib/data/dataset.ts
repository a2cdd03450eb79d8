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
import * as readline from 'node:readline';
import { pipeline } from 'node:stream';
// Static imports: stream-json is CommonJS whose exports are properties of a function, which a native dynamic
// import() (what tsx leaves in place) exposes only as `default`; a static import compiles to require() everywhere.
import { parser } from 'stream-json';
import { streamArray } from 'stream-json/streamers/StreamArray';
import { z } from 'zod';

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
  throw new DatasetFormatError(`cannot tell the format of dataset "${name}": expected a .jsonl, .json or .parquet file`);
}

const answerText = z.string().max(DATASET_LIMITS.answerChars, `an answer is longer than ${DATASET_LIMITS.answerChars} characters`);

const rowSchema = z
  .object({
    id: z.union([z.string(), z.number()]).optional(),
    _id: z.union([z.string(), z.number()]).optional(),
    question: z
      .string({ error: 'field "question" must be a string' })
      .trim()
      .min(1, 'field "question" is empty')
      .max(DATASET_LIMITS.questionChars, `field "question" is longer than ${DATASET_LIMITS.questionChars} characters`),
    context: z
      .string({ error: 'field "context" must be a string (the document)' })
      .max(DATASET_LIMITS.contextChars, 'field "context" is larger than 512 MiB')
      .refine((text) => text.trim().length > 0, 'the document ("context") is empty'),
    answers: z.union([answerText, z.array(answerText).max(DATASET_LIMITS.answers)]).optional(),
    answer: answerText.optional(),
  })
  .passthrough();

/** Validates one parsed row; never throws. */
export function validateRow(value: unknown, rowIndex: number): DatasetItem {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: { rowIndex, reason: 'a row must be a JSON object with "question", "context" and "answers"' } };
  }
  const parsed = rowSchema.safeParse(value);
  if (!parsed.success) {
    const reason = parsed.error.issues.map((issue) => issue.message).join('; ');
    return { ok: false, error: { rowIndex, reason } };
  }
  const data = parsed.data;
  const rawAnswers = data.answers ?? data.answer;
  const answers = (Array.isArray(rawAnswers) ? rawAnswers : rawAnswers === undefined ? [] : [rawAnswers])
    .map((answer) => answer.trim())
    .filter((answer) => answer.length > 0);
  const rawId = data.id ?? data._id;
  return {
    ok: true,
    row: {
      rowIndex,
      id: rawId === undefined ? `row-${rowIndex}` : String(rawId),
      question: data.question,
      context: data.context,
      answers,
    },
  };
}

/** Streams JSON Lines; blank lines are skipped but still counted, so row numbers equal line numbers − 1. */
export async function* readJsonLines(stream: Readable): AsyncGenerator<DatasetItem> {
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  let rowIndex = -1;
  try {
    for await (const line of lines) {
      rowIndex += 1;
      if (line.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        yield { ok: false, error: { rowIndex, reason: `line ${rowIndex + 1} is not valid JSON: ${(error as Error).message}` } };
        continue;
      }
      yield validateRow(value, rowIndex);
    }
  } finally {
    // Also when the reader fails or its consumer stops early: no file handle is left for the garbage collector.
    lines.close();
    stream.destroy();
  }
}

/** Streams the elements of a top-level JSON array. A syntax error ends the stream with a DatasetFormatError. */
export async function* readJsonArray(stream: Readable): AsyncGenerator<DatasetItem> {
  // stream-json emits one element at a time, so memory holds one row, not the file.
  try {
    // pipeline() carries a parse error from any stage to the last one, where the loop below sees it.
    const elements = pipeline(stream, parser(), streamArray(), () => undefined);
    try {
      for await (const item of elements as AsyncIterable<{ key: number; value: unknown }>) {
        yield validateRow(item.value, item.key);
      }
    } catch (error) {
      throw new DatasetFormatError(`the dataset is not a valid JSON array of rows: ${(error as Error).message}`);
    } finally {
      elements.destroy();
    }
  } finally {
    // Also when the reader fails or its consumer stops early: no file handle is left for the garbage collector.
    stream.destroy();
  }
}

/** Reads a Parquet file one row group at a time (columns question, context, answers|answer, optional id). */
export async function* readParquet(bytes: Uint8Array): AsyncGenerator<DatasetItem> {
  const { parquetMetadata, parquetReadObjects } = await import('hyparquet');
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let metadata;
  try {
    metadata = parquetMetadata(buffer);
  } catch (error) {
    throw new DatasetFormatError(`the dataset is not a valid Parquet file: ${(error as Error).message}`);
  }
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    const rows = await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd });
    for (let offset = 0; offset < rows.length; offset += 1) yield validateRow(rows[offset], rowStart + offset);
    rowStart = rowEnd;
  }
}

export interface DatasetSource {
  stream(): Promise<Readable>;
  bytes(): Promise<Uint8Array>;
}

export async function* readDataset(source: DatasetSource, format: DatasetFormat): AsyncGenerator<DatasetItem> {
  if (format === 'jsonl') yield* readJsonLines(await source.stream());
  else if (format === 'json') yield* readJsonArray(await source.stream());
  else yield* readParquet(await source.bytes());
}
