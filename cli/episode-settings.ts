/**
 * The episode settings that the configuration (temporal.config.ts, `episodes`) gives defaults for and the command
 * line can override: shared by `qa`, `train`, `sft` and `schedule create`.
 *
 * A setting at its default is left out of the settings, so settings (and the run ids derived from them) made
 * before the option existed stay as they were: an absent field means the default.
 */
import { Option, type Command } from 'commander';
import { DEFAULT_METRICS_MODE, METRICS_MODES, type MetricsMode } from '../lib/agent/metrics';
import { DEFAULT_MEMORY_CONTENT, MEMORY_CONTENTS, type MemoryContent } from '../lib/agent/tags';
import type { EpisodeSettings } from '../lib/episode/types';
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
