/** What a server-backed test holds — the bundled policy, a blob store, in-process workers, a client — closed together. */
import type { Client } from '@temporalio/client';
import { stackPaths, type StackPaths } from '../../infra/local-stack';
import { loadPolicy, type Policy } from '../../lib/model';
import { createBlobStore, type BlobStore } from '../../lib/storage';
import type { RememConfig } from '../../temporal.config';
import { startWorkers, type RunningWorkers, type WorkerRole } from '../../workers/worker';
import { connectTestClient, freePortPair, tempDir } from './stack';

export class WorkerRig {
  private constructor(
    readonly config: RememConfig,
    readonly policy: Policy | undefined,
    readonly store: BlobStore,
    readonly workers: RunningWorkers,
    readonly client: Client,
  ) {}

  /** Workers of `role` in this process (the policy is loaded only when the role runs model activities). */
  static async start(config: RememConfig, role: WorkerRole = 'all'): Promise<WorkerRig> {
    const policy = role === 'orchestration' ? undefined : await loadPolicy(config.model.path, { maxBatchSize: 4 });
    const store = createBlobStore(config.storage);
    const workers = await startWorkers({ role, config, policy, store });
    return new WorkerRig(config, policy, store, workers, await connectTestClient(config));
  }

  async close(): Promise<void> {
    await this.workers.shutdown().catch(() => undefined);
    await this.client.connection.close();
    await this.policy?.dispose();
    await this.store.close();
  }
}

/** A private place for a server of the test's own: a state folder and a free loopback port. */
export async function privateServerSlot(name: string): Promise<{ paths: StackPaths; address: string }> {
  return { paths: stackPaths(tempDir(`${name}-stack`)), address: `127.0.0.1:${await freePortPair()}` };
}
