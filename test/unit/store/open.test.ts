import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';

import Database from 'better-sqlite3';

import {
  DEPOT_APPLICATION_ID,
  MIGRATIONS,
  SECRET_KEY_FILE_NAME,
  SQLITE_FILE_NAME,
  openSqliteStore,
} from '../../../src/store/index.js';
import { T0, modeOf, openStore, storeError, tempDir } from './helpers.js';

const REG = {
  id: 'r1',
  endpoint: 'dev-1',
  lifetimeSec: 300,
  lwm2mVersion: '1.1',
  binding: 'U',
  queueMode: false,
  objectLinks: '</1/0>,</3/0>',
  address: { scheme: 'coaps', address: '127.0.0.1', port: 5684 },
};

void test('open: creates <dataDir>/depot.sqlite with mode 0600 in a 0700 directory, and the WAL files with 0600', async () => {
  const dataDir = join(tempDir(), 'nested', 'data');
  const store = openStore({ dataDir });
  const path = join(dataDir, SQLITE_FILE_NAME);
  assert.equal(store.path, path);
  assert.equal(modeOf(statSync(path)), 0o600);
  assert.equal(modeOf(statSync(dataDir)), 0o700);
  await store.registrations.register(REG, T0);
  assert.ok(existsSync(`${path}-wal`));
  assert.equal(modeOf(statSync(`${path}-wal`)), 0o600);
  assert.equal(modeOf(statSync(`${path}-shm`)), 0o600);
});

void test('open: an existing database file with a wider mode is tightened to 0600', () => {
  const dataDir = tempDir();
  openStore({ dataDir }).close();
  const path = join(dataDir, SQLITE_FILE_NAME);
  chmodSync(path, 0o644);
  openStore({ dataDir });
  assert.equal(modeOf(statSync(path)), 0o600);
});

void test('open: WAL, synchronous FULL by default (NORMAL on request), foreign keys, busy timeout, application id', () => {
  const store = openStore({ busyTimeoutMs: 1234 });
  assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(store.db.pragma('synchronous', { simple: true }), 2);
  assert.equal(store.db.pragma('foreign_keys', { simple: true }), 1);
  assert.equal(store.db.pragma('busy_timeout', { simple: true }), 1234);
  assert.equal(store.db.pragma('secure_delete', { simple: true }), 1);
  assert.equal(store.db.pragma('application_id', { simple: true }), DEPOT_APPLICATION_ID);
  const normal = openStore({ synchronous: 'NORMAL' });
  assert.equal(normal.db.pragma('synchronous', { simple: true }), 1);
});

/** Every migration, pinned in order: a renumbered or reordered migration fails here. */
const EXPECTED_MIGRATIONS: [number, string][] = [
  [1, 'initial'],
  [2, 'lookup-indexes'],
  [3, 'packages-and-install-jobs'],
  [4, 'install-method-chosen-by-depot'],
  [5, 'sealed-secrets'],
  [6, 'bootstrap-credentials-and-limits'],
  [7, 'omadm-accounts'],
  [8, 'install-chain-jobs'],
  [9, 'omadm-bootstrap'],
  [10, 'install-method-stats'],
  [11, 'install-chain-retries'],
  [12, 'sms-outbox'],
  [13, 'inventory-and-campaigns'],
  [14, 'users-tokens-audit'],
  [15, 'omadm-scomo-jobs'],
  [16, 'omadm-server-credentials'],
  [17, 'device-trust'],
  [18, 'sms-send-pacing'],
  [20, 'omadm-command-expiry'],
  [22, 'console-progress-and-filters'],
];

void test('open: a new file gets every migration, in order, recorded once; reopening applies none again', () => {
  const dataDir = tempDir();
  const store = openStore({ dataDir });
  const applied = store.appliedMigrations().map((m) => [m.version, m.name]);
  assert.deepEqual(applied, EXPECTED_MIGRATIONS);
  assert.equal(MIGRATIONS.length, EXPECTED_MIGRATIONS.length);
  const first = store.appliedMigrations();
  store.close();
  const again = openStore({ dataDir });
  assert.deepEqual(again.appliedMigrations(), first);
});

void test('migrations: a file at migration 1 is migrated to the latest on open, keeping its data', async () => {
  const dataDir = tempDir();
  const old = openSqliteStore({ dataDir, migrations: MIGRATIONS.slice(0, 1) });
  assert.deepEqual(old.appliedMigrations().map((m) => m.version), [1]);
  await old.registrations.register(REG, T0);
  const indexesBefore = old.db.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND name NOT LIKE 'sqlite_%'").pluck().all();
  assert.deepEqual(indexesBefore, []);
  old.close();

  const store = openStore({ dataDir });
  assert.deepEqual(store.appliedMigrations().map((m) => [m.version, m.name]), EXPECTED_MIGRATIONS);
  const indexes = store.db
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .pluck()
    .all();
  assert.deepEqual(indexes, [
    'api_tokens_user',
    'audit_log_at',
    'bootstrap_credentials_endpoint',
    'bootstrap_endpoints_state',
    'bootstrap_endpoints_undecided_seen',
    'bootstrap_endpoints_undecided_source',
    'campaign_members_package',
    'campaign_members_wave',
    'campaigns_active',
    'console_sessions_user',
    'credentials_endpoint',
    'device_facts_model',
    'device_trust_state',
    'install_chain_attempts_one_running',
    'install_chain_jobs_endpoint',
    'install_chain_jobs_one_open',
    'install_chain_jobs_open',
    'install_chain_jobs_retry',
    'install_jobs_endpoint',
    'install_jobs_open',
    'install_transitions_job',
    'inventory_devices_eff_make',
    'inventory_devices_eff_make_model',
    'inventory_devices_eff_model',
    'inventory_devices_make_model',
    'inventory_labels_by_name',
    'omadm_bootstrap_group',
    'omadm_bootstrap_waiting',
    'omadm_commands_device',
    'omadm_scomo_jobs_device',
    'omadm_scomo_jobs_open',
    'packages_name',
    'queued_operations_deadline',
    'queued_operations_endpoint',
    'queued_operations_status',
    'registrations_expires_at',
    'sms_links_attempt',
    'sms_messages_created',
    'sms_messages_due',
    'sms_messages_pace',
    'sms_messages_to',
    'sms_segments_submitting',
  ]);
  const reg = await store.registrations.getByEndpoint('dev-1');
  assert.equal(reg?.id, 'r1');
});

void test('migrations: a file with a newer schema version is refused with SCHEMA_TOO_NEW naming the file, and left as it was', () => {
  const dataDir = tempDir();
  const store = openStore({ dataDir });
  store.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, ?)').run('from-the-future', T0);
  store.close();
  const path = join(dataDir, SQLITE_FILE_NAME);
  assert.throws(
    () => openSqliteStore({ dataDir }),
    storeError('SCHEMA_TOO_NEW', new RegExp(`^the store ${path} has schema version 99 \\(from-the-future\\), newer than this Depot knows \\(${MIGRATIONS.at(-1)!.version}\\)`)),
  );
  // Still readable and unchanged by the refused open.
  const db = new Database(path, { readonly: true });
  assert.deepEqual(db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all(), [...MIGRATIONS.map((m) => m.version), 99]);
  db.close();
  // An older Depot (knowing only migration 1) refuses a file at migration 2 the same way.
  const dataDir2 = tempDir();
  openStore({ dataDir: dataDir2 }).close();
  const [lastVersion, lastName] = EXPECTED_MIGRATIONS[EXPECTED_MIGRATIONS.length - 1]!;
  assert.throws(() => openSqliteStore({ dataDir: dataDir2, migrations: MIGRATIONS.slice(0, 1) }), storeError('SCHEMA_TOO_NEW', new RegExp(`schema version ${lastVersion} \\(${lastName}\\), newer than this Depot knows \\(1\\)`)));
});

void test('migrations: a recorded migration whose name differs from this version\'s is refused with SCHEMA_MISMATCH', () => {
  const dataDir = tempDir();
  const store = openStore({ dataDir });
  store.db.prepare("UPDATE schema_migrations SET name = 'something-else' WHERE version = 2").run();
  store.close();
  assert.throws(() => openSqliteStore({ dataDir }), storeError('SCHEMA_MISMATCH', /migration 2 "something-else", which this Depot knows as "lookup-indexes"/));
});

void test('open: a file of random bytes is refused with STORE_CORRUPT naming the file, and is not modified', () => {
  const dataDir = tempDir();
  const path = join(dataDir, SQLITE_FILE_NAME);
  const junk = randomBytes(8192);
  writeFileSync(path, junk, { mode: 0o600 });
  assert.throws(
    () => openSqliteStore({ dataDir }),
    storeError('STORE_CORRUPT', new RegExp(`^the store ${path} is corrupt or not an SQLite database \\(file is not a database\\); it was left untouched`)),
  );
  assert.deepEqual(readFileSync(path), junk);
  assert.equal(existsSync(`${path}-wal`), false);
});

void test('open: a database with damaged pages is refused with STORE_CORRUPT (with and without checkIntegrity)', async () => {
  const dataDir = tempDir();
  const store = openStore({ dataDir });
  for (let i = 0; i < 200; i++) {
    await store.deviceFacts.upsert(`dev-${i}`, { manufacturer: 'ACME'.repeat(20), extra: { n: i } }, T0);
  }
  store.db.pragma('wal_checkpoint(TRUNCATE)');
  store.close();
  const path = join(dataDir, SQLITE_FILE_NAME);
  const data = readFileSync(path);
  const pageSize = data.readUInt16BE(16);
  assert.ok(data.length >= pageSize * 6, `file of ${data.length} bytes`);
  // Scribble over the b-tree page header of every page but the first (which holds the schema).
  for (let page = 1; page < data.length / pageSize; page++) randomBytes(12).copy(data, page * pageSize);
  writeFileSync(path, data);
  assert.throws(() => openSqliteStore({ dataDir, checkIntegrity: true }), storeError('STORE_CORRUPT', new RegExp(`^the store ${path} `)));
  // Without the check, reading the migrations table at open finds the damage too.
  assert.throws(() => openSqliteStore({ dataDir }), storeError('STORE_CORRUPT', new RegExp(`^the store ${path} is corrupt or not an SQLite database \\(database disk image is malformed\\)`)));
});

void test('open: an SQLite file of another application is refused with NOT_A_DEPOT_STORE', () => {
  const dataDir = tempDir();
  const path = join(dataDir, SQLITE_FILE_NAME);
  const db = new Database(path);
  db.exec('CREATE TABLE songs (title TEXT)');
  db.close();
  assert.throws(() => openSqliteStore({ dataDir }), storeError('NOT_A_DEPOT_STORE', new RegExp(`^the store ${path} is an SQLite database of another application`)));
});

void test('open: a data directory that cannot be created is a STORE_IO error naming the path', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'file'), '');
  const dataDir = join(dir, 'file', 'data');
  assert.throws(() => openSqliteStore({ dataDir }), storeError('STORE_IO', new RegExp(`^cannot open the store ${join(dataDir, SQLITE_FILE_NAME)}: `)));
});

void test('durability: data written before close() is there after reopening the same file', async () => {
  const dataDir = tempDir();
  const a = openStore({ dataDir });
  await a.registrations.register(REG, T0);
  await a.settings.set('bootstrap.pin', '4711', T0);
  const op = await a.operations.enqueue({ endpoint: 'dev-1', kind: 'read', path: '/3/0' }, T0);
  a.close();
  const b = openStore({ dataDir });
  assert.deepEqual(await b.registrations.getById('r1'), {
    ...REG,
    smsNumber: null,
    identity: null,
    registeredAt: T0,
    lastUpdateAt: T0,
    expiresAt: T0 + 300_000,
  });
  assert.equal(await b.settings.get('bootstrap.pin'), '4711');
  assert.deepEqual(await b.operations.get(op.id), op);
});

void test('close: idempotent; operations after close reject with CLOSED', async () => {
  const store = openStore();
  store.close();
  store.close();
  await assert.rejects(store.registrations.getById('x'), storeError('CLOSED', /^get registration: the store is closed$/));
  await assert.rejects(store.settings.set('bootstrap.pin', '1', T0), storeError('CLOSED'));
});

void test('open: two stores on the same file (two processes or nodes) see each other\'s commits', async () => {
  const dataDir = tempDir();
  const a = openStore({ dataDir });
  const b = openStore({ dataDir });
  await a.bootstrap.sighted('dev-9', '127.0.0.1:5683', T0);
  assert.equal((await b.bootstrap.get('dev-9'))?.requestCount, 1);
  await b.bootstrap.sighted('dev-9', '127.0.0.1:5683', T0 + 1);
  assert.equal((await a.bootstrap.get('dev-9'))?.requestCount, 2);
});

void test('errors: a write lock held by another connection past the busy timeout is BUSY; schema constraints are INVALID_ARGUMENT or CONFLICT', async () => {
  const dataDir = tempDir();
  const a = openStore({ dataDir });
  const b = openStore({ dataDir, busyTimeoutMs: 50 });
  a.db.exec('BEGIN IMMEDIATE');
  const started = Date.now();
  await assert.rejects(b.registrations.register(REG, T0), storeError('BUSY', /^register: the database is locked by another connection \(database is locked\)$/));
  assert.ok(Date.now() - started >= 40, 'waited for the busy timeout');
  a.db.exec('ROLLBACK');
  await b.registrations.register(REG, T0);
  // Driver errors from the schema's own checks, as a repository would surface them.
  const { toStoreError } = await import('../../../src/store/errors.js');
  let check: unknown;
  try {
    a.db.prepare("INSERT INTO bootstrap_endpoints (endpoint, state, first_seen_at, last_seen_at, request_count) VALUES ('x', 'maybe', 0, 0, 1)").run();
  } catch (err) {
    check = toStoreError(err, 'insert');
  }
  assert.ok(check instanceof Error);
  assert.match(check.message, /^insert: CHECK constraint failed: state IN/);
  storeError('INVALID_ARGUMENT')(check);
  let unique: unknown;
  try {
    a.db.prepare("INSERT INTO registrations SELECT * FROM registrations").run();
  } catch (err) {
    unique = toStoreError(err, 'copy');
  }
  storeError('CONFLICT', /^copy: UNIQUE constraint failed: registrations\.endpoint$/)(unique);
});

void test('backup: a consistent 0600 copy that opens as a store; an existing destination is refused and left alone', async () => {
  const store = openStore();
  await store.registrations.register(REG, T0);
  await store.credentials.bind('dev-1', { kind: 'psk', identity: 'dev-1', key: Uint8Array.of(1, 2, 3, 4) }, T0);
  const backupDir = tempDir();
  const target = join(backupDir, SQLITE_FILE_NAME);
  await store.backup(target);
  assert.equal(modeOf(statSync(target)), 0o600);
  // The store goes on working after the backup; the copy has what was there at the time.
  await store.settings.set('bootstrap.pin', '1', T0);
  // The copy's sealed keys open only with the store's secret key, kept (and backed up) apart.
  assert.throws(() => openSqliteStore({ dataDir: backupDir }), storeError('SECRET_KEY_MISSING'));
  copyFileSync(join(dirname(store.path), SECRET_KEY_FILE_NAME), join(backupDir, SECRET_KEY_FILE_NAME));
  const copy = openStore({ dataDir: backupDir });
  assert.equal((await copy.registrations.getByEndpoint('dev-1'))?.id, 'r1');
  assert.deepEqual((await copy.credentials.findPsk('dev-1'))?.key.reveal(), Uint8Array.of(1, 2, 3, 4));
  assert.equal(await copy.settings.get('bootstrap.pin'), null);
  copy.close();
  const before = readFileSync(target);
  await assert.rejects(store.backup(target), storeError('STORE_IO', new RegExp(`^cannot back up the store ${store.path} to ${target}: EEXIST`)));
  assert.deepEqual(readFileSync(target), before);
});
