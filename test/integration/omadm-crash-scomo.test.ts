/**
 * A SCOMO install across `kill -9` of `depot serve` (real processes: the server with its OMA DM
 * HTTPS endpoint, SQLite and files on disk; a simulated phone with a slow radio in this process).
 *
 * The phone has accepted DownloadInstall (Status 202) and is half-way through fetching PkgURL
 * when the server dies without writing anything. After the restart (same ports) the job is
 * still executing with the same one-time link; the phone resumes the download with Range from
 * the bytes it holds, installs, reports by Generic Alert, and Depot reads the Deployed
 * inventory: the job succeeds, the Exec went out once, the phone installed once.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CertificateAuthority } from '../../src/pki/ca.js';
import { DmPhone, httpTransport, phoneTree } from '../../src/sim/omadm/phone.js';
import { ScomoClient } from '../../src/sim/omadm/scomo-client.js';
import { apiCall, type ApiRequest } from '../support/api-client.js';
import { PeerProcess, pollUntil } from '../support/peer-process.js';
import { makePackage } from '../unit/lwm2m/object9-support.js';
import { freeTcpPort } from '../support/udp-probe.js';

const DEPOT_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TOKEN = 'crash-scomo-token-0123456789';

let dir: string;
let dataDir: string;
let api: string;
let dmPort: number;
let caPem: string;
let server: PeerProcess;
const processes: PeerProcess[] = [];

const call = (path: string, init: ApiRequest = {}) => apiCall(api, TOKEN, path, init);

async function startServer(httpPort: number): Promise<PeerProcess> {
  const p = new PeerProcess(process.execPath, [
    DEPOT_CLI, 'serve', '--host', '127.0.0.1', '--public-host', '127.0.0.1', '--coap-port', '0', '--coaps-port', '0', '--allow-unsecured',
    '--http-port', String(httpPort), '--omadm-port', String(dmPort), '--data-dir', dataDir,
  ], { env: { ...process.env, DEPOT_API_TOKEN: TOKEN } });
  processes.push(p);
  await p.waitForOutput(/depot: ready/, 60_000);
  return p;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-crash-scomo-'));
  dataDir = join(dir, 'server');
  caPem = (await CertificateAuthority.init(join(dataDir, 'ca'))).exportRoot('pem');
  dmPort = await freeTcpPort();
  const httpPort = await freeTcpPort();
  api = `http://127.0.0.1:${httpPort}`;
  server = await startServer(httpPort);
});

after(async () => {
  for (const p of processes.reverse()) await p.stop(3000).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

void test('kill -9 of depot serve while the phone downloads a SCOMO package: after the restart the download resumes with Range and the install finishes once', async () => {
  const dmUrl = `https://127.0.0.1:${dmPort}/dm`;
  const deviceId = 'IMEI:352000000000001';
  assert.equal((await call('/api/v1/omadm/accounts', { json: { deviceId, clientPassword: 'crash-phone-pw' } })).status, 201);
  const pkg = makePackage({ name: 'big-app', version: '1.0.0', files: [{ path: 'blob', data: randomBytes(48 * 1024) }] });
  const added = await call('/api/v1/packages', { bytes: pkg });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  const created = await call(`/api/v1/omadm/devices/${encodeURIComponent(deviceId)}/installs`, { json: { packageSha256: added.body['sha256'] } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body['id'] as string;

  const phone = new DmPhone({ deviceId, username: deviceId, password: 'crash-phone-pw', encoding: 'wbxml', auth: 'md5', tree: phoneTree(deviceId, 1) }, httpTransport(caPem));
  // About 8 s for the package, in 4 KiB Range pieces; retries every 250 ms (up to 2 s) ride out the restart.
  const scomo = new ScomoClient(phone, { ca: caPem, bytesPerSecond: 6000, chunkBytes: 4096, retryDelayMs: 250 });
  assert.equal((await phone.runSession(dmUrl)).ended, 'completed');
  const executing = await call(`/api/v1/omadm/installs/${id}`);
  assert.equal(executing.body['state'], 'executing');

  await pollUntil(() => (scomo.received >= pkg.length * 0.3 ? true : undefined), 60_000, 'the download to pass 30 %', 50);
  assert.ok(scomo.received < pkg.length, `still downloading when the server is killed (${scomo.received} of ${pkg.length}, ${JSON.stringify(scomo.rangeStarts)})`);
  process.kill(server.child.pid!, 'SIGKILL');
  await server.waitForExit(10_000);
  server = await startServer(Number(new URL(api).port));

  const afterRestart = await call(`/api/v1/omadm/installs/${id}`);
  assert.equal(afterRestart.body['state'], 'executing', 'the job survived: the device has the operation');
  await scomo.idle();
  assert.ok(scomo.rangeStarts.some((start) => start > 0), `the download resumed from an offset (Range): ${JSON.stringify(scomo.rangeStarts)}`);
  assert.equal(phone.pendingAlerts, 1);
  for (let i = 0; i < 3; i++) {
    assert.equal((await phone.runSession(dmUrl)).ended, 'completed');
    const j = await call(`/api/v1/omadm/installs/${id}`);
    if (j.body['state'] === 'succeeded') break;
  }
  const done = (await call(`/api/v1/omadm/installs/${id}`)).body;
  assert.equal(done['state'], 'succeeded', JSON.stringify(done));
  assert.equal(done['sends'], 1, 'the Exec went out once');
  assert.equal(scomo.installs, 1, 'installed once');
  // Another session after the end changes nothing.
  const quiet = await phone.runSession(dmUrl);
  assert.equal(quiet.commands.filter((c) => c.kind === 'Sequence').length, 0);
  assert.equal(scomo.installs, 1);
});
