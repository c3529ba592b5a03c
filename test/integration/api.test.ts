/** The HTTP API over real sockets: Fastify on loopback, the LwM2M server, a SQLite store, a device driver. */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { CoapServer } from '../../src/coap/server.js';
import { UdpTransport } from '../../src/coap/udp.js';
import { createApi } from '../../src/api/server.js';
import { Lwm2mServer } from '../../src/lwm2m/server/server.js';
import { openSqliteStore } from '../../src/store/index.js';
import type { SqliteStore } from '../../src/store/index.js';
import { DeviceDriver } from '../support/lwm2m-device-driver.js';

const TOKEN = 'test-token-0123456789';
let dir: string;
let store: SqliteStore;
let coap: CoapServer;
let lwm2m: Lwm2mServer;
let api: ReturnType<typeof createApi>;
let base: string;
let coapUri: string;
const devices: DeviceDriver[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-api-'));
  store = openSqliteStore({ dataDir: dir });
  coap = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }) });
  lwm2m = new Lwm2mServer({ store, coap: { coap }, allowUnsecured: true, requestTimeout: 5000 });
  api = createApi({ lwm2m, store, token: TOKEN, version: 'test' });
  await api.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  coapUri = `coap://127.0.0.1:${coap.endpoint.transport.address().port}`;
  for (const [i, [make, model]] of [['Acme', 'Rocket-1'], ['Globex', 'G-2'], ['Acme', 'Rocket-2']].entries()) {
    const device = await DeviceDriver.start(make, model);
    devices.push(device);
    const learned = once(lwm2m, 'factsLearned');
    await device.register(coapUri, `ep=api-dev-${i}&lt=300&lwm2m=1.1`);
    await learned;
  }
});

after(async () => {
  for (const d of devices) await d.close();
  await api.close();
  await lwm2m.close();
  await coap.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const call = (path: string, init: RequestInit & { json?: unknown } = {}) =>
  fetch(base + path, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}), ...(init.headers as Record<string, string>) },
    ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
  });

test('GET /api/v1/devices lists registered devices with their models and registration state', async () => {
  const response = await call('/api/v1/devices');
  assert.equal(response.status, 200);
  const body = (await response.json()) as { devices: { endpoint: string; registration: { state: string; lwm2mVersion: string }; facts: { manufacturer: string; modelNumber: string } }[]; next: string | null };
  assert.deepEqual(body.devices.map((d) => [d.endpoint, d.facts.manufacturer, d.facts.modelNumber, d.registration.state]), [
    ['api-dev-0', 'Acme', 'Rocket-1', 'registered'],
    ['api-dev-1', 'Globex', 'G-2', 'registered'],
    ['api-dev-2', 'Acme', 'Rocket-2', 'registered'],
  ]);
  assert.equal(body.next, null);
  const paged = (await (await call('/api/v1/devices?limit=2')).json()) as { devices: unknown[]; next: string | null };
  assert.equal(paged.devices.length, 2);
  assert.ok(paged.next);
});

test('the API refuses requests without the right bearer token (401) and never echoes the token', async () => {
  const none = await fetch(base + '/api/v1/devices');
  assert.equal(none.status, 401);
  assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="depot"');
  const wrong = await fetch(base + '/api/v1/devices', { headers: { authorization: 'Bearer nope' } });
  assert.equal(wrong.status, 401);
  assert.ok(!(await wrong.text()).includes(TOKEN));
});

test('GET /api/v1/devices/:endpoint gives one device, 404 for an unknown one', async () => {
  const one = (await (await call('/api/v1/devices/api-dev-1')).json()) as { facts: { osVersion: string } };
  assert.equal(one.facts.osVersion, 'os-7.0');
  assert.equal((await call('/api/v1/devices/ghost')).status, 404);
});

test('POST read returns the decoded value; execute reaches the device; bad paths are 400', async () => {
  const read = (await (await call('/api/v1/devices/api-dev-1/read', { method: 'POST', json: { path: '/3/0/0' } })).json()) as { status: string; response: { code: string; node: unknown } };
  assert.equal(read.status, 'done');
  assert.equal(read.response.code, '2.05');
  assert.deepEqual(read.response.node, { kind: 'resource', id: 0, value: { type: 'string', value: 'Globex' } });
  const exec = (await (await call('/api/v1/devices/api-dev-2/execute', { method: 'POST', json: { path: '/3/0/4' } })).json()) as { response: { code: string } };
  assert.equal(exec.response.code, '2.04');
  assert.deepEqual(devices[2]!.executed, ['reboot']);
  const bad = await call('/api/v1/devices/api-dev-1/read', { method: 'POST', json: { path: '3/zero' } });
  assert.equal(bad.status, 400);
  const unknown = await call('/api/v1/devices/ghost/read', { method: 'POST', json: { path: '/3/0' } });
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as { error: string }).error, 'NOT_REGISTERED');
});

test('bootstrap decisions: accepting an endpoint never seen is 404', async () => {
  const response = await call('/api/v1/bootstrap/never-seen/accept', { method: 'POST' });
  assert.equal(response.status, 404);
  const list = (await (await call('/api/v1/bootstrap?state=pending')).json()) as { endpoints: unknown[] };
  assert.deepEqual(list.endpoints, []);
});

test('GET /api/openapi.json describes every v1 route with bearer security', async () => {
  const doc = (await (await fetch(base + '/api/openapi.json')).json()) as { openapi: string; paths: Record<string, Record<string, { security: unknown }>> };
  assert.equal(doc.openapi, '3.0.3');
  for (const path of ['/api/v1/devices', '/api/v1/devices/{endpoint}', '/api/v1/devices/{endpoint}/read', '/api/v1/devices/{endpoint}/write', '/api/v1/devices/{endpoint}/execute', '/api/v1/bootstrap']) {
    assert.ok(doc.paths[path], path);
  }
  assert.deepEqual(doc.paths['/api/v1/devices']!.get!.security, [{ bearer: [] }, { session: [] }]);
});

test('GET /api/v1/devices/:endpoint/observe streams the value and each change as server-sent events, and cancels on disconnect', async () => {
  const device = devices[0]!;
  const abort = new AbortController();
  const response = await call('/api/v1/devices/api-dev-0/observe?path=/3/0/9', { signal: abort.signal });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'text/event-stream');
  const reader = response.body!.getReader();
  const values: number[] = [];
  let buffer = '';
  const next = async (): Promise<void> => {
    while (!buffer.includes('\n\n')) {
      const { value, done } = (await reader.read()) as { value: Uint8Array; done: boolean };
      if (done) throw new Error('stream ended');
      buffer += Buffer.from(value).toString('utf8');
    }
    const [event, rest] = [buffer.slice(0, buffer.indexOf('\n\n')), buffer.slice(buffer.indexOf('\n\n') + 2)];
    buffer = rest;
    const data = JSON.parse(event.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) as { node: { value: { value: number } } };
    values.push(data.node.value.value);
  };
  await next();
  assert.equal(device.coap.observerCount('/3/0/9'), 1);
  device.setBattery(80);
  await next();
  device.setBattery(60);
  await next();
  assert.deepEqual(values, [100, 80, 60]);
  abort.abort();
  const deadline = Date.now() + 5000;
  while (device.coap.observerCount('/3/0/9') > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(device.coap.observerCount('/3/0/9'), 0, 'the observation was cancelled when the client went away');
});

test('observe through the API answers JSON errors before streaming (404 unknown device)', async () => {
  const response = await call('/api/v1/devices/ghost/observe?path=/3/0/9');
  assert.equal(response.status, 404);
});

test('bootstrap credentials through the API: added per device and per batch, listed without keys, conflicts refused, removed', async () => {
  const keyHex = '00112233445566778899aabbccddeeff';
  const added = await call('/api/v1/bootstrap-credentials', { method: 'POST', json: { kind: 'psk', identity: 'factory-batch-7', keyHex } });
  assert.equal(added.status, 201);
  const perDevice = await call('/api/v1/bootstrap-credentials', { method: 'POST', json: { kind: 'psk', identity: 'factory-dev-1', keyHex, endpoint: 'dev-1' } });
  assert.equal(perDevice.status, 201);
  const listText = await (await call('/api/v1/bootstrap-credentials')).text();
  // The key is a secret: never in an answer, in any spelling.
  assert.ok(!listText.toLowerCase().includes(keyHex));
  const list = JSON.parse(listText) as { credentials: { identity: string; scope: string; endpoint: string | null; hasKey: boolean }[] };
  assert.deepEqual(
    list.credentials.map((c) => [c.identity, c.scope, c.endpoint, c.hasKey]),
    [['factory-batch-7', 'batch', null, true], ['factory-dev-1', 'device', 'dev-1', true]],
  );
  assert.equal((await call('/api/v1/bootstrap-credentials', { method: 'POST', json: { kind: 'psk', identity: 'factory-batch-7', keyHex } })).status, 409);
  assert.equal((await call('/api/v1/bootstrap-credentials', { method: 'POST', json: { kind: 'psk', identity: 'no-key' } })).status, 400);
  assert.equal((await call('/api/v1/bootstrap-credentials', { method: 'POST', json: { kind: 'psk', identity: 'nul\u0000', keyHex } })).status, 400);
  assert.equal((await call('/api/v1/bootstrap-credentials/psk/factory-batch-7/remove', { method: 'POST' })).status, 200);
  assert.equal((await call('/api/v1/bootstrap-credentials/psk/factory-batch-7/remove', { method: 'POST' })).status, 404);
  assert.equal(await store.bootstrapCredentials.find('psk', 'factory-batch-7'), null);
});

test('GET /api/v1/bootstrap says whether the bootstrap server is in insecure lab mode; rotate-key without a bootstrap server is 501', async () => {
  const listing = (await (await call('/api/v1/bootstrap')).json()) as { insecureBootstrap: boolean };
  assert.equal(listing.insecureBootstrap, false);
  assert.equal((await call('/api/v1/bootstrap/dev-1/rotate-key', { method: 'POST' })).status, 501);
});

test('a JSON body with an unknown property is refused with 400 naming it, not silently trimmed', async () => {
  const response = await call('/api/v1/devices/api-dev-0/read', { method: 'POST', json: { path: '/3/0/0', acept: 60 } });
  assert.equal(response.status, 400);
  const body = (await response.json()) as { error: string; message: string };
  assert.equal(body.error, 'BAD_REQUEST');
  assert.match(body.message, /additional properties/i);
});

test('a body of a content type the route does not take is 415 UNSUPPORTED_MEDIA_TYPE with what it takes', async () => {
  const response = await call('/api/v1/devices/api-dev-0/read', { method: 'POST', body: 'path=/3/0/0', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(response.status, 415);
  const body = (await response.json()) as { error: string; message: string };
  assert.equal(body.error, 'UNSUPPORTED_MEDIA_TYPE');
  assert.match(body.message, /application\/json/);
});
