/**
 * A batch of devices sharing one factory bootstrap PSK, end to end: the operator adds the batch
 * credential with `depot credentials add-bootstrap-psk --batch` (a real process on the data
 * directory), depot serve starts on it, and the simulator — configured only with the batch
 * identity and key in its profile — bootstraps every device over DTLS (LwM2M TS Core 1.1 §6.1),
 * each then registering over DTLS with its own DM PSK (§6.2.1). Each name is bound to the batch
 * identity on first use (Depot's choice for batch credentials).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDepotServer } from '../../src/app/server.js';
import { Simulator } from '../../src/sim/simulator.js';
import { pollUntil, runProcess } from '../support/peer-process.js';

const DEPOT_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BATCH = { identity: 'factory-batch-2026-12', keyHex: '5a5a0123456789abcdef0123456789ab' };

test('depot credentials add-bootstrap-psk --batch, then a simulated batch bootstraps over DTLS with that one PSK and registers with a DM PSK of its own per device', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-bs-fleet-'));
  const dataDir = join(dir, 'server');
  let simulator: Simulator | undefined;
  let server: Awaited<ReturnType<typeof startDepotServer>> | undefined;
  try {
    const added = await runProcess(process.execPath, [DEPOT_CLI, 'credentials', 'add-bootstrap-psk', '--batch', '--identity', BATCH.identity, '--key-hex', BATCH.keyHex, '--data-dir', dataDir], { timeoutMs: 30_000 });
    assert.equal(added.code, 0, added.stderr.toString());
    assert.match(added.stdout.toString(), /bootstrap PSK identity "factory-batch-2026-12" added for a batch/);
    const listed = await runProcess(process.execPath, [DEPOT_CLI, 'credentials', 'list-bootstrap', '--data-dir', dataDir], { timeoutMs: 30_000 });
    assert.equal(listed.stdout.toString(), `psk\t${BATCH.identity}\t(batch)\n`, 'listed, key not shown');

    server = await startDepotServer({ host: '127.0.0.1', publicHost: '127.0.0.1', coapPort: 0, coapsPort: 0, httpPort: 0, dataDir, allowUnsecured: false, apiToken: 'tok', autoAcceptBootstrap: true });
    const running = server;
    const bootstrapUri = `coaps://127.0.0.1:${running.coaps!.endpoint.transport.address().port}`;
    simulator = new Simulator({
      bootstrap: bootstrapUri,
      count: 3,
      endpointPrefix: 'batch-dev-',
      host: '127.0.0.1',
      rampMs: 0,
      retry: { initialMs: 200, maxMs: 1000 },
      profile: { models: [{ manufacturer: 'Acme', model: 'Batch-1', firmwareVersion: '1.0' }], psk: { identity: BATCH.identity, key: BATCH.keyHex } },
    });
    await simulator.start();
    const endpoints = simulator.devices.map((d) => d.endpoint);
    assert.equal(endpoints.length, 3);
    await pollUntil(() => simulator!.stats().registered === 3, 30_000, 'three registrations');
    for (const endpoint of endpoints) {
      const registration = await running.store.registrations.getByEndpoint(endpoint);
      assert.equal(registration?.address.scheme, 'coaps');
      assert.deepEqual(registration.identity, { kind: 'psk', value: endpoint }, 'its own DM PSK, not the batch one');
      const record = await running.store.bootstrap.get(endpoint);
      assert.equal(record?.boundIdentity, `psk:${BATCH.identity}`);
      assert.equal(record?.lastTransport, 'coaps');
      assert.equal(record?.bootstrapCount, 1);
    }
    // The batch key opens only /bs: it is no DM credential.
    assert.equal(await running.store.credentials.findPsk(BATCH.identity), null);
  } finally {
    await simulator?.stop();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
