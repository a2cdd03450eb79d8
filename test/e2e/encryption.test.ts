/**
 * Payload encryption end to end, on the tests' real dev server: a batch answered with encryption on leaves no
 * plaintext of any document, question, memory or answer in Temporal's raw history (read without a codec), gives the
 * same results as the same batch without encryption (whose history, read the same way, does show them: the check
 * sees plaintext when there is some), and its history still decodes after a key rotation, with the old key kept as a
 * decrypt-only key; without the old key, one clear line names the missing key id.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import type { AnswerRecord, EpisodeResult, MemoryStepRecord } from '../../lib/episode/types';
import type { BatchSummary } from '../../lib/episode/summary';
import { createBlobStore, episodeAnswerKey, episodeMemoryKey, runResultsPrefix, type BlobStore } from '../../lib/storage';
import { projectDataConverter } from '../../lib/temporal/data-converter';
import { projectRoot, type RememConfig } from '../../temporal.config';
import { batchQAWorkflow } from '../../workflows/batch';
import { startWorkers, workflowBundle } from '../../workers/worker';
import { connectTestClient, eventually, requireStackEnvironment, tempDir, testConfig, testSettings } from '../support/stack';

requireStackEnvironment();
jest.setTimeout(600_000);

const suffix = randomUUID().slice(0, 8);
const keysDir = tempDir('e2e-encryption-keys');
const keyLine = (id: string): string => `${id}:${randomBytes(32).toString('base64')}`;
const k1 = keyLine(`k1-${suffix}`);
const k2 = keyLine(`k2-${suffix}`);
function keysFile(name: string, lines: string[]): string {
  const file = path.join(keysDir, name);
  fs.writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
  return file;
}

/** Three rows of the bundled example (distinct documents, questions and answers). */
const rows = fs
  .readFileSync(path.join(projectRoot, 'examples', 'distant-evidence-mini.jsonl'), 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '')
  .slice(0, 3)
  .map((line) => JSON.parse(line) as { id: string; question: string; context: string; answers: string[] });

/** The rule agent reads documents into real memories (sentences of the documents), quickly and deterministically. */
function batchConfig(name: string, keys?: string): RememConfig {
  const config = testConfig(name);
  return { ...config, model: { ...config.model, path: 'rule:callback' }, encryption: keys ? { keysFile: keys } : {} };
}

interface Finished {
  runId: string;
  config: RememConfig;
  results: EpisodeResult[];
  summary: BatchSummary;
  /** Every execution of the run (the batch and its episodes), with its run id. */
  executions: Array<{ workflowId: string; runId: string }>;
}

async function runBatch(name: string, keys?: string): Promise<Finished> {
  const config = batchConfig(name, keys);
  const runId = `enc-${name}-${suffix}`;
  const workers = await startWorkers({ role: 'all', config });
  const client = await connectTestClient(config);
  try {
    const datasetKey = `datasets/${runId}/rows.jsonl`;
    await workers.store.put(datasetKey, rows.map((row) => JSON.stringify(row)).join('\n') + '\n');
    const handle = await client.workflow.start(batchQAWorkflow, {
      workflowId: `batch.${runId}`,
      taskQueue: config.taskQueues.orchestration,
      args: [
        {
          runId,
          datasetKey,
          dataset: 'rows.jsonl',
          settings: { ...testSettings, maxChunks: 0, memoryMaxNewTokens: 512, answerMaxNewTokens: 128 },
          runtime: { taskQueues: config.taskQueues, activities: config.activities },
          width: 3,
          pageSize: 10,
          stopOnBadRow: false,
        },
      ],
    });
    const summary = await handle.result();
    const results: EpisodeResult[] = [];
    for await (const key of workers.store.list(runResultsPrefix(runId))) results.push(await workers.store.getJson<EpisodeResult>(key));
    results.sort((a, b) => a.rowIndex - b.rowIndex);
    const executions = await eventually('every execution of the run in visibility', async () => {
      const found: Array<{ workflowId: string; runId: string }> = [];
      for await (const info of client.workflow.list({ query: `WorkflowId = "batch.${runId}" OR RememRunId = "${runId}"` })) {
        found.push({ workflowId: info.workflowId, runId: info.runId });
      }
      return found.filter((e) => e.workflowId !== `batch.${runId}`).length >= rows.length ? found : undefined;
    });
    return { runId, config, results, summary, executions };
  } finally {
    await client.connection.close();
    await workers.shutdown();
  }
}

/** The raw histories of a run as the server stores them, read by a client without any codec. */
async function rawHistories(finished: Finished): Promise<Array<{ workflowId: string; history: temporal.api.history.v1.IHistory; bytes: Buffer }>> {
  const raw = await connectTestClient(finished.config, { raw: true });
  try {
    return await Promise.all(
      finished.executions.map(async ({ workflowId, runId }) => {
        const history = await raw.workflow.getHandle(workflowId, runId).fetchHistory();
        return { workflowId, history, bytes: Buffer.from(temporal.api.history.v1.History.encode(history).finish()) };
      }),
    );
  } finally {
    await raw.connection.close();
  }
}

/**
 * Every secret text of a run: documents (whole and by sentence), questions, gold answers, memories and recall
 * queries of every step, raw final responses and predicted answers. Very short strings are left out: they could
 * match by chance (a task-queue name, a number).
 */
async function secretTexts(store: BlobStore, finished: Finished): Promise<string[]> {
  const texts = new Set<string>();
  const add = (text: string | null | undefined): void => {
    if (text && text.trim().length >= 8) texts.add(text.trim());
  };
  for (const row of rows) {
    add(row.context);
    for (const sentence of row.context.split(/(?<=\.)\s+/)) add(sentence);
    add(row.question);
    row.answers.forEach(add);
  }
  for (const result of finished.results) {
    add(result.question);
    add(result.answer);
    for (let step = 0; step < result.chunkCount; step += 1) {
      const key = episodeMemoryKey(finished.runId, result.episodeId, step);
      if (!(await store.exists(key))) continue;
      const record = await store.getJson<MemoryStepRecord>(key);
      add(record.memory);
      add(record.recallQuery);
      add(record.response);
    }
    const answer = await store.getJson<AnswerRecord>(episodeAnswerKey(finished.runId, result.episodeId));
    add(answer.response);
    add(answer.answer);
  }
  return [...texts];
}

/** The secret texts found in the bytes, as written or as JSON escapes them. */
function plaintextIn(bytes: Buffer, texts: string[]): string[] {
  return texts.filter((text) => bytes.includes(Buffer.from(text)) || bytes.includes(Buffer.from(JSON.stringify(text).slice(1, -1))));
}

let plain: Finished;
let encrypted: Finished;

beforeAll(async () => {
  // One after the other: the machine is small, and each batch has workers of its own.
  plain = await runBatch('plain');
  encrypted = await runBatch('encrypted', keysFile('keys-before', [k1]));
});

describe('payload encryption', () => {
  it('leaves no plaintext of any document, question, memory or answer in the raw histories, and the results are right', async () => {
    // Right: the same answers and scores as the same batch without encryption, and the batch's result decodes.
    expect(encrypted.results.map((r) => [r.rowIndex, r.answer, r.scores])).toEqual(plain.results.map((r) => [r.rowIndex, r.answer, r.scores]));
    expect(encrypted.results).toHaveLength(rows.length);
    expect(encrypted.summary.overall).toEqual(plain.summary.overall);
    // The rule agent answers these rows right: every prediction is its gold answer.
    expect(encrypted.results.map((r) => r.answer)).toEqual(rows.map((row) => row.answers[0]));

    const plainStore = createBlobStore(plain.config.storage);
    const encryptedStore = createBlobStore(encrypted.config.storage);
    try {
      // The check sees plaintext where there is some: the unencrypted batch's history shows questions, memories, answers.
      const plainSecrets = await secretTexts(plainStore, plain);
      const plainLeaks = plainIn((await rawHistories(plain)).map((h) => h.bytes), plainSecrets);
      expect(plainLeaks).toEqual(expect.arrayContaining([...rows.map((row) => row.question), ...plain.results.map((r) => r.answer)]));

      const secrets = await secretTexts(encryptedStore, encrypted);
      expect(secrets.length).toBeGreaterThan(rows.length * 3);
      const histories = await rawHistories(encrypted);
      expect(histories).toHaveLength(rows.length + 1);
      for (const { workflowId, bytes } of histories) {
        expect({ workflowId, leaks: plaintextIn(bytes, secrets) }).toEqual({ workflowId, leaks: [] });
        // Every payload the project wrote is sealed, and names the key that sealed it.
        expect(bytes.includes(Buffer.from('binary/encrypted'))).toBe(true);
        expect(bytes.includes(Buffer.from(`k1-${suffix}`))).toBe(true);
        // No key material anywhere.
        expect(bytes.includes(Buffer.from(k1.split(':')[1]))).toBe(false);
      }
    } finally {
      await plainStore.close();
      await encryptedStore.close();
    }
  });

  it('still decodes a history written with the old key after a rotation, and names a missing key id in one line', async () => {
    const rotated = { ...encrypted.config, encryption: { keysFile: keysFile('keys-rotated', [k2, k1]) } };
    // A client with the rotated keys (k2 encrypts, k1 only decrypts) reads the old batch's result.
    const client: Client = await connectTestClient(rotated);
    try {
      const summary = await client.workflow.getHandle(`batch.${encrypted.runId}`).result();
      expect(summary.overall).toEqual(encrypted.summary.overall);
    } finally {
      await client.connection.close();
    }
    // Every payload of every old history decodes: replaying them runs the workflow code on the decoded inputs and
    // results, with the rotated keys.
    const dataConverter = projectDataConverter(rotated);
    for (const { workflowId, history } of await rawHistories(encrypted)) {
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle(), dataConverter }, history, workflowId);
    }
    // Without the old key: one line naming the key id that is missing, never a hang.
    const forgetful = await connectTestClient({ ...encrypted.config, encryption: { keysFile: keysFile('keys-k2-only', [k2]) } });
    try {
      const failure = await forgetful.workflow
        .getHandle(`batch.${encrypted.runId}`)
        .result()
        .then(
          () => undefined,
          (error: Error) => error,
        );
      expect(failure?.message ?? '').toMatch(new RegExp(`key id "k1-${suffix}", which is not among the known keys \\(k2-${suffix}\\)`));
    } finally {
      await forgetful.connection.close();
    }
  });
});

function plainIn(histories: Buffer[], texts: string[]): string[] {
  return [...new Set(histories.flatMap((bytes) => plaintextIn(bytes, texts)))];
}
