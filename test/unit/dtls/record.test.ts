import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { decodeRecords, encodeRecord, MAX_SEQUENCE, ReplayWindow } from '../../../src/dtls/record.js';
import { ContentType, DTLS_1_2 } from '../../../src/dtls/constants.js';

void test('RFC 6347 §4.1: record header layout (type, version, epoch, 48-bit sequence, length)', () => {
  const bytes = encodeRecord({ type: ContentType.handshake, version: DTLS_1_2, epoch: 0x0102, sequence: 0x0a0b0c0d0e0f, fragment: Uint8Array.of(9, 8, 7) });
  assert.deepEqual([...bytes], [22, 0xfe, 0xfd, 0x01, 0x02, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x00, 0x03, 9, 8, 7]);
  const { records, malformed } = decodeRecords(bytes);
  assert.equal(malformed, false);
  assert.equal(records.length, 1);
  assert.equal(records[0]!.sequence, 0x0a0b0c0d0e0f);
  assert.equal(records[0]!.epoch, 0x0102);
});

void test('RFC 6347 §4.1: the largest 48-bit sequence number round-trips', () => {
  const bytes = encodeRecord({ type: 23, version: DTLS_1_2, epoch: 1, sequence: MAX_SEQUENCE, fragment: new Uint8Array(0) });
  assert.deepEqual([...bytes.subarray(5, 11)], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  assert.equal(decodeRecords(bytes).records[0]!.sequence, MAX_SEQUENCE);
});

void test('RFC 6347 §4.1.1: several records in one datagram; a truncated tail keeps the good records', () => {
  const a = encodeRecord({ type: 22, version: DTLS_1_2, epoch: 0, sequence: 1, fragment: Uint8Array.of(1) });
  const b = encodeRecord({ type: 23, version: DTLS_1_2, epoch: 1, sequence: 2, fragment: Uint8Array.of(2, 2) });
  const both = Buffer.concat([a, b]);
  assert.equal(decodeRecords(both).records.length, 2);
  const cut = decodeRecords(both.subarray(0, both.length - 1));
  assert.equal(cut.records.length, 1);
  assert.equal(cut.malformed, true);
});

void test('records: encode/decode round-trip for arbitrary fields (property)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 255 }).filter((t) => t !== 25),
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 0, max: MAX_SEQUENCE }),
      fc.uint8Array({ maxLength: 300 }),
      (type, version, epoch, sequence, fragment) => {
        const r = decodeRecords(encodeRecord({ type, version, epoch, sequence, fragment }));
        assert.equal(r.records.length, 1);
        assert.deepEqual(r.records[0], { type, version, epoch, sequence, fragment: r.records[0]!.fragment });
        assert.deepEqual([...r.records[0].fragment], [...fragment]);
      },
    ),
  );
});

void test('RFC 9146 §4: a tls12_cid record carries the CID between sequence number and length; parsing needs its length', () => {
  const cid = Uint8Array.of(1, 2, 3, 4, 5, 6);
  const bytes = encodeRecord({ type: 25, version: DTLS_1_2, epoch: 1, sequence: 7, cid, fragment: Uint8Array.of(0xaa, 0xbb) });
  assert.deepEqual([...bytes.subarray(11, 17)], [...cid]);
  assert.deepEqual([...bytes.subarray(17, 19)], [0, 2]);
  const r = decodeRecords(bytes, 6).records[0]!;
  assert.deepEqual([...r.cid!], [...cid]);
  assert.deepEqual([...r.fragment], [0xaa, 0xbb]);
  assert.equal(decodeRecords(bytes).malformed, true, 'without a CID length the record cannot be parsed');
});

void test('records: decoding random bytes never throws (property)', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (d) => void decodeRecords(d)));
});

void test('RFC 6347 §4.1.2.6: replay window accepts new numbers, rejects duplicates and numbers left of the window', () => {
  const w = new ReplayWindow(64);
  assert.equal(w.check(0), true);
  w.update(0);
  assert.equal(w.check(0), false, 'duplicate');
  assert.equal(w.check(5), true);
  w.update(5);
  assert.equal(w.check(3), true, 'late but inside the window');
  w.update(3);
  assert.equal(w.check(3), false);
  w.update(100);
  assert.equal(w.check(37), true, '100-63 = 37 is the left edge');
  assert.equal(w.check(36), false, 'left of the window');
  assert.equal(w.check(5), false);
  assert.equal(w.check(99), true);
  w.update(100 + 1000);
  assert.equal(w.check(100), false, 'far jump slides the whole window');
  assert.equal(w.check(1099), true);
  assert.equal(w.check(-1), false);
  assert.equal(w.check(MAX_SEQUENCE + 1), false);
});

/** Feeds sequence numbers to a window of `size` and to a reference model (a set and the top): they must agree. */
function agreesWithReferenceWindow(size: number, seqs: number[]): void {
  const w = new ReplayWindow(size);
  const seen = new Set<number>();
  let top = -1;
  for (const s of seqs) {
    const expected = !seen.has(s) && s > top - size;
    assert.equal(w.check(s), expected, `seq ${s} top ${top}`);
    if (expected) {
      w.update(s);
      seen.add(s);
      top = Math.max(top, s);
    }
  }
}

void test('RFC 6347 §4.1.2.6: replay window matches a reference model (property)', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 200 }), (seqs) => agreesWithReferenceWindow(32, seqs)));
});

void test('RFC 6347 §4.1.2.6: a 64-record replay window matches a reference model (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 2 ** 40 })), { maxLength: 300 }), (seqs) => agreesWithReferenceWindow(64, seqs)),
  );
  assert.throws(() => new ReplayWindow(65), RangeError);
});
