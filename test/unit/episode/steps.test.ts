/** The episode steps on the bundled model and a filesystem store: no servers. */
import { defaultTemplates } from '../../../lib/agent';
import { EpisodeInputError, EpisodeSteps } from '../../../lib/episode/steps';
import { defaultEpisodeSettings, type EpisodeSettings, type MemoryStepRecord } from '../../../lib/episode/types';
import { loadPolicy, type Policy } from '../../../lib/model';
import { createBlobStore, episodeInputKey, episodeMemoryKey, type BlobStore } from '../../../lib/storage';
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

  it('refuses a chunk size too small to hold anything useful', async () => {
    await store.putJson(episodeInputKey('tiny-chunks', 'e0'), input);
    await expect(new EpisodeSteps({ store, policy }).prepare({ runId: 'tiny-chunks', episodeId: 'e0' }, { ...settings, chunkTokens: 4 })).rejects.toThrow(EpisodeInputError);
  });
});
