/**
 * WBXML 1.3 codec (WAP-192-WBXML-20010725-a). Each test names the clause it checks; the golden
 * vectors were written by libwbxml's xml2wbxml (an encoder nobody here wrote).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { canonical, element } from '../../../src/omadm/element.js';
import type { Element } from '../../../src/omadm/element.js';
import { WbxmlFormatError } from '../../../src/omadm/errors.js';
import { decodeWbxml, encodeMbUint32, encodeWbxml } from '../../../src/omadm/wbxml.js';
import { SYNCML_12 } from '../../../src/omadm/wbxml-tokens.js';
import { mutationArbitrary, treeArbitrary } from './trees.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (...parts: (number | string)[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'number' ? [p] : [...Buffer.from(p, 'utf8')])));

/** The WBXML 1.3 header Depot writes: version 1.3, public id 0x1201 (SyncML 1.2), UTF-8, empty string table. */
const HEADER = [0x03, 0xa4, 0x01, 0x6a, 0x00];

function expectError(data: Uint8Array, clause: string, pattern?: RegExp): WbxmlFormatError {
  let caught: unknown;
  try {
    decodeWbxml(data, { limits: { maxDepth: 8, maxElements: 50, maxStringLength: 64, maxTotalContent: 256 } });
  } catch (error) {
    caught = error;
  }
  if (!(caught instanceof WbxmlFormatError)) assert.fail(`expected WbxmlFormatError, got ${String(caught)}`);
  assert.equal(caught.clause, clause, caught.message);
  if (pattern !== undefined) assert.match(caught.message, pattern);
  return caught;
}

// xml2wbxml -v 1.3 of a client Package 1 (Data of the Item as OPAQUE, as libwbxml writes it).
const LIBWBXML_PACKAGE =
  '03a4016a006d6c7103312e3200017203444d2f312e32000165033100015b033100016e5703687474703a2f2f646d2e6578616d706c652f000101675703494d45493a3439333030353130303539323830300001015a00014c0331303030300001010100006b464b033100014f0331323031000101604b03320001546757032e2f446576496e666f2f4d6f640001015a0001470363687200015303746578742f706c61696e00010100004fc3094d6f64656c20262031010101120101';
// xml2wbxml of a message in which "DM/1.2" occurs twice: libwbxml puts it in the string table.
const LIBWBXML_STRING_TABLE = '03a4016a07444d2f312e32006d6c7103312e320001728300016503312e3200015b830001016b464b033100014f0331323031000101120101';

test('WBXML §5.4-§5.6, §7.2: libwbxml header (1.3, public id 0x1201 "-//SYNCML//DTD SyncML 1.2//EN", UTF-8) and body decode', () => {
  const doc = decodeWbxml(hex(LIBWBXML_PACKAGE));
  assert.equal(doc.version, 0x03);
  assert.equal(doc.publicId, 0x1201);
  assert.equal(doc.charset, 106);
  const [hdr, body] = doc.root.children as Element[];
  assert.equal(doc.root.tag, 'SyncML');
  assert.deepEqual(hdr!.children[0], element('VerDTD', '1.2'));
  // §5.8.1: SWITCH_PAGE 1 selects MetInf for <MaxMsgSize>, and back to page 0 after </Meta>.
  assert.deepEqual((hdr!.children[6] as Element).children[0], element('MaxMsgSize', '10000'));
  assert.equal(body!.tag, 'SyncBody');
  const data = ((body!.children[1] as Element).children[1] as Element).children[2] as Element;
  assert.equal(data.tag, 'Data');
  // §5.8.4.6: OPAQUE content is bytes.
  assert.deepEqual(data.children, [Uint8Array.from(Buffer.from('Model & 1'))]);
  assert.deepEqual(body!.children[2], element('Final'));
});

test('WBXML §5.7, §5.8.4.1: STR_T references into libwbxml\'s string table decode to the table strings', () => {
  const doc = decodeWbxml(hex(LIBWBXML_STRING_TABLE));
  const hdr = doc.root.children[0] as Element;
  assert.deepEqual(hdr.children.slice(0, 4), [element('VerDTD', '1.2'), element('VerProto', 'DM/1.2'), element('SessionID', '1.2'), element('MsgID', 'DM/1.2')]);
});

test('WBXML §5.1: mb_u_int32 examples (0xA0 is 0x81 0x20, 0x60 is 0x60) and the 32-bit bound', () => {
  assert.deepEqual(encodeMbUint32(0xa0), [0x81, 0x20]);
  assert.deepEqual(encodeMbUint32(0x60), [0x60]);
  assert.deepEqual(encodeMbUint32(0x1201), [0xa4, 0x01]);
  assert.deepEqual(encodeMbUint32(0xffffffff), [0x8f, 0xff, 0xff, 0xff, 0x7f]);
  // A sixth continuation byte, and a value past 2^32 - 1, in the string-table length.
  expectError(Uint8Array.from([0x03, 0x01, 0x6a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), '§5.1', /longer than the 5 bytes/);
  expectError(Uint8Array.from([0x03, 0x01, 0x6a, 0x9f, 0xff, 0xff, 0xff, 0x7f]), '§5.1', /exceeds 32 bits/);
});

test('WBXML §5.5: a public identifier given as a string-table FPI is read and written', () => {
  const root = element('SyncML', element('Final'));
  const encoded = encodeWbxml(root, { literalPublicId: true });
  // 0x00 then index 0 of a string table holding the FPI.
  assert.equal(toHex(encoded.subarray(0, 5)), '0300006a1e');
  const doc = decodeWbxml(encoded);
  assert.equal(doc.publicId, '-//SYNCML//DTD SyncML 1.2//EN');
  assert.deepEqual(doc.root, root);
  // §7.2.1: 1 is "unknown or missing", written by anonymous encoders; the Content-Type says DM.
  assert.equal(decodeWbxml(bytes(0x03, 0x01, 0x6a, 0x00, 0x12)).publicId, 1);
  expectError(bytes(0x03, 0x00, 0x00, 0x6a, 0x04, 'abc', 0, 0x12), '§5.5', /is not SyncML 1.2/);
  expectError(bytes(0x03, 0xa4, 0x02, 0x6a, 0x00, 0x12), '§5.5', /0x1202/);
});

test('WBXML §5.4, §5.6: version and charset', () => {
  expectError(Uint8Array.from([0x13, 0xa4, 0x01, 0x6a, 0x00, 0x12]), '§5.4', /version 2\.3/);
  expectError(Uint8Array.from([0x03, 0xa4, 0x01, 0x04, 0x00, 0x12]), '§5.6', /MIBenum 4/);
  // WBXML 1.0 has no charset field.
  assert.deepEqual(decodeWbxml(Uint8Array.from([0x00, 0xa4, 0x01, 0x00, 0x12])).root, element('Final'));
  expectError(bytes(...HEADER, 0x4f, 0x03, 0xff, 0xfe, 0x00, 0x01), '§5.6', /not valid UTF-8/);
});

test('WBXML §5.8.2: an element without the content bit has no END; an unknown token on a page is refused', () => {
  assert.deepEqual(decodeWbxml(Uint8Array.from([...HEADER, 0x6b, 0x12, 0x01])).root, element('SyncBody', element('Final')));
  expectError(Uint8Array.from([...HEADER, 0x30]), '§5.8.2', /unknown tag token 0x30 on code page 0/);
  expectError(Uint8Array.from([...HEADER, 0x00, 0x01, 0x3f]), '§5.8.2', /0x3f on code page 1/);
  expectError(Uint8Array.from([...HEADER, 0x00, 0x02, 0x12]), '§5.8.4.7.2', /code page 2/);
});

test('WBXML §5.8.3: attributes (tag bit 7, LITERAL_A) are refused: SyncML defines none', () => {
  expectError(Uint8Array.from([...HEADER, 0xed, 0x05, 0x01, 0x01]), '§5.8.3');
  expectError(Uint8Array.from([0x03, 0xa4, 0x01, 0x6a, 0x02, 0x61, 0x00, 0x84, 0x00, 0x01]), '§5.8.3');
});

test('WBXML §5.8.4.2, §5.8.4.4: extension tokens and processing instructions are refused', () => {
  expectError(Uint8Array.from([...HEADER, 0x4f, 0xc0, 0x01]), '§5.8.4.2', /extension token 0xc0/);
  expectError(Uint8Array.from([...HEADER, 0x4f, 0x40, 0x61, 0x00, 0x01]), '§5.8.4.2');
  expectError(Uint8Array.from([...HEADER, 0x43, 0x05, 0x01, 0x12]), '§5.8.4.4');
});

test('WBXML §5.8.4.3: ENTITY is a character; one XML cannot carry (U+0000, past U+10FFFF) is refused', () => {
  const doc = decodeWbxml(bytes(...HEADER, 0x4f, 0x03, 'a', 0, 0x02, 0x81, 0xe8, 0x1c, 0x03, 'b', 0, 0x01));
  // 0x81 0xE8 0x1C = U+741C; adjacent strings and entities are one text.
  assert.deepEqual(doc.root, element('Data', 'a\u741cb'));
  expectError(bytes(...HEADER, 0x4f, 0x02, 0x00, 0x01), '§5.8.4.3', /U\+0/);
  expectError(bytes(...HEADER, 0x4f, 0x02, 0xc4, 0x80, 0x80, 0x00, 0x01), '§5.8.4.3');
  expectError(bytes(...HEADER, 0x4f, 0x03, '\u0001', 0x00, 0x01), '§5.8.4.1', /XML 1\.0 does not allow/);
});

test('WBXML §5.7: string-table references past the table or to an unterminated string are refused', () => {
  expectError(bytes(0x03, 0xa4, 0x01, 0x6a, 0x02, 'a', 0, 0x4f, 0x83, 0x02, 0x01), '§5.7', /past the string table/);
  expectError(bytes(0x03, 0xa4, 0x01, 0x6a, 0x02, 'ab', 0x4f, 0x83, 0x00, 0x01), '§5.7', /NUL terminator/);
  expectError(bytes(0x03, 0xa4, 0x01, 0x6a, 0x05, 'ab', 0), '§5', /string table of 5 bytes/);
});

test('WBXML §5.8.4.6: OPAQUE carries any bytes, its length bounded by the input', () => {
  const value = Uint8Array.from({ length: 200 }, (_, i) => (i * 37) & 0xff);
  const encoded = encodeWbxml(element('Data', value));
  // 200 as mb_u_int32 is 0x81 0x48.
  assert.equal(toHex(encoded.subarray(5, 9)), '4fc38148');
  assert.deepEqual(decodeWbxml(encoded).root, element('Data', value));
  expectError(bytes(...HEADER, 0x4f, 0xc3, 0x05, 'abc'), '§5', /opaque data of 5 bytes extends past the end/);
});

test('WBXML §5.3, §5.8: one root, nothing after it, nothing left open', () => {
  expectError(bytes(...HEADER, 0x12, 0x12), '§5.3', /1 bytes after the end/);
  expectError(bytes(...HEADER, 0x6b, 0x12), '§5', /truncated/);
  expectError(bytes(...HEADER, 0x03, 'x', 0), '§5.8', /content outside the root/);
  expectError(bytes(...HEADER, 0x01), '§5.8.4.7.1');
  expectError(bytes(...HEADER), '§5', /root element expected/);
});

test('limits: depth, element count, string length and string-table amplification are bounded', () => {
  expectError(Uint8Array.from([...HEADER, ...Array<number>(9).fill(0x6b), ...Array<number>(9).fill(0x01)]), 'limit', /deeper than 8/);
  expectError(Uint8Array.from([...HEADER, 0x6b, ...Array<number>(60).fill(0x12), 0x01]), 'limit', /more than 50 elements/);
  expectError(bytes(...HEADER, 0x4f, 0x03, 'x'.repeat(65), 0, 0x01), 'limit', /limit of 64/);
  // 40 bytes of STR_T pointing at one 60-byte string: 1,200 characters from 110 bytes of input.
  const table = 'y'.repeat(60);
  expectError(bytes(0x03, 0xa4, 0x01, 0x6a, 61, table, 0, 0x6b, ...Array<number>(20).fill(0).flatMap(() => [0x4f, 0x83, 0x00, 0x01]), 0x01), 'limit', /in total/);
  assert.throws(() => decodeWbxml(new Uint8Array(100), { limits: { maxBytes: 99 } }), (e) => e instanceof WbxmlFormatError && e.clause === 'limit');
});

test('WBXML §5.7: the encoder\'s string table holds repeated strings, referenced with STR_T', () => {
  const root = element('SyncML', element('SessionID', 'repeated'), element('MsgID', 'repeated'), element('CmdID', 'once'));
  const withTable = encodeWbxml(root, { stringTable: true });
  assert.equal(toHex(withTable.subarray(4, 14)), '09' + Buffer.from('repeated\0').toString('hex'));
  assert.ok(withTable.length < encodeWbxml(root).length);
  assert.deepEqual(decodeWbxml(withTable).root, root);
});

test('encoder: trees the vocabulary cannot express are Depot\'s bugs (RangeError)', () => {
  assert.throws(() => encodeWbxml(element('Unknown')), RangeError);
  assert.throws(() => encodeWbxml(element('Data', 'a\0b')), RangeError);
});

test('property: any SyncML-shaped tree survives encode → decode, with and without a string table', () => {
  fc.assert(
    fc.property(treeArbitrary(true), fc.boolean(), fc.boolean(), (tree, stringTable, literalPublicId) => {
      const doc = decodeWbxml(encodeWbxml(tree, { stringTable, literalPublicId }));
      assert.deepEqual(doc.root, canonical(tree));
    }),
    { numRuns: 300 },
  );
});

test('property: mutated and truncated documents decode or throw WbxmlFormatError, nothing else', () => {
  const samples = [hex(LIBWBXML_PACKAGE), hex(LIBWBXML_STRING_TABLE)];
  fc.assert(
    fc.property(fc.constantFrom(...samples).chain(mutationArbitrary), (mutated) => {
      try {
        decodeWbxml(mutated);
      } catch (error) {
        if (!(error instanceof WbxmlFormatError)) throw error;
      }
    }),
    { numRuns: 2000 },
  );
  // Every proper prefix is truncated somewhere: none of them is a document.
  const whole = hex(LIBWBXML_PACKAGE);
  for (let length = 0; length < whole.length; length++) assert.throws(() => decodeWbxml(whole.subarray(0, length)), WbxmlFormatError);
});

test('property: random bytes after a valid header never escape as anything but WbxmlFormatError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (tail) => {
      try {
        decodeWbxml(Uint8Array.from([...HEADER, ...tail]));
      } catch (error) {
        if (!(error instanceof WbxmlFormatError)) throw error;
      }
    }),
    { numRuns: 2000 },
  );
});

test('the code pages have the SyncML 1.2 (55 tags) and MetInf 1.2 (18 tags) sizes', () => {
  assert.equal(SYNCML_12.pages[0]!.tags.length, 55);
  assert.equal(SYNCML_12.pages[1]!.tags.length, 18);
});
