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
  const namespaces = new Set(vocabulary.pages.map((p) => p.namespace.toLowerCase()));
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

function escapeText(text: string, tag: string): string {
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
