/**
 * Payload encryption end to end, on the tests' real dev server: a batch answered with encryption on leaves no
 * plaintext of any document, question, memory or answer in Temporal's raw history (read without a codec), gives the
 * same results as the same batch without encryption (whose history, read the same way, does show them: the check
 * sees plaintext when there is some), and its history still decodes after a key rotation, with the old key kept as a
 * decrypt-only key; without the old key, one clear line names the missing key id.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import type { AnswerRecord, EpisodeResult, MemoryStepRecord } from '../../lib/episode/types';
import type { BatchSummary } from '../../lib/episode/summary';
import { findOrInstallTemporalCli, stackPaths } from '../../infra/local-stack';
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
      // Search attributes are stored unencrypted: they hold ids, the dataset's name, status and counts, no secret
      // text. Memos would go through the codec; the project sets none.
      const raw = await connectTestClient(encrypted.config, { raw: true });
      try {
        for (const { workflowId, runId } of encrypted.executions) {
          const description = await raw.workflow.getHandle(workflowId, runId).describe();
          const attributes = Buffer.from(JSON.stringify(description.typedSearchAttributes));
          expect({ workflowId, leaks: plaintextIn(attributes, secrets) }).toEqual({ workflowId, leaks: [] });
          expect(attributes.includes(Buffer.from(encrypted.runId))).toBe(true);
          expect(description.memo ?? {}).toEqual({});
        }
      } finally {
        await raw.connection.close();
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
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle(dataConverter?.failureConverterPath), dataConverter }, history, workflowId);
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

  it('is switched on for the real CLI by REMEMR1_ENCRYPTION_KEYS_FILE, and a missing keys file is one line', async () => {
    const config = batchConfig('cli');
    const dataset = path.join(tempDir('e2e-encryption-data'), 'rows.jsonl');
    fs.writeFileSync(dataset, rows.map((row) => JSON.stringify(row)).join('\n') + '\n');
    const runId = `enc-cli-${suffix}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      REMEMR1_ENCRYPTION_KEYS_FILE: keysFile('keys-cli', [k1]),
      REMEMR1_MODEL: 'rule:callback',
      REMEMR1_TASK_QUEUE_ORCHESTRATION: config.taskQueues.orchestration,
      REMEMR1_TASK_QUEUE_INFERENCE: config.taskQueues.inference,
      REMEMR1_STORAGE: 'fs',
      REMEMR1_STORAGE_ROOT: (config.storage as { root: string }).root,
      CI: '1',
    };
    const args = ['qa', '--dataset', dataset, '--run-id', runId, '--chunk-tokens', '128', '--memory-tokens', '512', '--answer-tokens', '128', '--no-ui'];
    const run = await rememr1(args, env);
    expect({ code: run.code, complaint: /rememr1:.*/.exec(run.stderr)?.[0] }).toEqual({ code: 0, complaint: undefined });
    for (const row of rows) expect(run.stdout).toContain(row.answers[0]);
    // The batch's own history, as stored: no question, no answer.
    const raw = await connectTestClient(config, { raw: true });
    try {
      const bytes = Buffer.from(temporal.api.history.v1.History.encode(await raw.workflow.getHandle(`batch.${runId}`).fetchHistory()).finish());
      expect(plaintextIn(bytes, [...rows.map((row) => row.question), ...rows.map((row) => row.answers[0])])).toEqual([]);
      expect(bytes.includes(Buffer.from('binary/encrypted'))).toBe(true);
    } finally {
      await raw.connection.close();
    }
    // `status` reads the batch through the codec.
    const status = await rememr1(['status', runId, '--json'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(runId);

    const missing = await rememr1(args, { ...env, REMEMR1_ENCRYPTION_KEYS_FILE: path.join(keysDir, 'no-such-file') });
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe(
      `rememr1: cannot read the encryption keys file ${path.join(keysDir, 'no-such-file')} (ENOENT); check REMEMR1_ENCRYPTION_KEYS_FILE`,
    );
  });

  it('serves the codec to the Temporal CLI and the Web UI: decrypted payloads for the allowed, nothing for others', async () => {
    const token = randomBytes(16).toString('hex');
    const server = await startCodecServerProcess({
      ...process.env,
      REMEMR1_ENCRYPTION_KEYS_FILE: keysFile('keys-codec-server', [k2, k1]),
      REMEMR1_CODEC_SERVER_TOKEN: token,
    });
    try {
      const temporalCli = findOrInstallTemporalCli(stackPaths(encrypted.config.localDir));
      const episode = encrypted.executions.find((e) => e.workflowId !== `batch.${encrypted.runId}`) as { workflowId: string };
      const question = rows[encrypted.results.find((r) => episode.workflowId.endsWith(`.${r.episodeId}`))?.rowIndex ?? -1]?.question;
      expect(question).toBeDefined();
      // The history as the CLI prints it, with every payload's data (base64 in its JSON) spelt out.
      const show = (...extra: string[]): string =>
        payloadTexts(execFileSync(
          temporalCli,
          ['workflow', 'show', '--workflow-id', episode.workflowId, '--namespace', encrypted.config.temporal.namespace,
            '--address', encrypted.config.temporal.address, '--output', 'json', ...extra],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
        ));
      expect(show()).not.toContain(question);
      expect(show('--codec-endpoint', server.url, '--codec-auth', `Bearer ${token}`)).toContain(question);
      expect(() => show('--codec-endpoint', server.url, '--codec-auth', 'Bearer wrong')).toThrow();

      // The Web UI's browser asks first (CORS preflight): its origin is admitted, another is not.
      const preflight = (origin: string): Promise<Response> =>
        fetch(`${server.url}/decode`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' } });
      const ui = new URL(encrypted.config.temporal.uiUrl).origin;
      const admitted = await preflight(ui);
      expect([admitted.status, admitted.headers.get('access-control-allow-origin')]).toEqual([204, ui]);
      expect(admitted.headers.get('access-control-allow-headers')).toMatch(/X-Namespace/);
      const refused = await preflight('http://elsewhere.example');
      expect([refused.status, refused.headers.get('access-control-allow-origin')]).toEqual([403, null]);
      // A payload the codec server cannot decrypt is a one-line JSON error without key material.
      const unknown = await fetch(`${server.url}/decode`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ payloads: [{ metadata: { encoding: Buffer.from('binary/encrypted').toString('base64'), 'encryption-key-id': Buffer.from('k0').toString('base64') }, data: 'AAAA' }] }),
      });
      expect(unknown.status).toBe(400);
      expect(((await unknown.json()) as { message: string }).message).toMatch(/key id "k0", which is not among the known keys/);
    } finally {
      await server.stop();
    }
  });
});

/** Runs `rememr1 …` (what `npm run rememr1 --` runs) to its end, killed if it outlives `timeoutMs`. */
function rememr1(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 300_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: projectRoot, env, detached: true });
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const killer = setTimeout(() => {
      process.kill(-(child.pid as number), 'SIGKILL');
      reject(new Error(`rememr1 ${args.join(' ')} did not end within ${timeoutMs / 1000}s\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `rememr1 codec-server` as a process of its own, until `stop`. */
async function startCodecServerProcess(env: NodeJS.ProcessEnv): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'codec-server', '--port', '0'], { cwd: projectRoot, env });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (data: Buffer): void => {
      output += data.toString();
      const match = /codec server on (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1]);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then(() => reject(new Error(`codec-server exited before serving:\n${output}`)));
  });
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The data of every payload in a history printed as JSON, decoded from base64. */
function payloadTexts(json: string): string {
  const texts: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (typeof node === 'object' && node !== null) {
      const record = node as Record<string, unknown>;
      if (typeof record.data === 'string' && typeof record.metadata === 'object') texts.push(Buffer.from(record.data, 'base64').toString('utf8'));
      Object.values(record).forEach(walk);
    }
  };
  walk(JSON.parse(json));
  return texts.join('\n');
}

function plainIn(histories: Buffer[], texts: string[]): string[] {
  return [...new Set(histories.flatMap((bytes) => plaintextIn(bytes, texts)))];
}
