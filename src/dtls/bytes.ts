/** Small big-endian byte reader/writer used by every DTLS codec. */

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

export class Writer {
  private chunks: number[] = [];
  private parts: Uint8Array[] = [];
  private size = 0;

  private flushNumbers(): void {
    if (this.chunks.length > 0) {
      this.parts.push(Uint8Array.from(this.chunks));
      this.chunks = [];
    }
  }

  get length(): number {
    return this.size;
  }

  u8(v: number): this {
    this.chunks.push(v & 0xff);
    this.size += 1;
    return this;
  }

  u16(v: number): this {
    return this.u8(v >>> 8).u8(v);
  }

  u24(v: number): this {
    return this.u8(v >>> 16).u8(v >>> 8).u8(v);
  }

  u48(v: number): this {
    const hi = Math.floor(v / 0x1_0000_0000);
    const lo = v >>> 0;
    return this.u16(hi).u8(lo >>> 24).u8(lo >>> 16).u8(lo >>> 8).u8(lo);
  }

  bytes(b: Uint8Array): this {
    this.flushNumbers();
    this.parts.push(b);
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

  finish(): Uint8Array {
    this.flushNumbers();
    const out = new Uint8Array(this.size);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
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
