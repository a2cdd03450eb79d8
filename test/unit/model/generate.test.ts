/**
 * Generation through a loaded policy: seeded determinism across runs and batch compositions, log-probs
 * against a recomputation from the logits, EOS, stop strings, token budget, bad requests.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InferenceSession } from 'onnxruntime-node';
import {
  GenerationRequestError,
  ExecutionProviderError,
  PolicyDisposedError,
} from '../../../lib/model/errors';
import { loadPolicy, type Policy } from '../../../lib/model/policy';
import type { GenerateRequest, GenerateResult } from '../../../lib/model/generate';
import { logSoftmax, rawForward, smallModelFolder, smallSpec } from './helpers';

const DOCUMENT =
  'Document 1: The capital of Northland is Ostara. Document 2: Ostara has a museum founded in 1887 by the first director.';

let folder: string;
let policy: Policy;

beforeAll(async () => {
  folder = await smallModelFolder('generate');
  policy = await loadPolicy(folder, { maxBatchSize: 4 });
});

afterAll(async () => {
  await policy?.dispose();
});

const settings: [string, Pick<GenerateRequest, 'temperature' | 'topK' | 'topP'>][] = [
  ['greedy', { temperature: 0 }],
  ['temperature', { temperature: 1 }],
  ['top-k', { temperature: 0.8, topK: 7 }],
  ['top-p', { temperature: 0.9, topP: 0.8 }],
  ['top-k and top-p', { temperature: 1.3, topK: 40, topP: 0.9 }],
];

function request(overrides: Partial<GenerateRequest>): GenerateRequest {
  return { prompt: DOCUMENT, maxNewTokens: 24, temperature: 1, seed: 7, ...overrides };
}

/** Resolves once the policy has run `steps` more decode steps. */
async function afterDecodeSteps(target: Policy, steps: number): Promise<void> {
  const goal = target.stats().decodeSteps + steps;
  while (target.stats().decodeSteps < goal) await new Promise((resolve) => setImmediate(resolve));
}

describe('seeded generation', () => {
  it.each(settings)(
    'gives the same tokens and log-probs on every run and in another process-level load (%s)',
    async (_label, sampling) => {
      const first = await policy.generate(request({ ...sampling, seed: 'run' }));
      const second = await policy.generate(request({ ...sampling, seed: 'run' }));
      const other = await loadPolicy(folder, { maxBatchSize: 1 });
      const third = await other.generate(request({ ...sampling, seed: 'run' }));
      await other.dispose();
      expect(second).toEqual(first);
      expect(third).toEqual(first);
      expect(first.tokenIds).toHaveLength(first.logProbs.length);
    },
  );

  it('gives different tokens for different seeds', async () => {
    const runs = await Promise.all([1, 2, 3].map((seed) => policy.generate(request({ seed }))));
    expect(new Set(runs.map((run) => run.tokenIds.join(','))).size).toBe(3);
  });

  it('treats 42 and 42n as one seed and "42" as another', async () => {
    const [a, b, c] = await Promise.all([
      policy.generate(request({ seed: 42 })),
      policy.generate(request({ seed: 42n })),
      policy.generate(request({ seed: '42' })),
    ]);
    expect(b.tokenIds).toEqual(a.tokenIds);
    expect(c.tokenIds).not.toEqual(a.tokenIds);
  });

  it.each(settings)(
    'gives a request the same tokens and log-probs whatever it is batched with (%s)',
    async (_label, sampling) => {
      const target = request({ ...sampling, seed: 'composition', maxNewTokens: 30 });
      const alone = await policy.generate(target);
      // Batched from the start with rows of other lengths and settings.
      const together = await Promise.all([
        policy.generate(request({ prompt: `${DOCUMENT} ${DOCUMENT}`, seed: 1, maxNewTokens: 40 })),
        policy.generate(target),
        // Same prompt, so prefilled in the same pass.
        policy.generate({ ...target, seed: 'neighbour', temperature: 1.1 }),
        policy.generate(request({ prompt: 'The', temperature: 0, seed: 2, maxNewTokens: 5 })),
        policy.generate(
          request({ prompt: [{ role: 'user', content: 'Who founded the museum?' }], topK: 3, seed: 3 }),
        ),
      ]);
      expect(together[1]).toEqual(alone);
      // Joining a batch that is already decoding, and leaving it while it goes on.
      const running = policy.generate(
        request({ prompt: `Question: ${DOCUMENT}`, seed: 4, maxNewTokens: 70 }),
      );
      await afterDecodeSteps(policy, 5);
      const joined = await policy.generate(target);
      await running;
      expect(joined).toEqual(alone);
      // One request per forward pass.
      const single = await loadPolicy(folder, { maxBatchSize: 1 });
      const [, sequential] = await Promise.all([
        single.generate(request({ seed: 9 })),
        single.generate(target),
      ]);
      await single.dispose();
      expect(sequential).toEqual(alone);
    },
  );

  it('gives the same tokens and log-probs beyond 1024 cache columns, where long sums are blocked', async () => {
    const long = request({
      prompt: `${DOCUMENT} `.repeat(28),
      temperature: 0.9,
      topP: 0.95,
      seed: 'long',
      maxNewTokens: 16,
    });
    expect(policy.tokenizer.encode(long.prompt as string).length).toBeGreaterThan(1100);
    const alone = await policy.generate(long);
    const [, batched] = await Promise.all([
      policy.generate(request({ prompt: `${DOCUMENT} `.repeat(34), seed: 11, maxNewTokens: 30 })),
      policy.generate(long),
      policy.generate({ ...long, seed: 'same width' }),
      policy.generate(request({ seed: 12 })),
    ]);
    expect(batched).toEqual(alone);
    const running = policy.generate(request({ prompt: `Question: ${DOCUMENT}`, seed: 13, maxNewTokens: 60 }));
    await afterDecodeSteps(policy, 3);
    expect(await policy.generate(long)).toEqual(alone);
    await running;
  });

  it('prefills long prompts in chunks with the same results as in one pass, to rounding', async () => {
    const generate = request({ prompt: `${DOCUMENT} `.repeat(3), seed: 'chunks', maxNewTokens: 12 });
    const chunked = await loadPolicy(folder, { prefillTokenBudget: 32 });
    const [inChunks, inOnePass] = [await chunked.generate(generate), await policy.generate(generate)];
    await chunked.dispose();
    const stats = chunked.stats();
    expect(stats.prefills).toBe(1);
    // Passes that were not decode steps: the prompt's chunks.
    expect(stats.sessionRuns - stats.decodeSteps).toBe(
      Math.ceil(policy.tokenizer.encode(generate.prompt as string).length / 32),
    );
    expect(inChunks.tokenIds).toEqual(inOnePass.tokenIds);
    inChunks.logProbs.forEach((value, i) =>
      expect(Math.abs(value - inOnePass.logProbs[i])).toBeLessThan(1e-4),
    );
  });

  it('shares forward passes between concurrent requests', async () => {
    const before = policy.stats();
    await Promise.all(
      [0, 1, 2, 3].map((seed) => policy.generate(request({ seed, maxNewTokens: 20, stop: undefined }))),
    );
    const after = policy.stats();
    const rowsPerStep =
      (after.decodeRowSteps - before.decodeRowSteps) / (after.decodeSteps - before.decodeSteps);
    expect(rowsPerStep).toBeGreaterThan(3);
  });
});

describe('log-probs', () => {
  /** The distribution the request samples from at one position, recomputed in float64 from raw logits. */
  function keptLogProbs(
    logits: Float32Array,
    vocabulary: number,
    sampling: Pick<GenerateRequest, 'temperature' | 'topK' | 'topP'>,
  ): Map<number, number> {
    const logProbs = logSoftmax(logits.subarray(0, vocabulary), 1 / sampling.temperature);
    const order = Array.from(logProbs.keys()).sort((a, b) => logProbs[b] - logProbs[a] || a - b);
    let kept = sampling.topK ? order.slice(0, sampling.topK) : order;
    if (sampling.topP !== undefined && sampling.topP < 1) {
      const mass = kept.reduce((sum, id) => sum + Math.exp(logProbs[id]), 0);
      let cumulative = 0;
      const cut = kept.findIndex((id) => (cumulative += Math.exp(logProbs[id])) >= sampling.topP! * mass);
      kept = kept.slice(0, cut + 1);
    }
    const keptMass = Math.log(kept.reduce((sum, id) => sum + Math.exp(logProbs[id]), 0));
    return new Map(kept.map((id) => [id, logProbs[id] - keptMass]));
  }

  async function checkAgainstLogits(
    target: Policy,
    modelFolder: string,
    result: GenerateResult,
    generate: GenerateRequest,
  ): Promise<void> {
    const spec = smallSpec({ vocabSize: target.config.vocabSize });
    const session = await InferenceSession.create(path.join(modelFolder, 'onnx', 'model.onnx'));
    const prompt = target.tokenizer.encode(generate.prompt as string, { addSpecialTokens: true });
    const tokens = [...prompt, ...result.tokenIds.slice(0, -1)];
    const { logits } = await rawForward(session, spec, {
      inputIds: [tokens],
      attentionMask: [tokens.map(() => 1)],
      positionIds: [tokens.map((_, i) => i)],
    });
    await session.release();
    const V = spec.vocabSize;
    result.tokenIds.forEach((token, t) => {
      const position = prompt.length - 1 + t;
      const row = logits.subarray(position * V, (position + 1) * V);
      if (generate.temperature === 0) {
        // Ids past the tokenizer's (the model pads its vocabulary) are never chosen.
        const usable = row.subarray(0, target.tokenizer.vocabularySize);
        expect(token).toBe(usable.indexOf(Math.max(...usable)));
        expect(result.logProbs[t]).toBe(0);
        return;
      }
      const kept = keptLogProbs(row, target.tokenizer.vocabularySize, generate);
      expect(kept.has(token)).toBe(true);
      expect(Number.isFinite(result.logProbs[t])).toBe(true);
      expect(Math.abs(result.logProbs[t] - (kept.get(token) as number))).toBeLessThan(1e-4);
    });
  }

  it.each(settings)('are finite and match a recomputation from the logits (%s)', async (_label, sampling) => {
    const generate = request({ ...sampling, seed: 'log-probs', maxNewTokens: 20 });
    await checkAgainstLogits(policy, folder, await policy.generate(generate), generate);
  });

  it('match a recomputation when the top-p set is too large for the candidates and comes from the full distribution', async () => {
    // Near-flat distributions: the top-p set holds most of the ~390 ids, more than the 256 candidates read first.
    const flatFolder = await smallModelFolder('generate-flat', { initStd: 0.02 });
    const flat = await loadPolicy(flatFolder);
    const generate = request({ temperature: 1, topP: 0.995, seed: 'flat', maxNewTokens: 12 });
    const result = await flat.generate(generate);
    expect(flat.stats().fullDistributionRuns).toBeGreaterThan(0);
    await checkAgainstLogits(flat, flatFolder, result, generate);
    // The same row in a batch with rows that fetch nothing extra gets the same result.
    const [batched] = await Promise.all([
      flat.generate(generate),
      flat.generate(request({ temperature: 0, seed: 1 })),
    ]);
    expect(batched).toEqual(result);
    await flat.dispose();
  });
});

describe('ending generation', () => {
  it('stops at the token budget', async () => {
    const result = await policy.generate(request({ maxNewTokens: 9, seed: 'length' }));
    expect(result.finishReason).toBe('length');
    expect(result.tokenIds).toHaveLength(9);
    expect(result.text).toBe(policy.tokenizer.decode(result.tokenIds));
    expect(result.promptTokens).toBe(policy.tokenizer.encode(DOCUMENT).length);
  });

  it('stops at an EOS token, which is returned among the tokens but not in the text', async () => {
    const greedy = await policy.generate(request({ temperature: 0, maxNewTokens: 6 }));
    // Make the fourth greedy token an end-of-sequence token of a copy of the model.
    const eosFolder = await smallModelFolder('generate-eos');
    const config = JSON.parse(
      await fs.readFile(path.join(folder, 'generation_config.json'), 'utf8'),
    ) as Record<string, unknown>;
    await fs.cp(folder, eosFolder, { recursive: true });
    await fs.writeFile(
      path.join(eosFolder, 'generation_config.json'),
      JSON.stringify({ ...config, eos_token_id: [greedy.tokenIds[3]] }),
    );
    const eosPolicy = await loadPolicy(eosFolder);
    const result = await eosPolicy.generate(request({ temperature: 0, maxNewTokens: 6 }));
    await eosPolicy.dispose();
    const firstEos = greedy.tokenIds.indexOf(greedy.tokenIds[3]);
    expect(result.finishReason).toBe('eos');
    expect(result.tokenIds).toEqual(greedy.tokenIds.slice(0, firstEos + 1));
    expect(result.text).toBe(policy.tokenizer.decode(greedy.tokenIds.slice(0, firstEos)));
  });

  it('stops at a stop string and returns the text before it', async () => {
    const free = await policy.generate(request({ seed: 'stop', maxNewTokens: 40 }));
    const stop = free.text.slice(12, 14);
    expect(stop).toHaveLength(2);
    const stopped = await policy.generate(
      request({ seed: 'stop', maxNewTokens: 40, stop: ['never appears ∅', stop] }),
    );
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.stopString).toBe(stop);
    expect(stopped.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
    expect(free.tokenIds.slice(0, stopped.tokenIds.length)).toEqual(stopped.tokenIds);
    expect(policy.tokenizer.decode(stopped.tokenIds)).toContain(stop);
    expect(policy.tokenizer.decode(stopped.tokenIds.slice(0, -1))).not.toContain(stop);
  });

  it('renders chat prompts with the chat template', async () => {
    const messages = [{ role: 'user' as const, content: 'Who founded the museum?' }];
    const text = policy.applyChatTemplate(messages);
    expect(text).toBe('<|im_start|>user\nWho founded the museum?<|im_end|>\n<|im_start|>assistant\n');
    const fromMessages = await policy.generate(request({ prompt: messages, seed: 5 }));
    const fromText = await policy.generate(request({ prompt: text, seed: 5 }));
    expect(fromMessages).toEqual(fromText);
  });
});

describe('bad requests and hosts', () => {
  it.each([
    [{ maxNewTokens: 0 }, /maxNewTokens must be a positive integer/],
    [{ maxNewTokens: 2.5 }, /maxNewTokens must be a positive integer/],
    [{ temperature: -1 }, /temperature must be a finite number >= 0/],
    [{ temperature: Number.NaN }, /temperature must be a finite number >= 0/],
    [{ topP: 0 }, /topP must be in \(0, 1\]/],
    [{ topP: 1.5 }, /topP must be in \(0, 1\]/],
    [{ topK: -3 }, /topK must be an integer >= 0/],
    [{ stop: [''] }, /stop must be a list of non-empty strings/],
    [{ prompt: '' }, /the prompt encodes to no tokens/],
    [
      { prompt: [{ role: 'robot', content: 'hi' }] as unknown as GenerateRequest['prompt'] },
      /each chat message must be/,
    ],
    [{ seed: 1.5 }, /seed 1.5 is not a safe integer/],
    [{ maxNewTokens: 40000 }, /exceeds the model's 32768 positions/],
  ] as [Partial<GenerateRequest>, RegExp][])('rejects %p', async (overrides, message) => {
    await expect(policy.generate(request(overrides))).rejects.toThrow(GenerationRequestError);
    await expect(policy.generate(request(overrides))).rejects.toThrow(message);
  });

  it('refuses work after dispose', async () => {
    const short = await loadPolicy(folder);
    const outcome = short.generate(request({ maxNewTokens: 50 })).then(
      () => 'finished',
      (error: unknown) => error,
    );
    await short.dispose();
    expect(await outcome).toBeInstanceOf(PolicyDisposedError);
    await expect(short.generate(request({}))).rejects.toThrow(PolicyDisposedError);
  });

  it.each([
    ['cuda', /"cuda" could not be loaded.*--onnxruntime-node-install=cuda12/s],
    ['webgpu', /"webgpu" could not be loaded.*Vulkan/s],
    ['tpu', /"tpu" is not supported; expected one of cpu, cuda, webgpu/],
  ])(
    'fails with install advice when the %s provider cannot load, never falling back to the CPU',
    async (provider, message) => {
      await expect(loadPolicy(folder, { executionProvider: provider as 'cuda' })).rejects.toThrow(
        ExecutionProviderError,
      );
      await expect(loadPolicy(folder, { executionProvider: provider as 'cuda' })).rejects.toThrow(message);
    },
  );
});
