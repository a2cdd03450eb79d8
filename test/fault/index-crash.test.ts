/**
 * Fault: kill -9 the orchestration worker while it indexes shards (both at once, each in its reserved pages), and
 * start another. The retried shard resumes after the last page its heartbeat recorded (earlier pages are not
 * rewritten), and the index holds every valid row exactly once, in order, with the malformed rows reported by
 * shard and row.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import type { BatchIndex, PageEntry, ShardIndex } from '../../activities/batch';
import type { RowError } from '../../lib/data/dataset';
import {
  batchIndexKey,
  batchPageKey,
  batchRowErrorsKey,
  batchShardIndexKey,
  createBlobStore,
  runPrefix,
  type BlobStore,
} from '../../lib/storage';
import { batchQAWorkflow } from '../../workflows/batch';
import { killHard, startWorkerProcess, type WorkerProcess } from '../../workers/spawn';
import { connectTestClient, eventually, requireStackEnvironment, testConfig, testSettings } from '../support/stack';

const ROWS_PER_SHARD = 3000;
const BAD_EVERY = 700;
const PAGE_SIZE = 50;

/** Short rows; every BAD_EVERY-th row has no document. */
function shardText(shard: number): string {
  const lines: string[] = [];
  for (let row = 0; row < ROWS_PER_SHARD; row += 1) {
    const id = `s${shard}-r${row}`;
    lines.push(JSON.stringify(row % BAD_EVERY === BAD_EVERY - 1 ? { id, question: 'q?' } : { id, question: `What is ${id}?`, context: `${id} is a row.`, answers: [id] }));
  }
  return `${lines.join('\n')}\n`;
}

describe('an orchestration worker killed while indexing a shard', () => {
  requireStackEnvironment();
  const config = testConfig('index-crash');
  config.activities.indexShard = {
    startToCloseTimeout: '5m',
    heartbeatTimeout: '3s',
    retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '1s', maximumAttempts: 0 },
  };
  const workers: WorkerProcess[] = [];
  let store: BlobStore;
  let client: Client;

  beforeAll(async () => {
    store = createBlobStore(config.storage);
    client = await connectTestClient(config);
  });

  afterAll(async () => {
    for (const worker of workers) await killHard(worker);
    await client?.connection.close();
    await store?.close();
  });

  it('resumes after the last page written, losing and doubling no row', async () => {
    if (config.storage.kind !== 'fs') throw new Error('expected the filesystem store');
    const root = config.storage.root;
    const runId = `index-crash-${Date.now().toString(36)}`;
    await store.put('datasets/crash/shard-0.jsonl', shardText(0));
    await store.put('datasets/crash/shard-1.jsonl', shardText(1));
    const start = async (): Promise<WorkerProcess> => {
      const worker = startWorkerProcess('orchestration', config);
      workers.push(worker);
      await worker.ready;
      return worker;
    };
    const first = await start();
    const handle = await client.workflow.start(batchQAWorkflow, {
      workflowId: `batch.${runId}`,
      taskQueue: config.taskQueues.orchestration,
      args: [
        {
          runId,
          datasetKey: 'datasets/crash/shard-0.jsonl',
          source: {
            shards: [
              { key: 'datasets/crash/shard-0.jsonl', name: 'shard-0.jsonl' },
              { key: 'datasets/crash/shard-1.jsonl', name: 'shard-1.jsonl' },
            ],
          },
          dataset: 'crash',
          settings: testSettings,
          runtime: { taskQueues: config.taskQueues, activities: config.activities },
          width: 1,
          pageSize: PAGE_SIZE,
          stopOnBadRow: false,
        },
      ],
    });
    try {
      // Mid-shard: a few pages of the first shard are written, the shard is not finished.
      await eventually('a few pages of the first shard', async () => store.exists(batchPageKey(runId, 5)), 120_000);
      await killHard(first);
      expect(await store.exists(batchShardIndexKey(runId, 0))).toBe(false);
      const pageFile = (page: number): string => path.join(root, ...batchPageKey(runId, page).split('/'));
      const writtenBefore = new Map<number, number>();
      for (let page = 0; fs.existsSync(pageFile(page)); page += 1) writtenBefore.set(page, fs.statSync(pageFile(page)).mtimeMs);

      await start();
      await eventually('the index', async () => store.exists(batchIndexKey(runId)), 180_000);
      const index = await store.getJson<BatchIndex>(batchIndexKey(runId));
      const validPerShard = ROWS_PER_SHARD - Math.floor(ROWS_PER_SHARD / BAD_EVERY);
      expect(index).toMatchObject({ rows: 2 * ROWS_PER_SHARD, validRows: 2 * validPerShard, invalidRows: 2 * Math.floor(ROWS_PER_SHARD / BAD_EVERY) });

      // Every valid row exactly once, in order, across both shards' pages.
      const entries: PageEntry[] = [];
      for (let page = 0; page < index.pages; page += 1) entries.push(...(await store.getJson<PageEntry[]>(batchPageKey(runId, page))));
      const expected = Array.from({ length: 2 * ROWS_PER_SHARD }, (_, row) => row).filter((row) => (row % ROWS_PER_SHARD) % BAD_EVERY !== BAD_EVERY - 1);
      expect(entries.map((entry) => entry.rowIndex)).toEqual(expected);
      let inputs = 0;
      for await (const key of store.list(`${runPrefix(runId)}episodes/`)) if (key.endsWith('/input.json')) inputs += 1;
      expect(inputs).toBe(expected.length);

      // The first shard was retried, and the retry resumed from the dead attempt's last heartbeat (the SDK sends
      // the first at once, later ones throttled): a leading run of pages was not written again.
      const history = await handle.fetchHistory();
      // Both shards were counted, then indexed at once (the default parallelism), each into its own pages.
      const activities = (history.events ?? []).map((event) => event.activityTaskScheduledEventAttributes?.activityType?.name);
      expect(activities.filter((name) => name === 'countShard')).toHaveLength(2);
      const attempts = (history.events ?? []).map((event) => event.activityTaskStartedEventAttributes?.attempt ?? 0);
      expect(Math.max(...attempts)).toBeGreaterThan(1);
      let unchanged = 0;
      while (unchanged < writtenBefore.size && fs.statSync(pageFile(unchanged)).mtimeMs === writtenBefore.get(unchanged)) unchanged += 1;
      expect(unchanged).toBeGreaterThan(0);

      const shard0 = await store.getJson<ShardIndex>(batchShardIndexKey(runId, 0));
      expect(shard0.errors).toHaveLength(Math.floor(ROWS_PER_SHARD / BAD_EVERY));
      const errors = await store.getJson<{ errors: RowError[] }>(batchRowErrorsKey(runId));
      expect(errors.errors[0]).toEqual({ rowIndex: BAD_EVERY - 1, reason: expect.stringContaining('"context"'), file: 'shard-0.jsonl', fileRow: BAD_EVERY - 1 });
      expect(errors.errors.at(-1)).toMatchObject({ rowIndex: ROWS_PER_SHARD + 4 * BAD_EVERY - 1, file: 'shard-1.jsonl', fileRow: 4 * BAD_EVERY - 1 });
    } finally {
      // No inference worker serves this test: its episodes are not run.
      await handle.terminate('the test checks indexing only').catch(() => undefined);
    }
  }, 400_000);
});
