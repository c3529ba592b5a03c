import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { openSqliteStore } from '../../../src/store/index.js';
import Database from 'better-sqlite3';
import { durableWrite, softWrite, softWriteStats } from '../../../src/store/sqlite/batch.js';
import { Statements } from '../../../src/store/sqlite/common.js';
import { T0, newRegistration, openStore, storeError, tempDir } from './helpers.js';

void test('group commit: soft writes asked for in one turn are committed together, each settled with its own result', async () => {
  const { registrations, deviceFacts } = openStore();
  const before = softWriteStats();
  const results = await Promise.all([
    ...Array.from({ length: 100 }, (_, i) => registrations.register(newRegistration(`ep-${i}`, `id-${i}`), T0)),
    deviceFacts.upsert('ep-1', { manufacturer: 'Acme' }, T0),
  ]);
  const after = softWriteStats();
  assert.equal(after.writes - before.writes, 101);
  // One turn of the event loop: one commit (the bound is 512 writes per commit).
  assert.equal(after.commits - before.commits, 1);
  for (let i = 0; i < 100; i++) assert.equal((results[i] as { registration: { endpoint: string } }).registration.endpoint, `ep-${i}`);
  assert.equal((await deviceFacts.get('ep-1'))?.manufacturer, 'Acme');
  assert.equal((await registrations.list({ limit: 1000 })).items.length, 100);
});

void test('group commit: a failing write fails alone; the others of its batch are kept', async () => {
  const { registrations } = openStore();
  await registrations.register(newRegistration('holder', 'taken'), T0);
  const outcomes = await Promise.allSettled([
    registrations.register(newRegistration('a', 'id-a'), T0),
    // The id belongs to another endpoint: CONFLICT, and only this write is lost.
    registrations.register(newRegistration('b', 'taken'), T0),
    registrations.register(newRegistration('c', 'id-c'), T0),
    registrations.update('id-a', { lifetimeSec: 60 }, T0 + 1),
  ]);
  assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
  assert.ok(storeError('CONFLICT', /already used by endpoint holder/)((outcomes[1] as PromiseRejectedResult).reason));
  assert.equal((await registrations.getByEndpoint('a'))?.lifetimeSec, 60);
  assert.equal(await registrations.getByEndpoint('b'), null);
  assert.equal((await registrations.getById('taken'))?.endpoint, 'holder');
  assert.ok(await registrations.getByEndpoint('c'));
});

void test('group commit: a write is not visible before its promise settles, and closing the store commits what is queued', async () => {
  const dataDir = `${tempDir()}/data`;
  const store = openSqliteStore({ dataDir });
  const pending = store.registrations.register(newRegistration('late', 'id-late'), T0);
  // Queued for the end of this turn: not written yet.
  assert.equal(await store.registrations.getByEndpoint('late').then((r) => r, () => null), null);
  store.close();
  await pending;
  const again = openSqliteStore({ dataDir });
  try {
    assert.equal((await again.registrations.getByEndpoint('late'))?.id, 'id-late');
  } finally {
    again.close();
  }
});

void test('group commit: a durable write commits its whole batch at the configured level (FULL), settled only once committed; it fails alone', async () => {
  const path = `${tempDir()}/durable.sqlite`;
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL) STRICT');
  const s = new Statements(db);
  const reader = new Database(path, { readonly: true });
  const level = (): number => db.pragma('synchronous', { simple: true }) as number;
  const put = (k: string, v: string) => (): number => {
    s.get('INSERT INTO t (k, v) VALUES (?, ?)').run(k, v);
    return level();
  };
  try {
    // Soft writes alone: NORMAL for their commit.
    assert.equal(await softWrite(s, 'soft alone', put('a', '1')), 1);
    const before = softWriteStats();
    const durable = durableWrite(s, 'durable', put('b', '2')).then((lvl) => {
      // Settled after the commit: another connection sees the row.
      assert.equal((reader.prepare('SELECT v FROM t WHERE k = ?').get('b') as { v: string } | undefined)?.v, '2');
      return lvl;
    });
    const outcomes = await Promise.allSettled([
      softWrite(s, 'soft with a durable one', put('c', '3')),
      durable,
      durableWrite(s, 'durable duplicate', put('a', 'dup')),
    ]);
    assert.deepEqual(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : 'rejected')), [2, 2, 'rejected'], 'the batch committed with FULL; the failing write alone lost');
    assert.ok(storeError('CONFLICT', /durable duplicate/)((outcomes[2] as PromiseRejectedResult).reason));
    assert.equal(softWriteStats().writes - before.writes, 3);
    assert.deepEqual((reader.prepare('SELECT k, v FROM t ORDER BY k').all() as { k: string; v: string }[]).map((r) => `${r.k}=${r.v}`), ['a=1', 'b=2', 'c=3']);
    // The connection's level is FULL again, and the next soft batch is NORMAL.
    assert.equal(level(), 2);
    assert.equal(await softWrite(s, 'soft after', put('d', '4')), 1);
  } finally {
    reader.close();
    db.close();
  }
});
