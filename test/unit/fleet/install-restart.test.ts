/**
 * InstallDriver after a restart and while it waits for a device (an in-process Depot on a real
 * SQLite file and UDP): what the job's history and message say. The kill -9 of a real server
 * process is in test/integration/crash-install.test.ts; here the store is set up as a killed
 * process leaves it (run marker, saved progress, a job in downloading) and as a clean stop does.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDepotServer, type RunningDepotServer } from '../../../src/app/server.js';
import { openSqliteStore } from '../../../src/store/index.js';
import type { NewRegistration } from '../../../src/store/types.js';
import { makePackage } from '../lwm2m/object9-support.js';

async function serve(dataDir: string): Promise<RunningDepotServer> {
  return startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir, allowUnsecured: true, apiToken: 'token', installs: { pollIntervalMs: 100 } });
}

async function until<T>(f: () => Promise<T | undefined>, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timeout: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A data dir holding a job in `downloading` (24 % of its package served), as a process left it. */
async function leftDownloading(crashed: boolean): Promise<{ dir: string; id: string; size: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'depot-install-restart-'));
  const server = await serve(dir);
  const record = await server.catalog.addBytes(makePackage({ name: 'app', version: '1.0.0' }));
  await server.close();
  const store = openSqliteStore({ dataDir: dir });
  try {
    const now = Date.now();
    await store.installJobs.create({ id: 'job-1', kind: 'install', endpoint: 'gone-dev', packageSha256: record.sha256, method: 'pull', activate: false }, now);
    await store.installJobs.transition('job-1', 'downloading', 'Package URI written', { downloadToken: 'token-1', tokenExpiresAt: now + 3600_000, attempts: 1, message: 'Downloading.' }, now);
    await store.settings.set('installs.downloadProgress', { 'job-1': { served: Math.floor(record.size / 4), size: record.size, at: now } }, now);
    if (crashed) await store.settings.set('installs.running', { pid: 999_999, startedAt: now - 60_000 }, now);
  } finally {
    store.close();
  }
  return { dir, id: 'job-1', size: record.size };
}

for (const crashed of [true, false]) {
  void test(`a job resumed in downloading says the server restarted${crashed ? ' after a crash' : ''} at N % and keeps its progress and token`, async () => {
    const { dir, id, size } = await leftDownloading(crashed);
    const server = await serve(dir);
    try {
      const view = (await server.installs.view(id))!;
      const note = view.transitions.at(-1)!;
      assert.equal(note.from, 'downloading');
      assert.equal(note.to, 'downloading');
      const served = Math.floor(size / 4);
      const percent = Math.floor((served / size) * 100);
      const crash = crashed ? 'server restarted after a crash \\(the process started \\S+ did not shut down\\)' : 'server restarted';
      assert.match(note.detail ?? '', new RegExp(`^${crash} during download at ${percent} % \\(${served} of ${size} bytes, last served \\S+\\); resumed: the device continues with the same download link$`));
      assert.equal(view.job.downloadToken, 'token-1', 'the same link');
      assert.equal(view.progress?.served, served);
      assert.ok(view.percent > 0);
      // The device was never registered: the message then says what the job waits for.
      const waiting = await until(async () => {
        const j = await server.store.installJobs.get(id);
        return j?.message?.startsWith('Waiting for') ? j.message : undefined;
      }, 'a waiting message');
      assert.match(waiting, /^Waiting for device "gone-dev" to register \(not registered; last seen never\); waiting since \S+\.$/);
      // A clean close removes the run marker: the next start reports no crash.
      await server.close();
      const store = openSqliteStore({ dataDir: dir });
      try {
        assert.equal(await store.settings.get('installs.running'), null);
      } finally {
        store.close();
      }
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

void test('a job whose device registration expired, or whose queue-mode device sleeps, says so with when the device was last seen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-install-wait-'));
  const server = await serve(dir);
  try {
    const record = await server.catalog.addBytes(makePackage({ name: 'app', version: '2.0.0' }));
    const registration = (endpoint: string, queueMode: boolean): NewRegistration => ({
      id: `r-${endpoint}`,
      endpoint,
      lifetimeSec: 1,
      lwm2mVersion: '1.1',
      binding: queueMode ? 'UQ' : 'U',
      queueMode,
      objectLinks: '</9>',
      address: { scheme: 'coap', address: '127.0.0.1', port: 9 },
    });
    const past = Date.now() - 10_000;
    await server.store.registrations.register(registration('expired-dev', false), past);
    await server.store.registrations.register({ ...registration('sleepy-dev', true), lifetimeSec: 3600 }, Date.now());
    const expired = await server.installs.install('expired-dev', record.sha256);
    const sleepy = await server.installs.install('sleepy-dev', record.sha256);
    const message = (id: string): Promise<string> =>
      until(async () => {
        const j = await server.store.installJobs.get(id);
        return j?.message?.startsWith('Waiting for') ? j.message : undefined;
      }, `a waiting message for ${id}`);
    assert.match(await message(expired.id), new RegExp(`^Waiting for device "expired-dev" to register again \\(its registration expired at ${new Date(past + 1000).toISOString()}; last seen ${new Date(past).toISOString()}\\); waiting since \\S+\\.$`));
    assert.match(await message(sleepy.id), /^Waiting for device "sleepy-dev" to wake up \(queue mode; last seen \S+\); waiting since \S+\.$/);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
