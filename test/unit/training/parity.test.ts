/**
 * The trainer's log-probs against the ONNX policy's: the same weights and tokens give the same per-token
 * log-probabilities (within 1e-4), so the importance ratio of an update's first mini-batch is 1 (within 1e-3).
 * The small model's vocabulary is padded past its tokenizer's ids, so the masking of ids the tokenizer lacks
 * is exercised too.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { loadPolicy, type Policy } from '../../../lib/model/policy';
import { parseSafetensors } from '../../../lib/model/safetensors';
import { qwen2TensorSpecs } from '../../../lib/model-build/qwen2-weights';
import { OnnxTrainerEngine } from '../../../lib/training/onnx-engine';
import type { LossSequence } from '../../../lib/training/engine';
import { smallModelFolder, smallSpec } from '../model/helpers';

let policy: Policy;
let engine: OnnxTrainerEngine;

beforeAll(async () => {
  const folder = await smallModelFolder('trainer-parity');
  policy = await loadPolicy(folder, { maxBatchSize: 4 });
  const file = parseSafetensors(await fs.readFile(path.join(folder, 'model.safetensors')));
  const spec = smallSpec();
  const weights = new Map(qwen2TensorSpecs(spec).map((tensor) => [tensor.name, file.float32(tensor.name)]));
  expect(policy.tokenizer.vocabularySize).toBeLessThan(spec.vocabSize);
  engine = new OnnxTrainerEngine({
    spec,
    weights,
    usableVocabularySize: policy.tokenizer.vocabularySize,
    padTokenId: 0,
  });
});

afterAll(async () => {
  await policy?.dispose();
  await engine?.dispose();
});

const PROMPTS = [
  'Document 1: The capital of Northland is Ostara.',
  'Question: who founded the museum? Memory: no previous memory.',
  'a',
  'Document 2: Ostara has a museum founded in 1887 by the first director, who also wrote its guide.',
];

it('gives the policy sampling log-probs (temperature 1) on the tokens the policy sampled', async () => {
  const sequences: LossSequence[] = [];
  const sampled: number[] = [];
  for (const [i, prompt] of PROMPTS.entries()) {
    const result = await policy.generate({
      prompt,
      maxNewTokens: 20 + 3 * i,
      temperature: 1,
      seed: `parity-${i}`,
    });
    const promptIds = policy.tokenizer.encode(prompt, { addSpecialTokens: true });
    expect(promptIds.length).toBe(result.promptTokens);
    sequences.push({ tokens: [...promptIds, ...result.tokenIds], lossStart: promptIds.length });
    sampled.push(...result.logProbs);
  }
  const { logProbs, entropy } = await engine.logProbs(sequences);
  expect(logProbs.length).toBe(sampled.length);
  let worst = 0;
  for (let i = 0; i < sampled.length; i++) {
    worst = Math.max(worst, Math.abs(logProbs[i] - sampled[i]));
    expect(Math.abs(Math.exp(logProbs[i] - sampled[i]) - 1)).toBeLessThan(1e-3);
  }
  expect(worst).toBeLessThan(1e-4);
  for (const value of entropy) expect(value).toBeGreaterThan(0);
});

it('gives each sequence the same log-probs alone and in any block (padding rows and lengths do not leak)', async () => {
  const a: LossSequence = { tokens: [5, 9, 33, 70, 12, 7, 100], lossStart: 3 };
  const b: LossSequence = {
    tokens: [
      40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65,
      66, 67, 68, 69, 70, 71, 72, 73, 74,
    ],
    lossStart: 30,
  };
  const alone = await engine.logProbs([a]);
  const together = await engine.logProbs([b, a, b]);
  const offset = b.tokens.length - b.lossStart;
  for (let i = 0; i < alone.logProbs.length; i++) {
    expect(Math.abs(together.logProbs[offset + i] - alone.logProbs[i])).toBeLessThan(1e-5);
  }
});
