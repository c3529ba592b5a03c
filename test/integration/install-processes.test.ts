/**
 * Object 9 installs across real processes, as an operator runs Depot: `depot serve`, a
 * `depot sim` fleet whose models fail for real causes (storage, RAM, link, trust, script
 * runtime, downloader, flash, installer), a `depot client` device with the directory
 * installer, and `depot install` — all separate processes on loopback, talking CoAP/UDP and
 * HTTP, with SQLite and files on disk.
 *
 * Checks issue 6's end-to-end clause: every Update Result 2–10 (seed spec §5.1.1 / §6
 * resource 9; the registry encoding too) reached through the simulator's behaviours and
 * reported by the server with its message, retry advice and transition log.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiCall, type ApiRequest } from '../support/api-client.js';
import { PeerProcess, pollUntil, runProcess } from '../support/peer-process.js';
import { makePackage, otherKeys, testKeys } from '../unit/lwm2m/object9-support.js';

const DEPOT_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TOKEN = 'processes-test-token-0123456789';
const KEY_ID = testKeys().keyId;

/** Model → its Object 9 behaviours and what the server must report after installing `package` on it. */
const MATRIX: { model: string; behaviours: Record<string, unknown>; package: 'plain' | 'scripted' | 'untrusted'; state: string; result: string; retry: string; attempts?: number }[] = [
  { model: 'ok-seed', behaviours: { installer: 'sim-good' }, package: 'plain', state: 'succeeded', result: 'INSTALLED', retry: '' },
  { model: 'ok-registry', behaviours: { installer: 'sim-good', encoding: 'registry' }, package: 'plain', state: 'succeeded', result: 'INSTALLED', retry: '' },
  { model: 'small-flash', behaviours: { installer: 'sim-good', storageBytes: 4096, encoding: 'registry' }, package: 'plain', state: 'failed', result: 'NOT_ENOUGH_STORAGE', retry: 'no-retry' },
  { model: 'small-ram', behaviours: { installer: 'sim-good', memoryBytes: 4096 }, package: 'plain', state: 'failed', result: 'OUT_OF_MEMORY', retry: 'retry', attempts: 3 },
  { model: 'flaky-radio', behaviours: { installer: 'sim-good', linkDropsAfterBytes: 3000 }, package: 'plain', state: 'failed', result: 'CONNECTION_LOST', retry: 'retry-resume', attempts: 3 },
  { model: 'strict-trust', behaviours: { installer: 'sim-good' }, package: 'untrusted', state: 'failed', result: 'INTEGRITY_FAILURE', retry: 'no-retry' },
  { model: 'no-shell', behaviours: { installer: 'sim-good', scripts: false }, package: 'scripted', state: 'failed', result: 'UNSUPPORTED_PACKAGE_TYPE', retry: 'no-retry' },
  { model: 'http-only', behaviours: { installer: 'sim-good', pullSchemes: ['http'] }, package: 'plain', state: 'failed', result: 'INVALID_URI', retry: 'no-retry' },
  { model: 'bad-flash', behaviours: { installer: 'sim-good', flashFault: true }, package: 'plain', state: 'failed', result: 'DEVICE_ERROR', retry: 'retry', attempts: 3 },
  { model: 'broken-installer', behaviours: { installer: 'sim-broken-installer', encoding: 'registry' }, package: 'plain', state: 'failed', result: 'INSTALL_FAILURE', retry: 'retry' },
];

interface JobJson {
  id: string;
  state: string;
  method: string;
  methodChosenBy: string;
  result: string | null;
  retry: string | null;
  message: string | null;
  attempts: number;
  updateState: number | null;
  updateResult: number | null;
  transitions: { at: string; from: string | null; to: string; detail: string | null }[];
}

let dir: string;
let server: PeerProcess;
let sim: PeerProcess;
let client: PeerProcess;
let api: string;
let coap: string;
const sha: Record<string, string> = {};

function call(path: string, init: ApiRequest = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  return apiCall(api, TOKEN, path, init);
}

async function endpointsByModel(): Promise<Map<string, string[]>> {
  const devices = (await call('/api/v1/devices')).body['devices'] as { endpoint: string; facts: { modelNumber: string } | null }[];
  const byModel = new Map<string, string[]>();
  for (const d of devices.sort((a, b) => (a.endpoint < b.endpoint ? -1 : 1))) {
    if (d.facts?.modelNumber) byModel.set(d.facts.modelNumber, [...(byModel.get(d.facts.modelNumber) ?? []), d.endpoint]);
  }
  return byModel;
}

async function waitEnded(id: string): Promise<JobJson> {
  return pollUntil(async () => {
    const job = (await call(`/api/v1/installs/${id}`)).body as unknown as JobJson;
    return ended(job) ? job : undefined;
  }, 60_000, `job ${id} to end`, 100);
}

const ended = (j: JobJson): boolean => ['succeeded', 'failed', 'cancelled'].includes(j.state);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-processes-'));
  const env = { ...process.env, DEPOT_API_TOKEN: TOKEN };
  server = new PeerProcess(process.execPath, [DEPOT_CLI, 'serve', '--host', '127.0.0.1', '--coap-port', '0', '--coaps-port', 'off', '--http-port', '0', '--allow-unsecured', '--data-dir', join(dir, 'server')], { env });
  await server.waitForOutput(/depot: ready/, 90_000);
  coap = server.stdout.match(/depot: coap (coap:\/\/[^\s]+)/)![1]!;
  api = server.stdout.match(/depot: http (http:\/\/[^\s]+)\/api\/v1/)![1]!;

  const pub = join(dir, `${KEY_ID}.pub.pem`);
  writeFileSync(pub, testKeys().publicKey.export({ type: 'spki', format: 'pem' }));
  const profile = {
    lifetime: 300,
    trust: { [KEY_ID]: readFileSync(pub, 'utf8') },
    // Two http-only devices: one for the matrix, one to show the fallback and what Depot learns from it.
    models: MATRIX.map((m) => ({ manufacturer: 'Matrix', model: m.model, firmwareVersion: '1', count: m.model === 'http-only' ? 2 : 1, behaviours: m.behaviours })),
  };
  writeFileSync(join(dir, 'profile.json'), JSON.stringify(profile));
  sim = new PeerProcess(process.execPath, [DEPOT_CLI, 'sim', '--server', coap, '--count', String(MATRIX.length + 1), '--profile', join(dir, 'profile.json'), '--data-dir', join(dir, 'sim'), '--endpoint-prefix', 'matrix-', '--ramp', '0', '--quiet']);
  client = new PeerProcess(process.execPath, [DEPOT_CLI, 'client', '--server', coap, '--endpoint', 'box-1', '--data-dir', join(dir, 'box'), '--trust', pub, '--manufacturer', 'Initech', '--model', 'Box']);
  await client.waitForOutput(/registered with/, 90_000);
  await pollUntil(async () => ((await call('/api/v1/devices')).body['devices'] as unknown[]).length === MATRIX.length + 2, 90_000, 'every device registered', 100);

  const big = { files: [{ path: 'blob', data: 'x'.repeat(8000) }] };
  const uploads = {
    plain: makePackage({ name: 'matrix-app', version: '1.0.0', ...big }),
    scripted: makePackage({ name: 'matrix-app', version: '1.0.1', files: [{ path: 'install.sh', data: 'echo installed > marker\n' }, ...big.files], scripts: { install: 'install.sh' } }),
    untrusted: makePackage({ name: 'matrix-app', version: '6.6.6', keys: otherKeys(), ...big }),
  };
  for (const [name, bytes] of Object.entries(uploads)) {
    const added = await call('/api/v1/packages', { bytes });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    sha[name] = added.body['sha256'] as string;
  }
});

after(async () => {
  await Promise.all([sim?.stop(5000), client?.stop(5000)]);
  await server?.stop(5000);
  rmSync(dir, { recursive: true, force: true });
});

test('depot install <device> <file> (separate processes): a device running `depot client` installs a real package with its install script; every transition is printed and visible through the API', async () => {
  const pkgFile = join(dir, 'box-app.dpkg');
  writeFileSync(pkgFile, makePackage({ name: 'box-app', version: '2.0.0', files: [{ path: 'install.sh', data: 'echo "from the install script" > marker\n' }, { path: 'bin/run', data: '#!/bin/sh\necho hi\n', mode: 0o755 }], scripts: { install: 'install.sh' } }));
  const run = await runProcess(process.execPath, [DEPOT_CLI, 'install', 'box-1', pkgFile, '--api', api, '--token', TOKEN], { timeoutMs: 60_000 });
  const printed = run.stdout.toString('utf8');
  assert.equal(run.code, 0, printed + run.stderr);
  for (const step of ['queued → downloading', 'downloading → delivered', 'delivered → installing', 'installing → installed', 'installed → succeeded']) assert.ok(printed.includes(step), `${step} printed:\n${printed}`);
  assert.match(printed, /100% succeeded/);
  // The directory installer unpacked it into a versioned directory and ran the script there.
  const marker = join(dir, 'box', 'software', 'box-app', 'versions', '2.0.0', 'marker');
  assert.equal(readFileSync(marker, 'utf8'), 'from the install script\n');
  const current = JSON.parse(readFileSync(join(dir, 'box', 'software', 'box-app', 'current.json'), 'utf8')) as { version: string };
  assert.equal(current.version, '2.0.0');
  // The device's own record: Object 9 persisted as INSTALLED.
  const persisted = JSON.parse(readFileSync(join(dir, 'box', 'object9.json'), 'utf8')) as { instances: { pkgName?: string }[] };
  assert.ok(JSON.stringify(persisted).includes('INSTALLED'));
  // What the server reports: the job with its transition log, and the device's software list.
  const jobs = (await call('/api/v1/devices/box-1/installs')).body['installs'] as JobJson[];
  const job = (await call(`/api/v1/installs/${jobs[0]!.id}`)).body as unknown as JobJson;
  assert.deepEqual(job.transitions.map((t) => t.to), ['queued', 'downloading', 'delivered', 'installing', 'installed', 'succeeded']);
  const software = (await call('/api/v1/devices/box-1/software')).body['instances'] as { name: string; version: string; state: string }[];
  assert.deepEqual(software.map((s) => [s.name, s.version, s.state]), [['box-app', '2.0.0', 'INSTALLED']]);
});

test('seed spec §5.1.1: Update Result 2–10 each reached on a simulated model through a real cause, and reported by the server (result, message, retry advice, attempts, transitions); registry-encoded devices decoded alike', async () => {
  const endpointOf = await endpointsByModel().then((m) => new Map([...m].map(([model, endpoints]) => [model, endpoints[0]])));
  const jobs = new Map<string, string>();
  for (const m of MATRIX) {
    const endpoint = endpointOf.get(m.model);
    assert.ok(endpoint, `a device of model ${m.model}`);
    // The operator names the method: no fallback, so each device's own failure is what ends the job.
    const created = await call(`/api/v1/devices/${endpoint}/installs`, { json: { package: sha[m.package], method: 'pull' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    jobs.set(m.model, created.body['id'] as string);
  }
  const results = new Map<string, JobJson>();
  await pollUntil(
    async () => {
      for (const [model, id] of jobs) {
        if (results.has(model)) continue;
        const job = (await call(`/api/v1/installs/${id}`)).body as unknown as JobJson;
        if (ended(job)) results.set(model, job);
      }
      return results.size === jobs.size;
    },
    90_000,
    'every job ended',
    200,
  );
  const seen = new Set<string>();
  for (const m of MATRIX) {
    const job = results.get(m.model)!;
    const where = `${m.model}: ${JSON.stringify({ state: job.state, result: job.result, retry: job.retry, attempts: job.attempts, message: job.message, transitions: job.transitions.map((t) => `${t.to} ${t.detail ?? ''}`) })}`;
    assert.equal(job.state, m.state, where);
    assert.equal(job.result, m.result, where);
    if (m.retry) assert.equal(job.retry, m.retry, where);
    assert.ok(job.message && job.message.length > 10, where);
    if (m.attempts) assert.equal(job.attempts, m.attempts, `${where}: retried automatically up to the limit`);
    assert.equal(job.transitions[0]!.to, 'queued', where);
    assert.equal(job.transitions.at(-1)!.to, m.state, where);
    seen.add(m.result);
  }
  // Every seed Update Result from 2 to 10.
  assert.deepEqual([...seen].sort(), ['CONNECTION_LOST', 'DEVICE_ERROR', 'INSTALLED', 'INSTALL_FAILURE', 'INTEGRITY_FAILURE', 'INVALID_URI', 'NOT_ENOUGH_STORAGE', 'OUT_OF_MEMORY', 'UNSUPPORTED_PACKAGE_TYPE']);
  // The registry-encoded devices report in the 50s and are decoded alike (OMA registry Object 9).
  const registryStorage = results.get('small-flash')!;
  assert.equal(registryStorage.updateResult, 50);
  const registryInstaller = results.get('broken-installer')!;
  assert.ok(registryInstaller.updateResult !== null && registryInstaller.updateResult >= 50, JSON.stringify(registryInstaller));
  // A failed install keeps the device's Object 9 consistent: the device refuses nothing afterwards.
  assert.ok(!existsSync(join(dir, 'sim', endpointOf.get('small-flash')!, 'obj9-0.dpkg')), 'the faulty package was removed from the device (§5.1.1)');
});

test('a device killed (SIGKILL) in the middle of an install: restarted, it reports DELIVERED + Installation failure (seed spec §5.1.1, documented restore), its previous state survives on disk, and a new job installs the delivered package without downloading it again', async () => {
  const pkgFile = join(dir, 'slow-app.dpkg');
  writeFileSync(pkgFile, makePackage({ name: 'slow-app', version: '1.0.0', files: [{ path: 'install.sh', data: 'sleep 4\necho done > marker\n' }], scripts: { install: 'install.sh' } }));
  const added = await call('/api/v1/packages', { bytes: readFileSync(pkgFile) });
  const created = await call('/api/v1/devices/box-1/installs', { json: { package: added.body['sha256'] } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  // Kill the device while its install script runs (the job says installing once Execute Install was accepted).
  await pollUntil(async () => ((await call(`/api/v1/installs/${created.body['id'] as string}`)).body['state'] === 'installing' ? true : undefined), 30_000, 'the job installing', 50);
  client.child.kill('SIGKILL');
  await client.waitForExit(5000);
  const onDisk = readFileSync(join(dir, 'box', 'object9.json'), 'utf8');
  assert.match(onDisk, /"slow-app"/, 'the instance was persisted before the crash');
  // Restart the same device from its data directory.
  client = new PeerProcess(process.execPath, [DEPOT_CLI, 'client', '--server', coap, '--endpoint', 'box-1', '--data-dir', join(dir, 'box'), '--trust', join(dir, `${KEY_ID}.pub.pem`), '--manufacturer', 'Initech', '--model', 'Box']);
  await client.waitForOutput(/Object 9 restored: DELIVERED \S+ DELIVERED \(installation interrupted/, 30_000);
  const first = await pollUntil(async () => {
    const job = (await call(`/api/v1/installs/${created.body['id'] as string}`)).body as unknown as JobJson;
    return ended(job) ? job : undefined;
  }, 60_000, 'the interrupted job to end', 100);
  assert.equal(first.state, 'failed');
  assert.equal(first.result, 'INSTALL_FAILURE');
  assert.equal(first.retry, 'retry');
  // The restored state is on disk too (a second crash would find it).
  const restored = JSON.parse(readFileSync(join(dir, 'box', 'object9.json'), 'utf8')) as { instances: { pkgName: string; state: { pkg: string; result: string } }[] };
  assert.deepEqual(
    restored.instances.map((i) => [i.pkgName, i.state.pkg, i.state.result]),
    [
      ['box-app', 'INSTALLED', 'INSTALLED'],
      ['slow-app', 'DELIVERED', 'INSTALL_FAILURE'],
    ],
  );
  // Retried by the operator: installed from the delivered package, no second download.
  const retried = await call('/api/v1/devices/box-1/installs', { json: { package: added.body['sha256'] } });
  const second = await pollUntil(async () => {
    const job = (await call(`/api/v1/installs/${retried.body['id'] as string}`)).body as unknown as JobJson;
    return ended(job) ? job : undefined;
  }, 60_000, 'the retry to end', 100);
  assert.equal(second.state, 'succeeded', JSON.stringify(second.transitions));
  assert.deepEqual(second.transitions.map((t) => t.to), ['queued', 'delivered', 'installing', 'installed', 'succeeded']);
  assert.equal(readFileSync(join(dir, 'box', 'software', 'slow-app', 'versions', '1.0.0', 'marker'), 'utf8'), 'done\n');
});

test('mission §3 (LwM2M part): without a named method Depot pulls, falls back to push when the device cannot use the Package URI (Invalid URI), remembers push for that model, and starts the next device of the model with push', async () => {
  const [matrixDevice, fresh] = (await endpointsByModel()).get('http-only')!;
  assert.ok(matrixDevice && fresh);
  const first = await waitEnded((await call(`/api/v1/devices/${fresh}/installs`, { json: { package: sha['plain'] } })).body['id'] as string);
  assert.equal(first.state, 'succeeded', JSON.stringify(first.transitions));
  assert.equal(first.method, 'push');
  assert.equal(first.methodChosenBy, 'depot');
  assert.ok(first.transitions.some((t) => /INVALID_URI for the Package URI: falling back to push/.test(t.detail ?? '')), JSON.stringify(first.transitions));
  // The next device of the model starts with what worked.
  const second = await waitEnded((await call(`/api/v1/devices/${matrixDevice}/installs`, { json: { package: sha['plain'] } })).body['id'] as string);
  assert.equal(second.state, 'succeeded', JSON.stringify(second.transitions));
  assert.equal(second.method, 'push');
  assert.match(second.transitions.find((t) => t.to === 'downloading')!.detail!, /^Package pushed \(Block1\)/);
  assert.ok(!second.transitions.some((t) => /falling back/.test(t.detail ?? '')));
});
