/**
 * Model activities, served by inference workers: prepare an episode (tokenise and chunk its document), run one
 * memory step, answer. Thin wrappers over `EpisodeSteps` that add heartbeats and turn bad input into
 * non-retryable failures; infrastructure errors (storage down, worker lost) are left to Temporal's retries.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { EpisodeInputError, EpisodeSteps } from '../lib/episode/steps';
import type { ChunkManifest, EpisodeRef, EpisodeResult, EpisodeSettings, MemoryStepSummary } from '../lib/episode/types';
import type { BlobStore } from '../lib/storage';
import { BlobStoreError } from '../lib/storage';
import { ExecutionProviderError, GenerationRequestError, ModelFolderError, type Policy } from '../lib/model';
import { AgentInputError } from '../lib/agent';

export interface ModelActivityDeps {
  store: BlobStore;
  policy: Policy;
}

/** Errors no retry can fix become non-retryable failures carrying the original message. */
export async function failFastOnBadInput<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const userError =
      error instanceof EpisodeInputError ||
      error instanceof AgentInputError ||
      error instanceof GenerationRequestError ||
      error instanceof ModelFolderError ||
      error instanceof ExecutionProviderError ||
      (error instanceof BlobStoreError && !error.retryable);
    if (userError) {
      throw ApplicationFailure.nonRetryable(error.message, error.name);
    }
    throw error;
  }
}

/** Heartbeats every few seconds while `work` runs, so a dead worker is noticed after the heartbeat timeout. */
export async function withHeartbeat<T>(work: () => Promise<T>, intervalMs = 2000): Promise<T> {
  const context = Context.current();
  const timer = setInterval(() => context.heartbeat(), intervalMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

export function createModelActivities(deps: ModelActivityDeps) {
  const steps = new EpisodeSteps({ store: deps.store, policy: deps.policy });
  return {
    /** Only the counts travel back to the workflow; the chunk ranges stay in the manifest in the blob store. */
    async prepareEpisode(ref: EpisodeRef, settings: EpisodeSettings): Promise<Pick<ChunkManifest, 'chunkCount' | 'documentTokens'>> {
      const manifest = await withHeartbeat(() => failFastOnBadInput(() => steps.prepare(ref, settings)));
      return { chunkCount: manifest.chunkCount, documentTokens: manifest.documentTokens };
    },
    async memoryStep(ref: EpisodeRef, settings: EpisodeSettings, step: number): Promise<MemoryStepSummary> {
      return withHeartbeat(() => failFastOnBadInput(() => steps.memoryStep(ref, settings, step)));
    },
    async answerEpisode(ref: EpisodeRef, settings: EpisodeSettings, chunkCount: number): Promise<EpisodeResult> {
      return withHeartbeat(() => failFastOnBadInput(() => steps.answer(ref, settings, chunkCount)));
    },
  };
}

export type ModelActivities = ReturnType<typeof createModelActivities>;
