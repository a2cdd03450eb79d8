/**
 * An episode's progress as the Temporal UI shows it: the `progress` query, the search attributes and the
 * current details, kept apart from the episode loop so that the loop reads as the paper's.
 *
 * The chunks-done search attribute is written at most every PROGRESS_UPSERT_INTERVAL_MS of workflow time (and
 * whenever the status changes): each upsert is a history event and a visibility write, a noticeable share of a
 * step's round trip (bench/orchestration.ts). The progress query and the current details are exact at every
 * step.
 */
import { defineQuery, patched, setCurrentDetails, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { MemoryStepSummary } from '../lib/episode/types';
import { searchAttributes } from '../lib/temporal/search-attributes';

export interface EpisodeProgress {
  status: 'preparing' | 'reading' | 'answering' | 'done';
  chunksDone: number;
  chunksTotal: number;
  documentTokens: number;
  lastMemory: string;
  lastRecallQuery: string | null;
  recallQueries: number;
}

/** Where a continued-as-new episode resumes: the next chunk and the counts so far. */
export interface EpisodeResume {
  nextStep: number;
  chunkCount: number;
  documentTokens: number;
  recallQueries: number;
}

export const episodeProgressQuery = defineQuery<EpisodeProgress>('progress');

/** Least workflow time between two upserts of the chunks-done search attribute while reading. */
export const PROGRESS_UPSERT_INTERVAL_MS = 5_000;

/**
 * The bookkeeping of one episode workflow's progress. Constructing it answers the `progress` query from now on
 * and writes the episode's first search attributes; each method is one change of the episode's state.
 */
export class EpisodeProgressReport {
  readonly progress: EpisodeProgress;
  private readonly throttleUpserts: boolean;
  private upsertedAt = 0;

  constructor(runId: string, dataset: string | undefined, resume: EpisodeResume | undefined) {
    this.progress = {
      status: 'preparing',
      chunksDone: resume?.nextStep ?? 0,
      chunksTotal: resume?.chunkCount ?? 0,
      documentTokens: resume?.documentTokens ?? 0,
      lastMemory: '',
      lastRecallQuery: null,
      recallQueries: resume?.recallQueries ?? 0,
    };
    setHandler(episodeProgressQuery, () => this.progress);
    // The UI's details say what the progress query says from the start (setting them adds nothing to the history).
    setCurrentDetails(describeProgress(this.progress));
    // Episodes started before the upserts were throttled replay as they ran: one upsert per step.
    this.throttleUpserts = patched('throttled-progress-upserts');
    upsertSearchAttributes([
      { key: searchAttributes.kind, value: 'episode' },
      { key: searchAttributes.runId, value: runId },
      { key: searchAttributes.status, value: this.progress.status },
      ...(dataset ? [{ key: searchAttributes.dataset, value: dataset }] : []),
      ...(resume ? [{ key: searchAttributes.chunksDone, value: this.progress.chunksDone }] : []),
    ]);
  }

  /** The document is chunked: reading starts. */
  reading(chunkCount: number, documentTokens: number): void {
    Object.assign(this.progress, { status: 'reading', chunksTotal: chunkCount, documentTokens });
    setCurrentDetails(describeProgress(this.progress));
    upsertSearchAttributes([
      { key: searchAttributes.status, value: this.progress.status },
      { key: searchAttributes.chunksTotal, value: chunkCount },
      { key: searchAttributes.documentTokens, value: documentTokens },
    ]);
    // Date.now() in a workflow is the workflow task's time: deterministic on replay.
    this.upsertedAt = Date.now();
  }

  /** Memory step `step` is done. */
  stepDone(step: number, summary: MemoryStepSummary): void {
    const progress = this.progress;
    progress.chunksDone = step + 1;
    progress.lastMemory = summary.memoryPreview;
    progress.lastRecallQuery = summary.recallQuery;
    if (summary.recallQuery !== null) progress.recallQueries += 1;
    if (!this.throttleUpserts || Date.now() - this.upsertedAt >= PROGRESS_UPSERT_INTERVAL_MS) {
      upsertSearchAttributes([{ key: searchAttributes.chunksDone, value: progress.chunksDone }]);
      this.upsertedAt = Date.now();
    }
    setCurrentDetails(describeProgress(progress));
  }

  /** Where a continued run resumes, at chunk `nextStep`. */
  resumeAt(nextStep: number): EpisodeResume {
    const { chunksTotal: chunkCount, documentTokens, recallQueries } = this.progress;
    return { nextStep, chunkCount, documentTokens, recallQueries };
  }

  /** Every chunk is read: the final turn starts. */
  answering(): void {
    this.progress.status = 'answering';
    upsertSearchAttributes([
      { key: searchAttributes.status, value: this.progress.status },
      { key: searchAttributes.chunksDone, value: this.progress.chunksDone },
    ]);
    setCurrentDetails(describeProgress(this.progress));
  }

  done(): void {
    this.progress.status = 'done';
    upsertSearchAttributes([{ key: searchAttributes.status, value: this.progress.status }]);
  }
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
