/**
 * Trainer activities, served by trainer workers on the trainer task queue:
 *  - publishPolicy: a model folder the worker can read becomes a policy version in the blob store (how a
 *    training run gets its starting weights, e.g. the bundled model);
 *  - policyUpdate: one GRPO or supervised update of a run: checkpoint `step − 1` (or the base policy for step 1)
 *    + the training batch → checkpoint `step` + the exported policy version. A heartbeat per mini-batch.
 *
 * Retries: the update is deterministic, so a retried attempt (worker killed mid-update) starts again from
 * checkpoint `step − 1` and writes bit-identical weights; an attempt that finds checkpoint `step` already
 * complete only re-exports (idempotently) and returns what the checkpoint recorded.
 */
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { loadModelFolder } from '../lib/model/folder';
import type { ModelConfig } from '../lib/model/config';
import type { RuntimeOptions } from '../lib/model/session';
import { parseSafetensors } from '../lib/model/safetensors';
import { collectQwen2Weights } from '../lib/model-build/qwen2-weights';
import { ModelFolderError } from '../lib/model/errors';
import { SAFETENSORS_FILE } from '../lib/model-build/model-folder-builder';
import { checkpointPrefix, type BlobStore } from '../lib/storage';
import type { TrainingBatch } from '../lib/training/batch';
import {
  architectureOf,
  checkpointConfigHash,
  readCheckpoint,
  weightsDigest,
  writeCheckpoint,
} from '../lib/training/checkpoint';
import { OnnxTrainerEngine } from '../lib/training/onnx-engine';
import { createAdamWState, type AdamWState } from '../lib/training/optimizer';
import { exportPolicyVersion, fetchPolicyVersion } from '../lib/training/policy-versions';
import { runUpdate, type MiniBatchMetrics, type UpdateSettings } from '../lib/training/update';
import { TrainingInputError } from '../lib/training/errors';
import { failFastOnBadInput, withHeartbeat } from './failures';

export interface PolicyUpdateInput {
  /** The training run (its checkpoints live under training/{run}/checkpoints/). */
  run: string;
  /** This update turns checkpoint step − 1 into checkpoint step (step 1 starts from `basePolicy`). */
  step: number;
  /** The policy version the run started from: the first update's weights and the KL reference. */
  basePolicy: string;
  /** Blob key of the TrainingBatch. */
  batchKey: string;
  settings: UpdateSettings;
  /** The policy version the new weights are exported as. */
  exportVersion: string;
}

export interface UpdateSummary {
  miniBatches: number;
  tokens: number;
  loss: number;
  entropy: number;
  clipFraction: number;
  kl: number;
  approxKl: number;
  gradNorm: number;
  learningRate: number;
}

export interface PolicyUpdateResult {
  step: number;
  policyVersion: string;
  weightsDigest: string;
  summary: UpdateSummary;
  /** Wall time of each phase in this attempt, in seconds (zero where a retry found the work done). */
  seconds: { load: number; update: number; checkpoint: number; export: number };
}

export interface TrainerActivityDeps {
  store: BlobStore;
  /** Where policy versions are downloaded to. */
  cacheDir: string;
  runtime?: RuntimeOptions;
}

interface BaseModel {
  folder: string;
  config: ModelConfig;
  usableVocabularySize: number;
  padTokenId: number;
  weights: Map<string, Float32Array>;
}

/** Mean of each metric over the mini-batches, weighted by tokens. */
export function summarizeUpdate(metrics: readonly MiniBatchMetrics[]): UpdateSummary {
  const tokens = metrics.reduce((sum, m) => sum + m.tokens, 0);
  const mean = (pick: (m: MiniBatchMetrics) => number): number =>
    tokens === 0 ? 0 : metrics.reduce((sum, m) => sum + pick(m) * m.tokens, 0) / tokens;
  return {
    miniBatches: metrics.length,
    tokens,
    loss: mean((m) => m.loss),
    entropy: mean((m) => m.entropy),
    clipFraction: mean((m) => m.clipFraction),
    kl: mean((m) => m.kl),
    approxKl: mean((m) => m.approxKl),
    gradNorm: mean((m) => m.gradNorm),
    learningRate: metrics.length === 0 ? 0 : metrics[metrics.length - 1].learningRate,
  };
}

/**
 * The Qwen2 weights in a model folder's model.safetensors, checked against its config: a missing, corrupt or
 * mis-shaped file is bad input (one line, no retry).
 */
async function readFolderWeights(folder: string, config: ModelConfig): Promise<Map<string, Float32Array>> {
  const file = path.join(folder, SAFETENSORS_FILE);
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ModelFolderError(
        file,
        "is missing; the trainer reads the weights from the folder's model.safetensors",
      );
    }
    throw error;
  }
  return collectQwen2Weights(config, parseSafetensors(bytes, file), file);
}

const seconds = (start: number): number => (performance.now() - start) / 1000;

export function createTrainerActivities(deps: TrainerActivityDeps) {
  const { store, cacheDir } = deps;
  const baseModels = new Map<string, Promise<BaseModel>>();
  const engines = new Map<string, OnnxTrainerEngine>();

  /** A policy version's folder, config, tokenizer size and weights (kept: it is also the KL reference). */
  function baseModel(version: string): Promise<BaseModel> {
    let model = baseModels.get(version);
    if (model === undefined) {
      model = (async () => {
        const { folder } = await fetchPolicyVersion(store, version, cacheDir);
        const loaded = await loadModelFolder(folder);
        const weights = await readFolderWeights(folder, loaded.config);
        return {
          folder,
          config: loaded.config,
          usableVocabularySize: loaded.tokenizer.vocabularySize,
          padTokenId: loaded.padTokenId,
          weights,
        };
      })();
      model.catch(() => baseModels.delete(version));
      // A run uses one base policy; keep the last two so a worker moving between runs does not grow.
      if (baseModels.size >= 2) baseModels.delete(baseModels.keys().next().value as string);
      baseModels.set(version, model);
    }
    return model;
  }

  /** One engine per architecture: its ONNX Runtime sessions are reused across updates. */
  function engineFor(base: BaseModel, weights: ReadonlyMap<string, Float32Array>): OnnxTrainerEngine {
    const key = JSON.stringify([architectureOf(base.config), base.usableVocabularySize, base.padTokenId]);
    let engine = engines.get(key);
    if (engine === undefined) {
      for (const [, old] of engines) void old.dispose();
      engines.clear();
      engine = new OnnxTrainerEngine({
        spec: base.config,
        weights,
        usableVocabularySize: base.usableVocabularySize,
        padTokenId: base.padTokenId,
        runtime: deps.runtime,
        maxSequenceLength: base.config.maxPositionEmbeddings,
      });
      engines.set(key, engine);
    } else {
      engine.loadWeights(weights);
    }
    return engine;
  }

  return {
    /** Exports the model folder at `folder` (readable by this worker) as policy `version`; idempotent. */
    async publishPolicy(folder: string, version: string): Promise<{ version: string; written: boolean }> {
      return failFastOnBadInput(async () => {
        const loaded = await loadModelFolder(folder);
        const weights = await readFolderWeights(folder, loaded.config);
        const { written } = await exportPolicyVersion(store, version, {
          config: loaded.config,
          weights,
          tokenizerFolder: folder,
        });
        return { version, written };
      });
    },

    policyUpdate,

    /** A supervised update (warm start on traces): `policyUpdate` in supervised mode. */
    async sft(input: PolicyUpdateInput): Promise<PolicyUpdateResult> {
      return policyUpdate({ ...input, settings: { ...input.settings, mode: 'sft' } });
    },

    /** Releases the engines' sessions (worker shutdown). */
    async close(): Promise<void> {
      for (const engine of engines.values()) await engine.dispose();
      engines.clear();
    },
  };

  async function policyUpdate(input: PolicyUpdateInput): Promise<PolicyUpdateResult> {
    return withHeartbeat((beat) =>
      failFastOnBadInput(async () => {
        const { run, step } = input;
        if (!Number.isInteger(step) || step < 1)
          throw new TrainingInputError(`update step must be an integer ≥ 1, got ${step}`);
        const timing = { load: 0, update: 0, checkpoint: 0, export: 0 };
        let start = performance.now();
        const base = await baseModel(input.basePolicy);
        const architecture = architectureOf(base.config);
        const configHash = checkpointConfigHash(architecture, {
          basePolicy: input.basePolicy,
          mode: input.settings.mode,
        });
        const expected = { architecture, configHash };

        let weights: Map<string, Float32Array>;
        let summary: UpdateSummary;
        if (await store.exists(`${checkpointPrefix(run, step)}manifest.json`)) {
          // An earlier attempt finished the update; only the export may be missing.
          const done = await readCheckpoint(store, run, step, expected);
          weights = done.weights;
          summary = done.extra.summary as UpdateSummary;
          timing.load = seconds(start);
        } else {
          let optimizer: AdamWState;
          let startWeights: ReadonlyMap<string, Float32Array>;
          if (step === 1) {
            startWeights = base.weights;
            optimizer = createAdamWState(base.weights);
          } else {
            const previous = await readCheckpoint(store, run, step - 1, expected);
            startWeights = previous.weights;
            optimizer = previous.optimizer;
          }
          const batch = await store.getJson<TrainingBatch>(input.batchKey);
          const engine = engineFor(base, startWeights);
          timing.load = seconds(start);
          start = performance.now();
          const metrics = await runUpdate(engine, optimizer, batch, input.settings, {
            referenceLogProbs: async (micro) => (await engine.logProbs(micro, base.weights)).logProbs,
            onMiniBatch: (m) =>
              beat({
                step,
                miniBatch: m.miniBatch + 1,
                miniBatches: input.settings.miniBatches,
                loss: m.loss,
                seconds: Math.round((performance.now() - start) / 1000),
              }),
          });
          summary = summarizeUpdate(metrics);
          timing.update = seconds(start);
          start = performance.now();
          weights = new Map([...engine.weights].map(([name, values]) => [name, Float32Array.from(values)]));
          await writeCheckpoint(store, run, step, {
            step,
            weights,
            optimizer,
            modelConfig: base.config,
            configHash,
            extra: { summary, miniBatches: metrics, batchKey: input.batchKey },
          });
          timing.checkpoint = seconds(start);
        }
        start = performance.now();
        await exportPolicyVersion(store, input.exportVersion, {
          config: base.config,
          weights,
          tokenizerFolder: base.folder,
        });
        timing.export = seconds(start);
        return {
          step,
          policyVersion: input.exportVersion,
          weightsDigest: weightsDigest(weights),
          summary,
          seconds: timing,
        };
      }),
    );
  }
}

export type TrainerActivities = Omit<ReturnType<typeof createTrainerActivities>, 'close'>;
