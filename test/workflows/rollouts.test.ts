/**
 * Rollouts on the real dev server: episodes whose settings name an exported policy version are sampled by that
 * version on the inference worker (downloaded from the blob store through its PolicyVersionCache), record what an
 * update needs, and `score` turns the G rollouts of the question into a training batch. A version that does not
 * exist fails the episode at once.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createScoringActivities, type ScoreResult } from '../../activities/scoring';
import { generateSyntheticRows } from '../../lib/data/synthetic';
import { EpisodeSteps } from '../../lib/episode/steps';
import { rolloutEpisodeId, rolloutSettings, type EpisodeInputRecord, type MemoryStepRecord } from '../../lib/episode/types';
import { parseModelConfig } from '../../lib/model/config';
import { collectQwen2Weights } from '../../lib/model-build/qwen2-weights';
import { parseSafetensors } from '../../lib/model/safetensors';
import { episodeInputKey, episodeMemoryKey, type BlobStore } from '../../lib/storage';
import type { TrainingBatch } from '../../lib/training/batch';
import { exportPolicyVersion } from '../../lib/training/policy-versions';
import { episodeWorkflow } from '../../workflows/episode';
import { WorkerRig } from '../support/rig';
import { requireStackEnvironment, testConfig, testSettings } from '../support/stack';

describe('rollout episodes sampled by a policy version', () => {
  requireStackEnvironment();
  const config = testConfig('rollouts');
  let rig: WorkerRig;
  let store: BlobStore;
  // Versions are unique per test run: the worker's download cache lives in the project's local folder.
  const version = `rollout-${randomUUID().slice(0, 8)}`;
  const runId = `rollouts-${Date.now().toString(36)}`;
  const [row] = generateSyntheticRows({ seed: 5, questions: 1, documentsPerQuestion: 8, wordsPerDocument: 30 });
  const input: EpisodeInputRecord = { id: row.id, rowIndex: 0, question: row.question, context: row.context, answers: row.answers };
  const settings = rolloutSettings({ ...testSettings, maxChunks: 2 }, version);

  beforeAll(async () => {
    rig = await WorkerRig.start(config);
    store = rig.store;
    const folder = config.model.path;
    const modelConfig = parseModelConfig(JSON.parse(await fs.readFile(path.join(folder, 'config.json'), 'utf8')));
    const file = parseSafetensors(await fs.readFile(path.join(folder, 'model.safetensors')), 'model.safetensors');
    await exportPolicyVersion(store, version, { config: modelConfig, weights: collectQwen2Weights(modelConfig, file, 'the bundled model'), tokenizerFolder: folder });
  });

  afterAll(async () => {
    await rig?.close();
    // The worker downloads versions to {localDir}/policy-versions/{version}.
    await fs.rm(path.join(config.localDir, 'policy-versions', version), { recursive: true, force: true });
  });

  function runEpisode(episodeId: string, episodeSettings = settings) {
    return rig.client.workflow.execute(episodeWorkflow, {
      workflowId: `${runId}.${episodeId}`,
      taskQueue: config.taskQueues.orchestration,
      args: [{ runId, episodeId, settings: episodeSettings, runtime: { taskQueues: config.taskQueues, activities: config.activities } }],
    });
  }

  it('samples G rollouts with the version, records prompt ids and sampling, and scores them into a batch', async () => {
    const ids = [0, 1].map((g) => rolloutEpisodeId('q', g));
    for (const episodeId of ids) await store.putJson(episodeInputKey(runId, episodeId), input);
    const results = await Promise.all(ids.map((episodeId) => runEpisode(episodeId)));
    expect(results.map((result) => result.chunkCount)).toEqual([2, 2]);

    const records: MemoryStepRecord[] = [];
    for (const episodeId of ids) records.push(await store.getJson<MemoryStepRecord>(episodeMemoryKey(runId, episodeId, 0)));
    for (const [g, record] of records.entries()) {
      expect(record.sampling).toEqual({ temperature: 1, topP: 1, topK: 0, seed: `${settings.seed}/q.g${g}/0`, policyVersion: version, maxNewTokens: settings.memoryMaxNewTokens });
      expect(record.promptIds).toHaveLength(record.promptTokens);
    }
    // The version holds the bundled weights: the in-process loop on the bundled model writes the same record.
    const reference = new EpisodeSteps({ store, policy: rig.policy! });
    const { policyVersion: _version, ...unversioned } = settings;
    const referenceRef = { runId: `${runId}-reference`, episodeId: ids[0] };
    await store.putJson(episodeInputKey(referenceRef.runId, referenceRef.episodeId), input);
    await reference.prepare(referenceRef, unversioned);
    await reference.memoryStep(referenceRef, unversioned, 0);
    const expected = await store.getJson<MemoryStepRecord>(episodeMemoryKey(referenceRef.runId, referenceRef.episodeId, 0));
    expect({ ...records[0], sampling: undefined }).toEqual({ ...expected, sampling: undefined });

    const env = new MockActivityEnvironment();
    const scored = (await env.run(createScoringActivities({ store }).score, {
      trainingRunId: runId,
      step: 0,
      rolloutRunId: runId,
      groups: [ids],
      policyVersion: version,
    })) as ScoreResult;
    expect(scored.stats).toMatchObject({ groups: 1, rollouts: 2, sequences: 2 * 3 });
    const batch = await store.getJson<TrainingBatch>(scored.batchKey);
    expect(batch.policyVersion).toBe(version);
    expect(batch.sequences[0]).toMatchObject({ promptIds: records[0].promptIds, responseIds: records[0].tokenIds, samplingLogProbs: records[0].logProbs });
  });

  it('fails an episode whose policy version does not exist, without retrying', async () => {
    await store.putJson(episodeInputKey(runId, 'missing'), input);
    const failure = await runEpisode('missing', { ...settings, policyVersion: 'no-such-version' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const cause = (failure as WorkflowFailedError).cause?.cause;
    expect(cause).toBeInstanceOf(Error);
    expect((cause as Error).message).toMatch(/^policy version no-such-version does not exist in the blob store/);
  });
});
