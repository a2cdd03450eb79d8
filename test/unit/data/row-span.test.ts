/**
 * `datasetRowSpan` agrees with the readers' row numbers (last row number + 1) for any JSONL bytes: blank and
 * whitespace lines, CRLF, a byte order mark, invalid UTF-8, split across stream chunks; and for JSON and Parquet.
 */
import { Readable } from 'node:stream';
import fc from 'fast-check';
import {
  datasetRowSpan,
  readDataset,
  type DatasetFormat,
  type DatasetSource,
} from '../../../lib/data/dataset';
import { parquetShard, rowsOf } from '../../support/shards';

function sourceOf(bytes: Uint8Array, cut = 0): DatasetSource {
  const chunks = cut > 0 && cut < bytes.length ? [bytes.subarray(0, cut), bytes.subarray(cut)] : [bytes];
  return {
    stream: async () => Readable.from(chunks.map((chunk) => Buffer.from(chunk))),
    bytes: async () => bytes,
  };
}

async function readSpan(source: DatasetSource, format: DatasetFormat): Promise<number> {
  let span = 0;
  for await (const item of readDataset(source, format))
    span = (item.ok ? item.row.rowIndex : item.error.rowIndex) + 1;
  return span;
}

describe('datasetRowSpan', () => {
  const row = JSON.stringify({ question: 'q?', context: 'a document', answers: ['a'] });

  it.each([
    ['rows and a trailing blank line', `${row}\n${row}\n\n`, 2],
    ['a blank line between rows', `${row}\n\n${row}\n`, 3],
    ['whitespace lines at the end, CRLF', `${row}\r\n \t\r\n\u00a0\r\n`, 1],
    ['no final newline', `${row}\n${row}`, 2],
    ['only blank lines', '\n\n\n', 0],
    ['nothing', '', 0],
    ['a line that is not JSON last', `${row}\nnot json\n`, 2],
  ])('counts JSONL: %s', async (_what, text, span) => {
    const bytes = new TextEncoder().encode(text);
    expect(await datasetRowSpan(sourceOf(bytes), 'jsonl')).toBe(span);
    expect(await readSpan(sourceOf(bytes), 'jsonl')).toBe(span);
  });

  it('agrees with the JSONL reader on any lines, however the stream is cut', async () => {
    const line = fc.oneof(
      fc.constant(row),
      fc.constantFrom('', ' ', '\t', '\r', '\u00a0', '\ufeff', '\u2028', 'x', '{'),
      fc.uint8Array({ maxLength: 6 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 12 }), fc.boolean(), fc.nat(), async (lines, bom, cut) => {
        const text = Buffer.concat([
          bom ? Buffer.from([0xef, 0xbb, 0xbf]) : Buffer.alloc(0),
          ...lines.map((l) => Buffer.from(`${l}\n`, 'latin1')),
        ]);
        const bytes = new Uint8Array(text);
        const at = bytes.length === 0 ? 0 : cut % bytes.length;
        expect(await datasetRowSpan(sourceOf(bytes, at), 'jsonl')).toBe(
          await readSpan(sourceOf(bytes, at), 'jsonl'),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('counts a JSON array and a Parquet file as the readers number them', async () => {
    const json = new TextEncoder().encode(`[${row}, {"question": 1}, ${row}]`);
    expect(await datasetRowSpan(sourceOf(json), 'json')).toBe(3);
    const parquet = parquetShard(rowsOf('p', 5, [1]));
    expect(await datasetRowSpan(sourceOf(parquet), 'parquet')).toBe(5);
    expect(await readSpan(sourceOf(parquet), 'parquet')).toBe(5);
  });
});
