/** Per-turn generation limits: command line, config, the model's generation_config.json, built-in defaults. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readModelGenerationLimits, runGenerationLimits } from '../../../cli/episode-settings';
import {
  describeGenerationLimits,
  modelGenerationLimits,
  resolveGenerationLimits,
} from '../../../lib/episode/generation-limits';
import { parseGenerationConfig } from '../../../lib/model/config';
import { createBlobStore, policyFileKey } from '../../../lib/storage';
import { loadConfig } from '../../../temporal.config';
import { tempDir } from '../../support/stack';

const none = { commandLine: {}, config: {}, model: null };

describe('resolveGenerationLimits', () => {
  it('falls back to the built-in defaults', () => {
    expect(resolveGenerationLimits(none)).toEqual({
      memoryMaxNewTokens: 64,
      answerMaxNewTokens: 24,
      chunkTokens: 512,
      sources: { memory: 'built-in default', answer: 'built-in default', chunk: 'built-in default' },
    });
  });

  it("reads the model's max_new_tokens for both turns, and its rememr1 block per turn", () => {
    expect(resolveGenerationLimits({ ...none, model: { maxNewTokens: 2048 } })).toMatchObject({
      memoryMaxNewTokens: 2048,
      answerMaxNewTokens: 2048,
      sources: { memory: 'generation_config.json max_new_tokens' },
    });
    const limits = resolveGenerationLimits({
      ...none,
      model: { maxNewTokens: 2048, answerMaxNewTokens: 256 },
    });
    expect(limits).toEqual({
      memoryMaxNewTokens: 2048,
      answerMaxNewTokens: 256,
      chunkTokens: 512,
      sources: {
        memory: 'generation_config.json max_new_tokens',
        answer: 'generation_config.json rememr1.answer_max_new_tokens',
        chunk: 'built-in default',
      },
    });
    expect(describeGenerationLimits(limits)).toBe(
      'chunks of 512 tokens (built-in default); generation limits: memory turn 2048 new tokens (generation_config.json max_new_tokens), final turn 256 (generation_config.json rememr1.answer_max_new_tokens)',
    );
  });

  it('lets the config and then the command line win, per turn', () => {
    const model = { maxNewTokens: 2048, memoryMaxNewTokens: 1024, answerMaxNewTokens: 512 };
    expect(
      resolveGenerationLimits({ commandLine: {}, config: { memoryMaxNewTokens: 300 }, model }),
    ).toMatchObject({ memoryMaxNewTokens: 300, answerMaxNewTokens: 512 });
    expect(
      resolveGenerationLimits({
        commandLine: { answerMaxNewTokens: 7 },
        config: { memoryMaxNewTokens: 300, answerMaxNewTokens: 400 },
        model,
      }),
    ).toEqual({
      memoryMaxNewTokens: 300,
      answerMaxNewTokens: 7,
      chunkTokens: 512,
      sources: {
        memory: 'config episodes.memoryMaxNewTokens',
        answer: 'command line',
        chunk: 'built-in default',
      },
    });
  });

  it("reads the model's chunk size, below the config and the command line", () => {
    const model = { chunkTokens: 128 };
    expect(resolveGenerationLimits({ ...none, model })).toMatchObject({
      chunkTokens: 128,
      sources: { chunk: 'generation_config.json rememr1.chunk_tokens' },
    });
    expect(
      resolveGenerationLimits({ commandLine: {}, config: { chunkTokens: 256 }, model }).chunkTokens,
    ).toBe(256);
    expect(
      resolveGenerationLimits({ commandLine: { chunkTokens: 64 }, config: { chunkTokens: 256 }, model })
        .chunkTokens,
    ).toBe(64);
    expect(modelGenerationLimits(parseGenerationConfig({ rememr1: { chunk_tokens: 128 } }).raw)).toEqual({
      chunkTokens: 128,
    });
  });

  it('parses the fields of generation_config.json, refusing bad limits', () => {
    const json = {
      eos_token_id: 2,
      max_new_tokens: 2048,
      rememr1: { memory_max_new_tokens: 1500, note: 'x' },
    };
    expect(modelGenerationLimits(parseGenerationConfig(json).raw)).toEqual({
      maxNewTokens: 2048,
      memoryMaxNewTokens: 1500,
    });
    expect(modelGenerationLimits(parseGenerationConfig({ eos_token_id: 2 }).raw)).toEqual({});
    expect(() => parseGenerationConfig({ rememr1: { answer_max_new_tokens: 0 } })).toThrow(
      /rememr1\.answer_max_new_tokens/,
    );
  });
});

describe('reading the limits of the model a run samples with', () => {
  it('reads a model folder, and finds none in the bundled model or a rule policy', async () => {
    const folder = tempDir('generation-limits');
    fs.writeFileSync(
      path.join(folder, 'generation_config.json'),
      JSON.stringify({ max_new_tokens: 2048, rememr1: { answer_max_new_tokens: 128 } }),
    );
    expect(await readModelGenerationLimits({ folder })).toEqual({
      maxNewTokens: 2048,
      answerMaxNewTokens: 128,
    });
    expect(await readModelGenerationLimits({ folder: loadConfig().model.path })).toEqual({});
    expect(await readModelGenerationLimits({ folder: 'rule:callback' })).toBeNull();
    expect(await readModelGenerationLimits({ folder: tempDir('generation-limits-empty') })).toBeNull();
    fs.writeFileSync(path.join(folder, 'generation_config.json'), JSON.stringify({ max_new_tokens: -1 }));
    await expect(readModelGenerationLimits({ folder })).rejects.toThrow(
      /generation_config\.json: max_new_tokens/,
    );
  });

  it("reads a policy version's generation_config.json from the blob store", async () => {
    const store = createBlobStore({ kind: 'fs', root: tempDir('generation-limits-store') });
    try {
      await store.putJson(policyFileKey('v1', 'generation_config.json'), {
        rememr1: { memory_max_new_tokens: 900 },
      });
      expect(await readModelGenerationLimits({ policyVersion: 'v1', store })).toEqual({
        memoryMaxNewTokens: 900,
      });
      expect(await readModelGenerationLimits({ policyVersion: 'v2', store })).toBeNull();
      const config = loadConfig({ env: { REMEMR1_ANSWER_MAX_NEW_TOKENS: '50' } });
      expect(await runGenerationLimits({}, config, { policyVersion: 'v1', store })).toMatchObject({
        memoryMaxNewTokens: 900,
        answerMaxNewTokens: 50,
      });
      expect(
        await runGenerationLimits({ memoryTokens: 10 }, config, { policyVersion: 'v1', store }),
      ).toMatchObject({ memoryMaxNewTokens: 10, answerMaxNewTokens: 50 });
    } finally {
      await store.close();
    }
  });
});
