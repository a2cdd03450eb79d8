/**
 * The orchestration tax: the same episodes (same model, same seeds, so the same answers) through Temporal and
 * through a plain loop over the same steps (in a process of its own, like the inference worker), as a ratio,
 * plus the Temporal overhead per activity and each path's chunk-step time, and Temporal's own floor on this
 * machine (temporal-floor.ts); then batch throughput with 1, 2 and 4 inference worker processes.
 *
 *   npx tsx bench/orchestration.ts [--episodes 8] [--memory-tokens 96] [--documents 24]
 *                                  [--concurrency 4] [--skip-throughput]
 *
 * Needs a Temporal server at the configured address (the local dev server is started if none answers).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { connectTemporalClient } from '../lib/temporal/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { Command } from 'commander';
import { stackPaths, startTemporal } from '../infra/local-stack';
import { generateSyntheticRows, toJsonLines } from '../lib/data/synthetic';
import {
  defaultEpisodeSettings,
  type EpisodeInputRecord,
  type EpisodeResult,
  type EpisodeSettings,
} from '../lib/episode/types';
import { createBlobStore, episodeInputKey, runResultsPrefix } from '../lib/storage';
import { loadConfig, type RememConfig } from '../temporal.config';
import { batchQAWorkflow } from '../workflows/batch';
import { episodeWorkflow } from '../workflows/episode';
import { startWorkerProcess, killHard, type WorkerProcess } from '../workers/spawn';
import { startWorkers } from '../workers/worker';
import { startPlainLoop, type LoopOutcome } from './plain-loop';
import { startTemporalFloor } from './temporal-floor';

interface Options {
  episodes: number;
  memoryTokens: number;
  documents: number;
  skipThroughput?: boolean;
  concurrency: number;
  throughputEpisodes: number;
}

function benchConfig(tag: string): RememConfig {
  const base = loadConfig();
  const stamp = `${tag}-${process.pid}-${Date.now()}`;
  return {
    ...base,
    taskQueues: {
      orchestration: `bench-orch-${stamp}`,
      inference: `bench-inf-${stamp}`,
      trainer: `bench-train-${stamp}`,
    },
    storage: { kind: 'fs', root: fs.mkdtempSync(path.join(os.tmpdir(), `rememr1-bench-${tag}-`)) },
  };
}

/** Total started → completed time, from the workflows' histories, of their activities (of one type, if given). */
async function activityMilliseconds(
  client: Client,
  workflowIds: string[],
  activityType?: string,
): Promise<number> {
  let total = 0;
  for (const workflowId of workflowIds) {
    const { events } = await client.workflow.getHandle(workflowId).fetchHistory();
    const scheduled = new Set<number>();
    const started = new Map<number, number>();
    for (const event of events ?? []) {
      const id = Number(event.eventId);
      const scheduling = event.activityTaskScheduledEventAttributes;
      if (scheduling && (activityType === undefined || scheduling.activityType?.name === activityType))
        scheduled.add(id);
      const start = event.activityTaskStartedEventAttributes;
      if (start && scheduled.has(Number(start.scheduledEventId)))
        started.set(Number(start.scheduledEventId), tsToMs(event.eventTime));
      const done = event.activityTaskCompletedEventAttributes;
      if (done && started.has(Number(done.scheduledEventId)))
        total += tsToMs(event.eventTime) - (started.get(Number(done.scheduledEventId)) ?? 0);
    }
  }
  return total;
}

async function orchestrationTax(options: Options): Promise<void> {
  const config = benchConfig('tax');
  const store = createBlobStore(config.storage);
  const settings: EpisodeSettings = {
    ...defaultEpisodeSettings,
    chunkTokens: 256,
    memoryMaxNewTokens: options.memoryTokens,
    answerMaxNewTokens: 16,
  };
  // Long enough documents for several chunks per episode: the setting ReMemR1 is for.
  const rows = generateSyntheticRows({
    seed: 99,
    questions: options.episodes + 1,
    documentsPerQuestion: options.documents,
    wordsPerDocument: 40,
  });
  const inputs: EpisodeInputRecord[] = rows.map((row) => ({
    id: row.id,
    rowIndex: row.rowIndex,
    question: row.question,
    context: row.context,
    answers: row.answers,
  }));
  // The deployment shape: workflows in this process, model activities in an inference worker process of their own
  // (onnxruntime-node runs a forward pass on the calling thread, which would stall this process's workflow tasks).
  const workers = await startWorkers({ role: 'orchestration', config, store });
  const inference = startWorkerProcess('inference', config);
  await inference.ready;
  const client = await connectTemporalClient(config);
  const { connection } = client;
  const plainLoop = await startPlainLoop(config);

  const timed = async <T>(work: () => Promise<T>): Promise<[T, number]> => {
    const started = performance.now();
    const value = await work();
    return [value, performance.now() - started];
  };
  /** The plain loop: the same steps, same store, same seeds, in a process like the inference worker's. */
  const throughPlainLoop = async (runId: string, index: number): Promise<LoopOutcome> => {
    const ref = { runId, episodeId: `episode-${index}` };
    await store.putJson(episodeInputKey(ref.runId, ref.episodeId), inputs[index]);
    return plainLoop.run(ref, settings);
  };
  const throughTemporal = async (
    runId: string,
    index: number,
  ): Promise<{ ms: number; result: EpisodeResult }> => {
    const ref = { runId, episodeId: `episode-${index}` };
    await store.putJson(episodeInputKey(ref.runId, ref.episodeId), inputs[index]);
    const [result, ms] = await timed(() =>
      client.workflow.execute(episodeWorkflow, {
        workflowId: `${runId}.${ref.episodeId}`,
        taskQueue: config.taskQueues.orchestration,
        args: [
          { ...ref, settings, runtime: { taskQueues: config.taskQueues, activities: config.activities } },
        ],
      }),
    );
    return { ms, result };
  };
  const sameResult = (a: EpisodeResult, b: EpisodeResult): boolean =>
    JSON.stringify({ ...a, runId: '' }) === JSON.stringify({ ...b, runId: '' });

  try {
    // Warm-up (ORT session, workflow bundle, caches), not measured.
    await throughPlainLoop('warm-a', options.episodes);
    await throughTemporal('warm-b', options.episodes);
    console.log('\n== Orchestration tax (same episodes, same seeds, so the same answers) ==');

    // One at a time, interleaved episode by episode (the order of the paths rotates), so drift in machine speed
    // hits every path alike. The floor runs right after the plain loop's episode: a minimal workflow of the same
    // shape whose activities busy-wait as long as that episode's steps took, so its overhead is Temporal's own.
    const stamp = Date.now();
    const floor = await startTemporalFloor(config, client, String(stamp));
    const totals = { plainMs: 0, temporalMs: 0, floorMs: 0, activities: 0, chunkSteps: 0, chunkStepMs: 0 };
    let identical = true;
    try {
      for (let index = 0; index < options.episodes; index += 1) {
        const results: { plain?: EpisodeResult; temporal?: EpisodeResult } = {};
        const paths: (() => Promise<void>)[] = [
          async () => {
            const plain = await throughPlainLoop(`plain-${stamp}`, index);
            totals.plainMs += plain.ms;
            totals.activities += plain.activities;
            totals.chunkSteps += plain.chunkSteps;
            totals.chunkStepMs += plain.chunkStepMs;
            results.plain = plain.result;
            totals.floorMs += await floor.run(`floor-${stamp}.episode-${index}`, plain.activityMs);
          },
          async () => {
            const durable = await throughTemporal(`temporal-${stamp}`, index);
            totals.temporalMs += durable.ms;
            results.temporal = durable.result;
          },
        ];
        for (let turn = 0; turn < paths.length; turn += 1) await paths[(index + turn) % paths.length]();
        const { plain, temporal } = results;
        identical &&= plain !== undefined && temporal !== undefined && sameResult(plain, temporal);
      }
    } finally {
      await floor.stop();
    }
    const { plainMs, temporalMs, floorMs, activities, chunkSteps } = totals;
    const episodeIds = (prefix: string) =>
      Array.from({ length: options.episodes }, (_, i) => `${prefix}-${stamp}.episode-${i}`);
    const workerChunkStepMs = await activityMilliseconds(client, episodeIds('temporal'), 'memoryStep');
    // Wall time minus the activities' own time (from the histories): the round trips alone, whatever the
    // speed of the process that ran the steps.
    const temporalActivityMs = await activityMilliseconds(client, episodeIds('temporal'));
    const floorActivityMs = await activityMilliseconds(client, episodeIds('floor'));
    const perActivity = (ms: number) => `${(ms / activities).toFixed(1)} ms per activity`;
    console.log(
      `\n${options.episodes} episodes, 1 at a time, interleaved; ${activities} activities (${chunkSteps} chunk steps + prepare + answer each)`,
    );
    console.log(
      `  mean chunk-step time: plain loop ${(totals.chunkStepMs / chunkSteps).toFixed(1)} ms, in the inference worker ${(workerChunkStepMs / chunkSteps).toFixed(1)} ms (started → completed in the history)`,
    );
    console.log(
      `  plain loop: ${(plainMs / 1000).toFixed(2)} s   Temporal: ${(temporalMs / 1000).toFixed(2)} s   floor: ${(floorMs / 1000).toFixed(2)} s`,
    );
    console.log(`  ratio Temporal / plain loop: ${(temporalMs / plainMs).toFixed(3)}`);
    console.log(`  Temporal overhead (wall): ${perActivity(temporalMs - plainMs)}`);
    console.log(
      `  floor (minimal workflow, busy-wait activities as long as the plain loop's steps): ratio ${(floorMs / plainMs).toFixed(3)}, overhead ${perActivity(floorMs - plainMs)}`,
    );
    console.log(`  the episode workflow above the floor: ${perActivity(temporalMs - floorMs)}`);
    console.log(
      `  round trips alone (wall minus the activities' time in the histories): episodes ${perActivity(temporalMs - temporalActivityMs)}, floor ${perActivity(floorMs - floorActivityMs)}`,
    );
    console.log(`  identical results on both paths: ${identical ? 'yes' : 'NO'}`);

    // Several at a time: whole runs (plain, Temporal, plain again; the mean of the plain runs cancels drift).
    const concurrency = options.concurrency;
    const runAll = async (
      path: (runId: string, index: number) => Promise<{ result: EpisodeResult }>,
      runId: string,
    ): Promise<{ ms: number; results: EpisodeResult[] }> => {
      const results: EpisodeResult[] = [];
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < options.episodes) {
          const index = next++;
          results[index] = (await path(runId, index)).result;
        }
      };
      const [, ms] = await timed(() => Promise.all(Array.from({ length: concurrency }, lane)));
      return { ms, results };
    };
    const plainA = await runAll(throughPlainLoop, `plain-a-${stamp}`);
    const concurrent = await runAll(throughTemporal, `temporal-c-${stamp}`);
    const plainB = await runAll(throughPlainLoop, `plain-b-${stamp}`);
    const concurrentPlainMs = (plainA.ms + plainB.ms) / 2;
    console.log(
      `\n${options.episodes} episodes, ${concurrency} at a time (requests share batched forward passes)`,
    );
    console.log(
      `  plain loop: ${(concurrentPlainMs / 1000).toFixed(2)} s   Temporal: ${(concurrent.ms / 1000).toFixed(2)} s`,
    );
    console.log(`  ratio Temporal / plain loop: ${(concurrent.ms / concurrentPlainMs).toFixed(3)}`);
    console.log(
      `  identical results on both paths: ${concurrent.results.every((result, i) => sameResult(result, plainA.results[i]) && sameResult(result, plainB.results[i])) ? 'yes' : 'NO'}`,
    );
  } finally {
    await killHard(inference);
    await plainLoop.stop();
    await workers.shutdown();
    await connection.close();
    await store.close();
  }
}

async function throughput(options: Options): Promise<void> {
  console.log('\n== Batch throughput by number of inference worker processes ==');
  const settings: EpisodeSettings = {
    ...defaultEpisodeSettings,
    chunkTokens: 256,
    memoryMaxNewTokens: 32,
    answerMaxNewTokens: 12,
  };
  const rows = generateSyntheticRows({
    seed: 7,
    questions: options.throughputEpisodes,
    documentsPerQuestion: 6,
    wordsPerDocument: 40,
  });
  for (const count of [1, 2, 4]) {
    const config = benchConfig(`tp${count}`);
    const store = createBlobStore(config.storage);
    await store.put('datasets/bench/rows.jsonl', toJsonLines(rows));
    const orchestration = await startWorkers({ role: 'orchestration', config, store });
    const inference: WorkerProcess[] = [];
    const client = await connectTemporalClient(config);
    const { connection } = client;
    try {
      for (let i = 0; i < count; i += 1) inference.push(startWorkerProcess('inference', config));
      await Promise.all(inference.map((worker) => worker.ready));
      const runId = `throughput-${count}`;
      const started = performance.now();
      const summary = await client.workflow.execute(batchQAWorkflow, {
        workflowId: `batch.${runId}.${Date.now()}`,
        taskQueue: config.taskQueues.orchestration,
        args: [
          {
            runId,
            datasetKey: 'datasets/bench/rows.jsonl',
            dataset: 'bench',
            settings,
            runtime: { taskQueues: config.taskQueues, activities: config.activities },
            width: 16,
            pageSize: 1000,
            stopOnBadRow: false,
          },
        ],
      });
      const minutes = (performance.now() - started) / 60_000;
      let results = 0;
      for await (const _key of store.list(runResultsPrefix(runId))) results += 1;
      console.log(
        `${count} inference worker(s): ${summary.overall.episodes} episodes (${results} result rows) in ${(minutes * 60).toFixed(1)} s = ${(summary.overall.episodes / minutes).toFixed(1)} episodes/min`,
      );
    } finally {
      for (const worker of inference) await killHard(worker);
      await orchestration.shutdown();
      await connection.close();
      await store.close();
    }
  }
  console.log(
    `(machine: ${os.cpus().length} cores; worker processes beyond the core count compete for the same CPUs)`,
  );
}

async function main(): Promise<void> {
  const program = new Command('bench-orchestration')
    .option('--episodes <n>', 'episodes compared on both paths', (v) => Number(v), 8)
    .option(
      '--memory-tokens <n>',
      'new tokens per memory step (sets the model step time)',
      (v) => Number(v),
      96,
    )
    .option(
      '--documents <n>',
      'documents per question in the tax comparison (sets the chunks per episode)',
      (v) => Number(v),
      24,
    )
    .option('--concurrency <n>', 'episodes at a time in the second comparison', (v) => Number(v), 4)
    .option('--throughput-episodes <n>', 'episodes per throughput batch', (v) => Number(v), 24)
    .option('--skip-throughput', 'only measure the orchestration tax');
  program.parse(process.argv);
  const options = program.opts<Options>();
  const config = loadConfig();
  await startTemporal({
    paths: stackPaths(config.localDir),
    address: config.temporal.address,
    namespace: config.temporal.namespace,
    ui: false,
  });
  await orchestrationTax(options);
  if (!options.skipThroughput) await throughput(options);
}

main().catch((error: Error) => {
  console.error(error);
  process.exit(1);
});
