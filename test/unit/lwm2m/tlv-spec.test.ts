// OMA TLV (content format 11542) against the TLV table of OMA-TS-LightweightM2M_Core-V1_1
// §7.4.3 (= TS 1.0 §6.4.3): type byte bits 7-6 identifier kind (00 object instance,
// 01 resource instance, 10 multiple resource, 11 resource with value), bit 5 identifier width
// (0: 8 bits, 1: 16 bits), bits 4-3 length width (00: length in bits 2-0, 01: 8, 10: 16,
// 11: 24 bits), bits 2-0 the length when bits 4-3 are 00. Values per §7.4.3 / Appendix C
// (integers 1, 2, 4 or 8 bytes two's complement, float 4 or 8 bytes IEEE 754, boolean one
// byte 0/1, objlnk two 16-bit ids). Every expected byte string is computed by hand from that table.
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import {
  ContentFormat,
  DEFAULT_LIMITS,
  Node,
  Value,
  decode,
  defaultRegistry,
  encode,
  encodeTlvValue,
  readTlvs,
  writeTlv,
} from '../../../src/lwm2m/index.js';
import { TEMPERATURE_OBJECT, assertCodecError, hex, toHex } from './helpers.js';

const TLV = ContentFormat.Tlv;
const w = (kind: Parameters<typeof writeTlv>[0], id: number, n: number): string => toHex(writeTlv(kind, id, new Uint8Array(n).fill(0xaa)));

test('TS Core §7.4.3 type byte: the four identifier kinds in bits 7-6', () => {
  assert.equal(w('instance', 1, 0), '0001');
  assert.equal(w('resourceInstance', 1, 0), '4001');
  assert.equal(w('multiResource', 1, 0), '8001');
  assert.equal(w('resource', 1, 0), 'C001');
  assert.deepEqual(
    readTlvs(hex('0001 4001 8001 C001'), DEFAULT_LIMITS).map((e) => [e.kind, e.id, e.content.length]),
    [
      ['instance', 1, 0],
      ['resourceInstance', 1, 0],
      ['multiResource', 1, 0],
      ['resource', 1, 0],
    ],
  );
});

test('TS Core §7.4.3 type byte bit 5: identifiers up to 255 take 8 bits, 256 and above 16 bits', () => {
  assert.equal(w('resource', 0xff, 0), 'C0FF');
  assert.equal(w('resource', 0x100, 0), 'E00100');
  assert.equal(w('instance', 0x1234, 8), `28123408${'AA'.repeat(8)}`);
  assert.deepEqual(
    readTlvs(hex('E00100 E0FFFE C0FF'), DEFAULT_LIMITS).map((e) => e.id),
    [0x100, 0xfffe, 0xff],
  );
});

test('TS Core §7.4.3 type byte bits 4-3: the length in bits 2-0 up to 7, then 8-, 16- and 24-bit length fields', () => {
  assert.equal(w('resource', 0, 7), `C700${'AA'.repeat(7)}`);
  assert.equal(w('resource', 0, 8), `C80008${'AA'.repeat(8)}`);
  assert.equal(w('resource', 0, 0xff).slice(0, 6), 'C800FF');
  assert.equal(w('resource', 0, 0x100).slice(0, 8), 'D0000100');
  assert.equal(w('resource', 0, 0xffff).slice(0, 8), 'D000FFFF');
  assert.equal(w('resource', 0, 0x10000).slice(0, 10), 'D800010000');
  assert.equal(writeTlv('resource', 0, new Uint8Array(0x10000)).length, 5 + 0x10000);
  assert.equal(w('resourceInstance', 0x100, 0x100).slice(0, 10), '7001000100');
  // and read back: 8-, 16- and 24-bit length fields
  const entries = readTlvs(hex('C80102AABB D0020003010203 D803000001FF'), DEFAULT_LIMITS);
  assert.deepEqual(
    entries.map((e) => [e.id, toHex(e.content)]),
    [
      [1, 'AABB'],
      [2, '010203'],
      [3, 'FF'],
    ],
  );
});

test('TS Core §7.4.3: the 24-bit length field is the largest: 2^24 bytes or more cannot be written (4.06)', () => {
  assert.equal(toHex(writeTlv('resource', 0, new Uint8Array(2 ** 24 - 1)).subarray(0, 5)), 'D800FFFFFF');
  assertCodecError(() => writeTlv('resource', 0, new Uint8Array(2 ** 24)), '4.06', /24-bit/);
});

test('TS Core §7.4.3: identifiers are 16-bit unsigned; others cannot be written (4.00)', () => {
  for (const id of [-1, 0x10000, 1.5]) assertCodecError(() => writeTlv('resource', id, new Uint8Array(0)), '4.00', /identifier/);
  // 65535 is reserved (TS Core §7.4.3, as for every LwM2M identifier): the reader refuses it, so it is never written.
  assertCodecError(() => writeTlv('resource', 0xffff, new Uint8Array(0)), '4.00', /identifier/);
  assert.equal(w('resource', 0, 0), 'C000');
  assert.equal(w('resource', 0xfffe, 0), 'E0FFFE', 'the largest identifier that may be written');
});

test('TS Core §7.4.3: a header or value cut short, and length bits next to a length field, are 4.00', () => {
  assert.deepEqual(readTlvs(hex('C000'), DEFAULT_LIMITS).map((e) => [e.id, e.content.length]), [[0, 0]], 'a zero-length value ending the payload');
  assert.deepEqual(readTlvs(hex('C80000'), DEFAULT_LIMITS).map((e) => e.content.length), [0]);
  assertCodecError(() => readTlvs(hex('E001'), DEFAULT_LIMITS), '4.00', /truncated/); // 16-bit id, one byte
  assertCodecError(() => readTlvs(hex('C801'), DEFAULT_LIMITS), '4.00', /truncated/); // 8-bit length missing
  assertCodecError(() => readTlvs(hex('D00100'), DEFAULT_LIMITS), '4.00', /truncated/); // 16-bit length, one byte
  assertCodecError(() => readTlvs(hex('D8010000'), DEFAULT_LIMITS), '4.00', /truncated/); // 24-bit length, two bytes
  assertCodecError(() => readTlvs(hex('C90001AA'), DEFAULT_LIMITS), '4.00', /length bits/); // bits 4-3 = 01 and bits 2-0 = 001
  assertCodecError(() => readTlvs(hex('C202AA'), DEFAULT_LIMITS), '4.00', /runs past/); // one byte short
  assertCodecError(() => readTlvs(hex('C80102AA'), DEFAULT_LIMITS), '4.00', /runs past/);
  assert.deepEqual(readTlvs(hex('C202AABB'), DEFAULT_LIMITS).map((e) => toHex(e.content)), ['AABB']);
});

test('TS Core 1.1 §7.4.3 / §6.1: identifier 65535 is reserved (MAX_ID), 65534 is not', () => {
  assertCodecError(() => readTlvs(hex('E0FFFF'), DEFAULT_LIMITS), '4.00', /reserved/);
  assert.equal(readTlvs(hex('E0FFFE'), DEFAULT_LIMITS)[0]!.id, 0xfffe);
});

test('Depot\'s limit: at most maxEntries TLVs in a payload, nested ones counted', () => {
  const limits = { ...DEFAULT_LIMITS, maxEntries: 3 };
  assert.equal(readTlvs(hex('C000 C001 C002'), limits).length, 3);
  assertCodecError(() => readTlvs(hex('C000 C001 C002 C003'), limits), '4.00', /too many/);
  // /3/0/6 as a multiple resource TLV with two instances: 3 TLVs in all
  assert.deepEqual(decode(TLV, [3, 0, 6], hex('8606 410001 410105'), { limits }), Node.multiResource(6, [Value.integer(1), Value.integer(5)]));
  assertCodecError(() => decode(TLV, [3, 0, 6], hex('880609 410001 410105 410207'), { limits }), '4.00', /too many/);
});

test('TS Core Appendix C: signed integers in the smallest of 1, 2, 4, 8 bytes, two\'s complement, at every boundary', () => {
  const enc = (v: number | bigint): string => toHex(encodeTlvValue(Value.integer(v)));
  assert.equal(enc(0), '00');
  assert.equal(enc(32767), '7FFF');
  assert.equal(enc(-32768), '8000');
  assert.equal(enc(-32769), 'FFFF7FFF');
  assert.equal(enc(2147483647), '7FFFFFFF');
  assert.equal(enc(-2147483648), '80000000');
  assert.equal(enc(2147483648), '0000000080000000');
  assert.equal(enc(-2147483649), 'FFFFFFFF7FFFFFFF');
  assert.equal(enc(-(2n ** 63n)), '8000000000000000');
  assert.equal(toHex(encodeTlvValue(Value.time(1367491215))), '5182428F'); // §7.4.3 example: /3/0/13
  assertCodecError(() => encodeTlvValue({ type: 'integer', value: 2n ** 63n }), '4.06', /64 bits/);
  assertCodecError(() => encodeTlvValue({ type: 'integer', value: -(2n ** 63n) - 1n }), '4.06', /64 bits/);
});

test('TS Core Appendix C: unsigned integers in the smallest of 1, 2, 4, 8 bytes', () => {
  const enc = (v: number | bigint): string => toHex(encodeTlvValue(Value.unsignedInteger(v)));
  assert.equal(enc(0), '00');
  assert.equal(enc(256), '0100');
  assert.equal(enc(65535), 'FFFF');
  assert.equal(enc(65536), '00010000');
  assert.equal(enc(4294967295), 'FFFFFFFF');
  assert.equal(enc(4294967296), '0000000100000000');
  assertCodecError(() => encodeTlvValue({ type: 'unsignedInteger', value: 2n ** 64n }), '4.06', /64 bits/);
  assertCodecError(() => encodeTlvValue({ type: 'unsignedInteger', value: -1 }), '4.06', /64 bits/);
});

test('TS Core Appendix C: integer values of 1, 2, 4 bytes decode signed (/3/0/9) or unsigned (/1/0/1 Lifetime)', () => {
  const int = (bytes: string): unknown => decode(TLV, [3, 0, 9], hex(bytes));
  assert.deepEqual(int('C109FF'), Node.resource(9, Value.integer(-1)));
  assert.deepEqual(int('C209FFFF'), Node.resource(9, Value.integer(-1)));
  assert.deepEqual(int('C2097FFF'), Node.resource(9, Value.integer(32767)));
  assert.deepEqual(int('C409FFFFFFFF'), Node.resource(9, Value.integer(-1)));
  assert.deepEqual(int('C40980000000'), Node.resource(9, Value.integer(-2147483648)));
  const uint = (bytes: string): unknown => decode(TLV, [1, 0, 1], hex(bytes));
  assert.deepEqual(uint('C101FF'), Node.resource(1, Value.unsignedInteger(255)));
  assert.deepEqual(uint('C201FFFF'), Node.resource(1, Value.unsignedInteger(65535)));
  assert.deepEqual(uint('C401FFFFFFFF'), Node.resource(1, Value.unsignedInteger(4294967295)));
  assert.deepEqual(decode(TLV, [3, 0, 13], hex('C40D5182428F')), Node.resource(13, Value.time(1367491215)));
  for (const bad of ['C009', 'C30900000F', 'C509000000000F', 'C70900000000000000']) {
    assertCodecError(() => decode(TLV, [3, 0, 9], hex(bad)), '4.00', /1, 2, 4 or 8 bytes/);
  }
});

test('TS Core Appendix C: float 4 bytes when single precision is exact, else 8; NaN in 8; decoded from 4 or 8 only', () => {
  assert.equal(toHex(encodeTlvValue(Value.float(-2))), 'C0000000');
  assert.equal(toHex(encodeTlvValue(Value.float(2 ** -149))), '00000001'); // smallest binary32 subnormal
  assert.equal(toHex(encodeTlvValue(Value.float(1 + 2 ** -24))), '3FF0000010000000');
  assert.equal(toHex(encodeTlvValue({ type: 'float', value: Number.NaN })), '7FF8000000000000');
  const registry = defaultRegistry.with([TEMPERATURE_OBJECT]);
  const dec = (bytes: string): unknown => decode(TLV, [3303, 0, 5700], hex(bytes), { registry });
  assert.deepEqual(dec('E41644C0000000'), Node.resource(5700, Value.float(-2)));
  assert.deepEqual(dec('E81644083FF0000010000000'), Node.resource(5700, Value.float(1 + 2 ** -24)));
  for (const bad of ['E2164400 00', 'E01644', 'E516440000000000']) {
    assertCodecError(() => dec(bad), '4.00', /4 or 8 bytes/);
  }
});

test('TS Core Appendix C: boolean is one byte 0 or 1; objlnk is object id then instance id, 16 bits each', () => {
  assert.equal(toHex(encodeTlvValue(Value.boolean(false))), '00');
  assert.equal(toHex(encodeTlvValue(Value.boolean(true))), '01');
  assert.deepEqual(decode(TLV, [9, 0, 12], hex('C10C00')), Node.resource(12, Value.boolean(false)));
  assertCodecError(() => decode(TLV, [9, 0, 12], hex('C20C0000')), '4.00', /boolean/);
  assertCodecError(() => decode(TLV, [9, 0, 12], hex('C00C')), '4.00', /boolean/);
  assert.equal(toHex(encodeTlvValue(Value.objlnk(0x1234, 0xabcd))), '1234ABCD');
  assert.deepEqual(decode(TLV, [9, 0, 5], hex('C4051234ABCD')), Node.resource(5, Value.objlnk(0x1234, 0xabcd)));
  assertCodecError(() => decode(TLV, [9, 0, 5], hex('C305123412')), '4.00', /objlnk/);
  assertCodecError(() => decode(TLV, [9, 0, 5], hex('C505123412AB00')), '4.00', /objlnk/);
  assert.equal(toHex(encodeTlvValue({ type: 'corelnk', value: '</3>' })), '3C2F333E');
});

test('TS Core §7.4.3: an object payload holds object-instance TLVs, each instance once', () => {
  assertCodecError(() => decode(TLV, [3311], hex('0000 0000')), '4.00', /duplicate instance/);
  assert.deepEqual(decode(TLV, [3311], hex('0000 0001')), Node.object(3311, [Node.instance(0, []), Node.instance(1, [])]));
  assertCodecError(() => decode(TLV, [3311], hex('4000')), '4.00', /object instance/);
});

test('TS Core §7.4.3: an instance payload holds resource and multiple-resource TLVs, not instances or bare resource instances', () => {
  assertCodecError(() => decode(TLV, [3311, 0], hex('0000 0001')), '4.00', /expected a resource TLV/);
  assertCodecError(() => decode(TLV, [3311, 0], hex('410001')), '4.00', /expected a resource TLV/);
  assert.deepEqual(
    decode(TLV, [3311, 0], hex('C10101 8302 410003')),
    Node.instance(0, [Node.resource(1, Value.opaque(Uint8Array.of(1))), Node.multiResource(2, [[0, Value.opaque(Uint8Array.of(3))]])]),
  );
});

test('TS Core §7.4.3: a multiple resource holds resource-instance TLVs, each once, and matches the definition', () => {
  assertCodecError(() => decode(TLV, [3, 0, 6], hex('8306 C10001')), '4.00', /only contain resource instances/);
  assertCodecError(() => decode(TLV, [3, 0, 6], hex('8606 410001 410005')), '4.00', /duplicate resource instance 0/);
  assertCodecError(() => decode(TLV, [3, 0, 9], hex('8309 410001')), '4.00', /single resource/);
  assert.deepEqual(decode(TLV, [3, 0, 6], hex('8006')), Node.multiResource(6, []));
  assert.equal(toHex(encode(TLV, [3, 0, 6], Node.multiResource(6, []))), '8006');
});

test('TS Core §7.4.3: a resource payload is one resource TLV with the path\'s id', () => {
  assertCodecError(() => decode(TLV, [3, 0, 9], hex('C10A0F')), '4.00', /does not match/);
  assertCodecError(() => decode(TLV, [3, 0, 9], hex('C10964 C10964')), '4.00', /expected one resource TLV/);
  assertCodecError(() => decode(TLV, [3, 0, 9], hex('410001')), '4.00', /expected one resource TLV/); // bare instances of a single resource
  assertCodecError(() => decode(TLV, [3, 0, 9], hex('0009')), '4.00', /expected one resource TLV/);
  assertCodecError(() => decode(TLV, [3311, 0, 7], hex('C10701 410001')), '4.00', /expected one resource TLV/); // a resource and a resource instance
  assertCodecError(() => decode(TLV, [3311, 0, 7], hex('410001 C10701')), '4.00', /expected one resource TLV/);
  assert.deepEqual(decode(TLV, [3311, 0, 7], hex('410001 410102')), Node.multiResource(7, [[0, Value.opaque(Uint8Array.of(1))], [1, Value.opaque(Uint8Array.of(2))]]));
  assert.deepEqual(decode(TLV, [3311, 0, 7], hex('8307 410001')), Node.multiResource(7, [[0, Value.opaque(Uint8Array.of(1))]]));
});

test('TS Core §7.4.3: a resource-instance payload is one resource-instance TLV with the path\'s id, of a multiple resource', () => {
  assert.deepEqual(decode(TLV, [3, 0, 6, 1], hex('410105')), Node.resourceInstance(1, Value.integer(5)));
  assert.equal(toHex(encode(TLV, [3, 0, 6, 1], Node.resourceInstance(1, Value.integer(5)))), '410105');
  assertCodecError(() => decode(TLV, [3, 0, 6, 1], hex('410105 410206')), '4.00', /one resource instance TLV/);
  assertCodecError(() => decode(TLV, [3, 0, 6, 1], hex('C10105')), '4.00', /one resource instance TLV/);
  assertCodecError(() => decode(TLV, [3, 0, 6, 1], hex('')), '4.00', /one resource instance TLV/);
  assertCodecError(() => decode(TLV, [3, 0, 6, 1], hex('410205')), '4.00', /does not match/);
  assertCodecError(() => decode(TLV, [3, 0, 9, 0], hex('410005')), '4.00', /not multiple/);
  assert.deepEqual(decode(TLV, [3311, 0, 7, 2], hex('4102AB')), Node.resourceInstance(2, Value.opaque(Uint8Array.of(0xab))));
});

test('Depot\'s limit (4.13 beyond maxPayloadBytes): a payload of exactly the limit is decoded', () => {
  const limits = { ...DEFAULT_LIMITS, maxPayloadBytes: 3 };
  assert.deepEqual(decode(TLV, [3, 0, 9], hex('C10964'), { limits }), Node.resource(9, Value.integer(100)));
  assertCodecError(() => decode(TLV, [3, 0, 9], hex('C2090064'), { limits }), '4.13', /larger than 3/);
  assertCodecError(() => decode(TLV, [3, 0, 9], [0xc1, 9, 0x64] as unknown as Uint8Array), '4.00', /bytes/);
});

test('TS Core Appendix C: a Corelnk value is a UTF-8 string (RFC 6690 text); the root path has no TLV form (4.15)', () => {
  const registry = defaultRegistry.with([
    {
      id: 3312,
      name: 'Links',
      urn: 'urn:oma:lwm2m:ext:3312',
      version: '1.0',
      lwm2mVersion: '1.1',
      multiple: true,
      mandatory: false,
      resources: [{ id: 1, name: 'Link', operations: 'R', multiple: false, mandatory: true, type: 'corelnk' }],
    },
  ]);
  assert.deepEqual(decode(TLV, [3312, 0, 1], hex('C4013C2F333E'), { registry }), Node.resource(1, { type: 'corelnk', value: '</3>' }));
  assertCodecError(() => decode(TLV, [3312, 0, 1], hex('C101C3'), { registry }), '4.00', /^\/3312\/0\/1 value is not valid UTF-8/);
  assertCodecError(() => decode(TLV, [], hex('C10101')), '4.15', /root path/);
});
