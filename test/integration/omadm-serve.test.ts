/**
 * `depot serve --omadm-port` as a whole (startDepotServer): the OMA DM endpoint on HTTPS with
 * a certificate issued by Depot's CA from the data directory, accounts added through the
 * operator API, a simulated phone (XML and WBXML) whose DevInfo/DevDetail become visible at
 * GET /api/v1/omadm/devices/:deviceId; and the endpoint refuses to start without the CA unless
 * plain HTTP is asked for.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDepotServer } from '../../src/app/server.js';
import type { RunningDepotServer } from '../../src/app/server.js';
import { CertificateAuthority, caPaths } from '../../src/pki/ca.js';
import { runSimCommand } from '../../src/cli/sim.js';
import { DmPhone, httpTransport, phoneTree } from '../../src/sim/omadm/phone.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { apiCall } from '../support/api-client.js';

let dir: string;
let server: RunningDepotServer;
let caPem: string;
let dmUrl: string;
let api: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-omadm-serve-'));
  const ca = await CertificateAuthority.init(join(dir, 'data', 'ca'));
  caPem = ca.exportRoot('pem');
  server = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: join(dir, 'data'), allowUnsecured: true, apiToken: 'token', omadm: { port: 0 } });
  dmUrl = server.listening['oma dm']!;
  const address = server.api.server.address();
  api = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

for (const [index, encoding, imei] of [[1, 'xml', '350000000000014'], [2, 'wbxml', '350000000000022']] as const) {
  test(`an account added through the API lets a ${encoding} phone in over HTTPS; its facts are visible through the API`, async () => {
    assert.match(dmUrl, /^https:\/\/127\.0\.0\.1:\d+\/dm$/);
    const deviceId = `IMEI:${imei}`; // IMEIs with their check digit (the inventory refuses others)
    const added = await apiCall(api, 'token', '/api/v1/omadm/accounts', { json: { deviceId, clientPassword: `password-${index}` } });
    assert.equal(added.status, 201);
    assert.equal(JSON.stringify(added.body).includes('password-'), false, 'the password is not echoed');
    assert.equal((await apiCall(api, 'token', `/api/v1/omadm/devices/${encodeURIComponent(deviceId)}`)).status, 404);
    const phone = new DmPhone({ deviceId, username: deviceId, password: `password-${index}`, encoding, auth: 'md5', tree: phoneTree(deviceId, index) }, httpTransport(caPem));
    const report = await phone.runSession(dmUrl);
    assert.equal(report.ended, 'completed');
    const facts = await apiCall(api, 'token', `/api/v1/omadm/devices/${encodeURIComponent(deviceId)}`);
    assert.equal(facts.status, 200);
    assert.equal(facts.body.manufacturer, phone.get('./DevInfo/Man'));
    assert.equal(facts.body.modelNumber, phone.get('./DevInfo/Mod'));
    assert.equal(facts.body.softwareVersion, 'Android 4.4');
    const list = await apiCall(api, 'token', '/api/v1/omadm/accounts');
    assert.ok((list.body.accounts as { deviceId: string }[]).some((a) => a.deviceId === deviceId));
    // The same session reached the inventory: one device record, its IMEI taken from the DevId.
    const inventory = await apiCall(api, 'token', '/api/v1/inventory/devices?protocol=omadm&limit=1000');
    const device = (inventory.body.devices as { identities: { omadmDevId: string | null; imei: string | null }; make: string | null; model: string | null; protocols: string[] }[]).find((d) => d.identities.omadmDevId === deviceId);
    assert.ok(device, 'the phone is in the inventory');
    assert.equal(device.identities.imei, imei);
    assert.equal(device.make, phone.get('./DevInfo/Man'));
    assert.equal(device.model, phone.get('./DevInfo/Mod'));
    assert.deepEqual(device.protocols, ['omadm']);
  });
}

test('commands queued through the API run in the phone\'s next session, durably: Get with its result, Replace, a failed Exec; none runs twice', async () => {
  const deviceId = 'IMEI:350000000000009';
  assert.equal((await apiCall(api, 'token', '/api/v1/omadm/accounts', { json: { deviceId, clientPassword: 'password-9' } })).status, 201);
  const queue = async (json: object) => {
    const res = await apiCall(api, 'token', `/api/v1/omadm/devices/${encodeURIComponent(deviceId)}/commands`, { json });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id as number;
  };
  const get = await queue({ kind: 'Get', uri: './DevDetail/FwV' });
  const replace = await queue({ kind: 'Replace', uri: './Vendor/Color', data: 'green', format: 'chr' });
  const exec = await queue({ kind: 'Exec', uri: './Vendor/Missing' });
  assert.equal((await apiCall(api, 'token', `/api/v1/omadm/devices/${encodeURIComponent(deviceId)}/commands`, { json: { kind: 'Delete', uri: './X' } })).status, 400);
  // Someone with the DevId but not the password takes nothing from the queue.
  const liar = new DmPhone({ deviceId, username: deviceId, password: 'not-it', encoding: 'xml', auth: 'md5', tree: {} }, httpTransport(caPem));
  assert.notEqual((await liar.runSession(dmUrl)).ended, 'completed');
  const untouched = await apiCall(api, 'token', `/api/v1/omadm/devices/${encodeURIComponent(deviceId)}/commands`);
  assert.deepEqual((untouched.body.commands as { status: string }[]).map((c) => c.status), ['queued', 'queued', 'queued']);
  const phone = new DmPhone({ deviceId, username: deviceId, password: 'password-9', encoding: 'wbxml', auth: 'md5', tree: phoneTree(deviceId, 9) }, httpTransport(caPem));
  assert.equal((await phone.runSession(dmUrl)).ended, 'completed');
  assert.equal(phone.get('./Vendor/Color'), 'green');
  const listed = await apiCall(api, 'token', `/api/v1/omadm/devices/${encodeURIComponent(deviceId)}/commands`);
  const byId = new Map((listed.body.commands as { id: number; status: string; resultCode: number; resultData: string | null }[]).map((c) => [c.id, c]));
  assert.deepEqual([byId.get(get)?.status, byId.get(get)?.resultCode, byId.get(get)?.resultData], ['succeeded', 200, phone.get('./DevDetail/FwV')]);
  assert.deepEqual([byId.get(replace)?.status, byId.get(replace)?.resultCode], ['succeeded', 200]);
  assert.deepEqual([byId.get(exec)?.status, byId.get(exec)?.resultCode], ['failed', 404]);
  // The next session runs nothing again.
  const again = await phone.runSession(dmUrl);
  assert.equal(again.commands.filter((c) => c.kind === 'Exec' || c.kind === 'Replace').length, 0);
});

test('command expiry through the API: expiresAt is shown and checked (not in the past, a date-time); a command before its expiry runs', async () => {
  const deviceId = 'IMEI:350000000000041';
  assert.equal((await apiCall(api, 'token', '/api/v1/omadm/accounts', { json: { deviceId, clientPassword: 'password-41' } })).status, 201);
  const path = `/api/v1/omadm/devices/${encodeURIComponent(deviceId)}/commands`;
  assert.equal((await apiCall(api, 'token', path, { json: { kind: 'Get', uri: './DevDetail/FwV', expiresAt: '2001-01-01T00:00:00Z' } })).status, 400, 'in the past');
  assert.equal((await apiCall(api, 'token', path, { json: { kind: 'Get', uri: './DevDetail/FwV', expiresAt: 'next tuesday' } })).status, 400);
  const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
  const queued = await apiCall(api, 'token', path, { json: { kind: 'Get', uri: './DevDetail/FwV', expiresAt } });
  assert.equal(queued.status, 201, JSON.stringify(queued.body));
  assert.equal(queued.body.expiresAt, expiresAt);
  const phone = new DmPhone({ deviceId, username: deviceId, password: 'password-41', encoding: 'xml', auth: 'md5', tree: phoneTree(deviceId, 41) }, httpTransport(caPem));
  assert.equal((await phone.runSession(dmUrl)).ended, 'completed');
  const listed = await apiCall(api, 'token', path);
  assert.deepEqual((listed.body.commands as { status: string; expiresAt: string | null }[]).map((c) => [c.status, c.expiresAt]), [['succeeded', expiresAt]]);
});

test('a command held by a session when the server stopped is "unknown" after the restart, never sent again', async () => {
  const bare = mkdtempSync(join(tmpdir(), 'depot-omadm-restart-'));
  try {
    // The state a kill -9 in the middle of a session leaves: the command taken ('sent'), no answer recorded.
    const store = openSqliteStore({ dataDir: bare });
    const held = await store.omadmCommands.enqueue({ deviceId: 'IMEI:1', kind: 'Exec', uri: './Vendor/Reboot' }, Date.now());
    assert.equal((await store.omadmCommands.takeQueued('IMEI:1', Date.now()))[0]?.status, 'sent');
    store.close();
    const restarted = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: bare, allowUnsecured: true, apiToken: 't', omadm: { port: 0, insecureHttp: true } });
    try {
      const address = restarted.api.server.address();
      const listed = await apiCall(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, 't', `/api/v1/omadm/devices/${encodeURIComponent('IMEI:1')}/commands`);
      assert.deepEqual((listed.body.commands as { id: number; status: string }[]).map((c) => [c.id, c.status]), [[held.id, 'unknown']]);
    } finally {
      await restarted.close();
    }
  } finally {
    rmSync(bare, { recursive: true, force: true });
  }
});

test('depot sim --protocol omadm runs a small fleet of phones (XML and WBXML, MD5 and HMAC) against it, and fails for phones without accounts', async () => {
  for (let i = 1; i <= 4; i++) {
    const added = await apiCall(api, 'token', '/api/v1/omadm/accounts', { json: { deviceId: `IMEI:35999900${String(i).padStart(6, '0')}`, clientPassword: 'fleet-password' } });
    assert.equal(added.status, 201);
  }
  const ca = caPaths(join(dir, 'data', 'ca')).certPath;
  const common = ['--protocol', 'omadm', '--server', dmUrl, '--password', 'fleet-password', '--ca', ca];
  assert.equal(await runSimCommand([...common, '--count', '4', '--sessions', '2']), 0);
  assert.equal(await runSimCommand([...common, '--count', '4', '--auth', 'hmac']), 0);
  const facts = await apiCall(api, 'token', `/api/v1/omadm/devices/${encodeURIComponent('IMEI:35999900000004')}`);
  assert.equal(facts.status, 200);
  assert.equal(await runSimCommand([...common, '--count', '5']), 1, 'the fifth phone has no account');
  // Compliance profiles in turn; a phone without DM opens no session and is not a failure.
  assert.equal(await runSimCommand([...common, '--count', '4', '--profiles', 'full,no-dm,wbxml-only,md5-only']), 0);
  assert.equal(await runSimCommand([...common, '--count', '1', '--profiles', 'full,bogus']), 2);
  assert.equal(await runSimCommand(['--protocol=omadm', '--server', 'ftp://x', '--count', '1', '--password', 'p']), 2);
});

test('a phone that does not trust Depot\'s CA cannot open a session (the certificate is the CA\'s, not a self-signed one)', async () => {
  const other = await CertificateAuthority.create();
  const phone = new DmPhone({ deviceId: 'IMEI:1', username: 'u', password: 'p', encoding: 'xml', auth: 'md5', tree: {} }, httpTransport(other.exportRoot('pem')));
  await assert.rejects(phone.runSession(dmUrl), /certificate/);
});

test('without Depot\'s CA the OMA DM endpoint does not start on HTTPS', async () => {
  const bare = mkdtempSync(join(tmpdir(), 'depot-omadm-noca-'));
  try {
    await assert.rejects(startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: bare, allowUnsecured: true, apiToken: 't', omadm: { port: 0 } }), /CA/);
  } finally {
    rmSync(bare, { recursive: true, force: true });
  }
});

test('OMA-TS-DM_Security-V1_2 §5.3: an account added through the API with Depot\'s server credentials lets a phone that checks the server in; the passwords are never echoed', async () => {
  const deviceId = 'IMEI:350000000000030';
  const bad = await apiCall(api, 'token', '/api/v1/omadm/accounts', { json: { deviceId, clientPassword: 'password-30', serverId: 'depot' } });
  assert.equal(bad.status, 400, 'serverId without serverPassword');
  const serverNonce = Buffer.from('first-server-nonce');
  const added = await apiCall(api, 'token', '/api/v1/omadm/accounts', { json: { deviceId, clientPassword: 'password-30', serverId: 'depot-30', serverPassword: 'server-password-30', serverNonce: serverNonce.toString('base64') } });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  assert.equal(added.body.serverId, 'depot-30');
  assert.equal(added.body.serverCredentials, 'account');
  assert.equal(JSON.stringify(added.body).includes('password-30'), false, 'no password echoed');
  const phone = new DmPhone({ deviceId, username: deviceId, password: 'password-30', encoding: 'wbxml', auth: 'md5', tree: phoneTree(deviceId, 30), server: { serverId: 'depot-30', password: 'server-password-30', nonce: serverNonce } }, httpTransport(caPem));
  const report = await phone.runSession(dmUrl);
  assert.equal(report.ended, 'completed');
  assert.equal(report.serverAuthenticated, true);
  // The same phone refuses a Depot that does not know its server password.
  const skeptic = new DmPhone({ ...phone.profile, server: { serverId: 'depot-30', password: 'another-server-password' } }, httpTransport(caPem));
  skeptic.nonce = phone.nonce;
  const refused = await skeptic.runSession(dmUrl);
  assert.equal(refused.ended, 'server-refused');
  // Forgetting the server credentials: the account stays, the server ID is gone, and when the checking phone challenges
  // Depot, Depot has nothing to prove itself with and ends the session itself (logged as such).
  const cleared = await apiCall(api, 'token', `/api/v1/omadm/accounts/${encodeURIComponent(deviceId)}/server-credentials`, { method: 'DELETE' });
  assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
  assert.equal(cleared.body.deviceId, deviceId);
  assert.equal(cleared.body.serverId, null);
  assert.equal(cleared.body.serverCredentials, null);
  const unproven = await phone.runSession(dmUrl);
  assert.equal(unproven.ended, 'server-abort', JSON.stringify(unproven));
  assert.equal(unproven.serverAuthenticated, false);
  const missing = await apiCall(api, 'token', '/api/v1/omadm/accounts/IMEI%3A999/server-credentials', { method: 'DELETE' });
  assert.equal(missing.status, 404);
});
