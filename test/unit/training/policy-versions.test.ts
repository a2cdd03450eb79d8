/**
 * Policy versions in a real filesystem blob store: the bundled model's weights exported as a version and
 * served through the cache give exactly the tokens of the bundled folder; the manifest is written last;
 * missing and corrupt versions are refused with clear errors; the cache shares loads, verifies its local
 * copies and keeps at most `maxLoaded` versions loaded.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseModelConfig, type ModelConfig } from '../../../lib/model/config';
import type { GenerateRequest } from '../../../lib/model/generate';
import { loadPolicy, type Policy } from '../../../lib/model/policy';
import { collectQwen2Weights } from '../../../lib/model-build/qwen2-weights';
import { parseSafetensors } from '../../../lib/model/safetensors';
import { FsBlobStore } from '../../../lib/storage/fs-store';
import { policyFileKey } from '../../../lib/storage/keys';
import {
  PolicyVersionCorruptError,
  PolicyVersionNotFoundError,
  StoredContentConflictError,
} from '../../../lib/training/checkpoint-errors';
import {
  PolicyVersionCache,
  PolicyVersionCacheClosedError,
  exportPolicyVersion,
} from '../../../lib/training/policy-versions';

const BUNDLED = path.join(__dirname, '..', '..', '..', 'models', 'rememr1-tiny');

const PROMPTS: GenerateRequest[] = [
  {
    prompt: [{ role: 'user', content: 'Who founded the museum?' }],
    maxNewTokens: 24,
    temperature: 0,
    seed: 1,
  },
  { prompt: 'The capital of Northland is', maxNewTokens: 24, temperature: 0, seed: 2 },
  // Sampled too: the same seed must give the same tokens and log-probs.
  { prompt: 'Memory: the museum', maxNewTokens: 16, temperature: 0.7, topP: 0.95, seed: 'sampled' },
];

let config: ModelConfig;
let weights: Map<string, Float32Array>;
let root: string;
let store: FsBlobStore;
let cacheDir: string;
const caches: PolicyVersionCache[] = [];

function newCache(maxLoaded: number): PolicyVersionCache {
  const cache = new PolicyVersionCache({ store, cacheDir, maxLoaded, loadOptions: { maxBatchSize: 4 } });
  caches.push(cache);
  return cache;
}

beforeAll(async () => {
  config = parseModelConfig(JSON.parse(await fs.readFile(path.join(BUNDLED, 'config.json'), 'utf8')));
  const file = parseSafetensors(
    await fs.readFile(path.join(BUNDLED, 'model.safetensors')),
    'model.safetensors',
  );
  weights = collectQwen2Weights(config, file, 'the bundled model');
});

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rememr1-policy-versions-'));
  store = new FsBlobStore({ root: path.join(root, 'blobs') });
  cacheDir = path.join(root, 'cache');
});

afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
  await store.close();
  await fs.rm(root, { recursive: true, force: true });
});

describe('exportPolicyVersion', () => {
  it('stores the model folder flat, the manifest last, and the ONNX graph the bundled folder has', async () => {
    const exported = await exportPolicyVersion(store, 'v1', { config, weights, tokenizerFolder: BUNDLED });
    expect(exported.written).toBe(true);
    expect(exported.manifest.files.map((file) => [file.name, file.path])).toEqual([
      ['config.json', 'config.json'],
      ['tokenizer.json', 'tokenizer.json'],
      ['tokenizer_config.json', 'tokenizer_config.json'],
      ['generation_config.json', 'generation_config.json'],
      ['model.safetensors', 'model.safetensors'],
      ['model.onnx', 'onnx/model.onnx'],
    ]);
    const keys: string[] = [];
    for await (const key of store.list('policies/')) keys.push(key);
    expect(keys.sort()).toEqual(
      [...exported.manifest.files.map((file) => file.name), 'manifest.json']
        .map((name) => `policies/v1/${name}`)
        .sort(),
    );
    // Same weights, same builder: byte-identical to the bundled files.
    for (const [name, bundled] of [
      ['model.onnx', 'onnx/model.onnx'],
      ['model.safetensors', 'model.safetensors'],
      ['tokenizer.json', 'tokenizer.json'],
    ]) {
      const stored = Buffer.from(await store.get(policyFileKey('v1', name)));
      expect({ name, same: stored.equals(await fs.readFile(path.join(BUNDLED, bundled))) }).toEqual({
        name,
        same: true,
      });
    }
    expect(JSON.parse(Buffer.from(await store.get(policyFileKey('v1', 'config.json'))).toString())).toEqual(
      JSON.parse(await fs.readFile(path.join(BUNDLED, 'config.json'), 'utf8')),
    );
  });

  it('accepts a retried export of the same weights and refuses other weights under the same version', async () => {
    await exportPolicyVersion(store, 'v1', { config, weights, tokenizerFolder: BUNDLED });
    await expect(
      exportPolicyVersion(store, 'v1', { config, weights, tokenizerFolder: BUNDLED }),
    ).resolves.toMatchObject({ written: false });
    const changed = new Map(weights);
    const norm = (weights.get('model.norm.weight') as Float32Array).slice();
    norm[0] += 1;
    changed.set('model.norm.weight', norm);
    const attempt = exportPolicyVersion(store, 'v1', { config, weights: changed, tokenizerFolder: BUNDLED });
    await expect(attempt).rejects.toThrow(StoredContentConflictError);
    await expect(attempt).rejects.toThrow(
      /^policy version v1 is already stored with other content: model\.safetensors differs/,
    );
  });

  it('refuses weights that do not fit the config, and a folder without a tokenizer', async () => {
    const missing = new Map(weights);
    missing.delete('model.layers.1.mlp.up_proj.weight');
    await expect(
      exportPolicyVersion(store, 'bad', { config, weights: missing, tokenizerFolder: BUNDLED }),
    ).rejects.toThrow(
      'cannot export policy version bad: weights have no tensor "model.layers.1.mlp.up_proj.weight"',
    );
    await expect(
      exportPolicyVersion(store, 'bad', { config, weights, tokenizerFolder: root }),
    ).rejects.toThrow(/^cannot export a policy version: .*tokenizer\.json cannot be read/);
    expect(await store.exists(policyFileKey('bad', 'manifest.json'))).toBe(false);
  });
});

describe('PolicyVersionCache', () => {
  let bundled: Policy;

  beforeAll(async () => {
    bundled = await loadPolicy(BUNDLED, { maxBatchSize: 4 });
  });

  afterAll(async () => {
    await bundled?.dispose();
  });

  it('serves an exported version with exactly the tokens of the bundled model folder', async () => {
    await exportPolicyVersion(store, 'v1', { config, weights, tokenizerFolder: BUNDLED });
    const cache = newCache(2);
    const policy = await cache.get('v1');
    expect(policy.folder).toBe(path.join(cacheDir, 'v1'));
    expect(policy.eosTokenIds).toEqual(bundled.eosTokenIds);
    for (const request of PROMPTS) {
      const [fromVersion, fromFolder] = await Promise.all([
        policy.generate(request),
        bundled.generate(request),
      ]);
      expect(fromVersion.tokenIds.length).toBeGreaterThan(0);
      expect(fromVersion).toEqual(fromFolder);
    }
  });

  it('names a version that does not exist', async () => {
    const cache = newCache(1);
    const attempt = cache.get('v404');
    await expect(attempt).rejects.toThrow(PolicyVersionNotFoundError);
    await expect(attempt).rejects.toThrow(
      'policy version v404 does not exist in the blob store (no policies/v404/manifest.json)',
    );
    // A version whose files are there but not its manifest (an export that died) does not exist either.
    await exportPolicyVersion(store, 'v2', { config, weights, tokenizerFolder: BUNDLED });
    await store.delete(policyFileKey('v2', 'manifest.json'));
    await expect(cache.get('v2')).rejects.toThrow('policy version v2 does not exist in the blob store');
    await expect(cache.get('../x')).rejects.toThrow('invalid policy version');
    expect(cache.stats()).toMatchObject({ loaded: [], loads: 0 });
  });

  it('refuses a stored file that does not match the manifest', async () => {
    await exportPolicyVersion(store, 'v1', { config, weights, tokenizerFolder: BUNDLED });
    const key = policyFileKey('v1', 'model.onnx');
    const bytes = await store.get(key);
    await store.put(key, bytes.subarray(0, 1000));
    const attempt = newCache(1).get('v1');
    await expect(attempt).rejects.toThrow(PolicyVersionCorruptError);
    await expect(attempt).rejects.toThrow(`policy version v1 is corrupt: ${key} is 1000 bytes with sha256`);
    // Nothing half-downloaded is left under the version's name.
    expect(await fs.readdir(cacheDir)).toEqual([]);
  });

  it('shares one load between concurrent gets, and reuses a verified local copy', async () => {
    await exportPolicyVersion(store, 'v1', { config, weights, tokenizerFolder: BUNDLED });
    const first = newCache(1);
    const [a, b] = await Promise.all([first.get('v1'), first.get('v1')]);
    expect(a).toBe(b);
    expect(await first.get('v1')).toBe(a);
    expect(first.stats()).toEqual({ loaded: ['v1'], loads: 1, downloads: 1, evictions: 0 });
    await first.close();

    const second = newCache(1);
    await second.get('v1');
    expect(second.stats()).toMatchObject({ loads: 1, downloads: 0 });
    await second.close();

    // A local copy that no longer matches the manifest is fetched again.
    await fs.appendFile(path.join(cacheDir, 'v1', 'onnx', 'model.onnx'), 'x');
    const third = newCache(1);
    const policy = await third.get('v1');
    expect(third.stats()).toMatchObject({ loads: 1, downloads: 1 });
    const [fromVersion, fromFolder] = await Promise.all([
      policy.generate(PROMPTS[0]),
      bundled.generate(PROMPTS[0]),
    ]);
    expect(fromVersion).toEqual(fromFolder);
  });

  it('keeps at most maxLoaded versions loaded, least recently used out first', async () => {
    for (const version of ['v1', 'v2', 'v3'])
      await exportPolicyVersion(store, version, { config, weights, tokenizerFolder: BUNDLED });
    const cache = newCache(2);
    const v1 = await cache.get('v1');
    await cache.get('v2');
    await v1.generate(PROMPTS[1]); // v1 is now the most recently used
    await cache.get('v3');
    expect(cache.stats()).toEqual({ loaded: ['v1', 'v3'], loads: 3, downloads: 3, evictions: 1 });

    // A policy held across its eviction still answers: it loads its version again through the cache.
    const v2 = await cache.get('v2');
    expect(cache.stats()).toMatchObject({ loaded: ['v3', 'v2'], loads: 4, evictions: 2 });
    const held = await cache.get('v3');
    await cache.get('v1');
    await cache.get('v2');
    expect(cache.stats().loaded).toEqual(['v1', 'v2']);
    expect(await held.generate(PROMPTS[1])).toEqual(await bundled.generate(PROMPTS[1]));
    expect(cache.stats().loaded).toEqual(['v2', 'v3']);
    expect(cache.stats().loaded.length).toBeLessThanOrEqual(2);
    await expect(v2.generate(PROMPTS[1])).resolves.toEqual(await bundled.generate(PROMPTS[1]));
  });

  it('lets running generations finish when their version is evicted', async () => {
    for (const version of ['v1', 'v2'])
      await exportPolicyVersion(store, version, { config, weights, tokenizerFolder: BUNDLED });
    const cache = newCache(1);
    const v1 = await cache.get('v1');
    let finished = false;
    const running = v1.generate({ ...PROMPTS[0], maxNewTokens: 600 }).finally(() => {
      finished = true;
    });
    await cache.get('v2');
    expect(cache.stats()).toMatchObject({ loaded: ['v2'], evictions: 1 });
    expect(finished).toBe(false); // evicted while generating
    await expect(running).resolves.toMatchObject({ finishReason: 'length' });
  });

  it('refuses gets after close', async () => {
    await exportPolicyVersion(store, 'v1', { config, weights, tokenizerFolder: BUNDLED });
    const cache = newCache(1);
    const policy = await cache.get('v1');
    await cache.close();
    await expect(cache.get('v1')).rejects.toThrow(PolicyVersionCacheClosedError);
    await expect(policy.generate(PROMPTS[1])).rejects.toThrow('this PolicyVersionCache is closed');
  });
});
