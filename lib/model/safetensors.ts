/**
 * A small, strict reader and writer for the safetensors format (https://github.com/huggingface/safetensors):
 * an 8-byte little-endian header length N, N bytes of JSON header, then the tensor bytes. The header maps
 * each tensor name to `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the byte buffer
 * after the header) and may hold a `__metadata__` object of strings.
 *
 * Checked on read, as the reference implementation does: the header fits in the file and is a JSON object,
 * every dtype is known, every shape is a list of non-negative integers, every tensor's byte length equals
 * its element count times its element size, the tensors tile the byte buffer exactly (no gap, no overlap,
 * nothing left over).
 */
import { endianness } from 'node:os';
import { SafetensorsError } from './errors';

const BYTES_PER_ELEMENT = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
} as const;

export type SafetensorsDtype = keyof typeof BYTES_PER_ELEMENT;

/** One tensor of a parsed file: its bytes are a view into the file's buffer (no copy). */
export interface SafetensorsEntry {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

/** A float32 tensor to write. */
export interface Float32TensorData {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** The header size the reference implementation refuses to go beyond (100 MB). */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';

function assertLittleEndianHost(): void {
  if (endianness() !== 'LE') {
    throw new SafetensorsError(
      'safetensors tensors are little-endian; this host is big-endian and is not supported',
    );
  }
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

function isDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(BYTES_PER_ELEMENT, value);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** A parsed safetensors file. */
export class SafetensorsFile {
  constructor(
    /** Where the bytes came from, used in error messages. */
    readonly source: string,
    readonly tensors: ReadonlyMap<string, SafetensorsEntry>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  /** Tensor names in file order (by offset). */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  shapeOf(name: string): readonly number[] {
    return this.entry(name).shape;
  }

  entry(name: string): SafetensorsEntry {
    const entry = this.tensors.get(name);
    if (entry === undefined) {
      throw new SafetensorsError(`${this.source}: no tensor named "${name}"`);
    }
    return entry;
  }

  /**
   * The tensor as float32 values. F32 data aligned to 4 bytes is returned as a view of the file's buffer;
   * F16, BF16 and F64 are converted. Integer dtypes are refused.
   */
  float32(name: string): Float32Array {
    const { dtype, bytes } = this.entry(name);
    switch (dtype) {
      case 'F32':
        if (bytes.byteOffset % 4 === 0) {
          return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
        }
        return new Float32Array(bytes.slice().buffer);
      case 'F64': {
        const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
        return Float32Array.from(
          new Float64Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 8),
        );
      }
      case 'F16':
        return halfToFloat32(bytes, decodeFloat16);
      case 'BF16':
        return halfToFloat32(bytes, decodeBfloat16);
      default:
        throw new SafetensorsError(
          `${this.source}: tensor "${name}" has dtype ${dtype}; a floating-point dtype was expected`,
        );
    }
  }
}

function halfToFloat32(bytes: Uint8Array, decode: (bits: number) => number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength / 2);
  for (let i = 0; i < out.length; i++) out[i] = decode(view.getUint16(2 * i, true));
  return out;
}

const bfloatScratch = new DataView(new ArrayBuffer(4));
function decodeBfloat16(bits: number): number {
  bfloatScratch.setUint32(0, bits << 16, false);
  return bfloatScratch.getFloat32(0, false);
}

function decodeFloat16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** Parses and validates a safetensors buffer. `source` names it in error messages. */
export function parseSafetensors(buffer: Uint8Array, source = 'safetensors data'): SafetensorsFile {
  assertLittleEndianHost();
  const fail: (problem: string) => never = (problem) => {
    throw new SafetensorsError(`${source}: ${problem}`);
  };
  if (buffer.byteLength < 8)
    fail(`file is ${buffer.byteLength} bytes; a safetensors file starts with an 8-byte header length`);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, buffer.byteLength - 8))) {
    fail(
      `header length ${headerLength} does not fit in the ${buffer.byteLength}-byte file (or exceeds ${MAX_HEADER_BYTES} bytes)`,
    );
  }
  const headerEnd = 8 + Number(headerLength);
  const headerText = new TextDecoder('utf-8', { fatal: false }).decode(buffer.subarray(8, headerEnd));
  if (!headerText.startsWith('{')) fail('header is not a JSON object (it must start with "{")');
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (error) {
    fail(`header is not valid JSON (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    fail('header is not a JSON object');
  const dataLength = buffer.byteLength - headerEnd;
  const metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number; entry: SafetensorsEntry }[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        fail(`${METADATA_KEY} must be an object of strings`);
      for (const [key, text] of Object.entries(value as Record<string, unknown>)) {
        if (typeof text !== 'string') fail(`${METADATA_KEY}.${key} must be a string`);
        metadata[key] = text as string;
      }
      continue;
    }
    if (typeof value !== 'object' || value === null) fail(`tensor "${name}" must be described by an object`);
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (!isDtype(dtype))
      fail(
        `tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}; expected one of ${Object.keys(BYTES_PER_ELEMENT).join(', ')}`,
      );
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger))
      fail(`tensor "${name}" has shape ${JSON.stringify(shape)}; expected a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
      fail(
        `tensor "${name}" has data_offsets ${JSON.stringify(offsets)}; expected [begin, end] as non-negative integers`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLength)
      fail(`tensor "${name}" spans bytes [${begin}, ${end}) outside the ${dataLength}-byte data section`);
    const typedDtype = dtype as SafetensorsDtype;
    const expectedBytes = elementCount(shape as number[]) * BYTES_PER_ELEMENT[typedDtype];
    if (end - begin !== expectedBytes) {
      fail(
        `tensor "${name}" (${typedDtype}, shape [${(shape as number[]).join(', ')}]) needs ${expectedBytes} bytes but its data_offsets span ${end - begin}`,
      );
    }
    const entry: SafetensorsEntry = {
      dtype: typedDtype,
      shape: [...(shape as number[])],
      bytes: buffer.subarray(headerEnd + begin, headerEnd + end),
    };
    spans.push({ name, begin, end, entry });
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const span of spans) {
    if (span.begin !== covered) {
      fail(
        span.begin < covered
          ? `tensor "${span.name}" overlaps the tensor before it`
          : `bytes [${covered}, ${span.begin}) of the data section belong to no tensor`,
      );
    }
    covered = span.end;
  }
  if (covered !== dataLength)
    fail(`bytes [${covered}, ${dataLength}) at the end of the data section belong to no tensor`);
  return new SafetensorsFile(source, new Map(spans.map((span) => [span.name, span.entry])), metadata);
}

/**
 * Serialises float32 tensors. Tensors are written in name order and the header is padded with spaces to a
 * multiple of 8 bytes, so equal inputs give byte-identical files and the data section stays aligned.
 */
export function serializeSafetensors(
  tensors: Readonly<Record<string, Float32TensorData>>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  assertLittleEndianHost();
  const names = Object.keys(tensors).sort();
  // No prototype, so a tensor named "__proto__" is an ordinary key.
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (Object.keys(metadata).length > 0) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY)
      throw new SafetensorsError(`"${METADATA_KEY}" is reserved and cannot name a tensor`);
    const { shape, data } = tensors[name];
    if (!shape.every((dim) => isNonNegativeInteger(dim)))
      throw new SafetensorsError(
        `tensor "${name}" has shape [${shape.join(', ')}]; expected non-negative integers`,
      );
    if (elementCount(shape) !== data.length) {
      throw new SafetensorsError(
        `tensor "${name}" has shape [${shape.join(', ')}] (${elementCount(shape)} elements) but ${data.length} values`,
      );
    }
    header[name] = { dtype: 'F32', shape: [...shape], data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const padding = (8 - (headerBytes.byteLength % 8)) % 8;
  if (padding > 0) headerBytes = Buffer.concat([headerBytes, Buffer.alloc(padding, 0x20)]);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let cursor = 8 + headerBytes.byteLength;
  for (const name of names) {
    const { data } = tensors[name];
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), cursor);
    cursor += data.byteLength;
  }
  return out;
}
