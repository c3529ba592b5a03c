/**
 * The embedded store: one SQLite file, `<dataDir>/depot.sqlite`, through better-sqlite3.
 *
 * Opening a store creates the data directory (0700) and the file (0600) when missing,
 * sets the connection up (WAL, synchronous=FULL — NORMAL for the soft-state writes of
 * registrations and device facts, see sqlite/common.ts —, foreign keys, busy timeout), checks
 * that the file is a Depot database of a schema this version understands, and runs
 * the pending migrations, and opens the secret key that seals PSK keys at rest (secret-box.ts),
 * sealing any plain keys an older Depot left. It never deletes or rewrites a file it cannot read: such a
 * file is reported with a StoreError naming it, and left for the operator.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

import Database from 'better-sqlite3';

import { StoreError, sqliteCode } from './errors.js';
import { MIGRATIONS, type Migration } from './migrations.js';
import { SecretBox, createSecretKeyFile, findSecretKey, secretContext } from './secret-box.js';
import { SqliteBootstrapCredentialRepository } from './sqlite/bootstrap-credentials.js';
import { SqliteBootstrapRepository } from './sqlite/bootstrap.js';
import { SqliteCredentialRepository } from './sqlite/credentials.js';
import { SqliteDeviceFactsRepository } from './sqlite/device-facts.js';
import { SqliteOperationQueueRepository } from './sqlite/operations.js';
import { SqliteRegistrationRepository } from './sqlite/registrations.js';
import { SqliteSettingsRepository } from './sqlite/settings.js';
import { SqlitePackageRepository } from './sqlite/packages.js';
import { SqliteInstallJobRepository } from './sqlite/install-jobs.js';
import { SqliteOmaDmAccountRepository } from './sqlite/omadm-accounts.js';
import { SqliteOmaDmCommandRepository } from './sqlite/omadm-commands.js';
import { SqliteScomoJobRepository } from './sqlite/omadm-scomo.js';
import { SqliteChainJobRepository } from './sqlite/chain-jobs.js';
import { SqliteOmaDmBootstrapRepository } from './sqlite/omadm-bootstrap.js';
import { SqliteMethodStatsRepository } from './sqlite/method-stats.js';
import { SqliteSmsRepositories } from './sqlite/sms-outbox.js';
import { SqliteInventoryRepository } from './sqlite/inventory.js';
import { SqliteCampaignRepository, SqlitePackageTargetRepository } from './sqlite/campaigns.js';
import { SqliteUserRepository } from './sqlite/users.js';
import { SqliteAuditRepository } from './sqlite/audit.js';
import { SqliteFleetSummary } from './sqlite/fleet-summary.js';
import { SqliteCampaignHistoryRepository } from './sqlite/campaign-history.js';
import { Statements } from './sqlite/common.js';
import { SqliteTrustRepository } from './sqlite/trust.js';
import { flushSoftWrites } from './sqlite/batch.js';
import type { Store } from './types.js';

/** The file name inside the data directory. */
export const SQLITE_FILE_NAME = 'depot.sqlite';

/** PRAGMA application_id of Depot files ("DPOT"), so another program's SQLite file is not mistaken for ours. */
export const DEPOT_APPLICATION_ID = 0x44504f54;

export interface SqliteStoreOptions {
  /** Directory holding depot.sqlite; created (0700) when missing. */
  dataDir: string;
  /**
   * 'FULL' (default): every durable commit is on disk when the call returns, also across a
   * power cut (registrations and device facts are soft state, committed with NORMAL). 'NORMAL': a commit survives a crash of the process but the last
   * commits may be lost on power loss (the file stays consistent either way).
   */
  synchronous?: 'FULL' | 'NORMAL';
  /** How long a write waits for another process's write lock, ms. Default 5000. */
  busyTimeoutMs?: number;
  /** Run PRAGMA quick_check at open (reads the whole file). Default false. */
  checkIntegrity?: boolean;
  /** The migrations to apply (tests use a prefix to build old files). Default: all of MIGRATIONS. */
  migrations?: readonly Migration[];
  /**
   * The 32-byte key that seals secrets at rest. Default: DEPOT_SECRET_KEY (hex or base64), else
   * <dataDir>/secrets.key, made (0400) when the store has no sealed secrets yet.
   */
  secretKey?: Uint8Array;
}

export interface AppliedMigration {
  version: number;
  name: string;
  appliedAt: number;
}

export class SqliteStore implements Store {
  readonly registrations: SqliteRegistrationRepository;
  readonly deviceFacts: SqliteDeviceFactsRepository;
  readonly operations: SqliteOperationQueueRepository;
  readonly bootstrap: SqliteBootstrapRepository;
  readonly credentials: SqliteCredentialRepository;
  readonly bootstrapCredentials: SqliteBootstrapCredentialRepository;
  readonly settings: SqliteSettingsRepository;
  readonly packages: SqlitePackageRepository;
  readonly installJobs: SqliteInstallJobRepository;
  readonly omadmAccounts: SqliteOmaDmAccountRepository;
  readonly omadmCommands: SqliteOmaDmCommandRepository;
  readonly chainJobs: SqliteChainJobRepository;
  readonly omadmBootstrap: SqliteOmaDmBootstrapRepository;
  readonly methodStats: SqliteMethodStatsRepository;
  /** SMS outbox, secrets, numbers and link tokens (issue 15). */
  readonly sms: SqliteSmsRepositories;
  readonly inventory: SqliteInventoryRepository;
  readonly campaigns: SqliteCampaignRepository;
  readonly packageTargets: SqlitePackageTargetRepository;
  /** Users, API tokens and console sessions; the audit log; fleet counts for the dashboard (issue 17). */
  readonly users: SqliteUserRepository;
  readonly audit: SqliteAuditRepository;
  readonly fleetSummary: SqliteFleetSummary;
  readonly omadmScomo: SqliteScomoJobRepository;
  /** Pushes of Depot's root certificate to devices (Send certificate, issue 16). */
  readonly trust: SqliteTrustRepository;
  /** Campaign totals over time, for the console's rollout chart (issue 17). */
  readonly campaignHistory: SqliteCampaignHistoryRepository;

  /** @internal The connection, for tests and maintenance tools; the layers above use the repositories. */
  readonly db: Database.Database;
  /** Absolute path of the database file. */
  readonly path: string;

  /** Where the secret key came from (DEPOT_SECRET_KEY or the key file's path), for start-up messages. */
  readonly secretKeySource: string;

  constructor(db: Database.Database, path: string, secrets: SecretBox) {
    this.db = db;
    this.path = path;
    this.secretKeySource = secrets.source;
    const statements = new Statements(db);
    this.registrations = new SqliteRegistrationRepository(statements);
    this.deviceFacts = new SqliteDeviceFactsRepository(statements);
    this.operations = new SqliteOperationQueueRepository(statements);
    this.bootstrap = new SqliteBootstrapRepository(statements);
    this.credentials = new SqliteCredentialRepository(statements, secrets);
    this.bootstrapCredentials = new SqliteBootstrapCredentialRepository(statements, secrets);
    this.settings = new SqliteSettingsRepository(statements);
    this.packages = new SqlitePackageRepository(statements);
    this.installJobs = new SqliteInstallJobRepository(statements);
    this.omadmAccounts = new SqliteOmaDmAccountRepository(statements, secrets);
    this.omadmCommands = new SqliteOmaDmCommandRepository(statements);
    this.chainJobs = new SqliteChainJobRepository(statements);
    this.omadmBootstrap = new SqliteOmaDmBootstrapRepository(statements, secrets);
    this.flushSoftWrites = () => flushSoftWrites(statements);
    this.methodStats = new SqliteMethodStatsRepository(statements);
    this.sms = new SqliteSmsRepositories(statements, secrets);
    this.inventory = new SqliteInventoryRepository(statements);
    this.campaigns = new SqliteCampaignRepository(statements);
    this.packageTargets = new SqlitePackageTargetRepository(statements);
    this.users = new SqliteUserRepository(statements);
    this.audit = new SqliteAuditRepository(statements);
    this.fleetSummary = new SqliteFleetSummary(statements);
    this.omadmScomo = new SqliteScomoJobRepository(statements);
    this.trust = new SqliteTrustRepository(statements);
    this.campaignHistory = new SqliteCampaignHistoryRepository(statements);
  }

  /** Commits the soft writes (registrations, device facts) queued for the group commit (sqlite/batch.ts). */
  private readonly flushSoftWrites: () => void;

  /** The migrations recorded in the file, in order. */
  appliedMigrations(): AppliedMigration[] {
    return appliedMigrations(this.db);
  }

  /**
   * Writes a consistent copy of the database to `destination` (a new file, created 0600)
   * while the store stays in use: SQLite's online backup, copied in steps between other
   * work. Refuses to overwrite an existing file. The copy opens with openSqliteStore
   * once named depot.sqlite in a data directory.
   */
  async backup(destination: string): Promise<void> {
    const target = resolve(destination);
    try {
      closeSync(openSync(target, 'wx', 0o600));
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      throw new StoreError('STORE_IO', `cannot back up the store ${this.path} to ${target}: ${text}`, { cause: err });
    }
    try {
      await this.db.backup(target);
    } catch (err) {
      rmSync(target, { force: true });
      const text = err instanceof Error ? err.message : String(err);
      throw new StoreError(this.db.open ? 'STORE_IO' : 'CLOSED', `cannot back up the store ${this.path} to ${target}: ${text}`, { cause: err });
    }
  }

  close(): void {
    if (this.db.open) this.flushSoftWrites();
    if (this.db.open) this.db.close();
  }
}

/** Opens (creating and migrating as needed) the store in `options.dataDir`. Throws StoreError. */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const dataDir = resolve(options.dataDir);
  const path = join(dataDir, SQLITE_FILE_NAME);
  const migrations = options.migrations ?? MIGRATIONS;
  checkMigrationList(migrations);

  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  const db = openFile(dataDir, path, busyTimeoutMs);
  try {
    configure(db, path, options.synchronous ?? 'FULL', busyTimeoutMs);
    identify(db, path);
    if (options.checkIntegrity) checkIntegrity(db, path);
    migrate(db, path, migrations);
    // A store held at an older schema (tests building old files) has no sealed secrets to open:
    // a key of this session only, so nothing it seals outlives the process.
    const secrets = migrations.length >= SEALED_SECRETS_VERSION ? openSecrets(db, path, dataDir, options.secretKey) : new SecretBox(randomBytes(32), 'a key of this session (schema before sealed secrets)');
    restrictSidecarFiles(path);
    return new SqliteStore(db, path, secrets);
  } catch (err) {
    db.close();
    throw err;
  }
}

function ioError(path: string, err: unknown): StoreError {
  const text = err instanceof Error ? err.message : String(err);
  return new StoreError('STORE_IO', `cannot open the store ${path}: ${text}`, { cause: err });
}

function openFile(dataDir: string, path: string, busyTimeoutMs: number): Database.Database {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // Created here (O_CREAT, mode 0600) rather than by SQLite so that it never exists with a
    // wider mode; without O_EXCL, so that processes opening a new store at once all succeed.
    closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
  } catch (err) {
    throw ioError(path, err);
  }
  try {
    return new Database(path, { fileMustExist: true, timeout: busyTimeoutMs });
  } catch (err) {
    throw ioError(path, err);
  }
}

/** SQLite creates -wal and -shm with the database file's mode; this makes sure of it for files left by older runs. */
function restrictSidecarFiles(path: string): void {
  for (const suffix of ['-wal', '-shm']) {
    try {
      chmodSync(path + suffix, 0o600);
    } catch {
      // not there (yet): SQLite will create it with the main file's mode
    }
  }
}

function unreadable(path: string, err: unknown): StoreError {
  const code = sqliteCode(err);
  const text = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code?.startsWith('SQLITE_CORRUPT_')) {
    return new StoreError(
      'STORE_CORRUPT',
      `the store ${path} is corrupt or not an SQLite database (${text}); it was left untouched: ` +
        'restore it from a backup or move it away to start empty',
      { cause: err },
    );
  }
  if (err instanceof StoreError) return err;
  return ioError(path, err);
}

/**
 * Switching a new file to WAL needs an exclusive lock, and SQLite answers SQLITE_BUSY at
 * once (without its busy handler) when two connections would otherwise deadlock on it:
 * retried here, with short sleeps, until the busy timeout.
 */
function retryWhileBusy<T>(fn: () => T, timeoutMs: number): T {
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      return fn();
    } catch (err) {
      const code = sqliteCode(err);
      if ((code !== 'SQLITE_BUSY' && !code?.startsWith('SQLITE_BUSY_')) || Date.now() >= deadline) throw err;
      Atomics.wait(pause, 0, 0, 10);
    }
  }
}

function configure(db: Database.Database, path: string, synchronous: 'FULL' | 'NORMAL', busyTimeoutMs: number): void {
  try {
    // The first statement that reads the file: random bytes fail here with SQLITE_NOTADB.
    const mode = retryWhileBusy(() => db.pragma('journal_mode = WAL', { simple: true }) as string, busyTimeoutMs);
    if (mode !== 'wal') {
      throw new StoreError('STORE_IO', `the store ${path} cannot use write-ahead logging (journal_mode is ${mode})`);
    }
    db.pragma(`synchronous = ${synchronous}`);
    db.pragma('foreign_keys = ON');
    // Deleted rows (old PSK keys) are overwritten, not left in free pages.
    db.pragma('secure_delete = ON');
    db.pragma('trusted_schema = OFF');
  } catch (err) {
    throw unreadable(path, err);
  }
}

/**
 * Claims a new file for Depot (application id and the migrations table) or checks that
 * an existing one is Depot's, in one IMMEDIATE transaction so that processes opening a
 * new file at once cannot see each other's half-made schema.
 */
function identify(db: Database.Database, path: string): void {
  try {
    db.transaction(() => {
      const appId = db.pragma('application_id', { simple: true }) as number;
      if (appId !== DEPOT_APPLICATION_ID) {
        const objects = db.prepare("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'").pluck().get() as number;
        if (appId !== 0 || objects !== 0) {
          throw new StoreError(
            'NOT_A_DEPOT_STORE',
            `the store ${path} is an SQLite database of another application (application_id ${appId}, ${objects} schema objects); it was left untouched`,
          );
        }
        db.pragma(`application_id = ${DEPOT_APPLICATION_ID}`);
      }
      db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version    INTEGER NOT NULL PRIMARY KEY,
        name       TEXT    NOT NULL,
        applied_at INTEGER NOT NULL
      ) STRICT`);
    }).immediate();
  } catch (err) {
    throw unreadable(path, err);
  }
}

function checkIntegrity(db: Database.Database, path: string): void {
  let result: string;
  try {
    result = db.pragma('quick_check', { simple: true }) as string;
  } catch (err) {
    throw unreadable(path, err);
  }
  if (result !== 'ok') {
    throw new StoreError('STORE_CORRUPT', `the store ${path} failed its integrity check: ${result}; it was left untouched`);
  }
}

function checkMigrationList(migrations: readonly Migration[]): void {
  // Strictly increasing from 1 (a gap is allowed: branches get numbers assigned ahead of a merge).
  migrations.forEach((m, i) => {
    const floor = i === 0 ? 0 : migrations[i - 1]!.version;
    if (!Number.isInteger(m.version) || m.version <= floor || (i === 0 && m.version !== 1)) throw new StoreError('INVALID_ARGUMENT', `migration ${m.name} has version ${m.version}, expected ${i === 0 ? 1 : `more than ${floor}`}`);
  });
}

function appliedMigrations(db: Database.Database): AppliedMigration[] {
  const rows = db
    .prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')
    .all() as { version: number; name: string; applied_at: number }[];
  return rows.map((r) => ({ version: r.version, name: r.name, appliedAt: r.applied_at }));
}

/**
 * Applies the migrations the file lacks, each in its own IMMEDIATE transaction (so two
 * processes opening the same new file do not both migrate it). Refuses a file that
 * has migrations this version does not know.
 */
function migrate(db: Database.Database, path: string, migrations: readonly Migration[]): void {
  const check = (): number => {
    const applied = appliedMigrations(db);
    const known = migrations.at(-1)?.version ?? 0;
    const newest = applied[applied.length - 1];
    if (newest !== undefined && newest.version > known) {
      throw new StoreError(
        'SCHEMA_TOO_NEW',
        `the store ${path} has schema version ${newest.version} (${newest.name}), newer than this Depot knows (${known}); ` +
          'it was written by a newer Depot: upgrade Depot, or restore a backup made for this version',
      );
    }
    applied.forEach((a, i) => {
      const m = migrations[i];
      if (m === undefined || a.version !== m.version || m.name !== a.name) {
        throw new StoreError(
          'SCHEMA_MISMATCH',
          `the store ${path} records migration ${a.version} "${a.name}", which this Depot knows as ${m ? `"${m.name}"` : 'nothing'}`,
        );
      }
    });
    return applied.at(-1)?.version ?? 0;
  };

  check();
  for (const m of migrations) {
    try {
      db.transaction(() => {
        if (check() >= m.version) return; // applied meanwhile by another process
        db.exec(m.sql);
        db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      }).immediate();
    } catch (err) {
      if (err instanceof StoreError) throw err;
      const text = err instanceof Error ? err.message : String(err);
      throw new StoreError('MIGRATION_FAILED', `the store ${path}: migration ${m.version} "${m.name}" failed: ${text}`, { cause: err });
    }
  }
}

/** The migration that made the credentials' `sealed` column and the key check. */
const SEALED_SECRETS_VERSION = 5;
/** Sealed in the key-check row: whether a key opens it tells a wrong key from the right one at open. */
const KEY_CHECK_TEXT = 'depot secret key check';
const KEY_CHECK_CONTEXT = 'secret_key_check';

/**
 * Finds (or, for a store without sealed secrets, makes) the secret key, checks it against the
 * store's key-check row, and seals the plain PSK keys an older Depot wrote — idempotent: only rows
 * with sealed = 0 are touched, in one transaction with the check row.
 */
function openSecrets(db: Database.Database, path: string, dataDir: string, given: Uint8Array | undefined): SecretBox {
  const found = findSecretKey(dataDir, given);
  const hasCheck = (): boolean => db.prepare('SELECT count(*) FROM secret_key_check').pluck().get() === 1;
  let key = found.key;
  if (!key) {
    if (hasCheck()) {
      throw new StoreError(
        'SECRET_KEY_MISSING',
        `the store ${path} holds secrets sealed with a key that is not here: neither ${'DEPOT_SECRET_KEY'} is set nor does the key file ${found.keyFile} exist. ` +
          'Restore the key file that belongs to this store (from where the store came from), or set DEPOT_SECRET_KEY; nothing was changed',
      );
    }
    key = createSecretKeyFile(found.keyFile);
  }
  const box = new SecretBox(key, found.source);
  key.fill(0);
  let sealedRows = 0;
  try {
    db.transaction(() => {
      const check = db.prepare('SELECT sealed FROM secret_key_check WHERE id = 1').pluck().get() as Buffer | undefined;
      if (check) {
        const opened = box.open(check, KEY_CHECK_CONTEXT);
        if (!opened || opened.toString('utf8') !== KEY_CHECK_TEXT) {
          throw new StoreError(
            'SECRET_KEY_MISMATCH',
            `the secret key from ${found.source} does not open the secrets of the store ${path} (it belongs to another store, or was changed); ` +
              'use the key this store was made with; nothing was changed',
          );
        }
      } else {
        db.prepare('INSERT INTO secret_key_check (id, sealed, created_at) VALUES (1, ?, ?)').run(box.seal(Buffer.from(KEY_CHECK_TEXT), KEY_CHECK_CONTEXT), Date.now());
      }
      const plain = db.prepare("SELECT kind, identity, secret FROM credentials WHERE sealed = 0 AND secret IS NOT NULL").all() as { kind: string; identity: string; secret: Buffer }[];
      const update = db.prepare('UPDATE credentials SET secret = ?, sealed = 1 WHERE kind = ? AND identity = ?');
      for (const row of plain) {
        update.run(box.seal(row.secret, secretContext('credentials', row.kind, row.identity)), row.kind, row.identity);
        row.secret.fill(0);
      }
      sealedRows = plain.length;
    }).immediate();
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw unreadable(path, err);
  }
  // The plain keys' old page images must not linger in the WAL: checkpoint them into the file
  // (where secure_delete has overwritten them) and truncate the log.
  if (sealedRows > 0) db.pragma('wal_checkpoint(TRUNCATE)');
  return box;
}

