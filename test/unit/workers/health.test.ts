/** The health server on a real loopback socket, and the metrics / health settings of the configuration. */
import { ConfigError, loadConfig } from '../../../temporal.config';
import { parseBindAddress, startHealthServer, type HealthServer } from '../../../workers/health';
import { workerEnvironment } from '../../../workers/spawn';

describe('the worker health server', () => {
  let server: HealthServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const get = async (path: string): Promise<[number, string]> => {
    const response = await fetch(`http://${server!.address}${path}`);
    return [response.status, (await response.text()).trim()];
  };

  it('answers liveness always and readiness as its probe says, with the reason when not ready', async () => {
    server = await startHealthServer('127.0.0.1:0', () => Promise.resolve('starting'));
    expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await get('/healthz')).toEqual([200, 'ok']);
    expect(await get('/readyz')).toEqual([503, 'starting']);
    server.setReadiness(() => Promise.resolve(null));
    expect(await get('/readyz')).toEqual([200, 'ready']);
    server.setReadiness(() => Promise.reject(new Error('the Temporal server does not answer')));
    expect(await get('/readyz')).toEqual([503, 'the Temporal server does not answer']);
    expect((await get('/metrics'))[0]).toBe(404);
  });

  it('refuses a bad or busy address in one line', async () => {
    expect(() => parseBindAddress('8080')).toThrow(
      'expected host:port to bind, for example 0.0.0.0:8080, got "8080"',
    );
    expect(() => parseBindAddress('0.0.0.0:99999')).toThrow(/expected host:port/);
    expect(parseBindAddress('[::]:8080')).toEqual({ host: '::', port: 8080 });
    server = await startHealthServer('127.0.0.1:0', () => Promise.resolve(null));
    await expect(startHealthServer(server.address, () => Promise.resolve(null))).rejects.toThrow(
      `health server cannot listen on ${server.address}: EADDRINUSE`,
    );
  });
});

describe('metrics and health settings', () => {
  it('are off by default and set from the environment, and reach spawned workers', () => {
    expect(loadConfig({ env: {} })).toMatchObject({ metrics: {}, health: {} });
    const config = loadConfig({
      env: { REMEMR1_METRICS_BIND_ADDRESS: '0.0.0.0:9464', REMEMR1_HEALTH_BIND_ADDRESS: '0.0.0.0:8080' },
    });
    expect(config.metrics.prometheusBindAddress).toBe('0.0.0.0:9464');
    expect(config.health.bindAddress).toBe('0.0.0.0:8080');
    const inWorker = loadConfig({ env: workerEnvironment(config) });
    expect({ metrics: inWorker.metrics, health: inWorker.health }).toEqual({
      metrics: config.metrics,
      health: config.health,
    });
  });

  it('name the variable of a bad address', () => {
    expect(() => loadConfig({ env: { REMEMR1_METRICS_BIND_ADDRESS: '9464' } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { REMEMR1_METRICS_BIND_ADDRESS: '9464' } })).toThrow(
      /REMEMR1_METRICS_BIND_ADDRESS: expected host:port/,
    );
  });
});
