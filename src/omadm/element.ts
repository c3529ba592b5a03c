/**
 * The small element tree that both SyncML encodings (XML and WBXML) decode to and encode from.
 * SyncML has no attributes and no mixed content that matters, so an element is a tag and its
 * children: elements, text, or opaque bytes (WBXML OPAQUE, WAP-192-WBXML §5.8.4.6).
 */

export interface Element {
  /** The tag name; SyncML and MetInf tag names are distinct, so the name alone says the code page. */
  readonly tag: string;
  readonly children: readonly Node[];
}

export type Node = Element | string | Uint8Array;

export function isElement(node: Node): node is Element {
  return typeof node === 'object' && !(node instanceof Uint8Array);
}

export function element(tag: string, ...children: (Node | undefined)[]): Element {
  return { tag, children: children.filter((c): c is Node => c !== undefined) };
}

/** Bounds on what a decoder builds from untrusted input. */
export interface DecodeLimits {
  /** Input size in bytes. */
  readonly maxBytes: number;
  /** Element nesting depth (the root is depth 1). */
  readonly maxDepth: number;
  /** Number of elements. */
  readonly maxElements: number;
  /** Length of one text or opaque child, in UTF-16 code units or bytes. */
  readonly maxStringLength: number;
  /**
   * Total text and opaque content produced, which WBXML string-table references (STR_T) could
   * otherwise multiply far beyond the input size, as entities do in XML.
   */
  readonly maxTotalContent: number;
}

/**
 * Defaults sized for DM messages: devices announce MaxMsgSize in the kilobytes (OMA-TS-DM_RepPro
 * §6.1.9 MaxMsgSize), and large objects are split with MoreData, so 1 MiB is generous.
 */
export const DEFAULT_LIMITS: DecodeLimits = {
  maxBytes: 1024 * 1024,
  maxDepth: 32,
  maxElements: 20_000,
  maxStringLength: 512 * 1024,
  maxTotalContent: 2 * 1024 * 1024,
};

/** Text of an element with only text (or opaque UTF-8) children; undefined if it has element children. */
export function textOf(el: Element): string | undefined {
  let text = '';
  for (const child of el.children) {
    if (typeof child === 'string') text += child;
    else if (child instanceof Uint8Array) text += Buffer.from(child).toString('utf8');
    else return undefined;
  }
  return text;
}

/**
 * The canonical form decoders produce: no empty strings, adjacent strings merged. Encoders
 * accept any tree; round trips compare canonical forms.
 */
export function canonical(el: Element): Element {
  const children: Node[] = [];
  for (const child of el.children) {
    if (typeof child === 'string') {
      if (child === '') continue;
      const last = children[children.length - 1];
      if (typeof last === 'string') children[children.length - 1] = last + child;
      else children.push(child);
    } else if (child instanceof Uint8Array) {
      if (child.length > 0) children.push(child);
    } else children.push(canonical(child));
  }
  return { tag: el.tag, children };
}
