import { MAX_SHARDS, checkColumns, checkShardCount, commonFormat, datasetDigest, globToRegExp, isSideFile, parseS3Uri, type ResolvedSource } from '../../../lib/data/sources';

describe('dataset sources (pure parts)', () => {
  it('matches globs within one path segment', () => {
    const pattern = globToRegExp('part-*.parquet');
    expect(pattern.test('part-00001.parquet')).toBe(true);
    expect(pattern.test('part-1.jsonl')).toBe(false);
    expect(pattern.test('sub/part-1.parquet')).toBe(false);
    expect(globToRegExp('shard-?.json[l]').test('shard-3.jsonl')).toBe(true);
    expect(globToRegExp('a.b(c)+.jsonl').test('a.b(c)+.jsonl')).toBe(true);
    expect(globToRegExp('a.b(c)+.jsonl').test('aXb(c)+.jsonl')).toBe(false);
  });

  it('skips marker files and finds the one format, naming a stray or a second format', () => {
    expect(isSideFile('data/_SUCCESS')).toBe(true);
    expect(isSideFile('.part-0.parquet.crc')).toBe(true);
    expect(isSideFile('part-0.parquet')).toBe(false);
    expect(commonFormat('d/', ['a.parquet', 'b.PARQUET'])).toBe('parquet');
    expect(() => commonFormat('d/', ['a.parquet', 'b.jsonl'])).toThrow('d/ mixes formats: a.parquet is parquet but b.jsonl is jsonl');
    expect(() => commonFormat('d/', ['a.jsonl', 'README.md'])).toThrow('README.md in d/ is not a dataset shard');
    expect(() => commonFormat('d/', [])).toThrow('d/ holds no dataset shards');
  });

  it('parses S3 URIs and refuses a bucket name S3 would refuse', () => {
    expect(parseS3Uri('s3://my-bucket/corpora/hotpot/')).toEqual({ bucket: 'my-bucket', key: 'corpora/hotpot/' });
    expect(parseS3Uri('s3://my-bucket')).toEqual({ bucket: 'my-bucket', key: '' });
    expect(() => parseS3Uri('s3://My_Bucket/x')).toThrow('"My_Bucket" is not an S3 bucket name');
  });

  it('names a missing column with the option that sets it and the columns there are', () => {
    expect(() => checkColumns('a.jsonl', ['question', 'context'], {})).not.toThrow();
    expect(() => checkColumns('a.jsonl', ['input', 'context'], {})).toThrow(
      'a.jsonl has no column "question" (the question; set it with --question-field); its columns are: input, context',
    );
    expect(() => checkColumns('a.jsonl', ['question', 'context'], { id: 'uid' })).toThrow('set it with --id-field');
    expect(() => checkColumns('a.jsonl', undefined, { question: 'x' })).not.toThrow();
    // JSON rows: the first row is a sample; a row without the default columns is a malformed row, not a refusal.
    expect(() => checkColumns('a.jsonl', ['question'], {}, false)).not.toThrow();
    expect(() => checkColumns('a.jsonl', ['question'], { context: 'body' }, false)).toThrow('no column "body"');
  });

  it('refuses more shards than a workflow input carries', () => {
    const source = (count: number): ResolvedSource => ({
      spec: 's3://b/p/',
      format: 'jsonl',
      shards: Array.from({ length: count }, (_, i) => ({ kind: 's3', bucket: 'b', key: `p/${i}.jsonl`, name: `s3://b/p/${i}.jsonl`, size: 1, etag: 'e' })),
    });
    expect(() => checkShardCount(source(MAX_SHARDS))).not.toThrow();
    expect(() => checkShardCount(source(MAX_SHARDS + 1))).toThrow(`s3://b/p/ has ${MAX_SHARDS + 1} shards; a batch takes at most ${MAX_SHARDS}`);
  });

  it('identifies one local file by its sha256 and shards by names, sizes and digests', () => {
    const one: ResolvedSource = { spec: 'a.jsonl', format: 'jsonl', shards: [{ kind: 'file', path: '/d/a.jsonl', name: '/d/a.jsonl', size: 3 }] };
    expect(datasetDigest(one, ['f'.repeat(64)])).toBe('f'.repeat(64));
    const shards: ResolvedSource = {
      spec: 's3://b/p/',
      format: 'parquet',
      shards: [
        { kind: 's3', bucket: 'b', key: 'p/0.parquet', name: 's3://b/p/0.parquet', size: 10, etag: 'e0' },
        { kind: 's3', bucket: 'b', key: 'p/1.parquet', name: 's3://b/p/1.parquet', size: 12, etag: 'e1' },
      ],
    };
    const digest = datasetDigest(shards, ['etag:e0:10', 'etag:e1:12']);
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    expect(datasetDigest(shards, ['etag:e0:10', 'etag:e2:12'])).not.toBe(digest);
  });
});
