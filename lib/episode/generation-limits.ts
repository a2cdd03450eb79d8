/**
 * How many new tokens a memory turn and the final turn may generate, scaled to the model; and the chunk size the
 * model reads (a small model trained on short chunks reads its documents in those).
 *
 * A small model writes short turns; a real one (the released runs allow 2,048 new tokens per memory turn) is cut
 * off before `</update>` or `\boxed{` by small limits. So the limits of a run are resolved, per turn kind, from the
 * first of these that gives one:
 *   1. the command line (`--memory-tokens`, `--answer-tokens`);
 *   2. the configuration (`episodes.memoryMaxNewTokens` / `episodes.answerMaxNewTokens`, or
 *      REMEMR1_MEMORY_MAX_NEW_TOKENS / REMEMR1_ANSWER_MAX_NEW_TOKENS);
 *   3. the model folder's `generation_config.json`: the project's block
 *        "rememr1": { "memory_max_new_tokens": 2048, "answer_max_new_tokens": 2048 }
 *      for that turn kind, else Hugging Face's `max_new_tokens` for both;
 *   4. the built-in defaults (`defaultEpisodeSettings`: 64 and 24, sized for the bundled tiny model).
 * The chunk size follows the same order: `--chunk-tokens`, `episodes.chunkTokens` (REMEMR1_CHUNK_TOKENS),
 * `rememr1.chunk_tokens`, then 512.
 * The resolved numbers go into the episode settings, so the run's workflow input, its run binding and every turn
 * record (`sampling.maxNewTokens`) carry the limits actually used. Pure: the caller reads the files.
 */
import type { GenerationConfigJson } from '../model/config';
import { defaultEpisodeSettings } from './types';

/** The limits a model folder's generation_config.json gives (absent fields: none). */
export interface ModelGenerationLimits {
  maxNewTokens?: number;
  memoryMaxNewTokens?: number;
  answerMaxNewTokens?: number;
  chunkTokens?: number;
}

export interface TurnLimits {
  memoryMaxNewTokens?: number;
  answerMaxNewTokens?: number;
  chunkTokens?: number;
}

export interface GenerationLimitLayers {
  commandLine: TurnLimits;
  config: TurnLimits;
  /** null when the model has no generation_config.json (or is a rule policy). */
  model: ModelGenerationLimits | null;
}

export interface ResolvedGenerationLimits {
  memoryMaxNewTokens: number;
  answerMaxNewTokens: number;
  chunkTokens: number;
  /** Where each number came from, for the run's log. */
  sources: { memory: string; answer: string; chunk: string };
}

/** The limits fields of a parsed generation_config.json. */
export function modelGenerationLimits(json: GenerationConfigJson): ModelGenerationLimits {
  return {
    ...(json.max_new_tokens === undefined ? {} : { maxNewTokens: json.max_new_tokens }),
    ...(json.rememr1?.memory_max_new_tokens === undefined
      ? {}
      : { memoryMaxNewTokens: json.rememr1.memory_max_new_tokens }),
    ...(json.rememr1?.answer_max_new_tokens === undefined
      ? {}
      : { answerMaxNewTokens: json.rememr1.answer_max_new_tokens }),
    ...(json.rememr1?.chunk_tokens === undefined ? {} : { chunkTokens: json.rememr1.chunk_tokens }),
  };
}

function resolveChunkTokens(layers: GenerationLimitLayers): { value: number; source: string } {
  if (layers.commandLine.chunkTokens !== undefined)
    return { value: layers.commandLine.chunkTokens, source: 'command line' };
  if (layers.config.chunkTokens !== undefined)
    return { value: layers.config.chunkTokens, source: 'config episodes.chunkTokens' };
  if (layers.model?.chunkTokens !== undefined)
    return { value: layers.model.chunkTokens, source: 'generation_config.json rememr1.chunk_tokens' };
  return { value: defaultEpisodeSettings.chunkTokens, source: 'built-in default' };
}

function resolveOne(
  layers: GenerationLimitLayers,
  turn: 'memory' | 'answer',
): { value: number; source: string } {
  const field = turn === 'memory' ? 'memoryMaxNewTokens' : 'answerMaxNewTokens';
  const commandLine = layers.commandLine[field];
  if (commandLine !== undefined) return { value: commandLine, source: 'command line' };
  const config = layers.config[field];
  if (config !== undefined) return { value: config, source: `config episodes.${field}` };
  const perTurn = layers.model?.[field];
  if (perTurn !== undefined) {
    return { value: perTurn, source: `generation_config.json rememr1.${turn}_max_new_tokens` };
  }
  const shared = layers.model?.maxNewTokens;
  if (shared !== undefined) return { value: shared, source: 'generation_config.json max_new_tokens' };
  return { value: defaultEpisodeSettings[field], source: 'built-in default' };
}

/** The limits of a run (module comment: command line, config, generation_config.json, built-in default). */
export function resolveGenerationLimits(layers: GenerationLimitLayers): ResolvedGenerationLimits {
  const memory = resolveOne(layers, 'memory');
  const answer = resolveOne(layers, 'answer');
  const chunk = resolveChunkTokens(layers);
  return {
    memoryMaxNewTokens: memory.value,
    answerMaxNewTokens: answer.value,
    chunkTokens: chunk.value,
    sources: { memory: memory.source, answer: answer.source, chunk: chunk.source },
  };
}

/** One line for the run's log: "generation limits: memory turn 2048 (…), final turn 2048 (…)". */
export function describeGenerationLimits(limits: ResolvedGenerationLimits): string {
  return `chunks of ${limits.chunkTokens} tokens (${limits.sources.chunk}); generation limits: memory turn ${limits.memoryMaxNewTokens} new tokens (${limits.sources.memory}), final turn ${limits.answerMaxNewTokens} (${limits.sources.answer})`;
}
