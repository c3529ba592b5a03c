import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { OPERATION_STATUSES, OPERATION_TRANSITIONS, type OperationStatus, type QueuedOperation } from '../../../src/store/index.js';
import { T0, openStore, storeError } from './helpers.js';

void test('operations: enqueue stores the operation as queued with no attempts', async () => {
  const { operations } = openStore();
  const op = await operations.enqueue(
    { endpoint: 'dev-1', kind: 'write', path: '/3/0/14', payload: Uint8Array.of(0x2b, 0x30, 0x31), contentFormat: 0, expiresAt: T0 + 60_000 },
    T0,
  );
  const expected: QueuedOperation = {
    id: op.id,
    endpoint: 'dev-1',
    kind: 'write',
    path: '/3/0/14',
    payload: Uint8Array.of(0x2b, 0x30, 0x31),
    contentFormat: 0,
    status: 'queued',
    createdAt: T0,
    updatedAt: T0,
    expiresAt: T0 + 60_000,
    resultCode: null,
    resultPayload: null,
    resultContentFormat: null,
    diagnostic: null,
    attempts: 0,
  };
  assert.deepEqual(op, expected);
  assert.deepEqual(await operations.get(op.id), expected);
  assert.equal(await operations.get(op.id + 1000), null);
  const bare = await operations.enqueue({ endpoint: 'dev-1', kind: 'read', path: '/3/0' }, T0);
  assert.equal(bare.id, op.id + 1);
  assert.equal(bare.payload, null);
  assert.equal(bare.contentFormat, null);
  assert.equal(bare.expiresAt, null);
});

void test('operations: FIFO per endpoint through the whole life of each operation', async () => {
  const { operations } = openStore();
  const a1 = await operations.enqueue({ endpoint: 'a', kind: 'read', path: '/3/0' }, T0);
  const b1 = await operations.enqueue({ endpoint: 'b', kind: 'execute', path: '/9/0/4' }, T0 + 1);
  const a2 = await operations.enqueue({ endpoint: 'a', kind: 'observe', path: '/9/0/7' }, T0 + 2);
  assert.equal((await operations.nextPending('a', T0 + 10))?.id, a1.id);
  assert.equal((await operations.nextPending('b', T0 + 10))?.id, b1.id);
  assert.equal(await operations.nextPending('c', T0 + 10), null);

  const sent = await operations.markSent(a1.id, T0 + 20);
  assert.equal(sent.status, 'sent');
  assert.equal(sent.attempts, 1);
  assert.equal(sent.updatedAt, T0 + 20);
  assert.equal((await operations.nextPending('a', T0 + 20))?.id, a2.id);

  // The device slept before answering: back in the queue, ahead of a2 again.
  const back = await operations.requeue(a1.id, T0 + 30);
  assert.equal(back.status, 'queued');
  assert.equal(back.attempts, 1);
  assert.equal((await operations.nextPending('a', T0 + 30))?.id, a1.id);
  await operations.markSent(a1.id, T0 + 40);
  const done = await operations.markSucceeded(a1.id, { code: '2.05', payload: Uint8Array.of(1, 2, 3), contentFormat: 11542 }, T0 + 50);
  assert.deepEqual(done, {
    ...a1,
    status: 'succeeded',
    updatedAt: T0 + 50,
    resultCode: '2.05',
    resultPayload: Uint8Array.of(1, 2, 3),
    resultContentFormat: 11542,
    attempts: 2,
  });
  await operations.markSent(a2.id, T0 + 60);
  const failed = await operations.markFailed(a2.id, { code: '4.04', diagnostic: 'no such resource' }, T0 + 70);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.resultCode, '4.04');
  assert.equal(failed.diagnostic, 'no such resource');
  assert.equal(failed.resultPayload, null);
  assert.equal(await operations.nextPending('a', T0 + 80), null);
  const cancelled = await operations.cancel(b1.id, T0 + 90);
  assert.equal(cancelled.status, 'cancelled');
  assert.equal(await operations.nextPending('b', T0 + 90), null);
});

void test('operations: the transition table is enforced for every pair; unknown ids are NOT_FOUND', async () => {
  const { operations } = openStore();
  const moves: Record<OperationStatus, ((id: number) => Promise<QueuedOperation>) | null> = {
    queued: (id) => operations.requeue(id, T0),
    sent: (id) => operations.markSent(id, T0),
    succeeded: (id) => operations.markSucceeded(id, { code: '2.04' }, T0),
    failed: (id) => operations.markFailed(id, { diagnostic: 'x' }, T0),
    cancelled: (id) => operations.cancel(id, T0),
    expired: null,
  };
  /** Brings a fresh operation into `status`. */
  const inState = async (status: OperationStatus): Promise<number> => {
    const op = await operations.enqueue({ endpoint: 'e', kind: 'read', path: '/1', expiresAt: T0 + 100 }, T0);
    if (status === 'queued') return op.id;
    if (status === 'expired') {
      await operations.expire(T0 + 100);
      return op.id;
    }
    if (status !== 'sent') await operations.markSent(op.id, T0);
    await moves[status]!(op.id);
    return op.id;
  };
  let checked = 0;
  for (const from of OPERATION_STATUSES) {
    for (const to of OPERATION_STATUSES) {
      const move = moves[to];
      if (!move) continue;
      const id = await inState(from);
      assert.equal((await operations.get(id))?.status, from);
      if (OPERATION_TRANSITIONS[from].includes(to)) {
        assert.equal((await move(id)).status, to, `${from} -> ${to}`);
      } else {
        await assert.rejects(move(id), storeError('INVALID_TRANSITION', new RegExp(`^operation ${id} is ${from} and cannot become ${to}$`)), `${from} -> ${to}`);
        assert.equal((await operations.get(id))?.status, from);
      }
      checked++;
    }
  }
  assert.equal(checked, 30);
  await assert.rejects(operations.markSent(999_999, T0), storeError('NOT_FOUND', /^no queued operation 999999$/));
});

void test('operations: expire moves queued and sent operations past their deadline, and only those', async () => {
  const { operations } = openStore();
  const q = await operations.enqueue({ endpoint: 'e', kind: 'read', path: '/1', expiresAt: T0 + 100 }, T0);
  const s = await operations.enqueue({ endpoint: 'e', kind: 'read', path: '/2', expiresAt: T0 + 50 }, T0);
  const later = await operations.enqueue({ endpoint: 'e', kind: 'read', path: '/3', expiresAt: T0 + 1000 }, T0);
  const never = await operations.enqueue({ endpoint: 'e', kind: 'read', path: '/4' }, T0);
  const done = await operations.enqueue({ endpoint: 'e', kind: 'read', path: '/5', expiresAt: T0 + 10 }, T0);
  await operations.markSent(s.id, T0 + 1);
  await operations.markSent(done.id, T0 + 1);
  await operations.markSucceeded(done.id, { code: '2.05' }, T0 + 2);

  // Not yet sent and past its deadline: no longer offered, even before the sweep.
  assert.equal((await operations.nextPending('e', T0 + 100))?.id, later.id);
  assert.deepEqual(await operations.expire(T0 + 49), []);
  const expired = await operations.expire(T0 + 100);
  assert.deepEqual(expired.map((o) => [o.id, o.status, o.updatedAt]), [[q.id, 'expired', T0 + 100], [s.id, 'expired', T0 + 100]]);
  assert.deepEqual(await operations.expire(T0 + 100), []);
  assert.equal((await operations.get(later.id))?.status, 'queued');
  assert.equal((await operations.get(never.id))?.status, 'queued');
  assert.equal((await operations.get(done.id))?.status, 'succeeded');
});

void test('operations: list by endpoint and by status page in FIFO order', async () => {
  const { operations } = openStore();
  const ids: number[] = [];
  for (let i = 0; i < 5; i++) ids.push((await operations.enqueue({ endpoint: i % 2 === 0 ? 'a' : 'b', kind: 'read', path: `/3/0/${i}` }, T0 + i)).id);
  await operations.markSent(ids[2]!, T0 + 10);
  const p1 = await operations.listByEndpoint('a', { limit: 2 });
  assert.deepEqual(p1.items.map((o) => o.path), ['/3/0/0', '/3/0/2']);
  assert.equal(p1.next, String(ids[2]));
  const p2 = await operations.listByEndpoint('a', { limit: 2, after: p1.next ?? undefined });
  assert.deepEqual(p2.items.map((o) => o.path), ['/3/0/4']);
  assert.equal(p2.next, null);
  assert.deepEqual((await operations.listByEndpoint('a', { status: 'queued' })).items.map((o) => o.path), ['/3/0/0', '/3/0/4']);
  assert.deepEqual((await operations.listByStatus('queued')).items.map((o) => o.path), ['/3/0/0', '/3/0/1', '/3/0/3', '/3/0/4']);
  const s1 = await operations.listByStatus('queued', { limit: 3 });
  assert.deepEqual(s1.items.map((o) => o.path), ['/3/0/0', '/3/0/1', '/3/0/3']);
  assert.deepEqual((await operations.listByStatus('queued', { after: s1.next ?? undefined })).items.map((o) => o.path), ['/3/0/4']);
  assert.deepEqual((await operations.listByStatus('sent')).items.map((o) => o.id), [ids[2]]);
  await assert.rejects(operations.listByStatus('queued', { after: 'x' }), storeError('INVALID_ARGUMENT', /^after is not a cursor of this list$/));
  await assert.rejects(operations.listByStatus('bogus' as OperationStatus), storeError('INVALID_ARGUMENT', /^unknown operation status bogus$/));
});

void test('operations: unknown kinds and bad content formats are refused', async () => {
  const { operations } = openStore();
  await assert.rejects(operations.enqueue({ endpoint: 'e', kind: 'fly' as 'read', path: '/1' }, T0), storeError('INVALID_ARGUMENT', /^unknown operation kind fly$/));
  await assert.rejects(operations.enqueue({ endpoint: 'e', kind: 'read', path: '/1', contentFormat: 70000 }, T0), storeError('INVALID_ARGUMENT'));
  await assert.rejects(operations.enqueue({ endpoint: 'e', kind: 'read', path: '' }, T0), storeError('INVALID_ARGUMENT', /^path must be a non-empty string$/));
  assert.deepEqual((await operations.listByEndpoint('e')).items, []);
});

void test('operations: purgeFinished deletes only finished operations last updated before the time', async () => {
  const { operations } = openStore();
  const open = await operations.enqueue({ endpoint: 'e', kind: 'read', path: '/1' }, T0);
  const sent = await operations.enqueue({ endpoint: 'e', kind: 'read', path: '/2' }, T0);
  const oldDone = await operations.enqueue({ endpoint: 'e', kind: 'read', path: '/3' }, T0);
  const newDone = await operations.enqueue({ endpoint: 'e', kind: 'read', path: '/4' }, T0);
  const cancelled = await operations.enqueue({ endpoint: 'e', kind: 'read', path: '/5' }, T0);
  await operations.markSent(sent.id, T0 + 1);
  await operations.markSent(oldDone.id, T0 + 1);
  await operations.markSucceeded(oldDone.id, { code: '2.05' }, T0 + 10);
  await operations.markFailed(newDone.id, { diagnostic: 'x' }, T0 + 100);
  await operations.cancel(cancelled.id, T0 + 20);
  assert.equal(await operations.purgeFinished(T0 + 100), 2);
  assert.deepEqual((await operations.listByEndpoint('e')).items.map((o) => o.id), [open.id, sent.id, newDone.id]);
  assert.equal(await operations.purgeFinished(T0 + 100), 0);
  assert.equal(await operations.purgeFinished(T0 + 101), 1);
});
