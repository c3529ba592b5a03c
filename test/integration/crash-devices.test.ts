/**
 * Issue 12: a DTLS fleet outlives `kill -9` of `depot serve`. Real processes: `depot serve` on a
 * temporary data dir with fixed ports, a `depot sim` fleet (DTLS, per-device PSKs), SIGKILL of the
 * server (no close_notify: the devices keep their old associations), a restart on the same data
 * dir and ports. Every device must notice (its requests go unanswered after their retransmissions,
 * or the restarted server's alert tells it), handshake again and register — within one
 * retransmission cycle plus one retry back-off of the server's return (the sim's CoAP timers are
 * shortened; the logic is the same as with RFC 7252's defaults).
 */
import { after, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { derivedTimes, defaultTransmissionParameters } from '../../src/coap/params.js';
import { openSqliteStore } from '../../src/store/index.js';
import { apiCall } from '../support/api-client.js';
import { PeerProcess, pollUntil } from '../support/peer-process.js';
import { freeTcpPort, freeUdpPort } from '../support/udp-probe.js';

const DEPOT_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TOKEN = 'crash-devices-token-0123456789';
/** Fleet size; DEPOT_CRASH_DEVICES=500 measures a bigger fleet by hand (the suite keeps it small). */
const DEVICES = Number(process.env['DEPOT_CRASH_DEVICES'] ?? 12);
const PSK_KEY = 'crash-fleet-key';
/** The sim's timers: a lifetime of 20 s means an Update every 10 s (TS Core 1.1 §6.2.2: before expiry). */
const SIM = { lifetimeSec: 20, ackTimeoutMs: 500, maxRetransmit: 2, retryMs: 500, retryMaxMs: 4000 };
/** MAX_TRANSMIT_WAIT (RFC 7252 §4.8.2) with the sim's parameters: how long one request may go unanswered. */
const CYCLE_MS = derivedTimes({ ...defaultTransmissionParameters, ackTimeout: SIM.ackTimeoutMs, maxRetransmit: SIM.maxRetransmit }).maxTransmitWait;

const processes: PeerProcess[] = [];
const dirs: string[] = [];

after(async () => {
  for (const p of processes.reverse()) await p.stop(3000).catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface DeviceJson {
  endpoint: string;
  registration: { state: string; lastUpdateAt: string; registeredAt: string };
}

function startServer(dataDir: string, coapsPort: number, httpPort: number): PeerProcess {
  const server = new PeerProcess(process.execPath, [DEPOT_CLI, 'serve', '--host', '127.0.0.1', '--coap-port', '0', '--coaps-port', String(coapsPort), '--http-port', String(httpPort), '--data-dir', dataDir], {
    env: { ...process.env, DEPOT_API_TOKEN: TOKEN },
  });
  processes.push(server);
  return server;
}

void test('kill -9 of depot serve: every DTLS device of a depot sim fleet handshakes again and is registered within one retransmission cycle of the restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-crash-devices-'));
  dirs.push(dir);
  const dataDir = join(dir, 'server');
  const endpoints = Array.from({ length: DEVICES }, (_, i) => `crash-${String(i + 1).padStart(5, '0')}`);
  // The devices' PSKs, bound in the server's SQLite file as `depot credentials add-psk` would.
  const store = openSqliteStore({ dataDir });
  for (const ep of endpoints) await store.credentials.bind(ep, { kind: 'psk', identity: ep, key: Buffer.from(PSK_KEY) }, Date.now());
  store.close();

  const [coapsPort, httpPort] = [await freeUdpPort(), await freeTcpPort()];
  const api = `http://127.0.0.1:${httpPort}`;
  const devices = async (): Promise<DeviceJson[]> => ((await apiCall(api, TOKEN, `/api/v1/devices?limit=1000`)).body['devices'] as DeviceJson[] | undefined) ?? [];
  let server = startServer(dataDir, coapsPort, httpPort);
  await server.waitForOutput(/depot: ready/, 60_000);

  writeFileSync(join(dir, 'profile.json'), JSON.stringify({ models: [{ manufacturer: 'Crash', model: 'Survivor', firmwareVersion: '1' }] }));
  const sim = new PeerProcess(process.execPath, [
    DEPOT_CLI, 'sim', '--server', `coaps://127.0.0.1:${coapsPort}`, '--count', String(DEVICES), '--profile', join(dir, 'profile.json'),
    '--endpoint-prefix', 'crash-', '--psk-identity', '{ep}', '--psk-key', PSK_KEY, '--host', '127.0.0.1', '--ramp', '2000',
    '--lifetime', String(SIM.lifetimeSec), '--ack-timeout', String(SIM.ackTimeoutMs), '--max-retransmit', String(SIM.maxRetransmit),
    '--retry', String(SIM.retryMs), '--retry-max', String(SIM.retryMaxMs),
  ]);
  processes.push(sim);
  await pollUntil(async () => (await devices()).filter((d) => d.registration.state === 'registered').length === DEVICES, 60_000, `${DEVICES} devices registered`, 200);

  // No close_notify, no graceful anything: the devices keep their associations.
  process.kill(server.child.pid!, 'SIGKILL');
  const exit = await server.waitForExit(10_000);
  assert.equal(exit.signal, 'SIGKILL');
  // Down for longer than an Update interval plus a retransmission cycle: every device's Update
  // goes unanswered, and it is retrying its registration when the server returns.
  await new Promise((resolve) => setTimeout(resolve, (SIM.lifetimeSec / 2) * 1000 + CYCLE_MS + 1000));

  server = startServer(dataDir, coapsPort, httpPort);
  await server.waitForOutput(/depot: ready/, 60_000);
  const upAt = Date.now();
  // A device is back when the restarted server has a registration (or Update) of it made after
  // the restart. (ISO times of the store have ms precision; compare against the second before.)
  const back = new Map<string, number>();
  const bound = 2 * (CYCLE_MS + SIM.retryMaxMs) + 5000;
  try {
    await pollUntil(async () => {
      for (const d of await devices()) {
        if (!back.has(d.endpoint) && d.registration.state === 'registered' && Date.parse(d.registration.lastUpdateAt) >= upAt - 1000) back.set(d.endpoint, Date.now() - upAt);
      }
      return back.size === DEVICES;
    }, bound, 'every device registered again', 100);
  } catch (error) {
    const missing = endpoints.filter((e) => !back.has(e));
    throw new Error(`${(error as Error).message}: ${back.size}/${DEVICES} back; missing ${missing.join(', ')}\nsim output (tail):\n${sim.output.slice(-3000)}`, { cause: error });
  }
  const times = [...back.values()].sort((a, b) => a - b);
  const report = (what: string, times: number[]): string => `${what}: all ${DEVICES} DTLS devices registered again ${(times.at(-1)! / 1000).toFixed(1)} s after depot serve was ready (median ${(times[Math.floor(times.length / 2)]! / 1000).toFixed(1)} s)`;
  const last = times.at(-1)!;
  console.log(`${report('crash-devices, server down 16 s', times)}; one retransmission cycle is ${(CYCLE_MS / 1000).toFixed(2)} s, retry back-off at most ${SIM.retryMaxMs / 1000} s`);
  assert.ok(last <= CYCLE_MS + SIM.retryMaxMs + 3000, `every device back within one retransmission cycle and one back-off of the restart (last after ${last} ms)`);
  // The restarted server can reach each device over its new association (the path back works).
  const read = await apiCall(api, TOKEN, `/api/v1/devices/${endpoints[0]}/read`, { json: { path: '/3/0/1' } });
  assert.equal(read.status, 200, JSON.stringify(read.body));
  assert.match(JSON.stringify(read.body), /Survivor/);

  // Again, but back at once: most devices had no request in flight and still hold the association
  // the new process does not know. Their next Update is answered with the server's alert, and they
  // handshake again without waiting for their retransmissions to run out.
  const before = sim.output.length;
  process.kill(server.child.pid!, 'SIGKILL');
  await server.waitForExit(10_000);
  server = startServer(dataDir, coapsPort, httpPort);
  await server.waitForOutput(/depot: ready/, 60_000);
  const upAgainAt = Date.now();
  const backAgain = new Map<string, number>();
  await pollUntil(async () => {
    for (const d of await devices()) {
      if (!backAgain.has(d.endpoint) && d.registration.state === 'registered' && Date.parse(d.registration.lastUpdateAt) >= upAgainAt - 1000) backAgain.set(d.endpoint, Date.now() - upAgainAt);
    }
    return backAgain.size === DEVICES;
  }, (SIM.lifetimeSec / 2) * 1000 + 2 * (CYCLE_MS + SIM.retryMaxMs) + 5000, 'every device registered again after the quick restart', 100);
  const againTimes = [...backAgain.values()].sort((a, b) => a - b);
  console.log(`${report('crash-devices, quick restart', againTimes)}; their next Update came at most ${SIM.lifetimeSec / 2} s after the restart`);
  const told = sim.output.slice(before).match(/does not know this DTLS association/g)?.length ?? 0;
  assert.ok(told > 0, `devices were told by the restarted server's alert:\n${sim.output.slice(before)}`);
  console.log(`crash-devices: ${told} of ${DEVICES} devices learned of the lost association from the server's alert`);
});
