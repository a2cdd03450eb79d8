import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FsBlobStore } from '../../lib/storage/fs-store';
import { storedOrComputed } from '../../lib/storage/stored-or-computed';

describe('storedOrComputed', () => {
  let root: string;
  let store: FsBlobStore;
  beforeEach(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'rememr1-stored-or-computed-'));
    store = new FsBlobStore({ root });
  });
  afterEach(async () => {
    await store.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  test('computes and stores once, then reads the stored record without computing', async () => {
    const compute = jest.fn(async () => ({ step: 1, text: 'first' }));
    expect(await storedOrComputed(store, 'records/a.json', compute)).toEqual({ step: 1, text: 'first' });
    expect(await store.getJson('records/a.json')).toEqual({ step: 1, text: 'first' });
    expect(await storedOrComputed(store, 'records/a.json', compute)).toEqual({ step: 1, text: 'first' });
    expect(compute).toHaveBeenCalledTimes(1);
  });

  test('an attempt that loses the race to store returns what the winner stored', async () => {
    const value = await storedOrComputed(store, 'records/b.json', async () => {
      // Another attempt stores its record while this one computes.
      await store.putIfAbsent('records/b.json', JSON.stringify({ text: 'winner' }));
      return { text: 'loser' };
    });
    expect(value).toEqual({ text: 'winner' });
    expect(await store.getJson('records/b.json')).toEqual({ text: 'winner' });
  });
});
