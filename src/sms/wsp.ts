/**
 * WSP encoding primitives (WAP-230-WSP §8.1.2 variable-length integers, §8.4.2.1 basic
 * rules, §8.4.2.24 Content-Type) and the well-known value tables the push PDU needs: content
 * types (OMNA "WSP Content Type Numbers"), parameters (Table 38, with SEC and MAC of WSP 1.4
 * for OMA Client Provisioning) and push application ids (OMNA "Push Application ID"). Pure.
 */
import { SmsError } from './errors.js';

/** Well-known content types, by their assigned number (the index). */
export const WELL_KNOWN_CONTENT_TYPES: readonly string[] = [
  '*/*', 'text/*', 'text/html', 'text/plain', 'text/x-hdml', 'text/x-ttml', 'text/x-vCalendar', 'text/x-vCard',
  'text/vnd.wap.wml', 'text/vnd.wap.wmlscript', 'text/vnd.wap.wta-event', 'multipart/*', 'multipart/mixed', 'multipart/form-data',
  'multipart/byteranges', 'multipart/alternative', 'application/*', 'application/java-vm', 'application/x-www-form-urlencoded',
  'application/x-hdmlc', 'application/vnd.wap.wmlc', 'application/vnd.wap.wmlscriptc', 'application/vnd.wap.wta-eventc',
  'application/vnd.wap.uaprof', 'application/vnd.wap.wtls-ca-certificate', 'application/vnd.wap.wtls-user-certificate',
  'application/x-x509-ca-cert', 'application/x-x509-user-cert', 'image/*', 'image/gif', 'image/jpeg', 'image/tiff', 'image/png',
  'image/vnd.wap.wbmp', 'application/vnd.wap.multipart.*', 'application/vnd.wap.multipart.mixed', 'application/vnd.wap.multipart.form-data',
  'application/vnd.wap.multipart.byteranges', 'application/vnd.wap.multipart.alternative', 'application/xml', 'text/xml',
  'application/vnd.wap.wbxml', 'application/x-x968-cross-cert', 'application/x-x968-ca-cert', 'application/x-x968-user-cert',
  'text/vnd.wap.si', 'application/vnd.wap.sic', 'text/vnd.wap.sl', 'application/vnd.wap.slc', 'text/vnd.wap.co', 'application/vnd.wap.coc',
  'application/vnd.wap.multipart.related', 'application/vnd.wap.sia', 'text/vnd.wap.connectivity-xml', 'application/vnd.wap.connectivity-wbxml',
  'application/pkcs7-mime', 'application/vnd.wap.hashed-certificate', 'application/vnd.wap.signed-certificate', 'application/vnd.wap.cert-response',
  'application/xhtml+xml', 'application/wml+xml', 'text/css', 'application/vnd.wap.mms-message', 'application/vnd.wap.rollover-certificate',
  'application/vnd.wap.locc+wbxml', 'application/vnd.wap.loc+xml', 'application/vnd.syncml.dm+wbxml', 'application/vnd.syncml.dm+xml',
  'application/vnd.syncml.notification', 'application/vnd.wap.xhtml+xml',
];

/** Well-known push application ids (X-WAP-Application-Id values), by their assigned number. */
export const WELL_KNOWN_APPLICATION_IDS: readonly string[] = [
  'x-wap-application:*', 'x-wap-application:push.sia', 'x-wap-application:wml.ua', 'x-wap-application:wta.ua', 'x-wap-application:mms.ua',
  'x-wap-application:push.syncml', 'x-wap-application:loc.ua', 'x-wap-application:syncml.dm', 'x-wap-application:drm.ua',
  'x-wap-application:emn.ua', 'x-wap-application:wv.ua',
];

/** Well-known parameter numbers used here (Table 38). */
export const PARAM = { Q: 0x00, CHARSET: 0x01, LEVEL: 0x02, TYPE: 0x03, SEC: 0x11, MAC: 0x12 } as const;
/** Well-known header field numbers used here (Table 39). */
export const HEADER_X_WAP_APPLICATION_ID = 0x2f;

/** OMA Client Provisioning security methods (SEC parameter values, OMA-WAP-ProvBoot §5.3). */
export const SEC_METHODS = { NETWPIN: 0, USERPIN: 1, USERNETWPIN: 2, USERPINMAC: 3 } as const;
export type SecMethod = keyof typeof SEC_METHODS;

export function contentTypeNumber(name: string): number | undefined {
  const i = WELL_KNOWN_CONTENT_TYPES.findIndex((t) => t.toLowerCase() === name.toLowerCase());
  return i < 0 ? undefined : i;
}

export function applicationIdNumber(name: string): number | undefined {
  const i = WELL_KNOWN_APPLICATION_IDS.indexOf(name.toLowerCase());
  return i < 0 ? undefined : i;
}

// ---------------------------------------------------------------- writer

export class WspWriter {
  private readonly bytes: number[] = [];

  octet(b: number): this {
    this.bytes.push(b & 0xff);
    return this;
  }

  octets(data: Iterable<number>): this {
    for (const b of data) this.bytes.push(b);
    return this;
  }

  /** uintvar (§8.1.2): 7 bits per octet, most significant first, continuation bit 0x80; 32 bits at most. */
  uintvar(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new SmsError('BAD_MESSAGE', `uintvar out of range: ${value}`);
    const groups: number[] = [value % 128];
    let v = Math.floor(value / 128);
    while (v > 0) {
      groups.unshift((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    return this.octets(groups);
  }

  /** Short-integer (0..127 as 0x80|n). */
  shortInteger(n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > 127) throw new SmsError('BAD_MESSAGE', `short integer out of range: ${n}`);
    return this.octet(0x80 | n);
  }

  /** Integer-value: Short-integer below 128, else Long-integer (Short-length, big-endian octets). */
  integer(n: number): this {
    if (n < 128) return this.shortInteger(n);
    if (!Number.isSafeInteger(n) || n < 0) throw new SmsError('BAD_MESSAGE', `integer out of range: ${n}`);
    const out: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
    return this.octet(out.length).octets(out);
  }

  /** Text-string: the octets and NUL, with a Quote (0x7F) first when the first octet is 0x80 or above. */
  text(s: string): this {
    const data = Buffer.from(s, 'utf8');
    if (data.includes(0)) throw new SmsError('BAD_MESSAGE', 'WSP text cannot contain NUL');
    if ((data[0] ?? 0) >= 0x80) this.octet(0x7f);
    return this.octets(data).octet(0);
  }

  /** Value-length (§8.4.2.2): 0..30 in one octet, else Length-quote 0x1F and a uintvar. */
  valueLength(n: number): this {
    return n <= 30 ? this.octet(n) : this.octet(0x1f).uintvar(n);
  }

  get length(): number {
    return this.bytes.length;
  }

  toBytes(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

// ---------------------------------------------------------------- reader

export class WspReader {
  private offset: number;

  constructor(
    private readonly data: Uint8Array,
    offset = 0,
    private readonly end = data.length,
  ) {
    this.offset = offset;
  }

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  peek(): number {
    if (this.offset >= this.end) throw new SmsError('BAD_PDU', 'WSP data truncated');
    return this.data[this.offset]!;
  }

  octet(): number {
    const b = this.peek();
    this.offset++;
    return b;
  }

  take(n: number): Uint8Array {
    if (n < 0 || this.offset + n > this.end) throw new SmsError('BAD_PDU', `WSP data truncated (${n} octets needed, ${this.remaining} left)`);
    const out = this.data.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  uintvar(): number {
    let value = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.octet();
      value = value * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) {
        if (value > 0xffffffff) throw new SmsError('BAD_PDU', 'uintvar larger than 32 bits');
        return value;
      }
    }
    throw new SmsError('BAD_PDU', 'uintvar longer than 5 octets');
  }

  /** Integer-value (Short-integer or Long-integer of 1 to 8 octets). */
  integer(): number {
    const b = this.octet();
    if (b >= 0x80) return b & 0x7f;
    if (b < 1 || b > 8) throw new SmsError('BAD_PDU', `expected an integer value, got octet 0x${b.toString(16)}`);
    let v = 0;
    for (const x of this.take(b)) v = v * 256 + x;
    if (!Number.isSafeInteger(v)) throw new SmsError('BAD_PDU', 'integer value too large');
    return v;
  }

  /** Text-string / Token-text / Quoted-string: up to the NUL, without a leading Quote (0x7F) or quotation mark (0x22). */
  text(): string {
    const start = this.offset;
    const nul = this.data.subarray(0, this.end).indexOf(0, start);
    if (nul < 0) throw new SmsError('BAD_PDU', 'WSP text without its terminating NUL');
    let from = start;
    if (this.data[from] === 0x7f || this.data[from] === 0x22) from++;
    this.offset = nul + 1;
    return Buffer.from(this.data.subarray(from, nul)).toString('utf8');
  }

  /** Value-length: 0..30, or 0x1F and a uintvar. */
  valueLength(): number {
    const b = this.octet();
    if (b <= 30) return b;
    if (b === 0x1f) return this.uintvar();
    throw new SmsError('BAD_PDU', `expected a value length, got octet 0x${b.toString(16)}`);
  }

  /** A reader over the next `n` octets; this one moves past them. */
  sub(n: number): WspReader {
    const start = this.offset;
    this.take(n);
    return new WspReader(this.data, start, start + n);
  }
}
