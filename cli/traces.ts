/**
 * `rememr1 traces --dataset FILE --agent rule:callback --out traces.json`: runs a rule-based agent over a dataset
 * in this process (the real episode steps on a temporary filesystem blob store) and writes its turns as a
 * supervised training batch (warm starts: `rememr1 sft --traces traces.json`). Prints EM / F1 by document length.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Option, type Command } from 'commander';
import { metricLabel } from '../lib/agent/metrics';
import { AGENT_MODES } from '../lib/agent/mode';
import { detectDatasetFormat, readDataset, type QaRow } from '../lib/data/dataset';
import { loadRulePolicy, parseRulePolicyPath } from '../lib/episode/rule-policy';
import { ruleTraces } from '../lib/episode/rule-traces';
import { scoresByLength } from '../lib/episode/summary';
import { defaultEpisodeSettings, type EpisodeSettings } from '../lib/episode/types';
import { createBlobStore } from '../lib/storage';
import { CliExit, checkDatasetFile, positiveInt } from './main';

interface TracesOptions {
  dataset: string;
  agent: string;
  out?: string;
  mode: EpisodeSettings['mode'];
  chunkTokens: number;
  memoryTokens: number;
  answerTokens: number;
  allEpisodes?: boolean;
}

async function readRows(file: string): Promise<QaRow[]> {
  checkDatasetFile(file);
  const rows: QaRow[] = [];
  const source = { stream: async () => fs.createReadStream(file), bytes: async () => new Uint8Array(fs.readFileSync(file)) };
  for await (const item of readDataset(source, detectDatasetFormat(file))) {
    if (!item.ok) throw new CliExit(`${file}: row ${item.error.rowIndex + 1}: ${item.error.reason}`, 1);
    rows.push(item.row);
  }
  return rows;
}

function percent(value: number): string {
  return (100 * value).toFixed(1);
}

async function traces(options: TracesOptions): Promise<void> {
  let spec;
  try {
    spec = parseRulePolicyPath(options.agent);
  } catch (error) {
    throw new CliExit((error as Error).message, 2);
  }
  if (spec === null) throw new CliExit(`--agent must be a rule agent (rule:forward or rule:callback), got "${options.agent}"`, 2);
  const rows = await readRows(options.dataset);
  const policy = await loadRulePolicy(spec);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rememr1-traces-'));
  const store = createBlobStore({ kind: 'fs', root });
  const settings: EpisodeSettings = {
    ...defaultEpisodeSettings,
    mode: options.mode,
    chunkTokens: options.chunkTokens,
    memoryMaxNewTokens: options.memoryTokens,
    answerMaxNewTokens: options.answerTokens,
  };
  try {
    const run = await ruleTraces(rows, { policy, store, runId: 'traces', settings, onlyCorrect: !options.allEpisodes });
    console.log(`${options.agent} (${options.mode}, ${options.chunkTokens}-token chunks) on ${path.basename(options.dataset)}`);
    // Rule traces are always scored in the project mode (the settings above leave metricsMode unset).
    console.log(`chunks  tokens  episodes  ${metricLabel('EM', 'project')} %  ${metricLabel('F1', 'project')} %  recalls/episode`);
    for (const line of scoresByLength(run.results)) {
      console.log(
        `${String(line.chunks).padStart(6)}  ${String(line.documentTokens).padStart(6)}  ${String(line.episodes).padStart(8)}  ${percent(line.exactMatch).padStart(14)}  ${percent(line.f1).padStart(14)}  ${line.recallQueries.toFixed(2).padStart(15)}`,
      );
    }
    if (options.out !== undefined) {
      fs.writeFileSync(options.out, JSON.stringify(run.batch));
      const episodes = new Set(run.batch.sequences.map((sequence) => sequence.group)).size;
      console.log(`${options.out}: ${run.batch.sequences.length} turns of ${episodes} episodes${options.allEpisodes ? '' : ' (answered right)'}`);
    }
  } finally {
    await store.close();
    fs.rmSync(root, { recursive: true, force: true });
    await policy.dispose();
  }
}

export function registerTracesCommand(program: Command): void {
  program
    .command('traces')
    .description("run a rule agent over a dataset in this process; print EM / F1 by length and write its turns as a training batch")
    .requiredOption('--dataset <file>', 'JSONL, JSON or Parquet rows with question, context and answers')
    .option('--agent <rule>', 'rule:forward or rule:callback, optionally with a memory word budget (rule:callback:48)', 'rule:callback')
    .option('--out <file>', 'write the supervised training batch (JSON) here')
    .addOption(new Option('--mode <mode>', 'agent mode of the prompts').choices(AGENT_MODES).default('rememr1'))
    .option('--chunk-tokens <n>', "document chunk size in tokens (the benchmark's)", positiveInt, 256)
    .option('--memory-tokens <n>', 'most new tokens per memory turn', positiveInt, 512)
    .option('--answer-tokens <n>', 'most new tokens of the final turn', positiveInt, 128)
    .option('--all-episodes', 'keep the turns of wrongly answered episodes too')
    .action(async (options: TracesOptions) => traces(options));
}
