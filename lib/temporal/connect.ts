/**
 * Connection failures as one clear line: the address that did not answer, or the namespace that does not exist,
 * for the CLI's client and for workers alike (instead of `tonic::transport::Error` or a raw status dump).
 */

/** How long a command waits for the Temporal server before it says that it cannot reach it. */
export const CONNECT_TIMEOUT_MS = 3000;

/** Ends a command with one line; no retry helps (the server or namespace named is wrong or down). */
export class TemporalConnectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemporalConnectError';
  }
}

function shortReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/connection refused/i.test(message)) return 'connection refused';
  if (/deadline|timed? ?out/i.test(message)) return `no answer within ${CONNECT_TIMEOUT_MS / 1000} s`;
  if (/dns|resolve|ENOTFOUND|name or service not known/i.test(message)) return 'unknown host';
  return message.split('\n')[0].slice(0, 160);
}

export function unreachable(address: string, error: unknown): TemporalConnectError {
  return new TemporalConnectError(
    `cannot reach the Temporal server at ${address} (${shortReason(error)}); start it with \`npm run stack:start\` or set REMEMR1_TEMPORAL_ADDRESS`,
  );
}

/** The part of a gRPC WorkflowService that the namespace check needs (client and worker connections have it). */
interface DescribesNamespaces {
  describeNamespace(request: { namespace: string }): Promise<unknown>;
}

const GRPC_NOT_FOUND = 5;

/**
 * Opens a connection (a client's or a worker's) and checks the namespace: a server that does not answer, or a
 * namespace it lacks, is one line naming the address (or the namespace); the connection is closed on failure.
 */
export async function connectChecked<
  C extends { workflowService: DescribesNamespaces; close(): Promise<void> },
>(open: () => Promise<C>, address: string, namespace: string): Promise<C> {
  let connection: C;
  try {
    connection = await open();
  } catch (error) {
    throw unreachable(address, error);
  }
  try {
    await checkNamespace(connection.workflowService, namespace, address);
  } catch (error) {
    await connection.close();
    throw error;
  }
  return connection;
}

/** Fails with one line when `namespace` does not exist on the server at `address`. */
export async function checkNamespace(
  service: DescribesNamespaces,
  namespace: string,
  address: string,
): Promise<void> {
  try {
    await service.describeNamespace({ namespace });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === GRPC_NOT_FOUND || /namespace .* not found|not found.*namespace/i.test(String(error))) {
      throw new TemporalConnectError(
        `namespace ${namespace} does not exist on the Temporal server at ${address}; create it (\`temporal operator namespace create ${namespace}\`) or set REMEMR1_TEMPORAL_NAMESPACE`,
      );
    }
    throw unreachable(address, error);
  }
}
