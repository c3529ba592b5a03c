/**
 * SyncML as XML text, both ways. Parsing is saxes (a strict, non-validating XML 1.0 + Namespaces
 * parser) with Depot's refusals on top: no DTD internal subset (so no entity can be declared;
 * saxes itself knows only the five predefined entities and character references and never
 * fetches anything), no processing instructions, no attributes other than namespace
 * declarations, and the same limits as the WBXML decoder. Writing is Depot's: the tree has no
 * attributes, so it is escaping and namespaces only.
 */
import { SaxesParser } from 'saxes';
import type { SaxesTagNS } from 'saxes';
import { DEFAULT_LIMITS, isElement } from './element.js';
import type { DecodeLimits, Element, Node } from './element.js';
import { XmlFormatError } from './errors.js';
import { SYNCML_12 } from './wbxml-tokens.js';
import type { WbxmlVocabulary } from './wbxml-tokens.js';

export interface XmlParseOptions {
  readonly vocabulary?: WbxmlVocabulary;
  readonly limits?: Partial<DecodeLimits>;
  /**
   * Try the fast path first (default true): a small reader for the plain form every SyncML
   * message Depot sees takes (see parsePlain), with saxes deciding every document it does not
   * take. False: saxes only (the tests compare the two).
   */
  readonly fastPath?: boolean;
}

interface BuildingElement {
  readonly tag: string;
  readonly children: Node[];
  hasElementChild: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const WHITESPACE_ONLY = /^[ \t\r\n]*$/;

/**
 * Parses a SyncML XML document into an element tree. Elements are known by their local name
 * (SyncML and MetInf names are distinct); their namespace must be one of the vocabulary's or
 * none, since devices often omit xmlns="syncml:metinf" on Meta children. Whitespace-only text
 * between elements is dropped; text in leaf elements is kept as it is. Throws XmlFormatError,
 * and nothing else, for any input that is not such a document.
 */
export function parseXml(input: string | Uint8Array, options: XmlParseOptions = {}): Element {
  const vocabulary = options.vocabulary ?? SYNCML_12;
  const limits: DecodeLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > limits.maxBytes) throw new XmlFormatError(`document of ${size} bytes exceeds the limit of ${limits.maxBytes}`, 'limit');
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    try {
      text = utf8.decode(input);
    } catch {
      throw new XmlFormatError('document is not valid UTF-8', 'XML 1.0 §4.3.3');
    }
  }
  const namespaces = namespacesOf(vocabulary);
  if (options.fastPath !== false) {
    const plain = parsePlain(text, vocabulary, namespaces, limits);
    if (plain !== undefined) return plain;
  }
  const parser = new SaxesParser({ xmlns: true, position: true });
  const where = (): string => `${parser.line}:${parser.column}`;
  const stack: BuildingElement[] = [];
  let root: BuildingElement | undefined;
  let elements = 0;
  let totalContent = 0;

  const addText = (content: string): void => {
    const parent = stack[stack.length - 1];
    // saxes reports whitespace around the root as text; anything else there is its own error.
    if (parent === undefined) return;
    totalContent += content.length;
    if (totalContent > limits.maxTotalContent) throw new XmlFormatError(`content exceeds the limit of ${limits.maxTotalContent} in total`, 'limit', where());
    const last = parent.children[parent.children.length - 1];
    if (typeof last === 'string') {
      content = last + content;
      parent.children.pop();
    }
    if (content.length > limits.maxStringLength) throw new XmlFormatError(`a text value exceeds the limit of ${limits.maxStringLength}`, 'limit', where());
    if (content.length > 0) parent.children.push(content);
  };

  parser.on('xmldecl', (decl) => {
    const encoding = decl.encoding?.toLowerCase();
    if (encoding !== undefined && encoding !== 'utf-8' && encoding !== 'us-ascii') throw new XmlFormatError(`encoding ${decl.encoding} is not supported (UTF-8 only)`, 'XML 1.0 §4.3.3', where());
  });
  parser.on('doctype', (doctype) => {
    // An external identifier alone is harmless (nothing is fetched, and undeclared entities stay
    // errors); libwbxml and devices write one naming the SyncML DTD. A subset could declare entities.
    if (doctype.includes('[')) throw new XmlFormatError('a DOCTYPE with an internal subset is refused (entity declarations)', 'XML 1.0 §2.8', where());
  });
  parser.on('processinginstruction', (pi) => {
    throw new XmlFormatError(`processing instruction <?${pi.target.slice(0, 40)}?> is refused`, 'XML 1.0 §2.6', where());
  });
  parser.on('opentag', (tag: SaxesTagNS) => {
    for (const attribute of Object.values(tag.attributes)) {
      if (attribute.prefix !== 'xmlns' && attribute.name !== 'xmlns') throw new XmlFormatError(`attribute ${attribute.name} on <${tag.name}>: SyncML uses none`, 'OMA-TS-DM_RepPro-V1_2 §5', where());
    }
    if (tag.uri !== '' && !namespaces.has(tag.uri.toLowerCase())) throw new XmlFormatError(`<${tag.name}> is in namespace ${JSON.stringify(tag.uri.slice(0, 80))}, not ${vocabulary.name}'s`, 'OMA-TS-DM_RepPro-V1_2 §5', where());
    if (!vocabulary.codeOf.has(tag.local)) throw new XmlFormatError(`<${tag.local.slice(0, 40)}> is not an element of ${vocabulary.name}`, 'OMA-TS-DM_RepPro-V1_2 §5', where());
    if (++elements > limits.maxElements) throw new XmlFormatError(`more than ${limits.maxElements} elements`, 'limit', where());
    if (stack.length >= limits.maxDepth) throw new XmlFormatError(`elements nested deeper than ${limits.maxDepth}`, 'limit', where());
    const el: BuildingElement = { tag: tag.local, children: [], hasElementChild: false };
    const parent = stack[stack.length - 1];
    if (parent === undefined) root = el;
    else {
      parent.children.push(el);
      parent.hasElementChild = true;
    }
    stack.push(el);
  });
  parser.on('text', addText);
  parser.on('cdata', addText);
  parser.on('closetag', () => {
    stack.pop();
  });

  try {
    parser.write(text).close();
  } catch (error) {
    if (error instanceof XmlFormatError) throw error;
    // saxes reports well-formedness errors as plain Errors whose message starts with line:column.
    throw new XmlFormatError(error instanceof Error ? error.message : String(error), 'XML 1.0 well-formedness');
  }
  if (root === undefined) throw new XmlFormatError('no root element', 'XML 1.0 §2.1');
  return strip(root);
}

const namespaceSets = new WeakMap<WbxmlVocabulary, ReadonlySet<string>>();

/** The vocabulary's namespaces, lower case (made once per vocabulary). */
function namespacesOf(vocabulary: WbxmlVocabulary): ReadonlySet<string> {
  let set = namespaceSets.get(vocabulary);
  if (set === undefined) {
    set = new Set(vocabulary.pages.map((p) => p.namespace.toLowerCase()));
    namespaceSets.set(vocabulary, set);
  }
  return set;
}

// ---------------------------------------------------------------- fast path

/** XMLDecl (XML 1.0 §2.8) with version 1.0, as devices and Depot write it; anything else goes to saxes. */
const XML_DECL = /^<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:"1\.0"|'1\.0')(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:"([A-Za-z][A-Za-z0-9._-]*)"|'([A-Za-z][A-Za-z0-9._-]*)'))?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(?:"(?:yes|no)"|'(?:yes|no)'))?[ \t\r\n]*\?>/;
const PREDEFINED: ReadonlyMap<string, string> = new Map([['amp', '&'], ['lt', '<'], ['gt', '>'], ['quot', '"'], ['apos', "'"]]);

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
/** The characters of SyncML's element names (all ASCII); a name with any other goes to saxes. */
const isNameChar = (c: number): boolean => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2d || c === 0x2e;
/** XML 1.0 §2.2 Char, for a character reference's code point. */
const isXmlChar = (c: number): boolean => c === 0x09 || c === 0x0a || c === 0x0d || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);

interface PlainElement {
  readonly tag: string;
  readonly children: Node[];
}

/**
 * The fast path of parseXml, for the plain form SyncML messages take: an optional XML
 * declaration (version 1.0), one root element, elements of the vocabulary without prefixes whose
 * only attributes are default namespace declarations (xmlns="syncml:metinf", the vocabulary's
 * namespaces or none), text with the predefined entities and character references, and
 * whitespace. It returns the same tree the saxes path builds, or undefined for any document that
 * has anything else (comments, CDATA, a DOCTYPE, a processing instruction, a prefix, a raw CR,
 * a character XML forbids, a name outside the vocabulary, a limit reached, a mismatched tag,
 * truncation ...): saxes then parses it and accepts or refuses it with its own message. The fast
 * path never accepts what saxes would refuse: every construct it takes is checked in full.
 */
function parsePlain(text: string, vocabulary: WbxmlVocabulary, namespaces: ReadonlySet<string>, limits: DecodeLimits): Element | undefined {
  return plainTree(text, vocabulary, namespaces, limits);
}

/** The fast path alone, for the tests: the tree, or undefined where saxes would decide. */
export function parseXmlFastPath(text: string, options: Omit<XmlParseOptions, 'fastPath'> = {}): Element | undefined {
  const vocabulary = options.vocabulary ?? SYNCML_12;
  return plainTree(text, vocabulary, namespacesOf(vocabulary), { ...DEFAULT_LIMITS, ...options.limits });
}

function plainTree(text: string, vocabulary: WbxmlVocabulary, namespaces: ReadonlySet<string>, limits: DecodeLimits): Element | undefined {
  const n = text.length;
  let i = 0;
  if (text.startsWith('<?xml')) {
    const decl = XML_DECL.exec(text);
    if (decl === null) return undefined;
    const encoding = (decl[1] ?? decl[2])?.toLowerCase();
    if (encoding !== undefined && encoding !== 'utf-8' && encoding !== 'us-ascii') return undefined;
    i = decl[0].length;
  }
  while (i < n && isSpace(text.charCodeAt(i))) i++;
  const stack: PlainElement[] = [];
  /** Per open element: whether it has an element child (its whitespace-only text is then indentation). */
  const mixed: boolean[] = [];
  let root: PlainElement | undefined;
  let elements = 0;
  let totalContent = 0;
  for (;;) {
    // At '<' of a tag, or (inside the root) at text.
    if (i >= n) return undefined; // truncated
    const parent = stack[stack.length - 1];
    if (text.charCodeAt(i) !== 0x3c) {
      if (parent === undefined) return undefined; // text outside the root
      // Text up to the next '<', its references resolved.
      let value = '';
      let start = i;
      for (;;) {
        if (i >= n) return undefined;
        const c = text.charCodeAt(i);
        if (c === 0x3c) break;
        if (c === 0x26) {
          const semi = text.indexOf(';', i + 1);
          if (semi < 0 || semi - i > 12) return undefined;
          const ref = text.slice(i + 1, semi);
          let decoded: string | undefined;
          if (ref.charCodeAt(0) === 0x23) {
            const code = /^#[0-9]{1,7}$/.test(ref) ? Number(ref.slice(1)) : /^#x[0-9a-fA-F]{1,6}$/.test(ref) ? parseInt(ref.slice(2), 16) : NaN;
            if (!isXmlChar(code)) return undefined;
            decoded = String.fromCodePoint(code);
          } else decoded = PREDEFINED.get(ref);
          if (decoded === undefined) return undefined;
          value += text.slice(start, i) + decoded;
          i = semi + 1;
          start = i;
          continue;
        }
        if (c < 0x20) {
          if (c !== 0x09 && c !== 0x0a) return undefined; // a raw CR (line-end normalisation) or a control character
        } else if (c >= 0xd800 && c <= 0xdfff) {
          const next = text.charCodeAt(i + 1);
          if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return undefined;
          i++;
        } else if (c === 0xfffe || c === 0xffff) return undefined;
        else if (c === 0x3e && i >= 2 && text.charCodeAt(i - 1) === 0x5d && text.charCodeAt(i - 2) === 0x5d) return undefined; // ]]>
        i++;
      }
      value += text.slice(start, i);
      totalContent += value.length;
      if (totalContent > limits.maxTotalContent || value.length > limits.maxStringLength) return undefined;
      if (value.length > 0) parent.children.push(value);
      continue;
    }
    const c1 = text.charCodeAt(i + 1);
    if (c1 === 0x2f) {
      // </Name S?>
      if (parent === undefined) return undefined;
      const end = i + 2 + parent.tag.length;
      if (text.slice(i + 2, end) !== parent.tag) return undefined;
      i = end;
      while (i < n && isSpace(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) !== 0x3e) return undefined;
      i++;
      close(stack.pop()!, mixed.pop()!);
      if (stack.length === 0) {
        while (i < n && isSpace(text.charCodeAt(i))) i++;
        return i === n ? root : undefined; // only whitespace after the root here
      }
      continue;
    }
    // <Name (S xmlns="...")* S? /?>
    if (parent === undefined && root !== undefined) return undefined;
    let j = i + 1;
    while (j < n && isNameChar(text.charCodeAt(j))) j++;
    const tag = text.slice(i + 1, j);
    if (tag === '' || !vocabulary.codeOf.has(tag)) return undefined;
    let declared = false;
    for (;;) {
      const before = j;
      while (j < n && isSpace(text.charCodeAt(j))) j++;
      const c = text.charCodeAt(j);
      if (c === 0x3e || c === 0x2f) break;
      if (j === before || !text.startsWith('xmlns', j) || declared) return undefined;
      j += 5;
      while (j < n && isSpace(text.charCodeAt(j))) j++;
      if (text.charCodeAt(j) !== 0x3d) return undefined;
      j++;
      while (j < n && isSpace(text.charCodeAt(j))) j++;
      const quote = text.charCodeAt(j);
      if (quote !== 0x22 && quote !== 0x27) return undefined;
      const endQuote = text.indexOf(quote === 0x22 ? '"' : "'", j + 1);
      if (endQuote < 0) return undefined;
      const uri = text.slice(j + 1, endQuote);
      if (uri !== '' && !namespaces.has(uri.toLowerCase())) return undefined;
      declared = true;
      j = endQuote + 1;
    }
    if (++elements > limits.maxElements || stack.length >= limits.maxDepth) return undefined;
    const el: PlainElement = { tag, children: [] };
    if (parent === undefined) root = el;
    else {
      parent.children.push(el);
      mixed[mixed.length - 1] = true;
    }
    if (text.charCodeAt(j) === 0x2f) {
      if (text.charCodeAt(j + 1) !== 0x3e) return undefined;
      i = j + 2;
      if (parent === undefined) {
        while (i < n && isSpace(text.charCodeAt(i))) i++;
        return i === n ? root : undefined;
      }
    } else {
      i = j + 1;
      stack.push(el);
      mixed.push(false);
    }
  }
}

/** Drops indentation beside child elements in place (strip's rule). */
function close(el: PlainElement, hasElementChild: boolean): void {
  if (!hasElementChild) return;
  let k = 0;
  for (const child of el.children) if (typeof child !== 'string' || !WHITESPACE_ONLY.test(child)) el.children[k++] = child;
  el.children.length = k;
}

/** The finished tree; whitespace-only text beside elements is indentation, not content (SyncML has no mixed content). */
function strip(el: BuildingElement): Element {
  const children: Node[] = [];
  for (const child of el.children) {
    if (typeof child !== 'string') children.push(strip(child as BuildingElement));
    else if (!el.hasElementChild || !WHITESPACE_ONLY.test(child)) children.push(child);
  }
  return { tag: el.tag, children };
}

// ---------------------------------------------------------------- writer

/** XML 1.0 §2.2 Char. */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u;

/** Text with nothing to escape or check: printable ASCII but & < >, tab and LF (most of what Depot writes). */
const PLAIN_TEXT = /^[\t\n\x20-\x25\x27-\x3b\x3d\x3f-\x7e]*$/;

function escapeText(text: string, tag: string): string {
  if (PLAIN_TEXT.test(text)) return text;
  if (NOT_XML_CHAR.test(text)) throw new RangeError(`<${tag}> text contains a character XML 1.0 cannot carry`);
  // CR as a reference: a literal one would be normalised to LF by the reader (XML 1.0 §2.11).
  return text.replace(/[&<>\r]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&#13;'));
}

export interface XmlWriteOptions {
  readonly vocabulary?: WbxmlVocabulary;
  /** Start with <?xml version="1.0" encoding="UTF-8"?> (default true). */
  readonly declaration?: boolean;
}

/**
 * Writes an element tree as XML. Each element whose page's namespace differs from its parent's
 * gets an xmlns, as in OMA-TS-DM_RepPro-V1_2's examples (xmlns="syncml:metinf" on Meta
 * children). Opaque data is written as its UTF-8 text; binary data must be base64 text
 * (Format b64) in XML, so non-UTF-8 opaque data is a RangeError, as are unknown tags.
 */
export function writeXml(root: Element, options: XmlWriteOptions = {}): string {
  const vocabulary = options.vocabulary ?? SYNCML_12;
  const out: string[] = options.declaration === false ? [] : ['<?xml version="1.0" encoding="UTF-8"?>'];
  const write = (el: Element, parentNamespace: string | undefined): void => {
    const namespace = vocabulary.namespaceOf.get(el.tag);
    if (namespace === undefined) throw new RangeError(`<${el.tag}> is not an element of ${vocabulary.name}`);
    out.push(`<${el.tag}${namespace === parentNamespace ? '' : ` xmlns="${namespace}"`}`);
    const children = el.children.filter((c) => (typeof c === 'string' ? c !== '' : !(c instanceof Uint8Array) || c.length > 0));
    if (children.length === 0) {
      out.push('/>');
      return;
    }
    out.push('>');
    for (const child of children) {
      if (typeof child === 'string') out.push(escapeText(child, el.tag));
      else if (isElement(child)) write(child, namespace);
      else {
        let text: string;
        try {
          text = utf8.decode(child);
        } catch {
          throw new RangeError(`<${el.tag}> has binary opaque data: in XML it must be base64 text (Format b64)`);
        }
        out.push(escapeText(text, el.tag));
      }
    }
    out.push(`</${el.tag}>`);
  };
  write(root, undefined);
  return out.join('');
}
