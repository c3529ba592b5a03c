import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { BOOTSTRAP_STATES, BOOTSTRAP_TRANSITIONS, type BootstrapState } from '../../../src/store/index.js';
import { T0, openStore, storeError } from './helpers.js';

void test('bootstrap: a new endpoint starts pending; further requests count and move last-seen', async () => {
  const { bootstrap } = openStore();
  const first = await bootstrap.sighted('dev-1', '127.0.0.1:5683', T0);
  assert.deepEqual(first, {
    endpoint: 'dev-1',
    state: 'pending',
    firstSeenAt: T0,
    lastSeenAt: T0,
    decidedAt: null,
    decidedBy: null,
    requestCount: 1,
    lastPeerAddress: '127.0.0.1:5683',
    lastTransport: null,
    boundIdentity: null,
    bootstrapCount: 0,
    lastBootstrapAt: null,
    rotateKeyRequested: false,
    refusedCount: 0,
    lastRefusal: null,
    lastRefusedAt: null,
  });
  const again = await bootstrap.sighted('dev-1', '[::1]:40001', T0 + 5000);
  assert.deepEqual(again, { ...first, lastSeenAt: T0 + 5000, requestCount: 2, lastPeerAddress: '[::1]:40001' });
  // A request with an older timestamp (another node's clock) does not move last-seen back.
  const late = await bootstrap.sighted('dev-1', null, T0 + 1000);
  assert.deepEqual(late, { ...again, requestCount: 3, lastPeerAddress: null });
  assert.deepEqual(await bootstrap.get('dev-1'), late);
  assert.equal(await bootstrap.get('dev-2'), null);
});

void test('bootstrap: accept and reject record who decided and when; sightings keep the decision', async () => {
  const { bootstrap } = openStore();
  await bootstrap.sighted('a', null, T0);
  await bootstrap.sighted('r', null, T0);
  const a = await bootstrap.accept('a', 'operator:alice', T0 + 10);
  assert.equal(a.state, 'accepted');
  assert.equal(a.decidedAt, T0 + 10);
  assert.equal(a.decidedBy, 'operator:alice');
  const r = await bootstrap.reject('r', 'pin', T0 + 20);
  assert.deepEqual([r.state, r.decidedAt, r.decidedBy], ['rejected', T0 + 20, 'pin']);
  const seen = await bootstrap.sighted('a', '127.0.0.1:1', T0 + 30);
  assert.deepEqual([seen.state, seen.requestCount, seen.decidedBy], ['accepted', 2, 'operator:alice']);
});

void test('bootstrap: every pair of states is checked against the transition table; unknown endpoints are NOT_FOUND', async () => {
  const { bootstrap } = openStore();
  const move = {
    pending: (e: string) => bootstrap.reset(e, 'op', T0 + 2),
    accepted: (e: string) => bootstrap.accept(e, 'op', T0 + 2),
    rejected: (e: string) => bootstrap.reject(e, 'op', T0 + 2),
  };
  let n = 0;
  for (const from of BOOTSTRAP_STATES) {
    for (const to of BOOTSTRAP_STATES) {
      const e = `dev-${n++}`;
      await bootstrap.sighted(e, null, T0);
      if (from !== 'pending') await move[from](e);
      assert.equal((await bootstrap.get(e))?.state, from);
      if (BOOTSTRAP_TRANSITIONS[from].includes(to)) {
        assert.equal((await move[to](e)).state, to);
      } else {
        await assert.rejects(move[to](e), storeError('INVALID_TRANSITION', new RegExp(`^bootstrap endpoint ${e} is ${from} and cannot become ${to}$`)));
        assert.equal((await bootstrap.get(e))?.state, from);
      }
    }
  }
  assert.equal(n, 9);
  // Only a reset reopens a decision.
  await bootstrap.sighted('x', null, T0);
  await bootstrap.accept('x', 'op', T0 + 1);
  await assert.rejects(bootstrap.reject('x', 'op', T0 + 2), storeError('INVALID_TRANSITION', /^bootstrap endpoint x is accepted and cannot become rejected$/));
  await bootstrap.reset('x', 'op2', T0 + 3);
  const rejected = await bootstrap.reject('x', 'op3', T0 + 4);
  assert.deepEqual([rejected.state, rejected.decidedBy, rejected.decidedAt], ['rejected', 'op3', T0 + 4]);
  await assert.rejects(bootstrap.accept('never-seen', 'op', T0), storeError('NOT_FOUND', /^bootstrap endpoint never-seen was never seen$/));
});

void test('bootstrap: list by state, paged in endpoint order', async () => {
  const { bootstrap } = openStore();
  const states: Record<string, BootstrapState> = { e1: 'pending', e2: 'accepted', e3: 'pending', e4: 'rejected', e5: 'pending', e6: 'accepted' };
  for (const [e, s] of Object.entries(states)) {
    await bootstrap.sighted(e, null, T0);
    if (s === 'accepted') await bootstrap.accept(e, 'op', T0);
    if (s === 'rejected') await bootstrap.reject(e, 'op', T0);
  }
  const p1 = await bootstrap.list('pending', { limit: 2 });
  assert.deepEqual(p1.items.map((b) => b.endpoint), ['e1', 'e3']);
  assert.equal(p1.next, 'e3');
  const p2 = await bootstrap.list('pending', { limit: 2, after: 'e3' });
  assert.deepEqual(p2.items.map((b) => b.endpoint), ['e5']);
  assert.equal(p2.next, null);
  assert.deepEqual((await bootstrap.list('accepted')).items.map((b) => b.endpoint), ['e2', 'e6']);
  assert.deepEqual((await bootstrap.list('rejected')).items.map((b) => b.endpoint), ['e4']);
  assert.deepEqual((await bootstrap.list()).items.map((b) => b.endpoint), ['e1', 'e2', 'e3', 'e4', 'e5', 'e6']);
  await assert.rejects(bootstrap.list('maybe' as BootstrapState), storeError('INVALID_ARGUMENT', /^unknown bootstrap state maybe$/));
});
