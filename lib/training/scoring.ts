/**
 * Scoring of rollout groups (REMEMR1.md §3–§4): from the stored records of the G rollouts of each question
 * to the training batch and a few statistics. Pure: the `score` activity reads the records and writes the
 * batch.
 *
 * For rollout i of a group (one question) with memory turns t = 0 … T_i − 1 and a final turn:
 *
 *   R_i                  outcome reward: exact match of the final turn's last `\boxed{…}` (rewards.ts)
 *   r(i,t)               state reward of memory turn t: format + memory gain + callback gain (rewards.ts),
 *                        where the callback term uses what turn t's recall query retrieved
 *   r(i,final)           the final turn's format reward
 *   A_out(i)             = R_i − mean_j R_j                      (÷ (std + ε) with normalizeStd)
 *   A_state(i,t)         = r(i,t) − mean_j r(j,t)                 over the rollouts j that reach turn t
 *   A_state(i,final)     = r(i,final) − mean_j r(j,final)
 *   A(i,t)               = α·A_out(i) + (1 − α)·A_state(i,t)       α = 1 is MemAgent (advantages.ts)
 *
 * Per-trajectory normalisation: each statistic counts each rollout once (one R per rollout, one r per
 * rollout and position), before the advantages are spread over turns, so a rollout of a longer document
 * (more memory turns) does not weigh more in its group's baselines. Each turn then becomes one training
 * sequence whose every generated token carries A(i,t).
 *
 * The sampling log-probs of the records are log π_old only when the turn was sampled at temperature 1 over the
 * full distribution by the batch's policy version, so that is checked for every turn.
 */
import {
  DEFAULT_STATE_REWARD_WEIGHTS,
  formatRecalled,
  multiLevelAdvantages,
  outcomeReward,
  stateRewards,
  type AdvantageOptions,
  type MemoryTurnRecord,
  type StateRewardWeights,
  type TrajectoryRewards,
} from '../agent';
import { isRolloutSampling, type AnswerRecord, type MemoryStepRecord, type TurnSampling } from '../episode/types';
import { TRAINING_BATCH_FORMAT, type TrainingBatch, type TrainingSequence } from './batch';

/** Rollouts that cannot be scored (no gold answers, G < 2, records that are not rollouts): no retry helps. */
export class ScoringInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScoringInputError';
  }
}

/** What scoring needs of one finished rollout episode, as read from the blob store. */
export interface RolloutRecords {
  episodeId: string;
  question: string;
  answers: string[];
  /** The text of the chunk each memory step read, in step order. */
  chunks: string[];
  /** The memory step records, in step order (step t at index t). */
  memorySteps: MemoryStepRecord[];
  answer: AnswerRecord;
}

export interface ScoringOptions extends AdvantageOptions {
  /** The policy version every turn must have been sampled with; the batch carries it. */
  policyVersion: string;
  stateRewardWeights?: StateRewardWeights;
}

/** Small statistics of one scored step (means over rollouts; each rollout counts once). */
export interface ScoringStats {
  groups: number;
  rollouts: number;
  sequences: number;
  /** Mean of R_i: the fraction of rollouts whose answer matched a gold answer exactly. */
  accuracy: number;
  reward: {
    /** Mean of R_i (= accuracy). */
    outcome: number;
    /** Mean over rollouts of (1/T_i)·Σ_t r(i,t), and the same for each of its three terms. */
    memoryTurn: number;
    format: number;
    memoryGain: number;
    callbackGain: number;
    /** Mean of r(i,final). */
    finalTurn: number;
  };
  /** Mean over rollouts of the fraction of their memory turns that wrote a recall query. */
  callbackRate: number;
  /** Generated tokens per turn: mean over rollouts of the per-rollout mean of memory turns, of final turns, and the longest. */
  responseTokens: { memoryTurn: number; finalTurn: number; max: number };
  /** Groups whose rollouts all got the same outcome reward (A_out = 0 for all of them). */
  uniformOutcomeGroups: number;
}

export interface ScoredBatch {
  batch: TrainingBatch;
  stats: ScoringStats;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((sum, value) => sum + value, 0) / values.length;
}

function sameAnswers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((answer, index) => answer === b[index]);
}

/** Throws unless the turn holds what an update needs and was sampled as a rollout of `policyVersion`. */
function checkTurn(
  turn: { promptIds?: number[]; tokenIds: number[]; logProbs: number[]; sampling?: TurnSampling },
  where: string,
  policyVersion: string,
): void {
  if (!Array.isArray(turn.promptIds) || turn.promptIds.length === 0) {
    throw new ScoringInputError(`${where} has no prompt ids (a record written before rollouts kept them); sample the rollout again`);
  }
  if (turn.tokenIds.length !== turn.logProbs.length) {
    throw new ScoringInputError(`${where} has ${turn.tokenIds.length} generated ids but ${turn.logProbs.length} log-probs`);
  }
  const sampling = turn.sampling;
  if (sampling === undefined) throw new ScoringInputError(`${where} does not record how it was sampled; sample the rollout again`);
  if (!isRolloutSampling(sampling)) {
    throw new ScoringInputError(
      `${where} was sampled at temperature ${sampling.temperature}, top-p ${sampling.topP}, top-k ${sampling.topK}; rollouts need temperature 1, top-p 1, top-k 0`,
    );
  }
  if (sampling.policyVersion !== policyVersion) {
    const by = sampling.policyVersion === null ? "the worker's configured model" : `policy version ${sampling.policyVersion}`;
    throw new ScoringInputError(`${where} was sampled by ${by}, not by policy version ${policyVersion}`);
  }
}

function checkGroup(group: readonly RolloutRecords[], index: number, policyVersion: string): void {
  if (group.length < 2) {
    throw new ScoringInputError(`group ${index} has ${group.length} rollout(s); GRPO compares the rollouts of a question, so G must be at least 2`);
  }
  const first = group[0];
  for (const rollout of group) {
    const episode = `rollout episode ${rollout.episodeId}`;
    if (rollout.answers.length === 0) {
      throw new ScoringInputError(`${episode} has no gold answers; rollouts are scored against them`);
    }
    if (rollout.question !== first.question || !sameAnswers(rollout.answers, first.answers)) {
      throw new ScoringInputError(`group ${index} mixes questions: ${episode} differs from ${first.episodeId}`);
    }
    if (rollout.memorySteps.length === 0) throw new ScoringInputError(`${episode} has no memory steps`);
    if (rollout.chunks.length !== rollout.memorySteps.length) {
      throw new ScoringInputError(`${episode} has ${rollout.memorySteps.length} memory steps but ${rollout.chunks.length} chunks`);
    }
    rollout.memorySteps.forEach((record, step) => {
      if (record.step !== step) throw new ScoringInputError(`${episode}: memory step ${step} is recorded as step ${record.step}`);
      checkTurn(record, `${episode} memory step ${step}`, policyVersion);
    });
    checkTurn(rollout.answer, `${episode} final turn`, policyVersion);
  }
}

/** The inputs of rewards.ts for one rollout: each memory turn's memory, format, chunk and retrieved text. */
function memoryTurnsOf(rollout: RolloutRecords): MemoryTurnRecord[] {
  return rollout.memorySteps.map((record, step) => ({
    turn: { memory: record.memory, formatValid: record.formatValid },
    chunk: rollout.chunks[step],
    retrieved: record.recallQuery === null ? null : formatRecalled(record.recalled),
  }));
}

/**
 * Rewards, multi-level advantages (module comment) and the training batch of `groups`, one group per
 * question holding its G ≥ 2 rollouts. Sequences are ordered by group, rollout, then turn (memory turns
 * 0 … T_i − 1, then the final turn as turn T_i).
 */
export function scoreRolloutGroups(groups: ReadonlyArray<readonly RolloutRecords[]>, options: ScoringOptions): ScoredBatch {
  if (groups.length === 0) throw new ScoringInputError('no question groups to score');
  groups.forEach((group, index) => checkGroup(group, index, options.policyVersion));
  const weights = options.stateRewardWeights ?? DEFAULT_STATE_REWARD_WEIGHTS;

  const scored = groups.map((group) =>
    group.map((rollout) => {
      const state = stateRewards(
        { question: rollout.question, goldAnswers: rollout.answers, memoryTurns: memoryTurnsOf(rollout), finalText: rollout.answer.response },
        weights,
      );
      return { outcome: outcomeReward(rollout.answer.response, rollout.answers), state };
    }),
  );
  const rewards: TrajectoryRewards[][] = scored.map((group) =>
    group.map(({ outcome, state }) => ({
      outcome,
      memoryTurns: state.memoryTurns.map((turn) => turn.total),
      finalTurn: state.finalTurn.total,
    })),
  );
  const advantages = multiLevelAdvantages(rewards, { alpha: options.alpha, normalizeStd: options.normalizeStd, epsilon: options.epsilon });

  const sequences: TrainingSequence[] = [];
  groups.forEach((group, groupIndex) =>
    group.forEach((rollout, rolloutIndex) => {
      const advantage = advantages[groupIndex][rolloutIndex];
      const finalAdvantage = advantage.finalTurn;
      // Every rollout was given a final turn above, so multiLevelAdvantages returns its advantage.
      if (finalAdvantage === undefined) throw new Error(`no final-turn advantage for group ${groupIndex} rollout ${rolloutIndex}`);
      rollout.memorySteps.forEach((record, turn) =>
        sequences.push({
          promptIds: record.promptIds ?? [],
          responseIds: record.tokenIds,
          samplingLogProbs: record.logProbs,
          advantage: advantage.memoryTurns[turn],
          group: groupIndex,
          rollout: rolloutIndex,
          turn,
        }),
      );
      sequences.push({
        promptIds: rollout.answer.promptIds ?? [],
        responseIds: rollout.answer.tokenIds,
        samplingLogProbs: rollout.answer.logProbs,
        advantage: finalAdvantage,
        group: groupIndex,
        rollout: rolloutIndex,
        turn: rollout.memorySteps.length,
      });
    }),
  );

  const rollouts = groups.flat();
  const flat = scored.flat();
  const perRollout = (pick: (turn: { format: number; memoryGain: number; callbackGain: number; total: number }) => number): number =>
    mean(flat.map(({ state }) => mean(state.memoryTurns.map(pick))));
  const accuracy = mean(flat.map(({ outcome }) => outcome));
  const stats: ScoringStats = {
    groups: groups.length,
    rollouts: rollouts.length,
    sequences: sequences.length,
    accuracy,
    reward: {
      outcome: accuracy,
      memoryTurn: perRollout((turn) => turn.total),
      format: perRollout((turn) => turn.format),
      memoryGain: perRollout((turn) => turn.memoryGain),
      callbackGain: perRollout((turn) => turn.callbackGain),
      finalTurn: mean(flat.map(({ state }) => state.finalTurn.total)),
    },
    callbackRate: mean(rollouts.map((rollout) => mean(rollout.memorySteps.map((record) => (record.recallQuery === null ? 0 : 1))))),
    responseTokens: {
      memoryTurn: mean(rollouts.map((rollout) => mean(rollout.memorySteps.map((record) => record.tokenIds.length)))),
      finalTurn: mean(rollouts.map((rollout) => rollout.answer.tokenIds.length)),
      max: Math.max(...sequences.map((sequence) => sequence.responseIds.length)),
    },
    uniformOutcomeGroups: scored.filter((group) => group.every(({ outcome }) => outcome === group[0].outcome)).length,
  };
  return { batch: { format: TRAINING_BATCH_FORMAT, policyVersion: options.policyVersion, sequences }, stats };
}
