import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ContentFormat, Node, Value, decode, encode, readTlvs, DEFAULT_LIMITS, defaultRegistry } from '../../../src/lwm2m/index.js';
import { DEVICE_INSTANCE, DEVICE_TLV, TEMPERATURE_OBJECT, assertCodecError, hex, toHex } from './helpers.js';

const TLV = ContentFormat.Tlv;

test('TLV TS 1.0 §6.4.3.1: Device object instance /3/0 encodes to the example bytes', () => {
  assert.equal(toHex(encode(TLV, [3, 0], DEVICE_INSTANCE)), DEVICE_TLV);
});

test('TLV TS 1.0 §6.4.3.1: the example bytes decode to the Device instance, typed by the definition', () => {
  const node = decode(TLV, [3, 0], hex(DEVICE_TLV));
  assert.deepEqual(node, DEVICE_INSTANCE);
  assert.deepEqual(node.kind === 'instance' && node.resources.find((r) => r.id === 13), {
    kind: 'resource',
    id: 13,
    value: { type: 'time', value: 1367491215 },
  });
});

test('TLV TS 1.0 §6.4.3.2 A: the instance wrapped in an object-instance TLV (08 00 79) for /3 and /3/0', () => {
  const wrapped = `080079${DEVICE_TLV}`;
  assert.equal(hex(DEVICE_TLV).length, 0x79);
  assert.equal(toHex(encode(TLV, [3], Node.object(3, [DEVICE_INSTANCE]))), wrapped);
  assert.deepEqual(decode(TLV, [3], hex(wrapped)), Node.object(3, [DEVICE_INSTANCE]));
  assert.deepEqual(decode(TLV, [3, 0], hex(wrapped)), DEVICE_INSTANCE);
  assertCodecError(() => decode(TLV, [3, 1], hex(wrapped)), '4.00', /does not match/);
});

test('TLV TS 1.0 §6.4.3: single resource, multiple resource and resource instance paths', () => {
  assert.equal(toHex(encode(TLV, [3, 0, 9], Node.resource(9, Value.integer(100)))), 'C10964');
  assert.equal(toHex(encode(TLV, [3, 0, 6], Node.multiResource(6, [Value.integer(1), Value.integer(5)]))), '8606410001410105');
  assert.equal(toHex(encode(TLV, [3, 0, 7, 1], Node.resourceInstance(1, Value.integer(5000)))), '42011388');
  assert.deepEqual(decode(TLV, [3, 0, 7, 1], hex('42011388')), Node.resourceInstance(1, Value.integer(5000)));
  // bare resource instances for a multiple resource are accepted too
  assert.deepEqual(decode(TLV, [3, 0, 6], hex('410001410105')), Node.multiResource(6, [Value.integer(1), Value.integer(5)]));
});

test('TLV TS 1.0 §6.4.3: 16-bit identifiers and 8/16/24-bit lengths', () => {
  // resource 5850 boolean true (IPSO Switch): type E1 = resource, 16-bit id, length 1
  const unknown = decode(TLV, [3311, 0, 5850], hex('E116DA01'));
  assert.deepEqual(unknown, Node.resource(5850, Value.opaque(Uint8Array.of(1))));
  assert.equal(toHex(encode(TLV, [3311, 0, 5850], Node.resource(5850, Value.boolean(true)))), 'E116DA01');
  const s300 = 'x'.repeat(300);
  const b = encode(TLV, [3, 0, 0], Node.resource(0, Value.string(s300)));
  assert.equal(toHex(b.subarray(0, 4)), 'D000012C');
  assert.deepEqual(decode(TLV, [3, 0, 0], b), Node.resource(0, Value.string(s300)));
  const big = new Uint8Array(70000);
  const e = encode(TLV, [5, 0, 0], Node.resource(0, Value.opaque(big)));
  assert.equal(toHex(e.subarray(0, 5)), 'D800011170');
  assert.equal(e.length, 5 + 70000);
});

test('TLV TS 1.0 §6.4.3: integers use the smallest of 1/2/4/8 bytes, signed; unsigned and bigint beyond 2^53', () => {
  const enc = (v: ReturnType<typeof Value.integer>): string => toHex(encode(TLV, [3, 0, 9], Node.resource(9, v)));
  assert.equal(enc(Value.integer(127)), 'C1097F');
  assert.equal(enc(Value.integer(128)), 'C2090080');
  assert.equal(enc(Value.integer(-128)), 'C10980');
  assert.equal(enc(Value.integer(-129)), 'C209FF7F');
  assert.equal(enc(Value.integer(32768)), 'C40900008000');
  assert.equal(enc(Value.integer(2n ** 40n)), 'C809080000010000000000');
  assert.equal(enc(Value.integer(2n ** 62n)), 'C809084000000000000000');
  const encU = (v: ReturnType<typeof Value.integer>): string => toHex(encode(TLV, [1, 0, 1], Node.resource(1, v)));
  assert.equal(encU(Value.unsignedInteger(2n ** 64n - 1n)), 'C80108FFFFFFFFFFFFFFFF');
  assert.equal(encU(Value.unsignedInteger(255)), 'C101FF');
  assert.equal(encU(Value.integer(255)), 'C101FF');
  const max = decode(TLV, [1, 0, 1], hex('C80108FFFFFFFFFFFFFFFF'));
  assert.deepEqual(max, Node.resource(1, Value.unsignedInteger(2n ** 64n - 1n)));
  const neg = decode(TLV, [3, 0, 9], hex('C80908FFFFFFFFFFFFFFFF'));
  assert.deepEqual(neg, Node.resource(9, Value.integer(-1)));
  const big = decode(TLV, [3, 0, 9], hex('C809087FFFFFFFFFFFFFFF'));
  assert.deepEqual(big, Node.resource(9, { type: 'integer', value: 2n ** 63n - 1n }));
});

test('TLV TS 1.0 §6.4.3: float 4 or 8 bytes, boolean, objlnk, opaque', () => {
  assert.equal(toHex(encode(TLV, [3303, 0, 5700], Node.resource(5700, Value.float(1.5)))), 'E416443FC00000');
  assert.equal(toHex(encode(TLV, [3303, 0, 5700], Node.resource(5700, Value.float(0.1)))), 'E81644083FB999999999999A');
  assert.equal(toHex(encode(TLV, [9, 0, 5], Node.resource(5, Value.objlnk(3, 0)))), 'C40500030000');
  assert.deepEqual(decode(TLV, [9, 0, 5], hex('C40500030000')), Node.resource(5, Value.objlnk(3, 0)));
  assert.deepEqual(decode(TLV, [9, 0, 12], hex('C10C01')), Node.resource(12, Value.boolean(true)));
  assert.deepEqual(decode(TLV, [5, 0, 0], hex('C300010203')), Node.resource(0, Value.opaque(Uint8Array.of(1, 2, 3))));
});

test('TLV TS 1.0 §6.4.3: malformed payloads raise 4.00 with a diagnostic', () => {
  assertCodecError(() => decode(TLV, [3, 0], hex('C8')), '4.00', /truncated/);
  assertCodecError(() => decode(TLV, [3, 0], hex('C80014 4F70')), '4.00', /runs past/);
  assertCodecError(() => decode(TLV, [3, 0, 9], hex('C30964 0000')), '4.00', /1, 2, 4 or 8 bytes/);
  assertCodecError(() => decode(TLV, [9, 0, 12], hex('C10C02')), '4.00', /boolean/);
  assertCodecError(() => decode(TLV, [3, 0, 0], hex('C100FF')), '4.00', /UTF-8/);
  assertCodecError(() => decode(TLV, [3, 0], hex('C10964C10964')), '4.00', /duplicate/);
  assertCodecError(() => decode(TLV, [3, 0, 9], hex('8109 41 00 01')), '4.00');
  assertCodecError(() => decode(TLV, [3, 0, 4], hex('C10401')), '4.00', /executable/);
  assertCodecError(() => decode(TLV, [3, 0, 6], hex('C10601')), '4.00', /multiple resource/);
  assertCodecError(() => decode(TLV, [3], hex('C10964')), '4.00', /object instance/);
  assertCodecError(() => decode(TLV, [], hex('')), '4.15');
  assert.deepEqual(readTlvs(hex(''), DEFAULT_LIMITS), []);
});

test('TLV TS 1.0 §6.4.3: values are written in the defined type (integer for a float resource, string for objlnk)', () => {
  const registry = defaultRegistry.with([TEMPERATURE_OBJECT]);
  assert.equal(toHex(encode(TLV, [3303, 0, 5700], Node.resource(5700, Value.integer(2)), { registry })), 'E4164440000000');
  assert.equal(toHex(encode(TLV, [9, 0, 5], Node.resource(5, Value.string('3:1')))), 'C40500030001');
  assertCodecError(() => encode(TLV, [3, 0, 9], Node.resource(9, Value.string('abc'))), '4.00', /cannot convert string value to integer/);
  assertCodecError(() => encode(TLV, [3, 0, 4], Node.resource(4, Value.string(''))), '4.00', /executable/);
});

test('TLV TS 1.0 §6.4.3: payloads over the configured limit are 4.13 Request Entity Too Large', () => {
  assertCodecError(() => decode(TLV, [3, 0], hex(DEVICE_TLV), { limits: { ...DEFAULT_LIMITS, maxPayloadBytes: 100 } }), '4.13', /larger than 100/);
  assertCodecError(() => decode(TLV, [3, 0], hex(DEVICE_TLV), { limits: { ...DEFAULT_LIMITS, maxEntries: 5 } }), '4.00', /too many/);
});

test('TLV TS 1.0 §6.4.3.2 B: Read /2 with two Access Control instances (16-bit resource instance id 310)', () => {
  const bytes = '08000EC10001C101008302417F07C1037F' + '080212C10003C101008702417F0761013601C1037F';
  const node = Node.object(2, [
    Node.instance(0, [
      Node.resource(0, Value.integer(1)),
      Node.resource(1, Value.integer(0)),
      Node.multiResource(2, [[127, Value.integer(7)]]),
      Node.resource(3, Value.integer(127)),
    ]),
    Node.instance(2, [
      Node.resource(0, Value.integer(3)),
      Node.resource(1, Value.integer(0)),
      Node.multiResource(2, [
        [127, Value.integer(7)],
        [310, Value.integer(1)],
      ]),
      Node.resource(3, Value.integer(127)),
    ]),
  ]);
  assert.deepEqual(decode(TLV, [2], hex(bytes)), node);
  assert.equal(toHex(encode(TLV, [2], node)), bytes);
});

test('TLV TS 1.0 §6.4.3.2 C: Read /1 with one Server instance (lifetime 86400 in 4 bytes, binding "U")', () => {
  const bytes = '08000FC10001C40100015180C10601C10755';
  const node = Node.object(1, [
    Node.instance(0, [
      Node.resource(0, Value.integer(1)),
      Node.resource(1, Value.unsignedInteger(86400)),
      Node.resource(6, Value.boolean(true)),
      Node.resource(7, Value.string('U')),
    ]),
  ]);
  assert.deepEqual(decode(TLV, [1], hex(bytes)), node);
  assert.equal(toHex(encode(TLV, [1], node)), bytes);
});
