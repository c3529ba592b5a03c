import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ManualClock } from '../../../src/util/clock.js';
import { DtlsServerEndpoint } from '../../../src/dtls/server.js';
import { DtlsConnection } from '../../../src/dtls/connection.js';
import { CookieFactory } from '../../../src/dtls/cookie.js';
import { decodeRecords } from '../../../src/dtls/record.js';
import { decodeFragments } from '../../../src/dtls/fragment.js';
import { decodeClientHello, decodeHelloVerifyRequest, encodeClientHello } from '../../../src/dtls/messages.js';
import { ContentType, HandshakeType } from '../../../src/dtls/constants.js';

const KEY = new Uint8Array(16).fill(5);

/** The ClientHello datagram a fresh client sends. */
function firstClientHello(clock: ManualClock): Uint8Array {
  const out: Uint8Array[] = [];
  const c = DtlsConnection.client({ clock, psk: { identity: 'a', key: KEY } }, { send: (d) => out.push(d) });
  c.connect();
  c.close();
  return out[0]!;
}

function helloOf(datagram: Uint8Array): ReturnType<typeof decodeClientHello> {
  const rec = decodeRecords(datagram).records[0]!;
  return decodeClientHello(decodeFragments(rec.fragment)[0]!.body);
}

void test('RFC 6347 §4.2.1: a ClientHello without cookie gets a HelloVerifyRequest and creates no state', () => {
  const clock = new ManualClock();
  const sent: Uint8Array[] = [];
  const server = new DtlsServerEndpoint({ clock, pskLookup: () => KEY }, { send: (_p, d) => sent.push(d) });
  const ch = firstClientHello(clock);
  for (let i = 0; i < 100; i++) server.handleDatagram(`10.0.0.${i}|5684`, ch);
  assert.equal(server.size, 0, 'no per-client state before a valid cookie');
  assert.equal(clock.pending(), 0, 'no timers either');
  assert.equal(sent.length, 100);
  const rec = decodeRecords(sent[0]!).records[0]!;
  const chRec = decodeRecords(ch).records[0]!;
  assert.equal(rec.type, ContentType.handshake);
  assert.equal(rec.sequence, chRec.sequence, 'HelloVerifyRequest reuses the ClientHello record sequence number');
  const frag = decodeFragments(rec.fragment)[0]!;
  assert.equal(frag.msgType, HandshakeType.hello_verify_request);
  assert.equal(decodeHelloVerifyRequest(frag.body).version, 0xfeff, 'DTLS 1.0 version in HelloVerifyRequest (§4.2.1 SHOULD)');
});

void test('RFC 6347 §4.2.1: cookies bind the client address and the ClientHello parameters', () => {
  const clock = new ManualClock();
  const cookies = new CookieFactory(clock, 1000);
  const hello = helloOf(firstClientHello(clock));
  const cookie = cookies.generate('1.2.3.4|1000', hello);
  assert.equal(cookies.verify('1.2.3.4|1000', { ...hello, cookie }), true);
  assert.equal(cookies.verify('1.2.3.4|1001', { ...hello, cookie }), false, 'other port');
  assert.equal(cookies.verify('1.2.3.4|1000', { ...hello, cookie, cipherSuites: [0xc0a8] }), false, 'other parameters');
  const random = hello.random.slice();
  random[0]! ^= 1;
  assert.equal(cookies.verify('1.2.3.4|1000', { ...hello, random, cookie }), false, 'other random');
  const bad = cookie.slice();
  bad[31]! ^= 0x80;
  assert.equal(cookies.verify('1.2.3.4|1000', { ...hello, cookie: bad }), false);
  assert.equal(cookies.verify('1.2.3.4|1000', { ...hello, cookie: cookie.subarray(0, 16) }), false);
  // Encoding keeps the cookie intact.
  assert.deepEqual([...decodeClientHello(encodeClientHello({ ...hello, cookie })).cookie], [...cookie]);
});

void test('RFC 6347 §4.2.1: the cookie secret rotates; the previous secret is still honoured once', () => {
  const clock = new ManualClock();
  const cookies = new CookieFactory(clock, 1000);
  const hello = helloOf(firstClientHello(clock));
  const cookie = cookies.generate('p', hello);
  clock.advance(1000);
  assert.equal(cookies.verify('p', { ...hello, cookie }), true, 'one rotation: previous secret accepted');
  clock.advance(1000);
  assert.equal(cookies.verify('p', { ...hello, cookie }), false, 'two rotations: expired');
  const fresh = cookies.generate('p', hello);
  cookies.rotate();
  cookies.rotate();
  assert.equal(cookies.verify('p', { ...hello, cookie: fresh }), false);
});

void test('RFC 6347 §4.2.1: the endpoint creates state only for a ClientHello that returns a valid cookie', () => {
  const clock = new ManualClock();
  const sent: Uint8Array[] = [];
  const server = new DtlsServerEndpoint({ clock, pskLookup: () => KEY }, { send: (_p, d) => sent.push(d) });
  const toServer: Uint8Array[] = [];
  const client = DtlsConnection.client({ clock, psk: { identity: 'a', key: KEY } }, { send: (d) => toServer.push(d) });
  client.connect();
  server.handleDatagram('peer|1', toServer.shift()!);
  assert.equal(server.size, 0);
  client.handleDatagram(sent.shift()!);
  const second = toServer.shift()!;
  assert.ok(helloOf(second).cookie.length > 0, 'client echoes the cookie');
  server.handleDatagram('peer|2', second);
  assert.equal(server.size, 0, 'the cookie is not valid from another address');
  server.handleDatagram('peer|1', second);
  assert.equal(server.size, 1);
  client.close();
  server.close();
});

void test('resource bound: at maxConnections the least recently active association makes room; idle ones go first', () => {
  const clock = new ManualClock();
  const net = new Map<string, DtlsConnection>();
  const toServer: [string, Uint8Array][] = [];
  const closed: string[] = [];
  const server = new DtlsServerEndpoint(
    { clock, pskLookup: () => KEY, maxConnections: 2, idleTimeoutMs: 60_000 },
    { send: (p, d) => net.get(p)?.handleDatagram(d), closed: (p) => closed.push(p) },
  );
  const connect = (addr: string): DtlsConnection => {
    const c = DtlsConnection.client({ clock, psk: { identity: 'a', key: KEY } }, { send: (d) => toServer.push([addr, d]) });
    net.set(addr, c);
    c.connect();
    for (let i = 0; i < 20 && toServer.length > 0; i++) for (const [a, d] of toServer.splice(0)) server.handleDatagram(a, d);
    return c;
  };
  const a = connect('a|1');
  clock.advance(1000);
  const b = connect('b|1');
  clock.advance(1000);
  a.send(Uint8Array.of(1)); // a is now the most recently active
  for (const [addr, d] of toServer.splice(0)) server.handleDatagram(addr, d);
  assert.equal(server.size, 2);
  const c = connect('c|1');
  assert.equal(c.isEstablished, true);
  assert.equal(server.size, 2);
  assert.ok(server.connection('a|1') && server.connection('c|1'));
  assert.equal(server.connection('b|1'), undefined, 'b was the least recently active');
  assert.deepEqual(closed, ['b|1']);
  assert.equal(b.isClosed, true, 'b got close_notify');
  clock.advance(120_000); // both a and c idle now
  connect('d|1');
  assert.equal(server.size, 1, 'idle associations are all displaced');
  assert.ok(server.connection('d|1'));
});
