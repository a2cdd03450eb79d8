/**
 * `npx tsx infra/stack.ts start|stop|status|install`: the local stack from the command line.
 *
 *   start   [--headless] [--no-s3]   start (or reuse) Temporal and MinIO, print where they are
 *   stop                             stop what `start` started (by PID file)
 *   status                           say what answers
 *   install                          only find or install the binaries (used by CI to time the phase)
 */
import { Command } from 'commander';
import { temporalServerAnswers } from '../lib/temporal/client';
import { devServerRefusal } from '../lib/temporal/connect';
import { loadConfig } from '../temporal.config';
import {
  LOCAL_S3_DEFAULTS,
  findOrInstallMinio,
  findOrInstallTemporalCli,
  s3Answers,
  stackPaths,
  startS3,
  startTemporal,
  stopS3,
  stopTemporal,
  type ServerHandle,
  type StackPaths,
} from './local-stack';

export const LOCAL_S3_ADDRESS = process.env.REMEMR1_LOCAL_S3_ADDRESS ?? '127.0.0.1:9000';

/** The environment a process needs to use the local S3 server. */
export function localS3Environment(address = LOCAL_S3_ADDRESS): Record<string, string> {
  return {
    REMEMR1_S3_ENDPOINT: `http://${address}`,
    REMEMR1_S3_REGION: LOCAL_S3_DEFAULTS.region,
    REMEMR1_S3_BUCKET: LOCAL_S3_DEFAULTS.bucket,
    REMEMR1_S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? LOCAL_S3_DEFAULTS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? LOCAL_S3_DEFAULTS.secretAccessKey,
  };
}

/** Starts (or reuses) MinIO at LOCAL_S3_ADDRESS with the local credentials and bucket. */
export function startLocalS3(paths: StackPaths, log?: (message: string) => void): Promise<ServerHandle> {
  const env = localS3Environment();
  return startS3({ paths, address: LOCAL_S3_ADDRESS, bucket: env.REMEMR1_S3_BUCKET, accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, log });
}

async function main(): Promise<void> {
  const config = loadConfig();
  const paths = stackPaths(config.localDir);
  const log = (message: string): void => console.log(`[stack] ${message}`);
  const program = new Command('stack').description('The local Temporal dev server and S3-compatible server');

  program
    .command('install')
    .description('find or install the Temporal CLI and MinIO')
    .option('--no-s3', 'skip MinIO')
    .action((options: { s3: boolean }) => {
      log(`temporal: ${findOrInstallTemporalCli(paths, log)}`);
      if (options.s3) log(`minio: ${findOrInstallMinio(paths, log)}`);
    });

  program
    .command('start')
    .description('start (or reuse) the local servers')
    .option('--headless', 'no Temporal Web UI')
    .option('--no-s3', 'do not start the S3 server')
    .option('--codec-endpoint <url>', 'the Web UI decodes payloads through this codec server (`rememr1 codec-server`)')
    .action(async (options: { headless?: boolean; s3: boolean; codecEndpoint?: string }) => {
      // Settings that name a TLS, authenticated or remote server are never served by a local dev server.
      const refusal = devServerRefusal(config.temporal);
      if (refusal !== undefined) {
        if (!(await temporalServerAnswers(config.temporal))) {
          throw new Error(`Temporal at ${config.temporal.address} does not answer, and no local dev server is started for it: ${refusal}`);
        }
        log(`Temporal at ${config.temporal.address} answers (not a local dev server)`);
      }
      const temporal = refusal !== undefined ? undefined : await startTemporal({
        paths,
        address: config.temporal.address,
        namespace: config.temporal.namespace,
        ui: !options.headless,
        uiCodecEndpoint: options.codecEndpoint,
        log,
      });
      if (temporal) log(`Temporal ${temporal.started ? 'started' : 'already running'} at ${config.temporal.address}`);
      if (!options.headless) log(`Temporal UI: ${config.temporal.uiUrl}/namespaces/${config.temporal.namespace}/workflows`);
      if (options.s3) {
        const env = localS3Environment();
        const s3 = await startLocalS3(paths, log);
        log(`S3 (MinIO) ${s3.started ? 'started' : 'already running'} at ${env.REMEMR1_S3_ENDPOINT}, bucket ${env.REMEMR1_S3_BUCKET}`);
      }
    });

  program
    .command('stop')
    .description('stop the servers this stack started')
    .action(async () => {
      log(`Temporal: ${(await stopTemporal(paths)) ? 'stopped' : 'not started by the stack'}`);
      log(`MinIO: ${(await stopS3(paths)) ? 'stopped' : 'not started by the stack'}`);
    });

  program
    .command('status')
    .action(async () => {
      log(`Temporal at ${config.temporal.address}: ${(await temporalServerAnswers(config.temporal)) ? 'up' : 'down'}`);
      log(`S3 at ${LOCAL_S3_ADDRESS}: ${(await s3Answers(LOCAL_S3_ADDRESS)) ? 'up' : 'down'}`);
    });

  await program.parseAsync(process.argv);
}

if (require.main === module) {
  main().catch((error: Error) => {
    console.error(`[stack] ${error.message}`);
    process.exit(1);
  });
}
