/**
 * RFC 7252 §3 / §3.1 message format edges that the mutation run showed untested: truncated
 * tokens and option extensions, the Empty message, the extension boundaries (12/13, 268/269) in
 * both directions, and the encoder's range checks. The property: a datagram either decodes to a
 * message that encodes back to exactly the same bytes, or is refused as a format error.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { CoapFormatError, CoapIgnoredDatagram, decode, encode } from '../../../src/coap/codec.js';
import { EMPTY, Method, MessageType } from '../../../src/coap/codes.js';
import type { CoapMessage } from '../../../src/coap/message.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function formatError(bytes: Uint8Array, clause: string): CoapFormatError {
  try {
    decode(bytes);
  } catch (e) {
    assert.ok(e instanceof CoapFormatError, `expected CoapFormatError, got ${String(e)}`);
    assert.equal(e.clause, clause);
    assert.equal(e.name, 'CoapFormatError');
    assert.match(e.message, new RegExp(`\\(RFC 7252 ${clause.replace('.', '\\.')}\\)$`));
    return e;
  }
  assert.fail(`decoded ${toHex(bytes)}`);
}

const message = fc.record({
  type: fc.constantFrom(MessageType.CON, MessageType.NON, MessageType.ACK, MessageType.RST),
  code: fc.integer({ min: 1, max: 255 }),
  messageId: fc.integer({ min: 0, max: 0xffff }),
  token: fc.uint8Array({ maxLength: 8 }),
  options: fc.array(
    fc.record({
      number: fc.oneof(fc.integer({ min: 0, max: 30 }), fc.constantFrom(12, 13, 14, 268, 269, 270, 281, 282, 537, 538, 65535), fc.integer({ min: 0, max: 65535 })),
      value: fc.oneof(fc.uint8Array({ maxLength: 14 }), fc.constantFrom(12, 13, 14, 268, 269, 270).map((n) => new Uint8Array(n).fill(7))),
    }),
    { maxLength: 5 },
  ),
  payload: fc.uint8Array({ maxLength: 20 }),
});

void test('RFC 7252 §3: every prefix of a valid message decodes to exactly those bytes or is a format error (property)', () => {
  fc.assert(
    fc.property(message, (m) => {
      const bytes = encode(m);
      const back = decode(bytes);
      assert.deepEqual(toHex(encode(back)), toHex(bytes));
      for (let n = 4; n < bytes.length; n++) {
        const prefix = bytes.subarray(0, n);
        let decoded: CoapMessage | undefined;
        try {
          decoded = decode(prefix);
        } catch (e) {
          assert.ok(e instanceof CoapFormatError, String(e));
          continue;
        }
        for (const o of decoded.options) assert.ok(Number.isInteger(o.number) && o.number >= 0 && o.number <= 0xffff, `option number ${o.number}`);
        assert.equal(toHex(encode(decoded)), toHex(prefix), `prefix of ${n} bytes`);
      }
    }),
    { numRuns: 300 },
  );
});

void test('RFC 7252 §3.1: option extensions cut short are format errors', () => {
  // (the message says which part is cut: Depot's wording)
  assert.match(formatError(hex('40 01 0001 d0'), '§3.1').message, /delta extension truncated/); // delta 13: its extension byte is missing
  assert.match(formatError(hex('40 01 0001 e0 00'), '§3.1').message, /delta extension truncated/); // delta 14: one of two extension bytes
  assert.match(formatError(hex('40 01 0001 0d'), '§3.1').message, /length extension truncated/); // length 13: extension byte missing
  assert.match(formatError(hex('40 01 0001 0e 00'), '§3.1').message, /length extension truncated/); // length 14: one of two
  formatError(hex('40 01 0001 03 6162'), '§3.1'); // value runs past the end
  formatError(hex('40 01 0001 f0'), '§3.1'); // nibble 15 outside the payload marker
  formatError(hex('40 01 0001 0f'), '§3.1');
  formatError(hex('40 01 0001 0f' + '61'.repeat(15)), '§3.1'); // length nibble 15 even with 15 bytes after it
  formatError(hex('40 01 0001 e0 ffff e0 ffff'), '§3.1'); // option number beyond 65535
  // …and exactly long enough is fine
  assert.deepEqual(decode(hex('40 01 0001 d0 00')).options, [{ number: 13, value: new Uint8Array(0) }]);
  assert.deepEqual(decode(hex('40 01 0001 e0 0000')).options, [{ number: 269, value: new Uint8Array(0) }]);
  assert.equal(decode(hex('40 01 0001 0d 00' + '61'.repeat(13))).options[0]!.value.length, 13);
  assert.equal(decode(hex('40 01 0001 0e 0000' + '61'.repeat(269))).options[0]!.value.length, 269);
});

void test('RFC 7252 §3: a token longer than the datagram, a reserved token length, a marker with no payload are format errors', () => {
  formatError(hex('44 01 0001 aabb'), '§3');
  formatError(hex('49 01 0001 aabbccddeeff001122'), '§3');
  formatError(hex('40 01 0001 ff'), '§3');
  assert.deepEqual([...decode(hex('42 01 0001 aabb')).token], [0xaa, 0xbb]);
  assert.throws(() => decode(hex('400100')), CoapIgnoredDatagram);
  assert.throws(() => decode(hex('80010001')), CoapIgnoredDatagram); // version 2
});

void test('RFC 7252 §4.1: an Empty message is exactly 4 bytes with TKL 0', () => {
  const m = decode(hex('60 00 1234'));
  assert.deepEqual(m, { type: MessageType.ACK, code: EMPTY, messageId: 0x1234, token: new Uint8Array(0), options: [], payload: new Uint8Array(0) });
  formatError(hex('61 00 1234'), '§4.1'); // TKL 1, no token byte either
  formatError(hex('61 00 1234 aa'), '§4.1');
  formatError(hex('60 00 1234 ff01'), '§4.1');
});

void test('RFC 7252 §3.1: deltas and lengths of 12/13 and 268/269 are written with the right extension', () => {
  const enc = (options: { number: number; value: Uint8Array }[]) => toHex(encode({ type: MessageType.CON, code: Method.GET, messageId: 1, token: new Uint8Array(0), options, payload: new Uint8Array(0) }));
  assert.equal(enc([{ number: 12, value: new Uint8Array(0) }]), '40010001c0');
  assert.equal(enc([{ number: 13, value: new Uint8Array(0) }]), '40010001d000');
  assert.equal(enc([{ number: 268, value: new Uint8Array(0) }]), '40010001d0ff');
  assert.equal(enc([{ number: 269, value: new Uint8Array(0) }]), '40010001e00000');
  assert.equal(enc([{ number: 1, value: new Uint8Array(12) }]), '400100011c' + '00'.repeat(12));
  assert.equal(enc([{ number: 1, value: new Uint8Array(268) }]), '400100011dff' + '00'.repeat(268));
  assert.equal(enc([{ number: 1, value: new Uint8Array(269) }]), '400100011e0000' + '00'.repeat(269));
});

void test('RFC 7252 §3: the encoder refuses what the format cannot carry (token > 8 bytes, message ID beyond 16 bits, an option value beyond 65804 bytes)', () => {
  const base: CoapMessage = { type: MessageType.CON, code: Method.GET, messageId: 1, token: new Uint8Array(0), options: [], payload: new Uint8Array(0) };
  assert.throws(() => encode({ ...base, token: new Uint8Array(9) }), RangeError);
  assert.equal(encode({ ...base, token: new Uint8Array(8) }).length, 12);
  assert.throws(() => encode({ ...base, messageId: -1 }), RangeError);
  assert.throws(() => encode({ ...base, messageId: 0x10000 }), RangeError);
  assert.equal(toHex(encode({ ...base, messageId: 0xffff })), '4001ffff');
  assert.throws(() => encode({ ...base, options: [{ number: 1, value: new Uint8Array(65535 + 270) }] }), RangeError);
  assert.equal(encode({ ...base, options: [{ number: 1, value: new Uint8Array(65535 + 269) }] }).length, 4 + 3 + 65535 + 269);
});
