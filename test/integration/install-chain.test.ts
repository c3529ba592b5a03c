/**
 * The install chain in a real Depot (loopback CoAP, SQLite): a device with Object 9 is installed
 * by the Object 9 method; a device without it is skipped to Mark for Installation, stays marked
 * through an Update, and is installed at its next registration once it offers Object 9.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDepotServer, type RunningDepotServer } from '../../src/app/server.js';
import type { ChainJobView } from '../../src/fleet/chain-driver.js';
import { Lwm2mClient, SoftwareManagementAdapter } from '../../src/lwm2m/client/index.js';
import { SimulatedInstaller, SoftwareManagement } from '../../src/lwm2m/objects/software-management/index.js';
import { makePackage, testKeys } from '../unit/lwm2m/object9-support.js';
import { coapFetcher } from '../support/coap-fetcher.js';


function device(server: RunningDepotServer, dir: string, endpoint: string, withObject9: boolean): Lwm2mClient {
  const port = server.coap.endpoint.transport.address().port;
  const objects = withObject9 ? [new SoftwareManagementAdapter(new SoftwareManagement({ dataDir: join(dir, endpoint), trust: testKeys().trust, installer: new SimulatedInstaller(), quotaBytes: 16 << 20, fetcher: coapFetcher, resumeDelaysMs: [] }))] : [];
  return new Lwm2mClient({ endpoint, serverUri: `coap://127.0.0.1:${port}`, lifetime: 300, objects });
}

async function until(server: RunningDepotServer, id: string, done: (v: ChainJobView) => boolean, ms = 20_000): Promise<ChainJobView> {
  const end = Date.now() + ms;
  for (;;) {
    // What the driver's safety-net timer does every 60 s, sooner (the Object 9 job's end is also pushed).
    await server.chain.tick();
    const view = (await server.chain.view(id))!;
    if (done(view)) return view;
    if (Date.now() > end) throw new Error(`chain job ${id} stuck: ${JSON.stringify(view)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

void test('install chain: Object 9 installs a device that offers it; a device without it is marked and installed at its next contact', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-chain-e2e-'));
  const server = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: join(dir, 'server'), allowUnsecured: true, apiToken: 'token-0123456789', publicHost: '127.0.0.1', installs: { pollIntervalMs: 150 } });
  const devices: Lwm2mClient[] = [];
  try {
    const record = await server.catalog.addBytes(makePackage({ name: 'app', version: '1.0.0' }));

    const capable = device(server, dir, 'chain-o9', true);
    devices.push(capable);
    await capable.start();
    await capable.waitFor('registered', 10_000);
    const direct = await server.chain.install('chain-o9', record.sha256);
    const installed = await until(server, direct.id, (v) => v.job.state !== 'running');
    assert.equal(installed.job.state, 'succeeded', JSON.stringify(installed));
    assert.deepEqual(installed.attempts.map((a) => [a.method, a.outcome]), [['object9', 'succeeded']]);

    const bare = device(server, dir, 'chain-bare', false);
    devices.push(bare);
    await bare.start();
    await bare.waitFor('registered', 10_000);
    const marked = await server.chain.install('chain-bare', record.sha256);
    let view = (await server.chain.view(marked.id))!;
    assert.deepEqual(view.attempts.map((a) => [a.method, a.outcome]), [['object9', 'skipped'], ['scomo', 'skipped'], ['mark', 'running']]);
    assert.match(view.attempts[0]!.message ?? '', /no Software Management object/);
    assert.match(view.job.message ?? '', /^mark: Marked for installation since /);

    // An Update is a contact, but the device still offers no Object 9: it stays marked.
    const updated = bare.waitFor('updated', 10_000);
    bare.requestUpdate();
    await updated;
    view = await until(server, marked.id, (v) => /object9 or scomo cannot try/.test(v.attempts[2]?.message ?? ''));
    assert.equal(view.job.state, 'running');

    // Next registration with Object 9 (e.g. after a firmware update of the device): installed then.
    await bare.stop({ deregister: true });
    const upgraded = device(server, dir, 'chain-bare', true);
    devices.push(upgraded);
    await upgraded.start();
    await upgraded.waitFor('registered', 10_000);
    view = await until(server, marked.id, (v) => v.job.state !== 'running');
    assert.equal(view.job.state, 'succeeded', JSON.stringify(view));
    assert.deepEqual(view.attempts.map((a) => [a.method, a.outcome]), [['object9', 'skipped'], ['scomo', 'skipped'], ['mark', 'succeeded']]);
    assert.match(view.attempts[1]!.message ?? '', /no OMA DM account/);
    assert.match(view.attempts[2]!.message ?? '', /^Installed \(marked since .*, at its next contact by object9 or scomo\): Object 9 job /);
  } finally {
    for (const d of devices) await d.stop({ deregister: false }).catch(() => undefined);
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
