// SenML field by field (RFC 8428 §4 fields and types, §4.4 unknown and must-understand fields,
// §4.5 base name and base time resolution, §5 JSON, §6 CBOR labels: bn -2, bt -3, n 0, v 2,
// vs 3, vb 4, t 6, vd 8) with the LwM2M rules of OMA-TS-LightweightM2M_Core-V1_1 §7.4.4/§7.4.5
// (name = LwM2M path, vlo for objlnk "oid:iid"). CBOR bytes are hand-encoded per RFC 8949.
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ContentFormat, Node, Value, decode, decodeRecords, encode, encodeRecords } from '../../../src/lwm2m/index.js';
import { assertCodecError, hex, text, toHex, utf8 } from './helpers.js';

const JSON_ = ContentFormat.SenmlJson;
const CBOR = ContentFormat.SenmlCbor;
const N309 = '00 66 2F332F302F39'; // n: "/3/0/9"
const cbor = (s: string): unknown => decodeRecords(CBOR, hex(s));
const json = (s: string): unknown => decodeRecords(JSON_, utf8(s));

test('RFC 8428 §6: SenML CBOR labels n (0), v (2), t (6), bt (-3), bn (-2) decode to path, value and time', () => {
  assert.deepEqual(cbor(`81 A3 ${N309} 02 1864 06 05`), [{ path: [3, 0, 9], value: Value.integer(100), time: 5 }]);
  assert.deepEqual(cbor(`81 A3 22 F93E00 ${N309} 02 01`), [{ path: [3, 0, 9], value: Value.integer(1), time: 1.5 }]);
  assert.deepEqual(cbor(`81 A3 22 1B0000000100000000 ${N309} 02 01`), [{ path: [3, 0, 9], value: Value.integer(1), time: 2 ** 32 }]);
  assert.deepEqual(cbor(`81 A3 22 1BFFFFFFFFFFFFFFFF ${N309} 02 01`), [{ path: [3, 0, 9], value: Value.integer(1), time: 2 ** 64 }]);
  // bn "/3/0/" + n "9"
  assert.deepEqual(cbor('81 A3 21 65 2F332F302F 00 61 39 02 01'), [{ path: [3, 0, 9], value: Value.integer(1) }]);
});

test('RFC 8428 §4 / §6: each SenML CBOR field has its CBOR type; others are 4.00', () => {
  assertCodecError(() => cbor(`81 A2 ${N309} 02 6131`), '4.00', /"v" must be a number/);
  assertCodecError(() => cbor(`81 A2 ${N309} 02 F97C00`), '4.00', /"v" must be finite/);
  assertCodecError(() => cbor(`81 A2 ${N309} 02 FB7FF8000000000000`), '4.00', /"v" must be finite/);
  assertCodecError(() => cbor(`81 A3 ${N309} 02 01 06 6131`), '4.00', /"t" must be a number/);
  assertCodecError(() => cbor(`81 A3 ${N309} 02 01 06 F97C00`), '4.00', /"t" must be a number/);
  assertCodecError(() => cbor(`81 A3 22 F6 ${N309} 02 01`), '4.00', /"bt" must be a number/);
  assertCodecError(() => cbor('81 A2 00 09 02 01'), '4.00', /"n" must be a text string/);
  assertCodecError(() => cbor(`81 A3 21 01 ${N309} 02 01`), '4.00', /"bn" must be a text string/);
  assertCodecError(() => cbor('81 A2 00 66 2F332F302F30 03 01'), '4.00', /"vs" must be a text string/);
  assertCodecError(() => cbor('81 A2 00 66 2F392F302F38 04 01'), '4.00', /"vb" must be a boolean/);
  assertCodecError(() => cbor('81 A2 00 66 2F392F302F32 08 6101'), '4.00', /"vd" must be a byte string/);
  assertCodecError(() => cbor('81 A2 00 66 2F392F302F35 63766C6F 01'), '4.00', /"vlo" must be a text string/);
  assertCodecError(() => cbor('81 01'), '4.00', /must be a map/);
  assertCodecError(() => cbor('A0'), '4.00', /must be an array/);
});

test('RFC 8428 §6 / TS Core §7.4.5: vs, vb, vd and vlo in SenML CBOR', () => {
  assert.deepEqual(cbor('81 A2 00 66 2F332F302F30 03 6178'), [{ path: [3, 0, 0], value: Value.string('x') }]);
  assert.deepEqual(cbor('81 A2 00 66 2F392F302F38 04 F5'), [{ path: [9, 0, 8], value: Value.boolean(true) }]);
  assert.deepEqual(cbor('81 A2 00 66 2F392F302F38 04 F4'), [{ path: [9, 0, 8], value: Value.boolean(false) }]);
  assert.deepEqual(cbor('81 A2 00 66 2F392F302F32 08 420102'), [{ path: [9, 0, 2], value: Value.opaque(Uint8Array.of(1, 2)) }]);
  assert.deepEqual(cbor('81 A2 00 66 2F392F302F35 63766C6F 63333A30'), [{ path: [9, 0, 5], value: Value.objlnk(3, 0) }]);
});

test('RFC 8428 §4.4: unknown fields are ignored, must-understand ones ("_" suffix) refused; labels outside -127..127 refused', () => {
  const ok = [{ path: [3, 0, 9], value: Value.integer(1) }];
  assert.deepEqual(cbor(`81 A3 ${N309} 02 01 14 00`), ok); // label 20
  assert.deepEqual(cbor(`81 A3 ${N309} 02 01 18 7F 00`), ok); // label 127
  assert.deepEqual(cbor(`81 A3 ${N309} 02 01 38 7E 00`), ok); // label -127
  assert.deepEqual(cbor(`81 A3 ${N309} 02 01 63 666F6F 00`), ok); // "foo"
  assertCodecError(() => cbor(`81 A3 ${N309} 02 01 18 80 00`), '4.00', /label 128/);
  assertCodecError(() => cbor(`81 A3 ${N309} 02 01 38 7F 00`), '4.00', /label -128/);
  assertCodecError(() => cbor(`81 A3 ${N309} 02 01 62 785F 00`), '4.00', /must-understand field "x_"/);
  assertCodecError(() => cbor(`81 A3 ${N309} 02 01 41 00 00`), '4.00', /integers or text/);
  assertCodecError(() => cbor(`81 A3 ${N309} ${N309} 02 01`), '4.00', /repeats "n"/);
  assertCodecError(() => cbor('81 A3 00 66 2F392F302F35 63766C6F 63333A30 63766C6F 63333A30'), '4.00', /repeats "vlo"/);
  assert.deepEqual(json('[{"n":"/3/0/9","v":1,"foo":2,"bver":10}]'), ok);
  assertCodecError(() => json('[{"n":"/3/0/9","v":1,"foo_":2}]'), '4.00', /must-understand field "foo_"/);
});

test('RFC 8428 §4 / §5: each SenML JSON field has its JSON type; others are 4.00', () => {
  const bad: Array<[string, RegExp]> = [
    ['[{"bn":1,"n":"/3/0/9","v":1}]', /"bn" must be a string/],
    ['[{"n":9,"v":1}]', /"n" must be a string/],
    ['[{"n":"/3/0/9","bt":"1","v":1}]', /"bt" must be a number/],
    ['[{"n":"/3/0/9","t":true,"v":1}]', /"t" must be a number/],
    ['[{"n":"/3/0/9","t":1e400,"v":1}]', /"t" out of range/],
    ['[{"n":"/3/0/9","bt":-1e400,"v":1}]', /"bt" out of range/],
    ['[{"n":"/3303/0/5700","v":1e400}]', /"v" out of range/],
    ['[{"n":"/3/0/0","vs":1}]', /"vs" must be a string/],
    ['[{"n":"/9/0/8","vb":1}]', /"vb" must be a boolean/],
    ['[{"n":"/9/0/8","vb":"true"}]', /"vb" must be a boolean/],
    ['[{"n":"/9/0/2","vd":12}]', /"vd" must be a string/],
    ['[{"n":"/9/0/5","vlo":35}]', /"vlo" must be a string/],
    ['["x"]', /record must be an object/],
    ['[{"v":1}]', /without a name/],
  ];
  for (const [body, diag] of bad) assertCodecError(() => json(body), '4.00', diag);
});

test('RFC 8428 §4.5: base name and base time apply to the records that follow, until the next bn/bt', () => {
  assert.deepEqual(json('[{"bn":"/3/0/","bt":100,"n":"9","v":1},{"n":"10","v":2,"t":-1},{"bn":"/1/0/","n":"1","v":3}]'), [
    { path: [3, 0, 9], value: Value.integer(1), time: 100 },
    { path: [3, 0, 10], value: Value.integer(2), time: 99 },
    { path: [1, 0, 1], value: Value.unsignedInteger(3), time: 100 },
  ]);
  assert.deepEqual(json('[{"n":"/3/0/9","v":1,"t":7}]'), [{ path: [3, 0, 9], value: Value.integer(1), time: 7 }]);
  assert.deepEqual(json('[{"n":"/3/0/9","v":1}]'), [{ path: [3, 0, 9], value: Value.integer(1) }]);
  assert.deepEqual(json('[{"bn":"/3/0/9","v":1}]'), [{ path: [3, 0, 9], value: Value.integer(1) }]);
  assertCodecError(() => json('[{"n":"/3/0/9"}]'), '4.00', /\/3\/0\/9 has no value/);
});

test('RFC 8428 §4.2 (v is a number): integers beyond 64 bits are refused; above 2^63 - 1 they are unsigned', () => {
  assert.deepEqual(json('[{"n":"/3311/0/1","v":18446744073709551615}]'), [{ path: [3311, 0, 1], value: Value.unsignedInteger(2n ** 64n - 1n) }]);
  assert.deepEqual(json('[{"n":"/3311/0/1","v":9223372036854775808}]'), [{ path: [3311, 0, 1], value: Value.unsignedInteger(2n ** 63n) }]);
  // TS Core Appendix C: Integer is signed 64-bit, so 2^63 - 1 (an unknown resource) stays an Integer
  assert.deepEqual(json('[{"n":"/3311/0/1","v":9223372036854775807}]'), [{ path: [3311, 0, 1], value: Value.integer(2n ** 63n - 1n) }]);
  assert.deepEqual(json('[{"n":"/3311/0/1","v":-9223372036854775808}]'), [{ path: [3311, 0, 1], value: Value.integer(-(2n ** 63n)) }]);
  assertCodecError(() => json('[{"n":"/3311/0/1","v":-9223372036854775809}]'), '4.00', /beyond 64 bits/);
  assert.deepEqual(cbor('81 A2 00 69 2F333331312F302F31 02 1BFFFFFFFFFFFFFFFF'), [{ path: [3311, 0, 1], value: Value.unsignedInteger(2n ** 64n - 1n) }]);
  assert.deepEqual(cbor('81 A2 00 69 2F333331312F302F31 02 3B7FFFFFFFFFFFFFFF'), [{ path: [3311, 0, 1], value: Value.integer(-(2n ** 63n)) }]);
  assertCodecError(() => cbor('81 A2 00 69 2F333331312F302F31 02 3BFFFFFFFFFFFFFFFF'), '4.00', /beyond 64 bits/);
  assert.deepEqual(cbor('81 A2 00 69 2F333331312F302F31 02 F93E00'), [{ path: [3311, 0, 1], value: Value.float(1.5) }]);
});

test('RFC 8428 §5 / TS Core §7.4.4: a float is written with a fraction or exponent, so that it reads back as a float', () => {
  const f = (v: number): string => text(encode(JSON_, [3303, 0, 5700], Node.resource(5700, Value.float(v))));
  assert.equal(f(-0), '[{"bn":"/3303/0/5700","v":-0.0}]');
  assert.equal(f(-3), '[{"bn":"/3303/0/5700","v":-3.0}]');
  assert.equal(f(0.5), '[{"bn":"/3303/0/5700","v":0.5}]');
  assert.equal(f(1e21), '[{"bn":"/3303/0/5700","v":1e+21}]');
  assert.equal(f(1e20), '[{"bn":"/3303/0/5700","v":100000000000000000000.0}]');
  assertCodecError(() => encode(JSON_, [3303, 0, 5700], Node.resource(5700, Value.float(Infinity))), '4.06', /Infinity/);
  assertCodecError(() => encode(CBOR, [3303, 0, 5700], Node.resource(5700, Value.float(-Infinity))), '4.06', /-Infinity/);
  // CBOR: bn "/3303/0/5700" (12 bytes), v 1.5 as a half float
  assert.equal(toHex(encode(CBOR, [3303, 0, 5700], Node.resource(5700, Value.float(1.5)))), '81A2216C2F333330332F302F3537303002F93E00');
});

test('RFC 8428 §4.5 / §6: the record time is written as t, an integer when whole, else a float', () => {
  const records = (time: number): Array<{ path: readonly number[]; value: ReturnType<typeof Value.integer>; time: number }> => [
    { path: [3, 0, 9], value: Value.integer(1), time },
  ];
  assert.equal(text(encodeRecords(JSON_, records(5) as never)), '[{"n":"/3/0/9","t":5,"v":1}]');
  assert.equal(toHex(encodeRecords(CBOR, records(5) as never)), '81A300662F332F302F3906050201');
  assert.equal(toHex(encodeRecords(CBOR, records(-1.5) as never)), '81A300662F332F302F3906F9BE000201');
  assert.deepEqual(cbor('81A300662F332F302F3906F9BE000201'), [{ path: [3, 0, 9], value: Value.integer(1), time: -1.5 }]);
});

test('TS Core §7.4.4: names relative to the request path: bn "/3/", then "0/9"; boolean false, corelnk as vs', () => {
  const node = Node.object(3, [Node.instance(0, [Node.resource(9, Value.integer(100)), Node.resource(10, Value.integer(15))])]);
  assert.equal(text(encode(JSON_, [3], node)), '[{"bn":"/3/","n":"0/9","v":100},{"n":"0/10","v":15}]');
  assert.deepEqual(decode(JSON_, [3], utf8('[{"bn":"/3/","n":"0/9","v":100},{"n":"0/10","v":15}]')), node);
  assert.equal(
    text(encodeRecords(JSON_, [{ path: [9, 0, 8], value: Value.boolean(false) }, { path: [3311, 0, 1], value: { type: 'corelnk', value: '</3>' } }])),
    '[{"n":"/9/0/8","vb":false},{"n":"/3311/0/1","vs":"</3>"}]',
  );
  assertCodecError(() => encodeRecords(JSON_, [{ path: [3, 0, 9], value: { type: 'integer', value: 1.5 } }]), '4.00', /^\/3\/0\/9: /);
  assertCodecError(() => encode(CBOR, [3, 0, 9], Node.resource(9, { type: 'integer', value: 1.5 })), '4.00');
  assertCodecError(() => decode(JSON_, [3, 0], utf8('[{"n":"/3/0","v":1}]')), '4.00', /\/3\/0, which is not a resource/);
});
