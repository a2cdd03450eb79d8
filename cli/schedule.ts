/**
 * `rememr1 schedule create|list|pause|unpause|delete|trigger`: periodic retraining (and its dev evaluation)
 * through Temporal Schedules. A schedule's action starts `trainingWorkflow` with the input built at creation
 * (the data is uploaded once, then); its spec is an interval (`--every 6h`) or a cron line (`--cron '0 3 * * *'`).
 *
 * Overlap policy SKIP: a firing while the previous run is still going is skipped, never queued or run beside it.
 * Catch-up: when the Temporal server was down (or the schedule could not act) at a firing time, the firings
 * missed within `--catchup-window` are taken when it is back, under the same SKIP policy, so at most one
 * missed run starts; older ones are dropped.
 */
import { msToNumber } from '@temporalio/common/lib/time';
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptions,
  type ScheduleSpec,
} from '@temporalio/client';
import Table from 'cli-table3';
import { Command } from 'commander';
import { createBlobStore } from '../lib/storage';
import { loadConfig, type RememConfig } from '../temporal.config';
import { trainingWorkflow, type TrainingRunInput } from '../workflows/training';
import { connectClient, runIdArgument } from './main';
import {
  addTrainingRunOptions,
  buildTrainingInput,
  checkTrainingRunOptions,
  trainingWorkflowId,
  type TrainingRunOptions,
} from './train';

export class ScheduleSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleSpecError';
  }
}

const CRON_MACROS = new Set([
  '@yearly',
  '@annually',
  '@monthly',
  '@weekly',
  '@daily',
  '@midnight',
  '@hourly',
]);
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
/** minute, hour, day of month, month, day of week: their ranges and names. */
const CRON_FIELDS: readonly { name: string; min: number; max: number; names?: readonly string[] }[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  { name: 'day of week', min: 0, max: 7, names: DAYS },
];

function cronValue(text: string, field: (typeof CRON_FIELDS)[number]): number | undefined {
  const named = field.names?.indexOf(text.toUpperCase()) ?? -1;
  if (named >= 0) return field.name === 'month' ? named + 1 : named;
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return value >= field.min && value <= field.max ? value : undefined;
}

/** Why a cron line does not parse (5 fields: minute hour day-of-month month day-of-week, or a macro), or null. */
export function cronProblem(expression: string): string | null {
  const line = expression.trim();
  if (CRON_MACROS.has(line.toLowerCase())) return null;
  const fields = line.split(/\s+/).filter((f) => f.length > 0);
  if (fields.length !== 5)
    return `expected 5 fields (minute hour day-of-month month day-of-week) or one of ${[...CRON_MACROS].join(' ')}, got ${fields.length}`;
  for (let i = 0; i < 5; i++) {
    const field = CRON_FIELDS[i];
    for (const part of fields[i].split(',')) {
      const match = /^([^/]+)(?:\/(\d+))?$/.exec(part);
      const bad = `${field.name} field "${fields[i]}" is not valid (${field.min}-${field.max}${field.names ? ` or names` : ''}, *, ranges a-b, steps /n, lists a,b)`;
      if (match === null) return bad;
      const [, range, step] = match;
      if (step !== undefined && Number(step) < 1) return bad;
      if (range === '*') continue;
      const [from, to, extra] = range.split('-');
      if (extra !== undefined) return bad;
      const a = cronValue(from, field);
      const b = to === undefined ? a : cronValue(to, field);
      if (a === undefined || b === undefined || b < a) return bad;
    }
  }
  return null;
}

/** The schedule's spec from `--every` / `--cron`, or a ScheduleSpecError naming what does not parse. */
export function scheduleSpecOf(options: { every?: string; cron?: string }): ScheduleSpec {
  if ((options.every === undefined) === (options.cron === undefined)) {
    throw new ScheduleSpecError(
      'give exactly one schedule spec: --every DURATION (e.g. 6h, 30m) or --cron "MIN HOUR DOM MON DOW"',
    );
  }
  if (options.every !== undefined) {
    let ms: number;
    try {
      ms = msToNumber(options.every as Parameters<typeof msToNumber>[0]);
    } catch {
      ms = Number.NaN;
    }
    if (!Number.isFinite(ms) || ms < 1000) {
      throw new ScheduleSpecError(
        `schedule spec --every "${options.every}" does not parse: expected a duration of at least 1s such as 90s, 30m, 6h or 2d`,
      );
    }
    return { intervals: [{ every: ms }] };
  }
  const problem = cronProblem(options.cron!);
  if (problem !== null)
    throw new ScheduleSpecError(`schedule spec --cron "${options.cron}" does not parse: ${problem}`);
  return { cronExpressions: [options.cron!.trim()] };
}

function specText(options: { every?: string; cron?: string }): string {
  return options.every !== undefined ? `every ${options.every}` : `cron ${options.cron}`;
}

export function catchupWindowOf(value: string): number {
  let ms: number;
  try {
    ms = msToNumber(value as Parameters<typeof msToNumber>[0]);
  } catch {
    ms = Number.NaN;
  }
  if (!Number.isFinite(ms) || ms < 10_000)
    throw new ScheduleSpecError(
      `--catchup-window "${value}" does not parse: expected a duration of at least 10s such as 10m or 1h`,
    );
  return ms;
}

/** The Temporal schedule that starts `trainingWorkflow` with `input` (overlap policy SKIP). */
export function trainingScheduleOptions(
  scheduleId: string,
  spec: ScheduleSpec,
  input: TrainingRunInput,
  config: RememConfig,
  extra: { catchupWindowMs: number; paused?: boolean; note?: string; specText: string },
): ScheduleOptions {
  return {
    scheduleId,
    spec,
    memo: { rememr1Spec: extra.specText, rememr1Run: input.runId },
    action: {
      type: 'startWorkflow',
      workflowType: trainingWorkflow,
      // The server appends the firing time to this id, so each firing is a workflow of its own.
      workflowId: trainingWorkflowId(input.runId),
      taskQueue: config.taskQueues.orchestration,
      // Each firing trains a run of its own ({run}.{firing time}), starting again from the base policy.
      args: [{ ...input, perFiring: true }],
      staticSummary: `Scheduled ${input.mode === 'grpo' ? 'GRPO' : 'supervised'} training (${scheduleId})`,
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: extra.catchupWindowMs },
    state: { paused: extra.paused ?? false, note: extra.note },
  };
}

interface CreateOptions extends TrainingRunOptions {
  every?: string;
  cron?: string;
  catchupWindow: string;
  paused?: boolean;
  note?: string;
}

/** Checks everything, uploads the data and creates the schedule; returns its id. Nothing is created on a bad input. */
export async function createTrainingSchedule(
  scheduleId: string,
  options: CreateOptions,
  config: RememConfig,
): Promise<string> {
  const spec = scheduleSpecOf(options);
  const catchupWindowMs = catchupWindowOf(options.catchupWindow);
  const mode: TrainingRunInput['mode'] = options.traces === undefined ? 'grpo' : 'sft';
  const store = createBlobStore(config.storage);
  let client: Client | undefined;
  try {
    await checkTrainingRunOptions(options, mode, store);
    client = await connectClient(config);
    const input = await buildTrainingInput(options, mode, config, store, scheduleId);
    const handle = await client.schedule.create(
      trainingScheduleOptions(scheduleId, spec, input, config, {
        catchupWindowMs,
        paused: options.paused,
        note: options.note,
        specText: specText(options),
      }),
    );
    return handle.scheduleId;
  } catch (error) {
    if (error instanceof ScheduleAlreadyRunning)
      throw new Error(`schedule ${scheduleId} already exists (delete it first, or choose another id)`);
    // The server has the last word on a spec; its refusal is one line too.
    if (
      error instanceof Error &&
      /invalid ?argument/i.test(`${error.name} ${error.message}`) &&
      /spec|cron|interval/i.test(error.message)
    ) {
      throw new ScheduleSpecError(`schedule spec does not parse: ${error.message}`);
    }
    throw error;
  } finally {
    await client?.connection.close();
    await store.close();
  }
}

async function withSchedule(
  id: string,
  work: (client: Client, config: RememConfig) => Promise<void>,
): Promise<void> {
  const config = loadConfig();
  const client = await connectClient(config);
  try {
    await work(client, config);
  } catch (error) {
    if (error instanceof ScheduleNotFoundError)
      throw new Error(`no schedule ${id} in namespace ${config.temporal.namespace}`);
    throw error;
  } finally {
    await client.connection.close();
  }
}

const CREATE_HELP = `
Spec: --every DURATION (90s, 30m, 6h, 2d) or --cron "MIN HOUR DOM MON DOW" (e.g. "0 3 * * *", or @daily).
Overlap: SKIP. A firing while the previous run is still going is skipped, not queued.
Catch-up: if the Temporal server is down at a firing time, the firings missed within --catchup-window
(default 1h) are taken when it is back, under SKIP, so at most one late run starts; older ones are dropped.
Each firing starts trainingWorkflow as workflow training.RUN-<firing time>; the data is uploaded once, now.`;

export function registerScheduleCommands(program: Command): void {
  const schedule = program
    .command('schedule')
    .description('periodic retraining and evaluation through Temporal Schedules')
    .showHelpAfterError(false);

  addTrainingRunOptions(
    schedule
      .command('create')
      .description(
        'create a schedule that starts a training run (GRPO, or supervised with --traces) at every firing',
      )
      .argument('<id>', 'schedule id (also the run id unless --run-id)', runIdArgument)
      .option('--every <duration>', 'interval spec, e.g. 6h')
      .option('--cron <expression>', 'cron spec, e.g. "0 3 * * *"')
      .option('--catchup-window <duration>', 'how late a missed firing may still be taken', '1h')
      .option('--paused', 'create it paused')
      .option('--note <text>', 'a note shown with the schedule')
      .option('--dataset <file>', 'training split for GRPO (rows with question, context and answers)')
      .option('--traces <file>', 'training batch JSON for a supervised run instead of --dataset'),
    true,
  )
    .addHelpText('after', CREATE_HELP)
    .action(async (id: string, options: CreateOptions) => {
      const config = loadConfig();
      await createTrainingSchedule(id, options, config);
      console.log(
        `created schedule ${id} (${specText(options)}, overlap skip, catch-up ${options.catchupWindow}${options.paused ? ', paused' : ''})`,
      );
      console.log(
        `UI: ${config.temporal.uiUrl}/namespaces/${encodeURIComponent(config.temporal.namespace)}/schedules/${encodeURIComponent(id)}`,
      );
    });

  schedule
    .command('list')
    .description('the schedules of the namespace, with their next firing and last run')
    .action(async () => {
      const config = loadConfig();
      const client = await connectClient(config);
      try {
        const style = process.stdout.isTTY ? undefined : { head: [], border: [] };
        const table = new Table({ head: ['id', 'workflow', 'spec', 'paused', 'next', 'last run'], style });
        for await (const summary of client.schedule.list()) {
          const fromMemo = summary.memo?.rememr1Spec;
          const spec =
            typeof fromMemo === 'string'
              ? fromMemo
              : [
                  ...(summary.spec?.intervals ?? []).map(
                    (i) => `every ${Math.round(Number(i.every) / 1000)}s`,
                  ),
                  ...(summary.spec?.calendars ?? []).map(() => 'calendar'),
                ].join(', ');
          const last = summary.info.recentActions.at(-1);
          table.push([
            summary.scheduleId,
            summary.action?.workflowType ?? '-',
            spec || '-',
            summary.state.paused ? 'yes' : 'no',
            summary.info.nextActionTimes[0]?.toISOString() ?? '-',
            last ? `${last.action.workflow.workflowId} (${last.takenAt.toISOString()})` : '-',
          ]);
        }
        console.log(table.toString());
      } finally {
        await client.connection.close();
      }
    });

  schedule
    .command('pause')
    .argument('<id>', 'schedule id')
    .option('--note <text>', 'why')
    .description('pause a schedule (no firings until unpaused)')
    .action((id: string, options: { note?: string }) =>
      withSchedule(id, async (client) => {
        await client.schedule.getHandle(id).pause(options.note);
        console.log(`paused schedule ${id}`);
      }),
    );

  schedule
    .command('unpause')
    .argument('<id>', 'schedule id')
    .option('--note <text>', 'why')
    .description('unpause a schedule')
    .action((id: string, options: { note?: string }) =>
      withSchedule(id, async (client) => {
        await client.schedule.getHandle(id).unpause(options.note);
        console.log(`unpaused schedule ${id}`);
      }),
    );

  schedule
    .command('delete')
    .argument('<id>', 'schedule id')
    .description('delete a schedule (runs it started go on)')
    .action((id: string) =>
      withSchedule(id, async (client) => {
        await client.schedule.getHandle(id).delete();
        console.log(`deleted schedule ${id}`);
      }),
    );

  schedule
    .command('trigger')
    .argument('<id>', 'schedule id')
    .description('fire a schedule now (skipped if its previous run is still going: overlap SKIP)')
    .action((id: string) =>
      withSchedule(id, async (client) => {
        await client.schedule.getHandle(id).trigger(ScheduleOverlapPolicy.SKIP);
        console.log(`triggered schedule ${id}`);
      }),
    );
}
