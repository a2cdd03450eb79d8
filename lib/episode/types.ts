/**
 * Plain data exchanged between episode workflows, their activities and the in-process runner. Types only,
 * plus defaults: safe to import from workflow code.
 */
import type { RetrievalScorer } from '../agent';

export type AgentMode = 'rememr1' | 'memagent';

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
  /** Prompt templates (JSON text as accepted by the agent core); empty = the built-in ones. */
  promptTemplates?: string;
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
  promptTokens: number;
  finishReason: string;
}

export interface AnswerRecord {
  response: string;
  answer: string | null;
  formatValid: boolean;
  tokenIds: number[];
  logProbs: number[];
  promptTokens: number;
}

export interface EpisodeScores {
  exactMatch: number;
  f1: number;
  subExactMatch: number;
}

/** The result row of one episode (runs/{run}/results/{episode}.json). */
export interface EpisodeResult extends EpisodeRef {
  rowIndex: number;
  question: string;
  answer: string | null;
  answers: string[];
  /** Present when gold answers are known. */
  scores: EpisodeScores | null;
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
