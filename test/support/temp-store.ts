/** A real SQLite store in a temporary data directory for one test, removed afterwards. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type SqliteStore } from '../../src/store/index.js';

export function withTempStore(prefix: string, fn: (store: SqliteStore, dataDir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dataDir = mkdtempSync(join(tmpdir(), `depot-${prefix}-`));
    const store = openSqliteStore({ dataDir });
    try {
      await fn(store, dataDir);
    } finally {
      store.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  };
}
