/**
 * Depot's LwM2M server against a test driver that plays the device over real UDP
 * sockets and a real SQLite store. Each test names the LwM2M TS clause it checks.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Code, ContentFormat } from '../../../src/coap/codes.js';
import { decodeRecords, decodeSenmlEntries, encodeRecords, Value } from '../../../src/lwm2m/index.js';
import { CoapClient } from '../../../src/coap/client.js';
import { CoapServer } from '../../../src/coap/server.js';
import { UdpTransport } from '../../../src/coap/udp.js';
import { Lwm2mServer } from '../../../src/lwm2m/server/server.js';
import type { Lwm2mServerOptions } from '../../../src/lwm2m/server/server.js';
import { openSqliteStore } from '../../../src/store/index.js';
import type { SqliteStore } from '../../../src/store/index.js';
import { DeviceDriver } from '../../support/lwm2m-device-driver.js';

/** A wall clock the tests move by hand (registration lifetimes are wall-clock times). */
class WallClock {
  t = Date.UTC(2026, 10, 24, 12, 0, 0);
  now = (): number => this.t;
}

interface Fixture {
  dir: string;
  store: SqliteStore;
  coap: CoapServer;
  lwm2m: Lwm2mServer;
  wall: WallClock;
  uri: string;
}

async function startServer(dir: string, wall: WallClock, extra: Partial<Lwm2mServerOptions> = {}): Promise<Fixture> {
  const store = openSqliteStore({ dataDir: dir });
  const coap = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }) });
  const lwm2m = new Lwm2mServer({ store, coap: { coap }, allowUnsecured: true, now: wall.now, expirySweepInterval: 20, requestTimeout: 5000, ...extra });
  return { dir, store, coap, lwm2m, wall, uri: `coap://127.0.0.1:${coap.endpoint.transport.address().port}` };
}

async function stopServer(f: Fixture): Promise<void> {
  await f.lwm2m.close();
  await f.coap.close();
  f.store.close();
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'depot-lwm2m-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

let f: Fixture;
before(async () => {
  f = await startServer(tempDir(), new WallClock());
});
after(async () => {
  await stopServer(f);
});

test('TS Core §6.2.1 Register: 2.01 with Location-Path rd/<id>, persisted with its parameters', async () => {
  const device = await DeviceDriver.start();
  try {
    const learned = once(f.lwm2m, 'factsLearned');
    const response = await device.register(f.uri, 'ep=dev-register&lt=120&lwm2m=1.1&b=U');
    assert.equal(response.codeText, '2.01');
    const location = response.options.filter((o) => o.number === 8).map((o) => Buffer.from(o.value).toString());
    assert.equal(location.length, 2);
    assert.equal(location[0], 'rd');
    assert.match(location[1]!, /^[A-Za-z0-9_-]{12}$/, 'a time prefix and 48 random bits in base64url');
    const registration = await f.store.registrations.getByEndpoint('dev-register');
    assert.ok(registration);
    assert.equal(registration.id, location[1]);
    assert.equal(registration.lifetimeSec, 120);
    assert.equal(registration.lwm2mVersion, '1.1');
    assert.equal(registration.binding, 'U');
    assert.equal(registration.queueMode, false);
    assert.equal(registration.objectLinks, '</1/0>,</3/0>');
    assert.equal(registration.address.port, device.port());
    assert.equal(registration.expiresAt, f.wall.t + 120_000);
    await learned;
    const facts = await f.store.deviceFacts.get('dev-register');
    assert.equal(facts?.manufacturer, 'Acme');
    assert.equal(facts?.modelNumber, 'Rocket-1');
    assert.equal(facts?.firmwareVersion, 'fw-2.1');
    assert.equal(facts?.osVersion, 'os-7.0');
  } finally {
    await device.close();
  }
});

test('TS Core §6.2.1 Register: missing ep, a bad lifetime, an unknown version or bad links give 4.00 with a diagnostic', async () => {
  const device = await DeviceDriver.start();
  try {
    const cases: [string, string, RegExp][] = [
      ['lt=60', '</3/0>', /endpoint client name/],
      ['ep=x&lt=soon', '</3/0>', /lifetime/],
      ['ep=x&lwm2m=9.9', '</3/0>', /version/],
      ['ep=x', '<not-an-object>', /object link/],
      ['ep=x&b=Z', '</3/0>', /binding/],
    ];
    for (const [query, links, message] of cases) {
      const response = await device.register(f.uri, query, links);
      assert.equal(response.codeText, '4.00', query);
      assert.match(response.text(), message, query);
    }
    assert.equal(await f.store.registrations.getByEndpoint('x'), null);
  } finally {
    await device.close();
  }
});

test('TS Core §6.2.1: lwm2m absent means 1.0, and a binding ending in Q means queue mode (1.0)', async () => {
  const device = await DeviceDriver.start();
  try {
    assert.equal((await device.register(f.uri, 'ep=dev-10&b=UQ')).codeText, '2.01');
    const registration = await f.store.registrations.getByEndpoint('dev-10');
    assert.equal(registration?.lwm2mVersion, '1.0');
    assert.equal(registration?.queueMode, true);
    assert.equal(registration?.lifetimeSec, 86_400, 'default lifetime');
  } finally {
    await device.close();
  }
});

test('TS Core §6.2.2 Update: 2.04, new lifetime and object links kept; an unknown registration gets 4.04', async () => {
  const device = await DeviceDriver.start();
  try {
    const created = await device.register(f.uri, 'ep=dev-update&lt=60&lwm2m=1.1');
    const id = Buffer.from(created.options.filter((o) => o.number === 8)[1]!.value).toString();
    f.wall.t += 30_000;
    const updated = await device.client.post(`${f.uri}/rd/${id}?lt=90`, '</1/0>,</3/0>,</9/0>', { contentFormat: ContentFormat.LinkFormat });
    assert.equal(updated.codeText, '2.04');
    const registration = await f.store.registrations.getById(id);
    assert.equal(registration?.lifetimeSec, 90);
    assert.equal(registration?.objectLinks, '</1/0>,</3/0>,</9/0>');
    assert.equal(registration?.expiresAt, f.wall.t + 90_000);
    assert.equal((await device.client.post(`${f.uri}/rd/no-such-id`, '')).codeText, '4.04');
  } finally {
    await device.close();
  }
});

test('TS Core §6.2.3 De-register: 2.02, the registration is gone, and a later Update gets 4.04', async () => {
  const device = await DeviceDriver.start();
  try {
    const created = await device.register(f.uri, 'ep=dev-bye&lt=60');
    const id = Buffer.from(created.options.filter((o) => o.number === 8)[1]!.value).toString();
    const gone = once(f.lwm2m, 'deregistered');
    assert.equal((await device.client.delete(`${f.uri}/rd/${id}`)).codeText, '2.02');
    await gone;
    assert.equal(await f.store.registrations.getByEndpoint('dev-bye'), null);
    assert.equal((await device.client.post(`${f.uri}/rd/${id}`, '')).codeText, '4.04');
  } finally {
    await device.close();
  }
});

test('TS Core §6.2.1: registering again replaces the endpoint\'s previous registration', async () => {
  const device = await DeviceDriver.start();
  try {
    const first = await device.register(f.uri, 'ep=dev-again&lt=60');
    const firstId = Buffer.from(first.options.filter((o) => o.number === 8)[1]!.value).toString();
    const second = await device.register(f.uri, 'ep=dev-again&lt=60');
    const secondId = Buffer.from(second.options.filter((o) => o.number === 8)[1]!.value).toString();
    assert.notEqual(firstId, secondId);
    assert.equal((await device.client.post(`${f.uri}/rd/${firstId}`, '')).codeText, '4.04');
    assert.equal((await device.client.post(`${f.uri}/rd/${secondId}`, '')).codeText, '2.04');
  } finally {
    await device.close();
  }
});

test('TS Core §6.2.2: a registration whose lifetime passes without an Update is removed', async () => {
  const device = await DeviceDriver.start();
  try {
    await device.register(f.uri, 'ep=dev-expire&lt=5');
    const expired = once(f.lwm2m, 'expired');
    f.wall.t += 5_000;
    const [registration] = (await expired) as [{ endpoint: string }];
    assert.equal(registration.endpoint, 'dev-expire');
    assert.equal(await f.store.registrations.getByEndpoint('dev-expire'), null);
  } finally {
    await device.close();
  }
});

test('TS Core §6.3.1/§6.3.5/§6.3.2: Read decodes the device\'s answer, Execute reaches it, missing paths give 4.04', async () => {
  const device = await DeviceDriver.start('Globex', 'G-2');
  try {
    await device.register(f.uri, 'ep=dev-dm&lt=60&lwm2m=1.1');
    const read = await f.lwm2m.read('dev-dm', '/3/0/0');
    assert.equal(read.status, 'done');
    if (read.status !== 'done') return;
    assert.equal(read.response.code, '2.05');
    assert.equal(read.response.contentFormat, ContentFormat.SenmlCbor);
    assert.deepEqual(read.response.node, { kind: 'resource', id: 0, value: { type: 'string', value: 'Globex' } });
    const exec = await f.lwm2m.execute('dev-dm', '/3/0/4');
    assert.equal(exec.status === 'done' && exec.response.code, '2.04');
    assert.deepEqual(device.executed, ['reboot']);
    const missing = await f.lwm2m.read('dev-dm', '/5/0');
    assert.equal(missing.status === 'done' && missing.response.code, '4.04');
    await assert.rejects(f.lwm2m.read('nobody', '/3/0'), /not registered/);
    await assert.rejects(f.lwm2m.read('dev-dm', '/3/x'), /not an LwM2M path/);
  } finally {
    await device.close();
  }
});

test('TS Core §6.5 queue mode: a request for a sleeping device is queued durably and delivered at its next Update', async () => {
  const g = await startServer(tempDir(), new WallClock(), { queueModeAwakeTime: 150, learnDeviceFacts: false });
  const device = await DeviceDriver.start('Initech', 'Q-1');
  try {
    const created = await device.register(g.uri, 'ep=dev-queue&lt=60&lwm2m=1.1&Q');
    const id = Buffer.from(created.options.filter((o) => o.number === 8)[1]!.value).toString();
    await new Promise((r) => setTimeout(r, 200)); // the device went back to sleep
    const outcome = await g.lwm2m.read('dev-queue', '/3/0/0');
    assert.equal(outcome.status, 'queued');
    if (outcome.status !== 'queued') return;
    assert.equal((await g.store.operations.get(outcome.operation.id))?.status, 'queued');
    const finished = once(g.lwm2m, 'operationFinished');
    assert.equal((await device.client.post(`${g.uri}/rd/${id}`, '')).codeText, '2.04');
    const [operation] = (await finished) as [{ id: number; status: string; resultCode: string }];
    assert.equal(operation.id, outcome.operation.id);
    assert.equal(operation.status, 'succeeded');
    assert.equal(operation.resultCode, '2.05');
  } finally {
    await device.close();
    await stopServer(g);
  }
});

test('registrations and queued operations survive a server restart', async () => {
  const dir = tempDir();
  const wall = new WallClock();
  let g = await startServer(dir, wall, { queueModeAwakeTime: 100, learnDeviceFacts: false });
  const device = await DeviceDriver.start();
  try {
    const created = await device.register(g.uri, 'ep=dev-restart&lt=600&lwm2m=1.1&Q');
    const id = Buffer.from(created.options.filter((o) => o.number === 8)[1]!.value).toString();
    await new Promise((r) => setTimeout(r, 150));
    const queued = await g.lwm2m.execute('dev-restart', '/3/0/4');
    assert.equal(queued.status, 'queued');
    await stopServer(g);
    // Awake long after its Update here: the delivery must not depend on how fast a busy machine
    // gets from the Update to the queue (the 100 ms above only had to put the device to sleep).
    g = await startServer(dir, wall, { queueModeAwakeTime: 60_000, learnDeviceFacts: false });
    assert.equal((await g.store.registrations.getById(id))?.endpoint, 'dev-restart');
    const finished = once(g.lwm2m, 'operationFinished');
    // The restarted server listens on a new port: the device's Update reaches it there.
    assert.equal((await device.client.post(`${g.uri}/rd/${id}`, '')).codeText, '2.04');
    await finished;
    assert.deepEqual(device.executed, ['reboot']);
  } finally {
    await device.close();
    await stopServer(g);
  }
});

test('TS Core §6.2.1 security: without DTLS, registration is refused unless the operator allows unsecured devices', async () => {
  const g = await startServer(tempDir(), new WallClock(), { allowUnsecured: false });
  const device = await DeviceDriver.start();
  try {
    const response = await device.register(g.uri, 'ep=dev-unsecured');
    assert.equal(response.codeText, '4.03');
    assert.match(response.text(), /unsecured/);
  } finally {
    await device.close();
    await stopServer(g);
  }
});

test('TS Core §6.3.8/§6.3.9/§6.4.4: Read-Composite (FETCH), Write-Composite (iPATCH) and Send (POST /dp) in SenML CBOR', async () => {
  const device = await DeviceDriver.start('Umbrella', 'U-1');
  const received: { method: string; format: number | undefined; body: Uint8Array }[] = [];
  device.coap.resource('/', {
    fetch: (req) => {
      received.push({ method: 'FETCH', format: req.contentFormat, body: Uint8Array.from(req.payload) });
      return { code: Code.Content, contentFormat: ContentFormat.SenmlCbor, payload: encodeRecords(ContentFormat.SenmlCbor, [{ path: [3, 0, 0], value: Value.string('Umbrella') }, { path: [3, 0, 1], value: Value.string('U-1') }]) };
    },
    ipatch: (req) => (received.push({ method: 'IPATCH', format: req.contentFormat, body: Uint8Array.from(req.payload) }), { code: Code.Changed }),
  });
  try {
    await device.register(f.uri, 'ep=dev-composite&lt=60&lwm2m=1.1');
    const read = await f.lwm2m.readComposite('dev-composite', ['/3/0/0', '/3/0/1']);
    assert.equal(read.code, '2.05');
    assert.deepEqual(read.records?.map((r) => [r.path.join('/'), r.value]), [['3/0/0', { type: 'string', value: 'Umbrella' }], ['3/0/1', { type: 'string', value: 'U-1' }]]);
    assert.equal(received[0]!.format, ContentFormat.SenmlCbor);
    assert.deepEqual(decodeSenmlEntries('cbor', received[0]!.body).map((e) => e.path.join('/')), ['3/0/0', '3/0/1']);
    const write = await f.lwm2m.writeComposite('dev-composite', [{ path: [1, 0, 1], value: Value.unsignedInteger(120) }]);
    assert.equal(write.code, '2.04');
    assert.deepEqual(decodeRecords(ContentFormat.SenmlCbor, received[1]!.body).map((r) => r.path.join('/')), ['1/0/1']);
    const sent = once(f.lwm2m, 'send');
    const response = await device.client.post(`${f.uri}/dp`, encodeRecords(ContentFormat.SenmlCbor, [{ path: [3, 0, 9], value: Value.integer(87) }]), { contentFormat: ContentFormat.SenmlCbor });
    assert.equal(response.codeText, '2.04');
    const [endpoint, records] = (await sent) as [string, { path: number[]; value: unknown }[]];
    assert.equal(endpoint, 'dev-composite');
    assert.deepEqual(records[0]!.path, [3, 0, 9]);
  } finally {
    await device.close();
  }
});

test('TS Core §6.4.4: Send from a device that is not registered is refused (4.03)', async () => {
  const device = await DeviceDriver.start();
  try {
    const response = await device.client.post(`${f.uri}/dp`, encodeRecords(ContentFormat.SenmlCbor, [{ path: [3, 0, 9], value: Value.integer(1) }]), { contentFormat: ContentFormat.SenmlCbor });
    assert.equal(response.codeText, '4.03');
  } finally {
    await device.close();
  }
});

test('TS Core §6.5: a queued operation whose device does not wake up before its deadline ends as expired', async () => {
  const wall = new WallClock();
  const g = await startServer(tempDir(), wall, { queueModeAwakeTime: 100, learnDeviceFacts: false, queuedOperationLifetime: 60_000 });
  const device = await DeviceDriver.start();
  try {
    await device.register(g.uri, 'ep=dev-sleepy&lt=86400&lwm2m=1.1&Q');
    await new Promise((r) => setTimeout(r, 150));
    const outcome = await g.lwm2m.read('dev-sleepy', '/3/0/0');
    assert.equal(outcome.status, 'queued');
    if (outcome.status !== 'queued') return;
    assert.equal(outcome.operation.expiresAt, wall.t + 60_000);
    const expired = once(g.lwm2m, 'operationsExpired');
    wall.t += 60_000;
    const [operations] = (await expired) as [{ id: number }[]];
    assert.deepEqual(operations.map((o) => o.id), [outcome.operation.id]);
    assert.equal((await g.store.operations.get(outcome.operation.id))?.status, 'expired');
  } finally {
    await device.close();
    await stopServer(g);
  }
});

test('TS Core §6.4.1 Observe-Composite (FETCH + Observe, RFC 8132 §2.4): records for several paths, renewed on change, cancelled', async () => {
  const device = await DeviceDriver.start('Cyberdyne', 'T-1');
  let level = 50;
  const bodies: Uint8Array[] = [];
  device.coap.resource('/', {
    observable: true,
    fetch: (req) => {
      bodies.push(Uint8Array.from(req.payload));
      return { code: Code.Content, contentFormat: ContentFormat.SenmlCbor, payload: encodeRecords(ContentFormat.SenmlCbor, [{ path: [3, 0, 0], value: Value.string('Cyberdyne') }, { path: [3, 0, 9], value: Value.integer(level) }]) };
    },
  });
  try {
    await device.register(f.uri, 'ep=dev-obs-composite&lt=60&lwm2m=1.1');
    const seen: number[] = [];
    const observation = await f.lwm2m.observeComposite('dev-obs-composite', ['/3/0/0', '/3/0/9'], (r) => seen.push(Number(r.records?.find((x) => x.path[2] === 9)?.value.value)));
    assert.equal(observation.first.code, '2.05');
    assert.deepEqual(observation.first.records?.map((r) => r.path.join('/')), ['3/0/0', '3/0/9']);
    assert.equal(device.coap.observerCount('/'), 1);
    level = 40;
    device.coap.notifyChanged('/');
    const deadline = Date.now() + 5000;
    while (seen.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen, [40]);
    // Every notification re-ran FETCH with the registered body: the same two paths.
    assert.deepEqual(decodeSenmlEntries('cbor', bodies.at(-1)!).map((e) => e.path.join('/')), ['3/0/0', '3/0/9']);
    await observation.cancel();
    assert.equal(device.coap.observerCount('/'), 0);
  } finally {
    await device.close();
  }
});

test('TS Core §6.3.4/§6.5: a Write-Attributes queued for a sleeping device is delivered with its attributes', async () => {
  const g = await startServer(tempDir(), new WallClock(), { queueModeAwakeTime: 100, learnDeviceFacts: false });
  const device = await DeviceDriver.start();
  const seen: string[][] = [];
  device.coap.resource('/3/0/9', { put: (req) => (seen.push(req.query), { code: Code.Changed }) });
  try {
    const created = await device.register(g.uri, 'ep=dev-attrs&lt=600&lwm2m=1.1&Q');
    const id = Buffer.from(created.options.filter((o) => o.number === 8)[1]!.value).toString();
    await new Promise((r) => setTimeout(r, 150));
    const outcome = await g.lwm2m.writeAttributes('dev-attrs', '/3/0/9', { pmin: 10, pmax: 60 });
    assert.equal(outcome.status, 'queued');
    const finished = once(g.lwm2m, 'operationFinished');
    await device.client.post(`${g.uri}/rd/${id}`, '');
    await finished;
    assert.deepEqual(seen, [['pmin=10', 'pmax=60']]);
  } finally {
    await device.close();
    await stopServer(g);
  }
});

test('TS Core §6.2.1 Register, after the 2.01: at most maxConcurrentContacts devices are read (/3/0) at once, the others wait their turn in order', async () => {
  const g = await startServer(tempDir(), new WallClock(), { maxConcurrentContacts: 2 });
  let inFlight = 0;
  let maxInFlight = 0;
  const readOrder: string[] = [];
  let release: () => void = () => undefined;
  let gate = new Promise<void>((r) => (release = r));
  const devices: { coap: CoapServer; client: CoapClient }[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const coap = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }) });
      coap.resource('/3/0', {
        get: async (req) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          readOrder.push(`dev-${i}`);
          await gate;
          inFlight--;
          return { code: Code.Content, contentFormat: req.accept ?? ContentFormat.LwM2mTlv, payload: encodeRecords(ContentFormat.SenmlCbor, [{ path: [3, 0, 0], value: Value.string(`M${i}`) }]) };
        },
      });
      devices.push({ coap, client: new CoapClient({ endpoint: coap.endpoint }) });
    }
    const learned: string[] = [];
    g.lwm2m.on('factsLearned', (endpoint) => learned.push(endpoint));
    for (let i = 0; i < 5; i++) {
      const response = await devices[i]!.client.post(`${g.uri}/rd?ep=dev-${i}&lwm2m=1.1`, '</3/0>', { contentFormat: ContentFormat.LinkFormat });
      assert.equal(response.codeText, '2.01'); // answered while the reads wait
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(inFlight, 2);
    assert.deepEqual(readOrder, ['dev-0', 'dev-1']);
    release();
    for (let n = 0; n < 50 && learned.length < 5; n++) {
      gate = new Promise<void>((r) => (release = r));
      await new Promise((r) => setTimeout(r, 20));
      release();
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual([...learned].sort(), ['dev-0', 'dev-1', 'dev-2', 'dev-3', 'dev-4']);
    assert.deepEqual(readOrder, ['dev-0', 'dev-1', 'dev-2', 'dev-3', 'dev-4']);
    assert.equal(maxInFlight, 2);
    assert.equal((await g.store.deviceFacts.get('dev-4'))?.manufacturer, 'M4');
  } finally {
    release();
    for (const d of devices) await d.coap.close();
    await stopServer(g);
  }
});
