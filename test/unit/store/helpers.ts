/** Shared helpers for the store tests: real SQLite files in temporary directories. */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

import { StoreError, openSqliteStore, type NewRegistration, type SqliteStore, type SqliteStoreOptions } from '../../../src/store/index.js';

const dirs: string[] = [];
const stores: SqliteStore[] = [];
after(() => {
  for (const s of stores) s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the test file ends. */
export function tempDir(prefix = 'depot-store-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** Opens a store (in a fresh data directory unless one is given); closed when the test file ends. */
export function openStore(options: Partial<SqliteStoreOptions> = {}): SqliteStore {
  const store = openSqliteStore({ dataDir: options.dataDir ?? join(tempDir(), 'data'), ...options });
  stores.push(store);
  return store;
}

/** assert.throws / assert.rejects predicate: a StoreError with this code (and message, when given). */
export function storeError(code: string, message?: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

/** Mode bits (permissions) of a file. */
export function modeOf(stat: { mode: number }): number {
  return stat.mode & 0o777;
}

export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

/** A registration to store: endpoint and id, sensible values for the rest (`over` replaces any). */
export function newRegistration(endpoint: string, id: string, over: Partial<NewRegistration> = {}): NewRegistration {
  return {
    id,
    endpoint,
    lifetimeSec: 60,
    lwm2mVersion: '1.1',
    binding: 'U',
    queueMode: false,
    objectLinks: '</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</9>',
    address: { scheme: 'coaps', address: '127.0.0.1', port: 40000 },
    ...over,
  };
}
