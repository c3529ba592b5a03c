/**
 * LwM2M registration interop with libcoap, a peer nobody here wrote: coap-client-notls
 * performs a raw Register (TS Core 1.1 §6.2.1) from a fixed port; coap-server-notls then
 * serves that port as the device, and Depot's Read reaches it (TS Core §6.3.1).
 * Fails (not skips) when libcoap is missing.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoapServer } from '../../src/coap/server.js';
import { UdpTransport } from '../../src/coap/udp.js';
import { Lwm2mServer } from '../../src/lwm2m/server/server.js';
import { openSqliteStore } from '../../src/store/index.js';
import type { SqliteStore } from '../../src/store/index.js';
import { PeerProcess, requireExecutable, runProcess } from '../support/peer-process.js';
import { freeUdpPort, waitForCoapServer } from '../support/udp-probe.js';

let dir: string;
let store: SqliteStore;
let coap: CoapServer;
let lwm2m: Lwm2mServer;
let uri: string;
const children: PeerProcess[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-lwm2m-libcoap-'));
  store = openSqliteStore({ dataDir: dir });
  coap = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }) });
  lwm2m = new Lwm2mServer({ store, coap: { coap }, allowUnsecured: true, learnDeviceFacts: false, requestTimeout: 5000 });
  uri = `coap://127.0.0.1:${coap.endpoint.transport.address().port}`;
});

after(async () => {
  for (const c of children) c.child.kill('SIGKILL');
  await lwm2m.close();
  await coap.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('TS Core §6.2.1: a raw Register from coap-client-notls is accepted (2.01) and stored with its object links', async () => {
  const client = requireExecutable('coap-client-notls');
  const result = await runProcess(client, ['-m', 'post', '-t', '40', '-e', '</1/0>,</3/0>', `${uri}/rd?ep=libcoap-raw&lt=120&lwm2m=1.1&b=U`], { timeoutMs: 10_000 });
  assert.equal(result.code, 0, result.stderr);
  const registration = await store.registrations.getByEndpoint('libcoap-raw');
  assert.ok(registration, 'registered');
  assert.equal(registration.objectLinks, '</1/0>,</3/0>');
  assert.equal(registration.lifetimeSec, 120);
});

test('TS Core §6.3.1: Depot reads /3/0/0 from a libcoap server standing at the registered address', async () => {
  const client = requireExecutable('coap-client-notls');
  const server = requireExecutable('coap-server-notls');
  const devicePort = await freeUdpPort();
  // Register from the device's port, then let libcoap's server take that port as the device.
  const registered = await runProcess(client, ['-p', String(devicePort), '-m', 'post', '-t', '40', '-e', '</3/0>', `${uri}/rd?ep=libcoap-device&lt=120&lwm2m=1.1`], { timeoutMs: 10_000 });
  assert.equal(registered.code, 0, registered.stderr);
  const device = new PeerProcess(server, ['-A', '127.0.0.1', '-p', String(devicePort), '-d', '10']);
  children.push(device);
  await waitForCoapServer('127.0.0.1', devicePort, 5000);
  // A dynamic resource holding the manufacturer, in plain text (Content-Format 0).
  const put = await runProcess(client, ['-m', 'put', '-t', '0', '-e', 'libcoap-made', `coap://127.0.0.1:${devicePort}/3/0/0`], { timeoutMs: 10_000 });
  assert.equal(put.code, 0, put.stderr);
  const read = await lwm2m.read('libcoap-device', '/3/0/0');
  assert.equal(read.status, 'done');
  if (read.status !== 'done') return;
  assert.equal(read.response.code, '2.05');
  assert.deepEqual(read.response.node, { kind: 'resource', id: 0, value: { type: 'string', value: 'libcoap-made' } });
  const missing = await lwm2m.read('libcoap-device', '/3/0/1');
  assert.equal(missing.status === 'done' && missing.response.code, '4.04');
});
