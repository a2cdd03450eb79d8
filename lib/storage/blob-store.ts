/**
 * The blob store: one interface for every place the project keeps objects (memories, chunk manifests,
 * results, checkpoints, policies), the errors it raises, and the single rule for what a key may be.
 */
import type { Readable } from 'node:stream';

export type BlobBody = Uint8Array | string;

export interface PutOptions {
  /** MIME type recorded with the object where the backend keeps one (S3); the filesystem ignores it. */
  contentType?: string;
}

export interface BlobStat {
  size: number;
  /** S3's entity tag (quotes removed); absent on the filesystem. */
  etag?: string;
}

/** Part size of a streamed upload to S3 (S3's minimum is 5 MiB), and so the memory a streamed put holds. */
export const STREAM_PART_BYTES = 8 * 1024 * 1024;

/** Turns the parsed JSON into the caller's type; throw to reject it (a zod schema's `parse` fits). */
export type JsonDecoder<T> = (value: unknown) => T;

/**
 * Keys are relative, '/'-separated paths (see `validateKey`). `list` uses plain string-prefix semantics
 * and yields keys in UTF-8 byte order, the order S3 lists in. Portability rule the filesystem enforces:
 * a key cannot also be the folder of other keys ('a/b' and 'a/b/c' cannot both exist).
 */
export interface BlobStore {
  /** Stores `body` at `key`, replacing any previous object; readers see the old or the new object whole. */
  put(key: string, body: BlobBody, opts?: PutOptions): Promise<void>;
  /**
   * Stores the bytes of `body` at `key` as `put` does, without holding them in memory: the filesystem writes a
   * temporary file, S3 a multipart upload in parts of `STREAM_PART_BYTES` (one PUT when the body is smaller).
   * Returns the number of bytes stored.
   */
  putStream(key: string, body: AsyncIterable<Uint8Array | string>, opts?: PutOptions): Promise<number>;
  /** Throws `BlobNotFoundError` when there is no object at `key`. */
  get(key: string): Promise<Uint8Array>;
  /** Size (and S3's ETag) of the object; throws `BlobNotFoundError` when it is absent. */
  stat(key: string): Promise<BlobStat>;
  /** Bytes [start, end) of the object (end is clamped to its size); throws `BlobNotFoundError` when it is absent. */
  getRange(key: string, start: number, end: number): Promise<Uint8Array>;
  /** Opens the object for streaming; throws `BlobNotFoundError` before returning when it is absent. */
  getStream(key: string): Promise<Readable>;
  exists(key: string): Promise<boolean>;
  /** Every key starting with `prefix` ('' for all), sorted, fetched page by page as iteration proceeds. */
  list(prefix: string): AsyncIterable<string>;
  /** Removes the object; deleting an absent key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Writes only when nothing is stored at `key`; true when this call wrote it. Atomic: of concurrent
   * callers (threads, processes, machines) exactly one gets true, and its body is the one stored.
   */
  putIfAbsent(key: string, body: BlobBody, opts?: PutOptions): Promise<boolean>;
  /** Parses the object as JSON (errors name the key); `decode` validates and types the value. */
  getJson<T = unknown>(key: string, decode?: JsonDecoder<T>): Promise<T>;
  putJson(key: string, value: unknown): Promise<void>;
  /** Releases connections; the store must not be used afterwards. */
  close(): Promise<void>;
}

/** Base of every blob store error; `retryable` tells callers (activities) whether trying again can help. */
export class BlobStoreError extends Error {
  readonly retryable: boolean;

  constructor(message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retryable = options.retryable ?? false;
  }
}

export class BlobNotFoundError extends BlobStoreError {
  constructor(
    readonly key: string,
    where: string,
  ) {
    super(`no blob at key '${key}' in ${where}`);
  }
}

export class InvalidBlobKeyError extends BlobStoreError {
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`invalid blob key ${JSON.stringify(key)}: ${reason}`);
  }
}

/** The stored bytes are not what the caller asked for (bad JSON, or rejected by the decoder). */
export class BlobContentError extends BlobStoreError {
  constructor(
    readonly key: string,
    reason: string,
    cause?: unknown,
  ) {
    super(`blob at key '${key}' ${reason}`, { cause });
  }
}

/** On the filesystem a key cannot be both an object and the folder of other objects. */
export class BlobKeyConflictError extends BlobStoreError {
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`cannot store blob at key '${key}': ${reason}`);
  }
}

/** Wrong settings: a missing bucket, rejected credentials, a malformed store configuration. */
export class BlobStoreConfigError extends BlobStoreError {}

/** The backend could not be reached or failed transiently; the same call may succeed later. */
export class BlobStoreUnavailableError extends BlobStoreError {
  constructor(message: string, cause?: unknown) {
    super(message, { retryable: true, cause });
  }
}

export const MAX_KEY_BYTES = 1024;
/** Longest file name most filesystems accept; applied everywhere so keys stay portable between stores. */
export const MAX_SEGMENT_BYTES = 255;
/** File names of in-progress writes in the filesystem store start with this; keys may not. */
export const RESERVED_SEGMENT_PREFIX = '.partial-';

// C0 controls, DEL and C1 controls.
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/u;
// With the `u` flag a surrogate class only matches unpaired halves, which UTF-8 cannot encode.
const LONE_SURROGATE = /[\ud800-\udfff]/u;
const WINDOWS_DRIVE = /^[A-Za-z]:$/;

/** Why `key` is not a valid blob key, or undefined when it is. */
export function keyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string') return `expected a string, got ${typeof key}`;
  if (key.length === 0) return 'must not be empty';
  if (LONE_SURROGATE.test(key)) return 'contains an unpaired UTF-16 surrogate (not valid Unicode)';
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) return `is ${bytes} bytes in UTF-8; at most ${MAX_KEY_BYTES} are allowed`;
  if (key.startsWith('/')) return "must be relative (no leading '/')";
  if (key.includes('\\')) return "must not contain a backslash; separate segments with '/'";
  const control = CONTROL_CHARACTER.exec(key);
  if (control) {
    const code = control[0].codePointAt(0) ?? 0;
    return `contains control character U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  }
  const segments = key.split('/');
  if (WINDOWS_DRIVE.test(segments[0])) return `must be relative (first segment '${segments[0]}' is a drive)`;
  for (const [index, segment] of segments.entries()) {
    if (segment.length === 0) {
      return index === segments.length - 1
        ? "must not end with '/'"
        : "must not contain an empty segment ('//')";
    }
    if (segment === '.' || segment === '..') return `must not contain a '${segment}' segment`;
    if (segment.startsWith(RESERVED_SEGMENT_PREFIX)) {
      return `segment '${segment}' starts with '${RESERVED_SEGMENT_PREFIX}', reserved for in-progress writes`;
    }
    const segmentBytes = Buffer.byteLength(segment, 'utf8');
    if (segmentBytes > MAX_SEGMENT_BYTES) {
      return `has a segment of ${segmentBytes} bytes in UTF-8; at most ${MAX_SEGMENT_BYTES} are allowed`;
    }
  }
  return undefined;
}

/**
 * Throws `InvalidBlobKeyError` unless `key` is non-empty, at most 1024 bytes of UTF-8, relative,
 * made of non-empty '/'-separated segments of at most 255 bytes, none '.' or '..' or reserved,
 * with no backslash and no control character.
 */
export function validateKey(key: string): void {
  const problem = keyProblem(key);
  if (problem !== undefined) throw new InvalidBlobKeyError(key, problem);
}

/** A list prefix is '' (everything), a valid key, or a valid key followed by '/'. */
export function validatePrefix(prefix: string): void {
  if (prefix === '') return;
  const problem = keyProblem(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  if (problem !== undefined) throw new InvalidBlobKeyError(prefix, `invalid as a list prefix: ${problem}`);
}

export function bodyBytes(body: BlobBody): Uint8Array {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return body;
  throw new TypeError(`blob body must be a Uint8Array or a string, got ${typeof body}`);
}

/** Byte offsets of a range read: integers with 0 ≤ start ≤ end. */
export function checkRange(start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range [${start}, ${end}): expected integers with 0 ≤ start ≤ end`);
  }
}

/** Orders keys by their UTF-8 bytes, as S3 does (UTF-16 order differs above U+FFFF). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Shared behaviour of every implementation: the JSON helpers, written once over get and put. */
export abstract class AbstractBlobStore implements BlobStore {
  abstract put(key: string, body: BlobBody, opts?: PutOptions): Promise<void>;
  abstract putStream(key: string, body: AsyncIterable<Uint8Array | string>, opts?: PutOptions): Promise<number>;
  abstract get(key: string): Promise<Uint8Array>;
  abstract stat(key: string): Promise<BlobStat>;
  abstract getRange(key: string, start: number, end: number): Promise<Uint8Array>;
  abstract getStream(key: string): Promise<Readable>;
  abstract exists(key: string): Promise<boolean>;
  abstract list(prefix: string): AsyncIterable<string>;
  abstract delete(key: string): Promise<void>;
  abstract putIfAbsent(key: string, body: BlobBody, opts?: PutOptions): Promise<boolean>;
  abstract close(): Promise<void>;

  async getJson<T = unknown>(key: string, decode?: JsonDecoder<T>): Promise<T> {
    const text = Buffer.from(await this.get(key)).toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new BlobContentError(key, `is not valid JSON: ${(error as Error).message}`, error);
    }
    if (decode === undefined) return value as T;
    try {
      return decode(value);
    } catch (error) {
      throw new BlobContentError(
        key,
        `holds JSON of an unexpected shape: ${(error as Error).message}`,
        error,
      );
    }
  }

  async putJson(key: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value);
    if (text === undefined) {
      throw new TypeError(`cannot store ${typeof value} as JSON at key '${key}'`);
    }
    await this.put(key, text, { contentType: 'application/json' });
  }
}
