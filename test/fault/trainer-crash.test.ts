/**
 * Fault: kill -9 the trainer worker in the middle of a policy update and start another. The retried update
 * must end on weights bit-identical to an uninterrupted run with the same seeds (same checkpoint digest), and
 * the history must show that a retry really happened.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { parseModelConfig } from '../../lib/model/config';
import { Xoshiro128 } from '../../lib/model/random';
import { checkpointPrefix, type BlobStore } from '../../lib/storage';
import type { TrainingBatch } from '../../lib/training/batch';
import {
  readCheckpoint,
  weightsDigest,
  checkpointConfigHash,
  architectureOf,
} from '../../lib/training/checkpoint';
import { defaultUpdateSettings } from '../../lib/training/update';
import {
  trainingProgressQuery,
  trainingWorkflow,
  type TrainingProgress,
  type TrainingRunInput,
} from '../../workflows/training';
import { killHard } from '../../workers/spawn';
import { CrashHarness } from '../support/crash';
import { eventually, requireStackEnvironment, testConfig } from '../support/stack';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

describe('a trainer worker killed mid-update', () => {
  requireStackEnvironment();
  const config = testConfig('trainer-crash');
  // Workflow ids of this run only: the tests' namespace outlives a run that failed half-way.
  const crashRun = `trainer-crash-run-${randomUUID().slice(0, 8)}`;
  const referenceRun = `trainer-crash-reference-${randomUUID().slice(0, 8)}`;
  let harness: CrashHarness;
  let store: BlobStore;
  let client: Client;

  beforeAll(async () => {
    harness = await CrashHarness.start(config);
    ({ store, client } = harness);
  });

  afterAll(async () => {
    await harness?.close();
  });

  /** Supervised traces long enough that an update takes a few seconds. */
  async function traces(): Promise<string> {
    const random = Xoshiro128.forLabel('trainer-crash', 'traces');
    const token = (): number => 10 + Math.floor(random.nextFloat() * 4000);
    const batch: TrainingBatch = {
      format: 'rememr1-training-batch/1',
      policyVersion: 'traces',
      // Enough that step 2's update is still running a second after it starts, even with the one-pass
      // supervised update on a fast machine.
      sequences: Array.from({ length: 192 }, (_, i) => ({
        promptIds: Array.from({ length: 160 + (i % 5) * 16 }, token),
        responseIds: Array.from({ length: 48 }, token),
        samplingLogProbs: [],
        advantage: 0,
        group: i,
        rollout: 0,
        turn: 0,
      })),
    };
    const key = 'datasets/trainer-crash/traces.json';
    await store.putJson(key, batch);
    return key;
  }

  function runInput(runId: string, tracesKey: string): TrainingRunInput {
    return {
      runId,
      mode: 'sft',
      basePolicy: `${runId}.base`,
      baseModelFolder: config.model.path,
      steps: 2,
      seed: 11,
      update: {
        ...defaultUpdateSettings,
        miniBatches: 8,
        microBatchTokens: 2048,
        optimizer: { ...defaultUpdateSettings.optimizer, learningRate: 1e-3 },
      },
      sft: { tracesKey },
      runtime: { taskQueues: config.taskQueues, activities: config.activities },
    };
  }

  async function finalDigest(runId: string): Promise<string> {
    const modelConfig = parseModelConfig(
      JSON.parse(await fs.readFile(path.join(config.model.path, 'config.json'), 'utf8')),
    );
    const architecture = architectureOf(modelConfig);
    const checkpoint = await readCheckpoint(store, runId, 2, {
      architecture,
      configHash: checkpointConfigHash(architecture, { basePolicy: `${runId}.base`, mode: 'sft' }),
    });
    return weightsDigest(checkpoint.weights);
  }

  it('retries the update and reaches the weights of an uninterrupted run', async () => {
    const tracesKey = await traces();

    // Interrupted: kill the trainer while step 2's update runs (checkpoint 1 written, checkpoint 2 not yet).
    const first = await harness.startProcess('trainer');
    const handle = await client.workflow.start(trainingWorkflow, {
      workflowId: crashRun,
      taskQueue: config.taskQueues.orchestration,
      args: [runInput(crashRun, tracesKey)],
    });
    await eventually(
      'step 2 updating',
      async () => {
        const progress: TrainingProgress = await handle.query(trainingProgressQuery);
        return progress.status === 'updating' && progress.step === 1;
      },
      180_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await killHard(first);
    expect(await store.exists(`${checkpointPrefix(crashRun, 2)}manifest.json`)).toBe(false);
    const second = await harness.startProcess('trainer');
    const result = await client.workflow.getHandle(crashRun).result();
    expect(result.status).toBe('done');
    // The run continued as new after step 1; the execution holding step 2 shows the retried attempt.
    const history = await client.workflow.getHandle(crashRun).fetchHistory();
    const attempts = (history.events ?? [])
      .map((event) => event.activityTaskStartedEventAttributes?.attempt ?? 0)
      .filter((attempt) => attempt > 0);
    expect(Math.max(...attempts)).toBeGreaterThan(1);
    await killHard(second);

    // Uninterrupted, same seeds, another run id.
    await harness.startProcess('trainer');
    await client.workflow.execute(trainingWorkflow, {
      workflowId: referenceRun,
      taskQueue: config.taskQueues.orchestration,
      args: [runInput(referenceRun, tracesKey)],
    });
    expect(await finalDigest(crashRun)).toBe(await finalDigest(referenceRun));
  });
});
