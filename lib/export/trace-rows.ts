/**
 * The exported memory trace: one row per memory step of every episode (what the agent read, wrote and recalled),
 * for analysis next to the result rows. Pure functions, no I/O. Stable like the result schema: columns are only
 * ever appended, and `TRACE_SCHEMA_VERSION` goes up when one is.
 */
import type { SchemaElement } from 'hyparquet';
import type { EpisodeResult, MemoryStepRecord } from '../episode/types';
import { columnDataOf, parquetSchemaOf, type ColumnSpec } from './parquet-columns';
import type { ExportFormat } from './result-rows';

export const TRACE_SCHEMA_VERSION = 1;

export interface TraceRow {
  run_id: string;
  episode_id: string;
  row_index: number;
  /** 0-based memory step (the chunk read). */
  step: number;
  /** The memory after the step; null when none exists yet. */
  memory: string | null;
  /** The callback query written at this step, if any. */
  recall_query: string | null;
  /** What the query retrieved (shown at the next step): the steps, texts and scores of the recalled memories. */
  recalled_steps: number[];
  recalled_texts: string[];
  recalled_scores: number[];
  format_valid: boolean;
  /** Why the step's response was not well formed (empty when it was). */
  issues: string[];
  /** The model's raw response at this step. */
  response: string;
  generated_tokens: number;
  prompt_tokens: number;
  finish_reason: string;
  /** The policy version that sampled the step; null = the worker's configured model (or not recorded). */
  policy_version: string | null;
}

/** The columns in file order. Append only. */
export const TRACE_COLUMNS: readonly ColumnSpec<TraceRow>[] = [
  { name: 'run_id', kind: 'string', nullable: false },
  { name: 'episode_id', kind: 'string', nullable: false },
  { name: 'row_index', kind: 'int64', nullable: false },
  { name: 'step', kind: 'int32', nullable: false },
  { name: 'memory', kind: 'string', nullable: true },
  { name: 'recall_query', kind: 'string', nullable: true },
  { name: 'recalled_steps', kind: 'int32-list', nullable: false },
  { name: 'recalled_texts', kind: 'string-list', nullable: false },
  { name: 'recalled_scores', kind: 'double-list', nullable: false },
  { name: 'format_valid', kind: 'boolean', nullable: false },
  { name: 'issues', kind: 'string-list', nullable: false },
  { name: 'response', kind: 'string', nullable: false },
  { name: 'generated_tokens', kind: 'int32', nullable: false },
  { name: 'prompt_tokens', kind: 'int32', nullable: false },
  { name: 'finish_reason', kind: 'string', nullable: false },
  { name: 'policy_version', kind: 'string', nullable: true },
];

/** The trace row of one stored memory step of the episode whose result is `result`. */
export function toTraceRow(result: EpisodeResult, record: MemoryStepRecord): TraceRow {
  return {
    run_id: result.runId,
    episode_id: result.episodeId,
    row_index: result.rowIndex,
    step: record.step,
    memory: record.memory,
    recall_query: record.recallQuery,
    recalled_steps: record.recalled.map((hit) => hit.step),
    recalled_texts: record.recalled.map((hit) => hit.text),
    recalled_scores: record.recalled.map((hit) => hit.score),
    format_valid: record.formatValid,
    issues: record.issues,
    response: record.response,
    generated_tokens: record.tokenIds.length,
    prompt_tokens: record.promptTokens,
    finish_reason: record.finishReason,
    policy_version: record.sampling?.policyVersion ?? null,
  };
}

export function traceParquetSchema(): SchemaElement[] {
  return parquetSchemaOf(TRACE_COLUMNS);
}

export function traceColumnData(rows: readonly TraceRow[]): Array<{ name: string; data: unknown[] }> {
  return columnDataOf(TRACE_COLUMNS, rows);
}

/** Trace shards live beside the result shards: traces/part-00000.parquet, … */
export const TRACES_FOLDER = 'traces';

export function traceShardFileName(index: number, format: ExportFormat): string {
  return `${TRACES_FOLDER}/part-${String(index).padStart(5, '0')}.${format}`;
}

export const TRACE_SHARD_FILE_PATTERN = /^traces\/part-\d{5,}\.(parquet|jsonl)$/;
