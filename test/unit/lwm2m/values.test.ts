import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import {
  Value,
  checkValue,
  convertValue,
  decodeBase64,
  formatObjLink,
  normalizeInteger,
  parseObjLink,
  timeToDate,
  valueFromText,
  valueToText,
  valuesEqual,
  Lwm2mCodecError,
  coapCodeByte,
} from '../../../src/lwm2m/index.js';
import { assertCodecError } from './helpers.js';

test('values TS Core Appendix C: integers are numbers while safe, bigints beyond 2^53', () => {
  assert.equal(normalizeInteger(5n), 5);
  assert.equal(normalizeInteger(BigInt(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER);
  assert.equal(normalizeInteger(BigInt(Number.MAX_SAFE_INTEGER) + 1n), 2n ** 53n);
  assert.equal(normalizeInteger(-(2n ** 60n)), -(2n ** 60n));
  assert.deepEqual(Value.integer(7n), { type: 'integer', value: 7 });
  assertCodecError(() => Value.integer(2n ** 63n), '4.00', /64-bit/);
  assertCodecError(() => Value.integer(1.5), '4.00');
  assertCodecError(() => Value.unsignedInteger(-1), '4.00');
  assert.deepEqual(Value.unsignedInteger(2n ** 64n - 1n), { type: 'unsignedInteger', value: 2n ** 64n - 1n });
});

test('values TS Core Appendix C: time is seconds since the epoch; objlnk ids 0..65535', () => {
  assert.deepEqual(Value.time(new Date('2013-05-02T10:40:15.900Z')), { type: 'time', value: 1367491215 });
  assert.equal(timeToDate(1367491215).toISOString(), '2013-05-02T10:40:15.000Z');
  assert.deepEqual(Value.objlnk(65535, 65535), { type: 'objlnk', value: { objectId: 65535, instanceId: 65535 } });
  assertCodecError(() => Value.objlnk(65536, 0), '4.00');
  assert.equal(formatObjLink({ objectId: 3, instanceId: 0 }), '3:0');
  assert.deepEqual(parseObjLink('65535:0'), { objectId: 65535, instanceId: 0 });
  for (const bad of ['3', '3:', ':0', '03:0', '3:0:1', '-1:0', '3 :0', '99999:0']) assertCodecError(() => parseObjLink(bad), '4.00');
});

test('values TS Core Appendix C: conversion rules between generic and defined types', () => {
  assert.deepEqual(convertValue(Value.integer(1367491215), 'time'), Value.time(1367491215));
  assert.deepEqual(convertValue(Value.integer(3), 'float'), Value.float(3));
  assert.deepEqual(convertValue(Value.float(3), 'integer'), Value.integer(3));
  assert.deepEqual(convertValue(Value.float(2 ** 60), 'integer'), Value.integer(2n ** 60n));
  assert.deepEqual(convertValue(Value.string('3:1'), 'objlnk'), Value.objlnk(3, 1));
  assert.deepEqual(convertValue(Value.string('</3/0>'), 'corelnk'), Value.corelnk('</3/0>'));
  assert.deepEqual(convertValue(Value.integer(5), 'unsignedInteger'), Value.unsignedInteger(5));
  assertCodecError(() => convertValue(Value.integer(-5), 'unsignedInteger'), '4.00');
  assertCodecError(() => convertValue(Value.float(1.5), 'integer'), '4.00', /cannot convert float value to integer/);
  assertCodecError(() => convertValue(Value.string('1'), 'integer'), '4.00');
  assertCodecError(() => convertValue(Value.integer(1), 'boolean'), '4.00');
  assertCodecError(() => convertValue(Value.string('AQID'), 'opaque'), '4.00');
});

test('values TS Core Appendix C: text forms', () => {
  assert.equal(valueToText(Value.float(-0)), '-0.0');
  assert.equal(valueToText(Value.float(1e21)), '1e+21');
  assert.equal(valueToText(Value.float(0.1)), '0.1');
  assert.deepEqual(valueFromText('1e3', 'float'), Value.float(1000));
  assert.deepEqual(valueFromText('-.5', 'float'), Value.float(-0.5));
  assert.deepEqual(valueFromText('NaN', 'float').value, NaN);
  assertCodecError(() => valueFromText('1.', 'integer'), '4.00');
  assertCodecError(() => valueFromText('0x10', 'integer'), '4.00');
  assertCodecError(() => valueFromText('', 'integer'), '4.00');
  assertCodecError(() => valueFromText('1.2.3', 'float'), '4.00');
  assertCodecError(() => valueFromText('01', 'unsignedInteger'), '4.00');
});

test('values TS Core Appendix C: strict base64 (padding, alphabet, canonical trailing bits)', () => {
  assert.deepEqual(decodeBase64('AQID', false), Uint8Array.of(1, 2, 3));
  assert.deepEqual(decodeBase64('AQ==', false), Uint8Array.of(1));
  assert.deepEqual(decodeBase64('AQ', true), Uint8Array.of(1));
  assert.deepEqual(decodeBase64('', false), new Uint8Array(0));
  for (const bad of ['AQ', 'A', 'AQ=', 'AR==', 'A Q==', 'AQ==AQ==', '-_8=']) assertCodecError(() => decodeBase64(bad, false), '4.00');
});

test('values TS Core Appendix C: checkValue and valuesEqual', () => {
  assert.equal(checkValue({ type: 'boolean', value: 1 as unknown as boolean }), 'boolean value must be a boolean');
  assert.equal(checkValue(Value.string('x')), undefined);
  assert.equal(valuesEqual(Value.float(NaN), Value.float(NaN)), true);
  assert.equal(valuesEqual(Value.integer(2), { type: 'integer', value: 2n }), true);
  assert.equal(valuesEqual(Value.opaque(Uint8Array.of(1)), Value.opaque(Uint8Array.of(2))), false);
  assert.equal(valuesEqual(Value.integer(1), Value.unsignedInteger(1)), false);
});

test('errors: typed error carries the CoAP code byte and a diagnostic', () => {
  const e = new Lwm2mCodecError('4.15', 'no');
  assert.equal(e.codeByte, 0x8f);
  assert.equal(coapCodeByte('4.00'), 0x80);
  assert.equal(coapCodeByte('4.06'), 0x86);
  assert.equal(e.message, '4.15 no');
  assert.equal(e.name, 'Lwm2mCodecError');
});
