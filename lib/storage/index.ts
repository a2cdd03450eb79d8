/** The blob store's entry point: pick an implementation from configuration. */
import { BlobStoreConfigError, type BlobStore } from './blob-store';
import { FsBlobStore, type FsBlobStoreConfig } from './fs-store';
import { S3BlobStore, type S3BlobStoreConfig } from './s3-store';

export type BlobStoreConfig = ({ kind: 'fs' } & FsBlobStoreConfig) | ({ kind: 's3' } & S3BlobStoreConfig);

export function createBlobStore(config: BlobStoreConfig): BlobStore {
  switch (config.kind) {
    case 'fs':
      return new FsBlobStore(config);
    case 's3':
      return new S3BlobStore(config);
    default: {
      const kind: unknown = (config as { kind?: unknown }).kind;
      throw new BlobStoreConfigError(
        `unknown blob store kind ${JSON.stringify(kind)}; expected 'fs' or 's3'`,
      );
    }
  }
}

export * from './blob-store';
export * from './keys';
export { FsBlobStore, type FsBlobStoreConfig } from './fs-store';
export { S3BlobStore, type S3BlobStoreConfig } from './s3-store';
export { storedOrComputed } from './stored-or-computed';
export { WritesInFlight } from './writes-in-flight';
