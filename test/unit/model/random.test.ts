/** Seeds and random streams. */
import { GenerationRequestError } from '../../../lib/model/errors';
import { SamplingStream, Xoshiro128, seedKey, uniformAt } from '../../../lib/model/random';

describe('seeded random numbers', () => {
  it('maps integer seeds to themselves modulo 2^64 and hashes strings', () => {
    expect(seedKey(42)).toBe(42n);
    expect(seedKey(42n)).toBe(42n);
    expect(seedKey(-1)).toBe(2n ** 64n - 1n);
    expect(seedKey(2n ** 64n + 5n)).toBe(5n);
    expect(seedKey('42')).not.toBe(42n);
    expect(seedKey('episode-7:step-3')).toBe(seedKey('episode-7:step-3'));
    expect(() => seedKey(0.5)).toThrow(GenerationRequestError);
    expect(() => seedKey(2 ** 60)).toThrow(/not a safe integer/);
  });

  it('draws the published SplitMix64 sequence (seed 0) as its stream for key 0', () => {
    const published = [0xe220a8397b1dcdafn, 0x6e789e6aa1b965f4n, 0x06c45d188009454fn];
    expect([0, 1, 2].map((counter) => uniformAt(0n, counter))).toEqual(
      published.map((value) => Number(value >> 11n) / 2 ** 53),
    );
  });

  it('keeps its weight-initialisation values across versions (the bundled model depends on them)', () => {
    const generator = new Xoshiro128(seedKey('weights'));
    expect([generator.nextUint32(), generator.nextUint32(), generator.nextUint32()]).toEqual([
      4271873611, 3355145558, 1809203191,
    ]);
  });

  it('draws uniform numbers in [0, 1) with a roughly even spread', () => {
    const key = seedKey('spread');
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 20_000; i++) {
      const value = uniformAt(key, i);
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThan(1);
      buckets[Math.floor(value * 10)] += 1;
    }
    for (const count of buckets) expect(Math.abs(count - 2000)).toBeLessThan(200);
  });

  it('resumes a stream from its serialised state', () => {
    const stream = SamplingStream.fromSeed('resume');
    stream.next();
    stream.next();
    const state = JSON.parse(JSON.stringify(stream.state()));
    const resumed = SamplingStream.fromState(state);
    expect([resumed.next(), resumed.next()]).toEqual([stream.next(), stream.next()]);
  });
});
