/**
 * Interop with the OpenSSL command line (an independent DTLS 1.2 implementation):
 * Depot client -> `openssl s_server -dtls1_2`, and `openssl s_client -dtls1_2` -> Depot server,
 * PSK (RFC 4279 / RFC 6655 / RFC 5487) and ECDHE-ECDSA with certificates (RFC 8422 / RFC 7251 / RFC 5289).
 */
import { after, before, describe, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strict as assert } from 'node:assert';
import { DtlsTransport } from '../../src/dtls/transport.js';
import { CipherSuite } from '../../src/dtls/cipher.js';
import type { DtlsClientOptions } from '../../src/dtls/connection.js';
import type { Peer } from '../../src/coap/transport.js';
import { freeUdpPort, makeTestPki, PeerProcess, requireBinary, sleep, until, type TestPki } from './dtls-helpers.js';

const PSK_HEX = '00112233445566778899aabbccddeeff';
const PSK = Uint8Array.from(Buffer.from(PSK_HEX, 'hex'));
const IDENTITY = 'depot-interop';

const PSK_SUITES = [
  { openssl: 'PSK-AES128-CCM8', id: CipherSuite.TLS_PSK_WITH_AES_128_CCM_8 },
  { openssl: 'PSK-AES128-GCM-SHA256', id: CipherSuite.TLS_PSK_WITH_AES_128_GCM_SHA256 },
  { openssl: 'PSK-AES128-CCM', id: CipherSuite.TLS_PSK_WITH_AES_128_CCM },
];
const ECDHE_SUITES = [
  { openssl: 'ECDHE-ECDSA-AES128-CCM8', id: CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 },
  { openssl: 'ECDHE-ECDSA-AES128-GCM-SHA256', id: CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 },
  { openssl: 'ECDHE-ECDSA-AES128-CCM', id: CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM },
];

const text = (d: Uint8Array): string => Buffer.from(d).toString('utf8');

void describe('DTLS interop with openssl CLI', () => {
  const procs: PeerProcess[] = [];
  const transports: DtlsTransport[] = [];
  let pki: TestPki;

  before(() => {
    requireBinary('openssl');
    pki = makeTestPki();
  });

  after(async () => {
    for (const p of procs) p.kill();
    for (const t of transports) await t.close();
    pki?.cleanup();
  });

  async function depotClientAgainstServer(serverArgs: string[], client: Omit<DtlsClientOptions, 'clock'>, suite: number): Promise<void> {
    const port = await freeUdpPort();
    const srv = new PeerProcess('openssl', ['s_server', '-dtls1_2', '-accept', String(port), '-listen', ...serverArgs]);
    procs.push(srv);
    await srv.waitFor(/ACCEPT/, 5000);
    const t = await DtlsTransport.create({ address: '127.0.0.1', client: { ...client, cipherSuites: [suite] } });
    transports.push(t);
    const got: string[] = [];
    const errors: Error[] = [];
    t.setReceiver((d) => got.push(text(d)));
    t.setErrorListener((_p, e) => errors.push(e));
    const peer = t.peer('127.0.0.1', port);
    t.send(Buffer.from('ping from depot\n'), peer);
    await srv.waitFor(/ping from depot/, 8000);
    const session = t.session(peer);
    assert.equal(session?.cipherSuite.id, suite);
    assert.equal(session?.extendedMasterSecret, true, 'RFC 7627: openssl offers EMS, so it is negotiated');
    srv.write('pong from openssl\n');
    await until(() => got.join('').includes('pong from openssl'), 5000, 'data from openssl s_server');
    assert.deepEqual(errors, []);
    await t.close();
    srv.kill();
  }

  async function opensslClientAgainstServer(
    clientArgs: string[],
    server: object,
    suite: number,
    expectIdentity: (p: Peer) => void,
  ): Promise<void> {
    const t = await DtlsTransport.create({ address: '127.0.0.1', server: { ...server, cipherSuites: [suite] } });
    transports.push(t);
    const errors: Error[] = [];
    const got: { data: string; peer: Peer }[] = [];
    t.setErrorListener((_p, e) => errors.push(e));
    t.setReceiver((d, p) => {
      got.push({ data: text(d), peer: p });
      t.send(Buffer.from(`echo: ${text(d)}`), p);
    });
    const port = t.address().port;
    const cli = new PeerProcess('openssl', ['s_client', '-dtls1_2', '-connect', `127.0.0.1:${port}`, '-ign_eof', ...clientArgs]);
    procs.push(cli);
    await cli.waitFor(/Verify return code|Cipher is|New, /, 8000);
    cli.write('hello from openssl\n');
    const msg = await until(() => got[0], 5000, 'data from openssl s_client');
    assert.equal(msg.data, 'hello from openssl\n');
    expectIdentity(msg.peer);
    assert.equal(t.session(msg.peer)?.cipherSuite.id, suite);
    await cli.waitFor(/echo: hello from openssl/, 5000);
    assert.deepEqual(errors, []);
    cli.kill();
    await t.close();
  }

  for (const s of PSK_SUITES) {
    void test(`RFC 4279 §2 / RFC 6347: Depot client -> openssl s_server, ${s.openssl}`, async () => {
      await depotClientAgainstServer(
        ['-nocert', '-psk', PSK_HEX, '-psk_identity', IDENTITY, '-cipher', s.openssl],
        { psk: { identity: IDENTITY, key: PSK } },
        s.id,
      );
    });

    void test(`RFC 4279 §2 / RFC 6347: openssl s_client -> Depot server, ${s.openssl}`, async () => {
      await opensslClientAgainstServer(
        ['-psk', PSK_HEX, '-psk_identity', IDENTITY, '-cipher', s.openssl],
        { pskLookup: (id: string) => (id === IDENTITY ? PSK : undefined) },
        s.id,
        (p) => assert.deepEqual(p.identity, { kind: 'psk', identity: IDENTITY }),
      );
    });
  }

  for (const s of ECDHE_SUITES) {
    void test(`RFC 8422 §5.4 / RFC 5246 §7.4.8: Depot client -> openssl s_server, ${s.openssl}, mutual certificates`, async () => {
      await depotClientAgainstServer(
        ['-cert', pki.server.certPath, '-key', pki.server.keyPath, '-CAfile', pki.caPem, '-Verify', '2', '-cipher', s.openssl],
        { trustRoots: [pki.ca], certificate: { chain: [pki.client.der], privateKey: pki.client.key } },
        s.id,
      );
    });

    void test(`RFC 8422 §5.4 / RFC 5246 §7.4.8: openssl s_client -> Depot server, ${s.openssl}, mutual certificates`, async () => {
      await opensslClientAgainstServer(
        ['-cert', pki.client.certPath, '-key', pki.client.keyPath, '-CAfile', pki.caPem, '-verify_return_error', '-cipher', s.openssl],
        { trustRoots: [pki.ca], certificate: { chain: [pki.server.der], privateKey: pki.server.key }, clientCertificate: 'require' },
        s.id,
        (p) => {
          assert.equal(p.identity?.kind, 'x509');
          if (p.identity?.kind === 'x509') assert.equal(p.identity.commonName, 'client.depot.test');
        },
      );
    });
  }

  void test('RFC 6347 §4.2.3: small MTU on both sides: openssl and Depot fragment and reassemble the certificate flights', async () => {
    await opensslClientAgainstServer(
      ['-mtu', '256', '-cert', pki.client.certPath, '-key', pki.client.keyPath, '-CAfile', pki.caPem, '-verify_return_error', '-cipher', 'ECDHE-ECDSA-AES128-CCM8'],
      { trustRoots: [pki.ca], certificate: { chain: [pki.server.der], privateKey: pki.server.key }, clientCertificate: 'require', mtu: 256 },
      CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
      (p) => assert.equal(p.identity?.kind, 'x509'),
    );
  });

  void test('RFC 6347 §4.1.2.7: Depot client with the wrong PSK against openssl s_server: openssl drops the Finished silently, Depot reports a handshake timeout', async () => {
    const port = await freeUdpPort();
    const srv = new PeerProcess('openssl', ['s_server', '-dtls1_2', '-accept', String(port), '-listen', '-nocert', '-psk', PSK_HEX, '-psk_identity', IDENTITY, '-cipher', 'PSK-AES128-CCM8']);
    procs.push(srv);
    await srv.waitFor(/ACCEPT/, 5000);
    const t = await DtlsTransport.bind({ host: '127.0.0.1', client: { psk: { identity: IDENTITY, key: new Uint8Array(16).fill(1) }, handshakeTimeoutMs: 2500 } });
    transports.push(t);
    const errors: Error[] = [];
    t.setErrorListener((_p, e) => errors.push(e));
    const peer = t.peer('127.0.0.1', port);
    t.send(Buffer.from('never\n'), peer);
    const e = await until(() => errors[0], 8000, 'handshake failure report');
    assert.match(e.message, /handshake not complete|alert/);
    assert.equal(t.session(peer), undefined);
    assert.doesNotMatch(srv.output, /never/);
    srv.kill();
  });

  void test('RFC 4279 §2: openssl s_client with the wrong PSK fails, Depot reports the failed handshake', async () => {
    const t = await DtlsTransport.create({ address: '127.0.0.1', server: { pskLookup: () => PSK } });
    transports.push(t);
    const errors: Error[] = [];
    t.setErrorListener((_p, e) => errors.push(e));
    const cli = new PeerProcess('openssl', [
      's_client', '-dtls1_2', '-connect', `127.0.0.1:${t.address().port}`, '-psk', 'ffeeddccbbaa99887766554433221100', '-psk_identity', IDENTITY, '-cipher', 'PSK-AES128-CCM8',
    ]);
    procs.push(cli);
    await until(() => errors[0], 8000, 'handshake failure report');
    assert.match(errors[0]!.message, /bad_record_mac|decrypt_error/);
    await cli.waitExit(5000);
    await t.close();
  });
});

void describe('DTLS session resumption interop with openssl CLI (RFC 5246 §7.3)', () => {
  const procs: PeerProcess[] = [];
  const transports: DtlsTransport[] = [];
  const dirs: string[] = [];

  after(async () => {
    for (const p of procs) p.kill();
    for (const t of transports) await t.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  void test('RFC 5246 §7.3: Depot client resumes its session with openssl s_server', async () => {
    requireBinary('openssl');
    const port = await freeUdpPort();
    const srv = new PeerProcess('openssl', ['s_server', '-dtls1_2', '-accept', String(port), '-nocert', '-psk', PSK_HEX, '-psk_identity', IDENTITY, '-cipher', 'PSK-AES128-CCM8']);
    procs.push(srv);
    await srv.waitFor(/ACCEPT/, 5000);
    const t = await DtlsTransport.create({ address: '127.0.0.1', client: { psk: { identity: IDENTITY, key: PSK } } });
    transports.push(t);
    const errors: Error[] = [];
    t.setErrorListener((_p, e) => errors.push(e));
    const peer = t.peer('127.0.0.1', port);
    t.send(Buffer.from('first\n'), peer);
    await srv.waitFor(/first/, 8000);
    assert.equal(t.session(peer)?.resumed, false);
    t.disconnect(peer);
    await sleep(200); // s_server needs a moment to go back to accepting; a retransmission would cover it anyway
    t.send(Buffer.from('second\n'), peer);
    await srv.waitFor(/second/, 8000);
    assert.equal(t.session(peer)?.resumed, true, 'abbreviated handshake');
    assert.match(srv.output, /Reused session-id/);
    assert.deepEqual(errors, []);
    srv.kill();
  });

  void test('RFC 5246 §7.3: openssl s_client resumes its session with the Depot server (-sess_out / -sess_in)', async () => {
    requireBinary('openssl');
    const dir = mkdtempSync(join(tmpdir(), 'depot-dtls-sess-'));
    dirs.push(dir);
    const sess = join(dir, 'session.pem');
    const t = await DtlsTransport.create({ address: '127.0.0.1', server: { pskLookup: (id) => (id === IDENTITY ? PSK : undefined) } });
    transports.push(t);
    const got: { data: string; peer: Peer }[] = [];
    t.setReceiver((d, p) => got.push({ data: text(d), peer: p }));
    const run = async (extra: string[], line: string): Promise<PeerProcess> => {
      const cli = new PeerProcess('openssl', ['s_client', '-dtls1_2', '-connect', `127.0.0.1:${t.address().port}`, '-ign_eof', '-psk', PSK_HEX, '-psk_identity', IDENTITY, '-cipher', 'PSK-AES128-CCM8', ...extra]);
      procs.push(cli);
      await cli.waitFor(/Verify return code/, 8000);
      cli.write(`${line}\n`);
      await until(() => got.find((g) => g.data.startsWith(line)), 5000, `'${line}' from s_client`);
      return cli;
    };
    const first = await run(['-sess_out', sess], 'one');
    assert.match(first.output, /New, /);
    assert.equal(t.session(got[0]!.peer)?.resumed, false);
    first.kill();
    const second = await run(['-sess_in', sess], 'two');
    assert.match(second.output, /Reused, /);
    const peer = got.find((g) => g.data.startsWith('two'))!.peer;
    assert.equal(t.session(peer)?.resumed, true);
    assert.deepEqual(peer.identity, { kind: 'psk', identity: IDENTITY }, 'identity carried over from the original session');
    second.kill();
  });
});
