/**
 * Key builders for the storage layout. Keys are assembled here from validated ids, never from raw input:
 *
 *   runs/{run}/episodes/{episode}/input.json            one episode's question, document and answers
 *   runs/{run}/episodes/{episode}/chunks/{index}.txt     the document's chunks
 *   runs/{run}/episodes/{episode}/chunks/manifest.json   written last: its presence means all chunks are there
 *   runs/{run}/episodes/{episode}/memory/{step}.json     one memory step
 *   runs/{run}/episodes/{episode}/answer.json
 *   runs/{run}/results/{episode}.json                    one result row per episode (listed to aggregate)
 *   runs/{run}/failures/{episode}.json
 *   runs/{run}/batch/{run.json, index.json, row-errors.json, summary.json, pages/{page}.json, shards/{shard}.json}
 *   runs/{run}/batch/index-layout.json                   how the run's pages are numbered (absent: one after another)
 *   training/{run}/checkpoints/{step}/{file}
 *   training/{run}/batches/{step}.json                   the training batch `score` wrote for a step
 *   policies/{version}/{file}                            e.g. model.onnx
 *   datasets/{digest}/{file}                             an uploaded dataset, named by its content digest
 *
 * Numbers (steps, chunk indexes, pages) are zero-padded so that key order is numeric order.
 */
import { validateKey } from './blob-store';

const ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
export const ORDINAL_DIGITS = 10;
const MAX_ORDINAL = 10 ** ORDINAL_DIGITS - 1;
const ORDINAL_PATTERN = new RegExp(`^\\d{${ORDINAL_DIGITS}}$`);

export class InvalidBlobIdError extends Error {
  constructor(
    readonly kind: string,
    readonly id: unknown,
    reason: string,
  ) {
    super(`invalid ${kind} ${JSON.stringify(id)}: ${reason}`);
    this.name = 'InvalidBlobIdError';
  }
}

/** Returns `id` when it is 1–128 characters of [A-Za-z0-9._-] and not '.' or '..'; throws otherwise. */
export function checkId(kind: string, id: string): string {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw new InvalidBlobIdError(kind, id, 'expected 1 to 128 characters from A-Z a-z 0-9 . _ -');
  }
  if (id === '.' || id === '..') throw new InvalidBlobIdError(kind, id, "'.' and '..' are not ids");
  return id;
}

/** A step, chunk index or page number as a fixed-width segment, e.g. 42 → '0000000042'. */
export function formatOrdinal(value: number, kind = 'step'): string {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_ORDINAL) {
    throw new InvalidBlobIdError(kind, value, `expected an integer from 0 to ${MAX_ORDINAL}`);
  }
  return String(value).padStart(ORDINAL_DIGITS, '0');
}

/** Inverse of `formatOrdinal`, for reading numbers back from listed keys. */
export function parseOrdinal(segment: string): number {
  if (!ORDINAL_PATTERN.test(segment)) {
    throw new InvalidBlobIdError('number segment', segment, `expected ${ORDINAL_DIGITS} decimal digits`);
  }
  return Number(segment);
}

function keyOf(segments: string[]): string {
  const key = segments.join('/');
  validateKey(key);
  return key;
}

/** A prefix for `BlobStore.list`: a folder's key plus '/', so 'runs/a/' never matches 'runs/ab/…'. */
function prefixOf(segments: string[]): string {
  return `${keyOf(segments)}/`;
}

function runSegments(run: string): string[] {
  return ['runs', checkId('run id', run)];
}

function episodeSegments(run: string, episode: string): string[] {
  return [...runSegments(run), 'episodes', checkId('episode id', episode)];
}

function checkpointSegments(run: string, step: number): string[] {
  return ['training', checkId('training run id', run), 'checkpoints', formatOrdinal(step)];
}

function policySegments(version: string): string[] {
  return ['policies', checkId('policy version', version)];
}

export function runPrefix(run: string): string {
  return prefixOf(runSegments(run));
}

export function episodePrefix(run: string, episode: string): string {
  return prefixOf(episodeSegments(run, episode));
}

export function episodeInputKey(run: string, episode: string): string {
  return keyOf([...episodeSegments(run, episode), 'input.json']);
}

export function episodeChunkKey(run: string, episode: string, index: number): string {
  return keyOf([...episodeSegments(run, episode), 'chunks', `${formatOrdinal(index, 'chunk index')}.txt`]);
}

export function episodeChunkManifestKey(run: string, episode: string): string {
  return keyOf([...episodeSegments(run, episode), 'chunks', 'manifest.json']);
}

export function episodeMemoryPrefix(run: string, episode: string): string {
  return prefixOf([...episodeSegments(run, episode), 'memory']);
}

export function episodeMemoryKey(run: string, episode: string, step: number): string {
  return keyOf([...episodeSegments(run, episode), 'memory', `${formatOrdinal(step)}.json`]);
}

export function episodeAnswerKey(run: string, episode: string): string {
  return keyOf([...episodeSegments(run, episode), 'answer.json']);
}

export function runResultsPrefix(run: string): string {
  return prefixOf([...runSegments(run), 'results']);
}

export function runResultKey(run: string, episode: string): string {
  return keyOf([...runSegments(run), 'results', `${checkId('episode id', episode)}.json`]);
}

export function runFailuresPrefix(run: string): string {
  return prefixOf([...runSegments(run), 'failures']);
}

export function episodeFailureKey(run: string, episode: string): string {
  return keyOf([...runSegments(run), 'failures', `${checkId('episode id', episode)}.json`]);
}

/** What a run id is bound to (its dataset's digest and its settings), written when the run is first started. */
export function batchRunKey(run: string): string {
  return keyOf([...runSegments(run), 'batch', 'run.json']);
}

export function batchIndexKey(run: string): string {
  return keyOf([...runSegments(run), 'batch', 'index.json']);
}

export function batchPageKey(run: string, page: number): string {
  return keyOf([...runSegments(run), 'batch', 'pages', `${formatOrdinal(page, 'page number')}.json`]);
}

export function batchRowErrorsKey(run: string): string {
  return keyOf([...runSegments(run), 'batch', 'row-errors.json']);
}

export function batchShardsPrefix(run: string): string {
  return prefixOf([...runSegments(run), 'batch', 'shards']);
}

/** The index of one shard of the dataset: its counts and malformed rows, written when the shard is done. */
export function batchShardIndexKey(run: string, shard: number): string {
  return keyOf([...runSegments(run), 'batch', 'shards', `${formatOrdinal(shard, 'shard number')}.json`]);
}

/**
 * How the run's shards number their pages ('sequential' or 'reserved'), fixed by the first indexing of the run so
 * that a re-run never mixes the two layouts; absent in runs indexed before the layout existed.
 */
export function batchIndexLayoutKey(run: string): string {
  return keyOf([...runSegments(run), 'batch', 'index-layout.json']);
}

export function batchSummaryKey(run: string): string {
  return keyOf([...runSegments(run), 'batch', 'summary.json']);
}

export function checkpointPrefix(run: string, step: number): string {
  return prefixOf(checkpointSegments(run, step));
}

export function checkpointFileKey(run: string, step: number, file: string): string {
  return keyOf([...checkpointSegments(run, step), checkId('checkpoint file name', file)]);
}

/** The training batch of step `step` of training run `run`: written by `score`, read by the policy update. */
export function trainingBatchKey(run: string, step: number): string {
  return keyOf(['training', checkId('training run id', run), 'batches', `${formatOrdinal(step)}.json`]);
}

/** The metrics of step `step` of training run `run` (one JSON object per step; the report reads them all). */
export function trainingMetricsKey(run: string, step: number): string {
  return keyOf(['training', checkId('training run id', run), 'metrics', `${formatOrdinal(step)}.json`]);
}

export function trainingMetricsPrefix(run: string): string {
  return prefixOf(['training', checkId('training run id', run), 'metrics']);
}

export function policyPrefix(version: string): string {
  return prefixOf(policySegments(version));
}

export function policyFileKey(version: string, file: string): string {
  return keyOf([...policySegments(version), checkId('policy file name', file)]);
}

export function policyModelKey(version: string): string {
  return policyFileKey(version, 'model.onnx');
}

/** The file name is kept last so that its extension still tells the dataset format. */
export function datasetKey(digest: string, file: string): string {
  return keyOf(['datasets', checkId('dataset digest', digest), checkId('dataset file name', file)]);
}
