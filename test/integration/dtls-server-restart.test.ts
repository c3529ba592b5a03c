/**
 * A DTLS device outlives a graceful restart of `depot serve`. The restarted server has no DTLS
 * association with the device (RFC 6347 §4.2.8: state is per process); here the old server closed
 * with close_notify, so the device's association is already gone and its next request starts a
 * new handshake, then carries on with the registration the store kept (LwM2M TS Core 1.1 §6.2.2:
 * an Update that fails makes the client Register again).
 *
 * After `kill -9` no close_notify is sent: the device still holds the association and its Update
 * (and then its Register) would go out on it for ever. That case — the device drops the
 * association after an unanswered request, or on the restarted server's alert — runs with real
 * processes in crash-devices.test.ts.
 */
import { after, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDepotServer, type RunningDepotServer } from '../../src/app/server.js';
import { Lwm2mClient } from '../../src/lwm2m/client/engine.js';

const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function serve(dataDir: string, coapsPort: number): Promise<RunningDepotServer> {
  return startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort, httpPort: 0, dataDir, allowUnsecured: false, apiToken: 'token' });
}

/** The type of the first of these events the client emits within `ms` (waitFor takes one type). */
function firstOf(client: Lwm2mClient, types: string[], ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const off = client.on((event) => {
      if (!types.includes(event.type)) return;
      off();
      clearTimeout(timer);
      resolve(event.type);
    });
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${types.join('/')} event within ${ms} ms`));
    }, ms);
  });
}

void test('a DTLS device re-handshakes after depot serve restarts and keeps its registration', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'depot-dtls-restart-'));
  dirs.push(dataDir);
  let server = await serve(dataDir, 0);
  const port = server.coaps!.endpoint.transport.address().port;
  await server.store.credentials.bind('restart-dev', { kind: 'psk', identity: 'psk-restart-dev', key: Buffer.from('restart-key-1') }, Date.now());

  const client = new Lwm2mClient({
    endpoint: 'restart-dev',
    serverUri: `coaps://127.0.0.1:${port}`,
    psk: { identity: 'psk-restart-dev', key: Buffer.from('restart-key-1') },
    host: '127.0.0.1',
    lifetime: 300,
    requestTimeoutMs: 2000,
    retry: { initialMs: 200, maxMs: 1000 },
  });
  cleanups.push(() => client.stop({ deregister: false }));
  const registered = client.waitFor('registered', 10_000);
  await client.start();
  await registered;
  const before = await server.store.registrations.getByEndpoint('restart-dev');
  assert.ok(before, 'registered before the restart');

  await server.close();
  server = await serve(dataDir, port);
  cleanups.push(() => server.close());
  assert.equal((await server.store.registrations.getByEndpoint('restart-dev'))?.id, before.id, 'the store kept the registration');

  // The device's next Update goes out on its old association, which the new process does not know.
  const recovered = firstOf(client, ['updated', 'registered'], 20_000);
  client.requestUpdate();
  const how = await recovered;
  const after = await server.store.registrations.getByEndpoint('restart-dev');
  assert.ok(after && after.expiresAt > Date.now(), `registration live again (${how})`);
  assert.deepEqual(after.identity, { kind: 'psk', value: 'psk-restart-dev' });
  // The new server reads from the device over the new association: the path back works too.
  const read = await server.lwm2m.read('restart-dev', '/3/0/0');
  assert.equal(read.status, 'done');
  if (read.status === 'done') assert.equal(read.response.code, '2.05');
});
