/**
 * Large Parquet files are indexed in pieces: runs of consecutive row groups, one activity each, so one big file
 * spreads over workers and a crash re-reads one piece, not the file. A piece is planned from the file's footer
 * (row counts and compressed sizes) before the batch starts, and its rows are numbered from 0 like a shard's.
 */
import type { FileMetaData } from 'hyparquet';

/** Consecutive row groups of one Parquet file, read by one indexing activity. */
export interface ParquetPiece {
  /** Index of its first row group in the file. */
  firstRowGroup: number;
  rowGroups: number;
  /** The file's row number of its first row (for row errors). */
  firstRow: number;
  rows: number;
}

/** What the planner needs of a row group. */
export interface RowGroupSize {
  rows: number;
  /** Compressed bytes of its column chunks. */
  bytes: number;
}

/** Files larger than this are split into pieces of about this size (when they have more than one row group). */
export const DEFAULT_PARQUET_PIECE_BYTES = 256 * 2 ** 20;

/** Row counts and compressed sizes of a file's row groups, from its footer. */
export function rowGroupSizes(metadata: FileMetaData): RowGroupSize[] {
  return metadata.row_groups.map((group) => ({
    rows: Number(group.num_rows),
    bytes: Number(group.total_compressed_size ?? group.columns.reduce((sum, column) => sum + (column.meta_data?.total_compressed_size ?? 0n), 0n)),
  }));
}

/**
 * Splits row groups, in order, into pieces that each close once they hold at least `pieceBytes` (the last may hold
 * less). A file of at most `pieceBytes` in all, or of a single row group, is not split: undefined.
 */
export function planParquetPieces(groups: readonly RowGroupSize[], pieceBytes: number): ParquetPiece[] | undefined {
  const total = groups.reduce((sum, group) => sum + group.bytes, 0);
  if (groups.length < 2 || total <= pieceBytes) return undefined;
  const pieces: ParquetPiece[] = [];
  let current: ParquetPiece | undefined;
  let currentBytes = 0;
  let row = 0;
  for (const [index, group] of groups.entries()) {
    current ??= { firstRowGroup: index, rowGroups: 0, firstRow: row, rows: 0 };
    current.rowGroups += 1;
    current.rows += group.rows;
    currentBytes += group.bytes;
    row += group.rows;
    if (currentBytes >= pieceBytes) {
      pieces.push(current);
      current = undefined;
      currentBytes = 0;
    }
  }
  if (current !== undefined) pieces.push(current);
  return pieces.length > 1 ? pieces : undefined;
}

/**
 * The file rows a piece reads, checked against the file's footer now; for a file rewritten since the batch was
 * planned (other row groups, other row counts), the one-line reason instead, so that no row is numbered wrongly.
 */
export function pieceRowRange(groups: readonly RowGroupSize[], piece: ParquetPiece): { rowStart: number; rowEnd: number } | string {
  const last = piece.firstRowGroup + piece.rowGroups;
  if (last > groups.length) {
    return `row groups ${piece.firstRowGroup + 1}–${last} were planned but the file now has ${groups.length}; it changed since the batch started`;
  }
  const rowStart = groups.slice(0, piece.firstRowGroup).reduce((sum, group) => sum + group.rows, 0);
  const rows = groups.slice(piece.firstRowGroup, last).reduce((sum, group) => sum + group.rows, 0);
  if (rowStart !== piece.firstRow || rows !== piece.rows) {
    return `row groups ${piece.firstRowGroup + 1}–${last} held rows ${piece.firstRow + 1}–${piece.firstRow + piece.rows} when the batch started and now hold ${rowStart + 1}–${rowStart + rows}; the file changed since`;
  }
  return { rowStart, rowEnd: rowStart + rows };
}
