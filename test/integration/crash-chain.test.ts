/**
 * Issue 16, durability: `kill -9` of `depot serve` in the middle of install chains, several
 * times at random points (real processes: the server, a `depot sim` fleet over DTLS with
 * per-device PSKs, SQLite on disk). Devices with Object 9 are installed by the chain's Object 9
 * method; devices without it are skipped to Mark for Installation. After every restart each
 * chain job resumes exactly once: one attempt per method, never a second running attempt, no
 * device installs twice (one Object 9 job per device, one instance of the package on it).
 *
 * The kill points are drawn from a seed (printed; DEPOT_CRASH_SEED reruns one).
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom } from '../../src/util/seeded-random.js';
import { openSqliteStore } from '../../src/store/index.js';
import { apiCall, type ApiRequest } from '../support/api-client.js';
import { PeerProcess, pollUntil } from '../support/peer-process.js';
import { makePackage, testKeys } from '../unit/lwm2m/object9-support.js';
import { freeTcpPort, freeUdpPort } from '../support/udp-probe.js';

const DEPOT_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TOKEN = 'crash-chain-token-0123456789';
const PSK_KEY = 'crash-chain-key';
const O9_DEVICES = 4;
const BARE_DEVICES = 2;
const ENDPOINTS = Array.from({ length: O9_DEVICES + BARE_DEVICES }, (_, i) => `chain-${String(i + 1).padStart(5, '0')}`);
const KILLS = 3;

interface AttemptJson {
  method: string;
  outcome: string;
  message: string | null;
}
interface ChainJson {
  id: string;
  endpoint: string;
  state: string;
  attempts: AttemptJson[];
}

let dir: string;
let dataDir: string;
let coapsPort: number;
let httpPort: number;
let api: string;
let server: PeerProcess;
const processes: PeerProcess[] = [];

const call = (path: string, init: ApiRequest = {}) => apiCall(api, TOKEN, path, init);

async function startServer(): Promise<PeerProcess> {
  const p = new PeerProcess(process.execPath, [DEPOT_CLI, 'serve', '--host', '127.0.0.1', '--coap-port', '0', '--coaps-port', String(coapsPort), '--http-port', String(httpPort), '--data-dir', dataDir], {
    env: { ...process.env, DEPOT_API_TOKEN: TOKEN },
  });
  processes.push(p);
  await p.waitForOutput(/depot: ready/, 60_000);
  return p;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-crash-chain-'));
  dataDir = join(dir, 'server');
  writeFileSync(join(dir, 'trust.pem'), testKeys().publicKey.export({ type: 'spki', format: 'pem' }));
  const store = openSqliteStore({ dataDir });
  for (const ep of ENDPOINTS) await store.credentials.bind(ep, { kind: 'psk', identity: ep, key: Buffer.from(PSK_KEY) }, Date.now());
  store.close();
  coapsPort = await freeUdpPort();
  httpPort = await freeTcpPort();
  api = `http://127.0.0.1:${httpPort}`;
  server = await startServer();
});

after(async () => {
  for (const p of processes.reverse()) await p.stop(3000).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

void test('kill -9 of depot serve at random points of install chains: every job resumes exactly once, no device installs twice', async () => {
  const seed = Number(process.env.DEPOT_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const random = seededRandom(seed);
  const profile = join(dir, 'profile.json');
  writeFileSync(
    profile,
    JSON.stringify({
      trust: { [testKeys().keyId]: readFileSync(join(dir, 'trust.pem'), 'utf8') },
      models: [
        // A slow link: a download takes seconds, so kills land in it as well as around it.
        { manufacturer: 'Crash', model: 'O9', firmwareVersion: '1', count: O9_DEVICES, behaviours: { installer: 'sim-good', downloadBytesPerSecond: 12_000 } },
        { manufacturer: 'Crash', model: 'Bare', firmwareVersion: '1', count: BARE_DEVICES },
      ],
    }),
  );
  const sim = new PeerProcess(process.execPath, [
    DEPOT_CLI, 'sim', '--server', `coaps://127.0.0.1:${coapsPort}`, '--count', String(ENDPOINTS.length), '--profile', profile, '--endpoint-prefix', 'chain-',
    '--psk-identity', '{ep}', '--psk-key', PSK_KEY, '--host', '127.0.0.1', '--ramp', '0', '--data-dir', join(dir, 'sim'),
    '--lifetime', '60', '--ack-timeout', '500', '--max-retransmit', '2', '--retry', '500', '--retry-max', '4000',
  ]);
  processes.push(sim);
  const models = new Map<string, string>();
  for (const ep of ENDPOINTS) {
    await pollUntil(async () => {
      const r = await call(`/api/v1/devices/${ep}`);
      const facts = r.body['facts'] as { modelNumber: string | null } | null;
      if (r.status !== 200 || !facts?.modelNumber) return undefined;
      models.set(ep, facts.modelNumber);
      return true;
    }, 60_000, `${ep} registered with its facts`, 100);
  }
  assert.equal([...models.values()].filter((m) => m === 'O9').length, O9_DEVICES);

  const added = await call('/api/v1/packages', { bytes: makePackage({ name: 'chain-app', version: '3.0.0', files: [{ path: 'blob', data: 'chain'.repeat(24 * 1024 / 5) }] }) });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  const sha = added.body['sha256'] as string;
  const jobs = new Map<string, string>();
  for (const ep of ENDPOINTS) {
    const created = await call(`/api/v1/devices/${ep}/install-chains`, { json: { package: sha } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    jobs.set(ep, created.body['id'] as string);
  }

  const points: number[] = [];
  for (let k = 0; k < KILLS; k++) {
    const wait = Math.floor(random() * 3000);
    points.push(wait);
    await new Promise((resolve) => setTimeout(resolve, wait));
    process.kill(server.child.pid!, 'SIGKILL');
    await server.waitForExit(10_000);
    server = await startServer();
    // Right after each restart: never two running attempts of one job.
    for (const id of jobs.values()) {
      const j = (await call(`/api/v1/install-chains/${id}`)).body as unknown as ChainJson;
      assert.ok(j.attempts.filter((a) => a.outcome === 'running').length <= 1, JSON.stringify(j));
    }
  }
  console.log(`crash-chain: seed ${seed}, killed after ${points.join(' ms, ')} ms`);

  for (const [ep, id] of jobs) {
    const want = models.get(ep) === 'O9' ? 'succeeded' : 'running';
    const j = await pollUntil(async () => {
      const v = (await call(`/api/v1/install-chains/${id}`)).body as unknown as ChainJson;
      return v.state === want && (want !== 'running' || v.attempts.at(-1)?.method === 'mark') ? v : undefined;
    }, 120_000, `chain job of ${ep} to be ${want} (seed ${seed})`, 200);
    // Exactly once: one attempt per method, in the chain's order.
    if (want === 'succeeded') {
      assert.deepEqual(j.attempts.map((a) => [a.method, a.outcome]), [['object9', 'succeeded']], `${ep} (seed ${seed}): ${JSON.stringify(j)}`);
      const o9 = (await call(`/api/v1/devices/${ep}/installs`)).body['installs'] as { id: string; state: string }[];
      assert.deepEqual(o9.map((x) => x.state), ['succeeded'], `${ep}: one Object 9 job, never a second install (seed ${seed}): ${JSON.stringify(o9)}`);
      const software = await pollUntil(async () => {
        const r = await call(`/api/v1/devices/${ep}/software`);
        return r.status === 200 ? (r.body['instances'] as { name: string | null; version: string | null }[]) : undefined;
      }, 30_000, `${ep} software read`, 200);
      assert.deepEqual(software.filter((s) => s.name === 'chain-app').map((s) => s.version), ['3.0.0'], `${ep}: the package once on the device (seed ${seed})`);
    } else {
      assert.deepEqual(j.attempts.map((a) => [a.method, a.outcome]), [['object9', 'skipped'], ['scomo', 'skipped'], ['mark', 'running']], `${ep} (seed ${seed}): ${JSON.stringify(j)}`);
      const o9 = (await call(`/api/v1/devices/${ep}/installs`)).body['installs'] as unknown[];
      assert.equal(o9.length, 0, `${ep}: nothing sent to a device without Object 9`);
    }
  }
  // The learned table counts each successful install once (not once per resume).
  const learned = await call('/api/v1/install-methods/Crash/O9');
  assert.deepEqual((learned.body['stats'] as { method: string; successes: number; failures: number }[]).map((s) => [s.method, s.successes, s.failures]), [['object9', O9_DEVICES, 0]], `seed ${seed}`);
});
