/**
 * The mission's first step end to end, with Depot's own client engine as the device:
 * an unknown device asks to be bootstrapped over DTLS with its factory bootstrap PSK, stays
 * pending until an operator accepts it through the HTTP API, is then provisioned with its own
 * DM PSK and registers over DTLS. (LwM2M TS Core 1.1 §6.1 bootstrap, §6.2 registration.)
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startDepotServer } from '../../src/app/server.js';
import { Lwm2mClient } from '../../src/lwm2m/client/engine.js';
import type { ClientEvent } from '../../src/lwm2m/client/engine.js';

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('bootstrap stays pending until accepted through the API; the device then registers over DTLS with its provisioned PSK', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-bs-e2e-'));
  const server = await startDepotServer({ host: '127.0.0.1', publicHost: '127.0.0.1', coapPort: 0, coapsPort: 0, httpPort: 0, dataDir: dir, allowUnsecured: false, apiToken: 'tok' });
  const bootstrapUri = `coaps://127.0.0.1:${server.coaps!.endpoint.transport.address().port}`;
  // The factory bootstrap credential of this one device, as the operator enters it.
  const factoryPsk = { identity: 'factory-fresh-device-1', key: Buffer.from('factory-key-0001') };
  await server.store.bootstrapCredentials.add({ kind: 'psk', ...factoryPsk, endpoint: 'fresh-device-1' }, Date.now());
  const api = `http://127.0.0.1:${(server.api.server.address() as AddressInfo).port}`;
  const events: ClientEvent[] = [];
  const device = new Lwm2mClient({
    endpoint: 'fresh-device-1',
    bootstrapUri,
    psk: factoryPsk,
    host: '127.0.0.1',
    device: { manufacturer: 'Vandelay', modelNumber: 'V-5', serialNumber: 'V5-0001', firmwareVersion: '1.0', softwareVersion: 'VOS 2' },
    bootstrapTimeoutMs: 400,
    retry: { initialMs: 100, maxMs: 300 },
    stateFile: join(dir, 'device-state.json'),
  });
  device.on((e) => events.push(e));
  try {
    await device.start();
    const pending = await waitFor('the pending endpoint', async () => {
      const list = (await (await fetch(`${api}/api/v1/bootstrap?state=pending`, { headers: { authorization: 'Bearer tok' } })).json()) as { endpoints: { endpoint: string }[] };
      return list.endpoints.find((e) => e.endpoint === 'fresh-device-1');
    });
    assert.equal(pending.endpoint, 'fresh-device-1');
    // Pending: the device keeps asking, nothing is provisioned, nothing registers.
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(await server.store.registrations.getByEndpoint('fresh-device-1'), null);
    assert.equal(await server.store.credentials.findPsk('fresh-device-1'), null);
    const accepted = await fetch(`${api}/api/v1/bootstrap/fresh-device-1/accept`, { method: 'POST', headers: { authorization: 'Bearer tok' } });
    assert.equal(accepted.status, 200);
    const registration = await waitFor('the registration', async () => (await server.store.registrations.getByEndpoint('fresh-device-1')) ?? undefined);
    assert.equal(registration.address.scheme, 'coaps');
    assert.deepEqual(registration.identity, { kind: 'psk', value: 'fresh-device-1' });
    assert.ok(events.some((e) => e.type === 'bootstrapped'));
    const record = await server.store.bootstrap.get('fresh-device-1');
    assert.equal(record?.boundIdentity, 'psk:factory-fresh-device-1');
    assert.equal(record?.lastTransport, 'coaps');
    assert.equal(record?.bootstrapCount, 1);
    const facts = await waitFor('the device facts', async () => (await server.store.deviceFacts.get('fresh-device-1')) ?? undefined);
    assert.equal(facts.manufacturer, 'Vandelay');
    assert.equal(facts.modelNumber, 'V-5');
    assert.equal(facts.osVersion, 'VOS 2');
  } finally {
    await device.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('certificate bootstrap (Security Mode 2): the device gets a certificate from Depot\'s CA for its endpoint and the CA as trust anchor, registers over DTLS with it, and a restarted device reuses it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-bs-x509-'));
  const { CertificateAuthority } = await import('../../src/pki/ca.js');
  await CertificateAuthority.init(join(dir, 'server', 'ca'));
  const server = await startDepotServer({ host: '127.0.0.1', publicHost: '127.0.0.1', coapPort: 0, coapsPort: 0, httpPort: 0, dataDir: join(dir, 'server'), allowUnsecured: false, apiToken: 'tok', autoAcceptBootstrap: true, bootstrapCredentials: 'x509' });
  const bootstrapUri = `coaps://127.0.0.1:${server.coaps!.endpoint.transport.address().port}`;
  // A batch bootstrap credential: the endpoint name is bound to it on first use.
  const batchPsk = { identity: 'factory-batch-V7', key: Buffer.from('batch-key-V7-000') };
  await server.store.bootstrapCredentials.add({ kind: 'psk', ...batchPsk }, Date.now());
  const make = () =>
    new Lwm2mClient({
      endpoint: 'cert-device-1',
      bootstrapUri,
      psk: batchPsk,
      host: '127.0.0.1',
      device: { manufacturer: 'Vandelay', modelNumber: 'V-7', serialNumber: 'V7-0001', firmwareVersion: '1.0' },
      bootstrapTimeoutMs: 2000,
      retry: { initialMs: 100, maxMs: 300 },
      stateFile: join(dir, 'device-state.json'),
    });
  let device = make();
  try {
    // The device's own 'registered' (its 2.01 processed), not only the server's record: stopping
    // before the client knows its location would skip the De-register.
    const registered = device.waitFor('registered', 15_000);
    await device.start();
    await registered;
    const registration = await waitFor('the registration', async () => (await server.store.registrations.getByEndpoint('cert-device-1')) ?? undefined);
    assert.equal(registration.address.scheme, 'coaps');
    assert.equal(registration.identity?.kind, 'x509');
    assert.match(registration.identity.value, /CN=cert-device-1/);
    // The binding is by certificate subject, and no PSK was made for it.
    assert.equal((await server.store.credentials.find('x509-subject', registration.identity.value))?.endpoint, 'cert-device-1');
    assert.equal(await server.store.credentials.findPsk('cert-device-1'), null);
    // The state file keeps the Security instance in mode 2 (certificate), not a PSK.
    const { readFileSync } = await import('node:fs');
    const state = readFileSync(join(dir, 'device-state.json'), 'utf8');
    assert.match(state, /"2":\s*\{[^}]*"v":\s*"2"/, 'Security Mode 2 persisted');
    // Restarted from its state file: registers again with the same certificate, no new bootstrap.
    await device.stop({ deregister: true });
    await waitFor('the de-registration', async () => ((await server.store.registrations.getByEndpoint('cert-device-1')) === null ? true : undefined));
    device = make();
    const events: ClientEvent[] = [];
    device.on((e) => events.push(e));
    await device.start();
    const again = await waitFor('the second registration', async () => (await server.store.registrations.getByEndpoint('cert-device-1')) ?? undefined);
    assert.equal(again.identity?.value, registration.identity.value);
    assert.ok(!events.some((e) => e.type === 'bootstrapStarted'), 'no second bootstrap');
  } finally {
    await device.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
