/**
 * Model activities, served by inference workers: prepare an episode (tokenise and chunk its document), run one
 * memory step, answer. Thin wrappers over `EpisodeSteps` that add heartbeats and turn bad input into
 * non-retryable failures; infrastructure errors (storage down, worker lost) are left to Temporal's retries.
 */
import type { PolicyProvider } from '../lib/episode/policies';
import { EpisodeSteps } from '../lib/episode/steps';
import type { ChunkManifest, EpisodeRef, EpisodeResult, EpisodeSettings, MemoryStepSummary } from '../lib/episode/types';
import type { BlobStore } from '../lib/storage';
import type { Policy } from '../lib/model';
import { failFastOnBadInput, withHeartbeat } from './failures';
import { recordEpisodeResult, recordStepObservation, timedStep } from './observability';

export interface ModelActivityDeps {
  store: BlobStore;
  /** One policy for every episode, or a provider choosing one by the settings' `policyVersion`. */
  policy: Policy | PolicyProvider;
}

export function createModelActivities(deps: ModelActivityDeps) {
  const steps = new EpisodeSteps({ store: deps.store, policy: deps.policy, observe: recordStepObservation });
  return {
    /** Only the counts travel back to the workflow; the chunk ranges stay in the manifest in the blob store. */
    async prepareEpisode(ref: EpisodeRef, settings: EpisodeSettings): Promise<Pick<ChunkManifest, 'chunkCount' | 'documentTokens'>> {
      const manifest = await timedStep('prepare', () => withHeartbeat(() => failFastOnBadInput(() => steps.prepare(ref, settings))));
      return { chunkCount: manifest.chunkCount, documentTokens: manifest.documentTokens };
    },
    async memoryStep(ref: EpisodeRef, settings: EpisodeSettings, step: number): Promise<MemoryStepSummary> {
      return timedStep('memory', () => withHeartbeat(() => failFastOnBadInput(() => steps.memoryStep(ref, settings, step))));
    },
    async answerEpisode(ref: EpisodeRef, settings: EpisodeSettings, chunkCount: number): Promise<EpisodeResult> {
      const result = await timedStep('answer', () => withHeartbeat(() => failFastOnBadInput(() => steps.answer(ref, settings, chunkCount))));
      recordEpisodeResult(result);
      return result;
    },
  };
}

export type ModelActivities = ReturnType<typeof createModelActivities>;
