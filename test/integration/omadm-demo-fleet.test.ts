/**
 * `depot serve --sim N --omadm-port P` (startDepotServer with simulate and omadm): a mixed fleet,
 * LwM2M devices and OMA DM phones of the compliance profiles; the phones' make, model and OS from
 * DevInfo/DevDetail are in the inventory (device facts, visible through the API).
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDepotServer } from '../../src/app/server.js';
import type { RunningDepotServer } from '../../src/app/server.js';
import { apiCall } from '../support/api-client.js';
import { pollUntil } from '../support/peer-process.js';

let dir: string;
let server: RunningDepotServer;
let api: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-omadm-demo-'));
  // No "depot ca init": the demo makes its CA (its phones need a root to trust).
  server = await startDepotServer({ host: '127.0.0.1', publicHost: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: join(dir, 'data'), allowUnsecured: true, apiToken: 'token', omadm: { port: 0 }, simulate: { count: 12 } });
  const address = server.api.server.address();
  api = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a mixed simulated fleet: 9 LwM2M devices and 3 OMA DM phones (full, no-scomo, xml-only); the phones appear with make, model and OS', async () => {
  assert.equal(server.listening['demo CA (made for --sim with the DM endpoint)'], join(dir, 'data', 'ca'));
  assert.match(server.listening['oma dm'] ?? '', /^https:/);
  assert.equal(server.simulator?.devices.length, 9);
  const phones = server.demoPhones!.phones;
  assert.deepEqual(phones.map((p) => p.profile), ['full', 'no-scomo', 'xml-only']);
  for (const p of phones) {
    const facts = await pollUntil(async () => {
      const r = await apiCall(api, 'token', `/api/v1/omadm/devices/${encodeURIComponent(p.deviceId)}`);
      return r.status === 200 && r.body['osVersion'] !== null ? r.body : undefined;
    }, 30_000, `${p.deviceId} in the inventory`, 100);
    assert.equal(facts['manufacturer'], p.phone!.get('./DevInfo/Man'));
    assert.equal(facts['modelNumber'], p.phone!.get('./DevInfo/Mod'));
    assert.equal(facts['osVersion'], p.phone!.get('./DevDetail/SwV'));
  }
  assert.equal(server.demoPhones!.stats().failures, 0);
  // The same phones are inventory records of their own, next to the LwM2M devices.
  type Listed = { identities: { omadmDevId: string | null; lwm2mEndpoint: string | null }; model: string | null };
  const devices = await pollUntil(async () => {
    const listed = (await apiCall(api, 'token', '/api/v1/inventory/devices?limit=100')).body['devices'] as Listed[];
    return listed.filter((d) => d.identities.lwm2mEndpoint !== null).length === 9 ? listed : undefined;
  }, 30_000, 'the 9 LwM2M devices in the inventory', 100);
  for (const p of phones) assert.equal(devices.find((d) => d.identities.omadmDevId === p.deviceId)?.model, p.phone!.get('./DevInfo/Mod'));
});
