/**
 * The episode settings that the configuration (temporal.config.ts, `episodes`) gives defaults for and the command
 * line can override: shared by `qa`, `train`, `sft` and `schedule create`.
 *
 * A metrics mode or memory content at its default is left out of the settings, so settings (and the run ids
 * derived from them) made before the option existed stay as they were: an absent field means the default. The
 * generation limits are always resolved to numbers (lib/episode/generation-limits.ts).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Option, type Command } from 'commander';
import { DEFAULT_METRICS_MODE, METRICS_MODES, type MetricsMode } from '../lib/agent/metrics';
import { DEFAULT_MEMORY_CONTENT, MEMORY_CONTENTS, type MemoryContent } from '../lib/agent/tags';
import {
  modelGenerationLimits,
  resolveGenerationLimits,
  type ModelGenerationLimits,
  type ResolvedGenerationLimits,
} from '../lib/episode/generation-limits';
import { parseRulePolicyPath } from '../lib/episode/rule-policy';
import type { EpisodeSettings } from '../lib/episode/types';
import { ConfigSchemaError, parseGenerationConfig } from '../lib/model/config';
import { MODEL_FILES } from '../lib/model/folder';
import { policyFileKey, type BlobStore } from '../lib/storage';
import type { RememConfig } from '../temporal.config';

export interface EpisodeSettingOptions {
  metrics?: MetricsMode;
  memoryContent?: MemoryContent;
}

export function withEpisodeSettingOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--metrics <mode>',
        'answer scoring: project or hotpotqa-official (default: the config’s episodes.metricsMode, project)',
      ).choices(METRICS_MODES),
    )
    .addOption(
      new Option(
        '--memory-content <what>',
        'what a memory turn keeps: update (the <update> content) or response (all but <recall>, as released checkpoints expect; default: the config’s episodes.memoryContent, update)',
      ).choices(MEMORY_CONTENTS),
    );
}

/** The settings fields the options and the configuration give (command line first). */
export function episodeSettingOverrides(
  options: EpisodeSettingOptions,
  config: Pick<RememConfig, 'episodes'>,
): Pick<EpisodeSettings, 'metricsMode' | 'memoryContent'> {
  const metricsMode = options.metrics ?? config.episodes.metricsMode;
  const memoryContent = options.memoryContent ?? config.episodes.memoryContent;
  return {
    ...(metricsMode === DEFAULT_METRICS_MODE ? {} : { metricsMode }),
    ...(memoryContent === DEFAULT_MEMORY_CONTENT ? {} : { memoryContent }),
  };
}

/** What the command line says of the generation limits (undefined = not given). */
export interface GenerationLimitOptions {
  memoryTokens?: number;
  answerTokens?: number;
  chunkTokens?: number;
}

function limitsOf(json: unknown, where: string): ModelGenerationLimits {
  try {
    return modelGenerationLimits(parseGenerationConfig(json).raw);
  } catch (error) {
    if (error instanceof ConfigSchemaError) throw new Error(`${where}: ${error.message}`);
    throw error;
  }
}

/**
 * The limits in the generation_config.json of the model a run samples with: a policy version's in the blob store,
 * or the configured model folder's; null when there is none (or the model is a rule policy).
 */
export async function readModelGenerationLimits(
  source: { policyVersion: string; store: BlobStore } | { folder: string },
): Promise<ModelGenerationLimits | null> {
  if ('policyVersion' in source) {
    const key = policyFileKey(source.policyVersion, MODEL_FILES.generationConfig);
    if (!(await source.store.exists(key))) return null;
    return limitsOf(
      await source.store.getJson<unknown>(key),
      `policy version ${source.policyVersion}'s ${MODEL_FILES.generationConfig}`,
    );
  }
  if (parseRulePolicyPath(source.folder) !== null) return null;
  const file = path.join(source.folder, MODEL_FILES.generationConfig);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  return limitsOf(json, file);
}

/** The generation limits of a run: command line, then config, then the model's generation_config.json, then defaults. */
export async function runGenerationLimits(
  options: GenerationLimitOptions,
  config: Pick<RememConfig, 'episodes' | 'model'>,
  model: { policyVersion: string; store: BlobStore } | { folder: string } = { folder: config.model.path },
): Promise<ResolvedGenerationLimits> {
  return resolveGenerationLimits({
    commandLine: {
      memoryMaxNewTokens: options.memoryTokens,
      answerMaxNewTokens: options.answerTokens,
      chunkTokens: options.chunkTokens,
    },
    config: {
      memoryMaxNewTokens: config.episodes.memoryMaxNewTokens,
      answerMaxNewTokens: config.episodes.answerMaxNewTokens,
      chunkTokens: config.episodes.chunkTokens,
    },
    model: await readModelGenerationLimits(model),
  });
}
