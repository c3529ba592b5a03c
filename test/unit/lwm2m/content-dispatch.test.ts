// Content-format dispatch (src/lwm2m/content/index.ts), the shared helpers (common.ts) and the
// single-value formats (plaintext.ts), against OMA-TS-LightweightM2M_Core-V1_1 §7.4 (content
// formats: plain text 0 §7.4.1, opaque 42 §7.4.2, TLV 11542 §7.4.3, SenML JSON 110 / SenML CBOR
// 112 §7.4.4-§7.4.5, LwM2M CBOR 11544 §7.4.6; TS 1.0's pre-registration numbers 1541/1542/1544
// for plain text/TLV/opaque), RFC 8428 §6 (SenML CBOR labels: n = 0, v = 2) and RFC 7252 §5.5.2
// (a diagnostic payload is for a human: it says what was wrong). Bytes computed by hand.
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import {
  ContentFormat,
  DEFAULT_LIMITS,
  Lwm2mCodecError,
  Node,
  Value,
  decode,
  decodeRecords,
  encode,
  encodeRecords,
  isSupportedFormat,
  supportedFormats,
} from '../../../src/lwm2m/index.js';
import type { ObjectRegistry } from '../../../src/lwm2m/index.js';
import { assertCodecError, hex, toHex, utf8 } from './helpers.js';

test('TS 1.0 pre-registration content formats: 1541 is plain text, 1542 TLV, 1544 opaque', () => {
  const r9 = Node.resource(9, Value.integer(100));
  assert.equal(toHex(encode(1541, [3, 0, 9], r9)), '313030');
  assert.deepEqual(decode(1541, [3, 0, 9], utf8('100')), r9);
  assert.equal(toHex(encode(1542, [3, 0, 9], r9)), 'C10964');
  assert.deepEqual(decode(1542, [3, 0, 9], hex('C10964')), r9);
  const r0 = Node.resource(0, Value.opaque(Uint8Array.of(1, 2)));
  assert.equal(toHex(encode(1544, [5, 0, 0], r0)), '0102');
  assert.deepEqual(decode(1544, [5, 0, 0], hex('0102')), r0);
});

test('TS Core §7.4: the supported content formats, in order; LwM2M 1.0 JSON (11543) and link format (40) are not codecs here', () => {
  assert.deepEqual(supportedFormats(), [0, 42, 110, 112, 1541, 1542, 1544, 11542, 11544]);
  assert.equal(isSupportedFormat(ContentFormat.Tlv), true);
  assert.equal(isSupportedFormat(ContentFormat.Lwm2mJson), false);
  assert.equal(isSupportedFormat(40), false);
  assertCodecError(() => encode(11543, [3, 0, 9], Node.resource(9, Value.integer(1))), '4.06', /11543/);
  assertCodecError(() => decode(11543, [3, 0, 9], utf8('{}')), '4.15', /11543/);
});

test('TS Core §6.3.x / §7.4: composite records only in SenML JSON, SenML CBOR and LwM2M CBOR', () => {
  const records = [{ path: [3, 0, 9] as const, value: Value.integer(100) }];
  for (const format of [ContentFormat.Tlv, ContentFormat.PlainText, ContentFormat.Opaque]) {
    assertCodecError(() => encodeRecords(format, records), '4.06', /composite/);
    assertCodecError(() => decodeRecords(format, hex('C10964')), '4.15', /composite/);
  }
});

test('RFC 8428 §5 / §6: composite records in SenML JSON are JSON text, in SenML CBOR a CBOR array (labels n = 0, v = 2)', () => {
  const records = [{ path: [3, 0, 9] as const, value: Value.integer(100) }];
  const json = encodeRecords(ContentFormat.SenmlJson, records);
  assert.equal(json[0], 0x5b, 'JSON text starts with [');
  const cbor = encodeRecords(ContentFormat.SenmlCbor, records);
  assert.equal(cbor[0], 0x81, 'a CBOR array of one record');
  // [{"n":"/3/0/9","v":100}] and its CBOR form [{0: "/3/0/9", 2: 100}]
  const jsonIn = utf8('[{"n":"/3/0/9","v":100}]');
  const cborIn = hex('81 A2 00 66 2F332F302F39 02 1864');
  assert.deepEqual(decodeRecords(ContentFormat.SenmlJson, jsonIn), [{ path: [3, 0, 9], value: Value.integer(100) }]);
  assert.deepEqual(decodeRecords(ContentFormat.SenmlCbor, cborIn), [{ path: [3, 0, 9], value: Value.integer(100) }]);
  assertCodecError(() => decodeRecords(ContentFormat.SenmlCbor, jsonIn), '4.00');
  assertCodecError(() => decodeRecords(ContentFormat.SenmlJson, cborIn), '4.00');
  assert.deepEqual(decodeRecords(ContentFormat.SenmlJson, json), [{ path: [3, 0, 9], value: Value.integer(100) }]);
  assert.deepEqual(decodeRecords(ContentFormat.SenmlCbor, cbor), [{ path: [3, 0, 9], value: Value.integer(100) }]);
});

test('decode never throws anything but Lwm2mCodecError: an internal failure becomes 4.00', () => {
  const broken = { resource: () => { throw new TypeError('registry failure'); } } as unknown as ObjectRegistry;
  assert.throws(
    () => decode(ContentFormat.Tlv, [3, 0, 9], hex('C10964'), { registry: broken }),
    (e: unknown) => e instanceof Lwm2mCodecError && e.code === '4.00' && /malformed payload \(TypeError\)/.test(e.diagnostic) && e.cause instanceof TypeError,
  );
  assert.throws(
    () => decodeRecords(ContentFormat.SenmlJson, utf8('[{"n":"/3/0/9","v":100}]'), { registry: broken }),
    (e: unknown) => e instanceof Lwm2mCodecError && e.code === '4.00' && /TypeError/.test(e.diagnostic),
  );
});

test('Depot\'s limit: a payload of exactly maxPayloadBytes is accepted, one byte more is 4.13', () => {
  const limits = { ...DEFAULT_LIMITS, maxPayloadBytes: 3 };
  assert.deepEqual(decode(ContentFormat.PlainText, [3, 0, 9], utf8('100'), { limits }), Node.resource(9, Value.integer(100)));
  assertCodecError(() => decode(ContentFormat.PlainText, [3, 0, 9], utf8('1000'), { limits }), '4.13', /larger than 3/);
  assertCodecError(() => decode(ContentFormat.Opaque, [5, 0, 0], [1, 2] as unknown as Uint8Array), '4.00', /bytes/);
});

test('TS Core §7.4.1 / RFC 3629: a string is kept character for character, a leading U+FEFF included', () => {
  const bytes = hex('EFBBBF 616263');
  assert.deepEqual(decode(ContentFormat.PlainText, [3, 0, 0], bytes), Node.resource(0, Value.string('\uFEFFabc')));
  assert.equal(toHex(encode(ContentFormat.PlainText, [3, 0, 0], Node.resource(0, Value.string('\uFEFFabc')))), 'EFBBBF616263');
  assertCodecError(() => decode(ContentFormat.PlainText, [3, 0, 0], hex('C3')), '4.00', /plain text payload is not valid UTF-8/);
});

test('TS Core §7.4.3: values are written in the type the object definition gives, at every level of the node', () => {
  // /9/0/5 Checkpoint is an objlnk: "3:1" is written as 00 03 00 01; a float 2 in /3/0/6 (integer, multiple) as 02.
  const instance = Node.instance(0, [Node.resource(5, Value.string('3:1'))]);
  assert.equal(toHex(encode(ContentFormat.Tlv, [9, 0], instance)), 'C40500030001');
  assert.equal(toHex(encode(ContentFormat.Tlv, [9], Node.object(9, [instance]))), '0600C40500030001');
  const multi = Node.multiResource(6, [Value.integer(1), Value.float(2)]);
  assert.equal(toHex(encode(ContentFormat.Tlv, [3, 0, 6], multi)), '8606410001410102');
  assert.equal(toHex(encode(ContentFormat.Tlv, [3, 0, 6], Node.multiResource(6, [Value.float(2), Value.integer(1)]))), '8606410002410101');
  assert.equal(toHex(encode(ContentFormat.Tlv, [3, 0, 6, 1], Node.resourceInstance(1, Value.float(2)))), '410102');
  // an instance whose first resource needs no conversion and whose second does
  const mixed = Node.instance(0, [Node.resource(9, Value.integer(100)), Node.resource(10, Value.float(15))]);
  assert.equal(toHex(encode(ContentFormat.Tlv, [3, 0], mixed)), 'C10964C10A0F');
  assertCodecError(() => encode(ContentFormat.Tlv, [3, 0, 9], Node.resource(9, Value.string('abc'))), '4.00', /^\/3\/0\/9: cannot convert/);
});

test('RFC 7252 §5.5.2: the diagnostics of the single-value formats name the format and the path', () => {
  assertCodecError(() => encode(ContentFormat.PlainText, [3, 0], Node.instance(0, [])), '4.06', /^plain text carries one value; \/3\/0 is a instance/);
  assertCodecError(() => decode(ContentFormat.PlainText, [3, 0], utf8('1')), '4.15', /^plain text cannot carry \/3\/0/);
  assertCodecError(() => decode(ContentFormat.Opaque, [3, 0], hex('01')), '4.15', /^opaque cannot carry \/3\/0/);
  assertCodecError(() => decode(ContentFormat.PlainText, [3, 0, 6], utf8('1')), '4.15', /^plain text cannot carry the multiple resource \/3\/0\/6/);
  assertCodecError(() => decode(ContentFormat.Opaque, [3, 0, 6], hex('01')), '4.15', /^opaque cannot carry the multiple resource \/3\/0\/6/);
  assertCodecError(() => encode(ContentFormat.Opaque, [3, 0, 0], Node.resource(0, Value.string('x'))), '4.06', /^opaque format carries opaque values only; \/3\/0\/0 is string/);
  assertCodecError(() => encode(ContentFormat.Opaque, [3, 0], Node.instance(0, [])), '4.06', /^opaque carries one value/);
  assertCodecError(() => decode(ContentFormat.Opaque, [3, 0, 0], hex('01')), '4.15', /^\/3\/0\/0 is string, not opaque/);
});
