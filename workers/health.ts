/**
 * A worker process's health endpoint, for Kubernetes probes: `/healthz` answers 200 while the process serves
 * HTTP at all (liveness), `/readyz` answers 200 only while every worker of the process is polling and the
 * Temporal server answers on its connection (readiness). Plain `node:http`, bound where the configuration says.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What `/readyz` asks: `null` when ready, else why not (one line, sent as the 503 body). */
export type ReadinessProbe = () => Promise<string | null>;

export interface HealthServer {
  /** The bound `host:port` (the port is the real one when 0 was asked for). */
  address: string;
  /** Swaps what readiness means, e.g. from "starting" to the running workers' state. */
  setReadiness(probe: ReadinessProbe): void;
  close(): Promise<void>;
}

/** Splits `host:port` (IPv6 hosts in brackets, e.g. `[::]:8080`); one line on anything else. */
export function parseBindAddress(bindAddress: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(bindAddress);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535)
    throw new Error(`expected host:port to bind, for example 0.0.0.0:8080, got "${bindAddress}"`);
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

/** How long one readiness check may take before it counts as "not ready" (probes have their own timeouts). */
const READINESS_TIMEOUT_MS = 3000;

async function checkReadiness(probe: ReadinessProbe): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(
      () => resolve(`readiness check took longer than ${READINESS_TIMEOUT_MS / 1000} s`),
      READINESS_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([
      probe().catch((error: unknown) => (error instanceof Error ? error.message : String(error))),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function startHealthServer(bindAddress: string, initial: ReadinessProbe): Promise<HealthServer> {
  const { host, port } = parseBindAddress(bindAddress);
  let readiness = initial;
  const server = http.createServer((request, response) => {
    const reply = (status: number, body: string): void => {
      response.writeHead(status, {
        'content-type': 'text/plain; charset=utf-8',
        'cache-control': 'no-store',
      });
      response.end(`${body}\n`);
    };
    const url = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') return reply(405, 'method not allowed');
    if (url === '/healthz') return reply(200, 'ok');
    if (url === '/readyz') {
      void checkReadiness(readiness).then((problem) =>
        problem === null ? reply(200, 'ready') : reply(503, problem),
      );
      return;
    }
    reply(404, 'not found: try /healthz or /readyz');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(`health server cannot listen on ${bindAddress}: ${error.code ?? error.message}`)),
    );
    server.listen(port, host, () => resolve());
  });
  // Probes must not keep a stopping process alive.
  server.unref();
  const bound = server.address() as AddressInfo;
  return {
    address: `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`,
    setReadiness(probe) {
      readiness = probe;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
