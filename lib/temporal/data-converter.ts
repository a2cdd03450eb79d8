/**
 * The data converter every client and worker of the project uses: Temporal's default, plus the encryption codec
 * when keys are configured (so that a client and a worker built from one configuration always agree).
 */
import type { DataConverter } from '@temporalio/common';
import type { RememConfig } from '../../temporal.config';
import { AesGcmCodec, loadKeyring } from './codec';

/** Undefined when encryption is off (Temporal's default converter applies). */
export function projectDataConverter(config: Pick<RememConfig, 'encryption'>, env: NodeJS.ProcessEnv = process.env): DataConverter | undefined {
  const keyring = loadKeyring(config.encryption, env);
  return keyring === undefined ? undefined : { payloadCodecs: [new AesGcmCodec(keyring)], failureConverterPath: encryptedFailureConverterPath };
}

/** The failure converter module that puts messages and stack traces into encrypted payloads. */
export const encryptedFailureConverterPath = require.resolve('./failure-converter');
