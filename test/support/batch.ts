/** Shared steps of the batch fault tests: start a batch over synthetic rows, wait for progress, check result rows. */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { generateSyntheticRows, toJsonLines } from '../../lib/data/synthetic';
import type { EpisodeResult } from '../../lib/episode/types';
import { runResultsPrefix, type BlobStore } from '../../lib/storage';
import type { RememConfig } from '../../temporal.config';
import { batchQAWorkflow } from '../../workflows/batch';
import { eventually, testSettings } from './stack';

/** Writes `questions` synthetic rows as the dataset and starts a batch (width 2, pages of 3) over them. */
export async function startSyntheticBatch(
  client: Client,
  config: RememConfig,
  store: BlobStore,
  runId: string,
  options: { seed: number; questions: number },
): Promise<WorkflowHandle<typeof batchQAWorkflow>> {
  const rows = generateSyntheticRows({ seed: options.seed, questions: options.questions, documentsPerQuestion: 6, wordsPerDocument: 30 });
  const datasetKey = `datasets/${runId}/rows.jsonl`;
  await store.put(datasetKey, toJsonLines(rows));
  return client.workflow.start(batchQAWorkflow, {
    workflowId: `batch.${runId}`,
    taskQueue: config.taskQueues.orchestration,
    args: [{ runId, datasetKey, dataset: 'rows.jsonl', settings: testSettings, runtime: { taskQueues: config.taskQueues, activities: config.activities }, width: 2, pageSize: 3, stopOnBadRow: false }],
  });
}

export async function resultKeys(store: BlobStore, runId: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of store.list(runResultsPrefix(runId))) keys.push(key);
  return keys;
}

export function waitForFirstResult(store: BlobStore, runId: string): Promise<true> {
  return eventually('a first result row', async () => (await resultKeys(store, runId)).length > 0 || undefined, 120_000);
}

/** Exactly one result row per dataset row 0..count-1. */
export async function expectEveryRowOnce(store: BlobStore, runId: string, count: number): Promise<void> {
  const keys = await resultKeys(store, runId);
  expect(keys).toHaveLength(count);
  const rows = await Promise.all(keys.map(async (key) => (await store.getJson<EpisodeResult>(key)).rowIndex));
  expect(rows.sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, i) => i));
}
