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
  return renderSvg(800, 480, title, {
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
}

/** One training run's curve points: its step numbers and the values recorded at them. */
export interface TrainingCurve {
  label: string;
  /** Per step: the loss of the update and the dev EM when the step evaluated (else null). */
  steps: Array<{ step: number; loss: number | null; devExactMatch: number | null }>;
}

/** Each curve's points at x = its step plus the last steps of the runs before it. */
export function layEndToEnd(
  curves: readonly TrainingCurve[],
): Array<{ label: string; points: Array<TrainingCurve['steps'][number] & { x: number }> }> {
  let offset = 0;
  return curves.map((curve) => {
    const points = curve.steps.map((point) => ({ ...point, x: offset + point.step }));
    offset += Math.max(0, ...curve.steps.map((point) => point.step));
    return { label: curve.label, points };
  });
}

/**
 * Supervised loss and dev EM against training step, runs laid end to end (a run that starts from another's last
 * step continues its x axis), as an SVG document with two panels.
 */
export function trainingCurvesChart(curves: readonly TrainingCurve[], title: string): string {
  const placed = layEndToEnd(curves);
  // Both panels on one step axis, even where a run draws nothing in one of them.
  const lastStep = Math.max(1, ...placed.flatMap((curve) => curve.points.map((point) => point.x)));
  return renderSvg(800, 640, title, {
    grid: [
      { left: 70, right: 30, top: 60, height: 220 },
      { left: 70, right: 30, top: 340, height: 200 },
    ],
    xAxis: [
      {
        type: 'value',
        gridIndex: 0,
        max: lastStep,
        name: 'training step',
        nameLocation: 'middle',
        nameGap: 26,
      },
      {
        type: 'value',
        gridIndex: 1,
        max: lastStep,
        name: 'training step',
        nameLocation: 'middle',
        nameGap: 26,
      },
    ],
    yAxis: [
      {
        type: 'log',
        gridIndex: 0,
        name: 'supervised loss per token (log)',
        axisLabel: { formatter: (value: number) => String(Number(value.toPrecision(1))) },
      },
      { type: 'value', gridIndex: 1, name: 'dev exact match %', min: 0, max: 100 },
    ],
    series: placed.flatMap(({ label, points }) => [
      {
        name: label,
        type: 'line',
        xAxisIndex: 0,
        yAxisIndex: 0,
        showSymbol: false,
        data: points
          .filter((point) => point.loss !== null && point.loss > 0)
          .map((point) => [point.x, point.loss]),
      },
      {
        name: label,
        type: 'line',
        xAxisIndex: 1,
        yAxisIndex: 1,
        showSymbol: true,
        symbolSize: 5,
        data: points
          .filter((point) => point.devExactMatch !== null)
          .map((point) => [point.x, Number(percent(point.devExactMatch ?? 0))]),
      },
    ]),
  });
}

/** An ECharts option rendered server-side to an SVG document, with the project's common frame (title, legend). */
function renderSvg(width: number, height: number, title: string, option: echarts.EChartsOption): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    chart.setOption({
      animation: false,
      backgroundColor: '#ffffff',
      title: { text: title, left: 'center' },
      legend: { bottom: 0, itemGap: 16 },
      ...option,
    });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}
