/**
 * A fault test's world: a blob store, workers of some roles in this process, a client, and worker processes
 * started to be killed (all of them are killed, and everything closed, at the end).
 */
import type { Client } from '@temporalio/client';
import { createBlobStore, type BlobStore } from '../../lib/storage';
import type { RememConfig } from '../../temporal.config';
import { killHard, startWorkerProcess, type WorkerProcess } from '../../workers/spawn';
import { startWorkers, type RunningWorkers, type WorkerRole } from '../../workers/worker';
import { connectTestClient } from './stack';

export class CrashHarness {
  private readonly processes: WorkerProcess[] = [];

  private constructor(
    readonly config: RememConfig,
    readonly store: BlobStore,
    readonly workers: RunningWorkers,
    readonly client: Client,
  ) {}

  static async start(config: RememConfig, role: WorkerRole = 'orchestration'): Promise<CrashHarness> {
    const store = createBlobStore(config.storage);
    const workers = await startWorkers({ role, config, store });
    return new CrashHarness(config, store, workers, await connectTestClient(config));
  }

  /** A worker process of `role`, polling once this resolves. */
  async startProcess(role: WorkerRole): Promise<WorkerProcess> {
    const worker = startWorkerProcess(role, this.config);
    this.processes.push(worker);
    await worker.ready;
    return worker;
  }

  async close(): Promise<void> {
    for (const worker of this.processes) await killHard(worker);
    await this.workers.shutdown();
    await this.client.connection.close();
    await this.store.close();
  }
}
