import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import type { Registration } from '../../../src/store/index.js';
import { T0, newRegistration, openStore, storeError } from './helpers.js';

void test('registrations: register stores every field and computes the times; get by id and by endpoint', async () => {
  const { registrations } = openStore();
  const input = newRegistration('urn:imei:490154203237518', 'a1b2', {
    lifetimeSec: 86400,
    lwm2mVersion: '1.2',
    binding: 'UQ',
    smsNumber: '+4915112345678',
    queueMode: true,
    identity: { kind: 'psk', value: 'dev-psk-id' },
    address: { scheme: 'coaps', address: '::1', port: 56830 },
  });
  const { registration, replaced } = await registrations.register(input, new Date(T0));
  const expected: Registration = {
    id: 'a1b2',
    endpoint: 'urn:imei:490154203237518',
    lifetimeSec: 86400,
    lwm2mVersion: '1.2',
    binding: 'UQ',
    smsNumber: '+4915112345678',
    queueMode: true,
    objectLinks: '</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</9>',
    address: { scheme: 'coaps', address: '::1', port: 56830 },
    identity: { kind: 'psk', value: 'dev-psk-id' },
    registeredAt: T0,
    lastUpdateAt: T0,
    expiresAt: T0 + 86_400_000,
  };
  assert.deepEqual(registration, expected);
  assert.equal(replaced, null);
  assert.deepEqual(await registrations.getById('a1b2'), expected);
  assert.deepEqual(await registrations.getByEndpoint('urn:imei:490154203237518'), expected);
  assert.equal(await registrations.getById('nope'), null);
  assert.equal(await registrations.getByEndpoint('nope'), null);
});

void test('registrations: a new Register of the same endpoint replaces the old registration in one step', async () => {
  const { registrations } = openStore();
  const first = (await registrations.register(newRegistration('dev-1', 'old'), T0)).registration;
  const { registration, replaced } = await registrations.register(newRegistration('dev-1', 'new', { lifetimeSec: 120 }), T0 + 5000);
  assert.deepEqual(replaced, first);
  assert.equal(registration.id, 'new');
  assert.equal(registration.registeredAt, T0 + 5000);
  assert.equal(await registrations.getById('old'), null);
  assert.equal((await registrations.getByEndpoint('dev-1'))?.id, 'new');
  assert.equal((await registrations.list()).items.length, 1);
  // Re-registering with the same id is allowed too.
  const again = await registrations.register(newRegistration('dev-1', 'new'), T0 + 6000);
  assert.equal(again.replaced?.registeredAt, T0 + 5000);
});

void test('registrations: a registration id already used by another endpoint is refused with CONFLICT and nothing changes', async () => {
  const { registrations } = openStore();
  await registrations.register(newRegistration('dev-1', 'r1'), T0);
  await registrations.register(newRegistration('dev-2', 'r2'), T0);
  await assert.rejects(registrations.register(newRegistration('dev-2', 'r1'), T0 + 1), storeError('CONFLICT', /^registration id r1 is already used by endpoint dev-1$/));
  assert.equal((await registrations.getByEndpoint('dev-2'))?.id, 'r2');
  assert.equal((await registrations.getByEndpoint('dev-1'))?.id, 'r1');
});

void test('registrations: update changes only the given fields and bumps last-update and expiry', async () => {
  const { registrations } = openStore();
  const { registration: r } = await registrations.register(newRegistration('dev-1', 'r1', { smsNumber: '+1555' }), T0);
  const u1 = await registrations.update('r1', {}, T0 + 30_000);
  assert.deepEqual(u1, { ...r, lastUpdateAt: T0 + 30_000, expiresAt: T0 + 90_000 });
  const u2 = await registrations.update(
    'r1',
    { lifetimeSec: 600, binding: 'UQ', queueMode: true, smsNumber: null, objectLinks: '</3/0>', address: { scheme: 'coaps', address: '127.0.0.2', port: 1 }, identity: { kind: 'rpk', value: 'ab'.repeat(32) } },
    T0 + 40_000,
  );
  assert.deepEqual(u2, {
    ...r,
    lifetimeSec: 600,
    binding: 'UQ',
    queueMode: true,
    smsNumber: null,
    objectLinks: '</3/0>',
    address: { scheme: 'coaps', address: '127.0.0.2', port: 1 },
    identity: { kind: 'rpk', value: 'ab'.repeat(32) },
    lastUpdateAt: T0 + 40_000,
    expiresAt: T0 + 40_000 + 600_000,
  });
  assert.deepEqual(await registrations.getById('r1'), u2);
  assert.equal(await registrations.update('missing', {}, T0), null);
});

void test('registrations: invalid values are refused with INVALID_ARGUMENT before anything is written', async () => {
  const { registrations } = openStore();
  await assert.rejects(registrations.register(newRegistration('', 'r1'), T0), storeError('INVALID_ARGUMENT', /^endpoint must be a non-empty string$/));
  await assert.rejects(registrations.register(newRegistration('d', 'r1', { lifetimeSec: 0 }), T0), storeError('INVALID_ARGUMENT', /^lifetimeSec must be an integer in 1\.\./));
  await assert.rejects(registrations.register(newRegistration('d', 'r1', { lifetimeSec: 1.5 }), T0), storeError('INVALID_ARGUMENT'));
  await assert.rejects(
    registrations.register(newRegistration('d', 'r1', { address: { scheme: 'coap', address: 'h', port: 70000 } }), T0),
    storeError('INVALID_ARGUMENT', /^address\.port must be an integer in 0\.\.65535$/),
  );
  await assert.rejects(registrations.register(newRegistration('d', 'r1'), Number.NaN), storeError('INVALID_ARGUMENT', /^now is not a valid time$/));
  await assert.rejects(registrations.register(newRegistration('d', 'r1'), new Date('nonsense')), storeError('INVALID_ARGUMENT'));
  await registrations.register(newRegistration('d', 'r1'), T0);
  await assert.rejects(registrations.update('r1', { lifetimeSec: -5 }, T0), storeError('INVALID_ARGUMENT'));
  assert.equal((await registrations.getById('r1'))?.lifetimeSec, 60);
  assert.deepEqual((await registrations.list()).items.map((r) => r.endpoint), ['d']);
});

void test('registrations: delete by id returns the removed registration once', async () => {
  const { registrations } = openStore();
  const { registration } = await registrations.register(newRegistration('dev-1', 'r1'), T0);
  assert.deepEqual(await registrations.delete('r1'), registration);
  assert.equal(await registrations.delete('r1'), null);
  assert.equal(await registrations.getByEndpoint('dev-1'), null);
});

void test('registrations: list pages in endpoint order with a cursor, and filters combine', async () => {
  const { registrations } = openStore();
  const names = ['b-02', 'a-01', 'b-01', 'c-01', 'b-03', 'bb-1', 'B-00'];
  for (const [i, n] of names.entries()) {
    await registrations.register(newRegistration(n, `id-${n}`, { queueMode: i % 2 === 0, lwm2mVersion: i < 3 ? '1.0' : '1.1', lifetimeSec: 10 * (i + 1) }), T0);
  }
  const p1 = await registrations.list({ limit: 3 });
  assert.deepEqual(p1.items.map((r) => r.endpoint), ['B-00', 'a-01', 'b-01']);
  assert.equal(p1.next, 'b-01');
  const p2 = await registrations.list({ limit: 3, after: p1.next ?? undefined });
  assert.deepEqual(p2.items.map((r) => r.endpoint), ['b-02', 'b-03', 'bb-1']);
  assert.equal(p2.next, 'bb-1');
  const p3 = await registrations.list({ limit: 3, after: p2.next ?? undefined });
  assert.deepEqual(p3.items.map((r) => r.endpoint), ['c-01']);
  assert.equal(p3.next, null);
  // An exact fit has no next page.
  const all = await registrations.list({ limit: 7 });
  assert.equal(all.items.length, 7);
  assert.equal(all.next, null);

  // Prefix is case-sensitive and literal ('b-' does not match 'B-00' nor 'bb-1').
  assert.deepEqual((await registrations.list({ endpointPrefix: 'b-' })).items.map((r) => r.endpoint), ['b-01', 'b-02', 'b-03']);
  assert.deepEqual((await registrations.list({ endpointPrefix: '%' })).items, []);
  assert.deepEqual((await registrations.list({ queueMode: true })).items.map((r) => r.endpoint), ['B-00', 'b-01', 'b-02', 'b-03']);
  assert.deepEqual((await registrations.list({ lwm2mVersion: '1.0' })).items.map((r) => r.endpoint), ['a-01', 'b-01', 'b-02']);
  // Alive at T0+35s: lifetimes >= 40 s (indexes 3..6).
  assert.deepEqual((await registrations.list({ aliveAt: T0 + 35_000 })).items.map((r) => r.endpoint), ['B-00', 'b-03', 'bb-1', 'c-01']);
  assert.deepEqual(
    (await registrations.list({ endpointPrefix: 'b', queueMode: false, lwm2mVersion: '1.1', limit: 1 })).items.map((r) => r.endpoint),
    ['bb-1'],
  );
  await assert.rejects(registrations.list({ limit: 0 }), storeError('INVALID_ARGUMENT', /^limit must be an integer in 1\.\.1000$/));
  await assert.rejects(registrations.list({ limit: 1001 }), storeError('INVALID_ARGUMENT'));
});

void test('registrations: listExpired returns those whose expiry is at or before the time, soonest first', async () => {
  const { registrations } = openStore();
  await registrations.register(newRegistration('long', 'r1', { lifetimeSec: 100 }), T0);
  await registrations.register(newRegistration('short', 'r2', { lifetimeSec: 10 }), T0);
  await registrations.register(newRegistration('mid', 'r3', { lifetimeSec: 50 }), T0);
  assert.deepEqual(await registrations.listExpired(T0 + 9_999), []);
  assert.deepEqual((await registrations.listExpired(T0 + 10_000)).map((r) => r.endpoint), ['short']);
  assert.deepEqual((await registrations.listExpired(T0 + 100_000)).map((r) => r.endpoint), ['short', 'mid', 'long']);
  assert.deepEqual((await registrations.listExpired(T0 + 100_000, 2)).map((r) => r.endpoint), ['short', 'mid']);
  // An update moves the expiry.
  await registrations.update('r2', {}, T0 + 5_000);
  assert.deepEqual((await registrations.listExpired(T0 + 14_999)).map((r) => r.endpoint), []);
  assert.deepEqual((await registrations.listExpired(new Date(T0 + 15_000))).map((r) => r.endpoint), ['short']);
});
