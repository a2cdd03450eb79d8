/**
 * The exported result row and its Parquet schema: pure functions, no I/O.
 *
 * The schema is stable: columns are only ever added at the end, never renamed, retyped or removed, and
 * `RESULT_SCHEMA_VERSION` goes up when one is added. Names are snake_case, as pandas, DuckDB and Spark users
 * expect. Nullable columns are null where the value is unknown (no gold answers, no final answer record).
 */
import type { SchemaElement } from 'hyparquet';
import type { AnswerRecord, EpisodeResult } from '../episode/types';
import { columnDataOf, parquetSchemaOf, type ColumnSpec } from './parquet-columns';

export const RESULT_SCHEMA_VERSION = 1;

export interface ExportRow {
  run_id: string;
  episode_id: string;
  /** 0-based row of the dataset the episode answered. */
  row_index: number;
  /** The dataset row's own id (or `row-N`). */
  id: string;
  question: string;
  answers: string[];
  /** The extracted answer; null when the final response had none. */
  prediction: string | null;
  /** The model's raw final response. */
  response: string | null;
  exact_match: number | null;
  f1: number | null;
  sub_exact_match: number | null;
  chunk_count: number;
  document_tokens: number;
  /** Tokens generated for the final answer. */
  answer_tokens: number | null;
  /** Tokens of the final prompt. */
  answer_prompt_tokens: number | null;
  format_valid_steps: number;
  /** Callback (recall) queries the episode wrote. */
  callback_count: number;
  /** The policy version that answered; null = the worker's configured model. */
  policy_version: string | null;
  /** The model the run was bound to (a folder or `policy version V`); null when the run has no binding. */
  model: string | null;
}

/** What the run id was bound to when the batch started (runs/{run}/batch/run.json), as far as export needs it. */
export interface RunBindingInfo {
  model?: string;
  settings?: { policyVersion?: string };
}

/**
 * The row of one episode from its stored result, its final answer record (if kept) and the run's binding;
 * `datasetId` stands in for the row's id in results written before they kept it.
 */
export function toExportRow(
  result: EpisodeResult,
  answer: AnswerRecord | undefined,
  binding: RunBindingInfo | undefined,
  datasetId?: string,
): ExportRow {
  const policyVersion = answer?.sampling?.policyVersion ?? binding?.settings?.policyVersion ?? null;
  return {
    run_id: result.runId,
    episode_id: result.episodeId,
    row_index: result.rowIndex,
    id: result.id ?? datasetId ?? `row-${result.rowIndex}`,
    question: result.question,
    answers: result.answers,
    prediction: result.answer,
    response: answer?.response ?? null,
    exact_match: result.scores?.exactMatch ?? null,
    f1: result.scores?.f1 ?? null,
    sub_exact_match: result.scores?.subExactMatch ?? null,
    chunk_count: result.chunkCount,
    document_tokens: result.documentTokens,
    answer_tokens: answer === undefined ? null : answer.tokenIds.length,
    answer_prompt_tokens: answer === undefined ? null : answer.promptTokens,
    format_valid_steps: result.formatValidSteps,
    callback_count: result.recallQueries,
    policy_version: policyVersion,
    model: binding?.model ?? null,
  };
}

/** The columns in file order. Append only (see the module comment). */
export const RESULT_COLUMNS: readonly ColumnSpec<ExportRow>[] = [
  { name: 'run_id', kind: 'string', nullable: false },
  { name: 'episode_id', kind: 'string', nullable: false },
  { name: 'row_index', kind: 'int64', nullable: false },
  { name: 'id', kind: 'string', nullable: false },
  { name: 'question', kind: 'string', nullable: false },
  { name: 'answers', kind: 'string-list', nullable: false },
  { name: 'prediction', kind: 'string', nullable: true },
  { name: 'response', kind: 'string', nullable: true },
  { name: 'exact_match', kind: 'double', nullable: true },
  { name: 'f1', kind: 'double', nullable: true },
  { name: 'sub_exact_match', kind: 'double', nullable: true },
  { name: 'chunk_count', kind: 'int32', nullable: false },
  { name: 'document_tokens', kind: 'int32', nullable: false },
  { name: 'answer_tokens', kind: 'int32', nullable: true },
  { name: 'answer_prompt_tokens', kind: 'int32', nullable: true },
  { name: 'format_valid_steps', kind: 'int32', nullable: false },
  { name: 'callback_count', kind: 'int32', nullable: false },
  { name: 'policy_version', kind: 'string', nullable: true },
  { name: 'model', kind: 'string', nullable: true },
];

/** The Parquet schema of `RESULT_COLUMNS`. */
export function resultParquetSchema(): SchemaElement[] {
  return parquetSchemaOf(RESULT_COLUMNS);
}

/** Column-major data of result rows for the Parquet writer. */
export function resultColumnData(rows: readonly ExportRow[]): Array<{ name: string; data: unknown[] }> {
  return columnDataOf(RESULT_COLUMNS, rows);
}

/** Shard file names sort in shard order: part-00000.parquet, part-00001.parquet, … */
export const EXPORT_FORMATS = ['parquet', 'jsonl'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export function shardFileName(index: number, format: ExportFormat): string {
  return `part-${String(index).padStart(5, '0')}.${format}`;
}

export const SHARD_FILE_PATTERN = /^part-\d{5,}\.(parquet|jsonl)$/;
