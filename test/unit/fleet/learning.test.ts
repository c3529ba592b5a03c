/**
 * Per-model learning of the install chain over the real SQLite store: counts per (make, model,
 * OS version, method) updated at each attempt's end through the chain driver, the learned order
 * for the next job on the model, skipping after N failures with seeded (deterministic) probes,
 * operator pins and forbids, an explicit chain honoured, unknown models in the default order.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ChainDriver } from '../../../src/fleet/chain-driver.js';
import { MethodLearning, learnedOrder, recordsFor } from '../../../src/fleet/learning.js';
import { seededRandom } from '../../../src/util/seeded-random.js';
import type { InstallMethod, MethodStep } from '../../../src/fleet/methods/method.js';
import type { SqliteStore } from '../../../src/store/index.js';
import { withTempStore } from '../../support/temp-store.js';

const SHA = 'e'.repeat(64);

/** A fake method whose outcome on a device is decided by the device's model (a script). */
class FakeModelMethod implements InstallMethod {
  begun = 0;
  constructor(
    readonly name: string,
    private readonly works: (endpoint: string) => 'succeeds' | 'fails' | 'waits',
  ) {}
  preflight(): Promise<string | undefined> {
    return Promise.resolve(undefined);
  }
  begin(context: { target: { endpoint: string } }): Promise<MethodStep> {
    this.begun++;
    const w = this.works(context.target.endpoint);
    return Promise.resolve(w === 'succeeds' ? { status: 'succeeded', message: 'installed', result: 'INSTALLED' } : w === 'fails' ? { status: 'failed', message: 'device refused', result: 'UNSUPPORTED_PACKAGE_TYPE' } : { status: 'running', state: {}, message: 'waiting' });
  }
  advance(): Promise<MethodStep> {
    return Promise.resolve({ status: 'running', state: {}, message: 'waiting' });
  }
  cancel(): Promise<void> {
    return Promise.resolve();
  }
}

const withStore = (fn: Parameters<typeof withTempStore>[1]) => withTempStore('learning', fn);

const T0 = 1_700_000_000_000;

async function device(store: SqliteStore, endpoint: string, make: string | null, model: string | null, osVersion: string | null = '1.0'): Promise<void> {
  await store.deviceFacts.upsert(endpoint, { manufacturer: make, modelNumber: model, osVersion }, T0);
}

void test(
  'learning: attempts end in the per-model table; the next job on that model tries the method that worked first (fewer failed attempts); other models keep the default order',
  withStore(async (store) => {
    // Acme X1: object9 fails, scomo works. Other models: object9 works.
    const isX1 = (e: string) => e.startsWith('x1-');
    const object9 = new FakeModelMethod('object9', (e) => (isX1(e) ? 'fails' : 'succeeds'));
    const scomo = new FakeModelMethod('scomo', () => 'succeeds');
    const mark = new FakeModelMethod('mark', () => 'waits');
    const learning = new MethodLearning({ stats: store.methodStats, deviceFacts: store.deviceFacts, seed: 1, now: () => T0 });
    const driver = new ChainDriver({ store, methods: [object9, scomo, mark], learning, tickMs: 0, now: () => T0 });
    for (let i = 0; i < 3; i++) await device(store, `x1-${i}`, 'Acme', 'X1');
    await device(store, 'other-0', 'Beta', 'B2');

    const first = await driver.install('x1-0', SHA);
    const firstView = (await driver.view(first.id))!;
    assert.equal(firstView.job.plan.chosenBy, 'default');
    assert.deepEqual(firstView.attempts.map((a) => [a.method, a.outcome]), [['object9', 'failed'], ['scomo', 'succeeded']]);

    const stats = await store.methodStats.list({ make: 'Acme', model: 'X1' });
    assert.deepEqual(stats.map((s) => [s.osVersion, s.method, s.successes, s.failures, s.lastResult]), [['1.0', 'object9', 0, 1, 'UNSUPPORTED_PACKAGE_TYPE'], ['1.0', 'scomo', 1, 0, null]]);
    assert.equal(stats[0]!.lastReason, 'device refused');

    const second = await driver.install('x1-1', SHA);
    const secondView = (await driver.view(second.id))!;
    assert.equal(secondView.job.plan.chosenBy, 'learned');
    assert.deepEqual(secondView.job.methods, ['scomo', 'object9', 'mark']);
    assert.match(secondView.job.plan.note!, /learned for Acme X1 \(OS 1\.0\): .*scomo: 1 of 1 succeeded/);
    assert.deepEqual(secondView.attempts.map((a) => [a.method, a.outcome]), [['scomo', 'succeeded']], 'no failed attempt this time');

    const other = await driver.install('other-0', SHA);
    assert.deepEqual((await driver.view(other.id))!.job.methods, ['object9', 'scomo', 'mark']);

    // An explicit chain is honoured as given.
    const explicit = await driver.install('x1-2', SHA, { methods: ['object9', 'mark'] });
    const explicitView = (await driver.view(explicit.id))!;
    assert.equal(explicitView.job.plan.chosenBy, 'operator');
    assert.deepEqual(explicitView.job.methods, ['object9', 'mark']);
    assert.equal(explicitView.attempts[0]!.method, 'object9');

    // A device of unknown model: the default order, nothing recorded.
    await store.deviceFacts.upsert('mystery', { firmwareVersion: '3' }, T0);
    const unknown = await driver.install('mystery', SHA);
    assert.equal((await driver.view(unknown.id))!.job.plan.chosenBy, 'default');
    assert.equal((await store.methodStats.list()).filter((s) => s.make === '' && s.model === '').length, 0);
    await driver.close();
  }),
);

void test('learning: a method that never worked on the model after N tries is skipped (with its reason), except for seeded probes now and then', () => {
  const records = new Map([
    ['object9', { successes: 0, failures: 6 }],
    ['scomo', { successes: 4, failures: 1 }],
    ['sms', { successes: 1, failures: 3 }],
  ]);
  const order = (random: () => number) => learnedOrder({ defaultChain: ['object9', 'scomo', 'sms', 'mark'], records, rules: [], skipAfter: 5, probeRate: 0.2, lastResort: ['mark'], random, modelName: 'Acme X1' });
  const skipped = order(() => 0.5);
  assert.deepEqual(skipped.methods, ['object9', 'scomo', 'sms', 'mark'], 'the skipped method is listed first (its reason heads the history), then by record');
  assert.equal(skipped.skip.object9, 'never worked on Acme X1 in 6 tries (learned; probed now and then)');
  const probed = order(() => 0.1);
  assert.deepEqual(probed.methods, ['scomo', 'sms', 'object9', 'mark'], 'probed: tried after the methods that work, before the last resort');
  assert.deepEqual(probed.skip, {});
  // Below N tries, a failing method is only ordered later, not skipped.
  const few = learnedOrder({ defaultChain: ['object9', 'scomo'], records: new Map([['object9', { successes: 0, failures: 4 }]]), rules: [], skipAfter: 5, probeRate: 0, lastResort: [], random: () => 0.5, modelName: 'm' });
  assert.deepEqual(few.methods, ['scomo', 'object9']);
  assert.deepEqual(few.skip, {});

  // Seeded: the same seed draws the same probes (deterministic), another seed others.
  const draws = (seed: number) => {
    const r = seededRandom(seed);
    return Array.from({ length: 200 }, () => order(r).skip.object9 === undefined);
  };
  assert.deepEqual(draws(42), draws(42));
  assert.notDeepEqual(draws(42), draws(43));
  const probes = draws(42).filter(Boolean).length;
  assert.ok(probes > 10 && probes < 80, `about 20 % probed (${probes} of 200)`);
});

void test(
  'learning: the operator pins a method first or forbids it for a model (every OS version); removing the rule restores the learned order',
  withStore(async (store) => {
    const learning = new MethodLearning({ stats: store.methodStats, deviceFacts: store.deviceFacts, seed: 7, probeRate: 0, now: () => T0 });
    await device(store, 'd1', 'Acme', 'X1', '2.0');
    await store.methodStats.record({ make: 'Acme', model: 'X1', osVersion: '1.0' }, 'object9', 'succeeded', null, null, T0);
    const chain = ['object9', 'scomo', 'sms', 'mark'];
    assert.deepEqual((await learning.plan('d1', chain)).methods, ['object9', 'scomo', 'sms', 'mark'], 'the model\'s record over other OS versions counts when this one has none');
    await store.methodStats.setRule('Acme', 'X1', 'sms', 'pin', T0);
    await store.methodStats.setRule('Acme', 'X1', 'object9', 'forbid', T0);
    const ruled = await learning.plan('d1', chain);
    assert.deepEqual(ruled.methods, ['object9', 'sms', 'scomo', 'mark']);
    assert.equal(ruled.plan.skip.object9, 'forbidden on Acme X1 (OS 2.0) by the operator');
    assert.match(ruled.plan.note!, /sms pinned by the operator/);
    assert.deepEqual((await store.methodStats.rules('Acme', 'X1')).map((r) => [r.method, r.rule]), [['object9', 'forbid'], ['sms', 'pin']]);
    // A rule replaced, then removed.
    await store.methodStats.setRule('Acme', 'X1', 'sms', 'forbid', T0 + 1);
    assert.equal((await learning.plan('d1', chain)).plan.skip.sms, 'forbidden on Acme X1 (OS 2.0) by the operator');
    assert.equal(await store.methodStats.removeRule('Acme', 'X1', 'sms'), true);
    assert.equal(await store.methodStats.removeRule('Acme', 'X1', 'sms'), false);
    assert.equal(await store.methodStats.removeRule('Acme', 'X1', 'object9'), true);
    assert.deepEqual((await learning.plan('d1', chain)).methods, chain);
    await assert.rejects(store.methodStats.setRule('Acme', 'X1', 'sms', 'always' as 'pin', T0), { code: 'INVALID_ARGUMENT' });
    // Records of this OS version win over the model's.
    for (let i = 0; i < 5; i++) await store.methodStats.record({ make: 'Acme', model: 'X1', osVersion: '2.0' }, 'object9', 'failed', 'Invalid URI', 'INVALID_URI', T0);
    const plan = await learning.plan('d1', chain);
    assert.equal(plan.plan.skip.object9, 'never worked on Acme X1 (OS 2.0) in 5 tries (learned; probed now and then)');
    assert.deepEqual(recordsFor(await store.methodStats.list({ make: 'Acme', model: 'X1' }), '1.0').get('object9'), { successes: 1, failures: 0 });
    const table = await learning.table({ make: 'Acme', model: 'X1' });
    assert.deepEqual(table.stats.map((s) => [s.osVersion, s.method, s.successes, s.failures]), [['1.0', 'object9', 1, 0], ['2.0', 'object9', 0, 5]]);
  }),
);

void test(
  'learning: device strings are bounded; a reason is cut, an overlong model refused with INVALID_ARGUMENT',
  withStore(async (store) => {
    const s = await store.methodStats.record({ make: 'A', model: 'B', osVersion: '' }, 'object9', 'failed', 'x'.repeat(5000), null, T0);
    assert.equal(s.lastReason!.length, 1000);
    await assert.rejects(store.methodStats.record({ make: 'A', model: 'B'.repeat(300), osVersion: '' }, 'object9', 'failed', null, null, T0), { code: 'INVALID_ARGUMENT' });
  }),
);
