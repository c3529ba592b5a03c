// The CBOR decoder against RFC 8949: the decoding examples of Appendix A and the not-well-formed
// examples of Appendix F.1 (truncation, reserved additional information 28-30, indefinite length
// on major types 0, 1, 6 and 7, a break outside an indefinite item, chunks of the wrong type in an
// indefinite string), §3.3 (a two-byte simple value below 32 is not well-formed) and §5.3 (a
// decoder bounds what it accepts: Depot's maxDepth / maxEntries / maxPayloadBytes).
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { CborFloat, CborMap, CborSimple, CborTag, DEFAULT_LIMITS, decodeCbor } from '../../../src/lwm2m/index.js';
import { assertCodecError, hex } from './helpers.js';

const d = (s: string): unknown => decodeCbor(hex(s));

test('RFC 8949 Appendix A: unsigned and negative integers; numbers while safe, bigints beyond', () => {
  assert.equal(d('17'), 23);
  assert.equal(d('1818'), 24);
  assert.equal(d('1903e8'), 1000);
  assert.equal(d('1a000f4240'), 1000000);
  assert.equal(d('1b000000e8d4a51000'), 1000000000000);
  assert.equal(d('1b001fffffffffffff'), 2 ** 53 - 1);
  assert.equal(d('1b0020000000000000'), 2n ** 53n);
  assert.equal(d('1bffffffffffffffff'), 18446744073709551615n);
  assert.equal(d('20'), -1);
  assert.equal(d('3863'), -100);
  assert.equal(d('3903e7'), -1000);
  assert.equal(d('3a000f423f'), -1000000);
  assert.equal(d('3b001ffffffffffffd'), -(2 ** 53) + 2);
  assert.equal(d('3b001ffffffffffffe'), -(2 ** 53) + 1); // Number.MIN_SAFE_INTEGER
  assert.equal(d('3b001fffffffffffff'), -(2n ** 53n));
  assert.equal(d('3bffffffffffffffff'), -18446744073709551616n);
});

test('RFC 8949 Appendix A: half, single and double floats', () => {
  const f = (s: string): number => (d(s) as CborFloat).value;
  assert.ok(d('f90000') instanceof CborFloat);
  assert.ok(Object.is(f('f98000'), -0));
  assert.equal(f('f93c00'), 1);
  assert.equal(f('f93e00'), 1.5);
  assert.equal(f('f97bff'), 65504);
  assert.equal(f('f90001'), 5.960464477539063e-8);
  assert.equal(f('f90400'), 0.00006103515625);
  assert.equal(f('f9c400'), -4);
  assert.equal(f('f97c00'), Infinity);
  assert.equal(f('f9fc00'), -Infinity);
  assert.ok(Number.isNaN(f('f97e00')));
  assert.equal(f('fa47c35000'), 100000);
  assert.equal(f('fa7f7fffff'), 3.4028234663852886e38);
  assert.equal(f('fb3ff199999999999a'), 1.1);
  assert.equal(f('fbc010666666666666'), -4.1);
});

test('RFC 8949 Appendix A: simple values, byte and text strings, arrays, maps, tags', () => {
  assert.equal(d('f4'), false);
  assert.equal(d('f5'), true);
  assert.equal(d('f6'), null);
  assert.equal(d('f7'), undefined);
  assert.deepEqual(d('f0'), new CborSimple(16));
  assert.deepEqual(d('f820'), new CborSimple(32));
  assert.deepEqual(d('f8ff'), new CborSimple(255));
  assert.deepEqual(d('40'), new Uint8Array(0));
  assert.deepEqual(d('4401020304'), Uint8Array.of(1, 2, 3, 4));
  assert.equal(d('60'), '');
  assert.equal(d('6449455446'), 'IETF');
  assert.equal(d('62c3bc'), '\u00fc');
  assert.equal(d('64f0908591'), '\u{10151}');
  assert.deepEqual(d('5f42010243030405ff'), Uint8Array.of(1, 2, 3, 4, 5));
  assert.equal(d('7f657374726561646d696e67ff'), 'streaming');
  assert.equal(d('7f62c3bc6161ff'), '\u00fca');
  assert.deepEqual(d('83010203'), [1, 2, 3]);
  assert.deepEqual(d('9fff'), []);
  assert.deepEqual(d('9f018202039f0405ffff'), [1, [2, 3], [4, 5]]);
  assert.deepEqual(d('a201020304'), new CborMap([[1, 2], [3, 4]]));
  assert.deepEqual(d('bf61610161629f0203ffff'), new CborMap([['a', 1], ['b', [2, 3]]]));
  assert.deepEqual(d('c11a514b67b0'), new CborTag(1, 1363896240));
  assert.deepEqual(d('d82076687474703a2f2f7777772e6578616d706c652e636f6d'), new CborTag(32, 'http://www.example.com'));
});

test('RFC 8949 Appendix F.1: truncated items are not well-formed (4.00)', () => {
  for (const s of ['18', '1901', '1a010203', '1b01020304050607', '38', '58', '78', '98', '9a01ff00', 'b8', 'd8', 'f8', 'f900', 'fa0000', 'fb000000', '41', '61', '5affffffff00', '7affffffff00', '81', '818181818181818181', '8200', 'a1', 'a20102', 'a100', 'a2000000', 'c0', '5f4100', '7f6100', '9f', '9f0102', 'bf', 'bf01020102', '819f', '9f8000', '9f9f9f9f9fffffffff', '9f819f819f9fffffff']) {
    assertCodecError(() => d(s), '4.00', undefined);
  }
  assertCodecError(() => decodeCbor(new Uint8Array(0)), '4.00', /empty/);
});

test('RFC 8949 Appendix F.1: reserved additional information, indefinite length where none is allowed, a stray break', () => {
  for (const s of ['1c', '1d', '1e', '3c', '3d', '3e', '5c', '5d', '5e', '7c', '7d', '7e', '9c', '9d', '9e', 'bc', 'bd', 'be', 'dc', 'dd', 'de', 'fc', 'fd', 'fe']) {
    assertCodecError(() => d(s), '4.00', /reserved/);
  }
  for (const s of ['1f', '3f', 'df']) assertCodecError(() => d(s), '4.00', /indefinite/);
  for (const s of ['ff', '81ff', '8200ff', 'a1ff', 'a1ff00', 'a100ff', 'a20000ff', '9f81ff', '9f829f819f9fffffffff']) {
    assertCodecError(() => d(s), '4.00', /break|truncated|trailing|exceeds/);
  }
  assertCodecError(() => d('ff'), '4.00', /unexpected break/);
  assertCodecError(() => d('81ff'), '4.00', /unexpected break/);
});

test('RFC 8949 §3.2.3 / Appendix F.1: an indefinite string holds definite chunks of its own major type only', () => {
  for (const s of ['5f00ff', '5f21ff', '5f6100ff', '5f80ff', '5fa0ff', '5fc000ff', '5fe0ff', '7f4100ff', '5f5f4100ffff', '7f7f6100ffff']) {
    assertCodecError(() => d(s), '4.00', /bad chunk/);
  }
  // a chunk is valid UTF-8 on its own (§3.2.3): c3 | bc split over two chunks is not
  assertCodecError(() => d('7f61c361bcff'), '4.00', /UTF-8/);
  assertCodecError(() => d('62c328'), '4.00', /UTF-8/);
  assertCodecError(() => d('7f62c328ff'), '4.00', /UTF-8/);
});

test('RFC 8949 §3.3: a simple value in two bytes must be 32 or more', () => {
  for (const s of ['f800', 'f801', 'f814', 'f818', 'f81f']) assertCodecError(() => d(s), '4.00', /simple/);
});

test('RFC 8949 §3 / §5.3: a length that cannot fit the bytes left is refused before allocating; exact fits are read', () => {
  assert.deepEqual(d('4100'), Uint8Array.of(0));
  assert.deepEqual(d('8100'), [0]);
  assert.deepEqual(d('a10000'), new CborMap([[0, 0]]));
  assertCodecError(() => d('4200'), '4.00', /exceeds/);
  assertCodecError(() => d('8200'), '4.00', /exceeds|truncated/);
  assertCodecError(() => d('a200000000'.slice(0, 8)), '4.00', /exceeds/);
  assertCodecError(() => d('5b0000000100000000'), '4.00', /exceeds/);
  assertCodecError(() => d('9bffffffffffffffff'), '4.00', /exceeds/);
  assertCodecError(() => d('0000'), '4.00', /1 trailing bytes/);
});

test('RFC 8949 §5.3 (Depot\'s limits): nesting up to maxDepth, items up to maxEntries, payload up to maxPayloadBytes', () => {
  const depth2 = { ...DEFAULT_LIMITS, maxDepth: 2 };
  assert.deepEqual(decodeCbor(hex('818100'), depth2), [[0]]);
  assertCodecError(() => decodeCbor(hex('81818100'), depth2), '4.00', /deeper than 2/);
  const three = { ...DEFAULT_LIMITS, maxEntries: 3 };
  assert.deepEqual(decodeCbor(hex('820000'), three), [0, 0]);
  assertCodecError(() => decodeCbor(hex('83000000'), three), '4.00', /too many/);
  assert.deepEqual(decodeCbor(hex('5f4100ff'), { ...DEFAULT_LIMITS, maxEntries: 2 }), Uint8Array.of(0));
  assertCodecError(() => decodeCbor(hex('5f41004100ff'), { ...DEFAULT_LIMITS, maxEntries: 2 }), '4.00', /too many/);
  const small = { ...DEFAULT_LIMITS, maxPayloadBytes: 2 };
  assert.equal(decodeCbor(hex('1818'), small), 24);
  assertCodecError(() => decodeCbor(hex('1903e8'), small), '4.13', /larger than 2/);
});
