import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { completeModelFolder } from '../../../lib/model-build/weights-only-folder';
import { loadModelFolder } from '../../../lib/model';
import { smallModelFolder, temporaryFolder } from './helpers';

describe('weights-only model folders', () => {
  it('rebuilds the ONNX graph byte for byte from model.safetensors, once, into the cache', async () => {
    const full = await smallModelFolder('weights-only-full');
    const weightsOnly = await temporaryFolder('weights-only');
    await fs.cp(full, weightsOnly, { recursive: true });
    await fs.rm(path.join(weightsOnly, 'onnx'), { recursive: true });
    const cache = await temporaryFolder('weights-only-cache');

    const completed = await completeModelFolder(weightsOnly, cache);
    expect(path.dirname(completed)).toBe(cache);
    expect(await fs.readFile(path.join(completed, 'onnx', 'model.onnx'))).toEqual(
      await fs.readFile(path.join(full, 'onnx', 'model.onnx')),
    );
    await expect(loadModelFolder(completed)).resolves.toMatchObject({ folder: completed });

    const built = (await fs.stat(path.join(completed, 'onnx', 'model.onnx'))).mtimeMs;
    await expect(completeModelFolder(weightsOnly, cache)).resolves.toBe(completed);
    expect((await fs.stat(path.join(completed, 'onnx', 'model.onnx'))).mtimeMs).toBe(built);
    expect(await fs.readdir(cache)).toEqual([path.basename(completed)]);

    // Another file of the folder changed: another copy, not the stale one.
    await fs.appendFile(path.join(weightsOnly, 'generation_config.json'), '\n');
    const recompleted = await completeModelFolder(weightsOnly, cache);
    expect(recompleted).not.toBe(completed);
    expect(await fs.readFile(path.join(recompleted, 'generation_config.json'), 'utf8')).toMatch(/\n\n$/);
  });

  it('leaves a complete folder where it is', async () => {
    const full = await smallModelFolder('weights-only-complete');
    await expect(completeModelFolder(full, await temporaryFolder('unused-cache'))).resolves.toBe(full);
  });

  it('names the missing weights file in one line', async () => {
    const empty = await temporaryFolder('weights-only-empty');
    await expect(completeModelFolder(empty, await temporaryFolder('cache'))).rejects.toThrow(
      `${path.join(empty, 'model.safetensors')}: is missing; a weights-only model folder needs config.json and model.safetensors to rebuild its ONNX graph`,
    );
  });
});
