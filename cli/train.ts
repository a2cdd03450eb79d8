/**
 * Training commands of `rememr1`:
 *
 *   train --dataset FILE …        a GRPO run (`trainingWorkflow`, mode grpo) on the embedded default, like `qa`
 *   sft --traces FILE.json …      a supervised run over a TrainingBatch of traces (mode sft)
 *   train-control RUN pause|resume|stop
 *
 * Every input is checked before anything starts (no dev server, upload or workflow for a bad command line).
 * The run id is derived from the data, settings and base policy unless given, so running the same command again
 * follows (or, once finished, replays idempotently) the same run.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import Table from 'cli-table3';
import { Argument, Command, InvalidArgumentError } from 'commander';
import { DEFAULT_ALPHA } from '../lib/agent/advantages';
import { metricLabel } from '../lib/agent/metrics';
import { detectDatasetFormat, readDataset } from '../lib/data/dataset';
import { describeGenerationLimits } from '../lib/episode/generation-limits';
import { defaultEpisodeSettings, type EpisodeSettings } from '../lib/episode/types';
import { createBlobStore, policyFileKey, trainingMetricsKey, type BlobStore } from '../lib/storage';
import { TRAINING_BATCH_FORMAT } from '../lib/training/batch';
import { POLICY_MANIFEST_FILE } from '../lib/training/policy-versions';
import { defaultUpdateSettings } from '../lib/training/update';
import { loadConfig, type RememConfig } from '../temporal.config';
import {
  pauseTrainingSignal,
  resumeTrainingSignal,
  stopTrainingSignal,
  trainingProgressQuery,
  trainingWorkflow,
  type StepMetrics,
  type TrainingProgress,
  type TrainingRunInput,
} from '../workflows/training';
import { embeddedConfigFor } from '../workers/embedded';
import { startWorkers } from '../workers/worker';
import {
  CliExit,
  atMost,
  checkDatasetFile,
  connectClient,
  ensureTemporal,
  innermostMessage,
  positiveInt,
  runIdArgument,
  signalExitCode,
  uploadDataset,
  watchInterrupts,
  withEpisodeReadingOptions,
  workflowUiLink,
} from './main';
import { episodeSettingOverrides, runGenerationLimits, type EpisodeSettingOptions } from './episode-settings';
import { readStepMetrics } from './report';

/** Rows of the dataset read before starting, to refuse a dataset without gold answers at once. */
const ROWS_CHECKED = 200;

export function trainingWorkflowId(runId: string): string {
  return `training.${runId}`;
}

/**
 * Workflow ids of the training runs other than `exceptWorkflowId` still running on `taskQueue`: an embedded worker
 * on that queue serves their steps too (its model queue only when they follow the same model).
 */
export async function otherTrainingRuns(client: Client, taskQueue: string, exceptWorkflowId: string): Promise<string[]> {
  const quote = (text: string): string => `'${text.replace(/'/g, "\\'")}'`;
  const ids: string[] = [];
  for await (const execution of client.workflow.list({
    query: `WorkflowType = 'trainingWorkflow' AND ExecutionStatus = 'Running' AND TaskQueue = ${quote(taskQueue)} AND WorkflowId != ${quote(exceptWorkflowId)}`,
  })) {
    ids.push(execution.workflowId);
  }
  return ids.sort();
}

function groupSize(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 2) {
    throw new InvalidArgumentError(
      'expected an integer of at least 2 (GRPO compares the G rollouts of a question)',
    );
  }
  return parsed;
}

function steps(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1)
    throw new InvalidArgumentError('expected an integer of at least 1 (training steps)');
  return parsed;
}

function alpha(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0 || parsed > 1)
    throw new InvalidArgumentError('expected a number from 0 to 1 (1 = outcome advantage only, MemAgent)');
  return parsed;
}

function learningRate(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new InvalidArgumentError('expected a learning rate > 0');
  return parsed;
}

function policyVersionArgument(value: string): string {
  try {
    return runIdArgument(value);
  } catch {
    throw new InvalidArgumentError(
      'expected a policy version name: 1 to 128 characters from A-Z a-z 0-9 . _ -',
    );
  }
}

/** What `train`, `sft` and `schedule create` read from the command line. */
export interface TrainingRunOptions extends EpisodeSettingOptions {
  dataset?: string;
  traces?: string;
  dev?: string;
  steps: number;
  questions: number;
  group: number;
  alpha: number;
  lr: number;
  miniBatches: number;
  chunkTokens?: number;
  maxChunks: number;
  memoryTokens?: number;
  answerTokens?: number;
  mode: EpisodeSettings['mode'];
  basePolicy?: string;
  runId?: string;
  seed: number;
  evalEvery: number;
  width: number;
}

/** The options shared by `train`, `sft` and `schedule create` (GRPO-only ones when `grpo`). */
export function addTrainingRunOptions(command: Command, grpo: boolean): Command {
  if (grpo) {
    command
      .option('--questions <Q>', 'questions sampled per step', positiveInt, 2)
      .option('--group <G>', 'rollouts per question (G ≥ 2)', groupSize, 4)
      .option(
        '--alpha <A>',
        'weight of the outcome advantage (1 = MemAgent, outcome only)',
        alpha,
        DEFAULT_ALPHA,
      );
  }
  return withEpisodeReadingOptions(command)
    .option('--dev <file>', 'dev split evaluated every --eval-every steps and after the last')
    .option('--steps <N>', 'training steps', steps, 4)
    .option(
      '--lr <LR>',
      'peak learning rate (AdamW)',
      learningRate,
      defaultUpdateSettings.optimizer.learningRate,
    )
    .option(
      '--mini-batches <M>',
      'optimiser steps per training step',
      positiveInt,
      defaultUpdateSettings.miniBatches,
    )
    .option(
      '--base-policy <version>',
      'policy version to start from (default: publish the configured model folder as RUN.base)',
      policyVersionArgument,
    )
    .option(
      '--run-id <id>',
      'run id (default: derived from the data, settings and base policy)',
      runIdArgument,
    )
    .option('--seed <S>', 'run seed (question sampling, rollouts, shuffles)', positiveInt, 1)
    .option('--eval-every <N>', 'evaluate on --dev every N steps', positiveInt, 1)
    .option('--width <W>', 'episodes running at once', positiveInt, 8);
}

/** A file that must exist, as a one-line error. */
function checkFile(what: string, file: string): void {
  if (!fs.existsSync(file)) throw new Error(`${what} file ${file} does not exist`);
  if (!fs.statSync(file).isFile()) throw new Error(`${what} ${file} is not a file`);
}

/**
 * Reads the first rows of a training split: every valid one must have gold answers (the outcome reward needs
 * them). When the whole file was read, there must also be at least `questions` valid rows.
 */
export async function checkTrainingRows(file: string, questions: number): Promise<void> {
  checkDatasetFile(file);
  const format = detectDatasetFormat(file);
  let valid = 0;
  let read = 0;
  let complete = true;
  const source = {
    stream: async () => fs.createReadStream(file),
    bytes: async () => new Uint8Array(fs.readFileSync(file)),
  };
  for await (const item of readDataset(source, format)) {
    if (read >= ROWS_CHECKED) {
      complete = false;
      break;
    }
    read += 1;
    if (!item.ok) continue;
    if (item.row.answers.length === 0) {
      throw new Error(
        `dataset ${path.basename(file)}: row ${item.row.rowIndex} (${item.row.id}) has no gold answers; training needs them for the outcome reward`,
      );
    }
    valid += 1;
  }
  if (valid === 0)
    throw new Error(
      `dataset ${path.basename(file)} has no valid row${complete ? '' : ` in its first ${ROWS_CHECKED}`} (each needs question, context and answers)`,
    );
  if (complete && valid < questions)
    throw new Error(
      `dataset ${path.basename(file)} has ${valid} valid rows, fewer than --questions ${questions}`,
    );
}

/** Refuses a traces file that is not a TrainingBatch with sequences. */
export function checkTracesFile(file: string): void {
  checkFile('traces', file);
  let batch: unknown;
  try {
    batch = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`traces file ${path.basename(file)} is not JSON: ${(error as Error).message}`);
  }
  const b = batch as { format?: unknown; sequences?: unknown };
  if (typeof batch !== 'object' || batch === null || b.format !== TRAINING_BATCH_FORMAT) {
    throw new Error(
      `traces file ${path.basename(file)} is not a training batch (expected "format": "${TRAINING_BATCH_FORMAT}")`,
    );
  }
  if (!Array.isArray(b.sequences) || b.sequences.length === 0)
    throw new Error(`traces file ${path.basename(file)} has no sequences`);
}

/** Refuses a base policy version that the blob store does not hold (a version exists once its manifest does). */
export async function checkPolicyVersion(store: BlobStore, version: string): Promise<void> {
  if (!(await store.exists(policyFileKey(version, POLICY_MANIFEST_FILE)))) {
    throw new Error(
      `policy version ${version} does not exist in the blob store (no policies/${version}/${POLICY_MANIFEST_FILE})`,
    );
  }
}

/** Every check of a run's command line that needs no server: files, rows, traces, the base policy. */
export async function checkTrainingRunOptions(
  options: TrainingRunOptions,
  mode: TrainingRunInput['mode'],
  store: BlobStore,
): Promise<void> {
  if (mode === 'grpo') {
    if (options.dataset === undefined)
      throw new Error('a GRPO run needs --dataset FILE (rows with question, context and answers)');
    checkFile('dataset', options.dataset);
    await checkTrainingRows(options.dataset, options.questions);
  } else {
    if (options.traces === undefined)
      throw new Error('a supervised run needs --traces FILE.json (a training batch)');
    checkTracesFile(options.traces);
  }
  if (options.dev !== undefined) {
    checkFile('dev', options.dev);
    await checkTrainingRows(options.dev, 1);
  }
  if (options.basePolicy !== undefined) await checkPolicyVersion(store, options.basePolicy);
}

/** Uploads the run's files and builds the workflow input (call `checkTrainingRunOptions` first). */
export async function buildTrainingInput(
  options: TrainingRunOptions,
  mode: TrainingRunInput['mode'],
  config: RememConfig,
  store: BlobStore,
  defaultRunId?: string,
): Promise<TrainingRunInput> {
  // Per-turn limits scaled to the base policy (its generation_config.json), unless given.
  const limits = await runGenerationLimits(
    options,
    config,
    options.basePolicy === undefined ? undefined : { policyVersion: options.basePolicy, store },
  );
  console.log(describeGenerationLimits(limits));
  const episode: EpisodeSettings = {
    ...defaultEpisodeSettings,
    mode: options.mode,
    chunkTokens: limits.chunkTokens,
    maxChunks: options.maxChunks,
    memoryMaxNewTokens: limits.memoryMaxNewTokens,
    answerMaxNewTokens: limits.answerMaxNewTokens,
    seed: options.seed,
    ...episodeSettingOverrides(options, config),
  };
  const update: TrainingRunInput['update'] = {
    ...defaultUpdateSettings,
    miniBatches: options.miniBatches,
    optimizer: { ...defaultUpdateSettings.optimizer, learningRate: options.lr },
  };
  const data =
    mode === 'grpo'
      ? await uploadDataset(store, options.dataset!)
      : await uploadDataset(store, options.traces!);
  const dev = options.dev === undefined ? undefined : await uploadDataset(store, options.dev);
  const model = path.resolve(config.model.path);
  // What the run computes, and only that: the same data, base and settings name the same run.
  const identity = {
    mode,
    data: data.digest,
    dev: dev?.digest,
    base: options.basePolicy ?? model,
    steps: options.steps,
    seed: options.seed,
    update,
    episode,
    grpo:
      mode === 'grpo'
        ? { questions: options.questions, group: options.group, alpha: options.alpha }
        : undefined,
    evalEvery: options.dev === undefined ? undefined : options.evalEvery,
  };
  const runId =
    options.runId ??
    defaultRunId ??
    `${mode === 'grpo' ? 'train' : 'sft'}-${createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 16)}`;
  const basePolicy = options.basePolicy ?? `${runId}.base`;
  return {
    runId,
    mode,
    basePolicy,
    baseModelFolder: options.basePolicy === undefined ? model : undefined,
    steps: options.steps,
    seed: options.seed,
    update,
    grpo:
      mode === 'grpo'
        ? {
            datasetKey: data.key,
            dataset: path.basename(options.dataset!),
            questionsPerStep: options.questions,
            groupSize: options.group,
            alpha: options.alpha,
            normalizeStd: true,
            episode,
            width: options.width,
          }
        : undefined,
    sft: mode === 'sft' ? { tracesKey: data.key } : undefined,
    evaluation:
      dev === undefined
        ? undefined
        : {
            datasetKey: dev.key,
            dataset: path.basename(options.dev!),
            every: options.evalEvery,
            // Dev scores are greedy, so two evaluations of one policy agree.
            settings: { ...episode, temperature: 0 },
            width: options.width,
          },
    runtime: { taskQueues: config.taskQueues, activities: config.activities },
  };
}

const fixed = (value: number | null | undefined, digits: number): string =>
  typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '-';

/** One line of progress: status, step/steps and the last step's reward, accuracy and loss. */
export function progressLine(progress: TrainingProgress): string {
  const last = progress.last;
  const head = `step ${progress.step}/${progress.steps} ${progress.status}`;
  if (last === null) return `${head} (policy ${progress.policyVersion})`;
  const rollouts =
    last.rollouts === null
      ? ''
      : `reward ${fixed(last.rollouts.reward.outcome, 3)}, accuracy ${fixed(last.rollouts.accuracy, 3)}, `;
  const dev =
    last.evaluation === null
      ? ''
      : `, dev ${metricLabel('EM', last.evaluation.metricsMode)} ${fixed(last.evaluation.exactMatch, 3)}`;
  return `${head} | last step: ${rollouts}loss ${fixed(last.update.loss, 4)}${dev}`;
}

const style = process.stdout.isTTY ? undefined : { head: [], border: [] };

/** The per-step metrics as a short table. */
export function stepsTable(steps: readonly StepMetrics[]): string {
  const mode = steps.find((m) => m.evaluation !== null)?.evaluation?.metricsMode;
  const table = new Table({
    head: [
      'step',
      'reward',
      'acc',
      'loss',
      'KL',
      'clip',
      'entropy',
      'callback',
      `dev ${metricLabel('EM', mode)}`,
      `dev ${metricLabel('F1', mode)}`,
      'seconds',
    ],
    style,
  });
  for (const m of steps) {
    const s = m.seconds;
    const total = s.rollouts + s.scoring + s.update + s.checkpoint + s.export + s.evaluation;
    table.push([
      m.step,
      fixed(m.rollouts?.reward.outcome, 3),
      fixed(m.rollouts?.accuracy, 3),
      fixed(m.update.loss, 4),
      fixed(m.update.kl, 4),
      fixed(m.update.clipFraction, 3),
      fixed(m.update.entropy, 3),
      fixed(m.rollouts?.callbackRate, 3),
      fixed(m.evaluation?.exactMatch, 3),
      fixed(m.evaluation?.f1, 3),
      total.toFixed(1),
    ]);
  }
  return table.toString();
}

/**
 * Prints a progress line whenever the status or step changes, until the run ends or a signal arrives. Each run
 * of the workflow (one per step, continue-as-new) starts without a last step, so the last finished step's
 * metrics are read from the blob store.
 */
async function followTraining(
  handle: WorkflowHandle<typeof trainingWorkflow>,
  store: BlobStore,
  runId: string,
  interrupt: Promise<NodeJS.Signals>,
): Promise<{ progress: TrainingProgress } | { signal: NodeJS.Signals }> {
  let shown = '';
  let last: StepMetrics | null = null;
  let inFlight: Promise<void> = Promise.resolve();
  const poll = setInterval(() => {
    inFlight = handle
      .query(trainingProgressQuery)
      .then(async (progress) => {
        if (progress.last !== null) last = progress.last;
        else if (progress.step > 0 && (last === null || last.step < progress.step)) {
          last = await store.getJson<StepMetrics>(trainingMetricsKey(runId, progress.step));
        }
        const line = progressLine({ ...progress, last: progress.last ?? last });
        if (line !== shown) console.log(line);
        shown = line;
      })
      .catch(() => undefined); // between continue-as-new runs a query can miss; the next poll catches up
  }, 1000);
  try {
    return await Promise.race([
      handle.result().then((progress) => ({ progress })),
      interrupt.then((signal) => ({ signal })),
    ]);
  } finally {
    clearInterval(poll);
    await atMost(2_000, inFlight);
  }
}

interface RunCommandOptions extends TrainingRunOptions {
  worker: boolean;
  ui: boolean;
}

async function runTraining(options: RunCommandOptions, mode: TrainingRunInput['mode']): Promise<void> {
  process.env.REMEMR1_LOG_LEVEL ??= 'WARN';
  let config = loadConfig();
  const store = createBlobStore(config.storage);
  let client: Client | undefined;
  let workers: Awaited<ReturnType<typeof startWorkers>> | undefined;
  let interrupted = false;
  const interrupts = watchInterrupts();
  try {
    await checkTrainingRunOptions(options, mode, store);
    await ensureTemporal(config, options.ui);
    const input = await buildTrainingInput(options, mode, config, store);
    const { runId } = input;
    client = await connectClient(config);
    // With its own worker, the run's model steps go to a queue of this model, or of the run it follows
    // (workers/embedded.ts): never to another command's worker with other weights.
    if (options.worker) {
      config = await embeddedConfigFor(client, trainingWorkflowId(runId), config);
      input.runtime = { ...input.runtime, taskQueues: config.taskQueues };
    }
    workers = options.worker ? await startWorkers({ role: 'all', config, store }) : undefined;
    const workflowId = trainingWorkflowId(runId);
    let handle: WorkflowHandle<typeof trainingWorkflow>;
    try {
      handle = await client.workflow.start(trainingWorkflow, {
        workflowId,
        taskQueue: config.taskQueues.orchestration,
        args: [input],
        staticSummary: `${mode === 'grpo' ? 'GRPO' : 'Supervised'} training from ${input.basePolicy}, ${input.steps} steps`,
      });
      console.log(
        `Started training run ${runId} (${mode}, ${input.steps} steps, base policy ${input.basePolicy})`,
      );
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      handle = client.workflow.getHandle(workflowId);
      console.log(`Training run ${runId} is already running; following it`);
    }
    console.log(`Temporal UI: ${workflowUiLink(config, workflowId)}`);
    if (workers !== undefined) {
      // A run left running by an earlier command shares this worker's queues and its CPU: say so, once.
      const others = await otherTrainingRuns(client, config.taskQueues.orchestration, workflowId).catch(() => []);
      if (others.length > 0) {
        const runs = others.map((id) => id.slice('training.'.length));
        console.log(
          `note: ${runs.length} other training run(s) are running on these task queues and share this worker: ${runs.slice(0, 5).join(', ')}${runs.length > 5 ? ', …' : ''}; ` +
            `stop superseded ones with: npm run rememr1 -- train-control RUN stop`,
        );
      }
    }
    let progress: TrainingProgress;
    try {
      const outcome = await followTraining(handle, store, runId, interrupts.signal);
      if ('signal' in outcome) {
        interrupted = true;
        // Said before the worker is stopped, as `qa` does: a second signal during the stop exits at once.
        console.error(
          'rememr1: ' +
            [
              `interrupted (${outcome.signal}): this command's worker is stopping; training run ${runId} keeps running on the Temporal server at ${config.temporal.address}, served by any worker on its task queues`,
              `  pause or stop it: npm run rememr1 -- train-control ${runId} pause|stop    (UI: ${workflowUiLink(config, workflowId)})`,
              `  resume it here: run the same command again (finished steps are kept)`,
            ].join('\n'),
        );
        throw new CliExit('', signalExitCode(outcome.signal));
      }
      progress = outcome.progress;
    } catch (error) {
      if (error instanceof WorkflowFailedError)
        throw new Error(`training run ${runId} failed: ${innermostMessage(error)}`);
      throw error;
    }
    console.log(progressLine(progress));
    const steps = await readStepMetrics(store, runId);
    if (steps.length > 0) console.log(stepsTable(steps));
    console.log(
      `Run id: ${runId}    policy: ${progress.policyVersion}    report: npm run rememr1 -- train-report ${runId}`,
    );
  } finally {
    const cleanup = async (): Promise<void> => {
      await workers?.shutdown();
      await client?.connection.close();
      await store.close();
    };
    if (interrupted) await atMost(5_000, cleanup());
    else await cleanup();
    interrupts.dispose();
  }
}

const SIGNALS = {
  pause: pauseTrainingSignal,
  resume: resumeTrainingSignal,
  stop: stopTrainingSignal,
} as const;

export function registerTrainingCommands(program: Command): void {
  addTrainingRunOptions(
    program
      .command('train')
      .showHelpAfterError(false)
      .description(
        'run GRPO training (trainingWorkflow) on a dataset with gold answers, with progress and a UI link',
      )
      .requiredOption(
        '--dataset <file>',
        'training split (JSONL, JSON or Parquet rows with question, context and answers)',
      ),
    true,
  )
    .option('--no-worker', 'do not run a worker in this process (workers run elsewhere)')
    .option('--no-ui', 'start the local dev server without its Web UI')
    .action((options: RunCommandOptions) => runTraining(options, 'grpo'));

  addTrainingRunOptions(
    program
      .command('sft')
      .showHelpAfterError(false)
      .description(
        'run supervised training over traces (a TrainingBatch JSON file) with progress and a UI link',
      )
      .requiredOption('--traces <file>', 'training batch JSON ("format": "rememr1-training-batch/1")'),
    false,
  )
    .option('--no-worker', 'do not run a worker in this process (workers run elsewhere)')
    .option('--no-ui', 'start the local dev server without its Web UI')
    .action((options: RunCommandOptions) =>
      runTraining({ ...options, questions: 1, group: 2, alpha: 1 }, 'sft'),
    );

  program
    .command('train-control')
    .showHelpAfterError(false)
    .description('pause, resume or stop a training run (it pauses or stops after the current step)')
    .argument('<run>', 'training run id', runIdArgument)
    .addArgument(new Argument('<action>', 'pause | resume | stop').choices(Object.keys(SIGNALS)))
    .action(async (run: string, action: keyof typeof SIGNALS) => {
      const config = loadConfig();
      const client = await connectClient(config);
      try {
        await client.workflow.getHandle(trainingWorkflowId(run)).signal(SIGNALS[action]);
        console.log(`${action} sent to training run ${run} (it takes effect after the current step)`);
      } catch (error) {
        if (error instanceof WorkflowNotFoundError)
          throw new Error(`no running training run ${run} in namespace ${config.temporal.namespace}`);
        throw error;
      } finally {
        await client.connection.close();
      }
    });
}
