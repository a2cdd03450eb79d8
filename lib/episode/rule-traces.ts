/**
 * Episodes run in this process through the real episode steps (prepare, memory steps, answer, on a blob
 * store), and the supervised traces a policy's turns make: each turn's prompt and response as a training
 * sequence (lib/training/traces.ts), checked against the prompt ids generation recorded.
 */
import type { QaRow } from '../data/dataset';
import type { GenerateRequest, Policy } from '../model';
import { episodeInputKey, episodeMemoryKey, episodeAnswerKey, type BlobStore } from '../storage';
import { TRAINING_BATCH_FORMAT, type TrainingBatch, type TrainingSequence } from '../training/batch';
import { traceSequence } from '../training/traces';
import { EpisodeSteps, stepSeed } from './steps';
import type { AnswerRecord, EpisodeInputRecord, EpisodeResult, EpisodeSettings, MemoryStepRecord } from './types';

/** One episode end to end in this process; a finished episode is read back, not recomputed. */
export async function runEpisodeLocally(steps: EpisodeSteps, store: BlobStore, runId: string, row: QaRow, settings: EpisodeSettings): Promise<EpisodeResult> {
  const ref = { runId, episodeId: episodeIdOf(row) };
  const input: EpisodeInputRecord = { id: row.id, rowIndex: row.rowIndex, question: row.question, context: row.context, answers: row.answers };
  await store.putIfAbsent(episodeInputKey(runId, ref.episodeId), JSON.stringify(input));
  const manifest = await steps.prepare(ref, settings);
  for (let step = 0; step < manifest.chunkCount; step += 1) await steps.memoryStep(ref, settings, step);
  return steps.answer(ref, settings, manifest.chunkCount);
}

/** Episode ids as the batch names them: one per row. */
export function episodeIdOf(row: QaRow): string {
  return `row-${row.rowIndex}`;
}

/** The user message of each generate call, by its seed (one seed per turn of an episode). */
class PromptRecorder {
  private readonly prompts = new Map<string, string>();

  wrap(policy: Policy): Policy {
    return {
      ...policy,
      generate: async (request: GenerateRequest) => {
        if (typeof request.prompt !== 'string') {
          const user = request.prompt.filter((message) => message.role === 'user').pop();
          if (user !== undefined) this.prompts.set(String(request.seed), user.content);
        }
        return policy.generate(request);
      },
    };
  }

  take(seed: string): string {
    const prompt = this.prompts.get(seed);
    if (prompt === undefined) throw new Error(`no prompt was recorded for turn ${seed} (was the episode already stored?)`);
    this.prompts.delete(seed);
    return prompt;
  }
}

export interface TraceOptions {
  policy: Policy;
  /** An empty run: every turn must be generated here, so that its prompt is seen. */
  store: BlobStore;
  runId: string;
  settings: EpisodeSettings;
  /** Keep only episodes whose answer is right (exact match). Default true. */
  onlyCorrect?: boolean;
  /** Called after each episode. */
  onEpisode?: (result: EpisodeResult) => void;
}

export interface TraceRun {
  batch: TrainingBatch;
  results: EpisodeResult[];
}

function sameIds(a: readonly number[], b: readonly number[] | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((id, i) => id === b[i]);
}

/**
 * Runs every row through the episode steps with `policy` and turns each kept episode's turns into supervised
 * sequences (group = the row's position, rollout 0, turn = step, the final turn last). Each sequence's prompt ids
 * must equal those generation recorded, else this throws: a trace must teach the prompt the agent really sees.
 */
export async function ruleTraces(rows: readonly QaRow[], options: TraceOptions): Promise<TraceRun> {
  const recorder = new PromptRecorder();
  const steps = new EpisodeSteps({ store: options.store, policy: recorder.wrap(options.policy) });
  const eos = options.policy.eosTokenIds[0];
  if (eos === undefined) throw new Error('the policy defines no EOS token to end trace responses with');
  const sequences: TrainingSequence[] = [];
  const results: EpisodeResult[] = [];
  for (const [group, row] of rows.entries()) {
    const result = await runEpisodeLocally(steps, options.store, options.runId, row, options.settings);
    results.push(result);
    options.onEpisode?.(result);
    const episodeId = episodeIdOf(row);
    const turns: Array<{ seed: string; record: MemoryStepRecord | AnswerRecord }> = [];
    for (let step = 0; step < result.chunkCount; step += 1) {
      turns.push({ seed: stepSeed(options.settings, episodeId, step), record: await options.store.getJson<MemoryStepRecord>(episodeMemoryKey(options.runId, episodeId, step)) });
    }
    turns.push({ seed: stepSeed(options.settings, episodeId, 'final'), record: await options.store.getJson<AnswerRecord>(episodeAnswerKey(options.runId, episodeId)) });
    const prompts = turns.map((turn) => recorder.take(turn.seed));
    if ((options.onlyCorrect ?? true) && result.scores?.exactMatch !== 1) continue;
    turns.forEach((turn, index) => {
      const sequence = traceSequence(options.policy.tokenizer, { prompt: prompts[index], response: turn.record.response }, eos, { group, rollout: 0, turn: index });
      if (!sameIds(sequence.promptIds, turn.record.promptIds)) {
        throw new Error(`turn ${turn.seed}: the trace's prompt ids differ from those generation recorded`);
      }
      sequences.push(sequence);
    });
  }
  return { batch: { format: TRAINING_BATCH_FORMAT, policyVersion: options.policy.folder, sequences }, results };
}
