/**
 * Interop with libcoap's CoAP-over-DTLS tools (OpenSSL and GnuTLS builds): a DTLS handshake
 * plus one hand-built CoAP message each way (RFC 7252 §9: coaps with PSK; RFC 6347).
 */
import { after, describe, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { DtlsTransport } from '../../src/dtls/transport.js';
import type { Peer } from '../../src/coap/transport.js';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestPki, PeerProcess, requireBinary, sleep, until, type TestPki } from './dtls-helpers.js';
import { freeUdpPortPair } from '../support/udp-probe.js';

const KEY_TEXT = 'depot-secret-key';
const KEY = Uint8Array.from(Buffer.from(KEY_TEXT, 'utf8'));
const IDENTITY = 'depot-client';

/** A confirmable GET for "/" with a 2-byte token (RFC 7252 §3). */
function coapGet(messageId: number, token: number): Uint8Array {
  return Uint8Array.of(0x42, 0x01, messageId >> 8, messageId & 0xff, token >> 8, token & 0xff);
}

interface CoapHeader {
  type: number;
  code: number;
  messageId: number;
  token: Uint8Array;
  payload: Uint8Array;
}

/** Just enough of RFC 7252 §3 to find the token and payload. */
function parseCoap(d: Uint8Array): CoapHeader {
  const tkl = d[0]! & 0x0f;
  const token = d.subarray(4, 4 + tkl);
  const marker = d.indexOf(0xff, 4 + tkl);
  return { type: (d[0]! >> 4) & 3, code: d[1]!, messageId: (d[2]! << 8) | d[3]!, token, payload: marker < 0 ? new Uint8Array(0) : d.subarray(marker + 1) };
}

/** A piggybacked 2.05 Content ACK with a text payload. */
function coapContent(req: CoapHeader, payload: string): Uint8Array {
  const head = Uint8Array.of(0x60 | req.token.length, 0x45, req.messageId >> 8, req.messageId & 0xff);
  return Buffer.concat([head, req.token, Buffer.from([0xff]), Buffer.from(payload)]);
}


void describe('DTLS interop with libcoap', () => {
  const procs: PeerProcess[] = [];
  const transports: DtlsTransport[] = [];

  const dirs: string[] = [];

  after(async () => {
    for (const p of procs) p.kill();
    for (const t of transports) await t.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  let pki: TestPki | undefined;
  const testPki = (): TestPki => (pki ??= makeTestPki());
  after(() => pki?.cleanup());

  for (const flavour of ['openssl', 'gnutls']) {
    void test(`RFC 7252 §9.1.3.3 / RFC 8422: coap-client-${flavour} with an X.509 certificate -> Depot DTLS server (mutual)`, async () => {
      const bin = requireBinary(`coap-client-${flavour}`);
      const k = testPki();
      const t = await DtlsTransport.create({
        address: '127.0.0.1',
        server: { trustRoots: [k.ca], certificate: { chain: [k.server.der], privateKey: k.server.key }, clientCertificate: 'require' },
      });
      transports.push(t);
      const errors: Error[] = [];
      const requests: { req: CoapHeader; peer: Peer }[] = [];
      t.setErrorListener((_p, e) => errors.push(e));
      t.setReceiver((d, p) => {
        const req = parseCoap(d);
        requests.push({ req, peer: p });
        if (req.type === 0) t.send(coapContent(req, 'hello certificate'), p);
      });
      const cli = new PeerProcess(bin, ['-B', '10', '-c', k.client.certPath, '-j', k.client.keyPath, '-C', k.caPem, '-m', 'get', `coaps://127.0.0.1:${t.address().port}/pki`]);
      procs.push(cli);
      const first = await until(() => requests[0], 10_000, `a CoAP request from coap-client-${flavour} over X.509`);
      assert.equal(first.peer.identity?.kind, 'x509');
      if (first.peer.identity?.kind === 'x509') assert.equal(first.peer.identity.commonName, 'client.depot.test');
      await cli.waitFor(/hello certificate/, 5000);
      assert.deepEqual(errors, []);
      cli.kill();
      await t.close();
    });

    void test(`RFC 7252 §9.1.3.3 / RFC 8422: Depot DTLS client with an X.509 certificate -> coap-server-${flavour} (mutual)`, async () => {
      const bin = requireBinary(`coap-server-${flavour}`);
      const k = testPki();
      const port = await freeUdpPortPair();
      const srv = new PeerProcess(bin, ['-A', '127.0.0.1', '-p', String(port), '-c', k.server.certPath, '-j', k.server.keyPath, '-C', k.caPem]);
      procs.push(srv);
      await sleep(300);
      const t = await DtlsTransport.create({ address: '127.0.0.1', client: { trustRoots: [k.ca], certificate: { chain: [k.client.der], privateKey: k.client.key } } });
      transports.push(t);
      const errors: Error[] = [];
      const responses: CoapHeader[] = [];
      t.setErrorListener((_p, e) => errors.push(e));
      t.setReceiver((d) => responses.push(parseCoap(d)));
      const peer = t.peer('127.0.0.1', port + 1);
      t.send(coapGet(0x7777, 0x0102), peer);
      const res = await until(() => responses[0], 10_000, `a CoAP response from coap-server-${flavour} over X.509`);
      assert.equal(res.code, 0x45);
      assert.match(Buffer.from(res.payload).toString('utf8'), /libcoap/i);
      assert.equal(peer.identity?.kind, 'x509');
      if (peer.identity?.kind === 'x509') assert.equal(peer.identity.commonName, 'server.depot.test');
      assert.deepEqual(errors, []);
      await t.close();
      srv.kill();
    });
  }

  /** A P-256 key pair; the private key also written as a SEC1 PEM file, the format libcoap/GnuTLS reads with -M. */
  function rpkKey(): { privateKey: ReturnType<typeof generateKeyPairSync>['privateKey']; spki: Uint8Array; file: string } {
    const dir = mkdtempSync(join(tmpdir(), 'depot-dtls-rpk-'));
    dirs.push(dir);
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const file = join(dir, 'rpk.pem');
    writeFileSync(file, privateKey.export({ type: 'sec1', format: 'pem' }));
    return { privateKey, spki: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })), file };
  }

  void test('RFC 7250 §4: coap-client-gnutls with a raw public key -> Depot DTLS server (RPK both ways)', async () => {
    const bin = requireBinary('coap-client-gnutls');
    const server = rpkKey();
    const client = rpkKey();
    const t = await DtlsTransport.create({
      address: '127.0.0.1',
      server: { rawPublicKey: { privateKey: server.privateKey }, verifyRawPublicKey: (spki) => Buffer.compare(Buffer.from(spki), Buffer.from(client.spki)) === 0 },
    });
    transports.push(t);
    const errors: Error[] = [];
    const requests: { req: CoapHeader; peer: Peer; suite?: string }[] = [];
    t.setErrorListener((_p, e) => errors.push(e));
    t.setReceiver((d, p) => {
      const req = parseCoap(d);
      requests.push({ req, peer: p, suite: t.session(p)?.cipherSuite.keyExchange });
      if (req.type === 0) t.send(coapContent(req, 'hello raw key'), p);
    });
    const cli = new PeerProcess(bin, ['-B', '10', '-M', client.file, '-m', 'get', `coaps://127.0.0.1:${t.address().port}/rpk`]);
    procs.push(cli);
    const first = await until(() => requests[0], 10_000, 'a CoAP request over RPK');
    assert.equal(first.peer.identity?.kind, 'rpk');
    if (first.peer.identity?.kind === 'rpk') assert.deepEqual([...first.peer.identity.publicKeyDer], [...client.spki]);
    assert.equal(first.suite, 'ecdhe_ecdsa');
    await cli.waitFor(/hello raw key/, 5000);
    assert.deepEqual(errors, []);
    cli.kill();
    await t.close();
  });

  void test('RFC 7250 §4: Depot DTLS client with a raw public key -> coap-server-gnutls (RPK both ways)', async () => {
    const bin = requireBinary('coap-server-gnutls');
    const server = rpkKey();
    const client = rpkKey();
    const port = await freeUdpPortPair();
    const srv = new PeerProcess(bin, ['-A', '127.0.0.1', '-p', String(port), '-M', server.file]);
    procs.push(srv);
    await sleep(300);
    const t = await DtlsTransport.create({
      address: '127.0.0.1',
      client: { rawPublicKey: { privateKey: client.privateKey }, verifyRawPublicKey: (spki) => Buffer.compare(Buffer.from(spki), Buffer.from(server.spki)) === 0 },
    });
    transports.push(t);
    const errors: Error[] = [];
    const responses: CoapHeader[] = [];
    t.setErrorListener((_p, e) => errors.push(e));
    t.setReceiver((d) => responses.push(parseCoap(d)));
    const peer = t.peer('127.0.0.1', port + 1);
    t.send(coapGet(0x4321, 0xcafe), peer);
    const res = await until(() => responses[0], 10_000, 'a CoAP response over RPK');
    assert.equal(res.code, 0x45);
    assert.match(Buffer.from(res.payload).toString('utf8'), /libcoap/i);
    assert.equal(peer.identity?.kind, 'rpk');
    assert.deepEqual(errors, []);
    await t.close();
    srv.kill();
  });

  for (const flavour of ['openssl', 'gnutls']) {
    void test(`RFC 7252 §9.1 / RFC 6347: coap-client-${flavour} -> Depot DTLS server (PSK), one CoAP exchange`, async () => {
      const bin = requireBinary(`coap-client-${flavour}`);
      const t = await DtlsTransport.create({ address: '127.0.0.1', server: { pskLookup: (id) => (id === IDENTITY ? KEY : undefined) } });
      transports.push(t);
      const errors: Error[] = [];
      const requests: { req: CoapHeader; peer: Peer }[] = [];
      t.setErrorListener((_p, e) => errors.push(e));
      t.setReceiver((d, p) => {
        const req = parseCoap(d);
        requests.push({ req, peer: p });
        if (req.type === 0) t.send(coapContent(req, 'hello from depot'), p);
      });
      const cli = new PeerProcess(bin, ['-B', '10', '-u', IDENTITY, '-k', KEY_TEXT, '-m', 'get', `coaps://127.0.0.1:${t.address().port}/depot`]);
      procs.push(cli);
      const first = await until(() => requests[0], 10_000, `a CoAP request from coap-client-${flavour}`);
      assert.equal(first.req.code, 0x01, 'GET');
      assert.deepEqual(first.peer.identity, { kind: 'psk', identity: IDENTITY });
      await cli.waitFor(/hello from depot/, 5000);
      assert.deepEqual(errors, []);
      cli.kill();
      await t.close();
    });

    void test(`RFC 7252 §9.1 / RFC 6347: Depot DTLS client (PSK) -> coap-server-${flavour}, one CoAP exchange`, async () => {
      const bin = requireBinary(`coap-server-${flavour}`);
      const port = await freeUdpPortPair();
      const srv = new PeerProcess(bin, ['-A', '127.0.0.1', '-p', String(port), '-k', KEY_TEXT, '-h', 'depot-hint', '-v', '6']);
      procs.push(srv);
      await sleep(300);
      const t = await DtlsTransport.create({ address: '127.0.0.1', client: { psk: { identity: IDENTITY, key: KEY } } });
      transports.push(t);
      const errors: Error[] = [];
      const responses: CoapHeader[] = [];
      t.setErrorListener((_p, e) => errors.push(e));
      t.setReceiver((d) => responses.push(parseCoap(d)));
      const peer = t.peer('127.0.0.1', port + 1);
      t.send(coapGet(0x1234, 0xbeef), peer);
      const res = await until(() => responses[0], 10_000, `a CoAP response from coap-server-${flavour}`);
      assert.equal(res.messageId, 0x1234);
      assert.deepEqual([...res.token], [0xbe, 0xef]);
      assert.equal(res.code, 0x45, '2.05 Content');
      assert.match(Buffer.from(res.payload).toString('utf8'), /libcoap/i);
      assert.deepEqual(errors, []);
      await t.close();
      srv.kill();
    });
  }
});
