import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, defaultConfig, loadConfig, scopeDefaultTaskQueues, storageIdentity, type RememConfig } from '../../temporal.config';
import { workerEnvironment } from '../../workers/spawn';
import { policyOptions } from '../../workers/worker';

describe('configuration', () => {
  it('is valid with nothing set: the embedded default', () => {
    const config = loadConfig({ env: {} });
    const defaults = defaultConfig();
    expect(config).toEqual({ ...defaults, taskQueues: scopeDefaultTaskQueues(defaults.taskQueues, defaults.storage) });
    expect(config.storage.kind).toBe('fs');
    expect(config.temporal.address).toBe('127.0.0.1:7233');
  });

  it('takes environment variables over a file over defaults', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'config-')), 'config.json');
    fs.writeFileSync(file, JSON.stringify({ temporal: { namespace: 'from-file', address: 'file:7233' }, model: { maxBatchSize: 4 } }));
    const config = loadConfig({ env: { REMEMR1_CONFIG: file, REMEMR1_TEMPORAL_ADDRESS: 'env-host:7000', REMEMR1_TASK_QUEUE_INFERENCE: 'gpu-a100' } });
    expect(config.temporal).toMatchObject({ address: 'env-host:7000', namespace: 'from-file' });
    expect(config.model.maxBatchSize).toBe(4);
    expect(config.taskQueues.inference).toBe('gpu-a100');
  });

  it('passes the model runtime settings to spawned worker processes and on to the policy runtime', () => {
    const config = loadConfig({ env: { REMEMR1_ORT_SPIN_WAIT: 'false', REMEMR1_INTRA_OP_THREADS: '1', REMEMR1_MAX_BATCH_SIZE: '4' } });
    // Every value differs from its default, so a worker that dropped one would be caught.
    const defaults = defaultConfig().model;
    for (const name of ['spinWait', 'intraOpThreads', 'maxBatchSize'] as const)
      expect(config.model[name]).not.toBe(defaults[name]);
    const inWorker = loadConfig({ env: workerEnvironment(config) });
    expect(inWorker.model).toEqual(config.model);
    expect(policyOptions(inWorker.model)).toEqual({ executionProvider: 'cpu', intraOpThreads: 1, spinWait: false, maxBatchSize: 4 });
    // 0 threads in the configuration leaves the choice to ONNX Runtime.
    expect(policyOptions(defaultConfig().model).intraOpThreads).toBeUndefined();
  });

  it('scopes the default task queues to the storage, so a worker with other storage never takes this store\'s work', () => {
    const fsA = loadConfig({ env: { REMEMR1_STORAGE_ROOT: '/data/a' } }).taskQueues;
    const fsB = loadConfig({ env: { REMEMR1_STORAGE_ROOT: '/data/b' } }).taskQueues;
    expect(fsA.orchestration).toMatch(/^rememr1-orchestration\.fs-[0-9a-f]{8}$/);
    expect(fsA.inference).toMatch(/^rememr1-inference\.fs-[0-9a-f]{8}$/);
    expect(fsA.trainer).toMatch(/^rememr1-trainer\.fs-[0-9a-f]{8}$/);
    expect(fsB.orchestration).not.toBe(fsA.orchestration);
    expect(loadConfig({ env: { REMEMR1_STORAGE_ROOT: '/data/a/' } }).taskQueues).toEqual(fsA);
    const s3 = (endpoint: string): RememConfig['taskQueues'] =>
      loadConfig({ env: { REMEMR1_STORAGE: 's3', REMEMR1_S3_ENDPOINT: endpoint, REMEMR1_S3_BUCKET: 'corpus' } }).taskQueues;
    expect(s3('http://127.0.0.1:9000').orchestration).toMatch(/^rememr1-orchestration\.s3-[0-9a-f]{8}$/);
    // Credentials in the endpoint are no part of the identity (nor ever echoed in it).
    expect(s3('http://user:secret@127.0.0.1:9000')).toEqual(s3('http://127.0.0.1:9000'));
    expect(storageIdentity({ kind: 's3', endpoint: 'http://user:secret@h:9000', region: 'r', bucket: 'b', prefix: 'p', forcePathStyle: true })).not.toContain('secret');
    expect(s3('http://127.0.0.1:9001').orchestration).not.toBe(s3('http://127.0.0.1:9000').orchestration);
    // Names given explicitly are used as given; a spawned worker receives the scoped names and keeps them.
    expect(loadConfig({ env: { REMEMR1_TASK_QUEUE_INFERENCE: 'gpu-a100' } }).taskQueues.inference).toBe('gpu-a100');
    const parent = loadConfig({ env: { REMEMR1_STORAGE_ROOT: '/data/a' } });
    expect(loadConfig({ env: workerEnvironment(parent) }).taskQueues).toEqual(parent.taskQueues);
  });

  it('switches to S3 storage from the environment with sensible defaults', () => {
    const config = loadConfig({ env: { REMEMR1_STORAGE: 's3', REMEMR1_S3_ENDPOINT: 'http://127.0.0.1:9000', REMEMR1_S3_BUCKET: 'corpus-qa' } });
    expect(config.storage).toEqual({ kind: 's3', endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', bucket: 'corpus-qa', prefix: '', forcePathStyle: true });
  });

  it('reports every bad value at once, naming the variable and what was expected', () => {
    let error: unknown;
    try {
      loadConfig({
        env: {
          REMEMR1_TEMPORAL_ADDRESS: 'no-port',
          REMEMR1_MAX_BATCH_SIZE: 'eight',
          REMEMR1_EXECUTION_PROVIDER: 'tpu',
          REMEMR1_TEMPORAL_TLS: 'maybe',
        },
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('REMEMR1_MAX_BATCH_SIZE: expected a number, got "eight"');
    expect(problems).toContain('REMEMR1_TEMPORAL_TLS: expected true or false, got "maybe"');
    expect(problems).toContain('REMEMR1_TEMPORAL_ADDRESS: expected host:port');
    expect(problems).toMatch(/REMEMR1_EXECUTION_PROVIDER: .*"cpu"\|"cuda"\|"webgpu"/);
    expect((error as ConfigError).problems).toHaveLength(4);
  });

  it('takes the metrics mode from the environment or a file, project by default', () => {
    expect(loadConfig({ env: {} }).episodes.metricsMode).toBe('project');
    expect(loadConfig({ env: { REMEMR1_METRICS_MODE: 'hotpotqa-official' } }).episodes.metricsMode).toBe('hotpotqa-official');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'config-')), 'config.json');
    fs.writeFileSync(file, JSON.stringify({ episodes: { metricsMode: 'hotpotqa-official' } }));
    expect(loadConfig({ env: { REMEMR1_CONFIG: file } }).episodes.metricsMode).toBe('hotpotqa-official');
    expect(() => loadConfig({ env: { REMEMR1_METRICS_MODE: 'squad' } })).toThrow(/REMEMR1_METRICS_MODE: .*"project"\|"hotpotqa-official"/);
  });

  it('takes the memory content from the environment, update by default', () => {
    expect(loadConfig({ env: {} }).episodes.memoryContent).toBe('update');
    expect(loadConfig({ env: { REMEMR1_MEMORY_CONTENT: 'response' } }).episodes.memoryContent).toBe('response');
    expect(() => loadConfig({ env: { REMEMR1_MEMORY_CONTENT: 'all' } })).toThrow(/REMEMR1_MEMORY_CONTENT: .*"update"\|"response"/);
  });

  it('takes per-turn generation limits from the environment, none by default', () => {
    expect(loadConfig({ env: {} }).episodes.memoryMaxNewTokens).toBeUndefined();
    const config = loadConfig({ env: { REMEMR1_MEMORY_MAX_NEW_TOKENS: '2048', REMEMR1_ANSWER_MAX_NEW_TOKENS: '256' } });
    expect(config.episodes).toMatchObject({ memoryMaxNewTokens: 2048, answerMaxNewTokens: 256 });
    expect(() => loadConfig({ env: { REMEMR1_MEMORY_MAX_NEW_TOKENS: '0' } })).toThrow(/REMEMR1_MEMORY_MAX_NEW_TOKENS/);
  });

  it('rejects unknown fields and bad durations in a config file', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'config-')), 'config.json');
    fs.writeFileSync(file, JSON.stringify({ activities: { modelStep: { startToCloseTimeout: 'ten minutes' } }, colour: 'blue' }));
    expect(() => loadConfig({ env: { REMEMR1_CONFIG: file } })).toThrow(/activities\.modelStep\.startToCloseTimeout[^\n]*duration[\s\S]*colour/);
    fs.writeFileSync(file, '{ not json');
    expect(() => loadConfig({ env: { REMEMR1_CONFIG: file } })).toThrow(/config file .*config\.json/);
  });

  it('requires TLS client certificate and key together, and existing files', () => {
    expect(() => loadConfig({ env: { REMEMR1_TEMPORAL_TLS: 'true', REMEMR1_TEMPORAL_TLS_CERT: '/nonexistent/cert.pem' } })).toThrow(
      /REMEMR1_TEMPORAL_TLS_CERT: file \/nonexistent\/cert.pem does not exist[\s\S]*must be given together/,
    );
  });
});

describe('configuration with S3 variables present', () => {
  it('ignores them while storage is the filesystem', () => {
    const config = loadConfig({ env: { REMEMR1_S3_ENDPOINT: 'http://127.0.0.1:9000', REMEMR1_S3_BUCKET: 'b' } });
    expect(config.storage).toEqual(defaultConfig().storage);
  });
});

describe('a configuration file that switches the storage kind', () => {
  it('replaces the default store instead of merging the filesystem root into S3 settings', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'config-')), 'config.json');
    fs.writeFileSync(file, JSON.stringify({ storage: { kind: 's3', region: 'eu-west-1', bucket: 'my-bucket', prefix: 'p/', forcePathStyle: false } }));
    expect(loadConfig({ env: { REMEMR1_CONFIG: file } }).storage).toEqual({
      kind: 's3',
      region: 'eu-west-1',
      bucket: 'my-bucket',
      prefix: 'p/',
      forcePathStyle: false,
    });
  });
});
