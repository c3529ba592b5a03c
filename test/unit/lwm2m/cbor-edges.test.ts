/**
 * CBOR (RFC 8949) edges of the encoder's preferred serialization (§4.1, §4.2.2 "preferred
 * serialization": the shortest head that holds the argument, the shortest float that keeps the
 * value) that Appendix A does not pin down: every head-size boundary for every major type, and
 * floats checked against an independent test of what binary16 / binary32 can hold.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { CborFloat, CborTag, decodeCbor, encodeCbor } from '../../../src/lwm2m/index.js';
import { toHex } from './helpers.js';

/** The head for major type `major` and argument `n` as §3.1 lays it out: a byte, or 1, 2, 4 or 8 following bytes. */
function head(major: number, n: bigint): string {
  const m = major << 5;
  const b = (v: number) => v.toString(16).padStart(2, '0');
  if (n < 24n) return b(m | Number(n));
  if (n < 0x100n) return b(m | 24) + n.toString(16).padStart(2, '0');
  if (n < 0x10000n) return b(m | 25) + n.toString(16).padStart(4, '0');
  if (n < 0x100000000n) return b(m | 26) + n.toString(16).padStart(8, '0');
  return b(m | 27) + n.toString(16).padStart(16, '0');
}

const BOUNDARIES = [0n, 1n, 23n, 24n, 255n, 256n, 65535n, 65536n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 64n - 1n];

void test('RFC 8949 §3.1 / §4.2.1: integers get the shortest head at every size boundary (major types 0 and 1)', () => {
  for (const n of BOUNDARIES) {
    const item = n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    assert.equal(toHex(encodeCbor(item)).toLowerCase(), head(0, n), `+${n}`);
    const neg = -1n - n;
    const negItem = neg >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(neg) : neg;
    assert.equal(toHex(encodeCbor(negItem)).toLowerCase(), head(1, n), `${neg}`);
  }
});

void test('RFC 8949 §3.1: byte and text string lengths get the shortest head (23/24, 255/256, 65535/65536); text is counted in UTF-8 bytes', () => {
  for (const len of [0, 23, 24, 255, 256, 65535, 65536]) {
    const bytes = new Uint8Array(len).fill(0x61);
    assert.ok(toHex(encodeCbor(bytes)).toLowerCase().startsWith(head(2, BigInt(len))), `bytes ${len}`);
    assert.ok(toHex(encodeCbor('a'.repeat(len))).toLowerCase().startsWith(head(3, BigInt(len))), `text ${len}`);
  }
  // U+007F is one UTF-8 byte, U+0080 two, U+20AC three, U+1F600 four (RFC 3629)
  assert.equal(toHex(encodeCbor('\u007f')), '617F');
  assert.equal(toHex(encodeCbor('\u0080')), '62C280');
  assert.equal(toHex(encodeCbor('a\u20ac')), '6461E282AC');
  assert.equal(toHex(encodeCbor('\u{1f600}')), '64F09F9880');
  assert.equal(toHex(encodeCbor('é'.repeat(12))).slice(0, 4), '7818', '24 UTF-8 bytes need the 1-byte length');
  for (const s of ['', 'abc', '\u007f\u0080', 'é'.repeat(12), 'x'.repeat(30) + '€']) assert.equal(decodeCbor(encodeCbor(s)), s);
  // array and map counts and tags use the same heads (major types 4, 5, 6)
  assert.equal(toHex(encodeCbor(new Array(24).fill(0))).slice(0, 4), '9818');
  assert.equal(toHex(encodeCbor(new CborTag(24, 0))), 'D81800');
  assert.equal(toHex(encodeCbor(new CborTag(256, 0))), 'D9010000');
});

/** Whether binary16 holds `n` exactly (IEEE 754: 11-bit significand, exponents -14..15, subnormals down to 2^-24). */
function fitsHalf(n: number): boolean {
  if (Number.isNaN(n) || !Number.isFinite(n) || n === 0) return true;
  const a = Math.abs(n);
  if (a > 65504) return false;
  if (a < 2 ** -14) return Number.isInteger(a * 2 ** 24);
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  return Number.isInteger(a / 2 ** (e - 10));
}

const interesting = fc.oneof(
  fc.double(),
  fc.integer({ min: -70000, max: 70000 }).map((i) => i / 8),
  fc.integer({ min: -2048, max: 2048 }).map((i) => i * 2 ** -24),
  fc.integer({ min: -30, max: 30 }).chain((e) => fc.integer({ min: 1024, max: 4095 }).map((m) => (m / 2048) * 2 ** e)),
  fc.constantFrom(65504, 65505, 65520, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 1 + 2 ** -10, 1 + 2 ** -11, 2 ** 15, 2 ** 16, -0, 0, Infinity, -Infinity, NaN, 3.4028234663852886e38, 1e300, 2 ** -149),
);

void test('RFC 8949 §4.2.2: a float is written in the shortest of 16, 32 and 64 bits that keeps its value exactly, and reads back the same (property)', () => {
  fc.assert(
    fc.property(interesting, (n) => {
      const bytes = encodeCbor(new CborFloat(n));
      const expected = fitsHalf(n) ? 3 : Math.fround(n) === n ? 5 : 9;
      assert.equal(bytes.length, expected, `${n}: ${toHex(bytes)}`);
      assert.equal(bytes[0], expected === 3 ? 0xf9 : expected === 5 ? 0xfa : 0xfb);
      const back = decodeCbor(bytes);
      assert.ok(back instanceof CborFloat);
      assert.ok(Object.is(back.value, n), `${n} came back as ${back.value}`);
    }),
    { numRuns: 2000 },
  );
});
