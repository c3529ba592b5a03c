/**
 * SMS through a real Kannel (issue 15): bearerbox + smsbox from config/kannel/lab.conf.in on
 * free ports, Kannel's fakesmsc as the radio network, simulated handsets reading what the SMSC
 * delivers, and `depot serve`'s own composition (outbox, Kannel driver, API callbacks).
 *
 * Checked: WAP Push (WDP ports, WSP headers, content type with SEC/MAC, application id, body)
 * decodes at the handset to exactly what was pushed, also when concatenated; texts with a
 * link; delivery reports update the outbox; MO messages reach Depot; Kannel down keeps the
 * messages and retries with a clear error, then delivers each once; unauthenticated and
 * malformed callbacks and bad numbers are refused; the SMS link install method end to end.
 */
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { ensureSmsSecrets } from '../../src/app/sms.js';
import { startDepotServer, type RunningDepotServer } from '../../src/app/server.js';
import type { AttemptContext } from '../../src/fleet/methods/method.js';
import { smsLinkJobStep } from '../../src/fleet/methods/sms-link.js';
import { decodeUdh } from '../../src/sms/udh.js';
import type { ReceivedSms, SmsMessageRecord } from '../../src/sms/outbox.js';
import { FakeSmscNetwork } from '../../src/sim/sms/handsets.js';
import { honourSmsWakeUps } from '../../src/sim/sms/lwm2m-wakeup.js';
import { Lwm2mClient } from '../../src/lwm2m/client/index.js';
import { parseRegistrationUpdateTrigger } from '../../src/sms/lwm2m-trigger.js';
import { KannelLab, freePort, waitUntil } from '../../src/sim/sms/kannel-lab.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { apiCall } from '../support/api-client.js';
import { registeredRoutes } from '../../src/api/auth.js';

const TOKEN = 'sms-test-token-0123456789';
let dir: string;
let lab: KannelLab;
let network: FakeSmscNetwork;
let depot: RunningDepotServer;
let base: string;
let callbackSecret: string;
const received: ReceivedSms[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-sms-'));
  const httpPort = await freePort();
  base = `http://127.0.0.1:${httpPort}`;
  // The secrets live in Depot's store; Kannel's configuration is rendered from the same ones.
  const store = openSqliteStore({ dataDir: join(dir, 'data') });
  const secrets = await ensureSmsSecrets(store);
  store.close();
  callbackSecret = secrets.callbackSecret;
  lab = await KannelLab.start({ callbackBase: base, callbackSecret, sendsmsPassword: secrets.sendsmsPassword, dir: join(dir, 'kannel') });
  network = await FakeSmscNetwork.connect({ port: lab.ports.fakeSmsc, online: () => lab.smscOnline() });
  depot = await startDepotServer({
    host: '127.0.0.1',
    coapPort: 0,
    coapsPort: null,
    httpPort,
    dataDir: join(dir, 'data'),
    allowUnsecured: true,
    apiToken: TOKEN,
    // The authorization checks below make more refused requests than the default lockout allows.
    api: { authThrottle: { maxFailures: 1000 } },
    sms: { kannel: { sendsmsUrl: lab.sendsmsUrl }, callbackBase: base, from: '4242', backoff: { baseMs: 100, maxMs: 400 }, ratePerSecond: 50 },
  });
  depot.sms!.outbox.onMessage((sms) => received.push(sms));
});

after(async () => {
  await depot?.close();
  await network?.close();
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const outbox = () => depot.sms!.outbox;

async function settled(id: string, state: SmsMessageRecord['state'], timeoutMs = 20_000): Promise<SmsMessageRecord> {
  let last: SmsMessageRecord | null = null;
  await waitUntil(`SMS ${id} ${state}`, async () => (last = await outbox().get(id))?.state === state, timeoutMs, () => `${JSON.stringify(last)}\n${lab.logs().slice(-1500)}`);
  return last!;
}

void test('WAP Push (OMA DM notification): the SMSC delivers one SMS with WDP ports 9200→2948 and the handset decodes the WSP push to what was pushed', async () => {
  const phone = network.handset('+46700000001');
  const body = Uint8Array.from(randomBytes(40));
  const sent = await outbox().wapPush({ to: '+46 70 000 00 01', contentType: 'application/vnd.syncml.notification', applicationId: 'x-wap-application:syncml.dm', body, jobStep: 'test:dm-notification:1' });
  const message = await phone.waitFor((m) => m.push !== null);
  assert.equal(phone.smsReceived.length, 1);
  const line = phone.smsReceived[0]!;
  assert.equal(line.from, '4242');
  assert.deepEqual(decodeUdh(line.udh!), [{ kind: 'ports', destination: 2948, source: 9200, bits: 16 }]);
  // WSP: TID, PDU type 0x06 Push, headers length 3, content type 0x44 | 0x80, X-WAP-Application-Id 0x2F | 0x80 = syncml.dm (7 | 0x80).
  assert.deepEqual([...line.data.subarray(1, 6)], [0x06, 0x03, 0xc4, 0xaf, 0x87]);
  const push = message.push!;
  assert.equal(push.contentType, 'application/vnd.syncml.notification');
  assert.equal(push.contentTypeCode, 0x44);
  assert.equal(push.applicationId, 'x-wap-application:syncml.dm');
  assert.deepEqual(push.body, body);
  const delivered = await settled(sent.id, 'delivered');
  assert.equal(delivered.segments[0]!.dlrType, 1);
});

void test('WAP Push (Client Provisioning, USERPIN): a document over one SMS is concatenated; every part carries the ports and one reference; the handset reassembles SEC, MAC and the body exactly', async () => {
  const phone = network.handset('+46700000002');
  const body = Uint8Array.from(randomBytes(700));
  const mac = createHash('sha1').update(body).digest('hex').toUpperCase();
  const sent = await outbox().wapPush({ to: '+46700000002', contentType: 'application/vnd.wap.connectivity-wbxml', parameters: { SEC: 'USERPIN', MAC: mac }, body, jobStep: 'test:cp:1' });
  assert.ok(sent.segments.length >= 6, `expected concatenation, got ${sent.segments.length} part(s)`);
  const message = await phone.waitFor((m) => m.push !== null);
  assert.equal(message.parts, sent.segments.length);
  const refs = new Set<number>();
  phone.smsReceived.forEach((line) => {
    const udh = decodeUdh(line.udh!);
    assert.deepEqual(udh[0], { kind: 'ports', destination: 2948, source: 9200, bits: 16 });
    assert.equal(udh[1]!.kind, 'concat');
    if (udh[1]!.kind === 'concat') {
      refs.add(udh[1]!.ref);
      assert.equal(udh[1]!.total, sent.segments.length);
    }
    assert.ok(line.udh!.length + line.data.length <= 140);
  });
  assert.equal(refs.size, 1);
  const push = message.push!;
  assert.equal(push.contentType, 'application/vnd.wap.connectivity-wbxml');
  assert.equal(push.parameters.SEC, 'USERPIN');
  assert.equal(push.parameters.MAC, mac);
  assert.equal(push.applicationId, null);
  assert.deepEqual(push.body, body);
  // OMA-WAP-ProvBoot §5.3 wire form: 1F 2D (Value-length 45), B6 (0x36), 91 81 (SEC=USERPIN), 92 (MAC) 40 digits NUL.
  const first = phone.smsReceived.find((l) => (decodeUdh(l.udh!)[1] as { seq: number }).seq === 1)!;
  assert.deepEqual([...first.data.subarray(1, 9)], [0x06, 0x2f, 0x1f, 0x2d, 0xb6, 0x91, 0x81, 0x92]);
  const delivered = await settled(sent.id, 'delivered');
  assert.ok(delivered.segments.every((s) => s.state === 'delivered' && s.dlrType === 1));
});

void test('texts: a text with a link arrives as written; a long one is concatenated and joined by the handset', async () => {
  const phone = network.handset('+46700000003');
  const link = 'Install Depot agent 2.1: https://depot.example.com/d/AbCdEfGhIjKlMnOpQrStUv (valid 3 days)';
  const a = await outbox().sendText({ to: '+46700000003', text: link, jobStep: 'test:text:1' });
  await phone.waitFor((m) => m.text === link);
  const long = 'Depot '.repeat(50).trim();
  const b = await outbox().sendText({ to: '+46700000003', text: long, jobStep: 'test:text:2' });
  assert.equal(b.segments.length, 2);
  const joined = await phone.waitFor((m) => m.text === long);
  assert.equal(joined.parts, 2);
  await settled(a.id, 'delivered');
  await settled(b.id, 'delivered');
});

void test('idempotency: the same job step twice is one SMS, delivered once', async () => {
  const phone = network.handset('+46700000004');
  const first = await outbox().sendText({ to: '+46700000004', text: 'once', jobStep: 'test:idem:1' });
  const second = await outbox().sendText({ to: '+46700000004', text: 'once', jobStep: 'test:idem:1' });
  assert.equal(second.id, first.id);
  await phone.waitFor((m) => m.text === 'once');
  await settled(first.id, 'delivered');
  await assert.rejects(outbox().sendText({ to: '+46700000009', text: 'elsewhere', jobStep: 'test:idem:1' }), /another number/);
  assert.equal(phone.texts.filter((t) => t === 'once').length, 1);
});

void test('MO: a handset texts Depot through the SMSC and Depot gets it from the authenticated callback', async () => {
  const phone = network.handset('+46700000005');
  phone.sendText('4242', 'STATUS please');
  await waitUntil('MO reaches Depot', () => received.some((r) => r.from === '+46700000005' && r.text === 'STATUS please'), 15_000, () => lab.logs().slice(-1500));
  const mo = received.find((r) => r.from === '+46700000005')!;
  // Kannel 1.4.5's smsbox reports the receiver of an MO message as its global-sender.
  assert.equal(mo.to, 'Depot');
  assert.equal(mo.coding, 0);
});

void test('Kannel down: messages stay queued, retried with a clear error in the outbox and its status; nothing lost, each delivered once when Kannel is back', async () => {
  const phone = network.handset('+46700000006');
  await lab.stopSmsbox();
  try {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await outbox().sendText({ to: '+46700000006', text: `while down ${i}`, jobStep: `test:down:${i}` })).id);
    await waitUntil('retried', async () => ((await outbox().get(ids[0]!))?.attempts ?? 0) >= 2, 15_000);
    const queued = await outbox().get(ids[0]!);
    assert.equal(queued!.state, 'queued');
    assert.match(queued!.lastError!, /cannot reach Kannel sendsms at http:\/\/127\.0\.0\.1:\d+\/cgi-bin\/sendsms: ECONNREFUSED/);
    assert.doesNotMatch(queued!.lastError!, new RegExp(lab.sendsmsPassword));
    const listed = await apiCall(base, TOKEN, '/api/v1/sms/outbox?state=queued');
    assert.equal(listed.status, 200);
    assert.match(String((listed.body.gateway as { lastError: string }).lastError), /ECONNREFUSED/);
    assert.equal((listed.body.messages as unknown[]).length, 3);
  } finally {
    await lab.startSmsbox();
  }
  for (let i = 0; i < 3; i++) await phone.waitFor((m) => m.text === `while down ${i}`, 20_000);
  await waitUntil('all delivered', async () => (await outbox().list({ to: '+46700000006' })).items.every((m) => m.state === 'delivered'), 20_000);
  for (let i = 0; i < 3; i++) assert.equal(phone.texts.filter((t) => t === `while down ${i}`).length, 1);
});

void test('callbacks: unauthenticated delivery reports and MO messages are refused (401), malformed ones get 400, and nothing changes', async () => {
  const sent = await outbox().sendText({ to: '+46700000007', text: 'dlr target', jobStep: 'test:cb:1' });
  const delivered = await settled(sent.id, 'delivered');
  const get = async (path: string) => {
    const r = await fetch(base + path);
    return { status: r.status, body: (await r.json().catch(() => ({}))) as { error?: string; message?: string } };
  };
  assert.equal((await get(`/sms/kannel/dlr?ref=${sent.id}.1&type=2`)).status, 401);
  assert.equal((await get(`/sms/kannel/dlr?ref=${sent.id}.1&sig=AAAAAAAAAAAAAAAAAAAAAA&type=2`)).status, 401);
  // A report signed for another part does not apply to this one.
  const wrong = await get(`/sms/kannel/dlr?ref=${sent.id}.2&sig=AAAAAAAAAAAAAAAAAAAAAA&type=2`);
  assert.equal(wrong.status, 401);
  assert.equal((await outbox().get(sent.id))!.state, delivered.state);
  const { dlrUrl } = await import('../../src/sms/kannel.js');
  const signed = dlrUrl(base, callbackSecret, sent.id, 1).replace(base, '');
  const badType = await get(signed.replace('type=%d', 'type=3').replace('&ts=%T', '').replace('&reply=%A', ''));
  assert.equal(badType.status, 400);
  assert.equal(badType.body.error, 'BAD_CALLBACK');
  const unknown = dlrUrl(base, callbackSecret, 'nosuchmessage', 1).replace(base, '').replace('type=%d', 'type=1').replace('&ts=%T', '').replace('&reply=%A', '');
  assert.equal((await get(unknown)).status, 404);
  assert.equal((await get('/sms/kannel/mo?key=wrong&from=%2B46700000001&to=4242&coding=0&data=hi')).status, 401);
  assert.equal((await get('/sms/kannel/mo?from=%2B46700000001&to=4242&coding=0&data=hi')).status, 401);
  const badFrom = await get(`/sms/kannel/mo?key=${callbackSecret}&from=hello&to=4242&coding=0&data=hi`);
  assert.equal(badFrom.status, 400);
  assert.match(badFrom.body.message!, /from/);
  assert.equal((await get(`/sms/kannel/mo?key=${callbackSecret}&from=%2B46700000001&to=4242&coding=7&data=hi`)).status, 400);
  assert.equal((await get(`/sms/kannel/mo?key=${callbackSecret}&from=%2B46700000001&to=4242&coding=0`)).status, 400);
  assert.equal((await get(`/sms/kannel/mo?key=${callbackSecret}&from=%2B46700000001&to=4242&data=%ZZ`)).status, 400);
  // The refusals never echo the secret.
  assert.doesNotMatch(JSON.stringify(badFrom.body), new RegExp(callbackSecret));
});

void test('bad numbers are refused with what is wrong (API and outbox), before anything is stored', async () => {
  let n = 0;
  for (const [to, why] of [['0701234567', /international format/], ['+46 70 abc', /characters other than digits/], ['+0701234567', /never starts with 0/], ['+4612', /8 to 15/], ['', /missing/]] as const) {
    const r = await apiCall(base, TOKEN, '/api/v1/sms/texts', { json: { to, text: 'x', jobStep: `bad-${++n}` } });
    assert.equal(r.status, 400, `${to}: ${JSON.stringify(r.body)}`);
    assert.match(String(r.body.message), why);
  }
  assert.equal((await outbox().list({})).items.filter((m) => m.key.startsWith('api:bad-')).length, 0);
  const ok = await apiCall(base, TOKEN, '/api/v1/sms/texts', { json: { to: '+46 (70) 000-00-08', text: 'hello via the API', jobStep: 'api-1' } });
  assert.equal(ok.status, 202);
  assert.equal(ok.body.to, '+46700000008');
  const unauthenticated = await fetch(`${base}/api/v1/sms/outbox`);
  assert.equal(unauthenticated.status, 401);
});

void test('authorization: with SMS on, the only new public routes are the two Kannel callbacks and the link download; every other SMS route needs the token', async () => {
  const routes = registeredRoutes(depot.api);
  const publicRoutes = routes.filter((r) => r.public).map((r) => `${r.method} ${r.url}`).sort();
  // Depot's public routes without SMS (health, OpenAPI, package links, the console's page and login) ...
  const withoutSms = ['GET /', 'GET /api/health', 'GET /api/openapi.json', 'GET /console/:file', 'GET /pkg/:token', 'HEAD /', 'HEAD /api/health', 'HEAD /api/openapi.json', 'HEAD /console/:file', 'HEAD /pkg/:token', 'POST /api/v1/login'];
  // ... and the SMS adds: the two Kannel callbacks (they check their own secret), the link download and its install report (the token is the capability).
  const sms = ['GET /d/:token', 'GET /sms/kannel/dlr', 'GET /sms/kannel/mo', 'HEAD /d/:token', 'HEAD /sms/kannel/dlr', 'HEAD /sms/kannel/mo', 'POST /d/:token/installed'];
  assert.deepEqual(publicRoutes, [...withoutSms, ...sms].sort());
  for (const r of routes.filter((x) => !x.public && (x.url.includes('/sms') || x.url.includes('sms-wakeup')))) {
    const res = await fetch(base + r.url.replace(':id', 'x').replace(':endpoint', 'x'), { method: r.method, ...(r.method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}) });
    assert.equal(res.status, 401, `${r.method} ${r.url}`);
  }
});

void test('SMS link install: the text with a one-time link reaches the phone, the link is fetched (with Range), and the attempt succeeds when the device reports the version', async () => {
  const phone = network.handset('+46700000010');
  const content = randomBytes(3000);
  const pkg = await depot.catalog.addStream(Readable.from([content]), { opaque: { name: 'agent', version: '2.1.0', packageType: 'application/octet-stream' } });
  const method = depot.sms!.linkMethod;
  const target = { jobId: 'chain-sms-1', endpoint: 'phone-10', packageSha256: pkg.sha256, activate: false };
  assert.match((await method.preflight(target))!, /no phone number/);
  const mapped = await apiCall(base, TOKEN, '/api/v1/sms/numbers', { json: { endpoint: 'phone-10', number: '+46 70 000 00 10' } });
  assert.equal(mapped.status, 200);
  assert.equal(await method.preflight(target), undefined);
  const context = (state: AttemptContext['attempt']['state']): AttemptContext => ({
    target,
    job: { id: target.jobId, endpoint: target.endpoint, packageSha256: pkg.sha256, activate: false, methods: ['sms-link'], plan: { chosenBy: 'operator', skip: {}, note: null }, state: 'running', message: null, retryAt: null, createdAt: 0, updatedAt: 0, finishedAt: null },
    attempt: { jobId: target.jobId, seq: 1, position: 0, method: 'sms-link', startedAt: 0, endedAt: null, progressAt: 0, outcome: 'running', message: null, result: null, bytes: null, state },
  });
  const begun = await method.begin(context({}));
  assert.equal(begun.status, 'running');
  // Begun again (a restart before the step was saved): the same SMS, not a second one.
  const again = await method.begin(context({}));
  assert.equal(again.status, 'running');
  const sms = await phone.waitFor((m) => m.text?.startsWith('agent 2.1.0: download and install from ') === true);
  const url = /(http:\/\/\S+\/d\/[A-Za-z0-9_-]+)/.exec(sms.text!)![1]!;
  assert.equal(phone.texts.filter((t) => t.startsWith('agent 2.1.0')).length, 1);
  await settled((await outbox().get(smsLinkJobStep(target.jobId, 1)))!.id, 'delivered');
  const delivered = await method.advance(context({}), { kind: 'timer' });
  assert.equal(delivered.status, 'running');
  assert.match(delivered.message, /delivered to \+4670\*+10; link not fetched yet/);
  // The phone follows the link: a first part, then the rest with Range.
  const head = await fetch(url, { headers: { range: 'bytes=0-999' } });
  // An install report before the whole package was downloaded is refused.
  assert.equal((await fetch(`${url}/installed`, { method: 'POST' })).status, 404);
  assert.equal(head.status, 206);
  assert.deepEqual(Buffer.from(await head.arrayBuffer()), content.subarray(0, 1000));
  const rest = await fetch(url, { headers: { range: 'bytes=1000-' } });
  assert.equal(rest.status, 206);
  assert.deepEqual(Buffer.from(await rest.arrayBuffer()), content.subarray(1000));
  await waitUntil('download recorded', async () => /3000 of 3000 bytes/.test((await method.advance(context({}), { kind: 'timer' })).message), 5000);
  const downloaded = await method.advance(context({}), { kind: 'timer' });
  assert.equal(downloaded.status, 'running');
  assert.match(downloaded.message, /fetched 2 time\(s\), 3000 of 3000 bytes downloaded/);
  // The device's installer reports over the same link: recorded in its facts, which the method reads.
  assert.equal((await fetch(`${base}/d/AAAAAAAAAAAAAAAAAAAAAA/installed`, { method: 'POST' })).status, 404);
  assert.equal((await fetch(`${url}/installed`, { method: 'POST' })).status, 204);
  assert.equal((await depot.store.deviceFacts.get('phone-10'))?.extra['package:agent'], '2.1.0');
  const installed = await method.advance(context({}), { kind: 'timer' });
  assert.equal(installed.status, 'succeeded', installed.message);
  // Once installed the link is withdrawn.
  assert.equal((await fetch(url)).status, 404);
  assert.equal((await fetch(`${base}/d/AAAAAAAAAAAAAAAAAAAAAA`)).status, 404);
});

void test('LwM2M SMS wake-up: the Registration Update Trigger (CoAP POST /1/1/8) reaches a registered queue-mode device by SMS and it updates its registration', async () => {
  const port = depot.coap.endpoint.transport.address().port;
  const client = new Lwm2mClient({ endpoint: 'sleeper-1', serverUri: `coap://127.0.0.1:${port}`, lifetime: 300, objects: [], queueMode: true });
  const registered = client.waitFor('registered', 10_000);
  await client.start();
  try {
    await registered;
    const phone = network.handset('+46700000011');
    const honour = honourSmsWakeUps(phone, client, 1);
    const noNumber = await apiCall(base, TOKEN, '/api/v1/devices/sleeper-1/sms-wakeup', { json: {} });
    assert.equal(noNumber.status, 404);
    assert.match(String(noNumber.body.message), /no phone number/);
    assert.equal((await apiCall(base, TOKEN, '/api/v1/devices/nobody/sms-wakeup', { json: {} })).status, 404);
    await apiCall(base, TOKEN, '/api/v1/sms/numbers', { json: { endpoint: 'sleeper-1', number: '+46700000011' } });
    const updated = new Promise<void>((resolve) => depot.lwm2m.once('updated', (r: { endpoint: string }) => r.endpoint === 'sleeper-1' && resolve()));
    const sent = await apiCall(base, TOKEN, '/api/v1/devices/sleeper-1/sms-wakeup', { json: { jobStep: 'wake-1' } });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const sms = await phone.waitFor((m) => m.ports === null && parseRegistrationUpdateTrigger(m.data) === 1);
    assert.equal(sms.parts, 1);
    await updated;
    assert.equal(honour.triggers, 1);
    // The same job step does not wake it twice.
    const again = await apiCall(base, TOKEN, '/api/v1/devices/sleeper-1/sms-wakeup', { json: { jobStep: 'wake-1' } });
    assert.equal(again.body.id, sent.body.id);
  } finally {
    await client.stop();
  }
});

void test('at rest: message bodies and the SMS secrets are not in the database file in clear', () => {
  const file = readFileSync(join(dir, 'data', 'depot.sqlite'));
  const wal = (() => {
    try {
      return readFileSync(join(dir, 'data', 'depot.sqlite-wal'));
    } catch {
      return Buffer.alloc(0);
    }
  })();
  for (const needle of ['dlr target', 'hello via the API', callbackSecret, lab.sendsmsPassword]) {
    assert.equal(file.includes(needle), false, `${needle.slice(0, 6)}… in depot.sqlite`);
    assert.equal(wal.includes(needle), false, `${needle.slice(0, 6)}… in the WAL`);
  }
});
