import type { Page, PackageRecord, PackageRepository, PageRequest } from '../types.js';
import { type Statements, invalid, limitOf, pageOf, requireInt, requireText, run, toMs } from './common.js';

interface Row {
  sha256: string;
  name: string;
  version: string;
  size: number;
  key_id: string;
  manifest: string;
  added_at: number;
}

const COLUMNS = 'sha256, name, version, size, key_id, manifest, added_at';

const SQL = {
  add: `INSERT INTO packages (${COLUMNS}) VALUES (@sha256, @name, @version, @size, @keyId, @manifest, @addedAt)
    ON CONFLICT (sha256) DO NOTHING`,
  get: `SELECT ${COLUMNS} FROM packages WHERE sha256 = ?`,
  list: `SELECT ${COLUMNS} FROM packages WHERE sha256 > @after ORDER BY sha256 LIMIT @limit`,
  remove: 'DELETE FROM packages WHERE sha256 = ?',
} as const;

function fromRow(r: Row): PackageRecord {
  return { sha256: r.sha256, name: r.name, version: r.version, size: r.size, keyId: r.key_id, manifest: JSON.parse(r.manifest) as Record<string, unknown>, addedAt: r.added_at };
}

/** The package catalog's metadata (the bytes are files, see src/fleet/packages.ts). */
export class SqlitePackageRepository implements PackageRepository {
  constructor(private readonly s: Statements) {}

  add(record: PackageRecord): Promise<PackageRecord> {
    return run('add package', () =>
      this.s.transaction(() => {
        if (!/^[0-9a-f]{64}$/.test(record.sha256)) throw invalid('sha256 must be 64 lowercase hex digits');
        this.s.get(SQL.add).run({
          sha256: record.sha256,
          name: requireText(record.name, 'name'),
          version: requireText(record.version, 'version'),
          size: requireInt(record.size, 'size', 0),
          keyId: requireText(record.keyId, 'keyId'),
          manifest: JSON.stringify(record.manifest),
          addedAt: toMs(record.addedAt, 'addedAt'),
        });
        return fromRow(this.s.get(SQL.get).get(record.sha256) as Row);
      }),
    );
  }

  get(sha256: string): Promise<PackageRecord | null> {
    return run('get package', () => {
      const row = this.s.get(SQL.get).get(sha256) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  list(page?: PageRequest): Promise<Page<PackageRecord>> {
    return run('list packages', () => {
      const limit = limitOf(page);
      const rows = this.s.get(SQL.list).all({ after: page?.after ?? '', limit: limit + 1 }) as Row[];
      return pageOf(rows, limit, fromRow, (r) => r.sha256);
    });
  }

  remove(sha256: string): Promise<boolean> {
    return run('remove package', () => this.s.get(SQL.remove).run(sha256).changes > 0);
  }
}
