/**
 * The replication table: accuracy against document length for each variant, over evaluation seeds.
 * Pure: scores in, Markdown and SVG text out.
 */
import * as echarts from 'echarts';
import type { LengthScores } from '../episode/summary';

/** One variant's scores by length for one evaluation seed. */
export interface VariantRun {
  seed: number;
  byLength: LengthScores[];
}

export interface CellSummary {
  chunks: number;
  episodes: number;
  /** Mean over seeds of the exact-match rate. */
  exactMatch: number;
  exactMatchMin: number;
  exactMatchMax: number;
  f1: number;
  recallQueries: number;
}

export interface VariantSummary {
  id: string;
  label: string;
  seeds: number;
  cells: CellSummary[];
}

const mean = (values: readonly number[]): number =>
  values.reduce((sum, value) => sum + value, 0) / values.length;

/**
 * Per length: the mean over seeds of EM, F1 and recall queries per episode, and EM's range over seeds
 * (min … max). Lengths missing from some seed's run are left out.
 */
export function summarizeVariant(id: string, label: string, runs: readonly VariantRun[]): VariantSummary {
  if (runs.length === 0) throw new Error(`variant ${id} has no runs`);
  const lengths = runs[0].byLength
    .map((line) => line.chunks)
    .filter((chunks) => runs.every((run) => run.byLength.some((line) => line.chunks === chunks)));
  const cells = lengths.map((chunks) => {
    const lines = runs.map((run) => run.byLength.find((line) => line.chunks === chunks)!);
    const em = lines.map((line) => line.exactMatch);
    return {
      chunks,
      episodes: lines[0].episodes,
      exactMatch: mean(em),
      exactMatchMin: Math.min(...em),
      exactMatchMax: Math.max(...em),
      f1: mean(lines.map((line) => line.f1)),
      recallQueries: mean(lines.map((line) => line.recallQueries)),
    };
  });
  return { id, label, seeds: runs.length, cells };
}

const percent = (value: number): string => (100 * value).toFixed(1);

function emCell(cell: CellSummary, seeds: number): string {
  return seeds > 1
    ? `${percent(cell.exactMatch)} (${percent(cell.exactMatchMin)}–${percent(cell.exactMatchMax)})`
    : percent(cell.exactMatch);
}

/** Two Markdown tables (EM with its range over seeds, then F1), one row per variant, one column per length. */
export function replicationMarkdown(summaries: readonly VariantSummary[], metricName: string): string {
  const lengths = [...new Set(summaries.flatMap((summary) => summary.cells.map((cell) => cell.chunks)))].sort(
    (a, b) => a - b,
  );
  const header = (title: string): string[] => [
    `| ${title} | ${lengths.map((chunks) => `${chunks} chunks`).join(' | ')} |`,
    `| --- |${lengths.map(() => ' --- |').join('')}`,
  ];
  const row = (summary: VariantSummary, value: (cell: CellSummary) => string): string =>
    `| ${summary.label} | ${lengths
      .map((chunks) => {
        const cell = summary.cells.find((entry) => entry.chunks === chunks);
        return cell === undefined ? '–' : value(cell);
      })
      .join(' | ')} |`;
  return [
    ...header(`EM % (${metricName}), mean (range) over seeds`),
    ...summaries.map((summary) => row(summary, (cell) => emCell(cell, summary.seeds))),
    '',
    ...header(`F1 % (${metricName}), mean over seeds`),
    ...summaries.map((summary) => row(summary, (cell) => percent(cell.f1))),
    '',
  ].join('\n');
}

/** EM against document length (log₂ axis), one line per variant, as an SVG document. */
export function replicationChart(summaries: readonly VariantSummary[], title: string): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: 800, height: 480 });
  try {
    chart.setOption({
      animation: false,
      backgroundColor: '#ffffff',
      title: { text: title, left: 'center' },
      legend: { bottom: 0, itemGap: 16 },
      grid: { left: 70, right: 30, top: 60, bottom: 90 },
      xAxis: {
        type: 'log',
        logBase: 2,
        name: 'document length (chunks)',
        nameLocation: 'middle',
        nameGap: 28,
      },
      yAxis: { type: 'value', name: 'exact match %', min: 0, max: 100 },
      series: summaries.map((summary) => ({
        name: summary.label,
        type: 'line',
        showSymbol: true,
        symbolSize: 6,
        data: summary.cells.map((cell) => [cell.chunks, Number(percent(cell.exactMatch))]),
      })),
    });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}
