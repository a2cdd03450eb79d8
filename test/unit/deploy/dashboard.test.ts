/** The example Grafana dashboard plots the metrics the workers really emit, every one of the project's included. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectMetrics } from '../../../activities/observability';
import { projectRoot } from '../../../temporal.config';

interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr: string }>;
}

const dashboard = JSON.parse(
  fs.readFileSync(path.join(projectRoot, 'infra', 'grafana', 'rememr1-workers.json'), 'utf8'),
) as {
  panels: Panel[];
};

describe('the Grafana dashboard (infra/grafana)', () => {
  const expressions = dashboard.panels.flatMap((panel) => panel.targets?.map((target) => target.expr) ?? []);
  const used = new Set(expressions.flatMap((expr) => expr.match(/\brememr1_[a-z0-9_]+/g) ?? []));

  it('queries only metrics the project emits, and all of them', () => {
    const known = Object.values(projectMetrics) as string[];
    const family = (name: string): string =>
      known.find(
        (metric) =>
          name === metric ||
          (name.startsWith(metric) && /^_(bucket|sum|count)$/.test(name.slice(metric.length))),
      ) ?? name;
    for (const name of used) expect(known).toContain(family(name));
    for (const metric of known) expect([...used].map(family)).toContain(metric);
  });

  it('has a query in every chart, filtered by the job variable', () => {
    for (const panel of dashboard.panels.filter((candidate) => candidate.type !== 'row')) {
      expect({ panel: panel.title, queries: (panel.targets ?? []).length > 0 }).toEqual({
        panel: panel.title,
        queries: true,
      });
    }
    for (const expr of expressions) expect(expr).toContain('job=~"$job"');
  });
});
