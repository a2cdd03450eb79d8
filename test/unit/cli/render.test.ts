/** The results tables name the metrics mode that produced their numbers. */
import { answersTable, summaryTable } from '../../../cli/render';
import { stepsTable } from '../../../cli/train';
import type { BatchSummary } from '../../../lib/episode/summary';
import type { EpisodeResult } from '../../../lib/episode/types';

const totals = { episodes: 1, scored: 1, exactMatch: 1, f1: 1, subExactMatch: 1 };
const summary = (metricsMode?: BatchSummary['metricsMode']): BatchSummary => ({
  runId: 'r',
  dataset: 'd',
  ...(metricsMode === undefined ? {} : { metricsMode }),
  overall: totals,
  byDocumentTokens: [{ bucket: '≤1K', upTo: 1024, ...totals }],
  invalidRows: 0,
  failedEpisodes: 0,
  meanChunks: 2,
  recallQueriesPerEpisode: 0,
});
const row = (metricsMode?: EpisodeResult['metricsMode']): EpisodeResult => ({
  runId: 'r',
  episodeId: 'e',
  rowIndex: 0,
  question: 'Who founded the Varn Institute?',
  answer: 'Elsa Morrow',
  answers: ['Elsa Morrow'],
  scores: { exactMatch: 1, f1: 1, subExactMatch: 1 },
  ...(metricsMode === undefined ? {} : { metricsMode }),
  chunkCount: 2,
  documentTokens: 100,
  formatValidSteps: 2,
  recallQueries: 0,
});

describe('results tables', () => {
  it('head the summary columns with the mode', () => {
    const official = summaryTable(summary('hotpotqa-official'));
    for (const label of [
      'EM (hotpotqa-official) %',
      'F1 (hotpotqa-official) %',
      'sub-EM (hotpotqa-official) %',
    ])
      expect(official).toContain(label);
    // Summaries written before the mode was kept are project scores.
    expect(summaryTable(summary())).toContain('EM (project) %');
    expect(summaryTable(summary('mixed'))).toContain('EM (mixed modes) %');
  });

  it('head the answer columns with the mode, unabridged', () => {
    const official = answersTable([row('hotpotqa-official')], 5);
    expect(official).toContain('(hotpotqa-official)');
    expect(official).not.toContain('…');
    expect(answersTable([row()], 5)).toContain('(project)');
  });

  it('head the dev columns of the training steps table with the mode', () => {
    const step = {
      step: 1,
      mode: 'grpo' as const,
      policyVersion: 'v',
      weightsDigest: 'd',
      rollouts: null,
      update: { loss: 0, kl: 0, clipFraction: 0, entropy: 0 },
      evaluation: { exactMatch: 0.5, f1: 0.5, episodes: 2, metricsMode: 'hotpotqa-official' as const },
      seconds: { rollouts: 0, scoring: 0, update: 0, checkpoint: 0, export: 0, evaluation: 0 },
    } as unknown as Parameters<typeof stepsTable>[0][number];
    const table = stepsTable([step]);
    expect(table).toContain('dev EM (hotpotqa-official)');
    expect(table).toContain('dev F1 (hotpotqa-official)');
  });
});
