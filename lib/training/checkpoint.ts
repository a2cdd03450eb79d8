/**
 * Trainer checkpoints in the blob store, complete-or-absent:
 *
 *   training/{run}/checkpoints/{step}/weights.safetensors     Qwen2 tensors, Hugging Face names, float32
 *   training/{run}/checkpoints/{step}/optimizer.safetensors   Adam moments as m.<name> and v.<name>
 *   training/{run}/checkpoints/{step}/state.json              steps, config hash, model config, caller's extra
 *   training/{run}/checkpoints/{step}/manifest.json           written LAST: format, architecture, config hash,
 *                                                              and each file's byte size and sha256
 *
 * A reader trusts nothing but the manifest: without it the step has no checkpoint (a writer died half way),
 * and every file is checked against it before use. The manifest is stored with put-if-absent, so a step's
 * checkpoint never changes once complete; a retried write of the same content succeeds, one of other
 * content is refused. Two writers of different content racing on one step are not supported (the data
 * files are plain puts): the trainer is deterministic, so a retry writes the same bytes.
 *
 * The manifest-last helpers (`writeFilesManifestLast`, `fileEntries`, …) also serve policy versions.
 */
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { ConfigSchemaError, parseModelConfig, type ModelConfig } from '../model/config';
import { decoderSpecOf, modelConfigFileText, serializeQwen2Weights } from '../model-build/model-folder-builder';
import type { DecoderSpec } from '../model-build/onnx-builder';
import { qwen2TensorSpecs } from '../model-build/qwen2-weights';
import { parseSafetensors, serializeSafetensors, type Float32TensorData } from '../model/safetensors';
import { BlobContentError, BlobNotFoundError, type BlobStore } from '../storage/blob-store';
import { checkpointFileKey, checkpointPrefix, formatOrdinal, parseOrdinal } from '../storage/keys';
import {
  CheckpointCorruptError,
  CheckpointMismatchError,
  CheckpointNotFoundError,
  StoredContentConflictError,
  StoredModelInputError,
} from './checkpoint-errors';

export const CHECKPOINT_FORMAT = 'rememr1-checkpoint';
export const CHECKPOINT_FORMAT_VERSION = 1;
export const CHECKPOINT_FILES = {
  weights: 'weights.safetensors',
  optimizer: 'optimizer.safetensors',
  state: 'state.json',
  manifest: 'manifest.json',
} as const;

/** The fields of a model config that fix the tensor shapes and the forward pass. */
export type Architecture = DecoderSpec;

export const ARCHITECTURE_FIELDS = [
  'vocabSize',
  'hiddenSize',
  'intermediateSize',
  'numHiddenLayers',
  'numAttentionHeads',
  'numKeyValueHeads',
  'headDim',
  'tieWordEmbeddings',
  'rmsNormEps',
  'ropeTheta',
] as const satisfies readonly (keyof Architecture)[];

export interface OptimizerState {
  /** Optimiser steps taken (Adam's bias correction uses it). */
  step: number;
  /** Adam's first and second moments, by weight name; a weight without moments has not been updated yet. */
  firstMoment: Map<string, Float32Array>;
  secondMoment: Map<string, Float32Array>;
}

export interface TrainerCheckpoint {
  /** Optimiser steps done when the checkpoint was taken; the step the checkpoint is stored under. */
  step: number;
  /** Every Qwen2 tensor of `modelConfig`, by Hugging Face name. */
  weights: Map<string, Float32Array>;
  optimizer: OptimizerState;
  /** The parsed config that fixes the shapes. */
  modelConfig: ModelConfig;
  /** `checkpointConfigHash` of the architecture and the training settings. */
  configHash: string;
  /** Anything else the trainer resumes from (RNG and progress state, metrics): must survive JSON unchanged. */
  extra: Record<string, unknown>;
}

/** What the reader runs with: a checkpoint of another architecture (or config hash, when given) is refused. */
export interface CheckpointExpectation {
  architecture: Architecture;
  configHash?: string;
}

/** A file as a manifest lists it. `path` places it inside a model folder (policy versions only). */
export interface ManifestFileEntry {
  name: string;
  bytes: number;
  sha256: string;
  path?: string;
}

export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  formatVersion: number;
  run: string;
  step: number;
  configHash: string;
  architecture: Architecture;
  files: ManifestFileEntry[];
}

export interface WrittenCheckpoint {
  /** False when an identical checkpoint was already complete at this step (a retried write). */
  written: boolean;
  manifest: CheckpointManifest;
}

// ---------------------------------------------------------------------------------------------------------
// Hashing and canonical JSON

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** JSON with object keys sorted at every level, so equal values always give equal bytes (and hashes). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort())
      sorted[key] = sortKeys((value as Record<string, unknown>)[key]);
    return sorted;
  }
  return value;
}

export function architectureOf(config: Architecture): Architecture {
  return decoderSpecOf(config);
}

/**
 * sha256 of the canonical JSON of the architecture and the caller's training settings (learning rate,
 * clip ε, …): a checkpoint resumed under other settings is refused when the reader passes its hash.
 */
export function checkpointConfigHash(
  architecture: Architecture,
  training: Readonly<Record<string, unknown>>,
): string {
  return sha256Hex(canonicalJson({ architecture: architectureOf(architecture), training }));
}

/**
 * sha256 hex over the tensors in name order: each name's length and UTF-8 bytes, its element count and its
 * float32 bytes. Equal digests mean bit-identical weights (NaN payloads and signed zeros included).
 */
export function weightsDigest(weights: ReadonlyMap<string, Float32Array>): string {
  const hash = createHash('sha256');
  const header = Buffer.alloc(12);
  for (const name of [...weights.keys()].sort()) {
    const values = weights.get(name) as Float32Array;
    const nameBytes = Buffer.from(name, 'utf8');
    header.writeUInt32LE(nameBytes.byteLength, 0);
    header.writeBigUInt64LE(BigInt(values.length), 4);
    hash.update(header.subarray(0, 4)).update(nameBytes).update(header.subarray(4, 12));
    hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return hash.digest('hex');
}

/** The first architecture field where `actual` differs from `expected`, as "field is X, expected Y". */
export function architectureDifference(actual: Architecture, expected: Architecture): string | undefined {
  for (const field of ARCHITECTURE_FIELDS) {
    if (actual[field] !== expected[field]) return `${field} is ${actual[field]}, expected ${expected[field]}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Manifest-last file sets (shared with policy versions)

export interface PendingFile {
  name: string;
  data: Uint8Array;
  /** Where the file goes in a model folder, when it is one. */
  path?: string;
}

export function fileEntries(files: readonly PendingFile[]): ManifestFileEntry[] {
  return files.map((file) => ({
    name: file.name,
    ...(file.path === undefined ? {} : { path: file.path }),
    bytes: file.data.byteLength,
    sha256: sha256Hex(file.data),
  }));
}

/** Where two file lists differ (the stored one first), or undefined when they list the same content. */
function fileListDifference(
  stored: readonly ManifestFileEntry[],
  wanted: readonly ManifestFileEntry[],
): string | undefined {
  const storedByName = new Map(stored.map((entry) => [entry.name, entry]));
  for (const entry of wanted) {
    const have = storedByName.get(entry.name);
    if (have === undefined) return `${entry.name} is not in the stored manifest`;
    if (have.bytes !== entry.bytes || have.sha256 !== entry.sha256)
      return `${entry.name} differs (stored ${have.bytes} bytes, sha256 ${have.sha256.slice(0, 12)}…; now ${entry.bytes} bytes, sha256 ${entry.sha256.slice(0, 12)}…)`;
    if ((have.path ?? '') !== (entry.path ?? ''))
      return `${entry.name} is placed at ${have.path ?? '(no path)'} in the stored manifest, not ${entry.path ?? '(no path)'}`;
  }
  const wantedNames = new Set(wanted.map((entry) => entry.name));
  const extra = stored.find((entry) => !wantedNames.has(entry.name));
  return extra === undefined ? undefined : `the stored manifest also lists ${extra.name}`;
}

export interface ManifestLastWrite<M extends { files: ManifestFileEntry[] }> {
  files: readonly PendingFile[];
  /** The manifest to write; its `files` must be `fileEntries(files)`. */
  manifest: M;
  keyOf: (name: string) => string;
  manifestName: string;
  /** Validates a stored manifest found at the key (throws when it is not one). */
  parseManifest: (value: unknown) => M;
  /** Names what is written in errors, e.g. "checkpoint at step 5 of run r". */
  describe: string;
}

/**
 * Writes the files, then the manifest with put-if-absent. When a manifest is already stored (a retry, or
 * a writer that got there first) nothing is written: identical content is success (`written` false),
 * other content a StoredContentConflictError naming the first differing file.
 */
export async function writeFilesManifestLast<M extends { files: ManifestFileEntry[] }>(
  store: BlobStore,
  write: ManifestLastWrite<M>,
): Promise<{ written: boolean; manifest: M }> {
  const manifestKey = write.keyOf(write.manifestName);
  const compareWithStored = async (): Promise<{ written: boolean; manifest: M }> => {
    let stored: M;
    try {
      stored = await store.getJson(manifestKey, write.parseManifest);
    } catch (error) {
      if (!(error instanceof BlobContentError)) throw error;
      throw new StoredContentConflictError(
        `${write.describe} already has a ${write.manifestName} that cannot be read (${(error as Error).message.split('\n')[0]})`,
      );
    }
    const difference = fileListDifference(stored.files, write.manifest.files);
    if (difference !== undefined)
      throw new StoredContentConflictError(
        `${write.describe} is already stored with other content: ${difference}; a stored one is never replaced`,
      );
    return { written: false, manifest: stored };
  };
  if (await store.exists(manifestKey)) return compareWithStored();
  for (const file of write.files) await store.put(write.keyOf(file.name), file.data);
  const manifestText = `${JSON.stringify(write.manifest, null, 2)}\n`;
  const created = await store.putIfAbsent(manifestKey, manifestText, { contentType: 'application/json' });
  return created ? { written: true, manifest: write.manifest } : compareWithStored();
}

export interface VerifiedReadErrors {
  missing: (entry: ManifestFileEntry, key: string) => Error;
  corrupt: (entry: ManifestFileEntry, key: string, detail: string) => Error;
}

/** The file's bytes, after checking its size and sha256 against its manifest entry. */
export async function readVerifiedFile(
  store: BlobStore,
  key: string,
  entry: ManifestFileEntry,
  errors: VerifiedReadErrors,
): Promise<Uint8Array> {
  let data: Uint8Array;
  try {
    data = await store.get(key);
  } catch (error) {
    if (error instanceof BlobNotFoundError) throw errors.missing(entry, key);
    throw error;
  }
  if (data.byteLength !== entry.bytes)
    throw errors.corrupt(entry, key, `${data.byteLength} bytes stored, the manifest says ${entry.bytes}`);
  const digest = sha256Hex(data);
  if (digest !== entry.sha256)
    throw errors.corrupt(entry, key, `sha256 ${digest} stored, the manifest says ${entry.sha256}`);
  return data;
}

// ---------------------------------------------------------------------------------------------------------
// Schemas

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

export const architectureSchema = z.object({
  vocabSize: positiveInt,
  hiddenSize: positiveInt,
  intermediateSize: positiveInt,
  numHiddenLayers: positiveInt,
  numAttentionHeads: positiveInt,
  numKeyValueHeads: positiveInt,
  headDim: positiveInt,
  tieWordEmbeddings: z.boolean(),
  rmsNormEps: z.number().positive(),
  ropeTheta: z.number().positive(),
});

export const manifestFileEntrySchema = z.object({
  name: z.string().min(1),
  path: z.string().min(1).optional(),
  bytes: nonNegativeInt,
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

const checkpointManifestSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  formatVersion: positiveInt,
  run: z.string(),
  step: nonNegativeInt,
  configHash: z.string().min(1),
  architecture: architectureSchema,
  files: z.array(manifestFileEntrySchema),
});

const stateSchema = z.object({
  formatVersion: positiveInt,
  step: nonNegativeInt,
  optimizerStep: nonNegativeInt,
  configHash: z.string().min(1),
  modelConfig: z.record(z.string(), z.unknown()),
  extra: z.record(z.string(), z.unknown()),
});

function parseCheckpointManifest(value: unknown): CheckpointManifest {
  return checkpointManifestSchema.parse(value);
}

/** zod's first issue, on one line. */
function firstIssue(error: unknown): string {
  if (error instanceof z.ZodError) {
    const issue = error.issues[0];
    return `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`;
  }
  return (error as Error).message.split('\n')[0];
}

// ---------------------------------------------------------------------------------------------------------
// Writing

const momentName = (kind: 'm' | 'v', name: string) => `${kind}.${name}`;

function shapesOf(architecture: Architecture): Map<string, number[]> {
  return new Map(qwen2TensorSpecs(architecture).map((spec) => [spec.name, spec.shape]));
}

function validateCheckpoint(
  step: number,
  checkpoint: TrainerCheckpoint,
  shapes: Map<string, number[]>,
): void {
  const fail = (problem: string): never => {
    throw new StoredModelInputError(`cannot write the checkpoint of step ${step}: ${problem}`);
  };
  if (checkpoint.step !== step) fail(`checkpoint.step is ${checkpoint.step}, not ${step}`);
  if (typeof checkpoint.configHash !== 'string' || checkpoint.configHash === '') fail('configHash is empty');
  const { optimizer } = checkpoint;
  if (!Number.isSafeInteger(optimizer.step) || optimizer.step < 0)
    fail(`optimizer.step must be an integer >= 0, got ${optimizer.step}`);
  for (const [name, shape] of shapes) {
    const values = checkpoint.weights.get(name);
    const count = shape.reduce((a, b) => a * b, 1);
    if (values === undefined) fail(`weights have no tensor "${name}" (shape [${shape.join(', ')}])`);
    else if (values.length !== count)
      fail(`weight "${name}" has ${values.length} values; shape [${shape.join(', ')}] needs ${count}`);
  }
  for (const name of checkpoint.weights.keys())
    if (!shapes.has(name)) fail(`weight "${name}" is not a tensor of this Qwen2 architecture`);
  for (const [label, moments] of [
    ['firstMoment', optimizer.firstMoment],
    ['secondMoment', optimizer.secondMoment],
  ] as const) {
    for (const [name, values] of moments) {
      const weight = checkpoint.weights.get(name);
      if (weight === undefined) fail(`optimizer.${label} has "${name}", which is not a weight`);
      else if (values.length !== weight.length)
        fail(`optimizer.${label} of "${name}" has ${values.length} values; the weight has ${weight.length}`);
    }
  }
  const firstNames = [...optimizer.firstMoment.keys()].sort().join('\n');
  if (firstNames !== [...optimizer.secondMoment.keys()].sort().join('\n'))
    fail('optimizer.firstMoment and optimizer.secondMoment name different weights');
  let roundTrip: unknown;
  try {
    roundTrip = JSON.parse(JSON.stringify(checkpoint.extra) ?? 'null');
  } catch (error) {
    fail(`extra cannot be stored as JSON (${(error as Error).message})`);
  }
  if (!isDeepStrictEqual(roundTrip, checkpoint.extra))
    fail(
      'extra does not survive JSON unchanged (it holds undefined, NaN, Infinity, a class instance or a typed array)',
    );
}

function serializeOptimizer(optimizer: OptimizerState, shapes: Map<string, number[]>): Uint8Array {
  const tensors: Record<string, Float32TensorData> = {};
  for (const [kind, moments] of [
    ['m', optimizer.firstMoment],
    ['v', optimizer.secondMoment],
  ] as const) {
    // validateCheckpoint has checked that every moment names a weight of the layout.
    for (const [name, data] of moments)
      tensors[momentName(kind, name)] = { shape: shapes.get(name) as number[], data };
  }
  return serializeSafetensors(tensors, { format: CHECKPOINT_FORMAT });
}

/**
 * Stores `checkpoint` as step `step` of training run `run`: the data files, then the manifest. Safe to
 * retry: an identical complete checkpoint already there is success (`written` false); one of other content
 * is a StoredContentConflictError (a completed step is never replaced).
 */
export async function writeCheckpoint(
  store: BlobStore,
  run: string,
  step: number,
  checkpoint: TrainerCheckpoint,
): Promise<WrittenCheckpoint> {
  const describe = `checkpoint at step ${step} of run ${run}`;
  const keyOf = (file: string) => checkpointFileKey(run, step, file);
  keyOf(CHECKPOINT_FILES.manifest); // validates run and step before any work
  const architecture = architectureOf(checkpoint.modelConfig);
  const shapes = shapesOf(architecture);
  validateCheckpoint(step, checkpoint, shapes);
  const state = {
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    step,
    optimizerStep: checkpoint.optimizer.step,
    configHash: checkpoint.configHash,
    modelConfig: JSON.parse(modelConfigFileText(checkpoint.modelConfig)) as unknown,
    extra: checkpoint.extra,
  };
  const files: PendingFile[] = [
    { name: CHECKPOINT_FILES.weights, data: serializeQwen2Weights(architecture, checkpoint.weights) },
    { name: CHECKPOINT_FILES.optimizer, data: serializeOptimizer(checkpoint.optimizer, shapes) },
    // Canonical, so a retry whose `extra` lists its keys in another order still writes the same bytes.
    { name: CHECKPOINT_FILES.state, data: Buffer.from(`${canonicalJson(state)}\n`, 'utf8') },
  ];
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    run,
    step,
    configHash: checkpoint.configHash,
    architecture,
    files: fileEntries(files),
  };
  return writeFilesManifestLast(store, {
    files,
    manifest,
    keyOf,
    manifestName: CHECKPOINT_FILES.manifest,
    parseManifest: parseCheckpointManifest,
    describe,
  });
}

// ---------------------------------------------------------------------------------------------------------
// Reading

/**
 * Reads step `step` of training run `run`, verified: the manifest must be there (else the checkpoint is
 * absent: CheckpointNotFoundError), of the expected architecture and config hash (CheckpointMismatchError
 * naming the first differing field), and every file must match its size and sha256 and parse to the
 * expected tensors (CheckpointCorruptError naming the file). Weights and moments are views into the bytes
 * read, one buffer per file.
 */
export async function readCheckpoint(
  store: BlobStore,
  run: string,
  step: number,
  expected: CheckpointExpectation,
): Promise<TrainerCheckpoint> {
  const keyOf = (file: string) => checkpointFileKey(run, step, file);
  const describe = `checkpoint at step ${step} of run ${run}`;
  const manifestKey = keyOf(CHECKPOINT_FILES.manifest);
  let manifest: CheckpointManifest;
  try {
    manifest = await store.getJson(manifestKey, (value) => {
      const format = (value as { formatVersion?: unknown } | null)?.formatVersion;
      if (typeof format === 'number' && format > CHECKPOINT_FORMAT_VERSION)
        throw new CheckpointMismatchError(
          `${describe} has format version ${format}; this code reads version ${CHECKPOINT_FORMAT_VERSION}`,
        );
      return parseCheckpointManifest(value);
    });
  } catch (error) {
    if (error instanceof BlobNotFoundError) throw new CheckpointNotFoundError(run, step, `no ${manifestKey}`);
    if (!(error instanceof BlobContentError)) throw error; // the store is down: retrying may help
    if (error.cause instanceof CheckpointMismatchError) throw error.cause;
    throw new CheckpointCorruptError(manifestKey, firstIssue(error.cause ?? error));
  }
  if (manifest.step !== step || manifest.run !== run)
    throw new CheckpointCorruptError(
      manifestKey,
      `the manifest is of step ${manifest.step} of run ${manifest.run}`,
    );
  const difference = architectureDifference(manifest.architecture, architectureOf(expected.architecture));
  if (difference !== undefined)
    throw new CheckpointMismatchError(`${describe} is of another architecture: ${difference}`);
  if (expected.configHash !== undefined && manifest.configHash !== expected.configHash)
    throw new CheckpointMismatchError(
      `${describe} was written under another configuration: configHash is ${manifest.configHash}, expected ${expected.configHash}`,
    );

  const readFile = async (name: string): Promise<Uint8Array> => {
    const entry = manifest.files.find((file) => file.name === name);
    if (entry === undefined)
      throw new CheckpointCorruptError(manifestKey, `the manifest does not list ${name}`);
    return readVerifiedFile(store, keyOf(name), entry, {
      missing: (_entry, key) => new CheckpointNotFoundError(run, step, `${key} is missing`),
      corrupt: (_entry, key, detail) => new CheckpointCorruptError(key, detail),
    });
  };
  const [weightBytes, optimizerBytes, stateBytes] = await Promise.all([
    readFile(CHECKPOINT_FILES.weights),
    readFile(CHECKPOINT_FILES.optimizer),
    readFile(CHECKPOINT_FILES.state),
  ]);

  const shapes = shapesOf(manifest.architecture);
  const weights = parseTensors(keyOf(CHECKPOINT_FILES.weights), weightBytes, (name) => {
    const shape = shapes.get(name);
    if (shape === undefined) return `holds "${name}", not a tensor of this architecture`;
    return shape;
  });
  for (const [name, shape] of shapes)
    if (!weights.has(name))
      throw new CheckpointCorruptError(
        keyOf(CHECKPOINT_FILES.weights),
        `has no tensor "${name}" (shape [${shape.join(', ')}])`,
      );

  const moments = parseTensors(keyOf(CHECKPOINT_FILES.optimizer), optimizerBytes, (name) => {
    const match = /^([mv])\.(.+)$/.exec(name);
    const shape = match === null ? undefined : shapes.get(match[2]);
    if (shape === undefined) return `holds "${name}", not m.<weight> or v.<weight> of this architecture`;
    return shape;
  });
  const firstMoment = new Map<string, Float32Array>();
  const secondMoment = new Map<string, Float32Array>();
  for (const [name, values] of moments)
    (name.startsWith('m.') ? firstMoment : secondMoment).set(name.slice(2), values);

  const stateKey = keyOf(CHECKPOINT_FILES.state);
  let state: z.infer<typeof stateSchema>;
  let modelConfig: ModelConfig;
  try {
    state = stateSchema.parse(JSON.parse(Buffer.from(stateBytes).toString('utf8')));
    modelConfig = parseModelConfig(state.modelConfig);
  } catch (error) {
    const detail = error instanceof ConfigSchemaError ? `modelConfig: ${error.message}` : firstIssue(error);
    throw new CheckpointCorruptError(stateKey, detail);
  }
  const stateDifference = architectureDifference(architectureOf(modelConfig), manifest.architecture);
  if (stateDifference !== undefined)
    throw new CheckpointCorruptError(stateKey, `modelConfig disagrees with the manifest: ${stateDifference}`);
  if (state.step !== step || state.configHash !== manifest.configHash)
    throw new CheckpointCorruptError(stateKey, 'step or configHash disagrees with the manifest');
  return {
    step,
    weights,
    optimizer: { step: state.optimizerStep, firstMoment, secondMoment },
    modelConfig,
    configHash: manifest.configHash,
    extra: state.extra,
  };
}

/** Float32 tensors of a safetensors file, each checked against the shape `shapeOf` gives (or a problem). */
function parseTensors(
  key: string,
  bytes: Uint8Array,
  shapeOf: (name: string) => readonly number[] | string,
): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  try {
    const file = parseSafetensors(bytes, key);
    for (const name of [...file.names()].sort()) {
      const entry = file.entry(name);
      const shape = shapeOf(name);
      if (typeof shape === 'string') throw new CheckpointCorruptError(key, shape);
      if (entry.dtype !== 'F32' || entry.shape.join(',') !== shape.join(','))
        throw new CheckpointCorruptError(
          key,
          `tensor "${name}" is ${entry.dtype} [${entry.shape.join(', ')}]; expected F32 [${shape.join(', ')}]`,
        );
      out.set(name, file.float32(name));
    }
  } catch (error) {
    if (error instanceof CheckpointCorruptError) throw error;
    throw new CheckpointCorruptError(key, (error as Error).message.split('\n')[0]);
  }
  return out;
}

/** The folder of a run's checkpoints, for listing: 'training/{run}/checkpoints/'. */
function runCheckpointsPrefix(run: string): string {
  const stepPrefix = checkpointPrefix(run, 0);
  return stepPrefix.slice(0, stepPrefix.length - formatOrdinal(0).length - 1);
}

/** The highest step of `run` with a manifest (a complete checkpoint), or null when there is none. */
export async function latestCheckpointStep(store: BlobStore, run: string): Promise<number | null> {
  const prefix = runCheckpointsPrefix(run);
  let latest: number | null = null;
  for await (const key of store.list(prefix)) {
    const [segment, file, ...rest] = key.slice(prefix.length).split('/');
    if (file !== CHECKPOINT_FILES.manifest || rest.length > 0) continue;
    let step: number;
    try {
      step = parseOrdinal(segment);
    } catch {
      continue; // not a step folder: nothing this module wrote
    }
    if (latest === null || step > latest) latest = step;
  }
  return latest;
}
