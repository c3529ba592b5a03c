/** fast-check arbitraries for element trees of the SyncML 1.2 vocabulary, shared by the codec tests. */
import fc from 'fast-check';
import type { Element, Node } from '../../../src/omadm/element.js';
import { isElement } from '../../../src/omadm/element.js';
import { SYNCML_12 } from '../../../src/omadm/wbxml-tokens.js';

const TAGS = [...SYNCML_12.codeOf.keys()];
const NOT_XML_CHAR = /[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u;

/** Text XML 1.0 can carry (XML §2.2), any plane, with the markup characters often. */
export const xmlText = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }),
  fc.string({ unit: fc.constantFrom('<', '>', '&', ']', '\r', '\n', ' ', 'a', '"', "'", ';', '#'), minLength: 1, maxLength: 12 }),
).filter((s) => !NOT_XML_CHAR.test(s));

/**
 * SyncML-shaped trees: an element holds either elements or content (text, and opaque bytes
 * when `opaque`), never both, as in every SyncML element.
 */
export function treeArbitrary(opaque: boolean): fc.Arbitrary<Element> {
  const tag = fc.constantFrom(...TAGS);
  const content: fc.Arbitrary<Node> = opaque ? fc.oneof(xmlText, fc.uint8Array({ minLength: 1, maxLength: 24 })) : xmlText;
  const { tree } = fc.letrec<{ tree: Element }>((self) => ({
    tree: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.record({ tag, children: fc.array(content, { maxLength: 3 }) }),
      fc.record({ tag, children: fc.array(self('tree'), { maxLength: 4 }) }),
    ),
  }));
  return tree;
}

/** The tree with opaque children read as the UTF-8 text they hold (what XML can carry). */
export function opaqueAsText(el: Element): Element {
  return {
    tag: el.tag,
    children: el.children.map((c): Node => (c instanceof Uint8Array ? Buffer.from(c).toString('utf8') : isElement(c) ? opaqueAsText(c) : c)),
  };
}

/** One byte changed, inserted or removed, or the input cut short. */
export function mutationArbitrary(bytes: Uint8Array): fc.Arbitrary<Uint8Array> {
  const at = fc.nat({ max: Math.max(0, bytes.length - 1) });
  return fc.oneof(
    fc.tuple(at, fc.integer({ min: 0, max: 255 })).map(([i, b]) => {
      const out = Uint8Array.from(bytes);
      out[i] = b;
      return out;
    }),
    fc.tuple(at, fc.integer({ min: 0, max: 255 })).map(([i, b]) => Uint8Array.from([...bytes.subarray(0, i), b, ...bytes.subarray(i)])),
    at.map((i) => Uint8Array.from([...bytes.subarray(0, i), ...bytes.subarray(i + 1)])),
    at.map((i) => bytes.slice(0, i)),
  );
}
