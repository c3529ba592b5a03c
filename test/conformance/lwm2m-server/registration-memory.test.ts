/**
 * What Depot's LwM2M server keeps in memory to answer Updates without reading the registration
 * row (issue 18), against a device driver over real UDP sockets and a real SQLite store.
 * TS Core 1.1 §6.2.1 (Register), §6.2.2 (Update: 4.04 for an unknown location, the device then
 * registers again), and Depot's durability rule (docs/store.md): an acknowledged registration
 * is durable soft state — it survives a restart of the server.
 */
import { after, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentFormat } from '../../../src/coap/codes.js';
import type { ClientResponse } from '../../../src/coap/client.js';
import { CoapServer } from '../../../src/coap/server.js';
import { UdpTransport } from '../../../src/coap/udp.js';
import { Lwm2mServer } from '../../../src/lwm2m/server/server.js';
import { openSqliteStore } from '../../../src/store/index.js';
import type { SqliteStore } from '../../../src/store/index.js';
import { DeviceDriver } from '../../support/lwm2m-device-driver.js';

interface Fixture {
  store: SqliteStore;
  coap: CoapServer;
  lwm2m: Lwm2mServer;
  uri: string;
}

async function startServer(dir: string, port = 0): Promise<Fixture> {
  const store = openSqliteStore({ dataDir: dir });
  const coap = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port }) });
  // Facts are not what these tests are about: no /3/0 read after each Register.
  const lwm2m = new Lwm2mServer({ store, coap: { coap }, allowUnsecured: true, learnDeviceFacts: false, requestTimeout: 5000 });
  return { store, coap, lwm2m, uri: `coap://127.0.0.1:${coap.endpoint.transport.address().port}` };
}

async function stopServer(f: Fixture): Promise<void> {
  await f.lwm2m.close();
  await f.coap.close();
  f.store.close();
}

const dirs: string[] = [];
const drivers: DeviceDriver[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'depot-lwm2m-memory-'));
  dirs.push(dir);
  return dir;
}
async function driver(): Promise<DeviceDriver> {
  const d = await DeviceDriver.start();
  drivers.push(d);
  return d;
}
after(async () => {
  for (const d of drivers) await d.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const locationOf = (response: ClientResponse): string =>
  response.options
    .filter((o) => o.number === 8)
    .map((o) => Buffer.from(o.value).toString())
    .join('/');

/** A new device registers `endpoint` (2.01); the server knows its owner without a read. */
async function registerOne(f: Fixture, endpoint: string): Promise<{ device: DeviceDriver; location: string; id: string }> {
  const device = await driver();
  const created = await device.register(f.uri, `ep=${endpoint}&lt=60&lwm2m=1.1`);
  assert.equal(created.codeText, '2.01');
  const location = locationOf(created);
  const id = location.split('/')[1]!;
  assert.ok(f.lwm2m.knowsOwnerOf(id), 'the registration it made is known without a read');
  return { device, location, id };
}

const update = (device: DeviceDriver, uri: string, location: string, query = 'lt=120'): Promise<ClientResponse> =>
  device.client.post(`${uri}/${location}?${query}`, '', { timeout: 5000 });

test('TS Core §6.2.2: an Update is checked against the owner kept in memory; another address is refused (4.03), the owner is answered 2.04 and the row updated', async () => {
  const f = await startServer(tempDir());
  try {
    const { device, location, id } = await registerOne(f, 'mem-owner');
    // Another source address (all of 127/8 is loopback on Linux): a plain registration is
    // updated only from the address that made it (Depot's rule, server.ts ownerRefusal).
    const intruder = await DeviceDriver.start('Acme', 'Rocket-1', await UdpTransport.bind({ host: '127.0.0.2', port: 0 }));
    drivers.push(intruder);
    const foreign = await update(intruder, f.uri, location);
    assert.equal(foreign.codeText, '4.03');
    assert.match(foreign.text(), /another address/);
    const own = await update(device, f.uri, location, 'lt=300');
    assert.equal(own.codeText, '2.04');
    assert.equal((await f.store.registrations.getById(id))?.lifetimeSec, 300, 'the Update is in the store when 2.04 is sent');
  } finally {
    await stopServer(f);
  }
});

test('TS Core §6.2.2: a registration removed from the store behind the server (CLI, API) answers 4.04 to its next Update and is forgotten from memory', async () => {
  const f = await startServer(tempDir());
  try {
    const { device, location, id } = await registerOne(f, 'mem-removed');
    assert.ok(await f.store.registrations.delete(id));
    const response = await update(device, f.uri, location);
    assert.equal(response.codeText, '4.04');
    assert.equal(f.lwm2m.knowsOwnerOf(id), false);
    // The device registers again (TS Core §6.2.2) and is served.
    assert.equal((await device.register(f.uri, 'ep=mem-removed&lt=60&lwm2m=1.1')).codeText, '2.01');
  } finally {
    await stopServer(f);
  }
});

test('TS Core §6.2.1: a re-registration under the same endpoint name forgets the old location; an Update to it gets 4.04', async () => {
  const f = await startServer(tempDir());
  try {
    const device = await driver();
    const first = locationOf(await device.register(f.uri, 'ep=mem-again&lt=60&lwm2m=1.1'));
    const second = locationOf(await device.register(f.uri, 'ep=mem-again&lt=60&lwm2m=1.1'));
    assert.notEqual(first, second);
    assert.equal(f.lwm2m.knowsOwnerOf(first.split('/')[1]!), false);
    assert.equal((await update(device, f.uri, first)).codeText, '4.04');
    assert.equal((await update(device, f.uri, second)).codeText, '2.04');
  } finally {
    await stopServer(f);
  }
});

test('durable soft state: the server stops in the middle of a burst of Registers; every one answered 2.01 is in the store after the restart, and its Update is accepted (owner read from the store)', async () => {
  const dir = tempDir();
  const f = await startServer(dir);
  const port = f.coap.endpoint.transport.address().port;
  // One device (one socket) per Register: a CoAP client sends one request at a time per
  // server (RFC 7252 §4.7, NSTART = 1), and these must be in flight together.
  const count = 120;
  const devices = await Promise.all(Array.from({ length: count }, () => driver()));
  let answered = 0;
  let stopping: Promise<void> | undefined;
  const attempts = devices.map((device, i) =>
    device.client.post(`${f.uri}/rd?ep=burst-${i}&lt=600&lwm2m=1.1&b=U`, '</1/0>,</3/0>', { contentFormat: ContentFormat.LinkFormat, timeout: 3000 }).then((response) => {
      // Stop while the others are still in flight (queued in the socket or in the group commit).
      if (++answered === 30) stopping = stopServer(f);
      return response;
    }),
  );
  const outcomes = await Promise.allSettled(attempts);
  await stopping;
  const acknowledged = new Map<string, { location: string; device: DeviceDriver }>();
  outcomes.forEach((o, i) => {
    if (o.status === 'fulfilled' && o.value.codeText === '2.01') acknowledged.set(`burst-${i}`, { location: locationOf(o.value), device: devices[i]! });
  });
  assert.ok(acknowledged.size >= 30, `at least the first 30 were answered (${acknowledged.size})`);
  const again = await startServer(dir, port);
  try {
    for (const [endpoint, { location }] of acknowledged) {
      const stored = await again.store.registrations.getByEndpoint(endpoint);
      assert.equal(stored?.id, location.split('/')[1], `${endpoint} answered 2.01 before the stop is in the store`);
    }
    // A new server process knows nothing in memory: it reads the owner, then keeps it.
    const [, { location, device }] = [...acknowledged][0]!;
    const id = location.split('/')[1]!;
    assert.equal(again.lwm2m.knowsOwnerOf(id), false);
    assert.equal((await update(device, again.uri, location)).codeText, '2.04');
    assert.ok(again.lwm2m.knowsOwnerOf(id));
  } finally {
    await stopServer(again);
  }
});
