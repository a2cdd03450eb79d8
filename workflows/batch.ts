/**
 * Batch QA over a dataset in the blob store: index it once into pages of episode inputs, run each page's
 * episodes as child workflows in a sliding window of bounded width, continue as new after each page (so the
 * history stays bounded however large the corpus), then aggregate the summary.
 *
 * Child workflow ids are derived from the run id and the row number, and finished episodes (those with a
 * result row) are skipped, so starting the same batch again recomputes nothing that is done.
 */
import {
  ApplicationFailure,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  executeChild,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { BatchActivities, BatchIndex, DatasetSourceRef, PageEntry } from '../activities/batch';
import { reservedPagesFor } from '../lib/data/shard-layout';
import type { BatchSummary } from '../lib/episode/summary';
import type { EpisodeSettings } from '../lib/episode/types';
import { searchAttributes } from '../lib/temporal/search-attributes';
import { episodeWorkflow } from './episode';
import { activityOptions, type WorkflowRuntime } from './options';

export interface BatchQAInput {
  runId: string;
  /** Blob key of the dataset file (.jsonl, .json or .parquet); with `source`, its first shard. */
  datasetKey: string;
  /** A dataset of shards (in the blob store, or in an S3 bucket read in place) or with mapped columns. */
  source?: DatasetSourceRef;
  /** Human name of the dataset, for search and the summary. */
  dataset: string;
  settings: EpisodeSettings;
  runtime: WorkflowRuntime;
  /** Episodes running at once. */
  width: number;
  /** Episodes per page (one continue-as-new per page). */
  pageSize: number;
  /** Fail the batch on the first malformed row instead of reporting it and going on. */
  stopOnBadRow: boolean;
  /** Carried across continue-as-new. */
  state?: { index: BatchIndex; page: number; done: number; failed: number; skipped: number };
  /** Carried across continue-as-new while the dataset's shards are being indexed one after another. */
  indexing?: IndexingState;
  /**
   * Shards indexed at once (default `DEFAULT_INDEX_PARALLELISM`). 1 indexes them one after another, with pages
   * numbered on without gaps and no counting pass; more first counts every shard's rows so that each one owns its
   * row and page ranges before any is indexed. A run keeps the layout it was first indexed with.
   */
  indexParallelism?: number;
  /** Carried across continue-as-new while the dataset's shards are counted, then indexed in parallel. */
  parallelIndexing?: ParallelIndexingState;
}

/** How far indexing has come: the next shard, and the rows and pages of the shards before it. */
export interface IndexingState {
  shard: number;
  rows: number;
  pages: number;
}

/** Counting then indexing in parallel: the shards' row spans so far, then the shards before `shard` indexed. */
export interface ParallelIndexingState {
  /** Row span of each shard counted so far, in shard order (all of them before any shard is indexed). */
  spans: number[];
  /** Every shard before this one is indexed. */
  shard: number;
  rows: number;
  validRows: number;
  invalidRows: number;
}

/**
 * Shard activities (counts and indexings) per workflow run before it continues as new (three events each keep
 * the history bounded).
 */
export const SHARDS_PER_RUN = 500;

/** The patch that indexes one shard per activity (batches started before it index in one activity). */
export const INDEX_PER_SHARD_PATCH = 'index-per-shard';

/** The patch that counts shards, then indexes several at once (batches started before it index one at a time). */
export const INDEX_IN_PARALLEL_PATCH = 'index-shards-in-parallel';

/** Shards indexed at once when the batch input does not say: orchestration activities are I/O-bound and light. */
export const DEFAULT_INDEX_PARALLELISM = 4;

export interface BatchProgress {
  status: 'indexing' | 'running' | 'summarising' | 'done';
  rows: number;
  validRows: number;
  invalidRows: number;
  page: number;
  pages: number;
  /** Episodes with a result row (including ones finished by an earlier run of the same batch). */
  done: number;
  failed: number;
  running: number;
}

export const batchProgressQuery = defineQuery<BatchProgress>('progress');

/**
 * The batch's "current details" in the Temporal UI, made from the progress query's own value so that the two can
 * never disagree (the UI reads them through the `__temporal_workflow_metadata` query). `shards` is given while
 * indexing, when the total number of shards is known but not part of the progress.
 */
export function describeBatchProgress(progress: BatchProgress, shards?: { indexed: number; total: number }): string {
  const counts = `${progress.done} of ${progress.validRows} episodes done, ${progress.running} running, ${progress.failed} failed, ${progress.invalidRows} malformed rows skipped`;
  switch (progress.status) {
    case 'indexing':
      return `**Indexing**: ${shards ? `shard ${shards.indexed} of ${shards.total}, ` : ''}${progress.rows} rows`;
    case 'running':
      return `**Page ${progress.page + 1} of ${progress.pages}**: ${counts}`;
    case 'summarising':
      return `**Summarising**: ${counts}`;
    case 'done':
      return `**Done**: ${counts}`;
  }
}

export async function batchQAWorkflow(input: BatchQAInput): Promise<BatchSummary> {
  const io = proxyActivities<BatchActivities>(activityOptions(input.runtime.activities.io, input.runtime.taskQueues.orchestration));
  const progress: IndexingProgress = {
    status: 'indexing',
    rows: input.state?.index.rows ?? 0,
    validRows: input.state?.index.validRows ?? 0,
    invalidRows: input.state?.index.invalidRows ?? 0,
    page: input.state?.page ?? 0,
    pages: input.state?.index.pages ?? 0,
    done: input.state?.done ?? 0,
    failed: input.state?.failed ?? 0,
    running: 0,
  };
  setHandler(batchProgressQuery, () => progress);
  upsertSearchAttributes([
    { key: searchAttributes.kind, value: 'batch' },
    { key: searchAttributes.runId, value: input.runId },
    { key: searchAttributes.dataset, value: input.dataset },
    { key: searchAttributes.status, value: progress.status },
  ]);

  let index = input.state?.index;
  if (index === undefined) {
    if (patched(INDEX_PER_SHARD_PATCH)) {
      // A run continued from indexing one shard at a time (also one started before the parallel patch) goes on so.
      const indexed = input.indexing === undefined && patched(INDEX_IN_PARALLEL_PATCH) ? await indexInLayout(input, progress) : await indexShards(input, progress);
      if (indexed === 'continued') {
        await condition(allHandlersFinished);
        return continueAsNew<typeof batchQAWorkflow>({ ...input, indexing: progress.indexing, parallelIndexing: progress.parallelIndexing });
      }
      index = indexed;
    } else {
      // As batches ran before shards: one activity for the whole dataset.
      index =
        input.source === undefined
          ? await io.indexDataset(input.runId, input.datasetKey, input.pageSize)
          : await io.indexDataset(input.runId, input.datasetKey, input.pageSize, input.source);
    }
  }
  Object.assign(progress, { rows: index.rows, validRows: index.validRows, invalidRows: index.invalidRows, pages: index.pages });
  if (input.stopOnBadRow && index.invalidRows > 0) {
    throw ApplicationFailure.nonRetryable(
      `${index.invalidRows} malformed row(s) in ${input.dataset}; see the run's row-errors.json (or run without --stop-on-bad-row to skip them)`,
      'MalformedDataset',
    );
  }

  if (progress.page < index.pages) {
    progress.status = 'running';
    upsertSearchAttributes([{ key: searchAttributes.status, value: progress.status }]);
    // At once, also in a run continued from an earlier page (whose details start empty).
    setCurrentDetails(describeBatchProgress(progress));
    await runPage(input, io, progress.page, progress);
    if (progress.page + 1 < index.pages) {
      await condition(allHandlersFinished);
      // Indexing is over: what it carried (a span per shard) need not travel with every page.
      return continueAsNew<typeof batchQAWorkflow>({
        ...input,
        indexing: undefined,
        parallelIndexing: undefined,
        state: { index, page: progress.page + 1, done: progress.done, failed: progress.failed, skipped: 0 },
      });
    }
  }

  progress.status = 'summarising';
  upsertSearchAttributes([{ key: searchAttributes.status, value: progress.status }]);
  setCurrentDetails(describeBatchProgress(progress));
  const summary = await io.summarizeBatch(input.runId, input.dataset, index.invalidRows);
  progress.status = 'done';
  upsertSearchAttributes([{ key: searchAttributes.status, value: progress.status }]);
  setCurrentDetails(`**Done**: ${summary.overall.episodes} episodes, EM ${summary.overall.exactMatch.toFixed(3)}, F1 ${summary.overall.f1.toFixed(3)}`);
  return summary;
}

type IndexingProgress = BatchProgress & { indexing?: IndexingState; parallelIndexing?: ParallelIndexingState };

/** Activities that read whole shards: heartbeating, with a long start-to-close timeout. */
function shardActivities(runtime: WorkflowRuntime): ReturnType<typeof proxyActivities<BatchActivities>> {
  const options = runtime.activities.indexShard ?? { ...runtime.activities.io, startToCloseTimeout: '6h', heartbeatTimeout: '1m' };
  return proxyActivities<BatchActivities>(activityOptions(options, runtime.taskQueues.orchestration));
}

/**
 * Indexes in the run's layout (`chooseIndexLayout`): a finished index is returned as is; a run whose shards were
 * indexed one at a time (or that asks for parallelism 1, or has one shard) goes on so; otherwise every shard's row
 * span is counted (`width` at once), which fixes each shard's rows and pages, and then the shards are indexed
 * `width` at once. Each run does at most `SHARDS_PER_RUN` shard activities before it continues as new.
 */
async function indexInLayout(input: BatchQAInput, progress: IndexingProgress): Promise<BatchIndex | 'continued'> {
  const width = input.indexParallelism ?? DEFAULT_INDEX_PARALLELISM;
  if (!Number.isSafeInteger(width) || width < 1) {
    throw ApplicationFailure.nonRetryable(`indexParallelism must be a whole number of at least 1, got ${width}`, 'InvalidBatchInput');
  }
  const shards = input.source?.shards ?? [{ key: input.datasetKey, name: input.dataset }];
  const fields = input.source?.fields;
  const nameRows = input.source !== undefined;
  const io = shardActivities(input.runtime);
  let state = input.parallelIndexing;
  if (state === undefined) {
    const light = proxyActivities<BatchActivities>(activityOptions(input.runtime.activities.io, input.runtime.taskQueues.orchestration));
    // One shard gains nothing from a counting pass.
    const chosen = await light.chooseIndexLayout(input.runId, width > 1 && shards.length > 1 ? 'reserved' : 'sequential');
    if ('index' in chosen) return chosen.index;
    if (chosen.layout === 'sequential') return indexShards(input, progress);
    state = { spans: [], shard: 0, rows: 0, validRows: 0, invalidRows: 0 };
  }
  const current: ParallelIndexingState = { ...state, spans: [...state.spans] };
  progress.parallelIndexing = current;
  Object.assign(progress, { rows: current.rows, validRows: current.validRows, invalidRows: current.invalidRows });
  let budget = SHARDS_PER_RUN;

  if (current.spans.length < shards.length) {
    setCurrentDetails(describeBatchProgress(progress, { indexed: 0, total: shards.length }));
    const from = current.spans.length;
    const count = Math.min(shards.length - from, budget);
    current.spans.push(...(await inLanes(width, count, (offset) => io.countShard(shards[from + offset], fields, nameRows))));
    budget -= count;
    if (budget === 0) return 'continued';
  }

  // Shard n's rows and pages start where the reservations of the shards before it end.
  const rowOffsets: number[] = [];
  const pageOffsets: number[] = [];
  let rowEnd = 0;
  let pageEnd = 0;
  for (const span of current.spans) {
    rowOffsets.push(rowEnd);
    pageOffsets.push(pageEnd);
    rowEnd += span;
    pageEnd += reservedPagesFor(span, input.pageSize);
  }
  const from = current.shard;
  const count = Math.min(shards.length - from, budget);
  let indexed = from;
  await inLanes(width, count, async (offset) => {
    const n = from + offset;
    const shard = await io.indexShard(input.runId, shards[n], fields, {
      shard: n,
      rowOffset: rowOffsets[n],
      firstPage: pageOffsets[n],
      pageSize: input.pageSize,
      nameRows,
      reservedRows: current.spans[n],
      reservedPages: reservedPagesFor(current.spans[n], input.pageSize),
    });
    indexed += 1;
    current.rows += shard.rows;
    current.validRows += shard.validRows;
    current.invalidRows += shard.invalidRows;
    Object.assign(progress, { rows: current.rows, validRows: current.validRows, invalidRows: current.invalidRows });
    setCurrentDetails(describeBatchProgress(progress, { indexed, total: shards.length }));
  });
  current.shard = from + count;
  if (current.shard < shards.length) return 'continued';
  return io.finishIndex(input.runId, shards.length, input.pageSize);
}

/**
 * Runs `work(0)` … `work(count - 1)` at most `width` at a time, each lane taking the next index when its last one
 * is done; the results in index order. Deterministic: lanes take indexes in the order their activities complete.
 */
async function inLanes<T>(width: number, count: number, work: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const index = next;
      next += 1;
      results[index] = await work(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, lane));
  return results;
}

/**
 * Indexes the dataset one shard per activity (a one-file dataset is one shard), in order, since each shard's rows
 * and pages number on from the previous one's; continues as new every `SHARDS_PER_RUN` shards.
 */
async function indexShards(input: BatchQAInput, progress: IndexingProgress): Promise<BatchIndex | 'continued'> {
  const io = shardActivities(input.runtime);
  const shards = input.source?.shards ?? [{ key: input.datasetKey, name: input.dataset }];
  const state: IndexingState = { ...(input.indexing ?? { shard: 0, rows: 0, pages: 0 }) };
  progress.indexing = state;
  for (let indexed = 0; state.shard < shards.length; indexed += 1) {
    if (indexed === SHARDS_PER_RUN) return 'continued';
    const shard = await io.indexShard(input.runId, shards[state.shard], input.source?.fields, {
      shard: state.shard,
      rowOffset: state.rows,
      firstPage: state.pages,
      pageSize: input.pageSize,
      nameRows: input.source !== undefined,
    });
    state.shard += 1;
    state.rows += shard.rows;
    state.pages += shard.pages;
    Object.assign(progress, { rows: state.rows, validRows: progress.validRows + shard.validRows, invalidRows: progress.invalidRows + shard.invalidRows });
    setCurrentDetails(describeBatchProgress(progress, { indexed: state.shard, total: shards.length }));
  }
  return io.finishIndex(input.runId, shards.length, input.pageSize);
}

/** Runs one page's unfinished episodes, at most `width` at a time. */
async function runPage(input: BatchQAInput, io: ReturnType<typeof proxyActivities<BatchActivities>>, page: number, progress: BatchProgress): Promise<void> {
  const { pending, finished } = await io.pendingEpisodes(input.runId, page);
  progress.done += finished;
  const running = new Set<Promise<void>>();
  // The details shown in the UI say what the progress query says, also while episodes run (they live in
  // memory and are read by a query: setting them adds nothing to the history, so needs no patch).
  const describe = (): void => setCurrentDetails(describeBatchProgress(progress));
  describe();
  const runOne = async (entry: PageEntry): Promise<void> => {
    progress.running += 1;
    describe();
    try {
      await executeChild(episodeWorkflow, {
        workflowId: `${input.runId}.${entry.episodeId}`,
        taskQueue: input.runtime.taskQueues.orchestration,
        parentClosePolicy: ParentClosePolicy.TERMINATE,
        staticSummary: `Episode for row ${entry.rowIndex} of ${input.dataset}`,
        args: [{ runId: input.runId, episodeId: entry.episodeId, settings: input.settings, runtime: input.runtime, dataset: input.dataset }],
      });
      progress.done += 1;
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) {
        // An earlier run of this batch left this episode running; it writes its own result row.
        return;
      }
      progress.failed += 1;
      await io.recordEpisodeFailure(input.runId, entry, error instanceof Error ? describeFailure(error) : String(error));
    } finally {
      progress.running -= 1;
      describe();
    }
  };
  for (const entry of pending) {
    while (running.size >= input.width) await Promise.race(running);
    const task: Promise<void> = runOne(entry).finally(() => running.delete(task));
    running.add(task);
  }
  await Promise.all(running);
}

/** The innermost cause's message: a child failure wraps an activity failure wraps the application error. */
function describeFailure(error: Error): string {
  let current: Error | undefined = error;
  const messages: string[] = [];
  while (current) {
    if (current.message) messages.push(current.message);
    current = (current as Error & { cause?: Error }).cause;
  }
  return messages[messages.length - 1] ?? error.name;
}
