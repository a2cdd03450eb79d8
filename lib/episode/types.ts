/**
 * Plain data exchanged between episode workflows, their activities and the in-process runner. Types only,
 * plus defaults: safe to import from workflow code.
 */
import type { AgentMode, MemoryContent, MetricsMode, RetrievalScorer } from '../agent';

export type { AgentMode };

/** How one episode reads and answers; the same settings and seed give the same text and the same writes. */
export interface EpisodeSettings {
  mode: AgentMode;
  /** Document chunk size in tokens of the policy's tokenizer. */
  chunkTokens: number;
  /** Optional cap on the number of chunks read (training uses a fixed number); 0 = no cap. */
  maxChunks: number;
  memoryMaxNewTokens: number;
  answerMaxNewTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  /** Base seed; every model call derives its own from (seed, episode id, step). */
  seed: number;
  retrieval: { scorer: RetrievalScorer; topK: number; minScore: number };
  /**
   * `false` switches the callback off (an ablation): the model's `<recall>` queries are recorded but
   * answered with nothing, so it sees "Nothing recalled." at every step. Absent = on in `rememr1` mode.
   */
  callback?: boolean;
  /** Prompt templates (JSON text as accepted by the agent core); empty = the built-in ones. */
  promptTemplates?: string;
  /**
   * The exported policy version (policies/{version}/ in the blob store) that samples this episode; absent =
   * the inference worker's configured model.
   */
  policyVersion?: string;
  /**
   * How the answer is scored (lib/agent/metrics.ts): `project` or `hotpotqa-official`. Absent = `project`, so
   * settings written before the option existed mean what they meant. Set only when not the default (run ids and
   * run bindings hash the settings).
   */
  metricsMode?: MetricsMode;
  /**
   * What a `rememr1` memory turn writes into the memory (lib/agent/tags.ts rules 7 and 7b): `update`, the
   * `<update>` content, or `response`, the whole response minus its `<recall>` blocks (the released code's, to
   * run released checkpoints). Absent = `update`, so histories and records made before the option keep their
   * meaning; set only when not the default.
   */
  memoryContent?: MemoryContent;
}

export const defaultEpisodeSettings: EpisodeSettings = {
  mode: 'rememr1',
  chunkTokens: 512,
  maxChunks: 0,
  memoryMaxNewTokens: 64,
  answerMaxNewTokens: 24,
  temperature: 0.7,
  topP: 0.95,
  topK: 0,
  seed: 20250923,
  retrieval: { scorer: 'recall', topK: 1, minScore: 0 },
};

/**
 * Rollout sampling (REMEMR1.md §1, §4): temperature 1 over the full distribution (no top-p, no top-k), so the
 * log-probability recorded for each sampled token is log π_old(token), the one the GRPO ratio divides by.
 */
export const ROLLOUT_SAMPLING = { temperature: 1, topP: 1, topK: 0 } as const;

/** True when the sampling parameters are those of a rollout (see `ROLLOUT_SAMPLING`). */
export function isRolloutSampling(sampling: Pick<EpisodeSettings, 'temperature' | 'topP' | 'topK'>): boolean {
  return (
    sampling.temperature === ROLLOUT_SAMPLING.temperature &&
    sampling.topP === ROLLOUT_SAMPLING.topP &&
    sampling.topK === ROLLOUT_SAMPLING.topK
  );
}

/** `base` in rollout mode: rollout sampling, sampled by `policyVersion`; everything else (chunking, limits, seed) kept. */
export function rolloutSettings(base: EpisodeSettings, policyVersion: string): EpisodeSettings {
  return { ...base, ...ROLLOUT_SAMPLING, policyVersion };
}

/**
 * The episode id of rollout `rollout` (0 … G−1) of the question whose episode id is `questionEpisodeId`:
 * `{question}.g{rollout}`. Every model call seeds itself from (settings.seed, episode id, step), so the G
 * rollouts of a question sample from G distinct seed streams with the same settings.
 */
export function rolloutEpisodeId(questionEpisodeId: string, rollout: number): string {
  if (!Number.isSafeInteger(rollout) || rollout < 0) throw new RangeError(`rollout must be an integer ≥ 0, got ${rollout}`);
  return `${questionEpisodeId}.g${rollout}`;
}

/** What an episode reads: written to the blob store by the batch (or the CLI) before the episode starts. */
export interface EpisodeInputRecord {
  id: string;
  rowIndex: number;
  question: string;
  context: string;
  answers: string[];
}

/** Identifies one episode's objects in the blob store. */
export interface EpisodeRef {
  runId: string;
  episodeId: string;
}

export interface ChunkManifest {
  chunkCount: number;
  documentTokens: number;
  /** Token offsets [start, end) of each chunk in the tokenised document. */
  chunkTokenRanges: Array<[number, number]>;
}

/** How one turn was sampled (recorded with it, so a trainer can check the log-probs are what it needs). */
export interface TurnSampling {
  temperature: number;
  topP: number;
  topK: number;
  /** The generation seed of the turn: (settings.seed, episode id, step). */
  seed: string;
  /** The policy version that sampled the turn; null = the inference worker's configured model. */
  policyVersion: string | null;
  /** The turn's limit on new tokens (the settings' memory or answer limit); absent in records written before it was kept. */
  maxNewTokens?: number;
}

/** One memory step as stored at runs/{run}/episodes/{episode}/memory/{step}.json. */
export interface MemoryStepRecord {
  step: number;
  /** m_t: the memory after this step (an invalid turn keeps m_(t-1); null only if no memory exists yet). */
  memory: string | null;
  /** q_t: the callback query written at this step, if any. */
  recallQuery: string | null;
  /** What q_t retrieved from memories of steps < t; shown to the model at step t + 1. */
  recalled: Array<{ step: number; text: string; score: number }>;
  formatValid: boolean;
  issues: string[];
  /** The model's raw response and what GRPO needs of it. */
  response: string;
  tokenIds: number[];
  logProbs: number[];
  /** The prompt's token ids exactly as the model saw them. Absent in records written before they were kept. */
  promptIds?: number[];
  promptTokens: number;
  finishReason: string;
  /** Absent in records written before it was kept. */
  sampling?: TurnSampling;
}

export interface AnswerRecord {
  response: string;
  answer: string | null;
  formatValid: boolean;
  tokenIds: number[];
  logProbs: number[];
  /** The prompt's token ids exactly as the model saw them. Absent in records written before they were kept. */
  promptIds?: number[];
  promptTokens: number;
  /** Absent in records written before it was kept. */
  sampling?: TurnSampling;
}

export interface EpisodeScores {
  exactMatch: number;
  f1: number;
  subExactMatch: number;
}

/** The result row of one episode (runs/{run}/results/{episode}.json). */
export interface EpisodeResult extends EpisodeRef {
  rowIndex: number;
  /** The dataset row's own id (or `row-N`). Absent in rows written before it was kept. */
  id?: string;
  question: string;
  answer: string | null;
  answers: string[];
  /** Present when gold answers are known. */
  scores: EpisodeScores | null;
  /** The metrics mode that computed `scores`; absent in rows written before it was kept (they are `project`). */
  metricsMode?: MetricsMode;
  chunkCount: number;
  documentTokens: number;
  formatValidSteps: number;
  recallQueries: number;
}

/** What one memory step reports back to its workflow (small: the full record stays in the blob store). */
export interface MemoryStepSummary {
  step: number;
  memoryPreview: string;
  recallQuery: string | null;
  recalledStep: number | null;
  formatValid: boolean;
  generatedTokens: number;
}
