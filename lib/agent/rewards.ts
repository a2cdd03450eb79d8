/**
 * Rewards of RLMLR (REMEMR1.md §3), for one trajectory.
 *
 * - Outcome reward R: exact match (metrics.ts normalisation, max over gold answers) of the answer of the
 *   final turn (tags.ts rule 11: the last `\boxed{…}` outside thinking).
 * - State reward of memory turn t = format + memory gain + callback gain, each weighted (weights 1 by default):
 *   - format: 1 when the turn's format is valid (tags.ts rule 6), else 0;
 *   - memory gain: answerRecall(m_t) − answerRecall(m_(t−1)), with m_0 = no memory (recall 0) and m_t the
 *     memory after the turn, so an invalid turn, which keeps the memory, gains 0;
 *   - callback gain: max(0, answerRecall(retrieved + context) − answerRecall(context)), where `retrieved`
 *     is what this turn's recall query retrieves (shown at the next step) and `context` is what this
 *     turn's prompt showed: the question, the recalled memory, the previous memory and the chunk. The
 *     template's own wording is left out on purpose: it holds no evidence, and words such as "no" in
 *     an instruction would otherwise decide the reward of every yes/no question.
 * - State reward of the final turn = its format reward (exactly one non-empty `\boxed{}`).
 * Answer recall is whole-word and case-insensitive, maximum over the gold answers (the released code
 * used a case-sensitive substring test averaged over gold answers, and its single-line tag patterns
 * made every multi-line `<update>` score 0).
 *
 * The chain of the agent loop fixes the inputs of each turn: the previous memory of turn t is the
 * memory after turn t−1, and the recalled memory shown at turn t is what turn t−1 retrieved.
 */

import { MetricInputError } from './errors';
import { answerRecall, checkGoldAnswers, exactMatch } from './metrics';
import { parseFinalTurn, type ParsedMemoryTurn } from './tags';

export interface MemoryTurnRecord {
  /** The parsed turn: the memory after it and whether its format was valid. */
  turn: Pick<ParsedMemoryTurn, 'memory' | 'formatValid'>;
  /** The document chunk this turn read. */
  chunk: string;
  /** The text this turn's recall query retrieved (see `formatRecalled`); null without a query or a result. */
  retrieved: string | null;
}

export interface TrajectoryForRewards {
  question: string;
  goldAnswers: readonly string[];
  memoryTurns: readonly MemoryTurnRecord[];
  /** The raw text of the final turn. */
  finalText: string;
}

export interface StateRewardWeights {
  format: number;
  memoryGain: number;
  callbackGain: number;
}

export const DEFAULT_STATE_REWARD_WEIGHTS: StateRewardWeights = { format: 1, memoryGain: 1, callbackGain: 1 };

export interface MemoryTurnReward {
  format: number;
  memoryGain: number;
  callbackGain: number;
  /** weights.format · format + weights.memoryGain · memoryGain + weights.callbackGain · callbackGain */
  total: number;
}

export interface TrajectoryStateRewards {
  memoryTurns: MemoryTurnReward[];
  finalTurn: { format: number; total: number };
}

/** R: 1 when the final turn's answer matches a gold answer exactly (after normalisation), else 0. */
export function outcomeReward(finalText: string, goldAnswers: readonly string[]): number {
  return exactMatch(parseFinalTurn(finalText).answer, goldAnswers);
}

/** The state rewards r(t) of every turn of one trajectory (module comment). */
export function stateRewards(
  trajectory: TrajectoryForRewards,
  weights: StateRewardWeights = DEFAULT_STATE_REWARD_WEIGHTS,
): TrajectoryStateRewards {
  const golds = trajectory.goldAnswers;
  checkGoldAnswers(golds);
  for (const key of ['format', 'memoryGain', 'callbackGain'] as const) {
    if (!Number.isFinite(weights[key])) {
      throw new MetricInputError(`state reward weight ${key} must be a finite number, got ${weights[key]}`);
    }
  }
  const recallOf = (...parts: Array<string | null>): number =>
    answerRecall(parts.filter((part): part is string => part !== null).join('\n'), golds);

  const memoryTurns: MemoryTurnReward[] = [];
  let previousMemory: string | null = null;
  let recalled: string | null = null;
  for (const record of trajectory.memoryTurns) {
    const memory = record.turn.memory;
    const format = record.turn.formatValid ? 1 : 0;
    const memoryGain = recallOf(memory) - recallOf(previousMemory);
    let callbackGain = 0;
    if (record.retrieved !== null) {
      const context = [trajectory.question, recalled, previousMemory, record.chunk];
      callbackGain = Math.max(0, recallOf(record.retrieved, ...context) - recallOf(...context));
    }
    memoryTurns.push({
      format,
      memoryGain,
      callbackGain,
      total: weights.format * format + weights.memoryGain * memoryGain + weights.callbackGain * callbackGain,
    });
    previousMemory = memory;
    recalled = record.retrieved;
  }
  const finalFormat = parseFinalTurn(trajectory.finalText).formatValid ? 1 : 0;
  return { memoryTurns, finalTurn: { format: finalFormat, total: weights.format * finalFormat } };
}
