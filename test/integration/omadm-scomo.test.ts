/**
 * SCOMO installs end to end (OMA-TS-DM-SCOMO-V1_0 over OMA DM 1.2): `startDepotServer` with the
 * DM endpoint on HTTPS (Depot's CA) and real SQLite, a signed package added through the API,
 * SCOMO jobs created through POST /api/v1/omadm/devices/:deviceId/installs, and simulated
 * phones of each compliance profile that download the package from the one-time HTTPS PkgURL
 * and report with a Generic Alert.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDepotServer } from '../../src/app/server.js';
import type { RunningDepotServer } from '../../src/app/server.js';
import { CertificateAuthority } from '../../src/pki/ca.js';
import { makeSimPhone } from '../../src/sim/omadm/profiles.js';
import type { ComplianceProfileName, SimPhone } from '../../src/sim/omadm/profiles.js';
import { DmPhone, httpTransport, phoneTree } from '../../src/sim/omadm/phone.js';
import { ScomoClient } from '../../src/sim/omadm/scomo-client.js';
import { apiCall } from '../support/api-client.js';
import { ScomoMethod } from '../../src/fleet/methods/scomo.js';
import type { JsonState } from '../../src/fleet/domain.js';
import { makePackage } from '../unit/lwm2m/object9-support.js';

let dir: string;
let server: RunningDepotServer;
let caPem: string;
let dmUrl: string;
let api: string;
let sha: string;
let size: number;

interface ScomoJobJson {
  id: string;
  state: string;
  operation: string;
  root: string | null;
  result: { code: number | null; name: string | null; advice: string | null } | null;
  component: { id: string; state: string | null } | null;
  message: string | null;
  retry: string | null;
  sends: number;
  downloadBytes: number | null;
}

const call = (path: string, init: Parameters<typeof apiCall>[3] = {}) => apiCall(api, 'token', path, init);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-omadm-scomo-'));
  const ca = await CertificateAuthority.init(join(dir, 'data', 'ca'));
  caPem = ca.exportRoot('pem');
  server = await startDepotServer({ host: '127.0.0.1', publicHost: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: join(dir, 'data'), allowUnsecured: true, apiToken: 'token', omadm: { port: 0 } });
  dmUrl = server.listening['oma dm']!;
  const address = server.api.server.address();
  api = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const pkg = makePackage({ name: 'maps', version: '3.1.0', files: [{ path: 'bin/maps', data: randomBytes(40_000), mode: 0o755 }] });
  const added = await call('/api/v1/packages', { bytes: pkg });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  sha = added.body['sha256'] as string;
  size = pkg.length;
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

let counter = 0;
async function phoneOf(profile: ComplianceProfileName, extra: { userConfirms?: () => boolean; seed?: number } = {}): Promise<SimPhone & { phone: DmPhone }> {
  const deviceId = `IMEI:3510000000${String(++counter).padStart(5, '0')}`;
  assert.equal((await call('/api/v1/omadm/accounts', { json: { deviceId, clientPassword: `secret-${deviceId}` } })).status, 201);
  const sim = makeSimPhone(profile, { deviceId, password: `secret-${deviceId}`, index: counter, caPem, ...extra });
  assert.ok(sim.phone);
  return sim as SimPhone & { phone: DmPhone };
}

async function install(deviceId: string, body: object = {}): Promise<ScomoJobJson> {
  const res = await call(`/api/v1/omadm/devices/${encodeURIComponent(deviceId)}/installs`, { json: { packageSha256: sha, ...body } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body as unknown as ScomoJobJson;
}

const job = async (id: string): Promise<ScomoJobJson> => (await call(`/api/v1/omadm/installs/${id}`)).body as unknown as ScomoJobJson;

/** Sessions until the job ends (each after the phone's pending downloads and installs are done). */
async function runUntilDone(sim: SimPhone & { phone: DmPhone }, id: string, sessions = 4): Promise<ScomoJobJson> {
  for (let i = 0; i < sessions; i++) {
    const report = await sim.phone.runSession(dmUrl);
    assert.equal(report.ended, 'completed');
    await sim.scomo?.idle();
    const j = await job(id);
    if (['succeeded', 'failed', 'cancelled'].includes(j.state)) return j;
  }
  return job(id);
}

test('SCOMO §5 DownloadInstall through the API reaches Deployed on a compliant phone: PkgURL over HTTPS, Generic Alert 1226 by Correlator, Deployed/<id>/State read back; installed once', async () => {
  for (const profile of ['full', 'xml-only', 'wbxml-only', 'md5-only'] as const) {
    const sim = await phoneOf(profile);
    const created = await install(sim.deviceId);
    assert.equal(created.state, 'queued');
    assert.equal(JSON.stringify(created).includes('/pkg/'), false, 'the download link is not shown to the operator');
    // Session 1: ./SCOMO found, the Sequence (Add the Download node, Exec DownloadInstall) answered 202.
    const first = await sim.phone.runSession(dmUrl);
    assert.equal(first.ended, 'completed');
    const seq = first.commands.find((c) => c.kind === 'Sequence');
    assert.ok(seq && seq.kind === 'Sequence', `${profile}: the install goes out as a Sequence`);
    const exec = seq.commands.find((c) => c.kind === 'Exec');
    assert.ok(exec && exec.kind === 'Exec' && exec.correlator !== undefined);
    assert.match(exec.items[0]!.target!.locUri, /^\.\/SCOMO\/Download\/depot-[0-9a-f]{8}\/Operations\/DownloadInstall$/);
    const pkgUrl = sim.phone.get(`${exec.items[0]!.target!.locUri.replace(/\/Operations\/DownloadInstall$/, '')}/PkgURL`);
    assert.match(pkgUrl ?? '', /^https:\/\/127\.0\.0\.1:\d+\/pkg\/[A-Za-z0-9_-]{22}$/);
    assert.equal((await job(created.id)).state, 'executing');
    await sim.scomo!.idle();
    assert.equal(sim.phone.pendingAlerts, 1);
    // Session 2: the Generic Alert, then Depot reads the Deployed inventory.
    const done = await runUntilDone(sim, created.id);
    assert.equal(done.state, 'succeeded', `${profile}: ${JSON.stringify(done)}`);
    assert.deepEqual(done.result, { code: 1200, name: 'SUCCESSFUL', advice: 'The device completed the operation.' });
    assert.equal(done.component?.state, 'Active');
    assert.equal(sim.phone.get(`./SCOMO/Inventory/Deployed/${done.component.id}/State`), 'Active');
    assert.equal(done.downloadBytes, size);
    assert.equal(done.sends, 1);
    assert.equal(sim.scomo!.installs, 1);
    assert.equal(sim.phone.pendingAlerts, 0, 'the alert was acknowledged');
    // The link worked once: it is gone with the job.
    const gone = await fetchStatus(pkgUrl!);
    assert.equal(gone, 404);
    // Nothing runs again.
    const again = await sim.phone.runSession(dmUrl);
    assert.equal(again.commands.filter((c) => c.kind === 'Sequence' || c.kind === 'Exec').length, 0);
    assert.equal(sim.scomo!.installs, 1);
  }
});

function fetchStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    import('node:https').then(({ get }) => {
      get(url, { ca: caPem }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    }, reject);
  });
}

test('a phone without SCOMO: the job fails with a clear message and no-retry advice, after one session', async () => {
  const sim = await phoneOf('no-scomo');
  const created = await install(sim.deviceId);
  const done = await runUntilDone(sim, created.id, 1);
  assert.equal(done.state, 'failed');
  assert.equal(done.result?.name, 'NO_SCOMO');
  assert.match(done.message ?? '', /no SCOMO management object .*use another install method/);
  assert.equal(done.retry, 'no-retry');
});

test('the SCOMO root found with Get ?list=Struct (DM 1.2 Protocol "Get" with list=Struct) when it is not at ./SCOMO', async () => {
  const deviceId = 'IMEI:351999999900001';
  assert.equal((await call('/api/v1/omadm/accounts', { json: { deviceId, clientPassword: 'vendor-root-pw' } })).status, 201);
  const phone = new DmPhone({ deviceId, username: deviceId, password: 'vendor-root-pw', encoding: 'wbxml', auth: 'hmac', tree: phoneTree(deviceId, 7) }, httpTransport(caPem));
  const scomo = new ScomoClient(phone, { root: './Vendor/Acme/SCOMO', ca: caPem });
  const created = await install(deviceId);
  let done: ScomoJobJson | undefined;
  for (let i = 0; i < 3; i++) {
    assert.equal((await phone.runSession(dmUrl)).ended, 'completed');
    await scomo.idle();
    done = await job(created.id);
    if (done.state === 'succeeded' || done.state === 'failed') break;
  }
  assert.equal(done?.state, 'succeeded', JSON.stringify(done));
  assert.equal(done?.root, './Vendor/Acme/SCOMO');
  assert.equal(scomo.installs, 1);
});

test('SCOMO with user confirmation: without asking, the phone declines (1401 USER_CANCELLED with advice); with askUser (Alert 1101 in the Sequence) it installs; a user who says no stops the Sequence', async () => {
  const unasked = await phoneOf('confirm');
  const j1 = await runUntilDone(unasked, (await install(unasked.deviceId)).id);
  assert.equal(j1.state, 'failed');
  assert.deepEqual([j1.result?.code, j1.result?.name, j1.retry], [1401, 'USER_CANCELLED', 'retry']);
  assert.match(j1.result?.advice ?? '', /user declined/);
  assert.equal(unasked.scomo!.installs, 0);

  const asked = await phoneOf('confirm');
  const j2 = await runUntilDone(asked, (await install(asked.deviceId, { askUser: 'Install Maps 3.1 now?' })).id);
  assert.equal(j2.state, 'succeeded', JSON.stringify(j2));
  assert.equal(asked.scomo!.installs, 1);

  const refusing = await phoneOf('confirm', { userConfirms: () => false });
  const created = await install(refusing.deviceId, { askUser: 'Install Maps 3.1 now?' });
  const report = await refusing.phone.runSession(dmUrl);
  const j3 = await job(created.id);
  assert.equal(j3.state, 'failed');
  assert.equal(j3.result?.name, 'USER_CANCELLED');
  assert.match(j3.message ?? '', /Alert 1101 answered 304/);
  // RepPro <Sequence>: after the refused Alert nothing else in the Sequence ran.
  assert.ok(report.commands.some((c) => c.kind === 'Sequence'));
  assert.equal(refusing.phone.pendingAlerts, 0);
  assert.equal(refusing.scomo!.installs, 0);
});

test('a flaky phone\'s failed install is reported with its SCOMO result (1405 INSTALL_FAILED) and retry advice', async () => {
  // Seed 7's first draw is under 1/3 (mulberry32), so the first install fails.
  const sim = await phoneOf('flaky', { seed: 7 });
  const done = await runUntilDone(sim, (await install(sim.deviceId)).id);
  assert.equal(done.state, 'failed', JSON.stringify(done));
  assert.deepEqual([done.result?.code, done.result?.name, done.retry], [1405, 'INSTALL_FAILED', 'retry']);
  assert.match(done.message ?? '', /installation failed on the device/);
});

test('a phone that refuses Depot\'s certificate opens no session until the root is pushed, then installs', async () => {
  const sim = await phoneOf('untrusting');
  const created = await install(sim.deviceId);
  await assert.rejects(sim.phone.runSession(dmUrl), /certificate/);
  assert.equal((await job(created.id)).state, 'queued');
  sim.trust.push(caPem);
  const done = await runUntilDone(sim, created.id);
  assert.equal(done.state, 'succeeded', JSON.stringify(done));
});

test('operations on deployed components (Deactivate, Activate, Remove) and cancel: queued jobs cancel, sent ones answer 409', async () => {
  const sim = await phoneOf('full');
  const installed = await runUntilDone(sim, (await install(sim.deviceId)).id);
  assert.equal(installed.state, 'succeeded');
  const component = installed.component!.id;
  const deactivate = await install(sim.deviceId, { operation: 'Deactivate', component, packageSha256: undefined });
  assert.equal((await runUntilDone(sim, deactivate.id)).state, 'succeeded');
  assert.equal(sim.phone.get(`./SCOMO/Inventory/Deployed/${component}/State`), 'Inactive');
  const removal = await install(sim.deviceId, { operation: 'Remove', component, packageSha256: undefined });
  const cancelled = await call(`/api/v1/omadm/installs/${removal.id}/cancel`, { method: 'POST' });
  assert.equal(cancelled.status, 200);
  assert.equal(cancelled.body['state'], 'cancelled');
  const removal2 = await install(sim.deviceId, { operation: 'Remove', component, packageSha256: undefined });
  await sim.phone.runSession(dmUrl);
  assert.equal((await call(`/api/v1/omadm/installs/${removal2.id}/cancel`, { method: 'POST' })).status, 409);
  assert.equal((await runUntilDone(sim, removal2.id)).state, 'succeeded');
  assert.equal(sim.phone.has(`./SCOMO/Inventory/Deployed/${component}`), false);
  // Bad requests say what is wrong.
  const noPackage = await call(`/api/v1/omadm/devices/${encodeURIComponent(sim.deviceId)}/installs`, { json: {} });
  assert.equal(noPackage.status, 400);
  assert.match(String(noPackage.body['message']), /needs a package/);
  const stranger = await call('/api/v1/omadm/devices/IMEI%3A000/installs', { json: { packageSha256: sha } });
  assert.equal(stranger.status, 404);
  assert.match(String(stranger.body['message']), /no OMA DM account/);
});

test('the SCOMO install method (InstallMethod): preflight needs a DM account and a session, begin queues a SCOMO job, advance re-reads it on any event until Deployed; a phone without SCOMO fails and is then skipped', async () => {
  const method = new ScomoMethod({ scomo: server.scomo, accounts: server.store.omadmAccounts, deviceFacts: server.store.deviceFacts });
  const target = (endpoint: string) => ({ jobId: 'chain-1', endpoint, packageSha256: sha, activate: true });
  const context = (endpoint: string, state: JsonState) => ({ target: target(endpoint), job: {} as never, attempt: { state } as never });
  assert.equal(await method.preflight(target('IMEI:nobody')), 'the device has no OMA DM account');
  const sim = await phoneOf('full');
  assert.equal(await method.preflight(target(`omadm:${sim.deviceId}`)), 'the device has never opened an OMA DM session');
  await sim.phone.runSession(dmUrl);
  assert.equal(await method.preflight(target(`omadm:${sim.deviceId}`)), undefined);
  const begun = await method.begin(context(`omadm:${sim.deviceId}`, {}));
  assert.equal(begun.status, 'running');
  const state = begun.status === 'running' ? begun.state : null;
  // Restarted between begin and the first step: begin again follows the same job, not a second one.
  const again = await method.begin(context(`omadm:${sim.deviceId}`, {}));
  assert.deepEqual(again.status === 'running' ? again.state : null, state);
  for (const event of [{ kind: 'timer' }, { kind: 'resumed' }] as const) assert.equal((await method.advance(context(sim.deviceId, state), event)).status, 'running');
  await sim.phone.runSession(dmUrl);
  await sim.scomo!.idle();
  await sim.phone.runSession(dmUrl);
  const done = await method.advance(context(sim.deviceId, state), { kind: 'timer' });
  assert.equal(done.status, 'succeeded', JSON.stringify(done));
  assert.match(done.message, /deployed on the device/);

  const bare = await phoneOf('no-scomo');
  await bare.phone.runSession(dmUrl);
  const b = await method.begin(context(bare.deviceId, {}));
  await bare.phone.runSession(dmUrl);
  const failed = await method.advance(context(bare.deviceId, b.status === 'running' ? b.state : null), { kind: 'timer' });
  assert.equal(failed.status, 'failed');
  assert.equal(failed.status === 'failed' ? failed.result : '', 'NO_SCOMO');
  assert.match(await method.preflight(target(bare.deviceId)) ?? '', /no SCOMO management object/);
});

test('the SCOMO install method on a phone that needs its user\'s confirmation: refused unasked (1401), it sends the install again with the question (Alert 1101) and succeeds; a user who says no fails the attempt with USER_CANCELLED', async () => {
  const method = new ScomoMethod({ scomo: server.scomo, accounts: server.store.omadmAccounts, deviceFacts: server.store.deviceFacts });
  const context = (deviceId: string, state: JsonState) => ({ target: { jobId: 'chain-confirm', endpoint: `omadm:${deviceId}`, packageSha256: sha, activate: true }, job: {} as never, attempt: { state } as never });
  /** DM sessions (with the phone's work between them) until the method's step is no longer the same running one. */
  const drive = async (sim: SimPhone & { phone: DmPhone }, state: JsonState) => {
    for (let i = 0; i < 6; i++) {
      await sim.phone.runSession(dmUrl);
      await sim.scomo!.idle();
      const step = await method.advance(context(sim.deviceId, state), { kind: 'contact', protocol: 'omadm' });
      if (step.status !== 'running' || JSON.stringify(step.state) !== JSON.stringify(state)) return step;
    }
    return method.advance(context(sim.deviceId, state), { kind: 'timer' });
  };
  const yes = await phoneOf('confirm');
  await yes.phone.runSession(dmUrl);
  const begun = await method.begin(context(yes.deviceId, {}));
  assert.equal(begun.status, 'running');
  const asking = await drive(yes, begun.status === 'running' ? begun.state : null);
  assert.equal(asking.status, 'running', JSON.stringify(asking));
  assert.match(asking.message, /refused unasked, 1401: asking the user first/);
  const askingState = asking.status === 'running' ? asking.state : null;
  assert.notDeepEqual(askingState, begun.status === 'running' ? begun.state : null, 'a second SCOMO job, with the question');
  // A restart that replays the refused job's step follows the asking job, not a third one.
  const replay = await method.advance(context(yes.deviceId, begun.status === 'running' ? begun.state : null), { kind: 'resumed' });
  assert.deepEqual(replay.status === 'running' ? replay.state : null, askingState);
  const done = await drive(yes, askingState);
  assert.equal(done.status, 'succeeded', JSON.stringify(done));
  assert.equal(yes.scomo!.installs, 1);
  const jobs = await server.scomo.list(yes.deviceId);
  assert.deepEqual(jobs.map((j) => [j.askUser !== null, j.state]).sort(), [[false, 'failed'], [true, 'succeeded']]);

  const no = await phoneOf('confirm', { userConfirms: () => false });
  await no.phone.runSession(dmUrl);
  const b = await method.begin(context(no.deviceId, {}));
  const asked = await drive(no, b.status === 'running' ? b.state : null);
  const refused = asked.status === 'running' ? await drive(no, asked.state) : asked;
  assert.equal(refused.status, 'failed', JSON.stringify(refused));
  assert.equal(refused.status === 'failed' ? refused.result : '', 'USER_CANCELLED');
  assert.equal(no.scomo!.installs, 0);
});
