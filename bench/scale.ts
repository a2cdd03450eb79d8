/**
 * Scale: a batch of many short episodes on one machine. Shows that workflow histories stay bounded (the batch
 * continues as new per page) and that the worker's memory does not grow with the number of episodes.
 *
 *   npx tsx bench/scale.ts [--episodes 10000] [--width 32] [--page-size 200]
 *
 * Prints throughput, RSS sampled as episodes complete (and its peak), and the largest history of any batch run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connectTemporalClient } from '../lib/temporal/client';
import { Command } from 'commander';
import { stackPaths, startTemporal } from '../infra/local-stack';
import { generateSyntheticRows, toJsonLines } from '../lib/data/synthetic';
import { defaultEpisodeSettings, type EpisodeSettings } from '../lib/episode/types';
import { createBlobStore } from '../lib/storage';
import { loadConfig, type RememConfig } from '../temporal.config';
import { batchProgressQuery, batchQAWorkflow } from '../workflows/batch';
import { startWorkers } from '../workers/worker';

async function main(): Promise<void> {
  const program = new Command('bench-scale')
    .option('--episodes <n>', 'episodes in the batch', (v) => Number(v), 10_000)
    .option('--width <n>', 'episodes running at once', (v) => Number(v), 32)
    .option('--page-size <n>', 'episodes per page', (v) => Number(v), 200);
  program.parse(process.argv);
  const options = program.opts<{ episodes: number; width: number; pageSize: number }>();

  const base = loadConfig();
  await startTemporal({ paths: stackPaths(base.localDir), address: base.temporal.address, namespace: base.temporal.namespace, ui: false });
  const stamp = `${process.pid}-${Date.now()}`;
  const config: RememConfig = {
    ...base,
    taskQueues: { orchestration: `scale-orch-${stamp}`, inference: `scale-inf-${stamp}`, trainer: `scale-train-${stamp}` },
    storage: { kind: 'fs', root: fs.mkdtempSync(path.join(os.tmpdir(), 'rememr1-scale-')) },
    worker: { ...base.worker, maxConcurrentModelSteps: options.width, maxCachedWorkflows: Math.max(2 * options.width, 100) },
  };
  const store = createBlobStore(config.storage);
  const rows = generateSyntheticRows({ seed: 3, questions: options.episodes, documentsPerQuestion: 2, hops: 1, wordsPerDocument: 8, minEvidenceGap: 0 });
  await store.put('datasets/scale/rows.jsonl', toJsonLines(rows));
  const settings: EpisodeSettings = { ...defaultEpisodeSettings, chunkTokens: 512, memoryMaxNewTokens: 4, answerMaxNewTokens: 4 };

  const workers = await startWorkers({ role: 'all', config, store });
  const client = await connectTemporalClient(config);
  const { connection } = client;
  const runId = `scale-${stamp}`;
  const workflowId = `batch.${runId}`;
  const samples: Array<{ done: number; rssMb: number; seconds: number }> = [];
  let peakRss = process.memoryUsage().rss;
  const started = performance.now();
  let inFlight: Promise<void> = Promise.resolve();
  const sampler = setInterval(() => {
    const rss = process.memoryUsage().rss;
    peakRss = Math.max(peakRss, rss);
    inFlight = client.workflow
      .getHandle(workflowId)
      .query(batchProgressQuery)
      .then((progress) => {
        const last = samples[samples.length - 1];
        if (!last || progress.done - last.done >= Math.max(1, Math.floor(options.episodes / 10))) {
          samples.push({ done: progress.done, rssMb: rss / 2 ** 20, seconds: (performance.now() - started) / 1000 });
          console.log(`  ${progress.done} episodes done, RSS ${(rss / 2 ** 20).toFixed(0)} MiB, ${((performance.now() - started) / 1000).toFixed(0)} s`);
        }
      })
      .catch(() => undefined);
  }, 2000);
  try {
    const summary = await client.workflow.execute(batchQAWorkflow, {
      workflowId,
      taskQueue: config.taskQueues.orchestration,
      args: [{ runId, datasetKey: 'datasets/scale/rows.jsonl', dataset: 'scale', settings, runtime: { taskQueues: config.taskQueues, activities: config.activities }, width: options.width, pageSize: options.pageSize, stopOnBadRow: false }],
    });
    const seconds = (performance.now() - started) / 1000;
    let runs = 0;
    let maxHistory = 0;
    for await (const info of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      runs += 1;
      maxHistory = Math.max(maxHistory, info.historyLength);
    }
    let episodeMaxHistory = 0;
    for await (const info of client.workflow.list({ query: `RememRunId = '${runId}' AND RememKind = 'episode'`, pageSize: 100 })) {
      episodeMaxHistory = Math.max(episodeMaxHistory, info.historyLength);
      if (info.historyLength > 0) break; // all episodes here have one chunk: one is representative
    }
    console.log('\n== Scale ==');
    console.log(`episodes ${summary.overall.episodes} (failed ${summary.failedEpisodes}) in ${seconds.toFixed(0)} s = ${((summary.overall.episodes / seconds) * 60).toFixed(0)} episodes/min`);
    console.log(`batch runs (one per page, continue-as-new) ${runs}, largest batch history ${maxHistory} events; an episode's history ${episodeMaxHistory} events`);
    console.log(`worker RSS: peak ${(peakRss / 2 ** 20).toFixed(0)} MiB; by episodes done: ${samples.map((s) => `${s.done}→${s.rssMb.toFixed(0)}`).join(', ')}`);
  } finally {
    clearInterval(sampler);
    await inFlight; // a query still in flight must not outlive the connection
    await workers.shutdown();
    await connection.close();
    await store.close();
  }
}

main().catch((error: Error) => {
  console.error(error);
  process.exit(1);
});
