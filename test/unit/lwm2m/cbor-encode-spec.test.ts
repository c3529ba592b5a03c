// The CBOR encoder against RFC 8949 Appendix A (the examples, in preferred serialization: §4.1
// shortest argument, §4.2.2 shortest float that keeps the value) and §3.3 (simple values).
// Expected bytes are the RFC's or hand-computed from IEEE 754 binary16/32/64.
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { CborFloat, CborMap, CborSimple, CborTag, decodeCbor, encodeCbor, type CborItem } from '../../../src/lwm2m/index.js';
import { assertCodecError } from './helpers.js';

const e = (item: CborItem): string => Buffer.from(encodeCbor(item)).toString('hex');

test('RFC 8949 Appendix A / §4.1: integers in the shortest head, numbers and bigints alike', () => {
  const cases: Array<[CborItem, string]> = [
    [0, '00'], [23, '17'], [24, '1818'], [255, '18ff'], [256, '190100'], [65535, '19ffff'], [65536, '1a00010000'],
    [1000000, '1a000f4240'], [2 ** 32 - 1, '1affffffff'], [2 ** 32, '1b0000000100000000'], [1000000000000, '1b000000e8d4a51000'],
    [2 ** 53 - 1, '1b001fffffffffffff'], [2 ** 53, '1b0020000000000000'], [2n ** 64n - 1n, '1bffffffffffffffff'], [5n, '05'],
    [2n ** 53n - 1n, '1b001fffffffffffff'], [2n ** 53n, '1b0020000000000000'],
    [-1, '20'], [-24, '37'], [-25, '3818'], [-100, '3863'], [-256, '38ff'], [-257, '390100'], [-1000, '3903e7'],
    [-(2 ** 53) + 1, '3b001ffffffffffffe'], [-(2 ** 53), '3b001fffffffffffff'], [-5n, '24'],
    [-(2n ** 53n), '3b001fffffffffffff'], [-(2n ** 53n) - 1n, '3b0020000000000000'], [-(2n ** 64n), '3bffffffffffffffff'],
  ];
  for (const [item, hex] of cases) assert.equal(e(item), hex, hex);
  assertCodecError(() => encodeCbor(2n ** 64n), '4.00', /64 bits/);
  assertCodecError(() => encodeCbor(-(2n ** 64n) - 1n), '4.00', /64 bits/);
});

test('RFC 8949 Appendix A / §4.2.2: floats in the shortest of binary16, binary32, binary64 that keeps the value', () => {
  const cases: Array<[number, string]> = [
    [0, 'f90000'], [-0, 'f98000'], [1, 'f93c00'], [1.5, 'f93e00'], [65504, 'f97bff'], [-65504, 'f9fbff'], [-4, 'f9c400'],
    [5.960464477539063e-8, 'f90001'], [3 * 2 ** -24, 'f90003'], [0.00006103515625, 'f90400'], [2 ** -14 * (1 + 1023 / 1024), 'f907ff'],
    [1 + 2 ** -10, 'f93c01'], [32768, 'f97800'], [0.5, 'f93800'],
    [Infinity, 'f97c00'], [-Infinity, 'f9fc00'], [NaN, 'f97e00'],
    [100000, 'fa47c35000'], [65505, 'fa477fe100'], [65536, 'fa47800000'], [2 ** -25, 'fa33000000'], [1 + 2 ** -11, 'fa3f801000'],
    [3.4028234663852886e38, 'fa7f7fffff'], [65535.5, 'fa477fff80'],
    [1.1, 'fb3ff199999999999a'], [1e300, 'fb7e37e43c8800759c'], [-4.1, 'fbc010666666666666'],
  ];
  for (const [n, hex] of cases) assert.equal(e(new CborFloat(n)), hex, String(n));
  assert.equal(e(0.5), 'f93800', 'a non-integral number is a float');
  assert.equal(e(-1.5), 'f9be00');
  // and each decodes back to the same value
  for (const [n] of cases) {
    const back = decodeCbor(encodeCbor(new CborFloat(n))) as CborFloat;
    assert.ok(Object.is(back.value, n), String(n));
  }
});

test('RFC 8949 Appendix A: strings, arrays, maps, tags and simple values', () => {
  assert.equal(e(''), '60');
  assert.equal(e('a'), '6161');
  assert.equal(e('IETF'), '6449455446');
  assert.equal(e('"\\'), '62225c');
  assert.equal(e('\u00fc'), '62c3bc');
  assert.equal(e('\u6c34'), '63e6b0b4');
  assert.equal(e('\u{10151}'), '64f0908591');
  assert.equal(e(new Uint8Array(0)), '40');
  assert.equal(e(Uint8Array.of(1, 2, 3, 4)), '4401020304');
  assert.equal(e([]), '80');
  assert.equal(e([1, [2, 3], [4, 5]]), '8301820203820405');
  assert.equal(e(Array.from({ length: 25 }, (_, i) => i + 1)), '98190102030405060708090a0b0c0d0e0f101112131415161718181819');
  assert.equal(e(new CborMap([])), 'a0');
  assert.equal(e(new CborMap([[1, 2], [3, 4]])), 'a201020304');
  assert.equal(e(new CborMap([['a', 1], ['b', [2, 3]]])), 'a26161016162820203');
  assert.equal(e(new CborTag(1, 1363896240)), 'c11a514b67b0');
  assert.equal(e(new CborTag(32, 'http://www.example.com')), 'd82076687474703a2f2f7777772e6578616d706c652e636f6d');
  assert.equal(e(false), 'f4');
  assert.equal(e(true), 'f5');
  assert.equal(e(null), 'f6');
  assert.equal(e(undefined), 'f7');
  assert.equal(e(new CborSimple(16)), 'f0');
  assert.equal(e(new CborSimple(24)), 'f818');
  assert.equal(e(new CborSimple(255)), 'f8ff');
  assertCodecError(() => encodeCbor({} as unknown as CborItem), '4.00', /cannot be encoded/);
});

test('RFC 8949 §4.1: long strings and byte strings take 1-, 2- and 4-byte length arguments; the output grows as needed', () => {
  const s600 = 'x'.repeat(600);
  const enc = encodeCbor(s600);
  assert.equal(Buffer.from(enc.subarray(0, 3)).toString('hex'), '790258');
  assert.equal(enc.length, 603);
  assert.equal(decodeCbor(enc), s600);
  const u = '\u00fc'.repeat(200); // 400 bytes of UTF-8
  assert.equal(Buffer.from(encodeCbor(u).subarray(0, 3)).toString('hex'), '790190');
  const b = new Uint8Array(70000).fill(7);
  const eb = encodeCbor(b);
  assert.equal(Buffer.from(eb.subarray(0, 5)).toString('hex'), '5a00011170');
  assert.equal(eb.length, 70005);
  assert.equal(eb[70004], 7);
  const arr = encodeCbor(Array.from({ length: 300 }, () => 'abc'));
  assert.equal(arr.length, 3 + 300 * 4);
  assert.deepEqual(decodeCbor(arr), Array.from({ length: 300 }, () => 'abc'));
});

test('Depot\'s bound: the encoder nests at most 64 levels below the top item', () => {
  const nest = (n: number): CborItem => (n === 1 ? [] : [nest(n - 1)]);
  assert.equal(encodeCbor(nest(65)).length, 65);
  assertCodecError(() => encodeCbor(nest(66)), '4.00', /nested too deeply/);
});
