import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { decodeFragments, encodeFragment, fragmentMessage, HandshakeReassembler, Reassembly, type HandshakeFragment } from '../../../src/dtls/fragment.js';
import { DecodeError } from '../../../src/dtls/bytes.js';

const body = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);

void test('RFC 6347 §4.2.2: handshake header carries message_seq, fragment_offset and fragment_length', () => {
  const enc = encodeFragment({ msgType: 11, length: 1000, messageSeq: 3, fragmentOffset: 200, body: body(5) });
  assert.deepEqual([...enc.subarray(0, 12)], [11, 0, 0x03, 0xe8, 0, 3, 0, 0, 200, 0, 0, 5]);
  const [f] = decodeFragments(enc);
  assert.equal(f!.fragmentOffset, 200);
  assert.equal(f!.length, 1000);
});

void test('RFC 6347 §4.2.3: a fragment reaching past the message length is rejected', () => {
  const enc = encodeFragment({ msgType: 11, length: 10, messageSeq: 0, fragmentOffset: 8, body: body(5) });
  assert.throws(() => decodeFragments(enc), DecodeError);
});

void test('RFC 6347 §4.2.3: fragmentation respects the size limit and covers the message', () => {
  const m = { msgType: 11, messageSeq: 4, body: body(1000) };
  const frags = fragmentMessage(m, 112);
  assert.equal(frags.length, 10);
  for (const f of frags) assert.ok(encodeFragment(f).length <= 112);
  const r = new Reassembly(11, 1000, 4);
  for (const f of frags) assert.equal(r.add(f), true);
  assert.equal(r.complete, true);
  assert.deepEqual([...r.message().body], [...m.body]);
});

void test('RFC 6347 §4.2.3: reassembly out of order and with overlapping fragments', () => {
  const full = body(100);
  const r = new Reassembly(1, 100, 0);
  const frag = (off: number, len: number): HandshakeFragment => ({ msgType: 1, length: 100, messageSeq: 0, fragmentOffset: off, body: full.subarray(off, off + len) });
  r.add(frag(60, 40));
  assert.equal(r.complete, false);
  r.add(frag(0, 30));
  r.add(frag(20, 30)); // overlaps 20..29
  assert.equal(r.complete, false);
  r.add(frag(45, 20)); // overlaps both neighbours
  assert.equal(r.complete, true);
  assert.deepEqual([...r.message().body], [...full]);
});

void test('RFC 6347 §4.2.3: fragments disagreeing on type or length are refused', () => {
  const r = new Reassembly(1, 100, 0);
  assert.equal(r.add({ msgType: 2, length: 100, messageSeq: 0, fragmentOffset: 0, body: body(10) }), false);
  assert.equal(r.add({ msgType: 1, length: 99, messageSeq: 0, fragmentOffset: 0, body: body(10) }), false);
});

void test('RFC 6347 §4.2.2: messages are delivered in message_seq order; old ones are reported as retransmissions', () => {
  const q = new HandshakeReassembler();
  const whole = (seq: number): HandshakeFragment => ({ msgType: 1, length: 3, messageSeq: seq, fragmentOffset: 0, body: body(3) });
  assert.equal(q.add(whole(1)), 'ok');
  assert.equal(q.take(), undefined, 'seq 1 waits for seq 0');
  assert.equal(q.add(whole(0)), 'ok');
  assert.equal(q.take()?.messageSeq, 0);
  assert.equal(q.take()?.messageSeq, 1);
  assert.equal(q.add(whole(0)), 'old');
  assert.equal(q.add(whole(1000)), 'ignored', 'too far ahead to buffer');
});

void test('RFC 6347 §4.2.3: any split into overlapping fragments, in any order, reassembles (property)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 600 }),
      fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 30 }),
      fc.func(fc.integer()),
      (len, extra, order) => {
        const full = body(len);
        // A covering set of fragments plus random extra (overlapping) ones.
        const pieces: [number, number][] = [];
        for (let off = 0; off < len; off += 37) pieces.push([off, Math.min(37, len - off)]);
        if (len === 0) pieces.push([0, 0]);
        for (const [a, b] of extra) {
          const off = len === 0 ? 0 : a % len;
          pieces.push([off, len === 0 ? 0 : b % (len - off + 1)]);
        }
        pieces.sort((x, y) => order(x[0], x[1]) - order(y[0], y[1]));
        const q = new HandshakeReassembler();
        for (const [off, n] of pieces) q.add({ msgType: 13, length: len, messageSeq: 0, fragmentOffset: off, body: full.subarray(off, off + n) });
        const m = q.take();
        assert.ok(m);
        assert.deepEqual([...m.body], [...full]);
      },
    ),
  );
});

void test('handshake fragments: decoding random bytes throws only DecodeError (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), (d) => {
      try {
        decodeFragments(d);
      } catch (e) {
        assert.ok(e instanceof DecodeError);
      }
    }),
  );
});
