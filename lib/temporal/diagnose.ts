/**
 * After a failed connection, finds out why with a plain TCP connect and a TLS handshake of our own (node:net,
 * node:tls): the gRPC client only says that no connection came up before its deadline, while Node's TLS errors name
 * the problem (unknown CA, wrong host name, client certificate refused, no TLS at all). Runs only on failure.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { TemporalConnectionOptions } from './connect';

/** What went wrong, in the words of the setting that most likely needs a look. */
export type TransportProblem =
  | { kind: 'refused' | 'unknown-host' | 'no-answer' | 'unreachable' }
  | { kind: 'untrusted-certificate' | 'wrong-host-name' | 'client-certificate-refused' | 'not-tls' | 'tls-required'; detail: string }
  | { kind: 'tls-failed'; detail: string };

const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** An empty HTTP/2 SETTINGS frame: a gRPC server answers with its own frames. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

function split(address: string): { host: string; port: number } {
  const index = address.lastIndexOf(':');
  return { host: address.slice(0, index).replace(/^\[|\]$/g, ''), port: Number(address.slice(index + 1)) };
}

function socketProblem(error: NodeJS.ErrnoException): TransportProblem | undefined {
  switch (error.code) {
    case 'ECONNREFUSED':
      return { kind: 'refused' };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { kind: 'unknown-host' };
    case 'ETIMEDOUT':
      return { kind: 'no-answer' };
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
      return { kind: 'unreachable' };
    default:
      return undefined;
  }
}

function tlsProblem(error: NodeJS.ErrnoException): TransportProblem {
  const code = error.code ?? '';
  // OpenSSL's messages carry addresses and source paths; its reason phrase is what a person can use.
  const reason = /SSL routines:[^:]*:([^:]+)/.exec(error.message)?.[1] ?? error.message.split('\n')[0];
  const detail = `${code ? `${code}: ` : ''}${reason}`.slice(0, 160);
  if (socketProblem(error)) return socketProblem(error) as TransportProblem;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return { kind: 'wrong-host-name', detail };
  if (/SELF_SIGNED|UNABLE_TO_(GET_ISSUER|VERIFY)|CERT_(UNTRUSTED|SIGNATURE_FAILURE|HAS_EXPIRED|NOT_YET_VALID)/.test(code)) {
    return { kind: 'untrusted-certificate', detail };
  }
  if (/ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|ACCESS_DENIED|HANDSHAKE_FAILURE)/.test(code)) {
    return { kind: 'client-certificate-refused', detail };
  }
  if (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|UNKNOWN_PROTOCOL|RECORD_LAYER/.test(code)) return { kind: 'not-tls', detail };
  return { kind: 'tls-failed', detail };
}

/**
 * Connects as the client would and speaks the first bytes of HTTP/2; undefined when everything worked (the problem
 * lies elsewhere, e.g. the server is overloaded). Never takes longer than `timeoutMs`.
 */
export function diagnoseTransport(options: TemporalConnectionOptions, timeoutMs = 2500): Promise<TransportProblem | undefined> {
  const { host, port } = split(options.address);
  const useTls = options.tls !== undefined || Boolean(options.apiKey);
  return new Promise((resolve) => {
    let settled = false;
    let socket: net.Socket;
    const finish = (problem: TransportProblem | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => finish({ kind: 'no-answer' }), timeoutMs);
    if (useTls) {
      const config = options.tls ?? {};
      const servername = config.serverNameOverride ?? (net.isIP(host) ? undefined : host);
      socket = tls.connect({
        host,
        port,
        ...(servername ? { servername } : {}),
        ...(config.serverRootCACertificate ? { ca: Buffer.from(config.serverRootCACertificate) } : {}),
        ...(config.clientCertPair
          ? { cert: Buffer.from(config.clientCertPair.crt), key: Buffer.from(config.clientCertPair.key) }
          : {}),
        ALPNProtocols: ['h2'],
        // The host name is checked against the override, as the gRPC client does.
        checkServerIdentity: (_host, certificate) => tls.checkServerIdentity(config.serverNameOverride ?? host, certificate),
      });
      // With TLS 1.3 the server refuses a client certificate only after the client's handshake is done: the
      // verdict is its first bytes, frames (accepted) or an alert (an error here).
      let secured = false;
      (socket as tls.TLSSocket).on('secureConnect', () => {
        secured = true;
        socket.write(Buffer.concat([HTTP2_PREFACE, EMPTY_SETTINGS]));
      });
      socket.on('data', () => finish(undefined));
      socket.on('error', (error: NodeJS.ErrnoException) => finish(tlsProblem(error)));
      socket.on('close', () =>
        finish(
          secured && config.clientCertPair
            ? { kind: 'client-certificate-refused', detail: 'the server closed the connection after the handshake' }
            : { kind: 'tls-failed', detail: 'the server closed the connection during the handshake' },
        ),
      );
    } else {
      socket = net.connect({ host, port });
      socket.on('connect', () => socket.write(Buffer.concat([HTTP2_PREFACE, EMPTY_SETTINGS])));
      socket.on('data', (data: Buffer) => {
        // 0x15 0x03: a TLS alert record, the answer of a TLS server to plain text.
        if (data[0] === 0x15 && data[1] === 0x03) finish({ kind: 'tls-required', detail: 'the server answered with a TLS alert' });
        else finish(undefined);
      });
      socket.on('error', (error: NodeJS.ErrnoException) =>
        finish(socketProblem(error) ?? { kind: 'tls-failed', detail: error.message.split('\n')[0] }),
      );
      socket.on('close', () => finish({ kind: 'tls-required', detail: 'the server closed a plain-text connection' }));
    }
  });
}
