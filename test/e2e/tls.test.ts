/**
 * The CLI over mutual TLS, as a user runs it (`node --import tsx cli/main.ts qa …`): a batch answered through a
 * TLS-terminating proxy in front of the tests' dev server (`temporal server start-dev` serves plain text only), with
 * certificates made here; and one clear line, never a hang or a local server started instead, for a wrong address,
 * an untrusted server certificate, a refused client certificate, or TLS asked of a plain-text server.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EpisodeResult } from '../../lib/episode/types';
import { FsBlobStore, runResultsPrefix } from '../../lib/storage';
import { projectRoot } from '../../temporal.config';
import { freePortPair, requireStackEnvironment, tempDir } from '../support/stack';
import { makeTestCertificates, startTlsProxy, type TestCertificates, type TlsProxy } from '../support/tls';

requireStackEnvironment();
jest.setTimeout(600_000);

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

const suffix = randomUUID().slice(0, 8);
const blobRoot = tempDir('e2e-tls-blobs');
const dataDir = tempDir('e2e-tls-data');
const devServer = process.env.REMEMR1_TEMPORAL_ADDRESS as string;
let certificates: TestCertificates;
let proxy: TlsProxy;

/** Runs `rememr1 …` to its end in a process group of its own, killed if it outlives `timeoutMs`. */
function rememr1(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 180_000): Promise<CliRun> {
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

/** The environment of a user pointing the CLI at a TLS server: everything from the shared settings. */
function tlsEnv(overrides: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    REMEMR1_TEMPORAL_ADDRESS: proxy.address,
    REMEMR1_TEMPORAL_TLS: 'true',
    REMEMR1_TEMPORAL_TLS_SERVER_NAME: 'localhost',
    REMEMR1_TEMPORAL_TLS_CA: certificates.caFile,
    REMEMR1_TEMPORAL_TLS_CERT: certificates.clientCertFile,
    REMEMR1_TEMPORAL_TLS_KEY: certificates.clientKeyFile,
    REMEMR1_TASK_QUEUE_ORCHESTRATION: `tls-orchestration-${suffix}`,
    REMEMR1_TASK_QUEUE_INFERENCE: `tls-inference-${suffix}`,
    REMEMR1_STORAGE: 'fs',
    REMEMR1_STORAGE_ROOT: blobRoot,
    CI: '1',
    ...overrides,
  };
}

const dataset = path.join(dataDir, 'rows.jsonl');
fs.writeFileSync(
  dataset,
  [
    { id: 'a', question: 'Who founded the museum?', context: 'The museum was founded by Ada Lovelace in 1850.', answers: ['Ada Lovelace'] },
    { id: 'b', question: 'What is kept there?', context: 'Clocks are kept in the museum.', answers: ['clocks'] },
  ]
    .map((row) => JSON.stringify(row))
    .join('\n') + '\n',
);
const quick = ['--dataset', dataset, '--chunk-tokens', '128', '--max-chunks', '1', '--memory-tokens', '8', '--answer-tokens', '6', '--no-ui'];

/** The command's complaint: exactly one line on stderr. */
function oneLine(run: CliRun): string {
  const lines = run.stderr.split('\n').filter((line) => line.trim() !== '');
  expect(lines).toHaveLength(1);
  return lines[0];
}

beforeAll(async () => {
  certificates = makeTestCertificates(tempDir('e2e-tls-certs'));
  proxy = await startTlsProxy(certificates, devServer);
});

afterAll(async () => {
  await proxy?.close();
});

describe('the CLI over mutual TLS', () => {
  it('answers a batch through a TLS server with the client certificate, client and worker alike', async () => {
    const runId = `e2e-tls-${suffix}`;
    const run = await rememr1(['qa', ...quick, '--run-id', runId], tlsEnv({}));
    // (The progress bar is drawn on stderr; a complaint would start with `rememr1:`.)
    expect({ code: run.code, complaint: /rememr1:.*/.exec(run.stderr)?.[0] }).toEqual({ code: 0, complaint: undefined });
    expect(run.stdout).toContain(`Run id: ${runId}`);
    const store = new FsBlobStore({ root: blobRoot });
    const results: EpisodeResult[] = [];
    for await (const key of store.list(runResultsPrefix(runId))) results.push(await store.getJson<EpisodeResult>(key));
    await store.close();
    expect(results.map((result) => result.rowIndex).sort()).toEqual([0, 1]);
    // The command's client (grpc-js) and its embedded worker (the Rust core) both came through the proxy.
    expect(proxy.authorizedConnections()).toBeGreaterThanOrEqual(2);
  });

  it('says in one line that the server certificate is not trusted when the CA is another one', async () => {
    const run = await rememr1(['qa', ...quick], tlsEnv({ REMEMR1_TEMPORAL_TLS_CA: certificates.otherCaFile }));
    expect(run.code).toBe(1);
    expect(oneLine(run)).toMatch(
      new RegExp(`^rememr1: the TLS certificate of the Temporal server at ${proxy.address} is not trusted \\(.*\\); check temporal\\.tls\\.serverRootCACertificateFile \\(REMEMR1_TEMPORAL_TLS_CA\\)$`),
    );
  });

  it('says in one line that the server refused a client certificate signed by another CA', async () => {
    const run = await rememr1(
      ['qa', ...quick],
      tlsEnv({ REMEMR1_TEMPORAL_TLS_CERT: certificates.strangerCertFile, REMEMR1_TEMPORAL_TLS_KEY: certificates.strangerKeyFile }),
    );
    expect(run.code).toBe(1);
    expect(oneLine(run)).toMatch(/^rememr1: the Temporal server at .* refused the client certificate .*REMEMR1_TEMPORAL_TLS_CERT/);
  });

  it('names a remote address that does not answer and the setting to check, and starts nothing', async () => {
    const run = await rememr1(['qa', ...quick], tlsEnv({ REMEMR1_TEMPORAL_ADDRESS: '192.0.2.1:7233' }));
    expect(run.code).toBe(1);
    expect(oneLine(run)).toMatch(
      /^rememr1: cannot reach the Temporal server at 192\.0\.2\.1:7233 \(.*\); check temporal\.address \(REMEMR1_TEMPORAL_ADDRESS\)/,
    );
    expect(run.stdout).not.toContain('[stack]');
  });

  it('never starts a plain-text dev server for a TLS setting on a loopback address where nothing answers', async () => {
    const port = await freePortPair();
    const run = await rememr1(['qa', ...quick], tlsEnv({ REMEMR1_TEMPORAL_ADDRESS: `127.0.0.1:${port}` }));
    expect(run.code).toBe(1);
    expect(oneLine(run)).toMatch(new RegExp(`^rememr1: cannot reach the Temporal server at 127\\.0\\.0\\.1:${port} \\(connection refused\\)`));
    expect(run.stdout).not.toContain('[stack]');
  });

  it('says that a plain-text server does not speak TLS', async () => {
    const run = await rememr1(['qa', ...quick], tlsEnv({ REMEMR1_TEMPORAL_ADDRESS: devServer }));
    expect(run.code).toBe(1);
    expect(oneLine(run)).toMatch(/does not speak TLS .*check temporal\.tls\.enabled \(REMEMR1_TEMPORAL_TLS\)$/);
  });
});
