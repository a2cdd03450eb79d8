/**
 * Payload encryption: a Temporal payload codec (AES-256-GCM) so that questions, documents, memories and answers are
 * never stored in plaintext in Temporal's history. Every encrypted payload names its key id in its metadata, so keys
 * rotate without breaking old histories: the current key encrypts, any known key decrypts.
 *
 * Keys come only from a file (`REMEMR1_ENCRYPTION_KEYS_FILE`, or `encryption.keysFile` in the config file) or the
 * environment (`REMEMR1_ENCRYPTION_KEYS`), one `keyId:base64-of-32-bytes` per line; the first line is the current key,
 * the others are decrypt-only. Errors name key ids, files and line numbers, never key material.
 *
 * Node-only (node:crypto): used by clients and workers, never imported by workflow code.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
export const CIPHER_METADATA = 'encryption-cipher';
const CIPHER = 'AES-256-GCM';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** A bad key file, key or payload: one line, no key material, and no retry helps. */
export class EncryptionKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncryptionKeyError';
  }
}

export interface EncryptionKey {
  id: string;
  key: Buffer;
}

export interface Keyring {
  /** Encrypts every new payload. */
  current: EncryptionKey;
  /** Every key that may decrypt, the current one included. */
  all: ReadonlyMap<string, Buffer>;
}

/**
 * Parses `keyId:base64` lines (blank lines and `#` comments ignored; commas separate entries too, for one-line
 * environment variables). `source` names where the text came from, for error messages.
 */
export function parseKeyring(text: string, source: string): Keyring {
  const all = new Map<string, Buffer>();
  let current: EncryptionKey | undefined;
  const entries = text.split(/[\n,]/);
  entries.forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${source}, entry ${index + 1}`;
    const colon = line.indexOf(':');
    if (colon < 0) throw new EncryptionKeyError(`${where}: expected keyId:base64-key`);
    const id = line.slice(0, colon).trim();
    const encoded = line.slice(colon + 1).trim();
    if (!KEY_ID.test(id)) throw new EncryptionKeyError(`${where}: a key id is 1 to 64 characters from A-Z a-z 0-9 . _ -`);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw new EncryptionKeyError(`${where} (key id ${id}): the key is not base64`);
    const key = Buffer.from(encoded, 'base64');
    if (key.length !== KEY_BYTES) {
      throw new EncryptionKeyError(
        `${where} (key id ${id}): expected a ${KEY_BYTES}-byte key (AES-256), got ${key.length} bytes; make one with \`openssl rand -base64 32\``,
      );
    }
    if (all.has(id)) throw new EncryptionKeyError(`${where}: key id ${id} appears twice`);
    all.set(id, key);
    current ??= { id, key };
  });
  if (current === undefined) throw new EncryptionKeyError(`${source} holds no key (expected keyId:base64-key lines)`);
  return { current, all };
}

export interface EncryptionSettings {
  /** A file of key lines (a path is no secret; the file is). */
  keysFile?: string;
}

/**
 * The keyring the configuration and environment ask for, or undefined when encryption is off. A file and inline keys
 * together are refused: which one wins would be a guess.
 */
export function loadKeyring(settings: EncryptionSettings | undefined, env: NodeJS.ProcessEnv = process.env): Keyring | undefined {
  const inline = env.REMEMR1_ENCRYPTION_KEYS;
  const file = settings?.keysFile;
  if (inline && file) {
    throw new EncryptionKeyError('REMEMR1_ENCRYPTION_KEYS and a keys file (REMEMR1_ENCRYPTION_KEYS_FILE or encryption.keysFile) are both set; keep one');
  }
  if (inline) return parseKeyring(inline, 'REMEMR1_ENCRYPTION_KEYS');
  if (!file) return undefined;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new EncryptionKeyError(`cannot read the encryption keys file ${file} (${code}); check REMEMR1_ENCRYPTION_KEYS_FILE`);
  }
  return parseKeyring(text, `encryption keys file ${file}`);
}

function bytes(value: Uint8Array | null | undefined): Buffer {
  return value ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : Buffer.alloc(0);
}

/** AES-256-GCM over the whole serialized payload (metadata included), with the key id as authenticated data. */
export class AesGcmCodec implements PayloadCodec {
  constructor(private readonly keyring: Keyring) {}

  /** The key id that encrypts new payloads. */
  get currentKeyId(): string {
    return this.keyring.current.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const { id, key } = this.keyring.current;
    return payloads.map((payload) => {
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(id));
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: {
          encoding: Buffer.from(ENCRYPTED_ENCODING),
          [KEY_ID_METADATA]: Buffer.from(id),
          [CIPHER_METADATA]: Buffer.from(CIPHER),
        },
        data: sealed,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      // Payloads written before encryption was switched on stay readable.
      if (bytes(payload.metadata?.encoding).toString() !== ENCRYPTED_ENCODING) return payload;
      const id = bytes(payload.metadata?.[KEY_ID_METADATA]).toString();
      const key = this.keyring.all.get(id);
      if (key === undefined) {
        throw new EncryptionKeyError(
          `a payload is encrypted with key id "${id}", which is not among the known keys (${[...this.keyring.all.keys()].join(', ')}); add that key as a decrypt-only line to the encryption keys`,
        );
      }
      const sealed = bytes(payload.data);
      if (sealed.length < IV_BYTES + TAG_BYTES) throw new EncryptionKeyError(`a payload encrypted with key id "${id}" is truncated`);
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(id));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
      } catch {
        throw new EncryptionKeyError(
          `a payload encrypted with key id "${id}" does not decrypt with the key of that id (a different key under the same id, or a corrupted payload)`,
        );
      }
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}
