/** Sharded datasets for the indexing tests: JSONL and Parquet shards of unequal sizes with malformed rows. */
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { DatasetShardRef } from '../../activities/batch';
import type { BlobStore } from '../../lib/storage';

/** A row of a test shard: good, or malformed (no document). */
export type ShardRow = { id: string; good: boolean };

function record(row: ShardRow): { id: string; question: string; context: string; answers: string[] } {
  return {
    id: row.id,
    question: `What is ${row.id}?`,
    context: row.good ? `${row.id} is a row of a test shard.` : '',
    answers: [row.id],
  };
}

export function rowsOf(prefix: string, count: number, badAt: number[] = []): ShardRow[] {
  return Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${i}`, good: !badAt.includes(i) }));
}

export function jsonlShard(rows: ShardRow[]): string {
  return rows.map((row) => JSON.stringify(record(row))).join('\n') + (rows.length > 0 ? '\n' : '');
}

export function parquetShard(rows: ShardRow[]): Uint8Array {
  const records = rows.map(record);
  return new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: 'id', data: records.map((r) => r.id), type: 'STRING' },
        { name: 'question', data: records.map((r) => r.question), type: 'STRING' },
        { name: 'context', data: records.map((r) => r.context), type: 'STRING' },
        { name: 'answers', data: records.map((r) => r.answers) },
      ],
      rowGroupSize: 2,
    }),
  );
}

/** Puts each shard under `prefix` and returns the refs in order. */
export async function putShards(
  store: BlobStore,
  prefix: string,
  shards: Array<{ name: string; body: string | Uint8Array }>,
): Promise<DatasetShardRef[]> {
  const refs: DatasetShardRef[] = [];
  for (const shard of shards) {
    const key = `${prefix}/${shard.name}`;
    await store.put(key, shard.body);
    refs.push({ key, name: shard.name });
  }
  return refs;
}
