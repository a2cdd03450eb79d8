/**
 * Corpus-scale datasets end to end on the real servers: a sharded Parquet dataset with LongBench-style column
 * names read in place from MinIO, run as a batch and exported as Parquet that hyparquet reads back; a folder of
 * JSONL shards staged with streaming uploads and identified by digests; and each kind of bad input refused in one
 * line before anything starts.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { fieldMapping, prepareDataset, stageDataset } from '../../cli/dataset-source';
import type { QaRow, RowError } from '../../lib/data/dataset';
import { generateSyntheticRows, toJsonLines } from '../../lib/data/synthetic';
import { exportRun } from '../../lib/export/export-run';
import type { EpisodeResult } from '../../lib/episode/types';
import { FsBlobStore, S3BlobStore, batchRowErrorsKey, runResultsPrefix, type BlobStore } from '../../lib/storage';
import { projectRoot, type RememConfig } from '../../temporal.config';
import { batchQAWorkflow } from '../../workflows/batch';
import { WorkerRig } from '../support/rig';
import { requireStackEnvironment, tempDir, testConfig, testSettings } from '../support/stack';

requireStackEnvironment();

const bucket = (): string => process.env.REMEMR1_S3_BUCKET as string;
const unique = `sources-${Date.now().toString(36)}-${randomUUID().slice(0, 6)}`;

function s3Storage(prefix: string): RememConfig['storage'] {
  return {
    kind: 's3',
    endpoint: process.env.REMEMR1_S3_ENDPOINT,
    region: process.env.REMEMR1_S3_REGION as string,
    bucket: bucket(),
    prefix,
    forcePathStyle: true,
  };
}

/** LongBench-style columns: the question is `input`, the id `_id`; answers a list. */
function longBenchShard(rows: Array<QaRow | 'bad'>): Uint8Array {
  return new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: '_id', data: rows.map((row) => (row === 'bad' ? 'bad-row' : row.id)), type: 'STRING' },
        { name: 'input', data: rows.map((row) => (row === 'bad' ? 'a question without a document' : row.question)), type: 'STRING' },
        { name: 'context', data: rows.map((row) => (row === 'bad' ? '' : row.context)), type: 'STRING' },
        { name: 'answers', data: rows.map((row) => (row === 'bad' ? [] : row.answers)) },
      ],
      rowGroupSize: 1,
    }),
  );
}

function rememr1(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  const child = spawn('npx', ['tsx', 'cli/main.ts', ...args], { cwd: projectRoot, env, detached: true });
  return new Promise((resolve, reject) => {
    let stderr = '';
    const killer = setTimeout(() => {
      process.kill(-(child.pid as number), 'SIGKILL');
      reject(new Error(`rememr1 ${args.join(' ')} did not end within 60s\n${stderr}`));
    }, 60_000);
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stderr });
    });
  });
}

describe('dataset sources', () => {
  const rows = generateSyntheticRows({ seed: 41, questions: 4, documentsPerQuestion: 6, wordsPerDocument: 20 });
  const corpus = `corpora/${unique}`;
  let raw: S3BlobStore;

  beforeAll(async () => {
    // The corpus sits in the bucket outside the project's store prefix, as a user's data would.
    raw = new S3BlobStore({ ...(s3Storage('') as { endpoint: string; region: string; bucket: string }) });
    await raw.put(`${corpus}/parquet/part-0.parquet`, longBenchShard([rows[0], 'bad']));
    await raw.put(`${corpus}/parquet/part-1.parquet`, longBenchShard([rows[1], rows[2]]));
    await raw.put(`${corpus}/parquet/part-2.parquet`, longBenchShard([rows[3]]));
    await raw.put(`${corpus}/parquet/_SUCCESS`, '');
    await raw.put(`${corpus}/mixed/a.parquet`, longBenchShard([rows[0]]));
    await raw.put(`${corpus}/mixed/b.jsonl`, toJsonLines([rows[1]]));
  });

  afterAll(async () => {
    for await (const key of raw.list(`${corpus}/`)) await raw.delete(key);
    await raw.close();
  });

  it('reads sharded Parquet in place from S3 with mapped columns, runs the batch, and exports it as Parquet', async () => {
    const config = testConfig('sources-s3', { storage: s3Storage(`${unique}/store`) });
    const rig = await WorkerRig.start(config);
    try {
      const spec = `s3://${bucket()}/${corpus}/parquet/`;
      const dataset = await prepareDataset(config, spec, fieldMapping({ questionField: 'input', idField: '_id' }));
      expect(dataset.resolved.shards.map((shard) => path.basename(shard.name))).toEqual(['part-0.parquet', 'part-1.parquet', 'part-2.parquet']);
      expect(dataset.digests.every((digest) => /^etag:[0-9a-f]+:\d+$/.test(digest))).toBe(true);
      const staged = await stageDataset(rig.store, dataset);
      expect(staged.source?.shards.every((shard) => shard.bucket === bucket())).toBe(true);
      // Read in place: nothing was copied into the project's store.
      const copied: string[] = [];
      for await (const key of rig.store.list('datasets/')) copied.push(key);
      expect(copied).toEqual([]);

      const runId = `${unique}-s3`;
      const summary = await rig.client.workflow.execute(batchQAWorkflow, {
        workflowId: `batch.${runId}`,
        taskQueue: config.taskQueues.orchestration,
        args: [
          {
            runId,
            datasetKey: staged.datasetKey,
            source: staged.source,
            dataset: dataset.name,
            settings: testSettings,
            runtime: { taskQueues: config.taskQueues, activities: config.activities },
            width: 3,
            pageSize: 3,
            stopOnBadRow: false,
          },
        ],
      });
      expect(summary.overall.episodes).toBe(4);
      expect(summary.invalidRows).toBe(1);
      const errors = await rig.store.getJson<{ errors: RowError[] }>(batchRowErrorsKey(runId));
      expect(errors.errors).toEqual([
        { rowIndex: 1, reason: 'the document ("context") is empty', file: `s3://${bucket()}/${corpus}/parquet/part-0.parquet`, fileRow: 1 },
      ]);
      const results: EpisodeResult[] = [];
      for await (const key of rig.store.list(runResultsPrefix(runId))) results.push(await rig.store.getJson<EpisodeResult>(key));
      expect(results.map((result) => [result.rowIndex, result.id])).toEqual([
        [0, rows[0].id],
        [2, rows[1].id],
        [3, rows[2].id],
        [4, rows[3].id],
      ]);

      const out = tempDir('sources-export');
      const manifest = await exportRun(rig.store, runId, new FsBlobStore({ root: out }), { format: 'parquet', rowsPerShard: 3, overwrite: false });
      expect(manifest.shards.map((shard) => shard.rows)).toEqual([3, 1]);
      const { parquetReadObjects } = await import('hyparquet');
      const exported: Array<Record<string, unknown>> = [];
      for (const shard of manifest.shards) {
        const bytes = fs.readFileSync(path.join(out, shard.file));
        exported.push(...(await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer })));
      }
      expect(exported.map((row) => [row.row_index, row.id, row.answers])).toEqual([
        [0n, rows[0].id, rows[0].answers],
        [2n, rows[1].id, rows[1].answers],
        [3n, rows[2].id, rows[2].answers],
        [4n, rows[3].id, rows[3].answers],
      ]);
      expect(exported.every((row) => typeof row.response === 'string' && typeof row.f1 === 'number')).toBe(true);
    } finally {
      for await (const key of rig.store.list('')) await rig.store.delete(key);
      await rig.close();
    }
  }, 300_000);

  it('plans large Parquet shards in S3 as pieces of row groups, each a shard of the batch, under another identity', async () => {
    const config = testConfig('sources-pieces', { storage: s3Storage(`${unique}/pieces-store`) });
    const store = new S3BlobStore({ ...(config.storage as { endpoint: string; region: string; bucket: string; prefix: string }) });
    try {
      const spec = `s3://${bucket()}/${corpus}/parquet/`;
      const fields = fieldMapping({ questionField: 'input', idField: '_id' });
      const whole = await prepareDataset(config, spec, fields);
      expect(whole.pieces).toEqual([undefined, undefined, undefined]);
      // Every shard is larger than one byte: parts 0 and 1 (two row groups of one row) are split, part 2 (one) not.
      const pieced = await prepareDataset(config, spec, fields, { parquetPieceBytes: 1 });
      expect(pieced.digest).not.toBe(whole.digest);
      expect(pieced.digests).toEqual(whole.digests);
      const staged = await stageDataset(store, pieced);
      expect(staged.source?.shards.map((shard) => [path.basename(shard.key), shard.piece])).toEqual([
        ['part-0.parquet', { firstRowGroup: 0, rowGroups: 1, firstRow: 0, rows: 1 }],
        ['part-0.parquet', { firstRowGroup: 1, rowGroups: 1, firstRow: 1, rows: 1 }],
        ['part-1.parquet', { firstRowGroup: 0, rowGroups: 1, firstRow: 0, rows: 1 }],
        ['part-1.parquet', { firstRowGroup: 1, rowGroups: 1, firstRow: 1, rows: 1 }],
        ['part-2.parquet', undefined],
      ]);
      // The same plan again: the same identity, so a re-run recomputes nothing.
      expect((await prepareDataset(config, spec, fields, { parquetPieceBytes: 1 })).digest).toBe(pieced.digest);
    } finally {
      await store.close();
    }
  });

  it('stages a local folder of shards with streaming uploads, identified by their digests', async () => {
    const folder = tempDir('sources-local');
    fs.writeFileSync(path.join(folder, 'b.jsonl'), toJsonLines(rows.slice(2)));
    fs.writeFileSync(path.join(folder, 'a.jsonl'), toJsonLines(rows.slice(0, 2)));
    fs.writeFileSync(path.join(folder, '_SUCCESS'), '');
    const config = testConfig('sources-local');
    const store: BlobStore = new FsBlobStore({ root: config.storage.kind === 'fs' ? config.storage.root : tempDir('x') });
    try {
      const first = await prepareDataset(config, folder, {});
      expect(first.resolved.shards.map((shard) => path.basename(shard.name))).toEqual(['a.jsonl', 'b.jsonl']);
      const staged = await stageDataset(store, first);
      expect(staged.source?.shards.map((shard) => shard.name)).toEqual(['a.jsonl', 'b.jsonl']);
      for (const [index, shard] of (staged.source?.shards ?? []).entries()) {
        const local = fs.readFileSync(path.join(folder, index === 0 ? 'a.jsonl' : 'b.jsonl'));
        expect(Buffer.from(await store.get(shard.key)).equals(local)).toBe(true);
      }
      // Same shards, same identity (also through a glob); a changed shard, another one.
      expect((await prepareDataset(config, path.join(folder, '*.jsonl'), {})).digest).toBe(first.digest);
      expect((await prepareDataset(config, folder, { question: 'question' })).digest).not.toBe(first.digest);
      fs.appendFileSync(path.join(folder, 'b.jsonl'), toJsonLines(rows.slice(0, 1)));
      expect((await prepareDataset(config, folder, {})).digest).not.toBe(first.digest);
    } finally {
      await store.close();
    }
  });

  it('refuses bad input in one line each, before anything starts', async () => {
    const config = testConfig('sources-bad', { storage: s3Storage(`${unique}/bad`) });
    const at = (suffix: string): string => `s3://${bucket()}/${corpus}/${suffix}`;
    await expect(prepareDataset(config, 's3://no-such-bucket-14/data/', {})).rejects.toThrow(/^bucket 'no-such-bucket-14' .* does not exist/);
    await expect(prepareDataset(config, at('nothing-here/'), {})).rejects.toThrow(`${at('nothing-here/')} is empty: no objects under`);
    await expect(prepareDataset(config, at('mixed/'), {})).rejects.toThrow(
      `${at('mixed/')} mixes formats: ${corpus}/mixed/a.parquet is parquet but ${corpus}/mixed/b.jsonl is jsonl; keep one format per dataset`,
    );
    await expect(prepareDataset(config, at('parquet/'), {})).rejects.toThrow(
      `${at('parquet/part-0.parquet')} has no column "question" (the question; set it with --question-field); its columns are: _id, input, context, answers`,
    );
    await expect(prepareDataset(config, at('parquet/'), { question: 'input', answers: 'gold' })).rejects.toThrow(
      /has no column "gold" \(the answers; set it with --answers-field\)/,
    );
    await expect(prepareDataset(testConfig('sources-fs'), at('parquet/'), {})).rejects.toThrow(/the blob store is on the filesystem: set REMEMR1_STORAGE=s3/);

    // Through the command: credentials the server refuses, one line, and no batch is started.
    const denied = await rememr1(['qa', '--dataset', at('parquet/'), '--question-field', 'input', '--no-ui', '--no-worker'], {
      ...process.env,
      REMEMR1_STORAGE: 's3',
      REMEMR1_S3_PREFIX: `${unique}/denied`,
      AWS_SECRET_ACCESS_KEY: 'not-the-secret',
      npm_config_update_notifier: 'false',
    });
    expect(denied.code).toBe(1);
    expect(denied.stderr.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('npm warn'))).toEqual([
      expect.stringMatching(/^rememr1: bucket '[^']+' at \S+ refused the credentials \((AccessDenied|SignatureDoesNotMatch)\)/),
    ]);
  });
});
