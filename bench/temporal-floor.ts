/**
 * Runs the benchmark's floor workflow (temporal-floor-workflow.ts) in the same topology as the episodes: the
 * workflow worker in the calling process, the activity worker in a process of its own (started from this file).
 */
import { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { loadConfig, type RememConfig } from '../temporal.config';
import { forkWithConfig } from '../workers/spawn';
import { connectWorker } from '../workers/worker';
import { temporalFloorWorkflow, type FloorActivities } from './temporal-floor-workflow';

const activities: FloorActivities = {
  async busyWait(ms: number): Promise<void> {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      // Busy, like a forward pass: an idle wait would leave the CPU to Temporal's own work.
    }
  },
};

export interface TemporalFloor {
  /** Runs one floor episode: one activity per duration, one after another; returns its wall time in ms. */
  run(workflowId: string, durationsMs: number[]): Promise<number>;
  stop(): Promise<void>;
}

export async function startTemporalFloor(
  config: RememConfig,
  client: Client,
  stamp: string,
): Promise<TemporalFloor> {
  const workflowQueue = `bench-floor-wf-${stamp}`;
  const activityQueue = `bench-floor-act-${stamp}`;
  const child = forkWithConfig(__filename, [activityQueue], config);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    void exited.then(() => reject(new Error('the floor activity worker exited before polling')));
  });
  const connection: NativeConnection = await connectWorker(config);
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: workflowQueue,
    workflowsPath: require.resolve('./temporal-floor-workflow'),
  });
  const running = worker.run();
  return {
    async run(workflowId, durationsMs) {
      const started = performance.now();
      await client.workflow.execute(temporalFloorWorkflow, {
        workflowId,
        taskQueue: workflowQueue,
        args: [activityQueue, durationsMs],
      });
      return performance.now() - started;
    },
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function serveActivities(activityQueue: string): Promise<void> {
  const config = loadConfig();
  const connection = await connectWorker(config);
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: activityQueue,
    activities,
  });
  process.on('SIGTERM', () => worker.shutdown());
  const running = worker.run();
  process.send?.({ ready: true });
  await running;
  await connection.close();
}

if (require.main === module) {
  serveActivities(process.argv[2]).catch((error: Error) => {
    console.error(error);
    process.exit(1);
  });
}
