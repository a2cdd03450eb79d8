/**
 * `rememr1 train-report RUN [--out DIR]`: the curves of a training run's per-step metrics
 * (training/{run}/metrics/*.json in the blob store) as SVG charts, plus the metrics as JSON Lines.
 *
 * Charts are drawn by Apache ECharts' server-side SVG renderer: no browser, canvas or native module, so it
 * works offline in plain Node. A chart whose series have no values in this run (e.g. rollout curves of a
 * supervised run, dev scores without an evaluation) is left out.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import * as echarts from 'echarts';
import { metricLabel } from '../lib/agent/metrics';
import { createBlobStore, trainingMetricsPrefix, type BlobStore } from '../lib/storage';
import { loadConfig } from '../temporal.config';
import type { StepMetrics } from '../workflows/training';
import { runIdArgument } from './main';

/** A metric's value at one step, or null when the step did not record it. */
type Pick = (metrics: StepMetrics) => number | null | undefined;

interface ChartSpec {
  file: string;
  title: string;
  yName: string;
  series: { name: string; pick: Pick }[];
  /** Stacked bars instead of lines (time per phase). */
  stacked?: boolean;
}

const CHARTS: readonly ChartSpec[] = [
  {
    file: 'reward',
    title: 'Rollout reward and accuracy',
    yName: 'mean per rollout',
    series: [
      { name: 'outcome reward', pick: (m) => m.rollouts?.reward.outcome },
      { name: 'accuracy', pick: (m) => m.rollouts?.accuracy },
      { name: 'memory-turn reward', pick: (m) => m.rollouts?.reward.memoryTurn },
      { name: 'final-turn reward', pick: (m) => m.rollouts?.reward.finalTurn },
    ],
  },
  { file: 'loss', title: 'Loss', yName: 'loss', series: [{ name: 'loss', pick: (m) => m.update?.loss }] },
  {
    file: 'kl',
    title: 'KL to the reference policy',
    yName: 'KL',
    series: [
      { name: 'KL (k3)', pick: (m) => m.update?.kl },
      { name: 'approx. KL to the sampling policy', pick: (m) => m.update?.approxKl },
    ],
  },
  {
    file: 'clip-fraction',
    title: 'Clip fraction',
    yName: 'fraction of tokens',
    series: [{ name: 'clip fraction', pick: (m) => m.update?.clipFraction }],
  },
  {
    file: 'entropy',
    title: 'Policy entropy',
    yName: 'nats per token',
    series: [{ name: 'entropy', pick: (m) => m.update?.entropy }],
  },
  {
    file: 'callback-rate',
    title: 'Callback rate',
    yName: 'recall queries per memory turn',
    series: [{ name: 'callback rate', pick: (m) => m.rollouts?.callbackRate }],
  },
  {
    file: 'response-lengths',
    title: 'Response lengths',
    yName: 'generated tokens per turn',
    series: [
      { name: 'memory turn (mean)', pick: (m) => m.rollouts?.responseTokens.memoryTurn },
      { name: 'final turn (mean)', pick: (m) => m.rollouts?.responseTokens.finalTurn },
      { name: 'longest', pick: (m) => m.rollouts?.responseTokens.max },
    ],
  },
  {
    file: 'dev',
    title: 'Dev split',
    yName: 'score',
    series: [
      { name: 'exact match', pick: (m) => m.evaluation?.exactMatch },
      { name: 'F1', pick: (m) => m.evaluation?.f1 },
    ],
  },
  {
    file: 'time',
    title: 'Time per phase',
    yName: 'seconds',
    stacked: true,
    series: (['rollouts', 'scoring', 'update', 'checkpoint', 'export', 'evaluation'] as const).map(
      (phase) => ({
        name: phase,
        pick: (m: StepMetrics) => m.seconds?.[phase],
      }),
    ),
  },
];

export class NoTrainingMetricsError extends Error {
  constructor(run: string) {
    super(
      `training run ${run} has no recorded steps in the blob store (is the run id right, and has its first step finished?)`,
    );
    this.name = 'NoTrainingMetricsError';
  }
}

/** Every recorded step of `run`, in step order; steps that are not objects with a numeric `step` are refused. */
export async function readStepMetrics(store: BlobStore, run: string): Promise<StepMetrics[]> {
  const steps: StepMetrics[] = [];
  for await (const key of store.list(trainingMetricsPrefix(run))) {
    if (!key.endsWith('.json')) continue;
    const value = await store.getJson<unknown>(key);
    if (
      typeof value !== 'object' ||
      value === null ||
      typeof (value as { step?: unknown }).step !== 'number'
    ) {
      throw new Error(`${key} is not a step's metrics (no numeric "step")`);
    }
    steps.push(value as StepMetrics);
  }
  return steps.sort((a, b) => a.step - b.step);
}

function finite(value: number | null | undefined): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** One chart as an SVG document, or null when none of its series has a value. */
export function renderChart(spec: ChartSpec, steps: readonly StepMetrics[], run: string): string | null {
  const series = spec.series
    .map(({ name, pick }) => ({
      name,
      data: steps
        .map((m) => [m.step, pick(m)] as const)
        .filter((p): p is readonly [number, number] => finite(p[1])),
    }))
    .filter((s) => s.data.length > 0);
  if (series.length === 0) return null;
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: 800, height: 450 });
  try {
    chart.setOption({
      animation: false,
      backgroundColor: '#ffffff',
      title: { text: spec.title, subtext: `training run ${run}`, left: 'center' },
      legend: { bottom: 0, itemGap: 20 },
      grid: { left: 70, right: 30, top: 70, bottom: 70 },
      xAxis: spec.stacked
        ? {
            type: 'category',
            name: 'step',
            nameLocation: 'middle',
            nameGap: 28,
            data: steps.map((m) => String(m.step)),
          }
        : {
            type: 'value',
            name: 'step',
            nameLocation: 'middle',
            nameGap: 28,
            minInterval: 1,
            min: 'dataMin',
            max: 'dataMax',
          },
      yAxis: { type: 'value', name: spec.yName, scale: !spec.stacked },
      series: series.map((s) =>
        spec.stacked
          ? {
              name: s.name,
              type: 'bar',
              stack: 'phases',
              data: steps.map((m) => s.data.find(([step]) => step === m.step)?.[1] ?? 0),
            }
          : {
              name: s.name,
              type: 'line',
              showSymbol: true,
              symbolSize: 6,
              data: s.data.map(([step, value]) => [step, value]),
            },
      ),
    });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

export interface TrainingReport {
  steps: number;
  /** Paths of the files written: the charts, then metrics.jsonl. */
  files: string[];
}

/** Writes `{out}/{chart}.svg` for each chart with data, and `{out}/metrics.jsonl`. */
export async function writeTrainingReport(
  store: BlobStore,
  run: string,
  out: string,
): Promise<TrainingReport> {
  const steps = await readStepMetrics(store, run);
  if (steps.length === 0) throw new NoTrainingMetricsError(run);
  fs.mkdirSync(out, { recursive: true });
  const files: string[] = [];
  // The dev curves name the metrics mode that scored them, as the results tables do.
  const devMode = steps.find((m) => m.evaluation)?.evaluation?.metricsMode;
  const devNames: Record<string, string> = {
    'exact match': metricLabel('EM', devMode),
    F1: metricLabel('F1', devMode),
  };
  for (const chart of CHARTS) {
    const spec =
      chart.file === 'dev'
        ? {
            ...chart,
            series: chart.series.map((series) => ({ ...series, name: devNames[series.name] ?? series.name })),
          }
        : chart;
    const svg = renderChart(spec, steps, run);
    if (svg === null) continue;
    const file = path.join(out, `${spec.file}.svg`);
    fs.writeFileSync(file, svg);
    files.push(file);
  }
  const jsonl = path.join(out, 'metrics.jsonl');
  fs.writeFileSync(jsonl, steps.map((m) => JSON.stringify(m)).join('\n') + '\n');
  files.push(jsonl);
  return { steps: steps.length, files };
}

export function registerReportCommand(program: Command): void {
  program
    .command('train-report')
    .showHelpAfterError(false)
    .argument('<run>', 'training run id', runIdArgument)
    .description("plot a training run's per-step metrics (SVG charts) and write them as JSON Lines")
    .option('--out <dir>', 'output folder (default: train-report-RUN)')
    .action(async (run: string, options: { out?: string }) => {
      const config = loadConfig();
      const store = createBlobStore(config.storage);
      try {
        const out = path.resolve(options.out ?? `train-report-${run}`);
        const report = await writeTrainingReport(store, run, out);
        console.log(
          `${report.steps} steps of ${run}: ${report.files.length - 1} charts and metrics.jsonl in ${out}`,
        );
        for (const file of report.files) console.log(`  ${path.basename(file)}`);
      } finally {
        await store.close();
      }
    });
}
