/**
 * A campaign end to end in a real Depot (loopback CoAP, SQLite, HTTP API): simulated LwM2M
 * devices of two models register, the inventory learns them from their registrations and Object
 * 3 facts, the operator states package targets, asks why a device gets its package, and starts a
 * two-wave campaign through the API with "the right package per device"; the real install chain
 * (Object 9 method) installs every device, wave 2 after wave 1, and live progress arrives as
 * server-sent events until the campaign completes.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDepotServer, type RunningDepotServer } from '../../src/app/server.js';
import { Lwm2mClient, SoftwareManagementAdapter } from '../../src/lwm2m/client/index.js';
import { SimulatedInstaller, SoftwareManagement } from '../../src/lwm2m/objects/software-management/index.js';
import { makePackage, testKeys } from '../unit/lwm2m/object9-support.js';
import { apiCall } from '../support/api-client.js';
import { coapFetcher } from '../support/coap-fetcher.js';

const TOKEN = 'token-0123456789';


function device(server: RunningDepotServer, dir: string, endpoint: string, make: string, model: string): Lwm2mClient {
  const port = server.coap.endpoint.transport.address().port;
  const o9 = new SoftwareManagementAdapter(new SoftwareManagement({ dataDir: join(dir, endpoint), trust: testKeys().trust, installer: new SimulatedInstaller(), quotaBytes: 16 << 20, fetcher: coapFetcher, resumeDelaysMs: [] }));
  return new Lwm2mClient({ endpoint, serverUri: `coap://127.0.0.1:${port}`, lifetime: 300, objects: [o9], device: { manufacturer: make, modelNumber: model, serialNumber: endpoint, firmwareVersion: '1.0', softwareVersion: '2.4.1' } });
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

void test('campaign end to end: two waves, the right package per model, real install chain and simulated LwM2M devices, live progress over SSE', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-campaign-e2e-'));
  const server = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: join(dir, 'server'), allowUnsecured: true, apiToken: TOKEN, publicHost: '127.0.0.1', installs: { pollIntervalMs: 150 } });
  const base = `http://127.0.0.1:${(server.api.server.address() as { port: number }).port}`;
  const devices: Lwm2mClient[] = [];
  try {
    const acmePkg = await server.catalog.addBytes(makePackage({ name: 'agent', version: '2.0.0' }));
    const globexPkg = await server.catalog.addBytes(makePackage({ name: 'agent', version: '2.0.1' }));
    const setAcme = await apiCall(base, TOKEN, `/api/v1/packages/${acmePkg.sha256}/targets`, { json: { make: ['acme*'], osVersion: '>=2' } });
    assert.equal(setAcme.status, 201, JSON.stringify(setAcme.body));
    assert.equal((await apiCall(base, TOKEN, `/api/v1/packages/${globexPkg.sha256}/targets`, { json: { make: ['globex'], model: ['G-*'] } })).status, 201);
    assert.equal((await apiCall(base, TOKEN, `/api/v1/packages/${globexPkg.sha256}/targets`, { json: { make: ['x'] } })).status, 409, 'targets are immutable');

    for (let i = 0; i < 6; i++) {
      const d = device(server, dir, `camp-${i}`, i < 4 ? 'Acme Corp' : 'Globex', i < 4 ? 'S-1' : 'G-2');
      devices.push(d);
      await d.start();
      await d.waitFor('registered', 10_000);
    }
    // The inventory learns each device from its registration and Object 3 facts.
    const listed = await eventually('six devices with their make in the inventory', async () => {
      const r = await apiCall(base, TOKEN, '/api/v1/inventory/devices?protocol=lwm2m&limit=2');
      const all: { id: string; make: string | null; model: string | null; identities: { lwm2mEndpoint: string } }[] = [];
      let page = r.body as { devices: typeof all; next: string | null };
      all.push(...page.devices);
      while (page.next) {
        page = (await apiCall(base, TOKEN, `/api/v1/inventory/devices?protocol=lwm2m&limit=2&after=${page.next}`)).body as typeof page;
        all.push(...page.devices);
      }
      return all.length === 6 && all.every((d) => d.make !== null) ? all : undefined;
    });
    const globexDevice = listed.find((d) => d.make === 'Globex')!;
    const explained = (await apiCall(base, TOKEN, `/api/v1/inventory/devices/${globexDevice.id}/selection?name=agent`)).body as { chosen: { sha256: string }; packages: { sha256: string; rules: { rule: string; ok: boolean; detail: string }[] }[] };
    assert.equal(explained.chosen.sha256, globexPkg.sha256);
    assert.match(explained.packages.find((p) => p.sha256 === acmePkg.sha256)!.rules.find((r) => r.rule === 'make')!.detail, /make "Globex" matches none of "acme\*"/);

    const created = await apiCall(base, TOKEN, '/api/v1/campaigns', { json: { name: 'agent 2.0', target: { kind: 'filter', filter: { protocol: 'lwm2m' } }, package: { kind: 'select', name: 'agent' }, waves: [{ percent: 50 }, { percent: 100 }], seed: 11, successThreshold: 1 } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id as string;

    // Live progress: server-sent events until the campaign ends.
    const events: { campaign: { state: string; currentWave: number }; totals: { succeeded: number } }[] = [];
    const stream = fetch(`${base}/api/v1/campaigns/${id}/events`, { headers: { authorization: `Bearer ${TOKEN}` } }).then(async (response) => {
      assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      const text = await response.text();
      for (const block of text.split('\n\n')) {
        const data = /^data: (.*)$/m.exec(block);
        if (data) events.push(JSON.parse(data[1]!) as (typeof events)[number]);
      }
    });

    const maxWaveSeen: number[] = [];
    const done = await eventually(
      'the campaign to complete',
      async () => {
        await server.chain.tick();
        await server.campaigns.tick();
        const p = (await apiCall(base, TOKEN, `/api/v1/campaigns/${id}/progress`)).body as { campaign: { state: string; currentWave: number }; totals: Record<string, number>; waves: { wave: number; state: string; counts: Record<string, number> }[]; models: { model: string; counts: Record<string, number> }[]; methods: { method: string; succeeded: number; failed: number }[] };
        // While wave 1 runs, no device of wave 2 has a job.
        if (p.campaign.currentWave === 1) assert.equal(p.waves[1]!.counts.started ?? 0, 0);
        maxWaveSeen.push(p.campaign.currentWave);
        return p.campaign.state === 'completed' ? p : undefined;
      },
      90_000,
    );
    assert.equal(done.totals.succeeded, 6, JSON.stringify(done));
    assert.deepEqual(done.waves.map((w) => [w.wave, w.state, w.counts.succeeded]), [[1, 'done', 3], [2, 'done', 3]]);
    assert.deepEqual(done.models.map((m) => [m.model, m.counts.succeeded]), [['acme corp/s-1', 4], ['globex/g-2', 2]]);
    assert.deepEqual(done.methods, [{ method: 'object9', succeeded: 6, failed: 0 }]);
    assert.ok(maxWaveSeen.includes(1), 'wave 1 was seen running before wave 2');
    await stream;
    assert.equal(events[events.length - 1]!.campaign.state, 'completed');
    assert.equal(events[events.length - 1]!.totals.succeeded, 6);

    // Each device got the package of its model.
    const members = (await apiCall(base, TOKEN, `/api/v1/campaigns/${id}/members`)).body.members as { endpoint: string; package: string; state: string; method: string }[];
    for (const m of members) assert.equal(m.package, Number(m.endpoint.slice(5)) < 4 ? acmePkg.sha256 : globexPkg.sha256);
    // The inventory now lists the package among each device's software, with the method that put it there.
    const globexNow = (await apiCall(base, TOKEN, `/api/v1/inventory/devices/${globexDevice.id}`)).body as { software: { name: string; version: string | null; source: string }[] };
    assert.deepEqual(globexNow.software, [{ name: globexPkg.name, version: globexPkg.version, source: 'install:object9' }]);
    // A package a finished campaign used can go; retrying a campaign without failures is refused clearly.
    assert.equal((await apiCall(base, TOKEN, `/api/v1/campaigns/${id}/retry-failed`, { json: {} })).status, 409);
    // An action whose body is all optional needs none: no body and no Content-Type is the same as {}.
    const bare = await fetch(`${base}/api/v1/campaigns/${id}/retry-failed`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(bare.status, 409, await bare.text());
  } finally {
    for (const d of devices) await d.stop({ deregister: false }).catch(() => undefined);
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
