import { SummaryBuilder, lengthBucket } from '../../../lib/episode/summary';
import type { EpisodeResult } from '../../../lib/episode/types';

function result(documentTokens: number, scores: EpisodeResult['scores'], chunkCount = 2, recallQueries = 1): EpisodeResult {
  return { runId: 'r', episodeId: `e${documentTokens}`, rowIndex: 0, question: 'q', answer: 'a', answers: ['a'], scores, chunkCount, documentTokens, formatValidSteps: chunkCount, recallQueries };
}

describe('batch summary', () => {
  it('buckets document lengths by powers of two from 1K', () => {
    expect(lengthBucket(1)).toEqual({ bucket: '≤1K', upTo: 1024 });
    expect(lengthBucket(1024)).toEqual({ bucket: '≤1K', upTo: 1024 });
    expect(lengthBucket(1025)).toEqual({ bucket: '≤2K', upTo: 2048 });
    expect(lengthBucket(3_000_000)).toEqual({ bucket: '≤4M', upTo: 4 * 1024 * 1024 });
  });

  it('averages metrics over scored episodes only, overall and per bucket', () => {
    const builder = new SummaryBuilder();
    builder.add(result(500, { exactMatch: 1, f1: 1, subExactMatch: 1 }));
    builder.add(result(900, { exactMatch: 0, f1: 0.5, subExactMatch: 1 }, 4, 3));
    builder.add(result(5000, null));
    const summary = builder.build({ runId: 'r', dataset: 'd', invalidRows: 2, failedEpisodes: 1 });
    // Overall: 3 episodes, 2 scored; EM (1 + 0) / 2, F1 (1 + 0.5) / 2, sub-EM (1 + 1) / 2.
    expect(summary.overall).toEqual({ episodes: 3, scored: 2, exactMatch: 0.5, f1: 0.75, subExactMatch: 1 });
    expect(summary.byDocumentTokens.map((b) => [b.bucket, b.episodes, b.scored, b.f1])).toEqual([
      ['≤1K', 2, 2, 0.75],
      ['≤8K', 1, 0, 0],
    ]);
    // Chunks (2 + 4 + 2) / 3, recall queries (1 + 3 + 1) / 3.
    expect(summary.meanChunks).toBeCloseTo(8 / 3);
    expect(summary.recallQueriesPerEpisode).toBeCloseTo(5 / 3);
    expect(summary).toMatchObject({ invalidRows: 2, failedEpisodes: 1 });
  });

  it('summarises an empty run without dividing by zero', () => {
    const summary = new SummaryBuilder().build({ runId: 'r', dataset: 'd', invalidRows: 0, failedEpisodes: 0 });
    expect(summary.overall).toEqual({ episodes: 0, scored: 0, exactMatch: 0, f1: 0, subExactMatch: 0 });
    expect(summary.meanChunks).toBe(0);
  });
});
