/**
 * Multi-level advantages of RLMLR (REMEMR1.md §4).
 *
 * Input: groups, one per question, each holding that question's rollouts (trajectories) with their
 * outcome reward R_i, the state rewards r(i,t) of their memory turns t = 0, 1, … and the state reward
 * of their final turn.
 *
 * - Outcome advantage: A_out(i) = R_i − mean of R over the group.
 * - State advantage: A_state(i,t) = r(i,t) − mean of r(j,t) over the rollouts j of the group that have
 *   a memory turn t (trajectories may be ragged, for instance when a rollout stopped early); the final
 *   turns form their own position, compared with the final turns of the group only, so a final turn is
 *   never measured against a memory turn of a longer rollout.
 * - With `normalizeStd`, each of the two differences is divided by (std + epsilon), std being the sample
 *   standard deviation (n − 1 in the denominator, as the GRPO implementations do) of the same values.
 * - A(i,t) = alpha · A_out(i) + (1 − alpha) · A_state(i,t), alpha = 0.8 by default (alpha = 1 gives the
 *   MemAgent objective). The state term is counted once (the released code doubled it by accident).
 *
 * Per-trajectory normalisation: every statistic above counts each trajectory once (one R per rollout,
 * one r per rollout and position), computed before the advantages are spread over turns and tokens.
 * Computing the group statistics over the flattened training rows instead, one row per turn, would
 * count a rollout with more turns more often; this function has no such rows to miscount. Each turn's
 * advantage then goes unchanged on every generated token of that turn ({@link spreadOverTokens}).
 *
 * Degenerate groups give 0, never NaN: a one-rollout group (the rollout is its own baseline), a
 * position only one rollout reaches, and a group whose values are all equal (checked exactly, so that
 * rounding in the mean cannot leave a tiny non-zero advantage that std normalisation would blow up).
 */

import { AdvantageInputError } from './errors';

export interface TrajectoryRewards {
  /** R_i. */
  outcome: number;
  /** r(i,t) for the memory turns, in order. */
  memoryTurns: readonly number[];
  /** The final turn's state reward; omitted when the trajectory has no final turn. */
  finalTurn?: number;
}

export interface TrajectoryAdvantages {
  /** A_out(i), before the alpha mix (for logging). */
  outcome: number;
  /** A(i,t) for the memory turns, in order. */
  memoryTurns: number[];
  /** A(i, final); present when the input had a final turn. */
  finalTurn?: number;
}

export interface AdvantageOptions {
  /** Weight of the outcome advantage, 0 … 1; default 0.8. */
  alpha?: number;
  /** Divide by the standard deviation of each level; default false (the released runs). */
  normalizeStd?: boolean;
  /** Added to the standard deviation; default 1e-6. */
  epsilon?: number;
}

export const DEFAULT_ALPHA = 0.8;
export const DEFAULT_EPSILON = 1e-6;

/** Centres (and optionally scales) `values`; see the module comment for the degenerate cases. */
function baselined(values: readonly number[], normalizeStd: boolean, epsilon: number): number[] {
  if (values.every((value) => value === values[0])) return values.map(() => 0);
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  const centred = values.map((value) => value - mean);
  if (!normalizeStd) return centred;
  const variance = centred.reduce((sum, value) => sum + value * value, 0) / (values.length - 1);
  const scale = Math.sqrt(variance) + epsilon;
  return centred.map((value) => value / scale);
}

function checkFinite(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new AdvantageInputError(`${what} must be a finite number, got ${String(value)}`);
  }
  return value;
}

/** A(i,t) for every rollout of every group; the output mirrors the input's shape. */
export function multiLevelAdvantages(
  groups: ReadonlyArray<readonly TrajectoryRewards[]>,
  options: AdvantageOptions = {},
): TrajectoryAdvantages[][] {
  const alpha = options.alpha ?? DEFAULT_ALPHA;
  if (!(alpha >= 0 && alpha <= 1))
    throw new AdvantageInputError(`alpha must be between 0 and 1, got ${alpha}`);
  const epsilon = options.epsilon ?? DEFAULT_EPSILON;
  if (!(epsilon > 0 && Number.isFinite(epsilon))) {
    throw new AdvantageInputError(`epsilon must be a finite number > 0, got ${epsilon}`);
  }
  const normalizeStd = options.normalizeStd ?? false;

  return groups.map((group, groupIndex) => {
    if (!Array.isArray(group) || group.length === 0) {
      throw new AdvantageInputError(`group ${groupIndex} has no rollouts; every group needs at least one`);
    }
    group.forEach((rollout, rolloutIndex) => {
      const where = `group ${groupIndex} rollout ${rolloutIndex}`;
      checkFinite(rollout.outcome, `${where}: outcome reward`);
      if (!Array.isArray(rollout.memoryTurns))
        throw new AdvantageInputError(`${where}: memoryTurns must be an array`);
      rollout.memoryTurns.forEach((reward: number, turn: number) =>
        checkFinite(reward, `${where}: state reward of memory turn ${turn}`),
      );
      if (rollout.finalTurn !== undefined)
        checkFinite(rollout.finalTurn, `${where}: state reward of the final turn`);
    });

    const outcome = baselined(
      group.map((rollout) => rollout.outcome),
      normalizeStd,
      epsilon,
    );
    const mix = (rollout: number, state: number): number => alpha * outcome[rollout] + (1 - alpha) * state;

    const result: TrajectoryAdvantages[] = group.map((_, rollout) => ({
      outcome: outcome[rollout],
      memoryTurns: [],
    }));
    const longest = Math.max(...group.map((rollout) => rollout.memoryTurns.length));
    for (let turn = 0; turn < longest; turn += 1) {
      const present = group.flatMap((rollout, index) => (turn < rollout.memoryTurns.length ? [index] : []));
      const state = baselined(
        present.map((index) => group[index].memoryTurns[turn]),
        normalizeStd,
        epsilon,
      );
      present.forEach((index, position) => result[index].memoryTurns.push(mix(index, state[position])));
    }
    const withFinal = group.flatMap((rollout, index) => (rollout.finalTurn === undefined ? [] : [index]));
    if (withFinal.length > 0) {
      const state = baselined(
        withFinal.map((index) => group[index].finalTurn as number),
        normalizeStd,
        epsilon,
      );
      withFinal.forEach((index, position) => {
        result[index].finalTurn = mix(index, state[position]);
      });
    }
    return result;
  });
}

/**
 * The per-token advantages of one turn: its advantage on each of its `generatedTokens` tokens (prompt
 * tokens get none; the trainer masks them).
 */
export function spreadOverTokens(advantage: number, generatedTokens: number): Float64Array {
  checkFinite(advantage, 'advantage');
  if (!Number.isSafeInteger(generatedTokens) || generatedTokens < 0) {
    throw new AdvantageInputError(`generatedTokens must be a whole number ≥ 0, got ${generatedTokens}`);
  }
  return new Float64Array(generatedTokens).fill(advantage);
}
