/**
 * The OMA DM bootstrap document against peers nobody here wrote:
 * - libwbxml 0.11 (Debian libwbxml2-utils): Depot's WBXML provisioning document → `wbxml2xml` →
 *   the expected XML (element for element, attribute for attribute); and libwbxml's own encoding
 *   of that XML (`xml2wbxml`, with and without string table: attribute-value tokens, STR_T, page
 *   switches Depot does not write) → Depot's decoder → the same document.
 * - OpenSSL: the USERPIN, NETWPIN and USERNETWPIN MACs (OMA-WAP-ProvBoot-V1_1 §5) against
 *   `openssl dgst -sha1 -mac HMAC`, with IMSI keys written out by hand from TS 51.011's EF-IMSI.
 * Missing binaries make these tests fail, never skip (scripts/ensure-peers.sh installs them).
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SaxesParser } from 'saxes';
import { dmAccountDocument, readDmAccount } from '../../src/omadm/provisioning/document.js';
import type { DmAccountBootstrap } from '../../src/omadm/provisioning/document.js';
import { imsiSemiOctets, provisioningKey, provisioningMac } from '../../src/omadm/provisioning/security.js';
import { decodeProvisioningWbxml, encodeProvisioningWbxml, provisioningXml } from '../../src/omadm/provisioning/wbxml.js';
import type { ProvNode } from '../../src/omadm/provisioning/wbxml.js';
import { requireExecutable, runProcess } from '../support/peer-process.js';

let dir: string;
let counter = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'depot-prov-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const ACCOUNT: DmAccountBootstrap = {
  serverId: 'depot.example',
  name: 'Depot & Co "DM"',
  address: 'https://dm.example.com:8443/dm',
  authType: 'DIGEST',
  server: { name: 'depot.example', secret: 'srv-secret', nonce: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]) },
  client: { name: 'IMEI:350000000000011', secret: 'cl-secret', nonce: Uint8Array.from([9, 8, 7, 6]) },
  init: true,
  rootCertificate: Uint8Array.from({ length: 300 }, (_, i) => i & 0xff),
};

const { init: _init, ...WITHOUT_INIT } = ACCOUNT;
const SEPARATE_PORT: DmAccountBootstrap = { ...WITHOUT_INIT, address: 'https://dm.example.com/dm', port: 8443, authType: 'HMAC' };

function file(data: Uint8Array | string, ext: string): string {
  const path = join(dir, `f${++counter}.${ext}`);
  writeFileSync(path, data);
  return path;
}

/** An XML provisioning document as a ProvNode tree (saxes: a strict XML parser). */
function parseProvXml(text: string): ProvNode {
  const parser = new SaxesParser();
  const stack: { tag: ProvNode['tag']; attributes: [string, string][]; children: ProvNode[] }[] = [];
  let root: ProvNode | undefined;
  parser.on('opentag', (t) => {
    stack.push({ tag: t.name as ProvNode['tag'], attributes: Object.entries(t.attributes as Record<string, string>), children: [] });
  });
  parser.on('closetag', () => {
    const done = stack.pop()!;
    if (stack.length === 0) root = done;
    else stack[stack.length - 1]!.children.push(done);
  });
  parser.write(text).close();
  assert.ok(root);
  return root;
}

async function wbxml2xml(wbxml: Uint8Array): Promise<string> {
  const tool = requireExecutable('wbxml2xml');
  const input = file(wbxml, 'wbxml');
  const output = join(dir, `o${++counter}.xml`);
  const r = await runProcess(tool, ['-o', output, input], { timeoutMs: 10_000 });
  assert.equal(r.code, 0, `wbxml2xml failed: ${r.output}`);
  return readFileSync(output, 'utf8');
}

async function xml2wbxml(xml: string, flags: string[]): Promise<Uint8Array> {
  const tool = requireExecutable('xml2wbxml');
  const input = file(xml, 'xml');
  const output = join(dir, `o${++counter}.wbxml`);
  const r = await runProcess(tool, [...flags, '-o', output, input], { timeoutMs: 10_000 });
  assert.equal(r.code, 0, `xml2wbxml failed: ${r.output}`);
  return new Uint8Array(readFileSync(output));
}

/** Attributes compared as sets: libwbxml writes them in document order, but the order carries no meaning. */
function sorted(n: ProvNode): ProvNode {
  return { tag: n.tag, attributes: [...n.attributes].sort(([a], [b]) => a.localeCompare(b)), children: n.children.map(sorted) };
}

for (const [name, account] of [['with ADDR, INIT and the root certificate', ACCOUNT], ['with APPADDR/PORT and HMAC', SEPARATE_PORT]] as const) {
  test(`libwbxml decodes Depot's provisioning document (${name}) to the expected XML (ProvCont binary encoding, public id 0x0B)`, async () => {
    const doc = dmAccountDocument(account);
    const wbxml = encodeProvisioningWbxml(doc);
    assert.equal(wbxml[1], 0x0b, 'the provisioning document\'s public identifier');
    const xml = await wbxml2xml(wbxml);
    assert.match(xml, /<!DOCTYPE wap-provisioningdoc PUBLIC "-\/\/WAPFORUM\/\/DTD PROV 1\.0\/\/EN"/);
    assert.deepEqual(sorted(parseProvXml(xml)), sorted(doc));
    // The account reads back from what libwbxml saw.
    assert.deepEqual(readDmAccount(parseProvXml(xml)), account);
  });

  for (const flags of [[], ['-n']]) {
    test(`Depot decodes libwbxml's encoding of the document (${name}, ${flags.length === 0 ? 'with' : 'without'} string table)`, async () => {
      const doc = dmAccountDocument(account);
      const wbxml = await xml2wbxml(provisioningXml(doc), flags);
      assert.deepEqual(decodeProvisioningWbxml(wbxml), doc);
    });
  }
}

test('libwbxml\'s attribute-value tokens (APPSRV, DIGEST, IPV4, GSM-CSD) and page switches decode to their text', async () => {
  const doc: ProvNode = {
    tag: 'wap-provisioningdoc', attributes: [['version', '1.0']], children: [
      { tag: 'characteristic', attributes: [['type', 'NAPDEF']], children: [
        { tag: 'parm', attributes: [['name', 'NAP-ADDRTYPE'], ['value', 'IPV4']], children: [] },
        { tag: 'parm', attributes: [['name', 'BEARER'], ['value', 'GSM-CSD']], children: [] },
      ] },
      { tag: 'characteristic', attributes: [['type', 'APPLICATION']], children: [
        { tag: 'parm', attributes: [['name', 'APPID'], ['value', 'w7']], children: [] },
        { tag: 'characteristic', attributes: [['type', 'APPAUTH']], children: [
          { tag: 'parm', attributes: [['name', 'AAUTHLEVEL'], ['value', 'APPSRV']], children: [] },
          { tag: 'parm', attributes: [['name', 'AAUTHTYPE'], ['value', 'HTTP-DIGEST']], children: [] },
        ] },
      ] },
    ],
  };
  const wbxml = await xml2wbxml(provisioningXml(doc), []);
  // libwbxml tokenised the values: they are not there as text.
  assert.ok(!Buffer.from(wbxml).includes('APPSRV'));
  assert.deepEqual(decodeProvisioningWbxml(wbxml), doc);
  // And Depot's own encoding of it reads the same in libwbxml.
  assert.deepEqual(sorted(parseProvXml(await wbxml2xml(encodeProvisioningWbxml(doc)))), sorted(doc));
});

async function opensslHmac(args: string[], data: Uint8Array): Promise<string> {
  const openssl = requireExecutable('openssl');
  const r = await runProcess(openssl, ['dgst', '-sha1', '-mac', 'HMAC', ...args, file(data, 'bin')], { timeoutMs: 10_000 });
  assert.equal(r.code, 0, r.output);
  const m = /= ([0-9a-f]{40})\s*$/.exec(r.output);
  assert.ok(m, r.output);
  return m[1]!.toUpperCase();
}

test('ProvBoot §5 USERPIN: the MAC is HMAC-SHA1 over the WBXML keyed with the PIN, 40 hex digits (openssl as the oracle)', async () => {
  const wbxml = encodeProvisioningWbxml(dmAccountDocument(ACCOUNT));
  const mac = provisioningMac(provisioningKey('USERPIN', { pin: '12345' }), wbxml);
  assert.match(mac, /^[0-9A-F]{40}$/);
  assert.equal(mac, await opensslHmac(['-macopt', 'key:12345'], wbxml));
});

test('ProvBoot §5 NETWPIN/USERNETWPIN: the IMSI in EF-IMSI semi-octets (odd and even length), then the PIN (openssl as the oracle)', async () => {
  const wbxml = encodeProvisioningWbxml(dmAccountDocument(SEPARATE_PORT));
  // Worked by hand (TS 51.011 §10.3.2): parity nibble 9 (odd) or 1 (even), digits, F pad, nibbles swapped.
  const odd = '2924102143658709'; // 242011234567890
  const even = '21241021436587F9'; // 24201123456789
  assert.equal(Buffer.from(imsiSemiOctets('242011234567890')).toString('hex').toUpperCase(), odd);
  assert.equal(Buffer.from(imsiSemiOctets('24201123456789')).toString('hex').toUpperCase(), even);
  assert.equal(provisioningMac(provisioningKey('NETWPIN', { imsi: '242011234567890' }), wbxml), await opensslHmac(['-macopt', `hexkey:${odd}`], wbxml));
  assert.equal(provisioningMac(provisioningKey('NETWPIN', { imsi: '24201123456789' }), wbxml), await opensslHmac(['-macopt', `hexkey:${even}`], wbxml));
  assert.equal(
    provisioningMac(provisioningKey('USERNETWPIN', { imsi: '242011234567890', pin: '12345' }), wbxml),
    await opensslHmac(['-macopt', `hexkey:${odd}${Buffer.from('12345').toString('hex')}`], wbxml),
  );
});
