/**
 * Scoring of rollout groups on hand-made records (test/support/rollouts.ts), against numbers worked out by hand
 * from REMEMR1.md §3–§4. Gold answer "Elsa Morrow": answer recall = fraction of {elsa, morrow} in a text.
 *
 * Rollout A: t0 memory "Elsa Morrow was a chemist."   r = format 1 + gain (1 − 0) + callback 0 = 2
 *            t1 memory "A chemist moved to Varn."     r = 1 + (0 − 1) + 0                      = 0
 *            t2 memory "The chemist founded …", its query retrieves "Elsa Morrow was a chemist.":
 *               context (question, nothing recalled, previous memory, chunk 2) has recall 0, with the
 *               retrieved text 1: r = 1 + (0 − 0) + max(0, 1 − 0)                               = 2
 *            final "\boxed{Elsa Morrow}": R = 1, r(final) = 1
 * Rollout B: t0 invalid, no memory                    r = 0 + 0 + 0 = 0
 *            t1 "A chemist moved to Varn."             r = 1 + 0 + 0 = 1
 *            t2 "The chemist founded …", no query      r = 1 + 0 + 0 = 1
 *            final "\boxed{the chemist}": R = 0, r(final) = 1
 *
 * A_out = R − mean R = [+0.5, −0.5].
 * A_state: t0 [2, 0] − 1 = [+1, −1]; t1 [0, 1] − 0.5 = [−0.5, +0.5]; t2 [2, 1] − 1.5 = [+0.5, −0.5];
 *          final [1, 1] → [0, 0].
 * α = 0.8: A = 0.8·A_out + 0.2·A_state:
 *   A: t0 0.4 + 0.2 = 0.6, t1 0.4 − 0.1 = 0.3, t2 0.4 + 0.1 = 0.5, final 0.4
 *   B: t0 −0.6, t1 −0.3, t2 −0.5, final −0.4
 * α = 1 (MemAgent): every turn of A +0.5, of B −0.5.
 * normalizeStd, α = 1: A_out / (std + ε) with std = √((0.5² + 0.5²)/1) = √0.5: ±0.5/√0.5 = ±√0.5.
 */
import { ScoringInputError, scoreRolloutGroups, type RolloutRecords } from '../../../lib/training/scoring';
import { POLICY_VERSION, handWorkedGroup } from '../../support/rollouts';

const options = { policyVersion: POLICY_VERSION };

function advantagesByRollout(groups: RolloutRecords[][], alpha: number, normalizeStd = false): number[][] {
  const { batch } = scoreRolloutGroups(groups, { ...options, alpha, normalizeStd });
  const byRollout: number[][] = [];
  for (const sequence of batch.sequences) {
    byRollout[sequence.rollout] ??= [];
    byRollout[sequence.rollout][sequence.turn] = sequence.advantage;
  }
  return byRollout;
}

describe('scoring rollout groups', () => {
  it('gives the multi-level advantages worked out by hand (α = 0.8)', () => {
    const [a, b] = advantagesByRollout([handWorkedGroup()], 0.8);
    [0.6, 0.3, 0.5, 0.4].forEach((expected, turn) => expect(a[turn]).toBeCloseTo(expected, 12));
    [-0.6, -0.3, -0.5, -0.4].forEach((expected, turn) => expect(b[turn]).toBeCloseTo(expected, 12));
  });

  it('reduces to the outcome advantage at α = 1 (MemAgent), optionally divided by the group std', () => {
    const [a, b] = advantagesByRollout([handWorkedGroup()], 1);
    expect(a.map((value) => +value.toFixed(12))).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect(b.map((value) => +value.toFixed(12))).toEqual([-0.5, -0.5, -0.5, -0.5]);
    const [scaledA, scaledB] = advantagesByRollout([handWorkedGroup()], 1, true);
    for (const value of scaledA) expect(value).toBeCloseTo(Math.SQRT1_2, 5);
    for (const value of scaledB) expect(value).toBeCloseTo(-Math.SQRT1_2, 5);
  });

  it('makes one sequence per turn carrying its prompt ids, generated ids and sampling log-probs', () => {
    const groups = [handWorkedGroup('q1'), handWorkedGroup('q2')];
    const { batch, stats } = scoreRolloutGroups(groups, options);
    expect(batch.format).toBe('rememr1-training-batch/1');
    expect(batch.policyVersion).toBe(POLICY_VERSION);
    expect(batch.sequences).toHaveLength(2 * 2 * 4);
    expect(batch.sequences.map(({ group, rollout, turn }) => `${group}.${rollout}.${turn}`).slice(0, 9)).toEqual([
      '0.0.0', '0.0.1', '0.0.2', '0.0.3', '0.1.0', '0.1.1', '0.1.2', '0.1.3', '1.0.0',
    ]);
    const step1 = groups[0][1].memorySteps[1];
    expect(batch.sequences[5]).toMatchObject({ promptIds: step1.promptIds, responseIds: step1.tokenIds, samplingLogProbs: step1.logProbs });
    const final = groups[0][0].answer;
    expect(batch.sequences[3]).toMatchObject({ promptIds: final.promptIds, responseIds: final.tokenIds, samplingLogProbs: final.logProbs });
    // A group's advantages are centred: they sum to 0 at every turn.
    for (let turn = 0; turn < 4; turn += 1) {
      const sum = batch.sequences.filter((s) => s.group === 1 && s.turn === turn).reduce((total, s) => total + s.advantage, 0);
      expect(sum).toBeCloseTo(0, 12);
    }

    expect(stats).toMatchObject({ groups: 2, rollouts: 4, sequences: 16, accuracy: 0.5, uniformOutcomeGroups: 0 });
    // Per-rollout means, then the mean over rollouts: A (2 + 0 + 2)/3, B (0 + 1 + 1)/3 → 1.
    expect(stats.reward.outcome).toBe(0.5);
    expect(stats.reward.memoryTurn).toBeCloseTo(1, 12);
    expect(stats.reward.format).toBeCloseTo(5 / 6, 12);
    expect(stats.reward.memoryGain).toBeCloseTo(0, 12);
    expect(stats.reward.callbackGain).toBeCloseTo(1 / 6, 12);
    expect(stats.reward.finalTurn).toBe(1);
    expect(stats.callbackRate).toBeCloseTo(1 / 6, 12);
    expect(stats.responseTokens).toEqual({ memoryTurn: 2, finalTurn: 1, max: 2 });
  });

  it('counts groups whose rollouts all got the same outcome', () => {
    const group = handWorkedGroup();
    group[1] = { ...group[1], answer: { ...group[1].answer, response: '\\boxed{Elsa Morrow}' } };
    const { stats } = scoreRolloutGroups([group], options);
    expect(stats.uniformOutcomeGroups).toBe(1);
    expect(stats.accuracy).toBe(1);
  });

  it('refuses what cannot be scored, with one clear line', () => {
    const reject = (groups: RolloutRecords[][], message: string) => {
      expect(() => scoreRolloutGroups(groups, options)).toThrow(new ScoringInputError(message));
    };
    reject([], 'no question groups to score');
    reject([handWorkedGroup().slice(0, 1)], 'group 0 has 1 rollout(s); GRPO compares the rollouts of a question, so G must be at least 2');

    const noAnswers = handWorkedGroup().map((rollout) => ({ ...rollout, answers: [] }));
    reject([noAnswers], 'rollout episode q.g0 has no gold answers; rollouts are scored against them');

    const older = handWorkedGroup();
    const { promptIds: _dropped, ...withoutIds } = older[1].memorySteps[2];
    older[1].memorySteps[2] = withoutIds;
    reject([older], 'rollout episode q.g1 memory step 2 has no prompt ids (a record written before rollouts kept them); sample the rollout again');

    const evaluation = handWorkedGroup();
    const sampled = evaluation[0].answer.sampling;
    if (sampled === undefined) throw new Error('the hand-made answer records its sampling');
    evaluation[0].answer = { ...evaluation[0].answer, sampling: { ...sampled, temperature: 0.7, topP: 0.95 } };
    reject([evaluation], 'rollout episode q.g0 final turn was sampled at temperature 0.7, top-p 0.95, top-k 0; rollouts need temperature 1, top-p 1, top-k 0');

    expect(() => scoreRolloutGroups([handWorkedGroup()], { policyVersion: 'v4' })).toThrow(
      new ScoringInputError('rollout episode q.g0 memory step 0 was sampled by policy version v3, not by policy version v4'),
    );

    const mixed = [handWorkedGroup()[0], { ...handWorkedGroup()[1], question: 'Where is Varn?' }];
    reject([mixed], 'group 0 mixes questions: rollout episode q.g1 differs from q.g0');
  });
});
