import { EMPTY } from './codes.js';
import type { MessageType } from './codes.js';
import { EMPTY_BYTES } from './message.js';
import type { CoapMessage, CoapOption } from './message.js';

/**
 * A datagram that is not a well-formed CoAP message. `messageId`/`type` are set when
 * the 4-byte header could be read, so a CON can still be rejected with an RST
 * (RFC 7252 §4.2). `clause` names the rule that was broken.
 */
export class CoapFormatError extends Error {
  constructor(
    message: string,
    readonly clause: string,
    readonly header?: { type: MessageType; messageId: number; code: number },
  ) {
    super(`${message} (RFC 7252 ${clause})`);
    this.name = 'CoapFormatError';
  }
}

/**
 * A datagram to drop without any answer: too short for a header, or an unknown
 * version (RFC 7252 §3: "MUST be silently ignored").
 */
export class CoapIgnoredDatagram extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CoapIgnoredDatagram';
  }
}

const PAYLOAD_MARKER = 0xff;

/** Decodes one CoAP message over UDP/DTLS (RFC 7252 §3). Throws CoapFormatError or CoapIgnoredDatagram. */
export function decode(data: Uint8Array): CoapMessage {
  if (data.length < 4) throw new CoapIgnoredDatagram('datagram shorter than the 4-byte CoAP header');
  const b0 = data[0]!;
  if (b0 >> 6 !== 1) throw new CoapIgnoredDatagram(`unknown CoAP version ${b0 >> 6}`);
  const type = ((b0 >> 4) & 3) as MessageType;
  const tkl = b0 & 0x0f;
  const codeValue = data[1]!;
  const messageId = (data[2]! << 8) | data[3]!;
  const header = { type, messageId, code: codeValue };
  if (tkl > 8) throw new CoapFormatError(`token length ${tkl} is reserved`, '§3', header);
  if (codeValue === EMPTY) {
    // §4.1: an Empty message has TKL 0 and nothing after the Message ID.
    if (data.length !== 4 || tkl !== 0) throw new CoapFormatError('Empty message (0.00) with token, options or payload', '§4.1', header);
    return { type, code: EMPTY, messageId, token: EMPTY_BYTES, options: [], payload: EMPTY_BYTES };
  }
  if (4 + tkl > data.length) throw new CoapFormatError('token extends past the end of the datagram', '§3', header);
  const token = data.subarray(4, 4 + tkl);
  const options: CoapOption[] = [];
  let pos = 4 + tkl;
  let number = 0;
  let payload = EMPTY_BYTES;
  while (pos < data.length) {
    const byte = data[pos++]!;
    if (byte === PAYLOAD_MARKER) {
      // §3: a marker followed by a zero-length payload is a format error.
      if (pos === data.length) throw new CoapFormatError('payload marker followed by an empty payload', '§3', header);
      payload = data.subarray(pos);
      break;
    }
    let delta = byte >> 4;
    let length = byte & 0x0f;
    // §3.1: nibble 15 is reserved (only valid as the whole payload-marker byte).
    if (delta === 15 || length === 15) throw new CoapFormatError('option delta or length nibble 15 is reserved', '§3.1', header);
    if (delta === 13) {
      if (pos >= data.length) throw new CoapFormatError('option delta extension truncated', '§3.1', header);
      delta = data[pos++]! + 13;
    } else if (delta === 14) {
      if (pos + 1 >= data.length) throw new CoapFormatError('option delta extension truncated', '§3.1', header);
      delta = ((data[pos]! << 8) | data[pos + 1]!) + 269;
      pos += 2;
    }
    if (length === 13) {
      if (pos >= data.length) throw new CoapFormatError('option length extension truncated', '§3.1', header);
      length = data[pos++]! + 13;
    } else if (length === 14) {
      if (pos + 1 >= data.length) throw new CoapFormatError('option length extension truncated', '§3.1', header);
      length = ((data[pos]! << 8) | data[pos + 1]!) + 269;
      pos += 2;
    }
    number += delta;
    if (number > 0xffff) throw new CoapFormatError(`option number ${number} exceeds 65535`, '§3.1', header);
    if (pos + length > data.length) throw new CoapFormatError('option value extends past the end of the datagram', '§3.1', header);
    options.push({ number, value: data.subarray(pos, pos + length) });
    pos += length;
  }
  return { type, code: codeValue, messageId, token, options, payload };
}

function extendedSize(v: number): number {
  return v < 13 ? 0 : v < 269 ? 1 : 2;
}

/** Sorts options by number, keeping the order of repeated ones (a stable sort). */
function sortedOptions(options: CoapOption[]): CoapOption[] {
  for (let i = 1; i < options.length; i++) {
    if (options[i]!.number < options[i - 1]!.number) return [...options].sort((a, b) => a.number - b.number);
  }
  return options;
}

/** Encodes a message (RFC 7252 §3). Options need not be sorted. */
export function encode(msg: CoapMessage): Uint8Array {
  const tkl = msg.token.length;
  if (tkl > 8) throw new RangeError(`token longer than 8 bytes: ${tkl}`);
  if (msg.messageId < 0 || msg.messageId > 0xffff) throw new RangeError(`message ID out of range: ${msg.messageId}`);
  const options = sortedOptions(msg.options);
  let size = 4 + tkl;
  let previous = 0;
  for (const o of options) {
    const delta = o.number - previous;
    if (o.value.length > 65535 + 269) throw new RangeError(`option ${o.number} value too long`);
    size += 1 + extendedSize(delta) + extendedSize(o.value.length) + o.value.length;
    previous = o.number;
  }
  if (msg.payload.length > 0) size += 1 + msg.payload.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = 0x40 | (msg.type << 4) | tkl;
  out[1] = msg.code;
  out[2] = msg.messageId >> 8;
  out[3] = msg.messageId & 0xff;
  out.set(msg.token, 4);
  let pos = 4 + tkl;
  previous = 0;
  for (const o of options) {
    const delta = o.number - previous;
    previous = o.number;
    const len = o.value.length;
    const dn = delta < 13 ? delta : delta < 269 ? 13 : 14;
    const ln = len < 13 ? len : len < 269 ? 13 : 14;
    out[pos++] = (dn << 4) | ln;
    if (dn === 13) out[pos++] = delta - 13;
    else if (dn === 14) {
      out[pos++] = (delta - 269) >> 8;
      out[pos++] = (delta - 269) & 0xff;
    }
    if (ln === 13) out[pos++] = len - 13;
    else if (ln === 14) {
      out[pos++] = (len - 269) >> 8;
      out[pos++] = (len - 269) & 0xff;
    }
    out.set(o.value, pos);
    pos += len;
  }
  if (msg.payload.length > 0) {
    out[pos++] = PAYLOAD_MARKER;
    out.set(msg.payload, pos);
  }
  return out;
}

/** An empty ACK or RST for the given message ID (RFC 7252 §4.1). */
export function encodeEmpty(type: MessageType, messageId: number): Uint8Array {
  const out = Buffer.allocUnsafe(4);
  out[0] = 0x40 | (type << 4);
  out[1] = EMPTY;
  out[2] = messageId >> 8;
  out[3] = messageId & 0xff;
  return out;
}
