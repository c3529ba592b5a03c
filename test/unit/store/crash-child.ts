/**
 * Child process of crash.test.ts: opens the store, commits a baseline, then writes a
 * large transaction and reports "MID" (inside it, uncommitted) or "COMMITTED" (after
 * it), and blocks until the parent SIGKILLs it.
 *
 * Mode "soft": registers <rows> devices with their facts (soft writes), reports "COMMITTED".
 *
 * Usage: node crash-child.js <dataDir> mid|committed|soft <rows>
 */
import { writeSync } from 'node:fs';

import { openSqliteStore } from '../../../src/store/index.js';

const [dataDir, mode, rowsArg] = process.argv.slice(2);
if (!dataDir || (mode !== 'mid' && mode !== 'committed' && mode !== 'soft')) throw new Error('usage: crash-child <dataDir> mid|committed|soft <rows>');
const rows = Number(rowsArg ?? 4000);

const store = openSqliteStore({ dataDir });
const block = (): never => {
  // Sleep without burning CPU until killed.
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
};

if (mode === 'soft') {
  // Soft writes (synchronous=NORMAL): registrations and device facts, acknowledged, then killed.
  for (let i = 0; i < rows; i++) {
    const endpoint = `dev-${i}`;
    await store.registrations.register(
      { id: `id-${i}`, endpoint, lifetimeSec: 60, lwm2mVersion: '1.1', binding: 'U', queueMode: false, objectLinks: '</3/0>', address: { scheme: 'coap', address: '127.0.0.1', port: 5000 + i } },
      1000 + i,
    );
    await store.deviceFacts.upsert(endpoint, { manufacturer: 'Acme', modelNumber: `m${i}` }, 1000 + i);
  }
  writeSync(1, 'COMMITTED\n');
  block();
}

for (let i = 0; i < 10; i++) {
  await store.operations.enqueue({ endpoint: 'baseline', kind: 'read', path: `/3/0/${i}` }, 1000 + i);
}

// A small page cache makes SQLite spill the uncommitted transaction's pages into the WAL early.
store.db.pragma('cache_size = 50');
const insert = store.db.prepare(
  "INSERT INTO queued_operations (endpoint, kind, path, payload, status, created_at, updated_at) VALUES ('bulk', 'write', ?, ?, 'queued', 2000, 2000)",
);
const payload = Buffer.alloc(1024, 0x5a);

store.db.transaction(() => {
  for (let i = 0; i < rows; i++) insert.run(`/5/0/${i}`, payload);
  if (mode === 'mid') {
    writeSync(1, 'MID\n');
    block();
  }
})();
writeSync(1, 'COMMITTED\n');
block();
