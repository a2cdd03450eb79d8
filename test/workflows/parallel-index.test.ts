/**
 * Indexing shards in parallel on the real dev server: a dataset of JSONL and Parquet shards of unequal sizes (one
 * empty, one all malformed, malformed rows elsewhere) gives exactly the episode ids, inputs, page contents and row
 * errors of indexing it one shard at a time, also with its Parquet shards split into pieces of row groups; a run indexed in part by the one-at-a-time code before layouts were
 * recorded is finished in its own layout; more shards than one workflow run takes continue as new. Only an
 * orchestration worker runs: each batch is terminated once its index is written (its episodes are not run).
 */
import { randomUUID } from 'node:crypto';
import type { BatchIndex, DatasetShardRef, PageEntry } from '../../activities/batch';
import { blobAsyncBuffer, parquetRowGroups } from '../../lib/data/dataset';
import { planParquetPieces } from '../../lib/data/parquet-pieces';
import type { EpisodeInputRecord } from '../../lib/episode/types';
import {
  batchIndexKey,
  batchIndexLayoutKey,
  batchPageKey,
  batchRowErrorsKey,
  batchShardIndexKey,
  runPrefix,
  type BlobStore,
} from '../../lib/storage';
import { SHARDS_PER_RUN, batchQAWorkflow, type BatchQAInput } from '../../workflows/batch';
import { WorkerRig } from '../support/rig';
import { jsonlShard, parquetShard, putShards, rowsOf } from '../support/shards';
import { eventually, requireStackEnvironment, testConfig, testSettings } from '../support/stack';

const PAGE_SIZE = 3;

interface IndexedRun {
  index: BatchIndex;
  /** Every episode input, by episode id. */
  inputs: Map<string, EpisodeInputRecord>;
  /** The entries of every written page, in page order, and which pages are written. */
  entries: PageEntry[];
  written: number[];
  rowErrors: unknown;
}

async function readRun(store: BlobStore, runId: string): Promise<IndexedRun> {
  const index = await store.getJson<BatchIndex>(batchIndexKey(runId));
  const inputs = new Map<string, EpisodeInputRecord>();
  for await (const key of store.list(`${runPrefix(runId)}episodes/`)) {
    if (key.endsWith('/input.json'))
      inputs.set(key.split('/').at(-2) as string, await store.getJson<EpisodeInputRecord>(key));
  }
  const entries: PageEntry[] = [];
  const written: number[] = [];
  for (let page = 0; page < index.pages; page += 1) {
    if (!(await store.exists(batchPageKey(runId, page)))) continue;
    written.push(page);
    entries.push(...(await store.getJson<PageEntry[]>(batchPageKey(runId, page))));
  }
  return { index, inputs, entries, written, rowErrors: await store.getJson(batchRowErrorsKey(runId)) };
}

describe('indexing shards in parallel', () => {
  requireStackEnvironment();
  const config = testConfig('parallel-index');
  const unique = `pidx-${Date.now().toString(36)}-${randomUUID().slice(0, 6)}`;
  let rig: WorkerRig;
  let shards: DatasetShardRef[];

  beforeAll(async () => {
    rig = await WorkerRig.start(config, 'orchestration');
    shards = await putShards(rig.store, `datasets/${unique}`, [
      { name: 'a.jsonl', body: jsonlShard(rowsOf('a', 7, [2])) + '{"question": not json}\n\n\n' },
      { name: 'b.parquet', body: parquetShard(rowsOf('b', 5, [0, 4])) },
      { name: 'c.jsonl', body: jsonlShard(rowsOf('c', 1)) },
      { name: 'd.jsonl', body: '' },
      { name: 'e.parquet', body: parquetShard(rowsOf('e', 10, [1, 2, 3, 8])) },
      { name: 'f.jsonl', body: jsonlShard(rowsOf('f', 4, [0, 1, 2, 3])) },
      { name: 'g.jsonl', body: jsonlShard(rowsOf('g', 8, [7])) },
    ]);
  });

  afterAll(async () => {
    await rig?.close();
  });

  function input(runId: string, indexParallelism: number, source: DatasetShardRef[] = shards): BatchQAInput {
    return {
      runId,
      datasetKey: source[0].key,
      source: { shards: source },
      dataset: unique,
      settings: testSettings,
      runtime: { taskQueues: config.taskQueues, activities: config.activities },
      width: 1,
      pageSize: PAGE_SIZE,
      stopOnBadRow: false,
      indexParallelism,
    };
  }

  /** Starts a batch, waits for its index, and terminates it (no inference worker: its episodes never run). */
  async function indexOnly(
    batch: BatchQAInput,
    workflowId = `batch.${batch.runId}.${randomUUID().slice(0, 6)}`,
  ): Promise<IndexedRun & { firstRunId: string }> {
    const handle = await rig.client.workflow.start(batchQAWorkflow, {
      workflowId,
      taskQueue: config.taskQueues.orchestration,
      args: [batch],
    });
    try {
      await eventually(
        `the index of ${batch.runId}`,
        async () => rig.store.exists(batchIndexKey(batch.runId)),
        180_000,
      );
    } finally {
      await handle.terminate('the test checks indexing only').catch(() => undefined);
    }
    return { ...(await readRun(rig.store, batch.runId)), firstRunId: handle.firstExecutionRunId };
  }

  let sequential: IndexedRun;

  beforeAll(async () => {
    sequential = await indexOnly(input(`${unique}-seq`, 1));
  }, 200_000);

  it('gives the episode ids, inputs, pages and row errors of indexing one shard at a time', async () => {
    const parallel = await indexOnly(input(`${unique}-par`, 3));
    expect(await rig.store.getJson(batchIndexLayoutKey(`${unique}-par`))).toEqual({ layout: 'reserved' });
    expect(await rig.store.getJson(batchIndexLayoutKey(`${unique}-seq`))).toEqual({ layout: 'sequential' });

    // 7 + 1 (not JSON) + 5 + 1 + 0 + 10 + 4 + 8 rows, 1 + 1 + 2 + 0 + 0 + 4 + 4 + 1 of them malformed.
    expect(sequential.index).toEqual({
      rows: 36,
      validRows: 23,
      invalidRows: 13,
      pages: 9,
      pageSize: PAGE_SIZE,
    });
    expect(parallel.index).toEqual({ ...sequential.index, pages: 15 });
    expect([...parallel.inputs.entries()].sort()).toEqual([...sequential.inputs.entries()].sort());
    expect(parallel.inputs.size).toBe(23);
    expect(parallel.entries).toEqual(sequential.entries);
    expect(parallel.rowErrors).toEqual(sequential.rowErrors);
    // Reserved pages from: a 0 (3 pages), b 3 (2), c 5 (1), d 6 (0), e 6 (4), f 10 (2), g 12 (3); a shard's
    // malformed rows leave its last reserved pages unwritten (f writes none).
    expect(parallel.written).toEqual([0, 1, 3, 5, 6, 7, 12, 13, 14]);
    expect(sequential.written).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(parallel.entries.map((entry) => entry.rowIndex)).toEqual(
      [...parallel.inputs.values()].map((record) => record.rowIndex).sort((a, b) => a - b),
    );
  }, 200_000);

  it('indexes Parquet shards in pieces of row groups, one activity each, to the same inputs, pages and row errors', async () => {
    // b (5 rows) and e (10 rows) have row groups of 2 rows: pieces of one row group each, in both layouts.
    const pieced: DatasetShardRef[] = [];
    for (const shard of shards) {
      const groups = shard.key.endsWith('.parquet') ? await parquetRowGroups(await blobAsyncBuffer(rig.store, shard.key)) : [];
      const pieces = planParquetPieces(groups, 1);
      if (pieces === undefined) pieced.push(shard);
      else pieced.push(...pieces.map((piece) => ({ ...shard, piece })));
    }
    expect(pieced).toHaveLength(shards.length - 2 + 3 + 5);
    for (const width of [1, 3]) {
      const run = await indexOnly(input(`${unique}-pieces-${width}`, width, pieced));
      expect({ ...run.index, pages: 0 }).toEqual({ ...sequential.index, pages: 0 });
      expect([...run.inputs.entries()].sort()).toEqual([...sequential.inputs.entries()].sort());
      expect(run.entries).toEqual(sequential.entries);
      expect(run.rowErrors).toEqual(sequential.rowErrors);
    }
  }, 200_000);

  it('finishes a run indexed in part one shard at a time, before layouts were recorded, in that layout', async () => {
    // What the code before the parallel patch leaves when it stops in the fifth shard (e): the first four shards'
    // indexes and pages, e's first page, no layout and no run index.
    const runId = `${unique}-old`;
    await indexOnly(input(runId, 1));
    for (const key of [batchIndexKey(runId), batchRowErrorsKey(runId), batchIndexLayoutKey(runId)])
      await rig.store.delete(key);
    for (let shard = 4; shard < shards.length; shard += 1)
      await rig.store.delete(batchShardIndexKey(runId, shard));
    for (let page = 5; page < sequential.index.pages; page += 1)
      await rig.store.delete(batchPageKey(runId, page));

    const resumed = await indexOnly(input(runId, 3));
    expect(await rig.store.getJson(batchIndexLayoutKey(runId))).toEqual({ layout: 'sequential' });
    expect(resumed.index).toEqual(sequential.index);
    expect(resumed.entries).toEqual(sequential.entries);
    expect([...resumed.inputs.entries()].sort()).toEqual([...sequential.inputs.entries()].sort());
    expect(resumed.rowErrors).toEqual(sequential.rowErrors);
  }, 200_000);

  it('goes on one shard at a time in a batch that the code before the patch continued as new mid-indexing', async () => {
    // Its next run starts on today's code with the one-at-a-time state: shards a-d indexed (14 rows, 4 pages).
    const runId = `${unique}-continued`;
    await indexOnly(input(runId, 1));
    for (const key of [batchIndexKey(runId), batchRowErrorsKey(runId), batchIndexLayoutKey(runId)])
      await rig.store.delete(key);
    for (let shard = 4; shard < shards.length; shard += 1)
      await rig.store.delete(batchShardIndexKey(runId, shard));
    for (let page = 4; page < sequential.index.pages; page += 1)
      await rig.store.delete(batchPageKey(runId, page));

    const continued = await indexOnly({ ...input(runId, 3), indexing: { shard: 4, rows: 14, pages: 4 } });
    expect(await rig.store.exists(batchIndexLayoutKey(runId))).toBe(false);
    expect(continued.index).toEqual(sequential.index);
    expect(continued.entries).toEqual(sequential.entries);
    expect([...continued.inputs.entries()].sort()).toEqual([...sequential.inputs.entries()].sort());
    expect(continued.rowErrors).toEqual(sequential.rowErrors);
  }, 200_000);

  it('re-runs a run indexed in parallel in its layout, also when asked for one shard at a time', async () => {
    const runId = `${unique}-par`;
    // A second batch of the same run finds the index; without it, the shards' own indexes and the recorded layout.
    for (const key of [batchIndexKey(runId), batchRowErrorsKey(runId)]) await rig.store.delete(key);
    await rig.store.delete(batchShardIndexKey(runId, 4));
    const again = await indexOnly(input(runId, 1));
    expect(again.index).toEqual({ ...sequential.index, pages: 15 });
    expect(again.entries).toEqual(sequential.entries);
    expect(again.rowErrors).toEqual(sequential.rowErrors);
  }, 200_000);

  it(`continues as new with more than ${SHARDS_PER_RUN} shards`, async () => {
    const count = SHARDS_PER_RUN + 7;
    const many = await putShards(
      rig.store,
      `datasets/${unique}-many`,
      Array.from({ length: count }, (_, n) => ({
        name: `part-${n}.jsonl`,
        body: jsonlShard(rowsOf(`m${n}`, 1 + (n % 3), n % 5 === 0 ? [0] : [])),
      })),
    );
    const runId = `${unique}-many`;
    const workflowId = `batch.${runId}`;
    const indexed = await indexOnly(input(runId, 4, many), workflowId);
    const rows = Array.from({ length: count }, (_, n) => 1 + (n % 3)).reduce((sum, n) => sum + n, 0);
    const invalid = Array.from({ length: count }, (_, n) => n).filter((n) => n % 5 === 0).length;
    expect(indexed.index).toMatchObject({ rows, validRows: rows - invalid, invalidRows: invalid });
    expect(indexed.entries.map((entry) => entry.rowIndex)).toEqual(
      [...indexed.inputs.values()].map((record) => record.rowIndex).sort((a, b) => a - b),
    );
    expect(new Set(indexed.entries.map((entry) => entry.episodeId)).size).toBe(rows - invalid);
    // Counting took the first run, indexing the next two (three runs of at most SHARDS_PER_RUN shard activities).
    const first = await rig.client.workflow.getHandle(workflowId, indexed.firstRunId).fetchHistory();
    const firstRun = (first.events ?? [])
      .map((event) => event.activityTaskScheduledEventAttributes?.activityType?.name)
      .filter(Boolean);
    expect(firstRun.filter((name) => name === 'countShard')).toHaveLength(SHARDS_PER_RUN);
    expect(firstRun).not.toContain('indexShard');
    expect((first.events ?? []).at(-1)?.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
  }, 400_000);
});
