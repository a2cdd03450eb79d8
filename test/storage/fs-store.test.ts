import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  BlobKeyConflictError,
  InvalidBlobKeyError,
  RESERVED_SEGMENT_PREFIX,
} from '../../lib/storage/blob-store';
import { FsBlobStore } from '../../lib/storage/fs-store';
import { collect, describeBlobStoreContract } from './contract';

async function makeRoot(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'rememr1-fs-store-'));
}

/** Every file and folder under `root`, as '/'-separated paths (folders end with '/'). */
async function tree(root: string, folder = ''): Promise<string[]> {
  const entries = await fsp.readdir(path.join(root, folder), { withFileTypes: true });
  const found: string[] = [];
  for (const entry of entries) {
    const relative = folder + entry.name;
    if (entry.isDirectory()) found.push(`${relative}/`, ...(await tree(root, `${relative}/`)));
    else found.push(relative);
  }
  return found.sort();
}

describeBlobStoreContract('filesystem', async () => {
  const root = await makeRoot();
  return {
    store: new FsBlobStore({ root: path.join(root, 'store') }),
    dispose: () => fsp.rm(root, { recursive: true, force: true }),
  };
});

describe('FsBlobStore on disk', () => {
  let root: string;
  let store: FsBlobStore;

  beforeEach(async () => {
    root = await makeRoot();
    store = new FsBlobStore({ root });
  });

  afterEach(async () => {
    await fsp.rm(root, { recursive: true, force: true });
  });

  test('stores one plain file per key', async () => {
    await store.put('runs/r1/result.json', '{"ok":true}');
    expect(await fsp.readFile(path.join(root, 'runs', 'r1', 'result.json'), 'utf8')).toBe('{"ok":true}');
  });

  test('leaves no temporary files behind, whoever wins or loses', async () => {
    await Promise.all(Array.from({ length: 30 }, (_, i) => store.put(`t/k${i % 5}`, `v${i}`)));
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.putIfAbsent('t/claimed', `c${i}`)));
    expect((await tree(root)).filter((name) => name.includes(RESERVED_SEGMENT_PREFIX))).toEqual([]);
  });

  test('a temporary file left by a crashed writer is invisible to list and get', async () => {
    await store.put('ep/memory/0001.json', 'kept');
    const crashed = `${RESERVED_SEGMENT_PREFIX}0123456789abcdef`;
    await fsp.writeFile(path.join(root, 'ep', 'memory', crashed), 'half a wri');
    await fsp.mkdir(path.join(root, 'ep', `${RESERVED_SEGMENT_PREFIX}fedcba9876543210`));

    expect(await collect(store.list(''))).toEqual(['ep/memory/0001.json']);
    await expect(store.get(`ep/memory/${crashed}`)).rejects.toThrow(InvalidBlobKeyError);
    await store.put('ep/memory/0002.json', 'next');
    expect(await collect(store.list('ep/memory/'))).toEqual(['ep/memory/0001.json', 'ep/memory/0002.json']);
  });

  test('a key cannot be both an object and the folder of other keys', async () => {
    await store.put('a/b', 'object');
    await expect(store.put('a/b/c', 'x')).rejects.toThrow(BlobKeyConflictError);
    await expect(store.putIfAbsent('a/b/c', 'x')).rejects.toThrow(BlobKeyConflictError);
    await store.put('d/e/f', 'x');
    await expect(store.put('d/e', 'x')).rejects.toThrow(/already the folder of other keys/);
    await expect(store.putIfAbsent('d/e', 'x')).rejects.toThrow(BlobKeyConflictError);
    expect(await collect(store.list(''))).toEqual(['a/b', 'd/e/f']);
  });

  test('delete prunes folders it leaves empty, but not the root', async () => {
    await store.put('runs/r1/episodes/e1/memory/0001.json', 'm');
    await store.put('runs/r1/other.json', 'o');
    await store.delete('runs/r1/episodes/e1/memory/0001.json');
    expect(await tree(root)).toEqual(['runs/', 'runs/r1/', 'runs/r1/other.json']);
    await store.delete('runs/r1/other.json');
    expect(await tree(root)).toEqual([]);
  });

  test('writes racing deletes that prune the same folders all land', async () => {
    for (let round = 0; round < 100; round++) {
      await store.put('r/a/b/old', 'old');
      await Promise.all([store.delete('r/a/b/old'), store.put(`r/a/b/new-${round}`, 'new')]);
      expect(await collect(store.list('r/'))).toEqual([`r/a/b/new-${round}`]);
      await store.delete(`r/a/b/new-${round}`);
    }
  });

  test('a missing root reads as an empty store', async () => {
    const absent = new FsBlobStore({ root: path.join(root, 'not-created') });
    expect(await collect(absent.list(''))).toEqual([]);
    expect(await absent.exists('a')).toBe(false);
    await absent.put('a', 'created on first write');
    expect(await collect(absent.list(''))).toEqual(['a']);
  });

  test('putIfAbsent is atomic across processes', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `claims/k${i}`);
    const racerScript = path.join(__dirname, 'fixtures', 'put-if-absent-racer.ts');
    const racers = ['p0', 'p1', 'p2', 'p3'].map((name) => {
      const child = spawn(process.execPath, ['--import', 'tsx', racerScript, root, name, ...keys], {
        cwd: path.join(__dirname, '..', '..'),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const ready = new Promise<void>((resolve, reject) => {
        child.stdout.on('data', () => stdout.includes('ready\n') && resolve());
        child.once('exit', () => reject(new Error(`racer ${name} exited early: ${stderr}`)));
      });
      const finished = new Promise<string[]>((resolve, reject) => {
        child.once('exit', (code) => {
          if (code !== 0) reject(new Error(`racer ${name} failed (${code}): ${stderr}`));
          else resolve(JSON.parse(stdout.split('\n')[1]) as string[]);
        });
      });
      return { name, child, ready, finished };
    });
    await Promise.all(racers.map((racer) => racer.ready));
    for (const racer of racers) racer.child.stdin.write('go\n');
    const wins = await Promise.all(racers.map((racer) => racer.finished));

    for (const key of keys) {
      const winners = racers.filter((_, i) => wins[i].includes(key)).map((racer) => racer.name);
      expect(winners).toHaveLength(1);
      expect(Buffer.from(await store.get(key)).toString()).toBe(`${winners[0]}:${key}`);
    }
  });
});
