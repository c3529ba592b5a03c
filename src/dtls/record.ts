/** DTLS record layer framing (RFC 6347 §4.1) and the anti-replay window (§4.1.2.6). */
import { DecodeError, Reader, Writer } from './bytes.js';
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
  const w = new Writer().u8(r.type).u16(r.version).u16(r.epoch).u48(r.sequence);
  if (r.cid) w.bytes(r.cid);
  return w.vec16(r.fragment).finish();
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
  return new Writer().u16(epoch).u48(sequence).finish();
}

/**
 * Sliding anti-replay window (RFC 6347 §4.1.2.6, the algorithm of RFC 4303 §3.4.3).
 * `check` is called before authentication and `update` only after the record verified.
 */
export class ReplayWindow {
  /** Highest sequence number accepted so far, -1 when none. */
  private top = -1;
  /** Bit i set = sequence (top - i) was received. Bit 0 is `top` itself. */
  private bits = 0n;

  constructor(readonly size = 64) {
    if (size < 1 || size > 1024) throw new RangeError('replay window size out of range');
  }

  /** True when `seq` is new and inside (or ahead of) the window. */
  check(seq: number): boolean {
    if (!Number.isInteger(seq) || seq < 0 || seq > MAX_SEQUENCE) return false;
    if (seq > this.top) return true;
    const offset = this.top - seq;
    if (offset >= this.size) return false;
    return ((this.bits >> BigInt(offset)) & 1n) === 0n;
  }

  /** Marks `seq` as received (call after a successful check and authentication). */
  update(seq: number): void {
    if (seq > this.top) {
      const shift = this.top < 0 ? this.size : seq - this.top;
      this.bits = shift >= this.size ? 1n : ((this.bits << BigInt(shift)) | 1n) & ((1n << BigInt(this.size)) - 1n);
      this.top = seq;
    } else {
      const offset = this.top - seq;
      if (offset < this.size) this.bits |= 1n << BigInt(offset);
    }
  }

  get highest(): number {
    return this.top;
  }
}
