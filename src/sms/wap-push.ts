/**
 * WAP Push over SMS: the WSP connectionless Push PDU (WAP-230-WSP §8.2.4.1: transaction id,
 * PDU type 0x06, headers length as uintvar, content type, headers, data) carried by WDP over
 * SMS (WAP-259-WDP §6.5: UDH application ports 9200 → 2948, concatenated when long).
 *
 * The content type is written as its well-known number when it has one (OMNA table) and as
 * text otherwise; with parameters it takes the general form (Value-length, media, parameters).
 * OMA Client Provisioning's SEC (short integer: NETWPIN 0, USERPIN 1, USERNETWPIN 2,
 * USERPINMAC 3) and MAC (text, 40 hex digits) are the WSP 1.4 well-known parameters 0x11 and
 * 0x12 (OMA-WAP-ProvBoot §5.3). The decoder is what simulated handsets and tests use.
 */
import { SmsError } from './errors.js';
import { segmentBinary, type Segment } from './udh.js';
import {
  HEADER_X_WAP_APPLICATION_ID,
  PARAM,
  SEC_METHODS,
  WELL_KNOWN_APPLICATION_IDS,
  WELL_KNOWN_CONTENT_TYPES,
  WspReader,
  WspWriter,
  applicationIdNumber,
  contentTypeNumber,
  type SecMethod,
} from './wsp.js';

/** WDP ports of connectionless WAP Push (WAP-259-WDP Appendix B): to the push port, from the WSP connectionless port. */
export const WAP_PUSH_PORT = 2948;
export const WSP_CONNECTIONLESS_PORT = 9200;
export const PDU_TYPE_PUSH = 0x06;

export interface WapPushParameters {
  /** OMA Client Provisioning security method. */
  readonly SEC?: SecMethod;
  /** The HMAC-SHA1 of the document, 40 hex digits (OMA-WAP-ProvBoot §5.3). */
  readonly MAC?: string;
  /** IANA MIBenum of the body's charset (e.g. 106 for UTF-8). */
  readonly charset?: number;
}

export interface WapPushMessage {
  /** e.g. application/vnd.syncml.notification, application/vnd.wap.connectivity-wbxml. */
  readonly contentType: string;
  readonly parameters?: WapPushParameters;
  /** X-WAP-Application-Id: a well-known id (x-wap-application:syncml.dm), its number, or a URI. */
  readonly applicationId?: string | number;
  readonly body: Uint8Array;
  /** WSP transaction id (0..255); connectionless push leaves it to the sender. */
  readonly transactionId?: number;
}

export interface DecodedWapPush {
  readonly transactionId: number;
  readonly pduType: number;
  readonly contentType: string;
  /** The well-known number the content type was sent as, or null when it was text. */
  readonly contentTypeCode: number | null;
  readonly parameters: WapPushParameters & { readonly other: Readonly<Record<string, string | number>> };
  /** As a well-known name when sent as one of the known numbers, else the number or URI sent. */
  readonly applicationId: string | number | null;
  /** Other headers, as "0x<code>" or their name, with their raw or text value. */
  readonly headers: readonly { readonly name: string; readonly value: string | Uint8Array | number }[];
  readonly body: Uint8Array;
}

function checkContentType(type: string): void {
  if (!/^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.*+-]+$/.test(type) || type.length > 100) throw new SmsError('BAD_MESSAGE', `content type ${JSON.stringify(type)} is not a media type`);
}

function encodeContentType(w: WspWriter, type: string, parameters: WapPushParameters | undefined): void {
  checkContentType(type);
  const code = contentTypeNumber(type);
  const params = new WspWriter();
  if (parameters?.charset !== undefined) params.shortInteger(PARAM.CHARSET).integer(parameters.charset);
  if (parameters?.SEC !== undefined) {
    const sec = SEC_METHODS[parameters.SEC];
    if (sec === undefined) throw new SmsError('BAD_MESSAGE', `SEC must be one of ${Object.keys(SEC_METHODS).join(', ')}`);
    params.shortInteger(PARAM.SEC).shortInteger(sec);
  }
  if (parameters?.MAC !== undefined) {
    if (!/^[0-9A-Fa-f]{40}$/.test(parameters.MAC)) throw new SmsError('BAD_MESSAGE', 'MAC must be 40 hex digits (HMAC-SHA1)');
    params.shortInteger(PARAM.MAC).text(parameters.MAC.toUpperCase());
  }
  if (params.length === 0) {
    // Constrained-media: a Short-integer, or Extension-media text.
    if (code !== undefined) w.shortInteger(code);
    else w.text(type);
    return;
  }
  const media = new WspWriter();
  if (code !== undefined) media.integer(code);
  else media.text(type);
  media.octets(params.toBytes());
  w.valueLength(media.length).octets(media.toBytes());
}

/** The WSP Push PDU (no WDP header). */
export function encodeWspPush(message: WapPushMessage): Uint8Array {
  const tid = message.transactionId ?? 0;
  if (!Number.isInteger(tid) || tid < 0 || tid > 255) throw new SmsError('BAD_MESSAGE', 'transaction id must be 0..255');
  const headers = new WspWriter();
  encodeContentType(headers, message.contentType, message.parameters);
  const app = message.applicationId;
  if (app !== undefined) {
    headers.shortInteger(HEADER_X_WAP_APPLICATION_ID);
    const code = typeof app === 'number' ? app : applicationIdNumber(app);
    if (code !== undefined) headers.integer(code);
    else if (typeof app === 'string' && /^[\x21-\x7e]{1,200}$/.test(app)) headers.text(app);
    else throw new SmsError('BAD_MESSAGE', `application id ${JSON.stringify(app)} is neither a well-known id nor a URI`);
  }
  const h = headers.toBytes();
  return new WspWriter().octet(tid).octet(PDU_TYPE_PUSH).uintvar(h.length).octets(h).octets(message.body).toBytes();
}

/** The SMS that carry a push: WDP ports 9200 → 2948 in every part, concatenated (reference `ref`) when long. */
export function wapPushSegments(message: WapPushMessage, ref: number): Segment[] {
  return segmentBinary(encodeWspPush(message), { ports: { destination: WAP_PUSH_PORT, source: WSP_CONNECTIONLESS_PORT }, ref });
}

function decodeContentType(r: WspReader): { contentType: string; code: number | null; parameters: DecodedWapPush['parameters'] } {
  const first = r.peek();
  const parameters: { SEC?: SecMethod; MAC?: string; charset?: number; other: Record<string, string | number> } = { other: {} };
  const named = (code: number): string => {
    const name = WELL_KNOWN_CONTENT_TYPES[code];
    if (name === undefined) return `0x${code.toString(16)}`;
    return name;
  };
  if (first >= 0x80) {
    const code = r.octet() & 0x7f;
    return { contentType: named(code), code, parameters };
  }
  if (first >= 0x20) return { contentType: r.text(), code: null, parameters };
  if (first === 0) throw new SmsError('BAD_PDU', 'empty content type');
  const region = r.sub(r.valueLength());
  const m = region.peek();
  let contentType: string;
  let code: number | null = null;
  if (m >= 0x80 || m <= 0x1e) {
    code = region.integer();
    contentType = named(code);
  } else {
    contentType = region.text();
  }
  while (region.remaining > 0) {
    const p = region.peek();
    if (p >= 0x80) {
      const id = region.octet() & 0x7f;
      if (id === PARAM.SEC) {
        const v = region.integer();
        const name = (Object.keys(SEC_METHODS) as SecMethod[]).find((k) => SEC_METHODS[k] === v);
        if (!name) throw new SmsError('BAD_PDU', `unknown SEC value ${v}`);
        parameters.SEC = name;
      } else if (id === PARAM.MAC) {
        parameters.MAC = region.text();
      } else if (id === PARAM.CHARSET) {
        parameters.charset = region.integer();
      } else if (id === PARAM.Q) {
        parameters.other['q'] = region.uintvar();
      } else {
        parameters.other[`0x${id.toString(16)}`] = untypedValue(region);
      }
    } else if (p >= 0x20) {
      const name = region.text();
      parameters.other[name] = untypedValue(region);
    } else {
      throw new SmsError('BAD_PDU', `content-type parameter starts with octet 0x${p.toString(16)}`);
    }
  }
  return { contentType, code, parameters };
}

/** Integer-value or Text-value (No-value is ""). */
function untypedValue(r: WspReader): string | number {
  const b = r.peek();
  if (b >= 0x80 || (b >= 1 && b <= 0x1e)) return r.integer();
  if (b === 0) {
    r.octet();
    return '';
  }
  return r.text();
}

/** Decodes a WSP Push PDU; BAD_PDU (with what is wrong) for anything else. */
export function decodeWspPush(pdu: Uint8Array): DecodedWapPush {
  const r = new WspReader(pdu);
  const transactionId = r.octet();
  const pduType = r.octet();
  if (pduType !== PDU_TYPE_PUSH) throw new SmsError('BAD_PDU', `WSP PDU type 0x${pduType.toString(16)} is not Push (0x06)`);
  const headersLength = r.uintvar();
  if (headersLength === 0) throw new SmsError('BAD_PDU', 'a Push PDU needs a content type');
  const h = r.sub(headersLength);
  const { contentType, code, parameters } = decodeContentType(h);
  let applicationId: string | number | null = null;
  const headers: { name: string; value: string | Uint8Array | number }[] = [];
  while (h.remaining > 0) {
    const b = h.peek();
    if (b >= 0x80) {
      const field = h.octet() & 0x7f;
      const v = h.peek();
      let value: string | Uint8Array | number;
      if (v >= 0x80) value = h.octet() & 0x7f;
      else if (v <= 0x1e && field === HEADER_X_WAP_APPLICATION_ID) value = h.integer();
      else if (v <= 0x1f) value = Uint8Array.from(h.take(h.valueLength()));
      else value = h.text();
      if (field === HEADER_X_WAP_APPLICATION_ID) {
        if (value instanceof Uint8Array) throw new SmsError('BAD_PDU', 'X-WAP-Application-Id is neither an integer nor a URI');
        applicationId = typeof value === 'number' ? (WELL_KNOWN_APPLICATION_IDS[value] ?? value) : value;
      } else {
        headers.push({ name: `0x${field.toString(16)}`, value });
      }
    } else if (b >= 0x20 && b !== 0x7f) {
      const name = h.text();
      headers.push({ name, value: h.text() });
    } else {
      throw new SmsError('BAD_PDU', `header code page shifts (octet 0x${b.toString(16)}) are not supported`);
    }
  }
  return { transactionId, pduType, contentType, contentTypeCode: code, parameters, applicationId, headers, body: Uint8Array.from(r.take(r.remaining)) };
}
