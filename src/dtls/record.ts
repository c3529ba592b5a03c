/** DTLS record layer framing (RFC 6347 §4.1) and the anti-replay window (§4.1.2.6). */
import { DecodeError, Reader, writeU48 } from './bytes.js';
import { ContentType, RECORD_HEADER_LENGTH } from './constants.js';

export interface DtlsRecord {
  type: number;
  version: number;
  epoch: number;
  /** 48-bit sequence number. */
  sequence: number;
  /** Connection ID (RFC 9146), present only on tls12_cid records. */
  cid?: Uint8Array;
  fragment: Uint8Array;
}

export const MAX_SEQUENCE = 2 ** 48 - 1;

export function encodeRecord(r: DtlsRecord): Uint8Array {
  const cidLength = r.cid?.length ?? 0;
  const out = new Uint8Array(RECORD_HEADER_LENGTH + cidLength + r.fragment.length);
  const body = writeRecordHeader(out, 0, r.type, r.version, r.epoch, r.sequence, r.cid, r.fragment.length);
  out.set(r.fragment, body);
  return out;
}

/**
 * Writes a record header (with the CID of a tls12_cid record) at `offset`; returns where the
 * fragment goes. The length field is `fragmentLength`.
 */
export function writeRecordHeader(out: Uint8Array, offset: number, type: number, version: number, epoch: number, sequence: number, cid: Uint8Array | undefined, fragmentLength: number): number {
  if (fragmentLength > 0xffff) throw new RangeError('record fragment too long');
  out[offset] = type;
  out[offset + 1] = version >>> 8;
  out[offset + 2] = version & 0xff;
  out[offset + 3] = (epoch >>> 8) & 0xff;
  out[offset + 4] = epoch & 0xff;
  writeU48(out, offset + 5, sequence);
  let at = offset + 11;
  if (cid) {
    out.set(cid, at);
    at += cid.length;
  }
  out[at] = fragmentLength >>> 8;
  out[at + 1] = fragmentLength & 0xff;
  return at + 2;
}

/**
 * Splits one datagram into records. A datagram may carry several records (§4.1.1);
 * a truncated trailing record ends parsing (the good records before it are kept).
 */
export function decodeRecords(datagram: Uint8Array, cidLength = 0): { records: DtlsRecord[]; malformed: boolean } {
  const records: DtlsRecord[] = [];
  const r = new Reader(datagram);
  try {
    while (r.remaining > 0) {
      if (r.remaining < RECORD_HEADER_LENGTH) throw new DecodeError('short record header');
      const type = r.u8();
      const version = r.u16();
      const epoch = r.u16();
      const sequence = r.u48();
      if (type === ContentType.tls12_cid) {
        // The CID length is not on the wire: only the receiver that chose the CID can parse it (RFC 9146 §4).
        if (cidLength === 0) throw new DecodeError('tls12_cid record without a negotiated CID');
        const cid = r.bytes(cidLength);
        records.push({ type, version, epoch, sequence, cid, fragment: r.vec16() });
        continue;
      }
      const fragment = r.vec16();
      records.push({ type, version, epoch, sequence, fragment });
    }
    return { records, malformed: false };
  } catch (e) {
    if (e instanceof DecodeError) return { records, malformed: true };
    throw e;
  }
}

/** The 8-byte seq_num used in the AEAD additional data: epoch(2) || sequence(6). */
export function epochAndSequence(epoch: number, sequence: number): Uint8Array {
  const out = new Uint8Array(8);
  writeEpochAndSequence(out, 0, epoch, sequence);
  return out;
}

export function writeEpochAndSequence(out: Uint8Array, offset: number, epoch: number, sequence: number): void {
  out[offset] = (epoch >>> 8) & 0xff;
  out[offset + 1] = epoch & 0xff;
  writeU48(out, offset + 2, sequence);
}

/**
 * Sliding anti-replay window (RFC 6347 §4.1.2.6, the algorithm of RFC 4303 §3.4.3), up to 64
 * records wide, kept in two 32-bit words so an update allocates nothing.
 * `check` is called before authentication and `update` only after the record verified.
 */
export class ReplayWindow {
  /** Highest sequence number accepted so far, -1 when none. */
  private top = -1;
  /** Bit i set = sequence (top - i) was received: bits 0–31 in `low`, 32–63 in `high`. */
  private low = 0;
  private high = 0;

  constructor(readonly size = 64) {
    if (!Number.isInteger(size) || size < 1 || size > 64) throw new RangeError('replay window size out of range');
  }

  private bit(offset: number): number {
    return offset < 32 ? (this.low >>> offset) & 1 : (this.high >>> (offset - 32)) & 1;
  }

  /** True when `seq` is new and inside (or ahead of) the window. */
  check(seq: number): boolean {
    if (!Number.isInteger(seq) || seq < 0 || seq > MAX_SEQUENCE) return false;
    if (seq > this.top) return true;
    const offset = this.top - seq;
    if (offset >= this.size) return false;
    return this.bit(offset) === 0;
  }

  /** Marks `seq` as received (call after a successful check and authentication). */
  update(seq: number): void {
    if (seq > this.top) {
      const shift = this.top < 0 ? this.size : seq - this.top;
      if (shift >= 64) {
        this.high = 0;
        this.low = 0;
      } else if (shift >= 32) {
        this.high = (this.low << (shift - 32)) >>> 0;
        this.low = 0;
      } else {
        this.high = ((this.high << shift) | (this.low >>> (32 - shift))) >>> 0;
        this.low = (this.low << shift) >>> 0;
      }
      this.low = (this.low | 1) >>> 0;
      this.top = seq;
      if (this.size < 64) this.trim();
    } else {
      const offset = this.top - seq;
      if (offset >= this.size) return;
      if (offset < 32) this.low = (this.low | (1 << offset)) >>> 0;
      else this.high = (this.high | (1 << (offset - 32))) >>> 0;
    }
  }

  /** Drops bits beyond `size` (only a window narrower than 64 has any). */
  private trim(): void {
    if (this.size <= 32) {
      this.high = 0;
      if (this.size < 32) this.low = (this.low & ((1 << this.size) - 1)) >>> 0;
    } else if (this.size < 64) {
      this.high = (this.high & ((1 << (this.size - 32)) - 1)) >>> 0;
    }
  }

  get highest(): number {
    return this.top;
  }
}
