/**
 * Building and running workers. One kind per role:
 *  - inference: the model activities (prepare, memory step, answer) on the inference task queue; loads the policy once
 *    and lets concurrent activities share batched forward passes;
 *  - orchestration: the workflows and the light batch activities on the orchestration task queue;
 *  - trainer: the policy update (and publishing model folders as policy versions) on the trainer task queue; one
 *    update at a time, since an update uses every core it is given;
 *  - all: every role in one process (the embedded default).
 * Scale-out = more processes of a role, on more machines, against one Temporal cluster and one blob store.
 */
import * as path from 'node:path';
import {
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  bundleWorkflowCode,
  type LogEntry,
  type LogLevel,
  type MetricsExporterConfig,
  type WorkflowBundle,
} from '@temporalio/worker';
import { IllegalStateError, type Duration } from '@temporalio/common';
import { createBatchActivities } from '../activities/batch';
import { createModelActivities } from '../activities/model';
import { histogramBuckets, logIdsInterceptor } from '../activities/observability';
import { createScoringActivities } from '../activities/scoring';
import { createTrainerActivities } from '../activities/training';
import { createTrainingDataActivities } from '../activities/training-data';
import { policyProvider } from '../lib/episode/policies';
import { loadConfiguredPolicy } from '../lib/episode/rule-policy';
import type { Policy, PolicyOptions } from '../lib/model';
import { PolicyVersionCache } from '../lib/training/policy-versions';
import { S3BlobStore, createBlobStore, type BlobStore } from '../lib/storage';
import { connectChecked, temporalConnectionOptions } from '../lib/temporal/connect';
import { projectDataConverter } from '../lib/temporal/data-converter';
import type { RememConfig } from '../temporal.config';

export const WORKER_ROLES = ['inference', 'orchestration', 'trainer', 'all'] as const;
export type WorkerRole = (typeof WORKER_ROLES)[number];

let runtimeInstalled = false;
/** Set by a command that reports failures itself (`qa`): its embedded worker does not dump them as well. */
let failuresReportedElsewhere = false;

/**
 * Temporal's logger without noise: an activity-only worker (inference, trainer) has no workflows by design, so the
 * SDK's "No workflows registered" warning says nothing; with `failuresReportedElsewhere`, neither do its dumps of
 * failures that are never retried (the command prints their reason in one line).
 */
class WorkerLogger extends DefaultLogger {
  override log(level: LogLevel, message: string, meta?: Record<string, unknown>): void {
    if (message === 'No workflows registered, not polling for workflow tasks') return;
    if (failuresReportedElsewhere) {
      const error = meta?.error as { nonRetryable?: unknown } | undefined;
      if (message === 'Workflow failed') return;
      if (message === 'Activity failed' && error?.nonRetryable === true) return;
    }
    super.log(level, message, meta);
  }
}

/** For a command that prints every failure of its batch in one line: the embedded worker does not log them. */
export function reportFailuresElsewhere(): void {
  failuresReportedElsewhere = true;
}

/**
 * Installs Temporal's runtime once per process: logging at REMEMR1_LOG_LEVEL (default INFO), as JSON lines when
 * REMEMR1_LOG_FORMAT=json (for log stores), and the Prometheus endpoint when the configuration names one.
 */
function installRuntime(config: RememConfig): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const level = (process.env.REMEMR1_LOG_LEVEL ?? 'INFO').toUpperCase();
  const levels: LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];
  if (!levels.includes(level as LogLevel))
    throw new Error(`REMEMR1_LOG_LEVEL must be one of ${levels.join(', ')}, got "${level}"`);
  const format = process.env.REMEMR1_LOG_FORMAT ?? 'text';
  if (format !== 'text' && format !== 'json') throw new Error(`REMEMR1_LOG_FORMAT must be text or json, got "${format}"`);
  const { prometheusBindAddress } = config.metrics;
  try {
    Runtime.install({
      logger: new WorkerLogger(level as LogLevel, format === 'json' ? jsonLogLine : undefined),
      telemetryOptions: prometheusBindAddress ? { metrics: prometheusMetricsOptions(prometheusBindAddress) } : undefined,
    });
  } catch (error) {
    // Already installed by the embedding program: its settings win.
    if (error instanceof IllegalStateError) {
      if (prometheusBindAddress) console.warn(`[worker] Temporal's runtime was installed before: no metrics endpoint on ${prometheusBindAddress}`);
      return;
    }
    // Anything else is the metrics endpoint (a port in use, a bad address): one line naming the setting.
    throw new Error(`metrics endpoint ${prometheusBindAddress} (REMEMR1_METRICS_BIND_ADDRESS): ${(error as Error).message}`);
  }
}

/** Temporal's Prometheus exporter, with bucket boundaries that fit the project's histograms. */
export function prometheusMetricsOptions(bindAddress: string): MetricsExporterConfig {
  return { prometheus: { bindAddress, histogramBucketOverrides: histogramBuckets } };
}

/** One JSON object per line: time, level, message and every attribute (workflow, activity, run and episode ids). */
function jsonLogLine(entry: LogEntry): void {
  const { timestampNanos, level, message, meta } = entry;
  const line = JSON.stringify({ time: new Date(Number(timestampNanos / 1_000_000n)).toISOString(), level, message, ...meta }, (_key, value: unknown) =>
    value instanceof Error ? { name: value.name, message: value.message } : typeof value === 'bigint' ? value.toString() : value,
  );
  (level === 'ERROR' || level === 'WARN' ? process.stderr : process.stdout).write(`${line}\n`);
}

/**
 * Connects to the configured server with the project's one set of connection options (TLS / mTLS files, API key)
 * and checks the namespace: one clear line, within seconds, when either is wrong.
 */
export async function connectWorker(config: RememConfig): Promise<NativeConnection> {
  installRuntime(config);
  return connectChecked(() => NativeConnection.connect(temporalConnectionOptions(config.temporal)), config.temporal);
}

const cachedBundles = new Map<string, Promise<WorkflowBundle>>();

/**
 * The workflow bundle, built once per process and failure converter (bundling takes seconds; every worker can share
 * it). With encryption on, the bundle carries the failure converter that encrypts failure messages.
 */
export function workflowBundle(failureConverterPath?: string): Promise<WorkflowBundle> {
  const key = failureConverterPath ?? '';
  let bundle = cachedBundles.get(key);
  if (bundle === undefined) {
    bundle = bundleWorkflowCode({
      workflowsPath: require.resolve('../workflows'),
      workflowInterceptorModules: [require.resolve('../workflows/interceptors')],
      logger: quietBundlerLogger,
      ...(failureConverterPath ? { failureConverterPath } : {}),
    });
    cachedBundles.set(key, bundle);
  }
  return bundle;
}

const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};

export interface RunningWorkers {
  workers: Worker[];
  store: BlobStore;
  policy?: Policy;
  /** Resolves when every worker has stopped (after `shutdown()` or a fatal error). */
  done: Promise<void>;
  /** Graceful: stop polling, let in-flight tasks finish within the configured grace time, then release everything. */
  shutdown(): Promise<void>;
  /** For `/readyz`: null while every worker polls and the server answers on the connection, else why not. */
  readiness(): Promise<string | null>;
}

/** The policy runtime options a model configuration asks for (one mapping for workers, CLI and benchmarks). */
export function policyOptions(model: RememConfig['model']): PolicyOptions {
  return {
    executionProvider: model.executionProvider,
    // 0 in the configuration = let ONNX Runtime choose.
    intraOpThreads: model.intraOpThreads > 0 ? model.intraOpThreads : undefined,
    spinWait: model.spinWait,
    maxBatchSize: model.maxBatchSize,
  };
}

/** Policy versions an inference worker keeps loaded besides its configured model (an ONNX Runtime session each). */
const MAX_LOADED_POLICY_VERSIONS = 2;

export interface StartWorkersOptions {
  role: WorkerRole;
  config: RememConfig;
  connection?: NativeConnection;
  /** Reuse an already loaded policy (tests, benchmarks); otherwise the configured model folder is loaded. */
  policy?: Policy;
  store?: BlobStore;
}

/**
 * Datasets in S3 are read in place by workers whose store is on S3, with the same endpoint and credentials; a
 * worker with a filesystem store has no S3 settings, and refuses such a dataset.
 */
export function bucketOpener(storage: RememConfig['storage']): ((bucket: string) => BlobStore) | undefined {
  if (storage.kind !== 's3') return undefined;
  return (bucket) =>
    new S3BlobStore({ endpoint: storage.endpoint, region: storage.region, forcePathStyle: storage.forcePathStyle, bucket });
}

export async function startWorkers(options: StartWorkersOptions): Promise<RunningWorkers> {
  const { config, role } = options;
  installRuntime(config);
  const connection = options.connection ?? (await connectWorker(config));
  const store = options.store ?? createBlobStore(config.storage);
  // Payload encryption when keys are configured: the same codec as the clients built from this configuration.
  const dataConverter = projectDataConverter(config);
  const workers: Worker[] = [];
  let policy: Policy | undefined = options.policy;
  let versions: PolicyVersionCache | undefined;
  if (role === 'inference' || role === 'all') {
    // A model folder, or a rule-based agent (rule:forward, rule:callback; lib/episode/rule-policy.ts).
    policy ??= await loadConfiguredPolicy(config.model.path, policyOptions(config.model));
    // Episodes whose settings name a policy version are sampled by that version, downloaded once per worker.
    versions = new PolicyVersionCache({
      store,
      cacheDir: path.join(config.localDir, 'policy-versions'),
      maxLoaded: MAX_LOADED_POLICY_VERSIONS,
      loadOptions: policyOptions(config.model),
    });
    workers.push(
      await Worker.create({
        connection,
        namespace: config.temporal.namespace,
        interceptors: { activity: [logIdsInterceptor] },
        dataConverter,
        taskQueue: config.taskQueues.inference,
        activities: createModelActivities({ store, policy: policyProvider(policy, versions) }),
        maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentModelSteps,
        shutdownGraceTime: config.worker.shutdownGraceTime as Duration,
      }),
    );
  }
  if (role === 'orchestration' || role === 'all') {
    workers.push(
      await Worker.create({
        connection,
        namespace: config.temporal.namespace,
        interceptors: { activity: [logIdsInterceptor] },
        dataConverter,
        taskQueue: config.taskQueues.orchestration,
        workflowBundle: await workflowBundle(dataConverter?.failureConverterPath),
        activities: {
          ...createBatchActivities({ store, openBucket: bucketOpener(config.storage), inputWritesInFlight: config.worker.indexWritesInFlight }),
          ...createTrainingDataActivities({ store }),
          ...createScoringActivities({ store }),
        },
        maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentActivities,
        maxCachedWorkflows: config.worker.maxCachedWorkflows,
        shutdownGraceTime: config.worker.shutdownGraceTime as Duration,
      }),
    );
  }
  let trainer: ReturnType<typeof createTrainerActivities> | undefined;
  if (role === 'trainer' || role === 'all') {
    const { close, ...activities } = (trainer = createTrainerActivities({
      store,
      cacheDir: path.join(config.localDir, 'trainer-policy-versions'),
      runtime: policyOptions(config.model),
    }));
    void close;
    workers.push(
      await Worker.create({
        connection,
        namespace: config.temporal.namespace,
        interceptors: { activity: [logIdsInterceptor] },
        dataConverter,
        taskQueue: config.taskQueues.trainer,
        activities,
        maxConcurrentActivityTaskExecutions: 1,
        shutdownGraceTime: config.worker.shutdownGraceTime as Duration,
      }),
    );
  }
  const ownsConnection = options.connection === undefined;
  const ownsPolicy = options.policy === undefined;
  const ownsStore = options.store === undefined;
  const done = Promise.all(workers.map((worker) => worker.run())).then(async () => {
    await versions?.close();
    await trainer?.close();
    if (ownsPolicy) await policy?.dispose();
    if (ownsStore) await store.close();
    if (ownsConnection) await connection.close();
  });
  return {
    workers,
    store,
    policy,
    done,
    async shutdown() {
      for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
    async readiness() {
      const stopped = workers.find((worker) => worker.getState() !== 'RUNNING');
      if (stopped) return `worker on task queue ${stopped.options.taskQueue} is ${stopped.getState().toLowerCase()}`;
      try {
        await connection.workflowService.getSystemInfo({});
      } catch (error) {
        return `the Temporal server at ${config.temporal.address} does not answer: ${(error as Error).message.split('\n')[0]}`;
      }
      return null;
    },
  };
}
