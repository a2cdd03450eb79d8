import { TRACE_COLUMNS, toTraceRow, traceColumnData, traceParquetSchema, traceShardFileName } from '../../../lib/export/trace-rows';
import type { EpisodeResult, MemoryStepRecord } from '../../../lib/episode/types';

const result: EpisodeResult = {
  runId: 'r',
  episodeId: 'row-000000004',
  rowIndex: 4,
  question: 'Who?',
  answer: 'Elsa',
  answers: ['Elsa'],
  scores: null,
  chunkCount: 3,
  documentTokens: 300,
  formatValidSteps: 3,
  recallQueries: 1,
};

const step: MemoryStepRecord = {
  step: 2,
  memory: 'Elsa wrote the letter.',
  recallQuery: 'who wrote the letter',
  recalled: [
    { step: 0, text: 'a letter was found', score: 1.5 },
    { step: 1, text: 'Elsa was there', score: 0.25 },
  ],
  formatValid: false,
  issues: ['missing </update>'],
  response: '<update>Elsa wrote the letter.',
  tokenIds: [5, 6, 7, 8],
  logProbs: [0, 0, 0, 0],
  promptTokens: 120,
  finishReason: 'length',
  sampling: { temperature: 1, topP: 1, topK: 0, seed: 's', policyVersion: 'run.step-2' },
};

describe('exported memory trace rows', () => {
  it('carry what the step read, wrote and recalled, with token counts and the policy version', () => {
    expect(toTraceRow(result, step)).toEqual({
      run_id: 'r',
      episode_id: 'row-000000004',
      row_index: 4,
      step: 2,
      memory: 'Elsa wrote the letter.',
      recall_query: 'who wrote the letter',
      recalled_steps: [0, 1],
      recalled_texts: ['a letter was found', 'Elsa was there'],
      recalled_scores: [1.5, 0.25],
      format_valid: false,
      issues: ['missing </update>'],
      response: '<update>Elsa wrote the letter.',
      generated_tokens: 4,
      prompt_tokens: 120,
      finish_reason: 'length',
      policy_version: 'run.step-2',
    });
    const { sampling: _omitted, ...older } = step;
    expect(toTraceRow(result, { ...older, memory: null, recallQuery: null, recalled: [] })).toMatchObject({
      memory: null,
      recall_query: null,
      recalled_steps: [],
      policy_version: null,
    });
  });

  it('fill every column of the schema, INT64 as bigint, lists as 3-level LISTs', () => {
    const data = traceColumnData([toTraceRow(result, step)]);
    expect(data.map((column) => column.name)).toEqual(TRACE_COLUMNS.map((column) => column.name));
    expect(data.find((column) => column.name === 'row_index')?.data).toEqual([4n]);
    const schema = traceParquetSchema();
    expect(schema[0]).toEqual({ name: 'root', num_children: TRACE_COLUMNS.length });
    const steps = schema.findIndex((element) => element.name === 'recalled_steps');
    expect(schema.slice(steps, steps + 3).map((element) => element.type ?? element.converted_type)).toEqual(['LIST', undefined, 'INT32']);
    expect(schema.find((element) => element.name === 'format_valid')?.type).toBe('BOOLEAN');
    expect(traceShardFileName(12, 'parquet')).toBe('traces/part-00012.parquet');
  });
});
