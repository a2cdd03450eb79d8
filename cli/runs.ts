/**
 * `status RUN` and `runs`: where batch runs stand, for people (a few lines, a table) and for machines (`--json`).
 * Counts come from the batch's `progress` query while it runs, and from the blob store once it has ended (a
 * closed workflow has no worker to answer a query), so a finished run reports the same way.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import Table from 'cli-table3';
import type { Command } from 'commander';
import type { BatchSummary } from '../lib/episode/summary';
import {
  batchIndexKey,
  batchSummaryKey,
  createBlobStore,
  runFailuresPrefix,
  runResultsPrefix,
  type BlobStore,
} from '../lib/storage';
import { searchAttributes } from '../lib/temporal/search-attributes';
import { loadConfig, type RememConfig } from '../temporal.config';
import type { BatchIndex } from '../activities/batch';
import { batchProgressQuery, type BatchProgress } from '../workflows/batch';
import { batchWorkflowId, connectClient, positiveInt, workflowUiLink } from './main';
import { formatDuration } from './render';

export interface BatchStatus {
  runId: string;
  /** The workflow's status: RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT. */
  status: string;
  /** The batch's own phase while it runs (indexing, running, summarising). */
  phase: BatchProgress['status'] | null;
  done: number;
  running: number;
  failed: number;
  /** Valid rows (episodes to answer); null until the dataset is indexed. */
  total: number | null;
  malformedRows: number;
  /** Where the counts come from: the running batch's progress query, or the blob store (ended, or no worker answered). */
  countsFrom: 'query' | 'store';
  startedAt: string;
  closedAt: string | null;
  elapsedSeconds: number;
  /** Episodes per minute since the batch started (null before the first one finishes). */
  perMinute: number | null;
  /** Seconds until every episode is done at that rate (null when not running or not known). */
  etaSeconds: number | null;
  ui: string;
}

/**
 * The answer of `work`'s calls to the server, if they answer within `ms` (a query with no worker to answer it would
 * wait long); undefined otherwise. The deadline is on the calls themselves, so nothing is left running.
 */
async function within<T>(client: Client, ms: number, work: () => Promise<T>): Promise<T | undefined> {
  return client.withDeadline(Date.now() + ms, work).catch(() => undefined);
}

async function countKeys(store: BlobStore, prefix: string): Promise<number> {
  let count = 0;
  for await (const key of store.list(prefix)) if (key.endsWith('.json')) count += 1;
  return count;
}

/** Start of the batch: the first run of its chain of continue-as-new runs (the latest run's start as a fallback). */
async function chainStart(client: Client, workflowId: string, latest: Date): Promise<Date> {
  const executions: WorkflowExecutionInfo[] = [];
  const found = await within(client, 5000, async () => {
    for await (const execution of client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
      executions.push(execution);
    return true;
  });
  if (!found) return latest;
  executions.sort((a, b) => b.startTime.getTime() - a.startTime.getTime());
  let start = latest;
  for (const [index, execution] of executions.entries()) {
    if (index > 0 && execution.status.name !== 'CONTINUED_AS_NEW') break;
    if (execution.startTime < start) start = execution.startTime;
  }
  return start;
}

export async function batchStatus(
  client: Client,
  store: BlobStore,
  config: RememConfig,
  runId: string,
): Promise<BatchStatus> {
  const workflowId = batchWorkflowId(runId);
  const handle = client.workflow.getHandle(workflowId);
  const description = await handle.describe();
  const status = description.status.name;
  const closedAt = description.closeTime ?? null;
  const startedAt = await chainStart(client, workflowId, description.startTime);
  let counts:
    | Pick<BatchStatus, 'phase' | 'done' | 'running' | 'failed' | 'total' | 'malformedRows' | 'countsFrom'>
    | undefined;
  if (status === 'RUNNING') {
    const progress = await within(client, 5000, () => handle.query(batchProgressQuery));
    if (progress !== undefined) {
      counts = {
        phase: progress.status,
        done: progress.done,
        running: progress.running,
        failed: progress.failed,
        total: progress.status === 'indexing' ? null : progress.validRows,
        malformedRows: progress.invalidRows,
        countsFrom: 'query',
      };
    }
  }
  if (counts === undefined) {
    // Ended (or no worker answered the query): what the blob store holds.
    // A completed batch's result is its summary, also when its blobs live in another store.
    const summary = (await store.exists(batchSummaryKey(runId)))
      ? await store.getJson<BatchSummary>(batchSummaryKey(runId))
      : status === 'COMPLETED'
        ? await within(client, 5000, () => handle.result() as Promise<BatchSummary>)
        : undefined;
    const index = (await store.exists(batchIndexKey(runId)))
      ? await store.getJson<BatchIndex>(batchIndexKey(runId))
      : undefined;
    counts = {
      phase: null,
      done: summary?.overall.episodes ?? (await countKeys(store, runResultsPrefix(runId))),
      running: 0,
      failed: summary?.failedEpisodes ?? (await countKeys(store, runFailuresPrefix(runId))),
      total:
        index?.validRows ??
        (summary === undefined ? null : summary.overall.episodes + summary.failedEpisodes),
      malformedRows: index?.invalidRows ?? summary?.invalidRows ?? 0,
      countsFrom: 'store',
    };
  }
  const end = closedAt ?? new Date();
  const elapsedSeconds = Math.max(0, (end.getTime() - startedAt.getTime()) / 1000);
  const perMinute = counts.done > 0 && elapsedSeconds > 0 ? (counts.done * 60) / elapsedSeconds : null;
  const left = counts.total === null ? null : Math.max(0, counts.total - counts.done - counts.failed);
  const etaSeconds =
    status === 'RUNNING' && perMinute !== null && left !== null ? Math.round((left * 60) / perMinute) : null;
  return {
    runId,
    status,
    ...counts,
    startedAt: startedAt.toISOString(),
    closedAt: closedAt?.toISOString() ?? null,
    elapsedSeconds: Math.round(elapsedSeconds),
    perMinute: perMinute === null ? null : Number(perMinute.toFixed(2)),
    etaSeconds,
    ui: workflowUiLink(config, workflowId),
  };
}

export function statusLines(report: BatchStatus): string[] {
  const state = report.status.toLowerCase().replace(/_/g, ' ');
  const rate =
    report.perMinute === null
      ? `no episode done yet after ${formatDuration(report.elapsedSeconds)}`
      : `${report.perMinute.toFixed(1)} episodes/min over ${formatDuration(report.elapsedSeconds)}`;
  const eta =
    report.etaSeconds !== null
      ? `, ETA ${formatDuration(report.etaSeconds)}`
      : report.status === 'RUNNING'
        ? ', ETA unknown'
        : '';
  return [
    `batch ${report.runId}: ${state}${report.phase !== null && report.status === 'RUNNING' ? ` (${report.phase})` : ''}`,
    `  done ${report.done}, running ${report.running}, failed ${report.failed}, total ${report.total ?? '?'}` +
      (report.malformedRows > 0 ? ` (${report.malformedRows} malformed rows skipped)` : ''),
    `  rate ${rate}${eta}`,
    ...(report.status === 'RUNNING' && report.countsFrom === 'store'
      ? [
          '  no worker answered its progress query: counts are the results stored so far (is a worker running?)',
        ]
      : []),
    `  UI: ${report.ui}`,
  ];
}

export function registerRunCommands(program: Command): void {
  program
    .command('status <run>')
    .description('where a batch run stands: done / running / failed / total, rate and ETA')
    .option('--json', 'one JSON object, for machines')
    .action(async (runId: string, options: { json?: boolean }) => {
      const config = loadConfig();
      const client = await connectClient(config);
      const store = createBlobStore(config.storage);
      try {
        const report = await batchStatus(client, store, config, runId).catch((error: Error) => {
          if (error.name === 'WorkflowNotFoundError')
            throw new Error(`no batch run ${runId} in namespace ${config.temporal.namespace}`);
          throw error;
        });
        console.log(options.json ? JSON.stringify(report) : statusLines(report).join('\n'));
      } finally {
        await client.connection.close();
        await store.close();
      }
    });

  program
    .command('runs')
    .description('batch runs, newest first, with their status and counts')
    .option('--limit <n>', 'at most this many runs', positiveInt, 20)
    .option('--json', 'one JSON object per line, for machines')
    .action(async (options: { limit: number; json?: boolean }) => {
      const config = loadConfig();
      const client = await connectClient(config);
      const store = createBlobStore(config.storage);
      try {
        const latest = new Map<string, WorkflowExecutionInfo>();
        for await (const execution of client.workflow.list({
          query: `${searchAttributes.kind.name} = 'batch' AND WorkflowId STARTS_WITH 'batch.'`,
        })) {
          const seen = latest.get(execution.workflowId);
          if (seen === undefined || seen.startTime < execution.startTime)
            latest.set(execution.workflowId, execution);
          if (latest.size >= options.limit * 4) break;
        }
        const newest = [...latest.values()]
          .sort((a, b) => b.startTime.getTime() - a.startTime.getTime())
          .slice(0, options.limit);
        const reports: BatchStatus[] = [];
        for (const execution of newest)
          reports.push(await batchStatus(client, store, config, execution.workflowId.slice('batch.'.length)));
        if (options.json) {
          for (const report of reports) console.log(JSON.stringify(report));
          return;
        }
        if (reports.length === 0) {
          console.log(`no batch runs in namespace ${config.temporal.namespace}`);
          return;
        }
        const style = process.stdout.isTTY ? undefined : { head: [], border: [] };
        const table = new Table({
          head: ['run', 'status', 'done', 'running', 'failed', 'total', 'started'],
          style,
        });
        for (const report of reports) {
          table.push([
            report.runId,
            report.status.toLowerCase(),
            report.done,
            report.running,
            report.failed,
            report.total ?? '?',
            report.startedAt.replace('T', ' ').slice(0, 19),
          ]);
        }
        console.log(table.toString());
      } finally {
        await client.connection.close();
        await store.close();
      }
    });
}
