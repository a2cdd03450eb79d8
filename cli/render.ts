/** Tables for the terminal. */
import Table from 'cli-table3';
import { metricLabel } from '../lib/agent/metrics';
import type { BatchSummary } from '../lib/episode/summary';
import type { EpisodeResult } from '../lib/episode/types';

const percent = (value: number): string => `${(value * 100).toFixed(1)}`;

/** Colours only on a terminal; logs and pipes get plain text. */
const style = process.stdout.isTTY ? undefined : { head: [], border: [] };

export function summaryTable(summary: BatchSummary): string {
  const metrics = (['EM', 'F1', 'sub-EM'] as const).map((metric) => `${metricLabel(metric, summary.metricsMode)} %`);
  const table = new Table({ head: ['documents', 'episodes', 'scored', ...metrics], style });
  for (const row of summary.byDocumentTokens) {
    table.push([`${row.bucket} tokens`, row.episodes, row.scored, percent(row.exactMatch), percent(row.f1), percent(row.subExactMatch)]);
  }
  const o = summary.overall;
  table.push(['all', o.episodes, o.scored, percent(o.exactMatch), percent(o.f1), percent(o.subExactMatch)]);
  const notes = [
    `mean chunks per episode ${summary.meanChunks.toFixed(1)}, callback queries per episode ${summary.recallQueriesPerEpisode.toFixed(2)}`,
    `malformed rows skipped ${summary.invalidRows}, failed episodes ${summary.failedEpisodes}`,
  ];
  return `${table.toString()}\n${notes.join('\n')}`;
}

export function answersTable(results: EpisodeResult[], limit: number): string {
  // The metric columns name the metrics mode on a second line, e.g. "EM" over "(hotpotqa-official)".
  const mode = results[0]?.metricsMode;
  const metrics = (['EM', 'F1'] as const).map((metric) => metricLabel(metric, mode).replace(' ', '\n'));
  const width = Math.max(...metrics.flatMap((label) => label.split('\n').map((line) => line.length))) + 2;
  const colWidths = [6, Math.max(30, 55 - 2 * width), 24, 20, width, width];
  const table = new Table({ head: ['row', 'question', 'answer', 'gold', ...metrics], colWidths, wordWrap: true, style });
  for (const result of results.slice(0, limit)) {
    table.push([
      result.rowIndex,
      result.question,
      result.answer ?? '(no \\boxed{})',
      result.answers.join(' | '),
      result.scores ? result.scores.exactMatch.toFixed(0) : '-',
      result.scores ? result.scores.f1.toFixed(2) : '-',
    ]);
  }
  const more = results.length > limit ? `\n… ${results.length - limit} more rows (rememr1 results RUN --jsonl)` : '';
  return table.toString() + more;
}

/** A duration for people: 42s, 3m07s, 2h05m. */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
