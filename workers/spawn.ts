/** Worker processes started from code (fault tests, benchmarks): tsx's loader in one Node process, so a kill -9 hits the worker itself. */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { RememConfig } from '../temporal.config';
import { projectRoot } from '../temporal.config';
import type { WorkerRole } from './worker';

const entryPoints: Record<WorkerRole, string> = {
  inference: 'workers/inference.ts',
  orchestration: 'workers/orchestration.ts',
  trainer: 'workers/trainer.ts',
  all: 'workers/all-in-one.ts',
};

/** The environment that points a worker process at the same servers, queues, storage and model as `config`. */
export function workerEnvironment(config: RememConfig): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REMEMR1_TEMPORAL_ADDRESS: config.temporal.address,
    REMEMR1_TEMPORAL_NAMESPACE: config.temporal.namespace,
    REMEMR1_TASK_QUEUE_ORCHESTRATION: config.taskQueues.orchestration,
    REMEMR1_TASK_QUEUE_INFERENCE: config.taskQueues.inference,
    REMEMR1_TASK_QUEUE_TRAINER: config.taskQueues.trainer,
    REMEMR1_MODEL: config.model.path,
    REMEMR1_EXECUTION_PROVIDER: config.model.executionProvider,
    REMEMR1_INTRA_OP_THREADS: String(config.model.intraOpThreads),
    REMEMR1_ORT_SPIN_WAIT: String(config.model.spinWait),
    REMEMR1_MAX_BATCH_SIZE: String(config.model.maxBatchSize),
    REMEMR1_INDEX_WRITES_IN_FLIGHT: String(config.worker.indexWritesInFlight),
    REMEMR1_STORAGE: config.storage.kind,
  };
  if (config.metrics.prometheusBindAddress) env.REMEMR1_METRICS_BIND_ADDRESS = config.metrics.prometheusBindAddress;
  if (config.health.bindAddress) env.REMEMR1_HEALTH_BIND_ADDRESS = config.health.bindAddress;
  // The same connection (TLS files, API key) and encryption keys as the parent.
  const { tls } = config.temporal;
  env.REMEMR1_TEMPORAL_TLS = String(tls.enabled);
  if (tls.serverNameOverride) env.REMEMR1_TEMPORAL_TLS_SERVER_NAME = tls.serverNameOverride;
  if (tls.serverRootCACertificateFile) env.REMEMR1_TEMPORAL_TLS_CA = tls.serverRootCACertificateFile;
  if (tls.clientCertificateFile) env.REMEMR1_TEMPORAL_TLS_CERT = tls.clientCertificateFile;
  if (tls.clientKeyFile) env.REMEMR1_TEMPORAL_TLS_KEY = tls.clientKeyFile;
  if (config.encryption.keysFile) env.REMEMR1_ENCRYPTION_KEYS_FILE = config.encryption.keysFile;
  if (config.storage.kind === 'fs') env.REMEMR1_STORAGE_ROOT = config.storage.root;
  else {
    env.REMEMR1_S3_ENDPOINT = config.storage.endpoint;
    env.REMEMR1_S3_BUCKET = config.storage.bucket;
    env.REMEMR1_S3_PREFIX = config.storage.prefix;
    const sse = config.storage.serverSideEncryption;
    if (sse) {
      env.REMEMR1_S3_SSE = sse.algorithm;
      if (sse.kmsKeyId) env.REMEMR1_S3_SSE_KMS_KEY_ID = sse.kmsKeyId;
      if (sse.bucketKeyEnabled !== undefined) env.REMEMR1_S3_SSE_BUCKET_KEY = String(sse.bucketKeyEnabled);
    }
  }
  return env;
}

/**
 * Forks a TypeScript module (through tsx's loader) with an IPC channel, pointed at the same servers, storage and
 * model as `config`; its output goes to this process's.
 */
export function forkWithConfig(modulePath: string, args: readonly string[], config: RememConfig): ChildProcess {
  return fork(modulePath, [...args], {
    execArgv: ['--require', require.resolve('tsx/cjs')],
    env: workerEnvironment(config),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves once the worker says it is polling. */
  ready: Promise<void>;
  exited: Promise<number | null>;
}

/** `extraEnv`: settings outside the configuration, such as REMEMR1_LOG_FORMAT. */
export function startWorkerProcess(role: WorkerRole, config: RememConfig, extraEnv: NodeJS.ProcessEnv = {}): WorkerProcess {
  const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(projectRoot, entryPoints[role])], {
    cwd: projectRoot,
    env: { ...workerEnvironment(config), ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (data: Buffer): void => {
      output += data.toString();
      if (output.includes('worker polling')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => reject(new Error(`worker process exited (${code}) before polling:\n${output}`)));
    setTimeout(() => reject(new Error(`worker process not polling after 90s:\n${output}`)), 90_000).unref();
  });
  return { child, output: () => output, ready, exited };
}

/** SIGKILL: no chance to finish or hand back anything, as when a machine dies. */
export async function killHard(worker: WorkerProcess): Promise<void> {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  worker.child.kill('SIGKILL');
  await worker.exited;
}
