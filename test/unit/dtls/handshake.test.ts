import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { makePair, PEER, type Pair } from './harness.js';
import { CipherSuite } from '../../../src/dtls/cipher.js';
import { utf8 } from '../../../src/dtls/bytes.js';
import { AlertDescription, ContentType, HandshakeType } from '../../../src/dtls/constants.js';
import { DtlsConnection, DtlsError } from '../../../src/dtls/connection.js';
import { DtlsServerEndpoint } from '../../../src/dtls/server.js';
import { decodeRecords, encodeRecord } from '../../../src/dtls/record.js';
import { decodeClientHello, decodeServerHello, encodeClientHello } from '../../../src/dtls/messages.js';
import { decodeFragments, encodeFragment } from '../../../src/dtls/fragment.js';
import { ManualClock } from '../../../src/util/clock.js';
import * as fx from './fixtures.js';

const KEY = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
const pskClient = { psk: { identity: 'dev-1', key: KEY } };
const pskServer = { pskLookup: (id: string) => (id === 'dev-1' ? KEY : undefined) };
const der = (pem: string): Uint8Array => new Uint8Array(new X509Certificate(pem).raw);
const CA = new X509Certificate(fx.CA_CERT);
const ROGUE = new X509Certificate(fx.ROGUE_CERT);
const serverCert = { chain: [der(fx.SERVER_CERT)], privateKey: createPrivateKey(fx.SERVER_KEY) };
const clientCert = { chain: [der(fx.CLIENT_CERT)], privateKey: createPrivateKey(fx.CLIENT_KEY) };
const rogueClientCert = { chain: [der(fx.ROGUE_CLIENT_CERT)], privateKey: createPrivateKey(fx.ROGUE_CLIENT_KEY) };

const bothUp = (p: Pair) => (): boolean => p.clientLog.connected !== undefined && p.serverLog.connected !== undefined;
const text = (d: Uint8Array): string => Buffer.from(d).toString();

function exchange(p: Pair): void {
  p.client.send(utf8.encode('to server'));
  p.server.send(PEER, utf8.encode('to client'));
  p.pump();
  assert.deepEqual(p.serverLog.data.map(text), ['to server']);
  assert.deepEqual(p.clientLog.data.map(text), ['to client']);
}

function recordTypes(d: Uint8Array): string[] {
  return decodeRecords(d).records.map((r) => {
    if (r.type === ContentType.handshake && r.epoch === 0) return `hs${decodeFragments(r.fragment)[0]?.msgType}`;
    return `${r.type}/e${r.epoch}`;
  });
}

for (const suite of [CipherSuite.TLS_PSK_WITH_AES_128_CCM_8, CipherSuite.TLS_PSK_WITH_AES_128_GCM_SHA256]) {
  void test(`RFC 6347 §4.2.1, RFC 4279: full PSK handshake in memory, suite 0x${suite.toString(16)}, data both ways`, () => {
    const p = makePair({ ...pskClient, cipherSuites: [suite] }, pskServer);
    p.client.connect();
    p.pump();
    assert.equal(p.clientLog.closed, undefined);
    assert.equal(p.serverLog.closed, undefined);
    assert.equal(p.clientLog.connected?.cipherSuite.id, suite);
    assert.equal(p.clientLog.connected?.extendedMasterSecret, true, 'RFC 7627 negotiated');
    assert.deepEqual(p.serverLog.connected?.peerIdentity, { kind: 'psk', identity: 'dev-1' });
    exchange(p);
    assert.equal(p.clock.pending(), 0, 'no timers left after the handshake');
  });
}

void test('RFC 7627 §5.2: without the extension on one side, the classic master secret is used', () => {
  const p = makePair({ ...pskClient, extendedMasterSecret: false }, pskServer);
  p.client.connect();
  p.pump();
  assert.equal(p.clientLog.connected?.extendedMasterSecret, false);
  assert.equal(p.serverLog.connected?.extendedMasterSecret, false);
  exchange(p);
});

void test('RFC 6347 §4.2.4.1: retransmission timer starts at 1 s, doubles, and is bounded; then the state is freed', () => {
  const clock = new ManualClock();
  const times: number[] = [];
  let closed: DtlsError | undefined;
  const c = DtlsConnection.client(
    { clock, ...pskClient, maxRetransmissions: 6, handshakeTimeoutMs: 1_000_000 },
    { send: () => times.push(clock.now()), closed: (e) => (closed = e) },
  );
  c.connect();
  clock.advance(200_000);
  assert.deepEqual(times, [0, 1000, 3000, 7000, 15000, 31000, 63000]);
  assert.equal(closed?.code, 'handshake_timeout');
  assert.equal(clock.pending(), 0);
  assert.equal(c.isClosed, true);
});

void test('RFC 6347 §4.2.4.1: the timer value is capped by maxRetransmitMs', () => {
  const clock = new ManualClock();
  const times: number[] = [];
  const c = DtlsConnection.client({ clock, ...pskClient, maxRetransmitMs: 4000, maxRetransmissions: 5 }, { send: () => times.push(clock.now()) });
  c.connect();
  clock.advance(100_000);
  assert.deepEqual(times, [0, 1000, 3000, 7000, 11000, 15000]);
});

void test('RFC 6347 §4.2.4: every single lost datagram of the handshake is recovered by retransmission', () => {
  // Count the datagrams of a clean handshake, then lose each one in turn.
  const clean = makePair(pskClient, pskServer);
  clean.client.connect();
  clean.pump();
  const total = clean.sent.toServer + clean.sent.toClient;
  assert.ok(total >= 6);
  for (let lose = 0; lose < total; lose++) {
    const p = makePair(pskClient, pskServer);
    p.client.connect();
    p.settle(bothUp(p), (_dir, _d, i) => i === lose);
    assert.ok(p.clientLog.connected && p.serverLog.connected, `handshake completes after losing datagram #${lose}`);
    assert.ok(p.sent.toServer + p.sent.toClient > total, `something was retransmitted after losing #${lose}`);
    exchange(p);
  }
});

void test('RFC 6347 §4.2.4: a lost final server flight is resent when the client retransmits its own', () => {
  const p = makePair(pskClient, pskServer);
  p.client.connect();
  let lost = false;
  const dropFinalFlight = (dir: string, d: Uint8Array): boolean => {
    if (!lost && dir === 'toClient' && recordTypes(d).includes('20/e0')) return (lost = true);
    return false;
  };
  p.pump(dropFinalFlight);
  assert.ok(lost);
  assert.ok(p.serverLog.connected, 'server is done');
  assert.equal(p.clientLog.connected, undefined, 'client is still waiting');
  p.clock.advance(999);
  p.pump();
  assert.equal(p.clientLog.connected, undefined);
  p.clock.advance(1);
  p.pump();
  assert.ok(p.clientLog.connected, 'client retransmitted flight 5, server answered with flight 6');
  exchange(p);
});

void test('RFC 6347 §4.2.4: heavy random loss (40%) still completes', () => {
  for (let seed = 1; seed <= 20; seed++) {
    let x = seed;
    const lossy = (): boolean => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x / 2147483648 < 0.4;
    };
    const patient = { handshakeTimeoutMs: 600_000, maxRetransmissions: 30, maxRetransmitMs: 4000 };
    const p = makePair({ ...pskClient, ...patient }, { ...pskServer, ...patient });
    p.client.connect();
    p.settle(bothUp(p), lossy, 250, 200_000);
    assert.ok(p.clientLog.connected && p.serverLog.connected, `seed ${seed}`);
  }
});

void test('RFC 6347 §4.2.4: handshake timeout frees the server association', () => {
  const p = makePair(pskClient, { ...pskServer, handshakeTimeoutMs: 10_000 });
  p.client.connect();
  // Deliver the first two exchanges (cookie round trip and the ClientHello with cookie), then silence.
  p.settle(() => false, (_dir, _d, i) => i >= 3, 500, 30_000);
  assert.equal(p.server.size, 0);
  assert.ok(p.serverLog.closed instanceof DtlsError);
  assert.equal((p.serverLog.closed).code, 'handshake_timeout');
  p.client.close();
  assert.equal(p.clock.pending(), 0, 'no timers of the server association remain');
});

void test('RFC 5246 §7.4.9, RFC 4279 §2: a wrong PSK ends the handshake with an alert on both sides, no exception', () => {
  const p = makePair(pskClient, { pskLookup: () => new Uint8Array(16).fill(0xee) });
  p.client.connect();
  p.settle(() => p.clientLog.closed !== undefined && p.serverLog.closed !== undefined);
  const s = p.serverLog.closed as DtlsError;
  const c = p.clientLog.closed as DtlsError;
  assert.equal(s.code, 'alert_sent');
  assert.ok(s.alert === AlertDescription.bad_record_mac || s.alert === AlertDescription.decrypt_error, s.message);
  assert.equal(c.code, 'alert_received');
  assert.equal(c.alert, s.alert);
  assert.equal(p.server.size, 0);
  assert.equal(p.clock.pending(), 0);
});

void test('RFC 4279 §2: an unknown PSK identity is refused with unknown_psk_identity', () => {
  const p = makePair({ psk: { identity: 'stranger', key: KEY } }, pskServer);
  p.client.connect();
  p.pump();
  assert.equal((p.serverLog.closed as DtlsError).alert, AlertDescription.unknown_psk_identity);
  assert.equal((p.clientLog.closed as DtlsError).alert, AlertDescription.unknown_psk_identity);
});

void test('RFC 5246 §7.4.1.4.1: no common cipher suite gives handshake_failure', () => {
  const p = makePair({ ...pskClient, cipherSuites: [CipherSuite.TLS_PSK_WITH_AES_128_GCM_SHA256] }, { ...pskServer, cipherSuites: [CipherSuite.TLS_PSK_WITH_AES_128_CCM_8] });
  p.client.connect();
  p.pump();
  assert.equal((p.clientLog.closed as DtlsError).alert, AlertDescription.handshake_failure);
});

void test('RFC 5246 §7.2.1: close_notify closes both sides cleanly and frees the server association', () => {
  const p = makePair(pskClient, pskServer);
  p.client.connect();
  p.pump();
  p.client.close();
  p.pump();
  assert.equal(p.clientLog.closed, 'clean');
  assert.equal(p.serverLog.closed, 'clean');
  assert.equal(p.server.size, 0);
  assert.equal(p.client.send(utf8.encode('late')), false);
});

void test('RFC 6347 §4.1.2.6: a replayed application record is delivered once', () => {
  const p = makePair(pskClient, pskServer);
  p.client.connect();
  p.pump();
  p.client.send(utf8.encode('once'));
  const d = p.toServer[0]!;
  p.pump();
  p.server.handleDatagram(PEER, d);
  p.server.handleDatagram(PEER, d);
  assert.deepEqual(p.serverLog.data.map(text), ['once']);
});

void test('RFC 6347 §4.1.2.7: a forged application record is silently discarded', () => {
  const p = makePair(pskClient, pskServer);
  p.client.connect();
  p.pump();
  p.client.send(utf8.encode('genuine'));
  const d = p.toServer.shift()!.slice();
  d[d.length - 1]! ^= 1;
  p.server.handleDatagram(PEER, d);
  assert.deepEqual(p.serverLog.data, []);
  assert.equal(p.server.connection(PEER)?.isEstablished, true);
});

void test('data sent before the handshake completes is queued and delivered afterwards', () => {
  const p = makePair(pskClient, pskServer);
  p.client.connect();
  p.client.send(utf8.encode('early 1'));
  p.client.send(utf8.encode('early 2'));
  p.pump();
  assert.deepEqual(p.serverLog.data.map(text), ['early 1', 'early 2']);
});

interface Internals {
  protect(type: number, epoch: number, payload: Uint8Array): Uint8Array;
}

void test('RFC 5746 / RFC 5246 §7.2.2: a ClientHello in an established session is refused with no_renegotiation', () => {
  const p = makePair(pskClient, pskServer);
  p.client.connect();
  p.pump();
  const hello = encodeFragment({ msgType: HandshakeType.client_hello, length: 3, messageSeq: 4, fragmentOffset: 0, body: Uint8Array.of(1, 2, 3) });
  const record = (p.client as unknown as Internals).protect(ContentType.handshake, 1, hello);
  p.server.handleDatagram(PEER, record);
  assert.equal(p.toClient.length, 1);
  const reply = decodeRecords(p.toClient[0]!).records;
  assert.equal(reply.length, 1);
  assert.equal(reply[0]!.type, ContentType.alert);
  assert.equal(reply[0]!.epoch, 1, 'protected warning alert');
  p.pump();
  assert.equal(p.server.connection(PEER)?.isEstablished, true);
  assert.equal(p.client.isEstablished, true);
  exchange(p);
});

void test('RFC 5246 §7.4.1.1: a HelloRequest in an established session gets no_renegotiation from the client', () => {
  const p = makePair(pskClient, pskServer);
  p.client.connect();
  p.pump();
  const conn = p.server.connection(PEER)!;
  const req = encodeFragment({ msgType: HandshakeType.hello_request, length: 0, messageSeq: 4, fragmentOffset: 0, body: new Uint8Array(0) });
  p.client.handleDatagram((conn as unknown as Internals).protect(ContentType.handshake, 1, req));
  assert.equal(p.toServer.length, 1);
  assert.equal(decodeRecords(p.toServer[0]!).records[0]!.type, ContentType.alert);
  p.pump();
  assert.equal(p.client.isEstablished, true);
  exchange(p);
});

void test('RFC 6347 §4.2.8: a new ClientHello from the same address (client restart) needs a cookie, then replaces the association', () => {
  const p = makePair(pskClient, pskServer);
  p.client.connect();
  p.pump();
  const old = p.server.connection(PEER);
  const out: Uint8Array[] = [];
  let up = false;
  const again = DtlsConnection.client({ clock: p.clock, ...pskClient }, { send: (d) => out.push(d), connected: () => (up = true) });
  again.connect();
  p.server.handleDatagram(PEER, out.shift()!);
  assert.equal(p.server.connection(PEER), old, 'no change before the cookie exchange');
  assert.equal(recordTypes(p.toClient[0]!)[0], `hs${HandshakeType.hello_verify_request}`);
  for (let i = 0; i < 20 && !up; i++) {
    for (const d of p.toClient.splice(0)) again.handleDatagram(d);
    for (const d of out.splice(0)) p.server.handleDatagram(PEER, d);
  }
  assert.ok(up);
  assert.notEqual(p.server.connection(PEER), old);
  assert.equal(old?.isClosed, true);
});

// ---------------------------------------------------------------- certificates

const certServer = { certificate: serverCert, trustRoots: [CA] };
const certClient = { certificate: clientCert, trustRoots: [CA] };

for (const suite of [CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]) {
  void test(`RFC 8422 §5.4, RFC 5246 §7.4.6/§7.4.8: ECDHE-ECDSA with mutual certificates, suite 0x${suite.toString(16)}`, () => {
    const p = makePair({ ...certClient, cipherSuites: [suite] }, certServer);
    p.client.connect();
    p.pump();
    assert.equal(p.clientLog.closed, undefined);
    const s = p.serverLog.connected?.peerIdentity;
    const c = p.clientLog.connected?.peerIdentity;
    assert.equal(p.clientLog.connected?.cipherSuite.id, suite);
    assert.ok(s?.kind === 'x509' && s.commonName === 'client.unit.test', JSON.stringify(s));
    assert.ok(c?.kind === 'x509' && c.commonName === 'server.unit.test');
    assert.match(s.subject, /O=Depot Test/);
    exchange(p);
  });
}

void test('RFC 6347 §4.2.3: a small MTU fragments the certificate flight; reordered datagrams still reassemble', () => {
  const p = makePair({ ...certClient, mtu: 256 }, { ...certServer, mtu: 256 });
  p.client.connect();
  let maxSize = 0;
  for (let round = 0; round < 50 && !bothUp(p)(); round++) {
    const s = p.toServer.splice(0).reverse();
    const c = p.toClient.splice(0).reverse();
    for (const d of s) {
      maxSize = Math.max(maxSize, d.length);
      p.server.handleDatagram(PEER, d);
    }
    for (const d of c) {
      maxSize = Math.max(maxSize, d.length);
      p.client.handleDatagram(d);
    }
  }
  assert.ok(bothUp(p)(), 'handshake completes');
  assert.ok(maxSize <= 256, `datagrams fit the MTU (max ${maxSize})`);
  assert.ok(p.sent.toClient > 4, 'the server flight was split over several datagrams');
});

void test('RFC 5246 §7.4.2: a server certificate from an unknown CA is refused with unknown_ca', () => {
  const p = makePair({ ...certClient, trustRoots: [ROGUE] }, certServer);
  p.client.connect();
  p.pump();
  assert.equal((p.clientLog.closed as DtlsError).alert, AlertDescription.unknown_ca);
  assert.equal((p.serverLog.closed as DtlsError).alert, AlertDescription.unknown_ca);
});

void test('RFC 5246 §7.4.6: a client certificate from an unknown CA is refused with unknown_ca', () => {
  const p = makePair({ certificate: rogueClientCert, trustRoots: [CA] }, certServer);
  p.client.connect();
  p.pump();
  assert.equal((p.serverLog.closed as DtlsError).alert, AlertDescription.unknown_ca);
});

void test('RFC 5246 §7.4.6: a required client certificate that is missing gives handshake_failure', () => {
  const p = makePair({ trustRoots: [CA] }, { ...certServer, clientCertificate: 'require' });
  p.client.connect();
  p.pump();
  assert.equal((p.serverLog.closed as DtlsError).alert, AlertDescription.handshake_failure);
});

void test('RFC 5246 §7.4.6: with clientCertificate "request", a client without a certificate is accepted', () => {
  const p = makePair({ trustRoots: [CA] }, { ...certServer, clientCertificate: 'request' });
  p.client.connect();
  p.pump();
  assert.ok(p.serverLog.connected);
  assert.equal(p.serverLog.connected.peerIdentity, undefined);
});

void test('RFC 5280 §4.1.2.5: an expired server certificate is refused with certificate_expired', () => {
  const p = makePair({ ...certClient, wallClock: () => Date.parse('2200-01-01T00:00:00Z') }, certServer);
  p.client.connect();
  p.pump();
  assert.equal((p.clientLog.closed as DtlsError).alert, AlertDescription.certificate_expired);
});

void test('RFC 8422 §5.4: a tampered ServerKeyExchange signature is refused with decrypt_error', () => {
  const p = makePair(certClient, certServer);
  p.client.connect();
  const tamper = (dir: string, d: Uint8Array): Uint8Array | undefined => {
    if (dir !== 'toClient') return undefined;
    const out = d.slice();
    let off = 0;
    for (const r of decodeRecords(d).records) {
      const fragStart = off + 13;
      if (r.type === ContentType.handshake && r.epoch === 0 && decodeFragments(r.fragment)[0]?.msgType === HandshakeType.server_key_exchange) {
        // Flip a bit of the ECDH public point (inside the signed params).
        out[fragStart + 12 + 10]! ^= 1;
      }
      off = fragStart + r.fragment.length;
    }
    return out;
  };
  p.pump(tamper);
  assert.equal((p.clientLog.closed as DtlsError).alert, AlertDescription.decrypt_error);
});

// ---------------------------------------------------------------- raw public keys (RFC 7250)

const rpk = (pem: string): { privateKey: ReturnType<typeof createPrivateKey>; spki: Uint8Array } => {
  const privateKey = createPrivateKey(pem);
  return { privateKey, spki: new Uint8Array(createPublicKey(privateKey).export({ type: 'spki', format: 'der' })) };
};
const RPK_SERVER = rpk(fx.SERVER_KEY);
const RPK_CLIENT = rpk(fx.CLIENT_KEY);
const trusts = (k: Uint8Array) => (spki: Uint8Array): boolean => Buffer.compare(Buffer.from(spki), Buffer.from(k)) === 0;

void test('RFC 7250 §4: raw public keys both ways; identities are the SubjectPublicKeyInfo', () => {
  const p = makePair(
    { rawPublicKey: { privateKey: RPK_CLIENT.privateKey }, verifyRawPublicKey: trusts(RPK_SERVER.spki) },
    { rawPublicKey: { privateKey: RPK_SERVER.privateKey }, verifyRawPublicKey: trusts(RPK_CLIENT.spki) },
  );
  p.client.connect();
  p.pump();
  assert.deepEqual(p.serverLog.connected?.peerIdentity, { kind: 'rpk', publicKeyDer: RPK_CLIENT.spki });
  assert.deepEqual(p.clientLog.connected?.peerIdentity, { kind: 'rpk', publicKeyDer: RPK_SERVER.spki });
  exchange(p);
});

void test('RFC 7250 §4: an untrusted raw public key is refused with bad_certificate', () => {
  const p = makePair(
    { rawPublicKey: { privateKey: RPK_CLIENT.privateKey }, verifyRawPublicKey: () => true },
    { rawPublicKey: { privateKey: RPK_SERVER.privateKey }, verifyRawPublicKey: trusts(RPK_SERVER.spki) },
  );
  p.client.connect();
  p.pump();
  assert.equal((p.serverLog.closed as DtlsError).alert, AlertDescription.bad_certificate);
});

void test('RFC 7250 §4.2: a server with both an X.509 certificate and a raw key answers each client in its own type', () => {
  const server = { ...certServer, rawPublicKey: { privateKey: RPK_SERVER.privateKey }, verifyRawPublicKey: trusts(RPK_CLIENT.spki) };
  const x509 = makePair(certClient, server);
  x509.client.connect();
  x509.pump();
  assert.equal(x509.clientLog.connected?.peerIdentity?.kind, 'x509');
  assert.equal(x509.serverLog.connected?.peerIdentity?.kind, 'x509');
  const raw = makePair({ rawPublicKey: { privateKey: RPK_CLIENT.privateKey }, verifyRawPublicKey: trusts(RPK_SERVER.spki) }, server);
  raw.client.connect();
  raw.pump();
  assert.equal(raw.clientLog.connected?.peerIdentity?.kind, 'rpk');
  assert.equal(raw.serverLog.connected?.peerIdentity?.kind, 'rpk');
});

// ---------------------------------------------------------------- asynchronous PSK store

void test('RFC 4279 §2: an asynchronous PSK lookup holds the handshake until the key is known', async () => {
  let release: (k: Uint8Array | undefined) => void = () => {};
  const p = makePair(pskClient, { pskLookup: () => new Promise<Uint8Array | undefined>((r) => (release = r)) });
  p.client.connect();
  p.pump();
  assert.equal(p.serverLog.connected, undefined, 'waiting for the store');
  assert.equal(p.server.connection(PEER)?.isClosed, false);
  release(KEY);
  await new Promise((r) => setImmediate(r));
  p.pump();
  assert.ok(p.serverLog.connected && p.clientLog.connected);
  exchange(p);
});

void test('RFC 4279 §2: an asynchronous lookup that finds nothing gives unknown_psk_identity; a failing store internal_error', async () => {
  const none = makePair(pskClient, { pskLookup: () => Promise.resolve(undefined) });
  none.client.connect();
  none.pump();
  await new Promise((r) => setImmediate(r));
  none.pump();
  assert.equal((none.clientLog.closed as DtlsError).alert, AlertDescription.unknown_psk_identity);
  const broken = makePair(pskClient, { pskLookup: () => Promise.reject(new Error('database down')) });
  broken.client.connect();
  broken.pump();
  await new Promise((r) => setImmediate(r));
  broken.pump();
  assert.equal((broken.serverLog.closed as DtlsError).alert, AlertDescription.internal_error);
  assert.doesNotMatch((broken.serverLog.closed as DtlsError).message, /database/, 'store errors are not echoed');
});

void test('RFC 6347 §4.1: application data that overtakes the server Finished is delivered after the handshake', () => {
  const p = makePair(pskClient, pskServer);
  p.client.connect();
  // Hold back the server's final flight, let the server send data, then deliver data first.
  let held: Uint8Array[] = [];
  p.pump((dir, d) => {
    if (dir === 'toClient' && recordTypes(d).includes('20/e0')) {
      held.push(d);
      return true;
    }
    return false;
  });
  assert.ok(p.serverLog.connected);
  p.server.send(PEER, utf8.encode('early bird'));
  const data = p.toClient.splice(0);
  for (const d of data) p.client.handleDatagram(d); // before the CCS/Finished: epoch 1 unknown yet, buffered
  for (const d of held) p.client.handleDatagram(d);
  held = [];
  assert.ok(p.clientLog.connected);
  assert.deepEqual(p.clientLog.data.map(text), ['early bird']);
});

// ---------------------------------------------------------------- ClientHello checks (server side, no cookie endpoint)

function helloDatagram(overrides: Partial<Parameters<typeof encodeClientHello>[0]>): Uint8Array {
  const body = encodeClientHello({
    version: 0xfefd,
    random: new Uint8Array(32).fill(9),
    sessionId: new Uint8Array(0),
    cookie: new Uint8Array(0),
    cipherSuites: [CipherSuite.TLS_PSK_WITH_AES_128_CCM_8],
    compressionMethods: Uint8Array.of(0),
    extensions: [],
    ...overrides,
  });
  const fragment = encodeFragment({ msgType: HandshakeType.client_hello, length: body.length, messageSeq: 0, fragmentOffset: 0, body });
  return encodeRecord({ type: ContentType.handshake, version: 0xfefd, epoch: 0, sequence: 0, fragment });
}

function serverAnswer(datagram: Uint8Array): { alert?: number; closed?: DtlsError } {
  const clock = new ManualClock();
  const out: Uint8Array[] = [];
  let closed: DtlsError | undefined;
  const s = DtlsConnection.server({ clock, ...pskServer }, { send: (d) => out.push(d), closed: (e) => (closed = e) });
  s.handleDatagram(datagram);
  const rec = out.length > 0 ? decodeRecords(out[0]!).records[0] : undefined;
  return rec?.type === ContentType.alert ? { alert: rec.fragment[1]!, closed: closed! } : { closed: closed! };
}

void test('RFC 6347 §4.1 / RFC 5246 §E.1: a client offering only DTLS 1.0 gets protocol_version', () => {
  assert.equal(serverAnswer(helloDatagram({ version: 0xfeff })).alert, AlertDescription.protocol_version);
});

void test('RFC 5246 §7.4.1.2: a ClientHello without the null compression method gets illegal_parameter', () => {
  assert.equal(serverAnswer(helloDatagram({ compressionMethods: Uint8Array.of(1) })).alert, AlertDescription.illegal_parameter);
});

void test('RFC 5746 §3.6: a non-empty renegotiation_info in an initial ClientHello gets handshake_failure', () => {
  const ext = { type: 0xff01, data: Uint8Array.of(12, ...new Uint8Array(12)) };
  assert.equal(serverAnswer(helloDatagram({ extensions: [ext] })).alert, AlertDescription.handshake_failure);
});

void test('RFC 5746 §3.6: the ServerHello echoes an empty renegotiation_info when the client sent the SCSV', () => {
  const clock = new ManualClock();
  const out: Uint8Array[] = [];
  const s = DtlsConnection.server({ clock, ...pskServer }, { send: (d) => out.push(d) });
  s.handleDatagram(helloDatagram({ cipherSuites: [CipherSuite.TLS_PSK_WITH_AES_128_CCM_8, 0x00ff] }));
  const frag = decodeFragments(decodeRecords(out[0]!).records[0]!.fragment)[0]!;
  assert.equal(frag.msgType, HandshakeType.server_hello);
  const sh = decodeServerHello(frag.body);
  assert.deepEqual(sh.extensions.find((e) => e.type === 0xff01)?.data, Uint8Array.of(0));
  s.close();
});

void test('RFC 4279 §2: the PSK identity hint from ServerKeyExchange is visible to the client', () => {
  const p = makePair(pskClient, { ...pskServer, pskIdentityHint: 'depot-hint' });
  p.client.connect();
  p.pump();
  assert.ok(p.clientLog.connected);
  assert.equal(p.client.pskIdentityHint, 'depot-hint');
});

void test('RFC 7250 §4: raw public keys can be checked asynchronously (device registry) on both sides', async () => {
  const later = (k: Uint8Array) => (spki: Uint8Array): Promise<boolean> => new Promise((r) => setImmediate(() => r(trusts(k)(spki))));
  const p = makePair(
    { rawPublicKey: { privateKey: RPK_CLIENT.privateKey }, verifyRawPublicKey: later(RPK_SERVER.spki) },
    { rawPublicKey: { privateKey: RPK_SERVER.privateKey }, verifyRawPublicKey: later(RPK_CLIENT.spki) },
  );
  p.client.connect();
  for (let i = 0; i < 10 && !(p.clientLog.connected && p.serverLog.connected); i++) {
    p.pump();
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(p.clientLog.connected && p.serverLog.connected);
  assert.deepEqual(p.serverLog.connected.peerIdentity, { kind: 'rpk', publicKeyDer: RPK_CLIENT.spki });
  exchange(p);
  const refused = makePair(
    { rawPublicKey: { privateKey: RPK_CLIENT.privateKey }, verifyRawPublicKey: () => Promise.resolve(false) },
    { rawPublicKey: { privateKey: RPK_SERVER.privateKey }, verifyRawPublicKey: () => Promise.resolve(true) },
  );
  refused.client.connect();
  for (let i = 0; i < 10 && !refused.clientLog.closed; i++) {
    refused.pump();
    await new Promise((r) => setImmediate(r));
  }
  assert.equal((refused.clientLog.closed as DtlsError).alert, AlertDescription.bad_certificate);
});

void test('RFC 5246 §7.4.6: a certificate policy hook can refuse a valid chain (sync or async) with bad_certificate', async () => {
  const sync = makePair(certClient, { ...certServer, verifyCertificate: (leaf) => !leaf.subject.includes('client.unit.test') });
  sync.client.connect();
  sync.pump();
  assert.equal((sync.serverLog.closed as DtlsError).alert, AlertDescription.bad_certificate);
  const seen: string[] = [];
  const ok = makePair(
    { ...certClient, verifyCertificate: (leaf) => Promise.resolve(seen.push(leaf.subject) > 0) },
    { ...certServer, verifyCertificate: (leaf) => Promise.resolve(seen.push(leaf.subject) > 0) },
  );
  ok.client.connect();
  for (let i = 0; i < 10 && !(ok.clientLog.connected && ok.serverLog.connected); i++) {
    ok.pump();
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(ok.clientLog.connected && ok.serverLog.connected);
  assert.equal(seen.length, 2);
});

void test('RFC 6347 §4.2.3: a connection that sends from inside another one\'s send callback leaves both flights intact', () => {
  const clock = new ManualClock();
  const toServer: Uint8Array[] = [];
  const toClient: Uint8Array[] = [];
  // Another association starts its handshake from inside the server's first send callback, in the
  // middle of the server's fragmented certificate flight.
  const other = makePair({ psk: { identity: 'dev-1', key: Uint8Array.of(1, 2, 3) } }, { pskLookup: () => Uint8Array.of(1, 2, 3) }, clock);
  let serverConnected = false;
  const server = new DtlsServerEndpoint(
    { ...certServer, mtu: 256, clock },
    {
      send: (_peer, d) => {
        if (toClient.length === 1) other.client.connect();
        toClient.push(d);
      },
      connected: () => (serverConnected = true),
    },
  );
  const client = DtlsConnection.client({ ...certClient, mtu: 256, clock }, { send: (d) => toServer.push(d) });
  client.connect();
  for (let round = 0; round < 20 && !(client.isEstablished && serverConnected); round++) {
    for (const d of toServer.splice(0)) server.handleDatagram(PEER, d);
    for (const d of toClient.splice(0)) client.handleDatagram(d);
  }
  assert.ok(client.isEstablished && serverConnected, 'the fragmented handshake completed');
  assert.equal(other.sent.toServer, 1, 'the other association sent its ClientHello meanwhile');
  other.settle(bothUp(other));
  assert.ok(bothUp(other)(), 'and completed its own handshake');
});

void test('a ClientHello decoded by the endpoint is used only for the message it was decoded from', () => {
  for (const [messageSeq, length] of [
    [0, 1],
    [7, -1],
  ] as const) {
    const clock = new ManualClock();
    const toServer: Uint8Array[] = [];
    const toClient: Uint8Array[] = [];
    const client = DtlsConnection.client({ clock, ...pskClient }, { send: (d) => toServer.push(d) });
    client.connect();
    const first = toServer[0]!;
    // A stale decoding (another message_seq or length) whose fields would break the handshake if used.
    const stale = { messageSeq, length: length === -1 ? helloOf(first).bodyLength : length, hello: { ...helloOf(first).hello, random: new Uint8Array(32) } };
    const server = DtlsConnection.server({ clock, ...pskServer }, { send: (d) => toClient.push(d) }, undefined, stale);
    for (let round = 0; round < 10 && !(client.isEstablished && server.isEstablished); round++) {
      for (const d of toServer.splice(0)) server.handleDatagram(d);
      for (const d of toClient.splice(0)) client.handleDatagram(d);
    }
    assert.ok(client.isEstablished && server.isEstablished, `message_seq ${messageSeq}: the server decoded the hello itself`);
  }
});

function helloOf(datagram: Uint8Array): { bodyLength: number; hello: ReturnType<typeof decodeClientHello> } {
  const f = decodeFragments(decodeRecords(datagram).records[0]!.fragment)[0]!;
  return { bodyLength: f.length, hello: decodeClientHello(f.body) };
}
