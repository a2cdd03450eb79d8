/**
 * Hand-made rollout records of one question (no model): two rollouts over three chunks whose rewards and
 * advantages are worked out by hand in test/unit/training/scoring.test.ts.
 */
import type { AnswerRecord, MemoryStepRecord, TurnSampling } from '../../lib/episode/types';
import type { RolloutRecords } from '../../lib/training/scoring';

export const QUESTION = 'Who founded the Varn Institute?';
export const ANSWERS = ['Elsa Morrow'];
export const CHUNKS = ['Elsa Morrow was a chemist.', 'The chemist moved to Varn.', 'The Varn Institute was founded by the chemist.'];
export const POLICY_VERSION = 'v3';

export interface TurnSpec {
  memory: string | null;
  formatValid: boolean;
  recallQuery?: string;
  recalled?: MemoryStepRecord['recalled'];
}

function sampling(episodeId: string, step: number | 'final'): TurnSampling {
  return { temperature: 1, topP: 1, topK: 0, seed: `7/${episodeId}/${step}`, policyVersion: POLICY_VERSION };
}

/** Distinct, recognisable ids per turn: prompt 1000·(turn+1) + i, response 10·(turn+1) + i. */
export function memoryStep(episodeId: string, step: number, spec: TurnSpec): MemoryStepRecord {
  const responseIds = [10 * (step + 1), 10 * (step + 1) + 1];
  return {
    step,
    memory: spec.memory,
    recallQuery: spec.recallQuery ?? null,
    recalled: spec.recalled ?? [],
    formatValid: spec.formatValid,
    issues: [],
    response: `<update>${spec.memory ?? ''}</update>`,
    tokenIds: responseIds,
    logProbs: responseIds.map((id) => -id / 100),
    promptIds: [1000 * (step + 1), 1000 * (step + 1) + 1, 1000 * (step + 1) + 2],
    promptTokens: 3,
    finishReason: 'eos',
    sampling: sampling(episodeId, step),
  };
}

export function answerRecord(episodeId: string, response: string, turn: number): AnswerRecord {
  return {
    response,
    answer: null,
    formatValid: true,
    tokenIds: [10 * (turn + 1)],
    logProbs: [-0.5],
    promptIds: [1000 * (turn + 1)],
    promptTokens: 1,
    sampling: sampling(episodeId, 'final'),
  };
}

/**
 * Rollout A keeps the founder's name at step 0, loses it at step 1 and brings it back with a callback at step 2,
 * then answers right; rollout B writes an invalid turn first, never learns the name and answers wrong.
 */
export function handWorkedGroup(prefix = 'q'): RolloutRecords[] {
  const a = `${prefix}.g0`;
  const b = `${prefix}.g1`;
  return [
    {
      episodeId: a,
      question: QUESTION,
      answers: ANSWERS,
      chunks: CHUNKS,
      memorySteps: [
        memoryStep(a, 0, { memory: 'Elsa Morrow was a chemist.', formatValid: true }),
        memoryStep(a, 1, { memory: 'A chemist moved to Varn.', formatValid: true }),
        memoryStep(a, 2, {
          memory: 'The chemist founded the Varn Institute.',
          formatValid: true,
          recallQuery: 'who was the chemist',
          recalled: [{ step: 0, text: 'Elsa Morrow was a chemist.', score: 0.5 }],
        }),
      ],
      answer: answerRecord(a, '\\boxed{Elsa Morrow}', 3),
    },
    {
      episodeId: b,
      question: QUESTION,
      answers: ANSWERS,
      chunks: CHUNKS,
      memorySteps: [
        memoryStep(b, 0, { memory: null, formatValid: false }),
        memoryStep(b, 1, { memory: 'A chemist moved to Varn.', formatValid: true }),
        memoryStep(b, 2, { memory: 'The chemist founded the Varn Institute.', formatValid: true }),
      ],
      answer: answerRecord(b, '\\boxed{the chemist}', 3),
    },
  ];
}
