/**
 * A Temporal codec server (node:http): the `/encode` and `/decode` JSON endpoints that the Temporal Web UI
 * (`--ui-codec-endpoint`) and CLI (`--codec-endpoint`) call to show encrypted payloads decrypted to whoever may reach
 * it. CORS admits only the configured UI origins; an optional bearer token (REMEMR1_CODEC_SERVER_TOKEN) is checked
 * for callers that can send one (`temporal … --codec-auth`). Keys stay in this process; errors never carry them.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';

/** Payloads as JSON on the wire (proto3 JSON: bytes in base64). */
interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** 127.0.0.1 unless told otherwise: a codec server decrypts for anyone who reaches it. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Origins (scheme://host:port) of the Web UIs that may call it from a browser. */
  allowedOrigins: readonly string[];
  /** When set, every request must carry `Authorization: Bearer <token>` (preflights excepted). */
  token?: string;
}

export interface RunningCodecServer {
  url: string;
  close(): Promise<void>;
}

/** Largest request body accepted: a page of history payloads (each at most 2 MB in Temporal). */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

function fromJson(payload: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [key, value] of Object.entries(payload.metadata ?? {})) metadata[key] = Buffer.from(value, 'base64');
  return { metadata, data: Buffer.from(payload.data ?? '', 'base64') };
}

function toJson(payload: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(payload.metadata ?? {})) if (value) metadata[key] = Buffer.from(value).toString('base64');
  return { metadata, data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64') };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readBody(request: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`));
        request.destroy();
      } else chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function parsePayloads(body: string): Payload[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new HttpError(400, 'expected a JSON body {"payloads": [...]}');
  }
  const payloads = (parsed as { payloads?: unknown }).payloads;
  if (!Array.isArray(payloads)) throw new HttpError(400, 'expected a JSON body {"payloads": [...]}');
  return payloads.map((payload) => fromJson(payload as JsonPayload));
}

export function startCodecServer(options: CodecServerOptions): Promise<RunningCodecServer> {
  const allowed = new Set(options.allowedOrigins.map((origin) => new URL(origin).origin));
  const server = http.createServer((request, response) => {
    const origin = request.headers.origin;
    const corsOk = origin !== undefined && allowed.has(origin);
    if (corsOk) {
      response.setHeader('Access-Control-Allow-Origin', origin);
      response.setHeader('Access-Control-Allow-Credentials', 'true');
      response.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      response.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
    }
    response.setHeader('Vary', 'Origin');
    const send = (status: number, body: unknown): void => {
      response.writeHead(status, { 'Content-Type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (request.method === 'OPTIONS') {
      response.writeHead(corsOk ? 204 : 403);
      response.end();
      return;
    }
    // A browser page of another origin gets nothing (its request has an Origin the server does not admit).
    if (origin !== undefined && !corsOk) return send(403, { message: `origin ${origin} is not allowed` });
    const route = /\/(encode|decode)$/.exec((request.url ?? '').split('?')[0]);
    if (request.method !== 'POST' || route === null) return send(404, { message: 'POST /encode or /decode' });
    if (options.token !== undefined && request.headers.authorization !== `Bearer ${options.token}`) {
      return send(401, { message: 'missing or wrong Authorization: Bearer token' });
    }
    void readBody(request)
      .then(async (body) => {
        const payloads = parsePayloads(body);
        const out = route[1] === 'encode' ? await options.codec.encode(payloads) : await options.codec.decode(payloads);
        send(200, { payloads: out.map(toJson) });
      })
      .catch((error: Error) => send(error instanceof HttpError ? error.status : 400, { message: error.message }));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      const { address, port } = server.address() as AddressInfo;
      const host = address.includes(':') ? `[${address}]` : address;
      resolve({
        url: `http://${host}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
