/** Shared process entry for workers: load configuration, start, stop gracefully on SIGINT / SIGTERM. */
import type { RememConfig } from '../temporal.config';
import { loadConfig } from '../temporal.config';
import { startHealthServer, type HealthServer } from './health';
import { startWorkers, type RunningWorkers, type WorkerRole } from './worker';

export interface ConfiguredHealth {
  /** From now on `/readyz` reports on these workers. */
  attach(running: RunningWorkers): void;
  close(): Promise<void>;
}

/**
 * The health server of a worker process, if the configuration asks for one. It is up before the (possibly long)
 * model load, so that liveness holds while readiness says "starting".
 */
export async function startConfiguredHealth(config: RememConfig): Promise<ConfiguredHealth> {
  let server: HealthServer | undefined;
  if (config.health.bindAddress) {
    server = await startHealthServer(config.health.bindAddress, () =>
      Promise.resolve('starting: loading the model and connecting'),
    );
    console.log(`[worker] health on http://${server.address}/healthz and /readyz`);
  }
  return {
    attach(running) {
      server?.setReadiness(() => running.readiness());
      if (config.metrics.prometheusBindAddress) {
        console.log(`[worker] metrics on http://${config.metrics.prometheusBindAddress}/metrics`);
      }
    },
    close: async () => server?.close(),
  };
}

export function runWorkerMain(role: WorkerRole): void {
  let health: ConfiguredHealth | undefined;
  (async () => {
    const config = loadConfig();
    health = await startConfiguredHealth(config);
    const running = await startWorkers({ role, config });
    health.attach(running);
    console.log(`[worker] ${role} worker polling ${config.temporal.address} (namespace ${config.temporal.namespace})`);
    // Temporal's runtime already turns SIGINT/SIGTERM into a graceful worker shutdown; we only wait for it.
    await running.done;
    await health.close();
    console.log(`[worker] ${role} worker stopped`);
  })().catch(async (error: Error) => {
    console.error(`[worker] ${error.message}`);
    await health?.close();
    process.exit(1);
  });
}
