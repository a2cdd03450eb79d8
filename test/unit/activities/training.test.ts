/** The trainer's activities refuse a model folder they cannot read, once and with one line (never a retry loop). */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { createTrainerActivities } from '../../../activities/training';
import { FsBlobStore } from '../../../lib/storage';

const BUNDLED = path.join(__dirname, '..', '..', '..', 'models', 'rememr1-tiny');

async function folderWith(change: (folder: string) => Promise<void>): Promise<string> {
  const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'rememr1-publish-'));
  await fs.cp(BUNDLED, folder, { recursive: true });
  await change(folder);
  return folder;
}

it.each([
  [
    'without model.safetensors',
    (folder: string) => fs.rm(path.join(folder, 'model.safetensors')),
    /model\.safetensors: is missing/,
  ],
  [
    'with a truncated model.safetensors',
    (folder: string) => fs.truncate(path.join(folder, 'model.safetensors'), 1000),
    /model\.safetensors/,
  ],
])('refuses to publish a folder %s, without retrying', async (_label, change, message) => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'rememr1-publish-store-'));
  const activities = createTrainerActivities({
    store: new FsBlobStore({ root }),
    cacheDir: path.join(root, 'cache'),
  });
  const failure = await activities
    .publishPolicy(await folderWith(change), 'v1')
    .catch((error: unknown) => error);
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect(failure).toMatchObject({ nonRetryable: true, message: expect.stringMatching(message) });
  await activities.close();
});
