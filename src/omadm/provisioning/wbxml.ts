/**
 * The WAP Provisioning Document in WBXML (OMA-WAP-ProvCont-V1_1 "Binary encoding", public
 * identifier 0x0B, "-//WAPFORUM//DTD PROV 1.0//EN"; WBXML 1.3, WAP-192-WBXML). Unlike SyncML this
 * vocabulary lives in attributes (`<parm name="APPID" value="w7"/>`), so it has its own small
 * codec here rather than a page in ../wbxml.ts, whose SyncML reader refuses attributes.
 *
 * Tag and attribute code pages are separate states (WBXML §5.8.4.7.2: SWITCH_PAGE in an attribute
 * list switches the attribute page); ProvCont puts the DM application's names (APPID, AAUTH*,
 * type=APPLICATION…) on attribute page 1. The encoder writes attribute-start tokens from the
 * tables below and every value as an inline string; the decoder also reads the attribute-value
 * tokens and string-table references other encoders (libwbxml, operators' tools) write.
 */

/** A node of the document: element name, attributes in document order, children. */
export interface ProvNode {
  readonly tag: 'wap-provisioningdoc' | 'characteristic' | 'parm';
  readonly attributes: readonly (readonly [name: string, value: string])[];
  readonly children: readonly ProvNode[];
}

export const PROV_PUBLIC_ID = 0x0b;
export const PROV_FPI = '-//WAPFORUM//DTD PROV 1.0//EN';
export const PROV_CLAUSE = 'OMA-WAP-ProvCont-V1_1 Binary encoding';

export class ProvisioningFormatError extends Error {
  constructor(
    message: string,
    readonly clause: string,
    readonly offset?: number,
  ) {
    super(`${message}${offset === undefined ? '' : ` at byte ${offset}`} (${clause})`);
    this.name = 'ProvisioningFormatError';
  }
}

const TAGS: readonly (readonly [page: number, token: number, tag: ProvNode['tag']])[] = [
  [0, 0x05, 'wap-provisioningdoc'],
  [0, 0x06, 'characteristic'],
  [0, 0x07, 'parm'],
  [1, 0x06, 'characteristic'],
  [1, 0x07, 'parm'],
];

/** Attribute-start tokens: [page, token, attribute, value prefix or null]. */
const P0_PARM_NAMES = [
  'NAME', 'NAP-ADDRESS', 'NAP-ADDRTYPE', 'CALLTYPE', 'VALIDUNTIL', 'AUTHTYPE', 'AUTHNAME', 'AUTHSECRET', 'LINGER',
  'BEARER', 'NAPID', 'COUNTRY', 'NETWORK', 'INTERNET', 'PROXY-ID', 'PROXY-PROVIDER-ID', 'DOMAIN', 'PROVURL',
  'PXAUTH-TYPE', 'PXAUTH-ID', 'PXAUTH-PW', 'STARTPAGE', 'BASAUTH-ID', 'BASAUTH-PW', 'PUSHENABLED', 'PXADDR',
  'PXADDRTYPE', 'TO-NAPID', 'PORTNBR', 'SERVICE', 'LINKSPEED', 'DNLINKSPEED', 'LOCAL-ADDR', 'LOCAL-ADDRTYPE',
  'CONTEXT-ALLOW', 'TRUST', 'MASTER', 'SID', 'SOC', 'WSP-VERSION', 'PHYSICAL-PROXY-ID', 'CLIENT-ID',
  'DELIVERY-ERR-SDU', 'DELIVERY-ORDER', 'TRAFFIC-CLASS', 'MAX-SDU-SIZE', 'MAX-BITRATE-UPLINK',
  'MAX-BITRATE-DNLINK', 'RESIDUAL-BER', 'SDU-ERROR-RATIO', 'TRAFFIC-HANDL-PRIO', 'TRANSFER-DELAY',
  'GUARANTEED-BITRATE-UPLINK', 'GUARANTEED-BITRATE-DNLINK', 'PXADDR-FQDN', 'PROXY-PW', 'PPGAUTH-TYPE',
] as const; // 0x07 .. 0x3F in order
const ATTR_STARTS: readonly (readonly [number, number, string, string | null])[] = [
  [0, 0x05, 'name', null],
  [0, 0x06, 'value', null],
  ...P0_PARM_NAMES.map((n, i) => [0, 0x07 + i, 'name', n] as const),
  [0, 0x45, 'version', null],
  [0, 0x46, 'version', '1.0'],
  [0, 0x47, 'name', 'PULLENABLED'],
  [0, 0x48, 'name', 'DNS-ADDR'],
  [0, 0x49, 'name', 'MAX-NUM-RETRY'],
  [0, 0x4a, 'name', 'FIRST-RETRY-TIMEOUT'],
  [0, 0x4b, 'name', 'REREG-THRESHOLD'],
  [0, 0x4c, 'name', 'T-BIT'],
  [0, 0x4e, 'name', 'AUTH-ENTITY'],
  [0, 0x4f, 'name', 'SPI'],
  [0, 0x50, 'type', null],
  ...(['PXLOGICAL', 'PXPHYSICAL', 'PORT', 'VALIDITY', 'NAPDEF', 'BOOTSTRAP', 'VENDORCONFIG', 'CLIENTIDENTITY', 'PXAUTHINFO', 'NAPAUTHINFO', 'ACCESS'] as const).map((t, i) => [0, 0x51 + i, 'type', t] as const),
  // Page 1: the OMA application characteristic (ProvCont 1.1).
  [1, 0x05, 'name', null],
  [1, 0x06, 'value', null],
  [1, 0x07, 'name', 'NAME'],
  [1, 0x14, 'name', 'INTERNET'],
  [1, 0x1c, 'name', 'STARTPAGE'],
  [1, 0x22, 'name', 'TO-NAPID'],
  [1, 0x23, 'name', 'PORTNBR'],
  [1, 0x24, 'name', 'SERVICE'],
  ...(['AACCEPT', 'AAUTHDATA', 'AAUTHLEVEL', 'AAUTHNAME', 'AAUTHSECRET', 'AAUTHTYPE', 'ADDR', 'ADDRTYPE', 'APPID', 'APROTOCOL', 'PROVIDER-ID', 'TO-PROXY', 'URI', 'RULE'] as const).map((n, i) => [1, 0x2e + i, 'name', n] as const),
  [1, 0x50, 'type', null],
  [1, 0x53, 'type', 'PORT'],
  [1, 0x55, 'type', 'APPLICATION'],
  [1, 0x56, 'type', 'APPADDR'],
  [1, 0x57, 'type', 'APPAUTH'],
  [1, 0x58, 'type', 'CLIENTIDENTITY'],
  [1, 0x59, 'type', 'RESOURCE'],
];

/** Attribute-value tokens (read only): [page, token, text]. ProvCont 1.1 moved AAUTHTYPE's to 0x90-0x93. */
const ATTR_VALUES: readonly (readonly [number, number, string])[] = [
  ...(['IPV4', 'IPV6', 'E164', 'ALPHA', 'APN', 'SCODE', 'TETRA-ITSI', 'MAN'] as const).map((v, i) => [0, 0x85 + i, v] as const),
  [1, 0x86, 'IPV6'], [1, 0x87, 'E164'], [1, 0x88, 'ALPHA'], [1, 0x8d, 'APPSRV'], [1, 0x8e, 'OBEX'],
  ...(['ANALOG-MODEM', 'V.120', 'V.110', 'X.31', 'BIT-TRANSPARENT', 'DIRECT-ASYNCHRONOUS-DATA-SERVICE'] as const).map((v, i) => [0, 0x90 + i, v] as const),
  ...(['PAP', 'CHAP', 'HTTP-BASIC', 'HTTP-DIGEST', 'WTLS-SS', 'MD5'] as const).map((v, i) => [0, 0x9a + i, v] as const),
  ...(['GSM-USSD', 'GSM-SMS', 'ANSI-136-GUTS', 'IS-95-CDMA-SMS', 'IS-95-CDMA-CSD', 'IS-95-CDMA-PACKET', 'ANSI-136-CSD', 'ANSI-136-GPRS', 'GSM-CSD', 'GSM-GPRS', 'AMPS-CDPD', 'PDC-CSD', 'PDC-PACKET', 'IDEN-SMS', 'IDEN-CSD', 'IDEN-PACKET', 'FLEX/REFLEX', 'PHS-SMS', 'PHS-CSD', 'TRETRA-SDS', 'TRETRA-PACKET', 'ANSI-136-GHOST', 'MOBITEX-MPAK', 'CDMA2000-1X-SIMPLE-IP', 'CDMA2000-1X-MOBILE-IP'] as const).map((v, i) => [0, 0xa2 + i, v] as const),
  [0, 0xc5, 'AUTOBAUDING'],
  ...(['CL-WSP', 'CO-WSP', 'CL-SEC-WSP', 'CO-SEC-WSP', 'CL-SEC-WTA', 'CO-SEC-WTA', 'OTA-HTTP-TO', 'OTA-HTTP-TLS-TO', 'OTA-HTTP-PO', 'OTA-HTTP-TLS-PO'] as const).map((v, i) => [0, 0xca + i, v] as const),
  [1, 0x90, ','], [1, 0x91, 'HTTP-'], [1, 0x92, 'BASIC'], [1, 0x93, 'DIGEST'],
  [0, 0xe0, 'AAA'], [0, 0xe1, 'HA'],
];

const tagOf = new Map(TAGS.map(([p, t, tag]) => [`${p}/${t}`, tag]));
const attrStartOf = new Map(ATTR_STARTS.map(([p, t, name, prefix]) => [`${p}/${t}`, { name, prefix }]));
const attrValueOf = new Map(ATTR_VALUES.map(([p, t, text]) => [`${p}/${t}`, text]));

const G = { SWITCH_PAGE: 0x00, END: 0x01, ENTITY: 0x02, STR_I: 0x03, LITERAL: 0x04, STR_T: 0x83, OPAQUE: 0xc3 } as const;
/** Global tokens other than the ones above: extensions, PI and literals with attributes. */
const REFUSED_GLOBALS = new Set([0x40, 0x41, 0x42, 0x43, 0x44, 0x80, 0x81, 0x82, 0x84, 0xc0, 0xc1, 0xc2, 0xc4]);

// ---------------------------------------------------------------- encoder

function mbUint32(value: number): number[] {
  const out = [value & 0x7f];
  for (let v = Math.floor(value / 128); v > 0; v = Math.floor(v / 128)) out.unshift((v & 0x7f) | 0x80);
  return out;
}

function tagToken(tag: ProvNode['tag']): number {
  return tag === 'wap-provisioningdoc' ? 0x05 : tag === 'characteristic' ? 0x06 : 0x07;
}

/** The attribute-start token for name=value on the current page if it has one, else the other page. */
function attrStart(name: string, value: string, page: number): { page: number; token: number; rest: string } {
  let best: { page: number; token: number; rest: string; score: number } | undefined;
  for (const [p, t, n, prefix] of ATTR_STARTS) {
    if (n !== name || (prefix !== null && prefix !== value)) continue;
    // A token that carries the whole value first, then the current page.
    const score = (prefix !== null ? 2 : 0) + (p === page ? 1 : 0);
    if (best === undefined || score > best.score) best = { page: p, token: t, rest: prefix === null ? value : '', score };
  }
  if (best === undefined) throw new RangeError(`attribute ${name} is not in the provisioning vocabulary`);
  return best;
}

/**
 * Encodes a provisioning document as WBXML 1.3, UTF-8, public identifier 0x0B, no string table.
 * Throws RangeError for a tree the vocabulary cannot carry (Depot's bug, not the device's).
 */
export function encodeProvisioningWbxml(root: ProvNode): Uint8Array {
  if (root.tag !== 'wap-provisioningdoc') throw new RangeError('the root of a provisioning document is wap-provisioningdoc');
  const out: number[] = [0x03, PROV_PUBLIC_ID, ...mbUint32(106), 0x00];
  let attrPage = 0;
  const str = (text: string): void => {
    if (text.includes('\0')) throw new RangeError('provisioning text cannot contain NUL');
    out.push(G.STR_I, ...Buffer.from(text, 'utf8'), 0x00);
  };
  const write = (node: ProvNode): void => {
    // Tags 0x06/0x07 are on both tag pages; Depot stays on tag page 0.
    const hasAttrs = node.attributes.length > 0;
    const hasContent = node.children.length > 0;
    out.push(tagToken(node.tag) | (hasAttrs ? 0x80 : 0) | (hasContent ? 0x40 : 0));
    if (hasAttrs) {
      for (const [name, value] of node.attributes) {
        const start = attrStart(name, value, attrPage);
        if (start.page !== attrPage) {
          out.push(G.SWITCH_PAGE, start.page);
          attrPage = start.page;
        }
        out.push(start.token);
        if (start.rest !== '') str(start.rest);
      }
      out.push(G.END);
    }
    if (hasContent) {
      for (const child of node.children) write(child);
      out.push(G.END);
    }
  };
  write(root);
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------- decoder

export interface ProvDecodeLimits {
  readonly maxBytes: number;
  readonly maxDepth: number;
  readonly maxElements: number;
}

/** A provisioning document fits in a few concatenated SMS; these bounds are far above that. */
export const PROV_LIMITS: ProvDecodeLimits = { maxBytes: 64 * 1024, maxDepth: 16, maxElements: 2000 };

/**
 * Decodes a WBXML provisioning document. Throws ProvisioningFormatError (and nothing else) for
 * input that is not one: another public identifier, truncation, unknown tokens, limits.
 */
export function decodeProvisioningWbxml(data: Uint8Array, limits: ProvDecodeLimits = PROV_LIMITS): ProvNode {
  if (data.length > limits.maxBytes) throw new ProvisioningFormatError(`document of ${data.length} bytes exceeds ${limits.maxBytes}`, 'limit');
  let pos = 0;
  const byte = (what: string): number => {
    if (pos >= data.length) throw new ProvisioningFormatError(`truncated: ${what} expected`, 'WAP-192-WBXML §5', pos);
    return data[pos++]!;
  };
  const mb = (what: string): number => {
    let v = 0;
    for (let i = 0; i < 5; i++) {
      const b = byte(what);
      v = v * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) return v;
    }
    throw new ProvisioningFormatError(`${what} is longer than an mb_u_int32`, 'WAP-192-WBXML §5.1', pos);
  };
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const text = (bytes: Uint8Array, at: number): string => {
    try {
      const s = utf8.decode(bytes);
      if (/[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u.test(s)) throw new Error('not an XML character');
      return s;
    } catch {
      throw new ProvisioningFormatError('a string is not printable UTF-8', 'WAP-192-WBXML §5.6', at);
    }
  };

  const version = byte('version');
  if (version > 0x03) throw new ProvisioningFormatError(`WBXML version 0x${version.toString(16)} is not 1.0-1.3`, 'WAP-192-WBXML §5.4', 0);
  const publicIdAt = pos;
  let publicId: number | string = mb('public identifier');
  const publicIdIndex = publicId === 0 ? mb('public identifier index') : undefined;
  const charset = version >= 0x01 ? mb('charset') : 106;
  if (charset !== 106 && charset !== 3 && charset !== 0) throw new ProvisioningFormatError(`charset ${charset} is not UTF-8`, 'WAP-192-WBXML §5.6', publicIdAt);
  const tableLength = mb('string table length');
  if (tableLength > data.length - pos) throw new ProvisioningFormatError('string table extends past the end', 'WAP-192-WBXML §5.7', pos);
  const table = data.subarray(pos, pos + tableLength);
  pos += tableLength;
  const tableString = (offset: number, at: number): string => {
    const end = table.indexOf(0, offset);
    if (offset >= table.length || end < 0) throw new ProvisioningFormatError(`string table reference ${offset} is outside the table`, 'WAP-192-WBXML §5.7', at);
    return text(table.subarray(offset, end), at);
  };
  if (publicIdIndex !== undefined) publicId = tableString(publicIdIndex, publicIdAt);
  if (publicId !== PROV_PUBLIC_ID && publicId !== PROV_FPI && publicId !== 1) {
    throw new ProvisioningFormatError(`public identifier ${String(publicId)} is not the provisioning document's (0x0B)`, PROV_CLAUSE, publicIdAt);
  }

  let tagPage = 0;
  let attrPage = 0;
  let elements = 0;
  const inlineString = (): string => {
    const start = pos;
    const end = data.indexOf(0, pos);
    if (end < 0) throw new ProvisioningFormatError('inline string without its NUL terminator', 'WAP-192-WBXML §5.8.4.1', start);
    pos = end + 1;
    return text(data.subarray(start, end), start);
  };

  const readAttributes = (): [string, string][] => {
    const attrs: [string, string][] = [];
    for (;;) {
      const at = pos;
      const t = byte('attribute or END');
      if (t === G.END) return attrs;
      if (t === G.SWITCH_PAGE) {
        attrPage = byte('code page');
        if (attrPage > 1) throw new ProvisioningFormatError(`attribute code page ${attrPage} does not exist`, PROV_CLAUSE, at);
        continue;
      }
      const last = attrs[attrs.length - 1];
      if (t === G.STR_I || t === G.STR_T || t === G.ENTITY || t === G.OPAQUE || (t >= 0x85 && !REFUSED_GLOBALS.has(t))) {
        if (last === undefined) throw new ProvisioningFormatError('an attribute value before any attribute start', 'WAP-192-WBXML §5.8.3', at);
        let piece: string;
        if (t === G.STR_I) piece = inlineString();
        else if (t === G.STR_T) piece = tableString(mb('string table reference'), at);
        else if (t === G.ENTITY) {
          const cp = mb('entity');
          if (cp > 0x10ffff || cp < 0x20) throw new ProvisioningFormatError(`entity ${cp} is not a printable character`, 'WAP-192-WBXML §5.8.4.3', at);
          piece = String.fromCodePoint(cp);
        } else if (t === G.OPAQUE) {
          const length = mb('opaque length');
          if (length > data.length - pos) throw new ProvisioningFormatError('opaque data extends past the end', 'WAP-192-WBXML §5.8.4.6', at);
          piece = text(data.subarray(pos, pos + length), at);
          pos += length;
        } else {
          const v = attrValueOf.get(`${attrPage}/${t}`);
          if (v === undefined) throw new ProvisioningFormatError(`unknown attribute value token 0x${t.toString(16)} on page ${attrPage}`, PROV_CLAUSE, at);
          piece = v;
        }
        last[1] += piece;
        if (last[1].length > 8192) throw new ProvisioningFormatError('an attribute value longer than 8192 characters', 'limit', at);
        continue;
      }
      if (REFUSED_GLOBALS.has(t) || t === G.LITERAL) throw new ProvisioningFormatError(`token 0x${t.toString(16)} is not used by provisioning documents`, 'WAP-192-WBXML §5.8.4', at);
      const start = attrStartOf.get(`${attrPage}/${t}`);
      if (start === undefined) throw new ProvisioningFormatError(`unknown attribute start token 0x${t.toString(16)} on page ${attrPage}`, PROV_CLAUSE, at);
      if (attrs.length >= 8) throw new ProvisioningFormatError('more than 8 attributes on one element', 'limit', at);
      attrs.push([start.name, start.prefix ?? '']);
    }
  };

  const readElement = (depth: number): ProvNode => {
    for (;;) {
      const at = pos;
      const t = byte('element');
      if (t === G.SWITCH_PAGE) {
        tagPage = byte('code page');
        if (tagPage > 1) throw new ProvisioningFormatError(`tag code page ${tagPage} does not exist`, PROV_CLAUSE, at);
        continue;
      }
      const tag = tagOf.get(`${tagPage}/${t & 0x3f}`);
      if (tag === undefined || t < 0x05 || REFUSED_GLOBALS.has(t) || t === G.STR_T || t === G.OPAQUE) throw new ProvisioningFormatError(`token 0x${t.toString(16)} is not an element of the provisioning document on page ${tagPage}`, PROV_CLAUSE, at);
      if (++elements > limits.maxElements) throw new ProvisioningFormatError(`more than ${limits.maxElements} elements`, 'limit', at);
      if (depth > limits.maxDepth) throw new ProvisioningFormatError(`nested deeper than ${limits.maxDepth}`, 'limit', at);
      const attributes = (t & 0x80) !== 0 ? readAttributes() : [];
      const children: ProvNode[] = [];
      if ((t & 0x40) !== 0) {
        for (;;) {
          if (pos < data.length && data[pos] === G.END) {
            pos++;
            break;
          }
          if (pos < data.length && (data[pos] === G.STR_I || data[pos] === G.STR_T || data[pos] === G.OPAQUE || data[pos] === G.ENTITY)) {
            throw new ProvisioningFormatError('text content: provisioning elements carry only attributes', PROV_CLAUSE, pos);
          }
          children.push(readElement(depth + 1));
        }
      }
      return { tag, attributes, children };
    }
  };
  const root = readElement(1);
  if (root.tag !== 'wap-provisioningdoc') throw new ProvisioningFormatError(`root element ${root.tag} is not wap-provisioningdoc`, PROV_CLAUSE, 0);
  if (pos !== data.length) throw new ProvisioningFormatError(`${data.length - pos} bytes after the document`, 'WAP-192-WBXML §5.3', pos);
  return root;
}

// ---------------------------------------------------------------- XML (for operators and interop)

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The document as XML text (the DTD as OMA-WAP-ProvCont names it), one element per line. */
export function provisioningXml(root: ProvNode): string {
  const lines = ['<?xml version="1.0"?>', `<!DOCTYPE wap-provisioningdoc PUBLIC "${PROV_FPI}" "http://www.wapforum.org/DTD/prov.dtd">`];
  const write = (n: ProvNode, indent: string): void => {
    const attrs = n.attributes.map(([k, v]) => ` ${k}="${escapeAttribute(v)}"`).join('');
    if (n.children.length === 0) lines.push(`${indent}<${n.tag}${attrs}/>`);
    else {
      lines.push(`${indent}<${n.tag}${attrs}>`);
      for (const c of n.children) write(c, `${indent}  `);
      lines.push(`${indent}</${n.tag}>`);
    }
  };
  write(root, '');
  return `${lines.join('\n')}\n`;
}
