/**
 * `train-report`: SVG charts of a run's per-step metrics from a filesystem blob store the test fills, and the
 * schedule spec checks that refuse a spec before anything is created.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NoTrainingMetricsError, writeTrainingReport } from '../../../cli/report';
import { ScheduleSpecError, catchupWindowOf, cronProblem, scheduleSpecOf } from '../../../cli/schedule';
import { FsBlobStore, trainingMetricsKey } from '../../../lib/storage';
import type { StepMetrics } from '../../../workflows/training';
import { tempDir } from '../../support/stack';

function stepMetrics(step: number, withEvaluation: boolean): StepMetrics {
  return {
    step,
    mode: 'grpo',
    policyVersion: `toy.step-${step}`,
    weightsDigest: `digest-${step}`,
    rollouts: {
      groups: 2,
      rollouts: 8,
      sequences: 24,
      accuracy: 0.1 * step,
      reward: {
        outcome: 0.1 * step,
        memoryTurn: 0.05 * step,
        format: 1,
        memoryGain: 0.02,
        callbackGain: 0.01,
        finalTurn: 0.1 * step,
      },
      callbackRate: 0.3 - 0.02 * step,
      responseTokens: { memoryTurn: 20 + step, finalTurn: 6 + step, max: 40 + step },
      uniformOutcomeGroups: 1,
    },
    update: {
      miniBatches: 2,
      tokens: 500,
      loss: 1 / step,
      entropy: 8 - 0.1 * step,
      clipFraction: 0.01 * step,
      kl: 0.001 * step,
      approxKl: 0.0005 * step,
      gradNorm: 0.5,
      learningRate: 1e-4,
    },
    evaluation: withEvaluation ? { exactMatch: 0.05 * step, f1: 0.08 * step, episodes: 6 } : null,
    seconds: {
      rollouts: 3 + step,
      scoring: 0.2,
      update: 2,
      checkpoint: 0.3,
      export: 0.2,
      evaluation: withEvaluation ? 1 : 0,
    },
  };
}

describe('train-report', () => {
  const root = tempDir('train-report-blobs');
  const store = new FsBlobStore({ root });
  afterAll(async () => {
    await store.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('writes an SVG per curve with every step as a data point, and the metrics as JSONL', async () => {
    for (let step = 1; step <= 6; step++)
      await store.putJson(trainingMetricsKey('toy', step), stepMetrics(step, step % 2 === 0));
    const out = tempDir('train-report-out');
    const report = await writeTrainingReport(store, 'toy', out);

    expect(report.steps).toBe(6);
    const names = report.files.map((file) => path.basename(file));
    expect(names).toEqual([
      'reward.svg',
      'loss.svg',
      'kl.svg',
      'clip-fraction.svg',
      'entropy.svg',
      'callback-rate.svg',
      'response-lengths.svg',
      'dev.svg',
      'time.svg',
      'metrics.jsonl',
    ]);
    for (const file of report.files.filter((f) => f.endsWith('.svg'))) {
      const svg = fs.readFileSync(file, 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    }
    // A line chart: one polyline path through 6 points (M + 5 L) and a marker per step.
    const loss = fs.readFileSync(path.join(out, 'loss.svg'), 'utf8');
    expect(loss).toContain('Loss');
    const lines = [...loss.matchAll(/<path d="(M[^"]*)" fill="none"[^>]*stroke-width="2"/g)]
      .map((m) =>
        m[1]
          .slice(1)
          .split('L')
          .map((point) => point.split(' ').map(Number)),
      )
      .filter((points) => points.length === 6);
    expect(lines).toHaveLength(1);
    const [points] = lines;
    // Steps left to right; the loss (1/step) falls, so the line goes down the page (SVG y grows downwards).
    for (let i = 1; i < points.length; i++) {
      expect(points[i][0]).toBeGreaterThan(points[i - 1][0]);
      expect(points[i][1]).toBeGreaterThan(points[i - 1][1]);
    }
    // Four reward series, each with 6 points: at least 24 symbols.
    const reward = fs.readFileSync(path.join(out, 'reward.svg'), 'utf8');
    for (const name of ['outcome reward', 'accuracy', 'memory-turn reward', 'final-turn reward'])
      expect(reward).toContain(name);
    expect((reward.match(/<path d="M[^"]*A/g) ?? []).length).toBeGreaterThanOrEqual(24);
    // Dev scores exist at steps 2, 4 and 6 only.
    // Dev curves name the metrics mode: these metrics were written without one, so they are project scores.
    const dev = fs.readFileSync(path.join(out, 'dev.svg'), 'utf8');
    expect(dev).toContain('EM (project)');
    expect(dev).toContain('F1 (project)');
    // Time per phase: a stacked bar per step and phase with time (6 steps × 5 phases + 3 evaluations).
    const time = fs.readFileSync(path.join(out, 'time.svg'), 'utf8');
    expect((time.match(/<path d="M[^"]*Z"/g) ?? []).length).toBeGreaterThanOrEqual(33);

    const rows = fs
      .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((row) => JSON.parse(row) as StepMetrics);
    expect(rows.map((row) => row.step)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('dev curves of a run scored in the hotpotqa-official mode name it', async () => {
    for (let step = 1; step <= 2; step++) {
      const metrics = stepMetrics(step, true);
      await store.putJson(trainingMetricsKey('official', step), {
        ...metrics,
        evaluation: { ...metrics.evaluation!, metricsMode: 'hotpotqa-official' },
      });
    }
    const out = tempDir('train-report-official');
    await writeTrainingReport(store, 'official', out);
    expect(fs.readFileSync(path.join(out, 'dev.svg'), 'utf8')).toContain('EM (hotpotqa-official)');
  });

  test('a supervised run has no rollout or dev charts', async () => {
    for (let step = 1; step <= 3; step++) {
      await store.putJson(trainingMetricsKey('sft', step), {
        ...stepMetrics(step, false),
        mode: 'sft',
        rollouts: null,
      });
    }
    const report = await writeTrainingReport(store, 'sft', tempDir('train-report-sft'));
    expect(report.files.map((file) => path.basename(file))).toEqual([
      'loss.svg',
      'kl.svg',
      'clip-fraction.svg',
      'entropy.svg',
      'time.svg',
      'metrics.jsonl',
    ]);
  });

  test('a run without metrics is one clear error, and nothing is written', async () => {
    const out = path.join(tempDir('train-report-none'), 'report');
    await expect(writeTrainingReport(store, 'never-ran', out)).rejects.toThrow(NoTrainingMetricsError);
    await expect(writeTrainingReport(store, 'never-ran', out)).rejects.toThrow(
      /^training run never-ran has no recorded steps in the blob store/,
    );
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('schedule specs', () => {
  test('intervals and cron lines that parse', () => {
    expect(scheduleSpecOf({ every: '90s' })).toEqual({ intervals: [{ every: 90_000 }] });
    expect(scheduleSpecOf({ every: '6h' })).toEqual({ intervals: [{ every: 6 * 3_600_000 }] });
    expect(scheduleSpecOf({ cron: ' 0 3 * * * ' })).toEqual({ cronExpressions: ['0 3 * * *'] });
    for (const cron of ['*/15 * * * *', '0 9-17 * * MON-FRI', '30 2 1,15 JAN,jul 0', '@daily', '5 4 * * 7'])
      expect(cronProblem(cron)).toBeNull();
    expect(catchupWindowOf('10m')).toBe(600_000);
  });

  test('specs that do not parse: one clear line each', () => {
    const cases: [{ every?: string; cron?: string }, RegExp][] = [
      [{ every: 'soon' }, /^schedule spec --every "soon" does not parse: expected a duration/],
      [{ every: '10ms' }, /does not parse/],
      [{ cron: '61 * * * *' }, /^schedule spec --cron "61 \* \* \* \*" does not parse: minute field "61"/],
      [{ cron: '* * * *' }, /expected 5 fields/],
      [{ cron: '0 3 * * FUNDAY' }, /day of week field/],
      [{ cron: '0 5-3 * * *' }, /hour field/],
      [{ cron: '*/0 * * * *' }, /minute field/],
      [{ cron: '@sometimes' }, /expected 5 fields/],
      [{}, /give exactly one schedule spec/],
      [{ every: '1h', cron: '@daily' }, /give exactly one schedule spec/],
    ];
    for (const [spec, message] of cases) {
      expect(() => scheduleSpecOf(spec)).toThrow(ScheduleSpecError);
      expect(() => scheduleSpecOf(spec)).toThrow(message);
    }
    expect(() => catchupWindowOf('whenever')).toThrow(/--catchup-window "whenever" does not parse/);
  });
});
