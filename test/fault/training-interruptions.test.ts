/**
 * Fault: a GRPO run interrupted in the middle ends on the weights of an uninterrupted run with the same seeds
 * (the digest of its last checkpoint), for the two interruptions the trainer-crash test does not cover:
 *  1. the inference worker (its own process) killed with kill -9 while the rollouts of step 2 run, and a new
 *     one started: the retried episodes sample the same tokens, so the scored batch and the update match;
 *  2. a private Temporal dev server stopped and restarted while step 2 runs: the run picks up where it was.
 * The run is small (2 steps, 2 questions × G = 2, one chunk each) and starts from the bundled model without a
 * warm start: the reward may be zero, but the update must move the weights away from the base ones.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { startTemporal, stopTemporal, type StackPaths } from '../../infra/local-stack';
import type { EpisodeSettings } from '../../lib/episode/types';
import { parseModelConfig } from '../../lib/model/config';
import { qwen2TensorSpecs } from '../../lib/model-build/qwen2-weights';
import { parseSafetensors } from '../../lib/model/safetensors';
import {
  checkpointPrefix,
  runPrefix,
  trainingBatchKey,
  trainingMetricsKey,
  type BlobStore,
} from '../../lib/storage';
import type { TrainingBatch } from '../../lib/training/batch';
import {
  architectureOf,
  checkpointConfigHash,
  readCheckpoint,
  weightsDigest,
} from '../../lib/training/checkpoint';
import { defaultUpdateSettings } from '../../lib/training/update';
import type { RememConfig } from '../../temporal.config';
import {
  trainingProgressQuery,
  trainingWorkflow,
  type StepMetrics,
  type TrainingProgress,
  type TrainingRunInput,
} from '../../workflows/training';
import { killHard, startWorkerProcess, type WorkerProcess } from '../../workers/spawn';
import { startWorkers, type RunningWorkers } from '../../workers/worker';
import { WorkerRig, privateServerSlot } from '../support/rig';
import { eventually, requireStackEnvironment, testConfig, testNamespace } from '../support/stack';
import { toyEpisode, toyRows } from '../support/toy';

const STEPS = 2;
const QUESTIONS_PER_STEP = 2;
const GROUP_SIZE = 2;
const ROLLOUTS_PER_STEP = QUESTIONS_PER_STEP * GROUP_SIZE;
const ITEMS = ['lamp', 'boat', 'chair', 'stone'];
const TRAIN_ROWS = toyRows(ITEMS);

/** One chunk per rollout; memory turns long enough that a rollout is still running when the test strikes. */
const episode: EpisodeSettings = toyEpisode(128);

function runInput(config: RememConfig, runId: string, datasetKey: string): TrainingRunInput {
  return {
    runId,
    mode: 'grpo',
    basePolicy: `${runId}.base`,
    baseModelFolder: config.model.path,
    steps: STEPS,
    seed: 17,
    update: {
      ...defaultUpdateSettings,
      miniBatches: 2,
      optimizer: { ...defaultUpdateSettings.optimizer, learningRate: 1e-3, warmupSteps: 1 },
    },
    grpo: {
      datasetKey,
      dataset: 'toy',
      questionsPerStep: QUESTIONS_PER_STEP,
      groupSize: GROUP_SIZE,
      alpha: 0.8,
      normalizeStd: false,
      episode,
      // One rollout at a time: the rollouts of a step last long enough to be interrupted in the middle.
      width: 1,
    },
    runtime: { taskQueues: config.taskQueues, activities: config.activities },
  };
}

async function writeTrainSplit(store: BlobStore, runId: string): Promise<string> {
  const key = `datasets/${runId}/train.jsonl`;
  await store.put(key, TRAIN_ROWS.map((row) => JSON.stringify(row)).join('\n') + '\n');
  return key;
}

async function modelConfigOf(folder: string) {
  return parseModelConfig(JSON.parse(await fs.readFile(path.join(folder, 'config.json'), 'utf8')));
}

/** The digest of the bundled model's weights (where every run starts). */
async function baseDigest(config: RememConfig): Promise<string> {
  const modelConfig = await modelConfigOf(config.model.path);
  const file = parseSafetensors(
    await fs.readFile(path.join(config.model.path, 'model.safetensors')),
    'model.safetensors',
  );
  return weightsDigest(new Map(qwen2TensorSpecs(modelConfig).map((t) => [t.name, file.float32(t.name)])));
}

/** The digest of the weights of the run's last checkpoint. */
async function finalDigest(config: RememConfig, store: BlobStore, runId: string): Promise<string> {
  const architecture = architectureOf(await modelConfigOf(config.model.path));
  const checkpoint = await readCheckpoint(store, runId, STEPS, {
    architecture,
    configHash: checkpointConfigHash(architecture, { basePolicy: `${runId}.base`, mode: 'grpo' }),
  });
  return weightsDigest(checkpoint.weights);
}

async function keysUnder(store: BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of store.list(prefix)) keys.push(key);
  return keys;
}

const rolloutRun = (runId: string, step: number): string => `${runId}.rollouts-${step}`;

/** The workflow ids of a step's rollout episodes (children `{rolloutRun}.{episodeId}`), from their stored inputs. */
async function rolloutWorkflowIds(store: BlobStore, runId: string, step: number): Promise<string[]> {
  const run = rolloutRun(runId, step);
  const keys = await keysUnder(store, runPrefix(run));
  const episodes = keys
    .map((key) => /\/episodes\/([^/]+)\/input\.json$/.exec(key)?.[1])
    .filter((id): id is string => id !== undefined);
  return episodes.map((id) => `${run}.${id}`);
}

/** How many memory-turn records (memory/{step}.json) or answers (answer.json) a step's rollouts have stored. */
async function rolloutRecords(
  store: BlobStore,
  runId: string,
  step: number,
  kind: 'memory' | 'answer',
): Promise<number> {
  const pattern = kind === 'memory' ? /\/memory\/[^/]+\.json$/ : /\/answer\.json$/;
  return (await keysUnder(store, runPrefix(rolloutRun(runId, step)))).filter((key) => pattern.test(key))
    .length;
}

interface ActivityRun {
  activity: string;
  /** The attempt that completed. */
  attempt: number;
  /** The worker that ran it (`{pid}@{host}`). */
  identity: string;
  /** Server times, in ms since the epoch. */
  startedAt: number;
  completedAt: number;
}

/** Every completed activity of a step's rollout episodes: its last attempt, the worker that ran it, and when. */
async function rolloutActivities(
  client: Client,
  store: BlobStore,
  runId: string,
  step: number,
): Promise<ActivityRun[]> {
  const runs: ActivityRun[] = [];
  for (const workflowId of await rolloutWorkflowIds(store, runId, step)) {
    const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const scheduled = new Map(
      events.map((event) => [
        Number(event.eventId),
        event.activityTaskScheduledEventAttributes?.activityType?.name ?? '',
      ]),
    );
    const byId = new Map(events.map((event) => [Number(event.eventId), event]));
    for (const event of events) {
      const completed = event.activityTaskCompletedEventAttributes;
      const startEvent = byId.get(Number(completed?.startedEventId));
      const started = startEvent?.activityTaskStartedEventAttributes;
      if (!started) continue;
      runs.push({
        activity: scheduled.get(Number(started.scheduledEventId)) ?? '',
        attempt: started.attempt ?? 0,
        identity: started.identity ?? '',
        startedAt: tsToMs(startEvent?.eventTime),
        completedAt: tsToMs(event.eventTime),
      });
    }
  }
  return runs;
}

const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

/**
 * Waits until step `step`'s rollouts are under way (the progress query says so, and one rollout's memory turn is
 * stored) and a memory step, the longest activity of a rollout, is running on a worker. Polls tightly: with one
 * rollout at a time, the running one is the training run's only pending child.
 */
async function untilMemoryStepRuns(
  client: Client,
  store: BlobStore,
  runId: string,
  step: number,
  timeoutMs: number,
): Promise<void> {
  const run = client.workflow.getHandle(runId);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const progress: TrainingProgress = await run.query(trainingProgressQuery);
    if (
      progress.status === 'rollouts' &&
      progress.step === step - 1 &&
      (await rolloutRecords(store, runId, step, 'memory')) > 0
    ) {
      for (const child of (await run.describe()).raw.pendingChildren ?? []) {
        // A child may finish between the listing and its own description.
        const description = await client.workflow
          .getHandle(child.workflowId ?? '')
          .describe()
          .catch((error: unknown) => {
            if (error instanceof WorkflowNotFoundError) return null;
            throw error;
          });
        if (description === null) continue;
        const pending = description.raw.pendingActivities;
        const running = (pending ?? []).some(
          (activity) => activity.state === STARTED && activity.activityType?.name === 'memoryStep',
        );
        if (running) return;
      }
    }
    if (Date.now() > deadline || progress.step >= step)
      throw new Error(
        `no memory step of step ${step}'s rollouts seen running (progress ${JSON.stringify(progress)})`,
      );
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * What makes the digest comparison worth something: the two runs scored the same rollouts (token ids,
 * sampling log-probs, advantages), and the update of step 2 had a gradient from them (on this untrained model
 * every advantage may be zero, but step 2's policy has left the reference, so the KL term pulls on the sampled
 * tokens; step 1 moves the weights by weight decay alone when every advantage is zero).
 */
async function expectSameRollouts(store: BlobStore, runId: string, referenceId: string): Promise<void> {
  for (let step = 1; step <= STEPS; step++) {
    const batch = await store.getJson<TrainingBatch>(trainingBatchKey(runId, step));
    const reference = await store.getJson<TrainingBatch>(trainingBatchKey(referenceId, step));
    expect(batch.sequences.length).toBeGreaterThan(0);
    expect(batch.sequences).toEqual(reference.sequences);
  }
  const last = await store.getJson<StepMetrics>(trainingMetricsKey(runId, STEPS));
  expect(last.update.gradNorm).toBeGreaterThan(0);
}

describe('a GRPO run interrupted mid-run', () => {
  requireStackEnvironment();
  jest.setTimeout(180_000);

  describe('by an inference worker killed mid-rollout', () => {
    const config = testConfig('training-kill');
    const tag = config.taskQueues.orchestration.split('-').pop()!;
    const id = (name: string): string => `${name}-${tag}`;
    let rig: WorkerRig;
    let trainer: RunningWorkers;
    const processes: WorkerProcess[] = [];

    beforeAll(async () => {
      // Orchestration and the trainer in this process; inference in worker processes the test can kill.
      rig = await WorkerRig.start(config, 'orchestration');
      trainer = await startWorkers({ role: 'trainer', config, store: rig.store });
    });
    afterAll(async () => {
      for (const worker of processes) await killHard(worker);
      await trainer?.shutdown();
      await rig?.close();
    });

    it('retries the rollouts on a new worker and reaches the weights of an uninterrupted run', async () => {
      const { client, store } = rig;
      const runId = id('kill-run');
      const referenceId = id('kill-reference');
      const datasetKey = await writeTrainSplit(store, runId);

      const first = startWorkerProcess('inference', config);
      processes.push(first);
      await first.ready;
      const handle = await client.workflow.start(trainingWorkflow, {
        workflowId: runId,
        taskQueue: config.taskQueues.orchestration,
        args: [runInput(config, runId, datasetKey)],
      });
      // Step 2's rollouts (sampled by policy version step-1) under way, a model step running on the worker.
      await untilMemoryStepRuns(client, store, runId, 2, 120_000);
      await killHard(first);
      expect(await store.exists(`${checkpointPrefix(runId, STEPS)}manifest.json`)).toBe(false);
      expect(await rolloutRecords(store, runId, 2, 'answer')).toBeLessThan(ROLLOUTS_PER_STEP);

      const second = startWorkerProcess('inference', config);
      processes.push(second);
      await second.ready;
      const result = await handle.result();
      expect(result.status).toBe('done');
      expect(result.step).toBe(STEPS);

      // The new worker took over step 2's rollouts, and the model step the kill cut short was attempted again.
      const activities = await rolloutActivities(client, store, runId, 2);
      expect(activities.some((run) => run.identity.startsWith(`${first.child.pid}@`))).toBe(true);
      expect(activities.some((run) => run.identity.startsWith(`${second.child.pid}@`))).toBe(true);
      expect(activities.some((run) => run.activity === 'memoryStep' && run.attempt > 1)).toBe(true);

      // Uninterrupted, same seeds, another run id (on the second worker process).
      await client.workflow.execute(trainingWorkflow, {
        workflowId: referenceId,
        taskQueue: config.taskQueues.orchestration,
        args: [runInput(config, referenceId, datasetKey)],
      });
      await expectSameRollouts(store, runId, referenceId);
      const digest = await finalDigest(config, store, runId);
      expect(digest).not.toBe(await baseDigest(config));
      expect(digest).toBe(await finalDigest(config, store, referenceId));
    });
  });

  describe('by a Temporal server restart', () => {
    let paths: StackPaths;
    let address: string;
    let rig: WorkerRig | undefined;

    beforeAll(async () => {
      // A dev server of this test's own (port and SQLite file): the shared one is never stopped.
      ({ paths, address } = await privateServerSlot('training-restart'));
      await startTemporal({ paths, address, namespace: testNamespace(), ui: false });
    });
    afterAll(async () => {
      await rig?.close();
      await stopTemporal(paths);
    });

    it('finishes the run on the weights of an uninterrupted run', async () => {
      rig = await WorkerRig.start(testConfig('training-restart', { address }), 'all');
      const { client, config, store } = rig;
      // Run ids of this test run only: policy versions are cached by name on this machine.
      const tag = config.taskQueues.orchestration.split('-').pop()!;
      const runId = `restart-run-${tag}`;
      const referenceId = `restart-reference-${tag}`;
      const datasetKey = await writeTrainSplit(store, runId);

      await client.workflow.start(trainingWorkflow, {
        workflowId: runId,
        taskQueue: config.taskQueues.orchestration,
        args: [runInput(config, runId, datasetKey)],
      });
      await untilMemoryStepRuns(client, store, runId, 2, 120_000);
      await stopTemporal(paths);
      // The run was in progress: its last step's checkpoint did not exist yet, nor every rollout of step 2.
      expect(await store.exists(`${checkpointPrefix(runId, STEPS)}manifest.json`)).toBe(false);
      expect(await rolloutRecords(store, runId, 2, 'answer')).toBeLessThan(ROLLOUTS_PER_STEP);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const restartedAt = Date.now();
      await startTemporal({ paths, address, namespace: testNamespace(), ui: false });

      // The client reconnects on its own; poll until the run is closed, then read its result.
      await eventually(
        'the run to complete',
        async () => (await client.workflow.getHandle(runId).describe()).status.name === 'COMPLETED',
        120_000,
      );
      const result = await client.workflow.getHandle(runId).result();
      expect(result.status).toBe('done');
      expect(result.step).toBe(STEPS);

      // Step 2's rollouts went on after the restart: some of their model steps completed on the restarted server.
      const activities = await rolloutActivities(client, store, runId, 2);
      expect(activities.some((run) => run.completedAt > restartedAt)).toBe(true);

      await client.workflow.execute(trainingWorkflow, {
        workflowId: referenceId,
        taskQueue: config.taskQueues.orchestration,
        args: [runInput(config, referenceId, datasetKey)],
      });
      await expectSameRollouts(store, runId, referenceId);
      const digest = await finalDigest(config, store, runId);
      expect(digest).not.toBe(await baseDigest(config));
      expect(digest).toBe(await finalDigest(config, store, referenceId));
    });
  });
});
