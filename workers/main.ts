/** Shared process entry for workers: load configuration, start, stop gracefully on SIGINT / SIGTERM. */
import { loadConfig } from '../temporal.config';
import { startHealthServer, type HealthServer } from './health';
import { startWorkers, type WorkerRole } from './worker';

export function runWorkerMain(role: WorkerRole): void {
  let health: HealthServer | undefined;
  (async () => {
    const config = loadConfig();
    // Up before the (possibly long) model load, so that liveness holds while readiness says "starting".
    if (config.health.bindAddress) {
      health = await startHealthServer(config.health.bindAddress, () => Promise.resolve('starting: loading the model and connecting'));
      console.log(`[worker] health on http://${health.address}/healthz and /readyz`);
    }
    const running = await startWorkers({ role, config });
    health?.setReadiness(() => running.readiness());
    if (config.metrics.prometheusBindAddress) console.log(`[worker] metrics on http://${config.metrics.prometheusBindAddress}/metrics`);
    console.log(`[worker] ${role} worker polling ${config.temporal.address} (namespace ${config.temporal.namespace})`);
    // Temporal's runtime already turns SIGINT/SIGTERM into a graceful worker shutdown; we only wait for it.
    await running.done;
    await health?.close();
    console.log(`[worker] ${role} worker stopped`);
  })().catch(async (error: Error) => {
    console.error(`[worker] ${error.message}`);
    await health?.close();
    process.exit(1);
  });
}
