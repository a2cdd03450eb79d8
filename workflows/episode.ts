/**
 * One ReMemR1 episode, the paper's loop: chunk the document, then for each chunk one memory step (read the chunk
 * with the current memory and what the last callback recalled, write the new memory, maybe a new callback
 * query), then answer from the last memory.
 *
 * Only references and small values live in workflow state; memories, chunks and token ids stay in the blob
 * store. When Temporal suggests it, the workflow continues as new from the next step, so a document of millions
 * of tokens keeps a bounded history. What the UI shows of its progress is kept by episode-progress.ts.
 */
import { allHandlersFinished, condition, continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { ModelActivities } from '../activities/model';
import type { EpisodeRef, EpisodeResult, EpisodeSettings } from '../lib/episode/types';
import { EpisodeProgressReport, type EpisodeResume } from './episode-progress';
import { activityOptions, type WorkflowRuntime } from './options';

export {
  episodeProgressQuery,
  PROGRESS_UPSERT_INTERVAL_MS,
  type EpisodeProgress,
  type EpisodeResume,
} from './episode-progress';

export interface EpisodeWorkflowInput extends EpisodeRef {
  settings: EpisodeSettings;
  runtime: WorkflowRuntime;
  dataset?: string;
  /** Set by continue-as-new: where the previous run of this workflow stopped. */
  resume?: EpisodeResume;
}

export async function episodeWorkflow(input: EpisodeWorkflowInput): Promise<EpisodeResult> {
  const { settings, resume } = input;
  const ref: EpisodeRef = { runId: input.runId, episodeId: input.episodeId };
  const model = proxyActivities<ModelActivities>(
    activityOptions(input.runtime.activities.modelStep, input.runtime.taskQueues.inference),
  );
  const report = new EpisodeProgressReport(input.runId, input.dataset, resume);

  // Chunk the document (a continued run already has).
  const { chunkCount, documentTokens } = resume ?? (await model.prepareEpisode(ref, settings));
  report.reading(chunkCount, documentTokens);

  // One memory step per chunk: m_t from (question, chunk_t, m_(t-1), what the recall query of step t-1 found).
  for (let step = resume?.nextStep ?? 0; step < chunkCount; step += 1) {
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof episodeWorkflow>({ ...input, resume: report.resumeAt(step) });
    }
    report.stepDone(step, await model.memoryStep(ref, settings, step));
  }

  // The final turn: the answer from the last memory, scored when gold answers are known.
  report.answering();
  const result = await model.answerEpisode(ref, settings, chunkCount);
  report.done();
  return result;
}
