import { mapOrdered } from '../../../lib/export/export-run';
import { RESULT_COLUMNS, resultColumnData, resultParquetSchema, shardFileName, toExportRow } from '../../../lib/export/result-rows';
import type { AnswerRecord, EpisodeResult } from '../../../lib/episode/types';

const result: EpisodeResult = {
  runId: 'r',
  episodeId: 'row-000000004',
  rowIndex: 4,
  question: 'Who?',
  answer: 'Elsa',
  answers: ['Elsa Morrow'],
  scores: { exactMatch: 0, f1: 0.67, subExactMatch: 1 },
  chunkCount: 3,
  documentTokens: 300,
  formatValidSteps: 3,
  recallQueries: 2,
};
const answer: AnswerRecord = {
  response: '<answer>Elsa</answer>',
  answer: 'Elsa',
  formatValid: true,
  tokenIds: [1, 2, 3],
  logProbs: [0, 0, 0],
  promptTokens: 40,
  sampling: { temperature: 0, topP: 1, topK: 0, seed: 's', policyVersion: 'run.step-3' },
};

describe('exported result rows', () => {
  it('carry the result, the raw response, token counts and the policy version', () => {
    expect(toExportRow({ ...result, id: 'q4' }, answer, { model: 'policy version run.step-3' })).toEqual({
      run_id: 'r',
      episode_id: 'row-000000004',
      row_index: 4,
      id: 'q4',
      question: 'Who?',
      answers: ['Elsa Morrow'],
      prediction: 'Elsa',
      response: '<answer>Elsa</answer>',
      exact_match: 0,
      f1: 0.67,
      sub_exact_match: 1,
      chunk_count: 3,
      document_tokens: 300,
      answer_tokens: 3,
      answer_prompt_tokens: 40,
      format_valid_steps: 3,
      callback_count: 2,
      policy_version: 'run.step-3',
      model: 'policy version run.step-3',
    });
  });

  it('are null where a value is unknown, and take the id from the input for older results', () => {
    const row = toExportRow({ ...result, scores: null, answer: null }, undefined, undefined, 'from-input');
    expect(row).toMatchObject({ id: 'from-input', prediction: null, response: null, exact_match: null, answer_tokens: null, policy_version: null, model: null });
    expect(toExportRow(result, undefined, { settings: { policyVersion: 'v1' } }).policy_version).toBe('v1');
    expect(toExportRow(result, undefined, undefined).id).toBe('row-4');
  });

  it('fill every column of the schema, INT64 as bigint', () => {
    const columns = resultColumnData([toExportRow(result, answer, undefined)]);
    expect(columns.map((column) => column.name)).toEqual(RESULT_COLUMNS.map((column) => column.name));
    expect(columns.find((column) => column.name === 'row_index')?.data).toEqual([4n]);
    // One schema element per column, plus the root and the two inner elements of the answers LIST.
    expect(resultParquetSchema()).toHaveLength(RESULT_COLUMNS.length + 3);
    expect(shardFileName(12, 'parquet')).toBe('part-00012.parquet');
  });

  it('mapOrdered keeps input order with calls in flight at once', async () => {
    async function* numbers(): AsyncGenerator<number> {
      for (let i = 0; i < 20; i += 1) yield i;
    }
    let inFlight = 0;
    let most = 0;
    const out: number[] = [];
    for await (const value of mapOrdered(numbers(), 4, async (n) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setTimeout(resolve, (20 - n) % 5));
      inFlight -= 1;
      return n * 2;
    })) {
      out.push(value);
    }
    expect(out).toEqual(Array.from({ length: 20 }, (_, i) => i * 2));
    expect(most).toBe(4);
  });
});
