/**
 * Light batch activities, served by orchestration workers: index a dataset into per-episode inputs and pages,
 * list a page's unfinished episodes, record failures, and aggregate the summary.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import {
  DatasetFormatError,
  blobDatasetSource,
  datasetRowSpan,
  detectDatasetFormat,
  readDataset,
  type FieldMapping,
  type RowError,
} from '../lib/data/dataset';
import type { ParquetPiece } from '../lib/data/parquet-pieces';
import { SummaryBuilder, type BatchSummary } from '../lib/episode/summary';
import type { EpisodeInputRecord, EpisodeResult } from '../lib/episode/types';
import {
  batchIndexKey,
  batchIndexLayoutKey,
  batchPageKey,
  batchRowErrorsKey,
  batchShardIndexKey,
  batchSummaryKey,
  batchShardsPrefix,
  episodeFailureKey,
  episodeInputKey,
  runFailuresPrefix,
  runResultKey,
  runResultsPrefix,
  WritesInFlight,
  type BlobStore,
} from '../lib/storage';
import { failFastOnBadInput, withHeartbeat } from './failures';
import { recordRowsFailed } from './observability';

export interface BatchIndex {
  rows: number;
  validRows: number;
  invalidRows: number;
  pages: number;
  pageSize: number;
}

/** One shard of a dataset: an object of the project's blob store, or of an S3 bucket read in place. */
export interface DatasetShardRef {
  key: string;
  /** The S3 bucket the shard is read from in place; absent = the project's blob store. */
  bucket?: string;
  /** Where it came from (a local path or an s3:// URI), for row errors. */
  name: string;
  /** Some row groups of a large Parquet file (its rows numbered from 0); absent = the whole file. */
  piece?: ParquetPiece;
}

/** A dataset of several shards, or read with mapped column names. */
export interface DatasetSourceRef {
  shards: DatasetShardRef[];
  fields?: FieldMapping;
}

/**
 * Where a shard's rows and pages start: known once the shards before it are indexed (sequential layout), or once
 * every shard's row span is counted (reserved layout, where `reservedRows` and `reservedPages` are given).
 */
export interface ShardPosition {
  shard: number;
  /** Dataset row number of the shard's first row. */
  rowOffset: number;
  /** Page number of the shard's first page. */
  firstPage: number;
  pageSize: number;
  /** Row errors name the shard file and the row within it (datasets given as a source). */
  nameRows: boolean;
  /** Reserved layout: the row numbers the shard may use (its counted span); a row past them fails the shard. */
  reservedRows?: number;
  /** Reserved layout: the page numbers the shard may use, from `firstPage` (those it leaves empty stay absent). */
  reservedPages?: number;
}

/**
 * How a run's pages are numbered. 'sequential': each shard's pages follow the previous shard's last page (shards
 * are indexed one at a time, in order). 'reserved': every shard owns ceil(span / pageSize) pages from the start,
 * so shards index in parallel; pages a shard does not fill (malformed rows) are absent.
 */
export type IndexLayout = 'sequential' | 'reserved';

/** What one indexed shard holds (runs/{run}/batch/shards/{shard}.json). */
export interface ShardIndex {
  rows: number;
  validRows: number;
  invalidRows: number;
  /** Pages written. */
  pages: number;
  errors: RowError[];
  truncated: boolean;
  /** Reserved layout only (absent in shards indexed one after another, also by code before the layout existed). */
  firstPage?: number;
  reservedPages?: number;
}


/** The last point where everything before it is stored: the heartbeat of `indexShard`, where a retry resumes. */
interface ShardResumePoint {
  rowsRead: number;
  pages: number;
}

export interface PageEntry {
  episodeId: string;
  rowIndex: number;
}

/** Stored row errors are capped so a corpus of garbage cannot blow up one object; the count stays exact. */
const MAX_STORED_ROW_ERRORS = 10_000;

export function episodeIdForRow(rowIndex: number): string {
  return `row-${String(rowIndex).padStart(9, '0')}`;
}

/** The batch activities run only the project's code over stored data: a fault in that code is never retried. */
function failFast<T>(work: () => Promise<T>): Promise<T> {
  return failFastOnBadInput(work, { programmingErrors: true });
}

export interface BatchActivityDeps {
  store: BlobStore;
  /**
   * A store rooted at an S3 bucket, for datasets read in place (workers whose own store is on S3 have one); the
   * caller closes it.
   */
  openBucket?: (bucket: string) => BlobStore;
  /** Episode inputs written at once while a shard is indexed (`worker.indexWritesInFlight`; 1 = one after another). */
  inputWritesInFlight: number;
}

/** The row of a shard's file that the shard's row `shardRow` is (a Parquet piece starts past the file's first). */
function fileRowOf(shard: DatasetShardRef, shardRow: number): number {
  return (shard.piece?.firstRow ?? 0) + shardRow;
}

export function createBatchActivities(deps: BatchActivityDeps) {
  const { store, openBucket, inputWritesInFlight } = deps;
  const bucketStore = (shard: DatasetShardRef): BlobStore => {
    if (openBucket === undefined || shard.bucket === undefined) {
      throw new DatasetFormatError(
        `dataset shard ${shard.name} is read in place from S3, but this worker's blob store is not on S3: run workers with REMEMR1_STORAGE=s3`,
      );
    }
    return openBucket(shard.bucket);
  };
  return {
    /**
     * Streams the dataset once: each valid row becomes an episode input, pages of `pageSize` episodes are written
     * as they fill, bad rows are collected with their row numbers. Idempotent: a finished index is returned as is,
     * and a retried attempt rewrites the same objects with the same bytes.
     */
    async indexDataset(runId: string, datasetKey: string, pageSize: number, source?: DatasetSourceRef): Promise<BatchIndex> {
      return failFast(async () => {
        if (await store.exists(batchIndexKey(runId))) return store.getJson<BatchIndex>(batchIndexKey(runId));
        const shards = source?.shards ?? [{ key: datasetKey, name: datasetKey }];
        const context = Context.current();
        const errors: RowError[] = [];
        let invalidRows = 0;
        let rows = 0;
        let page: PageEntry[] = [];
        let pages = 0;
        const flush = async (): Promise<void> => {
          await store.putJson(batchPageKey(runId, pages), page);
          pages += 1;
          page = [];
        };
        for (const shard of shards) {
          const format = detectDatasetFormat(shard.key);
          const shardStore = shard.bucket === undefined ? store : bucketStore(shard);
          // Row numbers run on across shards; errors also give the shard and the row within it.
          const offset = rows;
          try {
            for await (const item of readDataset(blobDatasetSource(shardStore, shard.key), format, source?.fields, shard.piece)) {
              rows += 1;
              if (!item.ok) {
                invalidRows += 1;
                const error: RowError = { ...item.error, rowIndex: offset + item.error.rowIndex };
                if (shards.length > 1 || source !== undefined) Object.assign(error, { file: shard.name, fileRow: fileRowOf(shard, item.error.rowIndex) });
                if (errors.length < MAX_STORED_ROW_ERRORS) errors.push(error);
                continue;
              }
              const rowIndex = offset + item.row.rowIndex;
              const episodeId = episodeIdForRow(rowIndex);
              const record: EpisodeInputRecord = { id: item.row.id, rowIndex, question: item.row.question, context: item.row.context, answers: item.row.answers };
              await store.putJson(episodeInputKey(runId, episodeId), record);
              page.push({ episodeId, rowIndex });
              if (page.length === pageSize) await flush();
              if (rows % 100 === 0) context.heartbeat(rows);
            }
          } catch (error) {
            // A dataset of shards says which one is broken; one file keeps the message it always had.
            if (error instanceof DatasetFormatError && source !== undefined) throw new DatasetFormatError(`${shard.name}: ${error.message}`);
            throw error;
          } finally {
            if (shardStore !== store) await shardStore.close();
          }
        }
        if (page.length > 0) await flush();
        await store.putJson(batchRowErrorsKey(runId), { invalidRows, errors, truncated: invalidRows > errors.length });
        const index: BatchIndex = { rows, validRows: rows - invalidRows, invalidRows, pages, pageSize };
        await store.putIfAbsent(batchIndexKey(runId), JSON.stringify(index));
        recordRowsFailed('malformed', invalidRows);
        return index;
      });
    },

    /**
     * Indexes one shard: each valid row becomes an episode input, pages fill from `firstPage` (the last one may be
     * short), bad rows are kept with the shard's counts. Heartbeats after every page with the rows read so far; a
     * retry (the worker died, the activity timed out) re-reads the shard but writes nothing before that point, so
     * no row is lost or doubled. A shard already indexed is returned as is.
     */
    async indexShard(runId: string, shard: DatasetShardRef, fields: FieldMapping | undefined, position: ShardPosition): Promise<Omit<ShardIndex, 'errors'>> {
      return failFast(async () => {
        const doneKey = batchShardIndexKey(runId, position.shard);
        const counts = (index: ShardIndex): Omit<ShardIndex, 'errors'> => ({
          rows: index.rows,
          validRows: index.validRows,
          invalidRows: index.invalidRows,
          pages: index.pages,
          truncated: index.truncated,
        });
        if (await store.exists(doneKey)) return counts(await store.getJson<ShardIndex>(doneKey));
        const context = Context.current();
        const resume = context.info.heartbeatDetails as ShardResumePoint | undefined;
        const format = detectDatasetFormat(shard.key);
        const shardStore = shard.bucket === undefined ? store : bucketStore(shard);
        const errors: RowError[] = [];
        let rows = 0;
        let invalidRows = 0;
        let pages = resume?.pages ?? 0;
        let page: PageEntry[] = [];
        let resumePoint: ShardResumePoint = resume ?? { rowsRead: 0, pages: 0 };
        // A page is written only after its rows' inputs are, and the resume point moves only after the page is.
        const inputWrites = new WritesInFlight(inputWritesInFlight);
        const flush = async (): Promise<void> => {
          await inputWrites.drain();
          await store.putJson(batchPageKey(runId, position.firstPage + pages), page);
          pages += 1;
          page = [];
          resumePoint = { rowsRead: rows, pages };
          context.heartbeat(resumePoint);
        };
        try {
          for await (const item of readDataset(blobDatasetSource(shardStore, shard.key), format, fields, shard.piece)) {
            rows += 1;
            if (rows % 100 === 0) context.heartbeat(resumePoint);
            const shardRow = item.ok ? item.row.rowIndex : item.error.rowIndex;
            if (position.reservedRows !== undefined && shardRow >= position.reservedRows) {
              // Its rows would take the next shard's row numbers (and pages): the shard changed since it was counted.
              throw new DatasetFormatError(
                `the shard has a row ${shardRow + 1} but held ${position.reservedRows} rows when the batch counted it; it changed during the batch`,
              );
            }
            // Rows before the resume point are stored already: only their errors are collected again.
            const stored = resume !== undefined && rows <= resume.rowsRead;
            if (!item.ok) {
              invalidRows += 1;
              const error: RowError = { ...item.error, rowIndex: position.rowOffset + item.error.rowIndex };
              if (position.nameRows) Object.assign(error, { file: shard.name, fileRow: fileRowOf(shard, item.error.rowIndex) });
              if (errors.length < MAX_STORED_ROW_ERRORS) errors.push(error);
              continue;
            }
            if (stored) continue;
            const rowIndex = position.rowOffset + item.row.rowIndex;
            const episodeId = episodeIdForRow(rowIndex);
            const record: EpisodeInputRecord = { id: item.row.id, rowIndex, question: item.row.question, context: item.row.context, answers: item.row.answers };
            await inputWrites.add(() => store.putJson(episodeInputKey(runId, episodeId), record));
            page.push({ episodeId, rowIndex });
            if (page.length === position.pageSize) await flush();
          }
        } catch (error) {
          // No write outlives the attempt (a retry must find nothing still landing); its own failure is the one thrown.
          await inputWrites.drain().catch(() => undefined);
          if (error instanceof DatasetFormatError && position.nameRows) throw new DatasetFormatError(`${shard.name}: ${error.message}`);
          throw error;
        } finally {
          if (shardStore !== store) await shardStore.close();
        }
        if (page.length > 0) await flush();
        const index: ShardIndex = { rows, validRows: rows - invalidRows, invalidRows, pages, errors, truncated: invalidRows > errors.length };
        if (position.reservedPages !== undefined) Object.assign(index, { firstPage: position.firstPage, reservedPages: position.reservedPages });
        await store.putJson(doneKey, index);
        recordRowsFailed('malformed', invalidRows);
        return counts(index);
      });
    },

    /**
     * The run's page layout, fixed by its first indexing: the finished index if there is one; else the layout
     * recorded earlier; else 'sequential' when shards were indexed before layouts were recorded (older code, whose
     * pages a re-run must extend, not overlap); else `requested`, recorded now.
     */
    async chooseIndexLayout(runId: string, requested: IndexLayout): Promise<{ index: BatchIndex } | { layout: IndexLayout }> {
      return failFast(async () => {
        if (await store.exists(batchIndexKey(runId))) return { index: await store.getJson<BatchIndex>(batchIndexKey(runId)) };
        const layoutKey = batchIndexLayoutKey(runId);
        if (!(await store.exists(layoutKey))) {
          let indexedBefore = false;
          for await (const key of store.list(batchShardsPrefix(runId))) {
            indexedBefore = key.endsWith('.json');
            if (indexedBefore) break;
          }
          await store.putIfAbsent(layoutKey, JSON.stringify({ layout: indexedBefore ? 'sequential' : requested }));
        }
        return { layout: (await store.getJson<{ layout: IndexLayout }>(layoutKey)).layout };
      });
    },

    /** A shard's row span (see `datasetRowSpan`), for the reserved layout; heartbeats while it reads. */
    async countShard(shard: DatasetShardRef, fields: FieldMapping | undefined, nameRows: boolean): Promise<number> {
      return failFast(async () => {
        const shardStore = shard.bucket === undefined ? store : bucketStore(shard);
        try {
          // The SDK throttles what it sends; a beat a second keeps short heartbeat timeouts met.
          return await withHeartbeat(() => datasetRowSpan(blobDatasetSource(shardStore, shard.key), detectDatasetFormat(shard.key), fields, shard.piece), 1_000);
        } catch (error) {
          if (error instanceof DatasetFormatError && nameRows) throw new DatasetFormatError(`${shard.name}: ${error.message}`);
          throw error;
        } finally {
          if (shardStore !== store) await shardStore.close();
        }
      });
    },

    /** After every shard is indexed: the run's row errors (capped) and its index, from the shards' own. */
    async finishIndex(runId: string, shards: number, pageSize: number): Promise<BatchIndex> {
      return failFast(async () => {
        if (await store.exists(batchIndexKey(runId))) return store.getJson<BatchIndex>(batchIndexKey(runId));
        const context = Context.current();
        const errors: RowError[] = [];
        let rows = 0;
        let invalidRows = 0;
        // One after another, pages add up; reserved, they end where the last shard's reservation ends.
        let pages = 0;
        let reservedEnd = 0;
        let reserved = 0;
        for (let shard = 0; shard < shards; shard += 1) {
          const index = await store.getJson<ShardIndex>(batchShardIndexKey(runId, shard));
          rows += index.rows;
          invalidRows += index.invalidRows;
          pages += index.pages;
          if (index.firstPage !== undefined && index.reservedPages !== undefined) {
            reserved += 1;
            reservedEnd = Math.max(reservedEnd, index.firstPage + index.reservedPages);
          }
          for (const error of index.errors) if (errors.length < MAX_STORED_ROW_ERRORS) errors.push(error);
          if (shard % 100 === 99) context.heartbeat(shard);
        }
        if (reserved !== 0 && reserved !== shards) {
          // chooseIndexLayout keeps a run to one layout: only a store edited by hand gets here, and no retry helps.
          throw ApplicationFailure.nonRetryable(`run ${runId} has shards indexed in both page layouts; index it under a new run id`, 'MixedIndexLayouts');
        }
        if (reserved > 0) pages = reservedEnd;
        await store.putJson(batchRowErrorsKey(runId), { invalidRows, errors, truncated: invalidRows > errors.length });
        const index: BatchIndex = { rows, validRows: rows - invalidRows, invalidRows, pages, pageSize };
        await store.putIfAbsent(batchIndexKey(runId), JSON.stringify(index));
        recordRowsFailed('malformed', invalidRows);
        return index;
      });
    },

    /** The page's episodes that have no result row yet (so a rerun recomputes nothing that is done). */
    async pendingEpisodes(runId: string, page: number): Promise<{ pending: PageEntry[]; finished: number }> {
      return failFast(async () => {
        // In the reserved layout a shard's malformed rows can leave its last reserved pages unwritten.
        if (!(await store.exists(batchPageKey(runId, page)))) return { pending: [], finished: 0 };
        const entries = await store.getJson<PageEntry[]>(batchPageKey(runId, page));
        const pending: PageEntry[] = [];
        for (const entry of entries) {
          if (!(await store.exists(runResultKey(runId, entry.episodeId)))) pending.push(entry);
        }
        return { pending, finished: entries.length - pending.length };
      });
    },

    async recordEpisodeFailure(runId: string, entry: PageEntry, message: string): Promise<void> {
      return failFast(async () => {
        await store.putJson(episodeFailureKey(runId, entry.episodeId), { ...entry, message });
        recordRowsFailed('episode', 1);
      });
    },

    /** Reads every result row of the run and writes the summary next to them. */
    async summarizeBatch(runId: string, dataset: string, invalidRows: number): Promise<BatchSummary> {
      return failFast(async () => {
        const context = Context.current();
        const builder = new SummaryBuilder();
        let read = 0;
        for await (const key of store.list(runResultsPrefix(runId))) {
          builder.add(await store.getJson<EpisodeResult>(key));
          read += 1;
          if (read % 200 === 0) context.heartbeat(read);
        }
        let failedEpisodes = 0;
        for await (const key of store.list(runFailuresPrefix(runId))) {
          const episodeId = key.slice(key.lastIndexOf('/') + 1, -'.json'.length);
          if (!(await store.exists(runResultKey(runId, episodeId)))) failedEpisodes += 1;
        }
        const summary = builder.build({ runId, dataset, invalidRows, failedEpisodes });
        await store.putJson(batchSummaryKey(runId), summary);
        return summary;
      });
    },
  };
}

export type BatchActivities = ReturnType<typeof createBatchActivities>;
