import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ContentFormat, Node, Value, decode, decodeRecords, encode, encodeRecords } from '../../../src/lwm2m/index.js';
import { DEVICE_INSTANCE, assertCodecError, hex, toHex } from './helpers.js';

const LC = ContentFormat.Lwm2mCbor;

test('LwM2M CBOR TS 1.2 §7.4.7: nested maps from the root, one key per level', () => {
  assert.equal(toHex(encode(LC, [3, 0, 9], Node.resource(9, Value.integer(100)))), 'A103A100A1091864');
  assert.equal(toHex(encode(LC, [3, 0, 6], Node.multiResource(6, [Value.integer(1), Value.integer(5)]))), 'A103A100A106A200010105');
  assert.equal(
    toHex(encode(LC, [9, 0], Node.instance(0, [Node.resource(0, Value.string('app')), Node.resource(5, Value.objlnk(3, 0)), Node.resource(12, Value.boolean(false))]))),
    'A109A100A300636170700563333A300CF4',
  );
});

test('LwM2M CBOR TS 1.2 §7.4.7: array keys stand for several levels; tag 1 time', () => {
  assert.deepEqual(decode(LC, [3, 0, 9], hex('A1820300A1091864')), Node.resource(9, Value.integer(100)));
  assert.deepEqual(decode(LC, [3, 0], hex('A183030009 1864')), Node.instance(0, [Node.resource(9, Value.integer(100))]));
  assert.deepEqual(decode(LC, [3, 0, 13], hex('A1830300 0DC11A5182428F')), Node.resource(13, Value.time(1367491215)));
  assert.deepEqual(decode(LC, [3, 0, 13], hex('A1830300 0D1A5182428F')), Node.resource(13, Value.time(1367491215)));
});

test('LwM2M CBOR TS 1.2 §7.4.7: the Device instance round-trips; records API', () => {
  assert.deepEqual(decode(LC, [3, 0], encode(LC, [3, 0], DEVICE_INSTANCE)), DEVICE_INSTANCE);
  const records = [
    { path: [1, 0, 1] as const, value: Value.unsignedInteger(86400) },
    { path: [3, 0, 9] as const, value: Value.integer(42) },
  ];
  const bytes = encodeRecords(LC, records);
  assert.equal(toHex(bytes), 'A201A100A1011A0001518003A100A109182A');
  assert.deepEqual(decodeRecords(LC, bytes), records);
});

test('LwM2M CBOR TS 1.2 §7.4.7: malformed payloads are 4.00', () => {
  assertCodecError(() => decode(LC, [3, 0], hex('80')), '4.00', /must be a map/);
  assertCodecError(() => decode(LC, [3, 0], hex('A103A10001')), '4.00', /above resource level/);
  assertCodecError(() => decode(LC, [3, 0], hex('A1 19FFFF A1 00 A1 09 01')), '4.00', /invalid path key/);
  assertCodecError(() => decode(LC, [3, 0], hex('A2820300A10901820300A10902')), '4.00', /duplicate/);
  assertCodecError(() => decode(LC, [3, 0], hex('A103A100A109F6')), '4.00', /unsupported CBOR value/);
  assertCodecError(() => decode(LC, [3, 0], hex('A103A100A10963616263')), '4.00', /convert string/);
  assertCodecError(() => decode(LC, [3, 0], hex('A1840300090001')), '4.00');
  assertCodecError(() => decode(LC, [3, 0], hex('A103A100A10901FF')), '4.00', /trailing/);
});

test('LwM2M CBOR TS 1.2 §7.4.7: indefinite-length maps from the root are accepted for any request path', () => {
  // {3: {0: {9: 25}}} written with indefinite-length maps, as streaming encoders do
  const body = hex('BF03BF00BF091819FFFFFF');
  assert.deepEqual(decode(LC, [3], body), Node.object(3, [Node.instance(0, [Node.resource(9, Value.integer(25))])]));
  assert.deepEqual(decode(LC, [3, 0, 9], body), Node.resource(9, Value.integer(25)));
  // {3: {0: {6: {0: 1}, 9: 25}}} mixing levels
  assert.deepEqual(
    decode(LC, [3, 0], hex('BF03BF00BF06BF0001FF091819FFFFFF')),
    Node.instance(0, [Node.multiResource(6, [Value.integer(1)]), Node.resource(9, Value.integer(25))]),
  );
  // objlnk as "oid:iid" text
  assert.deepEqual(decode(LC, [9, 0, 5], hex('A109A100A105633 33A30')), Node.resource(5, Value.objlnk(3, 0)));
});
