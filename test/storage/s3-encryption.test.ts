/**
 * S3 server-side encryption passed through from the configuration: objects written with SSE-KMS are stored encrypted
 * under the named KMS key (a private MinIO with a static KMS key of its own), and a server that cannot apply the
 * encryption asked for (the shared MinIO has no KMS) refuses in one non-retryable line naming the setting.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { LOCAL_S3_ADDRESS } from '../../infra/stack';
import { LOCAL_S3_DEFAULTS, startS3, stopS3, type StackPaths } from '../../infra/local-stack';
import { BlobStoreConfigError, S3BlobStore } from '../../lib/storage';
import { loadConfig } from '../../temporal.config';
import { privateServerSlot } from '../support/rig';
import { requireStackEnvironment } from '../support/stack';

requireStackEnvironment();
jest.setTimeout(300_000);

const KMS_KEY = 'rememr1-test-key';
const credentials = { accessKeyId: LOCAL_S3_DEFAULTS.accessKeyId, secretAccessKey: LOCAL_S3_DEFAULTS.secretAccessKey };
let paths: StackPaths;
let address: string;

beforeAll(async () => {
  ({ paths, address } = await privateServerSlot('sse'));
  // MinIO's single static KMS key, read from the environment it is started with (this server only).
  const before = process.env.MINIO_KMS_SECRET_KEY;
  process.env.MINIO_KMS_SECRET_KEY = `${KMS_KEY}:${randomBytes(32).toString('base64')}`;
  try {
    await startS3({ paths, address, bucket: 'sse', ...credentials });
  } finally {
    if (before === undefined) delete process.env.MINIO_KMS_SECRET_KEY;
    else process.env.MINIO_KMS_SECRET_KEY = before;
  }
});

afterAll(async () => {
  if (paths) await stopS3(paths);
});

describe('S3 server-side encryption', () => {
  it('reads the settings from the environment, and refuses a KMS key without aws:kms', () => {
    const env = { REMEMR1_STORAGE: 's3', REMEMR1_S3_SSE: 'aws:kms', REMEMR1_S3_SSE_KMS_KEY_ID: KMS_KEY, REMEMR1_S3_SSE_BUCKET_KEY: 'true' };
    const storage = loadConfig({ env }).storage;
    expect(storage.kind === 's3' && storage.serverSideEncryption).toEqual({ algorithm: 'aws:kms', kmsKeyId: KMS_KEY, bucketKeyEnabled: true });
    expect(() => loadConfig({ env: { ...env, REMEMR1_S3_SSE: 'AES256' } })).toThrow(/REMEMR1_S3_SSE_KMS_KEY_ID: a KMS key needs REMEMR1_S3_SSE=aws:kms/);
    expect(() => loadConfig({ env: { ...env, REMEMR1_S3_SSE: 'rot13' } })).toThrow(/REMEMR1_S3_SSE/);
  });

  it('stores objects encrypted under the KMS key named, single PUT and multipart alike, and reads them back', async () => {
    const prefix = `sse-${randomUUID().slice(0, 8)}`;
    const store = new S3BlobStore({
      endpoint: `http://${address}`, region: LOCAL_S3_DEFAULTS.region, bucket: 'sse', prefix, ...credentials,
      serverSideEncryption: { algorithm: 'aws:kms', kmsKeyId: KMS_KEY },
    });
    const client = new S3Client({ endpoint: `http://${address}`, region: LOCAL_S3_DEFAULTS.region, forcePathStyle: true, credentials });
    try {
      const big = randomBytes(12 * 1024 * 1024);
      await store.put('small.txt', 'a confidential memory');
      await store.putStream('big.bin', (async function* () {
        for (let offset = 0; offset < big.length; offset += 1024 * 1024) yield big.subarray(offset, offset + 1024 * 1024);
      })());
      expect(Buffer.from(await store.get('small.txt')).toString()).toBe('a confidential memory');
      expect(Buffer.from(await store.get('big.bin')).equals(big)).toBe(true);
      for (const key of ['small.txt', 'big.bin']) {
        const head = await client.send(new HeadObjectCommand({ Bucket: 'sse', Key: `${prefix}/${key}` }));
        expect([key, head.ServerSideEncryption, head.SSEKMSKeyId?.endsWith(KMS_KEY)]).toEqual([key, 'aws:kms', true]);
      }
    } finally {
      client.destroy();
      await store.close();
    }
  });

  it('says in one non-retryable line that a server without a KMS cannot apply it', async () => {
    const store = new S3BlobStore({
      endpoint: `http://${LOCAL_S3_ADDRESS}`, region: LOCAL_S3_DEFAULTS.region, bucket: LOCAL_S3_DEFAULTS.bucket, prefix: `sse-${randomUUID().slice(0, 8)}`,
      ...credentials, serverSideEncryption: { algorithm: 'aws:kms', kmsKeyId: KMS_KEY },
    });
    try {
      const failure = await store.put('x.txt', 'x').then(() => undefined, (error: Error) => error);
      expect(failure).toBeInstanceOf(BlobStoreConfigError);
      expect(failure?.message).toMatch(/cannot apply the server-side encryption asked for \(aws:kms\): .*check REMEMR1_S3_SSE/);
      expect(failure?.message).not.toContain('\n');
    } finally {
      await store.close();
    }
  });
});
