/**
 * Robustness (RFC 6347 §4.1.2.7: invalid records are discarded, not fatal to the process):
 * random and mutated input never throws out of the sans-IO core, and every association ends
 * up either established or closed with its timers released.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { makePair, PEER } from './harness.js';
import { ManualClock } from '../../../src/util/clock.js';
import { DtlsServerEndpoint } from '../../../src/dtls/server.js';
import { DtlsConnection, DtlsError } from '../../../src/dtls/connection.js';
import { AlertDescription } from '../../../src/dtls/constants.js';
import { encodeRecord } from '../../../src/dtls/record.js';
import { encodeFragment } from '../../../src/dtls/fragment.js';
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
    { numRuns: 300 },
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
    { numRuns: 300 },
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
    { numRuns: 150 },
  );
  // Most single mutations are repaired by retransmission; some (e.g. a corrupted Finished) fail cleanly.
  assert.ok(outcomes.established > 0 && outcomes.established + outcomes.failed === 150, JSON.stringify(outcomes));
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
    { numRuns: 40 },
  );
});
