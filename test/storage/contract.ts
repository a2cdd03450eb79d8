/**
 * The blob store contract: every implementation runs this suite unchanged.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  BlobContentError,
  BlobNotFoundError,
  InvalidBlobKeyError,
  STREAM_PART_BYTES,
  compareKeys,
  type BlobStore,
} from '../../lib/storage/blob-store';

export interface StoreUnderTest {
  store: BlobStore;
  /** Removes everything the test stored and closes the store. */
  dispose(): Promise<void>;
}

/** Runs `task` over `items` with at most `limit` calls in flight. */
export async function mapConcurrently<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index], index);
    }
  });
  await Promise.all(runners);
  return results;
}

export async function collect(iterable: AsyncIterable<string>): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of iterable) keys.push(key);
  return keys;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

function sortedByBytes(keys: readonly string[]): string[] {
  return [...keys].sort(compareKeys);
}

export const INVALID_KEYS: readonly string[] = [
  '',
  '/absolute',
  'a//b',
  'trailing/',
  './a',
  'a/./b',
  '../escape',
  'a/../../b',
  '..',
  'back\\slash',
  'nul\u0000byte',
  'new\nline',
  'del\u007fchar',
  'C:',
  'lone\ud800surrogate',
  'a/.partial-0011223344556677',
  'x'.repeat(1025),
  `${'é'.repeat(100)}/`.repeat(6).slice(0, -1), // 1,205 bytes in 605 characters
];

export function describeBlobStoreContract(name: string, factory: () => Promise<StoreUnderTest>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let subject: StoreUnderTest | undefined;
    let store: BlobStore;

    beforeEach(async () => {
      subject = await factory();
      store = subject.store;
    });

    afterEach(async () => {
      await subject?.dispose();
      subject = undefined;
    });

    describe('round trips', () => {
      test('binary bytes, including every byte value', async () => {
        const body = Buffer.concat([
          Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
          randomBytes(4096),
        ]);
        await store.put('bin/all-bytes.bin', body);
        expect(Buffer.from(await store.get('bin/all-bytes.bin')).equals(body)).toBe(true);
      });

      test('empty bodies, as bytes and as a string', async () => {
        await store.put('empty/bytes', new Uint8Array(0));
        await store.put('empty/string', '');
        expect((await store.get('empty/bytes')).length).toBe(0);
        expect((await store.get('empty/string')).length).toBe(0);
        expect(await store.exists('empty/bytes')).toBe(true);
      });

      test('unicode keys and text bodies (stored as UTF-8)', async () => {
        const key = 'unicode/日本語/émoji-😀/ключ.txt';
        const text = 'memory: Paris — 東京 — 😀\u{10FFFF}';
        await store.put(key, text);
        expect(Buffer.from(await store.get(key)).toString('utf8')).toBe(text);
        expect(await collect(store.list('unicode/'))).toEqual([key]);
      });

      test('a 5 MB object', async () => {
        const body = randomBytes(5 * 1024 * 1024);
        await store.put('large/five-mb.bin', body);
        expect(Buffer.from(await store.get('large/five-mb.bin')).equals(body)).toBe(true);
      });

      test('overwrite replaces the whole object', async () => {
        await store.put('over/write', randomBytes(10_000));
        await store.put('over/write', 'short');
        expect(Buffer.from(await store.get('over/write')).toString()).toBe('short');
      });

      test('JSON helpers round-trip, decode and name the key on bad content', async () => {
        const value = { question: 'who?', steps: [1, 2, 3], nested: { ok: true, none: null } };
        await store.putJson('json/value.json', value);
        expect(await store.getJson('json/value.json')).toEqual(value);
        const decodeSteps = (raw: unknown): number[] => {
          const steps = (raw as { steps?: unknown }).steps;
          if (!Array.isArray(steps)) throw new Error('steps must be an array');
          return steps as number[];
        };
        expect(await store.getJson('json/value.json', decodeSteps)).toEqual([1, 2, 3]);

        await store.put('json/broken.json', '{"question": ');
        const parseFailure = store.getJson('json/broken.json');
        await expect(parseFailure).rejects.toThrow(BlobContentError);
        await expect(parseFailure).rejects.toThrow(/json\/broken\.json.*not valid JSON/);

        await store.putJson('json/wrong-shape.json', { steps: 'none' });
        await expect(store.getJson('json/wrong-shape.json', decodeSteps)).rejects.toThrow(
          /json\/wrong-shape\.json.*steps must be an array/,
        );
      });
    });

    test('streaming get yields the whole object', async () => {
      const body = randomBytes(3 * 1024 * 1024 + 17);
      await store.put('stream/body.bin', body);
      const streamed = await readAll(await store.getStream('stream/body.bin'));
      expect(streamed.equals(body)).toBe(true);
    });

    describe('streaming put, stat and ranges', () => {
      async function* chunksOf(body: Buffer, sizes: number[]): AsyncGenerator<Uint8Array> {
        let offset = 0;
        for (let i = 0; offset < body.length; i += 1) {
          const size = sizes[i % sizes.length];
          yield body.subarray(offset, offset + size);
          offset += size;
        }
      }

      test('a streamed body larger than one upload part arrives whole, and replaces what was there', async () => {
        // Odd chunk sizes, so parts are cut across chunks; more than two parts.
        const body = randomBytes(2 * STREAM_PART_BYTES + 123_457);
        await store.put('streamed/big.bin', 'old');
        expect(await store.putStream('streamed/big.bin', chunksOf(body, [1_000_003, 65_536, 7]))).toBe(body.length);
        expect(Buffer.from(await store.get('streamed/big.bin')).equals(body)).toBe(true);
        expect((await store.stat('streamed/big.bin')).size).toBe(body.length);
      });

      test('small and empty streamed bodies, strings included', async () => {
        expect(await store.putStream('streamed/small.txt', (async function* () {
          yield 'héllo ';
          yield Buffer.from('world');
        })())).toBe(Buffer.byteLength('héllo world'));
        expect(Buffer.from(await store.get('streamed/small.txt')).toString('utf8')).toBe('héllo world');
        expect(await store.putStream('streamed/empty', (async function* () {})())).toBe(0);
        expect((await store.get('streamed/empty')).length).toBe(0);
      });

      test('a failing stream stores nothing', async () => {
        const failing = (async function* () {
          yield randomBytes(1000);
          throw new Error('source went away');
        })();
        await expect(store.putStream('streamed/failed.bin', failing)).rejects.toThrow('source went away');
        expect(await store.exists('streamed/failed.bin')).toBe(false);
        expect(await collect(store.list('streamed/'))).toEqual([]);
      });

      test('stat and byte ranges', async () => {
        const body = randomBytes(10_000);
        await store.put('ranges/body.bin', body);
        expect((await store.stat('ranges/body.bin')).size).toBe(10_000);
        expect(Buffer.from(await store.getRange('ranges/body.bin', 100, 4_196)).equals(body.subarray(100, 4_196))).toBe(true);
        expect(Buffer.from(await store.getRange('ranges/body.bin', 9_990, 20_000)).equals(body.subarray(9_990))).toBe(true);
        expect((await store.getRange('ranges/body.bin', 10_000, 10_010)).length).toBe(0);
        expect((await store.getRange('ranges/body.bin', 5, 5)).length).toBe(0);
        await expect(store.stat('ranges/absent')).rejects.toThrow(BlobNotFoundError);
        await expect(store.getRange('ranges/absent', 0, 10)).rejects.toThrow(BlobNotFoundError);
        await expect(store.getRange('ranges/body.bin', 10, 5)).rejects.toThrow(RangeError);
      });
    });

    test('exists tells objects from absent keys and from folders of other keys', async () => {
      expect(await store.exists('present/object')).toBe(false);
      await store.put('present/object', 'x');
      expect(await store.exists('present/object')).toBe(true);
      expect(await store.exists('present')).toBe(false);
      expect(await store.exists('present/obj')).toBe(false);
    });

    describe('list', () => {
      // Shares prefixes in every way that matters: '.', '-' and 'c' sort around '/', and U+FF61 vs
      // U+1F600 sorts one way in UTF-8 (S3's order) and the other way in UTF-16.
      const keys = [
        'a/b.json',
        'a/b/c.json',
        'a/b/d/e.json',
        'a/b-c',
        'a/bc/d',
        'a/ba',
        'a/a',
        'b',
        'ba/x',
        'x/\uff61',
        'x/\u{1f600}',
        'x/z',
      ];

      beforeEach(async () => {
        await Promise.all(keys.map((key) => store.put(key, key)));
      });

      test('everything, sorted by UTF-8 bytes', async () => {
        const listed = await collect(store.list(''));
        expect(listed).toEqual(sortedByBytes(keys));
        expect(listed.indexOf('x/\uff61')).toBeLessThan(listed.indexOf('x/\u{1f600}'));
      });

      test('string-prefix semantics, inside and across folders', async () => {
        expect(await collect(store.list('a/b'))).toEqual(
          sortedByBytes(['a/b.json', 'a/b/c.json', 'a/b/d/e.json', 'a/b-c', 'a/bc/d', 'a/ba']),
        );
        expect(await collect(store.list('a/b/'))).toEqual(['a/b/c.json', 'a/b/d/e.json']);
        expect(await collect(store.list('b'))).toEqual(['b', 'ba/x']);
        expect(await collect(store.list('a/b/c.json'))).toEqual(['a/b/c.json']);
        expect(await collect(store.list('nothing/here/'))).toEqual([]);
        expect(await collect(store.list('a/bz'))).toEqual([]);
      });

      test('deleted keys disappear from listings', async () => {
        await store.delete('a/b/d/e.json');
        await store.delete('b');
        expect(await collect(store.list(''))).toEqual(
          sortedByBytes(keys.filter((k) => k !== 'b' && k !== 'a/b/d/e.json')),
        );
      });
    });

    test('list pages through 1,100 keys written concurrently', async () => {
      const keys = Array.from({ length: 1100 }, (_, i) => `many/k${i}`);
      await mapConcurrently(keys, 32, (key) => store.put(key, key));
      await store.put('many-sibling', 'outside the folder');
      const listed = await collect(store.list('many/'));
      expect(listed).toHaveLength(1100);
      expect(listed).toEqual(sortedByBytes(keys));
      // k10, k100–k109, k1000–k1099
      expect(await collect(store.list('many/k10'))).toHaveLength(111);
    });

    test('delete removes the object and is idempotent', async () => {
      await store.put('del/one', '1');
      await store.put('del/two', '2');
      await store.delete('del/one');
      expect(await store.exists('del/one')).toBe(false);
      await expect(store.get('del/one')).rejects.toThrow(BlobNotFoundError);
      await store.delete('del/one');
      await store.delete('del/never-written');
      expect(Buffer.from(await store.get('del/two')).toString()).toBe('2');
      expect(await collect(store.list('del/'))).toEqual(['del/two']);
    });

    describe('putIfAbsent', () => {
      test('writes once, then leaves the object alone', async () => {
        expect(await store.putIfAbsent('once/key', 'first')).toBe(true);
        expect(await store.putIfAbsent('once/key', 'second')).toBe(false);
        expect(Buffer.from(await store.get('once/key')).toString()).toBe('first');
        await store.delete('once/key');
        expect(await store.putIfAbsent('once/key', 'after delete')).toBe(true);
      });

      test('20 concurrent callers: exactly one wins and its body is stored', async () => {
        for (const round of [0, 1, 2]) {
          const key = `race/round-${round}`;
          const bodies = Array.from({ length: 20 }, (_, i) =>
            Buffer.concat([Buffer.from(`caller ${i};`), randomBytes(64 * 1024)]),
          );
          const outcomes = await Promise.all(bodies.map((body) => store.putIfAbsent(key, body)));
          const winners = outcomes.flatMap((won, i) => (won ? [i] : []));
          expect(winners).toHaveLength(1);
          expect(Buffer.from(await store.get(key)).equals(bodies[winners[0]])).toBe(true);
        }
      });
    });

    test('invalid keys are rejected by every operation, naming the key', async () => {
      for (const key of INVALID_KEYS) {
        const attempts: Array<() => Promise<unknown>> = [
          () => store.put(key, 'x'),
          () => store.get(key),
          () => store.getStream(key),
          () => store.exists(key),
          () => store.delete(key),
          () => store.putIfAbsent(key, 'x'),
          () => store.getJson(key),
          () => store.putJson(key, {}),
        ];
        for (const attempt of attempts) {
          const failure = (async () => attempt())();
          await expect(failure).rejects.toThrow(InvalidBlobKeyError);
          await expect(failure).rejects.toMatchObject({ key });
        }
      }
      for (const prefix of ['/abs', 'a//', '../x/', 'a\\b', 'tab\t']) {
        await expect((async () => collect(store.list(prefix)))()).rejects.toThrow(InvalidBlobKeyError);
      }
      expect(await collect(store.list(''))).toEqual([]);
    });

    test('absent keys raise BlobNotFoundError naming the key', async () => {
      await store.put('folder/child', 'x');
      for (const key of ['missing/key.json', 'folder']) {
        for (const read of [() => store.get(key), () => store.getStream(key), () => store.getJson(key)]) {
          const failure = read();
          await expect(failure).rejects.toThrow(BlobNotFoundError);
          await expect(failure).rejects.toMatchObject({ key, message: expect.stringContaining(key) });
        }
      }
    });

    test('atomic overwrites: a polling reader only ever sees whole versions', async () => {
      const size = 2 * 1024 * 1024;
      const versions = Array.from({ length: 6 }, (_, v) => {
        const body = Buffer.alloc(size, v + 1);
        body.write(`version ${v}`, 0);
        return body;
      });
      const key = 'atomic/object.bin';
      await store.put(key, versions[0]);

      let writing = true;
      const writer = (async () => {
        try {
          for (let i = 1; i <= 24; i++) await store.put(key, versions[i % versions.length]);
        } finally {
          writing = false;
        }
      })();
      const torn: string[] = [];
      let reads = 0;
      const reader = (async () => {
        while (writing) {
          const bytes = Buffer.from(
            reads % 4 === 3 ? await readAll(await store.getStream(key)) : await store.get(key),
          );
          reads++;
          if (!versions.some((version) => version.equals(bytes))) {
            torn.push(
              `read ${reads}: ${bytes.length} bytes starting ${JSON.stringify(bytes.subarray(0, 12).toString())}`,
            );
          }
        }
      })();
      await Promise.all([writer, reader]);
      expect(torn).toEqual([]);
      // The check only means something if reads overlapped the writes.
      expect(reads).toBeGreaterThanOrEqual(3);
    });
  });
}
