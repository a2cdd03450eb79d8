/**
 * TLS for tests: self-signed certificates made with `openssl`, and a TLS-terminating proxy in front of the tests'
 * Temporal dev server (which serves plain text only: `temporal server start-dev` has no TLS flags). gRPC is HTTP/2,
 * which passes through a raw TLS tunnel unchanged once ALPN has agreed on `h2`.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';

export interface TestCertificates {
  dir: string;
  /** The CA that signed the server's and the client's certificates. */
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** Another CA, which signed nothing the server shows: a client that trusts only it must refuse the server. */
  otherCaFile: string;
  /** A client certificate signed by the other CA: the server must refuse it. */
  strangerCertFile: string;
  strangerKeyFile: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`,
      '-days', '2', '-subj', `/CN=rememr1 test ${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
}

function makeLeaf(dir: string, name: string, ca: string, extensions: string): void {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
  fs.writeFileSync(path.join(dir, `${name}.ext`), extensions);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
}

/** A CA, a server certificate for localhost / 127.0.0.1, a client certificate, and a second CA with its own client. */
export function makeTestCertificates(dir: string): TestCertificates {
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  makeLeaf(dir, 'server', 'ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n');
  makeLeaf(dir, 'client', 'ca', 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n');
  makeLeaf(dir, 'stranger', 'other-ca', 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n');
  const file = (name: string): string => path.join(dir, name);
  return {
    dir,
    caFile: file('ca.pem'),
    serverCertFile: file('server.pem'),
    serverKeyFile: file('server.key'),
    clientCertFile: file('client.pem'),
    clientKeyFile: file('client.key'),
    otherCaFile: file('other-ca.pem'),
    strangerCertFile: file('stranger.pem'),
    strangerKeyFile: file('stranger.key'),
  };
}

export interface TlsProxy {
  address: string;
  /** Connections whose TLS handshake (with a client certificate the CA signed) succeeded. */
  authorizedConnections(): number;
  /** Handshakes refused (e.g. an unknown client certificate). */
  refusedHandshakes(): number;
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1 with the server certificate, requires a client certificate signed by the CA (mutual TLS),
 * and pipes every accepted connection to `target` in plain text.
 */
export function startTlsProxy(certificates: TestCertificates, target: string): Promise<TlsProxy> {
  const separator = target.lastIndexOf(':');
  const targetHost = target.slice(0, separator);
  const targetPort = Number(target.slice(separator + 1));
  let authorized = 0;
  let refused = 0;
  const sockets = new Set<net.Socket>();
  const server = tls.createServer(
    {
      cert: fs.readFileSync(certificates.serverCertFile),
      key: fs.readFileSync(certificates.serverKeyFile),
      ca: fs.readFileSync(certificates.caFile),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (secure) => {
      authorized += 1;
      const upstream = net.connect(targetPort, targetHost);
      for (const socket of [secure, upstream]) {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => {
          secure.destroy();
          upstream.destroy();
        });
      }
      secure.pipe(upstream).pipe(secure);
    },
  );
  server.on('tlsClientError', () => (refused += 1));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        address: `127.0.0.1:${port}`,
        authorizedConnections: () => authorized,
        refusedHandshakes: () => refused,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
