/**
 * GRPO learns, through the real training workflow on the real dev server: on a toy task whose reward is
 * reachable (each question's one short chunk states the answer, and every answer is the same colour), a short
 * supervised warm start makes a correct boxed answer possible but rare; GRPO steps then raise the rollouts'
 * accuracy clearly. The same run with the update switched off (learning rate 0) stays where it started.
 */
import { buildFinalPrompt, buildMemoryStepPrompt } from '../../lib/agent';
import type { EpisodeSettings } from '../../lib/episode/types';
import { loadModelFolder } from '../../lib/model/folder';
import type { TrainingBatch } from '../../lib/training/batch';
import { traceSequence } from '../../lib/training/traces';
import { defaultUpdateSettings } from '../../lib/training/update';
import { trainingWorkflow, type StepMetrics, type TrainingRunInput } from '../../workflows/training';
import { WorkerRig } from '../support/rig';
import { requireStackEnvironment, testConfig } from '../support/stack';
import { toyEpisode, toyRows } from '../support/toy';

// Tunable from the environment to explore the toy; the defaults are what the test asserts with.
const SFT_STEPS = Number(process.env.TOY_SFT_STEPS ?? 9);
const SFT_LR = Number(process.env.TOY_SFT_LR ?? 3e-3);
const GRPO_STEPS = Number(process.env.TOY_GRPO_STEPS ?? 8);
const GRPO_MINI = Number(process.env.TOY_GRPO_MINI ?? 4);
const GRPO_Q = Number(process.env.TOY_GRPO_Q ?? 6);
const GRPO_LR = Number(process.env.TOY_GRPO_LR ?? 1e-3);

const ITEMS = [
  'lamp',
  'boat',
  'chair',
  'stone',
  'coat',
  'drum',
  'kite',
  'bell',
  'cup',
  'door',
  'ring',
  'shoe',
];
const rows = toyRows(ITEMS);
const episode: EpisodeSettings = toyEpisode(16);

describe('a GRPO training run on a toy task', () => {
  requireStackEnvironment();
  jest.setTimeout(400_000);
  const config = testConfig('training');
  // Run and workflow ids of this test run only (the server outlives it).
  const tag = config.taskQueues.orchestration.split('-').pop()!;
  const id = (name: string): string => `${name}-${tag}`;
  let rig: WorkerRig;

  beforeAll(async () => {
    rig = await WorkerRig.start(config, 'all');
  });
  afterAll(async () => {
    await rig?.close();
  });

  async function warmStart(): Promise<string> {
    const folder = await loadModelFolder(config.model.path);
    const eos = folder.eosTokenIds[0];
    const memory = (row: (typeof rows)[number]) =>
      `The ${row.question.split(' ')[3].replace('?', '')} is blue.`;
    const sequences = rows.flatMap((row, group) => [
      traceSequence(
        folder.tokenizer,
        {
          prompt: buildMemoryStepPrompt({
            question: row.question,
            memory: null,
            recalled: null,
            chunk: row.context,
            mode: 'rememr1',
          }),
          response: `<update>${memory(row)}</update>`,
        },
        eos,
        { group, rollout: 0, turn: 0 },
      ),
      traceSequence(
        folder.tokenizer,
        {
          prompt: buildFinalPrompt({
            question: row.question,
            memory: memory(row),
            recalled: null,
            mode: 'rememr1',
          }),
          response: '\\boxed{blue}',
        },
        eos,
        { group, rollout: 0, turn: 1 },
      ),
    ]);
    const traces: TrainingBatch = { format: 'rememr1-training-batch/1', policyVersion: 'teacher', sequences };
    await rig.store.putJson('datasets/toy/traces.json', traces);
    const input: TrainingRunInput = {
      runId: id('toy-sft'),
      mode: 'sft',
      basePolicy: 'toy-base',
      baseModelFolder: config.model.path,
      steps: SFT_STEPS,
      seed: 3,
      update: {
        ...defaultUpdateSettings,
        miniBatches: 2,
        optimizer: { ...defaultUpdateSettings.optimizer, learningRate: SFT_LR, warmupSteps: 1 },
      },
      sft: { tracesKey: 'datasets/toy/traces.json' },
      runtime: { taskQueues: config.taskQueues, activities: config.activities },
    };
    const result = await rig.client.workflow.execute(trainingWorkflow, {
      workflowId: id('toy-sft'),
      taskQueue: config.taskQueues.orchestration,
      args: [input],
    });
    if (process.env.TOY_DEBUG) {
      for (let step = 1; step <= SFT_STEPS; step++) {
        const m = await rig.store.getJson<StepMetrics>(
          `training/${id('toy-sft')}/metrics/${String(step).padStart(10, '0')}.json`,
        );
        console.log(`sft step ${step}: loss ${m.update.loss} entropy ${m.update.entropy}`);
      }
    }
    return result.policyVersion;
  }

  async function grpo(
    runId: string,
    basePolicy: string,
    learningRate: number,
    evaluate = false,
  ): Promise<StepMetrics[]> {
    const input: TrainingRunInput = {
      runId,
      mode: 'grpo',
      basePolicy,
      steps: GRPO_STEPS,
      seed: 5,
      update: {
        ...defaultUpdateSettings,
        miniBatches: GRPO_MINI,
        optimizer: { ...defaultUpdateSettings.optimizer, learningRate, warmupSteps: 1 },
      },
      grpo: {
        datasetKey: 'datasets/toy/train.jsonl',
        dataset: 'toy',
        questionsPerStep: GRPO_Q,
        groupSize: 4,
        alpha: 0.8,
        normalizeStd: false,
        episode,
        width: 8,
      },
      ...(evaluate
        ? {
            evaluation: {
              datasetKey: 'datasets/toy/dev.jsonl',
              dataset: 'toy-dev',
              every: GRPO_STEPS,
              settings: { ...episode, temperature: 0 },
              width: 4,
            },
          }
        : {}),
      runtime: { taskQueues: config.taskQueues, activities: config.activities },
    };
    await rig.client.workflow.execute(trainingWorkflow, {
      workflowId: runId,
      taskQueue: config.taskQueues.orchestration,
      args: [input],
    });
    const metrics: StepMetrics[] = [];
    for (let step = 1; step <= GRPO_STEPS; step++) {
      metrics.push(
        await rig.store.getJson<StepMetrics>(
          `training/${runId}/metrics/${String(step).padStart(10, '0')}.json`,
        ),
      );
    }
    return metrics;
  }

  it('raises the rollouts’ accuracy within a few steps, and does not without the update', async () => {
    await rig.store.put('datasets/toy/train.jsonl', rows.map((row) => JSON.stringify(row)).join('\n') + '\n');
    const start = await warmStart();
    await rig.store.put(
      'datasets/toy/dev.jsonl',
      rows
        .slice(0, 4)
        .map((row) => JSON.stringify(row))
        .join('\n') + '\n',
    );
    const learning = await grpo(id('toy-grpo'), start, GRPO_LR, true);
    const frozen = await grpo(id('toy-frozen'), start, 0);
    const accuracy = (metrics: StepMetrics[]) => metrics.map((m) => m.rollouts!.accuracy);
    const reward = (metrics: StepMetrics[]) => metrics.map((m) => m.rollouts!.reward.outcome);
    console.log(
      `learning accuracy ${accuracy(learning).join(' ')}; frozen accuracy ${accuracy(frozen).join(' ')}; learning reward ${reward(learning).join(' ')}`,
    );
    if (process.env.TOY_DEBUG)
      for (const m of [...learning, ...frozen])
        console.log(
          JSON.stringify({
            step: m.step,
            digest: m.weightsDigest,
            version: m.policyVersion,
            update: m.update,
            reward: m.rollouts?.reward,
            seconds: m.seconds,
          }),
        );
    // Mean of the last three steps against the first three (each step samples other questions).
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    const rise = (values: number[]) => mean(values.slice(-3)) - mean(values.slice(0, 3));
    expect(rise(accuracy(learning))).toBeGreaterThanOrEqual(0.2);
    expect(rise(accuracy(frozen))).toBeLessThan(0.2);
    // The last step evaluated its policy version on the dev split through a batch-QA child.
    expect(learning[learning.length - 1].evaluation?.episodes).toBe(4);
    expect(learning.slice(0, -1).every((m) => m.evaluation === null)).toBe(true);
  });
});
