/**
 * The bootstrap document against OMA-WAP-ProvCont-V1_1 (the binary encoding and the APPLICATION
 * characteristic), OMA-TS-DM_Bootstrap-V1_2 (the w7 account: ServerID, address, both directions'
 * credentials) and OMA-WAP-ProvBoot-V1_1 §5 (SEC/MAC), clause by clause; clauses whose numbers
 * were not checked against the spec text are cited by section name. The device side is the
 * simulated handset (src/sim/omadm/provisioning-client.ts).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { dmAccountDocument, readDmAccount } from '../../../src/omadm/provisioning/document.js';
import type { DmAccountBootstrap } from '../../../src/omadm/provisioning/document.js';
import { provisioningKey, provisioningMac } from '../../../src/omadm/provisioning/security.js';
import { ProvisioningFormatError, decodeProvisioningWbxml, encodeProvisioningWbxml } from '../../../src/omadm/provisioning/wbxml.js';
import type { ProvNode } from '../../../src/omadm/provisioning/wbxml.js';
import { SimulatedHandset } from '../../../src/sim/omadm/provisioning-client.js';
import { PushContentType } from '../../../src/omadm/push-port.js';

const ACCOUNT: DmAccountBootstrap = {
  serverId: 'depot', name: 'Depot', address: 'https://dm.example/dm', authType: 'DIGEST',
  server: { name: 'depot', secret: 'srv', nonce: Uint8Array.from([1, 2]) },
  client: { name: 'IMEI:1', secret: 'cli', nonce: Uint8Array.from([3, 4]) },
};

const attr = (n: ProvNode, k: string): string | undefined => n.attributes.find(([a]) => a === k)?.[1];
const parm = (n: ProvNode, name: string): string | undefined => attr(n.children.find((c) => c.tag === 'parm' && attr(c, 'name') === name) ?? { tag: 'parm', attributes: [], children: [] }, 'value');

test('ProvCont binary encoding: WBXML 1.3, public identifier 0x0B (PROV 1.0), UTF-8, root wap-provisioningdoc', () => {
  const wbxml = encodeProvisioningWbxml(dmAccountDocument(ACCOUNT));
  assert.deepEqual([...wbxml.subarray(0, 4)], [0x03, 0x0b, 0x6a, 0x00]);
  assert.equal(wbxml[4]! & 0x3f, 0x05, 'wap-provisioningdoc');
  assert.equal(decodeProvisioningWbxml(wbxml).tag, 'wap-provisioningdoc');
});

test('DM Bootstrap (w7): APPID w7, PROVIDER-ID the ServerID, ADDR, APPAUTH APPSRV and CLIENT with AAUTHTYPE, AAUTHNAME, AAUTHSECRET, AAUTHDATA', () => {
  const doc = dmAccountDocument({ ...ACCOUNT, init: true });
  const app = doc.children.find((c) => attr(c, 'type') === 'APPLICATION')!;
  assert.equal(parm(app, 'APPID'), 'w7');
  assert.equal(parm(app, 'PROVIDER-ID'), 'depot');
  assert.equal(parm(app, 'ADDR'), 'https://dm.example/dm');
  assert.ok(app.children.some((c) => c.tag === 'parm' && attr(c, 'name') === 'INIT'));
  const auths = app.children.filter((c) => attr(c, 'type') === 'APPAUTH');
  assert.deepEqual(auths.map((a) => parm(a, 'AAUTHLEVEL')), ['APPSRV', 'CLIENT']);
  for (const a of auths) {
    assert.equal(parm(a, 'AAUTHTYPE'), 'DIGEST');
    assert.ok(parm(a, 'AAUTHNAME'));
    assert.ok(parm(a, 'AAUTHSECRET'));
    assert.match(parm(a, 'AAUTHDATA') ?? '', /^[A-Za-z0-9+/]+=*$/);
  }
  assert.deepEqual(readDmAccount(decodeProvisioningWbxml(encodeProvisioningWbxml(doc))), { ...ACCOUNT, init: true });
});

test('DM Bootstrap (w7): a document without the w7 application, its PROVIDER-ID, its ADDR or the CLIENT credentials is not an account', () => {
  const doc = dmAccountDocument(ACCOUNT);
  const app = doc.children[0]!;
  const without = (pred: (c: ProvNode) => boolean): ProvNode => ({ ...doc, children: [{ ...app, children: app.children.filter((c) => !pred(c)) }] });
  assert.throws(() => readDmAccount({ ...doc, children: [] }), /APPID w7/);
  assert.throws(() => readDmAccount(without((c) => attr(c, 'name') === 'PROVIDER-ID')), /PROVIDER-ID/);
  assert.throws(() => readDmAccount(without((c) => attr(c, 'name') === 'ADDR')), /ADDR/);
  assert.throws(() => readDmAccount(without((c) => attr(c, 'type') === 'APPAUTH' && parm(c, 'AAUTHLEVEL') === 'CLIENT')), ProvisioningFormatError);
});

test('ProvBoot §5: the handset applies only a document whose SEC/MAC verify; no SEC, another method\'s MAC, a changed byte: nothing installed', async () => {
  const body = encodeProvisioningWbxml(dmAccountDocument(ACCOUNT)); // no INIT: no session is opened
  const mac = provisioningMac(provisioningKey('USERPIN', { pin: '12345' }), body);
  const phone = (): SimulatedHandset => new SimulatedHandset({ msisdn: '+4790000001', imei: '350000000000001', userPin: '12345' });
  const push = { contentType: PushContentType.ProvisioningWbxml, body };
  let p = phone();
  assert.equal((await p.receive(push)).kind, 'refused');
  assert.equal((await p.receive({ ...push, parameters: { SEC: 'NETWPIN', MAC: mac } })).kind, 'refused');
  const changed = Uint8Array.from(body);
  changed[changed.length - 3]! ^= 1;
  assert.equal((await p.receive({ ...push, body: changed, parameters: { SEC: 'USERPIN', MAC: mac } })).kind, 'refused');
  assert.equal(p.installed.length, 0);
  p = phone();
  assert.deepEqual(await p.receive({ ...push, parameters: { SEC: 'USERPIN', MAC: mac } }), { kind: 'installed', serverId: 'depot' });
  assert.equal(p.installed[0]?.client.secret, 'cli');
});
