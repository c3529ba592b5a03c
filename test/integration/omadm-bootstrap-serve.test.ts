/**
 * OMA DM bootstrap through `depot serve` as a whole (startDepotServer with a push sender; the
 * pushes are carried by a FAKE in-process RecordingPushSender, the SMS layer's tests carry them
 * through Kannel): ten never-bootstrapped phones from one API call, their users entering the
 * right PIN, a wrong one or none; the first DM sessions over HTTPS (Depot's CA) report make and
 * model; the operator sees accepted and pending/rejected in the API and in the shared
 * bootstrap list; `depot devices start-dm` notifies the accepted ones and reports the others.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDepotServer } from '../../src/app/server.js';
import type { RunningDepotServer } from '../../src/app/server.js';
import { CertificateAuthority } from '../../src/pki/ca.js';
import { runDevicesCommand } from '../../src/cli/devices.js';
import { SimulatedHandset } from '../../src/sim/omadm/provisioning-client.js';
import { apiCall } from '../support/api-client.js';
import { RecordingPushSender } from '../support/omadm/recording-push-sender.js';

let dir: string;
let server: RunningDepotServer;
let caPem: string;
let api: string;
const sender = new RecordingPushSender();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-omadm-boot-serve-'));
  const ca = await CertificateAuthority.init(join(dir, 'data', 'ca'));
  caPem = ca.exportRoot('pem');
  server = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: join(dir, 'data'), allowUnsecured: true, apiToken: 'token', omadm: { port: 0, pushSender: sender, serverId: 'depot-lab' } });
  const address = server.api.server.address();
  api = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const phones = Array.from({ length: 10 }, (_, i) => {
  const n = i + 1;
  // Users 1-6 enter 12345, 7-8 a wrong PIN, 9-10 none.
  const userPin = n <= 6 ? '12345' : n <= 8 ? '99999' : null;
  return { n, userPin, msisdn: `+4791000${String(n).padStart(3, '0')}`, imei: `3510000000${String(n).padStart(5, '0')}` };
});

test('one API call bootstraps ten phones; those whose users enter the PIN report make and model in their first DM session, the others stay pending', async () => {
  const out = await apiCall(api, 'token', '/api/v1/omadm/bootstrap', { json: { devices: phones.map((p) => ({ msisdn: p.msisdn, imei: p.imei, group: 'lab' })) } });
  assert.equal(out.status, 200, JSON.stringify(out.body));
  const results = out.body.results as { msisdn: string; outcome: string }[];
  assert.deepEqual(results.map((r) => r.outcome), new Array(10).fill('sent'));
  for (const p of phones) {
    const handset = new SimulatedHandset({ msisdn: p.msisdn, imei: p.imei, userPin: p.userPin, ca: caPem, index: p.n });
    const push = sender.last(p.msisdn);
    const event = await handset.receive(push);
    assert.equal(event.kind, p.userPin === '12345' ? 'installed' : 'refused', `${p.msisdn}: ${JSON.stringify(event)}`);
  }
  for (const p of phones) {
    const b = await apiCall(api, 'token', `/api/v1/omadm/bootstrap/${encodeURIComponent(p.msisdn)}`);
    assert.equal(b.status, 200);
    assert.equal(b.body.state, p.userPin === '12345' ? 'accepted' : 'sent', p.msisdn);
    const facts = await apiCall(api, 'token', `/api/v1/omadm/devices/${encodeURIComponent(`IMEI:${p.imei}`)}`);
    if (p.userPin === '12345') {
      assert.equal(facts.status, 200);
      assert.equal(facts.body.manufacturer, p.n % 2 === 0 ? 'Acme' : 'Globex');
      assert.equal(facts.body.modelNumber, `Model ${1 + (p.n % 3)}`);
    } else assert.equal(facts.status, 404);
  }
  // The shared bootstrap list shows them under protocol omadm.
  const shared = await apiCall(api, 'token', '/api/v1/bootstrap');
  const omadm = (shared.body.endpoints as { protocol: string; msisdn?: string; state: string }[]).filter((e) => e.protocol === 'omadm');
  assert.equal(omadm.length, 10);
  assert.equal(omadm.filter((e) => e.state === 'accepted').length, 6);
  assert.equal(omadm.filter((e) => e.state === 'pending').length, 4);
  const pending = await apiCall(api, 'token', '/api/v1/bootstrap?state=pending');
  assert.equal((pending.body.endpoints as { protocol: string }[]).filter((e) => e.protocol === 'omadm').length, 4);
  // Paged three at a time, the list walks through every entry of both protocols once.
  const seen: string[] = [];
  let after: string | null = '';
  for (let pages = 0; after !== null; pages++) {
    assert.ok(pages < 20, 'the cursor never ends');
    const page = await apiCall(api, 'token', `/api/v1/bootstrap?limit=3${after === '' ? '' : `&after=${encodeURIComponent(after)}`}`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    const items = page.body.endpoints as { protocol: string; endpoint: string; msisdn?: string }[];
    assert.ok(items.length <= 3);
    seen.push(...items.map((e) => `${e.protocol}:${e.msisdn ?? e.endpoint}`));
    after = page.body.next as string | null;
  }
  assert.equal(new Set(seen).size, seen.length, 'no entry twice');
  assert.deepEqual(seen.filter((e) => e.startsWith('omadm:')).sort(), phones.map((p) => `omadm:${p.msisdn}`).sort());
  const onlyDm = await apiCall(api, 'token', '/api/v1/bootstrap?protocol=omadm&limit=1000');
  assert.ok((onlyDm.body.endpoints as { protocol: string }[]).every((e) => e.protocol === 'omadm'));
  assert.equal((onlyDm.body.endpoints as unknown[]).length, 10);
  const onlyLwm2m = await apiCall(api, 'token', '/api/v1/bootstrap?protocol=lwm2m');
  assert.ok((onlyLwm2m.body.endpoints as { protocol: string }[]).every((e) => e.protocol === 'lwm2m'));
  // An operator rejects one of the unaccepted.
  const rejected = await apiCall(api, 'token', `/api/v1/omadm/bootstrap/${encodeURIComponent(phones[6]!.msisdn)}/reject`, { json: {} });
  assert.equal(rejected.body.state, 'rejected');
  assert.equal((await apiCall(api, 'token', `/api/v1/omadm/bootstrap/${encodeURIComponent(phones[6]!.msisdn)}/reject`, { json: {} })).status, 409);
});

test('depot devices start-dm notifies the accepted phones and reports the others (exit 1)', async () => {
  const lines: string[] = [];
  const io = { stdout: (t: string) => void lines.push(t), stderr: (t: string) => void lines.push(t), fetch };
  const ok = await runDevicesCommand(['start-dm', '--msisdn', phones[0]!.msisdn, '--msisdn', phones[1]!.msisdn, '--api', api, '--token', 'token'], io);
  assert.equal(ok, 0, lines.join(''));
  assert.match(lines.join(''), /notified/);
  lines.length = 0;
  const mixed = await runDevicesCommand(['start-dm', '--group', 'lab', '--api', api, '--token', 'token'], io);
  assert.equal(mixed, 1);
  const text = lines.join('');
  assert.equal(text.match(/ notified /g)?.length, 6);
  assert.equal(text.match(/ reported /g)?.length, 4);
  assert.equal(await runDevicesCommand(['start-dm', '--api', api, '--token', 'token'], io), 2, 'no selection is a usage error');
  assert.equal(await runDevicesCommand(['start-dm', '--all', '--api', api, '--token', 'wrong'], io), 1);
});

test('settings: a group PIN is set through the API and never shown back; bad input is 400', async () => {
  const set = await apiCall(api, 'token', '/api/v1/omadm/bootstrap-settings', { json: { scope: 'group:field', pin: '246810', options: { maxSends: 2, security: 'USERPIN' } } });
  assert.equal(set.status, 200);
  assert.equal(JSON.stringify(set.body).includes('246810'), false);
  const got = await apiCall(api, 'token', '/api/v1/omadm/bootstrap-settings/group%3Afield');
  assert.deepEqual({ pinSet: got.body.pinSet, options: got.body.options }, { pinSet: true, options: { maxSends: 2, security: 'USERPIN' } });
  assert.equal((await apiCall(api, 'token', '/api/v1/omadm/bootstrap-settings', { json: { scope: 'group:x', options: { maxSends: 99 } } })).status, 400);
  assert.equal((await apiCall(api, 'token', '/api/v1/omadm/bootstrap-settings', { json: { scope: 'model:X1', options: { notification: { digest: 'sha1' } } } })).status, 400);
  assert.equal((await apiCall(api, 'token', '/api/v1/omadm/bootstrap-settings', { json: { scope: 'model:X1', options: { notification: { version: 11 } } } })).status, 200);
  assert.equal((await apiCall(api, 'token', '/api/v1/omadm/bootstrap', { json: { devices: [{ msisdn: '+4791000999', imei: 'abc' }] } })).status, 400);
  assert.equal((await apiCall(api, 'token', '/api/v1/omadm/bootstrap', { json: {} })).status, 400);
  const anonymous = await fetch(`${api}/api/v1/omadm/bootstrap`);
  assert.equal(anonymous.status, 401);
  const openapi = (await (await fetch(`${api}/api/openapi.json`)).json()) as { paths: Record<string, unknown> };
  for (const path of ['/api/v1/omadm/bootstrap', '/api/v1/omadm/bootstrap/{msisdn}', '/api/v1/omadm/start-dm', '/api/v1/omadm/bootstrap-settings']) assert.ok(openapi.paths[path], path);
});
