/** Helpers shared by the SQLite repositories. */
import type { Database, Statement, Transaction } from 'better-sqlite3';

import { StoreError, toStoreError } from '../errors.js';
import type { Page, PageRequest, TimeInput } from '../types.js';

export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;

/**
 * Runs a synchronous database operation and hands its outcome back as a Promise, with
 * every failure turned into a StoreError (so callers see one error type whatever the
 * backend).
 */
export function run<T>(what: string, fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(toStoreError(err, what));
  }
}

/**
 * How much a write must survive:
 * - 'durable': the connection's configured level (FULL by default): on disk when the call
 *   returns, also across a power cut. Queued operations, install jobs, credentials, the
 *   bootstrap gate, settings.
 * - 'soft': synchronous=NORMAL for this write (WAL: survives a crash of the process, the
 *   last such commits may be lost on power loss; the file stays consistent). For soft state
 *   that devices send again anyway: registrations (a device whose Update meets 4.04
 *   registers again) and device facts (read again at the next Register).
 * A later durable commit fsyncs the WAL and with it every soft commit before it (the WAL is
 * sequential), so power loss never keeps a durable write and loses an earlier soft one.
 */
export type Durability = 'durable' | 'soft';

/** Prepared statements, prepared once per SQL text and reused. */
export class Statements {
  private readonly cache = new Map<string, Statement>();
  /**
   * PRAGMA synchronous switches around soft writes; undefined when the connection already
   * runs NORMAL (or OFF). Run with exec: SQLite applies this pragma when it compiles it, so
   * a prepared statement would not switch anything when run again.
   */
  private readonly toSoft: string | undefined;
  private readonly toDurable: string | undefined;
  /**
   * Runs its argument in a transaction (`.immediate`: BEGIN IMMEDIATE; a savepoint when nested).
   * Made once: better-sqlite3 builds four wrapper functions and their properties per `db.transaction(fn)`.
   */
  private readonly runner: Transaction<(fn: () => unknown) => unknown>;

  constructor(private readonly db: Database) {
    const level = db.pragma('synchronous', { simple: true }) as number; // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
    if (level > 1) {
      this.toSoft = 'PRAGMA synchronous = NORMAL';
      this.toDurable = `PRAGMA synchronous = ${level}`;
    }
    this.runner = db.transaction((fn: () => unknown) => fn());
  }

  get(sql: string): Statement {
    let stmt = this.cache.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.cache.set(sql, stmt);
    }
    return stmt;
  }

  /** Runs `fn` in one IMMEDIATE transaction (all or nothing), committed with the given durability. */
  transaction<T>(fn: () => T, durability: Durability = 'durable'): T {
    if (durability === 'soft' && this.switchesToSoft()) {
      try {
        return this.runner.immediate(fn) as T;
      } finally {
        this.db.exec(this.toDurable!);
      }
    }
    return this.runner.immediate(fn) as T;
  }

  /**
   * Runs `fn` (its own transaction, or one autocommit statement) with synchronous=NORMAL,
   * and restores the configured level before returning, so every other write stays durable.
   * PRAGMA synchronous cannot change inside a transaction: inside one, `fn` just runs.
   */
  soft<T>(fn: () => T): T {
    if (!this.switchesToSoft()) return fn();
    try {
      return fn();
    } finally {
      this.db.exec(this.toDurable!);
    }
  }

  /** Switches to synchronous=NORMAL when that changes anything (the caller restores toDurable); false otherwise. */
  private switchesToSoft(): boolean {
    if (!this.toSoft || this.db.inTransaction) return false;
    this.db.exec(this.toSoft);
    return true;
  }
}

export function invalid(message: string): StoreError {
  return new StoreError('INVALID_ARGUMENT', message);
}

/** A TimeInput as integer ms since the epoch. */
export function toMs(t: TimeInput, name = 'time'): number {
  const ms = t instanceof Date ? t.getTime() : t;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) throw invalid(`${name} is not a valid time`);
  return Math.floor(ms);
}

export function requireText(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${name} must be a non-empty string`);
  return value;
}

export function requireInt(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be an integer in ${min}..${max}`);
  }
  return value;
}

export function optionalInt(value: unknown, name: string, min: number, max: number): number | null {
  return value === null || value === undefined ? null : requireInt(value, name, min, max);
}

export function limitOf(page: PageRequest | undefined): number {
  const limit = page?.limit ?? DEFAULT_PAGE_LIMIT;
  return requireInt(limit, 'limit', 1, MAX_PAGE_LIMIT);
}

/**
 * Builds a page from rows fetched with LIMIT limit+1: the extra row only tells that
 * there is a next page, whose cursor is the key of the last row kept.
 */
export function pageOf<R, T>(rows: R[], limit: number, map: (row: R) => T, key: (row: R) => string): Page<T> {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  const last = kept[kept.length - 1];
  return { items: kept.map(map), next: more && last !== undefined ? key(last) : null };
}

/**
 * The cursor of a newest-first list ordered by created_at then id: "<created_at>:<id>" of the last
 * row shown. Before the first page, `firstId` is the id that lets every row of the newest time
 * through (the empty string when ids ascend within a time, PREFIX_END when they descend).
 */
export function createdAtCursor(after: string | undefined, firstId: string): { at: number; id: string } {
  if (!after) return { at: Number.MAX_SAFE_INTEGER, id: firstId };
  const m = /^(\d+):(.*)$/.exec(after);
  if (!m) throw invalid('bad cursor');
  return { at: Number(m[1]), id: m[2]! };
}

/** The key createdAtCursor reads back. */
export const createdAtKey = (row: { created_at: number; id: string }): string => `${row.created_at}:${row.id}`;

/** Copies a SQLite BLOB (a Node Buffer) into a plain Uint8Array. */
export function bytes(blob: Buffer | null): Uint8Array | null {
  return blob === null ? null : Uint8Array.from(blob);
}

export function blob(data: Uint8Array | null | undefined, name: string): Buffer | null {
  if (data === null || data === undefined) return null;
  if (!(data instanceof Uint8Array)) throw invalid(`${name} must be a Uint8Array`);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Upper bound for "starts with" range scans: every string with the prefix sorts below prefix + U+10FFFF. */
export const PREFIX_END = '\u{10FFFF}';
