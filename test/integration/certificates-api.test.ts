/**
 * Send certificate's operator surfaces over real sockets and SQLite (issues 16/17): `depot serve`
 * with Depot's CA and SMS on (no gateway: texts wait in the outbox). The root's fingerprint and
 * downloads; one device and many (by endpoints, by filter) with each outcome; a 409 saying why for
 * what cannot be sent; the audit log; the OpenAPI document; `depot devices send-certificate`
 * against the running server. Without a CA the routes answer 409 saying so.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startDepotServer, type RunningDepotServer } from '../../src/app/server.js';
import { CertificateAuthority } from '../../src/pki/ca.js';
import { runDevicesCommand } from '../../src/cli/devices.js';
import { startApiTestServer } from '../support/api-server.js';
import { apiCall } from '../support/api-client.js';

const TOKEN = 'certificates-api-token-0123456789';
let dir: string;
let server: RunningDepotServer;
let base: string;
let caPem: string;
const call = (path: string, init: Parameters<typeof apiCall>[3] = {}) => apiCall(base, TOKEN, path, init);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-certs-api-'));
  const ca = await CertificateAuthority.init(join(dir, 'data', 'ca'));
  caPem = ca.exportRoot('pem');
  server = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: join(dir, 'data'), allowUnsecured: true, apiToken: TOKEN, sms: { callbackBase: 'http://127.0.0.1:9' } });
  base = `http://127.0.0.1:${(server.api.server.address() as AddressInfo).port}`;
  // Two devices the inventory knows, one with a number.
  await server.inventory.recordContact({ protocol: 'omadm', devId: 'IMEI:352000000900025', make: 'Acme', model: 'A1 Lite' });
  await server.inventory.recordContact({ protocol: 'omadm', devId: 'IMEI:352000000900033', make: 'Acme', model: 'A1 Lite' });
  assert.equal((await call('/api/v1/sms/numbers', { json: { endpoint: 'omadm:IMEI:352000000900025', number: '+4792100002' } })).status, 200);
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the root: fingerprint, PEM and DER (application/x-x509-ca-cert) downloads, channels', async () => {
  const info = await call('/api/v1/certificates');
  assert.equal(info.status, 200);
  const root = info.body['root'] as { fingerprint: string; sha256: string };
  assert.equal(root.fingerprint, new X509Certificate(caPem).fingerprint256);
  assert.deepEqual(info.body['channels'], ['sms-link']);
  const der = await fetch(`${base}/api/v1/certificates/root.der`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(der.headers.get('content-type'), 'application/x-x509-ca-cert');
  assert.equal(new X509Certificate(Buffer.from(await der.arrayBuffer())).fingerprint256, root.fingerprint);
  const pem = await (await fetch(`${base}/api/v1/certificates/root.pem`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  assert.equal(new X509Certificate(pem).fingerprint256, root.fingerprint);
  assert.equal((await fetch(`${base}/api/v1/certificates/root.pem`)).status, 401, 'not public');
});

test('send to one device, to many by endpoints and by filter: each outcome; what cannot be sent is a clear 409; audited; in OpenAPI', async () => {
  const one = await call(`/api/v1/devices/${encodeURIComponent('omadm:IMEI:352000000900025')}/certificate`, { method: 'POST' });
  assert.equal(one.status, 202, JSON.stringify(one.body));
  assert.deepEqual([one.body['state'], one.body['channel']], ['sent', 'sms-link']);
  const outbox = await call('/api/v1/sms/outbox?limit=10');
  const texts = outbox.body['messages'] as { to: string; kind: string }[];
  assert.ok(texts.some((m) => m.to === '+4792100002' && m.kind === 'text'), JSON.stringify(texts));

  const none = await fetch(`${base}/api/v1/devices/${encodeURIComponent('omadm:IMEI:352000000900033')}/certificate`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(none.status, 409);
  // The API's error shape (src/api/server.ts): the code and a message that says what to do.
  const problem = (await none.json()) as { error: string; message: string };
  assert.equal(problem.error, 'CONFLICT');
  assert.match(problem.message, /no way to send the certificate .*Depot knows no phone number/);

  const many = await call('/api/v1/certificates/send', { json: { endpoints: ['omadm:IMEI:352000000900025', 'omadm:IMEI:352000000900033'] } });
  assert.equal(many.status, 200);
  assert.deepEqual((many.body['results'] as { outcome: string }[]).map((r) => r.outcome), ['sent', 'refused']);
  const filtered = await call('/api/v1/certificates/send', { json: { filter: { model: 'A1 Lite', trustState: 'unknown' } } });
  assert.deepEqual((filtered.body['results'] as { endpoint: string; outcome: string }[]).map((r) => [r.endpoint, r.outcome]).sort(), [
    ['omadm:IMEI:352000000900025', 'sent'],
    ['omadm:IMEI:352000000900033', 'refused'],
  ]);
  assert.equal((await call('/api/v1/certificates/send', { json: {} })).status, 400);
  assert.equal((await call('/api/v1/certificates/send', { json: { endpoints: [] } })).status, 400);

  const listed = await call('/api/v1/certificates/devices?state=sent');
  assert.deepEqual((listed.body['devices'] as { endpoint: string }[]).map((d) => d.endpoint), ['omadm:IMEI:352000000900025']);
  const all = await call('/api/v1/certificates/devices');
  assert.equal((all.body['devices'] as unknown[]).length, 2);
  assert.equal(((await call('/api/v1/certificates')).body['pushes'] as Record<string, number>)['sent'], 1);

  const audit = await call('/api/v1/audit?limit=50');
  const actions = (audit.body['entries'] as { action: string; outcome: string }[]).map((e) => `${e.action} ${e.outcome}`);
  assert.ok(actions.includes('POST /api/v1/devices/:endpoint/certificate 202'), actions.join('\n'));
  assert.ok(actions.includes('POST /api/v1/certificates/send 200'));

  const doc = (await (await fetch(`${base}/api/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  for (const path of ['/api/v1/devices/{endpoint}/certificate', '/api/v1/certificates/send', '/api/v1/certificates', '/api/v1/certificates/devices']) assert.ok(doc.paths[path], path);
});

test('depot devices send-certificate <endpoint…>: one line per device, exit 1 when one is refused', async () => {
  let out = '';
  const io = { stdout: (t: string) => (out += t), stderr: (t: string) => (out += t), fetch: (...args: Parameters<typeof fetch>) => fetch(...args) };
  const code = await runDevicesCommand(['send-certificate', 'omadm:IMEI:352000000900025', 'omadm:IMEI:352000000900033', '--api', base, '--token', TOKEN], io);
  assert.equal(code, 1, out);
  assert.match(out, /omadm:IMEI:352000000900025 +sent /);
  assert.match(out, /omadm:IMEI:352000000900033 +refused .*no phone number/);
  out = '';
  assert.equal(await runDevicesCommand(['send-certificate', '--api', base, '--token', TOKEN], io), 2);
  assert.match(out, /name the devices/);
});

test('without a CA the certificate routes answer 409 and say how to get one', async () => {
  const plain = await startApiTestServer('certs-no-ca', TOKEN);
  try {
    const answer = await apiCall(`http://127.0.0.1:${plain.port}`, TOKEN, '/api/v1/certificates');
    assert.equal(answer.status, 409);
    assert.match(String(answer.body['message']), /no CA.*depot ca init/);
  } finally {
    await plain.close();
  }
});
