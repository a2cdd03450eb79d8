/**
 * The embedded default blob store: one file per key under a root folder.
 *
 * Atomicity comes from the filesystem: a write goes to a temporary file in the destination folder, is
 * fsynced, then renamed over the key (put) or hard-linked to it (putIfAbsent, where link() fails if the
 * key exists: atomic across processes). Readers open whole inodes, so they never see half an object.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import {
  AbstractBlobStore,
  BlobKeyConflictError,
  BlobNotFoundError,
  BlobStoreConfigError,
  RESERVED_SEGMENT_PREFIX,
  bodyBytes,
  checkRange,
  compareKeys,
  validateKey,
  validatePrefix,
  type BlobBody,
  type BlobStat,
} from './blob-store';

export interface FsBlobStoreConfig {
  /** Folder holding the objects; created on the first write. */
  root: string;
}

type ErrnoError = NodeJS.ErrnoException;

function errorCode(error: unknown): string | undefined {
  return (error as ErrnoError | undefined)?.code;
}

// The key (or one of its parent folders) is missing, or a parent is a file: either way, no object.
const ABSENT_CODES = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);
// A concurrent delete may remove a folder it emptied while a write is creating it or its temporary file.
const MAX_WRITE_ATTEMPTS = 5;

export class FsBlobStore extends AbstractBlobStore {
  readonly root: string;
  private readonly rootWithSeparator: string;

  constructor(config: FsBlobStoreConfig) {
    super();
    if (typeof config.root !== 'string' || config.root.trim() === '') {
      throw new BlobStoreConfigError('filesystem blob store needs a root folder (config.root is empty)');
    }
    this.root = path.resolve(config.root);
    this.rootWithSeparator = this.root.endsWith(path.sep) ? this.root : this.root + path.sep;
  }

  override toString(): string {
    return `filesystem blob store at ${this.root}`;
  }

  async put(key: string, body: BlobBody): Promise<void> {
    validateKey(key);
    const target = this.pathOf(key);
    await this.withTempFile(key, fillWith(bodyBytes(body)), (temp) => this.replaceWith(key, temp, target));
  }

  async putStream(key: string, body: AsyncIterable<Uint8Array | string>): Promise<number> {
    validateKey(key);
    const target = this.pathOf(key);
    let written = 0;
    const fill = async (handle: fsp.FileHandle): Promise<void> => {
      for await (const chunk of body) {
        const bytes = bodyBytes(chunk);
        for (let offset = 0; offset < bytes.byteLength; ) {
          offset += (await handle.write(bytes, offset, bytes.byteLength - offset)).bytesWritten;
        }
        written += bytes.byteLength;
      }
    };
    await this.withTempFile(key, fill, (temp) => this.replaceWith(key, temp, target));
    return written;
  }

  private async replaceWith(key: string, temp: string, target: string): Promise<void> {
    try {
      await fsp.rename(temp, target);
    } catch (error) {
      // rename() onto a folder fails (EISDIR on Linux, ENOTEMPTY/EEXIST elsewhere).
      if (['EISDIR', 'ENOTEMPTY', 'EEXIST', 'EPERM'].includes(errorCode(error) ?? '')) {
        await this.throwIfFolder(key, target);
      }
      throw error;
    }
  }

  async putIfAbsent(key: string, body: BlobBody): Promise<boolean> {
    validateKey(key);
    const target = this.pathOf(key);
    return this.withTempFile(key, fillWith(bodyBytes(body)), async (temp) => {
      try {
        await fsp.link(temp, target);
        return true;
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') throw error;
        await this.throwIfFolder(key, target);
        return false;
      }
    });
  }

  async get(key: string): Promise<Uint8Array> {
    validateKey(key);
    try {
      return await fsp.readFile(this.pathOf(key));
    } catch (error) {
      throw this.absentOr(key, error);
    }
  }

  async stat(key: string): Promise<BlobStat> {
    validateKey(key);
    let stats;
    try {
      stats = await fsp.stat(this.pathOf(key));
    } catch (error) {
      throw this.absentOr(key, error);
    }
    if (!stats.isFile()) throw new BlobNotFoundError(key, this.toString());
    return { size: stats.size };
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    validateKey(key);
    checkRange(start, end);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(this.pathOf(key), 'r');
    } catch (error) {
      throw this.absentOr(key, error);
    }
    try {
      const size = (await handle.stat()).size;
      const bytes = Buffer.alloc(Math.max(0, Math.min(end, size) - start));
      let offset = 0;
      while (offset < bytes.length) {
        const { bytesRead } = await handle.read(bytes, offset, bytes.length - offset, start + offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
      }
      return bytes.subarray(0, offset);
    } catch (error) {
      throw this.absentOr(key, error);
    } finally {
      await handle.close();
    }
  }

  async getStream(key: string): Promise<Readable> {
    validateKey(key);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(this.pathOf(key), 'r');
    } catch (error) {
      throw this.absentOr(key, error);
    }
    // Opening a folder succeeds on Linux; reading it would only fail later, so answer now.
    const isFile = await handle.stat().then(
      (stats) => stats.isFile(),
      () => false,
    );
    if (!isFile) {
      await handle.close();
      throw new BlobNotFoundError(key, this.toString());
    }
    return handle.createReadStream();
  }

  async exists(key: string): Promise<boolean> {
    validateKey(key);
    try {
      return (await fsp.stat(this.pathOf(key))).isFile();
    } catch (error) {
      if (ABSENT_CODES.has(errorCode(error) ?? '')) return false;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    try {
      await fsp.unlink(this.pathOf(key));
    } catch (error) {
      // EPERM: unlink() of a folder on macOS; a folder is not an object, so there is nothing to delete.
      if (ABSENT_CODES.has(errorCode(error) ?? '') || errorCode(error) === 'EPERM') return;
      throw error;
    }
    await this.removeEmptyFolders(path.dirname(this.pathOf(key)));
  }

  list(prefix: string): AsyncIterable<string> {
    validatePrefix(prefix);
    // Start in the deepest folder the prefix names completely; deeper matches are filtered by string.
    const folderKey = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    return this.walk(folderKey, prefix);
  }

  async close(): Promise<void> {
    // Nothing to release: every operation opens and closes its own files.
  }

  private async *walk(folderKey: string, prefix: string): AsyncGenerator<string> {
    let entries;
    try {
      entries = await fsp.readdir(path.join(this.root, folderKey), { withFileTypes: true });
    } catch (error) {
      if (ABSENT_CODES.has(errorCode(error) ?? '')) return;
      throw error;
    }
    // A folder's keys all start with 'name/', so sorting folders by that string (and files by their
    // name) and walking depth-first yields every key in global byte order.
    const children = entries
      .filter((entry) => !entry.name.startsWith(RESERVED_SEGMENT_PREFIX))
      .filter((entry) => entry.isDirectory() || entry.isFile())
      .map((entry) => ({
        key: folderKey + entry.name + (entry.isDirectory() ? '/' : ''),
        isFolder: entry.isDirectory(),
      }))
      .sort((a, b) => compareKeys(a.key, b.key));
    for (const child of children) {
      if (child.isFolder) {
        if (child.key.startsWith(prefix) || prefix.startsWith(child.key)) yield* this.walk(child.key, prefix);
      } else if (child.key.startsWith(prefix)) {
        yield child.key;
      }
    }
  }

  private pathOf(key: string): string {
    const resolved = path.join(this.root, ...key.split('/'));
    // validateKey already rules out escapes; this guards the invariant should the rules ever change.
    if (!resolved.startsWith(this.rootWithSeparator)) {
      throw new Error(`blob key '${key}' resolves outside the store root ${this.root}`);
    }
    return resolved;
  }

  /** Writes durably to a fresh temporary file beside the key (`fill` writes the body), runs `commit`, then removes it. */
  private async withTempFile<T>(
    key: string,
    fill: (handle: fsp.FileHandle) => Promise<void>,
    commit: (temp: string) => Promise<T>,
  ): Promise<T> {
    const folder = path.dirname(this.pathOf(key));
    const temp = path.join(folder, RESERVED_SEGMENT_PREFIX + randomBytes(8).toString('hex'));
    await this.writeDurably(key, folder, temp, fill);
    try {
      const result = await commit(temp);
      await syncFolder(folder);
      return result;
    } finally {
      await fsp.rm(temp, { force: true });
    }
  }

  private async writeDurably(
    key: string,
    folder: string,
    temp: string,
    fill: (handle: fsp.FileHandle) => Promise<void>,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await fsp.mkdir(folder, { recursive: true });
      } catch (error) {
        if (['EEXIST', 'ENOTDIR'].includes(errorCode(error) ?? '')) {
          throw new BlobKeyConflictError(key, 'one of its parent segments is already stored as an object');
        }
        if (errorCode(error) === 'ENOENT' && attempt < MAX_WRITE_ATTEMPTS) continue;
        throw error;
      }
      let handle: fsp.FileHandle;
      try {
        handle = await fsp.open(temp, 'wx');
      } catch (error) {
        if (errorCode(error) === 'ENOENT' && attempt < MAX_WRITE_ATTEMPTS) continue;
        throw error;
      }
      try {
        await fill(handle);
        await handle.sync();
      } catch (error) {
        await handle.close();
        await fsp.rm(temp, { force: true });
        throw error;
      }
      await handle.close();
      return;
    }
  }

  private async throwIfFolder(key: string, target: string): Promise<void> {
    const stats = await fsp.lstat(target).catch(() => undefined);
    if (stats?.isDirectory()) {
      throw new BlobKeyConflictError(key, 'it is already the folder of other keys');
    }
  }

  private absentOr(key: string, error: unknown): unknown {
    return ABSENT_CODES.has(errorCode(error) ?? '') ? new BlobNotFoundError(key, this.toString()) : error;
  }

  /** Keeps the tree free of folders left empty by deletes, stopping at the root or a non-empty folder. */
  private async removeEmptyFolders(folder: string): Promise<void> {
    let current = folder;
    while (current.startsWith(this.rootWithSeparator) && current !== this.root) {
      try {
        await fsp.rmdir(current);
      } catch {
        return; // not empty (or already gone, or being written to): leave it
      }
      current = path.dirname(current);
    }
  }
}

function fillWith(bytes: Uint8Array): (handle: fsp.FileHandle) => Promise<void> {
  return async (handle) => {
    await handle.writeFile(bytes);
  };
}

/** Makes a rename or link durable; some platforms cannot fsync a folder, which is harmless there. */
async function syncFolder(folder: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(folder, 'r');
    await handle.sync();
  } catch (error) {
    if (!['EISDIR', 'EPERM', 'EINVAL', 'EBADF'].includes(errorCode(error) ?? '')) throw error;
  } finally {
    await handle?.close();
  }
}
