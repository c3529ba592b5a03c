/**
 * A small, strict CBOR (RFC 8949) codec for the LwM2M content formats (SenML CBOR,
 * LwM2M CBOR). Written here rather than taken from a library because the formats need
 * exactly what general CBOR libraries blur or do not bound (see docs/lwm2m.md):
 * integers and floats stay distinct (1 vs 1.0), 64-bit integers come back as bigint,
 * maps keep non-string keys in order, and decoding untrusted bytes is bounded in depth,
 * item count and allocation, failing only with Lwm2mCodecError (4.00).
 */
import { badRequest, tooLarge, type CodecLimits, DEFAULT_LIMITS } from '../errors.js';

/** A CBOR floating-point number (major type 7), kept apart from integers. */
export class CborFloat {
  constructor(readonly value: number) {}
}

/** A map, as ordered key/value pairs (keys may be any CBOR item). */
export class CborMap {
  constructor(readonly entries: Array<readonly [CborItem, CborItem]>) {}
  get(key: string | number): CborItem | undefined {
    for (const [k, v] of this.entries) if (k === key) return v;
    return undefined;
  }
}

export class CborTag {
  constructor(
    readonly tag: number | bigint,
    readonly value: CborItem,
  ) {}
}

/** Simple values other than false/true/null/undefined. */
export class CborSimple {
  constructor(readonly value: number) {}
}

/** Integers are numbers when safe, bigints otherwise; floats are CborFloat. */
export type CborItem =
  | number
  | bigint
  | CborFloat
  | string
  | Uint8Array
  | boolean
  | null
  | undefined
  | CborItem[]
  | CborMap
  | CborTag
  | CborSimple;

// ---- encoder -----------------------------------------------------------------

/**
 * Writes CBOR items one after another (preferred serialization: shortest heads and floats):
 * for encoders that emit a known structure (SenML) without building CborMap/array trees first.
 */
export class CborWriter {
  #buf = new Uint8Array(256);
  #len = 0;
  #ensure(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
  /** The first `n` bytes of the scratch buffer. */
  #fromScratch(n: number): void {
    this.#ensure(n);
    for (let i = 0; i < n; i++) this.#buf[this.#len++] = scratchBytes[i]!;
  }
  byte(b: number): void {
    this.#ensure(1);
    this.#buf[this.#len++] = b;
  }
  bytes(b: Uint8Array): void {
    this.#ensure(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }
  /** A head: major type and argument. */
  head(major: number, arg: number | bigint): void {
    const m = major << 5;
    if (typeof arg === 'number' && arg < 24) return this.byte(m | arg);
    if (typeof arg === 'number' && arg < 0x100) {
      this.byte(m | 24);
      return this.byte(arg);
    }
    if (typeof arg === 'number' && arg < 0x10000) {
      this.byte(m | 25);
      this.byte(arg >> 8);
      return this.byte(arg & 0xff);
    }
    if (typeof arg === 'number' && arg < 0x100000000) {
      this.byte(m | 26);
      scratch.setUint32(0, arg);
      return this.#fromScratch(4);
    }
    this.byte(m | 27);
    scratch.setBigUint64(0, BigInt(arg));
    this.#fromScratch(8);
  }
  /** A text string; ASCII goes in as it is, without being encoded into a new array first. */
  text(s: string): void {
    for (let i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) >= 0x80) {
        const b = utf8.encode(s);
        this.head(3, b.length);
        return this.bytes(b);
      }
    }
    this.head(3, s.length);
    this.#ensure(s.length);
    for (let i = 0; i < s.length; i++) this.#buf[this.#len++] = s.charCodeAt(i);
  }
  /** A floating-point number in the shortest size that keeps its value. */
  float(n: number): void {
    if (fitsHalf(n)) {
      const h = numberToHalf(n);
      this.byte(0xf9);
      this.byte(h >> 8);
      return this.byte(h & 0xff);
    }
    if (Math.fround(n) === n) {
      scratch.setFloat32(0, n);
      this.byte(0xfa);
      return this.#fromScratch(4);
    }
    scratch.setFloat64(0, n);
    this.byte(0xfb);
    this.#fromScratch(8);
  }
  /** Any item, containers included. */
  item(item: CborItem): void {
    writeItem(this, item, 0);
  }
  result(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** 8 bytes for the wider heads and floats, copied out at once (encoding is synchronous). */
const scratchBytes = new Uint8Array(8);
const scratch = new DataView(scratchBytes.buffer);

/** True when `n` survives a round trip through IEEE 754 binary16. */
function fitsHalf(n: number): boolean {
  if (Number.isNaN(n) || !Number.isFinite(n)) return true;
  return halfToNumber(numberToHalf(n)) === n && !(n === 0 && Object.is(n, -0) !== Object.is(halfToNumber(numberToHalf(n)), -0));
}

function numberToHalf(n: number): number {
  // only used for values that are exactly representable; returns the 16-bit pattern
  if (Number.isNaN(n)) return 0x7e00;
  const sign = n < 0 || Object.is(n, -0) ? 0x8000 : 0;
  const a = Math.abs(n);
  if (a === Infinity) return sign | 0x7c00;
  if (a === 0) return sign;
  if (a < 2 ** -14) {
    const mant = Math.round(a / 2 ** -24);
    return mant >= 0x400 ? sign | 0x400 : sign | mant;
  }
  let exp = Math.floor(Math.log2(a));
  if (2 ** exp > a) exp--;
  if (2 ** (exp + 1) <= a) exp++;
  if (exp > 15) return sign | 0x7c00;
  const mant = Math.round((a / 2 ** exp - 1) * 1024);
  if (mant === 1024) return exp + 1 > 15 ? sign | 0x7c00 : sign | ((exp + 16) << 10);
  return sign | ((exp + 15) << 10) | mant;
}

function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const utf8 = new TextEncoder();

function writeItem(w: CborWriter, item: CborItem, depth: number): void {
  if (depth > 64) throw badRequest('CBOR value nested too deeply to encode');
  if (typeof item === 'number') {
    if (!Number.isInteger(item)) return w.float(item);
    if (!Number.isSafeInteger(item)) return writeItem(w, BigInt(item), depth);
    return item >= 0 ? w.head(0, item) : w.head(1, -1 - item);
  }
  if (typeof item === 'bigint') {
    if (item >= 0n) {
      if (item > 0xffffffffffffffffn) throw badRequest('integer beyond 64 bits');
      return w.head(0, item <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(item) : item);
    }
    const arg = -1n - item;
    if (arg > 0xffffffffffffffffn) throw badRequest('integer beyond 64 bits');
    return w.head(1, arg <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(arg) : arg);
  }
  if (item instanceof CborFloat) return w.float(item.value);
  if (typeof item === 'string') return w.text(item);
  if (item instanceof Uint8Array) {
    w.head(2, item.length);
    return w.bytes(item);
  }
  if (item === false) return w.byte(0xf4);
  if (item === true) return w.byte(0xf5);
  if (item === null) return w.byte(0xf6);
  if (item === undefined) return w.byte(0xf7);
  if (Array.isArray(item)) {
    w.head(4, item.length);
    for (let i = 0; i < item.length; i++) writeItem(w, item[i], depth + 1);
    return;
  }
  if (item instanceof CborMap) {
    const entries = item.entries;
    w.head(5, entries.length);
    for (let i = 0; i < entries.length; i++) {
      writeItem(w, entries[i]![0], depth + 1);
      writeItem(w, entries[i]![1], depth + 1);
    }
    return;
  }
  if (item instanceof CborTag) {
    w.head(6, item.tag);
    return writeItem(w, item.value, depth + 1);
  }
  if (item instanceof CborSimple) {
    if (item.value < 24) return w.byte(0xe0 | item.value);
    w.byte(0xf8);
    return w.byte(item.value);
  }
  throw badRequest('value cannot be encoded as CBOR');
}

/** Encodes one item with preferred (shortest) argument and float sizes. */
export function encodeCbor(item: CborItem): Uint8Array {
  const w = new CborWriter();
  writeItem(w, item, 0);
  return w.result();
}

// ---- decoder -----------------------------------------------------------------

const BREAK = Symbol('break');
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

class Reader {
  pos = 0;
  items = 0;
  readonly view: DataView;
  /** The bytes as a Buffer, for ASCII text strings; made on the first one. */
  private latin1: Buffer | undefined;
  constructor(
    readonly buf: Uint8Array,
    readonly limits: CodecLimits,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  need(n: number): void {
    if (n > this.buf.length - this.pos) throw badRequest(`CBOR truncated at offset ${this.pos}`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++] as number;
  }
  /** The text string of `n` bytes at pos (not consumed); `start` is its head's offset, for errors. */
  text(n: number, start: number): string {
    const end = this.pos + n;
    for (let i = this.pos; i < end; i++) {
      if ((this.buf[i] as number) >= 0x80) return decodeUtf8(this.buf.subarray(this.pos, end), start);
    }
    // ASCII (paths, names, versions: nearly every string): straight from the bytes, no copy of them first.
    this.latin1 ??= Buffer.from(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    return this.latin1.toString('latin1', this.pos, end);
  }
  count(): void {
    if (++this.items > this.limits.maxEntries) throw badRequest('CBOR payload has too many items');
  }
  /** Reads the argument of a head; returns undefined for indefinite length (ai 31). */
  arg(ai: number): number | bigint | undefined {
    if (ai < 24) return ai;
    switch (ai) {
      case 24:
        return this.u8();
      case 25: {
        this.need(2);
        const v = this.view.getUint16(this.pos);
        this.pos += 2;
        return v;
      }
      case 26: {
        this.need(4);
        const v = this.view.getUint32(this.pos);
        this.pos += 4;
        return v;
      }
      case 27: {
        this.need(8);
        const v = this.view.getBigUint64(this.pos);
        this.pos += 8;
        return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      case 31:
        return undefined;
      default:
        throw badRequest(`CBOR reserved additional information ${ai} at offset ${this.pos - 1}`);
    }
  }
  length(ai: number, unitBytes: number): number | undefined {
    const n = this.arg(ai);
    if (n === undefined) return undefined;
    // every element needs at least `unitBytes` bytes: bound before allocating
    if (typeof n === 'bigint' || n * unitBytes > this.buf.length - this.pos) {
      throw badRequest(`CBOR length ${String(n)} exceeds the remaining payload at offset ${this.pos}`);
    }
    return n;
  }
}

function readItem(r: Reader, depth: number, allowBreak: boolean): CborItem | typeof BREAK {
  if (depth > r.limits.maxDepth) throw badRequest(`CBOR nesting deeper than ${r.limits.maxDepth}`);
  r.count();
  const start = r.pos;
  const ib = r.u8();
  const major = ib >> 5;
  const ai = ib & 0x1f;
  switch (major) {
    case 0: {
      const v = r.arg(ai);
      if (v === undefined) throw badRequest(`CBOR indefinite integer at offset ${start}`);
      return v;
    }
    case 1: {
      const v = r.arg(ai);
      if (v === undefined) throw badRequest(`CBOR indefinite integer at offset ${start}`);
      // -1 - v: in doubles while it stays a safe integer (SenML labels, most values), else in bigints.
      if (typeof v === 'number' && v < Number.MAX_SAFE_INTEGER) return -1 - v;
      const n = -1n - BigInt(v);
      return n >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(n) : n;
    }
    case 2:
    case 3: {
      const n = r.length(ai, 1);
      let bytes: Uint8Array;
      if (n === undefined) {
        const chunks: Uint8Array[] = [];
        for (;;) {
          r.need(1);
          if (r.buf[r.pos] === 0xff) {
            r.pos++;
            break;
          }
          const cs = r.pos;
          const cb = r.u8();
          if (cb >> 5 !== major || (cb & 0x1f) === 31) throw badRequest(`CBOR bad chunk in indefinite string at offset ${cs}`);
          r.count();
          const cl = r.length(cb & 0x1f, 1) as number;
          chunks.push(r.buf.subarray(r.pos, r.pos + cl));
          r.pos += cl;
        }
        bytes = Buffer.concat(chunks);
        if (major === 3) {
          // each chunk must be valid UTF-8 on its own
          for (const c of chunks) decodeUtf8(c, start);
        }
      } else if (major === 3) {
        const text = r.text(n, start);
        r.pos += n;
        return text;
      } else {
        bytes = r.buf.subarray(r.pos, r.pos + n);
        r.pos += n;
      }
      return major === 2 ? new Uint8Array(bytes) : decodeUtf8(bytes, start);
    }
    case 4: {
      const n = r.length(ai, 1);
      if (n === undefined) {
        const out: CborItem[] = [];
        for (;;) {
          const x = readItem(r, depth + 1, true);
          if (x === BREAK) break;
          out.push(x);
        }
        return out;
      }
      // Sized up front (n is bounded by the bytes left): growing by push would over-reserve.
      const out = new Array<CborItem>(n);
      for (let i = 0; i < n; i++) out[i] = readItem(r, depth + 1, false) as CborItem;
      return out;
    }
    case 5: {
      const n = r.length(ai, 2);
      if (n === undefined) {
        const entries: Array<readonly [CborItem, CborItem]> = [];
        for (;;) {
          const k = readItem(r, depth + 1, true);
          if (k === BREAK) break;
          entries.push([k, readItem(r, depth + 1, false) as CborItem]);
        }
        return new CborMap(entries);
      }
      const entries = new Array<readonly [CborItem, CborItem]>(n);
      for (let i = 0; i < n; i++) {
        const k = readItem(r, depth + 1, false) as CborItem;
        entries[i] = [k, readItem(r, depth + 1, false) as CborItem];
      }
      return new CborMap(entries);
    }
    case 6: {
      const tag = r.arg(ai);
      if (tag === undefined) throw badRequest(`CBOR indefinite tag at offset ${start}`);
      return new CborTag(tag, readItem(r, depth + 1, false) as CborItem);
    }
    default: {
      switch (ai) {
        case 20:
          return false;
        case 21:
          return true;
        case 22:
          return null;
        case 23:
          return undefined;
        case 24: {
          const v = r.u8();
          if (v < 32) throw badRequest(`CBOR invalid simple value encoding at offset ${start}`);
          return new CborSimple(v);
        }
        case 25: {
          r.need(2);
          const h = r.view.getUint16(r.pos);
          r.pos += 2;
          return new CborFloat(halfToNumber(h));
        }
        case 26: {
          r.need(4);
          const f = r.view.getFloat32(r.pos);
          r.pos += 4;
          return new CborFloat(f);
        }
        case 27: {
          r.need(8);
          const f = r.view.getFloat64(r.pos);
          r.pos += 8;
          return new CborFloat(f);
        }
        case 31:
          if (!allowBreak) throw badRequest(`CBOR unexpected break at offset ${start}`);
          return BREAK;
        default:
          if (ai < 20) return new CborSimple(ai);
          throw badRequest(`CBOR reserved simple value ${ai} at offset ${start}`);
      }
    }
  }
}

function decodeUtf8(bytes: Uint8Array, offset: number): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw badRequest(`CBOR text string at offset ${offset} is not valid UTF-8`);
  }
}

/** Decodes exactly one CBOR item; trailing bytes, truncation and excess are 4.00. */
export function decodeCbor(bytes: Uint8Array, limits: CodecLimits = DEFAULT_LIMITS): CborItem {
  if (bytes.length > limits.maxPayloadBytes) throw tooLarge(`payload larger than ${limits.maxPayloadBytes} bytes`);
  if (bytes.length === 0) throw badRequest('empty CBOR payload');
  const r = new Reader(bytes, limits);
  const item = readItem(r, 0, false) as CborItem;
  if (r.pos !== bytes.length) throw badRequest(`${bytes.length - r.pos} trailing bytes after CBOR item`);
  return item;
}
