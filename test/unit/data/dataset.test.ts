import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { parquetWriteBuffer } from 'hyparquet-writer';
import {
  DatasetFormatError,
  blobAsyncBuffer,
  blobDatasetSource,
  detectDatasetFormat,
  parquetColumnNames,
  readDataset,
  validateRow,
  type DatasetFormat,
  type DatasetItem,
  type DatasetSource,
} from '../../../lib/data/dataset';
import { generateSyntheticRows, toJsonLines } from '../../../lib/data/synthetic';
import { FsBlobStore } from '../../../lib/storage';

function sourceOf(text: string | Uint8Array): DatasetSource {
  const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
  return { stream: async () => Readable.from([Buffer.from(bytes)]), bytes: async () => bytes };
}

async function collect(items: AsyncIterable<DatasetItem>): Promise<DatasetItem[]> {
  const out: DatasetItem[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('dataset rows', () => {
  it('accepts the MemAgent shape and the HotpotQA single answer', () => {
    expect(validateRow({ question: 'Q?', context: 'doc', answers: ['a', ' b '] }, 3)).toEqual({
      ok: true,
      row: { rowIndex: 3, id: 'row-3', question: 'Q?', context: 'doc', answers: ['a', 'b'] },
    });
    expect(validateRow({ _id: 'x1', question: 'Q?', context: 'doc', answer: 'yes' }, 0)).toMatchObject({ ok: true, row: { id: 'x1', answers: ['yes'] } });
  });

  it('names what is wrong with a bad row', () => {
    expect(validateRow([1, 2], 0)).toMatchObject({ ok: false, error: { rowIndex: 0, reason: expect.stringContaining('JSON object') } });
    expect(validateRow({ question: '  ', context: 'doc', answers: [] }, 1)).toMatchObject({ ok: false, error: { reason: expect.stringContaining('"question" is empty') } });
    expect(validateRow({ question: 'Q', context: ' \n ', answers: [] }, 2)).toMatchObject({ ok: false, error: { reason: expect.stringContaining('document ("context") is empty') } });
    expect(validateRow({ question: 'Q', context: 42 }, 3)).toMatchObject({ ok: false, error: { reason: expect.stringContaining('"context" must be a string') } });
    expect(validateRow({ question: 'x'.repeat(20_000), context: 'd' }, 4)).toMatchObject({ ok: false, error: { reason: expect.stringContaining('longer than') } });
  });

  it('tells formats from file names, and refuses unknown ones', () => {
    expect(detectDatasetFormat('a/b.JSONL')).toBe('jsonl');
    expect(detectDatasetFormat('b.json')).toBe('json');
    expect(detectDatasetFormat('b.parquet')).toBe('parquet');
    expect(() => detectDatasetFormat('b.csv')).toThrow(DatasetFormatError);
  });
});

describe('dataset readers', () => {
  const good = { question: 'Who?', context: 'Document 1: Ann wrote it.', answers: ['Ann'] };

  it('streams JSON Lines, reporting malformed lines with their row numbers and going on', async () => {
    const text = [JSON.stringify(good), '{not json', '', JSON.stringify({ ...good, context: '' }), JSON.stringify(good)].join('\n');
    const items = await collect(readDataset(sourceOf(text), 'jsonl'));
    expect(items.map((item) => (item.ok ? `ok:${item.row.rowIndex}` : `bad:${item.error.rowIndex}`))).toEqual(['ok:0', 'bad:1', 'bad:3', 'ok:4']);
  });

  it('streams a JSON array element by element', async () => {
    const items = await collect(readDataset(sourceOf(JSON.stringify([good, { question: 1 }, good])), 'json'));
    expect(items.map((item) => item.ok)).toEqual([true, false, true]);
    expect(items[2]).toMatchObject({ ok: true, row: { rowIndex: 2 } });
  });

  it('fails a JSON file that is not an array of rows with a DatasetFormatError', async () => {
    await expect(collect(readDataset(sourceOf('{"question": "x"'), 'json'))).rejects.toThrow(DatasetFormatError);
  });

  it('reads Parquet across row groups', async () => {
    const buffer = parquetWriteBuffer({
      columnData: [
        { name: 'question', data: ['Q0', 'Q1', 'Q2'], type: 'STRING' },
        { name: 'context', data: ['doc zero', '', 'doc two'], type: 'STRING' },
        { name: 'answer', data: ['a0', 'a1', 'a2'], type: 'STRING' },
      ],
      rowGroupSize: 2,
    });
    const items = await collect(readDataset(sourceOf(new Uint8Array(buffer)), 'parquet'));
    expect(items).toEqual([
      { ok: true, row: { rowIndex: 0, id: 'row-0', question: 'Q0', context: 'doc zero', answers: ['a0'] } },
      { ok: false, error: { rowIndex: 1, reason: 'the document ("context") is empty' } },
      { ok: true, row: { rowIndex: 2, id: 'row-2', question: 'Q2', context: 'doc two', answers: ['a2'] } },
    ]);
  });

  it('closes the file stream when a JSON reader fails or its consumer stops early', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rememr1-dataset-'));
    const write = (name: string, body: string): string => {
      fs.writeFileSync(path.join(dir, name), body);
      return path.join(dir, name);
    };
    const row = JSON.stringify({ question: 'Q', context: 'doc', answers: ['a'] });
    const cases: Array<[DatasetFormat, string, 'fails' | 'stops']> = [
      ['json', write('truncated.json', `[${row}, {"question"`), 'fails'],
      ['json', write('object.json', row), 'fails'],
      ['json', write('rows.json', `[${row}, ${row}, ${row}]`), 'stops'],
      ['jsonl', write('rows.jsonl', `${row}\n${row}\n${row}\n`), 'stops'],
    ];
    for (const [format, file, ending] of cases) {
      const stream = fs.createReadStream(file);
      const source: DatasetSource = { stream: async () => stream, bytes: async () => new Uint8Array(fs.readFileSync(file)) };
      if (ending === 'fails') {
        await expect(collect(readDataset(source, format))).rejects.toThrow(DatasetFormatError);
      } else {
        for await (const item of readDataset(source, format)) {
          expect(item.ok).toBe(true);
          break;
        }
      }
      expect([file, stream.destroyed]).toEqual([file, true]);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reads text as strict UTF-8: a bad byte is an error naming where it is, a byte order mark is no text', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const row = { question: 'Q?', context: 'doc', answers: ['a'] };
    const good = JSON.stringify(row);
    // JSON Lines, split across chunks inside a multi-byte character, with CRLF line ends: each line is a row.
    const lines = Buffer.concat([bom, Buffer.from(`${good}\r\n{"question": "Caf`), Buffer.from([0xe9]), Buffer.from(`?", "context": "c"}\r\n${JSON.stringify({ ...row, question: 'Où?' })}\n`)]);
    const insideU = lines.indexOf(Buffer.from('ù')) + 1;
    const chunked: DatasetSource = {
      stream: async () => Readable.from([lines.subarray(0, 40), lines.subarray(40, insideU), lines.subarray(insideU)]),
      bytes: async () => lines,
    };
    const items = await collect(readDataset(chunked, 'jsonl'));
    expect(items).toEqual([
      { ok: true, row: expect.objectContaining({ rowIndex: 0, question: 'Q?' }) },
      { ok: false, error: { rowIndex: 1, reason: 'line 2 is not valid UTF-8 text (invalid bytes at byte 17 of the line); save the file as UTF-8' } },
      { ok: true, row: expect.objectContaining({ rowIndex: 2, question: 'Où?' }) },
    ]);
    // A JSON array: the byte order mark is dropped; a bad byte fails the file with its line and offset.
    expect(await collect(readDataset(sourceOf(Buffer.concat([bom, Buffer.from(`[${good}]`)])), 'json'))).toHaveLength(1);
    const badArray = Buffer.concat([Buffer.from(`[${good},\n{"question": "`), Buffer.from([0xff]), Buffer.from('", "context": "c"}]')]);
    await expect(collect(readDataset(sourceOf(badArray), 'json'))).rejects.toThrow(
      new DatasetFormatError(`the dataset is not valid UTF-8 text: invalid bytes on line 2 (byte ${good.length + 17} of the file); save it as UTF-8`),
    );
  });

  it('names the field and the limit of a row over a limit', () => {
    const row = { question: 'Q?', context: 'doc' };
    const reason = (value: Record<string, unknown>) => {
      const item = validateRow(value, 0);
      return item.ok ? undefined : item.error.reason;
    };
    expect(reason({ ...row, answers: Array.from({ length: 65 }, () => 'a') })).toBe('field "answers" has more than 64 answers (the limit is 64)');
    expect(reason({ ...row, answers: ['x'.repeat(4097)] })).toBe('field "answers" has an answer longer than 4096 characters (the limit)');
    expect(reason({ ...row, answers: [1] })).toBe('field "answers" must hold strings');
    expect(reason({ ...row, id: { nested: true } })).toBe('field "id" must be a string or a number');
    expect(reason({ ...row, question: 'q'.repeat(16_385) })).toBe('field "question" is longer than 16384 characters (the limit)');
  });

  it('rejects bytes that are not Parquet with a DatasetFormatError', async () => {
    await expect(collect(readDataset(sourceOf('not parquet at all'), 'parquet'))).rejects.toThrow(DatasetFormatError);
  });
});

describe('synthetic benchmark', () => {
  it('is reproducible and puts every evidence fact in the document', () => {
    const a = generateSyntheticRows({ seed: 7, questions: 3, documentsPerQuestion: 12, hops: 2 });
    const b = generateSyntheticRows({ seed: 7, questions: 3, documentsPerQuestion: 12, hops: 2 });
    expect(toJsonLines(a)).toBe(toJsonLines(b));
    expect(toJsonLines(generateSyntheticRows({ seed: 8, questions: 3 }))).not.toBe(toJsonLines(a));
    for (const row of a) {
      expect(row.context.match(/^Document \d+:/gm)).toHaveLength(12);
      expect(row.context).toContain(`was born in ${row.answers[0]}.`);
    }
  });

  it('honours the evidence order and minimum gap', () => {
    for (const evidenceOrder of ['forward', 'reverse'] as const) {
      for (const row of generateSyntheticRows({ seed: 3, questions: 5, documentsPerQuestion: 20, minEvidenceGap: 6, evidenceOrder })) {
        const documents = row.context.split('\n\n');
        const founder = /founder of (.+) born\?/.exec(row.question)![1];
        const first = documents.findIndex((doc) => doc.toLowerCase().includes(`${founder.toLowerCase()} was founded by`));
        const person = /was founded by ([A-Za-z]+ [A-Za-z]+)\./.exec(documents[first])![1];
        const second = documents.findIndex((doc) => doc.includes(`${person} was born in`));
        expect(Math.abs(second - first)).toBeGreaterThan(6);
        expect(second > first).toBe(evidenceOrder === 'forward');
      }
    }
  });
});

describe('synthetic benchmark at scale', () => {
  it('makes unique names for thousands of questions', () => {
    const rows = generateSyntheticRows({ seed: 3, questions: 5000, documentsPerQuestion: 2, hops: 1, wordsPerDocument: 4, minEvidenceGap: 0 });
    expect(new Set(rows.map((row) => row.answers[0])).size).toBe(5000);
  });
});

describe('column mapping', () => {
  it('reads LongBench- and MemAgent-shaped rows by the columns it is given', () => {
    const longBench = { input: 'Who?', context: 'doc', answers: ['Elsa'], _id: 'lb-1' };
    expect(validateRow(longBench, 0, { question: 'input' })).toEqual({
      ok: true,
      row: { rowIndex: 0, id: 'lb-1', question: 'Who?', context: 'doc', answers: ['Elsa'] },
    });
    const custom = { q: 'Who?', doc: 'text', gold: 'Elsa', key: 7n };
    expect(validateRow(custom, 3, { question: 'q', context: 'doc', answers: 'gold', id: 'key' })).toEqual({
      ok: true,
      row: { rowIndex: 3, id: '7', question: 'Who?', context: 'text', answers: ['Elsa'] },
    });
  });

  it('names the mapped column in a bad row', () => {
    expect(validateRow({ question: 'Q', context: 'doc' }, 0, { question: 'input' })).toEqual({
      ok: false,
      error: { rowIndex: 0, reason: 'field "input" must be a string' },
    });
    expect(validateRow({ input: 'Q', body: ' ' }, 1, { question: 'input', context: 'body' })).toMatchObject({
      ok: false,
      error: { reason: 'the document ("body") is empty' },
    });
    expect(validateRow({ question: 'Q', context: 'd', gold: 3 }, 2, { answers: 'gold' })).toMatchObject({
      ok: false,
      error: { reason: 'field "gold" must be a string or a list of strings' },
    });
  });

  it('reads Parquet from a blob store by byte ranges, with mapped columns', async () => {
    const store = new FsBlobStore({ root: fs.mkdtempSync(path.join(os.tmpdir(), 'rememr1-dataset-')) });
    const buffer = parquetWriteBuffer({
      columnData: [
        { name: 'input', data: ['Q0', 'Q1', 'Q2'], type: 'STRING' },
        { name: 'context', data: ['doc zero', 'doc one', 'doc two'], type: 'STRING' },
        { name: 'answers', data: [['a0'], ['a1', 'b1'], []] },
        { name: 'row_id', data: [10n, 11n, 12n], type: 'INT64' },
      ],
      rowGroupSize: 2,
    });
    await store.put('d/shard.parquet', new Uint8Array(buffer));
    expect(await parquetColumnNames(await blobAsyncBuffer(store, 'd/shard.parquet'))).toEqual(['input', 'context', 'answers', 'row_id']);
    const items = await collect(readDataset(blobDatasetSource(store, 'd/shard.parquet'), 'parquet', { question: 'input', id: 'row_id' }));
    expect(items).toEqual([
      { ok: true, row: { rowIndex: 0, id: '10', question: 'Q0', context: 'doc zero', answers: ['a0'] } },
      { ok: true, row: { rowIndex: 1, id: '11', question: 'Q1', context: 'doc one', answers: ['a1', 'b1'] } },
      { ok: true, row: { rowIndex: 2, id: '12', question: 'Q2', context: 'doc two', answers: [] } },
    ]);
  });
});
