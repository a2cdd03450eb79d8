/**
 * `rememr1`: the command line.
 *
 *   qa [--dataset FILE]      answer a dataset end to end (embedded default: local Temporal dev server with the UI,
 *                            filesystem blob store, bundled model, an all-in-one worker in this process)
 *   worker --role ROLE       run a worker (inference | orchestration | all) to scale out
 *   status RUN               progress of a batch run
 *   results RUN [--jsonl]    the summary table (or every result row) of a run
 *   train, sft, train-control, train-report, schedule …   training runs (cli/train.ts, cli/report.ts, cli/schedule.ts)
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type WorkflowHandle,
} from '@temporalio/client';
import { SingleBar, Presets } from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { startTemporal, stackPaths } from '../infra/local-stack';
import { AGENT_MODES } from '../lib/agent/mode';
import { RETRIEVAL_SCORERS } from '../lib/agent/retrieval';
import { describeGenerationLimits } from '../lib/episode/generation-limits';
import type { BatchSummary } from '../lib/episode/summary';
import {
  defaultEpisodeSettings,
  type AnswerRecord,
  type EpisodeResult,
  type EpisodeSettings,
} from '../lib/episode/types';
import { detectDatasetFormat, type RowError } from '../lib/data/dataset';
import { fileSha256 } from '../lib/data/sources';
import { DEFAULT_PARQUET_PIECE_BYTES } from '../lib/data/parquet-pieces';
import {
  InvalidBlobIdError,
  batchIndexKey,
  batchRowErrorsKey,
  batchRunKey,
  batchSummaryKey,
  checkId,
  createBlobStore,
  datasetKey,
  episodeAnswerKey,
  policyFileKey,
  runResultsPrefix,
  type BlobStore,
} from '../lib/storage';
import { connectTemporalClient, temporalServerAnswers } from '../lib/temporal/client';
import { devServerRefusal } from '../lib/temporal/connect';
import { loadConfig, projectRoot, type RememConfig } from '../temporal.config';
import {
  batchProgressQuery,
  batchQAWorkflow,
  type BatchProgress,
  type BatchQAInput,
} from '../workflows/batch';
import { embeddedConfigFor, modelIdentity } from '../workers/embedded';
import { startConfiguredHealth } from '../workers/main';
import { WORKER_ROLES, reportFailuresElsewhere, startWorkers, type WorkerRole } from '../workers/worker';
import { registerBenchDataCommand } from './bench-data';
import { registerCodecServerCommand } from './codec-server';
import { fieldMapping, prepareDataset, stageDataset, withDatasetFieldOptions, type FieldOptions } from './dataset-source';
import {
  episodeSettingOverrides,
  runGenerationLimits,
  withEpisodeSettingOptions,
  type EpisodeSettingOptions,
} from './episode-settings';
import { registerExportCommand } from './export';
import { answersTable, formatDuration, summaryTable } from './render';
import { registerReportCommand } from './report';
import { registerRunCommands } from './runs';
import { registerScheduleCommands } from './schedule';
import { registerReplicationCommand } from './replication';
import { registerTracesCommand } from './traces';
import { registerTrainingCommands } from './train';

const DEFAULT_DATASET = path.join(projectRoot, 'examples', 'distant-evidence-mini.jsonl');

export function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError('expected a positive integer');
  return parsed;
}

export function probability(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0 || parsed > 1)
    throw new InvalidArgumentError('expected a number from 0 to 1');
  return parsed;
}

export function nonNegativeInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new InvalidArgumentError('expected an integer ≥ 0');
  return parsed;
}

/** The options that say how an episode reads (agent mode, chunking, token budgets): one set for qa and training. */
export function withEpisodeReadingOptions(command: Command): Command {
  return withEpisodeSettingOptions(command)
    .addOption(
      new Option('--mode <mode>', 'agent')
        .choices(AGENT_MODES)
        .default(defaultEpisodeSettings.mode),
    )
    .option(
      '--chunk-tokens <n>',
      `chunk size in tokens (default: config, else the model's generation_config.json, else ${defaultEpisodeSettings.chunkTokens})`,
      positiveInt,
    )
    .option(
      '--max-chunks <n>',
      'read at most this many chunks of each document (0 = all)',
      nonNegativeInt,
      defaultEpisodeSettings.maxChunks,
    )
    .option(
      '--memory-tokens <n>',
      `max new tokens per memory step (default: config, else the model's generation_config.json, else ${defaultEpisodeSettings.memoryMaxNewTokens})`,
      positiveInt,
    )
    .option(
      '--answer-tokens <n>',
      `max new tokens for the answer (default: config, else the model's generation_config.json, else ${defaultEpisodeSettings.answerMaxNewTokens})`,
      positiveInt,
    );
}

/** A run id names blob keys and workflow ids, so it is checked when the command line is read. */
export function runIdArgument(value: string): string {
  try {
    return checkId('run id', value);
  } catch (error) {
    if (error instanceof InvalidBlobIdError) {
      throw new InvalidArgumentError(
        `expected 1 to 128 characters from A-Z a-z 0-9 . _ - (and not '.' or '..')`,
      );
    }
    throw error;
  }
}

/** Ends the command with its own exit code and message (no stack trace). */
export class CliExit extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliExit';
  }
}

export function nonNegative(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new InvalidArgumentError('expected a number ≥ 0');
  return parsed;
}

export function batchWorkflowId(runId: string): string {
  return `batch.${runId}`;
}

export function workflowUiLink(config: RememConfig, workflowId: string): string {
  return `${config.temporal.uiUrl}/namespaces/${encodeURIComponent(config.temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/**
 * Connects to the configured server and namespace with the project's one set of connection options (TLS / mTLS
 * files, API key) and its payload codec; a failure is one line naming the address and the setting to check.
 */
export function connectClient(config: RememConfig): Promise<Client> {
  return connectTemporalClient(config);
}

/**
 * The embedded default: a local dev server (with the UI) is started when nothing answers, and only for a loopback,
 * plain-text address without an API key; any other server must already run, and the connection that follows says
 * within seconds what is wrong if it does not answer.
 */
export async function ensureTemporal(config: RememConfig, ui: boolean): Promise<void> {
  if (devServerRefusal(config.temporal) !== undefined) return;
  if (await temporalServerAnswers(config.temporal)) return;
  await startTemporal({
    paths: stackPaths(config.localDir),
    address: config.temporal.address,
    namespace: config.temporal.namespace,
    ui,
    log: (message) => console.log(`[stack] ${message}`),
  });
  console.log('[stack] the dev server keeps running after this command (stop it with `npm run stack:stop`)');
}

/** Checks the dataset path before anything starts: an existing file of a known format. */
export function checkDatasetFile(file: string): void {
  if (!fs.existsSync(file)) throw new Error(`dataset file ${file} does not exist`);
  const stat = fs.statSync(file);
  if (stat.isDirectory())
    throw new Error(`dataset ${file} is a directory; give one .jsonl, .json or .parquet file`);
  if (!stat.isFile()) throw new Error(`dataset ${file} is not a file`);
  detectDatasetFormat(file);
  if (stat.size === 0) throw new Error(`dataset ${file} is empty (0 bytes)`);
}

/** How many malformed rows the screen lists; the stored list has them all. */
const ROW_ERRORS_SHOWN = 5;

/** The first malformed rows of a run with their reasons, and where the full list is (nothing if none). */
export async function rowErrorLines(store: BlobStore, runId: string): Promise<string[]> {
  const key = batchRowErrorsKey(runId);
  if (!(await store.exists(key))) return [];
  const stored = await store.getJson<{ invalidRows: number; errors: RowError[] }>(key);
  if (stored.invalidRows === 0) return [];
  return [
    `${stored.invalidRows} malformed row${stored.invalidRows === 1 ? '' : 's'} (row numbers count from 0, as in the results):`,
    ...stored.errors.slice(0, ROW_ERRORS_SHOWN).map((error) => `  row ${error.rowIndex}: ${error.reason}`),
    ...(stored.invalidRows > ROW_ERRORS_SHOWN ? [`  … ${stored.invalidRows - ROW_ERRORS_SHOWN} more`] : []),
    `  full list: ${key} in the ${store}`,
  ];
}

async function countResults(store: BlobStore, runId: string): Promise<number> {
  let count = 0;
  for await (const key of store.list(runResultsPrefix(runId))) if (key.endsWith('.json')) count += 1;
  return count;
}

/** Uploads the dataset under a content-addressed key, so the same file is stored once and names the same run. */
export async function uploadDataset(
  store: BlobStore,
  file: string,
): Promise<{ key: string; digest: string }> {
  // Streamed twice (digest, then upload), never held in memory; a file already stored is not sent again.
  const digest = await fileSha256(file);
  const key = datasetKey(digest.slice(0, 32), path.basename(file).replace(/[^A-Za-z0-9._-]/g, '_'));
  if (!(await store.exists(key))) await store.putStream(key, fs.createReadStream(file));
  return { key, digest };
}

/** What a run id stands for: a run id names one dataset, model and settings, and only those. */
interface RunBinding {
  dataset: string;
  datasetDigest: string;
  model: string;
  settings: EpisodeSettings;
}

/** JSON with object keys sorted, so equal values compare equal whatever order their keys were written in. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, entry]) => entry !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, entry]) => `${JSON.stringify(key)}:${canonicalJson(entry)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Binds the run id to its dataset, model and settings the first time it is used; a later use with anything else
 * is refused, so a run id never serves results computed from other data.
 */
async function bindRunId(store: BlobStore, runId: string, binding: RunBinding): Promise<void> {
  const key = batchRunKey(runId);
  if (await store.putIfAbsent(key, JSON.stringify(binding, null, 2))) return;
  const bound = await store.getJson<RunBinding>(key);
  const differences: string[] = [];
  if (bound.datasetDigest !== binding.datasetDigest) {
    differences.push(
      `dataset ${bound.dataset} (sha256 ${bound.datasetDigest.slice(0, 12)}…, not ${binding.datasetDigest.slice(0, 12)}…)`,
    );
  }
  if (bound.model !== binding.model) differences.push(`model ${bound.model}`);
  const changed = [...new Set([...Object.keys(bound.settings), ...Object.keys(binding.settings)])].filter(
    (name) =>
      canonicalJson((bound.settings as unknown as Record<string, unknown>)[name]) !==
      canonicalJson((binding.settings as unknown as Record<string, unknown>)[name]),
  );
  if (changed.length > 0) differences.push(`other settings (${changed.join(', ')})`);
  if (differences.length > 0) {
    throw new Error(
      `run id ${runId} belongs to another run: it was started with ${differences.join(' and ')}; give another --run-id, or leave it out to derive one`,
    );
  }
}

/** The message of the innermost cause: a workflow failure wraps an activity or child failure wraps the error. */
export function innermostMessage(error: Error): string {
  let message = error.message;
  for (
    let current: unknown = error;
    current instanceof Error;
    current = (current as Error & { cause?: unknown }).cause
  ) {
    if (current.message) message = current.message;
  }
  return message;
}

/**
 * Watches for Ctrl-C (SIGINT) and SIGTERM while `qa` runs. The first resolves `signal` (the command then stops
 * its worker and ends; the batch keeps running on the server); a second one ends the process at once.
 * Temporal's runtime adds its own handlers when a worker starts, which stop Node's default exit on a signal.
 * `farewell` is what the command says when interrupted; it is said at the first signal, before anything else can
 * happen (a busy process may receive the same key press again, relayed late, and exit on it).
 */
export function watchInterrupts(): {
  signal: Promise<NodeJS.Signals>;
  received(): NodeJS.Signals | undefined;
  /** Sets what to say on an interrupt; said at once if a signal already arrived. */
  setFarewell(say: (signal: NodeJS.Signals) => void): void;
  dispose(): void;
} {
  let firstAt: number | undefined;
  let first: NodeJS.Signals | undefined;
  let farewell: ((signal: NodeJS.Signals) => void) | undefined;
  let said = false;
  const sayFarewell = (): void => {
    if (said || farewell === undefined || first === undefined) return;
    said = true;
    farewell(first);
  };
  let resolve: (signal: NodeJS.Signals) => void = () => undefined;
  const signal = new Promise<NodeJS.Signals>((done) => (resolve = done));
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((name) => {
    const handler = (): void => {
      if (firstAt === undefined) {
        firstAt = Date.now();
        first = name;
        resolve(name);
        sayFarewell();
        // One key press can arrive twice within a moment (sent to the process group and relayed by tsx).
      } else if (Date.now() - firstAt > 1000) {
        process.exit(signalExitCode(name));
      }
    };
    process.on(name, handler);
    return [name, handler] as const;
  });
  return {
    signal,
    received: () => first,
    setFarewell: (say) => {
      farewell = say;
      sayFarewell();
    },
    dispose: () => {
      for (const [name, handler] of handlers) process.off(name, handler);
    },
  };
}

export function signalExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? 130 : 143;
}

/** Waits for `work`, but no longer than `ms`. */
export async function atMost(ms: number, work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work.catch(() => undefined),
    new Promise((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}

interface QaOptions extends EpisodeSettingOptions, FieldOptions {
  dataset: string;
  runId?: string;
  mode: EpisodeSettings['mode'];
  chunkTokens?: number;
  maxChunks: number;
  memoryTokens?: number;
  answerTokens?: number;
  temperature: number;
  topP: number;
  seed: number;
  scorer: EpisodeSettings['retrieval']['scorer'];
  width: number;
  pageSize: number;
  indexParallelism?: number;
  parquetPieceMb: number;
  stopOnBadRow?: boolean;
  worker: boolean;
  ui: boolean;
  show: number;
  policyVersion?: string;
}

async function runQa(options: QaOptions): Promise<void> {
  // The embedded worker shares the terminal with the progress bar and tables: warnings and errors only.
  process.env.REMEMR1_LOG_LEVEL ??= 'WARN';
  let config = loadConfig();
  const dataset = await prepareDataset(config, options.dataset, fieldMapping(options), { parquetPieceBytes: options.parquetPieceMb * 2 ** 20 });
  const settings: EpisodeSettings = {
    ...defaultEpisodeSettings,
    mode: options.mode,
    maxChunks: options.maxChunks,
    temperature: options.temperature,
    topP: options.topP,
    seed: options.seed,
    retrieval: { ...defaultEpisodeSettings.retrieval, scorer: options.scorer },
    ...(options.policyVersion === undefined ? {} : { policyVersion: options.policyVersion }),
    ...episodeSettingOverrides(options, config),
  };
  const store = createBlobStore(config.storage);
  if (
    options.policyVersion !== undefined &&
    !(await store.exists(policyFileKey(options.policyVersion, 'manifest.json')))
  ) {
    await store.close();
    throw new CliExit(
      `policy version ${options.policyVersion} does not exist in ${store} (no policies/${options.policyVersion}/manifest.json); train or publish it first`,
      1,
    );
  }
  // Per-turn limits scaled to the model that answers (its generation_config.json), unless given.
  const sampledBy =
    options.policyVersion === undefined ? undefined : { policyVersion: options.policyVersion, store };
  const limits = await runGenerationLimits(options, config, sampledBy).catch(async (error: unknown) => {
    await store.close();
    throw error;
  });
  settings.memoryMaxNewTokens = limits.memoryMaxNewTokens;
  settings.answerMaxNewTokens = limits.answerMaxNewTokens;
  settings.chunkTokens = limits.chunkTokens;
  console.log(describeGenerationLimits(limits));
  await ensureTemporal(config, options.ui);
  let client: Client | undefined;
  let workers: Awaited<ReturnType<typeof startWorkers>> | undefined;
  const interrupts = watchInterrupts();
  let interrupted = false;
  try {
    const { datasetKey: key, source } = await stageDataset(store, dataset);
    const digest = dataset.digest;
    // The model folder and its identity (workers/embedded.ts): a folder retrained or rebuilt in place is another
    // model, so its run neither reuses nor mixes with the answers of the weights it replaced.
    const model =
      options.policyVersion === undefined
        ? `${path.resolve(config.model.path)} (${modelIdentity(config.model.path)})`
        : `policy version ${options.policyVersion}`;
    // Same dataset, model and settings → same run id → a rerun skips every finished episode.
    const runId =
      options.runId ??
      `qa-${createHash('sha256').update(JSON.stringify({ digest, settings, model })).digest('hex').slice(0, 16)}`;
    await bindRunId(store, runId, {
      dataset: dataset.name,
      datasetDigest: digest,
      model,
      settings,
    });
    client = await connectClient(config);
    const workflowId = batchWorkflowId(runId);
    // With its own worker, the batch's model steps go to a queue of this model, or of the run it follows
    // (workers/embedded.ts): never to another command's worker with other weights.
    if (options.worker) config = await embeddedConfigFor(client, workflowId, config);
    // The command prints a failed batch's reason in one line; the worker in this process need not dump it too.
    if (options.worker) reportFailuresElsewhere();
    workers = options.worker ? await startWorkers({ role: 'all', config, store }) : undefined;
    const alreadyDone = await countResults(store, runId);
    const early = interrupts.received();
    if (early !== undefined)
      throw new CliExit(
        `interrupted (${early}) before batch ${runId} started; nothing was started`,
        signalExitCode(early),
      );
    const input: BatchQAInput = {
      runId,
      datasetKey: key,
      ...(source === undefined ? {} : { source }),
      dataset: dataset.name,
      settings,
      runtime: { taskQueues: config.taskQueues, activities: config.activities },
      width: options.width,
      pageSize: options.pageSize,
      stopOnBadRow: options.stopOnBadRow ?? false,
      ...(options.indexParallelism === undefined ? {} : { indexParallelism: options.indexParallelism }),
    };
    let handle: WorkflowHandle<typeof batchQAWorkflow>;
    try {
      handle = await client.workflow.start(batchQAWorkflow, {
        workflowId,
        taskQueue: config.taskQueues.orchestration,
        args: [input],
        staticSummary: `Batch QA over ${input.dataset} (${settings.mode})`,
      });
      console.log(`Started batch ${runId}`);
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      handle = client.workflow.getHandle(workflowId);
      console.log(`Batch ${runId} is already running; following it`);
    }
    console.log(`Temporal UI: ${workflowUiLink(config, workflowId)}`);
    const where = config.temporal.address;
    // Said as soon as a signal arrives: the user learns that the batch goes on and how to reach it, whatever
    // happens to this process afterwards (a second signal during the stop exits at once).
    interrupts.setFarewell((signal) =>
      console.error(
        'rememr1: ' +
          [
            `interrupted (${signal}): ${options.worker ? "this command's worker is stopping; " : ''}batch ${runId} keeps running on the Temporal server at ${where}, served by any worker on its task queues`,
            `  follow it: npm run rememr1 -- status ${runId}    (UI: ${workflowUiLink(config, workflowId)})`,
            `  cancel it: npm run rememr1 -- cancel ${runId}`,
            `  resume it here: run the same qa command again (finished episodes are kept)`,
          ].join('\n'),
      ),
    );
    let summary: BatchSummary;
    try {
      const outcome = await followBatch(handle, interrupts.signal);
      if ('signal' in outcome) {
        interrupted = true;
        throw new CliExit('', signalExitCode(outcome.signal));
      }
      summary = outcome.summary;
    } catch (error) {
      if (error instanceof WorkflowFailedError) {
        const rowErrors = await rowErrorLines(store, runId).catch(() => []);
        if (rowErrors.length > 0) console.error(rowErrors.join('\n'));
        throw new Error(`batch ${runId} failed: ${innermostMessage(error)}`);
      }
      throw error;
    }
    console.log(summaryTable(summary));
    const rowErrors = await rowErrorLines(store, runId);
    if (rowErrors.length > 0) console.log(rowErrors.join('\n'));
    const results = await readResults(store, runId);
    if (results.length === 0 && summary.failedEpisodes === 0) {
      throw new Error(
        `dataset ${options.dataset} has no rows to answer${summary.invalidRows > 0 ? ` (all ${summary.invalidRows} rows are malformed)` : ''}`,
      );
    }
    console.log(answersTable(results, options.show));
    console.log(
      `Rows: ${alreadyDone} already done before this command, ${results.length - alreadyDone} answered now, ${summary.failedEpisodes} failed, ${summary.invalidRows} malformed`,
    );
    console.log(`Run id: ${runId}    UI: ${workflowUiLink(config, workflowId)}`);
  } finally {
    if (interrupted) {
      // The command ends promptly (the process exits, closing its connections): in-flight activities go back to
      // the server, which retries them.
      await atMost(5_000, workers?.shutdown() ?? Promise.resolve());
    } else {
      await workers?.shutdown();
      await client?.connection.close();
      await store.close();
    }
    interrupts.dispose();
  }
}

/** Shows a progress bar fed by the batch's progress query until the batch finishes or a signal arrives. */
async function followBatch(
  handle: WorkflowHandle<typeof batchQAWorkflow>,
  interrupt: Promise<NodeJS.Signals>,
): Promise<{ summary: BatchSummary } | { signal: NodeJS.Signals }> {
  const interactive = Boolean(process.stdout.isTTY) && !process.env.CI;
  const bar = new SingleBar(
    {
      format:
        'episodes {bar} {value}/{total} | {rate} | ETA {etaText} | page {page}/{pages} | running {running} | failed {failed}',
      hideCursor: true,
      noTTYOutput: !interactive,
      notTTYSchedule: 10_000,
    },
    Presets.shades_classic,
  );
  let started = false;
  // Rate and ETA from what this command saw finish: episodes done by an earlier run do not count as speed.
  let first: { at: number; done: number } | undefined;
  const show = (
    progress: Pick<BatchProgress, 'page' | 'pages' | 'running' | 'failed' | 'done' | 'validRows'>,
  ) => {
    first ??= { at: Date.now(), done: progress.done };
    const seconds = (Date.now() - first.at) / 1000;
    const perMinute = seconds > 0 ? ((progress.done - first.done) * 60) / seconds : 0;
    const left = Math.max(0, progress.validRows - progress.done - progress.failed);
    const payload = {
      page: Math.min(progress.page + 1, progress.pages),
      pages: progress.pages,
      running: progress.running,
      failed: progress.failed,
      rate: `${perMinute.toFixed(1)} episodes/min`,
      etaText: left === 0 ? '0s' : perMinute > 0 ? formatDuration((left * 60) / perMinute) : 'unknown',
    };
    if (!started) {
      bar.start(progress.validRows, progress.done, payload);
      started = true;
    } else {
      bar.setTotal(progress.validRows);
      bar.update(progress.done, payload);
    }
  };
  let inFlight: Promise<void> = Promise.resolve();
  let querying = false;
  const poll = setInterval(() => {
    // One query at a time: a slow one (the workflow's worker busy) is never left behind unawaited.
    if (querying) return;
    querying = true;
    inFlight = handle
      .query(batchProgressQuery)
      .then((progress) => {
        if (progress.validRows > 0) show(progress);
      })
      .catch(() => undefined) // between continue-as-new runs a query can miss; the next poll catches up
      .finally(() => (querying = false));
  }, 1000);
  let outcome: { summary: BatchSummary } | { signal: NodeJS.Signals } | undefined;
  try {
    outcome = await Promise.race([
      handle.result().then((summary) => ({ summary })),
      interrupt.then((signal) => ({ signal })),
    ]);
    return outcome;
  } finally {
    clearInterval(poll);
    // The connection closes next, so no query may be left on it (a query retried on a closed channel throws);
    // after a signal the command ends within moments, and its connection with it.
    if (outcome !== undefined && 'signal' in outcome) await atMost(2_000, inFlight);
    else await inFlight;
    if (outcome !== undefined && 'summary' in outcome) {
      // The bar is drawn to the end: the finished counts, not the last poll's.
      const { overall, failedEpisodes } = outcome.summary;
      const total = overall.episodes + failedEpisodes;
      if (total > 0)
        show({
          page: 0,
          pages: 1,
          running: 0,
          failed: failedEpisodes,
          done: overall.episodes,
          validRows: total,
        });
    }
    if (started) bar.stop();
  }
}

async function readResults(store: BlobStore, runId: string): Promise<EpisodeResult[]> {
  const results: EpisodeResult[] = [];
  for await (const key of store.list(runResultsPrefix(runId)))
    results.push(await store.getJson<EpisodeResult>(key));
  return results.sort((a, b) => a.rowIndex - b.rowIndex);
}

/** The version in the project's package.json. */
export function packageVersion(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('rememr1')
    .description('ReMemR1 memory agents on Temporal')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError();

  withDatasetFieldOptions(withEpisodeReadingOptions(program.command('qa')))
    .description('answer every question of a dataset (JSONL, JSON or Parquet) as durable episodes')
    .option(
      '--dataset <source>',
      'dataset (JSONL, JSON or Parquet): a file, a folder or glob of shards, or s3://bucket/prefix/ (read in place)',
      DEFAULT_DATASET,
    )
    .option(
      '--run-id <id>',
      'run id, bound to its dataset and settings (default: derived from the dataset, model and settings)',
      runIdArgument,
    )
    .option(
      '--temperature <t>',
      'sampling temperature (0 = greedy)',
      nonNegative,
      defaultEpisodeSettings.temperature,
    )
    .option('--top-p <p>', 'nucleus sampling', probability, defaultEpisodeSettings.topP)
    .option('--seed <n>', 'base sampling seed', positiveInt, defaultEpisodeSettings.seed)
    .addOption(
      new Option('--scorer <scorer>', 'callback retrieval scorer')
        .choices(RETRIEVAL_SCORERS)
        .default(defaultEpisodeSettings.retrieval.scorer),
    )
    .option(
      '--policy-version <version>',
      'answer with this policy version from the blob store (a training run exports one per step) instead of the configured model',
      runIdArgument,
    )
    .option('--width <n>', 'episodes running at once', positiveInt, 8)
    .option('--page-size <n>', 'episodes per page (one continue-as-new per page)', positiveInt, 100)
    .option('--index-parallelism <n>', 'dataset shards indexed at once (default 4; 1 = one after another)', positiveInt)
    .option(
      '--parquet-piece-mb <n>',
      'Parquet shards larger than this are indexed in pieces of row groups of about this size, one activity each',
      positiveInt,
      DEFAULT_PARQUET_PIECE_BYTES / 2 ** 20,
    )
    .option('--stop-on-bad-row', 'fail on the first malformed row instead of reporting and skipping it')
    .option('--no-worker', 'do not run a worker in this process (workers run elsewhere)')
    .option('--no-ui', 'start the local dev server without its Web UI')
    .option('--show <n>', 'answer rows to print', positiveInt, 20)
    .action((options: QaOptions) => runQa(options));

  program
    .command('worker')
    .description('run a worker until SIGINT / SIGTERM')
    .addOption(
      new Option('--role <role>', 'what the worker serves')
        .choices(WORKER_ROLES)
        .default('all'),
    )
    .action(async (options: { role: WorkerRole }) => {
      const config = loadConfig();
      const health = await startConfiguredHealth(config);
      const running = await startWorkers({ role: options.role, config });
      health.attach(running);
      const queues = running.workers.map((worker) => worker.options.taskQueue).join(', ');
      console.log(
        `${options.role} worker polling ${config.temporal.address} (task queues ${queues}); Ctrl-C stops it gracefully`,
      );
      await running.done;
      await health.close();
    });

  registerRunCommands(program);

  program
    .command('cancel <run>')
    .description('cancel a batch run: its running episodes stop; finished results stay')
    .action(async (runId: string) => {
      const config = loadConfig();
      const client = await connectClient(config);
      try {
        await client.workflow.getHandle(batchWorkflowId(runId)).cancel();
        console.log(`cancellation requested for batch ${runId}`);
      } catch (error) {
        if (error instanceof WorkflowNotFoundError)
          throw new Error(`no running batch ${runId} in namespace ${config.temporal.namespace}`);
        throw error;
      } finally {
        await client.connection.close();
      }
    });

  program
    .command('results <run>')
    .description(
      'the summary of a finished run, or every result row (with the raw final response) as JSON Lines',
    )
    .option('--jsonl', "print every result row as one JSON line, with the model's raw final response")
    .action(async (runId: string, options: { jsonl?: boolean }) => {
      const config = loadConfig();
      const store = createBlobStore(config.storage);
      try {
        const known = await Promise.all(
          [batchRunKey(runId), batchIndexKey(runId), batchSummaryKey(runId)].map((key) => store.exists(key)),
        );
        if (!known.some(Boolean)) throw new Error(`no run ${runId} in the ${store}`);
        if (options.jsonl) {
          for (const result of await readResults(store, runId)) {
            const answerKey = episodeAnswerKey(runId, result.episodeId);
            const response = (await store.exists(answerKey))
              ? (await store.getJson<AnswerRecord>(answerKey)).response
              : null;
            console.log(JSON.stringify({ ...result, response }));
          }
          return;
        }
        if (!(await store.exists(batchSummaryKey(runId))))
          throw new Error(`run ${runId} has no summary yet (is it finished? try: rememr1 status ${runId})`);
        console.log(summaryTable(await store.getJson<BatchSummary>(batchSummaryKey(runId))));
      } finally {
        await store.close();
      }
    });

  registerTrainingCommands(program);
  registerReportCommand(program);
  registerScheduleCommands(program);
  registerBenchDataCommand(program);
  registerTracesCommand(program);
  registerReplicationCommand(program);
  registerExportCommand(program);
  registerCodecServerCommand(program, nonNegativeInt);

  await program.parseAsync(argv);
}

/** Runs the CLI and turns an error into its message and exit code 1 (no stack trace for user errors). */
export function runCli(argv: string[]): void {
  // The AWS SDK's notice about future Node versions is not about this command.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  main(argv).catch((error: Error) => {
    // An empty message: the command already said why it ends.
    if (error.message !== '') console.error(`rememr1: ${error.message}`);
    process.exit(error instanceof CliExit ? error.exitCode : 1);
  });
}

if (require.main === module) runCli(process.argv);
