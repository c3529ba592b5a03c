/**
 * Endpoint ownership with --allow-unsecured, over real UDP and DTLS sockets (depot serve as a whole,
 * real SQLite store). LwM2M TS Core 1.1 §6.2.1 (Register), §6.2.2 (Update), §6.2.3 (De-register),
 * and the security considerations of §6.2: the server binds an endpoint name to its credentials.
 * Reproduced attack: with --allow-unsecured, a plain-UDP Register under a credentialed device's name
 * replaced its DTLS registration, so Depot's traffic for it went to the claimant.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDepotServer } from '../../../src/app/server.js';
import type { RunningDepotServer } from '../../../src/app/server.js';
import { UdpTransport } from '../../../src/coap/udp.js';
import { DtlsTransport } from '../../../src/dtls/transport.js';
import { DeviceDriver } from '../../support/lwm2m-device-driver.js';

let dir: string;
let server: RunningDepotServer;
let coapsUri: string;
let coapUri: string;
const drivers: DeviceDriver[] = [];

async function driver(transport?: Promise<DtlsTransport | UdpTransport>): Promise<DeviceDriver> {
  const d = await DeviceDriver.start('Acme', 'Owned-1', transport ? await transport : undefined);
  drivers.push(d);
  return d;
}

const locationOf = (response: { options: { number: number; value: Uint8Array }[] }): string =>
  response.options.filter((o) => o.number === 8).map((o) => Buffer.from(o.value).toString()).join('/');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-owner-'));
  server = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: 0, httpPort: 0, dataDir: dir, allowUnsecured: true, apiToken: 'token' });
  coapsUri = `coaps://127.0.0.1:${server.coaps!.endpoint.transport.address().port}`;
  coapUri = `coap://127.0.0.1:${server.coap.endpoint.transport.address().port}`;
  await server.store.credentials.bind('owned-dev', { kind: 'psk', identity: 'psk-owned-dev', key: Buffer.from('owned-key-1') }, Date.now());
});

after(async () => {
  for (const d of drivers) await d.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('TS Core §6.2.1 with --allow-unsecured: a plain Register under a name that has credentials is refused (4.03) and the real DTLS registration stays', async () => {
  const real = await driver(DtlsTransport.bind({ host: '127.0.0.1', port: 0, client: { psk: { identity: 'psk-owned-dev', key: Buffer.from('owned-key-1') } } }));
  assert.equal((await real.register(coapsUri, 'ep=owned-dev&lt=300&lwm2m=1.1')).codeText, '2.01');
  const registered = await server.store.registrations.getByEndpoint('owned-dev');
  const claimant = await driver();
  const response = await claimant.register(coapUri, 'ep=owned-dev&lt=300&lwm2m=1.1');
  assert.equal(response.codeText, '4.03');
  assert.match(response.text(), /has credentials: it registers only over DTLS/);
  const after = await server.store.registrations.getByEndpoint('owned-dev');
  assert.equal(after?.id, registered?.id);
  assert.equal(after?.address.scheme, 'coaps');
  assert.deepEqual(after?.identity, { kind: 'psk', value: 'psk-owned-dev' });
});

test('TS Core §6.2.2/§6.2.3: an Update or De-register of a DTLS registration\'s id sent over plain UDP is refused (4.03); the registration is unchanged', async () => {
  const registration = (await server.store.registrations.getByEndpoint('owned-dev'))!;
  const claimant = await driver();
  const update = await claimant.client.post(`${coapUri}/rd/${registration.id}?lt=60`, new Uint8Array(0));
  assert.equal(update.codeText, '4.03');
  const remove = await claimant.client.delete(`${coapUri}/rd/${registration.id}`);
  assert.equal(remove.codeText, '4.03');
  const after = await server.store.registrations.getByEndpoint('owned-dev');
  assert.equal(after?.lifetimeSec, 300);
  assert.deepEqual(after?.address, registration.address);
});

test('a per-device bootstrap credential claims its name too: a plain Register under it is refused (4.03), and the bootstrap PSK itself registers nothing over DTLS (4.03)', async () => {
  await server.store.bootstrapCredentials.add({ kind: 'psk', identity: 'factory-boxed', key: Buffer.from('factory-key'), endpoint: 'boxed-dev' }, Date.now());
  const claimant = await driver();
  assert.equal((await claimant.register(coapUri, 'ep=boxed-dev&lt=300')).codeText, '4.03');
  const withBootstrapKey = await driver(DtlsTransport.bind({ host: '127.0.0.1', port: 0, client: { psk: { identity: 'factory-boxed', key: Buffer.from('factory-key') } } }));
  const response = await withBootstrapKey.register(coapsUri, 'ep=boxed-dev&lt=300');
  assert.equal(response.codeText, '4.03');
  assert.match(response.text(), /not bound to any endpoint/);
  assert.equal(await server.store.registrations.getByEndpoint('boxed-dev'), null);
});

test('credentials added after a plain registration end it at its next Update (4.03): the name now registers only with them', async () => {
  const device = await driver();
  const created = await device.register(coapUri, 'ep=late-dev&lt=300');
  assert.equal(created.codeText, '2.01');
  await server.store.credentials.bind('late-dev', { kind: 'psk', identity: 'psk-late-dev', key: Buffer.from('late-key') }, Date.now());
  const update = await device.client.post(`${coapUri}/${locationOf(created)}`, new Uint8Array(0));
  assert.equal(update.codeText, '4.03');
  assert.match(update.text(), /has credentials now/);
});

test('Depot\'s choice: a plain registration of a name without credentials is updated or removed only from its own source address (another port is NAT rebinding, another address is refused)', async () => {
  const device = await driver();
  const created = await device.register(coapUri, 'ep=plain-dev&lt=300');
  assert.equal(created.codeText, '2.01');
  const location = locationOf(created);
  const elsewhere = await driver(UdpTransport.bind({ host: '127.0.0.2', port: 0 }));
  const update = await elsewhere.client.post(`${coapUri}/${location}?lt=60`, new Uint8Array(0));
  assert.equal(update.codeText, '4.03');
  assert.match(update.text(), /another address/);
  assert.equal((await elsewhere.client.delete(`${coapUri}/${location}`)).codeText, '4.03');
  assert.equal((await server.store.registrations.getByEndpoint('plain-dev'))?.lifetimeSec, 300);
  const rebound = await driver();
  assert.equal((await rebound.client.post(`${coapUri}/${location}?lt=90`, new Uint8Array(0))).codeText, '2.04');
  assert.equal((await server.store.registrations.getByEndpoint('plain-dev'))?.lifetimeSec, 90);
  assert.equal((await rebound.client.delete(`${coapUri}/${location}`)).codeText, '2.02');
});
