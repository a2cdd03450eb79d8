/**
 * The ONNX decoder against the plain TypeScript reference: logits, incremental decoding with the cache,
 * left-padded batches, external weights.
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { buildDecoderOnnx, type DecoderSpec } from '../../../lib/model-build/onnx-builder';
import { randomQwen2Weights, weightMap } from '../../../lib/model-build/qwen2-weights';
import { referenceForward } from '../../../lib/model-build/reference';
import { rawForward, smallSpec } from './helpers';

const TOLERANCE = 1e-4;

async function sessionFor(spec: DecoderSpec, seed: string, options: { external?: boolean } = {}) {
  const weights = randomQwen2Weights(spec, seed, 0.3);
  const built = buildDecoderOnnx(
    spec,
    weightMap(weights),
    options.external ? { externalDataFile: 'model.onnx_data' } : {},
  );
  const session = await InferenceSession.create(
    built.model,
    built.externalData === null ? {} : { externalData: [built.externalData] },
  );
  return { session, weights, built };
}

function sequence(length: number, vocabulary: number, salt: number): number[] {
  return Array.from({ length }, (_, i) => (i * 37 + salt * 11 + 5) % vocabulary);
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

describe('Qwen2 decoder in ONNX', () => {
  const variants: [string, DecoderSpec][] = [
    ['grouped-query attention, tied head', smallSpec()],
    ['multi-head attention, separate head', smallSpec({ numKeyValueHeads: 4, tieWordEmbeddings: false })],
    [
      'one key/value head, wider MLP, odd vocabulary',
      smallSpec({ numKeyValueHeads: 1, intermediateSize: 96, vocabSize: 301, ropeTheta: 1_000_000 }),
    ],
  ];

  it.each(variants)('matches the reference forward pass within 1e-4 (%s)', async (_label, spec) => {
    const { session, weights } = await sessionFor(spec, 'parity');
    const ids = [sequence(9, spec.vocabSize, 1), sequence(9, spec.vocabSize, 2)];
    const input = {
      inputIds: ids,
      attentionMask: ids.map((row) => row.map(() => 1)),
      positionIds: ids.map((row) => row.map((_, i) => i)),
    };
    const { logits } = await rawForward(session, spec, input);
    const reference = referenceForward(spec, weights, input);
    const V = spec.vocabSize;
    let worst = 0;
    ids.forEach((row, b) =>
      row.forEach(
        (_, t) =>
          (worst = Math.max(
            worst,
            maxAbsDifference(
              reference[b][t],
              logits.subarray((b * row.length + t) * V, (b * row.length + t + 1) * V),
            ),
          )),
      ),
    );
    expect(worst).toBeLessThan(TOLERANCE);
    // Not vacuous: the logits vary by far more than the tolerance.
    expect(Math.max(...logits) - Math.min(...logits)).toBeGreaterThan(1);
  });

  it('decodes incrementally with the key/value cache exactly as a full recomputation', async () => {
    const spec = smallSpec();
    const { session } = await sessionFor(spec, 'cache');
    const tokens = sequence(14, spec.vocabSize, 3);
    const full = await rawForward(session, spec, {
      inputIds: [tokens],
      attentionMask: [tokens.map(() => 1)],
      positionIds: [tokens.map((_, i) => i)],
    });
    const V = spec.vocabSize;
    // Prefill 6 tokens, then one token at a time, then a 3-token chunk with a past.
    let step = await rawForward(session, spec, {
      inputIds: [tokens.slice(0, 6)],
      attentionMask: [Array(6).fill(1)],
      positionIds: [[0, 1, 2, 3, 4, 5]],
    });
    expect(maxAbsDifference(step.logits, full.logits.subarray(0, 6 * V))).toBeLessThan(TOLERANCE);
    let position = 6;
    for (; position < 11; position++) {
      step = await rawForward(session, spec, {
        inputIds: [[tokens[position]]],
        attentionMask: [Array(position + 1).fill(1)],
        positionIds: [[position]],
        past: step.present,
      });
      expect(
        maxAbsDifference(step.logits, full.logits.subarray(position * V, (position + 1) * V)),
      ).toBeLessThan(TOLERANCE);
    }
    step = await rawForward(session, spec, {
      inputIds: [tokens.slice(11, 14)],
      attentionMask: [Array(14).fill(1)],
      positionIds: [[11, 12, 13]],
      past: step.present,
    });
    expect(maxAbsDifference(step.logits, full.logits.subarray(11 * V, 14 * V))).toBeLessThan(TOLERANCE);
    expect(step.present['present.0.key'].dims).toEqual([1, spec.numKeyValueHeads, 14, spec.headDim]);
  });

  it('gives each row of a left-padded batch the logits it gets alone, through prefill and decoding', async () => {
    const spec = smallSpec();
    const { session } = await sessionFor(spec, 'padding');
    const V = spec.vocabSize;
    const rows = [sequence(4, V, 4), sequence(11, V, 5), sequence(7, V, 6)];
    const width = 11;
    const padded = rows.map((row) => [...Array(width - row.length).fill(0), ...row]);
    const mask = rows.map((row) => [...Array(width - row.length).fill(0), ...row.map(() => 1)]);
    const positions = rows.map((row) => [...Array(width - row.length).fill(1), ...row.map((_, i) => i)]);
    const batch = await rawForward(session, spec, {
      inputIds: padded,
      attentionMask: mask,
      positionIds: positions,
    });
    const nextTokens = [17, 23, 29];
    const batchStep = await rawForward(session, spec, {
      inputIds: nextTokens.map((token) => [token]),
      attentionMask: mask.map((row) => [...row, 1]),
      positionIds: rows.map((row) => [row.length]),
      past: batch.present,
    });
    for (const [r, row] of rows.entries()) {
      const alone = await rawForward(session, spec, {
        inputIds: [row],
        attentionMask: [row.map(() => 1)],
        positionIds: [row.map((_, i) => i)],
      });
      const pad = width - row.length;
      expect(
        maxAbsDifference(alone.logits, batch.logits.subarray((r * width + pad) * V, (r + 1) * width * V)),
      ).toBeLessThan(TOLERANCE);
      const aloneStep = await rawForward(session, spec, {
        inputIds: [[nextTokens[r]]],
        attentionMask: [Array(row.length + 1).fill(1)],
        positionIds: [[row.length]],
        past: alone.present,
      });
      expect(maxAbsDifference(aloneStep.logits, batchStep.logits.subarray(r * V, (r + 1) * V))).toBeLessThan(
        TOLERANCE,
      );
    }
  });

  it('decodes a row bit for bit the same whatever shares its batch and wherever its keys start, beyond 1024 columns', async () => {
    // One key/value head for four query heads: grouped-query attention must not fold the groups into one product.
    const spec = smallSpec({ numKeyValueHeads: 1 });
    const { session } = await sessionFor(spec, 'bits');
    const V = spec.vocabSize;
    const length = 1100;
    const row = sequence(length, V, 8);
    const prefill = await rawForward(session, spec, {
      inputIds: [row],
      attentionMask: [row.map(() => 1)],
      positionIds: [row.map((_, i) => i)],
    });
    /** The next token's logits with the row's cache shifted right by `shift` zero columns, among `rows` copies. */
    const decode = async (shift: number, rows: number) => {
      const past: Record<string, Tensor> = {};
      for (const [name, tensor] of Object.entries(prefill.present)) {
        const source = tensor.data as Float32Array;
        const columns = length + shift;
        const data = new Float32Array(rows * columns * spec.headDim);
        for (let r = 0; r < rows; r++) data.set(source, (r * columns + shift) * spec.headDim);
        past[name] = new Tensor('float32', data, [rows, 1, columns, spec.headDim]);
      }
      const mask = Array.from({ length: rows }, () => [
        ...Array(shift).fill(0),
        ...Array(length + 1).fill(1),
      ]);
      const { logits } = await rawForward(session, spec, {
        inputIds: Array(rows).fill([17]),
        attentionMask: mask,
        positionIds: Array(rows).fill([length]),
        past,
      });
      return Array.from(logits.subarray(0, V));
    };
    const alone = await decode(0, 1);
    for (const [shift, rows] of [
      [0, 8],
      [16, 1],
      [48, 3],
      [256, 2],
    ])
      expect(await decode(shift, rows)).toEqual(alone);
  });

  it('reads its weights from an external data file the same as when they are embedded', async () => {
    const spec = smallSpec();
    const embedded = await sessionFor(spec, 'external');
    const external = await sessionFor(spec, 'external', { external: true });
    expect(external.built.model.byteLength).toBeLessThan(embedded.built.model.byteLength / 4);
    const tokens = sequence(5, spec.vocabSize, 7);
    const input = {
      inputIds: [tokens],
      attentionMask: [tokens.map(() => 1)],
      positionIds: [tokens.map((_, i) => i)],
    };
    const a = await rawForward(embedded.session, spec, input);
    const b = await rawForward(external.session, spec, input);
    expect(maxAbsDifference(a.logits, b.logits)).toBe(0);
  });

  it('is written byte for byte the same from the same weights', () => {
    const spec = smallSpec();
    const weights = weightMap(randomQwen2Weights(spec, 'bytes'));
    expect(
      Buffer.from(buildDecoderOnnx(spec, weights).model).equals(
        Buffer.from(buildDecoderOnnx(spec, weights).model),
      ),
    ).toBe(true);
  });
});
