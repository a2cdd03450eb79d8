/** The shared connection options: which servers the project may start itself, and one-line errors for bad files. */
import { defaultConfig } from '../../../temporal.config';
import { TemporalConnectError, devServerRefusal, isLoopbackAddress, temporalConnectionOptions } from '../../../lib/temporal/connect';

const temporal = defaultConfig().temporal;

describe('Temporal connection options', () => {
  it('starts a local dev server only for a loopback, plain-text address without an API key', () => {
    expect(['127.0.0.1:7233', 'localhost:7233', '[::1]:7233', '127.0.0.2:1'].map(isLoopbackAddress)).toEqual([true, true, true, true]);
    expect(['temporal.example:7233', '10.0.0.1:7233', 'ns.a1b2.tmprl.cloud:7233'].map(isLoopbackAddress)).toEqual([false, false, false]);
    expect(devServerRefusal(temporal)).toBeUndefined();
    expect(devServerRefusal({ ...temporal, address: 'ns.a1b2.tmprl.cloud:7233' })).toMatch(/not a loopback address/);
    expect(devServerRefusal({ ...temporal, tls: { enabled: true } })).toMatch(/REMEMR1_TEMPORAL_TLS/);
    expect(devServerRefusal({ ...temporal, apiKey: 'k' })).toMatch(/TEMPORAL_API_KEY/);
  });

  it('reads TLS files once for client and worker alike, and names the setting of a missing one', () => {
    expect(temporalConnectionOptions(temporal)).toEqual({ address: '127.0.0.1:7233' });
    const missing = { ...temporal, tls: { enabled: true, serverRootCACertificateFile: '/nonexistent/ca.pem' } };
    expect(() => temporalConnectionOptions(missing)).toThrow(TemporalConnectError);
    expect(() => temporalConnectionOptions(missing)).toThrow(
      'cannot read /nonexistent/ca.pem (ENOENT), given by temporal.tls.serverRootCACertificateFile (REMEMR1_TEMPORAL_TLS_CA)',
    );
  });
});
