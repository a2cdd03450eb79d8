/**
 * The sampling head appended to decoder graphs: probabilities, the block draw, top candidates, masking
 * of ids the tokenizer lacks, and slicing the last position before the output head.
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import {
  DRAW_BLOCK,
  SAMPLING_HEAD,
  SEARCH_BLOCK,
  attachSamplingHead,
} from '../../../lib/model/sampling-head';
import { DataType, encodeModel, float32Tensor, valueInfo, type onnx } from '../../../lib/model/onnx-graph';
import { Xoshiro128 } from '../../../lib/model/random';

/** A graph whose `logits` are a graph input passed through, or a MatMul of hidden states with a weight. */
function graphWithLogits(
  vocabulary: number,
  head: 'identity' | 'matmul',
  weight?: Float32Array,
  hidden = 4,
): onnx.IModelProto {
  const graph: onnx.IGraphProto =
    head === 'identity'
      ? {
          name: 'logits-as-input',
          node: [{ opType: 'Identity', input: ['x'], output: ['logits'] }],
          input: [valueInfo('x', DataType.FLOAT, ['batch', 'sequence', vocabulary])],
          output: [valueInfo('logits', DataType.FLOAT, ['batch', 'sequence', vocabulary])],
        }
      : {
          name: 'hidden-times-weight',
          node: [{ opType: 'MatMul', input: ['x', 'head_weight'], output: ['logits'] }],
          initializer: [float32Tensor('head_weight', [hidden, vocabulary], weight as Float32Array)],
          input: [valueInfo('x', DataType.FLOAT, ['batch', 'sequence', hidden])],
          output: [valueInfo('logits', DataType.FLOAT, ['batch', 'sequence', vocabulary])],
        };
  return { irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph };
}

interface HeadRun {
  probabilities: Float32Array;
  sampledBlock: BigInt64Array;
  blockProbabilities: Float32Array;
  /** [rows][topCount] candidate ids, from the blocks and positions the head returns. */
  candidateIds: number[][];
  candidateProbabilities: Float32Array;
}

async function runHead(
  session: InferenceSession,
  x: Tensor,
  rows: number,
  temperature: number[],
  blockUniform: number[],
  topCount: number,
): Promise<HeadRun> {
  const outputs = await session.run({
    x,
    [SAMPLING_HEAD.inverseTemperature]: new Tensor(
      'float32',
      Float32Array.from(temperature, (t) => 1 / t),
      [rows],
    ),
    [SAMPLING_HEAD.blockUniform]: new Tensor('float32', Float32Array.from(blockUniform), [rows, 1]),
    [SAMPLING_HEAD.topCount]: new Tensor('int64', BigInt64Array.of(BigInt(Math.max(1, topCount))), [1]),
    [SAMPLING_HEAD.searchCandidates]: new Tensor('bool', Uint8Array.of(topCount > 0 ? 1 : 0), []),
  });
  const blocks = outputs[SAMPLING_HEAD.candidateBlocks] as Tensor;
  const positions = outputs[SAMPLING_HEAD.candidatePositions].data as BigInt64Array;
  const perRow = blocks.dims[1];
  return {
    probabilities: outputs[SAMPLING_HEAD.probabilities].data as Float32Array,
    sampledBlock: outputs[SAMPLING_HEAD.sampledBlock].data as BigInt64Array,
    blockProbabilities: outputs[SAMPLING_HEAD.blockProbabilities].data as Float32Array,
    candidateIds: Array.from({ length: rows }, (_, r) =>
      Array.from(positions.subarray(r * topCount, (r + 1) * topCount), (position) => {
        const p = Number(position);
        return (
          Number((blocks.data as BigInt64Array)[r * perRow + Math.floor(p / SEARCH_BLOCK)]) * SEARCH_BLOCK +
          (p % SEARCH_BLOCK)
        );
      }),
    ),
    candidateProbabilities: outputs[SAMPLING_HEAD.candidateProbabilities].data as Float32Array,
  };
}

function softmax(logits: ArrayLike<number>, inverseTemperature: number, usable: number): number[] {
  const scaled = Array.from({ length: usable }, (_, i) => logits[i] * inverseTemperature);
  const max = Math.max(...scaled);
  const exps = scaled.map((value) => Math.exp(value - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((value) => value / sum);
}

/** Stage one of the two-stage inverse CDF by definition: the first block whose cumulative mass exceeds u × total. */
function blockByDefinition(probabilities: ArrayLike<number>, uniform: number): number {
  const blocks = Math.ceil(probabilities.length / DRAW_BLOCK);
  const mass = Array.from({ length: blocks }, (_, b) =>
    Array.from(probabilities)
      .slice(b * DRAW_BLOCK, (b + 1) * DRAW_BLOCK)
      .reduce((a, c) => a + c, 0),
  );
  const total = mass.reduce((a, b) => a + b, 0);
  let cumulative = 0;
  let block = 0;
  while (block < blocks - 1 && (cumulative += mass[block]) <= uniform * total) block++;
  return block;
}

describe('sampling head', () => {
  // Padded to 4096: 8 draw blocks, 32 search blocks.
  const vocabulary = 4000;
  const usable = 3990;
  const padded = 4096;
  const rows = 3;
  const random = new Xoshiro128(99n);
  const logits = Float32Array.from({ length: rows * 2 * vocabulary }, () => 6 * random.nextFloat() - 3);
  const temperatures = [1, 0.5, 2];
  let session: InferenceSession;

  beforeAll(async () => {
    const model = graphWithLogits(vocabulary, 'identity');
    const info = attachSamplingHead(model, vocabulary, usable, 'test graph');
    expect(info).toEqual({ slicedBeforeHead: false, vocabularySize: usable, paddedVocabularySize: padded });
    session = await InferenceSession.create(encodeModel(model));
  });

  it('gives the softmax of the last position at each row temperature, 0 for ids the tokenizer lacks', async () => {
    const out = await runHead(
      session,
      new Tensor('float32', logits, [rows, 2, vocabulary]),
      rows,
      temperatures,
      [0.1, 0.5, 0.9],
      5,
    );
    for (let r = 0; r < rows; r++) {
      const last = logits.subarray((2 * r + 1) * vocabulary, (2 * r + 2) * vocabulary);
      const expected = softmax(last, 1 / temperatures[r], usable);
      const got = out.probabilities.subarray(r * padded, (r + 1) * padded);
      for (let i = 0; i < usable; i++) expect(Math.abs(got[i] - expected[i])).toBeLessThan(1e-7);
      for (let i = usable; i < padded; i++) expect(got[i]).toBe(0);
    }
  });

  it('draws a block by its mass and returns the probabilities of its ids', async () => {
    const blocksDrawn = new Set<number>();
    for (let trial = 0; trial < 20; trial++) {
      const uniform = Array.from({ length: rows }, () => random.nextFloat());
      const out = await runHead(
        session,
        new Tensor('float32', logits, [rows, 2, vocabulary]),
        rows,
        temperatures,
        uniform,
        1,
      );
      for (let r = 0; r < rows; r++) {
        const probabilities = out.probabilities.subarray(r * padded, (r + 1) * padded);
        const block = Number(out.sampledBlock[r]);
        expect(block).toBe(blockByDefinition(probabilities, uniform[r]));
        expect(Array.from(out.blockProbabilities.subarray(r * DRAW_BLOCK, (r + 1) * DRAW_BLOCK))).toEqual(
          Array.from(probabilities.subarray(block * DRAW_BLOCK, (block + 1) * DRAW_BLOCK)),
        );
        blocksDrawn.add(block);
      }
    }
    expect(blocksDrawn.size).toBeGreaterThan(3);
  });

  it.each([1, 7, 300])('returns the top %i ids by probability, most probable first', async (topCount) => {
    const out = await runHead(
      session,
      new Tensor('float32', logits, [rows, 2, vocabulary]),
      rows,
      temperatures,
      Array(rows).fill(0.5),
      topCount,
    );
    for (let r = 0; r < rows; r++) {
      const probabilities = out.probabilities.subarray(r * padded, (r + 1) * padded);
      const expected = Array.from(probabilities.keys())
        .sort((a, b) => probabilities[b] - probabilities[a] || a - b)
        .slice(0, topCount);
      const ids = out.candidateIds[r];
      expect(ids.map((id) => probabilities[id])).toEqual(expected.map((id) => probabilities[id]));
      expect(new Set(ids).size).toBe(topCount);
      expect(Array.from(out.candidateProbabilities.subarray(r * topCount, (r + 1) * topCount))).toEqual(
        ids.map((id) => probabilities[id]),
      );
    }
  });

  it('skips the candidate search when no candidates are asked for', async () => {
    const outputs = await session.run({
      x: new Tensor('float32', logits, [rows, 2, vocabulary]),
      [SAMPLING_HEAD.inverseTemperature]: new Tensor('float32', new Float32Array(rows).fill(1), [rows]),
      [SAMPLING_HEAD.blockUniform]: new Tensor('float32', new Float32Array(rows).fill(0.5), [rows, 1]),
      [SAMPLING_HEAD.topCount]: new Tensor('int64', BigInt64Array.of(1n), [1]),
      [SAMPLING_HEAD.searchCandidates]: new Tensor('bool', Uint8Array.of(0), []),
    });
    expect(outputs[SAMPLING_HEAD.candidatePositions].size).toBe(0);
    expect(outputs[SAMPLING_HEAD.candidateProbabilities].size).toBe(0);
    expect(outputs[SAMPLING_HEAD.sampledBlock].dims).toEqual([rows, 1]);
  });

  it('slices the last position before a MatMul output head, masks inside it, and gives the same results', async () => {
    const hidden = 4;
    const weight = Float32Array.from({ length: hidden * vocabulary }, () => 2 * random.nextFloat() - 1);
    const states = Float32Array.from({ length: rows * 3 * hidden }, () => 2 * random.nextFloat() - 1);
    const sliced = graphWithLogits(vocabulary, 'matmul', weight, hidden);
    expect(attachSamplingHead(sliced, vocabulary, usable, 'test graph').slicedBeforeHead).toBe(true);
    const slicedSession = await InferenceSession.create(encodeModel(sliced));
    // The same logits computed outside, fed to the pass-through graph.
    const full = new Float32Array(rows * 3 * vocabulary);
    for (let p = 0; p < rows * 3; p++) {
      for (let v = 0; v < vocabulary; v++) {
        let sum = 0;
        for (let h = 0; h < hidden; h++) sum += states[p * hidden + h] * weight[h * vocabulary + v];
        full[p * vocabulary + v] = sum;
      }
    }
    const plain = graphWithLogits(vocabulary, 'identity');
    attachSamplingHead(plain, vocabulary, usable, 'test graph');
    const plainSession = await InferenceSession.create(encodeModel(plain));
    const uniform = [0.2, 0.8, 0.5];
    const a = await runHead(
      slicedSession,
      new Tensor('float32', states, [rows, 3, hidden]),
      rows,
      temperatures,
      uniform,
      4,
    );
    const b = await runHead(
      plainSession,
      new Tensor('float32', full, [rows, 3, vocabulary]),
      rows,
      temperatures,
      uniform,
      4,
    );
    for (let i = 0; i < a.probabilities.length; i++)
      expect(Math.abs(a.probabilities[i] - b.probabilities[i])).toBeLessThan(1e-6);
    // Ids the tokenizer lacks and the padding up to whole blocks: exactly 0, through the mask row in the MatMul.
    for (let r = 0; r < rows; r++)
      for (let i = usable; i < padded; i++) expect(a.probabilities[r * padded + i]).toBe(0);
    expect(a.candidateIds).toEqual(b.candidateIds);
    expect(a.sampledBlock).toEqual(b.sampledBlock);
  });
});
