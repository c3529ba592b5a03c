/**
 * WBXML 1.3 codec (WAP-192-WBXML-20010725-a, "WBXML 1.3"), sans-IO: bytes in, an element tree
 * out, and back. Only what SyncML uses is accepted: tags on the vocabulary's code pages, inline
 * and string-table strings, character entities and opaque data. Attributes, extension tokens and
 * processing instructions are refused with a WbxmlFormatError (SyncML defines none), as is
 * anything truncated, malformed or beyond the decode limits.
 */
import { DEFAULT_LIMITS } from './element.js';
import type { DecodeLimits, Element, Node } from './element.js';
import { WbxmlFormatError } from './errors.js';
import { SYNCML_12 } from './wbxml-tokens.js';
import type { WbxmlVocabulary } from './wbxml-tokens.js';

/** Global tokens, the same on every code page (§7.1). */
export const GlobalToken = {
  SWITCH_PAGE: 0x00,
  END: 0x01,
  ENTITY: 0x02,
  STR_I: 0x03,
  LITERAL: 0x04,
  EXT_I_0: 0x40,
  EXT_I_1: 0x41,
  EXT_I_2: 0x42,
  PI: 0x43,
  LITERAL_C: 0x44,
  EXT_T_0: 0x80,
  EXT_T_1: 0x81,
  EXT_T_2: 0x82,
  STR_T: 0x83,
  LITERAL_A: 0x84,
  EXT_0: 0xc0,
  EXT_1: 0xc1,
  EXT_2: 0xc2,
  OPAQUE: 0xc3,
  LITERAL_AC: 0xc4,
} as const;

/** Tag token bits (§5.8.2): bit 7 "has attributes", bit 6 "has content". */
const TAG_HAS_ATTRIBUTES = 0x80;
const TAG_HAS_CONTENT = 0x40;
const TAG_ID_MASK = 0x3f;

/** IANA MIBenum charsets (§5.6) Depot reads; US-ASCII is a subset of UTF-8. 0 means "unknown". */
export const Charset = { UNKNOWN: 0, US_ASCII: 3, UTF_8: 106 } as const;

/** Public identifier 1: "unknown or missing" (§7.2.1), written by anonymous encoders. */
export const PUBLIC_ID_UNKNOWN = 1;

export interface WbxmlDocument {
  /** The version byte: (major - 1) << 4 | minor, 0x03 for WBXML 1.3 (§5.4). */
  readonly version: number;
  /** The registered public identifier, or the literal FPI from the string table (§5.5). */
  readonly publicId: number | string;
  readonly charset: number;
  readonly root: Element;
}

export interface WbxmlDecodeOptions {
  readonly vocabulary?: WbxmlVocabulary;
  readonly limits?: Partial<DecodeLimits>;
}

/** XML 1.0 §2.2 Char: what text may contain so that every decoded tree can be written as XML. */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

interface BuildingElement {
  readonly tag: string;
  readonly children: Node[];
}

/** A cursor over the input whose every read is bounds-checked. */
class Reader {
  pos = 0;
  constructor(readonly data: Uint8Array) {}

  byte(what: string): number {
    if (this.pos >= this.data.length) throw new WbxmlFormatError(`truncated: ${what} expected`, '§5', this.pos);
    return this.data[this.pos++]!;
  }

  /** mb_u_int32 (§5.1): 7 bits per byte, most significant first, at most 32 bits. */
  mbUint32(what: string): number {
    const start = this.pos;
    let value = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte(what);
      value = value * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) {
        if (value > 0xffffffff) throw new WbxmlFormatError(`${what} exceeds 32 bits`, '§5.1', start);
        return value;
      }
    }
    throw new WbxmlFormatError(`${what} is longer than the 5 bytes of an mb_u_int32`, '§5.1', start);
  }

  bytes(length: number, what: string): Uint8Array {
    if (length > this.data.length - this.pos) throw new WbxmlFormatError(`truncated: ${what} of ${length} bytes extends past the end`, '§5', this.pos);
    const out = this.data.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }
}

function decodeUtf8(bytes: Uint8Array, what: string, offset: number): string {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new WbxmlFormatError(`${what} is not valid UTF-8`, '§5.6', offset);
  }
  if (NOT_XML_CHAR.test(text)) throw new WbxmlFormatError(`${what} contains a character XML 1.0 does not allow (XML §2.2)`, '§5.8.4.1', offset);
  return text;
}

/** The NUL-terminated string of the string table at `offset` (§5.7). */
function stringTableEntry(table: Uint8Array, tableStart: number, offset: number, what: string): string {
  if (offset >= table.length) throw new WbxmlFormatError(`${what} refers to offset ${offset} past the string table (${table.length} bytes)`, '§5.7', tableStart);
  const end = table.indexOf(0, offset);
  if (end < 0) throw new WbxmlFormatError(`${what} refers to a string-table string without its NUL terminator`, '§5.7', tableStart + offset);
  return decodeUtf8(table.subarray(offset, end), what, tableStart + offset);
}

/**
 * Decodes a WBXML document. Throws WbxmlFormatError (and nothing else) for any input that is
 * not a complete, well-formed document of the vocabulary or that breaks a limit.
 */
export function decodeWbxml(data: Uint8Array, options: WbxmlDecodeOptions = {}): WbxmlDocument {
  const vocabulary = options.vocabulary ?? SYNCML_12;
  const limits: DecodeLimits = { ...DEFAULT_LIMITS, ...options.limits };
  if (data.length > limits.maxBytes) throw new WbxmlFormatError(`document of ${data.length} bytes exceeds the limit of ${limits.maxBytes}`, 'limit');
  const r = new Reader(data);

  const version = r.byte('version');
  // §5.4: 1.0 (0x00) to 1.3 (0x03) share this layout, except that 1.0 has no charset.
  if (version > 0x03) throw new WbxmlFormatError(`unsupported WBXML version ${(version >> 4) + 1}.${version & 0x0f} (0x${version.toString(16)})`, '§5.4', 0);
  const publicIdStart = r.pos;
  const publicIdValue = r.mbUint32('public identifier');
  // §5.5: 0 means "the FPI is a string in the string table, at this index".
  const publicIdIndex = publicIdValue === 0 ? r.mbUint32('public identifier string index') : undefined;
  const charset = version >= 0x01 ? r.mbUint32('charset') : Charset.UTF_8;
  if (charset !== Charset.UTF_8 && charset !== Charset.US_ASCII && charset !== Charset.UNKNOWN) {
    throw new WbxmlFormatError(`charset MIBenum ${charset} is not supported (UTF-8 only)`, '§5.6', publicIdStart);
  }
  const tableLength = r.mbUint32('string table length');
  const tableStart = r.pos;
  const table = r.bytes(tableLength, 'string table');

  let publicId: number | string = publicIdValue;
  if (publicIdIndex !== undefined) publicId = stringTableEntry(table, tableStart, publicIdIndex, 'public identifier');
  if (publicId !== vocabulary.publicId && publicId !== vocabulary.fpi && publicId !== PUBLIC_ID_UNKNOWN) {
    throw new WbxmlFormatError(`public identifier ${typeof publicId === 'number' ? `0x${publicId.toString(16)}` : JSON.stringify(publicId)} is not ${vocabulary.name}`, '§5.5', publicIdStart);
  }

  const tableStrings = new Map<number, string>();
  const stack: BuildingElement[] = [];
  let root: BuildingElement | undefined;
  let page = 0;
  let elements = 0;
  let totalContent = 0;

  const addContent = (content: string | Uint8Array, offset: number): void => {
    const parent = stack[stack.length - 1];
    if (parent === undefined) throw new WbxmlFormatError('content outside the root element', '§5.8', offset);
    totalContent += content.length;
    if (totalContent > limits.maxTotalContent) throw new WbxmlFormatError(`content exceeds the limit of ${limits.maxTotalContent} in total`, 'limit', offset);
    const last = parent.children[parent.children.length - 1];
    if (typeof content === 'string' && typeof last === 'string') {
      // Inline strings, table references and entities of one text run are one string.
      content = last + content;
      parent.children.pop();
    }
    if (content.length > limits.maxStringLength) throw new WbxmlFormatError(`a string or opaque value exceeds the limit of ${limits.maxStringLength}`, 'limit', offset);
    if (content.length > 0) parent.children.push(content);
  };

  const openElement = (tag: string, hasContent: boolean, offset: number): void => {
    if (root !== undefined && stack.length === 0) throw new WbxmlFormatError('a second root element', '§5.8', offset);
    if (++elements > limits.maxElements) throw new WbxmlFormatError(`more than ${limits.maxElements} elements`, 'limit', offset);
    const el: BuildingElement = { tag, children: [] };
    const parent = stack[stack.length - 1];
    if (parent === undefined) root = el;
    else parent.children.push(el);
    if (hasContent) {
      if (stack.length >= limits.maxDepth) throw new WbxmlFormatError(`elements nested deeper than ${limits.maxDepth}`, 'limit', offset);
      stack.push(el);
    }
  };

  while (root === undefined || stack.length > 0) {
    const offset = r.pos;
    const token = r.byte(root === undefined ? 'the root element' : `content or END of <${stack[stack.length - 1]!.tag}>`);
    switch (token) {
      case GlobalToken.SWITCH_PAGE: {
        const next = r.byte('code page number');
        if (!vocabulary.tagOf.has(next)) throw new WbxmlFormatError(`code page ${next} is not a page of ${vocabulary.name}`, '§5.8.4.7.2', offset);
        page = next;
        break;
      }
      case GlobalToken.END:
        if (stack.length === 0) throw new WbxmlFormatError('END with no open element', '§5.8.4.7.1', offset);
        stack.pop();
        break;
      case GlobalToken.ENTITY: {
        const codePoint = r.mbUint32('entity character');
        if (codePoint > 0x10ffff || NOT_XML_CHAR.test(String.fromCodePoint(codePoint))) {
          throw new WbxmlFormatError(`ENTITY U+${codePoint.toString(16)} is not an XML character`, '§5.8.4.3', offset);
        }
        addContent(String.fromCodePoint(codePoint), offset);
        break;
      }
      case GlobalToken.STR_I: {
        const end = data.indexOf(0, r.pos);
        if (end < 0) throw new WbxmlFormatError('truncated: inline string without its NUL terminator', '§5.8.4.1', offset);
        const text = decodeUtf8(data.subarray(r.pos, end), 'inline string', r.pos);
        r.pos = end + 1;
        addContent(text, offset);
        break;
      }
      case GlobalToken.STR_T: {
        const index = r.mbUint32('string table reference');
        let text = tableStrings.get(index);
        if (text === undefined) {
          text = stringTableEntry(table, tableStart, index, 'string table reference');
          tableStrings.set(index, text);
        }
        addContent(text, offset);
        break;
      }
      case GlobalToken.OPAQUE: {
        const length = r.mbUint32('opaque length');
        if (length > limits.maxStringLength) throw new WbxmlFormatError(`opaque data of ${length} bytes exceeds the limit of ${limits.maxStringLength}`, 'limit', offset);
        // A copy (a plain Uint8Array, not a Buffer view) so the tree does not keep the message alive.
        addContent(new Uint8Array(r.bytes(length, 'opaque data')), offset);
        break;
      }
      case GlobalToken.LITERAL:
      case GlobalToken.LITERAL_C: {
        const name = stringTableEntry(table, tableStart, r.mbUint32('literal tag name'), 'literal tag name');
        // Kept so the SyncML layer can name the unknown element; it must still be an XML name.
        if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) throw new WbxmlFormatError(`literal tag name ${JSON.stringify(name.slice(0, 40))} is not an XML name`, '§5.8.4.5', offset);
        openElement(name, token === GlobalToken.LITERAL_C, offset);
        break;
      }
      case GlobalToken.LITERAL_A:
      case GlobalToken.LITERAL_AC:
        throw new WbxmlFormatError('attributes are not used by SyncML', '§5.8.3', offset);
      case GlobalToken.PI:
        throw new WbxmlFormatError('processing instructions are not supported', '§5.8.4.4', offset);
      case GlobalToken.EXT_I_0:
      case GlobalToken.EXT_I_1:
      case GlobalToken.EXT_I_2:
      case GlobalToken.EXT_T_0:
      case GlobalToken.EXT_T_1:
      case GlobalToken.EXT_T_2:
      case GlobalToken.EXT_0:
      case GlobalToken.EXT_1:
      case GlobalToken.EXT_2:
        throw new WbxmlFormatError(`extension token 0x${token.toString(16)} is not defined by ${vocabulary.name}`, '§5.8.4.2', offset);
      default: {
        if ((token & TAG_HAS_ATTRIBUTES) !== 0) throw new WbxmlFormatError('attributes are not used by SyncML', '§5.8.3', offset);
        const tag = vocabulary.tagOf.get(page)?.get(token & TAG_ID_MASK);
        if (tag === undefined) throw new WbxmlFormatError(`unknown tag token 0x${(token & TAG_ID_MASK).toString(16)} on code page ${page}`, '§5.8.2', offset);
        openElement(tag, (token & TAG_HAS_CONTENT) !== 0, offset);
      }
    }
  }
  // §5.3: only processing instructions may follow the root element, and Depot refuses those.
  if (r.pos !== data.length) throw new WbxmlFormatError(`${data.length - r.pos} bytes after the end of the root element`, '§5.3', r.pos);
  return { version, publicId, charset, root };
}

// ---------------------------------------------------------------- encoder

export interface WbxmlEncodeOptions {
  readonly vocabulary?: WbxmlVocabulary;
  /** Put strings used more than once in the string table and refer to them with STR_T (§5.7). */
  readonly stringTable?: boolean;
  /** Name the DTD by its FPI in the string table instead of the registered public identifier (§5.5). */
  readonly literalPublicId?: boolean;
}

/** mb_u_int32 (§5.1). */
export function encodeMbUint32(value: number): number[] {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`mb_u_int32 out of range: ${value}`);
  const out = [value & 0x7f];
  for (let v = Math.floor(value / 128); v > 0; v = Math.floor(v / 128)) out.unshift((v & 0x7f) | 0x80);
  return out;
}

function collectStrings(el: Element, counts: Map<string, number>): void {
  for (const child of el.children) {
    if (typeof child === 'string') counts.set(child, (counts.get(child) ?? 0) + 1);
    else if (!(child instanceof Uint8Array)) collectStrings(child, counts);
  }
}

/**
 * Encodes an element tree as WBXML 1.3 (UTF-8). Throws RangeError for a tree the vocabulary
 * cannot express (an unknown tag, a string with NUL): those are Depot's bugs, not the device's.
 */
export function encodeWbxml(root: Element, options: WbxmlEncodeOptions = {}): Uint8Array {
  const vocabulary = options.vocabulary ?? SYNCML_12;
  const tableBytes: Buffer[] = [];
  let tableLength = 0;
  const tableOffset = new Map<string, number>();
  const addToTable = (text: string): number => {
    const offset = tableLength;
    const bytes = Buffer.from(text + '\0', 'utf8');
    tableBytes.push(bytes);
    tableLength += bytes.length;
    tableOffset.set(text, offset);
    return offset;
  };
  const publicId = options.literalPublicId === true ? [0x00, ...encodeMbUint32(addToTable(vocabulary.fpi))] : encodeMbUint32(vocabulary.publicId);
  if (options.stringTable === true) {
    const counts = new Map<string, number>();
    collectStrings(root, counts);
    // A reference costs about 2 bytes against the string's length + 2 inline: worth it when repeated.
    for (const [text, count] of counts) if (count > 1 && Buffer.byteLength(text) > 2 && !tableOffset.has(text)) addToTable(text);
  }

  // One buffer, grown by doubling: no array of numbers and no chunk per string.
  let out = Buffer.allocUnsafe(1024);
  let pos = 0;
  const room = (n: number): void => {
    if (pos + n <= out.length) return;
    let size = out.length * 2;
    while (size < pos + n) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    out.copy(bigger, 0, 0, pos);
    out = bigger;
  };
  const byte = (b: number): void => {
    room(1);
    out[pos++] = b;
  };
  const mbUint32 = (value: number): void => {
    for (const b of encodeMbUint32(value)) byte(b);
  };
  let page = 0;
  const write = (el: Element): void => {
    const code = vocabulary.codeOf.get(el.tag);
    if (code === undefined) throw new RangeError(`<${el.tag}> is not a tag of ${vocabulary.name}`);
    if (code.page !== page) {
      byte(GlobalToken.SWITCH_PAGE);
      byte(code.page);
      page = code.page;
    }
    // Empty text and empty opaque data are no content (the decoder drops them too).
    let content = false;
    for (const c of el.children) {
      if (typeof c === 'string' ? c !== '' : !(c instanceof Uint8Array) || c.length > 0) {
        content = true;
        break;
      }
    }
    byte(code.token | (content ? TAG_HAS_CONTENT : 0));
    if (!content) return;
    for (const child of el.children) {
      if (typeof child === 'string') {
        if (child === '') continue;
        if (child.includes('\0')) throw new RangeError(`<${el.tag}> text contains NUL, which WBXML strings cannot carry`);
        const offset = tableOffset.get(child);
        if (offset !== undefined) {
          byte(GlobalToken.STR_T);
          mbUint32(offset);
        } else {
          byte(GlobalToken.STR_I);
          room(child.length * 3 + 1);
          pos += out.write(child, pos, 'utf8');
          out[pos++] = 0;
        }
      } else if (child instanceof Uint8Array) {
        if (child.length === 0) continue;
        byte(GlobalToken.OPAQUE);
        mbUint32(child.length);
        room(child.length);
        out.set(child, pos);
        pos += child.length;
      } else write(child);
    }
    byte(GlobalToken.END);
  };
  write(root);
  const header = [0x03, ...publicId, ...encodeMbUint32(Charset.UTF_8), ...encodeMbUint32(tableLength)];
  return Buffer.concat([Uint8Array.from(header), ...tableBytes, out.subarray(0, pos)]);
}
