import {
  layEndToEnd,
  replicationChart,
  replicationMarkdown,
  summarizeVariant,
  trainingCurvesChart,
} from '../../../lib/replication/table';
import { parseReplicationSpec, policyAtSeed } from '../../../lib/replication/spec';
import type { LengthScores } from '../../../lib/episode/summary';

const line = (chunks: number, exactMatch: number, f1 = exactMatch): LengthScores => ({
  chunks,
  documentTokens: chunks * 128,
  episodes: 4,
  exactMatch,
  f1,
  recallQueries: 0.5,
});

/** A valid spec's fields other than its seeds and variants. */
const SPEC_WITHOUT_VARIANTS = {
  format: 'rememr1-replication/1',
  benchmark: {
    seed: 1,
    questions: 2,
    chunks: [4],
    chunkTokens: 128,
    hops: [2],
    order: 'random',
    minEvidenceGap: 1,
    distractorsPerChunk: 3,
    distractorSimilarity: 0,
    vocabulary: 'words',
    split: 'test',
  },
  episode: { memoryTokens: 64, answerTokens: 32, temperature: 0.7, topP: 0.95 },
};

describe('replication table', () => {
  it('gives the mean and the range of EM over seeds, per length', () => {
    const summary = summarizeVariant('model', 'model', [
      { seed: 1, byLength: [line(4, 0.5), line(8, 0.25)] },
      { seed: 2, byLength: [line(4, 0.75), line(8, 0)] },
      { seed: 3, byLength: [line(4, 1), line(8, 0.5)] },
    ]);
    expect(
      summary.cells.map((cell) => [cell.chunks, cell.exactMatch, cell.exactMatchMin, cell.exactMatchMax]),
    ).toEqual([
      [4, 0.75, 0.5, 1],
      [8, 0.25, 0, 0.5],
    ]);
  });

  it('leaves out a length that some seed did not run', () => {
    const summary = summarizeVariant('m', 'm', [
      { seed: 1, byLength: [line(4, 1), line(8, 1)] },
      { seed: 2, byLength: [line(4, 0)] },
    ]);
    expect(summary.cells.map((cell) => cell.chunks)).toEqual([4]);
  });

  it('writes one row per variant, the range only when there are several seeds, and names the metric', () => {
    const sampled = summarizeVariant('a', 'sampled', [
      { seed: 1, byLength: [line(4, 0.5)] },
      { seed: 2, byLength: [line(4, 1)] },
    ]);
    const rule = summarizeVariant('b', 'rule', [{ seed: 1, byLength: [line(4, 1), line(8, 0.25, 0.5)] }]);
    const markdown = replicationMarkdown([sampled, rule], 'official');
    expect(markdown).toContain('| EM % (official), mean (range) over seeds | 4 chunks | 8 chunks |');
    expect(markdown).toContain('| sampled | 75.0 (50.0–100.0) | – |');
    expect(markdown).toContain('| rule | 100.0 | 25.0 |');
    expect(markdown).toContain('| rule | 100.0 | 50.0 |');
    expect(replicationChart([sampled, rule], 'EM')).toMatch(/^<svg[\s\S]*sampled[\s\S]*<\/svg>$/);
  });

  it('refuses a spec with a repeated variant id or a bad field in one line', () => {
    const spec = {
      ...SPEC_WITHOUT_VARIANTS,
      seeds: [1],
      variants: [
        { id: 'a', label: 'A', policy: 'rule:forward' },
        { id: 'a', label: 'B', policy: 'rule:callback' },
      ],
    };
    expect(() => parseReplicationSpec(spec, 'spec.json')).toThrow(
      'spec.json: not a replication spec: variant id "a" appears twice',
    );
    expect(() => parseReplicationSpec({ ...spec, seeds: [] }, 'spec.json')).toThrow(
      /^spec\.json: not a replication spec at seeds: /,
    );
    expect(
      parseReplicationSpec({ ...spec, variants: [spec.variants[0]] }, 'spec.json').variants[0],
    ).toMatchObject({ mode: 'rememr1', callback: true });
  });

  it('takes one policy per seed when a variant lists them, and refuses a list of another length', () => {
    const base = { ...SPEC_WITHOUT_VARIANTS, seeds: [1, 2] };
    const spec = parseReplicationSpec(
      { ...base, variants: [{ id: 'trained', label: 'T', policy: ['models/s1', 'models/s2'] }] },
      'spec.json',
    );
    expect([0, 1].map((index) => policyAtSeed(spec.variants[0], index))).toEqual(['models/s1', 'models/s2']);
    expect(() =>
      parseReplicationSpec(
        { ...base, variants: [{ id: 'trained', label: 'T', policy: ['models/s1'] }] },
        'spec.json',
      ),
    ).toThrow(
      'spec.json: not a replication spec at variants.0.policy: variant "trained" lists 1 policies for 2 seeds; give one per seed',
    );
  });
});

describe('training curves', () => {
  const warmStart = {
    label: 'warm start',
    steps: [
      { step: 1, loss: 1.7, devExactMatch: null },
      { step: 2, loss: 1.0, devExactMatch: 0 },
    ],
  };
  const grpo = { label: 'GRPO', steps: [{ step: 1, loss: 0.2, devExactMatch: 0.25 }] };

  it("lays runs end to end: a run from another's last step continues its x axis", () => {
    const placed = layEndToEnd([warmStart, grpo]);
    expect(placed.map((curve) => curve.points.map((point) => point.x))).toEqual([[1, 2], [3]]);
  });

  it('draws loss and dev EM of every run', () => {
    const svg = trainingCurvesChart([warmStart, grpo], 'Training curves');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('warm start');
    expect(svg).toContain('GRPO');
    expect(svg).toContain('dev exact match %');
  });
});
