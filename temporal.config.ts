/**
 * The one typed configuration of the project: Temporal connection, task queues, activity timeouts and retry
 * policies, storage and model locations.
 *
 * Layers, later wins: built-in defaults → an optional JSON file (`REMEMR1_CONFIG=path`, or `--config`) →
 * environment variables. Everything is validated at start-up; every bad value is reported at once with the
 * place it came from (file field or environment variable) and what was expected.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { DEFAULT_METRICS_MODE, METRICS_MODES } from './lib/agent/metrics';
import { DEFAULT_MEMORY_CONTENT, MEMORY_CONTENTS } from './lib/agent/tags';
import { EXECUTION_PROVIDERS } from './lib/model/execution-providers';

const duration = z
  .string()
  .regex(/^\d+(\.\d+)?(ms|s|m|h)$/, 'expected a duration such as "500ms", "30s", "5m" or "1h"');

const retryPolicySchema = z
  .object({
    initialInterval: duration,
    backoffCoefficient: z.number().min(1, 'expected a number ≥ 1'),
    maximumInterval: duration,
    /** 0 means unlimited attempts (Temporal's convention). */
    maximumAttempts: z.number().int().min(0),
  })
  .strict();

const activityOptionsSchema = z
  .object({
    startToCloseTimeout: duration,
    /** Long activities heartbeat; a worker that stops heartbeating is presumed dead after this. */
    heartbeatTimeout: duration.optional(),
    retry: retryPolicySchema,
  })
  .strict();

const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'expected host:port, for example 127.0.0.1:7233');

export const configSchema = z
  .object({
    temporal: z
      .object({
        address: hostPort,
        namespace: z.string().min(1),
        /** TLS (required by Temporal Cloud and most production clusters). */
        tls: z
          .object({
            enabled: z.boolean(),
            serverNameOverride: z.string().optional(),
            serverRootCACertificateFile: z.string().optional(),
            clientCertificateFile: z.string().optional(),
            clientKeyFile: z.string().optional(),
          })
          .strict(),
        /** Temporal Cloud API key; only ever read from the environment (TEMPORAL_API_KEY). */
        apiKey: z.string().optional(),
        /** Base URL of the Web UI, used to print links to runs. */
        uiUrl: z.string().url(),
      })
      .strict(),
    taskQueues: z
      .object({
        orchestration: z.string().min(1),
        inference: z.string().min(1),
        trainer: z.string().min(1),
      })
      .strict(),
    activities: z
      .object({
        /** Light activities: storage reads and writes, dataset paging, scoring. */
        io: activityOptionsSchema,
        /** Model activities: one memory step or the final answer. */
        modelStep: activityOptionsSchema,
        /** The GRPO update on the trainer queue. */
        policyUpdate: activityOptionsSchema,
        /** Indexing one dataset shard (heartbeats; a retry resumes after the last page written). */
        indexShard: activityOptionsSchema.optional(),
      })
      .strict(),
    storage: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('fs'), root: z.string().min(1) }).strict(),
      z
        .object({
          kind: z.literal('s3'),
          endpoint: z.string().url().optional(),
          region: z.string().min(1),
          bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name'),
          prefix: z.string(),
          forcePathStyle: z.boolean(),
          /** S3 server-side encryption on every object written (SSE-KMS or SSE-S3); absent: the bucket's default. */
          serverSideEncryption: z
            .object({
              algorithm: z.enum(['aws:kms', 'aws:kms:dsse', 'AES256']),
              kmsKeyId: z.string().min(1).optional(),
              bucketKeyEnabled: z.boolean().optional(),
            })
            .strict()
            .optional(),
        })
        .strict(),
    ]),
    model: z
      .object({
        /** A Hugging Face–style model folder (config.json, tokenizer.json, onnx/model.onnx). */
        path: z.string().min(1),
        executionProvider: z.enum(EXECUTION_PROVIDERS),
        intraOpThreads: z.number().int().min(0),
        /** Busy-waiting intra-op threads (ONNX Runtime's default): much faster generation; see lib/model/session.ts. */
        spinWait: z.boolean(),
        maxBatchSize: z.number().int().min(1).max(256),
      })
      .strict(),
    worker: z
      .object({
        /** Concurrent model-step activities per inference worker (they share batched forward passes). */
        maxConcurrentModelSteps: z.number().int().min(1),
        maxConcurrentActivities: z.number().int().min(1),
        /**
         * Episode inputs an orchestration worker writes at once while it indexes a shard: each waits on an fsync or
         * an HTTP round trip, so a few at once multiply the indexing rate.
         */
        indexWritesInFlight: z.number().int().min(1).max(256),
        maxCachedWorkflows: z.number().int().min(0),
        shutdownGraceTime: duration,
      })
      .strict(),
    /**
     * Defaults of the episode settings that the command line can override (`qa`, `train`, `sft`, `schedule`);
     * the settings a run uses are recorded with the run.
     */
    episodes: z
      .object({
        /** How answers are scored: `project` (the documented normalisation) or `hotpotqa-official`. */
        metricsMode: z.enum(METRICS_MODES),
        /** What a memory turn writes into the memory: `update` (the <update> content) or `response` (released). */
        memoryContent: z.enum(MEMORY_CONTENTS),
        /**
         * Max new tokens of a memory turn and of the final turn. Absent: the model folder's generation_config.json
         * (`rememr1.memory_max_new_tokens` / `rememr1.answer_max_new_tokens`, else `max_new_tokens`), else 64 and 24.
         */
        memoryMaxNewTokens: z.number().int().min(1).optional(),
        answerMaxNewTokens: z.number().int().min(1).optional(),
        /** Chunk size in tokens. Absent: the model's generation_config.json (`rememr1.chunk_tokens`), else 512. */
        chunkTokens: z.number().int().min(1).optional(),
      })
      .strict(),
    /**
     * Prometheus metrics of a worker process: Temporal's runtime serves `/metrics` at this host:port with the SDK's
     * own metrics and the project's (recorded through the same meter). Absent = no endpoint (the local default).
     */
    metrics: z.object({ prometheusBindAddress: hostPort.optional() }).strict(),
    /** A worker's health server (`/healthz` process up, `/readyz` polling and connected) at host:port; absent = off. */
    health: z.object({ bindAddress: hostPort.optional() }).strict(),
    /**
     * Payload encryption (lib/temporal/codec.ts): on when a keys file is named here or in REMEMR1_ENCRYPTION_KEYS_FILE,
     * or keys are given in REMEMR1_ENCRYPTION_KEYS. Only the file's path is configuration; keys never are.
     */
    encryption: z
      .object({
        keysFile: z.string().min(1).optional(),
      })
      .strict(),
    /** Where the local stack (dev server database, MinIO data, installed binaries) lives. */
    localDir: z.string().min(1),
  })
  .strict();

export type RememConfig = z.infer<typeof configSchema>;
export type ActivityOptionsConfig = z.infer<typeof activityOptionsSchema>;
export type StorageConfig = RememConfig['storage'];

/** Folder of the project (this file sits at its root, also when compiled into dist/). */
export const projectRoot = path.basename(__dirname) === 'dist' ? path.dirname(__dirname) : __dirname;

export function defaultConfig(): RememConfig {
  const localDir = path.join(projectRoot, '.local');
  return {
    temporal: {
      address: '127.0.0.1:7233',
      namespace: 'default',
      tls: { enabled: false },
      uiUrl: 'http://127.0.0.1:8233',
    },
    taskQueues: {
      orchestration: 'rememr1-orchestration',
      inference: 'rememr1-inference',
      trainer: 'rememr1-trainer',
    },
    activities: {
      io: {
        startToCloseTimeout: '2m',
        retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 0 },
      },
      modelStep: {
        startToCloseTimeout: '30m',
        heartbeatTimeout: '60s',
        retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 0 },
      },
      indexShard: {
        startToCloseTimeout: '6h',
        heartbeatTimeout: '1m',
        retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 0 },
      },
      policyUpdate: {
        startToCloseTimeout: '6h',
        heartbeatTimeout: '5m',
        retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5m', maximumAttempts: 0 },
      },
    },
    storage: { kind: 'fs', root: path.join(localDir, 'blobs') },
    model: {
      path: path.join(projectRoot, 'models', 'rememr1-small'),
      executionProvider: 'cpu',
      intraOpThreads: 0,
      spinWait: true,
      maxBatchSize: 8,
    },
    worker: {
      maxConcurrentModelSteps: 8,
      maxConcurrentActivities: 32,
      indexWritesInFlight: 8,
      maxCachedWorkflows: 500,
      shutdownGraceTime: '30s',
    },
    episodes: { metricsMode: DEFAULT_METRICS_MODE, memoryContent: DEFAULT_MEMORY_CONTENT },
    metrics: {},
    health: {},
    encryption: {},
    localDir,
  };
}

/** Environment variable → config path. One table, so the error messages can name the variable. */
const environmentBindings: ReadonlyArray<{ env: string; path: string[]; type: 'string' | 'number' | 'boolean' }> = [
  { env: 'REMEMR1_TEMPORAL_ADDRESS', path: ['temporal', 'address'], type: 'string' },
  { env: 'REMEMR1_TEMPORAL_NAMESPACE', path: ['temporal', 'namespace'], type: 'string' },
  { env: 'REMEMR1_TEMPORAL_TLS', path: ['temporal', 'tls', 'enabled'], type: 'boolean' },
  { env: 'REMEMR1_TEMPORAL_TLS_SERVER_NAME', path: ['temporal', 'tls', 'serverNameOverride'], type: 'string' },
  { env: 'REMEMR1_TEMPORAL_TLS_CA', path: ['temporal', 'tls', 'serverRootCACertificateFile'], type: 'string' },
  { env: 'REMEMR1_TEMPORAL_TLS_CERT', path: ['temporal', 'tls', 'clientCertificateFile'], type: 'string' },
  { env: 'REMEMR1_TEMPORAL_TLS_KEY', path: ['temporal', 'tls', 'clientKeyFile'], type: 'string' },
  { env: 'TEMPORAL_API_KEY', path: ['temporal', 'apiKey'], type: 'string' },
  { env: 'REMEMR1_TEMPORAL_UI_URL', path: ['temporal', 'uiUrl'], type: 'string' },
  { env: 'REMEMR1_TASK_QUEUE_ORCHESTRATION', path: ['taskQueues', 'orchestration'], type: 'string' },
  { env: 'REMEMR1_TASK_QUEUE_INFERENCE', path: ['taskQueues', 'inference'], type: 'string' },
  { env: 'REMEMR1_TASK_QUEUE_TRAINER', path: ['taskQueues', 'trainer'], type: 'string' },
  { env: 'REMEMR1_STORAGE', path: ['storage', 'kind'], type: 'string' },
  { env: 'REMEMR1_STORAGE_ROOT', path: ['storage', 'root'], type: 'string' },
  { env: 'REMEMR1_S3_ENDPOINT', path: ['storage', 'endpoint'], type: 'string' },
  { env: 'REMEMR1_S3_REGION', path: ['storage', 'region'], type: 'string' },
  { env: 'REMEMR1_S3_BUCKET', path: ['storage', 'bucket'], type: 'string' },
  { env: 'REMEMR1_S3_PREFIX', path: ['storage', 'prefix'], type: 'string' },
  { env: 'REMEMR1_S3_FORCE_PATH_STYLE', path: ['storage', 'forcePathStyle'], type: 'boolean' },
  { env: 'REMEMR1_S3_SSE', path: ['storage', 'serverSideEncryption', 'algorithm'], type: 'string' },
  { env: 'REMEMR1_S3_SSE_KMS_KEY_ID', path: ['storage', 'serverSideEncryption', 'kmsKeyId'], type: 'string' },
  { env: 'REMEMR1_S3_SSE_BUCKET_KEY', path: ['storage', 'serverSideEncryption', 'bucketKeyEnabled'], type: 'boolean' },
  { env: 'REMEMR1_MODEL', path: ['model', 'path'], type: 'string' },
  { env: 'REMEMR1_EXECUTION_PROVIDER', path: ['model', 'executionProvider'], type: 'string' },
  { env: 'REMEMR1_INTRA_OP_THREADS', path: ['model', 'intraOpThreads'], type: 'number' },
  { env: 'REMEMR1_ORT_SPIN_WAIT', path: ['model', 'spinWait'], type: 'boolean' },
  { env: 'REMEMR1_MAX_BATCH_SIZE', path: ['model', 'maxBatchSize'], type: 'number' },
  { env: 'REMEMR1_MAX_CONCURRENT_MODEL_STEPS', path: ['worker', 'maxConcurrentModelSteps'], type: 'number' },
  { env: 'REMEMR1_INDEX_WRITES_IN_FLIGHT', path: ['worker', 'indexWritesInFlight'], type: 'number' },
  { env: 'REMEMR1_METRICS_MODE', path: ['episodes', 'metricsMode'], type: 'string' },
  { env: 'REMEMR1_MEMORY_CONTENT', path: ['episodes', 'memoryContent'], type: 'string' },
  { env: 'REMEMR1_MEMORY_MAX_NEW_TOKENS', path: ['episodes', 'memoryMaxNewTokens'], type: 'number' },
  { env: 'REMEMR1_ANSWER_MAX_NEW_TOKENS', path: ['episodes', 'answerMaxNewTokens'], type: 'number' },
  { env: 'REMEMR1_CHUNK_TOKENS', path: ['episodes', 'chunkTokens'], type: 'number' },
  { env: 'REMEMR1_METRICS_BIND_ADDRESS', path: ['metrics', 'prometheusBindAddress'], type: 'string' },
  { env: 'REMEMR1_HEALTH_BIND_ADDRESS', path: ['health', 'bindAddress'], type: 'string' },
  { env: 'REMEMR1_ENCRYPTION_KEYS_FILE', path: ['encryption', 'keysFile'], type: 'string' },
  { env: 'REMEMR1_LOCAL_DIR', path: ['localDir'], type: 'string' },
];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type JsonObject = { [key: string]: unknown };

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepMerge(base: JsonObject, override: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    out[key] = isObject(current) && isObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function setPath(target: JsonObject, keys: string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (!isObject(next)) node[key] = {};
    node = node[key] as JsonObject;
  }
  node[keys[keys.length - 1]] = value;
}

/** The fields a store of `kind` starts from when a file or the environment switches to it. */
function storageDefaults(kind: 's3' | 'fs'): JsonObject {
  if (kind === 's3') return { kind: 's3', region: 'us-east-1', bucket: 'rememr1', prefix: '', forcePathStyle: true };
  return defaultConfig().storage as unknown as JsonObject;
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** Optional JSON file; defaults to $REMEMR1_CONFIG. */
  file?: string;
  /** Highest-precedence overrides, e.g. from command-line flags. */
  overrides?: JsonObject;
}

/** Builds, validates and returns the configuration; throws one ConfigError listing every bad value. */
export function loadConfig(options: LoadConfigOptions = {}): RememConfig {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  const origin = new Map<string, string>();
  let merged: JsonObject = defaultConfig() as unknown as JsonObject;

  const file = options.file ?? env.REMEMR1_CONFIG;
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (error) {
      throw new ConfigError([`config file ${file}: ${(error as Error).message}`]);
    }
    if (!isObject(parsed)) throw new ConfigError([`config file ${file}: expected a JSON object at the top level`]);
    // A file that switches the storage kind replaces the default store's fields instead of merging into them.
    const fileKind = isObject(parsed.storage) ? parsed.storage.kind : undefined;
    if ((fileKind === 's3' || fileKind === 'fs') && fileKind !== (merged.storage as JsonObject).kind) merged.storage = storageDefaults(fileKind);
    merged = deepMerge(merged, parsed);
  }

  const fromEnv: JsonObject = {};
  for (const binding of environmentBindings) {
    const raw = env[binding.env];
    if (raw === undefined || raw === '') continue;
    origin.set(binding.path.join('.'), binding.env);
    if (binding.type === 'number') {
      const value = Number(raw);
      if (!Number.isFinite(value)) problems.push(`${binding.env}: expected a number, got "${raw}"`);
      else setPath(fromEnv, binding.path, value);
    } else if (binding.type === 'boolean') {
      if (!/^(true|false|1|0)$/i.test(raw)) problems.push(`${binding.env}: expected true or false, got "${raw}"`);
      else setPath(fromEnv, binding.path, /^(true|1)$/i.test(raw));
    } else {
      setPath(fromEnv, binding.path, raw);
    }
  }
  // Switching storage to S3 from the environment brings S3 defaults for the fields not given.
  const storageKindFromEnv = (fromEnv.storage as JsonObject | undefined)?.kind;
  if ((storageKindFromEnv === 's3' || storageKindFromEnv === 'fs') && (merged.storage as JsonObject).kind !== storageKindFromEnv) {
    merged.storage = storageDefaults(storageKindFromEnv);
  }
  // S3 variables only matter for S3 storage, and the root only for the filesystem: a machine may well have
  // REMEMR1_S3_* set while a run uses local storage.
  const storageFromEnv = fromEnv.storage as JsonObject | undefined;
  if (storageFromEnv) {
    const kind = (merged.storage as JsonObject).kind;
    const irrelevant = kind === 's3' ? ['root'] : ['endpoint', 'region', 'bucket', 'prefix', 'forcePathStyle', 'serverSideEncryption'];
    for (const key of irrelevant) delete storageFromEnv[key];
  }
  merged = deepMerge(merged, fromEnv);
  if (options.overrides) merged = deepMerge(merged, options.overrides);

  const result = configSchema.safeParse(merged);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const dotted = issue.path.map(String).join('.');
      const where = origin.get(dotted) ?? (file ? `${dotted} (from ${file} or defaults)` : dotted);
      problems.push(`${where}: ${issue.message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const config = result.data as RememConfig;
  const tls = config.temporal.tls;
  for (const [name, value] of [
    ['REMEMR1_TEMPORAL_TLS_CA', tls.serverRootCACertificateFile],
    ['REMEMR1_TEMPORAL_TLS_CERT', tls.clientCertificateFile],
    ['REMEMR1_TEMPORAL_TLS_KEY', tls.clientKeyFile],
  ] as const) {
    if (value && !fs.existsSync(value)) problems.push(`${name}: file ${value} does not exist`);
  }
  const sse = config.storage.kind === 's3' ? config.storage.serverSideEncryption : undefined;
  if (sse?.kmsKeyId !== undefined && !sse.algorithm.startsWith('aws:kms')) {
    problems.push(`REMEMR1_S3_SSE_KMS_KEY_ID: a KMS key needs REMEMR1_S3_SSE=aws:kms (or aws:kms:dsse), not ${sse.algorithm}`);
  }
  if (Boolean(tls.clientCertificateFile) !== Boolean(tls.clientKeyFile)) {
    problems.push('REMEMR1_TEMPORAL_TLS_CERT and REMEMR1_TEMPORAL_TLS_KEY must be given together (mutual TLS)');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...config, taskQueues: scopeDefaultTaskQueues(config.taskQueues, config.storage) };
}

/**
 * Names a blob store without secrets: equal identities mean the same objects (a folder's absolute path; an S3
 * endpoint without credentials, bucket and prefix).
 */
export function storageIdentity(storage: StorageConfig): string {
  if (storage.kind === 'fs') return `fs:${path.resolve(storage.root)}`;
  let endpoint = 'aws';
  if (storage.endpoint) {
    const url = new URL(storage.endpoint);
    url.username = '';
    url.password = '';
    endpoint = url.toString();
  }
  return `s3:${endpoint}|${storage.bucket}|${storage.prefix}`;
}

/**
 * The default task queue names carry the storage they serve (e.g. `rememr1-orchestration.fs-1a2b3c4d`): every
 * activity reads and writes the blob store, so a worker with other storage settings must never take a task of
 * this store; on its own queues it never sees one, and the run goes on with the workers that share its storage.
 * Other names (set in a file or the environment) are used as given.
 */
export function scopeDefaultTaskQueues(queues: RememConfig['taskQueues'], storage: StorageConfig): RememConfig['taskQueues'] {
  const defaults = defaultConfig().taskQueues;
  const scope = `${storage.kind}-${createHash('sha256').update(storageIdentity(storage)).digest('hex').slice(0, 8)}`;
  const scoped = (name: keyof RememConfig['taskQueues']): string => (queues[name] === defaults[name] ? `${queues[name]}.${scope}` : queues[name]);
  return { orchestration: scoped('orchestration'), inference: scoped('inference'), trainer: scoped('trainer') };
}
