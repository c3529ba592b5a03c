/** Handshake message framing, fragmentation and reassembly (RFC 6347 §4.2.2, §4.2.3). */
import { DecodeError, Reader } from './bytes.js';
import { HANDSHAKE_HEADER_LENGTH } from './constants.js';

export interface HandshakeFragment {
  msgType: number;
  /** Total length of the message body. */
  length: number;
  messageSeq: number;
  fragmentOffset: number;
  body: Uint8Array;
}

export interface HandshakeMessage {
  msgType: number;
  messageSeq: number;
  body: Uint8Array;
}

export function encodeFragment(f: HandshakeFragment): Uint8Array {
  const out = new Uint8Array(HANDSHAKE_HEADER_LENGTH + f.body.length);
  writeHandshakeHeader(out, 0, f.msgType, f.length, f.messageSeq, f.fragmentOffset, f.body.length);
  out.set(f.body, HANDSHAKE_HEADER_LENGTH);
  return out;
}

/** Writes the 12-byte header of a handshake fragment at `offset` (RFC 6347 §4.2.2). */
export function writeHandshakeHeader(out: Uint8Array, offset: number, msgType: number, length: number, messageSeq: number, fragmentOffset: number, fragmentLength: number): void {
  if (length > 0xffffff || fragmentLength > 0xffffff) throw new RangeError('handshake message too long');
  out[offset] = msgType;
  writeU24(out, offset + 1, length);
  out[offset + 4] = (messageSeq >>> 8) & 0xff;
  out[offset + 5] = messageSeq & 0xff;
  writeU24(out, offset + 6, fragmentOffset);
  writeU24(out, offset + 9, fragmentLength);
}

function writeU24(out: Uint8Array, offset: number, v: number): void {
  out[offset] = (v >>> 16) & 0xff;
  out[offset + 1] = (v >>> 8) & 0xff;
  out[offset + 2] = v & 0xff;
}

/** The message as it enters the transcript: a single fragment covering the whole body (§4.2.6). */
export function encodeWholeMessage(m: HandshakeMessage): Uint8Array {
  return encodeFragment({ msgType: m.msgType, length: m.body.length, messageSeq: m.messageSeq, fragmentOffset: 0, body: m.body });
}

/** Parses every handshake fragment in one record's plaintext. Throws DecodeError on malformed input. */
export function decodeFragments(plaintext: Uint8Array): HandshakeFragment[] {
  const r = new Reader(plaintext);
  const out: HandshakeFragment[] = [];
  while (r.remaining > 0) {
    if (r.remaining < HANDSHAKE_HEADER_LENGTH) throw new DecodeError('short handshake header');
    const msgType = r.u8();
    const length = r.u24();
    const messageSeq = r.u16();
    const fragmentOffset = r.u24();
    const body = r.vec24();
    if (fragmentOffset + body.length > length) throw new DecodeError('fragment beyond message end');
    out.push({ msgType, length, messageSeq, fragmentOffset, body });
  }
  return out;
}

/**
 * Splits a message into fragments whose encoded size (header included) fits `maxFragment`.
 * A message that fits is returned as one fragment.
 */
export function fragmentMessage(m: HandshakeMessage, maxFragment: number): HandshakeFragment[] {
  const room = Math.max(1, maxFragment - HANDSHAKE_HEADER_LENGTH);
  const out: HandshakeFragment[] = [];
  let off = 0;
  do {
    const n = Math.min(room, m.body.length - off);
    out.push({ msgType: m.msgType, length: m.body.length, messageSeq: m.messageSeq, fragmentOffset: off, body: m.body.subarray(off, off + n) });
    off += n;
  } while (off < m.body.length);
  return out;
}

/** Upper bound on a reassembled handshake message; larger ones are refused. */
export const MAX_HANDSHAKE_MESSAGE = 64 * 1024;

/**
 * Collects fragments of one message. Fragments may arrive in any order and overlap;
 * a fragment whose type or total length disagrees with the first one is rejected.
 */
export class Reassembly {
  private readonly data: Uint8Array;
  /** Which bytes arrived; undefined when the message came whole. */
  private readonly have: Uint8Array | undefined;
  private missing: number;

  /** `whole`: the body of an unfragmented message, used as it is (the usual case: no copy). */
  constructor(
    readonly msgType: number,
    readonly length: number,
    readonly messageSeq: number,
    whole?: Uint8Array,
  ) {
    if (length > MAX_HANDSHAKE_MESSAGE) throw new DecodeError('handshake message too large');
    if (whole) {
      if (whole.length !== length) throw new RangeError('a whole message has the announced length');
      this.data = whole;
      this.have = undefined;
      this.missing = 0;
      return;
    }
    this.data = new Uint8Array(length);
    this.have = new Uint8Array(length);
    this.missing = length;
  }

  /** Adds a fragment; returns false if it is inconsistent with the message. */
  add(f: HandshakeFragment): boolean {
    if (f.msgType !== this.msgType || f.length !== this.length || f.messageSeq !== this.messageSeq) return false;
    if (f.fragmentOffset + f.body.length > this.length) return false;
    if (!this.have) return true; // already complete
    for (let i = 0; i < f.body.length; i++) {
      const pos = f.fragmentOffset + i;
      if (this.have[pos] === 0) {
        this.have[pos] = 1;
        this.data[pos] = f.body[i]!;
        this.missing--;
      }
    }
    return true;
  }

  get complete(): boolean {
    return this.missing === 0;
  }

  message(): HandshakeMessage {
    return { msgType: this.msgType, messageSeq: this.messageSeq, body: this.data };
  }
}

/**
 * Per-connection inbound handshake queue: buffers fragments of the current and future
 * messages (bounded), hands out complete messages strictly in message_seq order.
 */
export class HandshakeReassembler {
  /** Created on the first fragment: an established association usually never needs one again. */
  private pending: Map<number, Reassembly> | undefined;
  /** Next message_seq to deliver. */
  next = 0;

  constructor(private readonly maxAhead = 16) {}

  /** Returns 'old' for a fragment of an already delivered message (a retransmission), 'ok' or 'bad'. */
  add(f: HandshakeFragment): 'old' | 'ok' | 'bad' | 'ignored' {
    if (f.messageSeq < this.next) return 'old';
    if (f.messageSeq >= this.next + this.maxAhead) return 'ignored';
    this.pending ??= new Map();
    let r = this.pending.get(f.messageSeq);
    if (!r) {
      if (f.length > MAX_HANDSHAKE_MESSAGE) return 'bad';
      const whole = f.fragmentOffset === 0 && f.body.length === f.length;
      r = new Reassembly(f.msgType, f.length, f.messageSeq, whole ? f.body : undefined);
      this.pending.set(f.messageSeq, r);
      if (whole) return 'ok';
    }
    return r.add(f) ? 'ok' : 'bad';
  }

  /** The next complete in-order message, if any. */
  take(): HandshakeMessage | undefined {
    const r = this.pending?.get(this.next);
    if (!r?.complete) return undefined;
    this.pending!.delete(this.next);
    if (this.pending!.size === 0) this.pending = undefined; // between flights, usually for good
    this.next++;
    return r.message();
  }

  /** The lowest buffered complete message at or after `next` (used to learn a peer's first message_seq). */
  peekLowestComplete(): HandshakeMessage | undefined {
    if (!this.pending) return undefined;
    let best: Reassembly | undefined;
    this.pending.forEach((r) => {
      if (r.complete && (!best || r.messageSeq < best.messageSeq)) best = r;
    });
    return best?.message();
  }

  /** Drops everything buffered below `seq` and moves `next` there. */
  skipTo(seq: number): void {
    const pending = this.pending;
    if (pending) {
      // Deleting the entry being visited is allowed during Map.forEach.
      pending.forEach((_, k) => {
        if (k < seq) pending.delete(k);
      });
    }
    this.next = seq;
  }

  /** Drops every buffered fragment (`next` stays). */
  clear(): void {
    this.pending = undefined;
  }

  /** Messages being reassembled or waiting for their turn. */
  get buffered(): number {
    return this.pending?.size ?? 0;
  }
}
