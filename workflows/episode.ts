/**
 * One ReMemR1 episode: prepare (chunk the document) → one `memoryStep` activity per chunk → `answerEpisode`.
 *
 * Only references and small values live in workflow state; memories, chunks and token ids stay in the blob
 * store. When Temporal suggests it, the workflow continues as new from the next step, so a document of millions
 * of tokens keeps a bounded history.
 *
 * The chunks-done search attribute is written at most every PROGRESS_UPSERT_INTERVAL_MS of workflow time (and
 * whenever the status changes): each upsert is a history event and a visibility write, and per step it cost
 * 3–5 ms of a 20–27 ms round trip (bench/orchestration.ts). The progress query and the current details are exact
 * at every step.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ModelActivities } from '../activities/model';
import type { EpisodeRef, EpisodeResult, EpisodeSettings } from '../lib/episode/types';
import { searchAttributes } from '../lib/temporal/search-attributes';
import { activityOptions, type WorkflowRuntime } from './options';

export interface EpisodeWorkflowInput extends EpisodeRef {
  settings: EpisodeSettings;
  runtime: WorkflowRuntime;
  dataset?: string;
  /** Set by continue-as-new: where the previous run of this workflow stopped. */
  resume?: { nextStep: number; chunkCount: number; documentTokens: number; recallQueries: number };
}

export interface EpisodeProgress {
  status: 'preparing' | 'reading' | 'answering' | 'done';
  chunksDone: number;
  chunksTotal: number;
  documentTokens: number;
  lastMemory: string;
  lastRecallQuery: string | null;
  recallQueries: number;
}

export const episodeProgressQuery = defineQuery<EpisodeProgress>('progress');

/** Least workflow time between two upserts of the chunks-done search attribute while reading. */
export const PROGRESS_UPSERT_INTERVAL_MS = 5_000;

export async function episodeWorkflow(input: EpisodeWorkflowInput): Promise<EpisodeResult> {
  const ref: EpisodeRef = { runId: input.runId, episodeId: input.episodeId };
  const model = proxyActivities<ModelActivities>(
    activityOptions(input.runtime.activities.modelStep, input.runtime.taskQueues.inference),
  );
  const progress: EpisodeProgress = {
    status: 'preparing',
    chunksDone: input.resume?.nextStep ?? 0,
    chunksTotal: input.resume?.chunkCount ?? 0,
    documentTokens: input.resume?.documentTokens ?? 0,
    lastMemory: '',
    lastRecallQuery: null,
    recallQueries: input.resume?.recallQueries ?? 0,
  };
  setHandler(episodeProgressQuery, () => progress);
  // The UI's details say what the progress query says from the start (setting them adds nothing to the history).
  setCurrentDetails(describeProgress(progress));
  // Episodes started before the upserts were throttled replay as they ran: one upsert per step.
  const throttleProgressUpserts = patched('throttled-progress-upserts');
  upsertSearchAttributes([
    { key: searchAttributes.kind, value: 'episode' },
    { key: searchAttributes.runId, value: input.runId },
    { key: searchAttributes.status, value: progress.status },
    ...(input.dataset ? [{ key: searchAttributes.dataset, value: input.dataset }] : []),
    ...(input.resume ? [{ key: searchAttributes.chunksDone, value: progress.chunksDone }] : []),
  ]);

  let { chunkCount, documentTokens } = input.resume ?? { chunkCount: 0, documentTokens: 0 };
  if (!input.resume) {
    const manifest = await model.prepareEpisode(ref, input.settings);
    chunkCount = manifest.chunkCount;
    documentTokens = manifest.documentTokens;
  }
  Object.assign(progress, { status: 'reading', chunksTotal: chunkCount, documentTokens });
  setCurrentDetails(describeProgress(progress));
  upsertSearchAttributes([
    { key: searchAttributes.status, value: progress.status },
    { key: searchAttributes.chunksTotal, value: chunkCount },
    { key: searchAttributes.documentTokens, value: documentTokens },
  ]);

  // Date.now() in a workflow is the workflow task's time: deterministic on replay.
  let progressUpsertedAt = Date.now();
  for (let step = input.resume?.nextStep ?? 0; step < chunkCount; step += 1) {
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof episodeWorkflow>({
        ...input,
        resume: { nextStep: step, chunkCount, documentTokens, recallQueries: progress.recallQueries },
      });
    }
    const summary = await model.memoryStep(ref, input.settings, step);
    progress.chunksDone = step + 1;
    progress.lastMemory = summary.memoryPreview;
    progress.lastRecallQuery = summary.recallQuery;
    if (summary.recallQuery !== null) progress.recallQueries += 1;
    if (!throttleProgressUpserts || Date.now() - progressUpsertedAt >= PROGRESS_UPSERT_INTERVAL_MS) {
      upsertSearchAttributes([{ key: searchAttributes.chunksDone, value: progress.chunksDone }]);
      progressUpsertedAt = Date.now();
    }
    setCurrentDetails(describeProgress(progress));
  }

  progress.status = 'answering';
  upsertSearchAttributes([
    { key: searchAttributes.status, value: progress.status },
    { key: searchAttributes.chunksDone, value: progress.chunksDone },
  ]);
  setCurrentDetails(describeProgress(progress));
  const result = await model.answerEpisode(ref, input.settings, chunkCount);
  progress.status = 'done';
  upsertSearchAttributes([{ key: searchAttributes.status, value: progress.status }]);
  return result;
}

/** Markdown for the Temporal UI's "current details" panel: the progress query's value, for people. */
function describeProgress(progress: EpisodeProgress): string {
  const quote = (text: string): string => text.replace(/\s+/g, ' ').trim() || '(empty)';
  if (progress.status === 'preparing') return '**Preparing**: splitting the document into chunks';
  return [
    `**Chunk ${progress.chunksDone} of ${progress.chunksTotal}** (${progress.documentTokens} document tokens, ${progress.recallQueries} callback queries so far)`,
    `Memory: ${quote(progress.lastMemory)}`,
    `Callback query: ${progress.lastRecallQuery === null ? 'none' : quote(progress.lastRecallQuery)}`,
  ].join('\n\n');
}
