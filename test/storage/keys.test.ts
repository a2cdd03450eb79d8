import fc from 'fast-check';
import {
  BlobStoreConfigError,
  InvalidBlobKeyError,
  MAX_KEY_BYTES,
  compareKeys,
  keyProblem,
  validateKey,
  validatePrefix,
} from '../../lib/storage/blob-store';
import { createBlobStore, FsBlobStore, S3BlobStore } from '../../lib/storage/index';
import {
  InvalidBlobIdError,
  ORDINAL_DIGITS,
  batchIndexKey,
  batchIndexLayoutKey,
  batchPageKey,
  batchRowErrorsKey,
  batchRunKey,
  batchShardIndexKey,
  batchShardsPrefix,
  batchSummaryKey,
  checkpointFileKey,
  checkpointPrefix,
  datasetKey,
  episodeAnswerKey,
  episodeChunkKey,
  episodeChunkManifestKey,
  episodeFailureKey,
  episodeInputKey,
  episodeMemoryKey,
  episodeMemoryPrefix,
  episodePrefix,
  formatOrdinal,
  parseOrdinal,
  policyFileKey,
  policyModelKey,
  policyPrefix,
  runFailuresPrefix,
  runPrefix,
  runResultKey,
  runResultsPrefix,
  trainingBatchKey,
} from '../../lib/storage/keys';
import { INVALID_KEYS } from './contract';

describe('validateKey', () => {
  test.each([
    'a',
    'runs/r1/episodes/e-1/memory/0000000001.json',
    'deep/'.repeat(50) + 'leaf',
    '...',
    '.hidden/file',
    'spaces are fine/and:colons',
    'unicode/日本語/😀',
  ])('accepts %j', (key) => {
    expect(() => validateKey(key)).not.toThrow();
  });

  test('accepts keys of exactly 1024 bytes made of 255-byte segments', () => {
    const key = ['a'.repeat(254), 'b'.repeat(255), 'c'.repeat(255), 'd'.repeat(255), 'e'].join('/');
    expect(Buffer.byteLength(key)).toBe(MAX_KEY_BYTES);
    expect(() => validateKey(key)).not.toThrow();
  });

  test.each([
    ['', /must not be empty/],
    ['/etc/passwd', /relative/],
    ['a//b', /empty segment/],
    ['a/', /must not end with '\/'/],
    ['a/../b', /'\.\.' segment/],
    ['./a', /'\.' segment/],
    ['a\\b', /backslash/],
    ['a\u0000b', /control character U\+0000/],
    ['a\u009bb', /control character U\+009B/],
    ['C:/windows', /drive/],
    ['bad\udc00', /unpaired UTF-16 surrogate/],
    ['a/.partial-1234', /reserved for in-progress writes/],
    ['x'.repeat(MAX_KEY_BYTES + 1), /1025 bytes in UTF-8; at most 1024/],
    ['é'.repeat(200), /segment of 400 bytes/],
  ])('rejects %j with a reason', (key, reason) => {
    let thrown: unknown;
    try {
      validateKey(key);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidBlobKeyError);
    expect(thrown).toMatchObject({ key, message: expect.stringMatching(reason) });
  });

  test('the contract suite only uses keys validateKey rejects', () => {
    for (const key of INVALID_KEYS) expect(keyProblem(key)).toBeDefined();
  });

  test('any key built from ordinary segments is valid, and any control character spoils it', () => {
    const segment = fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 20 })
      .filter((s) => keyProblem(s) === undefined && !s.includes('/'));
    fc.assert(
      fc.property(
        fc.array(segment, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 0x1f }),
        (parts, control) => {
          const key = parts.join('/');
          expect(keyProblem(key)).toBeUndefined();
          expect(keyProblem(key + String.fromCharCode(control))).toMatch(/control character/);
        },
      ),
    );
  });

  test('list prefixes may end with a slash; otherwise follow the key rules', () => {
    expect(() => validatePrefix('')).not.toThrow();
    expect(() => validatePrefix('runs/')).not.toThrow();
    expect(() => validatePrefix('runs/r')).not.toThrow();
    expect(() => validatePrefix('runs//')).toThrow(InvalidBlobKeyError);
    expect(() => validatePrefix('/runs')).toThrow(/invalid as a list prefix/);
  });

  test('keys compare by UTF-8 bytes, as S3 lists them', () => {
    expect(compareKeys('\uff61', '\u{1f600}')).toBeLessThan(0);
    expect('\uff61' < '\u{1f600}').toBe(false); // UTF-16 order disagrees
    expect(compareKeys('a/b.json', 'a/b/c')).toBeLessThan(0);
  });
});

describe('key builders', () => {
  test('follow the storage layout', () => {
    const episode = 'runs/run-1/episodes/ep.7/';
    expect(runPrefix('run-1')).toBe('runs/run-1/');
    expect(episodePrefix('run-1', 'ep.7')).toBe(episode);
    expect(episodeInputKey('run-1', 'ep.7')).toBe(`${episode}input.json`);
    expect(episodeChunkKey('run-1', 'ep.7', 3)).toBe(`${episode}chunks/0000000003.txt`);
    expect(episodeChunkManifestKey('run-1', 'ep.7')).toBe(`${episode}chunks/manifest.json`);
    expect(episodeMemoryPrefix('run-1', 'ep.7')).toBe(`${episode}memory/`);
    expect(episodeMemoryKey('run-1', 'ep.7', 42)).toBe(`${episode}memory/0000000042.json`);
    expect(episodeAnswerKey('run-1', 'ep.7')).toBe(`${episode}answer.json`);
    expect(runResultsPrefix('run-1')).toBe('runs/run-1/results/');
    expect(runResultKey('run-1', 'ep.7')).toBe('runs/run-1/results/ep.7.json');
    expect(runFailuresPrefix('run-1')).toBe('runs/run-1/failures/');
    expect(episodeFailureKey('run-1', 'ep.7')).toBe('runs/run-1/failures/ep.7.json');
    expect(batchRunKey('run-1')).toBe('runs/run-1/batch/run.json');
    expect(batchIndexKey('run-1')).toBe('runs/run-1/batch/index.json');
    expect(batchPageKey('run-1', 12)).toBe('runs/run-1/batch/pages/0000000012.json');
    expect(batchRowErrorsKey('run-1')).toBe('runs/run-1/batch/row-errors.json');
    expect(batchSummaryKey('run-1')).toBe('runs/run-1/batch/summary.json');
    expect(batchIndexLayoutKey('run-1')).toBe('runs/run-1/batch/index-layout.json');
    expect(batchShardsPrefix('run-1')).toBe('runs/run-1/batch/shards/');
    expect(batchShardIndexKey('run-1', 3)).toBe('runs/run-1/batch/shards/0000000003.json');
    expect(checkpointPrefix('train_A', 3)).toBe('training/train_A/checkpoints/0000000003/');
    expect(checkpointFileKey('train_A', 3, 'weights.bin')).toBe(
      'training/train_A/checkpoints/0000000003/weights.bin',
    );
    expect(trainingBatchKey('train_A', 3)).toBe('training/train_A/batches/0000000003.json');
    expect(policyPrefix('v12')).toBe('policies/v12/');
    expect(policyFileKey('v12', 'tokenizer.json')).toBe('policies/v12/tokenizer.json');
    expect(policyModelKey('v12')).toBe('policies/v12/model.onnx');
    expect(datasetKey('0123abcd', 'hotpot_dev.jsonl')).toBe('datasets/0123abcd/hotpot_dev.jsonl');
  });

  test.each(['', '.', '..', 'a/b', '../x', 'sp ace', 'ü', 'x'.repeat(129), '.partial-1'])(
    'reject the id %j',
    (id) => {
      expect(() => runResultKey('run', id)).toThrow(
        id === '.partial-1' ? InvalidBlobKeyError : InvalidBlobIdError,
      );
    },
  );

  test('name the kind of id that is wrong', () => {
    expect(() => episodeMemoryKey('ok', 'bad/id', 1)).toThrow(/invalid episode id "bad\/id"/);
    expect(() => checkpointPrefix('run', -1)).toThrow(/invalid step -1: expected an integer from 0/);
    expect(() => batchPageKey('run', 1.5)).toThrow(/invalid page number 1\.5/);
    expect(() => trainingBatchKey('bad/run', 0)).toThrow(/invalid training run id "bad\/run"/);
    expect(() => episodeChunkKey('run', 'ep', 10 ** ORDINAL_DIGITS)).toThrow(/invalid chunk index/);
    expect(() => parseOrdinal('12')).toThrow(/expected 10 decimal digits/);
  });

  test('byte order of numbered keys is numeric order, and numbers parse back', () => {
    const largest = 10 ** ORDINAL_DIGITS - 1;
    fc.assert(
      fc.property(fc.nat({ max: largest }), fc.nat({ max: largest }), (a, b) => {
        const order = Math.sign(compareKeys(episodeMemoryKey('r', 'e', a), episodeMemoryKey('r', 'e', b)));
        expect(order).toBe(Math.sign(a - b));
        expect(parseOrdinal(formatOrdinal(a))).toBe(a);
      }),
    );
  });
});

describe('createBlobStore', () => {
  test('builds the configured implementation', async () => {
    const fsStore = createBlobStore({ kind: 'fs', root: 'some/folder' });
    expect(fsStore).toBeInstanceOf(FsBlobStore);
    const s3Store = createBlobStore({ kind: 's3', region: 'us-east-1', bucket: 'b', prefix: 'p/q/' });
    expect(s3Store).toBeInstanceOf(S3BlobStore);
    expect((s3Store as S3BlobStore).prefix).toBe('p/q/');
    await Promise.all([fsStore.close(), s3Store.close()]);
  });

  test.each([
    [{ kind: 'ftp' }, /unknown blob store kind "ftp"; expected 'fs' or 's3'/],
    [{ kind: 'fs', root: ' ' }, /needs a root folder/],
    [{ kind: 's3', region: 'us-east-1', bucket: '' }, /bucket "" is empty/],
    [{ kind: 's3', region: '', bucket: 'b' }, /region "" is empty/],
    [
      { kind: 's3', region: 'r', bucket: 'b', endpoint: '127.0.0.1:9000' },
      /is not a URL; expected e\.g\. http/,
    ],
    [
      { kind: 's3', region: 'r', bucket: 'b', accessKeyId: 'only-half' },
      /both accessKeyId and secretAccessKey/,
    ],
    [
      { kind: 's3', region: 'r', bucket: 'b', prefix: '../up' },
      /prefix "\.\.\/up" must not contain a '\.\.' segment/,
    ],
  ])('rejects bad configuration %j', (config, message) => {
    expect(() => createBlobStore(config as Parameters<typeof createBlobStore>[0])).toThrow(
      BlobStoreConfigError,
    );
    expect(() => createBlobStore(config as Parameters<typeof createBlobStore>[0])).toThrow(message);
  });
});
