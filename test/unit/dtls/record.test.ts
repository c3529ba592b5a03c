import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { decodeRecords, encodeRecord, epochAndSequence, MAX_SEQUENCE, ReplayWindow } from '../../../src/dtls/record.js';
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

/**
 * The reference model of RFC 6347 §4.1.2.6 (the algorithm of RFC 4303 §3.4.3), written here and not
 * taken from src: a record is accepted when its number was never accepted before and is not left of
 * the window, i.e. `seq > top - size` where `top` is the highest number accepted so far. A Set of
 * every accepted number and the max — no bit tricks.
 */
class ReferenceWindow {
  private readonly seen = new Set<number>();
  private top = -1;
  constructor(private readonly size: number) {}
  accepts(seq: number): boolean {
    return Number.isInteger(seq) && seq >= 0 && seq <= MAX_SEQUENCE && !this.seen.has(seq) && seq > this.top - this.size;
  }
  record(seq: number): void {
    this.seen.add(seq);
    this.top = Math.max(this.top, seq);
  }
}

/** Feeds sequence numbers to a window of `size` and to the reference model: they must agree on every check. */
function agreesWithReferenceWindow(size: number, seqs: number[]): void {
  const w = new ReplayWindow(size);
  const model = new ReferenceWindow(size);
  for (const [i, s] of seqs.entries()) {
    const expected = model.accepts(s);
    assert.equal(w.check(s), expected, `record #${i}: seq ${s} (size ${size}, so far ${seqs.slice(0, i).join(',')})`);
    if (expected) {
      w.update(s);
      model.record(s);
    }
  }
}

/** Feeds sequence numbers to a window, updating after each accepted one; returns the verdicts. */
function verdicts(seqs: number[], size = 64): boolean[] {
  const w = new ReplayWindow(size);
  return seqs.map((s) => {
    const ok = w.check(s);
    if (ok) w.update(s);
    return ok;
  });
}

/**
 * Sequence numbers the way a real peer's records arrive: the top moves forward in small steps
 * (0 to 80: within a word, across the 32-bit word boundary, exactly 32/64, beyond the window),
 * interleaved with late records and replays a little behind the top (up to 90 back, so on both
 * sides of the window's left edge). Offsets from the current top, resolved in `walk`.
 */
const smallStepWalk = fc.array(
  fc.oneof(
    { arbitrary: fc.record({ ahead: fc.integer({ min: 0, max: 80 }) }), weight: 3 },
    { arbitrary: fc.record({ ahead: fc.constantFrom(1, 31, 32, 33, 63, 64, 65) }), weight: 1 },
    { arbitrary: fc.record({ behind: fc.integer({ min: 0, max: 90 }) }), weight: 4 },
    { arbitrary: fc.record({ behind: fc.constantFrom(31, 32, 33, 63, 64, 65) }), weight: 1 },
  ),
  { minLength: 1, maxLength: 150 },
);

function walk(steps: ({ ahead: number } | { behind: number })[]): number[] {
  let top = 0;
  return steps.map((step) => {
    if ('ahead' in step) {
      top += step.ahead;
      return top;
    }
    return Math.max(0, top - step.behind);
  });
}

void test('RFC 6347 §4.1.2.6: replay window matches a reference model (property, random numbers 0–300, 32 records)', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 200 }), (seqs) => agreesWithReferenceWindow(32, seqs)));
});

void test('RFC 6347 §4.1.2.6: a 64-record replay window matches a reference model (property, small and huge jumps)', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 2 ** 40 })), { maxLength: 300 }), (seqs) => agreesWithReferenceWindow(64, seqs)),
  );
  assert.throws(() => new ReplayWindow(65), RangeError);
});

void test('RFC 6347 §4.1.2.6: a 64-record window with small steps, late records and replays matches the reference model (property)', () => {
  // The window's upper 32 bits only fill up when the top moves in steps smaller than 64 with
  // records still marked behind it: random numbers up to 2^40 almost never do that.
  fc.assert(fc.property(smallStepWalk, (steps) => agreesWithReferenceWindow(64, walk(steps))), { numRuns: 300 });
});

void test('RFC 6347 §4.1.2.6: narrower windows (1, 2, 31, 32, 33, 48, 63) with small steps match the reference model (property; the width is Depot\'s choice, the RFC says 32 MUST be supported and 64 is the default)', () => {
  fc.assert(
    fc.property(fc.constantFrom(1, 2, 31, 32, 33, 48, 63), smallStepWalk, (size, steps) => agreesWithReferenceWindow(size, walk(steps))),
    { numRuns: 300 },
  );
});

void test('RFC 6347 §4.1.2.6: sequence 0, 20, 40, 0 — the replayed 0 is rejected (it is 40 behind, inside the 64-record window)', () => {
  assert.deepEqual(verdicts([0, 20, 40, 0]), [true, true, true, false]);
  // and the late records between them are still accepted, once each
  assert.deepEqual(verdicts([0, 20, 40, 1, 19, 21, 39, 1, 19, 21, 39, 20]), [true, true, true, true, true, true, true, false, false, false, false, false]);
});

void test('RFC 6347 §4.1.2.6: the window is 64 records: 63 behind the top is inside, 64 behind is left of it', () => {
  // right after the first record
  const w = new ReplayWindow(64);
  assert.equal(w.check(100), true);
  w.update(100);
  assert.equal(w.check(37), true, '100 - 63 is the left edge: a late record there is accepted');
  assert.equal(w.check(36), false, '100 - 64 is left of the window');
  w.update(37);
  assert.equal(w.check(37), false, 'a replay at the left edge is rejected');
  // every late record 1..63 behind is accepted exactly once
  const v = new ReplayWindow(64);
  v.update(0);
  v.update(63);
  for (let s = 1; s < 63; s++) assert.equal(v.check(s), true, `late ${s}`);
  for (let s = 1; s < 63; s++) v.update(s);
  for (let s = 0; s <= 63; s++) assert.equal(v.check(s), false, `replay ${s}`);
  // one more step: 0 falls out (64 behind), 1 is now the left edge and still marked
  v.update(64);
  assert.equal(v.check(0), false);
  assert.equal(v.check(1), false);
});

void test('RFC 6347 §4.1.2.6: the top moving by exactly 1, 31, 32, 33, 63, 64 and 65 keeps the marks of the records still inside the window', () => {
  for (const step of [1, 31, 32, 33, 63, 64, 65]) {
    const w = new ReplayWindow(64);
    // records 0..9 seen (10 is not), then the top jumps by `step`
    for (let s = 0; s < 10; s++) w.update(s);
    const top = 9 + step;
    assert.equal(w.check(top), true);
    w.update(top);
    for (let s = 0; s <= top; s++) {
      const inside = s > top - 64;
      const seen = s < 10 || s === top;
      assert.equal(w.check(s), inside && !seen, `step ${step}: seq ${s} (${inside ? 'inside' : 'left of'} the window, ${seen ? 'seen' : 'not seen'})`);
    }
  }
});

void test('RFC 6347 §4.1.2.6: late records exactly 31, 32 and 33 behind the top are accepted once, then rejected as replays', () => {
  for (const behind of [0, 1, 31, 32, 33, 62, 63]) {
    const w = new ReplayWindow(64);
    w.update(200);
    const late = 200 - behind;
    if (behind > 0) {
      assert.equal(w.check(late), true, `${behind} behind, first time`);
      w.update(late);
    }
    assert.equal(w.check(late), false, `${behind} behind, replayed`);
    // and marking it marked nothing else
    for (let b = 1; b < 64; b++) if (b !== behind) assert.equal(w.check(200 - b), true, `${b} behind after marking ${behind} behind`);
  }
});

void test('RFC 6347 §4.1.2.6: the first record received may have any number; nothing before it counts as seen, nothing after it either', () => {
  for (const first of [0, 1, 5, 63, 64, 1000]) {
    const w = new ReplayWindow(64);
    w.update(first);
    assert.equal(w.check(first), false);
    for (let s = Math.max(0, first - 63); s < first + 70; s++) if (s !== first) assert.equal(w.check(s), true, `first ${first}, then ${s}`);
    assert.equal(w.check(first - 64), false);
  }
  // a first record 0 is remembered when the top moves a little (a replay of 0 after 5)
  assert.deepEqual(verdicts([0, 5, 0]), [true, true, false]);
  assert.deepEqual(verdicts([1, 5, 1]), [true, true, false]);
});

void test('RFC 6347 §4.1 (48-bit sequence numbers): the window accepts 0 and 2^48 - 1 and refuses what no record can carry', () => {
  const w = new ReplayWindow(64);
  assert.equal(w.check(MAX_SEQUENCE), true);
  assert.equal(w.check(0), true);
  for (const bad of [-1, MAX_SEQUENCE + 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) assert.equal(w.check(bad), false, String(bad));
  w.update(MAX_SEQUENCE);
  assert.equal(w.check(MAX_SEQUENCE), false);
  assert.equal(w.check(MAX_SEQUENCE - 63), true);
  assert.equal(w.check(MAX_SEQUENCE - 64), false);
});

void test('replay window: update is idempotent and ignores numbers left of the window (Depot\'s choice: the RFC only has update follow a successful check)', () => {
  const w = new ReplayWindow(64);
  w.update(100);
  w.update(100);
  w.update(90);
  w.update(90);
  w.update(20); // left of the window: nothing to mark
  w.update(36); // exactly 64 behind: just left of the window, nothing to mark either
  for (let s = 37; s <= 100; s++) assert.equal(w.check(s), s !== 100 && s !== 90, `seq ${s}`);
  assert.equal(w.highest, 100);
});

void test('replay window: the width must be an integer from 1 to 64 (Depot\'s choice; RFC 6347 §4.1.2.6: 32 MUST be supported, 64 is preferred and the default)', () => {
  assert.equal(new ReplayWindow().size, 64);
  for (const ok of [1, 32, 64]) assert.equal(new ReplayWindow(ok).size, ok);
  for (const bad of [0, -1, 65, 1.5, Number.NaN]) assert.throws(() => new ReplayWindow(bad), { name: 'RangeError', message: /replay window size/ }, String(bad));
});

void test('RFC 6347 §4.1: the record length field is 16 bits: a fragment of 65535 bytes is written, one of 65536 refused', () => {
  const ok = encodeRecord({ type: 23, version: DTLS_1_2, epoch: 1, sequence: 1, fragment: new Uint8Array(0xffff) });
  assert.deepEqual([...ok.subarray(11, 13)], [0xff, 0xff]);
  assert.throws(() => encodeRecord({ type: 23, version: DTLS_1_2, epoch: 1, sequence: 1, fragment: new Uint8Array(0x10000) }), { name: 'RangeError', message: /too long/ });
});

void test('RFC 6347 §4.1.2.1: the seq_num in the MAC/AEAD input is epoch (2 bytes) || sequence number (6 bytes)', () => {
  assert.deepEqual([...epochAndSequence(0x0102, 0x0a0b0c0d0e0f)], [0x01, 0x02, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]);
  assert.deepEqual([...epochAndSequence(0xffff, MAX_SEQUENCE)], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
});

void test('RFC 6347 §4.1: a datagram shorter than a record header, or a header whose length runs past the end, yields no record', () => {
  const whole = encodeRecord({ type: 23, version: DTLS_1_2, epoch: 1, sequence: 1, fragment: Uint8Array.of(1, 2, 3) });
  for (let n = 1; n < whole.length; n++) {
    const r = decodeRecords(whole.subarray(0, n));
    assert.deepEqual(r, { records: [], malformed: true }, `first ${n} bytes`);
  }
  assert.deepEqual(decodeRecords(new Uint8Array(0)), { records: [], malformed: false });
});

void test('RFC 9146 §4: a tls12_cid record received without a negotiated CID is not parsed as a record with an empty CID', () => {
  // CID 00 02: read as if it were the length field, it would make a 2-byte fragment.
  const bytes = encodeRecord({ type: 25, version: DTLS_1_2, epoch: 1, sequence: 7, cid: Uint8Array.of(0, 2), fragment: Uint8Array.of(0xaa, 0xbb) });
  assert.deepEqual(decodeRecords(bytes), { records: [], malformed: true });
  assert.equal(decodeRecords(bytes, 2).records.length, 1);
});
