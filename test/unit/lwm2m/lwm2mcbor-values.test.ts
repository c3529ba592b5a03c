/**
 * LwM2M CBOR (content format 11544, TS Core 1.2 §7.4.7): each data type as its CBOR item
 * (RFC 8949 §3: major types; §3.3 floats; §3.4.2 tag 1 epoch time), the deterministic key order
 * of the encoder (RFC 8949 §4.2.1), and what a decoder must refuse. Object 30000 is not in the
 * registry, so decoded values keep the type the CBOR item gives them.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ContentFormat, Node, Value, decode, decodeRecords, encode, encodeRecords } from '../../../src/lwm2m/index.js';
import { assertCodecError, hex, toHex } from './helpers.js';

const LC = ContentFormat.Lwm2mCbor;
/** {30000: {0: {1: <item>}}} around one encoded item. */
const one = (item: string): string => `A1 19 7530 A1 00 A1 01 ${item}`.replace(/\s+/g, '');

void test('TS Core §7.4.7 / RFC 8949 §3: each LwM2M data type is written as its CBOR item', () => {
  const cases: [string, ReturnType<typeof Value.integer>, string][] = [
    ['integer', Value.integer(-5), '24'], // major type 1: -1 - 4
    ['unsigned integer', Value.unsignedInteger(2n ** 64n - 1n), '1BFFFFFFFFFFFFFFFF'],
    ['float', Value.float(1.5), 'F93E00'], // half precision when exact (RFC 8949 §4.2.2 preferred serialization)
    ['float 0.1', Value.float(0.1), 'FB3FB999999999999A'],
    ['string', Value.string('ab'), '626162'],
    ['corelnk', { type: 'corelnk', value: '</3/0>' }, '663C2F332F303E'],
    ['boolean true', Value.boolean(true), 'F5'],
    ['boolean false', Value.boolean(false), 'F4'],
    ['opaque', Value.opaque(Uint8Array.of(1, 2, 0xff)), '430102FF'],
    ['time', Value.time(1367491215), '1A5182428F'],
    ['objlnk', Value.objlnk(3, 0), '63333A30'], // "3:0"
  ];
  for (const [what, value, item] of cases) {
    assert.equal(toHex(encodeRecords(LC, [{ path: [30000, 0, 1], value }])), one(item).toUpperCase(), what);
  }
});

void test('TS Core §7.4.7 / RFC 8949 §3: each CBOR item decodes to its LwM2M type (no registry entry to say otherwise)', () => {
  const rec = (item: string) => decodeRecords(LC, hex(one(item)))[0]!.value;
  assert.deepEqual(rec('24'), Value.integer(-5));
  assert.deepEqual(rec('1B7FFFFFFFFFFFFFFF'), Value.integer(2n ** 63n - 1n), 'the largest int64 is still an integer');
  assert.deepEqual(rec('1B8000000000000000'), Value.unsignedInteger(2n ** 63n), 'beyond int64: unsigned');
  assert.deepEqual(rec('F93E00'), Value.float(1.5));
  assert.deepEqual(rec('626162'), Value.string('ab'));
  assert.deepEqual(rec('F5'), Value.boolean(true));
  assert.deepEqual(rec('F4'), Value.boolean(false));
  assert.deepEqual(rec('430102FF'), Value.opaque(Uint8Array.of(1, 2, 0xff)));
  // RFC 8949 §3.4.2: tag 1 wraps an epoch time, integer or float
  assert.deepEqual(rec('C11A5182428F'), Value.time(1367491215));
  assert.deepEqual(rec('C1FB41D46090A3C00000'), Value.time(1367491215));
  assertCodecError(() => decodeRecords(LC, hex(one('C1FB41D46090A3C80000'))), '4.00', /tag 1 must wrap an integer time/); // 1367491215.125
  assertCodecError(() => decodeRecords(LC, hex(one('C1626162'))), '4.00', /tag 1/);
  assertCodecError(() => decodeRecords(LC, hex(one('C2420102'))), '4.00', /unsupported CBOR value/); // tag 2 (bignum)
  assertCodecError(() => decodeRecords(LC, hex(one('F6'))), '4.00', /unsupported CBOR value/); // null
});

void test('RFC 8949 §4.2.1: the encoder writes map keys in ascending order whatever the order of the records', () => {
  const records = [
    { path: [30001, 0, 3] as const, value: Value.integer(1) },
    { path: [30000, 1, 2] as const, value: Value.integer(2) },
    { path: [30000, 0, 9] as const, value: Value.integer(3) },
    { path: [30000, 0, 1] as const, value: Value.string('x') },
  ];
  // {30000: {0: {1: "x", 9: 3}, 1: {2: 2}}, 30001: {0: {3: 1}}}
  const expected = 'A2 197530 A2 00 A2 01 6178 09 03 01 A1 02 02 197531 A1 00 A1 03 01'.replace(/\s+/g, '');
  assert.equal(toHex(encodeRecords(LC, records)), expected);
  assert.equal(toHex(encodeRecords(LC, [...records].reverse())), expected);
});

void test('TS Core §7.4.7: an empty instance or object is nested empty maps down to its path', () => {
  assert.equal(toHex(encode(LC, [30000, 0], Node.instance(0, []))), 'A1197530A100A0');
  assert.equal(toHex(encode(LC, [30000], Node.object(30000, []))), 'A1197530A0');
  assert.deepEqual(decode(LC, [30000, 0], hex('A1197530A100A0')), Node.instance(0, []));
});

void test('TS Core §7.4.7: what an encoder refuses — a record above resource level, a value below a value, a path twice', () => {
  assertCodecError(() => encodeRecords(LC, [{ path: [3, 0] as never, value: Value.integer(1) }]), '4.00', /does not address a resource/);
  assertCodecError(
    () => encodeRecords(LC, [{ path: [30000, 0, 1], value: Value.integer(1) }, { path: [30000, 0, 1, 0], value: Value.integer(2) }]),
    '4.00',
    /below a value/,
  );
  assertCodecError(
    () => encodeRecords(LC, [{ path: [30000, 0, 1], value: Value.integer(1) }, { path: [30000, 0, 1], value: Value.integer(2) }]),
    '4.00',
    /duplicate/,
  );
  assertCodecError(() => encodeRecords(LC, [{ path: [30000, 0, 1], value: { type: 'integer', value: 1.5 } as never }]), '4.00');
});

void test('TS Core §7.4.7: what a decoder refuses — an empty array key, a path below a resource instance, a map as a resource instance, a value twice', () => {
  assertCodecError(() => decodeRecords(LC, hex('A1 80 A1 00 01')), '4.00', /empty path key/);
  assertCodecError(() => decodeRecords(LC, hex('A1 85 1975 30 00 01 02 03 01')), '4.00', /deeper than a resource instance/);
  assertCodecError(() => decodeRecords(LC, hex('A1 84 1975 30 00 01 02 A0')), '4.00', /resource instance cannot hold a map/);
  assertCodecError(() => decodeRecords(LC, hex('A2 83 197530 00 01 05 197530 A1 00 A1 01 06')), '4.00', /duplicate value/);
  // one array key for all four levels is fine
  assert.deepEqual(decodeRecords(LC, hex('A1 84 197530 00 01 02 07')), [{ path: [30000, 0, 1, 2], value: Value.integer(7) }]);
});
