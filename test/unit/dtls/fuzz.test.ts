/**
 * Robustness (RFC 6347 §4.1.2.7: invalid records are discarded, not fatal to the process):
 * random and mutated input never throws out of the sans-IO core, and every association ends
 * up either established or closed with its timers released. Also: records with any epoch and
 * sequence number leave an established association working (§4.1.2.6: only authenticated
 * records move the replay window), and handshake messages cut into overlapping, repeated and
 * reordered fragments are reassembled (§4.2.3).
 *
 * A fixed seed and small counts in CI; DEPOT_FUZZ_RUNS for a long run (test/unit/fuzz/settings.ts).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { makePair, PEER } from './harness.js';
import { ManualClock } from '../../../src/util/clock.js';
import { DtlsServerEndpoint } from '../../../src/dtls/server.js';
import { DtlsConnection, DtlsError } from '../../../src/dtls/connection.js';
import { AlertDescription } from '../../../src/dtls/constants.js';
import { MAX_SEQUENCE, decodeRecords, encodeRecord } from '../../../src/dtls/record.js';
import { decodeFragments, encodeFragment } from '../../../src/dtls/fragment.js';
import { fuzzParameters } from '../fuzz/settings.js';
import { utf8 } from '../../../src/dtls/bytes.js';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import * as fx from './fixtures.js';

const KEY = new Uint8Array(16).fill(0x42);
const pskClient = { psk: { identity: 'fuzz', key: KEY } };
const pskServer = { pskLookup: (id: string) => (id === 'fuzz' ? KEY : undefined) };

/** Records with plausible headers and arbitrary (possibly handshake-shaped) content. */
const recordArb = fc
  .record({
    type: fc.constantFrom(20, 21, 22, 23, 25, 0, 255),
    version: fc.constantFrom(0xfefd, 0xfeff, 0x0303),
    epoch: fc.constantFrom(0, 1, 2),
    sequence: fc.integer({ min: 0, max: 50 }),
    handshake: fc.option(
      fc.record({
        msgType: fc.constantFrom(0, 1, 2, 3, 11, 12, 13, 14, 15, 16, 20, 99),
        length: fc.integer({ min: 0, max: 200 }),
        messageSeq: fc.integer({ min: 0, max: 6 }),
        fragmentOffset: fc.integer({ min: 0, max: 200 }),
        body: fc.uint8Array({ maxLength: 200 }),
      }),
    ),
    raw: fc.uint8Array({ maxLength: 64 }),
  })
  .map((r) => {
    let fragment: Uint8Array = r.raw;
    if (r.handshake) {
      const h = r.handshake;
      const length = Math.max(h.length, h.fragmentOffset + h.body.length);
      fragment = encodeFragment({ ...h, length });
    }
    return encodeRecord({ type: r.type, version: r.version, epoch: r.epoch, sequence: r.sequence, fragment });
  });

const datagramArb = fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.array(recordArb, { minLength: 1, maxLength: 3 }).map((rs) => Buffer.concat(rs)));

void test('RFC 6347 §4.1.2.7: random datagrams to a server endpoint never throw and create no state', () => {
  fc.assert(
    fc.property(fc.array(datagramArb, { maxLength: 10 }), (ds) => {
      const clock = new ManualClock();
      const server = new DtlsServerEndpoint({ clock, ...pskServer }, { send: () => {} });
      for (const d of ds) server.handleDatagram('x|1', d);
      assert.equal(server.size, 0);
    }),
    fuzzParameters(300, 0.1),
  );
});

void test('RFC 6347 §4.1.2.7: random datagrams to a handshaking client and a fresh server connection never throw', () => {
  fc.assert(
    fc.property(fc.array(datagramArb, { maxLength: 10 }), (ds) => {
      const clock = new ManualClock();
      const errors: DtlsError[] = [];
      const closed = (e?: DtlsError): void => void (e && errors.push(e));
      const client = DtlsConnection.client({ clock, ...pskClient }, { send: () => {}, closed });
      const server = DtlsConnection.server({ clock, ...pskServer }, { send: () => {}, closed });
      client.connect();
      for (const d of ds) {
        client.handleDatagram(d);
        server.handleDatagram(d);
      }
      clock.advance(120_000);
      for (const e of errors) assert.notEqual(e.alert, AlertDescription.internal_error, `internal error: ${e.message}`);
      assert.ok(client.isClosed || client.isEstablished);
      assert.ok(server.isClosed || server.isEstablished);
      assert.equal(clock.pending(), 0);
    }),
    fuzzParameters(300, 0.1),
  );
});

void test('RFC 6347 §4.1.2.7: mutated handshake datagrams never throw; both sides end established or closed', (t) => {
  const mutation = fc.record({
    target: fc.integer({ min: 0, max: 12 }),
    kind: fc.constantFrom('flip', 'truncate', 'byte', 'duplicate', 'append'),
    pos: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
  });
  const outcomes = { established: 0, failed: 0 };
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.boolean(), (muts, cid) => {
      const p = makePair(cid ? { ...pskClient, connectionId: true } : pskClient, pskServer);
      p.client.connect();
      p.settle(
        () => false,
        (_dir, d, i) => {
          let out = d;
          for (const m of muts) {
            if (m.target !== i) continue;
            out = out.slice();
            const at = out.length === 0 ? 0 : m.pos % out.length;
            if (m.kind === 'flip' && out.length > 0) out[at]! ^= 1 << (m.value % 8);
            else if (m.kind === 'byte' && out.length > 0) out[at] = m.value;
            else if (m.kind === 'truncate') out = out.subarray(0, at);
            else if (m.kind === 'duplicate') out = Buffer.concat([out, out]);
            else if (m.kind === 'append') out = Buffer.concat([out, Uint8Array.of(m.value)]);
          }
          return out;
        },
        1000,
        130_000,
      );
      assert.ok(p.client.isClosed || p.client.isEstablished, 'client settled');
      const sc = p.server.connection(PEER);
      assert.ok(!sc || sc.isEstablished, 'server settled');
      for (const closed of [p.clientLog.closed, p.serverLog.closed]) {
        if (closed instanceof DtlsError) assert.notEqual(closed.alert, AlertDescription.internal_error, `internal error: ${closed.message}`);
      }
      if (p.client.isEstablished) outcomes.established++;
      else outcomes.failed++;
      if (p.client.isEstablished && sc?.isEstablished) {
        p.client.send(utf8.encode('after fuzz'));
        p.pump();
        assert.equal(Buffer.from(p.serverLog.data.at(-1)!).toString(), 'after fuzz');
      }
      p.client.close();
      p.server.close();
      assert.equal(p.clock.pending(), 0, 'no timers left');
    }),
    fuzzParameters(150, 0.02),
  );
  // Most single mutations are repaired by retransmission; some (e.g. a corrupted Finished) fail cleanly.
  assert.ok(outcomes.established > 0, JSON.stringify(outcomes));
  t.diagnostic(`mutated handshakes: ${JSON.stringify(outcomes)}`);
});

void test('RFC 6347 §4.1.2.7: mutated certificate handshakes never throw and never end in internal_error', () => {
  const der = (pem: string): Uint8Array => new Uint8Array(new X509Certificate(pem).raw);
  const ca = new X509Certificate(fx.CA_CERT);
  const client = { certificate: { chain: [der(fx.CLIENT_CERT)], privateKey: createPrivateKey(fx.CLIENT_KEY) }, trustRoots: [ca], mtu: 300 };
  const server = { certificate: { chain: [der(fx.SERVER_CERT)], privateKey: createPrivateKey(fx.SERVER_KEY) }, trustRoots: [ca], mtu: 300 };
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 15 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (target, pos, bit) => {
      const p = makePair(client, server);
      p.client.connect();
      p.settle(
        () => false,
        (_dir, d, i) => {
          if (i !== target || d.length === 0) return undefined;
          const out = d.slice();
          out[pos % out.length]! ^= 1 << bit;
          return out;
        },
        1000,
        130_000,
      );
      for (const closed of [p.clientLog.closed, p.serverLog.closed]) {
        if (closed instanceof DtlsError) assert.notEqual(closed.alert, AlertDescription.internal_error, `internal error: ${closed.message}`);
      }
      assert.ok(p.client.isClosed || p.client.isEstablished);
      p.client.close();
      p.server.close();
      assert.equal(p.clock.pending(), 0);
    }),
    fuzzParameters(40, 0.005),
  );
});

/** Records with any header: every content type, epoch and sequence number (up to 2^48 - 1), any content. */
const wideRecordArb = fc
  .record({
    type: fc.oneof(fc.constantFrom(20, 21, 22, 23, 25), fc.integer({ min: 0, max: 255 })),
    version: fc.constantFrom(0xfefd, 0xfeff, 0x0303, 0x0000),
    epoch: fc.oneof(fc.constantFrom(0, 1, 2), fc.integer({ min: 0, max: 0xffff })),
    sequence: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.constantFrom(MAX_SEQUENCE, MAX_SEQUENCE - 1, 2 ** 32), fc.integer({ min: 0, max: MAX_SEQUENCE })),
    fragment: fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.integer({ min: 0, max: 300 }).map((n) => new Uint8Array(n))),
  })
  .map(encodeRecord);

void test('RFC 6347 §4.1.2.6/§4.1.2.7: records with random epochs and sequence numbers leave an established association working both ways', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.array(wideRecordArb, { minLength: 1, maxLength: 3 })), { minLength: 1, maxLength: 12 }), fc.boolean(), (injections, cid) => {
      const p = makePair(cid ? { ...pskClient, connectionId: true } : pskClient, pskServer);
      p.client.connect();
      p.settle(() => p.client.isEstablished);
      assert.ok(p.client.isEstablished);
      for (const [toServer, records] of injections) {
        const datagram = Buffer.concat(records);
        if (toServer) p.server.handleDatagram(PEER, datagram);
        else p.client.handleDatagram(datagram);
        p.pump();
      }
      // Forged records (bad MAC, unknown epoch, sequence far ahead) must not have moved the replay window.
      assert.ok(p.client.isEstablished, 'the client association survived');
      assert.ok(p.server.connection(PEER)?.isEstablished, 'the server association survived');
      p.client.send(utf8.encode('client after'));
      p.server.send(PEER, utf8.encode('server after'));
      p.pump();
      assert.equal(Buffer.from(p.serverLog.data.at(-1)!).toString(), 'client after');
      assert.equal(Buffer.from(p.clientLog.data.at(-1)!).toString(), 'server after');
      p.client.close();
      p.server.close();
      assert.equal(p.clock.pending(), 0, 'no timers left');
    }),
    fuzzParameters(100, 0.02),
  );
});

/** A small deterministic PRNG (mulberry32), so that one fast-check integer drives a whole fragmentation plan. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n);
  };
}

/**
 * Rewrites a datagram: every epoch-0 handshake fragment but a ClientHello's (the server's
 * stateless cookie check reads it whole, as RFC 6347 §4.2.1 allows) is cut into up to four
 * pieces that overlap, with one piece maybe repeated, all shuffled and each in a record of its
 * own. Epoch-0 sequence numbers are spread (s → 64s + k) so that the new records are all fresh;
 * encrypted records are left as they are (their sequence number is under the MAC).
 */
function refragment(datagram: Uint8Array, random: (n: number) => number): Uint8Array {
  const { records, malformed } = decodeRecords(datagram);
  if (malformed) return datagram;
  const out: Uint8Array[] = [];
  for (const record of records) {
    if (record.epoch !== 0) {
      out.push(encodeRecord(record));
      continue;
    }
    const pieces: Uint8Array[] = [];
    const fragments = record.type === 22 ? decodeFragments(record.fragment) : [];
    if (record.type !== 22) pieces.push(record.fragment);
    for (const f of fragments) {
      if (f.msgType === 1 || f.body.length < 2) {
        pieces.push(encodeFragment(f));
        continue;
      }
      const cuts = [...new Set([0, f.body.length, ...Array.from({ length: random(4) }, () => 1 + random(f.body.length - 1))])].sort((a, b) => a - b);
      const mine: Uint8Array[] = [];
      for (let i = 0; i + 1 < cuts.length; i++) {
        const start = Math.max(0, cuts[i]! - random(8));
        const end = Math.min(f.body.length, cuts[i + 1]! + random(8));
        mine.push(encodeFragment({ ...f, fragmentOffset: f.fragmentOffset + start, body: f.body.subarray(start, end) }));
      }
      if (random(3) === 0) mine.push(mine[random(mine.length)]!);
      pieces.push(...mine);
    }
    for (let i = pieces.length - 1; i > 0; i--) {
      const j = random(i + 1);
      [pieces[i], pieces[j]] = [pieces[j]!, pieces[i]!];
    }
    pieces.slice(0, 64).forEach((fragment, k) => out.push(encodeRecord({ ...record, sequence: record.sequence * 64 + k, fragment })));
  }
  return Buffer.concat(out);
}

void test('RFC 6347 §4.2.3: handshake messages in overlapping, repeated and reordered fragments are reassembled; PSK and certificate handshakes complete', (t) => {
  const der = (pem: string): Uint8Array => new Uint8Array(new X509Certificate(pem).raw);
  const ca = new X509Certificate(fx.CA_CERT);
  const certificateClient = { certificate: { chain: [der(fx.CLIENT_CERT)], privateKey: createPrivateKey(fx.CLIENT_KEY) }, trustRoots: [ca], mtu: 400 };
  const certificateServer = { certificate: { chain: [der(fx.SERVER_CERT)], privateKey: createPrivateKey(fx.SERVER_KEY) }, trustRoots: [ca], mtu: 400 };
  let refragmented = 0;
  fc.assert(
    fc.property(fc.integer(), fc.integer({ min: 0, max: 9 }), (seed, kind) => {
      const random = prng(seed);
      // One certificate handshake in ten: they cost a signature and a verification each.
      const p = kind === 0 ? makePair(certificateClient, certificateServer) : makePair(pskClient, pskServer);
      p.client.connect();
      p.settle(
        () => p.client.isEstablished && !!p.server.connection(PEER)?.isEstablished,
        (_dir, d) => {
          const rewritten = refragment(d, random);
          if (rewritten.length !== d.length) refragmented++;
          return rewritten;
        },
        250,
        5_000,
      );
      for (const closed of [p.clientLog.closed, p.serverLog.closed]) {
        if (closed instanceof DtlsError) assert.fail(`the handshake failed: ${closed.message}`);
      }
      // No loss: the reassembled flights must complete without waiting for a retransmission.
      assert.ok(p.client.isEstablished, 'client established');
      assert.ok(p.server.connection(PEER)?.isEstablished, 'server established');
      p.client.send(utf8.encode('fragmented'));
      p.pump();
      assert.equal(Buffer.from(p.serverLog.data.at(-1)!).toString(), 'fragmented');
      p.client.close();
      p.server.close();
    }),
    fuzzParameters(60, 0.01),
  );
  assert.ok(refragmented > 0);
  t.diagnostic(`datagrams rewritten: ${refragmented}`);
});
