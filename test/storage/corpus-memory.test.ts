/**
 * Bounded memory at corpus scale (the small CI version of bench/corpus.ts): the CLI's staging path (streamed
 * sha256s and uploads) and the workers' reading path over a sharded JSONL corpus, in a process whose V8 heap
 * (48 MiB) is far below the corpus, and whose peak RSS stays flat when the corpus triples.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeCorpus, measureInChild, type CorpusMeasurement } from '../../bench/corpus';
import { tempDir } from '../support/stack';

const MiB = 2 ** 20;

async function measure(rows: number): Promise<CorpusMeasurement & { corpusMiB: number }> {
  const work = tempDir('corpus-memory');
  try {
    const bytes = await makeCorpus(path.join(work, 'corpus'), rows, 6, 10_000);
    const measured = await measureInChild(path.join(work, 'corpus'), path.join(work, 'store'), 48);
    expect(measured.rows).toBe(rows);
    return { ...measured, corpusMiB: bytes / MiB };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

describe('a sharded corpus staged and read in bounded memory', () => {
  it('keeps peak RSS flat as the corpus grows threefold', async () => {
    const small = await measure(8_000);
    const large = await measure(24_000);
    expect(large.corpusMiB).toBeGreaterThan(200);
    // What a corpus held in memory would add, against what the process added. (The process's own RSS, a
    // Node runtime with the SDKs loaded, depends on the machine's load and is not what this test is about.)
    expect(large.peakRssMiB - small.peakRssMiB).toBeLessThan(0.2 * (large.corpusMiB - small.corpusMiB));
  }, 300_000);
});
