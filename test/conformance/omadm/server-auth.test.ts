/**
 * OMA DM authentication in both directions, end to end over Depot's real HTTPS endpoint with a
 * real SQLite store and simulated phones (src/sim/omadm/phone.ts, their own client logic):
 * OMA-TS-DM_Security-V1_2 §5.3 (syncml:auth-md5 and x-syncml-hmac, the server proves itself to
 * the client with its server ID, server password and the client-issued nonce) and
 * OMA-TS-DM_Protocol-V1_2 §8 (Cred in SyncHdr, Chal in the Status for SyncHdr, in either
 * direction; the client's new server nonce goes out in its Status every session).
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../../src/pki/ca.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { SqliteStore } from '../../../src/store/sqlite.js';
import { OmaDmHttpServer } from '../../../src/omadm/http.js';
import type { ServerJob, SessionEffect } from '../../../src/omadm/session.js';
import { md5Credential } from '../../../src/omadm/auth.js';
import { decodeSyncML } from '../../../src/omadm/syncml.js';
import type { SyncMLMessage } from '../../../src/omadm/syncml.js';
import { DmPhone, httpTransport, phoneTree } from '../../../src/sim/omadm/phone.js';
import type { DmPhoneProfile, DmTransport } from '../../../src/sim/omadm/phone.js';
import { makeSimPhone } from '../../../src/sim/omadm/profiles.js';

const SECURITY = 'OMA-TS-DM_Security-V1_2 §5.3';
const PROTOCOL = 'OMA-TS-DM_Protocol-V1_2 §8';
const SERVER_ID = 'depot-dm-server';

let dir: string;
let store: SqliteStore;
let server: OmaDmHttpServer;
let url: string;
let caPem: string;
const effects: SessionEffect[] = [];
const logs: string[] = [];
/** Jobs per device for its next session (taken once). */
const queued = new Map<string, ServerJob[]>();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-omadm-server-auth-'));
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
    jobsFor: (deviceId) => {
      const jobs = queued.get(deviceId) ?? [];
      queued.delete(deviceId);
      return jobs;
    },
    onEffect: (e) => {
      effects.push(e);
    },
    log: (line) => logs.push(line),
  });
  url = `https://localhost:${await server.listen()}/dm`;
});

after(async () => {
  await server.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Records what the server sent (decoded) and its x-syncml-hmac headers, on a real HTTPS transport. */
function recording(encoding: 'xml' | 'wbxml'): { transport: DmTransport; replies: SyncMLMessage[]; macs: (string | undefined)[] } {
  const inner = httpTransport(caPem);
  const replies: SyncMLMessage[] = [];
  const macs: (string | undefined)[] = [];
  return {
    replies,
    macs,
    transport: {
      async post(u, body, headers) {
        const res = await inner.post(u, body, headers);
        if (res.status === 200) {
          replies.push(decodeSyncML(res.body, encoding));
          macs.push(res.hmac);
        }
        return res;
      },
    },
  };
}

let counter = 0;

/** A registered account (with Depot's server credentials unless `serverPassword` is null) and a phone that checks the server. */
async function setup(options: { auth?: 'md5' | 'hmac'; encoding?: 'xml' | 'wbxml'; serverPassword?: string | null; depotNonce?: Uint8Array; phoneNonce?: Uint8Array } = {}) {
  const index = ++counter;
  const deviceId = `IMEI:35000000000${String(index).padStart(4, '0')}`;
  const password = `client-secret-${index}`;
  const serverPassword = `server-secret-${index}`;
  const nonce = options.phoneNonce ?? randomBytes(16);
  // The phone already holds its client nonce (not its first session): Depot's first message is its package 2.
  const clientNonce = randomBytes(16);
  await store.omadmAccounts.put({ deviceId, clientUsername: deviceId, clientPassword: password }, clientNonce, Date.now());
  if (options.serverPassword !== null) {
    await store.omadmAccounts.setServerCredentials(deviceId, { serverId: SERVER_ID, serverPassword: options.serverPassword ?? serverPassword, serverNonce: options.depotNonce ?? nonce }, Date.now());
  }
  const encoding = options.encoding ?? 'xml';
  const rec = recording(encoding);
  const profile: DmPhoneProfile = {
    deviceId, username: deviceId, password, encoding, auth: options.auth ?? 'md5', tree: phoneTree(deviceId, index),
    server: { serverId: SERVER_ID, password: serverPassword, nonce },
  };
  const phone = new DmPhone(profile, rec.transport);
  phone.nonce = new Uint8Array(clientNonce);
  queued.set(deviceId, [{ id: `color-${index}`, kind: 'Replace', uri: './Vendor/Color', data: 'blue' }]);
  return { deviceId, phone, serverPassword, nonce, ...rec };
}

function effectsFor(deviceId: string, kind: SessionEffect['kind']): SessionEffect[] {
  return effects.filter((e) => e.deviceId === deviceId && e.kind === kind);
}

test(`${SECURITY}, ${PROTOCOL}: Depot's reply carries a syncml:auth-md5 Cred over server ID, server password and the phone's nonce; the phone accepts it (212 + Chal) and runs Depot's commands`, async () => {
  const s = await setup();
  const report = await s.phone.runSession(url);
  assert.equal(report.ended, 'completed');
  assert.equal(report.serverAuthenticated, true);
  assert.equal(s.phone.get('./Vendor/Color'), 'blue', 'the job ran');
  const cred = s.replies[0]!.header.cred;
  assert.ok(cred, 'Cred in SyncHdr of Depot\'s first message');
  assert.equal(cred.meta?.type, 'syncml:auth-md5');
  assert.equal(cred.data, md5Credential(SERVER_ID, s.serverPassword, s.nonce));
  // Cred goes only until the phone accepted it; and never to a phone that has not authenticated (a 401 says nothing of the account).
  assert.equal(s.replies.slice(1).some((r) => r.header.cred !== undefined), false);
  // The phone's 212 carried its next nonce; Depot stored it (durably, for the next session).
  assert.equal(s.phone.serverNonces.length, 1);
  const stored = await store.omadmAccounts.get(s.deviceId);
  assert.deepEqual(Buffer.from(stored!.serverNonce!), Buffer.from(s.phone.serverNonce));
  assert.equal(stored!.serverCredentialsFrom, 'account');
  assert.equal(effectsFor(s.deviceId, 'server-auth-refused').length, 0);
});

test(`${SECURITY}: with a wrong server password the phone challenges once, refuses the retry, ends the session (Alert 1223) and runs nothing; the job goes back unsent`, async () => {
  const s = await setup({ serverPassword: 'not-the-phones-idea' });
  const report = await s.phone.runSession(url);
  assert.equal(report.ended, 'server-refused');
  assert.equal(report.serverAuthenticated, false);
  assert.equal(s.phone.get('./Vendor/Color'), undefined, 'no command executed');
  // Depot resent its message once, over the phone's new nonce (still wrong), then the phone gave up.
  const refusals = effectsFor(s.deviceId, 'server-auth-refused') as Extract<SessionEffect, { kind: 'server-auth-refused' }>[];
  assert.deepEqual(refusals.map((r) => [r.code, r.retry]), [[401, true], [401, false]]);
  assert.equal(s.replies[1]!.header.cred?.data, md5Credential(SERVER_ID, 'not-the-phones-idea', s.phone.serverNonces[0]!));
  assert.deepEqual(effectsFor(s.deviceId, 'job-unsent').map((e) => (e as { jobId: string }).jobId), [`color-${counter}`]);
  assert.equal(effectsFor(s.deviceId, 'job-result').length, 0, 'no unknown outcome: the phone said it ran nothing');
  assert.ok(logs.some((l) => l.includes(s.deviceId) && l.includes("did not accept Depot's server credential (401), resent over its new nonce")));
  const ended = effectsFor(s.deviceId, 'session-ended') as Extract<SessionEffect, { kind: 'session-ended' }>[];
  assert.equal(ended.at(-1)?.reason, 'client-abort');
});

test(`${PROTOCOL}: a stale server nonce is answered with the phone's Chal; Depot stores the new nonce and resends its message with a Cred over it, and the session goes on`, async () => {
  const s = await setup({ depotNonce: Buffer.from('stale-nonce') });
  const report = await s.phone.runSession(url);
  assert.equal(report.ended, 'completed');
  assert.equal(report.serverAuthenticated, true);
  assert.equal(s.phone.get('./Vendor/Color'), 'blue', 'the resent job ran once the server was accepted');
  assert.equal(s.replies[0]!.header.cred?.data, md5Credential(SERVER_ID, s.serverPassword, Buffer.from('stale-nonce')));
  // The retry: Depot's next message, a Cred over the nonce of the phone's Chal, the same commands under a new MsgID.
  const challenged = s.phone.serverNonces[0]!;
  assert.equal(s.replies[1]!.header.cred?.data, md5Credential(SERVER_ID, s.serverPassword, challenged));
  assert.notEqual(s.replies[1]!.header.msgId, s.replies[0]!.header.msgId);
  const kinds = (m: SyncMLMessage) => m.commands.filter((c) => c.kind !== 'Status').map((c) => `${c.kind}:${'cmdId' in c ? c.cmdId : ''}`);
  assert.deepEqual(kinds(s.replies[1]!), kinds(s.replies[0]!));
  const refusals = effectsFor(s.deviceId, 'server-auth-refused') as Extract<SessionEffect, { kind: 'server-auth-refused' }>[];
  assert.deepEqual(refusals.map((r) => [r.code, r.retry]), [[401, true]]);
  // Every job result is known (none lost in the resend).
  const result = effectsFor(s.deviceId, 'job-result') as Extract<SessionEffect, { kind: 'job-result' }>[];
  assert.deepEqual(result.map((r) => [r.jobId, r.code]), [[`color-${counter}`, 200]]);
});

test(`${SECURITY}: the phone's server nonce rotates every session (NextNonce in its 212); each session's Cred is over the nonce of the one before`, async () => {
  const s = await setup();
  const seen: Buffer[] = [Buffer.from(s.nonce)];
  for (let i = 0; i < 3; i++) {
    const before = s.replies.length;
    const report = await s.phone.runSession(url);
    assert.equal(report.ended, 'completed');
    assert.equal(report.serverAuthenticated, true);
    assert.equal(s.replies[before]!.header.cred?.data, md5Credential(SERVER_ID, s.serverPassword, seen.at(-1)!));
    seen.push(Buffer.from(s.phone.serverNonce));
  }
  assert.equal(new Set(seen.map((n) => n.toString('hex'))).size, 4, 'a new nonce each session');
  assert.deepEqual(Buffer.from((await store.omadmAccounts.get(s.deviceId))!.serverNonce!), seen.at(-1));
  assert.equal(effectsFor(s.deviceId, 'server-auth-refused').length, 0);
});

test(`${SECURITY}: a server without credentials for a phone that checks them is refused (407): Depot has nothing to resend, the session ends and nothing runs`, async () => {
  const s = await setup({ serverPassword: null });
  const report = await s.phone.runSession(url);
  assert.notEqual(report.ended, 'completed');
  assert.equal(report.serverAuthenticated, false);
  assert.equal(s.phone.get('./Vendor/Color'), undefined);
  const refusals = effectsFor(s.deviceId, 'server-auth-refused') as Extract<SessionEffect, { kind: 'server-auth-refused' }>[];
  assert.deepEqual(refusals.map((r) => [r.code, r.retry]), [[407, false]]);
  assert.deepEqual(effectsFor(s.deviceId, 'job-unsent').map((e) => (e as { jobId: string }).jobId), [`color-${counter}`]);
});

for (const encoding of ['xml', 'wbxml'] as const) {
  test(`${SECURITY} x-syncml-hmac (${encoding}): Depot's responses carry a MAC with its server credentials; a wrong server password ends the session with nothing run`, async () => {
    const good = await setup({ auth: 'hmac', encoding, depotNonce: Buffer.from('stale') });
    const report = await good.phone.runSession(url);
    assert.equal(report.ended, 'completed');
    assert.equal(report.serverAuthenticated, true);
    assert.equal(good.phone.get('./Vendor/Color'), 'blue');
    assert.ok(good.macs.slice(1).every((m) => m !== undefined && m.includes(`username="${SERVER_ID}"`)), 'a MAC on every response once the phone authenticated');
    assert.equal(good.replies.some((r) => r.header.cred !== undefined), false, 'HMAC sessions carry no Cred');
    const bad = await setup({ auth: 'hmac', encoding, serverPassword: 'wrong-server-password' });
    const refused = await bad.phone.runSession(url);
    assert.equal(refused.ended, 'server-refused');
    assert.equal(bad.phone.get('./Vendor/Color'), undefined);
  });
}

test(`${SECURITY}: the OMA DM bootstrap's server credentials (the CP document's) are the account's when it has none of its own; a new nonce from the phone updates both`, async () => {
  const deviceId = 'IMEI:351111111111111';
  await store.omadmBootstrap.upsert({ msisdn: '+4791111111', deviceId }, Date.now());
  await store.omadmBootstrap.setServerCredentials('+4791111111', { serverId: 'bootstrap-id', password: 'bootstrap-server-password', nonce: Buffer.from('boot-nonce') }, Date.now());
  await store.omadmAccounts.put({ deviceId, clientUsername: deviceId, clientPassword: 'client-password-1' }, randomBytes(16), Date.now());
  const phone = makeSimPhone('full', { deviceId, password: 'client-password-1', index: 1, caPem, server: { serverId: 'bootstrap-id', password: 'bootstrap-server-password', nonce: Buffer.from('boot-nonce') } }).phone!;
  const account = await store.omadmAccounts.get(deviceId);
  assert.equal(account?.serverCredentialsFrom, 'bootstrap');
  assert.equal(account?.serverPassword, 'bootstrap-server-password');
  const report = await phone.runSession(url);
  assert.equal(report.ended, 'completed');
  assert.equal(report.serverAuthenticated, true);
  assert.deepEqual(Buffer.from((await store.omadmAccounts.get(deviceId))!.serverNonce!), Buffer.from(phone.serverNonce));
  assert.deepEqual(Buffer.from((await store.omadmBootstrap.serverCredentials(deviceId))!.nonce), Buffer.from(phone.serverNonce), 'notification digests use the same nonce');
  // Sealed at rest: the server password is not in the file in clear.
  const raw = store.db.prepare('SELECT server_password FROM omadm_accounts WHERE server_password IS NOT NULL').all() as { server_password: Buffer }[];
  assert.ok(raw.length > 0);
  assert.equal(raw.some((r) => r.server_password.includes(Buffer.from('server-secret'))), false);
});

test('phones without server credentials are unchanged: no Chal for the server, no server-nonce effects', async () => {
  const deviceId = 'IMEI:352222222222222';
  await store.omadmAccounts.put({ deviceId, clientUsername: deviceId, clientPassword: 'client-password-2' }, randomBytes(16), Date.now());
  await store.omadmAccounts.setServerCredentials(deviceId, { serverId: SERVER_ID, serverPassword: 'server-password-2' }, Date.now());
  const phone = makeSimPhone('md5-only', { deviceId, password: 'client-password-2', index: 2, caPem }).phone!;
  const report = await phone.runSession(url);
  assert.equal(report.ended, 'completed');
  assert.equal(report.serverAuthenticated, undefined);
  assert.equal(effectsFor(deviceId, 'server-nonce').length, 0);
  assert.equal(effectsFor(deviceId, 'server-auth-refused').length, 0);
});
