/**
 * `rememr1 export`: a real batch on the dev server (bundled model, in-process workers), its results exported as
 * sharded Parquet to a folder and as JSON Lines to the real MinIO, read back with hyparquet; and the command's
 * mistakes (no such run, a bucket that does not exist, a destination in use), one line each.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateSyntheticRows, toJsonLines } from '../../lib/data/synthetic';
import { ExportError, exportRun, type ExportManifest } from '../../lib/export/export-run';
import { RESULT_COLUMNS, type ExportRow } from '../../lib/export/result-rows';
import { TRACE_COLUMNS } from '../../lib/export/trace-rows';
import type { BatchSummary } from '../../lib/episode/summary';
import { FsBlobStore, type BlobStore } from '../../lib/storage';
import { openLocation, parseLocation, s3EndpointFromEnvironment } from '../../lib/storage/location';
import { batchQAWorkflow } from '../../workflows/batch';
import { WorkerRig } from '../support/rig';
import { requireStackEnvironment, tempDir, testConfig, testSettings } from '../support/stack';
import { runRememr1, type CliRun } from '../support/cli';

requireStackEnvironment();

const rememr1 = (args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> => runRememr1(args, { env, timeoutMs: 60_000 });


/** stderr without npm's own notices. */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('npm warn'));
}

/** The result rows of a Parquet export, in shard order. */
async function readResultRows(folder: string, manifest: ExportManifest): Promise<Array<Record<string, unknown>>> {
  const { parquetReadObjects } = await import('hyparquet');
  const rows: Array<Record<string, unknown>> = [];
  for (const shard of manifest.shards) {
    const bytes = fs.readFileSync(path.join(folder, shard.file));
    rows.push(...(await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer })));
  }
  return rows;
}

describe('rememr1 export', () => {
  const config = testConfig('export');
  const runId = `export-${Date.now().toString(36)}`;
  const rows = generateSyntheticRows({ seed: 14, questions: 3, documentsPerQuestion: 6, wordsPerDocument: 20 });
  let rig: WorkerRig;
  let store: BlobStore;
  let summary: BatchSummary;

  beforeAll(async () => {
    rig = await WorkerRig.start(config);
    store = rig.store;
    // Row 1 is malformed, so episode rows are 0, 2 and 3.
    await store.put('datasets/export/rows.jsonl', toJsonLines(rows).replace(/\n/, '\n{"question": "no context"}\n'));
    const handle = await rig.client.workflow.start(batchQAWorkflow, {
      workflowId: `batch.${runId}`,
      taskQueue: config.taskQueues.orchestration,
      args: [
        {
          runId,
          datasetKey: 'datasets/export/rows.jsonl',
          dataset: 'rows.jsonl',
          settings: testSettings,
          runtime: { taskQueues: config.taskQueues, activities: config.activities },
          width: 3,
          pageSize: 10,
          stopOnBadRow: false,
        },
      ],
    });
    summary = await handle.result();
  }, 300_000);

  afterAll(async () => {
    await rig?.close();
  });

  it('writes sharded Parquet with the stable schema that hyparquet reads back', async () => {
    const { parquetMetadata, parquetReadObjects, parquetSchema } = await import('hyparquet');
    const folder = tempDir('export-parquet');
    const destination = new FsBlobStore({ root: folder });
    const manifest = await exportRun(store, runId, destination, { format: 'parquet', rowsPerShard: 2, overwrite: false });

    expect(manifest.rows).toBe(3);
    expect(manifest.shards).toEqual([
      { file: 'part-00000.parquet', rows: 2 },
      { file: 'part-00001.parquet', rows: 1 },
    ]);
    expect(fs.readdirSync(folder).sort()).toEqual(['manifest.json', 'part-00000.parquet', 'part-00001.parquet', 'summary.json']);
    expect(JSON.parse(fs.readFileSync(path.join(folder, 'summary.json'), 'utf8'))).toEqual(summary);

    const read: Array<Record<string, unknown>> = [];
    for (const shard of manifest.shards) {
      const bytes = fs.readFileSync(path.join(folder, shard.file));
      const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      const metadata = parquetMetadata(file);
      // The same columns, in the same order, with the same physical types in every shard.
      const leaves = parquetSchema(metadata).children.map((child) => [child.element.name, child.element.type ?? child.element.converted_type]);
      expect(leaves).toEqual([
        ['run_id', 'BYTE_ARRAY'],
        ['episode_id', 'BYTE_ARRAY'],
        ['row_index', 'INT64'],
        ['id', 'BYTE_ARRAY'],
        ['question', 'BYTE_ARRAY'],
        ['answers', 'LIST'],
        ['prediction', 'BYTE_ARRAY'],
        ['response', 'BYTE_ARRAY'],
        ['exact_match', 'DOUBLE'],
        ['f1', 'DOUBLE'],
        ['sub_exact_match', 'DOUBLE'],
        ['chunk_count', 'INT32'],
        ['document_tokens', 'INT32'],
        ['answer_tokens', 'INT32'],
        ['answer_prompt_tokens', 'INT32'],
        ['format_valid_steps', 'INT32'],
        ['callback_count', 'INT32'],
        ['policy_version', 'BYTE_ARRAY'],
        ['model', 'BYTE_ARRAY'],
      ]);
      expect(Number(metadata.num_rows)).toBe(shard.rows);
      read.push(...(await parquetReadObjects({ file })));
    }

    expect(read.map((row) => row.row_index)).toEqual([0n, 2n, 3n]);
    expect(read.map((row) => row.id)).toEqual([rows[0].id, rows[1].id, rows[2].id]);
    expect(read.map((row) => row.answers)).toEqual([rows[0].answers, rows[1].answers, rows[2].answers]);
    for (const row of read) {
      expect(Object.keys(row)).toEqual(RESULT_COLUMNS.map((column) => column.name));
      expect(row.run_id).toBe(runId);
      expect(typeof row.question).toBe('string');
      expect(typeof row.response).toBe('string');
      expect(row.prediction === null || typeof row.prediction === 'string').toBe(true);
      for (const score of ['exact_match', 'f1', 'sub_exact_match']) expect(typeof row[score]).toBe('number');
      for (const count of ['chunk_count', 'document_tokens', 'answer_tokens', 'answer_prompt_tokens', 'callback_count']) {
        expect(Number.isInteger(row[count])).toBe(true);
      }
      expect(row.chunk_count as number).toBeGreaterThan(0);
      expect(row.answer_tokens as number).toBeGreaterThan(0);
      expect(row.policy_version).toBeNull();
      expect(row.model).toBeNull(); // started without the CLI, so the run id was never bound to a model
    }

    // A destination in use is refused unless overwriting, which replaces the earlier export.
    await expect(exportRun(store, runId, destination, { format: 'parquet', rowsPerShard: 2, overwrite: false })).rejects.toThrow(
      ExportError,
    );
    fs.writeFileSync(path.join(folder, 'notes.txt'), 'kept');
    const again = await exportRun(store, runId, destination, { format: 'parquet', rowsPerShard: 10, overwrite: true });
    expect(again.shards).toEqual([{ file: 'part-00000.parquet', rows: 3 }]);
    expect(fs.readdirSync(folder).sort()).toEqual(['manifest.json', 'notes.txt', 'part-00000.parquet', 'summary.json']);
  });

  it('writes the memory trace, one typed row per memory step, beside the result rows', async () => {
    const { parquetMetadata, parquetReadObjects, parquetSchema } = await import('hyparquet');
    const folder = tempDir('export-traces');
    const destination = new FsBlobStore({ root: folder });
    const manifest = await exportRun(store, runId, destination, { format: 'parquet', rowsPerShard: 4, overwrite: false, traces: true });
    const withoutTraces = await exportRun(store, runId, new FsBlobStore({ root: tempDir('export-no-traces') }), { format: 'jsonl', rowsPerShard: 100, overwrite: false });
    expect(withoutTraces.traces).toBeUndefined();

    const traces = manifest.traces as NonNullable<ExportManifest['traces']>;
    expect(traces.columns).toEqual(TRACE_COLUMNS.map((column) => column.name));
    const read: Array<Record<string, unknown>> = [];
    for (const shard of traces.shards) {
      expect(shard.file).toMatch(/^traces\/part-\d{5}\.parquet$/);
      const bytes = fs.readFileSync(path.join(folder, shard.file));
      const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      const metadata = parquetMetadata(file);
      const types = parquetSchema(metadata).children.map((child) => child.element.type ?? child.element.converted_type);
      expect(types).toEqual(['BYTE_ARRAY', 'BYTE_ARRAY', 'INT64', 'INT32', 'BYTE_ARRAY', 'BYTE_ARRAY', 'LIST', 'LIST', 'LIST', 'BOOLEAN', 'LIST', 'BYTE_ARRAY', 'INT32', 'INT32', 'BYTE_ARRAY', 'BYTE_ARRAY']);
      read.push(...(await parquetReadObjects({ file })));
    }
    // Every chunk of every episode is one memory step, in row and step order.
    const exported = await readResultRows(folder, manifest);
    const expected = exported.flatMap((row) => Array.from({ length: Number(row.chunk_count) }, (_, step) => [row.row_index, step]));
    expect(read.map((row) => [row.row_index, row.step])).toEqual(expected);
    expect(traces.rows).toBe(expected.length);
    expect(traces.shards.every((shard) => shard.rows <= 4)).toBe(true);
    for (const row of read) {
      expect(Object.keys(row)).toEqual(TRACE_COLUMNS.map((column) => column.name));
      expect(row.run_id).toBe(runId);
      expect(typeof row.response).toBe('string');
      expect(typeof row.format_valid).toBe('boolean');
      expect(Array.isArray(row.recalled_steps) && Array.isArray(row.recalled_texts) && Array.isArray(row.issues)).toBe(true);
      expect((row.recalled_steps as number[]).length).toBe((row.recalled_scores as number[]).length);
      expect(row.generated_tokens as number).toBeGreaterThan(0);
      expect(row.prompt_tokens as number).toBeGreaterThan(0);
    }
  });

  it('writes JSON Lines to an S3 prefix on the real MinIO', async () => {
    const prefix = `exports/${runId}-${randomUUID().slice(0, 8)}`;
    const destination = await openLocation(parseLocation(`s3://${process.env.REMEMR1_S3_BUCKET}/${prefix}/`), s3EndpointFromEnvironment());
    try {
      const manifest = await exportRun(store, runId, destination, { format: 'jsonl', rowsPerShard: 2, overwrite: false });
      expect(manifest.shards.map((shard) => shard.file)).toEqual(['part-00000.jsonl', 'part-00001.jsonl']);
      const lines: ExportRow[] = [];
      for (const shard of manifest.shards) {
        const text = Buffer.from(await destination.get(shard.file)).toString('utf8');
        lines.push(...text.trimEnd().split('\n').map((line) => JSON.parse(line) as ExportRow));
      }
      expect(lines.map((line) => line.row_index)).toEqual([0, 2, 3]);
      expect(lines.every((line) => typeof line.response === 'string' && line.run_id === runId)).toBe(true);
      expect(await destination.getJson<ExportManifest>('manifest.json')).toEqual(manifest);
      expect(await destination.getJson<BatchSummary>('summary.json')).toEqual(summary);
    } finally {
      for await (const key of destination.list('')) await destination.delete(key);
      await destination.close();
    }
  });

  it('says in one line what is wrong and writes nothing', async () => {
    if (config.storage.kind !== 'fs') throw new Error('expected the filesystem store');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      REMEMR1_STORAGE: 'fs',
      REMEMR1_STORAGE_ROOT: config.storage.root,
      npm_config_update_notifier: 'false',
    };
    const out = tempDir('export-cli');

    const missingRun = await rememr1(['export', 'no-such-run', '--to', out], env);
    expect(missingRun.code).toBe(1);
    expect(errorLines(missingRun.stderr)).toEqual([expect.stringMatching(/^rememr1: run no-such-run has no result rows in .*check the run id/)]);

    const noBucket = await rememr1(['export', runId, '--to', 's3://no-such-bucket-14/x'], env);
    expect(noBucket.code).toBe(1);
    expect(errorLines(noBucket.stderr)).toEqual([expect.stringMatching(/^rememr1: bucket 'no-such-bucket-14' .* does not exist/)]);

    const badUri = await rememr1(['export', runId, '--to', 's3://Bad_Bucket/x'], env);
    expect(badUri.code).toBe(1);
    expect(errorLines(badUri.stderr)).toEqual(['rememr1: s3://Bad_Bucket/x: "Bad_Bucket" is not an S3 bucket name (expected s3://bucket/prefix)']);
    expect(fs.readdirSync(out)).toEqual([]);

    const ok = await rememr1(['export', runId, '--to', out, '--format', 'jsonl'], env);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`exported 3 result rows of ${runId}`);
    expect(fs.readdirSync(out).sort()).toEqual(['manifest.json', 'part-00000.jsonl', 'summary.json']);
  });
});
