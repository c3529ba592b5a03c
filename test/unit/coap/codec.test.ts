import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { decode, encode, CoapFormatError, CoapIgnoredDatagram } from '../../../src/coap/codec.js';
import { Code, Method, MessageType } from '../../../src/coap/codes.js';
import type { CoapMessage } from '../../../src/coap/message.js';
import { OptionNumber, checkOptions, decodeUint, encodeString, encodeUint, uriPathOf } from '../../../src/coap/options.js';
import { decodeBlock, encodeBlock } from '../../../src/coap/block.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function expectFormatError(bytes: Uint8Array, clause: string): CoapFormatError {
  let caught: unknown;
  try {
    decode(bytes);
  } catch (error) {
    caught = error;
  }
  if (!(caught instanceof CoapFormatError)) assert.fail(`expected CoapFormatError, got ${String(caught)}`);
  assert.equal(caught.clause, clause);
  return caught;
}

test('RFC 7252 Appendix A figure 16: CON GET /temperature encodes to the documented bytes', () => {
  const msg: CoapMessage = { type: MessageType.CON, code: Method.GET, messageId: 0x7d34, token: new Uint8Array(0), options: [{ number: OptionNumber.UriPath, value: encodeString('temperature') }], payload: new Uint8Array(0) };
  assert.equal(toHex(encode(msg)), '40017d34bb' + Buffer.from('temperature').toString('hex'));
});

test('RFC 7252 Appendix A figure 16: piggybacked 2.05 "22.3 C" decodes', () => {
  const m = decode(hex('60457d34ff' + Buffer.from('22.3 C').toString('hex')));
  assert.equal(m.type, MessageType.ACK);
  assert.equal(m.code, Code.Content);
  assert.equal(m.messageId, 0x7d34);
  assert.equal(Buffer.from(m.payload).toString(), '22.3 C');
});

test('RFC 7252 §3.1: option delta 13..268 uses one extension byte, 269+ two', () => {
  const msg: CoapMessage = {
    type: MessageType.NON, code: Method.GET, messageId: 1, token: hex('aa'),
    options: [{ number: 258, value: Uint8Array.of(2) }, { number: 1000, value: new Uint8Array(0) }], payload: new Uint8Array(0),
  };
  // 258: nibble 13, 258-13 = 245 (0xf5); 1000-258 = 742: nibble 14, 742-269 = 473 (0x01d9).
  assert.equal(toHex(encode(msg)), '51010001aa' + 'd1f502' + 'e001d9');
  const back = decode(encode(msg));
  assert.deepEqual(back.options.map((o) => o.number), [258, 1000]);
});

test('RFC 7252 §3.1: option length 13..268 and 269+ use extension bytes', () => {
  for (const length of [12, 13, 268, 269, 300, 1034]) {
    const value = new Uint8Array(length).fill(0x61);
    const msg: CoapMessage = { type: MessageType.CON, code: Method.GET, messageId: 7, token: new Uint8Array(0), options: [{ number: OptionNumber.ETag, value }], payload: new Uint8Array(0) };
    const bytes = encode(msg); // option 4: the delta fits the nibble, only the length extends
    const expectedHeader = length < 13 ? 1 : length < 269 ? 2 : 3;
    assert.equal(bytes.length, 4 + expectedHeader + length, `length ${length}`);
    assert.equal(decode(bytes).options[0]!.value.length, length);
  }
});

test('RFC 7252 §3: token lengths 9-15 are a message format error', () => {
  const e = expectFormatError(hex('49010001' + '00'.repeat(9)), '§3');
  assert.deepEqual(e.header, { type: MessageType.CON, messageId: 1, code: Method.GET });
});

test('RFC 7252 §4.1: an Empty message with anything after the Message ID is a format error', () => {
  expectFormatError(hex('40000001ff00'), '§4.1');
  expectFormatError(hex('41000001aa'), '§4.1');
});

test('RFC 7252 §3.1: option nibble 15 outside the payload marker is a format error', () => {
  expectFormatError(hex('40010001f0'), '§3.1');
  expectFormatError(hex('400100010f'), '§3.1');
});

test('RFC 7252 §3: a payload marker followed by an empty payload is a format error', () => {
  expectFormatError(hex('40010001ff'), '§3');
});

test('RFC 7252 §3.1: truncated option extensions and values are format errors', () => {
  expectFormatError(hex('40010001d0'), '§3.1'); // delta extension missing
  expectFormatError(hex('40010001e000'), '§3.1'); // 2-byte delta extension cut short
  expectFormatError(hex('40010001b361'), '§3.1'); // value of 3 bytes, 1 present
  expectFormatError(hex('40010001' + 'e0fef0' + 'e0fef0'), '§3.1'); // option number > 65535
});

test('RFC 7252 §3: short datagrams and unknown versions are silently ignored', () => {
  assert.throws(() => decode(hex('4001')), CoapIgnoredDatagram);
  assert.throws(() => decode(hex('80010001')), CoapIgnoredDatagram);
  assert.throws(() => decode(hex('00010001')), CoapIgnoredDatagram);
});

test('RFC 7252 §3.2: uint option values use the shortest form', () => {
  assert.deepEqual([...encodeUint(0)], []);
  assert.deepEqual([...encodeUint(255)], [255]);
  assert.deepEqual([...encodeUint(256)], [1, 0]);
  assert.deepEqual([...encodeUint(0x1000000)], [1, 0, 0, 0]);
  assert.equal(decodeUint(Uint8Array.of(0, 0, 1)), 1); // leading zeros still decode
  assert.throws(() => encodeUint(-1), RangeError);
});

test('RFC 7252 §5.4.1: unrecognized elective options are dropped, the first critical one is reported', () => {
  const msg = decode(encode({
    type: MessageType.CON, code: Method.GET, messageId: 1, token: new Uint8Array(0),
    options: [{ number: OptionNumber.UriPath, value: encodeString('a') }, { number: 2048, value: Uint8Array.of(1) }, { number: 2049, value: Uint8Array.of(1) }],
    payload: new Uint8Array(0),
  }));
  const problem = checkOptions(msg);
  assert.equal(problem?.option.number, 2049);
  assert.equal(problem?.reason, 'unrecognized');
  assert.deepEqual(msg.options.map((o) => o.number), [OptionNumber.UriPath, 2049]);
});

test('RFC 7252 §5.4.3: a value length out of range is treated as unrecognized', () => {
  const msg: CoapMessage = { type: MessageType.CON, code: Method.GET, messageId: 1, token: new Uint8Array(0), options: [{ number: OptionNumber.UriHost, value: new Uint8Array(0) }], payload: new Uint8Array(0) };
  assert.equal(checkOptions(msg)?.reason, 'bad-length');
  const elective: CoapMessage = { ...msg, options: [{ number: OptionNumber.ContentFormat, value: Uint8Array.of(1, 2, 3) }] };
  assert.equal(checkOptions(elective), undefined);
  assert.equal(elective.options.length, 0);
});

test('RFC 7252 §5.4.5: a repeated non-repeatable critical option is treated as unrecognized', () => {
  const msg: CoapMessage = { type: MessageType.CON, code: Method.GET, messageId: 1, token: new Uint8Array(0), options: [{ number: OptionNumber.Accept, value: Uint8Array.of(0) }, { number: OptionNumber.Accept, value: Uint8Array.of(40) }], payload: new Uint8Array(0) };
  assert.equal(checkOptions(msg)?.reason, 'not-repeatable');
});

test('uriPathOf joins Uri-Path segments', () => {
  const msg = decode(encode({ type: MessageType.CON, code: Method.GET, messageId: 1, token: new Uint8Array(0), options: ['a', 'b c'].map((s) => ({ number: OptionNumber.UriPath, value: encodeString(s) })), payload: new Uint8Array(0) }));
  assert.equal(uriPathOf(msg), '/a/b c');
});

test('RFC 7959 §2.2: block values round-trip and SZX 7 is reserved', () => {
  assert.deepEqual(decodeBlock(encodeBlock({ num: 5, more: true, szx: 6 })), { num: 5, more: true, szx: 6 });
  assert.equal(encodeBlock({ num: 1, more: false, szx: 2 }), 0x12);
  assert.equal(decodeBlock(0x17), undefined);
  assert.throws(() => encodeBlock({ num: 0x100000, more: false, szx: 0 }), RangeError);
});

const optionArb = fc.record({ number: fc.integer({ min: 0, max: 65535 }), value: fc.uint8Array({ maxLength: 300 }) });
const messageArb = fc.record({
  type: fc.constantFrom(MessageType.CON, MessageType.NON, MessageType.ACK, MessageType.RST),
  code: fc.integer({ min: 1, max: 255 }),
  messageId: fc.integer({ min: 0, max: 0xffff }),
  token: fc.uint8Array({ maxLength: 8 }),
  options: fc.array(optionArb, { maxLength: 8 }),
  payload: fc.uint8Array({ maxLength: 200 }),
});

test('property: encode then decode gives the same message (options in number order)', () => {
  fc.assert(
    fc.property(messageArb, (msg) => {
      const back = decode(encode(msg));
      const sorted = [...msg.options].sort((a, b) => a.number - b.number);
      assert.equal(back.type, msg.type);
      assert.equal(back.code, msg.code);
      assert.equal(back.messageId, msg.messageId);
      assert.deepEqual([...back.token], [...msg.token]);
      assert.deepEqual(back.options.map((o) => [o.number, toHex(o.value)]), sorted.map((o) => [o.number, toHex(o.value)]));
      assert.deepEqual([...back.payload], [...msg.payload]);
    }),
    { numRuns: 500 },
  );
});

test('property: random bytes never make decode throw anything but the two typed errors', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      try {
        decode(bytes);
      } catch (error) {
        assert.ok(error instanceof CoapFormatError || error instanceof CoapIgnoredDatagram, String(error));
      }
    }),
    { numRuns: 5000 },
  );
});

test('property: single-byte mutations of valid messages decode or fail with a typed error', () => {
  fc.assert(
    fc.property(messageArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (msg, where, value) => {
      const bytes = Uint8Array.from(encode(msg));
      bytes[where % bytes.length] = value;
      try {
        const m = decode(bytes);
        // Whatever decodes must encode again without throwing.
        encode(m);
      } catch (error) {
        assert.ok(error instanceof CoapFormatError || error instanceof CoapIgnoredDatagram, String(error));
      }
    }),
    { numRuns: 2000 },
  );
});
