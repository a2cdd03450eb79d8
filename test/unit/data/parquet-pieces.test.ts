import { parquetWriteBuffer } from 'hyparquet-writer';
import { datasetRowSpan, readDataset, type DatasetItem, type DatasetSource } from '../../../lib/data/dataset';
import { pieceRowRange, planParquetPieces, type ParquetPiece } from '../../../lib/data/parquet-pieces';

const sourceOf = (bytes: Uint8Array): DatasetSource => ({
  stream: () => Promise.reject(new Error('not streamed')),
  bytes: async () => bytes,
});

async function collect(items: AsyncIterable<DatasetItem>): Promise<DatasetItem[]> {
  const out: DatasetItem[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** Seven rows in row groups of two (the last holds one); row 3 has no document; no id column. */
function sevenRows(): Uint8Array {
  return new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: 'question', data: Array.from({ length: 7 }, (_, i) => `Q${i}`), type: 'STRING' },
        { name: 'context', data: Array.from({ length: 7 }, (_, i) => (i === 3 ? '' : `doc ${i}`)), type: 'STRING' },
        { name: 'answers', data: Array.from({ length: 7 }, (_, i) => [`a${i}`]) },
      ],
      rowGroupSize: 2,
    }),
  );
}

describe('planParquetPieces', () => {
  const groups = [
    { rows: 100, bytes: 40 },
    { rows: 100, bytes: 70 },
    { rows: 50, bytes: 10 },
    { rows: 100, bytes: 90 },
    { rows: 30, bytes: 5 },
  ];

  it('closes a piece once it holds the piece size, in order, the last holding the rest', () => {
    expect(planParquetPieces(groups, 100)).toEqual([
      { firstRowGroup: 0, rowGroups: 2, firstRow: 0, rows: 200 },
      { firstRowGroup: 2, rowGroups: 2, firstRow: 200, rows: 150 },
      { firstRowGroup: 4, rowGroups: 1, firstRow: 350, rows: 30 },
    ]);
    expect(planParquetPieces(groups, 1)?.map((piece) => piece.rows)).toEqual([100, 100, 50, 100, 30]);
  });

  it('leaves a small file, or one of a single row group, whole', () => {
    expect(planParquetPieces(groups, 215)).toBeUndefined();
    expect(planParquetPieces([{ rows: 10, bytes: 1_000 }], 1)).toBeUndefined();
    // Everything but the last group reaches the size: still two pieces.
    expect(planParquetPieces(groups, 210)?.map((piece) => piece.rowGroups)).toEqual([4, 1]);
  });

  it('checks a piece against the footer it is read with', () => {
    const piece: ParquetPiece = { firstRowGroup: 2, rowGroups: 2, firstRow: 200, rows: 150 };
    expect(pieceRowRange(groups, piece)).toEqual({ rowStart: 200, rowEnd: 350 });
    expect(pieceRowRange(groups.slice(0, 3), piece)).toBe('row groups 3–4 were planned but the file now has 3; it changed since the batch started');
    expect(pieceRowRange([{ rows: 90, bytes: 1 }, ...groups.slice(1)], piece)).toBe(
      'row groups 3–4 held rows 201–350 when the batch started and now hold 191–340; the file changed since',
    );
  });
});

describe('reading a Parquet piece', () => {
  it('reads only its row groups, numbered from 0, with ids and errors as when the file is read whole', async () => {
    const file = sevenRows();
    const whole = await collect(readDataset(sourceOf(file), 'parquet'));
    const piece: ParquetPiece = { firstRowGroup: 1, rowGroups: 2, firstRow: 2, rows: 4 };
    const items = await collect(readDataset(sourceOf(file), 'parquet', undefined, piece));
    expect(items).toEqual(
      whole.slice(2, 6).map((item, index) => (item.ok ? { ok: true, row: { ...item.row, rowIndex: index } } : { ok: false, error: { ...item.error, rowIndex: index } })),
    );
    expect(items[1]).toEqual({ ok: false, error: { rowIndex: 1, reason: 'the document ("context") is empty' } });
    expect(items[0]).toMatchObject({ ok: true, row: { id: 'row-2', question: 'Q2', rowIndex: 0 } });
    expect(await datasetRowSpan(sourceOf(file), 'parquet', undefined, piece)).toBe(4);
    expect(await datasetRowSpan(sourceOf(file), 'parquet')).toBe(7);
  });

  it('refuses a piece the file no longer has, in one line', async () => {
    const piece: ParquetPiece = { firstRowGroup: 3, rowGroups: 2, firstRow: 6, rows: 3 };
    await expect(collect(readDataset(sourceOf(sevenRows()), 'parquet', undefined, piece))).rejects.toThrow(
      'row groups 4–5 were planned but the file now has 4; it changed since the batch started',
    );
    await expect(datasetRowSpan(sourceOf(sevenRows()), 'parquet', undefined, piece)).rejects.toThrow('it changed since the batch started');
    await expect(collect(readDataset(sourceOf(sevenRows()), 'jsonl', undefined, piece))).rejects.toThrow('cannot be read in row-group pieces');
  });
});
