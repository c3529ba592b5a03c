/**
 * Depot's Bootstrap-Server against a test driver playing the device's bootstrap side over
 * real UDP, with a real SQLite store. Clauses: LwM2M TS Core 1.1 §6.1. The sequence is checked
 * over plain CoAP, so the server runs in insecure (lab) bootstrap mode here; the default (DTLS
 * with bootstrap credentials only) is tested in bootstrap-security.test.ts.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { CoapClient } from '../../../src/coap/client.js';
import { Code, ContentFormat } from '../../../src/coap/codes.js';
import { CoapServer } from '../../../src/coap/server.js';
import { UdpTransport } from '../../../src/coap/udp.js';
import { decode } from '../../../src/lwm2m/index.js';
import type { InstanceNode } from '../../../src/lwm2m/index.js';
import { BootstrapServer } from '../../../src/lwm2m/server/bootstrap.js';
import { openSqliteStore } from '../../../src/store/index.js';
import type { SqliteStore } from '../../../src/store/index.js';

/** Test driver: the bootstrap side of a device (answers Discover/Delete/Write/Finish, records them). */
class BootstrapDevice {
  log: string[] = [];
  written = new Map<string, Uint8Array>();
  finished = false;
  private constructor(
    readonly coap: CoapServer,
    readonly client: CoapClient,
  ) {}
  static async start(): Promise<BootstrapDevice> {
    const coap = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }) });
    const d = new BootstrapDevice(coap, new CoapClient({ endpoint: coap.endpoint }));
    // The device already holds its Bootstrap-Server account at /0/1, so Depot must not write there.
    coap.resource('/0', { get: () => (d.log.push('discover /0'), { code: Code.Content, contentFormat: ContentFormat.LinkFormat, payload: '</0>,</0/1>' }) });
    coap.resource('/', { delete: () => (d.log.push('delete /'), { code: Code.Deleted }) });
    for (const path of ['/0', '/1']) {
      coap.resource(path, {
        prefix: true,
        put: (req) => {
          d.log.push(`write ${req.path}`);
          d.written.set(req.path, Uint8Array.from(req.payload));
          return { code: Code.Changed };
        },
      });
    }
    coap.resource('/bs', { post: () => (d.log.push('finish'), (d.finished = true), { code: Code.Changed }) });
    return d;
  }
  request(server: string, endpoint: string) {
    return this.client.post(`${server}/bs?ep=${endpoint}`, new Uint8Array(0));
  }
  close() {
    return this.coap.close();
  }
}

let dir: string;
let store: SqliteStore;
let coap: CoapServer;
let bootstrap: BootstrapServer;
let uri: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-bs-'));
  store = openSqliteStore({ dataDir: dir });
  coap = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }) });
  bootstrap = new BootstrapServer({ store, coap: { coap }, dmServer: { uri: 'coaps://dm.example:5684', shortServerId: 101, lifetimeSec: 600, binding: 'U' }, requestTimeout: 5000, insecureBootstrap: true });
  uri = `coap://127.0.0.1:${coap.endpoint.transport.address().port}`;
});
after(async () => {
  await bootstrap.close();
  await coap.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('acceptance gate: a never-seen endpoint is held pending; its Bootstrap-Request is acknowledged (2.04) and nothing is written', async () => {
  const device = await BootstrapDevice.start();
  try {
    const pending = once(bootstrap, 'pending');
    assert.equal((await device.request(uri, 'gate-dev')).codeText, '2.04');
    await pending;
    assert.equal((await store.bootstrap.get('gate-dev'))?.state, 'pending');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(device.log, []);
  } finally {
    await device.close();
  }
});

test('TS Core §6.1: once accepted, Discover, Delete, Write of Security and Server, then Bootstrap-Finish; the PSK is bound to the endpoint', async () => {
  const device = await BootstrapDevice.start();
  try {
    await device.request(uri, 'bs-dev');
    await bootstrap.accept('bs-dev', 'operator');
    const done = once(bootstrap, 'bootstrapped');
    assert.equal((await device.request(uri, 'bs-dev')).codeText, '2.04');
    const [endpoint, identity] = (await done) as [string, string];
    assert.equal(endpoint, 'bs-dev');
    assert.equal(identity, 'bs-dev');
    assert.deepEqual(device.log, ['discover /0', 'delete /', 'write /0/2', 'write /1/0', 'finish']);
    const security = decode(ContentFormat.LwM2mTlv, [0, 2], device.written.get('/0/2')!) as InstanceNode;
    const value = (id: number) => (security.resources.find((r) => r.id === id) as { value: { value: unknown } } | undefined)?.value.value;
    assert.equal(value(0), 'coaps://dm.example:5684');
    assert.equal(value(1), false);
    assert.equal(value(2), 0, 'Security Mode PSK');
    assert.equal(Buffer.from(value(3) as Uint8Array).toString(), 'bs-dev');
    assert.equal(value(10), 101);
    const stored = await store.credentials.findPsk('bs-dev');
    assert.equal(stored?.endpoint, 'bs-dev');
    assert.deepEqual(Buffer.from(value(5) as Uint8Array), Buffer.from(stored.key.reveal()));
    const server = decode(ContentFormat.LwM2mTlv, [1, 0], device.written.get('/1/0')!) as InstanceNode;
    assert.deepEqual(server.resources.map((r) => r.id), [0, 1, 6, 7]);
  } finally {
    await device.close();
  }
});

test('a rejected endpoint gets 4.03 and nothing is written', async () => {
  const device = await BootstrapDevice.start();
  try {
    await device.request(uri, 'bad-dev');
    await bootstrap.reject('bad-dev', 'operator');
    const response = await device.request(uri, 'bad-dev');
    assert.equal(response.codeText, '4.03');
    assert.match(response.text(), /rejected/);
    assert.deepEqual(device.log, []);
  } finally {
    await device.close();
  }
});

test('TS Core §6.1.3: a Bootstrap-Request without ep gets 4.00', async () => {
  const device = await BootstrapDevice.start();
  try {
    const response = await device.client.post(`${uri}/bs`, new Uint8Array(0));
    assert.equal(response.codeText, '4.00');
  } finally {
    await device.close();
  }
});

test('TS Core §6.1.2 server-initiated bootstrap: an accepted endpoint is provisioned at its last address without a new request', async () => {
  const device = await BootstrapDevice.start();
  try {
    await device.request(uri, 'push-dev');
    await bootstrap.accept('push-dev', 'operator');
    await bootstrap.bootstrapNow('push-dev');
    assert.deepEqual(device.log, ['discover /0', 'delete /', 'write /0/2', 'write /1/0', 'finish']);
    assert.equal((await store.credentials.findPsk('push-dev'))?.endpoint, 'push-dev');
    await assert.rejects(bootstrap.bootstrapNow('gate-dev'), /not accepted/);
  } finally {
    await device.close();
  }
});
