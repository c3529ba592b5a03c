/**
 * The install chain tables (migrations 8 and 10) in a real SQLite file: one open job per device
 * and one running attempt per job refused by the file itself; a device's jobs paged newest
 * first; a file from migration 8 holding two open jobs of one device is upgraded by ending the
 * later one with a reason; old attempts read with their implied chain position.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { MIGRATIONS } from '../../../src/store/migrations.js';
import { T0, openStore, storeError, tempDir } from './helpers.js';
import { join } from 'node:path';

const SHA = 'c'.repeat(64);
const job = (id: string, endpoint: string) => ({ id, endpoint, packageSha256: SHA, activate: false, methods: ['object9', 'mark'] });

void test('chain jobs: one open job per device (CONFLICT), again once it ended; attempts only on a running job', async () => {
  const store = openStore();
  await store.chainJobs.create(job('j1', 'dev'), T0);
  await assert.rejects(store.chainJobs.create(job('j2', 'dev'), T0), storeError('CONFLICT'));
  await assert.rejects(store.chainJobs.createMany([job('j3', 'other'), job('j4', 'dev')], T0), storeError('CONFLICT'));
  assert.equal(await store.chainJobs.get('j3'), null, 'the batch was refused whole');
  await store.chainJobs.finish('j1', 'failed', 'no method', T0 + 1);
  await assert.rejects(store.chainJobs.addAttempt('j1', { method: 'mark', position: 1, outcome: 'running', message: null, state: {} }, T0 + 2), storeError('INVALID_TRANSITION'));
  await assert.rejects(store.chainJobs.setRetry('j1', T0 + 10, 'x', T0 + 2), storeError('INVALID_TRANSITION'));
  await store.chainJobs.create(job('j2', 'dev'), T0 + 2);
  assert.deepEqual((await store.chainJobs.listOpen()).map((j) => j.id), ['j2']);
});

void test('chain jobs: a device\'s jobs page newest first (same time: by id), a bad cursor is INVALID_ARGUMENT', async () => {
  const store = openStore();
  for (let i = 0; i < 5; i++) {
    await store.chainJobs.create(job(`j${i}`, 'dev'), T0 + (i < 3 ? 0 : i));
    await store.chainJobs.finish(`j${i}`, 'succeeded', 'ok', T0 + 10);
  }
  const seen: string[] = [];
  let after: string | undefined;
  do {
    const page = await store.chainJobs.listByEndpoint('dev', { limit: 2, ...(after ? { after } : {}) });
    seen.push(...page.items.map((j) => j.id));
    after = page.next ?? undefined;
  } while (after);
  assert.deepEqual(seen, ['j4', 'j3', 'j2', 'j1', 'j0']);
  await assert.rejects(store.chainJobs.listByEndpoint('dev', { after: 'nonsense' }), storeError('INVALID_ARGUMENT'));
  assert.deepEqual((await store.chainJobs.listByEndpoint('nobody')).items, []);
});

void test('chain jobs: a file of migration 8 with two open jobs of a device keeps the older open and ends the later one saying why; old attempts get their implied position', async () => {
  const dataDir = join(tempDir(), 'data');
  const old = openStore({ dataDir, migrations: MIGRATIONS.filter((m) => m.version <= 8) });
  const insertJob = old.db.prepare("INSERT INTO install_chain_jobs (id, endpoint, package_sha256, activate, methods, state, created_at, updated_at) VALUES (?, 'dev', ?, 0, '[\"object9\",\"mark\"]', 'running', ?, ?)");
  insertJob.run('older', SHA, T0, T0);
  insertJob.run('later', SHA, T0 + 5, T0 + 5);
  const insertAttempt = old.db.prepare("INSERT INTO install_chain_attempts (job_id, seq, method, started_at, ended_at, outcome, state) VALUES (?, ?, ?, ?, ?, ?, '{}')");
  insertAttempt.run('older', 1, 'object9', T0, T0, 'skipped');
  insertAttempt.run('older', 2, 'mark', T0, null, 'running');
  insertAttempt.run('later', 1, 'mark', T0 + 5, null, 'running');
  old.close();

  const store = openStore({ dataDir });
  assert.deepEqual((await store.chainJobs.listOpen()).map((j) => j.id), ['older']);
  const later = (await store.chainJobs.get('later'))!;
  assert.equal(later.state, 'failed');
  assert.equal(later.message, 'Ended by the store upgrade: the device had an older open install job (one open job per device).');
  assert.deepEqual((await store.chainJobs.attempts('later')).map((a) => [a.outcome, a.message]), [['cancelled', 'ended by the store upgrade (its job ended)']]);
  const attempts = await store.chainJobs.attempts('older');
  assert.deepEqual(attempts.map((a) => [a.method, a.position, a.outcome, a.bytes]), [['object9', 0, 'skipped', null], ['mark', 1, 'running', null]]);
  assert.equal((await store.chainJobs.get('older'))!.plan.chosenBy, 'operator', 'jobs from before plans read as the operator\'s chain');
});

void test('chain jobs: a succeeded attempt ends its job in the same commit (finish); only a success may; a progress save (not fsynced) is stored like any other', async () => {
  const dataDir = join(tempDir(), 'data');
  const store = openStore({ dataDir });
  await store.chainJobs.create(job('j1', 'dev'), T0);
  const a = await store.chainJobs.addAttempt('j1', { method: 'object9', position: 0, outcome: 'running', message: 'Beginning.', state: {} }, T0);
  await store.chainJobs.saveAttempt('j1', a.seq, { object9JobId: 'o9' }, 'queued', T0 + 1, null, 'object9: queued');
  await store.chainJobs.saveAttempt('j1', a.seq, { object9JobId: 'o9' }, 'downloading', T0 + 2, 512, 'object9: downloading', true);
  await assert.rejects(store.chainJobs.endAttempt('j1', a.seq, 'failed', 'x', null, T0 + 3, null, undefined, undefined, { message: 'no' }), storeError('INVALID_ARGUMENT'));
  assert.equal((await store.chainJobs.get('j1'))?.state, 'running', 'the refused end changed nothing');
  store.close();

  // Reopened: the progress save survived the close (a process crash keeps it too: WAL, synchronous=NORMAL).
  const again = openStore({ dataDir });
  const [running] = await again.chainJobs.attempts('j1');
  assert.equal(running?.message, 'downloading');
  assert.equal(running?.bytes, 512);
  assert.deepEqual(running?.state, { object9JobId: 'o9' });
  await again.chainJobs.endAttempt('j1', a.seq, 'succeeded', 'installed', null, T0 + 4, 4096, undefined, undefined, { message: 'Installed by object9: installed' });
  const ended = await again.chainJobs.get('j1');
  assert.equal(ended?.state, 'succeeded');
  assert.equal(ended?.message, 'Installed by object9: installed');
  assert.equal(ended?.finishedAt, T0 + 4);
  assert.deepEqual((await again.chainJobs.listOpen()).map((j) => j.id), []);
  await assert.rejects(again.chainJobs.finish('j1', 'failed', 'late', T0 + 5), storeError('INVALID_TRANSITION'));
});
