/**
 * Runs the blob store contract against a real S3-compatible server. The jest global setup starts the
 * local server and exports its settings; without them these tests fail (they never skip).
 */
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { BlobStoreConfigError, BlobStoreUnavailableError } from '../../lib/storage/blob-store';
import { S3BlobStore, type S3BlobStoreConfig } from '../../lib/storage/s3-store';
import { collect, describeBlobStoreContract, mapConcurrently } from './contract';

const REQUIRED_ENV = [
  'REMEMR1_S3_ENDPOINT',
  'REMEMR1_S3_BUCKET',
  'REMEMR1_S3_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
] as const;

/** Settings of the server under test; credentials come from the standard AWS variables. */
function serverSettings(): { endpoint: string; bucket: string; region: string } {
  const missing = REQUIRED_ENV.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(
      `S3 blob store tests need a running S3 server; missing environment variables: ${missing.join(', ')}. ` +
        'Run the tests through jest so its global setup starts the local stack, or set them yourself.',
    );
  }
  return {
    endpoint: process.env.REMEMR1_S3_ENDPOINT as string,
    bucket: process.env.REMEMR1_S3_BUCKET as string,
    region: process.env.REMEMR1_S3_REGION as string,
  };
}

// Every run (and every test within it) writes under its own prefix, so runs never collide.
const runPrefix = `contract-tests/${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}`;
let storesMade = 0;

function makeStore(overrides: Partial<S3BlobStoreConfig> = {}): S3BlobStore {
  return new S3BlobStore({ ...serverSettings(), prefix: `${runPrefix}/${storesMade++}`, ...overrides });
}

async function emptyAndClose(store: S3BlobStore): Promise<void> {
  try {
    const keys = await collect(store.list(''));
    await mapConcurrently(keys, 16, (key) => store.delete(key));
  } finally {
    await store.close();
  }
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  return address.port;
}

describeBlobStoreContract('S3', async () => {
  const store = makeStore();
  return { store, dispose: () => emptyAndClose(store) };
});

describe('S3BlobStore against the server', () => {
  const opened: S3BlobStore[] = [];
  const open = (overrides: Partial<S3BlobStoreConfig> = {}): S3BlobStore => {
    const store = makeStore(overrides);
    opened.push(store);
    return store;
  };

  afterEach(async () => {
    await Promise.all(opened.splice(0).map(emptyAndClose));
  });

  test('keys live under the configured prefix, invisible to sibling prefixes', async () => {
    const parent = open();
    const child = open({ prefix: `${parent.prefix}child` });
    const sibling = open({ prefix: `${parent.prefix}sibling` });
    await child.put('runs/r1/result.json', '{}');
    expect(await collect(parent.list(''))).toEqual(['child/runs/r1/result.json']);
    expect(await collect(sibling.list(''))).toEqual([]);
    expect(await sibling.exists('runs/r1/result.json')).toBe(false);
  });

  test('content types are recorded', async () => {
    const store = open();
    await store.putJson('typed/value.json', { a: 1 });
    await store.put('typed/model.onnx', new Uint8Array([1, 2]), { contentType: 'application/x-onnx' });
    const { endpoint, bucket, region } = serverSettings();
    const client = new S3Client({ endpoint, region, forcePathStyle: true });
    try {
      const head = (key: string) =>
        client.send(new HeadObjectCommand({ Bucket: bucket, Key: store.prefix + key }));
      expect((await head('typed/value.json')).ContentType).toBe('application/json');
      expect((await head('typed/model.onnx')).ContentType).toBe('application/x-onnx');
    } finally {
      client.destroy();
    }
  });

  test('a missing bucket is a configuration error naming the bucket and the endpoint', async () => {
    const bucket = `rememr1-absent-${randomBytes(4).toString('hex')}`;
    const store = open({ bucket });
    const { endpoint } = serverSettings();
    const expected = new RegExp(`bucket '${bucket}' at ${endpoint.replace(/[.]/g, '\\.')} does not exist`);
    await expect(store.checkAccess()).rejects.toThrow(expected);
    await expect(store.put('k', 'v')).rejects.toThrow(BlobStoreConfigError);
    await expect(store.putIfAbsent('k', 'v')).rejects.toThrow(expected);
    await expect(store.get('k')).rejects.toThrow(expected);
    await expect(store.exists('k')).rejects.toThrow(expected);
    await expect(collect(store.list(''))).rejects.toThrow(expected);
    opened.splice(opened.indexOf(store), 1);
    await store.close();
  });

  test('rejected credentials are a configuration error pointing at the AWS variables', async () => {
    const store = open({ accessKeyId: 'not-a-user', secretAccessKey: 'not-the-secret' });
    await expect(store.checkAccess()).rejects.toThrow(BlobStoreConfigError);
    await expect(store.get('k')).rejects.toThrow(/refused the credentials.*AWS_ACCESS_KEY_ID/);
    opened.splice(opened.indexOf(store), 1);
    await store.close();
  });

  test('an unreachable server fails fast with a retryable connection error', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const store = new S3BlobStore({ ...serverSettings(), endpoint, prefix: runPrefix });
    const started = Date.now();
    try {
      const failure = store.get('k');
      await expect(failure).rejects.toThrow(BlobStoreUnavailableError);
      await expect(failure).rejects.toMatchObject({
        retryable: true,
        message: expect.stringMatching(/cannot reach .*ECONNREFUSED/),
      });
      await expect(store.put('k', 'v')).rejects.toThrow(BlobStoreUnavailableError);
    } finally {
      await store.close();
    }
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
