/**
 * Trainer checkpoints in a real filesystem blob store: bit-identical round trips, the manifest written
 * last (no manifest, no checkpoint), corruption and other architectures refused with errors that name
 * the file or the field, idempotent retries, and the latest complete step.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { modelConfigToJson, parseModelConfig, type ModelConfig } from '../../../lib/model/config';
import { randomQwen2Weights } from '../../../lib/model-build/qwen2-weights';
import type { BlobBody, BlobStore, PutOptions } from '../../../lib/storage/blob-store';
import { FsBlobStore } from '../../../lib/storage/fs-store';
import { checkpointFileKey } from '../../../lib/storage/keys';
import {
  CheckpointCorruptError,
  CheckpointMismatchError,
  CheckpointNotFoundError,
  StoredContentConflictError,
  StoredModelInputError,
} from '../../../lib/training/checkpoint-errors';
import {
  architectureOf,
  checkpointConfigHash,
  latestCheckpointStep,
  readCheckpoint,
  weightsDigest,
  writeCheckpoint,
  type TrainerCheckpoint,
} from '../../../lib/training/checkpoint';
import { smallSpec } from '../model/helpers';

const RUN = 'train-1';
const TRAINING = { learningRate: 1e-5, clipEpsilon: 0.2, klBeta: 0.001 };

function configOf(overrides: Parameters<typeof smallSpec>[0] = {}): ModelConfig {
  return parseModelConfig(
    modelConfigToJson({
      ...smallSpec(overrides),
      maxPositionEmbeddings: 4096,
      bosTokenId: null,
      eosTokenIds: [3, 2],
      padTokenId: 2,
    }),
  );
}

/** Moments derived from the weights, so every tensor is distinct and non-trivial. */
function moments(weights: Map<string, Float32Array>, scale: number): Map<string, Float32Array> {
  return new Map([...weights].map(([name, values]) => [name, values.map((value) => value * scale + 1e-7)]));
}

function checkpointAt(step: number, seed = 'ckpt', config = configOf()): TrainerCheckpoint {
  const weights = randomQwen2Weights(config, `${seed}-${step}`);
  // Values a lossy path would not carry: a negative zero, a NaN payload, subnormals, extremes.
  const embedding = weights.get('model.embed_tokens.weight') as Float32Array;
  embedding[0] = -0;
  new DataView(embedding.buffer).setUint32(4, 0x7fc01234, true);
  embedding[2] = 1e-45;
  embedding[3] = 3.4028234663852886e38;
  return {
    step,
    weights,
    optimizer: { step, firstMoment: moments(weights, 0.1), secondMoment: moments(weights, 0.001) },
    modelConfig: config,
    configHash: checkpointConfigHash(config, TRAINING),
    extra: {
      rng: { seed: 'abc', draws: 12345 },
      progress: { update: step, miniBatch: 0 },
      metrics: [0.5, -1.25],
    },
  };
}

let root: string;
let store: FsBlobStore;

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rememr1-checkpoint-'));
  store = new FsBlobStore({ root });
});

afterEach(async () => {
  await store.close();
  await fs.rm(root, { recursive: true, force: true });
});

const expectation = (config = configOf()) => ({
  architecture: config,
  configHash: checkpointConfigHash(config, TRAINING),
});

describe('writeCheckpoint and readCheckpoint', () => {
  it('round-trips weights, moments and state bit for bit', async () => {
    const original = checkpointAt(7);
    const written = await writeCheckpoint(store, RUN, 7, original);
    expect(written.written).toBe(true);
    expect(written.manifest.files.map((file) => file.name)).toEqual([
      'weights.safetensors',
      'optimizer.safetensors',
      'state.json',
    ]);

    const read = await readCheckpoint(store, RUN, 7, expectation());
    expect(weightsDigest(read.weights)).toBe(weightsDigest(original.weights));
    expect(weightsDigest(read.optimizer.firstMoment)).toBe(weightsDigest(original.optimizer.firstMoment));
    expect(weightsDigest(read.optimizer.secondMoment)).toBe(weightsDigest(original.optimizer.secondMoment));
    const embedding = read.weights.get('model.embed_tokens.weight') as Float32Array;
    expect(Object.is(embedding[0], -0)).toBe(true);
    expect(new DataView(embedding.buffer, embedding.byteOffset).getUint32(4, true)).toBe(0x7fc01234);
    expect([...read.weights.keys()].sort()).toEqual([...original.weights.keys()].sort());
    expect(read.step).toBe(7);
    expect(read.optimizer.step).toBe(7);
    expect(read.configHash).toBe(original.configHash);
    expect(read.extra).toEqual(original.extra);
    expect(architectureOf(read.modelConfig)).toEqual(architectureOf(original.modelConfig));
    expect(read.modelConfig.eosTokenIds).toEqual([3, 2]);
    expect(read.modelConfig.maxPositionEmbeddings).toBe(4096);

    // Reading it back and writing it again gives the same bytes: the retry path of a resumed trainer.
    await expect(writeCheckpoint(store, RUN, 7, read)).resolves.toMatchObject({ written: false });
  });

  it('writes a checkpoint with no optimiser moments yet', async () => {
    const checkpoint = checkpointAt(0);
    checkpoint.optimizer = { step: 0, firstMoment: new Map(), secondMoment: new Map() };
    await writeCheckpoint(store, RUN, 0, checkpoint);
    const read = await readCheckpoint(store, RUN, 0, expectation());
    expect(read.optimizer.firstMoment.size).toBe(0);
    expect(weightsDigest(read.weights)).toBe(weightsDigest(checkpoint.weights));
  });

  it('accepts a retried write of identical content and refuses other content at a completed step', async () => {
    await writeCheckpoint(store, RUN, 3, checkpointAt(3));
    // The same content with `extra` keys in another order: still identical (state.json is canonical).
    const retry = checkpointAt(3);
    retry.extra = {
      metrics: [0.5, -1.25],
      progress: { miniBatch: 0, update: 3 },
      rng: { draws: 12345, seed: 'abc' },
    };
    await expect(writeCheckpoint(store, RUN, 3, retry)).resolves.toMatchObject({ written: false });

    const other = checkpointAt(3, 'other-weights');
    const attempt = writeCheckpoint(store, RUN, 3, other);
    await expect(attempt).rejects.toThrow(StoredContentConflictError);
    await expect(attempt).rejects.toThrow(
      /^checkpoint at step 3 of run train-1 is already stored with other content: weights\.safetensors differs/,
    );
    // The stored one is untouched.
    const read = await readCheckpoint(store, RUN, 3, expectation());
    expect(weightsDigest(read.weights)).toBe(weightsDigest(checkpointAt(3).weights));
  });

  it('treats a checkpoint without its manifest as absent, and a retry completes it', async () => {
    // A writer that dies after the data files, before the manifest.
    const crashing: BlobStore = Object.create(store) as BlobStore;
    crashing.putIfAbsent = (_key: string, _body: BlobBody, _opts?: PutOptions) =>
      Promise.reject(new Error('worker killed'));
    await expect(writeCheckpoint(crashing, RUN, 4, checkpointAt(4))).rejects.toThrow('worker killed');
    expect(await store.exists(checkpointFileKey(RUN, 4, 'weights.safetensors'))).toBe(true);

    const read = readCheckpoint(store, RUN, 4, expectation());
    await expect(read).rejects.toThrow(CheckpointNotFoundError);
    await expect(read).rejects.toThrow(
      'no complete checkpoint at step 4 of run train-1 (no training/train-1/checkpoints/0000000004/manifest.json)',
    );
    expect(await latestCheckpointStep(store, RUN)).toBeNull();

    await expect(writeCheckpoint(store, RUN, 4, checkpointAt(4))).resolves.toMatchObject({ written: true });
    expect(await latestCheckpointStep(store, RUN)).toBe(4);
    const complete = await readCheckpoint(store, RUN, 4, expectation());
    expect(weightsDigest(complete.weights)).toBe(weightsDigest(checkpointAt(4).weights));
  });

  it('refuses a checkpoint whose manifest was deleted, or whose data file is gone', async () => {
    await writeCheckpoint(store, RUN, 5, checkpointAt(5));
    await store.delete(checkpointFileKey(RUN, 5, 'optimizer.safetensors'));
    await expect(readCheckpoint(store, RUN, 5, expectation())).rejects.toThrow(
      'no complete checkpoint at step 5 of run train-1 (training/train-1/checkpoints/0000000005/optimizer.safetensors is missing)',
    );
    await store.delete(checkpointFileKey(RUN, 5, 'manifest.json'));
    await expect(readCheckpoint(store, RUN, 5, expectation())).rejects.toThrow(
      /^no complete checkpoint at step 5 of run train-1 \(no .*manifest\.json\)$/,
    );
  });

  it('refuses a truncated or altered file, naming it', async () => {
    await writeCheckpoint(store, RUN, 6, checkpointAt(6));
    const weightsKey = checkpointFileKey(RUN, 6, 'weights.safetensors');
    const bytes = await store.get(weightsKey);
    await store.put(weightsKey, bytes.subarray(0, bytes.byteLength - 100));
    const truncated = readCheckpoint(store, RUN, 6, expectation());
    await expect(truncated).rejects.toThrow(CheckpointCorruptError);
    await expect(truncated).rejects.toThrow(
      `corrupt checkpoint file ${weightsKey}: ${bytes.byteLength - 100} bytes stored, the manifest says ${bytes.byteLength}`,
    );

    const flipped = Buffer.from(bytes);
    flipped[flipped.byteLength - 1] ^= 1;
    await store.put(weightsKey, flipped);
    await expect(readCheckpoint(store, RUN, 6, expectation())).rejects.toThrow(
      new RegExp(`^corrupt checkpoint file ${weightsKey}: sha256 [0-9a-f]{64} stored, the manifest says`),
    );

    await store.put(weightsKey, bytes);
    await store.put(checkpointFileKey(RUN, 6, 'manifest.json'), '{"format": "rememr1-checkpoint"');
    await expect(readCheckpoint(store, RUN, 6, expectation())).rejects.toThrow(
      /^corrupt checkpoint file .*manifest\.json: .*JSON/,
    );
  });

  it('refuses a checkpoint of another architecture or configuration, naming the first difference', async () => {
    await writeCheckpoint(store, RUN, 8, checkpointAt(8));
    const wider = configOf({ hiddenSize: 64 });
    const attempt = readCheckpoint(store, RUN, 8, { architecture: wider });
    await expect(attempt).rejects.toThrow(CheckpointMismatchError);
    await expect(attempt).rejects.toThrow(
      'checkpoint at step 8 of run train-1 is of another architecture: hiddenSize is 32, expected 64',
    );
    await expect(
      readCheckpoint(store, RUN, 8, { architecture: configOf({ ropeTheta: 1e6 }) }),
    ).rejects.toThrow('ropeTheta is 10000, expected 1000000');
    await expect(
      readCheckpoint(store, RUN, 8, {
        architecture: configOf(),
        configHash: checkpointConfigHash(configOf(), { ...TRAINING, learningRate: 2e-5 }),
      }),
    ).rejects.toThrow(
      /^checkpoint at step 8 of run train-1 was written under another configuration: configHash is/,
    );
    // Without a config hash only the architecture is checked.
    await expect(readCheckpoint(store, RUN, 8, { architecture: configOf() })).resolves.toMatchObject({
      step: 8,
    });
  });

  it('refuses to write a checkpoint that does not match its own config', async () => {
    const missing = checkpointAt(1);
    missing.weights.delete('model.norm.weight');
    await expect(writeCheckpoint(store, RUN, 1, missing)).rejects.toThrow(StoredModelInputError);
    await expect(writeCheckpoint(store, RUN, 1, missing)).rejects.toThrow(
      'cannot write the checkpoint of step 1: weights have no tensor "model.norm.weight" (shape [32])',
    );
    const stray = checkpointAt(1);
    stray.weights.set('lm_head.weight', new Float32Array(4));
    await expect(writeCheckpoint(store, RUN, 1, stray)).rejects.toThrow(
      'weight "lm_head.weight" is not a tensor of this Qwen2 architecture',
    );
    const notJson = checkpointAt(1);
    notJson.extra = { loss: Number.NaN };
    await expect(writeCheckpoint(store, RUN, 1, notJson)).rejects.toThrow(
      'extra does not survive JSON unchanged',
    );
    await expect(writeCheckpoint(store, RUN, 2, checkpointAt(1))).rejects.toThrow(
      'checkpoint.step is 1, not 2',
    );
    expect(await latestCheckpointStep(store, RUN)).toBeNull();
  });
});

describe('latestCheckpointStep', () => {
  it('returns the highest step with a manifest, ignoring half-written ones and other runs', async () => {
    expect(await latestCheckpointStep(store, RUN)).toBeNull();
    for (const step of [1, 2, 10]) await writeCheckpoint(store, RUN, step, checkpointAt(step));
    await writeCheckpoint(store, 'train-2', 50, checkpointAt(50));
    // Step 11: data files only (the writer died before the manifest).
    await store.put(checkpointFileKey(RUN, 11, 'weights.safetensors'), 'partial');
    expect(await latestCheckpointStep(store, RUN)).toBe(10);
    expect(await latestCheckpointStep(store, 'train-2')).toBe(50);
    expect(await latestCheckpointStep(store, 'train')).toBeNull();
  });
});

describe('hashes', () => {
  it('gives the config hash of the architecture and settings, whatever the key order', () => {
    const config = configOf();
    const reordered = { klBeta: 0.001, clipEpsilon: 0.2, learningRate: 1e-5 };
    expect(checkpointConfigHash(config, reordered)).toBe(checkpointConfigHash(config, TRAINING));
    expect(checkpointConfigHash(config, TRAINING)).toMatch(/^[0-9a-f]{64}$/);
    expect(checkpointConfigHash(config, { ...TRAINING, clipEpsilon: 0.3 })).not.toBe(
      checkpointConfigHash(config, TRAINING),
    );
    expect(checkpointConfigHash(configOf({ numHiddenLayers: 3 }), TRAINING)).not.toBe(
      checkpointConfigHash(config, TRAINING),
    );
  });

  it('tells weights apart by a single bit, and not by map order', () => {
    const weights = randomQwen2Weights(configOf(), 'digest');
    const reversed = new Map([...weights].reverse());
    expect(weightsDigest(reversed)).toBe(weightsDigest(weights));
    const copy = new Map([...weights].map(([name, values]) => [name, values.slice()]));
    const norm = copy.get('model.norm.weight') as Float32Array;
    new DataView(norm.buffer).setUint32(0, new DataView(norm.buffer).getUint32(0, true) ^ 1, true);
    expect(weightsDigest(copy)).not.toBe(weightsDigest(weights));
    const zero = new Map([['a', Float32Array.of(0)]]);
    expect(weightsDigest(zero)).not.toBe(weightsDigest(new Map([['a', Float32Array.of(-0)]])));
  });
});
