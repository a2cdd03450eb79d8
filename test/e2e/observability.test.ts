/**
 * Observability of a real worker process during a real batch: one `all` worker with the Prometheus endpoint and
 * the health server on free loopback ports. Its `/metrics` must carry Temporal's SDK metrics and the project's
 * own; its JSON log lines (activities' and workflows') must carry the project's run and episode ids; `/healthz` and `/readyz` must answer,
 * and SIGTERM must end the process cleanly.
 */
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import type { Client } from '@temporalio/client';
import { episodeIdForRow } from '../../activities/batch';
import { projectMetrics } from '../../activities/observability';
import { createBlobStore, type BlobStore } from '../../lib/storage';
import { projectRoot } from '../../temporal.config';
import { startWorkerProcess, killHard, workerEnvironment, type WorkerProcess } from '../../workers/spawn';
import { startSyntheticBatch } from '../support/batch';
import {
  connectTestClient,
  eventually,
  freePortPair,
  requireStackEnvironment,
  testConfig,
} from '../support/stack';

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

/** Metric families present in a Prometheus text exposition (names of sample lines, without labels). */
function metricNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (match) names.add(match[1]);
  }
  return names;
}

const hasFamily = (names: Set<string>, family: string): boolean =>
  [...names].some((name) => name === family || name.startsWith(`${family}_`));

describe('a worker process with metrics, health and JSON logs', () => {
  requireStackEnvironment();
  const config = testConfig('observe');
  let worker: WorkerProcess | undefined;
  let client: Client;
  let store: BlobStore;
  let metricsUrl: string;
  let healthUrl: string;

  beforeAll(async () => {
    const port = await freePortPair();
    config.metrics = { prometheusBindAddress: `127.0.0.1:${port}` };
    config.health = { bindAddress: `127.0.0.1:${port + 1}` };
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    healthUrl = `http://127.0.0.1:${port + 1}`;
    store = createBlobStore(config.storage);
    client = await connectTestClient(config);
    worker = startWorkerProcess('all', config, { REMEMR1_LOG_FORMAT: 'json', REMEMR1_LOG_LEVEL: 'DEBUG' });
    await worker.ready;
  });

  afterAll(async () => {
    if (worker) await killHard(worker);
    await client?.connection.close();
    await store?.close();
  });

  it('serves Temporal and project metrics on one endpoint during a batch, logs with run ids, and probes', async () => {
    expect(await get(`${healthUrl}/healthz`)).toEqual({ status: 200, body: 'ok\n' });
    await eventually('a ready worker', async () => (await get(`${healthUrl}/readyz`)).status === 200, 60_000);
    expect((await get(`${healthUrl}/nothing`)).status).toBe(404);

    const runId = `observe-${randomUUID().slice(0, 8)}`;
    const handle = await startSyntheticBatch(client, config, store, runId, { seed: 11, questions: 3 });

    // During the batch: the SDK's own metrics are there as soon as workflow tasks ran.
    const during = await eventually(
      'SDK metrics while the batch runs',
      async () => {
        const names = metricNames((await get(metricsUrl)).body);
        return hasFamily(names, 'temporal_workflow_task_execution_latency') ||
          hasFamily(names, 'temporal_activity_execution_latency')
          ? names
          : undefined;
      },
      120_000,
    );
    expect(during.size).toBeGreaterThan(0);

    const summary = await handle.result();
    expect(summary.overall.episodes).toBe(3);

    const names = metricNames((await get(metricsUrl)).body);
    for (const family of ['temporal_workflow_completed', 'temporal_activity_execution_latency'])
      expect(hasFamily(names, family)).toBe(true);
    for (const family of [
      projectMetrics.generatedTokens,
      projectMetrics.tokensPerSecond,
      projectMetrics.stepLatency,
      projectMetrics.episodesAnswered,
      projectMetrics.episodesCorrect,
      projectMetrics.answerF1,
    ]) {
      expect({ family, found: hasFamily(names, family) }).toEqual({ family, found: true });
    }
    const tokens = (await get(metricsUrl)).body
      .split('\n')
      .filter((line) => line.startsWith(`${projectMetrics.generatedTokens}{`));
    expect(
      tokens.some((line) => /activityType="memoryStep"/.test(line) && Number(line.split(' ').pop()) > 0),
    ).toBe(true);

    // Structured logs: one JSON line per answered episode, with the project's run and episode ids.
    const lines = worker!
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry.rememr1RunId === runId);
    const answered = lines.filter((entry) => entry.message === 'Episode answered');
    expect(answered.map((entry) => entry.episodeId).sort()).toEqual([0, 1, 2].map(episodeIdForRow));
    expect(answered[0]).toMatchObject({
      level: 'INFO',
      activityType: 'answerEpisode',
      workflowId: expect.stringContaining(runId),
    });
    // The workflows' own lines (the SDK's, at DEBUG) carry them too, through the bundled workflow interceptor.
    const episodeLines = lines.filter(
      (entry) => entry.workflowType === 'episodeWorkflow' && entry.activityType === undefined,
    );
    expect(episodeLines.length).toBeGreaterThan(0);
    expect(episodeLines.every((entry) => typeof entry.episodeId === 'string')).toBe(true);
    expect(
      lines.some((entry) => entry.workflowType === 'batchQAWorkflow' && entry.activityType === undefined),
    ).toBe(true);

    // SIGTERM: a graceful stop, exit code 0, and the endpoints go away with the process.
    worker!.child.kill('SIGTERM');
    expect(await worker!.exited).toBe(0);
    await expect(fetch(`${healthUrl}/healthz`)).rejects.toThrow();
  }, 300_000);

  it('fails in one line naming the setting when the metrics port is taken', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
    try {
      const address = `127.0.0.1:${(busy.address() as net.AddressInfo).port}`;
      const failing = startWorkerProcess('orchestration', {
        ...config,
        metrics: { prometheusBindAddress: address },
        health: {},
      });
      failing.ready.catch(() => undefined);
      expect(await failing.exited).toBe(1);
      expect(failing.output()).toContain(
        `[worker] metrics endpoint ${address} (REMEMR1_METRICS_BIND_ADDRESS): Failed to start prometheus metrics exporter: Address already in use`,
      );
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  }, 120_000);

  it('serves the same health endpoint from `rememr1 worker`', async () => {
    const port = await freePortPair();
    const env = {
      ...workerEnvironment(config),
      REMEMR1_HEALTH_BIND_ADDRESS: `127.0.0.1:${port}`,
      REMEMR1_METRICS_BIND_ADDRESS: '',
    };
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'cli/main.ts', 'worker', '--role', 'orchestration'],
      {
        cwd: projectRoot,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    try {
      await eventually(
        'a ready CLI worker',
        async () => (await get(`http://127.0.0.1:${port}/readyz`)).status === 200,
        90_000,
      );
      expect(output).toContain('worker polling');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 150_000);
});
