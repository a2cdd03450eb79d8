/**
 * The one set of Temporal connection options (address, namespace, TLS / mTLS files, API key) that the CLI, the
 * workers, the local stack and the tests all build from `temporal.config.ts`, so that a setting that works for one
 * works for every one; and connection failures as one clear line naming the address and the setting to check (instead
 * of `tonic::transport::Error` or a raw status dump), for the CLI's client and for workers alike.
 */
import * as fs from 'node:fs';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import type { RememConfig } from '../../temporal.config';
import { diagnoseTransport, type TransportProblem } from './diagnose';

/** How long a command waits for the Temporal server before it says that it cannot reach it. */
export const CONNECT_TIMEOUT_MS = 3000;

/** Ends a command with one line; no retry helps (the server, namespace, certificate or key named is wrong or down). */
export class TemporalConnectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemporalConnectError';
  }
}

/** The part of the configuration a connection depends on. */
export type TemporalSettings = Pick<RememConfig['temporal'], 'address' | 'namespace' | 'tls' | 'apiKey'>;

/** What both `Connection.connect` (client) and `NativeConnection.connect` (worker) take. */
export interface TemporalConnectionOptions {
  address: string;
  /** `undefined` lets the SDK decide: plain text, or TLS when an API key is given (Temporal Cloud). */
  tls?: TLSConfig;
  apiKey?: string;
}

/** The setting (file field and environment variable) behind each option, for error messages. */
export const settingNames = {
  address: 'temporal.address (REMEMR1_TEMPORAL_ADDRESS)',
  namespace: 'temporal.namespace (REMEMR1_TEMPORAL_NAMESPACE)',
  tls: 'temporal.tls.enabled (REMEMR1_TEMPORAL_TLS)',
  serverName: 'temporal.tls.serverNameOverride (REMEMR1_TEMPORAL_TLS_SERVER_NAME)',
  ca: 'temporal.tls.serverRootCACertificateFile (REMEMR1_TEMPORAL_TLS_CA)',
  cert: 'temporal.tls.clientCertificateFile (REMEMR1_TEMPORAL_TLS_CERT)',
  key: 'temporal.tls.clientKeyFile (REMEMR1_TEMPORAL_TLS_KEY)',
  apiKey: 'TEMPORAL_API_KEY',
} as const;

function readSettingFile(file: string, setting: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new TemporalConnectError(`cannot read ${file} (${code}), given by ${setting}`);
  }
}

/** Reads the TLS files the configuration names; a missing or unreadable file is one line naming its setting. */
export function temporalConnectionOptions(temporal: TemporalSettings): TemporalConnectionOptions {
  const { tls } = temporal;
  const options: TemporalConnectionOptions = { address: temporal.address };
  if (temporal.apiKey) options.apiKey = temporal.apiKey;
  if (!tls.enabled) return options;
  options.tls = {
    ...(tls.serverNameOverride ? { serverNameOverride: tls.serverNameOverride } : {}),
    ...(tls.serverRootCACertificateFile
      ? { serverRootCACertificate: readSettingFile(tls.serverRootCACertificateFile, settingNames.ca) }
      : {}),
    ...(tls.clientCertificateFile && tls.clientKeyFile
      ? {
          clientCertPair: {
            crt: readSettingFile(tls.clientCertificateFile, settingNames.cert),
            key: readSettingFile(tls.clientKeyFile, settingNames.key),
          },
        }
      : {}),
  };
  return options;
}

/** Loopback hosts: the only ones for which the project may start its own dev server. */
export function isLoopbackAddress(address: string): boolean {
  const host = address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Why the local dev server may not be started for these settings (undefined: it may). The project's dev server
 * serves plain text without authentication on loopback only, so settings that ask for anything else name a server
 * that must already be running.
 */
export function devServerRefusal(temporal: TemporalSettings): string | undefined {
  if (!isLoopbackAddress(temporal.address)) return 'it is not a loopback address';
  if (temporal.tls.enabled) return `${settingNames.tls} asks for TLS, and the local dev server serves plain text`;
  if (temporal.apiKey) return `${settingNames.apiKey} is set, and the local dev server takes no API key`;
  return undefined;
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0].slice(0, 200);
}

function connectHint(temporal: TemporalSettings): string {
  return isLoopbackAddress(temporal.address)
    ? `start it with \`npm run stack:start\` or check ${settingNames.address}`
    : `check ${settingNames.address} and that the server is reachable from here`;
}

/** One line for a problem found by {@link diagnoseTransport}: what went wrong and the setting to check. */
export function explainTransportProblem(temporal: TemporalSettings, problem: TransportProblem): TemporalConnectError {
  const at = `the Temporal server at ${temporal.address}`;
  const unreachable = (reason: string): TemporalConnectError =>
    new TemporalConnectError(`cannot reach ${at} (${reason}); ${connectHint(temporal)}`);
  switch (problem.kind) {
    case 'refused':
      return unreachable('connection refused');
    case 'unknown-host':
      return unreachable('unknown host');
    case 'no-answer':
      return unreachable(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`);
    case 'unreachable':
      return unreachable('network unreachable');
    case 'untrusted-certificate':
      return new TemporalConnectError(
        `the TLS certificate of ${at} is not trusted (${problem.detail}); check ${settingNames.ca}`,
      );
    case 'wrong-host-name':
      return new TemporalConnectError(
        `the TLS certificate of ${at} is not valid for the host name checked (${problem.detail}); check ${settingNames.serverName}`,
      );
    case 'client-certificate-refused':
      return new TemporalConnectError(
        `${at} refused the client certificate (${problem.detail}); check ${settingNames.cert} and ${settingNames.key}`,
      );
    case 'not-tls':
      return new TemporalConnectError(`${at} does not speak TLS (${problem.detail}); check ${settingNames.tls}`);
    case 'tls-required':
      return new TemporalConnectError(`${at} did not answer in plain text (does it want TLS?); check ${settingNames.tls}`);
    case 'tls-failed':
      return new TemporalConnectError(
        `the TLS handshake with ${at} failed (${problem.detail}); check ${settingNames.ca}, ${settingNames.cert} and ${settingNames.key}`,
      );
  }
}

/**
 * One line for a failed connection from the error alone (when the transport itself works, e.g. credentials refused
 * by the server): what went wrong in a few words, and the setting to check.
 */
export function describeConnectFailure(temporal: TemporalSettings, error: unknown): TemporalConnectError {
  const text = error instanceof Error ? `${error.message} ${String((error as { cause?: unknown }).cause ?? '')}` : String(error);
  const at = `the Temporal server at ${temporal.address}`;
  if (/UNAUTHENTICATED|PERMISSION_DENIED|unauthori[sz]ed|permission denied/i.test(text)) {
    return new TemporalConnectError(
      `${at} refused the credentials; check ${temporal.apiKey ? settingNames.apiKey : `${settingNames.cert} and ${settingNames.key}`}`,
    );
  }
  let reason = firstLine(error).slice(0, 160);
  if (/connection refused|ECONNREFUSED/i.test(text)) reason = 'connection refused';
  else if (/deadline|timed? ?out|ETIMEDOUT/i.test(text)) reason = `no answer within ${CONNECT_TIMEOUT_MS / 1000} s`;
  else if (/dns|resolve|ENOTFOUND|EAI_AGAIN|name or service not known/i.test(text)) reason = 'unknown host';
  return new TemporalConnectError(`cannot reach ${at} (${reason}); ${connectHint(temporal)}`);
}

/**
 * Why a connection failed, as one line: the transport is probed (TCP, then TLS with the same files) to name the
 * problem precisely; when the transport works, the error itself is described.
 */
export async function diagnoseConnectFailure(temporal: TemporalSettings, error: unknown): Promise<TemporalConnectError> {
  if (error instanceof TemporalConnectError) return error;
  let problem: TransportProblem | undefined;
  try {
    problem = await diagnoseTransport(temporalConnectionOptions(temporal));
  } catch {
    problem = undefined;
  }
  return problem === undefined ? describeConnectFailure(temporal, error) : explainTransportProblem(temporal, problem);
}
/** The part of a gRPC WorkflowService that the namespace check needs (client and worker connections have it). */
interface DescribesNamespaces {
  describeNamespace(request: { namespace: string }): Promise<unknown>;
}

const GRPC_NOT_FOUND = 5;

/** Resolves like `work`, or rejects after `ms` (the late result, if any, is handed to `late` to be released). */
export function withTimeout<T>(work: Promise<T>, ms: number, late: (value: T) => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  return Promise.race([
    work.then((value) => {
      if (timedOut) late(value);
      return value;
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new Error(`timed out after ${ms} ms`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Opens a connection (a client's or a worker's) and checks the namespace: a server that does not answer within
 * a few seconds, a certificate or key it refuses, or a namespace it lacks, is one line naming the address and the
 * setting to check; the connection is closed on failure.
 */
export async function connectChecked<
  C extends { workflowService: DescribesNamespaces; close(): Promise<void> },
>(open: () => Promise<C>, temporal: TemporalSettings): Promise<C> {
  let connection: C;
  try {
    connection = await withTimeout(open(), CONNECT_TIMEOUT_MS + 2000, (late) => void late.close().catch(() => undefined));
  } catch (error) {
    throw await diagnoseConnectFailure(temporal, error);
  }
  try {
    await checkNamespace(connection.workflowService, temporal);
  } catch (error) {
    await connection.close();
    throw error;
  }
  return connection;
}

/** Fails with one line when the namespace does not exist on the server (or the server refuses to say). */
export async function checkNamespace(service: DescribesNamespaces, temporal: TemporalSettings): Promise<void> {
  const { namespace, address } = temporal;
  try {
    await service.describeNamespace({ namespace });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === GRPC_NOT_FOUND || /namespace .* not found|not found.*namespace/i.test(String(error))) {
      throw new TemporalConnectError(
        `namespace ${namespace} does not exist on the Temporal server at ${address}; create it (\`temporal operator namespace create ${namespace}\`) or check ${settingNames.namespace}`,
      );
    }
    throw describeConnectFailure(temporal, error);
  }
}
