/** Aggregates episode result rows into the batch summary: EM / F1 / sub-EM overall and by document length. */
import { DEFAULT_METRICS_MODE, type MetricsMode } from '../agent/metrics';
import type { EpisodeResult } from './types';

export interface MetricTotals {
  episodes: number;
  /** Episodes with gold answers (the metrics average over these). */
  scored: number;
  exactMatch: number;
  f1: number;
  subExactMatch: number;
}

export interface BatchSummary {
  runId: string;
  dataset: string;
  /**
   * The metrics mode of the rows' scores (rows without one are `project`); `mixed` if rows disagree, which a run
   * bound to its settings never produces. Absent in summaries written before it was kept (they are `project`).
   */
  metricsMode?: MetricsMode | 'mixed';
  overall: MetricTotals;
  /** Buckets by document length in tokens, e.g. "≤1K": upper bounds double from 1,024. */
  byDocumentTokens: Array<{ bucket: string; upTo: number } & MetricTotals>;
  invalidRows: number;
  failedEpisodes: number;
  meanChunks: number;
  recallQueriesPerEpisode: number;
}

function emptyTotals(): MetricTotals {
  return { episodes: 0, scored: 0, exactMatch: 0, f1: 0, subExactMatch: 0 };
}

function add(totals: MetricTotals, result: EpisodeResult): void {
  totals.episodes += 1;
  if (!result.scores) return;
  totals.scored += 1;
  totals.exactMatch += result.scores.exactMatch;
  totals.f1 += result.scores.f1;
  totals.subExactMatch += result.scores.subExactMatch;
}

function averaged(totals: MetricTotals): MetricTotals {
  const n = totals.scored || 1;
  return { ...totals, exactMatch: totals.exactMatch / n, f1: totals.f1 / n, subExactMatch: totals.subExactMatch / n };
}

/** The smallest power-of-two multiple of 1,024 tokens that holds `tokens`. */
export function lengthBucket(tokens: number): { bucket: string; upTo: number } {
  let upTo = 1024;
  while (upTo < tokens) upTo *= 2;
  const label = upTo >= 1024 * 1024 ? `${upTo / (1024 * 1024)}M` : `${upTo / 1024}K`;
  return { bucket: `≤${label}`, upTo };
}

/** Streaming aggregation, so a summary of millions of rows holds only the totals. */
export class SummaryBuilder {
  private readonly overall = emptyTotals();
  private readonly buckets = new Map<number, { bucket: string; upTo: number; totals: MetricTotals }>();
  private chunks = 0;
  private recallQueries = 0;
  private metricsMode: MetricsMode | 'mixed' | null = null;

  add(result: EpisodeResult): void {
    const mode = result.metricsMode ?? DEFAULT_METRICS_MODE;
    if (result.scores) this.metricsMode = this.metricsMode === null || this.metricsMode === mode ? mode : 'mixed';
    add(this.overall, result);
    const { bucket, upTo } = lengthBucket(result.documentTokens);
    const entry = this.buckets.get(upTo) ?? { bucket, upTo, totals: emptyTotals() };
    add(entry.totals, result);
    this.buckets.set(upTo, entry);
    this.chunks += result.chunkCount;
    this.recallQueries += result.recallQueries;
  }

  build(meta: { runId: string; dataset: string; invalidRows: number; failedEpisodes: number }): BatchSummary {
    const n = this.overall.episodes || 1;
    return {
      ...meta,
      metricsMode: this.metricsMode ?? DEFAULT_METRICS_MODE,
      overall: averaged(this.overall),
      byDocumentTokens: [...this.buckets.values()]
        .sort((a, b) => a.upTo - b.upTo)
        .map((entry) => ({ bucket: entry.bucket, upTo: entry.upTo, ...averaged(entry.totals) })),
      meanChunks: this.chunks / n,
      recallQueriesPerEpisode: this.recallQueries / n,
    };
  }
}

export interface LengthScores {
  chunks: number;
  documentTokens: number;
  episodes: number;
  exactMatch: number;
  f1: number;
  recallQueries: number;
}

/** Mean EM, F1 and recall queries per episode, by document length in chunks (benchmark tables), shortest first. */
export function scoresByLength(results: readonly EpisodeResult[]): LengthScores[] {
  const groups = new Map<number, EpisodeResult[]>();
  for (const result of results) groups.set(result.chunkCount, [...(groups.get(result.chunkCount) ?? []), result]);
  return [...groups.entries()]
    .sort(([a], [b]) => a - b)
    .map(([chunks, group]) => ({
      chunks,
      documentTokens: Math.round(group.reduce((sum, result) => sum + result.documentTokens, 0) / group.length),
      episodes: group.length,
      exactMatch: group.reduce((sum, result) => sum + (result.scores?.exactMatch ?? 0), 0) / group.length,
      f1: group.reduce((sum, result) => sum + (result.scores?.f1 ?? 0), 0) / group.length,
      recallQueries: group.reduce((sum, result) => sum + result.recallQueries, 0) / group.length,
    }));
}
