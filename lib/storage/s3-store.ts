/**
 * Blob store on S3 or any S3-compatible server (MinIO). A single PUT is atomic in S3, so readers never
 * see half an object; putIfAbsent is a conditional PUT (`If-None-Match: *`).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import {
  AbstractBlobStore,
  BlobNotFoundError,
  STREAM_PART_BYTES,
  BlobStoreConfigError,
  BlobStoreUnavailableError,
  bodyBytes,
  checkRange,
  keyProblem,
  validateKey,
  validatePrefix,
  type BlobBody,
  type BlobStat,
  type PutOptions,
} from './blob-store';

export interface S3BlobStoreConfig {
  /** Server URL, e.g. http://127.0.0.1:9000 for MinIO; omit for AWS S3. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Folder inside the bucket that holds this store's keys ('' or omitted: the bucket root). */
  prefix?: string;
  /** Path-style URLs (http://host/bucket/key), which MinIO needs; defaults to true when `endpoint` is set. */
  forcePathStyle?: boolean;
  /** Both or neither; when omitted the standard AWS chain applies (AWS_ACCESS_KEY_ID, profiles, roles). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Give up connecting after this long (default 5 s): a stopped server fails fast instead of hanging. */
  connectTimeoutMs?: number;
  /** Abort a request whose socket stays silent this long (default 30 s). */
  idleTimeoutMs?: number;
  /** Server-side encryption asked for on every object written (SSE-KMS or SSE-S3); absent: the bucket's default. */
  serverSideEncryption?: S3ServerSideEncryption;
}

/** S3's own encryption at rest, passed through on every PUT and multipart upload. */
export interface S3ServerSideEncryption {
  algorithm: 'aws:kms' | 'aws:kms:dsse' | 'AES256';
  /** The KMS key (id, ARN or alias) for `aws:kms*`; absent: the account's AWS-managed key. */
  kmsKeyId?: string;
  /** S3 Bucket Keys (fewer KMS calls) for `aws:kms`. */
  bucketKeyEnabled?: boolean;
}

/** The request fields of a write that carry the encryption settings. */
export function serverSideEncryptionParams(sse: S3ServerSideEncryption | undefined): {
  ServerSideEncryption?: S3ServerSideEncryption['algorithm'];
  SSEKMSKeyId?: string;
  BucketKeyEnabled?: boolean;
} {
  if (sse === undefined) return {};
  return {
    ServerSideEncryption: sse.algorithm,
    ...(sse.kmsKeyId === undefined ? {} : { SSEKMSKeyId: sse.kmsKeyId }),
    ...(sse.bucketKeyEnabled === undefined ? {} : { BucketKeyEnabled: sse.bucketKeyEnabled }),
  };
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
// AWS answers 409 ConditionalRequestConflict while another conditional write to the key is in flight.
const MAX_CONDITIONAL_ATTEMPTS = 5;

const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const CREDENTIAL_ERROR_NAMES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'InvalidToken',
  'ExpiredToken',
]);

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** An endpoint as it may be shown: credentials written into the URL (`http://key:secret@host`) are never echoed. */
export function endpointForDisplay(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    if (url.username === '' && url.password === '') return endpoint;
    url.username = '';
    url.password = '';
    return url.toString().replace('://', '://***@');
  } catch {
    return endpoint.replace(
      /^([a-z]+:\/\/)?[^/@]*@/i,
      (_match, scheme: string | undefined) => `${scheme ?? ''}***@`,
    );
  }
}

export class S3BlobStore extends AbstractBlobStore {
  readonly bucket: string;
  /** Normalised to '' or a path ending in '/'. */
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly where: string;
  private readonly encryption: ReturnType<typeof serverSideEncryptionParams>;
  private bucketChecked: Promise<void> | undefined;

  constructor(config: S3BlobStoreConfig) {
    super();
    const describe = (field: string, value: unknown) =>
      `S3 blob store: ${field} ${JSON.stringify(typeof value === 'string' && field === 'endpoint' ? endpointForDisplay(value) : value)}`;
    if (typeof config.bucket !== 'string' || config.bucket.trim() === '') {
      throw new BlobStoreConfigError(
        `${describe('bucket', config.bucket)} is empty; name an existing bucket`,
      );
    }
    if (typeof config.region !== 'string' || config.region.trim() === '') {
      throw new BlobStoreConfigError(`${describe('region', config.region)} is empty; e.g. us-east-1`);
    }
    if (config.endpoint !== undefined && !/^https?:\/\/[^/]+/.test(config.endpoint)) {
      throw new BlobStoreConfigError(
        `${describe('endpoint', config.endpoint)} is not a URL; expected e.g. http://127.0.0.1:9000`,
      );
    }
    const sse = config.serverSideEncryption;
    if (sse?.kmsKeyId !== undefined && !sse.algorithm.startsWith('aws:kms')) {
      throw new BlobStoreConfigError(`S3 blob store: a KMS key id needs server-side encryption aws:kms, not ${sse.algorithm}`);
    }
    this.encryption = serverSideEncryptionParams(sse);
    if ((config.accessKeyId === undefined) !== (config.secretAccessKey === undefined)) {
      throw new BlobStoreConfigError(
        'S3 blob store: give both accessKeyId and secretAccessKey, or neither to use the AWS environment',
      );
    }
    const prefix = (config.prefix ?? '').replace(/\/+$/, '');
    const prefixProblem = prefix === '' ? undefined : keyProblem(prefix);
    if (prefixProblem !== undefined) {
      throw new BlobStoreConfigError(`${describe('prefix', config.prefix)} ${prefixProblem}`);
    }
    this.bucket = config.bucket;
    this.prefix = prefix === '' ? '' : `${prefix}/`;
    this.where = `bucket '${config.bucket}' at ${config.endpoint === undefined ? `AWS S3 (${config.region})` : endpointForDisplay(config.endpoint)}`;

    const clientConfig: S3ClientConfig = {
      region: config.region,
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle ?? config.endpoint !== undefined,
      requestHandler: {
        connectionTimeout: config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        socketTimeout: config.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      },
    };
    if (config.accessKeyId !== undefined && config.secretAccessKey !== undefined) {
      clientConfig.credentials = { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey };
    }
    this.client = new S3Client(clientConfig);
  }

  override toString(): string {
    return `S3 blob store in ${this.where}${this.prefix === '' ? '' : ` under '${this.prefix}'`}`;
  }

  /** Fails with one clear error when the bucket is missing, the credentials are wrong or S3 is down. */
  async checkAccess(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      // HEAD responses have no body, so a missing bucket arrives as a bare 404 / 403.
      const status = (error as SdkError).$metadata?.httpStatusCode;
      if (status === 404) throw this.translate({ name: 'NoSuchBucket' });
      if (status === 403) throw this.translate({ name: 'AccessDenied' });
      throw this.translate(error);
    }
  }

  async put(key: string, body: BlobBody, opts: PutOptions = {}): Promise<void> {
    validateKey(key);
    try {
      await this.client.send(this.putCommand(key, body, opts, false));
    } catch (error) {
      throw this.translate(error, key);
    }
  }

  async putStream(key: string, body: AsyncIterable<Uint8Array | string>, opts: PutOptions = {}): Promise<number> {
    validateKey(key);
    const parts = fixedSizeParts(body, STREAM_PART_BYTES);
    const first = await parts.next();
    const firstPart = first.done ? new Uint8Array(0) : first.value;
    if (firstPart.byteLength < STREAM_PART_BYTES) {
      // The whole body fits in one part: one PUT, as put() does.
      await this.put(key, firstPart, { contentType: opts.contentType ?? 'application/octet-stream' });
      return firstPart.byteLength;
    }
    let uploadId: string | undefined;
    try {
      const created = await this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.prefix + key,
          ContentType: opts.contentType ?? 'application/octet-stream',
          ...this.encryption,
        }),
      );
      uploadId = created.UploadId;
      if (uploadId === undefined) throw new Error(`S3 returned no upload id for key '${key}' in ${this.where}`);
      const completed: CompletedPart[] = [];
      let bytes = 0;
      for (let part: Uint8Array | undefined = firstPart; part !== undefined; ) {
        const PartNumber = completed.length + 1;
        const uploaded = await this.client.send(
          new UploadPartCommand({ Bucket: this.bucket, Key: this.prefix + key, UploadId: uploadId, PartNumber, Body: part }),
        );
        completed.push({ PartNumber, ETag: uploaded.ETag });
        bytes += part.byteLength;
        const next = await parts.next();
        part = next.done ? undefined : next.value;
      }
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.prefix + key,
          UploadId: uploadId,
          MultipartUpload: { Parts: completed },
        }),
      );
      return bytes;
    } catch (error) {
      if (uploadId !== undefined) {
        // Parts of an abandoned upload are billed until aborted; a failed abort leaves them to a lifecycle rule.
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.prefix + key, UploadId: uploadId }))
          .catch(() => undefined);
      }
      throw this.translate(error, key);
    }
  }

  async stat(key: string): Promise<BlobStat> {
    validateKey(key);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      return { size: head.ContentLength ?? 0, etag: head.ETag?.replace(/"/g, '') };
    } catch (error) {
      if ((error as SdkError).$metadata?.httpStatusCode === 404) {
        await this.ensureBucket();
        throw new BlobNotFoundError(key, this.toString());
      }
      throw this.translate(error, key);
    }
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    validateKey(key);
    checkRange(start, end);
    if (start === end) {
      await this.stat(key); // still an error when the object is absent
      return new Uint8Array(0);
    }
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Range: `bytes=${start}-${end - 1}` }),
      );
      if (response.Body === undefined) throw new Error(`S3 returned no body for key '${key}' in ${this.where}`);
      return await response.Body.transformToByteArray();
    } catch (error) {
      // A range starting at or past the end of the object.
      if ((error as SdkError).$metadata?.httpStatusCode === 416) return new Uint8Array(0);
      throw this.translate(error, key);
    }
  }

  /** Objects under `prefix` (relative to the store's own prefix) with their sizes and ETags, in key order. */
  async *listWithStats(prefix: string): AsyncGenerator<{ key: string } & BlobStat> {
    validatePrefix(prefix);
    let continuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: continuationToken }),
        );
      } catch (error) {
        throw this.translate(error);
      }
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        yield { key: object.Key.slice(this.prefix.length), size: object.Size ?? 0, etag: object.ETag?.replace(/"/g, '') };
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
  }

  async putIfAbsent(key: string, body: BlobBody, opts: PutOptions = {}): Promise<boolean> {
    validateKey(key);
    // If the SDK retries after a lost response to a PUT that did land, the retry sees 412 and this
    // returns false although the stored body is ours: callers needing certainty compare the content.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.send(this.putCommand(key, body, opts, true));
        return true;
      } catch (error) {
        const { name, $metadata } = error as SdkError;
        if (name === 'PreconditionFailed' || $metadata?.httpStatusCode === 412) return false;
        const conflict = name === 'ConditionalRequestConflict' || $metadata?.httpStatusCode === 409;
        if (conflict && attempt < MAX_CONDITIONAL_ATTEMPTS) {
          await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt));
          continue;
        }
        throw this.translate(error, key);
      }
    }
  }

  async get(key: string): Promise<Uint8Array> {
    const body = await this.openBody(key);
    try {
      return await body.transformToByteArray();
    } catch (error) {
      throw this.translate(error, key);
    }
  }

  async getStream(key: string): Promise<Readable> {
    const body = await this.openBody(key);
    if (!(body instanceof Readable)) {
      throw new Error(`S3 client returned a ${body.constructor.name} body, expected a Node Readable`);
    }
    return body;
  }

  async exists(key: string): Promise<boolean> {
    validateKey(key);
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      return true;
    } catch (error) {
      if ((error as SdkError).$metadata?.httpStatusCode !== 404) throw this.translate(error, key);
    }
    // A missing bucket also answers HEAD with a bare 404: tell the two apart once per store.
    await this.ensureBucket();
    return false;
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
    } catch (error) {
      throw this.translate(error, key);
    }
  }

  list(prefix: string): AsyncIterable<string> {
    validatePrefix(prefix);
    return this.listPages(prefix);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private async *listPages(prefix: string): AsyncGenerator<string> {
    let continuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            ContinuationToken: continuationToken,
          }),
        );
      } catch (error) {
        throw this.translate(error);
      }
      // S3 returns each page in UTF-8 byte order, and pages follow one another in that order.
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined) yield object.Key.slice(this.prefix.length);
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
  }

  private putCommand(key: string, body: BlobBody, opts: PutOptions, onlyIfAbsent: boolean): PutObjectCommand {
    const defaultType = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream';
    return new PutObjectCommand({
      Bucket: this.bucket,
      Key: this.prefix + key,
      Body: bodyBytes(body),
      ContentType: opts.contentType ?? defaultType,
      IfNoneMatch: onlyIfAbsent ? '*' : undefined,
      ...this.encryption,
    });
  }

  private async openBody(key: string) {
    validateKey(key);
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }),
      );
      if (response.Body === undefined)
        throw new Error(`S3 returned no body for key '${key}' in ${this.where}`);
      return response.Body;
    } catch (error) {
      throw this.translate(error, key);
    }
  }

  private async ensureBucket(): Promise<void> {
    this.bucketChecked ??= this.checkAccess().catch((error: unknown) => {
      this.bucketChecked = undefined;
      throw error;
    });
    await this.bucketChecked;
  }

  /** Maps SDK errors to the store's errors; anything unrecognised is rethrown unchanged. */
  private translate(error: unknown, key?: string): unknown {
    const { name = '', code, message, $metadata } = (error ?? {}) as SdkError;
    const status = $metadata?.httpStatusCode;
    if ((name === 'NoSuchKey' || (name === 'NotFound' && status === 404)) && key !== undefined) {
      return new BlobNotFoundError(key, this.toString());
    }
    if (name === 'NoSuchBucket') {
      return new BlobStoreConfigError(
        `${this.where} does not exist: create it (the local stack does) or set the right bucket name`,
        { cause: error },
      );
    }
    if (name === 'CredentialsProviderError') {
      return new BlobStoreConfigError(
        `no AWS credentials found for ${this.where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
        { cause: error },
      );
    }
    if (CREDENTIAL_ERROR_NAMES.has(name)) {
      return new BlobStoreConfigError(
        `${this.where} refused the credentials (${name}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
        { cause: error },
      );
    }
    // Errors from another JS realm (e.g. a test sandbox) reach us re-wrapped by the SDK with only a
    // message left, so the code is also looked for in the text.
    const networkCode =
      code !== undefined && NETWORK_ERROR_CODES.has(code)
        ? code
        : [...NETWORK_ERROR_CODES].find((candidate) => message?.includes(candidate));
    if (networkCode !== undefined || name === 'TimeoutError' || name === 'RequestTimeout') {
      return new BlobStoreUnavailableError(
        `cannot reach ${this.where} (${networkCode ?? name}): is the S3 server running? ` +
          (message ?? '').replace(/^AWS SDK error wrapper for /, ''),
        error,
      );
    }
    // A server without the KMS (or key) asked for refuses every write the same way: no retry helps.
    const sse = this.encryption.ServerSideEncryption;
    if (sse !== undefined && (name === 'NotImplemented' || /kms|encryption/i.test(`${name} ${status === 400 ? (message ?? '') : ''}`))) {
      return new BlobStoreConfigError(
        `${this.where} cannot apply the server-side encryption asked for (${sse}): ${name || `HTTP ${status}`}; check REMEMR1_S3_SSE and REMEMR1_S3_SSE_KMS_KEY_ID, and that the server has that KMS key`,
        { cause: error },
      );
    }
    if (status !== undefined && (status >= 500 || status === 429)) {
      return new BlobStoreUnavailableError(
        `${this.where} failed transiently (HTTP ${status} ${name})`,
        error,
      );
    }
    return error;
  }
}

/** Regroups a stream of chunks into parts of exactly `size` bytes (the last may be shorter); holds one part. */
export async function* fixedSizeParts(
  body: AsyncIterable<Uint8Array | string>,
  size: number,
): AsyncGenerator<Uint8Array, void, undefined> {
  let part = Buffer.allocUnsafe(size);
  let filled = 0;
  for await (const chunk of body) {
    let bytes = bodyBytes(chunk);
    while (bytes.byteLength > 0) {
      const take = Math.min(size - filled, bytes.byteLength);
      part.set(bytes.subarray(0, take), filled);
      filled += take;
      bytes = bytes.subarray(take);
      if (filled === size) {
        yield part;
        part = Buffer.allocUnsafe(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield part.subarray(0, filled);
}
