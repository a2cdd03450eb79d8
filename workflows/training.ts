/**
 * A training run, one step per workflow execution (continue-as-new after each), read as the paper's loop:
 *
 *   GRPO step n:  sample questions (seeded by run seed and n) → G rollout episodes per question, as child
 *                 workflows sampled by policy version n − 1 → `score` (rewards, multi-level advantages,
 *                 the training batch) → `policyUpdate` on the trainer queue (checkpoint n, policy version n)
 *                 → every `evalEvery` steps a batch-QA child on the dev split with version n
 *   SFT step n:   `policyUpdate` in supervised mode over the trace batch (one epoch, seeded by n)
 *
 * Every piece is deterministic given the seeds (sampling, rollouts, scoring, the update), and every write is
 * idempotent, so a run interrupted anywhere (trainer, inference worker, server) ends on the same weights.
 * Signals pause, resume and stop it after the current step; the progress query and the current details show
 * where it is.
 */
import {
  ApplicationFailure,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  executeChild,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { BatchActivities, BatchIndex } from '../activities/batch';
import type { ScoreResult, ScoringActivities } from '../activities/scoring';
import type { TrainingDataActivities } from '../activities/training-data';
import type { PolicyUpdateResult, TrainerActivities } from '../activities/training';
import type { BatchSummary } from '../lib/episode/summary';
import { rolloutSettings, type EpisodeSettings } from '../lib/episode/types';
import type { UpdateSettings } from '../lib/training/update';
import { searchAttributes } from '../lib/temporal/search-attributes';
import { batchQAWorkflow } from './batch';
import { episodeWorkflow } from './episode';
import { activityOptions, type WorkflowRuntime } from './options';

export interface TrainingRunInput {
  runId: string;
  mode: 'grpo' | 'sft';
  /** The policy version the run starts from (its weights are also the KL reference). */
  basePolicy: string;
  /** A model folder on the trainer workers to publish as `basePolicy` first (e.g. the bundled model). */
  baseModelFolder?: string;
  steps: number;
  seed: number;
  /** The update's settings; the shuffle seed is derived from the run's seed and the step. */
  update: Omit<UpdateSettings, 'shuffleSeed' | 'mode'>;
  grpo?: {
    /** Blob key and name of the training split (with gold answers). */
    datasetKey: string;
    dataset: string;
    questionsPerStep: number;
    /** G: rollouts per question. */
    groupSize: number;
    /** Weight of the outcome advantage (1 = MemAgent, outcome only). */
    alpha: number;
    normalizeStd: boolean;
    /** How rollouts read (chunk size, chunk cap, agent mode, retrieval); sampling is forced to temperature 1. */
    episode: EpisodeSettings;
    /** Rollout episodes running at once. */
    width: number;
  };
  sft?: {
    /** Blob key of the TrainingBatch of supervised traces. */
    tracesKey: string;
  };
  evaluation?: {
    datasetKey: string;
    dataset: string;
    /** Every this many steps, and after the last. */
    every: number;
    settings: EpisodeSettings;
    width: number;
  };
  runtime: WorkflowRuntime;
  /**
   * Each start is its own run: the run id becomes `{runId}.{start time}` (how a schedule retrains on every
   * firing instead of replaying the finished run of the same id).
   */
  perFiring?: boolean;
  /** Carried across continue-as-new. */
  state?: TrainingState;
}

export interface TrainingState {
  /** Steps done: checkpoint `step` and policy version `policyVersion` exist. */
  step: number;
  policyVersion: string;
  trainIndex: BatchIndex | null;
  paused: boolean;
  stopRequested: boolean;
}

export interface TrainingProgress {
  status: 'starting' | 'rollouts' | 'scoring' | 'updating' | 'evaluating' | 'paused' | 'stopped' | 'done';
  step: number;
  steps: number;
  policyVersion: string;
  last: StepMetrics | null;
}

/** What one step records (training/{run}/metrics/{step}.json) and reports. */
export interface StepMetrics {
  step: number;
  mode: 'grpo' | 'sft';
  policyVersion: string;
  weightsDigest: string;
  rollouts: ScoreResult['stats'] | null;
  update: PolicyUpdateResult['summary'];
  /** Dev scores; `metricsMode` names the mode that computed them (absent in metrics written before it was kept). */
  evaluation: {
    exactMatch: number;
    f1: number;
    episodes: number;
    metricsMode?: BatchSummary['metricsMode'];
  } | null;
  seconds: {
    rollouts: number;
    scoring: number;
    update: number;
    checkpoint: number;
    export: number;
    evaluation: number;
  };
}

export const trainingProgressQuery = defineQuery<TrainingProgress>('trainingProgress');
export const pauseTrainingSignal = defineSignal('pauseTraining');
export const resumeTrainingSignal = defineSignal('resumeTraining');
export const stopTrainingSignal = defineSignal('stopTraining');

export const policyVersionOf = (runId: string, step: number): string => `${runId}.step-${step}`;

/** `{runId}.{YYYYMMDD-HHMMSS}` of the workflow's start (UTC): a run id of its own for each firing. */
export function firingRunId(runId: string, start: Date): string {
  const stamp = start.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${runId}.${stamp}`;
}

export async function trainingWorkflow(original: TrainingRunInput): Promise<TrainingProgress> {
  const input: TrainingRunInput =
    original.perFiring === true && original.state === undefined
      ? { ...original, runId: firingRunId(original.runId, workflowInfo().startTime), perFiring: false }
      : original;
  const { runtime } = input;
  const io = proxyActivities<BatchActivities & TrainingDataActivities & ScoringActivities>(
    activityOptions(runtime.activities.io, runtime.taskQueues.orchestration),
  );
  const trainer = proxyActivities<TrainerActivities>(
    activityOptions(runtime.activities.policyUpdate, runtime.taskQueues.trainer),
  );

  const state: TrainingState = input.state ?? {
    step: 0,
    policyVersion: input.basePolicy,
    trainIndex: null,
    paused: false,
    stopRequested: false,
  };
  const progress: TrainingProgress = {
    status: 'starting',
    step: state.step,
    steps: input.steps,
    policyVersion: state.policyVersion,
    last: null,
  };
  setHandler(trainingProgressQuery, () => progress);
  setHandler(pauseTrainingSignal, () => void (state.paused = true));
  setHandler(resumeTrainingSignal, () => void (state.paused = false));
  setHandler(stopTrainingSignal, () => void (state.stopRequested = true));
  const show = (status: TrainingProgress['status']): void => {
    progress.status = status;
    upsertSearchAttributes([{ key: searchAttributes.status, value: status }]);
    const last = progress.last;
    setCurrentDetails(
      `**Step ${progress.step} of ${input.steps}** (${status}), policy ${progress.policyVersion}` +
        (last === null
          ? ''
          : `\n\nlast step: loss ${last.update.loss.toFixed(4)}, entropy ${last.update.entropy.toFixed(3)}` +
            (last.rollouts === null
              ? ''
              : `, reward ${last.rollouts.reward.outcome.toFixed(3)}, accuracy ${last.rollouts.accuracy.toFixed(3)}`) +
            (last.evaluation === null ? '' : `, dev EM ${last.evaluation.exactMatch.toFixed(3)}`)),
    );
  };

  if (input.state === undefined) {
    upsertSearchAttributes([
      { key: searchAttributes.kind, value: 'training' },
      { key: searchAttributes.runId, value: input.runId },
      { key: searchAttributes.dataset, value: input.grpo?.dataset ?? 'traces' },
    ]);
    const problem = inputProblem(input);
    if (problem !== null) throw ApplicationFailure.nonRetryable(problem, 'TrainingInputError');
    if (input.baseModelFolder !== undefined)
      await trainer.publishPolicy(input.baseModelFolder, input.basePolicy);
  }
  if (input.grpo !== undefined && state.trainIndex === null) {
    state.trainIndex = await io.indexDataset(`${input.runId}.train`, input.grpo.datasetKey, 256);
  }

  show(state.paused ? 'paused' : 'starting');
  await condition(() => !state.paused || state.stopRequested);
  if (state.stopRequested || state.step >= input.steps) {
    show(state.stopRequested ? 'stopped' : 'done');
    return progress;
  }

  const metrics = await trainingStep(input, state, io, trainer, show, progress);
  await io.recordTrainingStep(input.runId, metrics.step, metrics as unknown as Record<string, unknown>);
  state.step = metrics.step;
  state.policyVersion = metrics.policyVersion;
  Object.assign(progress, { step: state.step, policyVersion: state.policyVersion, last: metrics });
  if (state.step >= input.steps || state.stopRequested) {
    show(state.stopRequested ? 'stopped' : 'done');
    return progress;
  }
  show(state.paused ? 'paused' : 'starting');
  await condition(allHandlersFinished);
  return continueAsNew<typeof trainingWorkflow>({ ...input, state });
}

/** What makes a run's input unusable, in one line; null when it can start. */
export function inputProblem(input: TrainingRunInput): string | null {
  if (!Number.isInteger(input.steps) || input.steps < 1)
    return `steps must be an integer ≥ 1, got ${input.steps}`;
  if (input.mode === 'grpo' && input.grpo === undefined)
    return 'a GRPO run needs its grpo settings (dataset, G, α)';
  if (input.mode === 'sft' && input.sft === undefined) return 'a supervised run needs its traces';
  if (input.grpo !== undefined && input.grpo.groupSize < 2) {
    return `group size must be at least 2 (GRPO compares rollouts), got ${input.grpo.groupSize}`;
  }
  if (input.grpo !== undefined && !(input.grpo.alpha >= 0 && input.grpo.alpha <= 1)) {
    return `alpha must be in [0, 1] (1 = outcome reward only), got ${input.grpo.alpha}`;
  }
  if (
    input.evaluation !== undefined &&
    !(Number.isInteger(input.evaluation.every) && input.evaluation.every >= 1)
  ) {
    return `evaluation every must be an integer ≥ 1, got ${input.evaluation.every}`;
  }
  return null;
}

type Io = ReturnType<typeof proxyActivities<BatchActivities & TrainingDataActivities & ScoringActivities>>;
type Trainer = ReturnType<typeof proxyActivities<TrainerActivities>>;

/** One step of the loop in the file's comment; returns what it records. */
async function trainingStep(
  input: TrainingRunInput,
  state: TrainingState,
  io: Io,
  trainer: Trainer,
  show: (status: TrainingProgress['status']) => void,
  progress: TrainingProgress,
): Promise<StepMetrics> {
  const step = state.step + 1;
  const policyVersion = policyVersionOf(input.runId, step);
  const seconds = { rollouts: 0, scoring: 0, update: 0, checkpoint: 0, export: 0, evaluation: 0 };
  let clock = Date.now();
  const lap = (): number => {
    const now = Date.now();
    const elapsed = (now - clock) / 1000;
    clock = now;
    return elapsed;
  };
  let batchKey: string;
  let rollouts: ScoreResult['stats'] | null = null;

  progress.step = step - 1;
  if (input.mode === 'grpo') {
    const grpo = input.grpo!;
    show('rollouts');
    const rolloutRun = `${input.runId}.rollouts-${step}`;
    const groups = await io.sampleRollouts({
      dataRun: `${input.runId}.train`,
      index: state.trainIndex!,
      rolloutRun,
      questions: grpo.questionsPerStep,
      groupSize: grpo.groupSize,
      seed: input.seed,
      step,
    });
    const settings = rolloutSettings(
      { ...grpo.episode, seed: (input.seed + step * 7919) % 2 ** 31 },
      state.policyVersion,
    );
    await inWindow(groups.flat(), grpo.width, (episodeId) =>
      executeChild(episodeWorkflow, {
        workflowId: `${rolloutRun}.${episodeId}`,
        taskQueue: input.runtime.taskQueues.orchestration,
        parentClosePolicy: ParentClosePolicy.TERMINATE,
        staticSummary: `Rollout ${episodeId} of training step ${step}`,
        args: [{ runId: rolloutRun, episodeId, settings, runtime: input.runtime, dataset: grpo.dataset }],
      }),
    );
    seconds.rollouts = lap();
    show('scoring');
    const scored = await io.score({
      trainingRunId: input.runId,
      step,
      rolloutRunId: rolloutRun,
      groups,
      policyVersion: state.policyVersion,
      alpha: grpo.alpha,
      normalizeStd: grpo.normalizeStd,
    });
    batchKey = scored.batchKey;
    rollouts = scored.stats;
    seconds.scoring = lap();
  } else {
    batchKey = input.sft!.tracesKey;
  }

  show('updating');
  const update = input.mode === 'sft' ? trainer.sft : trainer.policyUpdate;
  const updated = await update({
    run: input.runId,
    step,
    basePolicy: input.basePolicy,
    batchKey,
    settings: { ...input.update, mode: input.mode, shuffleSeed: `${input.seed}/step-${step}` },
    exportVersion: policyVersion,
  });
  lap();
  seconds.update = updated.seconds.load + updated.seconds.update;
  seconds.checkpoint = updated.seconds.checkpoint;
  seconds.export = updated.seconds.export;

  let evaluation: StepMetrics['evaluation'] = null;
  const evalSettings = input.evaluation;
  if (evalSettings !== undefined && (step % evalSettings.every === 0 || step === input.steps)) {
    show('evaluating');
    const summary: BatchSummary = await executeChild(batchQAWorkflow, {
      workflowId: `${input.runId}.eval-${step}`,
      taskQueue: input.runtime.taskQueues.orchestration,
      parentClosePolicy: ParentClosePolicy.TERMINATE,
      staticSummary: `Evaluation of ${policyVersion} on ${evalSettings.dataset}`,
      args: [
        {
          runId: `${input.runId}.eval-${step}`,
          datasetKey: evalSettings.datasetKey,
          dataset: evalSettings.dataset,
          settings: { ...evalSettings.settings, policyVersion },
          runtime: input.runtime,
          width: evalSettings.width,
          pageSize: 256,
          stopOnBadRow: false,
        },
      ],
    });
    evaluation = {
      exactMatch: summary.overall.exactMatch,
      f1: summary.overall.f1,
      episodes: summary.overall.episodes,
      metricsMode: summary.metricsMode,
    };
    seconds.evaluation = lap();
  }
  return {
    step,
    mode: input.mode,
    policyVersion,
    weightsDigest: updated.weightsDigest,
    rollouts,
    update: updated.summary,
    evaluation,
    seconds,
  };
}

/** Runs `work` over `items`, at most `width` at a time; the first failure fails the step. */
async function inWindow<T>(
  items: readonly T[],
  width: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  const running = new Set<Promise<unknown>>();
  for (const item of items) {
    while (running.size >= Math.max(1, width)) await Promise.race(running);
    const task: Promise<unknown> = work(item).finally(() => running.delete(task));
    running.add(task);
  }
  await Promise.all(running);
}
