import type { BlobStore } from './blob-store';

/**
 * The record at `key` if one is stored, else `compute()`'s, stored with put-if-absent; when another attempt
 * stored one first (a retry racing a worker presumed dead), that one. So a step computed twice returns, and
 * leaves, what was stored first.
 */
export async function storedOrComputed<T>(store: BlobStore, key: string, compute: () => Promise<T>): Promise<T> {
  if (await store.exists(key)) return store.getJson<T>(key);
  const value = await compute();
  return (await store.putIfAbsent(key, JSON.stringify(value))) ? value : store.getJson<T>(key);
}
