/**
 * Issue 12: Object 9 install jobs across `kill -9` of `depot serve` (real processes: the server,
 * `depot sim` devices over DTLS with per-device PSKs, SQLite and files on disk).
 *
 * - A pull install is killed mid-download (a slow simulated radio): after the restart the job's
 *   history says the server restarted after a crash during the download and how far it had got;
 *   the percentage does not fall back to 0; the device resumes with the same download link and
 *   the job completes (seed spec §5.1.1; RFC 7959 Block2 from the offset the device has).
 * - A job created for a device that is not registered says what it waits for and since when,
 *   and goes ahead once the device registers.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSqliteStore } from '../../src/store/index.js';
import { apiCall, type ApiRequest } from '../support/api-client.js';
import { PeerProcess, pollUntil } from '../support/peer-process.js';
import { makePackage, testKeys } from '../unit/lwm2m/object9-support.js';
import { freeTcpPort, freeUdpPort } from '../support/udp-probe.js';

const DEPOT_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TOKEN = 'crash-install-token-0123456789';
const PSK_KEY = 'crash-install-key';
/** The slow device's link: a 48 KiB package takes about 8 s. */
const LINK_BYTES_PER_SECOND = 6000;

interface JobJson {
  id: string;
  state: string;
  attempts: number;
  message: string | null;
  percent: number;
  retry: string | null;
  download: { bytes: number; size: number } | null;
  transitions: { at: string; from: string | null; to: string; detail: string | null }[];
}

let dir: string;
let dataDir: string;
let coapsPort: number;
let api: string;
let server: PeerProcess;
const processes: PeerProcess[] = [];

function call(path: string, init: ApiRequest = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  return apiCall(api, TOKEN, path, init);
}

const job = async (id: string): Promise<JobJson> => (await call(`/api/v1/installs/${id}`)).body as unknown as JobJson;

async function startServer(httpPort: number): Promise<PeerProcess> {
  const p = new PeerProcess(process.execPath, [DEPOT_CLI, 'serve', '--host', '127.0.0.1', '--coap-port', '0', '--coaps-port', String(coapsPort), '--http-port', String(httpPort), '--data-dir', dataDir], {
    env: { ...process.env, DEPOT_API_TOKEN: TOKEN },
  });
  processes.push(p);
  await p.waitForOutput(/depot: ready/, 60_000);
  return p;
}

/** A `depot sim` of one device (DTLS, short CoAP timers so a lost server is noticed in seconds). */
function startSim(prefix: string, behaviours: Record<string, unknown>): PeerProcess {
  const profile = join(dir, `${prefix}profile.json`);
  writeFileSync(profile, JSON.stringify({ trust: { [testKeys().keyId]: readFileSync(join(dir, 'trust.pem'), 'utf8') }, models: [{ manufacturer: 'Crash', model: prefix.slice(0, -1), firmwareVersion: '1', behaviours }] }));
  const sim = new PeerProcess(process.execPath, [
    DEPOT_CLI, 'sim', '--server', `coaps://127.0.0.1:${coapsPort}`, '--count', '1', '--profile', profile, '--endpoint-prefix', prefix,
    '--psk-identity', '{ep}', '--psk-key', PSK_KEY, '--host', '127.0.0.1', '--ramp', '0', '--data-dir', join(dir, 'sim', prefix),
    '--lifetime', '60', '--ack-timeout', '500', '--max-retransmit', '2', '--retry', '500', '--retry-max', '4000',
  ]);
  processes.push(sim);
  return sim;
}

async function registered(endpoint: string): Promise<void> {
  await pollUntil(async () => {
    const r = await call(`/api/v1/devices/${endpoint}`);
    return r.status === 200 && (r.body['registration'] as { state: string }).state === 'registered';
  }, 60_000, `${endpoint} registered`, 100);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-crash-install-'));
  dataDir = join(dir, 'server');
  writeFileSync(join(dir, 'trust.pem'), testKeys().publicKey.export({ type: 'spki', format: 'pem' }));
  const store = openSqliteStore({ dataDir });
  for (const ep of ['slow-00001', 'late-00001']) await store.credentials.bind(ep, { kind: 'psk', identity: ep, key: Buffer.from(PSK_KEY) }, Date.now());
  store.close();
  coapsPort = await freeUdpPort();
  const httpPort = await freeTcpPort();
  api = `http://127.0.0.1:${httpPort}`;
  server = await startServer(httpPort);
});

after(async () => {
  for (const p of processes.reverse()) await p.stop(3000).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

void test('kill -9 of depot serve in the middle of a download: the job says the server restarted after a crash at N %, keeps its progress and completes with the same download link', async () => {
  const sim = startSim('slow-', { installer: 'sim-good', downloadBytesPerSecond: LINK_BYTES_PER_SECOND });
  await registered('slow-00001');
  const added = await call('/api/v1/packages', { bytes: makePackage({ name: 'big-app', version: '1.0.0', files: [{ path: 'blob', data: 'crash'.repeat(48 * 1024 / 5) }] }) });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  const created = await call('/api/v1/devices/slow-00001/installs', { json: { package: added.body['sha256'] } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body['id'] as string;

  // Near half-way through the download ...
  const midway = await pollUntil(async () => {
    const j = await job(id);
    return j.state === 'downloading' && j.download && j.download.bytes >= j.download.size * 0.4 ? j : undefined;
  }, 60_000, 'the download to pass 40 %', 100);
  const size = midway.download!.size;
  const bytesBefore = midway.download!.bytes;
  // ... (progress reaches the store at most a second late) ...
  await new Promise((resolve) => setTimeout(resolve, 1200));
  const atKill = (await job(id)).download!.bytes;
  assert.ok(atKill < size, 'still downloading when the server is killed');
  // ... the server dies without any chance to write anything.
  process.kill(server.child.pid!, 'SIGKILL');
  await server.waitForExit(10_000);
  server = await startServer(Number(new URL(api).port));

  const resumed = await job(id);
  assert.equal(resumed.state, 'downloading', JSON.stringify(resumed));
  const note = resumed.transitions.at(-1)!;
  assert.equal(note.from, 'downloading');
  assert.equal(note.to, 'downloading');
  const m = /^server restarted after a crash \(the process started .* did not shut down\) during download at (\d+) % \((\d+) of (\d+) bytes, last served .*\); resumed: the device continues with the same download link$/.exec(note.detail ?? '');
  assert.ok(m, `the history says what happened: ${note.detail}`);
  const [percentNoted, bytesNoted] = [Number(m[1]), Number(m[2])];
  assert.ok(bytesNoted >= bytesBefore && bytesNoted <= size, `progress at the crash kept (${bytesNoted} ≥ ${bytesBefore})`);
  assert.equal(percentNoted, Math.floor((bytesNoted / size) * 100));
  assert.ok(percentNoted >= 40, `not back to 0 %: ${percentNoted} %`);
  assert.ok(resumed.download && resumed.download.bytes >= bytesNoted, 'the job view keeps the download progress');
  assert.ok(resumed.percent > 0, `percent ${resumed.percent}`);
  assert.match(resumed.message ?? '', new RegExp(`^Downloading \\(resumed at ${percentNoted} % after a server restart\\)\\.$|^Waiting for device "slow-00001"`));

  const done = await pollUntil(async () => {
    const j = await job(id);
    return ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
  }, 90_000, 'the job to end', 200);
  assert.equal(done.state, 'succeeded', JSON.stringify(done, null, 1) + '\nsim output:\n' + sim.output.slice(-2000));
  assert.equal(done.attempts, 1, `one download, resumed with the same link: ${JSON.stringify(done.transitions)}`);
  assert.deepEqual(done.transitions.map((t) => t.to), ['queued', 'downloading', 'downloading', 'delivered', 'installing', 'installed', 'succeeded']);
  console.log(`crash-install: download killed at ${percentNoted} % (${bytesNoted} of ${size} bytes); resumed and installed after the restart`);
});

void test('a job for a device that is not registered says what it waits for and since when, and goes ahead when the device registers', async () => {
  // The device registers once (Depot knows it), then leaves (its sim de-registers on SIGTERM).
  const first = startSim('late-', { installer: 'sim-good' });
  await registered('late-00001');
  await first.stop(10_000);
  await pollUntil(async () => (await call('/api/v1/devices/late-00001')).status === 404, 20_000, 'late-00001 de-registered', 100);

  const added = await call('/api/v1/packages', { bytes: makePackage({ name: 'late-app', version: '2.0.0' }) });
  const created = await call('/api/v1/devices/late-00001/installs', { json: { package: added.body['sha256'] } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body['id'] as string;
  const waiting = await pollUntil(async () => {
    const j = await job(id);
    return j.message?.startsWith('Waiting for') ? j : undefined;
  }, 20_000, 'a waiting message', 100);
  assert.equal(waiting.state, 'queued');
  assert.match(waiting.message!, /^Waiting for device "late-00001" to register \(not registered; last seen \d{4}-\d\d-\d\dT[\d:.]+Z\); waiting since \d{4}-\d\d-\d\dT[\d:.]+Z\.$/);
  const since = /waiting since (\S+)\.$/.exec(waiting.message!)![1]!;
  assert.ok(Math.abs(Date.parse(since) - Date.parse((created.body['createdAt'] as string | undefined) ?? since)) < 1000, 'since the job was created');

  startSim('late-', { installer: 'sim-good' });
  const done = await pollUntil(async () => {
    const j = await job(id);
    return ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
  }, 60_000, 'the job to end', 200);
  assert.equal(done.state, 'succeeded', JSON.stringify(done, null, 1));
  assert.doesNotMatch(done.message ?? '', /^Waiting/);
});
