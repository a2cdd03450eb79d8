/**
 * `qa --dataset FILE|DIR|GLOB|s3://bucket/prefix/ [--question-field …]`: resolves the dataset before anything
 * starts (lib/data/sources.ts), then puts local shards into the blob store with streaming uploads (each under its
 * own content digest, skipped when already there) or hands S3 shards to the workers to read in place.
 */
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { Command } from 'commander';
import type { DatasetShardRef, DatasetSourceRef } from '../activities/batch';
import { blobAsyncBuffer, parquetRowGroups, type FieldMapping } from '../lib/data/dataset';
import { DEFAULT_PARQUET_PIECE_BYTES, planParquetPieces, type ParquetPiece } from '../lib/data/parquet-pieces';
import {
  DatasetSourceError,
  checkShardCount,
  MAX_SHARDS,
  checkSourceColumns,
  datasetDigest,
  localAsyncBuffer,
  resolveLocalSource,
  resolveS3Source,
  shardDigest,
  type ResolvedSource,
} from '../lib/data/sources';
import { S3BlobStore, datasetKey, type BlobStore } from '../lib/storage';
import type { RememConfig } from '../temporal.config';

export interface FieldOptions {
  questionField?: string;
  contextField?: string;
  answersField?: string;
  idField?: string;
}

export function withDatasetFieldOptions(command: Command): Command {
  return command
    .option('--question-field <column>', 'column (JSON field) holding the question (default: question)')
    .option('--context-field <column>', 'column holding the document (default: context)')
    .option('--answers-field <column>', 'column holding the gold answers, a string or a list (default: answers, else answer)')
    .option('--id-field <column>', 'column holding the row id (default: id, else _id)');
}

export function fieldMapping(options: FieldOptions): FieldMapping {
  const fields: FieldMapping = {};
  if (options.questionField !== undefined) fields.question = options.questionField;
  if (options.contextField !== undefined) fields.context = options.contextField;
  if (options.answersField !== undefined) fields.answers = options.answersField;
  if (options.idField !== undefined) fields.id = options.idField;
  return fields;
}

export interface PreparedDataset {
  /** Name of the dataset in search attributes and the summary. */
  name: string;
  /** Identity of the dataset as read: its shards' digests, and the column mapping when one is given. */
  digest: string;
  resolved: ResolvedSource;
  digests: string[];
  fields: FieldMapping;
  /** Per shard: the row-group pieces a large Parquet shard is indexed in (one activity each), or undefined. */
  pieces: Array<ParquetPiece[] | undefined>;
}

export interface PrepareOptions {
  /** Parquet shards larger than this are indexed in pieces of row groups of about this size. */
  parquetPieceBytes?: number;
}

/**
 * Lists the dataset, checks its first shard's columns, plans the pieces of large Parquet shards (from their
 * footers) and computes its identity (streamed, bounded memory): every mistake is one line, and nothing is started
 * or written.
 */
export async function prepareDataset(config: RememConfig, spec: string, fields: FieldMapping, options: PrepareOptions = {}): Promise<PreparedDataset> {
  const pieceBytes = options.parquetPieceBytes ?? DEFAULT_PARQUET_PIECE_BYTES;
  let resolved: ResolvedSource;
  let pieces: Array<ParquetPiece[] | undefined>;
  if (/^s3:\/\//i.test(spec)) {
    const storage = config.storage;
    if (storage.kind !== 's3') {
      throw new DatasetSourceError(
        `${spec} would be read in place by the workers through their S3 store, but the blob store is on the filesystem: set REMEMR1_STORAGE=s3 (and REMEMR1_S3_ENDPOINT for a server other than AWS)`,
      );
    }
    const bucketStore = openBucketStore(config, spec);
    try {
      resolved = await resolveS3Source(spec, bucketStore);
      await checkSourceColumns(resolved, fields, bucketStore);
      pieces = await planPieces(resolved, pieceBytes, bucketStore);
    } finally {
      await bucketStore.close();
    }
  } else {
    resolved = resolveLocalSource(spec);
    await checkSourceColumns(resolved, fields, undefined);
    pieces = await planPieces(resolved, pieceBytes, undefined);
  }
  checkShardCount(resolved);
  const digests: string[] = [];
  for (const shard of resolved.shards) digests.push(await shardDigest(shard));
  let digest = datasetDigest(resolved, digests);
  if (Object.keys(fields).length > 0) {
    const mapping = JSON.stringify(Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : 1)));
    digest = createHash('sha256').update(`${digest}\n${mapping}`).digest('hex');
  }
  // Pieces change how rows are paged: a run indexed whole (by code before pieces, or with another piece size) is
  // another run. Datasets without pieces keep the identity they always had.
  if (pieces.some((plan) => plan !== undefined)) {
    digest = createHash('sha256').update(`${digest}\nparquet pieces ${JSON.stringify(pieces)}`).digest('hex');
  }
  const name = /^s3:\/\//i.test(spec) ? spec : path.basename(path.resolve(spec));
  return { name, digest, resolved, digests, fields, pieces };
}

/**
 * The pieces of each Parquet shard larger than `pieceBytes` (only those footers are read); a dataset whose pieces
 * would exceed the batch's shard limit is refused in one line.
 */
async function planPieces(resolved: ResolvedSource, pieceBytes: number, bucketStore: BlobStore | undefined): Promise<Array<ParquetPiece[] | undefined>> {
  const plans: Array<ParquetPiece[] | undefined> = [];
  let count = 0;
  for (const shard of resolved.shards) {
    let plan: ParquetPiece[] | undefined;
    if (resolved.format === 'parquet' && shard.size > pieceBytes) {
      try {
        const groups =
          shard.kind === 'file'
            ? await localAsyncBuffer(shard.path, shard.size, parquetRowGroups)
            : await parquetRowGroups(await blobAsyncBuffer(bucketStore as BlobStore, shard.key));
        plan = planParquetPieces(groups, pieceBytes);
      } catch (error) {
        throw new DatasetSourceError(`${shard.name}: ${(error as Error).message}`);
      }
    }
    plans.push(plan);
    count += plan?.length ?? 1;
  }
  if (count > MAX_SHARDS) {
    throw new DatasetSourceError(
      `${resolved.spec} makes ${count} shards and Parquet pieces; a batch takes at most ${MAX_SHARDS}: raise --parquet-piece-mb, merge shards, or run the corpus in parts`,
    );
  }
  return plans;
}

function openBucketStore(config: RememConfig, spec: string): S3BlobStore {
  if (config.storage.kind !== 's3') throw new Error('an S3 dataset needs S3 storage');
  const bucket = spec.slice('s3://'.length).split('/')[0];
  const { endpoint, region, forcePathStyle } = config.storage;
  return new S3BlobStore({ endpoint, region, forcePathStyle, bucket });
}

/**
 * Puts local shards into the blob store (streamed; a shard already stored with the same size is not sent again)
 * and says how the batch reads the dataset: `source` is left out for one local file read with default columns,
 * so such a batch starts exactly as before shards existed.
 */
export async function stageDataset(
  store: BlobStore,
  dataset: PreparedDataset,
): Promise<{ datasetKey: string; source?: DatasetSourceRef }> {
  const shards: DatasetSourceRef['shards'] = [];
  for (const [index, shard] of dataset.resolved.shards.entries()) {
    let ref: DatasetShardRef;
    if (shard.kind === 's3') ref = { bucket: shard.bucket, key: shard.key, name: shard.name };
    else {
      const key = datasetKey(dataset.digests[index].slice(0, 32), path.basename(shard.path).replace(/[^A-Za-z0-9._-]/g, '_'));
      const stored = await store.stat(key).catch(() => undefined);
      if (stored?.size !== shard.size) await store.putStream(key, fs.createReadStream(shard.path));
      ref = { key, name: path.basename(shard.path) };
    }
    // A large Parquet shard is indexed one piece of row groups per activity: each piece is a shard of the batch.
    const pieces = dataset.pieces[index];
    if (pieces === undefined) shards.push(ref);
    else for (const piece of pieces) shards.push({ ...ref, piece });
  }
  const plain = shards.length === 1 && shards[0].bucket === undefined && Object.keys(dataset.fields).length === 0;
  if (plain) return { datasetKey: shards[0].key };
  const source: DatasetSourceRef = { shards };
  if (Object.keys(dataset.fields).length > 0) source.fields = dataset.fields;
  return { datasetKey: shards[0].key, source };
}
