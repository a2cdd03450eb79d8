/**
 * Seeded random numbers for the model runtime.
 *
 * - Sampling uses a counter-based generator: the draw for generated token t of a request is a pure function
 *   of (seed key, t), computed with SplitMix64's mixing function. Nothing else can consume a request's
 *   numbers, so the tokens it gets do not depend on what it was batched with, and the state is two numbers.
 * - Weight initialisation uses xoshiro128** (fast 32-bit arithmetic), seeded per tensor from (seed, name).
 */
import { createHash } from 'node:crypto';
import { GenerationRequestError } from './errors';

export type Seed = number | bigint | string;

const MASK64 = (1n << 64n) - 1n;
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;

/** SplitMix64's finaliser: a bijective 64-bit mix with good avalanche. */
export function mix64(value: bigint): bigint {
  let z = value & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/**
 * Maps a user seed to a 64-bit key. Integers (number or bigint) map to themselves modulo 2^64, so `42` and
 * `42n` are the same seed; strings are hashed with SHA-256, so "42" is a different seed from 42.
 */
export function seedKey(seed: Seed): bigint {
  if (typeof seed === 'bigint') return BigInt.asUintN(64, seed);
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed)) {
      throw new GenerationRequestError(
        `seed ${seed} is not a safe integer; pass an integer, a bigint or a string`,
      );
    }
    return BigInt.asUintN(64, BigInt(seed));
  }
  if (typeof seed === 'string') return createHash('sha256').update(seed, 'utf8').digest().readBigUInt64LE(0);
  throw new GenerationRequestError(`seed must be a number, a bigint or a string, got ${typeof seed}`);
}

/** A uniform double in [0, 1) with 53 random bits: the `counter`-th draw of the stream keyed by `key`. */
export function uniformAt(key: bigint, counter: number): number {
  const bits = mix64(key + BigInt(counter + 1) * GOLDEN_GAMMA);
  return Number(bits >> 11n) / 2 ** 53;
}

/** The serialisable state of one request's sampling stream. */
export interface SamplingStreamState {
  key: string;
  counter: number;
}

/** One request's stream of uniform draws; `state()` / `fromState` let a caller persist and resume it. */
export class SamplingStream {
  private constructor(
    private readonly key: bigint,
    private counter: number,
  ) {}

  static fromSeed(seed: Seed): SamplingStream {
    return new SamplingStream(seedKey(seed), 0);
  }

  static fromState(state: SamplingStreamState): SamplingStream {
    return new SamplingStream(BigInt(state.key), state.counter);
  }

  next(): number {
    const value = uniformAt(this.key, this.counter);
    this.counter += 1;
    return value;
  }

  state(): SamplingStreamState {
    return { key: this.key.toString(), counter: this.counter };
  }
}

/** xoshiro128**: a small, fast generator for filling weight tensors reproducibly. */
export class Xoshiro128 {
  private readonly s = new Uint32Array(4);

  /** Seeds the four words from SplitMix64 outputs of `key`, as the authors recommend. */
  constructor(key: bigint) {
    for (let i = 0; i < 2; i++) {
      const word = mix64(key + BigInt(i + 1) * GOLDEN_GAMMA);
      this.s[2 * i] = Number(word & 0xffffffffn);
      this.s[2 * i + 1] = Number(word >> 32n);
    }
    if (this.s.every((word) => word === 0)) this.s[0] = 1;
  }

  /** Seeds from a base seed and a label, so each tensor's stream is independent of the others. */
  static forLabel(seed: Seed, label: string): Xoshiro128 {
    return new Xoshiro128(mix64(seedKey(seed) ^ seedKey(label)));
  }

  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  nextFloat(): number {
    return this.nextUint32() / 2 ** 32;
  }
}

function rotl(value: number, shift: number): number {
  return (value << shift) | (value >>> (32 - shift));
}
