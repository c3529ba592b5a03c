/**
 * `depot serve` as a whole (startDepotServer): LwM2M registration over DTLS with PSKs
 * from the credential store. An endpoint is bound to its credentials (LwM2M TS Core
 * §6.2.1 / Transport §5.2: the server MUST check the endpoint name against the identity).
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { startDepotServer } from '../../src/app/server.js';
import type { RunningDepotServer } from '../../src/app/server.js';
import { DtlsTransport } from '../../src/dtls/transport.js';
import { DeviceDriver } from '../support/lwm2m-device-driver.js';

let dir: string;
let server: RunningDepotServer;
let coapsUri: string;
let coapUri: string;
const drivers: DeviceDriver[] = [];

const pskDevice = async (identity: string, key: string, make = 'Acme', model = 'Secure-1'): Promise<DeviceDriver> => {
  const transport = await DtlsTransport.bind({ host: '127.0.0.1', port: 0, client: { psk: { identity, key: Buffer.from(key) } } });
  const driver = await DeviceDriver.start(make, model, transport);
  drivers.push(driver);
  return driver;
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-serve-'));
  server = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: 0, httpPort: 0, dataDir: dir, allowUnsecured: false, apiToken: 'token' });
  coapsUri = `coaps://127.0.0.1:${server.coaps!.endpoint.transport.address().port}`;
  coapUri = `coap://127.0.0.1:${server.coap.endpoint.transport.address().port}`;
  await server.store.credentials.bind('secure-dev', { kind: 'psk', identity: 'psk-secure-dev', key: Buffer.from('s3cret-key-1') }, Date.now());
  await server.store.credentials.bind('other-dev', { kind: 'psk', identity: 'psk-other-dev', key: Buffer.from('s3cret-key-2') }, Date.now());
});

after(async () => {
  for (const d of drivers) await d.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a device registers over DTLS with its own PSK; its identity is stored and Depot reads it back over coaps', async () => {
  const device = await pskDevice('psk-secure-dev', 's3cret-key-1', 'Hooli', 'H-9');
  const learned = once(server.lwm2m, 'factsLearned');
  const response = await device.register(coapsUri, 'ep=secure-dev&lt=300&lwm2m=1.1');
  assert.equal(response.codeText, '2.01');
  const registration = await server.store.registrations.getByEndpoint('secure-dev');
  assert.deepEqual(registration?.identity, { kind: 'psk', value: 'psk-secure-dev' });
  assert.equal(registration?.address.scheme, 'coaps');
  await learned;
  assert.equal((await server.store.deviceFacts.get('secure-dev'))?.modelNumber, 'H-9');
});

test('a PSK bound to another endpoint cannot register this one (4.03), and the refusal names no secret', async () => {
  const device = await pskDevice('psk-other-dev', 's3cret-key-2');
  const response = await device.register(coapsUri, 'ep=secure-dev&lt=300');
  assert.equal(response.codeText, '4.03');
  assert.match(response.text(), /another endpoint/);
  assert.ok(!response.text().includes('s3cret'));
});

test('an unknown PSK identity never completes the handshake', async () => {
  const device = await pskDevice('psk-nobody', 'whatever');
  await assert.rejects(device.client.post(`${coapsUri}/rd?ep=nobody`, '</3/0>', { timeout: 3000 }));
  assert.equal(await server.store.registrations.getByEndpoint('nobody'), null);
});

test('without --allow-unsecured, registration over plain CoAP is refused (4.03)', async () => {
  const device = await DeviceDriver.start();
  drivers.push(device);
  const response = await device.register(coapUri, 'ep=plain-dev');
  assert.equal(response.codeText, '4.03');
});

test('depot serve --sim: a simulated fleet of several models registers over DTLS and de-registers on close', async () => {
  const simDir = mkdtempSync(join(tmpdir(), 'depot-sim-'));
  const running = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: 0, httpPort: 0, dataDir: simDir, allowUnsecured: false, apiToken: 't', simulate: { count: 20 } });
  try {
    await running.simulator!.waitAllRegistered(30_000);
    const page = await running.store.registrations.list({ limit: 100 });
    assert.equal(page.items.length, 20);
    assert.ok(page.items.every((r) => r.identity?.kind === 'psk' && r.address.scheme === 'coaps'));
    // Facts arrive just after each registration.
    const deadline = Date.now() + 10_000;
    let models = new Set<string>();
    while (Date.now() < deadline) {
      const facts = await running.store.deviceFacts.list({ limit: 100 });
      models = new Set(facts.items.map((f) => `${f.manufacturer} ${f.modelNumber}`));
      if (facts.items.length === 20) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(models.size >= 3, `several models, got ${[...models].join(', ')}`);
  } finally {
    await running.close();
  }
  const reopened = (await import('../../src/store/index.js')).openSqliteStore({ dataDir: simDir });
  try {
    assert.equal((await reopened.registrations.list()).items.length, 0, 'every simulated device de-registered');
  } finally {
    reopened.close();
    rmSync(simDir, { recursive: true, force: true });
  }
});

test('a start that fails (HTTP port in use) reports the error and releases what it had opened', async () => {
  const { createServer } = await import('node:net');
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const busyPort = (blocker.address() as { port: number }).port;
  const failDir = mkdtempSync(join(tmpdir(), 'depot-fail-'));
  const { freeUdpPort } = await import('../support/udp-probe.js');
  const coapPort = await freeUdpPort();
  try {
    await assert.rejects(
      startDepotServer({ host: '127.0.0.1', coapPort, coapsPort: 0, httpPort: busyPort, dataDir: failDir, allowUnsecured: false, apiToken: 't' }),
      /EADDRINUSE/,
    );
    // The CoAP port and the store were released: a second start on them succeeds.
    const again = await startDepotServer({ host: '127.0.0.1', coapPort, coapsPort: 0, httpPort: 0, dataDir: failDir, allowUnsecured: false, apiToken: 't' });
    await again.close();
  } finally {
    blocker.close();
    rmSync(failDir, { recursive: true, force: true });
  }
});

test('depot serve --sim: a demo device installs a package signed with the demo key, pulled as coaps:// over its own DTLS session (seed spec §5.1.1, Package URI)', async () => {
  const simDir = mkdtempSync(join(tmpdir(), 'depot-sim-install-'));
  const running = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: 0, httpPort: 0, dataDir: simDir, allowUnsecured: false, apiToken: 't', simulate: { count: 2 }, installs: { pollIntervalMs: 200 } });
  try {
    await running.simulator!.waitAllRegistered(30_000);
    const { demoSigningKey } = await import('../../src/app/demo-fleet.js');
    const { buildPackage } = await import('../../src/pkg/index.js');
    const { readFileSync, statSync } = await import('node:fs');
    const key = await demoSigningKey(simDir);
    assert.equal(statSync(key.privateKeyFile).mode & 0o777, 0o600);
    const bytes = buildPackage({ name: 'demo-app', version: '1.0', files: [{ path: 'README', data: 'hi' }], signer: { keyId: key.keyId, privateKey: readFileSync(key.privateKeyFile, 'utf8') } });
    const record = await running.catalog.addBytes(bytes);
    const endpoint = (await running.store.registrations.list({ limit: 1 })).items[0]!.endpoint;
    const job = await running.installs.install(endpoint, record.sha256);
    const deadline = Date.now() + 20_000;
    let view = await running.installs.view(job.id);
    while (view && !['succeeded', 'failed'].includes(view.job.state) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      view = await running.installs.view(job.id);
    }
    assert.equal(view?.job.state, 'succeeded', JSON.stringify(view?.transitions));
    const written = view.transitions.find((t) => t.to === 'downloading');
    assert.match(written?.detail ?? '', /^Package URI coaps:\/\/127\.0\.0\.1:\d+\/pkg\/… written to \/9\/\d+\/3$/);
  } finally {
    await running.close();
    rmSync(simDir, { recursive: true, force: true });
  }
});
