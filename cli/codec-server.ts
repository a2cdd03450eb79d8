/**
 * `rememr1 codec-server`: serves the payload codec over HTTP so that the Temporal Web UI (`temporal server start-dev
 * --ui-codec-endpoint URL`, or `npm run stack:start -- --codec-endpoint URL`) and `temporal … --codec-endpoint URL`
 * show encrypted payloads decrypted. Runs until SIGINT / SIGTERM.
 */
import type { Command } from 'commander';
import { AesGcmCodec, loadKeyring } from '../lib/temporal/codec';
import { startCodecServer } from '../lib/temporal/codec-server';
import { loadConfig } from '../temporal.config';

interface CodecServerCliOptions {
  host: string;
  port: number;
  uiOrigin?: string[];
}

/** A local UI is reached as 127.0.0.1 or as localhost: a browser sends whichever the user typed as the origin. */
export function loopbackSpellings(url: string): string[] {
  const origin = new URL(url);
  if (origin.hostname !== '127.0.0.1' && origin.hostname !== 'localhost') return [origin.origin];
  return ['127.0.0.1', 'localhost'].map((host) => {
    const spelt = new URL(origin.origin);
    spelt.hostname = host;
    return spelt.origin;
  });
}

export function registerCodecServerCommand(program: Command, parsePort: (value: string) => number): void {
  program
    .command('codec-server')
    .description('decrypt payloads for the Temporal Web UI and CLI (needs the encryption keys)')
    .option('--host <host>', 'address to listen on (a codec server decrypts for anyone who reaches it)', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: any free port)', parsePort, 8081)
    .option('--ui-origin <url...>', 'Web UI origins allowed to call it from a browser (default: temporal.uiUrl)')
    .action(async (options: CodecServerCliOptions) => {
      const config = loadConfig();
      const keyring = loadKeyring(config.encryption);
      if (keyring === undefined) {
        throw new Error('no encryption keys are configured; set REMEMR1_ENCRYPTION_KEYS_FILE (or REMEMR1_ENCRYPTION_KEYS)');
      }
      const origins = options.uiOrigin ?? loopbackSpellings(config.temporal.uiUrl);
      const token = process.env.REMEMR1_CODEC_SERVER_TOKEN || undefined;
      const server = await startCodecServer({ codec: new AesGcmCodec(keyring), host: options.host, port: options.port, allowedOrigins: origins, token });
      console.log(
        `codec server on ${server.url} (key ${keyring.current.id} encrypts; decrypts ${[...keyring.all.keys()].join(', ')}; UI origins ${origins.join(', ')}${token ? '; bearer token required' : ''})`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
    });
}
