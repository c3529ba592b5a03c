/**
 * HMAC-SHA256 (RFC 2104, FIPS 180-4) in JavaScript, for the TLS PRF: P_SHA256 runs a dozen short
 * MACs per handshake, and each node:crypto HMAC costs a native object, a digest Buffer and their
 * garbage — several times the hashing itself. Here a MAC is three or four compression rounds on
 * preallocated scratch, starting from the key's inner and outer states computed once.
 * Only for short PRF inputs; everything else hashes with node:crypto.
 */
import { createHash } from 'node:crypto';

/** Round constants and initial state: fractional parts of cube / square roots of the first primes (FIPS 180-4 §4.2.2, §5.3.3). */
const K = new Int32Array(64);
const IV = new Int32Array(8);
{
  const primes: number[] = [];
  for (let n = 2; primes.length < 64; n++) if (primes.every((p) => n % p !== 0)) primes.push(n);
  const frac32 = (x: number): number => Math.floor((x - Math.floor(x)) * 0x1_0000_0000) | 0;
  primes.forEach((p, i) => {
    K[i] = frac32(Math.cbrt(p));
    if (i < 8) IV[i] = frac32(Math.sqrt(p));
  });
}

const BLOCK = 64;
const W = new Int32Array(64);
const block = new Uint8Array(BLOCK);
const state = new Int32Array(8);

/** One compression round over the 64 bytes of `b` from `off`. */
function compress(h: Int32Array, b: Uint8Array, off = 0): void {
  for (let t = 0; t < 16; t++) {
    const i = off + 4 * t;
    W[t] = (b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!;
  }
  compressW(h);
}

/** One compression round over the 16 big-endian words of words[at…at+16). */
function compressWords(h: Int32Array, words: Int32Array, at: number): void {
  for (let t = 0; t < 16; t++) W[t] = words[at + t]!;
  compressW(h);
}

/** One compression round over the block already loaded into W[0…16). */
function compressW(h: Int32Array): void {
  for (let t = 16; t < 64; t++) {
    const x = W[t - 15]!;
    const y = W[t - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    W[t] = (W[t - 16]! + s0 + W[t - 7]! + s1) | 0;
  }
  let a = h[0]!;
  let bb = h[1]!;
  let c = h[2]!;
  let d = h[3]!;
  let e = h[4]!;
  let f = h[5]!;
  let g = h[6]!;
  let hh = h[7]!;
  for (let t = 0; t < 64; t++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (hh + s1 + ch + K[t]! + W[t]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & bb) ^ (a & c) ^ (bb & c);
    const t2 = (s0 + maj) | 0;
    hh = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = bb;
    bb = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0]! + a) | 0;
  h[1] = (h[1]! + bb) | 0;
  h[2] = (h[2]! + c) | 0;
  h[3] = (h[3]! + d) | 0;
  h[4] = (h[4]! + e) | 0;
  h[5] = (h[5]! + f) | 0;
  h[6] = (h[6]! + g) | 0;
  h[7] = (h[7]! + hh) | 0;
}

let fill = 0;

/** Adds src[start…end) to the block being filled, compressing each full block into `h`. */
function absorb(h: Int32Array, src: Uint8Array, start = 0, end = src.length): void {
  let i = start;
  while (i < end) {
    if (fill === 0 && end - i >= BLOCK) {
      compress(h, src, i); // a whole block straight from the input
      i += BLOCK;
      continue;
    }
    block[fill++] = src[i++]!;
    if (fill === BLOCK) {
      compress(h, block);
      fill = 0;
    }
  }
}

/**
 * Continues the hash in `h` (which has already absorbed `before` bytes, a multiple of 64) over
 * a ‖ b, pads, and writes the 32-byte digest to `out` (which may be `a`: it is read first).
 */
function finishHash(h: Int32Array, before: number, a: Uint8Array, b: Uint8Array | undefined, out: Uint8Array): void {
  fill = 0;
  absorb(h, a);
  if (b) absorb(h, b);
  pad(h, before + a.length + (b?.length ?? 0), out);
}

/** Pads the block being filled for a message of `total` bytes, compresses, writes the digest to `out`. */
function pad(h: Int32Array, total: number, out: Uint8Array): void {
  const bits = total * 8;
  block[fill++] = 0x80;
  if (fill > BLOCK - 8) {
    block.fill(0, fill);
    compress(h, block);
    fill = 0;
  }
  block.fill(0, fill, BLOCK - 8);
  const high = Math.floor(bits / 0x1_0000_0000);
  block[56] = high >>> 24;
  block[57] = (high >>> 16) & 0xff;
  block[58] = (high >>> 8) & 0xff;
  block[59] = high & 0xff;
  block[60] = bits >>> 24;
  block[61] = (bits >>> 16) & 0xff;
  block[62] = (bits >>> 8) & 0xff;
  block[63] = bits & 0xff;
  compress(h, block);
  for (let i = 0; i < 8; i++) {
    const v = h[i]!;
    out[4 * i] = v >>> 24;
    out[4 * i + 1] = (v >>> 16) & 0xff;
    out[4 * i + 2] = (v >>> 8) & 0xff;
    out[4 * i + 3] = v & 0xff;
  }
}

/** SHA-256 of the concatenation of `parts` (without concatenating them). */
export function sha256Parts(parts: readonly Uint8Array[]): Uint8Array {
  state.set(IV);
  fill = 0;
  let total = 0;
  for (const p of parts) {
    absorb(state, p);
    total += p.length;
  }
  const out = new Uint8Array(32);
  pad(state, total, out);
  state.fill(0);
  block.fill(0);
  return out;
}

/**
 * A running SHA-256 (the handshake transcript): fed piece by piece, and read at any point without
 * ending it, so a handshake keeps about a hundred bytes of state instead of a copy of every message.
 */
export class Sha256 {
  /** The chaining state (words 0–7) and the block being filled, big-endian words (8–23): one array. */
  private readonly words = new Int32Array(8 + BLOCK / 4);
  /** Bytes in the block being filled. */
  private pendingLength = 0;
  private total = 0;

  constructor() {
    this.words.set(IV);
  }

  /** Adds data[start…end). */
  update(data: Uint8Array, start = 0, end = data.length): this {
    const w = this.words;
    let i = start;
    while (i < end) {
      if (this.pendingLength === 0 && end - i >= BLOCK) {
        compress(w, data, i); // a whole block straight from the input
        i += BLOCK;
        continue;
      }
      const n = this.pendingLength++;
      const byte = data[i++]!;
      const at = 8 + (n >>> 2);
      w[at] = (n & 3) === 0 ? byte << 24 : w[at]! | (byte << (24 - 8 * (n & 3)));
      if (this.pendingLength === BLOCK) {
        compressWords(w, w, 8);
        this.pendingLength = 0;
      }
    }
    this.total += end - start;
    return this;
  }

  /** Bytes absorbed so far. */
  get length(): number {
    return this.total;
  }

  /** The digest of everything so far, into `out`; the running hash goes on unchanged. */
  digest(out: Uint8Array = new Uint8Array(32)): Uint8Array {
    const w = this.words;
    for (let i = 0; i < 8; i++) state[i] = w[i]!;
    for (let n = 0; n < this.pendingLength; n++) block[n] = (w[8 + (n >>> 2)]! >>> (24 - 8 * (n & 3))) & 0xff;
    fill = this.pendingLength;
    pad(state, this.total, out);
    state.fill(0);
    block.fill(0);
    return out;
  }
}

/** The state after the first block of an HMAC key padded with `pad` (RFC 2104), into `target`. */
function keyedState(target: Int32Array, key: Uint8Array, pad: number): void {
  for (let i = 0; i < BLOCK; i++) block[i] = (key[i] ?? 0) ^ pad;
  target.set(IV);
  compress(target, block);
}

/** HMAC-SHA256 with one key: the states after the padded inner and outer key blocks are kept. */
export class HmacSha256 {
  private readonly inner = new Int32Array(8);
  private readonly outer = new Int32Array(8);

  constructor(key: Uint8Array) {
    const k = key.length > BLOCK ? createHash('sha256').update(key).digest() : key;
    keyedState(this.inner, k, 0x36);
    keyedState(this.outer, k, 0x5c);
    block.fill(0);
  }

  private streamed = 0;

  /**
   * Starts a MAC fed piece by piece with `update`, ended by `digest`. The scratch state is shared
   * by the module: one stream at a time, start to end without yielding.
   */
  begin(): this {
    state.set(this.inner);
    fill = 0;
    this.streamed = BLOCK;
    return this;
  }

  /** Adds data[start…end). */
  update(data: Uint8Array, start = 0, end = data.length): this {
    absorb(state, data, start, end);
    this.streamed += end - start;
    return this;
  }

  digest(out: Uint8Array = new Uint8Array(32)): Uint8Array {
    pad(state, this.streamed, out);
    state.set(this.outer);
    finishHash(state, BLOCK, out, undefined, out);
    state.fill(0);
    block.fill(0);
    return out;
  }

  /** HMAC over a ‖ b (b optional) into `out` (32 bytes; a fresh buffer when not given). */
  mac(a: Uint8Array, b?: Uint8Array, out: Uint8Array = new Uint8Array(32)): Uint8Array {
    state.set(this.inner);
    finishHash(state, BLOCK, a, b, out);
    state.set(this.outer);
    finishHash(state, BLOCK, out, undefined, out);
    state.fill(0);
    block.fill(0);
    return out;
  }
}
