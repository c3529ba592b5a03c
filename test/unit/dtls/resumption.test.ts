import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { makePair, PEER, type Pair } from './harness.js';
import { DtlsConnection, type DtlsClientOptions, type SessionInfo } from '../../../src/dtls/connection.js';
import type { ResumableSession } from '../../../src/dtls/session.js';
import { utf8 } from '../../../src/dtls/bytes.js';

const KEY = new Uint8Array(16).fill(0x11);
const pskClient = { psk: { identity: 'resumer', key: KEY } };
const pskServer = { pskLookup: (id: string) => (id === 'resumer' ? KEY : undefined) };

interface Second {
  client: DtlsConnection;
  connected?: SessionInfo;
  datagrams: number;
  data: string[];
}

/** Runs a second client against the pair's server endpoint (same address: it replaces the first association). */
function secondClient(p: Pair, options: Omit<DtlsClientOptions, 'clock'>, drop?: (i: number) => boolean): Second {
  const out: Uint8Array[] = [];
  const s: Second = { datagrams: 0, data: [], client: undefined as unknown as DtlsConnection };
  s.client = DtlsConnection.client({ ...options, clock: p.clock }, {
    send: (d) => out.push(d),
    connected: (info) => (s.connected = info),
    data: (d) => s.data.push(Buffer.from(d).toString()),
  });
  s.client.connect();
  let i = 0;
  for (let t = 0; t < 60_000 && !(s.connected && p.server.connection(PEER)?.isEstablished); t += 250) {
    for (let round = 0; round < 20 && (out.length > 0 || p.toClient.length > 0); round++) {
      for (const d of out.splice(0)) {
        s.datagrams++;
        if (!drop?.(i++)) p.server.handleDatagram(PEER, d);
      }
      for (const d of p.toClient.splice(0)) {
        s.datagrams++;
        if (!drop?.(i++)) s.client.handleDatagram(d);
      }
    }
    p.clock.advance(250);
  }
  return s;
}

function firstSession(): { p: Pair; session: ResumableSession; fullDatagrams: number } {
  const p = makePair(pskClient, pskServer);
  p.client.connect();
  p.pump();
  const session = p.client.resumable;
  assert.ok(session, 'server issued a session ID');
  assert.equal(session.id.length, 32);
  assert.equal(p.clientLog.connected?.resumed, false);
  return { p, session, fullDatagrams: p.sent.toClient + p.sent.toServer };
}

void test('RFC 5246 §7.3 / RFC 6347 §4.2.1: an abbreviated handshake resumes the session (fewer messages, same identity)', () => {
  const { p, session } = firstSession();
  const s = secondClient(p, { ...pskClient, resume: session });
  assert.ok(s.connected);
  assert.equal(s.connected.resumed, true);
  const server = p.server.connection(PEER)!;
  assert.equal(server.session?.resumed, true);
  assert.deepEqual(server.session?.peerIdentity, { kind: 'psk', identity: 'resumer' });
  assert.equal(s.connected.extendedMasterSecret, true);
  // Cookie round trip (2) + ClientHello (1) + ServerHello/CCS/Finished (1) + CCS/Finished (1).
  assert.equal(s.datagrams, 5);
});

void test('RFC 5246 §7.3: application data flows both ways after resumption', () => {
  const { p, session } = firstSession();
  const out: Uint8Array[] = [];
  const got: string[] = [];
  const c = DtlsConnection.client({ ...pskClient, resume: session, clock: p.clock }, { send: (d) => out.push(d), data: (d) => got.push(Buffer.from(d).toString()) });
  c.connect();
  c.send(utf8.encode('ping'));
  for (let i = 0; i < 10; i++) {
    for (const d of out.splice(0)) p.server.handleDatagram(PEER, d);
    for (const d of p.toClient.splice(0)) c.handleDatagram(d);
  }
  assert.equal(c.session?.resumed, true);
  assert.equal(Buffer.from(p.serverLog.data.at(-1)!).toString(), 'ping');
  p.server.send(PEER, utf8.encode('pong'));
  for (const d of p.toClient.splice(0)) c.handleDatagram(d);
  assert.deepEqual(got, ['pong']);
});

void test('RFC 6347 §4.2.4: every single lost datagram of an abbreviated handshake is recovered', () => {
  for (let lose = 0; lose < 5; lose++) {
    const { p, session } = firstSession();
    const s = secondClient(p, { ...pskClient, resume: session }, (i) => i === lose);
    assert.equal(s.connected?.resumed, true, `lost #${lose}`);
    assert.equal(p.server.connection(PEER)?.isEstablished, true, `server, lost #${lose}`);
  }
});

void test('RFC 7627 §5.3: a session made with EMS is not resumed by a ClientHello without EMS (full handshake instead)', () => {
  const { p, session } = firstSession();
  assert.equal(session.extendedMasterSecret, true);
  const s = secondClient(p, { ...pskClient, resume: session, extendedMasterSecret: false });
  assert.equal(s.connected?.resumed, false);
  assert.equal(s.connected?.extendedMasterSecret, false);
});

void test('RFC 5246 §7.4.1.2: an unknown session ID falls back to a full handshake', () => {
  const { p, session } = firstSession();
  const s = secondClient(p, { ...pskClient, resume: { ...session, id: new Uint8Array(32).fill(0xab) } });
  assert.equal(s.connected?.resumed, false);
  assert.notDeepEqual([...s.client.resumable!.id], [...new Uint8Array(32).fill(0xab)]);
});

void test('RFC 5246 §7.3: a resumption attempt with a wrong master secret fails with an alert, no exception', () => {
  const { p, session } = firstSession();
  const s = secondClient(p, { ...pskClient, resume: { ...session, masterSecret: new Uint8Array(48) } });
  assert.equal(s.connected, undefined);
  assert.equal(s.client.isClosed, true);
});

void test('RFC 5246 §7.3: a forgotten session (revoked identity) is not resumed', () => {
  const { p, session } = firstSession();
  const n = p.server.forgetSessions((s) => s.peerIdentity?.kind === 'psk' && s.peerIdentity.identity === 'resumer');
  assert.equal(n, 1);
  const s = secondClient(p, { ...pskClient, resume: session });
  assert.equal(s.connected?.resumed, false, 'full handshake instead');
});
