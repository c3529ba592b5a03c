import { StoreError } from '../errors.js';
import type { MethodRule, MethodRuleKind, MethodStats, MethodStatsRepository, ModelKey } from '../../fleet/domain.js';
import type { TimeInput } from '../types.js';
import { type Statements, invalid, requireText, run, toMs } from './common.js';

interface StatsRow {
  make: string;
  model: string;
  os_version: string;
  method: string;
  successes: number;
  failures: number;
  last_success_at: number | null;
  last_failure_at: number | null;
  last_reason: string | null;
  last_result: string | null;
  updated_at: number;
}

interface RuleRow {
  make: string;
  model: string;
  method: string;
  rule: MethodRuleKind;
  updated_at: number;
}

const STATS_COLUMNS = 'make, model, os_version, method, successes, failures, last_success_at, last_failure_at, last_reason, last_result, updated_at';

const SQL = {
  upsertSuccess: `INSERT INTO install_method_stats (${STATS_COLUMNS}) VALUES (@make, @model, @os, @method, 1, 0, @now, NULL, NULL, NULL, @now)
    ON CONFLICT (make, model, os_version, method) DO UPDATE SET successes = successes + 1, last_success_at = @now, updated_at = @now`,
  upsertFailure: `INSERT INTO install_method_stats (${STATS_COLUMNS}) VALUES (@make, @model, @os, @method, 0, 1, NULL, @now, @reason, @result, @now)
    ON CONFLICT (make, model, os_version, method) DO UPDATE SET failures = failures + 1, last_failure_at = @now, last_reason = @reason, last_result = @result, updated_at = @now`,
  get: `SELECT ${STATS_COLUMNS} FROM install_method_stats WHERE make = ? AND model = ? AND os_version = ? AND method = ?`,
  list: `SELECT ${STATS_COLUMNS} FROM install_method_stats WHERE (@make IS NULL OR make = @make) AND (@model IS NULL OR model = @model) AND (@os IS NULL OR os_version = @os)
    ORDER BY make, model, os_version, method LIMIT 10000`,
  rules: 'SELECT make, model, method, rule, updated_at FROM install_method_rules WHERE make = ? AND model = ? ORDER BY method',
  allRules: 'SELECT make, model, method, rule, updated_at FROM install_method_rules ORDER BY make, model, method LIMIT 10000',
  setRule: `INSERT INTO install_method_rules (make, model, method, rule, updated_at) VALUES (@make, @model, @method, @rule, @now)
    ON CONFLICT (make, model, method) DO UPDATE SET rule = @rule, updated_at = @now`,
  getRule: 'SELECT make, model, method, rule, updated_at FROM install_method_rules WHERE make = ? AND model = ? AND method = ?',
  removeRule: 'DELETE FROM install_method_rules WHERE make = ? AND model = ? AND method = ?',
} as const;

/** Device strings are untrusted: bounded, kept as reported. */
const MAX_KEY = 255;
const MAX_REASON = 1000;

function keyText(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length > MAX_KEY) throw invalid(`${name} must be a string of at most ${MAX_KEY} characters`);
  return value;
}

/**
 * Counts one ended attempt for (make, model, OS version, method); the caller runs it in its
 * transaction (the chain's attempt end: counted once with it).
 */
export function recordOutcome(s: Statements, key: ModelKey, method: string, outcome: 'succeeded' | 'failed', reason: string | null, result: string | null, at: number): MethodStats {
  const row = { make: keyText(key.make, 'make'), model: keyText(key.model, 'model'), os: keyText(key.osVersion, 'osVersion'), method: requireText(method, 'method'), now: at };
  if (outcome === 'succeeded') s.get(SQL.upsertSuccess).run(row);
  else if (outcome === 'failed') s.get(SQL.upsertFailure).run({ ...row, reason: reason === null ? null : reason.slice(0, MAX_REASON), result: result === null ? null : result.slice(0, MAX_KEY) });
  else throw invalid('outcome must be succeeded or failed');
  return statsOf(s.get(SQL.get).get(row.make, row.model, row.os, row.method) as StatsRow);
}

function statsOf(r: StatsRow): MethodStats {
  return {
    make: r.make,
    model: r.model,
    osVersion: r.os_version,
    method: r.method,
    successes: r.successes,
    failures: r.failures,
    lastSuccessAt: r.last_success_at,
    lastFailureAt: r.last_failure_at,
    lastReason: r.last_reason,
    lastResult: r.last_result,
    updatedAt: r.updated_at,
  };
}

function ruleOf(r: RuleRow): MethodRule {
  return { make: r.make, model: r.model, method: r.method, rule: r.rule, updatedAt: r.updated_at };
}

/** What each install method achieved per model (fleet's MethodStatsRepository), and the operator's rules. */
export class SqliteMethodStatsRepository implements MethodStatsRepository {
  constructor(private readonly s: Statements) {}

  record(key: ModelKey, method: string, outcome: 'succeeded' | 'failed', reason: string | null, result: string | null, now: TimeInput): Promise<MethodStats> {
    return run('record install method outcome', () => this.s.transaction(() => recordOutcome(this.s, key, method, outcome, reason, result, toMs(now, 'now'))));
  }

  list(filter: { make?: string; model?: string; osVersion?: string } = {}): Promise<MethodStats[]> {
    return run('list install method stats', () => (this.s.get(SQL.list).all({ make: filter.make ?? null, model: filter.model ?? null, os: filter.osVersion ?? null }) as StatsRow[]).map(statsOf));
  }

  rules(make: string, model: string): Promise<MethodRule[]> {
    return run('list install method rules', () => (this.s.get(SQL.rules).all(make, model) as RuleRow[]).map(ruleOf));
  }

  allRules(): Promise<MethodRule[]> {
    return run('list install method rules', () => (this.s.get(SQL.allRules).all() as RuleRow[]).map(ruleOf));
  }

  setRule(make: string, model: string, method: string, rule: MethodRuleKind, now: TimeInput): Promise<MethodRule> {
    return run('set install method rule', () =>
      this.s.transaction(() => {
        if (rule !== 'pin' && rule !== 'forbid') throw invalid('rule must be pin or forbid');
        const row = { make: keyText(make, 'make'), model: keyText(model, 'model'), method: requireText(method, 'method'), rule, now: toMs(now, 'now') };
        this.s.get(SQL.setRule).run(row);
        return ruleOf(this.s.get(SQL.getRule).get(row.make, row.model, row.method) as RuleRow);
      }),
    );
  }

  removeRule(make: string, model: string, method: string): Promise<boolean> {
    return run('remove install method rule', () => {
      if (typeof make !== 'string' || typeof model !== 'string' || typeof method !== 'string') throw new StoreError('INVALID_ARGUMENT', 'make, model and method are strings');
      return this.s.get(SQL.removeRule).run(make, model, method).changes > 0;
    });
  }
}
