/**
 * Where a dataset comes from: one local file, a local folder or glob of shards, or an S3 URI (`s3://bucket/
 * prefix/`, one object, or a glob in the last segment). Resolving a source lists its shards (sorted by name, all
 * of one format), checks that the columns the run reads exist in the first shard, and gives each shard an
 * identity without loading it: a streamed sha256 for a local file, the ETag and size for an S3 object (read in
 * place by the workers, never through the CLI). Every mistake is one `DatasetSourceError` line.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { parser } from 'stream-json';
import { streamArray } from 'stream-json/streamers/StreamArray';
import type { AsyncBuffer } from 'hyparquet';
import { compareKeys, type BlobStore } from '../storage/blob-store';
import type { S3BlobStore } from '../storage/s3-store';
import { blobAsyncBuffer, parquetColumnNames, type DatasetFormat, type FieldMapping } from './dataset';

export class DatasetSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetSourceError';
  }
}

/** One shard as found: a local file, or an object of an S3 bucket. */
export type FoundShard =
  | { kind: 'file'; path: string; name: string; size: number }
  | { kind: 's3'; bucket: string; key: string; name: string; size: number; etag: string };

export interface ResolvedSource {
  /** What the user gave, for messages and the run's dataset name. */
  spec: string;
  format: DatasetFormat;
  shards: FoundShard[];
}

const FORMAT_BY_EXTENSION: ReadonlyArray<[string, DatasetFormat]> = [
  ['.jsonl', 'jsonl'],
  ['.ndjson', 'jsonl'],
  ['.json', 'json'],
  ['.parquet', 'parquet'],
];

/** The format a shard's name says, or undefined for a name of no dataset format. */
export function formatOfName(name: string): DatasetFormat | undefined {
  const lower = name.toLowerCase();
  return FORMAT_BY_EXTENSION.find(([extension]) => lower.endsWith(extension))?.[1];
}

/** Names a folder or prefix listing skips: marker and hidden files such as Spark's `_SUCCESS` or `.crc` files. */
export function isSideFile(name: string): boolean {
  const base = name.slice(name.lastIndexOf('/') + 1);
  return base.startsWith('_') || base.startsWith('.');
}

export function hasGlob(text: string): boolean {
  return /[*?[]/.test(text);
}

/** A glob of one path segment (`*`, `?`, `[abc]`) as a regular expression over the whole name. */
export function globToRegExp(glob: string): RegExp {
  let pattern = '';
  for (let i = 0; i < glob.length; i += 1) {
    const char = glob[i];
    if (char === '*') pattern += '[^/]*';
    else if (char === '?') pattern += '[^/]';
    else if (char === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close === -1) pattern += '\\[';
      else {
        pattern += `[${glob.slice(i + 1, close).replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else pattern += char.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${pattern}$`);
}

/**
 * The one format of the listed shards: side files are dropped before this; any other name of no dataset format,
 * or of a second format, is an error naming it.
 */
export function commonFormat(spec: string, names: readonly string[]): DatasetFormat {
  let first: { name: string; format: DatasetFormat } | undefined;
  for (const name of names) {
    const format = formatOfName(name);
    if (format === undefined) {
      throw new DatasetSourceError(
        `${name} in ${spec} is not a dataset shard: expected .jsonl, .json or .parquet files only`,
      );
    }
    if (first === undefined) first = { name, format };
    else if (format !== first.format) {
      throw new DatasetSourceError(
        `${spec} mixes formats: ${first.name} is ${first.format} but ${name} is ${format}; keep one format per dataset`,
      );
    }
  }
  if (first === undefined) throw new DatasetSourceError(`${spec} holds no dataset shards`);
  return first.format;
}

export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const rest = uri.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new DatasetSourceError(
      `${uri}: "${bucket}" is not an S3 bucket name (expected s3://bucket/prefix/)`,
    );
  }
  return { bucket, key: slash === -1 ? '' : rest.slice(slash + 1) };
}

/** Lists a local file, folder (its files, not sub-folders) or glob (in the last segment). */
export function resolveLocalSource(spec: string): ResolvedSource {
  const absolute = path.resolve(spec);
  let files: string[];
  if (hasGlob(path.basename(absolute))) {
    const folder = path.dirname(absolute);
    if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) {
      throw new DatasetSourceError(`dataset ${spec}: folder ${folder} does not exist`);
    }
    const pattern = globToRegExp(path.basename(absolute));
    files = fs
      .readdirSync(folder)
      .filter((name) => pattern.test(name))
      .map((name) => path.join(folder, name))
      .filter((file) => fs.statSync(file).isFile());
    if (files.length === 0) throw new DatasetSourceError(`dataset ${spec}: no file matches`);
  } else if (!fs.existsSync(absolute)) {
    throw new DatasetSourceError(`dataset file ${spec} does not exist`);
  } else if (fs.statSync(absolute).isDirectory()) {
    files = fs
      .readdirSync(absolute)
      .filter((name) => !isSideFile(name))
      .map((name) => path.join(absolute, name))
      .filter((file) => fs.statSync(file).isFile());
    if (files.length === 0) throw new DatasetSourceError(`dataset folder ${spec} is empty`);
  } else {
    files = [absolute];
    if (formatOfName(absolute) === undefined) {
      throw new DatasetSourceError(
        `cannot tell the format of dataset "${spec}": expected a .jsonl, .json or .parquet file`,
      );
    }
  }
  files.sort(compareKeys);
  const format = commonFormat(
    spec,
    files.map((file) => path.basename(file)),
  );
  const shards = files.map((file) => ({
    kind: 'file' as const,
    path: file,
    name: file,
    size: fs.statSync(file).size,
  }));
  const empty = shards.find((shard) => shard.size === 0);
  if (empty !== undefined) {
    throw new DatasetSourceError(
      shards.length === 1
        ? `dataset ${spec} is empty (0 bytes)`
        : `dataset ${spec}: shard ${empty.name} is empty (0 bytes)`,
    );
  }
  return { spec, format, shards };
}

/**
 * Lists an S3 source through a store on its bucket (rooted at the bucket, no prefix): the objects under a
 * prefix (ending in '/' or naming a folder), one object, or the objects matching a glob in the last segment.
 */
export async function resolveS3Source(spec: string, bucketStore: S3BlobStore): Promise<ResolvedSource> {
  const { bucket, key } = parseS3Uri(spec);
  await bucketStore.checkAccess();
  const lastSlash = key.lastIndexOf('/');
  const folder = key.slice(0, lastSlash + 1);
  const last = key.slice(lastSlash + 1);
  const objects: Array<{ key: string; size: number; etag: string }> = [];
  const add = (object: { key: string; size: number; etag?: string }): void => {
    objects.push({ key: object.key, size: object.size, etag: object.etag ?? '' });
  };
  if (hasGlob(last)) {
    const pattern = globToRegExp(last);
    for await (const object of bucketStore.listWithStats(folder)) {
      const rest = object.key.slice(folder.length);
      if (!rest.includes('/') && pattern.test(rest)) add(object);
    }
    if (objects.length === 0) throw new DatasetSourceError(`${spec}: no object matches`);
  } else {
    const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
    // One object named exactly, else everything under the prefix.
    if (key !== '' && !key.endsWith('/')) {
      const exact = await bucketStore.stat(key).catch(() => undefined);
      if (exact !== undefined) add({ key, ...exact });
    }
    if (objects.length === 0) {
      for await (const object of bucketStore.listWithStats(prefix)) {
        if (!isSideFile(object.key) && !object.key.endsWith('/')) add(object);
      }
    }
    if (objects.length === 0)
      throw new DatasetSourceError(`${spec} is empty: no objects under s3://${bucket}/${prefix}`);
  }
  const format = commonFormat(
    spec,
    objects.map((object) => object.key),
  );
  return {
    spec,
    format,
    shards: objects.map((object) => ({
      kind: 's3',
      bucket,
      key: object.key,
      name: `s3://${bucket}/${object.key}`,
      size: object.size,
      etag: object.etag,
    })),
  };
}

/**
 * Most shards one batch takes: the shard list travels in the workflow's input, which Temporal caps at 2 MB per
 * payload (a shard reference is up to a few hundred bytes).
 */
export const MAX_SHARDS = 4_000;

export function checkShardCount(source: ResolvedSource): void {
  if (source.shards.length > MAX_SHARDS) {
    throw new DatasetSourceError(
      `${source.spec} has ${source.shards.length} shards; a batch takes at most ${MAX_SHARDS}: merge shards, or run the corpus in parts (a glob per part)`,
    );
  }
}

/** sha256 of a file, streamed. */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A shard's identity: its streamed sha256, or `etag:ETAG:SIZE` for an S3 object read in place. */
export async function shardDigest(shard: FoundShard): Promise<string> {
  return shard.kind === 'file' ? fileSha256(shard.path) : `etag:${shard.etag}:${shard.size}`;
}

/**
 * The dataset's identity: for one local file its sha256 (as runs have always been bound), else the sha256 of
 * the format and every shard's name (relative to the source), size and digest, so a changed, added or removed
 * shard is a different dataset.
 */
export function datasetDigest(source: ResolvedSource, digests: readonly string[]): string {
  if (source.shards.length === 1 && source.shards[0].kind === 'file') return digests[0];
  const lines = source.shards.map(
    (shard, index) => `${path.basename(shard.name)}\t${shard.size}\t${digests[index]}`,
  );
  return createHash('sha256')
    .update(`${source.format}\n${lines.join('\n')}`)
    .digest('hex');
}

/** The columns (JSON field names) of a shard's first row, or of a Parquet shard's schema. */
export async function firstRowColumns(
  format: DatasetFormat,
  open: () => Promise<Readable>,
  file: () => Promise<AsyncBuffer>,
): Promise<string[] | undefined> {
  if (format === 'parquet') return parquetColumnNames(await file());
  const stream = await open();
  try {
    if (format === 'jsonl') {
      const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
      try {
        for await (const line of lines) {
          if (line.trim() === '') continue;
          const value: unknown = JSON.parse(line);
          return typeof value === 'object' && value !== null && !Array.isArray(value)
            ? Object.keys(value)
            : undefined;
        }
      } finally {
        lines.close();
      }
      return undefined;
    }
    const elements = pipeline(stream, parser(), streamArray(), () => undefined);
    try {
      for await (const item of elements as AsyncIterable<{ value: unknown }>) {
        const value = item.value;
        return typeof value === 'object' && value !== null && !Array.isArray(value)
          ? Object.keys(value)
          : undefined;
      }
    } finally {
      elements.destroy();
    }
    return undefined;
  } catch {
    // A first row that does not parse is reported per row (or the shard fails as a whole) when it is indexed.
    return undefined;
  } finally {
    stream.destroy();
  }
}

/** The options that name each field, for messages. */
const FIELD_OPTIONS: Record<keyof FieldMapping, string> = {
  question: '--question-field',
  context: '--context-field',
  answers: '--answers-field',
  id: '--id-field',
};

/**
 * Checks that the first shard has the columns the run reads: question and context always (by their mapped or
 * default names), answers and id when mapped. Unknown columns (a first row that is not an object) pass here.
 */
/**
 * Refuses a shard that lacks a column the rows are read from. `defaults` also checks the default question and
 * context columns: right for a Parquet schema (every row has its columns); for JSON rows, whose first row is only a
 * sample, a row without them is a malformed row, reported with the others, and only mapped columns are checked.
 */
export function checkColumns(
  shardName: string,
  columns: readonly string[] | undefined,
  fields: FieldMapping,
  defaults = true,
): void {
  if (columns === undefined) return;
  const wanted: Array<[keyof FieldMapping, string]> = [];
  if (defaults || fields.question !== undefined) wanted.push(['question', fields.question ?? 'question']);
  if (defaults || fields.context !== undefined) wanted.push(['context', fields.context ?? 'context']);
  if (fields.answers !== undefined) wanted.push(['answers', fields.answers]);
  if (fields.id !== undefined) wanted.push(['id', fields.id]);
  for (const [field, column] of wanted) {
    if (!columns.includes(column)) {
      throw new DatasetSourceError(
        `${shardName} has no column "${column}" (the ${field}; set it with ${FIELD_OPTIONS[field]}); its columns are: ${columns.join(', ')}`,
      );
    }
  }
}

/** Runs `use` with a byte-range view of a local file (for Parquet footers), closing the file after. */
export async function localAsyncBuffer<T>(file: string, size: number, use: (buffer: AsyncBuffer) => Promise<T>): Promise<T> {
  const handle = await fs.promises.open(file, 'r');
  try {
    return await use({
      byteLength: size,
      slice: async (start, end) => {
        const bytes = Buffer.alloc((end ?? size) - start);
        await handle.read(bytes, 0, bytes.length, start);
        return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      },
    });
  } finally {
    await handle.close();
  }
}

/** Reads the first shard's columns from wherever it is, and checks them. */
export async function checkSourceColumns(
  source: ResolvedSource,
  fields: FieldMapping,
  bucketStore: BlobStore | undefined,
): Promise<void> {
  const shard = source.shards[0];
  let columns: string[] | undefined;
  if (shard.kind === 'file') {
    try {
      columns = await localAsyncBuffer(shard.path, shard.size, (file) =>
        firstRowColumns(
          source.format,
          async () => fs.createReadStream(shard.path),
          async () => file,
        ),
      );
    } catch (error) {
      throw new DatasetSourceError(`${shard.name}: ${(error as Error).message}`);
    }
  } else {
    if (bucketStore === undefined) throw new Error('an S3 shard needs a store on its bucket');
    try {
      columns = await firstRowColumns(
        source.format,
        () => bucketStore.getStream(shard.key),
        () => blobAsyncBuffer(bucketStore, shard.key),
      );
    } catch (error) {
      throw new DatasetSourceError(`${shard.name}: ${(error as Error).message}`);
    }
  }
  checkColumns(shard.name, columns, fields, source.format === 'parquet');
}
