/**
 * The queues of a command's embedded worker (workers/embedded.ts): scoped to its model, and those of the run
 * it follows when that run is already going (started earlier, perhaps with other queue names).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { batchQAWorkflow } from '../../workflows/batch';
import { embeddedConfigFor, embeddedWorkerConfig, modelIdentity } from '../../workers/embedded';
import { connectTestClient, requireStackEnvironment, tempDir, testConfig, testSettings } from '../support/stack';
import { TEST_MODEL_FOLDER } from '../setup/stack-state';

describe('model identity', () => {
  it('names a rule agent by its rule, and a model folder by its files', () => {
    expect(modelIdentity('rule:callback')).toBe('rule-callback-48');
    expect(modelIdentity('rule:forward:64')).toBe('rule-forward-64');

    const folder = tempDir('identity-model');
    fs.cpSync(TEST_MODEL_FOLDER, folder, { recursive: true });
    const before = modelIdentity(folder);
    expect(before).toMatch(/^[A-Za-z0-9_-]+-[0-9a-f]{12}$/);
    expect(modelIdentity(folder)).toBe(before);
    // Retrained weights (same size, newer file) make another model.
    const weights = path.join(folder, 'model.safetensors');
    fs.utimesSync(weights, new Date(), new Date(Date.now() + 60_000));
    expect(modelIdentity(folder)).not.toBe(before);
  });

  it('scopes only the inference queue', () => {
    const config = testConfig('identity');
    const scoped = embeddedWorkerConfig(config);
    expect(scoped.taskQueues.orchestration).toBe(config.taskQueues.orchestration);
    expect(scoped.taskQueues.trainer).toBe(config.taskQueues.trainer);
    expect(scoped.taskQueues.inference).toBe(`${config.taskQueues.inference}.model-${modelIdentity(config.model.path)}`);
  });
});

describe('an embedded worker following a running batch', () => {
  requireStackEnvironment();
  let client: Client;
  beforeAll(async () => {
    client = await connectTestClient(testConfig('follow'));
  });
  afterAll(async () => {
    await client?.connection.close();
  });

  it('serves the queues the running batch was started with, and its model queue when none runs', async () => {
    const config = testConfig('follow');
    const workflowId = `batch.follow-${Date.now().toString(36)}`;
    // Started with the unscoped queues (as before model-scoped queues), and no worker: it stays running.
    const handle = await client.workflow.start(batchQAWorkflow, {
      workflowId,
      taskQueue: config.taskQueues.orchestration,
      args: [
        {
          runId: workflowId.slice('batch.'.length),
          datasetKey: 'datasets/none.jsonl',
          dataset: 'none.jsonl',
          settings: testSettings,
          runtime: { taskQueues: config.taskQueues, activities: config.activities },
          width: 1,
          pageSize: 1,
          stopOnBadRow: false,
        },
      ],
    });
    try {
      expect((await embeddedConfigFor(client, workflowId, config)).taskQueues).toEqual(config.taskQueues);
    } finally {
      await handle.terminate('test over');
    }
    expect((await embeddedConfigFor(client, workflowId, config)).taskQueues).toEqual(
      embeddedWorkerConfig(config).taskQueues,
    );
    expect((await embeddedConfigFor(client, `${workflowId}-never`, config)).taskQueues).toEqual(
      embeddedWorkerConfig(config).taskQueues,
    );
  });
});
