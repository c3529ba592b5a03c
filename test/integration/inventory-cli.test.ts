/**
 * The inventory and campaign CLIs against a real Depot (HTTP API, SQLite, install chain): a CSV
 * device list imported by streamed upload with its bad lines reported, the devices listed,
 * grouped and explained, a campaign over the imported group (devices never seen: the chain marks
 * them for installation), watched, and cancelled; the package is deletable only after that.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDepotServer } from '../../src/app/server.js';
import { runInventoryCommand, type CliIo } from '../../src/cli/inventory.js';
import { runCampaignCommand } from '../../src/cli/campaign.js';
import { makePackage } from '../unit/lwm2m/object9-support.js';
import { apiCall } from '../support/api-client.js';

const TOKEN = 'token-0123456789';

function captured(): CliIo & { out: string; err: string } {
  const io = { out: '', err: '', stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t), fetch: (...args: Parameters<typeof fetch>) => fetch(...args) };
  return io;
}

void test('inventory and campaign CLIs: import a device list, list, group, explain, run a campaign on the imported group, watch and cancel it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-inventory-cli-'));
  const server = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: join(dir, 'server'), allowUnsecured: true, apiToken: TOKEN, publicHost: '127.0.0.1' });
  const base = `http://127.0.0.1:${(server.api.server.address() as { port: number }).port}`;
  const common = ['--api', base, '--token', TOKEN];
  try {
    const csv = join(dir, 'devices.csv');
    const rows = ['phone,imei,make,model,group'];
    for (let i = 0; i < 40; i++) rows.push(`+4915100${String(i).padStart(5, '0')},,Acme,S-${i % 2},pilot`);
    rows.push('+49x,,Acme,S-1,pilot');
    writeFileSync(csv, rows.join('\n') + '\n');
    let io = captured();
    assert.equal(await runInventoryCommand(['import', csv, ...common], io), 1, 'a bad line: exit 1');
    assert.match(io.out, /^41 rows: 40 new, 0 updated, 0 unchanged, 1 refused\n {2}line 42: phone number "\+49x" is not an international number/m);
    io = captured();
    assert.equal(await runInventoryCommand(['import', csv, ...common], io), 1);
    assert.match(io.out, /40 unchanged/, 'importing again changes nothing');
    const badHeader = await apiCall(base, TOKEN, '/api/v1/inventory/import', { bytes: Buffer.from('name,serial\na,b\n') });
    assert.equal(badHeader.status, 400);
    assert.match(String(badHeader.body.message), /names no phone/);
    // A CSV sent as what it is (text/csv, with a charset) is taken the same way; an unknown type is refused with 415.
    const asCsv = await fetch(`${base}/api/v1/inventory/import`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/csv; charset=utf-8' }, body: 'phone,imei,make,model,group\n+491510099999,,Acme,S-9,csv\n' });
    assert.equal(asCsv.status, 200, await asCsv.clone().text());
    assert.equal(((await asCsv.json()) as { created: number }).created, 1);
    const asXml = await fetch(`${base}/api/v1/inventory/import`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/xml' }, body: '<devices/>' });
    assert.equal(asXml.status, 415);

    io = captured();
    assert.equal(await runInventoryCommand(['list', '--group', 'pilot', '--model', 's-1', '--limit', '7', '--all', '--json', ...common], io), 0);
    const listed = JSON.parse(io.out) as { id: string; expected: { model: string } }[];
    assert.equal(listed.length, 20);
    assert.ok(listed.every((d) => d.expected.model === 'S-1'));
    const one = listed[0]!.id;
    io = captured();
    assert.equal(await runInventoryCommand(['group', one, '--add', 'canary', ...common], io), 0);
    assert.match(io.out, /groups=canary,pilot|groups=pilot,canary/);
    io = captured();
    assert.equal(await runInventoryCommand(['history', one, ...common], io), 0);
    assert.match(io.out, /operator: groups \["pilot"\] → \["canary","pilot"\]/);
    assert.match(io.out, /import: created null → "imported"/);

    const pkg = await server.catalog.addBytes(makePackage({ name: 'agent', version: '1.0.0' }));
    io = captured();
    assert.equal(await runInventoryCommand(['targets', pkg.sha256, '--make', 'acme', '--model', 'S-1', ...common], io), 0);
    io = captured();
    assert.equal(await runInventoryCommand(['explain', one, '--name', 'agent', ...common], io), 0);
    assert.match(io.out, /^chosen: agent 1\.0\.0/);
    const s0 = (await apiCall(base, TOKEN, '/api/v1/inventory/devices?model=S-0&limit=1')).body.devices as { id: string }[];
    io = captured();
    await runInventoryCommand(['explain', s0[0]!.id, ...common], io);
    assert.match(io.out, /chosen: none\nwhy: none of the 1 packages fits this device/);
    assert.match(io.out, /FAIL model: model "S-0" matches none of "S-1"/);

    // A campaign over the imported group: devices never seen are marked for installation by the chain.
    io = captured();
    assert.equal(await runCampaignCommand(['create', 'agent', '--name', 'pilot agent', '--group', 'pilot', '--select', '--waves', '25,100', '--concurrency', '5', '--json', ...common], io), 0, io.err);
    const id = (JSON.parse(io.out) as { id: string }).id;
    io = captured();
    assert.equal(await runCampaignCommand(['show', id, ...common], io), 0);
    assert.match(io.out, /pilot agent: running, wave 1 of 2/);
    assert.match(io.out, /total: 0 ok, 0 failed, 5 running, 15 pending, 20 no package \/ 40/);
    assert.match(io.out, /model acme\/s-0: .*20 no package/);
    await assert.rejects(server.catalog.remove(pkg.sha256), /cannot be deleted/);
    assert.equal((await apiCall(base, TOKEN, `/api/v1/packages/${pkg.sha256}/remove`, { method: 'POST' })).status, 409);

    // Watch until the cancel ends the stream.
    const watchIo = captured();
    const watching = runCampaignCommand(['watch', id, ...common], watchIo);
    io = captured();
    assert.equal(await runCampaignCommand(['cancel', id, ...common], io), 0);
    assert.match(io.out, /cancelled/);
    assert.equal(await watching, 0);
    assert.match(watchIo.out, /pilot agent: cancelled/);
    const marked = (await apiCall(base, TOKEN, `/api/v1/campaigns/${id}/members?state=cancelled&limit=100`)).body.members as { job: string | null }[];
    assert.equal(marked.length, 20);
    const job = marked.find((m) => m.job)!.job!;
    assert.equal((await server.chain.view(job))!.job.state, 'cancelled', 'the chain job was cancelled');
    assert.equal((await apiCall(base, TOKEN, `/api/v1/packages/${pkg.sha256}/remove`, { method: 'POST' })).body.removed, true);
    io = captured();
    assert.equal(await runCampaignCommand(['resume', id, ...common], io), 1);
    assert.match(io.err, /409 CONFLICT: campaign .* already ended \(cancelled\)/);
    io = captured();
    assert.equal(await runCampaignCommand(['create', '--name', 'x', ...common], io), 2);
    assert.match(io.err, /create needs one of --group, --filter, --list/);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
