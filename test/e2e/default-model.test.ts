/**
 * The README's first command, `npm run qa`, as a newcomer runs it: no dataset, no model, no settings given, so the
 * bundled example dataset is answered by the embedded default model with the reading settings of its model card
 * (its generation_config.json). The bundled model is trained: it must score above zero, and nearly every turn
 * must be well formed.
 *
 * The only differences from a newcomer's run are the test's own task queues, blob folder and namespace, and the
 * absence of the tests' model pin (REMEMR1_MODEL), so that the default is what answers.
 */
import { randomUUID } from 'node:crypto';
import type { EpisodeResult } from '../../lib/episode/types';
import { FsBlobStore, runResultsPrefix } from '../../lib/storage';
import { loadConfig } from '../../temporal.config';
import { runRememr1 } from '../support/cli';
import { requireStackEnvironment, tempDir } from '../support/stack';

requireStackEnvironment();

describe('npm run qa on the embedded default', () => {
  it('answers the bundled example with the bundled model, above zero', async () => {
    const suffix = randomUUID().slice(0, 8);
    const blobRoot = tempDir('default-model-blobs');
    const { REMEMR1_MODEL: _pinned, ...inherited } = process.env;
    const env: NodeJS.ProcessEnv = {
      ...inherited,
      REMEMR1_TASK_QUEUE_ORCHESTRATION: `default-model-orchestration-${suffix}`,
      REMEMR1_TASK_QUEUE_INFERENCE: `default-model-inference-${suffix}`,
      REMEMR1_STORAGE: 'fs',
      REMEMR1_STORAGE_ROOT: blobRoot,
      npm_config_update_notifier: 'false',
    };
    expect(loadConfig({ env }).model.path).toMatch(/rememr1-small$/);
    // `npm run qa` itself, as the README says.
    const run = await runRememr1([], { env, timeoutMs: 900_000, command: ['npm', 'run', 'qa'] });
    const { code } = run;
    const output = `${run.stdout}\n${run.stderr}`;
    expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });

    const store = new FsBlobStore({ root: blobRoot });
    const results: EpisodeResult[] = [];
    for await (const key of store.list('runs/')) {
      if (key.includes('/results/')) results.push(await store.getJson<EpisodeResult>(key));
    }
    expect(results.length).toBe(12);
    expect(new Set(results.map((result) => runResultsPrefix(result.runId))).size).toBe(1);
    // A trained model writes well-formed turns (a random one almost never does).
    const turns = results.reduce((sum, result) => sum + result.chunkCount, 0);
    const wellFormed = results.reduce((sum, result) => sum + result.formatValidSteps, 0);
    expect(wellFormed / turns).toBeGreaterThan(0.9);
    const exact = results.filter((result) => result.scores?.exactMatch === 1).length;
    expect(exact).toBeGreaterThan(0);
    // What the command printed agrees with the stored rows.
    expect(output).toContain('12 answered now');
  }, 960_000);
});
