import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { MIGRATIONS, SQLITE_FILE_NAME } from '../../../src/store/index.js';
import { openStore, tempDir } from './helpers.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'crash-child.js');
const ROWS = 4000; // 4000 × 1 KiB payloads: far more than the child's page cache, so uncommitted pages spill into the WAL

/** Runs the child until it prints `marker`, then SIGKILLs it. */
async function runAndKill(dataDir: string, mode: 'mid' | 'committed' | 'soft', rows = ROWS): Promise<{ signal: NodeJS.Signals | null; walBytes: number }> {
  const child = spawn(process.execPath, [CHILD, dataDir, mode, String(rows)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  const marker = mode === 'mid' ? 'MID\n' : 'COMMITTED\n';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child did not report ${marker.trim()} in 30 s; stderr: ${err}`)), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(marker)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      if (!out.includes(marker)) reject(new Error(`child exited before ${marker.trim()}; stderr: ${err}`));
    });
  });
  const wal = join(dataDir, `${SQLITE_FILE_NAME}-wal`);
  const walBytes = existsSync(wal) ? statSync(wal).size : 0;
  child.kill('SIGKILL');
  return { signal: await exited, walBytes };
}

void test('crash: SIGKILL in the middle of a large transaction leaves none of it, and everything committed before', async () => {
  const dataDir = tempDir();
  const { signal, walBytes } = await runAndKill(dataDir, 'mid');
  assert.equal(signal, 'SIGKILL');
  // Uncommitted pages did reach the WAL file, so recovery really had something to throw away.
  assert.ok(walBytes > (ROWS * 1024) / 2, `WAL has ${walBytes} bytes`);

  const store = openStore({ dataDir });
  assert.equal(store.db.pragma('integrity_check', { simple: true }), 'ok');
  const counts = store.db.prepare('SELECT endpoint, count(*) AS n FROM queued_operations GROUP BY endpoint ORDER BY endpoint').all();
  assert.deepEqual(counts, [{ endpoint: 'baseline', n: 10 }]);
  const baseline = await store.operations.listByEndpoint('baseline');
  assert.deepEqual(baseline.items.map((o) => [o.path, o.createdAt]), Array.from({ length: 10 }, (_, i) => [`/3/0/${i}`, 1000 + i]));
  // The store works on after recovery.
  const next = await store.operations.enqueue({ endpoint: 'after', kind: 'read', path: '/1' }, 3000);
  assert.equal((await store.operations.get(next.id))?.endpoint, 'after');
});

void test('crash: SIGKILL right after the commit keeps the whole transaction', async () => {
  const dataDir = tempDir();
  const { signal } = await runAndKill(dataDir, 'committed');
  assert.equal(signal, 'SIGKILL');
  const store = openStore({ dataDir });
  assert.equal(store.db.pragma('integrity_check', { simple: true }), 'ok');
  const counts = store.db.prepare('SELECT endpoint, count(*) AS n FROM queued_operations GROUP BY endpoint ORDER BY endpoint').all();
  assert.deepEqual(counts, [{ endpoint: 'baseline', n: 10 }, { endpoint: 'bulk', n: ROWS }]);
  const last = await store.operations.listByStatus('queued', { after: String(10 + ROWS - 1) });
  assert.deepEqual(last.items.map((o) => [o.path, o.payload?.length]), [[`/5/0/${ROWS - 1}`, 1024]]);
});

void test('crash: registrations and device facts (soft writes) acknowledged before a SIGKILL are there after the restart', async () => {
  const dataDir = tempDir();
  const N = 200;
  const { signal } = await runAndKill(dataDir, 'soft', N);
  assert.equal(signal, 'SIGKILL');
  const store = openStore({ dataDir });
  assert.equal(store.db.pragma('integrity_check', { simple: true }), 'ok');
  assert.equal(store.db.prepare('SELECT count(*) FROM registrations').pluck().get(), N);
  assert.equal(store.db.prepare('SELECT count(*) FROM device_facts').pluck().get(), N);
  const last = await store.registrations.getByEndpoint(`dev-${N - 1}`);
  assert.equal(last?.id, `id-${N - 1}`);
  assert.equal((await store.deviceFacts.get(`dev-${N - 1}`))?.modelNumber, `m${N - 1}`);
});

void test('processes: several processes opening the same new file at once migrate it exactly once', async () => {
  const dataDir = tempDir();
  const PROCS = 4;
  const storeModule = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src', 'store', 'index.js');
  const script = `
    const { openSqliteStore } = await import(${JSON.stringify(storeModule)});
    // Start together: wait for the common start time (after every child has loaded).
    const start = Number(process.argv[2]);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, start - Date.now() - 5)));
    while (Date.now() < start);
    const store = openSqliteStore({ dataDir: process.argv[1], busyTimeoutMs: 10000 });
    await store.bootstrap.sighted('dev', null, 1);
    store.close();
  `;
  const start = Date.now() + 1500;
  const runs = Array.from({ length: PROCS }, () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, dataDir, String(start)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise<string>((resolve) => child.on('exit', (code) => resolve(`${code}${err}`)));
  });
  assert.deepEqual(await Promise.all(runs), Array.from({ length: PROCS }, () => '0'));
  const store = openStore({ dataDir });
  assert.deepEqual(store.appliedMigrations().map((m) => m.version), MIGRATIONS.map((m) => m.version));
  assert.equal((await store.bootstrap.get('dev'))?.requestCount, PROCS);
});
