/** DtlsTransport (DatagramTransport over DTLS) between two Depot endpoints on loopback. */
import { after, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { createSocket } from 'node:dgram';
import { DtlsTransport } from '../../../src/dtls/transport.js';
import { DtlsError } from '../../../src/dtls/connection.js';
import type { Peer } from '../../../src/coap/transport.js';
import { UdpTransport } from '../../../src/coap/udp.js';

const KEY = new Uint8Array(16).fill(3);
const open: DtlsTransport[] = [];

after(async () => {
  for (const t of open) await t.close();
});

async function make(options: Parameters<typeof DtlsTransport.create>[0]): Promise<DtlsTransport> {
  const t = await DtlsTransport.bind({ host: '127.0.0.1', ...options });
  open.push(t);
  return t;
}

async function until<T>(f: () => T | undefined, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timeout: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

void test('DtlsTransport: coaps scheme, queued data before the handshake, identity on the Peer, replies both ways', async () => {
  // An asynchronous key store, as a database-backed server would have.
  const server = await make({ server: { pskLookup: (id) => Promise.resolve(id === 'node-7' ? KEY : undefined) } });
  const client = await make({ client: { psk: { identity: 'node-7', key: KEY } } });
  assert.equal(server.scheme, 'coaps');
  const atServer: { data: string; peer: Peer }[] = [];
  const atClient: string[] = [];
  server.setReceiver((d, p) => {
    atServer.push({ data: Buffer.from(d).toString(), peer: p });
    server.send(Buffer.from(`re: ${Buffer.from(d).toString()}`), p);
  });
  client.setReceiver((d) => atClient.push(Buffer.from(d).toString()));
  const peer = client.peer('127.0.0.1', server.address().port);
  assert.equal(client.peer('127.0.0.1', server.address().port), peer, 'one Peer object per endpoint');
  client.send(Buffer.from('one'), peer);
  client.send(Buffer.from('two'), peer);
  await until(() => (atClient.length === 2 ? true : undefined), 3000, 'two replies');
  assert.deepEqual(atServer.map((m) => m.data), ['one', 'two']);
  assert.deepEqual(atServer[0]!.peer.identity, { kind: 'psk', identity: 'node-7' });
  assert.equal(atServer[0]!.peer, atServer[1]!.peer);
  assert.deepEqual(atClient, ['re: one', 're: two']);
  assert.equal(client.session(peer)?.cipherSuite.name, 'TLS_PSK_WITH_AES_128_CCM_8');
});

void test('DtlsTransport: a failed handshake (wrong PSK) is reported to the error listener on both sides', async () => {
  const server = await make({ server: { pskLookup: () => new Uint8Array(16).fill(9) } });
  const client = await make({ client: { psk: { identity: 'x', key: KEY } } });
  const serverErrors: Error[] = [];
  const clientErrors: Error[] = [];
  server.setErrorListener((_p, e) => serverErrors.push(e));
  client.setErrorListener((_p, e) => clientErrors.push(e));
  client.send(Buffer.from('never delivered'), client.peer('127.0.0.1', server.address().port));
  await until(() => (serverErrors.length && clientErrors.length ? true : undefined), 3000, 'errors');
  assert.ok(serverErrors[0] instanceof DtlsError);
  assert.match(clientErrors[0]!.message, /bad_record_mac/);
});

void test('DtlsTransport: a handshake timeout frees the state and reports the error', async () => {
  const silent = createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  try {
    const client = await make({ client: { psk: { identity: 'x', key: KEY }, handshakeTimeoutMs: 300, initialRetransmitMs: 100 } });
    const errors: Error[] = [];
    client.setErrorListener((_p, e) => errors.push(e));
    const peer = client.peer('127.0.0.1', silent.address().port);
    client.send(Buffer.from('x'), peer);
    const e = await until(() => errors[0], 3000, 'timeout error');
    assert.equal((e as DtlsError).code, 'handshake_timeout');
    assert.equal(client.session(peer), undefined);
  } finally {
    silent.close();
  }
});

void test('DtlsTransport: a server-only transport cannot start associations and says so', async () => {
  const server = await make({ server: { pskLookup: () => KEY } });
  const errors: Error[] = [];
  server.setErrorListener((_p, e) => errors.push(e));
  server.send(Buffer.from('x'), server.peer('127.0.0.1', 9));
  assert.equal(errors.length, 1);
});

void test('DtlsTransport: a receiver that throws does not tear down the association', async () => {
  const server = await make({ server: { pskLookup: () => KEY } });
  const client = await make({ client: { psk: { identity: 'x', key: KEY } } });
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.message);
  process.on('warning', onWarning);
  try {
    let calls = 0;
    server.setReceiver((d, p) => {
      calls++;
      if (calls === 1) throw new Error('handler bug');
      server.send(d, p);
    });
    const echoes: string[] = [];
    client.setReceiver((d) => echoes.push(Buffer.from(d).toString()));
    const peer = client.peer('127.0.0.1', server.address().port);
    client.send(Buffer.from('first'), peer);
    client.send(Buffer.from('second'), peer);
    await until(() => (echoes.length === 1 ? true : undefined), 3000, 'echo of the second message');
    assert.deepEqual(echoes, ['second']);
    assert.ok(client.session(peer), 'still established');
    await until(() => (warnings.some((w) => w.includes('handler bug')) ? true : undefined), 1000, 'warning');
  } finally {
    process.off('warning', onWarning);
  }
});

void test('RFC 5246 §7.2.1: closing a DtlsTransport sends close_notify to its peers', async () => {
  const server = await make({ server: { pskLookup: () => KEY } });
  const client = await make({ client: { psk: { identity: 'x', key: KEY } } });
  const got: string[] = [];
  server.setReceiver((d) => got.push(Buffer.from(d).toString()));
  const peer = client.peer('127.0.0.1', server.address().port);
  client.send(Buffer.from('hi'), peer);
  await until(() => (got.length ? true : undefined), 3000, 'data at the server');
  assert.ok(client.session(peer));
  await server.close();
  await until(() => (client.session(peer) === undefined ? true : undefined), 3000, 'client to see close_notify');
});

void test('DtlsTransport and UdpTransport: a peer is an IP literal; a name is refused with a clear error (replies come from an address)', async () => {
  const dtls = await make({ client: { psk: { identity: 'a', key: KEY } } });
  assert.throws(() => dtls.peer('localhost', 5684), { name: 'TypeError', message: /"localhost" is not an IP literal: resolve the name first/ });
  assert.equal(dtls.peer('::1', 5684).family, 'IPv6');
  const udp = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  try {
    assert.throws(() => udp.peer('localhost', 5683), { name: 'TypeError', message: /not an IP literal/ });
    assert.equal(udp.peer('127.0.0.1', 5683).key, '127.0.0.1|5683');
  } finally {
    await udp.close();
  }
});

void test('DtlsTransport.forgetAssociation: the association ends (close_notify) and its session is not offered again; the next send is a full handshake', async () => {
  const server = await make({ server: { pskLookup: () => KEY } });
  const client = await make({ client: { psk: { identity: 'forgetful', key: KEY } } });
  const replies: string[] = [];
  server.setReceiver((d, p) => server.send(d, p));
  client.setReceiver((d) => replies.push(Buffer.from(d).toString()));
  const peer = client.peer('127.0.0.1', server.address().port);
  client.send(Buffer.from('first'), peer);
  await until(() => (replies.length === 1 ? true : undefined), 3000, 'first reply');
  assert.equal(client.session(peer)?.resumed, false);
  // What a plain reconnect does: resume the remembered session (RFC 5246 §7.3).
  client.disconnect(peer);
  client.send(Buffer.from('second'), peer);
  await until(() => (replies.length === 2 ? true : undefined), 3000, 'second reply');
  assert.equal(client.session(peer)?.resumed, true, 'a reconnect resumes');
  // The server stopped answering (restarted?): forget the association and the session with it.
  assert.equal(client.forgetAssociation(peer), true);
  assert.equal(client.session(peer), undefined);
  client.send(Buffer.from('third'), peer);
  await until(() => (replies.length === 3 ? true : undefined), 3000, 'third reply');
  assert.equal(client.session(peer)?.resumed, false, 'a full handshake: a restarted server could not resume the session');
  assert.deepEqual(replies, ['first', 'second', 'third']);
});
