/** Helpers for tests that use the real servers started by the global setup. */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { connectTemporalClient } from '../../lib/temporal/client';
import { loadConfig, type RememConfig } from '../../temporal.config';
import { defaultEpisodeSettings, type EpisodeSettings } from '../../lib/episode/types';

/** The tests' own namespace (the global setup creates it and points every test at it). */
export { testNamespace } from '../setup/stack-state';

/** Fails loudly (never skips) when the global setup did not provide the servers. */
export function requireStackEnvironment(): void {
  if (process.env.REMEMR1_SKIP_STACK === '1') {
    throw new Error('this suite needs the real Temporal and S3 servers; run it without REMEMR1_SKIP_STACK=1 (npm test starts them)');
  }
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `rememr1-${prefix}-`));
}

/**
 * Configuration for one test: its own task queues (test files run in parallel against one server),
 * fast retries, and short heartbeat timeouts so that lost workers are noticed in seconds.
 */
export function testConfig(name: string, overrides: { storage?: RememConfig['storage']; address?: string } = {}): RememConfig {
  const suffix = `${name}-${randomUUID().slice(0, 8)}`;
  const base = loadConfig();
  const quickRetry = { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '2s', maximumAttempts: 0 };
  return {
    ...base,
    temporal: { ...base.temporal, address: overrides.address ?? base.temporal.address },
    taskQueues: { orchestration: `orchestration-${suffix}`, inference: `inference-${suffix}`, trainer: `trainer-${suffix}` },
    activities: {
      io: { startToCloseTimeout: '1m', retry: quickRetry },
      modelStep: { startToCloseTimeout: '5m', heartbeatTimeout: '4s', retry: quickRetry },
      policyUpdate: { startToCloseTimeout: '10m', heartbeatTimeout: '5s', retry: quickRetry },
    },
    storage: overrides.storage ?? { kind: 'fs', root: tempDir(`${name}-blobs`) },
    worker: { ...base.worker, shutdownGraceTime: '2s' },
  };
}

/** Small, fast episodes on the bundled model. */
export const testSettings: EpisodeSettings = {
  ...defaultEpisodeSettings,
  chunkTokens: 128,
  memoryMaxNewTokens: 12,
  answerMaxNewTokens: 8,
};

/** A client with the project's own connection options and codec (`raw`: no codec, histories as stored). */
export async function connectTestClient(config: RememConfig, options: { raw?: boolean } = {}): Promise<Client> {
  return connectTemporalClient(config, options.raw ? { dataConverter: null } : {});
}

export async function eventually<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** A loopback port that was free a moment ago, with the next one free too (servers that take port + 1). */
export async function freePortPair(): Promise<number> {
  const net = await import('node:net');
  const isFree = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if ((await isFree(port)) && (await isFree(port + 1))) return port;
  }
  throw new Error('no free loopback port pair found');
}
