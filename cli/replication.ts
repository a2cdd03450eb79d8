/**
 * `rememr1 replication [--spec FILE] [--out DIR]`: the small-scale replication table. Generates the spec's
 * benchmark split, evaluates every variant (rule agents, trained models, ablations) through the real episode
 * steps in this process, once per evaluation seed, and writes `{out}/table.md`, `{out}/accuracy.svg` and
 * each run's scores under `{out}/results/`.
 *
 * A variant's scores are kept with the digest of everything that produced them (benchmark, episode
 * settings, variant, seed, the model's weights), and reused while that digest holds; the episodes of an
 * interrupted evaluation are kept under the local folder and read back when it runs again.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import type { QaRow } from '../lib/data/dataset';
import { generateSplits } from '../lib/data/distant-evidence';
import { evaluateLocally } from '../lib/episode/evaluate';
import { BUNDLED_MODEL_FOLDER, loadConfiguredPolicy } from '../lib/episode/rule-policy';
import { scoresByLength, type LengthScores } from '../lib/episode/summary';
import { defaultEpisodeSettings, type EpisodeSettings } from '../lib/episode/types';
import { loadModelFolder, type Policy } from '../lib/model';
import { completeModelFolder } from '../lib/model-build/weights-only-folder';
import {
  benchmarkSpecOf,
  parseReplicationSpec,
  policyAtSeed,
  type ReplicationSpec,
  type ReplicationVariant,
} from '../lib/replication/spec';
import {
  replicationChart,
  replicationMarkdown,
  summarizeVariant,
  trainingCurvesChart,
  type TrainingCurve,
  type VariantRun,
} from '../lib/replication/table';
import { createBlobStore } from '../lib/storage';
import { fetchPolicyVersion } from '../lib/training/policy-versions';
import { loadConfig, type RememConfig } from '../temporal.config';
import type { StepMetrics } from '../workflows/training';
import { policyOptions } from '../workers/worker';
import { CliExit } from './main';

const PROJECT_ROOT = path.join(__dirname, '..');

interface ReplicationOptions {
  spec: string;
  out: string;
  only?: string;
  /** Recompute nothing: every run's kept scores must match the spec and the models. */
  check?: boolean;
}

interface ResultFile {
  key: string;
  variant: ReplicationVariant;
  seed: number;
  metric: string;
  seconds: number;
  byLength: LengthScores[];
}

function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Where a variant's policy comes from: a rule agent by name, or a runnable model folder and its weights' digest. */
type PolicySource = { rule: string; digest: string } | { folder: string; digest: string };

async function policySource(policy: string, variantId: string, config: RememConfig): Promise<PolicySource> {
  if (policy.startsWith('rule:')) return { rule: policy, digest: policy };
  let folder: string;
  if (policy.startsWith('version:')) {
    const store = createBlobStore(config.storage);
    try {
      folder = (
        await fetchPolicyVersion(
          store,
          policy.slice('version:'.length),
          path.join(config.localDir, 'policy-versions'),
        )
      ).folder;
    } finally {
      await store.close();
    }
  } else {
    folder = path.resolve(PROJECT_ROOT, policy);
  }
  const weights = path.join(folder, 'model.safetensors');
  if (!fs.existsSync(weights))
    throw new CliExit(`variant ${variantId}: ${policy} has no model.safetensors (is it a model folder?)`, 2);
  return { folder, digest: sha256(fs.readFileSync(weights)) };
}

/** The policy of a source, loaded (a weights-only folder gets its ONNX graph rebuilt first). */
async function loadPolicy(source: PolicySource, config: RememConfig): Promise<Policy> {
  if ('rule' in source) return loadConfiguredPolicy(source.rule);
  const folder = await completeModelFolder(
    source.folder,
    path.join(config.localDir, 'replication', 'models'),
  );
  return loadConfiguredPolicy(folder, policyOptions(config.model));
}

function episodeSettings(spec: ReplicationSpec, variant: ReplicationVariant, seed: number): EpisodeSettings {
  return {
    ...defaultEpisodeSettings,
    mode: variant.mode,
    chunkTokens: spec.benchmark.chunkTokens,
    memoryMaxNewTokens: spec.episode.memoryTokens,
    answerMaxNewTokens: spec.episode.answerTokens,
    temperature: spec.episode.temperature,
    topP: spec.episode.topP,
    seed,
    ...(spec.metrics === 'project' ? {} : { metricsMode: spec.metrics }),
    ...(variant.callback ? {} : { callback: false }),
  };
}

async function benchmarkRows(spec: ReplicationSpec): Promise<QaRow[]> {
  const { tokenizer } = await loadModelFolder(BUNDLED_MODEL_FOLDER);
  const splits = generateSplits(benchmarkSpecOf(spec), (text) => tokenizer.encodePlain(text).length);
  return splits[spec.benchmark.split].map((row, rowIndex) => ({
    rowIndex,
    id: row.id,
    question: row.question,
    context: row.context,
    answers: row.answers,
  }));
}

async function evaluateVariant(
  spec: ReplicationSpec,
  variant: ReplicationVariant,
  rows: readonly QaRow[],
  out: string,
  config: RememConfig,
  check: boolean,
): Promise<VariantRun[]> {
  // A rule agent ignores the sampling seed: one run stands for all.
  const seeds =
    typeof variant.policy === 'string' && variant.policy.startsWith('rule:')
      ? spec.seeds.slice(0, 1)
      : spec.seeds;
  const runs: VariantRun[] = [];
  for (const [seedIndex, seed] of seeds.entries()) {
    const policyName = policyAtSeed(variant, seedIndex);
    const source = await policySource(policyName, variant.id, config);
    const settings = episodeSettings(spec, variant, seed);
    const key = sha256(
      JSON.stringify({
        benchmark: spec.benchmark,
        settings,
        policy: policyName,
        digest: source.digest,
        metric: spec.metrics,
      }),
    );
    const file = path.join(out, 'results', `${variant.id}.seed${seed}.json`);
    if (fs.existsSync(file)) {
      const cached = JSON.parse(fs.readFileSync(file, 'utf8')) as ResultFile;
      if (cached.key === key) {
        console.log(`${variant.label}, seed ${seed}: kept (${path.relative(process.cwd(), file)})`);
        runs.push({ seed, byLength: cached.byLength });
        continue;
      }
    }
    if (check)
      throw new CliExit(
        `${variant.id}, seed ${seed}: ${path.relative(process.cwd(), file)} is ${fs.existsSync(file) ? 'stale (the spec, the settings or the model changed)' : 'missing'}; run without --check to evaluate it`,
        1,
      );
    const policy = await loadPolicy(source, config);
    const store = createBlobStore({
      kind: 'fs',
      root: path.join(config.localDir, 'replication', key.slice(0, 16)),
    });
    const bar = new SingleBar({
      format: `${variant.label}, seed ${seed} [{bar}] {value}/{total} episodes | {duration_formatted} | ETA {eta_formatted}`,
      etaBuffer: 32,
    });
    const started = performance.now();
    bar.start(rows.length, 0);
    let results;
    try {
      results = await evaluateLocally(rows, {
        policy,
        store,
        runId: 'replication',
        settings,
        concurrency: spec.concurrency,
        onEpisode: () => bar.increment(),
      });
    } finally {
      bar.stop();
      await store.close();
      await policy.dispose();
    }
    const byLength = scoresByLength(results);
    const result: ResultFile = {
      key,
      variant,
      seed,
      metric: spec.metrics,
      seconds: Math.round((performance.now() - started) / 1000),
      byLength,
    };
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    runs.push({ seed, byLength });
  }
  return runs;
}

/**
 * A run's curve from the metrics.jsonl that `rememr1 train-report RUN --out {spec folder}/training/RUN` wrote: an
 * input committed beside the spec, whatever folder the table is written to.
 */
function trainingCurve(specFolder: string, run: string, label: string): TrainingCurve {
  const file = path.join(specFolder, 'training', run, 'metrics.jsonl');
  if (!fs.existsSync(file))
    throw new CliExit(
      `training run ${run}: ${file} is missing; write it with \`npm run rememr1 -- train-report ${run} --out ${path.dirname(file)}\``,
      2,
    );
  const steps = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as StepMetrics)
    .map((metrics) => ({
      step: metrics.step,
      // GRPO's surrogate loss is no per-token loss (it may be negative): only supervised steps are drawn.
      loss: metrics.mode === 'sft' ? metrics.update.loss : null,
      devExactMatch: metrics.evaluation?.exactMatch ?? null,
    }));
  return { label, steps };
}

async function replication(options: ReplicationOptions): Promise<void> {
  if (!fs.existsSync(options.spec)) throw new CliExit(`replication spec ${options.spec} does not exist`, 2);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(options.spec, 'utf8'));
  } catch (error) {
    throw new CliExit(`${options.spec} is not JSON: ${(error as Error).message}`, 2);
  }
  let spec: ReplicationSpec;
  try {
    spec = parseReplicationSpec(raw, options.spec);
  } catch (error) {
    throw new CliExit((error as Error).message, 2);
  }
  const only = options.only?.split(',').map((id) => id.trim());
  const unknown = only?.filter((id) => !spec.variants.some((variant) => variant.id === id)) ?? [];
  if (unknown.length > 0)
    throw new CliExit(`--only names variants the spec does not have: ${unknown.join(', ')}`, 2);
  const config = loadConfig();
  const rows = await benchmarkRows(spec);
  console.log(
    `${rows.length} ${spec.benchmark.split} questions at ${spec.benchmark.chunks.join(', ')} chunks of ${spec.benchmark.chunkTokens} tokens`,
  );
  const summaries = [];
  for (const variant of spec.variants) {
    if (only !== undefined && !only.includes(variant.id)) continue;
    summaries.push(
      summarizeVariant(
        variant.id,
        variant.label,
        await evaluateVariant(spec, variant, rows, options.out, config, options.check === true),
      ),
    );
  }
  fs.mkdirSync(options.out, { recursive: true });
  const table = replicationMarkdown(summaries, spec.metrics);
  fs.writeFileSync(path.join(options.out, 'table.md'), table);
  fs.writeFileSync(
    path.join(options.out, 'accuracy.svg'),
    replicationChart(summaries, 'Exact match against document length'),
  );
  if (spec.training.length > 0) {
    const curves = spec.training.map((run) => trainingCurve(path.dirname(options.spec), run.run, run.label));
    fs.writeFileSync(path.join(options.out, 'training.svg'), trainingCurvesChart(curves, 'Training curves'));
  }
  console.log(`\n${table}`);
  console.log(`wrote ${path.join(options.out, 'table.md')} and ${path.join(options.out, 'accuracy.svg')}`);
}

export function registerReplicationCommand(program: Command): void {
  program
    .command('replication')
    .description(
      "evaluate the replication spec's agents on its benchmark; write the table (Markdown) and the accuracy plot (SVG)",
    )
    .option('--spec <file>', 'replication spec (JSON)', path.join('docs', 'replication', 'spec.json'))
    .option('--out <dir>', 'folder for table.md, accuracy.svg and results/', path.join('docs', 'replication'))
    .option('--check', 'recompute nothing: fail unless every kept score matches the spec and the models')
    .option(
      '--only <ids>',
      'evaluate only these variants (comma-separated ids); the table then has only them',
    )
    .action((options: ReplicationOptions) => replication(options));
}
