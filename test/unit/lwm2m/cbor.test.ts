import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { CborFloat, CborMap, CborTag, decodeCbor, encodeCbor, DEFAULT_LIMITS } from '../../../src/lwm2m/index.js';
import { assertCodecError, hex, toHex } from './helpers.js';

test('CBOR RFC 8949 Appendix A: integers, floats, strings, containers encode as in the table', () => {
  const cases: Array<[Parameters<typeof encodeCbor>[0], string]> = [
    [0, '00'],
    [23, '17'],
    [24, '1818'],
    [1000, '1903E8'],
    [1000000, '1A000F4240'],
    [1000000000000, '1B000000E8D4A51000'],
    [18446744073709551615n, '1BFFFFFFFFFFFFFFFF'],
    [-1, '20'],
    [-1000, '3903E7'],
    [-18446744073709551616n, '3BFFFFFFFFFFFFFFFF'],
    [new CborFloat(0), 'F90000'],
    [new CborFloat(-0), 'F98000'],
    [new CborFloat(1.5), 'F93E00'],
    [new CborFloat(65504), 'F97BFF'],
    [new CborFloat(100000), 'FA47C35000'],
    [new CborFloat(1.1), 'FB3FF199999999999A'],
    [new CborFloat(5.960464477539063e-8), 'F90001'],
    [new CborFloat(Infinity), 'F97C00'],
    [new CborFloat(NaN), 'F97E00'],
    [new CborFloat(-4), 'F9C400'],
    [false, 'F4'],
    [true, 'F5'],
    [null, 'F6'],
    ['IETF', '6449455446'],
    ['\u00fc', '62C3BC'],
    [Uint8Array.of(1, 2, 3, 4), '4401020304'],
    [[1, [2, 3], [4, 5]], '8301820203820405'],
    [new CborMap([[1, 2], [3, 4]]), 'A201020304'],
    [new CborTag(1, 1363896240), 'C11A514B67B0'],
  ];
  for (const [item, expected] of cases) {
    assert.equal(toHex(encodeCbor(item)), expected, expected);
    assert.deepEqual(decodeCbor(hex(expected)), item, expected);
  }
});

test('CBOR RFC 8949 Appendix A: indefinite-length items decode', () => {
  assert.deepEqual(decodeCbor(hex('5F42010243030405FF')), Uint8Array.of(1, 2, 3, 4, 5));
  assert.equal(decodeCbor(hex('7F657374726561646D696E67FF')), 'streaming');
  assert.deepEqual(decodeCbor(hex('9F018202039F0405FFFF')), [1, [2, 3], [4, 5]]);
  assert.deepEqual(decodeCbor(hex('BF61610161629F0203FFFF')), new CborMap([['a', 1], ['b', [2, 3]]]));
  assert.deepEqual(decodeCbor(hex('FA47C35000')), new CborFloat(100000));
});

test('CBOR RFC 8949 §3/§5.3: malformed input is 4.00, bounded in depth, size and count', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['18', /truncated/],
    ['1C', /reserved/],
    ['FF', /break/],
    ['0000', /trailing/],
    ['5F01FF', /chunk/],
    ['7F4100FF', /chunk/],
    ['62C328', /UTF-8/],
    ['F818', /simple/],
    ['9BFFFFFFFFFFFFFFFF', /exceeds/],
    ['5A7FFFFFFF', /exceeds/],
    ['BA00010000', /exceeds/],
    ['1F', /indefinite/],
  ];
  for (const [h, diag] of bad) assertCodecError(() => decodeCbor(hex(h)), '4.00', diag);
  assertCodecError(() => decodeCbor(new Uint8Array(100).fill(0x81)), '4.00', /nesting/);
  assertCodecError(() => decodeCbor(hex('8301020300'), { ...DEFAULT_LIMITS, maxEntries: 3 }), '4.00', /too many/);
  assertCodecError(() => decodeCbor(hex('00'), { ...DEFAULT_LIMITS, maxPayloadBytes: 0 }), '4.13', /larger/);
  // 20000 nested indefinite arrays: depth bound, not a stack overflow
  assertCodecError(() => decodeCbor(new Uint8Array(20000).fill(0x9f)), '4.00', /nesting/);
});

test('CBOR RFC 8949 §3.1: negative integers are numbers while safe, bigints beyond', () => {
  assert.equal(decodeCbor(hex('20')), -1);
  assert.equal(decodeCbor(hex('3B001FFFFFFFFFFFFE')), -Number.MAX_SAFE_INTEGER);
  assert.equal(decodeCbor(hex('3B001FFFFFFFFFFFFF')), -(2n ** 53n));
  assert.equal(decodeCbor(hex('3BFFFFFFFFFFFFFFFF')), -(2n ** 64n));
});

test('CBOR RFC 8949 §3.1: text strings, ASCII or not, decoded where they lie in a larger buffer', () => {
  const datagram = Buffer.from('00008263616263' + '62C3BC' + '00', 'hex');
  assert.deepEqual(decodeCbor(datagram.subarray(2, datagram.length - 1)), ['abc', '\u00fc']);
  assert.deepEqual(decodeCbor(hex('826062412F')), ['', 'A/']);
  assertCodecError(() => decodeCbor(hex('62C328')), '4.00', /UTF-8/);
});
