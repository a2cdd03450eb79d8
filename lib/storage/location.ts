/**
 * Places outside the project's own blob store that a command reads from or writes to: a local folder or an S3
 * location (`s3://bucket/prefix`). Both are opened as blob stores rooted there, so reading and writing them
 * uses the same interface as the project's store.
 */
import * as path from 'node:path';
import { BlobStoreConfigError, keyProblem, type BlobStore } from './blob-store';
import { FsBlobStore } from './fs-store';
import { S3BlobStore } from './s3-store';

export type Location = { kind: 'fs'; folder: string } | { kind: 's3'; bucket: string; prefix: string };

const BUCKET_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Parses `s3://bucket[/prefix]` or a local folder path; throws one clear line for a malformed S3 URI. */
export function parseLocation(text: string): Location {
  if (!/^s3:\/\//i.test(text)) return { kind: 'fs', folder: path.resolve(text) };
  const rest = text.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const prefix = (slash === -1 ? '' : rest.slice(slash + 1)).replace(/\/+$/, '');
  if (!BUCKET_PATTERN.test(bucket)) {
    throw new BlobStoreConfigError(`${text}: "${bucket}" is not an S3 bucket name (expected s3://bucket/prefix)`);
  }
  const problem = prefix === '' ? undefined : keyProblem(prefix);
  if (problem !== undefined) throw new BlobStoreConfigError(`${text}: the key prefix ${problem}`);
  return { kind: 's3', bucket, prefix };
}

export function describeLocation(location: Location): string {
  return location.kind === 'fs' ? location.folder : `s3://${location.bucket}/${location.prefix}`;
}

/** How to reach S3 when the project's own store is not on S3: the standard variables, else AWS itself. */
export interface S3Endpoint {
  endpoint?: string;
  region: string;
  forcePathStyle?: boolean;
}

export function s3EndpointFromEnvironment(env: NodeJS.ProcessEnv = process.env): S3Endpoint {
  const endpoint = env.REMEMR1_S3_ENDPOINT || undefined;
  return { endpoint, region: env.REMEMR1_S3_REGION || env.AWS_REGION || 'us-east-1' };
}

/** A blob store rooted at the location; an S3 one is checked for access first (missing bucket, credentials). */
export async function openLocation(location: Location, s3: S3Endpoint): Promise<BlobStore> {
  if (location.kind === 'fs') return new FsBlobStore({ root: location.folder });
  const store = new S3BlobStore({ ...s3, bucket: location.bucket, prefix: location.prefix });
  try {
    await store.checkAccess();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}
