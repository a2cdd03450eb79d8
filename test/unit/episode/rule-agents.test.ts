/**
 * The rule-based agents through the real episode steps (filesystem blob store, no servers): callback memory
 * brings back evidence a bounded forward-only memory dropped, and their turns make valid supervised traces.
 */
import { generateSplits, type DistantEvidenceRow } from '../../../lib/data/distant-evidence';
import type { QaRow } from '../../../lib/data/dataset';
import { RuleAgentError, ruleAgentResponse } from '../../../lib/agent/rule-agent';
import { buildFinalPrompt, buildMemoryStepPrompt } from '../../../lib/agent';
import { BUNDLED_MODEL_FOLDER, loadRulePolicy, parseRulePolicyPath } from '../../../lib/episode/rule-policy';
import { evaluateLocally } from '../../../lib/episode/evaluate';
import { ruleTraces } from '../../../lib/episode/rule-traces';
import { scoresByLength } from '../../../lib/episode/summary';
import { defaultEpisodeSettings, type EpisodeSettings } from '../../../lib/episode/types';
import { loadModelFolder } from '../../../lib/model';
import { TRAINING_BATCH_FORMAT, type TrainingBatch } from '../../../lib/training/batch';
import { createBlobStore } from '../../../lib/storage';
import { tempDir } from '../../support/stack';

const CHUNK_TOKENS = 128;
const settings: EpisodeSettings = {
  ...defaultEpisodeSettings,
  chunkTokens: CHUNK_TOKENS,
  memoryMaxNewTokens: 512,
  answerMaxNewTokens: 128,
};

async function benchmark(questions: number, chunks: number, order: 'forward' | 'reverse'): Promise<QaRow[]> {
  const folder = await loadModelFolder(BUNDLED_MODEL_FOLDER);
  const count = (text: string): number => folder.tokenizer.encodePlain(text).length;
  const rows: DistantEvidenceRow[] = generateSplits(
    {
      options: {
        seed: 11,
        chunkTokens: CHUNK_TOKENS,
        hops: [2],
        order,
        minEvidenceGap: 3,
        distractorsPerChunk: 3,
        distractorSimilarity: 0,
        vocabulary: 'words',
      },
      splits: { test: { questions, chunks: [chunks] } },
    },
    count,
  ).test;
  return rows.map((row, rowIndex) => ({
    rowIndex,
    id: row.id,
    question: row.question,
    context: row.context,
    answers: row.answers,
  }));
}

async function run(agent: string, rows: QaRow[], mode: EpisodeSettings['mode'] = 'rememr1') {
  const policy = await loadRulePolicy(parseRulePolicyPath(agent)!);
  const store = createBlobStore({ kind: 'fs', root: tempDir('rule-agents') });
  try {
    return await ruleTraces(rows, {
      policy,
      store,
      runId: 'r',
      settings: { ...settings, mode },
      onlyCorrect: false,
    });
  } finally {
    await store.close();
  }
}

describe('rule-based agents', () => {
  it('with callback, answer the hard case (evidence needed last read first, chunks apart) that bounded forward-only memory misses', async () => {
    const rows = await benchmark(6, 12, 'reverse');
    const forward = scoresByLength((await run('rule:forward', rows)).results)[0];
    const memagent = scoresByLength((await run('rule:forward', rows, 'memagent')).results)[0];
    const callback = scoresByLength((await run('rule:callback', rows)).results)[0];
    expect(callback.exactMatch).toBeGreaterThanOrEqual(5 / 6);
    expect(forward.exactMatch).toBeLessThanOrEqual(1 / 6);
    expect(memagent.exactMatch).toBe(forward.exactMatch);
    expect(callback.recallQueries).toBeGreaterThan(0);
    expect(forward.recallQueries).toBe(0);
  });

  it('with the callback switched off, asks the same recall queries, gets nothing back and misses like forward-only', async () => {
    const rows = await benchmark(6, 12, 'reverse');
    const policy = await loadRulePolicy(parseRulePolicyPath('rule:callback')!);
    const evaluate = async (callback: boolean, concurrency: number) => {
      const store = createBlobStore({ kind: 'fs', root: tempDir('rule-agents') });
      try {
        return await evaluateLocally(rows, {
          policy,
          store,
          runId: 'r',
          settings: { ...settings, callback },
          concurrency,
        });
      } finally {
        await store.close();
      }
    };
    const on = await evaluate(true, 1);
    const off = await evaluate(false, 4);
    expect(scoresByLength(on)[0].exactMatch).toBeGreaterThanOrEqual(5 / 6);
    expect(scoresByLength(off)[0].exactMatch).toBeLessThanOrEqual(1 / 6);
    expect(scoresByLength(off)[0].recallQueries).toBeGreaterThan(0);
    // Several episodes at once give each row its own result, in row order.
    expect((await evaluate(true, 4)).map((result) => [result.episodeId, result.answer])).toEqual(
      on.map((result) => [result.episodeId, result.answer]),
    );
  });

  it('both answer when the evidence comes in chain order', async () => {
    const rows = await benchmark(4, 8, 'forward');
    expect(scoresByLength((await run('rule:forward', rows)).results)[0].exactMatch).toBe(1);
    expect(scoresByLength((await run('rule:callback', rows)).results)[0].exactMatch).toBe(1);
  });

  it('writes traces as a valid training batch whose prompt ids are what generation encoded', async () => {
    const rows = await benchmark(2, 6, 'reverse');
    const { batch, results } = await run('rule:callback', rows);
    const parsed = JSON.parse(JSON.stringify(batch)) as TrainingBatch;
    expect(parsed.format).toBe(TRAINING_BATCH_FORMAT);
    // One sequence per memory step plus the final turn, per episode (ruleTraces checks the prompt ids).
    expect(parsed.sequences).toHaveLength(results.reduce((sum, result) => sum + result.chunkCount + 1, 0));
    const folder = await loadModelFolder(BUNDLED_MODEL_FOLDER);
    for (const sequence of parsed.sequences) {
      expect(sequence.responseIds[sequence.responseIds.length - 1]).toBe(folder.eosTokenIds[0]);
      expect(sequence.samplingLogProbs).toEqual([]);
      expect(
        sequence.promptIds.every((id) => Number.isInteger(id) && id >= 0 && id < folder.config.vocabSize),
      ).toBe(true);
    }
    const last = folder.tokenizer.decode(
      parsed.sequences[parsed.sequences.length - 1].responseIds.slice(0, -1),
    );
    expect(last).toContain(`\\boxed{${rows[1].answers[0]}}`);
  });

  it('answers the prompts of both modes, and refuses prompts it cannot read', () => {
    const question = 'In which town was the founder of Red River Company born?';
    const chunk = ' Red River Company was founded by Mark Stone. Mark Stone was born in North Port.';
    const step = ruleAgentResponse(
      buildMemoryStepPrompt({ question, recalled: null, memory: null, chunk, mode: 'rememr1' }),
      { variant: 'callback', memoryWords: 48 },
    );
    expect(step).toMatch(
      /<update>Red River Company was founded by Mark Stone\. Mark Stone was born in North Port\.<\/update>$/,
    );
    const final = ruleAgentResponse(
      buildFinalPrompt({
        question,
        recalled: null,
        memory: 'Red River Company was founded by Mark Stone. Mark Stone was born in North Port.',
        mode: 'memagent',
      }),
      { variant: 'forward', memoryWords: 48 },
    );
    expect(final).toBe('\\boxed{North Port}');
    expect(() => ruleAgentResponse('Hello', { variant: 'forward', memoryWords: 48 })).toThrow(RuleAgentError);
    expect(() => parseRulePolicyPath('rule:sideways')).toThrow(/rule:forward or rule:callback/);
    expect(parseRulePolicyPath('rule:callback:64')).toEqual({ variant: 'callback', memoryWords: 64 });
    expect(parseRulePolicyPath('models/rememr1-tiny')).toBeNull();
  });
});
