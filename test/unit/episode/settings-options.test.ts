/**
 * Episode settings that change what a run computes without changing the workflows: the metrics mode of the
 * result rows, what the memory holds, and the generation limits recorded with each turn. A scripted policy
 * (fixed responses over the bundled tokenizer) and a filesystem store: no servers.
 */
import { loadRulePolicy } from '../../../lib/episode/rule-policy';
import { EpisodeSteps } from '../../../lib/episode/steps';
import { SummaryBuilder } from '../../../lib/episode/summary';
import {
  defaultEpisodeSettings,
  type AnswerRecord,
  type EpisodeResult,
  type EpisodeSettings,
  type MemoryStepRecord,
} from '../../../lib/episode/types';
import type { GenerateRequest, Policy } from '../../../lib/model';
import {
  createBlobStore,
  episodeAnswerKey,
  episodeInputKey,
  episodeMemoryKey,
  type BlobStore,
} from '../../../lib/storage';
import { tempDir } from '../../support/stack';

/** A policy answering every memory turn with `memoryTurn` and the final turn with `finalTurn`. */
async function scriptedPolicy(
  memoryTurn: string,
  finalTurn: string,
  requests: GenerateRequest[] = [],
): Promise<Policy> {
  const base = await loadRulePolicy({ variant: 'forward', memoryWords: 64 });
  return {
    ...base,
    async generate(request: GenerateRequest) {
      requests.push(request);
      const prompt = typeof request.prompt === 'string' ? request.prompt : request.prompt[0].content;
      const text = prompt.includes('\\boxed') ? finalTurn : memoryTurn;
      const tokenIds = base.tokenizer.encodePlain(text);
      return {
        text,
        tokenIds,
        logProbs: tokenIds.map(() => 0),
        promptIds: [0],
        promptTokens: 1,
        finishReason: 'eos',
      };
    },
  };
}

const input = {
  id: 'q',
  rowIndex: 0,
  question: 'Who founded the Varn Institute?',
  context: 'Document 1: The Varn Institute was founded by Elsa Morrow. '.repeat(8),
  answers: ['“Elsa Morrow”'],
};
const base: EpisodeSettings = {
  ...defaultEpisodeSettings,
  chunkTokens: 32,
  memoryMaxNewTokens: 40,
  answerMaxNewTokens: 12,
};

describe('episode settings options', () => {
  let store: BlobStore;
  beforeAll(() => {
    store = createBlobStore({ kind: 'fs', root: tempDir('settings-options') });
  });
  afterAll(() => store.close());

  async function runEpisode(
    runId: string,
    settings: EpisodeSettings,
    policy: Policy,
  ): Promise<{ result: EpisodeResult; records: MemoryStepRecord[] }> {
    const ref = { runId, episodeId: 'e0' };
    await store.putJson(episodeInputKey(runId, 'e0'), input);
    const steps = new EpisodeSteps({ store, policy });
    const manifest = await steps.prepare(ref, settings);
    const records: MemoryStepRecord[] = [];
    for (let step = 0; step < manifest.chunkCount; step += 1) {
      await steps.memoryStep(ref, settings, step);
      records.push(await store.getJson<MemoryStepRecord>(episodeMemoryKey(runId, 'e0', step)));
    }
    return { result: await steps.answer(ref, settings, manifest.chunkCount), records };
  }

  describe('memory content', () => {
    const turn =
      '<thinking>Founder named.</thinking>\n<update>Elsa Morrow founded it.</update>\n<recall>founder</recall>';

    it('keeps the <update> content when the setting is absent or "update"', async () => {
      const policy = await scriptedPolicy(turn, '\\boxed{Elsa Morrow}');
      const absent = (await runEpisode('memory-absent', base, policy)).records;
      const update = (await runEpisode('memory-update', { ...base, memoryContent: 'update' }, policy))
        .records;
      expect(absent.length).toBeGreaterThan(1);
      for (const records of [absent, update]) {
        expect(records.every((record) => record.memory === 'Elsa Morrow founded it.')).toBe(true);
        expect(records.every((record) => record.recallQuery === 'founder' && record.formatValid)).toBe(true);
      }
    });

    it('keeps the whole response minus <recall> with "response", in the history the callback searches too', async () => {
      const policy = await scriptedPolicy(turn, '\\boxed{Elsa Morrow}');
      const { records } = await runEpisode('memory-response', { ...base, memoryContent: 'response' }, policy);
      const memory = '<thinking>Founder named.</thinking>\n<update>Elsa Morrow founded it.</update>';
      expect(records.every((record) => record.memory === memory && record.formatValid)).toBe(true);
      // Step 1's query searches the memory of step 0: the response-mode memory.
      expect(records[1].recalled.map((hit) => hit.text)).toEqual([memory]);
    });

    it('refuses an unknown memory content', async () => {
      const policy = await scriptedPolicy(turn, '\\boxed{Elsa Morrow}');
      const settings = { ...base, memoryContent: 'everything' } as unknown as EpisodeSettings;
      await expect(runEpisode('memory-bad', settings, policy)).rejects.toThrow(
        /memoryContent must be one of update, response/,
      );
    });
  });

  it('generates each turn with its limit and records the limit with the turn', async () => {
    const requests: GenerateRequest[] = [];
    const policy = await scriptedPolicy('<update>Elsa Morrow.</update>', '\\boxed{Elsa Morrow}', requests);
    const { records } = await runEpisode(
      'limits',
      { ...base, memoryMaxNewTokens: 2048, answerMaxNewTokens: 300 },
      policy,
    );
    expect(records.every((record) => record.sampling?.maxNewTokens === 2048)).toBe(true);
    const answer = await store.getJson<AnswerRecord>(episodeAnswerKey('limits', 'e0'));
    expect(answer.sampling?.maxNewTokens).toBe(300);
    expect(requests.map((request) => request.maxNewTokens)).toEqual([...records.map(() => 2048), 300]);
  });

  describe('metrics mode', () => {
    it('scores result rows in the settings’ mode and names it in the row and the summary', async () => {
      const policy = await scriptedPolicy('<update>Elsa Morrow founded it.</update>', '\\boxed{Elsa Morrow}');
      const project = (await runEpisode('metrics-project', base, policy)).result;
      const official = (
        await runEpisode('metrics-official', { ...base, metricsMode: 'hotpotqa-official' }, policy)
      ).result;
      // The gold answer's curly quotes are Unicode punctuation: deleted by the project, kept by the official scorer.
      expect(project.metricsMode).toBe('project');
      expect(project.scores).toEqual({ exactMatch: 1, f1: 1, subExactMatch: 1 });
      expect(official.metricsMode).toBe('hotpotqa-official');
      expect(official.scores).toEqual({ exactMatch: 0, f1: 0, subExactMatch: 1 });

      const summary = (rows: EpisodeResult[]) => {
        const builder = new SummaryBuilder();
        for (const row of rows) builder.add(row);
        return builder.build({ runId: 'r', dataset: 'd', invalidRows: 0, failedEpisodes: 0 }).metricsMode;
      };
      expect(summary([official])).toBe('hotpotqa-official');
      // Rows written before the mode was kept are project rows.
      const { metricsMode: _mode, ...older } = project;
      expect(summary([older, project])).toBe('project');
      expect(summary([project, official])).toBe('mixed');
      expect(summary([])).toBe('project');
    });
  });
});
