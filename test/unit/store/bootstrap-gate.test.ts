/**
 * The bootstrap gate's bounds and records (store level, real SQLite files): undecided records are
 * bounded per source and in total and expire; refusals never create records; the first binding wins.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { T0, openStore, storeError } from './helpers.js';

const LIMITS = { maxPerSource: 2, maxTotal: 3, ttlMs: 1000 };
const from = (sourceHost: string) => ({ sourceHost, peerAddress: `${sourceHost}:5683`, transport: 'coaps' as const });

void test('bootstrap gate: new names are admitted under the per-source and total bounds; a known name is always counted, with its last address', async () => {
  const { bootstrap } = openStore();
  assert.equal((await bootstrap.request('a1', from('10.0.0.1'), LIMITS, T0)).admitted, true);
  assert.equal((await bootstrap.request('a2', from('10.0.0.1'), LIMITS, T0)).admitted, true);
  assert.deepEqual(await bootstrap.request('a3', from('10.0.0.1'), LIMITS, T0), { admitted: false, reason: 'source-limit' });
  assert.equal(await bootstrap.get('a3'), null);
  assert.equal((await bootstrap.request('b1', from('10.0.0.2'), LIMITS, T0)).admitted, true);
  assert.deepEqual(await bootstrap.request('b2', from('10.0.0.2'), LIMITS, T0), { admitted: false, reason: 'total-limit' });
  const again = await bootstrap.request('a1', { sourceHost: '10.0.0.9', peerAddress: '10.0.0.9:1234', transport: 'coap' }, LIMITS, T0 + 10);
  assert.ok(again.admitted);
  assert.equal(again.endpoint.requestCount, 2);
  assert.equal(again.endpoint.lastPeerAddress, '10.0.0.9:1234');
  assert.equal(again.endpoint.lastTransport, 'coap');
  // A decision takes a record out of the bounds.
  await bootstrap.accept('a2', 'operator', T0);
  assert.equal((await bootstrap.request('a4', from('10.0.0.1'), LIMITS, T0)).admitted, true);
});

void test('bootstrap gate: undecided records expire after the TTL without a request; decided and reset ones stay', async () => {
  const { bootstrap } = openStore();
  await bootstrap.request('old', from('10.0.0.1'), LIMITS, T0);
  await bootstrap.request('kept', from('10.0.0.1'), LIMITS, T0);
  await bootstrap.accept('kept', 'operator', T0);
  await bootstrap.reset('kept', 'operator', T0);
  await bootstrap.request('fresh', from('10.0.0.2'), LIMITS, T0 + 900);
  await bootstrap.request('new', from('10.0.0.3'), LIMITS, T0 + 1001);
  assert.equal(await bootstrap.get('old'), null);
  assert.equal((await bootstrap.get('kept'))?.state, 'pending');
  assert.ok(await bootstrap.get('fresh'));
  assert.equal(await bootstrap.purgeUndecided(T0 + 2000), 2);
  assert.ok(await bootstrap.get('kept'));
});

void test('bootstrap gate: the first identity bound wins; refusals are counted only on existing records; a bootstrap clears the rotation request', async () => {
  const { bootstrap } = openStore();
  assert.equal(await bootstrap.noteRefusal('ghost', 'identity-mismatch', 'x', T0), null);
  assert.equal(await bootstrap.get('ghost'), null);
  await bootstrap.request('dev', from('10.0.0.1'), LIMITS, T0);
  assert.equal((await bootstrap.bindIdentity('dev', 'psk:one', T0)).boundIdentity, 'psk:one');
  assert.equal((await bootstrap.bindIdentity('dev', 'psk:two', T0)).boundIdentity, 'psk:one');
  const refused = await bootstrap.noteRefusal('dev', 'identity-mismatch', 'x'.repeat(1000), T0 + 5);
  assert.equal(refused?.refusedCount, 1);
  assert.equal(refused?.lastRefusedAt, T0 + 5);
  assert.ok(refused.lastRefusal!.startsWith('identity-mismatch: x') && refused.lastRefusal!.length <= 300, 'kept short');
  assert.equal((await bootstrap.requestKeyRotation('dev', T0)).rotateKeyRequested, true);
  const done = await bootstrap.markBootstrapped('dev', T0 + 7);
  assert.deepEqual([done.bootstrapCount, done.lastBootstrapAt, done.rotateKeyRequested], [1, T0 + 7, false]);
  await assert.rejects(bootstrap.markBootstrapped('ghost', T0), storeError('NOT_FOUND'));
  await assert.rejects(bootstrap.request('x', from('10.0.0.1'), { ...LIMITS, maxTotal: -1 }, T0), storeError('INVALID_ARGUMENT'));
});
