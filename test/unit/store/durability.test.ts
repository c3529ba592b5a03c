import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import type { Statement } from 'better-sqlite3';

import { Statements } from '../../../src/store/sqlite/common.js';
import { T0, newRegistration, openStore } from './helpers.js';

const FULL = 2;
const NORMAL = 1;

/** Records PRAGMA synchronous at every commit of the connection (SQLite's commit hook is not exposed: the repository's statements are wrapped instead). */
function levelsAtWrites(store: ReturnType<typeof openStore>, run: () => Promise<unknown>): Promise<number[]> {
  const levels: number[] = [];
  const original = Object.getOwnPropertyDescriptor(Statements.prototype, 'get')!.value as (this: Statements, sql: string) => Statement;
  const db = store.db;
  Statements.prototype.get = function (this: Statements, sql: string) {
    const stmt = original.call(this, sql);
    if (/^\s*(INSERT|UPDATE|DELETE)/i.test(sql)) levels.push(db.pragma('synchronous', { simple: true }) as number);
    return stmt;
  };
  return run().then(
    () => {
      Statements.prototype.get = original;
      return levels;
    },
    (error: unknown) => {
      Statements.prototype.get = original;
      throw error;
    },
  );
}


void test('durability: registrations and device facts commit with synchronous=NORMAL, then the connection is back at FULL', async () => {
  const store = openStore();
  assert.equal(store.db.pragma('synchronous', { simple: true }), FULL);
  const levels = await levelsAtWrites(store, async () => {
    await store.registrations.register(newRegistration('a', 'id-a'), T0);
    await store.registrations.update('id-a', { lifetimeSec: 120 }, T0 + 1);
    await store.deviceFacts.upsert('a', { manufacturer: 'Acme' }, T0);
    await store.deviceFacts.delete('a');
    await store.registrations.delete('id-a');
  });
  assert.ok(levels.length >= 5, `saw ${levels.length} writes`);
  assert.deepEqual(new Set(levels), new Set([NORMAL]));
  assert.equal(store.db.pragma('synchronous', { simple: true }), FULL);
});

void test('durability: queued operations, credentials and the bootstrap gate stay at FULL', async () => {
  const store = openStore();
  await store.registrations.register(newRegistration('a', 'id-a'), T0); // a soft write before: must not leak its level
  const levels = await levelsAtWrites(store, async () => {
    const op = await store.operations.enqueue({ endpoint: 'a', kind: 'read', path: '/3/0' }, T0);
    await store.operations.markSent(op.id, T0 + 1);
    await store.credentials.bind('a', { kind: 'psk', identity: 'a', key: new Uint8Array(16) }, T0);
    await store.bootstrap.sighted('a', null, T0);
  });
  assert.ok(levels.length >= 4, `saw ${levels.length} writes`);
  assert.deepEqual(new Set(levels), new Set([FULL]));
});

void test('durability: a failing soft write restores FULL; a store opened NORMAL stays NORMAL', async () => {
  const store = openStore();
  await store.registrations.register(newRegistration('a', 'id-a'), T0);
  await assert.rejects(store.registrations.register(newRegistration('b', 'id-a'), T0)); // id held by another endpoint: CONFLICT
  assert.equal(store.db.pragma('synchronous', { simple: true }), FULL);

  const normal = openStore({ synchronous: 'NORMAL' });
  await normal.registrations.register(newRegistration('a', 'id-a'), T0);
  await normal.operations.enqueue({ endpoint: 'a', kind: 'read', path: '/3/0' }, T0);
  assert.equal(normal.db.pragma('synchronous', { simple: true }), NORMAL);
});

void test('durability: an install job is created (and cancelled) durably; its progress (updates, device-driven transitions) is soft', async () => {
  const store = openStore();
  const created = await levelsAtWrites(store, () => store.installJobs.create({ id: 'j1', kind: 'install', endpoint: 'a', packageSha256: null, method: 'pull', activate: false }, T0));
  assert.deepEqual(new Set(created), new Set([FULL]));
  const progress = await levelsAtWrites(store, async () => {
    await store.installJobs.transition('j1', 'downloading', 'Package URI written', { downloadToken: 't', tokenExpiresAt: T0 + 1000 }, T0 + 1);
    await store.installJobs.update('j1', { lastUpdateState: 2, lastUpdateResult: 1 }, T0 + 2);
    await store.installJobs.transition('j1', 'delivered', 'device reports DELIVERED', { downloadToken: null }, T0 + 3);
  });
  assert.ok(progress.length >= 3, `saw ${progress.length} writes`);
  assert.deepEqual(new Set(progress), new Set([NORMAL]));
  const cancelled = await levelsAtWrites(store, () => store.installJobs.transition('j1', 'cancelled', 'cancelled by the operator', {}, T0 + 4));
  assert.deepEqual(new Set(cancelled), new Set([FULL]));
  assert.equal(store.db.pragma('synchronous', { simple: true }), FULL);
});
