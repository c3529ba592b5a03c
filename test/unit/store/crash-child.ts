/**
 * Child process of crash.test.ts: opens the store, commits a baseline, then writes a
 * large transaction and reports "MID" (inside it, uncommitted) or "COMMITTED" (after
 * it), and blocks until the parent SIGKILLs it.
 *
 * Usage: node crash-child.js <dataDir> mid|committed <rows>
 */
import { writeSync } from 'node:fs';

import { openSqliteStore } from '../../../src/store/index.js';

const [dataDir, mode, rowsArg] = process.argv.slice(2);
if (!dataDir || (mode !== 'mid' && mode !== 'committed')) throw new Error('usage: crash-child <dataDir> mid|committed <rows>');
const rows = Number(rowsArg ?? 4000);

const store = openSqliteStore({ dataDir });
for (let i = 0; i < 10; i++) {
  await store.operations.enqueue({ endpoint: 'baseline', kind: 'read', path: `/3/0/${i}` }, 1000 + i);
}

// A small page cache makes SQLite spill the uncommitted transaction's pages into the WAL early.
store.db.pragma('cache_size = 50');
const insert = store.db.prepare(
  "INSERT INTO queued_operations (endpoint, kind, path, payload, status, created_at, updated_at) VALUES ('bulk', 'write', ?, ?, 'queued', 2000, 2000)",
);
const payload = Buffer.alloc(1024, 0x5a);
const block = (): never => {
  // Sleep without burning CPU until killed.
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
};

store.db.transaction(() => {
  for (let i = 0; i < rows; i++) insert.run(`/5/0/${i}`, payload);
  if (mode === 'mid') {
    writeSync(1, 'MID\n');
    block();
  }
})();
writeSync(1, 'COMMITTED\n');
block();
