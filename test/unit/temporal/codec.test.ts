/** The encryption codec and its keyring: round trips, key rotation, and one-line errors that never show a key. */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { loopbackSpellings } from '../../../cli/codec-server';
import { projectDataConverter } from '../../../lib/temporal/data-converter';
import { failureConverter } from '../../../lib/temporal/failure-converter';
import { AesGcmCodec, EncryptionKeyError, KEY_ID_METADATA, loadKeyring, parseKeyring } from '../../../lib/temporal/codec';

const keyLine = (id: string, bytes = 32): string => `${id}:${randomBytes(bytes).toString('base64')}`;
const secret = 'the confidential question: who signed the treaty?';

describe('AES-256-GCM payload codec', () => {
  it('round-trips payloads, hides their text and names the key id', async () => {
    const codec = new AesGcmCodec(parseKeyring(keyLine('k1'), 'test'));
    const payload = defaultPayloadConverter.toPayload({ question: secret });
    const [encoded] = await codec.encode([payload]);
    expect(Buffer.from(encoded.data as Uint8Array).toString('latin1')).not.toContain('confidential');
    expect(Buffer.from(encoded.metadata?.[KEY_ID_METADATA] as Uint8Array).toString()).toBe('k1');
    const [decoded] = await codec.decode([encoded]);
    expect(defaultPayloadConverter.fromPayload(decoded)).toEqual({ question: secret });
  });

  it('decrypts with an old key after rotation, encrypts with the new one, and passes plain payloads through', async () => {
    const old = keyLine('k1');
    const before = new AesGcmCodec(parseKeyring(old, 'test'));
    const rotated = new AesGcmCodec(parseKeyring(`${keyLine('k2')}\n# decrypt-only\n${old}`, 'test'));
    const [written] = await before.encode([defaultPayloadConverter.toPayload(secret)]);
    expect(defaultPayloadConverter.fromPayload((await rotated.decode([written]))[0])).toBe(secret);
    const [fresh] = await rotated.encode([defaultPayloadConverter.toPayload(secret)]);
    expect(Buffer.from(fresh.metadata?.[KEY_ID_METADATA] as Uint8Array).toString()).toBe('k2');
    const plain = defaultPayloadConverter.toPayload('not encrypted');
    expect(await rotated.decode([plain])).toEqual([plain]);
  });

  it('refuses an unknown key id, a wrong key under a known id, and bad key files in one line without key material', async () => {
    const k1 = keyLine('k1');
    const [written] = await new AesGcmCodec(parseKeyring(k1, 'test')).encode([defaultPayloadConverter.toPayload(secret)]);
    await expect(new AesGcmCodec(parseKeyring(keyLine('k2'), 'test')).decode([written])).rejects.toThrow(/key id "k1", which is not among the known keys \(k2\)/);
    await expect(new AesGcmCodec(parseKeyring(keyLine('k1'), 'test')).decode([written])).rejects.toThrow(/does not decrypt/);
    const short = keyLine('short', 16);
    expect(() => parseKeyring(short, 'REMEMR1_ENCRYPTION_KEYS')).toThrow(/expected a 32-byte key \(AES-256\), got 16 bytes/);
    try {
      parseKeyring(short, 'REMEMR1_ENCRYPTION_KEYS');
    } catch (error) {
      expect(error).toBeInstanceOf(EncryptionKeyError);
      expect((error as Error).message).not.toContain(short.split(':')[1]);
      expect((error as Error).message).not.toContain('\n');
    }
    expect(() => parseKeyring('k1 no-colon', 'f')).toThrow(/expected keyId:base64-key/);
    expect(() => parseKeyring('# nothing', 'f')).toThrow(/holds no key/);
    expect(() => parseKeyring(`${k1}\n${k1}`, 'f')).toThrow(/appears twice/);
    const missing = path.join(os.tmpdir(), 'rememr1-no-such-keys-file');
    expect(() => loadKeyring({ keysFile: missing }, {})).toThrow(/cannot read the encryption keys file .*ENOENT.*REMEMR1_ENCRYPTION_KEYS_FILE/);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rememr1-keys-')), 'keys');
    fs.writeFileSync(file, `${k1}\n`);
    expect(() => loadKeyring({ keysFile: file }, { REMEMR1_ENCRYPTION_KEYS: k1 })).toThrow(/both set/);
    expect(loadKeyring({ keysFile: file }, {})?.current.id).toBe('k1');
    expect(loadKeyring({}, {})).toBeUndefined();
  });

  it('with encryption on, puts failure messages into payloads (which the codec encrypts), and is off without keys', () => {
    const failure = failureConverter.errorToFailure(ApplicationFailure.nonRetryable(`row 3 quotes: ${secret}`), defaultPayloadConverter);
    expect(failure.message).not.toContain('confidential');
    expect(failure.stackTrace ?? '').not.toContain('confidential');
    expect(failure.encodedAttributes).toBeDefined();
    expect(projectDataConverter({ encryption: {} }, {})).toBeUndefined();
    const converter = projectDataConverter({ encryption: {} }, { REMEMR1_ENCRYPTION_KEYS: keyLine('k1') });
    expect(converter?.payloadCodecs).toHaveLength(1);
    expect(converter?.failureConverterPath).toBeDefined();
  });

  it('admits a local Web UI under both loopback spellings, and a remote one under its own origin only', () => {
    expect(loopbackSpellings('http://127.0.0.1:8233')).toEqual(['http://127.0.0.1:8233', 'http://localhost:8233']);
    expect(loopbackSpellings('https://temporal.example.com/ui')).toEqual(['https://temporal.example.com']);
  });
});
