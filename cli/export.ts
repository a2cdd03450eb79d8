/**
 * `rememr1 export RUN --to DIR|s3://bucket/prefix [--format parquet|jsonl] [--traces]`: a run's result rows as
 * sharded Parquet (or JSON Lines) with a stable schema, optionally its memory trace, plus summary.json and
 * manifest.json (lib/export/).
 */
import { Option, type Command } from 'commander';
import { EXPORT_FORMATS, exportRun, type ExportFormat } from '../lib/export/export-run';
import { createBlobStore, type BlobStore } from '../lib/storage';
import {
  describeLocation,
  openLocation,
  parseLocation,
  s3EndpointFromEnvironment,
  type S3Endpoint,
} from '../lib/storage/location';
import { loadConfig, type StorageConfig } from '../temporal.config';
import { positiveInt, runIdArgument } from './main';

/** S3 locations are reached like the project's store when it is on S3, else through the standard variables. */
export function s3EndpointFor(storage: StorageConfig): S3Endpoint {
  if (storage.kind === 's3') {
    return { endpoint: storage.endpoint, region: storage.region, forcePathStyle: storage.forcePathStyle };
  }
  return s3EndpointFromEnvironment();
}

interface ExportCommandOptions {
  to: string;
  format: ExportFormat;
  rowsPerShard: number;
  overwrite?: boolean;
  traces?: boolean;
}

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .argument('<run>', 'batch run id', runIdArgument)
    .description("write a run's result rows as sharded Parquet or JSON Lines, with its summary, to a folder or S3")
    .requiredOption('--to <dir-or-s3-uri>', 'destination: a local folder or s3://bucket/prefix (must be empty)')
    .addOption(new Option('--format <format>', 'file format').choices(EXPORT_FORMATS).default('parquet'))
    .option('--rows-per-shard <n>', 'rows per file (and the most held in memory)', positiveInt, 100_000)
    .option('--overwrite', "replace an earlier export's files at the destination")
    .option('--traces', 'also write the memory trace (one row per memory step: memory, recall query, what it recalled) under traces/')
    .action(async (runId: string, options: ExportCommandOptions) => {
      const config = loadConfig();
      const location = parseLocation(options.to);
      const store = createBlobStore(config.storage);
      let destination: BlobStore | undefined;
      try {
        destination = await openLocation(location, s3EndpointFor(config.storage));
        const where = describeLocation(location);
        const manifest = await exportRun(store, runId, destination, {
          format: options.format,
          rowsPerShard: options.rowsPerShard,
          overwrite: options.overwrite ?? false,
          traces: options.traces ?? false,
          onShard: (rows, file) => console.log(`  ${file}: ${rows} rows so far`),
        });
        console.log(
          `exported ${manifest.rows} result rows of ${runId} to ${where} as ${manifest.shards.length} ${options.format} shard(s)` +
            (manifest.traces === undefined ? '' : `, ${manifest.traces.rows} memory steps in traces/ (${manifest.traces.shards.length} shard(s))`) +
            ', with summary.json and manifest.json',
        );
      } finally {
        await destination?.close();
        await store.close();
      }
    });
}
