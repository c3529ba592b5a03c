/**
 * Depot-issued certificates in a real handshake: node:tls (OpenSSL) over loopback,
 * mutual authentication with the server certificate and a device certificate.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';

import { CertificateAuthority } from '../../../src/pki/ca.js';

interface Outcome {
  clientError?: string;
  serverPeerCN?: string;
  serverAuthorized?: boolean;
  serverAuthError?: string;
}

async function handshake(options: {
  root: string;
  server: { cert: string; key: string };
  client?: { cert: string; key: string };
  servername: string;
  host?: string;
}): Promise<Outcome> {
  const outcome: Outcome = {};
  const server = createServer(
    { cert: options.server.cert, key: options.server.key, ca: [options.root], requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    (socket: TLSSocket) => {
      outcome.serverAuthorized = socket.authorized;
      outcome.serverAuthError = socket.authorizationError?.toString();
      outcome.serverPeerCN = socket.getPeerCertificate()?.subject?.CN as string | undefined;
      socket.end('ok');
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    const socket = connect({
      host: options.host ?? '127.0.0.1',
      port,
      servername: options.servername,
      ca: [options.root],
      cert: options.client?.cert,
      key: options.client?.key,
      minVersion: 'TLSv1.2',
    });
    socket.on('data', () => undefined);
    try {
      await once(socket, 'secureConnect');
      await once(socket, 'end');
    } catch (err) {
      outcome.clientError = (err as NodeJS.ErrnoException).code ?? String(err);
    } finally {
      socket.destroy();
    }
  } finally {
    server.close();
    await once(server, 'close');
  }
  return outcome;
}

void test('TLS over loopback: client trusts the Depot server certificate, server trusts the device certificate', async () => {
  const ca = await CertificateAuthority.create();
  const root = ca.exportRoot('pem');
  const srv = await ca.issueServerCertificate({ names: ['depot.test', '127.0.0.1'] });
  const dev = await ca.issueDeviceCertificate({ endpoint: 'urn:imei:867530900000001' });
  const result = await handshake({
    root,
    server: { cert: srv.certificatePem, key: srv.privateKeyPem! },
    client: { cert: dev.certificatePem, key: dev.privateKeyPem! },
    servername: 'depot.test',
  });
  assert.deepEqual(result, { serverAuthorized: true, serverAuthError: undefined, serverPeerCN: 'urn:imei:867530900000001' });
});

void test('TLS over loopback: a wrong host name, a device certificate as server certificate, a foreign root are all refused by OpenSSL', async () => {
  const ca = await CertificateAuthority.create();
  const root = ca.exportRoot('pem');
  const srv = await ca.issueServerCertificate({ names: ['depot.test'] });
  const dev = await ca.issueDeviceCertificate({ endpoint: 'dev-1' });

  const wrongName = await handshake({ root, server: { cert: srv.certificatePem, key: srv.privateKeyPem! }, servername: 'other.test' });
  assert.equal(wrongName.clientError, 'ERR_TLS_CERT_ALTNAME_INVALID');

  // A clientAuth-only certificate presented by a server: OpenSSL's purpose check refuses it.
  const devAsServer = await handshake({ root, server: { cert: dev.certificatePem, key: dev.privateKeyPem! }, servername: 'dev-1' });
  assert.equal(devAsServer.clientError, 'INVALID_PURPOSE');

  const other = await CertificateAuthority.create({ commonName: 'Other Root' });
  const foreign = await handshake({ root: other.exportRoot('pem'), server: { cert: srv.certificatePem, key: srv.privateKeyPem! }, servername: 'depot.test' });
  assert.equal(foreign.clientError, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
});

void test('TLS over loopback: the server refuses a server certificate or a foreign device certificate as client certificate', async () => {
  const ca = await CertificateAuthority.create();
  const root = ca.exportRoot('pem');
  const srv = await ca.issueServerCertificate({ names: ['depot.test'] });
  const server = { cert: srv.certificatePem, key: srv.privateKeyPem! };

  const serverAsClient = await handshake({ root, server, client: server, servername: 'depot.test' });
  assert.equal(serverAsClient.serverAuthorized, false);
  assert.equal(serverAsClient.serverAuthError, 'INVALID_PURPOSE');

  const other = await CertificateAuthority.create({ commonName: 'Other Root' });
  const foreignDev = await other.issueDeviceCertificate({ endpoint: 'stranger' });
  const foreign = await handshake({ root, server, client: { cert: foreignDev.certificatePem, key: foreignDev.privateKeyPem! }, servername: 'depot.test' });
  assert.equal(foreign.serverAuthorized, false);
  assert.equal(foreign.serverAuthError, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  assert.equal(foreign.serverPeerCN, 'stranger');
});
