/**
 * OMA DM accounts in the real SQLite store (src/store/sqlite/omadm-accounts.ts): the password is
 * sealed at rest and bound to its row, the nonce is replaced durably, bad input is refused
 * before anything is written.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import { StoreError } from '../../../src/store/errors.js';

function withStore(fn: (open: (key?: Uint8Array) => ReturnType<typeof openSqliteStore>) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'depot-omadm-accounts-'));
    const key = randomBytes(32);
    try {
      await fn((other) => openSqliteStore({ dataDir: dir, secretKey: other ?? key }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('an account round-trips; its password is not in the file in clear; setNonce replaces the nonce', withStore(async (open) => {
  const store = open();
  await store.omadmAccounts.put({ deviceId: 'IMEI:1', clientUsername: 'IMEI:1', clientPassword: 'very-secret-password' }, Buffer.from('n1'), 1000);
  const got = await store.omadmAccounts.get('IMEI:1');
  assert.equal(got?.clientPassword, 'very-secret-password');
  assert.deepEqual(Buffer.from(got.clientNonce), Buffer.from('n1'));
  const raw = store.db.prepare('SELECT client_password FROM omadm_accounts').get() as { client_password: Buffer };
  assert.equal(raw.client_password.includes(Buffer.from('very-secret')), false);
  assert.equal(await store.omadmAccounts.setNonce('IMEI:1', Buffer.from('n2'), 2000), true);
  assert.deepEqual(Buffer.from((await store.omadmAccounts.get('IMEI:1'))!.clientNonce), Buffer.from('n2'));
  assert.equal(await store.omadmAccounts.setNonce('IMEI:unknown', Buffer.from('n2'), 2000), false);
  // Replacing the password keeps the nonce the device holds.
  await store.omadmAccounts.put({ deviceId: 'IMEI:1', clientUsername: 'IMEI:1', clientPassword: 'another-password' }, Buffer.from('ignored'), 3000);
  assert.deepEqual(Buffer.from((await store.omadmAccounts.get('IMEI:1'))!.clientNonce), Buffer.from('n2'));
  assert.deepEqual((await store.omadmAccounts.list()).map((a) => a.deviceId), ['IMEI:1']);
  assert.equal(await store.omadmAccounts.remove('IMEI:1'), true);
  assert.equal(await store.omadmAccounts.get('IMEI:1'), null);
  store.close();
}));

test('a sealed password copied to another row, or opened with another key, is refused as corrupt', withStore(async (open) => {
  const store = open();
  await store.omadmAccounts.put({ deviceId: 'A', clientUsername: 'A', clientPassword: 'password-a' }, Buffer.from('n'), 1);
  await store.omadmAccounts.put({ deviceId: 'B', clientUsername: 'B', clientPassword: 'password-b' }, Buffer.from('n'), 1);
  store.db.prepare("UPDATE omadm_accounts SET client_password = (SELECT client_password FROM omadm_accounts WHERE device_id = 'A') WHERE device_id = 'B'").run();
  await assert.rejects(store.omadmAccounts.get('B'), (e: unknown) => e instanceof StoreError && e.code === 'STORE_CORRUPT');
  store.close();
  // The store's key check refuses another key at open, before any account is read.
  assert.throws(() => open(randomBytes(32)), (e: unknown) => e instanceof StoreError && e.code === 'SECRET_KEY_MISMATCH');
}));

test('bad input is refused before anything is written', withStore(async (open) => {
  const store = open();
  for (const input of [
    { deviceId: '', clientUsername: 'u', clientPassword: 'p' },
    { deviceId: 'x'.repeat(129), clientUsername: 'u', clientPassword: 'p' },
    { deviceId: 'IMEI:\n1', clientUsername: 'u', clientPassword: 'p' },
    { deviceId: 'IMEI:1', clientUsername: 'u', clientPassword: '' },
    { deviceId: 'IMEI:1', clientUsername: 'u', clientPassword: 'p'.repeat(257) },
  ]) {
    await assert.rejects(store.omadmAccounts.put(input, Buffer.from('n'), 1), StoreError);
  }
  assert.deepEqual(await store.omadmAccounts.list(), []);
  store.close();
}));

test('server credentials: sealed and bound to their row, set and cleared, bad input refused; setServerNonce replaces the nonce', withStore(async (open) => {
  const store = open();
  await store.omadmAccounts.put({ deviceId: 'S1', clientUsername: 'S1', clientPassword: 'client-pw-1' }, Buffer.from('n'), 1);
  await store.omadmAccounts.put({ deviceId: 'S2', clientUsername: 'S2', clientPassword: 'client-pw-2' }, Buffer.from('n'), 1);
  assert.equal((await store.omadmAccounts.get('S1'))?.serverId, undefined);
  assert.equal(await store.omadmAccounts.setServerCredentials('S1', { serverId: 'depot', serverPassword: 'server-secret-1', serverNonce: Buffer.from('sn') }, 2), true);
  assert.equal(await store.omadmAccounts.setServerCredentials('nobody', { serverId: 'depot', serverPassword: 'server-secret-x' }, 2), false);
  const got = await store.omadmAccounts.get('S1');
  assert.deepEqual([got?.serverId, got?.serverPassword, Buffer.from(got!.serverNonce!).toString(), got?.serverCredentialsFrom], ['depot', 'server-secret-1', 'sn', 'account']);
  const raw = store.db.prepare("SELECT server_password FROM omadm_accounts WHERE device_id = 'S1'").get() as { server_password: Buffer };
  assert.equal(raw.server_password.includes(Buffer.from('server-secret')), false);
  assert.equal(await store.omadmAccounts.setServerNonce('S1', Buffer.from('sn2'), 3), true);
  assert.equal(Buffer.from((await store.omadmAccounts.get('S1'))!.serverNonce!).toString(), 'sn2');
  // Re-putting the client credentials keeps the server's.
  await store.omadmAccounts.put({ deviceId: 'S1', clientUsername: 'S1', clientPassword: 'client-pw-new' }, Buffer.from('n'), 4);
  assert.equal((await store.omadmAccounts.get('S1'))?.serverPassword, 'server-secret-1');
  for (const bad of [{ serverId: '', serverPassword: 'x' }, { serverId: 'depot', serverPassword: '' }, { serverId: 'a\u0000b', serverPassword: 'x' }, { serverId: 'depot', serverPassword: 'x'.repeat(257) }]) {
    await assert.rejects(store.omadmAccounts.setServerCredentials('S1', bad, 5), (e: unknown) => e instanceof StoreError);
  }
  // Copied to another row, the sealed server password does not open.
  store.db.prepare("UPDATE omadm_accounts SET server_id = 'depot', server_password = (SELECT server_password FROM omadm_accounts WHERE device_id = 'S1') WHERE device_id = 'S2'").run();
  await assert.rejects(store.omadmAccounts.get('S2'), (e: unknown) => e instanceof StoreError && e.code === 'STORE_CORRUPT');
  assert.equal(await store.omadmAccounts.setServerCredentials('S1', null, 6), true);
  assert.equal((await store.omadmAccounts.get('S1'))?.serverId, undefined);
  store.close();
}));
