/** The episode steps on the bundled model and a filesystem store: no servers. */
import { buildFinalPrompt, buildMemoryStepPrompt, defaultTemplates, formatRecalled } from '../../../lib/agent';
import { policyProvider } from '../../../lib/episode/policies';
import { EpisodeInputError, EpisodeSteps } from '../../../lib/episode/steps';
import {
  defaultEpisodeSettings,
  rolloutEpisodeId,
  rolloutSettings,
  type AnswerRecord,
  type EpisodeSettings,
  type MemoryStepRecord,
} from '../../../lib/episode/types';
import { loadPolicy, type Policy } from '../../../lib/model';
import {
  createBlobStore,
  episodeAnswerKey,
  episodeChunkKey,
  episodeInputKey,
  episodeMemoryKey,
  type BlobStore,
} from '../../../lib/storage';
import { loadConfig } from '../../../temporal.config';
import { tempDir } from '../../support/stack';

describe('episode steps', () => {
  let policy: Policy;
  let store: BlobStore;
  const settings: EpisodeSettings = { ...defaultEpisodeSettings, chunkTokens: 64, memoryMaxNewTokens: 8, answerMaxNewTokens: 4 };
  const input = { id: 'q', rowIndex: 0, question: 'Who founded the Varn Institute?', context: 'Document 1: The Varn Institute was founded by Elsa Morrow. '.repeat(12), answers: ['Elsa Morrow'] };

  beforeAll(async () => {
    policy = await loadPolicy(loadConfig().model.path, { maxBatchSize: 2 });
    store = createBlobStore({ kind: 'fs', root: tempDir('steps') });
  });
  afterAll(async () => {
    await policy.dispose();
    await store.close();
  });

  async function episode(runId: string, stepSettings: EpisodeSettings): Promise<MemoryStepRecord> {
    const ref = { runId, episodeId: 'e0' };
    await store.putJson(episodeInputKey(runId, 'e0'), input);
    const steps = new EpisodeSteps({ store, policy });
    const manifest = await steps.prepare(ref, stepSettings);
    expect(manifest.chunkCount).toBeGreaterThan(1);
    await steps.memoryStep(ref, stepSettings, 0);
    return store.getJson<MemoryStepRecord>(episodeMemoryKey(runId, 'e0', 0));
  }

  it('uses prompt templates supplied by the user', async () => {
    const builtIn = await episode('default-templates', settings);
    const templates = defaultTemplates('rememr1');
    const custom = JSON.stringify({ memoryStep: `A much longer preamble that the built-in template does not have. ${templates.memoryStep}`, final: templates.final });
    const withCustom = await episode('custom-templates', { ...settings, promptTemplates: custom });
    expect(withCustom.promptTokens).toBeGreaterThan(builtIn.promptTokens);
  });

  it('reads a finished step back instead of generating it again', async () => {
    const ref = { runId: 'idempotent', episodeId: 'e0' };
    const first = await episode(ref.runId, settings);
    // Overwrite the stored record with a marker: a second call must return what is stored, not regenerate.
    await store.putJson(episodeMemoryKey(ref.runId, 'e0', 0), { ...first, memory: 'stored memory' });
    const summary = await new EpisodeSteps({ store, policy }).memoryStep(ref, settings, 0);
    expect(summary.memoryPreview).toBe('stored memory');
  });

  /** The ids the chat template and tokenizer make of `prompt` sent as the user message. */
  function tokenised(prompt: string): number[] {
    return policy.tokenizer.encode(policy.applyChatTemplate([{ role: 'user', content: prompt }]));
  }

  it('records the prompt ids each turn was fed, equal to a re-tokenisation of its prompt', async () => {
    const ref = { runId: 'prompt-ids', episodeId: 'e0' };
    await store.putJson(episodeInputKey(ref.runId, ref.episodeId), input);
    const steps = new EpisodeSteps({ store, policy });
    const manifest = await steps.prepare(ref, settings);
    for (let step = 0; step < manifest.chunkCount; step += 1) await steps.memoryStep(ref, settings, step);
    await steps.answer(ref, settings, manifest.chunkCount);

    let previous: MemoryStepRecord | null = null;
    for (let step = 0; step < manifest.chunkCount; step += 1) {
      const record = await store.getJson<MemoryStepRecord>(episodeMemoryKey(ref.runId, ref.episodeId, step));
      const chunk = new TextDecoder().decode(await store.get(episodeChunkKey(ref.runId, ref.episodeId, step)));
      const prompt = buildMemoryStepPrompt({
        question: input.question,
        recalled: formatRecalled(previous?.recalled ?? []),
        memory: previous?.memory ?? null,
        chunk,
        mode: settings.mode,
      });
      expect(record.promptIds).toEqual(tokenised(prompt));
      expect(record.promptIds).toHaveLength(record.promptTokens);
      expect(record.sampling).toEqual({
        temperature: settings.temperature,
        topP: settings.topP,
        topK: settings.topK,
        seed: `${settings.seed}/e0/${step}`,
        policyVersion: null,
        maxNewTokens: settings.memoryMaxNewTokens,
      });
      previous = record;
    }
    const answer = await store.getJson<AnswerRecord>(episodeAnswerKey(ref.runId, ref.episodeId));
    const finalPrompt = buildFinalPrompt({
      question: input.question,
      recalled: formatRecalled(previous?.recalled ?? []),
      memory: previous?.memory ?? null,
      mode: settings.mode,
    });
    expect(answer.promptIds).toEqual(tokenised(finalPrompt));
    expect(answer.sampling?.seed).toBe(`${settings.seed}/e0/final`);
  });

  it('still answers from memory records written before prompt ids were kept', async () => {
    const ref = { runId: 'old-records', episodeId: 'e0' };
    await store.putJson(episodeInputKey(ref.runId, ref.episodeId), input);
    const steps = new EpisodeSteps({ store, policy });
    await steps.prepare(ref, { ...settings, maxChunks: 1 });
    await steps.memoryStep(ref, settings, 0);
    const key = episodeMemoryKey(ref.runId, ref.episodeId, 0);
    const { promptIds: _ids, sampling: _sampling, ...older } = await store.getJson<MemoryStepRecord>(key);
    await store.putJson(key, older);
    const result = await new EpisodeSteps({ store, policy }).answer(ref, settings, 1);
    expect(result.chunkCount).toBe(1);
  });

  it('samples rollouts with the policy version their settings name, at temperature 1 over the full distribution', async () => {
    const asked: Array<string | undefined> = [];
    const provider = {
      policyFor: (version: string | undefined) => {
        asked.push(version);
        return Promise.resolve(policy);
      },
    };
    const rollout = rolloutSettings(settings, 'v7');
    expect(rollout).toMatchObject({ temperature: 1, topP: 1, topK: 0, policyVersion: 'v7', seed: settings.seed });
    const ids = [0, 1].map((g) => rolloutEpisodeId('q', g));
    expect(ids).toEqual(['q.g0', 'q.g1']);
    const steps = new EpisodeSteps({ store, policy: provider });
    const records: MemoryStepRecord[] = [];
    for (const episodeId of ids) {
      const ref = { runId: 'rollouts', episodeId };
      await store.putJson(episodeInputKey(ref.runId, episodeId), input);
      await steps.prepare(ref, rollout);
      await steps.memoryStep(ref, rollout, 0);
      records.push(await store.getJson<MemoryStepRecord>(episodeMemoryKey(ref.runId, episodeId, 0)));
    }
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.every((version) => version === 'v7')).toBe(true);
    expect(records.map((record) => record.sampling)).toEqual([
      { temperature: 1, topP: 1, topK: 0, seed: `${settings.seed}/q.g0/0`, policyVersion: 'v7', maxNewTokens: 8 },
      { temperature: 1, topP: 1, topK: 0, seed: `${settings.seed}/q.g1/0`, policyVersion: 'v7', maxNewTokens: 8 },
    ]);
    // Same prompt, distinct seed streams: the log-probs are those of the full distribution at temperature 1.
    expect(records[0].promptIds).toEqual(records[1].promptIds);
    expect(records[0].logProbs.every((logProb) => logProb < 0)).toBe(true);
  });

  it('refuses a policy version on a worker that serves only its configured model', async () => {
    const ref = { runId: 'no-versions', episodeId: 'e0' };
    await store.putJson(episodeInputKey(ref.runId, ref.episodeId), input);
    const steps = new EpisodeSteps({ store, policy: policyProvider(policy) });
    await expect(steps.prepare(ref, { ...settings, policyVersion: 'v1' })).rejects.toThrow(
      new EpisodeInputError('policy version v1 was asked for, but this worker serves only its configured model'),
    );
  });

  it('refuses a chunk size too small to hold anything useful', async () => {
    await store.putJson(episodeInputKey('tiny-chunks', 'e0'), input);
    await expect(new EpisodeSteps({ store, policy }).prepare({ runId: 'tiny-chunks', episodeId: 'e0' }, { ...settings, chunkTokens: 4 })).rejects.toThrow(EpisodeInputError);
  });
});
