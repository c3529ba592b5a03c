/**
 * Interop of Depot's WBXML codec and SyncML XML with libwbxml 0.11 (Debian libwbxml2-utils:
 * xml2wbxml, wbxml2xml), an implementation nobody here wrote, in both directions:
 *   Depot WBXML → wbxml2xml → Depot's XML reader: the same message;
 *   Depot XML → xml2wbxml (with and without string table, WBXML 1.1-1.3) → Depot's WBXML decoder: the same message.
 * Every tag of both code pages is checked byte for byte against libwbxml's encoding.
 * Missing binaries make these tests fail, never skip (scripts/ensure-peers.sh installs them).
 */
import { after, before, describe, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonical, element } from '../../src/omadm/element.js';
import type { Element } from '../../src/omadm/element.js';
import { decodeSyncML, encodeSyncML, readSyncML, syncMLElement } from '../../src/omadm/syncml.js';
import type { SyncMLMessage } from '../../src/omadm/syncml.js';
import { decodeWbxml, encodeWbxml } from '../../src/omadm/wbxml.js';
import { SYNCML_12 } from '../../src/omadm/wbxml-tokens.js';
import { parseXml, writeXml } from '../../src/omadm/xml.js';
import { requireExecutable, runProcess } from '../support/peer-process.js';
import { binaryReplace, BINARY_VALUE, clientPackage1, clientPackage3, serverPackage2 } from '../unit/omadm/messages.js';
import { treeArbitrary } from '../unit/omadm/trees.js';

const SAMPLES: [string, SyncMLMessage][] = [
  ['client Package 1 (Alert 1201, Replace ./DevInfo, Cred)', clientPackage1],
  ['server Package 2 (Status, Chal, Get, Replace, Sequence with Add and Exec)', serverPackage2],
  ['client Package 3 (Status, Results with MoreData, Generic Alert)', clientPackage3],
];

let dir: string;
let xml2wbxml: string;
let wbxml2xml: string;
let setupFailure: Error | undefined;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'depot-wbxml-'));
  try {
    xml2wbxml = requireExecutable('xml2wbxml');
    wbxml2xml = requireExecutable('wbxml2xml');
  } catch (error) {
    // Kept and rethrown by every test: node:test would only cancel them, and they must fail.
    setupFailure = error as Error;
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCounter = 0;

/** wbxml2xml -m 0 (compact): libwbxml's XML for a WBXML document, as bytes. */
async function libwbxmlToXml(wbxml: Uint8Array, flags: string[] = []): Promise<Buffer> {
  if (setupFailure !== undefined) throw setupFailure;
  const input = join(dir, `in-${++fileCounter}.wbxml`);
  const output = join(dir, `out-${fileCounter}.xml`);
  writeFileSync(input, wbxml);
  const result = await runProcess(wbxml2xml, [...flags, '-m', '0', '-o', output, input], { timeoutMs: 10_000 });
  assert.equal(result.code, 0, `wbxml2xml failed: ${result.output}`);
  return readFileSync(output);
}

/** xml2wbxml: libwbxml's WBXML for an XML document. */
async function libwbxmlToWbxml(xml: string, flags: string[]): Promise<Buffer> {
  if (setupFailure !== undefined) throw setupFailure;
  const input = join(dir, `in-${++fileCounter}.xml`);
  const output = join(dir, `out-${fileCounter}.wbxml`);
  writeFileSync(input, xml);
  const result = await runProcess(xml2wbxml, [...flags, '-o', output, input], { timeoutMs: 10_000 });
  assert.equal(result.code, 0, `xml2wbxml failed: ${result.output}`);
  return readFileSync(output);
}

describe('Depot WBXML → libwbxml wbxml2xml → Depot XML reader', () => {
  for (const [name, message] of SAMPLES) {
    for (const stringTable of [false, true]) {
      test(`${name}${stringTable ? ', string table' : ''} (WBXML §5.7, §5.8; RepPro)`, async () => {
        const xml = await libwbxmlToXml(encodeSyncML(message, 'wbxml', { stringTable }));
        // libwbxml names the DTD (a DOCTYPE with the SyncML 1.2 FPI, which Depot accepts without a subset).
        assert.match(xml.toString('utf8'), /^<\?xml version="1.0"\?><!DOCTYPE SyncML PUBLIC "-\/\/SYNCML\/\/DTD SyncML 1.2\/\/EN"/);
        assert.deepEqual(parseXml(xml), canonical(syncMLElement(message)));
        assert.deepEqual(decodeSyncML(xml, 'xml'), message);
      });
    }
  }

  test('WBXML §5.5: a public identifier given as the FPI in the string table is understood by libwbxml', async () => {
    const xml = await libwbxmlToXml(encodeSyncML(clientPackage1, 'wbxml', { literalPublicId: true, stringTable: true }));
    assert.deepEqual(decodeSyncML(xml, 'xml'), clientPackage1);
  });

  test('WBXML §5.8.4.6: OPAQUE binary Data reaches libwbxml byte for byte (it prints it raw in a CDATA section)', async () => {
    const xml = await libwbxmlToXml(encodeSyncML(binaryReplace, 'wbxml'));
    const expected = Buffer.concat([Buffer.from('<Data><![CDATA['), BINARY_VALUE, Buffer.from(']]></Data>')]);
    assert.ok(xml.includes(expected), `the value's bytes in a CDATA section, got ${xml.toString('latin1')}`);
    // Such raw bytes are not XML (not UTF-8, and "]]>" inside): Depot's reader says so instead of guessing.
    assert.throws(() => parseXml(xml), { name: 'XmlFormatError' });
  });

  test('WBXML §5.8.4.6: OPAQUE text Data comes back as the same text', async () => {
    const text = 'Nokia & Sons <Oy> « ünïcödé » 😀';
    const message: SyncMLMessage = { ...binaryReplace, commands: [{ kind: 'Replace', cmdId: '1', items: [{ target: { locUri: './DevInfo/Man' }, data: Uint8Array.from(Buffer.from(text)) }] }] };
    const decoded = decodeSyncML(await libwbxmlToXml(encodeSyncML(message, 'wbxml')), 'xml');
    assert.deepEqual(decoded.commands[0], { kind: 'Replace', cmdId: '1', items: [{ target: { locUri: './DevInfo/Man' }, data: text }] });
  });
});

describe('Depot XML → libwbxml xml2wbxml → Depot WBXML decoder', () => {
  for (const [name, message] of SAMPLES) {
    for (const flags of [['-v', '1.3'], ['-v', '1.3', '-n'], ['-v', '1.2'], ['-v', '1.1', '-n']]) {
      test(`${name}, xml2wbxml ${flags.join(' ')} (WBXML §5.4, §5.7; RepPro)`, async () => {
        const xml = writeXml(syncMLElement(message));
        const wbxml = await libwbxmlToWbxml(xml, flags);
        const doc = decodeWbxml(wbxml);
        assert.equal(doc.version, Number(flags[1]!.split('.')[1]));
        assert.equal(doc.publicId, 0x1201);
        if (flags.includes('-n')) assert.equal(wbxml[4], 0, 'no string table with -n');
        // libwbxml writes every Item's Data as OPAQUE; the tree then holds bytes where Depot's holds text.
        assert.deepEqual(textified(doc.root), canonical(parseXml(xml)));
        assert.deepEqual(decodeSyncML(wbxml, 'wbxml'), message);
      });
    }
  }

  test('xml2wbxml uses its string table for repeated strings, and Depot resolves the references (WBXML §5.7)', async () => {
    const xml = writeXml(syncMLElement(clientPackage3));
    const wbxml = await libwbxmlToWbxml(xml, ['-v', '1.3']);
    assert.ok(wbxml[4]! > 0, 'libwbxml made a string table');
    assert.ok(wbxml.includes(0x83), 'and refers to it with STR_T');
    assert.deepEqual(readSyncML(textified(decodeWbxml(wbxml).root)), clientPackage3);
  });
});

describe('code pages: every SyncML 1.2 and MetInf 1.2 tag', () => {
  const syncmlTags = SYNCML_12.pages[0]!.tags.map(([, tag]) => tag).filter((tag) => tag !== 'SyncML' && tag !== 'Meta');
  const metinfTags = SYNCML_12.pages[1]!.tags.map(([, tag]) => tag);
  const everyTag: Element = element(
    'SyncML',
    ...syncmlTags.map((tag) => element(tag, `v-${tag}`)),
    element('Meta', ...metinfTags.map((tag) => element(tag, `m-${tag}`))),
    element('Final'),
  );

  test('SyncML RepPro and MetInf WBXML code pages: Depot encodes every tag exactly as libwbxml does (xml2wbxml -n)', async () => {
    const libwbxml = await libwbxmlToWbxml(writeXml(everyTag), ['-v', '1.3', '-n']);
    assert.equal(Buffer.from(encodeWbxml(everyTag)).toString('hex'), libwbxml.toString('hex'));
    assert.deepEqual(decodeWbxml(libwbxml).root, everyTag);
  });

  test('and libwbxml reads every tag token Depot writes back to the same name', async () => {
    assert.deepEqual(parseXml(await libwbxmlToXml(encodeWbxml(everyTag))), everyTag);
  });
});

describe('generated trees through libwbxml both ways', () => {
  // libwbxml's own text handling, not Depot's, rules out line ends here: wbxml2xml writes a CR
  // unescaped (an XML reader then sees LF, XML 1.0 §2.11) and xml2wbxml turns LF into CRLF in
  // Data it writes as OPAQUE. -k keeps whitespace, which libwbxml otherwise trims from text.
  const trees = treeArbitrary(false)
    .filter((tree) => !/\\[rn]/.test(JSON.stringify(tree)))
    .map((tree): Element => element('SyncML', tree));

  test('property: Depot WBXML → wbxml2xml → Depot XML reader, and Depot XML → xml2wbxml → Depot WBXML decoder, give the tree back', async () => {
    await fc.assert(
      fc.asyncProperty(trees, fc.boolean(), async (tree, stringTable) => {
        const expected = canonical(tree);
        assert.deepEqual(parseXml(await libwbxmlToXml(encodeWbxml(tree, { stringTable }), ['-k'])), expected);
        assert.deepEqual(textified(decodeWbxml(await libwbxmlToWbxml(writeXml(tree), ['-k', ...(stringTable ? [] : ['-n'])])).root), expected);
      }),
      { numRuns: 40 },
    );
  });
});

/** The tree with OPAQUE children read as UTF-8 text, as libwbxml writes Item Data. */
function textified(el: Element): Element {
  return {
    tag: el.tag,
    children: el.children.map((c) => (c instanceof Uint8Array ? Buffer.from(c).toString('utf8') : typeof c === 'string' ? c : textified(c))),
  };
}
