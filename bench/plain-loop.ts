/**
 * The baseline of the orchestration benchmark: episodes run by a plain loop over the same episode steps, in a
 * process of its own, like the inference worker's (a process that also hosts a Temporal worker runs the model
 * measurably slower, which would flatter Temporal). The parent sends episode references over IPC; this process
 * times each loop itself, so the IPC round trip is not counted. With a pause before each chunk step it is also
 * the control that separates Temporal's own round trips from what an idle CPU costs the next step.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EpisodeSteps } from '../lib/episode/steps';
import type { EpisodeRef, EpisodeResult, EpisodeSettings } from '../lib/episode/types';
import { loadPolicy } from '../lib/model';
import { createBlobStore } from '../lib/storage';
import { loadConfig, type RememConfig } from '../temporal.config';
import { workerEnvironment } from '../workers/spawn';
import { policyOptions } from '../workers/worker';

interface LoopRequest {
  id: number;
  ref: EpisodeRef;
  settings: EpisodeSettings;
  /** Sleep this long before each chunk step (not counted): the idle gap a Temporal round trip leaves. */
  pauseMs: number;
}

export interface LoopOutcome {
  /** Prepare + chunk steps + answer. */
  activities: number;
  chunkSteps: number;
  chunkStepMs: number;
  /** The whole episode, as timed inside the loop's process. */
  ms: number;
  result: EpisodeResult;
}

type LoopReply = { id: number; outcome: LoopOutcome } | { id: number; error: string } | { ready: true };

export interface PlainLoop {
  run(ref: EpisodeRef, settings: EpisodeSettings, pauseMs?: number): Promise<LoopOutcome>;
  stop(): Promise<void>;
}

/** Forks the loop process on `config`'s storage and model; resolves once its policy is loaded. */
export async function startPlainLoop(config: RememConfig): Promise<PlainLoop> {
  const child: ChildProcess = fork(__filename, [], {
    execArgv: ['--require', require.resolve('tsx/cjs')],
    env: workerEnvironment(config),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<
    number,
    { resolve: (outcome: LoopOutcome) => void; reject: (error: Error) => void }
  >();
  let nextId = 0;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.on('message', (message: LoopReply) => {
      if ('ready' in message) return resolve();
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      if ('error' in message) waiter?.reject(new Error(message.error));
      else waiter?.resolve(message.outcome);
    });
    void exited.then(() => {
      const error = new Error('the plain-loop process exited');
      reject(error);
      for (const waiter of pending.values()) waiter.reject(error);
    });
  });
  return {
    run(ref, settings, pauseMs = 0) {
      const id = nextId++;
      return new Promise<LoopOutcome>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, ref, settings, pauseMs } satisfies LoopRequest);
      });
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function serve(): Promise<void> {
  const config = loadConfig();
  const store = createBlobStore(config.storage);
  const policy = await loadPolicy(config.model.path, policyOptions(config.model));
  const steps = new EpisodeSteps({ store, policy });
  const runEpisode = async ({ ref, settings, pauseMs }: LoopRequest): Promise<LoopOutcome> => {
    const started = performance.now();
    let paused = 0;
    const manifest = await steps.prepare(ref, settings);
    const chunkStarted = performance.now();
    for (let step = 0; step < manifest.chunkCount; step += 1) {
      if (pauseMs > 0) {
        const pauseStarted = performance.now();
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
        paused += performance.now() - pauseStarted;
      }
      await steps.memoryStep(ref, settings, step);
    }
    const chunkStepMs = performance.now() - chunkStarted - paused;
    const result = await steps.answer(ref, settings, manifest.chunkCount);
    const ms = performance.now() - started - paused;
    return { activities: manifest.chunkCount + 2, chunkSteps: manifest.chunkCount, chunkStepMs, ms, result };
  };
  process.on('message', (request: LoopRequest) => {
    runEpisode(request).then(
      (outcome) => process.send?.({ id: request.id, outcome } satisfies LoopReply),
      (error: Error) =>
        process.send?.({ id: request.id, error: error.stack ?? error.message } satisfies LoopReply),
    );
  });
  process.on('SIGTERM', () => {
    void policy.dispose().finally(() => process.exit(0));
  });
  process.send?.({ ready: true } satisfies LoopReply);
}

if (require.main === module) {
  serve().catch((error: Error) => {
    console.error(error);
    process.exit(1);
  });
}
