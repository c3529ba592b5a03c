/**
 * What an established association keeps (and no longer keeps), and the compact building blocks
 * behind it: key views over one key block, the 64-bit replay window, keyed HMAC, pooled randoms.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { makePair, PEER } from './harness.js';
import { concat, randomBytesPooled, utf8 } from '../../../src/dtls/bytes.js';
import { AeadProtection, CIPHER_SUITES, CipherSuite, keyBlockLength, keyMaterialFromBlock } from '../../../src/dtls/cipher.js';
import { ContentType } from '../../../src/dtls/constants.js';
import { HandshakeReassembler } from '../../../src/dtls/fragment.js';
import { HmacSha256, pSha256 } from '../../../src/dtls/prf.js';
import { Sha256, sha256Parts } from '../../../src/dtls/sha256.js';
import { decodeRecords, encodeRecord } from '../../../src/dtls/record.js';
import { SessionCache } from '../../../src/dtls/session.js';
import { literalFirstLookup } from '../../../src/dtls/transport.js';
import { ManualClock } from '../../../src/util/clock.js';

const KEY = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
const pskClient = { psk: { identity: 'dev-1', key: KEY } };
const pskServer = { pskLookup: (id: string) => (id === 'dev-1' ? KEY : undefined) };

/** The private fields of a connection, read for the test only. */
type Internals = Record<string, unknown> & { transcript: { length: number }; flight: object | undefined; reassembler: object | undefined };
const internals = (x: unknown): Internals => x as Internals;

void test('an established server association keeps no handshake state, no timer and no CID it was not asked for', () => {
  const p = makePair(pskClient, pskServer);
  p.client.connect();
  p.settle(() => p.serverLog.connected !== undefined && p.clientLog.connected !== undefined);
  const server = internals(p.server.connection(PEER));
  // Until the client proves it has the server's Finished, the final flight stays for retransmission.
  assert.ok(server.flight);
  assert.ok(server.write0, 'epoch 0 is still needed to resend the ChangeCipherSpec');
  p.client.send(utf8.encode('hello'));
  p.pump();
  assert.deepEqual(p.serverLog.data.map((d) => Buffer.from(d).toString()), ['hello']);
  for (const conn of [server, internals(p.client)]) {
    assert.equal(conn.flight, undefined);
    assert.equal(conn.write0, undefined, 'no epoch 0 any more');
    assert.equal(conn.reassembler, undefined, 'no reassembler while idle');
    const hs = internals(conn.hs);
    assert.ok(Object.isFrozen(hs), 'the handshake state was replaced by the shared, frozen empty one');
    assert.equal(hs.transcript.length, 0);
    for (const field of ['master', 'masterPrf', 'clientRandomValue', 'serverRandom', 'ecdh', 'peerPublicKey', 'futureRecords', 'earlyData', 'queued', 'read0', 'timer', 'onTimer', 'retransmitDue', 'pendingRead', 'pendingWrite']) {
      assert.equal(hs[field], undefined, `${field} released`);
    }
  }
  assert.equal(server.resumableSession, undefined, 'the server keeps its resumable session in the cache only');
  assert.ok(internals(p.client).resumableSession, 'the client keeps its session to resume it');
  assert.equal(p.clock.pending(), 0, 'no timer runs for idle associations');
  assert.equal((p.server as unknown as { byCid: Map<string, unknown> }).byCid.size, 0);
  // Still fully working after the release.
  p.server.send(PEER, utf8.encode('back'));
  p.pump();
  assert.deepEqual(p.clientLog.data.map((d) => Buffer.from(d).toString()), ['back']);
});

void test('RFC 6347 §4.2.4: the server final flight is resent after establishment until the client proves it has it', () => {
  const p = makePair(pskClient, pskServer);
  p.client.connect();
  let lost = false;
  // Drop the server's final flight (ChangeCipherSpec + Finished) once.
  p.settle(
    () => p.clientLog.connected !== undefined,
    (dir, d) => {
      if (dir !== 'toClient' || lost) return false;
      if (!decodeRecords(d).records.some((r) => r.type === ContentType.change_cipher_spec)) return false;
      lost = true;
      return true;
    },
  );
  assert.ok(lost);
  assert.ok(p.serverLog.connected && p.clientLog.connected);
  const server = internals(p.server.connection(PEER));
  assert.ok(Object.isFrozen(server.hs), 'the handshake state went at establishment');
  assert.ok(server.flight, 'kept: the client has not shown yet that it has it');
  p.client.send(utf8.encode('x'));
  p.pump();
  assert.equal(server.flight, undefined, 'the final flight went once the client proved it had it');
});

void test('RFC 5246 §6.3: both directions read their key and salt from the one key block', () => {
  for (const id of [CipherSuite.TLS_PSK_WITH_AES_128_CCM_8, CipherSuite.TLS_PSK_WITH_AES_128_GCM_SHA256]) {
    const suite = CIPHER_SUITES.get(id)!;
    const block = Uint8Array.from({ length: keyBlockLength(suite) }, (_, i) => i * 7 + 1);
    const keys = keyMaterialFromBlock(suite, block);
    const clientAlone = new AeadProtection(suite, concat(block.subarray(0, 16), block.subarray(32, 36)));
    const serverAlone = new AeadProtection(suite, concat(block.subarray(16, 32), block.subarray(36, 40)));
    const pt = utf8.encode('record body');
    assert.deepEqual(keys.clientWrite.seal(1, 5, 23, 0xfefd, pt), clientAlone.seal(1, 5, 23, 0xfefd, pt));
    assert.deepEqual(keys.serverWrite.seal(1, 5, 23, 0xfefd, pt), serverAlone.seal(1, 5, 23, 0xfefd, pt));
    assert.notDeepEqual(keys.clientWrite.seal(1, 5, 23, 0xfefd, pt), keys.serverWrite.seal(1, 5, 23, 0xfefd, pt));
    assert.throws(() => keyMaterialFromBlock(suite, block.subarray(0, 39)), RangeError);
  }
});

void test('RFC 6347 §4.1, RFC 9146 §4: sealRecord builds the same record as seal + encodeRecord', () => {
  const suite = CIPHER_SUITES.get(CipherSuite.TLS_PSK_WITH_AES_128_CCM_8)!;
  const p = new AeadProtection(suite, Uint8Array.from({ length: 20 }, (_, i) => i));
  const pt = utf8.encode('payload');
  assert.deepEqual(
    p.sealRecord(ContentType.application_data, 0xfefd, 1, 9, pt),
    encodeRecord({ type: ContentType.application_data, version: 0xfefd, epoch: 1, sequence: 9, fragment: p.seal(1, 9, ContentType.application_data, 0xfefd, pt) }),
  );
  const cid = Uint8Array.of(1, 2, 3, 4, 5, 6);
  const withCid = p.sealRecord(ContentType.application_data, 0xfefd, 1, 10, pt, cid);
  assert.deepEqual(withCid, encodeRecord({ type: ContentType.tls12_cid, version: 0xfefd, epoch: 1, sequence: 10, cid, fragment: p.sealCid(1, 10, ContentType.application_data, 0xfefd, cid, pt) }));
  const r = decodeRecords(withCid, 6).records[0]!;
  assert.deepEqual(p.openCid(1, 10, 0xfefd, cid, r.fragment), { type: ContentType.application_data, content: pt });
});

void test('RFC 2104, FIPS 180-4: the JavaScript HmacSha256 equals node:crypto HMAC for any key and message length', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 150 }), fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 40 }), (key, a, b) => {
      const mac = new HmacSha256(key);
      assert.deepEqual(new Uint8Array(mac.mac(a, b)), new Uint8Array(createHmac('sha256', key).update(a).update(b).digest()));
      assert.deepEqual(new Uint8Array(mac.mac(a)), new Uint8Array(createHmac('sha256', key).update(a).digest()), 'the keyed state is reusable');
    }),
    { numRuns: 50 },
  );
  // Every padding case: message lengths across one and two block boundaries.
  const key = Uint8Array.from({ length: 48 }, (_, i) => i);
  const mac = new HmacSha256(key);
  for (let n = 0; n <= 200; n++) {
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 13) & 0xff);
    assert.deepEqual(new Uint8Array(mac.mac(data)), new Uint8Array(createHmac('sha256', key).update(data).digest()), `length ${n}`);
  }
  // P_SHA256 output length is exact, whatever the number of blocks.
  for (const n of [1, 12, 32, 33, 48, 100]) assert.equal(pSha256(KEY, KEY, n).length, n);
});

void test('randomBytesPooled: buffers of their own, of the asked length, not repeating', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const r = randomBytesPooled(32);
    assert.equal(r.length, 32);
    assert.equal(r.buffer.byteLength, 32, 'a copy, not a view of the pool');
    seen.add(Buffer.from(r).toString('hex'));
  }
  assert.equal(seen.size, 300);
  assert.equal(randomBytesPooled(1000).length, 1000);
});

void test('RFC 5246 §7.3: the session cache returns copies of what it was given', () => {
  const clock = new ManualClock();
  const cache = new SessionCache(clock, 2, 1000);
  const id = Uint8Array.from({ length: 32 }, (_, i) => i);
  const master = Uint8Array.from({ length: 48 }, (_, i) => 100 + i);
  cache.put({ id, masterSecret: master, cipherSuite: 0xc0a8, extendedMasterSecret: true, peerIdentity: { kind: 'psk', identity: 'dev-1' } });
  const got = cache.get(id.slice())!;
  assert.deepEqual(got, { id, masterSecret: master, cipherSuite: 0xc0a8, extendedMasterSecret: true, peerIdentity: { kind: 'psk', identity: 'dev-1' } });
  got.masterSecret.fill(0);
  assert.deepEqual(cache.get(id)!.masterSecret, master, 'zeroing a returned secret does not touch the cache');
  clock.advance(1000);
  assert.equal(cache.get(id), undefined, 'expired');
});

void test('RFC 5246 §7.3: the session cache keeps each master secret apart through eviction, deletion and growth', () => {
  const clock = new ManualClock();
  const cache = new SessionCache(clock, 100, 10_000);
  const id = (n: number): Uint8Array => Uint8Array.from({ length: 32 }, (_, i) => (n * 31 + i) & 0xff);
  const master = (n: number): Uint8Array => Uint8Array.from({ length: 48 }, (_, i) => (n * 7 + i * 3) & 0xff);
  for (let n = 0; n < 250; n++) cache.put({ id: id(n), masterSecret: master(n), cipherSuite: 0xc0a8, extendedMasterSecret: false });
  assert.equal(cache.size, 100);
  assert.equal(cache.get(id(149)), undefined, 'evicted, oldest first');
  for (let n = 150; n < 250; n++) assert.deepEqual(cache.get(id(n))?.masterSecret, master(n), `session ${n}`);
  assert.equal(cache.deleteWhere((s) => s.id[0]! % 2 === 0), 50);
  for (let n = 250; n < 300; n++) cache.put({ id: id(n), masterSecret: master(n), cipherSuite: 0xc0a8, extendedMasterSecret: false });
  for (let n = 150; n < 300; n++) {
    const got = cache.get(id(n));
    if (got) assert.deepEqual(got.masterSecret, master(n), `session ${n} after slot reuse`);
  }
  assert.equal(cache.size, 100);
  const slab = (cache as unknown as { masters: Uint8Array }).masters;
  assert.ok(slab.length <= 101 * 48, 'never more slots than entries (+1 while one is being replaced)');
  assert.throws(() => cache.put({ id: id(1), masterSecret: new Uint8Array(47), cipherSuite: 0xc0a8, extendedMasterSecret: false }), RangeError);
  cache.deleteWhere(() => true);
  assert.ok((cache as unknown as { masters: Uint8Array }).masters.every((b) => b === 0), 'forgotten master secrets are wiped');
});

void test('RFC 6347 §4.2.3: an unfragmented handshake message is used as it came (no copy); copies of it are still checked', () => {
  const r = new HandshakeReassembler();
  const body = Uint8Array.of(1, 2, 3, 4, 5);
  assert.equal(r.add({ msgType: 1, length: 5, messageSeq: 0, fragmentOffset: 0, body }), 'ok');
  assert.equal(r.add({ msgType: 1, length: 5, messageSeq: 0, fragmentOffset: 2, body: body.subarray(2) }), 'ok', 'a consistent duplicate fragment');
  assert.equal(r.add({ msgType: 2, length: 5, messageSeq: 0, fragmentOffset: 0, body }), 'bad', 'another type for the same message_seq');
  const m = r.take()!;
  assert.equal(m.body, body, 'the very bytes that arrived');
  assert.equal(r.add({ msgType: 1, length: 5, messageSeq: 0, fragmentOffset: 0, body }), 'old');
});

void test('DtlsTransport address lookup: IP literals answered at once, names through DNS', async () => {
  const answers: string[] = [];
  literalFirstLookup('127.0.0.1', 4 as never, (e, address, family) => answers.push(`${address}/${family}`));
  literalFirstLookup('::1', 6 as never, (e, address, family) => answers.push(`${address}/${family}`));
  assert.deepEqual(answers, ['127.0.0.1/4', '::1/6'], 'synchronous, no tick per datagram');
  const viaDns = await new Promise<string>((resolve) => literalFirstLookup('localhost', 4 as never, (e, address) => resolve(e ? 'error' : address)));
  assert.equal(viaDns, '127.0.0.1');
});

void test('FIPS 180-4: sha256Parts and the streamed HMAC equal node:crypto on the same bytes (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 90 }), { maxLength: 6 }), fc.uint8Array({ maxLength: 80 }), (parts, key) => {
      const whole = concat(...parts);
      assert.deepEqual(sha256Parts(parts), new Uint8Array(createHash('sha256').update(whole).digest()));
      const h = new HmacSha256(key).begin();
      for (const p of parts) h.update(p);
      assert.deepEqual(h.digest(), new Uint8Array(createHmac('sha256', key).update(whole).digest()));
    }),
    { numRuns: 100 },
  );
});

void test('FIPS 180-4: the running Sha256 read mid-stream equals node:crypto over the bytes so far (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 8 }), (parts) => {
      const running = new Sha256();
      const reference = createHash('sha256');
      for (const p of parts) {
        // Half of each part through start/end offsets into a larger buffer.
        const cut = p.length >> 1;
        running.update(p.subarray(0, cut));
        running.update(concat(Uint8Array.of(7), p.subarray(cut), Uint8Array.of(9)), 1, 1 + p.length - cut);
        reference.update(p);
        assert.deepEqual(running.digest(), new Uint8Array(reference.copy().digest()), 'a digest leaves the running hash intact');
      }
      assert.equal(running.length, parts.reduce((n, p) => n + p.length, 0));
      assert.deepEqual(running.digest(), new Uint8Array(reference.digest()));
    }),
    { numRuns: 200 },
  );
});
