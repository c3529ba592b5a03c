/**
 * The audit log (issue 17): every change made through the API — who (user or token), with
 * which role, what (method and route), on what (the route's parameters), when, from where,
 * and whether it was done. Request bodies are never written (they may hold keys and PINs).
 */
import type { Statements } from './common.js';
import { limitOf, run, toMs } from './common.js';

export interface AuditEntry {
  seq: number;
  at: number;
  actor: string;
  role: string | null;
  action: string;
  target: string | null;
  outcome: string;
  source: string | null;
  detail: string | null;
}

export type AuditInput = Omit<AuditEntry, 'seq'>;

export class SqliteAuditRepository {
  constructor(private readonly s: Statements) {}

  record(entry: AuditInput): Promise<void> {
    return run('write audit entry', () => {
      this.s.get('INSERT INTO audit_log (at, actor, role, action, target, outcome, source, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(toMs(entry.at), entry.actor, entry.role, entry.action, entry.target, entry.outcome, entry.source, entry.detail);
    });
  }

  /** Newest first; `before` is the cursor (a seq) of the next page; `actor` filters. */
  list(options: { limit?: number; before?: number; actor?: string } = {}): Promise<{ items: AuditEntry[]; next: string | null }> {
    return run('list audit entries', () => {
      const limit = limitOf(options.limit === undefined ? {} : { limit: options.limit });
      const before = options.before ?? Number.MAX_SAFE_INTEGER;
      const rows = (options.actor === undefined
        ? this.s.get('SELECT * FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT ?').all(before, limit + 1)
        : this.s.get('SELECT * FROM audit_log WHERE seq < ? AND actor = ? ORDER BY seq DESC LIMIT ?').all(before, options.actor, limit + 1)) as AuditEntry[];
      const kept = rows.slice(0, limit);
      return { items: kept.map((r) => ({ ...r })), next: rows.length > limit ? String(kept.at(-1)!.seq) : null };
    });
  }
}
