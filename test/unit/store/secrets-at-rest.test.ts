/**
 * Secrets at rest: PSK keys (device and bootstrap) are sealed with AES-256-GCM under a key kept
 * apart from depot.sqlite (DEPOT_SECRET_KEY, else <dataDir>/secrets.key). Real SQLite files.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import Database from 'better-sqlite3';

import { MIGRATIONS, SECRET_KEY_ENV, SECRET_KEY_FILE_NAME, SQLITE_FILE_NAME, openSqliteStore } from '../../../src/store/index.js';
import { T0, modeOf, openStore, storeError, tempDir } from './helpers.js';

const DEVICE_KEY = Buffer.from('d3v1ce-psk-0123456789', 'utf8');
const BOOTSTRAP_KEY = Buffer.from('b00tstrap-psk-9876543210', 'utf8');

/** Every byte of the store's files: main file, and the WAL if one is left. */
function rawBytes(dataDir: string): Buffer {
  const main = join(dataDir, SQLITE_FILE_NAME);
  return Buffer.concat([readFileSync(main), ...(existsSync(main + '-wal') ? [readFileSync(main + '-wal')] : [])]);
}

void test('secrets at rest: device and bootstrap PSKs are not in the database file; the key file is made once, 0400, beside it', async () => {
  const dataDir = join(tempDir(), 'data');
  const store = openStore({ dataDir });
  const keyFile = join(dataDir, SECRET_KEY_FILE_NAME);
  assert.equal(modeOf(statSync(keyFile)), 0o400);
  const keyText = readFileSync(keyFile, 'utf8');
  assert.match(keyText, /^[0-9a-f]{64}\n$/);
  await store.credentials.bind('dev-1', { kind: 'psk', identity: 'dev-1', key: DEVICE_KEY }, T0);
  await store.bootstrapCredentials.add({ kind: 'psk', identity: 'factory-batch-7', key: BOOTSTRAP_KEY }, T0);
  // They come back whole through the repositories.
  assert.deepEqual(Buffer.from((await store.credentials.findPsk('dev-1'))!.key.reveal()), DEVICE_KEY);
  assert.deepEqual(Buffer.from((await store.bootstrapCredentials.find('psk', 'factory-batch-7'))!.key!.reveal()), BOOTSTRAP_KEY);
  store.close();
  // A copy of the database file alone, into a directory of its own.
  const copyDir = join(tempDir(), 'copy');
  mkdirSync(copyDir);
  copyFileSync(join(dataDir, SQLITE_FILE_NAME), join(copyDir, SQLITE_FILE_NAME));
  const raw = rawBytes(copyDir);
  assert.ok(raw.includes(Buffer.from('dev-1')), 'the identities are there (the search works)');
  assert.equal(raw.includes(DEVICE_KEY), false, 'the device PSK is in the file');
  assert.equal(raw.includes(BOOTSTRAP_KEY), false, 'the bootstrap PSK is in the file');
  assert.equal(raw.includes(Buffer.from(keyText.trim(), 'hex')), false, 'the secret key is in the file');
  // Without the key: a clear refusal, and no new key file made (that would seal new rows under another key).
  assert.throws(() => openSqliteStore({ dataDir: copyDir }), storeError('SECRET_KEY_MISSING', /holds secrets sealed with a key that is not here.*secrets\.key.*DEPOT_SECRET_KEY/));
  assert.equal(existsSync(join(copyDir, SECRET_KEY_FILE_NAME)), false);
  // With a wrong key, from the environment or given: a clear refusal, not an empty or garbled result.
  const saved = process.env[SECRET_KEY_ENV];
  process.env[SECRET_KEY_ENV] = randomBytes(32).toString('hex');
  try {
    assert.throws(() => openSqliteStore({ dataDir: copyDir }), storeError('SECRET_KEY_MISMATCH', /the secret key from DEPOT_SECRET_KEY does not open the secrets of the store/));
    // The right key from the environment (hex or base64) takes precedence over a (missing) file.
    process.env[SECRET_KEY_ENV] = Buffer.from(keyText.trim(), 'hex').toString('base64');
    const reopened = openSqliteStore({ dataDir: copyDir });
    assert.deepEqual(Buffer.from((await reopened.credentials.findPsk('dev-1'))!.key.reveal()), DEVICE_KEY);
    reopened.close();
    process.env[SECRET_KEY_ENV] = 'not-a-key';
    assert.throws(() => openSqliteStore({ dataDir: copyDir }), storeError('SECRET_KEY_INVALID', /DEPOT_SECRET_KEY must be 32 bytes/));
  } finally {
    if (saved === undefined) delete process.env[SECRET_KEY_ENV];
    else process.env[SECRET_KEY_ENV] = saved;
  }
  assert.throws(() => openSqliteStore({ dataDir: copyDir, secretKey: randomBytes(32) }), storeError('SECRET_KEY_MISMATCH'));
});

void test('secrets at rest: a sealed key moved to another row does not open (the associated data names kind and identity)', async () => {
  const store = openStore();
  await store.credentials.bind('dev-a', { kind: 'psk', identity: 'id-a', key: DEVICE_KEY }, T0);
  await store.credentials.bind('dev-b', { kind: 'psk', identity: 'id-b', key: Buffer.from('other-key') }, T0);
  // The attacker with write access to the file swaps a's sealed key into b's row.
  store.db.prepare("UPDATE credentials SET secret = (SELECT secret FROM credentials WHERE identity = 'id-a') WHERE identity = 'id-b'").run();
  await assert.rejects(store.credentials.findPsk('id-b'), storeError('STORE_CORRUPT', /PSK credential id-b does not open/));
  assert.deepEqual(Buffer.from((await store.credentials.findPsk('id-a'))!.key.reveal()), DEVICE_KEY);
});

void test('secrets at rest: plain keys of an older store are sealed on first open, once (idempotent), and still work', async () => {
  const dataDir = join(tempDir(), 'data');
  // A store as Depot wrote it before sealing (migrations 1-4: plain keys in the secret column).
  const old = openSqliteStore({ dataDir, migrations: MIGRATIONS.slice(0, 4) });
  old.db.prepare("INSERT INTO credentials (kind, identity, endpoint, secret, created_at, updated_at) VALUES ('psk', 'old-id', 'old-dev', ?, ?, ?)").run(DEVICE_KEY, T0, T0);
  old.close();
  assert.ok(rawBytes(dataDir).includes(DEVICE_KEY), 'the old file has the plain key');
  const store = openSqliteStore({ dataDir });
  assert.deepEqual(Buffer.from((await store.credentials.findPsk('old-id'))!.key.reveal()), DEVICE_KEY);
  const sealedOnce = store.db.prepare("SELECT secret FROM credentials WHERE identity = 'old-id'").pluck().get() as Buffer;
  store.close();
  assert.equal(rawBytes(dataDir).includes(DEVICE_KEY), false, 'the plain key is gone from the file and the WAL');
  // Opening again seals nothing twice.
  const again = openSqliteStore({ dataDir });
  assert.deepEqual(again.db.prepare("SELECT secret FROM credentials WHERE identity = 'old-id'").pluck().get(), sealedOnce);
  assert.deepEqual(Buffer.from((await again.credentials.findPsk('old-id'))!.key.reveal()), DEVICE_KEY);
  again.close();
  const db = new Database(join(dataDir, SQLITE_FILE_NAME), { readonly: true });
  assert.equal(db.prepare('SELECT count(*) FROM credentials WHERE sealed = 0').pluck().get(), 0);
  db.close();
});

void test('bootstrap credentials: a PSK identity is a bootstrap credential or a device credential, never both', async () => {
  const store = openStore();
  await store.bootstrapCredentials.add({ kind: 'psk', identity: 'batch-1', key: BOOTSTRAP_KEY }, T0);
  await assert.rejects(store.credentials.bind('dev-1', { kind: 'psk', identity: 'batch-1', key: DEVICE_KEY }, T0), storeError('CONFLICT', /is a bootstrap credential/));
  await store.credentials.bind('dev-1', { kind: 'psk', identity: 'dev-1', key: DEVICE_KEY }, T0);
  await assert.rejects(store.bootstrapCredentials.add({ kind: 'psk', identity: 'dev-1', key: BOOTSTRAP_KEY }, T0), storeError('CONFLICT', /is a device credential/));
  await assert.rejects(store.bootstrapCredentials.add({ kind: 'psk', identity: 'batch-1', key: DEVICE_KEY }, T0), storeError('CONFLICT', /exists already/));
  const perDevice = await store.bootstrapCredentials.add({ kind: 'psk', identity: 'factory-dev-9', key: BOOTSTRAP_KEY, endpoint: 'dev-9' }, T0);
  assert.equal(perDevice.scope, 'device');
  assert.equal(JSON.stringify(perDevice).includes(BOOTSTRAP_KEY.toString()), false, 'keys are redacted in JSON');
  // A per-device bootstrap credential claims its name: it may then only register with credentials.
  assert.equal(await store.credentials.hasCredentials('dev-9'), true);
  assert.equal(await store.credentials.hasCredentials('dev-1'), true);
  assert.equal(await store.credentials.hasCredentials('nobody'), false);
  const listed = await store.bootstrapCredentials.list({ limit: 1 });
  assert.deepEqual(listed.items.map((c) => [c.identity, c.scope, c.endpoint]), [['batch-1', 'batch', null]]);
  const next = await store.bootstrapCredentials.list({ after: listed.next! });
  assert.deepEqual(next.items.map((c) => c.identity), ['factory-dev-9']);
  assert.equal(await store.bootstrapCredentials.remove('psk', 'batch-1'), true);
});
