/** A training run's input is refused, in one line, before it starts anything. */
import { defaultEpisodeSettings } from '../../../lib/episode/types';
import { defaultUpdateSettings } from '../../../lib/training/update';
import { firingRunId, inputProblem, type TrainingRunInput } from '../../../workflows/training';
import { checkId } from '../../../lib/storage';

const grpo: TrainingRunInput = {
  runId: 'r',
  mode: 'grpo',
  basePolicy: 'base',
  steps: 2,
  seed: 1,
  update: defaultUpdateSettings,
  grpo: {
    datasetKey: 'd.jsonl',
    dataset: 'd',
    questionsPerStep: 2,
    groupSize: 4,
    alpha: 0.8,
    normalizeStd: false,
    episode: defaultEpisodeSettings,
    width: 4,
  },
  runtime: {
    taskQueues: { orchestration: 'o', inference: 'i', trainer: 't' },
    activities: {} as TrainingRunInput['runtime']['activities'],
  },
};

it.each([
  ['a usable GRPO run', grpo, null],
  ['no steps', { ...grpo, steps: 0 }, 'steps must be an integer ≥ 1, got 0'],
  [
    'G < 2',
    { ...grpo, grpo: { ...grpo.grpo!, groupSize: 1 } },
    'group size must be at least 2 (GRPO compares rollouts), got 1',
  ],
  [
    'α outside [0, 1]',
    { ...grpo, grpo: { ...grpo.grpo!, alpha: 1.5 } },
    'alpha must be in [0, 1] (1 = outcome reward only), got 1.5',
  ],
  [
    'GRPO without its settings',
    { ...grpo, grpo: undefined },
    'a GRPO run needs its grpo settings (dataset, G, α)',
  ],
  [
    'supervised without traces',
    { ...grpo, mode: 'sft' as const, grpo: undefined },
    'a supervised run needs its traces',
  ],
])('%s', (_label, input, expected) => {
  expect(inputProblem(input)).toBe(expected);
});

it('gives each scheduled firing a run id of its own, valid as a blob-store id', () => {
  const id = firingRunId('nightly', new Date('2026-11-23T03:00:07.123Z'));
  expect(id).toBe('nightly.20261123-030007');
  expect(checkId('training run id', id)).toBe(id);
  expect(firingRunId('nightly', new Date('2026-11-24T03:00:07Z'))).not.toBe(id);
});
