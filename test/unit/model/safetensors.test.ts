/** The safetensors reader and writer: round trips, the format's invariants, and each malformed file. */
import fc from 'fast-check';
import { SafetensorsError } from '../../../lib/model/errors';
import { parseSafetensors, serializeSafetensors } from '../../../lib/model/safetensors';

/** A file with the given header and data section, built by hand. */
function handMade(
  header: unknown,
  data: Uint8Array = new Uint8Array(0),
  headerText = JSON.stringify(header),
): Uint8Array {
  const headerBytes = Buffer.from(headerText, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

describe('safetensors', () => {
  it('round-trips float32 tensors and metadata', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string({ minLength: 1, maxLength: 12 }).filter((name) => name !== '__metadata__'),
          fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 5 })).chain(([rows, columns]) =>
            fc.record({
              shape: fc.constant([rows, columns]),
              values: fc.array(fc.float({ noNaN: true }), {
                minLength: rows * columns,
                maxLength: rows * columns,
              }),
            }),
          ),
          { maxKeys: 5 },
        ),
        (tensors) => {
          const input = Object.fromEntries(
            Object.entries(tensors).map(([name, { shape, values }]) => [
              name,
              { shape, data: Float32Array.from(values) },
            ]),
          );
          const bytes = serializeSafetensors(input, { format: 'pt' });
          const file = parseSafetensors(bytes);
          expect(file.metadata).toEqual({ format: 'pt' });
          expect(file.names().sort()).toEqual(Object.keys(input).sort());
          for (const [name, { shape, data }] of Object.entries(input)) {
            expect(file.shapeOf(name)).toEqual(shape);
            expect(Array.from(file.float32(name))).toEqual(Array.from(data));
          }
          expect(Buffer.from(serializeSafetensors(input, { format: 'pt' })).equals(Buffer.from(bytes))).toBe(
            true,
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('writes and reads a tensor named like an Object property', () => {
    const file = parseSafetensors(
      serializeSafetensors(Object.fromEntries([['__proto__', { shape: [1], data: Float32Array.of(2) }]])),
    );
    expect(file.names()).toEqual(['__proto__']);
    expect(Array.from(file.float32('__proto__'))).toEqual([2]);
  });

  it('pads the header so the data section starts on an 8-byte boundary, and views F32 data without copying', () => {
    const bytes = serializeSafetensors({ a: { shape: [3], data: Float32Array.of(1, 2, 3) } });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const values = parseSafetensors(bytes).float32('a');
    expect(values.buffer).toBe(bytes.buffer);
  });

  it('converts F16, BF16 and F64 to float32', () => {
    const f16 = Uint8Array.of(0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c, 0x01, 0x00); // 1, -2, +inf, smallest subnormal
    const bf16 = Uint8Array.of(0x80, 0x3f, 0x49, 0x40); // 1, 3.140625
    const f64 = new Uint8Array(Float64Array.of(0.5, -8).buffer);
    const data = new Uint8Array([...f16, ...bf16, ...f64]);
    const file = parseSafetensors(
      handMade(
        {
          h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] },
          b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] },
          d: { dtype: 'F64', shape: [2], data_offsets: [12, 28] },
        },
        data,
      ),
    );
    expect(Array.from(file.float32('h'))).toEqual([1, -2, Infinity, 2 ** -24]);
    expect(Array.from(file.float32('b'))).toEqual([1, 3.140625]);
    expect(Array.from(file.float32('d'))).toEqual([0.5, -8]);
  });

  it.each([
    ['a file shorter than the length prefix', Uint8Array.of(1, 2, 3), /starts with an 8-byte header length/],
    ['a header longer than the file', handMade({}).map((byte, i) => (i === 0 ? 200 : byte)), /does not fit/],
    ['a header that is not JSON', handMade(null, undefined, '{"a": '), /not valid JSON/],
    ['a header that is a list', handMade(null, undefined, '[1, 2]'), /must start with "\{"/],
    [
      'an unknown dtype',
      handMade({ a: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, Uint8Array.of(0)),
      /unknown dtype "F8"/,
    ],
    [
      'a negative dimension',
      handMade({ a: { dtype: 'U8', shape: [-1], data_offsets: [0, 1] } }, Uint8Array.of(0)),
      /list of non-negative integers/,
    ],
    [
      'offsets past the data',
      handMade({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] } }, Uint8Array.of(0, 0)),
      /outside the 2-byte data section/,
    ],
    [
      'a size that does not match the shape',
      handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)),
      /needs 8 bytes but its data_offsets span 4/,
    ],
    [
      'overlapping tensors',
      handMade(
        {
          a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] },
          b: { dtype: 'U8', shape: [2], data_offsets: [1, 3] },
        },
        new Uint8Array(3),
      ),
      /overlaps/,
    ],
    [
      'a gap between tensors',
      handMade({ a: { dtype: 'U8', shape: [1], data_offsets: [1, 2] } }, new Uint8Array(2)),
      /bytes \[0, 1\) of the data section belong to no tensor/,
    ],
    [
      'bytes left over',
      handMade({ a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(3)),
      /bytes \[1, 3\) at the end/,
    ],
    [
      'metadata that is not strings',
      handMade({ __metadata__: { format: 3 } }),
      /__metadata__.format must be a string/,
    ],
  ])('rejects %s', (_label, bytes, message) => {
    expect(() => parseSafetensors(bytes, 'weights.safetensors')).toThrow(SafetensorsError);
    expect(() => parseSafetensors(bytes, 'weights.safetensors')).toThrow(message);
    expect(() => parseSafetensors(bytes, 'weights.safetensors')).toThrow(/^weights.safetensors: /);
  });

  it('refuses integer tensors as floats and names the tensor', () => {
    const file = parseSafetensors(
      handMade({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)),
    );
    expect(() => file.float32('ids')).toThrow(
      /tensor "ids" has dtype I64; a floating-point dtype was expected/,
    );
    expect(() => file.float32('nope')).toThrow(/no tensor named "nope"/);
  });

  it('refuses to write a shape that does not match the values', () => {
    expect(() => serializeSafetensors({ a: { shape: [2, 2], data: new Float32Array(3) } })).toThrow(
      /\(4 elements\) but 3 values/,
    );
  });
});
