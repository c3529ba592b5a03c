/**
 * The Object 9 install driver end to end: `startDepotServer` on loopback (CoAP, SQLite, HTTP
 * API) and an `Lwm2mClient` device with the Object 9 adapter, a simulated installer and a
 * CoAP pull fetcher, installing real signed packages through the API.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startDepotServer, type RunningDepotServer } from '../../src/app/server.js';
import { CoapClient } from '../../src/coap/client.js';
import { Lwm2mClient, SoftwareManagementAdapter } from '../../src/lwm2m/client/index.js';
import { FetchError, SimulatedInstaller, SoftwareManagement, type Installer, type InstallerOutcome, type PackageFetcher } from '../../src/lwm2m/objects/software-management/index.js';
import type { VerifiedPackage } from '../../src/pkg/index.js';
import { makePackage, otherKeys, testKeys } from '../unit/lwm2m/object9-support.js';
import { progressLine, runInstallCommand } from '../../src/cli/install.js';
import { writeFileSync } from 'node:fs';
import { apiCall, type ApiRequest } from '../support/api-client.js';

const TOKEN = 'install-test-token-0123456789';

/** A device-side pull fetcher over CoAP (Block2); the whole body is fetched, then handed over from `offset`. */
class CoapFetcher implements PackageFetcher {
  readonly uris: string[] = [];
  /** Fail the next fetch after this many bytes with Connection lost. */
  failAfter: number | undefined;
  supports(uri: string): boolean {
    return uri.startsWith('coap://');
  }
  resumable(): boolean {
    return true;
  }
  async fetch(uri: string, opts: { offset: number; signal: AbortSignal; onData: (chunk: Uint8Array) => Promise<boolean> }): Promise<void> {
    this.uris.push(uri);
    const client = new CoapClient();
    try {
      const r = await client.get(uri, { blockSize: 512 });
      if (r.codeText !== '2.05') throw new FetchError(r.codeText === '4.04' ? 'INVALID_URI' : 'CONNECTION_LOST', `GET ${uri}: ${r.codeText}`);
      const body = Buffer.from(r.payload);
      for (let i = opts.offset; i < body.length; i += 1024) {
        if (opts.signal.aborted) return;
        if (this.failAfter !== undefined && i >= this.failAfter) {
          this.failAfter = undefined;
          throw new FetchError('CONNECTION_LOST', 'connection reset (test)');
        }
        if (!(await opts.onData(body.subarray(i, Math.min(body.length, i + 1024))))) return;
      }
    } finally {
      await client.close();
    }
  }
}

/** A device-side pull fetcher over HTTP, resuming with Range. */
class HttpFetcher extends CoapFetcher {
  readonly ranges: (string | null)[] = [];
  override supports(uri: string): boolean {
    return uri.startsWith('http://');
  }
  override async fetch(uri: string, opts: { offset: number; signal: AbortSignal; onData: (chunk: Uint8Array) => Promise<boolean> }): Promise<void> {
    this.uris.push(uri);
    const range = opts.offset > 0 ? `bytes=${opts.offset}-` : null;
    this.ranges.push(range);
    const r = await fetch(uri, { signal: opts.signal, ...(range ? { headers: { range } } : {}) });
    if (r.status !== 200 && r.status !== 206) throw new FetchError(r.status === 404 ? 'INVALID_URI' : 'CONNECTION_LOST', `GET ${uri}: ${r.status}`);
    const body = Buffer.from(await r.arrayBuffer());
    for (let i = 0; i < body.length; i += 1024) {
      if (this.failAfter !== undefined && opts.offset + i >= this.failAfter) {
        this.failAfter = undefined;
        throw new FetchError('CONNECTION_LOST', 'connection reset (test)');
      }
      if (!(await opts.onData(body.subarray(i, Math.min(body.length, i + 1024))))) return;
    }
  }
}

/** Wraps a SimulatedInstaller; install() waits for `gate` when one is set (to hold a device mid-install). */
class GatedInstaller implements Installer {
  readonly inner = new SimulatedInstaller();
  installs = 0;
  gate: Promise<void> | undefined;
  entered: (() => void) | undefined;
  async install(pkg: VerifiedPackage, signal: AbortSignal): Promise<InstallerOutcome> {
    this.installs++;
    this.entered?.();
    if (this.gate) await this.gate;
    return this.inner.install(pkg, signal);
  }
  uninstall(name: string, opts: { forUpdate: boolean }): Promise<InstallerOutcome> {
    return this.inner.uninstall(name, opts);
  }
  activate(name: string): Promise<InstallerOutcome> {
    return this.inner.activate(name);
  }
  deactivate(name: string): Promise<InstallerOutcome> {
    return this.inner.deactivate(name);
  }
  recover(name: string, version: string): Promise<'installed' | 'not-installed'> {
    return this.inner.recover(name, version);
  }
}

interface Rig {
  server: RunningDepotServer;
  base: string;
  coapPort: number;
  dir: string;
  device: Lwm2mClient;
  installer: GatedInstaller;
  fetcher: CoapFetcher;
  restart(between?: () => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

async function rig(endpoint: string, queue?: { awakeMs: number }, pullVia?: 'http'): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'depot-install-'));
  const config = (coapPort: number) => ({
    host: '127.0.0.1',
    coapPort,
    coapsPort: null,
    httpPort: 0,
    dataDir: join(dir, 'server'),
    allowUnsecured: true,
    apiToken: TOKEN,
    publicHost: '127.0.0.1',
    installs: { pollIntervalMs: 150, ...(pullVia ? { pullVia } : {}) },
    ...(queue ? { queueModeAwakeTimeMs: queue.awakeMs } : {}),
  });
  let server = await startDepotServer(config(0));
  const coapPort = server.coap.endpoint.transport.address().port;
  const httpBase = (s: RunningDepotServer) => {
    const a = s.api.server.address();
    return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  };
  const installer = new GatedInstaller();
  const fetcher = pullVia ? new HttpFetcher() : new CoapFetcher();
  // No in-state resume: a dropped download is a failed attempt the driver retries (what these tests follow).
  const obj9 = new SoftwareManagement({ dataDir: join(dir, 'device'), trust: testKeys().trust, installer, quotaBytes: 16 << 20, fetcher, resumeDelaysMs: [] });
  const device = new Lwm2mClient({ endpoint, serverUri: `coap://127.0.0.1:${coapPort}`, lifetime: 300, objects: [new SoftwareManagementAdapter(obj9)], ...(queue ? { queueMode: true, queueModeAwakeMs: queue.awakeMs } : {}) });
  const registered = device.waitFor('registered', 10_000);
  await device.start();
  await registered;
  const r: Rig = {
    server,
    base: httpBase(server),
    coapPort,
    dir,
    device,
    installer,
    fetcher,
    restart: async (between) => {
      await server.close();
      await between?.();
      server = await startDepotServer(config(coapPort));
      r.server = server;
      r.base = httpBase(server);
    },
    close: async () => {
      await device.stop({ deregister: false });
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return r;
}

function call(r: Rig, path: string, init: ApiRequest = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  return apiCall(r.base, TOKEN, path, init);
}

interface JobJson {
  id: string;
  state: string;
  instance: number | null;
  result: string | null;
  retry: string | null;
  message: string | null;
  percent: number;
  transitions: { at: string; from: string | null; to: string; detail: string | null }[];
}

async function waitForJob(r: Rig, id: string, done: (j: JobJson) => boolean, ms = 20_000): Promise<JobJson> {
  const until = Date.now() + ms;
  for (;;) {
    const { body } = await call(r, `/api/v1/installs/${id}`);
    const job = body as unknown as JobJson;
    if (done(job)) return job;
    if (Date.now() > until) throw new Error(`job ${id} stuck in ${job.state}: ${JSON.stringify(job.transitions)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

const finished = (j: JobJson) => ['succeeded', 'failed', 'cancelled'].includes(j.state);

test('seed spec §5.1.1 (pull): Package URI → DOWNLOAD STARTED → DELIVERED → Install → INSTALLED → Activate (§5.2), every transition recorded in order with timestamps', async () => {
  const r = await rig('inst-dev-ok');
  try {
    const pkg = makePackage({ name: 'app', version: '2.0.0', files: [{ path: 'bin/app', data: randomBytes(5000), mode: 0o755 }] });
    const added = await call(r, '/api/v1/packages', { bytes: pkg });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    const sha = added.body['sha256'] as string;
    assert.equal(added.body['name'], 'app');
    const created = await call(r, '/api/v1/devices/inst-dev-ok/installs', { json: { package: sha, activate: true } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const job = await waitForJob(r, created.body['id'] as string, finished);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.equal(job.percent, 100);
    assert.deepEqual(
      job.transitions.map((t) => [t.from, t.to]),
      [
        [null, 'queued'],
        ['queued', 'downloading'],
        ['downloading', 'delivered'],
        ['delivered', 'installing'],
        ['installing', 'installed'],
        ['installed', 'activating'],
        ['activating', 'succeeded'],
      ],
    );
    const times = job.transitions.map((t) => Date.parse(t.at));
    assert.ok(times.every((t, i) => Number.isFinite(t) && (i === 0 || t >= times[i - 1]!)), 'timestamps in order');
    assert.equal(r.installer.installs, 1);
    assert.deepEqual([...r.installer.inner.installed.entries()], [['app', { version: '2.0.0', active: true }]]);
    assert.match(r.fetcher.uris[0]!, new RegExp(`^coap://127\\.0\\.0\\.1:${r.coapPort}/pkg/[A-Za-z0-9_-]{22}$`));
    // The token was one-time: once delivered, the URI answers 4.04.
    const client = new CoapClient();
    try {
      assert.equal((await client.get(r.fetcher.uris[0]!)).codeText, '4.04');
    } finally {
      await client.close();
    }
    // Listing Object 9 on the device.
    const listed = await call(r, '/api/v1/devices/inst-dev-ok/software');
    assert.equal(listed.status, 200);
    const instances = listed.body['instances'] as { instanceId: number; name: string; version: string; state: string; activation: boolean }[];
    assert.deepEqual(instances.map((i) => [i.instanceId, i.name, i.version, i.state, i.activation]), [[job.instance, 'app', '2.0.0', 'INSTALLED', true]]);
    // Installing the same package again: the device already reports it INSTALLED, no second install.
    const again = await call(r, '/api/v1/devices/inst-dev-ok/installs', { json: { package: sha } });
    const second = await waitForJob(r, again.body['id'] as string, finished);
    assert.equal(second.state, 'succeeded');
    assert.match(second.transitions[1]!.detail!, /not installed again/);
    assert.equal(r.installer.installs, 1);
    const jobs = await call(r, '/api/v1/devices/inst-dev-ok/installs');
    assert.deepEqual((jobs.body['installs'] as { id: string }[]).map((j) => j.id).sort(), [job.id, second.id].sort());
  } finally {
    await r.close();
  }
});

test('seed spec §5.1.1 PKG Integrity Check KO: Update Result Integrity failure (6) → job failed, "do not retry the same bytes"', async () => {
  const r = await rig('inst-dev-bad');
  try {
    // Structurally valid, signed by a key the device does not trust: the catalog takes it, the device refuses it.
    const pkg = makePackage({ name: 'evil', version: '1.0.0', keys: otherKeys() });
    const added = await call(r, '/api/v1/packages', { bytes: pkg });
    assert.equal(added.status, 201);
    const created = await call(r, '/api/v1/devices/inst-dev-bad/installs', { json: { package: added.body['sha256'] } });
    const job = await waitForJob(r, created.body['id'] as string, finished);
    assert.equal(job.state, 'failed');
    assert.equal(job.result, 'INTEGRITY_FAILURE');
    assert.equal(job.retry, 'no-retry');
    assert.match(job.message!, /Do not retry the same bytes/);
    assert.equal(r.installer.installs, 0);
    assert.deepEqual(job.transitions.map((t) => t.to), ['queued', 'downloading', 'failed']);
    // A damaged file is refused by the catalog itself.
    const damaged = Buffer.from(pkg);
    damaged[damaged.length - 3] = damaged[damaged.length - 3]! ^ 0xff;
    const refused = await call(r, '/api/v1/packages', { bytes: damaged });
    assert.equal(refused.status, 400);
    assert.equal(refused.body['error'], 'CORRUPT_PACKAGE');
    assert.match(refused.body['message'] as string, /SHA-256/);
    const garbage = await call(r, '/api/v1/packages', { bytes: randomBytes(100) });
    assert.equal(garbage.status, 400);
  } finally {
    await r.close();
  }
});

test('seed spec §5.1.1 Install execution across a server restart mid-install: the job resumes from the device state, no second install', async () => {
  const r = await rig('inst-dev-restart');
  try {
    let open!: () => void;
    r.installer.gate = new Promise<void>((res) => (open = res));
    const entered = new Promise<void>((res) => (r.installer.entered = res));
    const pkg = makePackage({ name: 'svc', version: '3.1.0' });
    const added = await call(r, '/api/v1/packages', { bytes: pkg });
    const created = await call(r, '/api/v1/devices/inst-dev-restart/installs', { json: { package: added.body['sha256'] } });
    const id = created.body['id'] as string;
    await entered;
    await waitForJob(r, id, (j) => j.state === 'installing');
    const conflict = await call(r, '/api/v1/devices/inst-dev-restart/installs', { json: { package: added.body['sha256'] } });
    assert.equal(conflict.status, 409, 'one Object 9 job at a time per device');
    await r.restart();
    // A clean stop and start: the job says the server restarted (not "after a crash") while it waits.
    const resumed = await waitForJob(r, id, (j) => j.state === 'installing');
    assert.match(resumed.message ?? '', /^Installing \(server restarted; following the device again\)\.$/);
    open();
    const job = await waitForJob(r, id, finished);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.equal(r.installer.installs, 1, 'installed exactly once');
    assert.deepEqual(
      job.transitions.map((t) => t.to),
      ['queued', 'downloading', 'delivered', 'installing', 'installed', 'succeeded'],
    );
    // installing → installing is no transition: the restart is told in the next one.
    assert.match(job.transitions[4]!.detail ?? '', /^server restarted while installing; then device reports INSTALLED/);
  } finally {
    await r.close();
  }
});

test('depot install <device> <file>: uploads, installs (§5.1.1) and prints every transition and a progress bar; exit 0, or 1 with the operator message', async () => {
  const r = await rig('inst-dev-cli');
  try {
    const file = join(r.dir, 'tool.dpkg');
    writeFileSync(file, makePackage({ name: 'tool', version: '0.9.0' }));
    let out = '';
    let err = '';
    const io = { stdout: (t: string) => void (out += t), stderr: (t: string) => void (err += t), tty: false, fetch, sleep: (ms: number) => new Promise<void>((res) => setTimeout(res, ms)) };
    const code = await runInstallCommand(['inst-dev-cli', file, '--api', r.base, '--token', TOKEN, '--interval', '50'], io);
    assert.equal(code, 0, out + err);
    assert.match(out, /package "tool" "0.9.0" \([0-9a-f]{12}…\) in the catalog/);
    for (const to of ['queued', 'downloading', 'delivered', 'installing', 'installed', 'succeeded']) assert.match(out, new RegExp(`→ ${to}`));
    assert.match(out, /\[#{30}\] 100% succeeded/);
    assert.match(out, /installed on inst-dev-cli \(\/9\/\d+\)/);
    // A package the device does not trust: exit 1 and the Integrity failure advice.
    writeFileSync(file, makePackage({ name: 'bad', version: '1', keys: otherKeys() }));
    out = '';
    err = '';
    assert.equal(await runInstallCommand(['inst-dev-cli', file, '--api', r.base, '--token', TOKEN, '--interval', '50'], io), 1);
    assert.match(err, /install failed \(INTEGRITY_FAILURE\): .*Do not retry the same bytes/);
    assert.match(err, /retry: no-retry/);
    assert.equal(await runInstallCommand(['inst-dev-cli'], io), 2);
    assert.equal(await runInstallCommand(['inst-dev-cli', file, '--method', 'carrier-pigeon'], io), 2);
    assert.match(err, /--method is pull or push/);
    // --method reaches the job as the operator's choice.
    const pushed = makePackage({ name: 'cli-pushed', version: '1.0.0' });
    const pushedFile = join(r.dir, 'pushed.dpkg');
    writeFileSync(pushedFile, pushed);
    assert.equal(await runInstallCommand(['inst-dev-cli', pushedFile, '--method', 'push', '--api', r.base, '--token', TOKEN, '--interval', '50'], io), 0);
    const jobs = (await call(r, '/api/v1/devices/inst-dev-cli/installs')).body['installs'] as { method: string; methodChosenBy: string }[];
    assert.deepEqual([jobs[0]!.method, jobs[0]!.methodChosenBy], ['push', 'operator']);
    assert.equal(progressLine({ state: 'downloading', percent: 40, download: { bytes: 500_000, size: 1_000_000 } }, 10), '[####......]  40% downloading 0.50/1.0 MB');
  } finally {
    await r.close();
  }
});

test('TS Core §6.5 queue mode and seed spec §5.1.1: a job for a sleeping device waits in queued and runs at its next wake-up (Update)', async () => {
  const r = await rig('inst-dev-sleepy', { awakeMs: 1500 });
  try {
    const slept = r.device.waitFor('sleeping', 10_000);
    await slept;
    await new Promise((res) => setTimeout(res, 100));
    const added = await call(r, '/api/v1/packages', { bytes: makePackage({ name: 'nap', version: '1.0.0' }) });
    const created = await call(r, '/api/v1/devices/inst-dev-sleepy/installs', { json: { package: added.body['sha256'] } });
    const id = created.body['id'] as string;
    await new Promise((res) => setTimeout(res, 600));
    const waiting = await waitForJob(r, id, () => true);
    assert.equal(waiting.state, 'queued', 'nothing is sent to a sleeping device');
    assert.equal(r.installer.installs, 0);
    // A second job for the sleeping device, cancelled before it wakes: never sent.
    const cancelled = await call(r, `/api/v1/installs/${id}/cancel`, { method: 'POST' });
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body['state'], 'cancelled');
    const again = await call(r, '/api/v1/devices/inst-dev-sleepy/installs', { json: { package: added.body['sha256'] } });
    const id2 = again.body['id'] as string;
    r.device.requestUpdate();
    const job = await waitForJob(r, id2, finished);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.equal(r.installer.installs, 1);
  } finally {
    await r.close();
  }
});

test('seed spec §5.1.1 PKG Download Failed (Connection lost, 5): retried automatically with a new one-time URI; then §5.2 Deactivate/Activate and §5.1.1 Uninstall as jobs', async () => {
  const r = await rig('inst-dev-retry');
  try {
    r.fetcher.failAfter = 2048;
    r.fetcher.resumable = () => false;
    const added = await call(r, '/api/v1/packages', { bytes: makePackage({ name: 'flaky', version: '1.0.0', files: [{ path: 'data', data: randomBytes(8000) }] }) });
    const created = await call(r, '/api/v1/devices/inst-dev-retry/installs', { json: { package: added.body['sha256'] } });
    const job = await waitForJob(r, created.body['id'] as string, finished);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.deepEqual(job.transitions.map((t) => t.to), ['queued', 'downloading', 'downloading', 'delivered', 'installing', 'installed', 'succeeded']);
    assert.match(job.transitions[2]!.detail!, /CONNECTION_LOST; retry 2 of 3/);
    assert.equal(r.fetcher.uris.length, 2);
    assert.notEqual(r.fetcher.uris[0], r.fetcher.uris[1], 'a new token for the retry');
    const iid = job.instance!;
    for (const [kind, active] of [['activate', true], ['deactivate', false]] as const) {
      const op = await call(r, `/api/v1/devices/inst-dev-retry/software/${iid}/${kind}`, { method: 'POST' });
      assert.equal(op.status, 201, JSON.stringify(op.body));
      const done = await waitForJob(r, op.body['id'] as string, finished);
      assert.equal(done.state, 'succeeded', JSON.stringify(done));
      assert.equal(r.installer.inner.installed.get('flaky')?.active, active);
    }
    const un = await call(r, `/api/v1/devices/inst-dev-retry/software/${iid}/uninstall`, { method: 'POST' });
    const unDone = await waitForJob(r, un.body['id'] as string, finished);
    assert.equal(unDone.state, 'succeeded', JSON.stringify(unDone));
    assert.equal(r.installer.inner.installed.has('flaky'), false);
    // Activate in INITIAL: not allowed by the §5.2 table (4.05) → failed, with the reason.
    const bad = await call(r, `/api/v1/devices/inst-dev-retry/software/${iid}/activate`, { method: 'POST' });
    const badDone = await waitForJob(r, bad.body['id'] as string, finished);
    assert.equal(badDone.state, 'failed');
    assert.match(badDone.message!, /not allowed/);
  } finally {
    await r.close();
  }
});

test('seed spec §5.1.1 (push): Package written to /9/i/2 block-wise (Block1) → DELIVERED → Install → INSTALLED', async () => {
  const r = await rig('inst-dev-push');
  try {
    const added = await call(r, '/api/v1/packages', { bytes: makePackage({ name: 'pushed', version: '1.0.0', files: [{ path: 'data', data: randomBytes(7000) }] }) });
    const created = await call(r, '/api/v1/devices/inst-dev-push/installs', { json: { package: added.body['sha256'], method: 'push' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const job = await waitForJob(r, created.body['id'] as string, finished);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.deepEqual(job.transitions.map((t) => t.to), ['queued', 'downloading', 'delivered', 'installing', 'installed', 'succeeded']);
    assert.match(job.transitions[1]!.detail!, /Package pushed \(Block1\)/);
    assert.equal(r.fetcher.uris.length, 0, 'nothing pulled');
    assert.equal(r.installer.inner.installed.get('pushed')?.version, '1.0.0');
  } finally {
    await r.close();
  }
});

test('seed spec §5.1.1 Install execution: the device finishes installing while the server is down; after the restart the job sees INSTALLED and does not install again', async () => {
  const r = await rig('inst-dev-down');
  try {
    let open!: () => void;
    r.installer.gate = new Promise<void>((res) => (open = res));
    const pkg = makePackage({ name: 'late', version: '5.0.0' });
    const added = await call(r, '/api/v1/packages', { bytes: pkg });
    const created = await call(r, '/api/v1/devices/inst-dev-down/installs', { json: { package: added.body['sha256'], activate: true } });
    const id = created.body['id'] as string;
    await waitForJob(r, id, (j) => j.state === 'installing');
    await r.restart(async () => {
      open();
      const until = Date.now() + 5000;
      while (!r.installer.inner.installed.has('late') && Date.now() < until) await new Promise((res) => setTimeout(res, 20));
    });
    const job = await waitForJob(r, id, finished);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.equal(r.installer.installs, 1);
    assert.deepEqual(job.transitions.map((t) => t.to), ['queued', 'downloading', 'delivered', 'installing', 'installed', 'activating', 'succeeded']);
    const late = await call(r, `/api/v1/installs/${id}/cancel`, { method: 'POST' });
    assert.equal(late.status, 409, 'a finished job cannot be cancelled');
    assert.equal(r.installer.inner.installed.get('late')?.active, true);
  } finally {
    await r.close();
  }
});

test('seed spec §5.1.1 (pull over HTTP): Package URI http://…/pkg/<token>, retried after Connection lost, Range requests (206/416), 404 once delivered', async () => {
  const r = await rig('inst-dev-http', undefined, 'http');
  try {
    const fetcher = r.fetcher as HttpFetcher;
    fetcher.failAfter = 3000;
    const pkg = makePackage({ name: 'web', version: '1.0.0', files: [{ path: 'data', data: randomBytes(9000) }] });
    const added = await call(r, '/api/v1/packages', { bytes: pkg });
    const created = await call(r, '/api/v1/devices/inst-dev-http/installs', { json: { package: added.body['sha256'] } });
    const job = await waitForJob(r, created.body['id'] as string, finished);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.match(fetcher.uris[0]!, new RegExp(`^${r.base}/pkg/[A-Za-z0-9_-]{22}$`));
    assert.equal(r.installer.inner.installed.get('web')?.version, '1.0.0');
    assert.deepEqual(job.transitions.map((t) => t.to), ['queued', 'downloading', 'downloading', 'delivered', 'installing', 'installed', 'succeeded']);
    assert.equal((await fetch(fetcher.uris[1]!)).status, 404, 'token withdrawn after delivery');
    // Range requests on a live token (a job put in downloading by hand).
    const store = r.server.store.installJobs;
    await store.create({ id: 'manual', kind: 'install', endpoint: 'nobody', packageSha256: added.body['sha256'] as string, method: 'pull', activate: false }, Date.now());
    await store.transition('manual', 'downloading', null, { downloadToken: 'manual-token', tokenExpiresAt: Date.now() + 60_000 }, Date.now());
    const part = await fetch(`${r.base}/pkg/manual-token`, { headers: { range: 'bytes=100-' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 100-${pkg.length - 1}/${pkg.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), pkg.subarray(100));
    const whole = await fetch(`${r.base}/pkg/manual-token`);
    assert.equal(whole.status, 200);
    assert.deepEqual(Buffer.from(await whole.arrayBuffer()), pkg);
    assert.equal((await fetch(`${r.base}/pkg/manual-token`, { headers: { range: `bytes=${pkg.length}-` } })).status, 416);
  } finally {
    await r.close();
  }
});

test('seed spec §5.1.1 Install execution failed stays DELIVERED: a new job installs the delivered package again without a second download; a never-seen device is refused (404)', async () => {
  const r = await rig('inst-dev-again');
  try {
    const unknown = await call(r, '/api/v1/devices/no-such-device/installs', { json: { package: 'a'.repeat(64) } });
    assert.equal(unknown.status, 404);
    const added = await call(r, '/api/v1/packages', { bytes: makePackage({ name: 'again', version: '1.0.0' }) });
    const sha = added.body['sha256'] as string;
    const unknownDevice = await call(r, '/api/v1/devices/no-such-device/installs', { json: { package: sha } });
    assert.equal(unknownDevice.status, 404);
    assert.match(String(unknownDevice.body['message']), /never registered/);

    r.installer.inner.setBehaviour({ kind: 'fail', result: 'INSTALL_FAILURE' });
    const first = await call(r, '/api/v1/devices/inst-dev-again/installs', { json: { package: sha } });
    const failed = await waitForJob(r, first.body['id'] as string, finished);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.result, 'INSTALL_FAILURE');
    assert.equal(r.fetcher.uris.length, 1);

    r.installer.inner.setBehaviour({ kind: 'succeed' });
    const second = await call(r, '/api/v1/devices/inst-dev-again/installs', { json: { package: sha } });
    const done = await waitForJob(r, second.body['id'] as string, finished);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.instance, failed.instance);
    assert.deepEqual(done.transitions.map((t) => t.to), ['queued', 'delivered', 'installing', 'installed', 'succeeded']);
    assert.equal(r.fetcher.uris.length, 1, 'no second download');
    assert.equal(r.installer.installs, 2);
  } finally {
    await r.close();
  }
});

test('an update of installed software goes into its own instance: Uninstall with "1" (prepare for update), then the new version; Object 9 keeps one instance per component', async () => {
  const r = await rig('inst-dev-update');
  try {
    const v1 = await call(r, '/api/v1/packages', { bytes: makePackage({ name: 'updatable', version: '1.0.0' }) });
    const v2 = await call(r, '/api/v1/packages', { bytes: makePackage({ name: 'updatable', version: '2.0.0' }) });
    const first = await waitForJob(r, (await call(r, '/api/v1/devices/inst-dev-update/installs', { json: { package: v1.body['sha256'] } })).body['id'] as string, finished);
    assert.equal(first.state, 'succeeded');
    const second = await waitForJob(r, (await call(r, '/api/v1/devices/inst-dev-update/installs', { json: { package: v2.body['sha256'] } })).body['id'] as string, finished);
    assert.equal(second.state, 'succeeded', JSON.stringify(second.transitions));
    assert.equal(second.instance, first.instance);
    assert.match(second.transitions.find((t) => t.to === 'downloading')!.detail!, /^update of \/9\/\d+ from updatable 1\.0\.0 \(Uninstall for update: 2\.04\)/);
    const software = (await call(r, '/api/v1/devices/inst-dev-update/software')).body['instances'] as { name: string; version: string; state: string }[];
    assert.deepEqual(software.map((s) => [s.name, s.version, s.state]), [['updatable', '2.0.0', 'INSTALLED']]);
    assert.deepEqual([...r.installer.inner.installed.entries()].map(([n, v]) => [n, v.version]), [['updatable', '2.0.0']]);
  } finally {
    await r.close();
  }
});
