/**
 * OMA DM end to end over real parts: simulated phones (src/sim/omadm, their own client logic)
 * open sessions over HTTPS with a server certificate issued by Depot's CA (the phones trust
 * only that root), authenticate with syncml:auth-md5 or x-syncml-hmac, and their
 * ./DevInfo and ./DevDetail land in a real SQLite store; in XML and WBXML, with the DM and the
 * legacy SyncML media types. Bad input on the same socket ends in HTTP or SyncML refusals and the
 * server goes on serving.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/pki/ca.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { SqliteStore } from '../../src/store/sqlite.js';
import { OmaDmHttpServer, factsEndpointOf } from '../../src/omadm/http.js';
import type { SessionEffect } from '../../src/omadm/session.js';
import { DmPhone, httpTransport, phoneTree } from '../../src/sim/omadm/phone.js';
import type { DmPhoneProfile } from '../../src/sim/omadm/phone.js';
import { encodeSyncML } from '../../src/omadm/syncml.js';

let dir: string;
let store: SqliteStore;
let server: OmaDmHttpServer;
let url: string;
let caPem: string;
const effects: SessionEffect[] = [];
const logs: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-omadm-e2e-'));
  const ca = await CertificateAuthority.create();
  caPem = ca.exportRoot('pem');
  const issued = await ca.issueServerCertificate({ names: ['localhost', '127.0.0.1'] });
  store = openSqliteStore({ dataDir: join(dir, 'data'), secretKey: randomBytes(32) });
  server = new OmaDmHttpServer({
    store: store,
    host: '127.0.0.1',
    port: 0,
    tls: { cert: issued.certificatePem, key: issued.privateKeyPem! },
    serverUri: 'https://localhost/dm',
    maxMessageBytes: 16 * 1024,
    jobsFor: (deviceId) => (deviceId === 'IMEI:300000000000001' ? [{ id: 'color', kind: 'Replace', uri: './Vendor/Color', data: 'blue' }] : []),
    onEffect: (e) => {
      effects.push(e);
    },
    log: (line) => logs.push(line),
  });
  const port = await server.listen();
  url = `https://localhost:${port}/dm`;
});

after(async () => {
  await server.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function phone(index: number, overrides: Partial<DmPhoneProfile> = {}, register = true): Promise<DmPhone> {
  const deviceId = `IMEI:30000000000000${index}`;
  const password = `secret-${index}`;
  if (register) await store.omadmAccounts.put({ deviceId, clientUsername: deviceId, clientPassword: password }, randomBytes(16), Date.now());
  return new DmPhone({ deviceId, username: deviceId, password, encoding: 'xml', auth: 'md5', tree: phoneTree(deviceId, index), ...overrides }, httpTransport(caPem));
}

for (const [index, encoding, auth, legacy] of [[1, 'xml', 'md5', false], [2, 'wbxml', 'md5', false], [3, 'wbxml', 'hmac', false], [4, 'xml', 'hmac', true]] as const) {
  test(`a ${encoding} phone authenticating with ${auth}${legacy ? ' (legacy media type)' : ''} puts its DevInfo/DevDetail in the store over HTTPS; the next session needs no 401`, async () => {
    const p = await phone(index, { encoding, auth, legacyMediaType: legacy });
    const first = await p.runSession(url);
    assert.equal(first.ended, 'completed');
    assert.equal(first.authenticated, true);
    const facts = await store.deviceFacts.get(factsEndpointOf(p.profile.deviceId));
    assert.ok(facts, 'facts stored');
    assert.equal(facts.manufacturer, p.get('./DevInfo/Man'));
    assert.equal(facts.modelNumber, p.get('./DevInfo/Mod'));
    assert.equal(facts.serialNumber, p.profile.deviceId);
    assert.equal(facts.softwareVersion, 'Android 4.4');
    assert.equal(facts.firmwareVersion, p.get('./DevDetail/FwV'));
    assert.equal(facts.extra['omadm:./DevInfo/DmV'], '1.2');
    assert.equal(facts.extra['omadm:./DevDetail/LrgObj'], 'false');
    // The nonce the phone holds is the one in the store, and a new session authenticates with it at once.
    const account = await store.omadmAccounts.get(p.profile.deviceId);
    assert.deepEqual(Buffer.from(account!.clientNonce), Buffer.from(p.nonce));
    const second = await p.runSession(url);
    assert.equal(second.ended, 'completed');
    // Package 1 accepted at once: Packages 1 and 3; phone 1 has an operator job, taken once it has
    // authenticated, so it goes out in Package 4 and the phone answers once more.
    if (auth === 'md5') assert.equal(second.messages, index === 1 ? 3 : 2);
  });
}

test('operator jobs reach the phone in its session and their results are reported', async () => {
  const p = await phone(1);
  await p.runSession(url);
  assert.equal(p.get('./Vendor/Color'), 'blue');
  const result = effects.find((e) => e.kind === 'job-result' && e.jobId === 'color');
  assert.equal(result?.kind === 'job-result' ? result.code : 0, 200);
});

test('a phone with a wrong password is refused with 401s, stores nothing, and its account\'s password is sealed at rest', async () => {
  await phone(5);
  const liar = new DmPhone({ ...(await phone(5, {}, false)).profile, password: 'wrong' }, httpTransport(caPem));
  const report = await liar.runSession(url);
  assert.equal(report.authenticated, false);
  assert.notEqual(report.ended, 'completed');
  assert.equal(await store.deviceFacts.get(factsEndpointOf('IMEI:300000000000005')), null);
  const unknown = await phone(9, {}, false);
  const refused = await unknown.runSession(url);
  assert.equal(refused.authenticated, false);
  const raw = store.db.prepare('SELECT client_password FROM omadm_accounts WHERE device_id = ?').get('IMEI:300000000000005') as { client_password: Buffer };
  assert.equal(raw.client_password.includes(Buffer.from('secret-5')), false);
  assert.ok(logs.some((l) => l.includes('refused')));
});

test('bad input: other media types 415, bodies over the bound 413, malformed XML and garbled WBXML 400; the server still serves a phone afterwards', async () => {
  const t = httpTransport(caPem);
  assert.equal((await t.post(url, Buffer.from('{}'), { 'content-type': 'application/json' })).status, 415);
  assert.equal((await t.post(url, Buffer.alloc(17 * 1024, 0x20), { 'content-type': 'application/vnd.syncml.dm+xml' })).status, 413);
  assert.equal((await t.post(url, Buffer.from('<SyncML><SyncHdr>'), { 'content-type': 'application/vnd.syncml.dm+xml' })).status, 400);
  const entity = '<?xml version="1.0"?><!DOCTYPE SyncML [<!ENTITY a "aaaa">]><SyncML>&a;</SyncML>';
  assert.equal((await t.post(url, Buffer.from(entity), { 'content-type': 'application/vnd.syncml.dm+xml' })).status, 400);
  const wbxml = encodeSyncML({ header: { verDTD: '1.2', verProto: 'DM/1.2', sessionId: '1', msgId: '1', target: { locUri: 'x' }, source: { locUri: 'y' } }, commands: [], final: true }, 'wbxml');
  const garbled = Buffer.from(wbxml.subarray(0, wbxml.length - 5));
  assert.equal((await t.post(url, garbled, { 'content-type': 'application/vnd.syncml.dm+wbxml' })).status, 400);
  const p = await phone(6, { encoding: 'wbxml' });
  assert.equal((await p.runSession(url)).ended, 'completed');
  assert.ok(await store.deviceFacts.get(factsEndpointOf('IMEI:300000000000006')));
});

test('repeated failures are throttled: even the right password is refused while the device is throttled', async () => {
  const good = await phone(7);
  const bad = new DmPhone({ ...good.profile, password: 'wrong' }, httpTransport(caPem));
  for (let i = 0; i < 2; i++) await bad.runSession(url); // 3 refusals each: past the default of 5 in a minute
  const report = await good.runSession(url);
  assert.equal(report.authenticated, false);
  assert.equal(await store.deviceFacts.get(factsEndpointOf(good.profile.deviceId)), null);
});
