/**
 * SMS User Data Header (3GPP TS 23.040 §9.2.3.24): concatenation (8- and 16-bit reference
 * numbers, IEI 0x00 and 0x08) and application port addressing (8- and 16-bit ports, IEI 0x04
 * and 0x05, the WDP bearer of WAP-259-WDP §6.5), segmentation of payloads over one SMS and
 * the handset's reassembly. Pure: bytes in, bytes out.
 *
 * A UDH here always includes its length octet (UDHL) first, as Kannel's `udh` parameter and
 * its fake SMSC's lines carry it.
 */
import { SmsError } from './errors.js';

export const IEI_CONCAT_8 = 0x00;
export const IEI_PORTS_8 = 0x04;
export const IEI_PORTS_16 = 0x05;
export const IEI_CONCAT_16 = 0x08;

/** Octets of user data in one SMS (140 octets = 160 septets). */
export const SMS_OCTETS = 140;
export const SMS_SEPTETS = 160;
/** Most segments one concatenated message can have (the total is one octet). */
export const MAX_SEGMENTS = 255;

export type UdhElement =
  | { readonly kind: 'concat'; readonly ref: number; readonly total: number; readonly seq: number; readonly refBits: 8 | 16 }
  | { readonly kind: 'ports'; readonly destination: number; readonly source: number; readonly bits: 8 | 16 }
  | { readonly kind: 'other'; readonly iei: number; readonly data: Uint8Array };

/** Data coding as Kannel's `coding` parameter numbers it: 0 GSM 7-bit, 1 8-bit data, 2 UCS-2. */
export type Coding = 0 | 1 | 2;

/** One SMS as submitted: the UDH (with its length octet) or none, and the user data. */
export interface Segment {
  readonly udh: Uint8Array | null;
  readonly data: Uint8Array;
  readonly coding: Coding;
}

export function encodeUdh(elements: readonly UdhElement[]): Uint8Array {
  const body: number[] = [];
  for (const e of elements) {
    if (e.kind === 'concat') {
      checkInt(e.total, 1, MAX_SEGMENTS, 'concatenation total');
      checkInt(e.seq, 1, e.total, 'concatenation sequence number');
      if (e.refBits === 8) body.push(IEI_CONCAT_8, 3, checkInt(e.ref, 0, 0xff, 'reference number'), e.total, e.seq);
      else body.push(IEI_CONCAT_16, 4, checkInt(e.ref, 0, 0xffff, 'reference number') >> 8, e.ref & 0xff, e.total, e.seq);
    } else if (e.kind === 'ports') {
      if (e.bits === 8) body.push(IEI_PORTS_8, 2, checkInt(e.destination, 0, 0xff, 'destination port'), checkInt(e.source, 0, 0xff, 'source port'));
      else body.push(IEI_PORTS_16, 4, checkInt(e.destination, 0, 0xffff, 'destination port') >> 8, e.destination & 0xff, checkInt(e.source, 0, 0xffff, 'source port') >> 8, e.source & 0xff);
    } else {
      if (e.data.length > 0xff) throw new SmsError('BAD_MESSAGE', 'a UDH information element has at most 255 octets');
      body.push(checkInt(e.iei, 0, 0xff, 'IEI'), e.data.length, ...e.data);
    }
  }
  if (body.length > 0xff || body.length + 1 > SMS_OCTETS) throw new SmsError('BAD_MESSAGE', 'the user data header does not fit in one SMS');
  return Uint8Array.from([body.length, ...body]);
}

/** Decodes a UDH (length octet first); BAD_PDU when it is truncated, has trailing octets, or an IE has the wrong length. */
export function decodeUdh(udh: Uint8Array): UdhElement[] {
  if (udh.length === 0) throw new SmsError('BAD_PDU', 'empty UDH (no length octet)');
  const length = udh[0]!;
  if (length + 1 !== udh.length) throw new SmsError('BAD_PDU', `UDH length octet says ${length} octets, ${udh.length - 1} follow`);
  const out: UdhElement[] = [];
  let i = 1;
  while (i < udh.length) {
    if (i + 2 > udh.length) throw new SmsError('BAD_PDU', 'UDH information element truncated');
    const iei = udh[i]!;
    const len = udh[i + 1]!;
    const data = udh.subarray(i + 2, i + 2 + len);
    if (data.length !== len) throw new SmsError('BAD_PDU', `UDH information element 0x${iei.toString(16)} truncated`);
    const need = (n: number): void => {
      if (len !== n) throw new SmsError('BAD_PDU', `UDH information element 0x${iei.toString(16)} must have ${n} octets, has ${len}`);
    };
    if (iei === IEI_CONCAT_8 || iei === IEI_CONCAT_16) {
      need(iei === IEI_CONCAT_8 ? 3 : 4);
      const ref = iei === IEI_CONCAT_8 ? data[0]! : (data[0]! << 8) | data[1]!;
      const total = data[len - 2]!;
      const seq = data[len - 1]!;
      if (total === 0 || seq === 0 || seq > total) throw new SmsError('BAD_PDU', `concatenation part ${seq} of ${total} is not valid`);
      out.push({ kind: 'concat', ref, total, seq, refBits: iei === IEI_CONCAT_8 ? 8 : 16 });
    } else if (iei === IEI_PORTS_8) {
      need(2);
      out.push({ kind: 'ports', destination: data[0]!, source: data[1]!, bits: 8 });
    } else if (iei === IEI_PORTS_16) {
      need(4);
      out.push({ kind: 'ports', destination: (data[0]! << 8) | data[1]!, source: (data[2]! << 8) | data[3]!, bits: 16 });
    } else {
      out.push({ kind: 'other', iei, data: Uint8Array.from(data) });
    }
    i += 2 + len;
  }
  return out;
}

export interface BinaryOptions {
  /** Application ports (16-bit IE), e.g. WAP Push: destination 2948, source 9200. */
  readonly ports?: { readonly destination: number; readonly source: number };
  /** The concatenation reference number, used when the payload needs more than one SMS. */
  readonly ref: number;
  /** 8-bit (default, what WAP Push over SMS uses) or 16-bit reference numbers. */
  readonly refBits?: 8 | 16;
  /** Most segments allowed (default MAX_SEGMENTS). */
  readonly maxSegments?: number;
}

/** Splits 8-bit data into SMS: one when it fits beside its UDH, else concatenated parts each carrying the ports and the concatenation IE. */
export function segmentBinary(data: Uint8Array, options: BinaryOptions): Segment[] {
  const ports: UdhElement[] = options.ports ? [{ kind: 'ports', destination: options.ports.destination, source: options.ports.source, bits: 16 }] : [];
  const single = ports.length > 0 ? encodeUdh(ports) : null;
  if ((single?.length ?? 0) + data.length <= SMS_OCTETS) return [{ udh: single, data: Uint8Array.from(data), coding: 1 }];
  const refBits = options.refBits ?? 8;
  const udhLength = (single?.length ?? 1) + (refBits === 8 ? 5 : 6);
  const room = SMS_OCTETS - udhLength;
  const total = Math.ceil(data.length / room);
  const max = options.maxSegments ?? MAX_SEGMENTS;
  if (total > max) throw new SmsError('BAD_MESSAGE', `${data.length} octets need ${total} SMS; at most ${max} are allowed`);
  const out: Segment[] = [];
  for (let seq = 1; seq <= total; seq++) {
    const udh = encodeUdh([...ports, { kind: 'concat', ref: options.ref, total, seq, refBits }]);
    out.push({ udh, data: data.slice((seq - 1) * room, seq * room), coding: 1 });
  }
  return out;
}

// GSM 03.38 default alphabet and its extension table (each extension character costs two septets).
const GSM_BASIC = '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM_EXTENDED = '^{}\\[~]|€\f';
const basic = new Set([...GSM_BASIC].filter((c) => c !== '\u001b'));
const extended = new Set([...GSM_EXTENDED]);

/** Septets `text` takes in the GSM 7-bit default alphabet, or undefined when a character is not in it. */
export function gsmSeptets(text: string): number | undefined {
  let n = 0;
  for (const c of text) {
    if (basic.has(c)) n += 1;
    else if (extended.has(c)) n += 2;
    else return undefined;
  }
  return n;
}

/**
 * Splits a text into SMS: GSM 7-bit (coding 0, 160 septets, 153 per part) when every
 * character is in the default alphabet, else UCS-2 (coding 2, 70 characters, 67 per part).
 * The data of a 7-bit part is its text in UTF-8 (what Kannel takes with charset=UTF-8 and
 * packs into septets itself); of a UCS-2 part, UTF-16BE. Parts never split a character (an
 * extension character or a surrogate pair).
 */
export function segmentText(text: string, options: { ref: number; refBits?: 8 | 16; maxSegments?: number }): Segment[] {
  if (text.length === 0) throw new SmsError('BAD_MESSAGE', 'the text is empty');
  const septets = gsmSeptets(text);
  const gsm = septets !== undefined;
  const cost = (c: string): number => (gsm ? (extended.has(c) ? 2 : 1) : c.length);
  const total = gsm ? septets : text.length;
  const single = gsm ? SMS_SEPTETS : SMS_OCTETS / 2;
  const encode = (t: string): Uint8Array => (gsm ? new Uint8Array(Buffer.from(t, 'utf8')) : utf16be(t));
  const coding: Coding = gsm ? 0 : 2;
  if (total <= single) return [{ udh: null, data: encode(text), coding }];
  const refBits = options.refBits ?? 8;
  const udhOctets = refBits === 8 ? 6 : 7;
  const room = gsm ? Math.floor((SMS_OCTETS - udhOctets) * 8 / 7) : Math.floor((SMS_OCTETS - udhOctets) / 2);
  const parts: string[] = [];
  let current = '';
  let used = 0;
  for (const c of text) {
    const k = cost(c);
    if (used + k > room) {
      parts.push(current);
      current = '';
      used = 0;
    }
    current += c;
    used += k;
  }
  parts.push(current);
  const max = options.maxSegments ?? MAX_SEGMENTS;
  if (parts.length > max) throw new SmsError('BAD_MESSAGE', `the text needs ${parts.length} SMS; at most ${max} are allowed`);
  return parts.map((p, i) => ({ udh: encodeUdh([{ kind: 'concat', ref: options.ref, total: parts.length, seq: i + 1, refBits }]), data: encode(p), coding }));
}

function utf16be(text: string): Uint8Array {
  const out = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const u = text.charCodeAt(i);
    out[2 * i] = u >> 8;
    out[2 * i + 1] = u & 0xff;
  }
  return out;
}

/** Text of UTF-16BE octets (UCS-2 SMS). */
export function fromUtf16be(data: Uint8Array): string {
  if (data.length % 2 !== 0) throw new SmsError('BAD_PDU', 'UCS-2 data has an odd number of octets');
  let s = '';
  for (let i = 0; i < data.length; i += 2) s += String.fromCharCode((data[i]! << 8) | data[i + 1]!);
  return s;
}

/** One SMS as a handset receives it. */
export interface ReceivedSegment {
  readonly from: string;
  readonly udh: Uint8Array | null;
  readonly data: Uint8Array;
}

/** A whole message: the parts joined, with the ports they were addressed to (if any). */
export interface Reassembled {
  readonly from: string;
  readonly ports: { readonly destination: number; readonly source: number } | null;
  readonly data: Uint8Array;
  readonly parts: number;
}

/**
 * A handset's reassembly of concatenated SMS (by sender, reference number and total), bounded:
 * at most `maxPending` messages wait for parts, each for at most `maxAgeMs`.
 */
export class Reassembler {
  private readonly pending = new Map<string, { parts: (Uint8Array | undefined)[]; ports: Reassembled['ports']; at: number }>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxPending = 64,
    private readonly maxAgeMs = 10 * 60_000,
  ) {}

  /** Adds one SMS; returns the whole message once every part is in (at once for a single SMS). */
  add(segment: ReceivedSegment): Reassembled | undefined {
    const elements = segment.udh ? decodeUdh(segment.udh) : [];
    const portsIe = elements.find((e) => e.kind === 'ports');
    const ports = portsIe ? { destination: portsIe.destination, source: portsIe.source } : null;
    const concat = elements.find((e) => e.kind === 'concat');
    if (!concat || concat.total === 1) return { from: segment.from, ports, data: Uint8Array.from(segment.data), parts: 1 };
    const now = this.now();
    for (const [key, entry] of this.pending) if (now - entry.at > this.maxAgeMs) this.pending.delete(key);
    const key = `${segment.from}/${concat.refBits}/${concat.ref}/${concat.total}`;
    let entry = this.pending.get(key);
    if (!entry) {
      while (this.pending.size >= this.maxPending) this.pending.delete(this.pending.keys().next().value!);
      entry = { parts: new Array<Uint8Array | undefined>(concat.total).fill(undefined), ports, at: now };
      this.pending.set(key, entry);
    }
    entry.parts[concat.seq - 1] = Uint8Array.from(segment.data);
    entry.ports ??= ports;
    if (entry.parts.some((p) => p === undefined)) return undefined;
    this.pending.delete(key);
    return { from: segment.from, ports: entry.ports, data: new Uint8Array(Buffer.concat(entry.parts as Uint8Array[])), parts: concat.total };
  }

  get waiting(): number {
    return this.pending.size;
  }
}

function checkInt(value: number, min: number, max: number, what: string): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new SmsError('BAD_MESSAGE', `${what} must be an integer in ${min}..${max}, got ${value}`);
  return value;
}
