/** A Temporal client built from the project's one set of connection options and its data converter. */
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { RememConfig } from '../../temporal.config';
import { CONNECT_TIMEOUT_MS, connectChecked, temporalConnectionOptions } from './connect';
import { projectDataConverter } from './data-converter';

export interface ConnectClientOptions {
  /** `null`: no codec at all (to read histories as the server stores them); default: the configured one. */
  dataConverter?: DataConverter | null;
}

/**
 * Connects to the configured server and namespace (address, TLS / mTLS files, API key) and checks the namespace; any
 * failure is one line naming the address and the setting to check, within a few seconds.
 */
export async function connectTemporalClient(config: RememConfig, options: ConnectClientOptions = {}): Promise<Client> {
  const { namespace } = config.temporal;
  const dataConverter = options.dataConverter === undefined ? projectDataConverter(config) : (options.dataConverter ?? undefined);
  const connection = await connectChecked(
    () => Connection.connect({ ...temporalConnectionOptions(config.temporal), connectTimeout: CONNECT_TIMEOUT_MS }),
    config.temporal,
  );
  return new Client({ connection, namespace, ...(dataConverter ? { dataConverter } : {}) });
}

/** Whether a Temporal server answers its health check with these settings (used to decide on a local dev server). */
export function temporalServerAnswers(temporal: RememConfig['temporal'], timeoutMs = 2000): Promise<boolean> {
  return healthCheckPasses(temporalConnectionOptions(temporal), timeoutMs);
}

/** Whether the server at these connection options answers its gRPC health check as serving, within `timeoutMs`. */
export async function healthCheckPasses(options: ConnectionOptions, timeoutMs = 2000): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ ...options, connectTimeout: timeoutMs });
    const response = await connection.healthService.check({});
    return response.status === 1; // SERVING
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}
