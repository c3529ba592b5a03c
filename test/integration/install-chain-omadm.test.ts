/**
 * The install chain across protocols (issue 16) on `depot serve`'s default chain: Object 9 →
 * SCOMO → (SMS link when SMS is on) → Mark for Installation, with simulated OMA DM phones of two
 * compliance profiles over the real HTTPS DM endpoint and real SQLite. A phone with SCOMO is
 * installed by SCOMO (Object 9 skipped: not an LwM2M device); a phone without SCOMO falls through
 * with SCOMO's own result to Mark for Installation, and its model's learned table says so.
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
import type { DmPhone } from '../../src/sim/omadm/phone.js';
import { apiCall, type ChainJson } from '../support/api-client.js';
import { makePackage } from '../unit/lwm2m/object9-support.js';

let dir: string;
let server: RunningDepotServer;
let caPem: string;
let dmUrl: string;
let api: string;
let sha: string;

const call = (path: string, init: Parameters<typeof apiCall>[3] = {}) => apiCall(api, 'token', path, init);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-chain-omadm-'));
  const ca = await CertificateAuthority.init(join(dir, 'data', 'ca'));
  caPem = ca.exportRoot('pem');
  server = await startDepotServer({ host: '127.0.0.1', publicHost: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: join(dir, 'data'), allowUnsecured: true, apiToken: 'token', omadm: { port: 0 }, chain: { tickMs: 100 } });
  dmUrl = server.listening['oma dm']!;
  const address = server.api.server.address();
  api = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const pkg = makePackage({ name: 'maps', version: '3.1.0', files: [{ path: 'bin/maps', data: randomBytes(20_000), mode: 0o755 }] });
  const added = await call('/api/v1/packages', { bytes: pkg });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  sha = added.body['sha256'] as string;
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

let counter = 0;
async function phoneOf(profile: ComplianceProfileName): Promise<SimPhone & { phone: DmPhone }> {
  const deviceId = `IMEI:3520000000${String(++counter).padStart(5, '0')}`;
  assert.equal((await call('/api/v1/omadm/accounts', { json: { deviceId, clientPassword: `secret-${deviceId}` } })).status, 201);
  const sim = makeSimPhone(profile, { deviceId, password: `secret-${deviceId}`, index: counter, caPem });
  assert.ok(sim.phone);
  return sim as SimPhone & { phone: DmPhone };
}

const chainJob = async (id: string): Promise<ChainJson> => (await call(`/api/v1/install-chains/${id}`)).body as unknown as ChainJson;

/** DM sessions (each a contact of the chain) until the chain job's attempt of `method` has ended. */
async function sessionsUntil(sim: SimPhone & { phone: DmPhone }, id: string, done: (job: ChainJson) => boolean): Promise<ChainJson> {
  for (let i = 0; i < 8; i++) {
    assert.equal((await sim.phone.runSession(dmUrl)).ended, 'completed');
    await sim.scomo?.idle();
    for (let wait = 0; wait < 20; wait++) {
      const job = await chainJob(id);
      if (done(job)) return job;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return chainJob(id);
}

test('chain on an OMA DM phone with SCOMO: Object 9 skipped (not an LwM2M device), SCOMO installs it; the device is one inventory record', async () => {
  const sim = await phoneOf('full');
  // The first session puts its DevInfo/DevDetail in the store: the device is known.
  assert.equal((await sim.phone.runSession(dmUrl)).ended, 'completed');
  const endpoint = `omadm:${sim.deviceId}`;
  const created = await call(`/api/v1/devices/${encodeURIComponent(endpoint)}/install-chains`, { json: { package: sha } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = (created.body as unknown as ChainJson).id;
  assert.deepEqual((created.body as unknown as ChainJson).methods, ['object9', 'scomo', 'mark']);
  const job = await sessionsUntil(sim, id, (j) => j.state !== 'running');
  assert.equal(job.state, 'succeeded', JSON.stringify(job));
  assert.deepEqual(job.attempts.map((a) => [a.method, a.outcome]), [['object9', 'skipped'], ['scomo', 'succeeded']]);
  assert.equal(job.attempts[0]!.message, 'the device is not registered over LwM2M');
  assert.equal(sim.scomo!.installs, 1);
  const inventory = await call('/api/v1/inventory/devices?protocol=omadm&limit=1000');
  const records = (inventory.body.devices as { identities: { omadmDevId: string | null } }[]).filter((d) => d.identities.omadmDevId === sim.deviceId);
  assert.equal(records.length, 1);
});

test('chain on an OMA DM phone without SCOMO: SCOMO fails with its own result, the job falls through to Mark for Installation; the model learns SCOMO failed', async () => {
  const sim = await phoneOf('no-scomo');
  assert.equal((await sim.phone.runSession(dmUrl)).ended, 'completed');
  const endpoint = `omadm:${sim.deviceId}`;
  const created = await call(`/api/v1/devices/${encodeURIComponent(endpoint)}/install-chains`, { json: { package: sha } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = (created.body as unknown as ChainJson).id;
  const job = await sessionsUntil(sim, id, (j) => j.attempts.some((a) => a.method === 'mark'));
  assert.deepEqual(job.attempts.map((a) => [a.method, a.outcome]), [['object9', 'skipped'], ['scomo', 'failed'], ['mark', 'running']], JSON.stringify(job));
  assert.match(job.attempts[1]!.message ?? '', /SCOMO/i);
  assert.equal(job.state, 'running', 'marked: it installs at the next contact where a method can');
  const make = sim.phone.get('./DevInfo/Man')!;
  const model = sim.phone.get('./DevInfo/Mod')!;
  const learned = await call(`/api/v1/install-methods/${encodeURIComponent(make)}/${encodeURIComponent(model)}`);
  assert.equal(learned.status, 200, JSON.stringify(learned.body));
  const stats = learned.body.stats as { method: string; successes: number; failures: number }[];
  assert.deepEqual(stats.filter((s) => s.method === 'scomo').map((s) => [s.successes, s.failures]), [[0, 1]], JSON.stringify(learned.body));
  assert.equal((await call(`/api/v1/install-chains/${id}/cancel`, { method: 'POST' })).status, 200);
});
