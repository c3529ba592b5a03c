/**
 * Errors of the store. `code` is stable and meant for code (the API maps CONFLICT to
 * 409, NOT_FOUND to 404 and so on); `message` is meant for operators.
 *
 * Messages never contain secret values (PSK keys): they name the record by its
 * identity or endpoint only.
 */
export type StoreErrorCode =
  /** The database file cannot be read as a Depot database (random bytes, truncated, damaged pages). */
  | 'STORE_CORRUPT'
  /** A valid SQLite file that belongs to another application. */
  | 'NOT_A_DEPOT_STORE'
  /** The file was written by a newer Depot (its schema has migrations this version does not know). */
  | 'SCHEMA_TOO_NEW'
  /** The file's applied migrations disagree with this version's (same number, different name). */
  | 'SCHEMA_MISMATCH'
  /** A migration failed; the file is left at the last migration that succeeded. */
  | 'MIGRATION_FAILED'
  /** The data directory or file cannot be created, opened or locked. */
  | 'STORE_IO'
  /** The store was closed. */
  | 'CLOSED'
  /** A unique key is already taken by another record (e.g. a PSK identity bound to another endpoint). */
  | 'CONFLICT'
  /** The record the operation refers to does not exist. */
  | 'NOT_FOUND'
  /** A state change that the record's state machine does not allow. */
  | 'INVALID_TRANSITION'
  /** An argument that cannot be stored (empty endpoint name, negative lifetime, bad time value ...). */
  | 'INVALID_ARGUMENT'
  /** Another connection held the write lock for longer than the busy timeout; retrying may succeed. */
  | 'BUSY'
  /** Any other database failure. */
  | 'DB_ERROR'
  /** The store holds sealed secrets but no key was found (neither DEPOT_SECRET_KEY nor the key file). */
  | 'SECRET_KEY_MISSING'
  /** The key found does not open the store's sealed secrets (another store's key, a wrong DEPOT_SECRET_KEY). */
  | 'SECRET_KEY_MISMATCH'
  /** The key is not 32 bytes in hex or base64. */
  | 'SECRET_KEY_INVALID';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** SQLite's extended result code, when `err` comes from better-sqlite3. */
export function sqliteCode(err: unknown): string | undefined {
  if (err instanceof Error && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/**
 * Turns anything thrown by the driver into a StoreError. StoreErrors pass through.
 * SQLite's own messages name tables and columns, never bound values, so they are
 * safe to keep in the message.
 */
export function toStoreError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = sqliteCode(err);
  const text = err instanceof Error ? err.message : String(err);
  if (err instanceof TypeError && /database connection is not open/.test(text)) {
    return new StoreError('CLOSED', `${what}: the store is closed`);
  }
  if (code === 'SQLITE_CORRUPT' || code?.startsWith('SQLITE_CORRUPT_') || code === 'SQLITE_NOTADB') {
    return new StoreError('STORE_CORRUPT', `${what}: the database is corrupt (${text})`);
  }
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new StoreError('CONFLICT', `${what}: ${text}`);
  }
  if (code?.startsWith('SQLITE_CONSTRAINT')) {
    // CHECK, NOT NULL, STRICT type: a value the schema refuses.
    return new StoreError('INVALID_ARGUMENT', `${what}: ${text}`);
  }
  if (code === 'SQLITE_BUSY' || code?.startsWith('SQLITE_BUSY_')) {
    return new StoreError('BUSY', `${what}: the database is locked by another connection (${text})`);
  }
  return new StoreError('DB_ERROR', `${what}: ${text}${code ? ` (${code})` : ''}`);
}
