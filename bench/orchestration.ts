/**
 * The orchestration tax: the same episodes (same model, same seeds, so the same answers) through Temporal and
 * through a plain in-process loop, as a ratio, plus the Temporal overhead per chunk step; then batch throughput
 * with 1, 2 and 4 inference worker processes.
 *
 *   npx tsx bench/orchestration.ts [--episodes 4] [--memory-tokens 96] [--skip-throughput]
 *
 * Needs a Temporal server at the configured address (the local dev server is started if none answers).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { Command } from 'commander';
import { stackPaths, startTemporal } from '../infra/local-stack';
import { generateSyntheticRows, toJsonLines } from '../lib/data/synthetic';
import { EpisodeSteps } from '../lib/episode/steps';
import { defaultEpisodeSettings, type EpisodeInputRecord, type EpisodeResult, type EpisodeSettings } from '../lib/episode/types';
import { loadPolicy } from '../lib/model';
import { createBlobStore, episodeInputKey, runResultsPrefix } from '../lib/storage';
import { loadConfig, type RememConfig } from '../temporal.config';
import { batchQAWorkflow } from '../workflows/batch';
import { episodeWorkflow } from '../workflows/episode';
import { startWorkerProcess, killHard, type WorkerProcess } from '../workers/spawn';
import { startWorkers } from '../workers/worker';

interface Options {
  episodes: number;
  memoryTokens: number;
  skipThroughput?: boolean;
  concurrency: number;
  throughputEpisodes: number;
}

function benchConfig(tag: string): RememConfig {
  const base = loadConfig();
  const stamp = `${tag}-${process.pid}-${Date.now()}`;
  return {
    ...base,
    taskQueues: { orchestration: `bench-orch-${stamp}`, inference: `bench-inf-${stamp}`, trainer: `bench-train-${stamp}` },
    storage: { kind: 'fs', root: fs.mkdtempSync(path.join(os.tmpdir(), `rememr1-bench-${tag}-`)) },
  };
}

async function orchestrationTax(options: Options): Promise<void> {
  const config = benchConfig('tax');
  const store = createBlobStore(config.storage);
  const policy = await loadPolicy(config.model.path, {
    maxBatchSize: config.model.maxBatchSize,
    intraOpThreads: config.model.intraOpThreads > 0 ? config.model.intraOpThreads : undefined,
  });
  const settings: EpisodeSettings = { ...defaultEpisodeSettings, chunkTokens: 256, memoryMaxNewTokens: options.memoryTokens, answerMaxNewTokens: 16 };
  const rows = generateSyntheticRows({ seed: 99, questions: options.episodes + 1, documentsPerQuestion: 8, wordsPerDocument: 40 });
  const inputs: EpisodeInputRecord[] = rows.map((row) => ({ id: row.id, rowIndex: row.rowIndex, question: row.question, context: row.context, answers: row.answers }));
  // The deployment shape: workflows in this process, model activities in an inference worker process of their own
  // (onnxruntime-node runs a forward pass on the calling thread, which would stall this process's workflow tasks).
  const workers = await startWorkers({ role: 'orchestration', config, store });
  const inference = startWorkerProcess('inference', config);
  await inference.ready;
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const steps = new EpisodeSteps({ store, policy });

  const inProcess = async (runId: string, index: number): Promise<{ steps: number; result: EpisodeResult }> => {
    const ref = { runId, episodeId: `episode-${index}` };
    await store.putJson(episodeInputKey(ref.runId, ref.episodeId), inputs[index]);
    const manifest = await steps.prepare(ref, settings);
    for (let step = 0; step < manifest.chunkCount; step += 1) await steps.memoryStep(ref, settings, step);
    const result = await steps.answer(ref, settings, manifest.chunkCount);
    return { steps: manifest.chunkCount + 2, result };
  };
  const throughTemporal = async (runId: string, index: number): Promise<{ result: EpisodeResult }> => {
    const ref = { runId, episodeId: `episode-${index}` };
    await store.putJson(episodeInputKey(ref.runId, ref.episodeId), inputs[index]);
    const result = await client.workflow.execute(episodeWorkflow, {
      workflowId: `${runId}.${ref.episodeId}`,
      taskQueue: config.taskQueues.orchestration,
      args: [{ ...ref, settings, runtime: { taskQueues: config.taskQueues, activities: config.activities } }],
    });
    return { result };
  };

  /** Runs episodes [0, n) `concurrency` at a time on one path; the wall time and the results in order. */
  const runAll = async (
    path: (runId: string, index: number) => Promise<{ result: EpisodeResult; steps?: number }>,
    runId: string,
    concurrency: number,
  ): Promise<{ ms: number; results: EpisodeResult[]; steps: number }> => {
    const results: EpisodeResult[] = [];
    let steps = 0;
    let next = 0;
    const started = performance.now();
    const lane = async (): Promise<void> => {
      while (next < options.episodes) {
        const index = next++;
        const outcome = await path(runId, index);
        results[index] = outcome.result;
        steps += outcome.steps ?? 0;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
    return { ms: performance.now() - started, results, steps };
  };
  const same = (a: EpisodeResult[], b: EpisodeResult[]): boolean =>
    JSON.stringify(a.map((r) => ({ ...r, runId: '' }))) === JSON.stringify(b.map((r) => ({ ...r, runId: '' })));

  try {
    // Warm-up (ORT session, workflow bundle, caches), not measured.
    await inProcess('warm-a', options.episodes);
    await throughTemporal('warm-b', options.episodes);
    console.log('\n== Orchestration tax (same episodes, same seeds, so the same answers) ==');
    for (const concurrency of [1, options.concurrency]) {
      // Plain first, then Temporal, then plain again: the mean of the two plain runs cancels slow drift in load.
      const plainA = await runAll(inProcess, `plain-a-${concurrency}`, concurrency);
      const durable = await runAll(throughTemporal, `temporal-${concurrency}`, concurrency);
      const plainB = await runAll(inProcess, `plain-b-${concurrency}`, concurrency);
      const plainMs = (plainA.ms + plainB.ms) / 2;
      const steps = plainA.steps;
      console.log(`\n${options.episodes} episodes, ${concurrency} at a time; ${steps} activities (prepare + chunk steps + answer)`);
      console.log(`  mean model activity time in-process: ${((plainA.ms * concurrency) / steps).toFixed(1)} ms`);
      console.log(`  in-process loop: ${(plainMs / 1000).toFixed(2)} s   Temporal: ${(durable.ms / 1000).toFixed(2)} s`);
      console.log(`  ratio Temporal / in-process: ${(durable.ms / plainMs).toFixed(3)}`);
      console.log(`  Temporal overhead per step (wall): ${((durable.ms - plainMs) / (steps / concurrency)).toFixed(1)} ms`);
      console.log(`  identical results on both paths: ${same(plainA.results, durable.results) && same(plainA.results, plainB.results) ? 'yes' : 'NO'}`);
    }
  } finally {
    await killHard(inference);
    await workers.shutdown();
    await connection.close();
    await policy.dispose();
    await store.close();
  }
}

async function throughput(options: Options): Promise<void> {
  console.log('\n== Batch throughput by number of inference worker processes ==');
  const settings: EpisodeSettings = { ...defaultEpisodeSettings, chunkTokens: 256, memoryMaxNewTokens: 32, answerMaxNewTokens: 12 };
  const rows = generateSyntheticRows({ seed: 7, questions: options.throughputEpisodes, documentsPerQuestion: 6, wordsPerDocument: 40 });
  for (const count of [1, 2, 4]) {
    const config = benchConfig(`tp${count}`);
    const store = createBlobStore(config.storage);
    await store.put('datasets/bench/rows.jsonl', toJsonLines(rows));
    const orchestration = await startWorkers({ role: 'orchestration', config, store });
    const inference: WorkerProcess[] = [];
    const connection = await Connection.connect({ address: config.temporal.address });
    const client = new Client({ connection, namespace: config.temporal.namespace });
    try {
      for (let i = 0; i < count; i += 1) inference.push(startWorkerProcess('inference', config));
      await Promise.all(inference.map((worker) => worker.ready));
      const runId = `throughput-${count}`;
      const started = performance.now();
      const summary = await client.workflow.execute(batchQAWorkflow, {
        workflowId: `batch.${runId}.${Date.now()}`,
        taskQueue: config.taskQueues.orchestration,
        args: [{ runId, datasetKey: 'datasets/bench/rows.jsonl', dataset: 'bench', settings, runtime: { taskQueues: config.taskQueues, activities: config.activities }, width: 16, pageSize: 1000, stopOnBadRow: false }],
      });
      const minutes = (performance.now() - started) / 60_000;
      let results = 0;
      for await (const _key of store.list(runResultsPrefix(runId))) results += 1;
      console.log(`${count} inference worker(s): ${summary.overall.episodes} episodes (${results} result rows) in ${(minutes * 60).toFixed(1)} s = ${(summary.overall.episodes / minutes).toFixed(1)} episodes/min`);
    } finally {
      for (const worker of inference) await killHard(worker);
      await orchestration.shutdown();
      await connection.close();
      await store.close();
    }
  }
  console.log(`(machine: ${os.cpus().length} cores; worker processes beyond the core count compete for the same CPUs)`);
}

async function main(): Promise<void> {
  const program = new Command('bench-orchestration')
    .option('--episodes <n>', 'episodes compared on both paths', (v) => Number(v), 8)
    .option('--memory-tokens <n>', 'new tokens per memory step (sets the model step time)', (v) => Number(v), 96)
    .option('--concurrency <n>', 'episodes at a time in the second comparison', (v) => Number(v), 4)
    .option('--throughput-episodes <n>', 'episodes per throughput batch', (v) => Number(v), 24)
    .option('--skip-throughput', 'only measure the orchestration tax');
  program.parse(process.argv);
  const options = program.opts<Options>();
  const config = loadConfig();
  await startTemporal({ paths: stackPaths(config.localDir), address: config.temporal.address, namespace: config.temporal.namespace, ui: false });
  await orchestrationTax(options);
  if (!options.skipThroughput) await throughput(options);
}

main().catch((error: Error) => {
  console.error(error);
  process.exit(1);
});
