/**
 * The bundled model folder: rebuilt bit for bit by scripts/build-model.ts, small enough to commit,
 * laid out as a Hugging Face Qwen2 checkpoint, and served by the runtime.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { buildTinyModel, TINY_SHAPE } from '../../../scripts/build-model';
import { loadModelFolder } from '../../../lib/model/folder';
import { buildDecoderOnnx } from '../../../lib/model-build/onnx-builder';
import { loadPolicy } from '../../../lib/model/policy';
import { qwen2TensorSpecs } from '../../../lib/model-build/qwen2-weights';
import { parseSafetensors } from '../../../lib/model/safetensors';
import { temporaryFolder } from './helpers';

const BUNDLED = path.join(__dirname, '..', '..', '..', 'models', 'rememr1-tiny');

async function listFiles(folder: string, prefix = ''): Promise<string[]> {
  const entries = await fs.readdir(path.join(folder, prefix), { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((entry) =>
      entry.isDirectory()
        ? listFiles(folder, path.join(prefix, entry.name))
        : [path.join(prefix, entry.name)],
    ),
  );
  return nested.flat().sort();
}

describe('bundled model', () => {
  it('is rebuilt byte for byte by the build script', async () => {
    const rebuilt = await temporaryFolder('bundled');
    await buildTinyModel(rebuilt);
    const files = await listFiles(BUNDLED);
    expect(await listFiles(rebuilt)).toEqual(files);
    for (const file of files) {
      const [a, b] = await Promise.all([
        fs.readFile(path.join(BUNDLED, file)),
        fs.readFile(path.join(rebuilt, file)),
      ]);
      expect({ file, same: a.equals(b) }).toEqual({ file, same: true });
    }
  });

  it('is at most 10 MB and holds Hugging Face Qwen2 tensor names, with the ONNX graph built from them', async () => {
    const files = await listFiles(BUNDLED);
    const sizes = await Promise.all(
      files.map(async (file) => (await fs.stat(path.join(BUNDLED, file))).size),
    );
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(10 * 1024 * 1024);
    const weights = parseSafetensors(
      await fs.readFile(path.join(BUNDLED, 'model.safetensors')),
      'model.safetensors',
    );
    expect(weights.names().sort()).toEqual(
      qwen2TensorSpecs(TINY_SHAPE)
        .map((spec) => spec.name)
        .sort(),
    );
    expect(weights.names()).toContain('model.layers.1.self_attn.q_proj.weight');
    const onnx = await fs.readFile(path.join(BUNDLED, 'onnx', 'model.onnx'));
    expect(Buffer.from(buildDecoderOnnx(TINY_SHAPE, weights).model).equals(onnx)).toBe(true);
  });

  it('generates with the runtime', async () => {
    const policy = await loadPolicy(BUNDLED, { maxBatchSize: 2 });
    const result = await policy.generate({
      prompt: [{ role: 'user', content: 'Who founded the museum?' }],
      maxNewTokens: 16,
      temperature: 0.7,
      topP: 0.95,
      seed: 'bundled',
    });
    // The model folder's end-of-sequence ids: generation ends at the first one, or after exactly 16 tokens.
    const eos = new Set((await loadModelFolder(BUNDLED)).eosTokenIds);
    expect(eos.size).toBeGreaterThan(0);
    const firstEos = result.tokenIds.findIndex((id) => eos.has(id));
    if (result.finishReason === 'eos') {
      expect(firstEos).toBe(result.tokenIds.length - 1);
      expect(result.tokenIds.length).toBeLessThanOrEqual(16);
    } else {
      expect(result.finishReason).toBe('length');
      expect(firstEos).toBe(-1);
      expect(result.tokenIds).toHaveLength(16);
    }
    expect(result.logProbs).toHaveLength(result.tokenIds.length);
    expect(result.logProbs.every((value) => Number.isFinite(value) && value <= 0)).toBe(true);
    await policy.dispose();
  });
});
