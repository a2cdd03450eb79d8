/**
 * A pin on what a batch computes: the digest of every result row, memory record and answer record of a small
 * batch through the real workflows, taken before the code was refactored. A refactor of prompts, parsing,
 * retrieval, scoring, the episode loop or the storage layout that changes any of it fails here.
 *
 * The policy is the rule-based callback agent (lib/episode/rule-policy.ts): exact text in, exact text out, so the
 * digest does not depend on floating-point details of the machine, while everything around the policy (prompt
 * templates and their token ids, tag parsing, memory and recall, scores) is the production code.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { loadConfiguredPolicy } from '../../lib/episode/rule-policy';
import type { AnswerRecord, EpisodeResult, EpisodeSettings, MemoryStepRecord } from '../../lib/episode/types';
import { defaultEpisodeSettings } from '../../lib/episode/types';
import type { Policy } from '../../lib/model';
import {
  createBlobStore,
  episodeAnswerKey,
  episodeMemoryPrefix,
  runResultsPrefix,
  type BlobStore,
} from '../../lib/storage';
import { batchQAWorkflow } from '../../workflows/batch';
import { startWorkers, type RunningWorkers } from '../../workers/worker';
import { connectTestClient, requireStackEnvironment, testConfig } from '../support/stack';

/** Taken on the code before the refactors of the "code that reads like the design" work. */
const PINNED_DIGEST = '6a40808907fb10ad0881fdeecdc84fcd08b8bdc64dfb221e3c22b71a7fbe3245';

const EXAMPLE = path.join(__dirname, '..', '..', 'examples', 'distant-evidence-mini.jsonl');

const settings: EpisodeSettings = {
  ...defaultEpisodeSettings,
  chunkTokens: 128,
  memoryMaxNewTokens: 160,
  answerMaxNewTokens: 64,
};

async function keysUnder(store: BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of store.list(prefix)) keys.push(key);
  return keys.sort();
}

describe('the results of a small batch', () => {
  requireStackEnvironment();
  const config = testConfig('pin');
  let policy: Policy;
  let store: BlobStore;
  let workers: RunningWorkers;
  let client: Client;

  beforeAll(async () => {
    policy = await loadConfiguredPolicy('rule:callback');
    store = createBlobStore(config.storage);
    workers = await startWorkers({ role: 'all', config, policy, store });
    client = await connectTestClient(config);
  });

  afterAll(async () => {
    await workers?.shutdown().catch(() => undefined);
    await client?.connection.close();
    await policy?.dispose();
    await store?.close();
  });

  it('are the pinned ones: row by row, record by record', async () => {
    const runId = `pin-${Date.now().toString(36)}`;
    await store.put('datasets/test/example.jsonl', fs.readFileSync(EXAMPLE));
    const summary = await client.workflow.execute(batchQAWorkflow, {
      workflowId: `batch.${runId}`,
      taskQueue: config.taskQueues.orchestration,
      args: [
        {
          runId,
          datasetKey: 'datasets/test/example.jsonl',
          dataset: 'distant-evidence-mini.jsonl',
          settings,
          runtime: { taskQueues: config.taskQueues, activities: config.activities },
          width: 4,
          pageSize: 100,
          stopOnBadRow: false,
        },
      ],
    });
    expect(summary.overall.episodes).toBe(12);

    // Everything the run wrote about each episode, without the run's own id (unique per test run).
    const episodes: unknown[] = [];
    for (const key of await keysUnder(store, runResultsPrefix(runId))) {
      const { runId: _run, ...result } = await store.getJson<EpisodeResult>(key);
      const memory: MemoryStepRecord[] = [];
      for (const recordKey of await keysUnder(store, episodeMemoryPrefix(runId, result.episodeId)))
        memory.push(await store.getJson<MemoryStepRecord>(recordKey));
      const answer = await store.getJson<AnswerRecord>(episodeAnswerKey(runId, result.episodeId));
      episodes.push({ result, memory, answer });
    }
    expect(episodes).toHaveLength(12);
    const digest = createHash('sha256').update(JSON.stringify(episodes)).digest('hex');
    expect(digest).toBe(PINNED_DIGEST);
  }, 300_000);
});
