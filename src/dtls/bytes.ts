/** Small big-endian byte reader/writer used by every DTLS codec. */
import { randomFillSync } from 'node:crypto';

/** Raised by decoders on malformed input; the connection turns it into decode_error or a silent drop. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

export class Reader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  get offset(): number {
    return this.pos;
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.buf.length) throw new DecodeError(`truncated: need ${n} bytes, have ${this.remaining}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  u24(): number {
    this.need(3);
    const v = (this.buf[this.pos]! << 16) | (this.buf[this.pos + 1]! << 8) | this.buf[this.pos + 2]!;
    this.pos += 3;
    return v;
  }

  /** 48-bit unsigned integer (fits exactly in a JS number). */
  u48(): number {
    const hi = this.u16();
    this.need(4);
    const lo = ((this.buf[this.pos]! << 24) >>> 0) + (this.buf[this.pos + 1]! << 16) + (this.buf[this.pos + 2]! << 8) + this.buf[this.pos + 3]!;
    this.pos += 4;
    return hi * 0x1_0000_0000 + lo;
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A vector with a 1-, 2- or 3-byte length prefix. */
  vec8(): Uint8Array {
    return this.bytes(this.u8());
  }

  vec16(): Uint8Array {
    return this.bytes(this.u16());
  }

  vec24(): Uint8Array {
    return this.bytes(this.u24());
  }

  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }

  end(): void {
    if (this.remaining !== 0) throw new DecodeError(`${this.remaining} trailing bytes`);
  }
}

/**
 * Appends big-endian fields into one growing buffer (one allocation for most messages, none per
 * field); `finish` returns exactly the bytes written.
 */
export class Writer {
  private buf: Uint8Array;
  private size = 0;

  constructor(capacity = 64) {
    this.buf = new Uint8Array(capacity);
  }

  private room(n: number): void {
    if (this.size + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.size + n));
    grown.set(this.buf.subarray(0, this.size));
    this.buf = grown;
  }

  get length(): number {
    return this.size;
  }

  u8(v: number): this {
    this.room(1);
    this.buf[this.size++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    this.room(2);
    this.buf[this.size++] = (v >>> 8) & 0xff;
    this.buf[this.size++] = v & 0xff;
    return this;
  }

  u24(v: number): this {
    this.room(3);
    this.buf[this.size++] = (v >>> 16) & 0xff;
    this.buf[this.size++] = (v >>> 8) & 0xff;
    this.buf[this.size++] = v & 0xff;
    return this;
  }

  u48(v: number): this {
    this.room(6);
    writeU48(this.buf, this.size, v);
    this.size += 6;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.size);
    this.size += b.length;
    return this;
  }

  vec8(b: Uint8Array): this {
    if (b.length > 0xff) throw new RangeError('vector too long for 8-bit length');
    return this.u8(b.length).bytes(b);
  }

  vec16(b: Uint8Array): this {
    if (b.length > 0xffff) throw new RangeError('vector too long for 16-bit length');
    return this.u16(b.length).bytes(b);
  }

  vec24(b: Uint8Array): this {
    if (b.length > 0xffffff) throw new RangeError('vector too long for 24-bit length');
    return this.u24(b.length).bytes(b);
  }

  /** The bytes written, in a buffer of exactly that size (a copy unless the estimate was exact). */
  finish(): Uint8Array {
    return this.size === this.buf.length ? this.buf : this.buf.slice(0, this.size);
  }
}

/** Writes a 48-bit unsigned integer big-endian at `offset`. */
export function writeU48(out: Uint8Array, offset: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  const lo = v >>> 0;
  out[offset] = (hi >>> 8) & 0xff;
  out[offset + 1] = hi & 0xff;
  out[offset + 2] = lo >>> 24;
  out[offset + 3] = (lo >>> 16) & 0xff;
  out[offset + 4] = (lo >>> 8) & 0xff;
  out[offset + 5] = lo & 0xff;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Equality in time independent of where the bytes differ. Unlike crypto.timingSafeEqual it does not
 * make V8 move a small long-lived array (a CID, a session ID) out of the heap, nor need a Buffer.
 */
export function equalConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return equalConstantTimeAt(a, 0, b);
}

/** equalConstantTime of d[at…at+expected.length) and `expected` (d must be long enough). */
export function equalConstantTimeAt(d: Uint8Array, at: number, expected: Uint8Array): boolean {
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= d[at + i]! ^ expected[i]!;
  return diff === 0;
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string): Uint8Array {
  const clean = s.replace(/[\s:]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error('invalid hex');
  return new Uint8Array(Buffer.from(clean, 'hex'));
}

export const utf8 = new TextEncoder();
export const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

const RANDOM_POOL_SIZE = 4096;
let randomPool = new Uint8Array(0);
let randomPoolUsed = 0;

/**
 * Cryptographically strong random bytes (randoms, session IDs, CIDs) in a buffer of their own,
 * drawn from a pool refilled 4 KiB at a time: one system call serves dozens of handshakes. The
 * bytes handed out are wiped from the pool.
 */
export function randomBytesPooled(n: number): Uint8Array {
  if (n > RANDOM_POOL_SIZE / 8) return randomFillSync(new Uint8Array(n));
  if (randomPoolUsed + n > randomPool.length) {
    randomPool = randomFillSync(new Uint8Array(RANDOM_POOL_SIZE));
    randomPoolUsed = 0;
  }
  const out = randomPool.slice(randomPoolUsed, randomPoolUsed + n);
  randomPool.fill(0, randomPoolUsed, randomPoolUsed + n);
  randomPoolUsed += n;
  return out;
}
