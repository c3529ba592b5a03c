import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ContentFormat, Node, Value, decode, encode } from '../../../src/lwm2m/index.js';
import { assertCodecError, text, utf8 } from './helpers.js';

const TEXT = ContentFormat.PlainText;
const OPAQUE = ContentFormat.Opaque;

test('plain text TS 1.1 §7.4.1: GET /3/0/0 returns "Open Mobile Alliance"', () => {
  assert.equal(text(encode(TEXT, [3, 0, 0], Node.resource(0, Value.string('Open Mobile Alliance')))), 'Open Mobile Alliance');
  assert.deepEqual(decode(TEXT, [3, 0, 0], utf8('Open Mobile Alliance')), Node.resource(0, Value.string('Open Mobile Alliance')));
});

test('plain text TS 1.1 §7.4.1: numbers, time, boolean, objlnk, base64 opaque', () => {
  const cases: Array<[readonly [number, number, number], string, ReturnType<typeof Value.string>]> = [
    [[3, 0, 9], '100', Value.integer(100)],
    [[3, 0, 13], '1367491215', Value.time(1367491215)],
    [[1, 0, 1], '18446744073709551615', Value.unsignedInteger(2n ** 64n - 1n)],
    [[9, 0, 12], '1', Value.boolean(true)],
    [[9, 0, 8], '0', Value.boolean(false)],
    [[9, 0, 5], '3:0', Value.objlnk(3, 0)],
    [[0, 0, 3], 'AQID', Value.opaque(Uint8Array.of(1, 2, 3))],
  ];
  for (const [path, body, value] of cases) {
    const node = Node.resource(path[2], value);
    assert.equal(text(encode(TEXT, path, node)), body, body);
    assert.deepEqual(decode(TEXT, path, utf8(body)), node, body);
  }
  assert.deepEqual(decode(TEXT, [3, 0, 9], utf8('-42')), Node.resource(9, Value.integer(-42)));
  assert.deepEqual(decode(TEXT, [3, 0, 9], utf8('-9223372036854775808')), Node.resource(9, Value.integer(-(2n ** 63n))));
  assert.equal(text(encode(TEXT, [3303, 0, 5700], Node.resource(5700, Value.float(23.5)))), '23.5');
  assert.equal(text(encode(TEXT, [3303, 0, 5700], Node.resource(5700, Value.float(2)))), '2.0');
  assert.equal(text(encode(TEXT, [3, 0, 7, 1], Node.resourceInstance(1, Value.integer(5000)))), '5000');
  assert.deepEqual(decode(TEXT, [3, 0, 7, 1], utf8('5000')), Node.resourceInstance(1, Value.integer(5000)));
});

test('plain text TS 1.1 §7.4.1: unknown resources decode as strings', () => {
  assert.deepEqual(decode(TEXT, [3303, 0, 5700], utf8('23.5')), Node.resource(5700, Value.string('23.5')));
});

test('plain text TS 1.1 §7.4.1: malformed values are 4.00, wrong levels 4.15 (decode) and 4.06 (encode)', () => {
  assertCodecError(() => decode(TEXT, [3, 0, 9], utf8('abc')), '4.00', /integer/);
  assertCodecError(() => decode(TEXT, [3, 0, 9], utf8('9223372036854775808')), '4.00', /64-bit/);
  assertCodecError(() => decode(TEXT, [1, 0, 1], utf8('-1')), '4.00');
  assertCodecError(() => decode(TEXT, [3, 0, 9], utf8('1.5')), '4.00');
  assertCodecError(() => decode(TEXT, [3, 0, 9], utf8(' 1')), '4.00');
  assertCodecError(() => decode(TEXT, [9, 0, 12], utf8('true')), '4.00', /0 or 1/);
  assertCodecError(() => decode(TEXT, [9, 0, 5], utf8('3:65536')), '4.00');
  assertCodecError(() => decode(TEXT, [0, 0, 3], utf8('AQI$')), '4.00', /base64/);
  assertCodecError(() => decode(TEXT, [3, 0, 0], Uint8Array.of(0xc3, 0x28)), '4.00', /UTF-8/);
  assertCodecError(() => decode(TEXT, [3, 0], utf8('x')), '4.15');
  assertCodecError(() => decode(TEXT, [3, 0, 6], utf8('1')), '4.15', /multiple/);
  assertCodecError(() => decode(TEXT, [3, 0, 4], utf8('')), '4.00', /executable/);
  assertCodecError(() => encode(TEXT, [3, 0, 6], Node.multiResource(6, [Value.integer(1)])), '4.06');
  assertCodecError(() => encode(TEXT, [3, 0, 9], Node.resource(8, Value.integer(1))), '4.00', /does not match/);
});

test('opaque TS 1.1 §7.4.2: raw bytes for opaque resources only', () => {
  const fw = Uint8Array.of(0xde, 0xad, 0xbe, 0xef);
  assert.deepEqual(encode(OPAQUE, [5, 0, 0], Node.resource(0, Value.opaque(fw))), fw);
  assert.deepEqual(decode(OPAQUE, [5, 0, 0], fw), Node.resource(0, Value.opaque(fw)));
  assert.deepEqual(decode(OPAQUE, [3303, 0, 1], fw), Node.resource(1, Value.opaque(fw)));
  assertCodecError(() => decode(OPAQUE, [3, 0, 0], fw), '4.15');
  assertCodecError(() => encode(OPAQUE, [3, 0, 0], Node.resource(0, Value.string('x'))), '4.06');
  assertCodecError(() => decode(9999, [3, 0, 0], fw), '4.15', /not supported/);
  assertCodecError(() => encode(9999, [3, 0, 0], Node.resource(0, Value.string('x'))), '4.06');
});
