/**
 * OMA DM bootstrap end to end (issue 15, the DM side): Depot's bootstrap service makes the DM
 * account, pushes a USERPIN-secured Client Provisioning document (carried by a FAKE in-process push
 * sender: the SMS layer's own tests carry pushes through Kannel), the simulated handset's user
 * enters the PIN, and the first DM session arrives over the real HTTPS DM endpoint (Depot's CA)
 * into a real SQLite store and reports DevInfo. A wrong PIN installs nothing and the operator
 * sees "rejected"; a notification to a bootstrapped phone starts its session, a forged one is
 * ignored; resends stop at the limit and the operator is told.
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
import { OmaDmBootstrapService } from '../../src/omadm/bootstrap/service.js';
import { SimulatedHandset } from '../../src/sim/omadm/provisioning-client.js';
import { PushApplicationId, PushContentType } from '../../src/omadm/push-port.js';
import { RecordingPushSender } from '../support/omadm/recording-push-sender.js';

let dir: string;
let store: SqliteStore;
let server: OmaDmHttpServer;
let service: OmaDmBootstrapService;
let caPem: string;
let clock = Date.now();
const sender = new RecordingPushSender();
const effects: SessionEffect[] = [];
const logs: string[] = [];
const alerts: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-omadm-boot-'));
  const ca = await CertificateAuthority.create();
  caPem = ca.exportRoot('pem');
  const issued = await ca.issueServerCertificate({ names: ['localhost', '127.0.0.1'] });
  store = openSqliteStore({ dataDir: join(dir, 'data'), secretKey: randomBytes(32) });
  server = new OmaDmHttpServer({
    store,
    host: '127.0.0.1',
    port: 0,
    tls: { cert: issued.certificatePem, key: issued.privateKeyPem! },
    serverUri: 'https://localhost/dm',
    onEffect: (e) => void effects.push(e),
    onAuthenticated: (deviceId) => service.onAuthenticated(deviceId),
    log: (line) => logs.push(line),
  });
  const port = await server.listen();
  service = new OmaDmBootstrapService({
    store: store.omadmBootstrap,
    accounts: store.omadmAccounts,
    sender,
    serverId: 'depot-test',
    serverUri: `https://localhost:${port}/dm`,
    now: () => clock,
    log: (line) => logs.push(line),
    onOperatorAlert: (_d, text) => alerts.push(text),
  });
});

after(async () => {
  await server.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function handset(n: number, userPin: string | null): SimulatedHandset {
  return new SimulatedHandset({ msisdn: `+4790000${String(n).padStart(3, '0')}`, imei: `35000000000${String(n).padStart(4, '0')}`, userPin, ca: caPem, index: n });
}

test('a never-bootstrapped phone gets the bootstrap, its user enters 12345, its first DM session reports DevInfo and the bootstrap is accepted', async () => {
  const phone = handset(1, '12345');
  const [outcome] = await service.bootstrap([{ msisdn: phone.profile.msisdn, imei: phone.profile.imei }]);
  assert.equal(outcome?.outcome, 'sent', outcome?.message);
  assert.equal((await store.omadmBootstrap.get(phone.profile.msisdn))?.state, 'sent');

  const push = sender.last(phone.profile.msisdn);
  assert.equal(push.contentType, PushContentType.ProvisioningWbxml);
  assert.equal(push.parameters?.SEC, 'USERPIN');
  assert.match(push.parameters?.MAC ?? '', /^[0-9A-F]{40}$/);
  // The DM account exists in Depot (sealed) before the device has it.
  const account = await store.omadmAccounts.get(phone.deviceId);
  assert.ok(account);

  await sender.report(service, push.id, 'delivered', clock);
  assert.equal((await store.omadmBootstrap.get(phone.profile.msisdn))?.state, 'delivered');

  const event = await phone.receive(push);
  assert.equal(event.kind, 'installed');
  assert.ok(event.kind === 'installed' && event.session);
  assert.equal(event.session.ended, 'completed');
  assert.equal(event.session.authenticated, true);
  assert.equal(phone.installed.length, 1);
  // The client nonce came in the document (AAUTHDATA): the first digest is accepted, no 401 round.
  assert.ok(!effects.some((e) => e.kind === 'auth-failed' && e.deviceId === phone.deviceId));
  assert.ok(effects.some((e) => e.kind === 'authenticated' && e.deviceId === phone.deviceId));

  const facts = await store.deviceFacts.get(factsEndpointOf(phone.deviceId));
  assert.equal(facts?.manufacturer, 'Globex');
  assert.equal(facts?.modelNumber, 'Model 2');
  const row = await store.omadmBootstrap.get(phone.profile.msisdn);
  assert.equal(row?.state, 'accepted');
  // Nothing secret in the log lines.
  for (const line of logs) {
    assert.ok(!line.includes('12345'), line);
    assert.ok(!line.includes(account.clientPassword), line);
  }
});

test('a wrong PIN installs nothing, no session arrives, and past the acceptance window the operator sees "rejected"', async () => {
  const phone = handset(2, '54321');
  const [outcome] = await service.bootstrap([{ msisdn: phone.profile.msisdn, imei: phone.profile.imei }]);
  assert.equal(outcome?.outcome, 'sent');
  const push = sender.last(phone.profile.msisdn);
  await sender.report(service, push.id, 'delivered', clock);
  const event = await phone.receive(push);
  assert.deepEqual(event, { kind: 'refused', reason: 'the MAC does not verify (wrong PIN)' });
  assert.equal(phone.installed.length, 0);
  assert.equal(await store.deviceFacts.get(factsEndpointOf(phone.deviceId)), null);
  assert.ok(!effects.some((e) => e.deviceId === phone.deviceId), 'no DM session from the phone');
  assert.equal((await store.omadmBootstrap.get(phone.profile.msisdn))?.state, 'delivered');

  clock += 25 * 60 * 60_000;
  assert.ok((await service.sweep()) >= 1);
  const row = await store.omadmBootstrap.get(phone.profile.msisdn);
  assert.equal(row?.state, 'rejected');
  assert.match(row?.message ?? '', /wrong PIN/);
  // A phone whose user enters no PIN refuses too.
  const silent = handset(3, null);
  await service.bootstrap([{ msisdn: silent.profile.msisdn, imei: silent.profile.imei }]);
  assert.deepEqual(await silent.receive(sender.last(silent.profile.msisdn)), { kind: 'refused', reason: 'the user entered no PIN' });
});

test('a notification to a bootstrapped phone starts its session (Alert 1200, the notified SessionID); a forged one is ignored', async () => {
  const phone = handset(4, '12345');
  await service.bootstrap([{ msisdn: phone.profile.msisdn, imei: phone.profile.imei }]);
  const installed = await phone.receive(sender.last(phone.profile.msisdn));
  assert.equal(installed.kind, 'installed');
  effects.length = 0;

  const [started] = await service.startDm({ msisdns: [phone.profile.msisdn] });
  assert.equal(started?.outcome, 'notified', started?.message);
  const push = sender.last(phone.profile.msisdn);
  assert.equal(push.contentType, PushContentType.DmNotification);
  assert.equal(push.applicationId, PushApplicationId.SyncMLDm);
  const event = await phone.receive(push);
  assert.equal(event.kind, 'session');
  assert.ok(event.kind === 'session' && event.session.ended === 'completed' && event.session.authenticated);
  assert.ok(effects.some((e) => e.kind === 'authenticated' && e.deviceId === phone.deviceId));

  effects.length = 0;
  const forged = Uint8Array.from(push.body);
  forged[0]! ^= 0x01; // the digest
  assert.deepEqual(await phone.receive({ ...push, body: forged }), { kind: 'ignored', reason: 'the digest is wrong' });
  const tampered = Uint8Array.from(push.body);
  tampered[tampered.length - 1]! ^= 0x20; // the server identifier
  assert.equal((await phone.receive({ ...push, body: tampered })).kind, 'ignored');
  assert.equal(effects.length, 0, 'no session for an ignored notification');
});

test('start-dm reports the devices it cannot notify: unknown numbers, unaccepted bootstraps, accounts without a number', async () => {
  await store.omadmAccounts.put({ deviceId: 'IMEI:999', clientUsername: 'IMEI:999', clientPassword: 'long-enough-pw' }, randomBytes(16), clock);
  const out = await service.startDm({ msisdns: ['+4799999999', '+4790000002'], deviceIds: ['IMEI:999'] });
  assert.deepEqual(out.map((o) => o.outcome), ['reported', 'reported', 'reported']);
  assert.match(out[0]!.message, /no device with this phone number/);
  assert.match(out[1]!.message, /rejected, not accepted/);
  assert.match(out[2]!.message, /no phone number/);
  // A group selection reaches the accepted phones only.
  const byFilter = await service.startDm({ filter: { state: 'accepted' } });
  assert.ok(byFilter.length >= 2);
  assert.ok(byFilter.every((o) => o.outcome === 'notified'));
});

test('resends are limited: after the group\'s maxSends without acceptance Depot stops and tells the operator; the same send is never pushed twice', async () => {
  await store.omadmBootstrap.putSettings('group:field', { pin: '24680', data: { maxSends: 2 } }, clock);
  const phone = handset(5, '11111');
  const input = { msisdn: phone.profile.msisdn, imei: phone.profile.imei, group: 'field' };
  assert.equal((await service.bootstrap([input]))[0]?.outcome, 'sent');
  assert.equal((await service.bootstrap([input]))[0]?.outcome, 'sent');
  const pushes = sender.to(phone.profile.msisdn);
  assert.equal(pushes.length, 2);
  assert.ok(Buffer.from(pushes[0]!.body).equals(Buffer.from(pushes[1]!.body)), 'a resend is the same document');
  assert.notEqual(pushes[0]!.idempotencyKey, pushes[1]!.idempotencyKey);
  const third = (await service.bootstrap([input]))[0];
  assert.equal(third?.outcome, 'stopped');
  assert.equal(sender.to(phone.profile.msisdn).length, 2);
  assert.equal((await store.omadmBootstrap.get(phone.profile.msisdn))?.state, 'stopped');
  assert.equal(alerts.length, 1);
  assert.match(alerts[0]!, /stopped: 2 sent without acceptance/);
  const reset = await service.decide(phone.profile.msisdn, 'reset');
  assert.equal(reset.state, 'new');
  assert.equal(reset.sends, 0);
  // After a reset the number can be sent to again: a new push (a new idempotency key), the same account.
  clock += 1000;
  const again = (await service.bootstrap([input]))[0];
  assert.equal(again?.outcome, 'sent', again?.message);
  assert.equal(sender.to(phone.profile.msisdn).length, 3);
  assert.ok(Buffer.from(sender.last(phone.profile.msisdn).body).equals(Buffer.from(pushes[0]!.body)), 'the same document after the reset');
  await assert.rejects(service.decide(phone.profile.msisdn, 'reset'), /cannot be reset/);
  // The group's PIN was used: a user typing it accepts.
  const right = handset(5, '24680');
  assert.equal((await right.receive(sender.last(phone.profile.msisdn))).kind, 'installed');
  assert.equal((await store.omadmBootstrap.get(phone.profile.msisdn))?.state, 'accepted');
});

test('delivery reports: failed, then delivered on a resend; reports of unknown pushes and notifications leave bootstraps alone', async () => {
  const phone = handset(6, '12345');
  await service.bootstrap([{ msisdn: phone.profile.msisdn, imei: phone.profile.imei }]);
  const first = sender.last(phone.profile.msisdn);
  await sender.report(service, first.id, 'failed', clock);
  assert.equal((await store.omadmBootstrap.get(phone.profile.msisdn))?.state, 'failed');
  assert.equal((await store.omadmBootstrap.push(first.id))?.status, 'failed');
  await sender.report(service, 'push-unknown', 'delivered', clock);
  const resent = (await service.bootstrap([{ msisdn: phone.profile.msisdn }]))[0];
  assert.equal(resent?.outcome, 'sent', resent?.message);
  const second = sender.last(phone.profile.msisdn);
  assert.notEqual(second.id, first.id);
  await sender.report(service, second.id, 'delivered', clock);
  const row = await store.omadmBootstrap.get(phone.profile.msisdn);
  assert.equal(row?.state, 'delivered');
  assert.equal(row?.sends, 2);
  // The gateway being down is an error for the caller, and nothing is recorded as sent.
  sender.failing = new Error('gateway down');
  const other = handset(7, '12345');
  await assert.rejects(service.bootstrap([{ msisdn: other.profile.msisdn, imei: other.profile.imei }]), /gateway down/);
  sender.failing = undefined;
  assert.equal((await store.omadmBootstrap.get(other.profile.msisdn))?.state, 'new');
  assert.equal((await service.bootstrap([{ msisdn: other.profile.msisdn }]))[0]?.outcome, 'sent');
  assert.equal((await other.receive(sender.last(other.profile.msisdn))).kind, 'installed');
});

test('bad input is refused per device with a clear message, the others go on', async () => {
  const out = await service.bootstrap([
    { msisdn: '004790000100', imei: '350000000000100' },
    { msisdn: '+4790000101' },
    { msisdn: '+4790000102', imei: '35000000000102', imsi: '24201123456789', group: 'netw' },
  ]);
  assert.equal(out[0]?.outcome, 'refused');
  assert.match(out[0]?.message ?? '', /phone number/);
  assert.equal(out[1]?.outcome, 'refused');
  assert.match(out[1]?.message ?? '', /DevId is not known/);
  assert.equal(out[2]?.outcome, 'sent');
});

test('per-model quirks and per-group security are data: a model whose client hashes the nonce text gets such digests; a NETWPIN group needs the IMSI, not the user', async () => {
  await store.omadmBootstrap.putSettings('model:Quirky 1', { data: { notification: { digest: 'nonce-as-base64-text', version: 11 }, provisioning: { separatePort: true } } }, clock);
  const quirky = new SimulatedHandset({ msisdn: '+4790000201', imei: '350000000000201', userPin: '12345', ca: caPem, notificationDigest: 'nonce-as-base64-text' });
  const [sent] = await service.bootstrap([{ msisdn: quirky.profile.msisdn, imei: quirky.profile.imei, model: 'Quirky 1' }]);
  assert.equal(sent?.outcome, 'sent');
  const installed = await quirky.receive(sender.last(quirky.profile.msisdn));
  assert.equal(installed.kind, 'installed');
  assert.equal(quirky.installed[0]?.port !== undefined, true, 'the port apart (APPADDR/PORT)');
  await service.startDm({ msisdns: [quirky.profile.msisdn] });
  const push = sender.last(quirky.profile.msisdn);
  assert.equal((push.body[16]! << 2) | (push.body[17]! >> 6), 11, 'the version field the model wants');
  const event = await quirky.receive(push);
  assert.equal(event.kind, 'session', JSON.stringify(event));
  // A standard client would ignore that digest.
  const standard = new SimulatedHandset({ ...quirky.profile, notificationDigest: 'standard' });
  assert.equal((await standard.receive(sender.to(quirky.profile.msisdn)[0]!)).kind, 'installed');
  assert.deepEqual(await standard.receive(push), { kind: 'ignored', reason: 'the digest is wrong' });

  await store.omadmBootstrap.putSettings('group:netw-only', { data: { security: 'NETWPIN' } }, clock);
  const noImsi = await service.bootstrap([{ msisdn: '+4790000202', imei: '350000000000202', group: 'netw-only' }]);
  assert.equal(noImsi[0]?.outcome, 'refused');
  assert.match(noImsi[0]?.message ?? '', /IMSI/);
  const sim = new SimulatedHandset({ msisdn: '+4790000203', imei: '350000000000203', imsi: '242019876543210', userPin: null, ca: caPem });
  await service.bootstrap([{ msisdn: sim.profile.msisdn, imei: sim.profile.imei, imsi: '242019876543210', group: 'netw-only' }]);
  const netw = sender.last(sim.profile.msisdn);
  assert.equal(netw.parameters?.SEC, 'NETWPIN');
  const otherSim = new SimulatedHandset({ ...sim.profile, imsi: '242019876543211' });
  assert.equal((await otherSim.receive(netw)).kind, 'refused', 'another SIM does not verify');
  assert.equal((await sim.receive(netw)).kind, 'installed');
  assert.equal((await store.omadmBootstrap.get(sim.profile.msisdn))?.state, 'accepted');
});
