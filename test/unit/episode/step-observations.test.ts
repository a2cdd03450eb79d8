/**
 * What the episode steps tell their observer (the source of the generation and retrieval metrics): one
 * generation per model turn with its tokens, one retrieval per callback query, nothing for a step read back.
 */
import { generateSplits } from '../../../lib/data/distant-evidence';
import { BUNDLED_MODEL_FOLDER, loadRulePolicy, parseRulePolicyPath } from '../../../lib/episode/rule-policy';
import { EpisodeSteps, type StepObservation } from '../../../lib/episode/steps';
import {
  defaultEpisodeSettings,
  type EpisodeInputRecord,
  type EpisodeSettings,
} from '../../../lib/episode/types';
import { loadModelFolder } from '../../../lib/model';
import { createBlobStore, episodeInputKey } from '../../../lib/storage';
import { tempDir } from '../../support/stack';

const settings: EpisodeSettings = {
  ...defaultEpisodeSettings,
  chunkTokens: 128,
  memoryMaxNewTokens: 512,
  answerMaxNewTokens: 128,
};

it('reports every generation and every callback retrieval once', async () => {
  const folder = await loadModelFolder(BUNDLED_MODEL_FOLDER);
  const [row] = generateSplits(
    {
      options: {
        seed: 3,
        chunkTokens: 128,
        hops: [2],
        order: 'reverse',
        minEvidenceGap: 3,
        distractorsPerChunk: 3,
        distractorSimilarity: 0,
        vocabulary: 'words',
      },
      splits: { test: { questions: 1, chunks: [8] } },
    },
    (text) => folder.tokenizer.encodePlain(text).length,
  ).test;
  const policy = await loadRulePolicy(parseRulePolicyPath('rule:callback')!);
  const store = createBlobStore({ kind: 'fs', root: tempDir('observations') });
  const observations: StepObservation[] = [];
  const steps = new EpisodeSteps({ store, policy, observe: (observation) => observations.push(observation) });
  const ref = { runId: 'observe', episodeId: 'episode-0' };
  const input: EpisodeInputRecord = {
    id: row.id,
    rowIndex: 0,
    question: row.question,
    context: row.context,
    answers: row.answers,
  };
  await store.putJson(episodeInputKey(ref.runId, ref.episodeId), input);

  const { chunkCount } = await steps.prepare(ref, settings);
  let recalls = 0;
  for (let step = 0; step < chunkCount; step += 1)
    if ((await steps.memoryStep(ref, settings, step)).recallQuery !== null) recalls += 1;
  await steps.answer(ref, settings, chunkCount);

  const generations = observations.filter((observation) => observation.kind === 'generation');
  expect(generations.map((observation) => observation.turn)).toEqual([
    ...Array<string>(chunkCount).fill('memory'),
    'answer',
  ]);
  for (const generation of generations) expect(generation.tokens).toBeGreaterThan(0);
  expect(recalls).toBeGreaterThan(0);
  expect(observations.filter((observation) => observation.kind === 'retrieval')).toHaveLength(recalls);

  // A retried step reads its stored record back: nothing was generated or retrieved again.
  const before = observations.length;
  await steps.memoryStep(ref, settings, chunkCount - 1);
  expect(observations).toHaveLength(before);
  await store.close();
});
