/**
 * The baseline of the orchestration benchmark: episodes run by a plain loop over the same episode steps, in a
 * process of its own, like the inference worker's (a process that also hosts a Temporal worker runs the model
 * measurably slower, which would flatter Temporal). The parent sends episode references over IPC; this process
 * times each loop and each step itself, so the IPC round trip is not counted.
 */
import { EpisodeSteps } from '../lib/episode/steps';
import type { EpisodeRef, EpisodeResult, EpisodeSettings } from '../lib/episode/types';
import { loadPolicy } from '../lib/model';
import { createBlobStore } from '../lib/storage';
import { loadConfig, type RememConfig } from '../temporal.config';
import { forkWithConfig } from '../workers/spawn';
import { policyOptions } from '../workers/worker';

interface LoopRequest {
  id: number;
  ref: EpisodeRef;
  settings: EpisodeSettings;
}

export interface LoopOutcome {
  /** Prepare + chunk steps + answer. */
  activities: number;
  chunkSteps: number;
  chunkStepMs: number;
  /** Each step's time, in order (prepare, chunk steps, answer). */
  activityMs: number[];
  /** The whole episode, as timed inside the loop's process. */
  ms: number;
  result: EpisodeResult;
}

type LoopReply = { id: number; outcome: LoopOutcome } | { id: number; error: string } | { ready: true };

export interface PlainLoop {
  run(ref: EpisodeRef, settings: EpisodeSettings): Promise<LoopOutcome>;
  stop(): Promise<void>;
}

/** Forks the loop process on `config`'s storage and model; resolves once its policy is loaded. */
export async function startPlainLoop(config: RememConfig): Promise<PlainLoop> {
  const child = forkWithConfig(__filename, [], config);
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
    run(ref, settings) {
      const id = nextId++;
      return new Promise<LoopOutcome>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, ref, settings } satisfies LoopRequest);
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
  const runEpisode = async ({ ref, settings }: LoopRequest): Promise<LoopOutcome> => {
    const activityMs: number[] = [];
    const timed = async <T>(work: () => Promise<T>): Promise<T> => {
      const started = performance.now();
      const value = await work();
      activityMs.push(performance.now() - started);
      return value;
    };
    const started = performance.now();
    const manifest = await timed(() => steps.prepare(ref, settings));
    for (let step = 0; step < manifest.chunkCount; step += 1)
      await timed(() => steps.memoryStep(ref, settings, step));
    const result = await timed(() => steps.answer(ref, settings, manifest.chunkCount));
    const ms = performance.now() - started;
    const chunkStepMs = activityMs.slice(1, -1).reduce((sum, value) => sum + value, 0);
    return {
      activities: activityMs.length,
      chunkSteps: manifest.chunkCount,
      chunkStepMs,
      activityMs,
      ms,
      result,
    };
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
