/** Shared process entry for workers: load configuration, start, stop gracefully on SIGINT / SIGTERM. */
import { loadConfig } from '../temporal.config';
import { startWorkers, type WorkerRole } from './worker';

export function runWorkerMain(role: WorkerRole): void {
  (async () => {
    const config = loadConfig();
    const running = await startWorkers({ role, config });
    console.log(`[worker] ${role} worker polling ${config.temporal.address} (namespace ${config.temporal.namespace})`);
    // Temporal's runtime already turns SIGINT/SIGTERM into a graceful worker shutdown; we only wait for it.
    await running.done;
    console.log(`[worker] ${role} worker stopped`);
  })().catch((error: Error) => {
    console.error(`[worker] ${error.message}`);
    process.exit(1);
  });
}
