/**
 * LwM2M interop with Telefonica's lwm2m-node-lib 1.4.0 (npm; LwM2M 1.0; node-coap 0.22), an
 * implementation nobody here wrote, over real UDP on loopback:
 *   1. its client against Depot's server (startDepotServer): Register, Read, Write, Execute,
 *      Discover, Observe, Update, De-register;
 *   2. Depot's client (Lwm2mClient) against its server: Register, Read, Write, Execute, De-register.
 * Each test cites the TS Core 1.1 clause of the operation (the library speaks LwM2M 1.0, which
 * has the same operations; Depot serves both versions). Where the foreign library
 * deviates from the spec, the comment says so and what the test does about it.
 *
 * Issue 13 (version / content-format negotiation, opaque packages): lwm2m-node-lib is the only
 * independent LwM2M implementation CI installs (npm; Debian has none packaged — wakaama, Leshan
 * and Anjay are not in Debian, and no other LwM2M client or server installs from npm in CI). Its
 * client registers as 1.0 without a ct, so Depot's format choice gives it TLV / text/plain (the
 * version rule, exercised by every Read/Write below); its server accepts any lwm2m= and any ct,
 * so the 4.12 fallback and the single-ct form have no independent peer: they are pinned against
 * the test driver in test/conformance/lwm2m-client/version-negotiation.test.ts, and strict
 * SenML-JSON-only / TLV-only devices in test/conformance/lwm2m-server/content-format.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDepotServer, type RunningDepotServer } from '../../src/app/server.js';
import { Lwm2mClient } from '../../src/lwm2m/client/index.js';
import type { BasicObject } from '../../src/lwm2m/client/basic-object.js';
import { ContentFormat, Node, Value } from '../../src/lwm2m/index.js';
import type { DeviceResponse } from '../../src/lwm2m/server/server.js';
import type { Registration } from '../../src/store/index.js';
import { apiCall } from '../support/api-client.js';
import { pollUntil } from '../support/peer-process.js';
import { freeUdpPort } from '../support/udp-probe.js';
import {
  LWM2M_FORMATS,
  call,
  loadLwm2mNodeLib,
  type ForeignDevice,
  type ForeignDeviceInformation,
  type ForeignObject,
  type ForeignServerConfig,
  type ForeignServerInfo,
} from '../support/lwm2m-node-lib.js';

const lib = loadLwm2mNodeLib();
const TOKEN = 'lwm2m-node-lib-interop-token-0123';

/** Resolves when `cond` holds, fails after `timeoutMs`. */
async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The device response of an operation that must have been done now (the foreign client is never in queue mode). */
function done(outcome: Awaited<ReturnType<RunningDepotServer['lwm2m']['read']>>): DeviceResponse {
  assert.equal(outcome.status, 'done');
  if (outcome.status !== 'done') throw new Error('unreachable');
  return outcome.response;
}

function text(payload: Uint8Array): string {
  return Buffer.from(payload).toString('utf8');
}

describe('lwm2m-node-lib client → Depot server', () => {
  const ENDPOINT = 'lnl-client-1';
  let dir: string;
  let depot: RunningDepotServer;
  let base: string;
  let info: ForeignDeviceInformation;
  /** Listeners the foreign client left bound (it opens a new one on each Update). */
  const staleListeners: ForeignDeviceInformation['serverInfo'][] = [];
  const writes: string[][] = [];
  const executes: string[][] = [];
  const depotErrors: Error[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'depot-lnl-client-'));
    depot = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: join(dir, 'server'), allowUnsecured: true, apiToken: TOKEN, publicHost: '127.0.0.1' });
    depot.lwm2m.on('error', (e) => depotErrors.push(e));
    const address = depot.api.server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    lib.client.init({
      logLevel: 'FATAL',
      client: {
        lifetime: '120',
        version: '1.0',
        logLevel: 'FATAL',
        ipProtocol: 'udp4',
        serverProtocol: 'udp4',
        // Workaround, not a deviation: the library's node-coap 0.22 drops, unanswered, any request
        // whose Accept it cannot name, and Depot asks LwM2M 1.0 devices for TLV (Accept 11542, the
        // format every LwM2M 1.0 client must support, TS 1.0 §6.4.3). Naming the IANA numbers is the
        // library's own `formats` setting; its read handler still ignores Accept (see below).
        formats: LWM2M_FORMATS,
      },
    });
    // The Device object instance the foreign client serves: values are strings in its registry.
    await call((cb) => lib.client.registry.create('/3/0', cb));
    for (const [rid, value] of [
      ['0', 'Telefonica I+D'],
      ['1', 'lnl-model'],
      ['2', 'LNL-0001'],
      ['3', '1.4.0'],
      ['9', '80'],
      ['15', 'Etc/UTC'],
    ] as const) {
      await call((cb) => lib.client.registry.setResource('/3/0', rid, value, cb));
    }
    await call((cb) => lib.client.registry.create('/1/0', cb));
    await call((cb) => lib.client.registry.setResource('/1/0', '1', '120', cb));
  });

  after(async () => {
    await call((cb) => lib.client.cancellAllObservers(cb)).catch(() => undefined);
    for (const s of [...staleListeners, ...(info ? [info.serverInfo] : [])]) await new Promise<void>((r) => s.server.close(() => r()));
    lib.client.registry.reset();
    await depot.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('TS Core 1.1 §6.2.1 Register: the foreign client registers; Depot stores it with its object links and lists it in the API', async () => {
    const registered = new Promise<Registration>((resolve) => depot.lwm2m.once('registered', (r) => resolve(r)));
    info = await call((cb) => lib.client.register('127.0.0.1', depot.coap.endpoint.transport.address().port, null, ENDPOINT, cb));
    const event = await registered;
    // Depot answered 2.01 with Location-Path "rd" "<id>"; the library joins the segments with '/'.
    assert.equal(info.location, `rd/${event.id}`);
    const registration = await depot.store.registrations.getByEndpoint(ENDPOINT);
    assert.ok(registration);
    assert.equal(registration.objectLinks, '</3/0>,</1/0>');
    assert.equal(registration.lifetimeSec, 120);
    assert.equal(registration.lwm2mVersion, '1.0');
    assert.equal(registration.binding, 'U');
    assert.deepEqual(registration.address, { scheme: 'coap', address: '127.0.0.1', port: info.localPort });
    const list = await apiCall(base, TOKEN, `/api/v1/devices?endpointPrefix=${ENDPOINT}`);
    assert.equal(list.status, 200);
    const devices = list.body.devices as { endpoint: string; registration: { objectLinks: string; lwm2mVersion: string; state: string } }[];
    assert.deepEqual(
      devices.map((d) => [d.endpoint, d.registration.objectLinks, d.registration.lwm2mVersion, d.registration.state]),
      [[ENDPOINT, '</3/0>,</1/0>', '1.0', 'registered']],
    );
  });

  test('TS Core 1.1 §6.3.1: the foreign client answers 4.04 to a Read of the Object Instance /3/0, so Depot learns its Object 3 facts resource by resource', async () => {
    // The library binds its listener only after the Register response has come back (it sends
    // from a throw-away socket, then listens on that port), so Depot's first request, this facts
    // read, is lost once and arrives on CoAP retransmission (RFC 7252 §4.2), 2-3 s later.
    // The library only reads single Resources: on /3/0 it looks up a resource named "null" and
    // answers 4.04, though §6.3.1 defines Read on an Object Instance (the library's gap). Depot
    // then asks for the fact resources one at a time.
    const read = done(await depot.lwm2m.read(ENDPOINT, '/3/0'));
    assert.equal(read.code, '4.04');
    const facts = await pollUntil(async () => (await depot.store.deviceFacts.get(ENDPOINT)) ?? undefined, 20_000, 'the facts learned resource by resource', 50);
    assert.deepEqual([facts.manufacturer, facts.modelNumber, facts.serialNumber, facts.firmwareVersion, facts.osVersion], ['Telefonica I+D', 'lnl-model', 'LNL-0001', '1.4.0', '1.4.0']);
    const device = await apiCall(base, TOKEN, `/api/v1/devices/${ENDPOINT}`);
    assert.equal((device.body.facts as { modelNumber: string }).modelNumber, 'lnl-model');
  });

  test('TS Core 1.1 §6.3.1 Read of a Resource: Depot reads /3/0/0, /3/0/9 and gets the foreign values; a missing resource is 4.04', async () => {
    // The library answers in plain text without a Content-Format option (and ignores Accept);
    // Depot reads an unlabelled single-resource body as plain text (TS 1.0 §6.4.1 / TS Core 1.1 §7.4.1).
    const manufacturer = done(await depot.lwm2m.read(ENDPOINT, '/3/0/0'));
    assert.equal(manufacturer.code, '2.05');
    assert.equal(manufacturer.contentFormat, undefined);
    assert.deepEqual(manufacturer.node, Node.resource(0, Value.string('Telefonica I+D')));
    const battery = done(await depot.lwm2m.read(ENDPOINT, '/3/0/9'));
    assert.deepEqual(battery.node, Node.resource(9, Value.integer(80)));
    const missing = done(await depot.lwm2m.read(ENDPOINT, '/3/0/7'));
    assert.equal(missing.code, '4.04');
  });

  test('TS Core 1.1 §6.3.3 Write: Depot writes /3/0/15 in plain text; the foreign client stores and reports the new value', async () => {
    lib.client.setHandler(info.serverInfo, 'write', (objectType, objectId, resourceId, value, callback) => {
      writes.push([objectType, objectId, resourceId, value]);
      callback(null);
    });
    // Plain text (Content-Format 0), which TS 1.0 §6.4.1 / TS Core 1.1 §7.4.1 allow for a single Resource:
    // the library takes every Write body as a UTF-8 string whatever its Content-Format, so
    // Depot's default for a 1.0 device (TLV, TS 1.0 §6.4.3) would be stored as raw TLV bytes.
    const write = done(await depot.lwm2m.write(ENDPOINT, '/3/0/15', Node.resource(15, Value.string('Europe/Madrid')), { contentFormat: ContentFormat.PlainText }));
    assert.equal(write.code, '2.04');
    assert.deepEqual(writes, [['3', '0', '15', 'Europe/Madrid']]);
    const stored = await call<ForeignObject>((cb) => lib.client.registry.get('/3/0', cb));
    assert.equal(stored.attributes['15'], 'Europe/Madrid');
    const back = done(await depot.lwm2m.read(ENDPOINT, '/3/0/15'));
    assert.deepEqual(back.node, Node.resource(15, Value.string('Europe/Madrid')));
  });

  test('TS Core 1.1 §6.3.5 Execute: Depot executes /3/0/4 (Reboot) with arguments; the foreign handler gets them', async () => {
    lib.client.setHandler(info.serverInfo, 'execute', (objectType, objectId, resourceId, args, callback) => {
      executes.push([objectType, objectId, resourceId, args]);
      callback(null);
    });
    const plain = done(await depot.lwm2m.execute(ENDPOINT, '/3/0/4'));
    assert.equal(plain.code, '2.04');
    const withArgs = done(await depot.lwm2m.execute(ENDPOINT, '/3/0/4', "0='now'"));
    assert.equal(withArgs.code, '2.04');
    assert.deepEqual(executes, [
      ['3', '0', '4', ''],
      ['3', '0', '4', "0='now'"],
    ]);
  });

  test('TS Core 1.1 §6.3.2 Discover: Depot discovers /3/0 and /3; the foreign client lists its resources and instances in link format', async () => {
    const instance = done(await depot.lwm2m.discover(ENDPOINT, '/3/0'));
    assert.equal(instance.code, '2.05');
    // The library sends the link-format body without Content-Format 40 (RFC 6690 §7.1 names it);
    // Depot does not need the option for Discover, so this is recorded, not worked around.
    assert.equal(instance.contentFormat, undefined);
    assert.equal(text(instance.payload), '</3/0>,</3/0/0>,</3/0/1>,</3/0/2>,</3/0/3>,</3/0/9>,</3/0/15>');
    const object = done(await depot.lwm2m.discover(ENDPOINT, '/3'));
    assert.equal(text(object.payload), '</3>,</3/0>');
  });

  test('TS Core 1.1 §6.4.1 Observe and Notify: Depot observes /3/0/9; the foreign client notifies each new value', async () => {
    const notifications: DeviceResponse[] = [];
    const observation = await depot.lwm2m.observe(ENDPOINT, '/3/0/9', (n) => notifications.push(n));
    assert.equal(observation.first.code, '2.05');
    assert.deepEqual(observation.first.node, Node.resource(9, Value.integer(80)));
    await call((cb) => lib.client.registry.setResource('/3/0', '9', '75', cb));
    await waitUntil(() => notifications.length >= 1, 5000, 'first notification');
    await call((cb) => lib.client.registry.setResource('/3/0', '9', '70', cb));
    await waitUntil(() => notifications.length >= 2, 5000, 'second notification');
    assert.deepEqual(
      notifications.map((n) => [n.code, n.node]),
      [
        ['2.05', Node.resource(9, Value.integer(75))],
        ['2.05', Node.resource(9, Value.integer(70))],
      ],
    );
    // Cancel Observation (TS Core 1.1 §6.4): Depot sends GET with Observe=1 on the same token (RFC 7641
    // §3.6). The library does not know that form: any Observe option starts a new observation,
    // and as the request is not an Observe=0 one node-coap never sends the written body, so
    // Depot's cancel() waits until MAX_TRANSMIT_WAIT (93 s). The library's fault; the test does
    // not wait for it. Depot has stopped delivering notifications either way.
    const cancelled = observation.cancel();
    cancelled.catch(() => undefined);
    await call((cb) => lib.client.registry.setResource('/3/0', '9', '65', cb));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(notifications.length, 2);
    await call((cb) => lib.client.cancellAllObservers(cb));
  });

  test('TS Core 1.1 §6.2.2 Update: the foreign client updates from a new port; Depot refreshes the registration and its address', async () => {
    const before = await depot.store.registrations.getByEndpoint(ENDPOINT);
    assert.ok(before);
    const updated = new Promise<Registration>((resolve) => depot.lwm2m.once('updated', (r) => resolve(r)));
    await new Promise((r) => setTimeout(r, 5));
    const old = info.serverInfo;
    info = await call((cb) => lib.client.update(info, cb));
    // The library sends each Update from a fresh socket and binds a new listener on its port,
    // leaving the old one open: closed in after(). As after Register, Depot's first request to
    // the new address (the facts read an Update with object links triggers) is retransmitted once.
    staleListeners.push(old);
    const registration = await updated;
    assert.equal(registration.id, before.id);
    assert.equal(registration.lifetimeSec, 120);
    assert.equal(registration.objectLinks, '</3/0>,</1/0>');
    assert.ok(registration.lastUpdateAt > before.lastUpdateAt);
    assert.deepEqual(registration.address, { scheme: 'coap', address: '127.0.0.1', port: info.localPort });
    // Requests now go to the new address and are answered there.
    const read = done(await depot.lwm2m.read(ENDPOINT, '/3/0/1'));
    assert.deepEqual(read.node, Node.resource(1, Value.string('lnl-model')));
  });

  test('TS Core 1.1 §6.2.3 De-register: the foreign client de-registers; Depot removes the registration', async () => {
    const deregistered = new Promise<Registration>((resolve) => depot.lwm2m.once('deregistered', (r) => resolve(r)));
    await call((cb) => lib.client.unregister(info, cb));
    assert.equal((await deregistered).endpoint, ENDPOINT);
    assert.equal(await depot.store.registrations.getByEndpoint(ENDPOINT), null);
    const device = await apiCall(base, TOKEN, `/api/v1/devices/${ENDPOINT}`);
    assert.equal(device.status, 404);
    assert.deepEqual(depotErrors, []);
  });
});

describe('Depot client → lwm2m-node-lib server', () => {
  const ENDPOINT = 'urn:dev:depot-lnl-1';
  let dir: string;
  let config: ForeignServerConfig;
  let serverInfo: ForeignServerInfo;
  let client: Lwm2mClient;
  let device: ForeignDevice;
  const registrations: string[][] = [];
  const deregistrations: string[] = [];
  let reboots = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'depot-lnl-server-'));
    // The library sends its requests to the device through its own port (node-coap's proxy),
    // so it needs a real port number, not 0.
    config = {
      port: await freeUdpPort(),
      logLevel: 'FATAL',
      lifetimeCheckInterval: 1000,
      defaultType: 'Device',
      ipProtocol: 'udp4',
      serverProtocol: 'udp4',
      // Replaces the library's default list (1541 only), so LWM2M_FORMATS names 1541 too.
      formats: LWM2M_FORMATS,
    };
    serverInfo = await call((cb) => lib.server.start(config, cb));
    lib.server.setHandler(serverInfo, 'registration', (endpoint, lifetime, version, binding, payload, callback) => {
      registrations.push([endpoint, lifetime, version, binding, payload]);
      callback(null);
    });
    lib.server.setHandler(serverInfo, 'unregistration', (d, callback) => {
      deregistrations.push(d.name);
      callback(null);
    });
    client = new Lwm2mClient({
      endpoint: ENDPOINT,
      serverUri: `coap://127.0.0.1:${config.port}`,
      lifetime: 300,
      host: '127.0.0.1',
      device: { manufacturer: 'Acme Devices', modelNumber: 'GW-200', serialNumber: 'SN-0001', firmwareVersion: '4.2.1' },
      deviceHooks: { onReboot: () => void reboots++ },
      stateFile: join(dir, 'state.json'),
      retry: { initialMs: 50, maxMs: 200 },
      requestTimeoutMs: 5000,
    });
  });

  after(async () => {
    await client.stop({ deregister: false }).catch(() => undefined);
    // stop() also clears the lifetime check interval, which would keep the process alive.
    lib.server.getRegistry().stopLifetimeCheck();
    await call((cb) => lib.server.stop(serverInfo, cb)).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test('TS Core 1.1 §6.2.1 Register: Depot\'s client registers; the foreign server has the endpoint, its address and object links', async () => {
    const registered = client.waitFor('registered', 10_000);
    await client.start();
    const event = await registered;
    device = await call((cb) => lib.server.getDevice(ENDPOINT, cb));
    assert.equal(device.name, ENDPOINT);
    assert.equal(device.lifetime, '300');
    assert.equal(device.address, '127.0.0.1');
    assert.equal(device.port, client.address()?.port);
    assert.deepEqual(registrations, [[ENDPOINT, '300', '1.1', 'U', client.registrationLinks()]]);
    assert.match(client.registrationLinks(), /<\/3\/0>/);
    // The library puts "rd/<id>" in ONE Location-Path option (RFC 7252 §5.10.7 wants one option
    // per segment). Depot keeps it as the one segment it is, percent-encoding the '/' in its
    // location string; on the wire Update and De-register carry that single Uri-Path "rd/<id>",
    // which node-coap joins back into "/rd/<id>", so it works.
    assert.equal(event.location, `/rd%2F${device.id}`);
  });

  test('TS Core 1.1 §6.3.1 Read: the foreign server reads /3/0/0 and gets the manufacturer Depot\'s client holds', async () => {
    // No Accept option (the library's default): Depot's client answers a single resource in plain text.
    const manufacturer = await call<string>((cb) => lib.server.read(device.id, 3, 0, 0, cb));
    assert.equal(manufacturer, 'Acme Devices');
    const model = await call<string>((cb) => lib.server.read(device.id, 3, 0, 1, cb));
    assert.equal(model, 'GW-200');
    await assert.rejects(
      call((cb) => lib.server.read(device.id, 3, 0, 7, cb)),
      (e: Error & { code?: string }) => e.code === '4.04',
    );
  });

  test('TS Core 1.1 §6.3.3 Write: the foreign server writes /3/0/15 (Timezone); Depot\'s client holds the new value', async () => {
    // The library writes with its default Content-Format 1541 ("lightweightm2m/text", the plain
    // text number of the LwM2M 1.0 drafts, not the IANA one, 0); Depot's client takes it as plain text.
    assert.equal(config.writeFormat, 'lightweightm2m/text');
    const written = await call<string>((cb) => lib.server.write(device.id, 3, 0, 15, 'Europe/Madrid', cb));
    assert.equal(written, '');
    const deviceObject = client.getObject(3) as BasicObject;
    assert.deepEqual(deviceObject.get(0, 15), Value.string('Europe/Madrid'));
    assert.equal(await call<string>((cb) => lib.server.read(device.id, 3, 0, 15, cb)), 'Europe/Madrid');
  });

  test('TS Core 1.1 §6.3.5 Execute: the foreign server executes /3/0/4 (Reboot); Depot\'s client runs the hook', async () => {
    await call<string>((cb) => lib.server.execute(device.id, 3, 0, 4, '', cb));
    assert.equal(reboots, 1);
  });

  test('TS Core 1.1 §6.3.2 Discover: the foreign server discovers /3/0; Depot\'s client lists the Device object\'s resources', async () => {
    const links = await call<string>((cb) => lib.server.discover(device.id, 3, 0, cb));
    const deviceObject = client.getObject(3) as BasicObject;
    const expected = ['</3/0>', ...deviceObject.resourceIds(0).map((rid) => `</3/0/${rid}>`)];
    assert.deepEqual(
      links.split(',').map((l) => l.replace(/;.*$/, '')),
      expected,
    );
  });

  test('TS Core 1.1 §6.4.1 Observe and Notify: the foreign server observes /3/0/15; a change on Depot\'s client is notified', async () => {
    const values: string[] = [];
    const first = await call<string>((cb) => lib.server.observe(device.id, 3, 0, 15, (value) => values.push(value), cb));
    assert.equal(first, 'Europe/Madrid');
    const deviceObject = client.getObject(3) as BasicObject;
    deviceObject.set(0, 15, Value.string('Asia/Tokyo'));
    await waitUntil(() => values.length >= 1, 5000, 'notification at the foreign server');
    assert.deepEqual(values, ['Asia/Tokyo']);
    await call((cb) => lib.server.cancelObserver(device.id, 3, 0, 15, cb));
  });

  test('TS Core 1.1 §6.2.3 De-register: Depot\'s client de-registers; the foreign server drops the device', async () => {
    const deregistered = client.waitFor('deregistered', 10_000);
    await client.stop({ deregister: true });
    await deregistered;
    assert.deepEqual(deregistrations, [ENDPOINT]);
    assert.deepEqual(await call((cb) => lib.server.listDevices(cb)), []);
  });
});
