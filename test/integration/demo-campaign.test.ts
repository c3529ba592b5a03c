/**
 * `depot serve --sim N --omadm-port P --demo-campaign` (the README's demo): a mixed simulated
 * fleet comes up, a demo package signed with the demo key is put in the catalog and a campaign
 * over every device runs through its three waves and completes, its progress printed line by
 * line; the campaign is an ordinary one (visible through the API).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PeerProcess } from '../support/peer-process.js';
import { freePort } from '../../src/sim/sms/kannel-lab.js';
import { apiCall } from '../support/api-client.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

void test('depot serve --sim 4 --omadm-port P --demo-campaign: the demo campaign runs over LwM2M devices and an OMA DM phone and completes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-demo-campaign-'));
  const [http, coap, omadm] = [await freePort(), await freePort(), await freePort()];
  const child = new PeerProcess(process.execPath, [MAIN, 'serve', '--host', '127.0.0.1', '--sim', '4', '--omadm-port', String(omadm), '--http-port', String(http), '--coap-port', String(coap), '--coaps-port', 'off', '--allow-unsecured', '--data-dir', join(dir, 'data'), '--log-level', 'warn', '--demo-campaign']);
  try {
    const id = (await child.waitForOutput(/demo campaign (cmp_\S+) started over 4 devices/, 60_000))[1]!;
    await child.waitForOutput(/demo campaign completed: 4 of 4 devices installed/, 90_000);
    // Progress went wave by wave.
    assert.match(child.stdout, /wave 1 of 3: 0 installed/);
    assert.match(child.stdout, /wave 3 of 3: 4 installed, 0 running, 0 pending, 0 failed \(by object9 3, scomo 1\)/);
    const token = readFileSync(join(dir, 'data', 'api-token'), 'utf8').trim();
    const progress = await apiCall(`http://127.0.0.1:${http}`, token, `/api/v1/campaigns/${id}/progress`);
    assert.equal((progress.body.campaign as { state: string }).state, 'completed');
    assert.deepEqual(progress.body.methods, [{ method: 'object9', succeeded: 3, failed: 0 }, { method: 'scomo', succeeded: 1, failed: 0 }]);
  } finally {
    await child.stop(10_000);
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('depot serve --demo-campaign without --sim is refused with a clear message', async () => {
  const child = new PeerProcess(process.execPath, [MAIN, 'serve', '--demo-campaign']);
  const exit = await child.waitForExit(30_000);
  assert.equal(exit.code, 2);
  assert.match(child.stderr, /--demo-campaign needs --sim <n>/);
});
