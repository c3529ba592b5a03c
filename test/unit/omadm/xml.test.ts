/**
 * SyncML as XML: the refusals that keep untrusted XML bounded (no DTD internal subset, so no
 * entity declarations, expansion or external entities; XML 1.0 §2.8, §4), namespaces
 * (OMA-TS-DM_RepPro-V1_2 §5, MetInf in "syncml:metinf"), and round trips with the writer.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { canonical, element } from '../../../src/omadm/element.js';
import { XmlFormatError } from '../../../src/omadm/errors.js';
import { encodeSyncML } from '../../../src/omadm/syncml.js';
import { parseXml, parseXmlFastPath, writeXml } from '../../../src/omadm/xml.js';
import { clientPackage1, clientPackage3, serverPackage2 } from './messages.js';
import { mutationArbitrary, opaqueAsText, treeArbitrary, xmlText } from './trees.js';

function expectError(xml: string | Uint8Array, clause: string, pattern?: RegExp): XmlFormatError {
  let caught: unknown;
  try {
    parseXml(xml, { limits: { maxDepth: 6, maxElements: 20, maxStringLength: 64, maxTotalContent: 200 } });
  } catch (error) {
    caught = error;
  }
  if (!(caught instanceof XmlFormatError)) assert.fail(`expected XmlFormatError, got ${String(caught)}`);
  assert.equal(caught.clause, clause, caught.message);
  if (pattern !== undefined) assert.match(caught.message, pattern);
  return caught;
}

const SYNCML_OPEN = '<SyncML xmlns="SYNCML:SYNCML1.2">';

test('RepPro §5: SyncML and MetInf namespaces; MetInf tags known by name even without their xmlns', () => {
  const root = parseXml(`<?xml version="1.0" encoding="UTF-8"?>\n${SYNCML_OPEN}\n  <SyncHdr>\n    <Meta><MaxMsgSize xmlns="syncml:metinf">10000</MaxMsgSize><mi:Type xmlns:mi="syncml:metinf">text/plain</mi:Type><Format>b64</Format></Meta>\n  </SyncHdr>\n</SyncML>`);
  assert.deepEqual(root, element('SyncML', element('SyncHdr', element('Meta', element('MaxMsgSize', '10000'), element('Type', 'text/plain'), element('Format', 'b64')))));
  expectError('<SyncML xmlns="urn:other"/>', 'OMA-TS-DM_RepPro-V1_2 §5', /namespace "urn:other"/);
  expectError(`${SYNCML_OPEN}<Bogus/></SyncML>`, 'OMA-TS-DM_RepPro-V1_2 §5', /<Bogus> is not an element/);
  expectError(`${SYNCML_OPEN}<Final a="1"/></SyncML>`, 'OMA-TS-DM_RepPro-V1_2 §5', /attribute a/);
});

test('XML 1.0 §2.8, §4.1: a DOCTYPE naming the SyncML DTD is accepted and never fetched; an internal subset is refused', () => {
  const doctype = '<!DOCTYPE SyncML PUBLIC "-//SYNCML//DTD SyncML 1.2//EN" "http://www.openmobilealliance.org/tech/DTD/OMA-TS-SyncML_RepPro_DTD-V1_2.dtd">';
  assert.deepEqual(parseXml(`<?xml version="1.0"?>${doctype}${SYNCML_OPEN}<SyncBody><Final/></SyncBody></SyncML>`), element('SyncML', element('SyncBody', element('Final'))));
  // Billion laughs and an external entity: refused at the subset, before any reference.
  const laughs = '<!DOCTYPE SyncML [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>';
  expectError(`${laughs}${SYNCML_OPEN}<SyncBody><Data>&b;</Data></SyncBody></SyncML>`, 'XML 1.0 §2.8', /internal subset/);
  expectError(`<!DOCTYPE SyncML [<!ENTITY x SYSTEM "file:///etc/passwd">]>${SYNCML_OPEN}<Data>&x;</Data></SyncML>`, 'XML 1.0 §2.8');
});

test('XML 1.0 §4.1, §4.6: only the five predefined entities and character references; undeclared ones are errors', () => {
  assert.deepEqual(parseXml('<Data>&lt;&gt;&amp;&quot;&apos;&#65;&#x1F600;</Data>'), element('Data', '<>&"\'A\u{1f600}'));
  expectError('<Data>&foo;</Data>', 'XML 1.0 well-formedness', /undefined entity/);
  expectError('<Data>&#0;</Data>', 'XML 1.0 well-formedness');
});

test('XML 1.0 §2.7: CDATA sections are text, joined to the text around them', () => {
  assert.deepEqual(parseXml('<Data>a<![CDATA[<b>&amp;]]>c</Data>'), element('Data', 'a<b>&amp;c'));
});

test('XML 1.0 §2.6, §4.3.3: processing instructions and encodings other than UTF-8 are refused', () => {
  expectError('<?xml-stylesheet href="x"?><SyncML/>', 'XML 1.0 §2.6');
  expectError('<?xml version="1.0" encoding="ISO-8859-1"?><SyncML/>', 'XML 1.0 §4.3.3', /ISO-8859-1/);
  expectError(Uint8Array.from([0x3c, 0x44, 0x61, 0x74, 0x61, 0x3e, 0xc3, 0x28, 0x3c, 0x2f, 0x44, 0x61, 0x74, 0x61, 0x3e]), 'XML 1.0 §4.3.3', /not valid UTF-8/);
});

test('XML 1.0: not well-formed documents are XmlFormatError', () => {
  for (const bad of ['', '<SyncML>', '<SyncML></SyncBody>', '<SyncML/><SyncML/>', 'text', '<SyncML><Final/>junk</SyncML', '<Data>a < b</Data>']) {
    assert.throws(() => parseXml(bad), XmlFormatError, JSON.stringify(bad));
  }
});

test('whitespace between elements is dropped; text in a leaf is kept exactly', () => {
  assert.deepEqual(parseXml('<Item>\n  <Data>  two  spaces\t</Data>\n  <MoreData/>\n</Item>'), element('Item', element('Data', '  two  spaces\t'), element('MoreData')));
  assert.deepEqual(parseXml('<Data>   </Data>'), element('Data', '   '));
});

test('limits: depth, elements, text length and total text', () => {
  expectError('<Item>'.repeat(7) + '</Item>'.repeat(7), 'limit', /deeper than 6/);
  expectError('<Item>' + '<Final/>'.repeat(20) + '</Item>', 'limit', /more than 20 elements/);
  expectError(`<Data>${'x'.repeat(65)}</Data>`, 'limit', /limit of 64/);
  expectError(`<Item>${'<Data>xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx</Data>'.repeat(5)}</Item>`, 'limit', /in total/);
  assert.throws(() => parseXml('<Final/>', { limits: { maxBytes: 7 } }), (e) => e instanceof XmlFormatError && e.clause === 'limit');
});

test('writer: xmlns on the root and on MetInf elements, escapes, CR as a reference, empty elements', () => {
  const xml = writeXml(element('SyncML', element('Meta', element('Type', 'a<b>&c\r\n')), element('Final')));
  assert.equal(xml, '<?xml version="1.0" encoding="UTF-8"?><SyncML xmlns="SYNCML:SYNCML1.2"><Meta><Type xmlns="syncml:metinf">a&lt;b&gt;&amp;c&#13;\n</Type></Meta><Final/></SyncML>');
  assert.deepEqual(parseXml(xml), element('SyncML', element('Meta', element('Type', 'a<b>&c\r\n')), element('Final')));
  assert.throws(() => writeXml(element('Data', Uint8Array.from([0xff]))), /base64 text \(Format b64\)/);
  assert.throws(() => writeXml(element('Data', '\u0001')), RangeError);
  assert.throws(() => writeXml(element('Nope')), RangeError);
});

test('property: any SyncML-shaped tree survives writeXml → parseXml (opaque UTF-8 data as text)', () => {
  fc.assert(
    fc.property(treeArbitrary(false), (tree) => {
      assert.deepEqual(parseXml(writeXml(tree)), canonical(tree));
    }),
    { numRuns: 300 },
  );
  const utf8Opaque = element('Data', Uint8Array.from(Buffer.from('ünï <&> ]]>')));
  assert.deepEqual(parseXml(writeXml(utf8Opaque)), opaqueAsText(utf8Opaque));
});

test('property: mutated and truncated XML parses or throws XmlFormatError, nothing else', () => {
  const sample = Buffer.from(writeXml(element('SyncML', element('SyncHdr', element('VerDTD', '1.2'), element('Meta', element('MaxMsgSize', '10000'))), element('SyncBody', element('Final')))));
  fc.assert(
    fc.property(mutationArbitrary(sample), (mutated) => {
      try {
        parseXml(mutated);
      } catch (error) {
        if (!(error instanceof XmlFormatError)) throw error;
      }
    }),
    { numRuns: 2000 },
  );
});

/** The outcome of parsing: the tree, or the error class and clause. */
function outcome(input: string | Uint8Array, fastPath: boolean, limits?: Parameters<typeof parseXml>[1]): unknown {
  try {
    return { tree: parseXml(input, { fastPath, ...limits }) };
  } catch (error) {
    if (!(error instanceof XmlFormatError)) throw error;
    return { error: error.clause, message: error.message };
  }
}

const DM_MESSAGES = [clientPackage1, serverPackage2, clientPackage3].map((m) => Buffer.from(encodeSyncML(m, 'xml')));
/** As devices write them: indented, a DOCTYPE-less declaration, MetInf with and without its xmlns. */
const DEVICE_STYLE = Buffer.from(`<?xml version='1.0' encoding='utf-8' standalone="yes" ?>\n<SyncML xmlns='SYNCML:SYNCML1.2' >\n <SyncHdr>\n  <VerDTD>1.2</VerDTD>\n  <Meta><MaxMsgSize xmlns="syncml:metinf">10000</MaxMsgSize><Type>text/plain</Type></Meta>\n </SyncHdr>\n <SyncBody>\n  <Replace><CmdID>2</CmdID><Item><Source><LocURI>./DevInfo/Man</LocURI></Source><Data>A &amp; B &#x1F600; &#65;&lt;</Data></Item></Replace>\n  <Final />\n </SyncBody>\n</SyncML>\n`);

test('fast path: DM messages as Depot and devices write them are read without saxes, to the same tree', () => {
  for (const bytes of [...DM_MESSAGES, DEVICE_STYLE]) {
    const text = bytes.toString('utf8');
    const fast = parseXmlFastPath(text);
    assert.ok(fast !== undefined, `the fast path declined ${text.slice(0, 80)}`);
    assert.deepEqual(fast, parseXml(bytes, { fastPath: false }));
  }
});

test('fast path: anything beyond the plain form is left to saxes (XML 1.0 §2.4 ]]>, §2.8, §2.11 CR, §4.1 references, Namespaces prefixes)', () => {
  for (const doc of [
    '<Data>a]]>b</Data>', '<Data>a\rb</Data>', '<Data>&constructor;</Data>', '<Data>&toString;</Data>', '<Data>&#0;</Data>', '<Data>&#x110000;</Data>',
    '<Data>&nbsp;</Data>', '<Data>\u0001</Data>', '<Data>\ud800</Data>', '<Data>\uffff</Data>', '<!-- c --><Final/>', '<Data><![CDATA[x]]></Data>',
    '<!DOCTYPE SyncML><Final/>', '<?xml version="1.1"?><Final/>', '<?xml version="1.0" encoding="ISO-8859-1"?><Final/>', '<Final/><?pi x?>',
    '<m:Final xmlns:m="syncml:metinf"/>', '<Final a="1"/>', '<Final xmlns="urn:other"/>', '<Final xmlns="syncml:metinf" xmlns="syncml:metinf"/>',
    '<Final xmlns="syncml:metinf"xmlns="x"/>', '<Item></Data>', '<Item><Final/>', '<Nope/>', ' <Final/>x', '<Final/><Final/>', '\ufeff<Final/>',
  ]) {
    assert.equal(parseXmlFastPath(doc), undefined, JSON.stringify(doc));
    assert.deepEqual(outcome(doc, true), outcome(doc, false), JSON.stringify(doc));
  }
});

test('property: the fast path and saxes agree on mutated and truncated DM messages (same tree or same refusal)', () => {
  for (const sample of [...DM_MESSAGES, DEVICE_STYLE]) {
    fc.assert(
      fc.property(mutationArbitrary(sample), (mutated) => {
        assert.deepEqual(outcome(mutated, true), outcome(mutated, false));
      }),
      { numRuns: 1500 },
    );
  }
});

test('property: the fast path and saxes agree on any text, raw or escaped, in a leaf and between elements, under tight limits', () => {
  const limits = { limits: { maxDepth: 4, maxElements: 6, maxStringLength: 24, maxTotalContent: 60 } };
  fc.assert(
    fc.property(xmlText, fc.string({ unit: fc.constantFrom('<', '>', '&', ';', '#', 'x', '1', 'a', 'm', 'p', ']', '\r', ' ', '/', '=', '"', '!', '?'), maxLength: 16 }), (text, raw) => {
      for (const doc of [`<Item><Data>${raw}</Data></Item>`, `<Item>${raw}<Data/></Item>`, `<Data>${text}</Data>`, `<Item><Data>${writeXml(element('Data', text), { declaration: false }).replace(/^<Data[^>]*>|<\/Data>$/g, '')}</Data>${raw}</Item>`]) {
        assert.deepEqual(outcome(doc, true, limits), outcome(doc, false, limits), JSON.stringify(doc));
      }
    }),
    { numRuns: 1500 },
  );
});
