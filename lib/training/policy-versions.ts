/**
 * Policy versions: trained weights exported as model folders in the blob store, and the cache through
 * which inference workers load them by version.
 *
 *   policies/{version}/config.json, tokenizer.json, tokenizer_config.json,
 *                      generation_config.json and chat_template.jinja (when the source folder has them),
 *                      model.safetensors, model.onnx (+ model.onnx_data for models beyond protobuf's 2 GB)
 *   policies/{version}/manifest.json   written LAST: architecture, and each file's size, sha256 and path
 *                                      inside the model folder (model.onnx goes to onnx/model.onnx)
 *
 * Keys are flat (a key segment cannot hold '/'); the manifest restores the folder layout the loader reads.
 * A version without a manifest does not exist; a completed version is never replaced (put-if-absent).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { ModelConfig } from '../model/config';
import { MODEL_FILES } from '../model/folder';
import { buildWeightFiles, decoderSpecOf, modelConfigFileText } from '../model-build/model-folder-builder';
import { loadPolicy, type Policy, type PolicyOptions, type PolicyStats } from '../model/policy';
import type { GenerateRequest, GenerateResult } from '../model/generate';
import type { ChatMessage } from '../model/tokenizer';
import { BlobContentError, BlobNotFoundError, type BlobStore } from '../storage/blob-store';
import { checkId, policyFileKey } from '../storage/keys';
import {
  architectureOf,
  architectureSchema,
  fileEntries,
  manifestFileEntrySchema,
  writeFilesManifestLast,
  type Architecture,
  type ManifestFileEntry,
  type PendingFile,
} from './checkpoint';
import {
  PolicyVersionCorruptError,
  PolicyVersionNotFoundError,
  StoredModelInputError,
} from './checkpoint-errors';

export const POLICY_FORMAT = 'rememr1-policy';
export const POLICY_FORMAT_VERSION = 1;
export const POLICY_MANIFEST_FILE = 'manifest.json';

/** Above this many weight bytes the ONNX weights go to an external data file (protobuf stops at 2 GB). */
const EXTERNAL_DATA_THRESHOLD = 1_500_000_000;

export interface PolicyManifestFile extends ManifestFileEntry {
  /** '/'-separated path inside the model folder. */
  path: string;
}

export interface PolicyManifest {
  format: typeof POLICY_FORMAT;
  formatVersion: number;
  version: string;
  architecture: Architecture;
  files: PolicyManifestFile[];
}

export interface PolicyExportSource {
  /** The parsed config of the weights (its unknown config.json keys are written back). */
  config: ModelConfig;
  /** Every Qwen2 tensor of `config`, by Hugging Face name. */
  weights: ReadonlyMap<string, Float32Array>;
  /**
   * A model folder whose tokenizer.json and tokenizer_config.json (and generation_config.json and
   * chat_template.jinja, when it has them) the version is served with: usually the one training started from.
   */
  tokenizerFolder: string;
  /** Keep the ONNX weights in model.onnx_data. Default: only beyond 1.5 GB of weights. */
  externalData?: boolean;
}

export interface ExportedPolicyVersion {
  /** False when an identical version was already complete (a retried export). */
  written: boolean;
  manifest: PolicyManifest;
}

// The folder paths a manifest may place files at: what the loader reads, nothing else.
const SAFE_PATH = /^(?:onnx\/)?[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

const policyManifestSchema = z.object({
  format: z.literal(POLICY_FORMAT),
  formatVersion: z.number().int().positive(),
  version: z.string(),
  architecture: architectureSchema,
  files: z.array(
    manifestFileEntrySchema.extend({
      path: z.string().regex(SAFE_PATH, 'must be a file name, optionally under onnx/'),
    }),
  ),
});

function parsePolicyManifest(value: unknown): PolicyManifest {
  const manifest = policyManifestSchema.parse(value);
  if (manifest.formatVersion > POLICY_FORMAT_VERSION)
    throw new Error(`format version ${manifest.formatVersion}; this code reads ${POLICY_FORMAT_VERSION}`);
  for (const file of manifest.files)
    if (path.posix.basename(file.path) !== file.name)
      throw new Error(`file ${file.name} is placed at ${file.path}, which does not end with its name`);
  return manifest;
}

async function readSourceFile(folder: string, name: string, required: boolean): Promise<Uint8Array | null> {
  try {
    return await fs.readFile(path.join(folder, name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !required) return null;
    throw new StoredModelInputError(
      `cannot export a policy version: ${path.join(folder, name)} cannot be read (${(error as Error).message.split('\n')[0]})`,
    );
  }
}

/**
 * Stores `source` as policy version `version`: the model folder's files, then the manifest. Safe to retry:
 * an identical complete version already there is success (`written` false); one of other content is a
 * StoredContentConflictError (a version is never replaced).
 */
export async function exportPolicyVersion(
  store: BlobStore,
  version: string,
  source: PolicyExportSource,
): Promise<ExportedPolicyVersion> {
  const keyOf = (name: string) => policyFileKey(version, name);
  keyOf(POLICY_MANIFEST_FILE); // validates the version before any work
  const spec = decoderSpecOf(source.config);
  const weightBytes = [...source.weights.values()].reduce((sum, values) => sum + values.byteLength, 0);
  let weightFiles;
  try {
    weightFiles = buildWeightFiles(spec, source.weights, {
      externalData: source.externalData ?? weightBytes > EXTERNAL_DATA_THRESHOLD,
    });
  } catch (error) {
    throw new StoredModelInputError(
      `cannot export policy version ${version}: ${(error as Error).message.split('\n')[0]}`,
    );
  }
  const folderFiles: { path: string; data: Uint8Array }[] = [
    { path: MODEL_FILES.config, data: Buffer.from(modelConfigFileText(source.config), 'utf8') },
  ];
  for (const [name, required] of [
    [MODEL_FILES.tokenizer, true],
    [MODEL_FILES.tokenizerConfig, true],
    [MODEL_FILES.generationConfig, false],
    [MODEL_FILES.chatTemplate, false],
  ] as const) {
    const data = await readSourceFile(source.tokenizerFolder, name, required);
    if (data !== null) folderFiles.push({ path: name, data });
  }
  folderFiles.push(...weightFiles);
  const files: PendingFile[] = folderFiles.map((file) => ({
    name: path.posix.basename(file.path),
    path: file.path,
    data: file.data,
  }));
  const manifest: PolicyManifest = {
    format: POLICY_FORMAT,
    formatVersion: POLICY_FORMAT_VERSION,
    version,
    architecture: architectureOf(spec),
    files: fileEntries(files) as PolicyManifestFile[],
  };
  return writeFilesManifestLast(store, {
    files,
    manifest,
    keyOf,
    manifestName: POLICY_MANIFEST_FILE,
    parseManifest: parsePolicyManifest,
    describe: `policy version ${version}`,
  });
}

/** The version's manifest, or PolicyVersionNotFoundError / PolicyVersionCorruptError. */
export async function readPolicyManifest(store: BlobStore, version: string): Promise<PolicyManifest> {
  const key = policyFileKey(version, POLICY_MANIFEST_FILE);
  try {
    const manifest = await store.getJson(key, parsePolicyManifest);
    if (manifest.version !== version)
      throw new PolicyVersionCorruptError(version, `${key} describes version ${manifest.version}`);
    return manifest;
  } catch (error) {
    if (error instanceof BlobNotFoundError) throw new PolicyVersionNotFoundError(version, key);
    if (error instanceof BlobContentError) {
      const cause = error.cause instanceof z.ZodError ? error.cause.issues[0] : undefined;
      const detail =
        cause === undefined
          ? error.message.split('\n')[0]
          : `${key}: ${cause.path.join('.')}: ${cause.message}`;
      throw new PolicyVersionCorruptError(version, detail);
    }
    throw error;
  }
}

async function fileDigest(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** True when `folder` holds every file of the manifest with its size and sha256. */
async function folderMatches(folder: string, manifest: PolicyManifest): Promise<boolean> {
  for (const entry of manifest.files) {
    const file = path.join(folder, ...entry.path.split('/'));
    try {
      // Size first: a stale or partial copy is usually told apart without reading it.
      if ((await fs.stat(file)).size !== entry.bytes) return false;
      const digest = await fileDigest(file);
      if (digest.sha256 !== entry.sha256) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** Streams one stored file to `target`, hashing it on the way; refuses bytes that differ from the manifest. */
async function downloadFile(
  store: BlobStore,
  version: string,
  entry: PolicyManifestFile,
  target: string,
): Promise<void> {
  const key = policyFileKey(version, entry.name);
  let source;
  try {
    source = await store.getStream(key);
  } catch (error) {
    if (error instanceof BlobNotFoundError)
      throw new PolicyVersionCorruptError(version, `${key} is listed in the manifest but missing`);
    throw error;
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.byteLength;
      callback(null, chunk);
    },
  });
  await fs.mkdir(path.dirname(target), { recursive: true });
  await pipeline(source, tap, createWriteStream(target));
  const sha256 = hash.digest('hex');
  if (bytes !== entry.bytes || sha256 !== entry.sha256)
    throw new PolicyVersionCorruptError(
      version,
      `${key} is ${bytes} bytes with sha256 ${sha256}; the manifest says ${entry.bytes} bytes, sha256 ${entry.sha256}`,
    );
}

/**
 * Makes `cacheDir/{version}` a verified copy of the stored version and returns its path. A copy already
 * there that matches the manifest is used as it is; otherwise the files are downloaded into a temporary
 * folder beside it, verified, and renamed into place (so a crash never leaves a half folder under the
 * version's name). `downloaded` tells whether anything was fetched.
 */
export async function fetchPolicyVersion(
  store: BlobStore,
  version: string,
  cacheDir: string,
): Promise<{ folder: string; manifest: PolicyManifest; downloaded: boolean }> {
  checkId('policy version', version);
  const manifest = await readPolicyManifest(store, version);
  const folder = path.join(cacheDir, version);
  if (await folderMatches(folder, manifest)) return { folder, manifest, downloaded: false };
  await fs.mkdir(cacheDir, { recursive: true });
  // '~' cannot appear in a version id, so a temporary folder never takes a version's name.
  const temp = path.join(cacheDir, `.~partial-${randomBytes(8).toString('hex')}`);
  try {
    for (const entry of manifest.files)
      await downloadFile(store, version, entry, path.join(temp, ...entry.path.split('/')));
    await fs.rm(folder, { recursive: true, force: true });
    try {
      await fs.rename(temp, folder);
    } catch (error) {
      // Another process sharing the cache folder renamed its own copy in first.
      const code = (error as NodeJS.ErrnoException).code;
      if (!(code === 'ENOTEMPTY' || code === 'EEXIST') || !(await folderMatches(folder, manifest)))
        throw error;
    }
  } finally {
    await fs.rm(temp, { recursive: true, force: true });
  }
  return { folder, manifest, downloaded: true };
}

// ---------------------------------------------------------------------------------------------------------
// The cache of loaded versions

export interface PolicyVersionCacheOptions {
  store: BlobStore;
  /** Local folder the versions are downloaded to, one sub-folder per version. */
  cacheDir: string;
  /** Most versions kept loaded (an ONNX Runtime session each); the least recently used is released. */
  maxLoaded: number;
  loadOptions?: PolicyOptions;
}

export interface PolicyVersionCacheStats {
  /** Loaded versions, least recently used first. */
  loaded: string[];
  /** loadPolicy calls so far. */
  loads: number;
  /** Versions fetched from the blob store (not found already verified in the cache folder). */
  downloads: number;
  evictions: number;
}

export class PolicyVersionCacheClosedError extends Error {
  override readonly name = 'PolicyVersionCacheClosedError';
  constructor() {
    super('this PolicyVersionCache is closed; create another to load policy versions');
  }
}

class CacheEntry {
  inner: Policy | null = null;
  handle: Policy | null = null;
  /** generate calls running on `inner`. */
  active = 0;
  evicted = false;
  released: Promise<void> | null = null;
  /** Set by `get` right after construction. */
  ready!: Promise<Policy>;

  constructor(readonly version: string) {}
}

/**
 * Loaded policy versions by name, at most `maxLoaded` of them (least recently used released first).
 * Concurrent `get`s of one version share one download and one load.
 *
 * The Policy handed out stays usable after its version is evicted: an evicted version is released once
 * its running generate calls end, and a later call on the same object loads the version again through
 * the cache. Its `dispose()` drops the version from the cache. `close()` releases everything.
 */
export class PolicyVersionCache {
  private readonly entries = new Map<string, CacheEntry>();
  /** Evicted entries whose policy is not released yet. */
  private readonly retiring = new Set<CacheEntry>();
  private closed = false;
  private counters = { loads: 0, downloads: 0, evictions: 0 };

  constructor(private readonly options: PolicyVersionCacheOptions) {
    if (!Number.isInteger(options.maxLoaded) || options.maxLoaded < 1)
      throw new RangeError(`maxLoaded must be a positive integer, got ${options.maxLoaded}`);
    if (typeof options.cacheDir !== 'string' || options.cacheDir.trim() === '')
      throw new RangeError('cacheDir must name a folder');
  }

  async get(version: string): Promise<Policy> {
    if (this.closed) throw new PolicyVersionCacheClosedError();
    checkId('policy version', version);
    const existing = this.entries.get(version);
    if (existing !== undefined) {
      this.touch(existing);
      return existing.ready;
    }
    const entry = new CacheEntry(version);
    entry.ready = this.load(entry);
    this.entries.set(version, entry);
    return entry.ready;
  }

  stats(): PolicyVersionCacheStats {
    return {
      loaded: [...this.entries.values()]
        .filter((entry) => entry.inner !== null)
        .map((entry) => entry.version),
      ...this.counters,
    };
  }

  /** Releases every loaded version (queued requests are rejected, running passes finish first). */
  async close(): Promise<void> {
    this.closed = true;
    const entries = [...this.entries.values(), ...this.retiring];
    for (const entry of entries) this.evict(entry, true);
    await Promise.allSettled(entries.map((entry) => entry.ready));
    await Promise.all(entries.map((entry) => entry.released));
  }

  private async load(entry: CacheEntry): Promise<Policy> {
    try {
      const fetched = await fetchPolicyVersion(this.options.store, entry.version, this.options.cacheDir);
      if (fetched.downloaded) this.counters.downloads++;
      this.counters.loads++;
      entry.inner = await loadPolicy(fetched.folder, this.options.loadOptions);
    } catch (error) {
      if (this.entries.get(entry.version) === entry) this.entries.delete(entry.version);
      throw error;
    }
    entry.handle = this.handleOf(entry, entry.inner);
    // Evicted while loading (the cache was closed): release at once; the handle reloads if it is used.
    if (entry.evicted) this.release(entry, this.closed);
    else this.enforceBound(entry);
    return entry.handle;
  }

  private touch(entry: CacheEntry): void {
    if (this.entries.get(entry.version) !== entry) return;
    this.entries.delete(entry.version);
    this.entries.set(entry.version, entry);
  }

  private enforceBound(keep: CacheEntry): void {
    const loaded = [...this.entries.values()].filter((entry) => entry.inner !== null);
    let excess = loaded.length - this.options.maxLoaded;
    for (const entry of loaded) {
      if (excess <= 0) break;
      if (entry === keep) continue;
      this.evict(entry, false);
      this.counters.evictions++;
      excess--;
    }
  }

  /** Takes the entry out of the cache; its policy is released now, or when its running calls end. */
  private evict(entry: CacheEntry, now: boolean): void {
    if (this.entries.get(entry.version) === entry) this.entries.delete(entry.version);
    entry.evicted = true;
    if (entry.inner !== null) this.release(entry, now);
  }

  private release(entry: CacheEntry, now: boolean): void {
    const inner = entry.inner;
    if (inner === null || entry.released !== null) return;
    if (entry.active > 0 && !now) {
      this.retiring.add(entry);
      return;
    }
    this.retiring.delete(entry);
    entry.released = inner.dispose().catch(() => undefined); // a failed release must not fail a request
  }

  private handleOf(entry: CacheEntry, inner: Policy): Policy {
    const generate = async (request: GenerateRequest): Promise<GenerateResult> => {
      if (entry.evicted) return (await this.get(entry.version)).generate(request);
      this.touch(entry);
      entry.active++;
      try {
        return await inner.generate(request);
      } finally {
        entry.active--;
        if (entry.evicted && entry.active === 0) this.release(entry, false);
      }
    };
    return {
      folder: inner.folder,
      config: inner.config,
      tokenizer: inner.tokenizer,
      eosTokenIds: inner.eosTokenIds,
      generate,
      applyChatTemplate: (messages: readonly ChatMessage[]) => inner.applyChatTemplate(messages),
      stats: (): PolicyStats => inner.stats(),
      dispose: async (): Promise<void> => {
        this.evict(entry, false);
        await entry.released;
      },
    };
  }
}
