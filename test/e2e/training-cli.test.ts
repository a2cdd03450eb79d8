/**
 * The training commands run as a user runs them (`tsx cli/main.ts …`) against the test run's Temporal dev server:
 * a schedule created by `schedule create` fires and starts a training run, and bad input is one clear line with
 * nothing started (no upload, no workflow, no schedule).
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import {
  connectTestClient,
  eventually,
  requireStackEnvironment,
  tempDir,
  testConfig,
} from '../support/stack';
import { ownStderr, runRememr1, type CliRun } from '../support/cli';
import { otherTrainingRuns } from '../../cli/train';

requireStackEnvironment();

const suffix = randomUUID().slice(0, 8);
const blobRoot = tempDir('e2e-train-blobs');
const dataDir = tempDir('e2e-train-data');
const cliEnv: NodeJS.ProcessEnv = {
  ...process.env,
  REMEMR1_TASK_QUEUE_ORCHESTRATION: `e2e-train-orchestration-${suffix}`,
  REMEMR1_TASK_QUEUE_INFERENCE: `e2e-train-inference-${suffix}`,
  REMEMR1_TASK_QUEUE_TRAINER: `e2e-train-trainer-${suffix}`,
  REMEMR1_STORAGE: 'fs',
  REMEMR1_STORAGE_ROOT: blobRoot,
  CI: '1',
};


/** Runs `rememr1 …` to its end (bounded in time); standard error without the package manager's warnings. */
async function rememr1(args: string[], env: NodeJS.ProcessEnv = cliEnv, timeoutMs = 60_000): Promise<CliRun> {
  const run = await runRememr1(args, { env, timeoutMs });
  return { ...run, stderr: ownStderr(run) };
}

function writeData(name: string, rows: unknown[]): string {
  const file = path.join(dataDir, name);
  fs.writeFileSync(file, rows.map((row) => JSON.stringify(row)).join('\n') + '\n');
  return file;
}

const good = writeData('train.jsonl', [
  {
    question: 'Who founded the museum?',
    context: 'The museum was founded by Ada Lovelace in 1850.',
    answers: ['Ada Lovelace'],
  },
  { question: 'What does it keep?', context: 'It keeps clocks.', answers: ['clocks'] },
]);
const noAnswers = writeData('no-answers.jsonl', [
  {
    question: 'Who founded the museum?',
    context: 'The museum was founded by Ada Lovelace in 1850.',
    answers: ['Ada Lovelace'],
  },
  { question: 'What does it keep?', context: 'It keeps clocks.', answers: [] },
]);
const quick = [
  '--steps',
  '1',
  '--questions',
  '1',
  '--group',
  '2',
  '--chunk-tokens',
  '128',
  '--max-chunks',
  '1',
  '--memory-tokens',
  '8',
  '--answer-tokens',
  '4',
];

let client: Client;
const config = testConfig('e2e-train');
beforeAll(async () => {
  client = await connectTestClient(config);
});
afterAll(async () => {
  await client.connection.close();
});

/** The refused commands get a blob folder of their own, to show that they uploaded nothing. */
const refusedBlobRoot = tempDir('e2e-train-refused-blobs');
const refusedEnv: NodeJS.ProcessEnv = { ...cliEnv, REMEMR1_STORAGE_ROOT: refusedBlobRoot };

test('a schedule created by `schedule create` fires within seconds and starts a training run; `schedule delete` removes it', async () => {
  const scheduleId = `e2e-sched-${suffix}`;
  const startedRuns: string[] = [];
  try {
    const created = await rememr1([
      'schedule',
      'create',
      scheduleId,
      '--dataset',
      good,
      '--every',
      '2s',
      '--catchup-window',
      '30s',
      ...quick,
    ]);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toContain(`created schedule ${scheduleId} (every 2s, overlap skip, catch-up 30s)`);

    const handle = client.schedule.getHandle(scheduleId);
    const description = await handle.describe();
    expect(description.policies.overlap).toBe('SKIP');
    expect(description.policies.catchupWindow).toBe(30_000);
    expect(description.action.workflowType).toBe('trainingWorkflow');

    const fired = await eventually(
      'the schedule to fire',
      async () => {
        const { info } = await handle.describe();
        return info.recentActions.length > 0 ? info.recentActions[0] : undefined;
      },
      20_000,
    );
    const workflowId = fired.action.workflow.workflowId;
    startedRuns.push(workflowId);
    expect(workflowId.startsWith(`training.${scheduleId}-`)).toBe(true);
    const run = await client.workflow.getHandle(workflowId).describe();
    expect(run.type).toBe('trainingWorkflow');
    expect(run.taskQueue).toBe(cliEnv.REMEMR1_TASK_QUEUE_ORCHESTRATION);
    // No worker serves this test's queues, so the run waits: overlap SKIP keeps the next firings from starting more.
    expect(run.status.name).toBe('RUNNING');
    // What `train` with its own worker reports: other runs on its queues (visibility lags a little).
    const queue = cliEnv.REMEMR1_TASK_QUEUE_ORCHESTRATION as string;
    await eventually('the run in the list of other training runs', async () => (await otherTrainingRuns(client, queue, 'training.another')).includes(workflowId), 10_000);
    expect(await otherTrainingRuns(client, queue, workflowId)).not.toContain(workflowId);
    expect(await otherTrainingRuns(client, `${queue}-elsewhere`, 'training.another')).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    const { info } = await handle.describe();
    for (const action of info.recentActions) startedRuns.push(action.action.workflow.workflowId);
    expect(info.runningActions).toHaveLength(1);

    const listed = await rememr1(['schedule', 'list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(scheduleId);
    const deleted = await rememr1(['schedule', 'delete', scheduleId]);
    expect(deleted.code).toBe(0);
    await expect(handle.describe()).rejects.toThrow(ScheduleNotFoundError);
  } finally {
    await client.schedule
      .getHandle(scheduleId)
      .delete()
      .catch(() => undefined);
    for (const workflowId of new Set(startedRuns)) {
      await client.workflow
        .getHandle(workflowId)
        .terminate('test over')
        .catch(() => undefined);
    }
  }
});

describe('bad input: one clear line, exit 1, nothing started', () => {
  const cases: [string, string[], RegExp][] = [
    [
      'a dataset without answers',
      ['train', '--dataset', noAnswers, ...quick],
      /^rememr1: dataset no-answers\.jsonl: row 1 \(row-1\) has no gold answers; training needs them for the outcome reward$/,
    ],
    [
      'G < 2',
      ['train', '--dataset', good, ...quick, '--group', '1'],
      /^error: option '--group <G>' argument '1' is invalid\. expected an integer of at least 2/,
    ],
    [
      'steps < 1',
      ['train', '--dataset', good, ...quick, '--steps', '0'],
      /^error: option '--steps <N>' argument '0' is invalid\. expected an integer of at least 1/,
    ],
    [
      'a base policy version that does not exist',
      ['train', '--dataset', good, ...quick, '--base-policy', 'nowhere.step-3'],
      /^rememr1: policy version nowhere\.step-3 does not exist in the blob store/,
    ],
    [
      'more questions per step than the dataset has',
      ['train', '--dataset', good, ...quick, '--questions', '3'],
      /^rememr1: dataset train\.jsonl has 2 valid rows, fewer than --questions 3$/,
    ],
    [
      'traces that are not a training batch',
      ['sft', '--traces', good],
      /^rememr1: traces file train\.jsonl is not JSON/,
    ],
    [
      'a cron spec that does not parse',
      ['schedule', 'create', `e2e-bad-${suffix}`, '--dataset', good, '--cron', '0 25 * * *'],
      /^rememr1: schedule spec --cron "0 25 \* \* \*" does not parse: hour field "25"/,
    ],
    [
      'an interval that does not parse',
      ['schedule', 'create', `e2e-bad-${suffix}`, '--dataset', good, '--every', 'fortnightly'],
      /^rememr1: schedule spec --every "fortnightly" does not parse/,
    ],
    [
      'a report of a run without metrics',
      ['train-report', `never-${suffix}`],
      /^rememr1: training run never-\S+ has no recorded steps in the blob store/,
    ],
  ];

  test('each is refused before anything starts', async () => {
    // Two at a time: each is a Node process starting TypeScript on a 2-core machine.
    const results: CliRun[] = [];
    for (let i = 0; i < cases.length; i += 2)
      results.push(
        ...(await Promise.all(cases.slice(i, i + 2).map(([, args]) => rememr1(args, refusedEnv)))),
      );
    cases.forEach(([what, , message], i) => {
      const { code, stderr, stdout } = results[i];
      expect({ what, code, lines: stderr.split('\n').length }).toEqual({ what, code: 1, lines: 1 });
      expect(stderr).toMatch(message);
      expect(stdout).toBe('');
    });
    expect(fs.readdirSync(refusedBlobRoot)).toEqual([]);
    await expect(client.schedule.getHandle(`e2e-bad-${suffix}`).describe()).rejects.toThrow(
      ScheduleNotFoundError,
    );
  });
});
