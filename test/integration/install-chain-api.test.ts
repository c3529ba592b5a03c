/**
 * The install chain through the operator API of a real Depot (loopback CoAP, HTTP, SQLite):
 * a chain job created over HTTP for a device with Object 9 ends succeeded without anyone
 * ticking the chain (the Object 9 job's end is pushed to it: the chain's timer runs only every
 * 60 s); the device's history lists every attempt; a device Depot knows only by its facts is
 * marked and can be cancelled; the learned table shows the model's counts; a forbid of a method
 * for the model changes the next job's chain; an explicit chain is honoured.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startDepotServer } from '../../src/app/server.js';
import { Lwm2mClient, SoftwareManagementAdapter } from '../../src/lwm2m/client/index.js';
import { SimulatedInstaller, SoftwareManagement } from '../../src/lwm2m/objects/software-management/index.js';
import { makePackage, testKeys } from '../unit/lwm2m/object9-support.js';
import { apiCall } from '../support/api-client.js';
import { coapFetcher } from '../support/coap-fetcher.js';

const TOKEN = 'token-chain-api-0123';


interface JobJson {
  id: string;
  state: string;
  chosenBy: string;
  methods: string[];
  plan: { skip: Record<string, string>; note: string | null };
  message: string;
  attempts: { method: string; outcome: string; message: string; result: string | null; bytes: number | null; startedAt: string; endedAt: string | null }[];
}

void test('install chain API: create, follow (pushed, not polled), history, cancel, learned table, forbid and pin per model, explicit chain', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-chain-api-'));
  const server = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: join(dir, 'server'), allowUnsecured: true, apiToken: TOKEN, publicHost: '127.0.0.1', installs: { pollIntervalMs: 150 } });
  const base = `http://127.0.0.1:${(server.api.server.address() as AddressInfo).port}`;
  const call = (path: string, init: Parameters<typeof apiCall>[3] = {}) => apiCall(base, TOKEN, path, init);
  const port = server.coap.endpoint.transport.address().port;
  const client = new Lwm2mClient({
    endpoint: 'api-o9',
    serverUri: `coap://127.0.0.1:${port}`,
    lifetime: 300,
    objects: [new SoftwareManagementAdapter(new SoftwareManagement({ dataDir: join(dir, 'dev'), trust: testKeys().trust, installer: new SimulatedInstaller(), quotaBytes: 16 << 20, fetcher: coapFetcher, resumeDelaysMs: [] }))],
  });
  try {
    const record = await server.catalog.addBytes(makePackage({ name: 'app', version: '2.0.0' }));
    await client.start();
    await client.waitFor('registered', 10_000);
    // The device's facts (read by the server from its Object 3 at registration) key the learning: Depot depot-client, OS 0.1.0.

    // Refusals: unknown package, unknown device, unknown method.
    assert.equal((await call('/api/v1/devices/api-o9/install-chains', { json: { package: 'f'.repeat(64) } })).status, 404);
    assert.equal((await call('/api/v1/devices/nobody/install-chains', { json: { package: record.sha256 } })).status, 404);
    const badMethod = await call('/api/v1/devices/api-o9/install-chains', { json: { package: record.sha256, methods: ['object9', 'carrier-pigeon'] } });
    assert.equal(badMethod.status, 400);
    assert.match(String(badMethod.body.message), /carrier-pigeon/);

    const created = await call('/api/v1/devices/api-o9/install-chains', { json: { package: record.sha256 } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = (created.body as unknown as JobJson).id;
    assert.equal((created.body as unknown as JobJson).chosenBy, 'default');
    // Nobody ticks the chain here: the Object 9 job's end wakes it.
    let job: JobJson;
    const end = Date.now() + 30_000;
    for (;;) {
      job = (await call(`/api/v1/install-chains/${id}`)).body as unknown as JobJson;
      if (job.state !== 'running' || Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.deepEqual(job.attempts.map((a) => [a.method, a.outcome]), [['object9', 'succeeded']]);
    assert.equal(job.attempts[0]!.bytes, record.size, 'bytes delivered: the whole package');
    assert.ok(job.attempts[0]!.endedAt! >= job.attempts[0]!.startedAt);

    // The learned table has the success for the model and OS version.
    const learned = await call('/api/v1/install-methods/Depot/depot-client');
    assert.equal(learned.status, 200);
    assert.deepEqual((learned.body.stats as { osVersion: string; method: string; successes: number; failures: number }[]).map((s) => [s.osVersion, s.method, s.successes, s.failures]), [['0.1.0', 'object9', 1, 0]]);
    assert.deepEqual(learned.body.methods, ['object9', 'scomo', 'mark']);

    // Forbid Object 9 for the model: the next job skips it with the operator's reason, and is marked.
    assert.equal((await call('/api/v1/install-methods/Depot/depot-client/carrier-pigeon', { method: 'PUT', json: { rule: 'forbid' } })).status, 400);
    const forbid = await call('/api/v1/install-methods/Depot/depot-client/object9', { method: 'PUT', json: { rule: 'forbid' } });
    assert.equal(forbid.status, 200, JSON.stringify(forbid.body));
    assert.equal(forbid.body.rule, 'forbid');
    const second = (await call('/api/v1/devices/api-o9/install-chains', { json: { package: record.sha256 } })).body as unknown as JobJson;
    assert.equal(second.chosenBy, 'learned');
    assert.equal(second.plan.skip.object9, 'forbidden on Depot depot-client (OS 0.1.0) by the operator');
    assert.deepEqual(second.attempts.map((a) => [a.method, a.outcome, a.message]).slice(0, 1), [['object9', 'skipped', 'forbidden on Depot depot-client (OS 0.1.0) by the operator']]);
    assert.deepEqual(second.attempts.slice(1).map((a) => [a.method, a.outcome]), [['scomo', 'skipped'], ['mark', 'running']]);
    const cancelled = await call(`/api/v1/install-chains/${second.id}/cancel`, { method: 'POST' });
    assert.equal(cancelled.status, 200);
    assert.equal((cancelled.body as unknown as JobJson).state, 'cancelled');
    assert.equal((await call(`/api/v1/install-chains/${second.id}/cancel`, { method: 'POST' })).status, 409);

    // An explicit chain is honoured even against the forbid.
    const explicit = (await call('/api/v1/devices/api-o9/install-chains', { json: { package: record.sha256, methods: ['mark'] } })).body as unknown as JobJson;
    assert.equal(explicit.chosenBy, 'operator');
    assert.deepEqual(explicit.methods, ['mark']);
    assert.equal((await call(`/api/v1/install-chains/${explicit.id}/cancel`, { method: 'POST' })).status, 200);

    const rules = await call('/api/v1/install-methods?make=Depot&model=depot-client');
    assert.deepEqual((rules.body.rules as { method: string; rule: string }[]).map((r) => [r.method, r.rule]), [['object9', 'forbid']]);
    assert.equal((await call('/api/v1/install-methods/Depot/depot-client/object9', { method: 'DELETE' })).status, 200);
    assert.equal((await call('/api/v1/install-methods/Depot/depot-client/object9', { method: 'DELETE' })).status, 404);

    // A device known only by its facts (imported, never registered): marked.
    await server.store.deviceFacts.upsert('imported-1', { manufacturer: 'Acme', modelNumber: 'Z9' }, Date.now());
    const marked = (await call('/api/v1/devices/imported-1/install-chains', { json: { package: record.sha256 } })).body as unknown as JobJson;
    assert.deepEqual(marked.attempts.map((a) => [a.method, a.outcome]), [['object9', 'skipped'], ['scomo', 'skipped'], ['mark', 'running']]);
    assert.equal(marked.attempts[0]!.message, 'the device is not registered over LwM2M');

    // The device's history: newest first, every attempt, paged.
    const history = await call('/api/v1/devices/api-o9/install-chains?limit=2');
    const jobs = history.body.jobs as JobJson[];
    assert.deepEqual(jobs.map((j) => j.id), [explicit.id, second.id]);
    const rest = await call(`/api/v1/devices/api-o9/install-chains?after=${encodeURIComponent(String(history.body.next))}`);
    assert.deepEqual((rest.body.jobs as JobJson[]).map((j) => [j.id, j.state]), [[id, 'succeeded']]);
    assert.equal(JSON.stringify(rest.body).includes('object9JobId'), false, 'method protocol state is not shown');

    // The OpenAPI document lists the routes, PUT and DELETE included.
    const openapi = (await (await fetch(`${base}/api/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    assert.deepEqual(Object.keys(openapi.paths['/api/v1/install-methods/{make}/{model}/{method}']!).sort(), ['delete', 'put']);
    assert.ok(openapi.paths['/api/v1/devices/{endpoint}/install-chains']!.post);
  } finally {
    await client.stop({ deregister: false }).catch(() => undefined);
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
