/**
 * The install chain driver with fake methods (the point of the method seam): the order of the
 * chain, skips with their reasons, fall-through, success, cancel, and resuming after a restart.
 * The store is the real SQLite one in a temporary directory (a restart is a new driver over the
 * same file).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ChainDriver } from '../../../src/fleet/chain-driver.js';
import type { AttemptContext, InstallMethod, MethodEvent, MethodStep } from '../../../src/fleet/methods/method.js';
import { openSqliteStore, type SqliteStore } from '../../../src/store/index.js';
import { withTempStore } from '../../support/temp-store.js';

const SHA = 'a'.repeat(64);

/** A method whose every answer is scripted, and which records what the driver asked of it. */
class FakeMethod implements InstallMethod {
  readonly calls: string[] = [];
  cannotTry: string | undefined;
  onBegin: MethodStep = { status: 'running', state: { step: 1 }, message: 'Working.' };
  onAdvance: (context: AttemptContext, event: MethodEvent) => MethodStep = (context) => ({ status: 'running', state: context.attempt.state, message: 'Still working.' });

  constructor(readonly name: string) {}

  preflight(): Promise<string | undefined> {
    this.calls.push('preflight');
    return Promise.resolve(this.cannotTry);
  }

  begin(): Promise<MethodStep> {
    this.calls.push('begin');
    return Promise.resolve(this.onBegin);
  }

  advance(context: AttemptContext, event: MethodEvent): Promise<MethodStep> {
    this.calls.push(`advance:${event.kind}:${JSON.stringify(context.attempt.state)}`);
    return Promise.resolve(this.onAdvance(context, event));
  }

  cancel(context: AttemptContext): Promise<void> {
    this.calls.push(`cancel:${JSON.stringify(context.attempt.state)}`);
    return Promise.resolve();
  }
}

const withStore = (fn: Parameters<typeof withTempStore>[1]) => withTempStore('chain', fn);

function driverOver(store: SqliteStore, methods: InstallMethod[]): ChainDriver {
  return new ChainDriver({ store, methods, tickMs: 0, onError: (error) => assert.fail(error) });
}

void test(
  'chain: methods are tried in the order of the chain; one that cannot try is skipped with its reason; the first that begins holds the job',
  withStore(async (store) => {
    const first = new FakeMethod('first');
    first.cannotTry = 'device has no first-object';
    const second = new FakeMethod('second');
    const third = new FakeMethod('third');
    const driver = driverOver(store, [third, first, second]);
    const job = await driver.install('dev-1', SHA, { methods: ['first', 'second', 'third'] });
    const view = (await driver.view(job.id))!;
    assert.equal(view.job.state, 'running');
    assert.deepEqual(
      view.attempts.map((a) => [a.method, a.outcome, a.message]),
      [
        ['first', 'skipped', 'device has no first-object'],
        ['second', 'running', 'Working.'],
      ],
    );
    assert.deepEqual(view.attempts[1]!.state, { step: 1 });
    assert.deepEqual(first.calls, ['preflight']);
    assert.deepEqual(second.calls, ['preflight', 'begin']);
    assert.deepEqual(third.calls, [], 'a method after the running one is not asked');
    assert.equal(view.job.message, 'second: Working.');
    await driver.close();
  }),
);

void test(
  'chain: a failed attempt falls through to the next method with its result recorded; success stops the chain',
  withStore(async (store) => {
    const failing = new FakeMethod('failing');
    failing.onAdvance = () => ({ status: 'failed', message: 'device reports INTEGRITY_FAILURE', result: 'INTEGRITY_FAILURE' });
    const working = new FakeMethod('working');
    working.onAdvance = () => ({ status: 'succeeded', message: 'installed' });
    const never = new FakeMethod('never');
    const driver = driverOver(store, [failing, working, never]);
    const job = await driver.install('dev-1', SHA);
    await driver.tick();
    let view = (await driver.view(job.id))!;
    assert.deepEqual(
      view.attempts.map((a) => [a.method, a.outcome, a.result]),
      [
        ['failing', 'failed', 'INTEGRITY_FAILURE'],
        ['working', 'running', null],
      ],
    );
    assert.notEqual(view.attempts[0]!.endedAt, null);
    await driver.contact('dev-1');
    view = (await driver.view(job.id))!;
    assert.equal(view.job.state, 'succeeded');
    assert.equal(view.job.message, 'Installed by working: installed');
    assert.deepEqual(view.attempts.map((a) => a.outcome), ['failed', 'succeeded']);
    assert.deepEqual(never.calls, []);
    await driver.tick();
    assert.deepEqual(working.calls, ['preflight', 'begin', 'advance:contact:{"step":1}'], 'an ended job hears no more events');
    await driver.close();
  }),
);

void test(
  'chain: when every method fails or cannot try, the job fails naming each reason',
  withStore(async (store) => {
    const absent = new FakeMethod('absent');
    absent.cannotTry = 'no account';
    const refusing = new FakeMethod('refusing');
    refusing.onBegin = { status: 'failed', message: 'Create /9/0 answered 4.05' };
    const driver = driverOver(store, [absent, refusing]);
    const job = await driver.install('dev-1', SHA);
    const view = (await driver.view(job.id))!;
    assert.equal(view.job.state, 'failed');
    assert.equal(view.job.message, 'No install method succeeded (absent: no account; refusing: Create /9/0 answered 4.05).');
    await driver.close();
  }),
);

void test(
  'chain: a method that throws fails its attempt and the chain goes on',
  withStore(async (store) => {
    const broken = new FakeMethod('broken');
    broken.begin = () => Promise.reject(new Error('socket closed'));
    const next = new FakeMethod('next');
    const driver = driverOver(store, [broken, next]);
    const job = await driver.install('dev-1', SHA);
    const view = (await driver.view(job.id))!;
    assert.deepEqual(
      view.attempts.map((a) => [a.method, a.outcome, a.message]),
      [
        ['broken', 'failed', 'method error: socket closed'],
        ['next', 'running', 'Working.'],
      ],
    );
    await driver.close();
  }),
);

void test(
  'chain: cancel reaches the running method with its state; the attempt and the job end cancelled',
  withStore(async (store) => {
    const running = new FakeMethod('running');
    running.onBegin = { status: 'running', state: { jobOnDevice: 'o9-1' }, message: 'Downloading.' };
    const after = new FakeMethod('after');
    const driver = driverOver(store, [running, after]);
    const job = await driver.install('dev-1', SHA);
    const view = await driver.cancel(job.id);
    assert.equal(view.job.state, 'cancelled');
    assert.deepEqual(view.attempts.map((a) => [a.method, a.outcome]), [['running', 'cancelled']]);
    assert.deepEqual(running.calls.at(-1), 'cancel:{"jobOnDevice":"o9-1"}');
    assert.deepEqual(after.calls, [], 'a cancelled job does not fall through');
    await assert.rejects(driver.cancel(job.id), { code: 'CONFLICT' });
    await driver.close();
  }),
);

void test(
  'chain: one open job per device; an unknown method name is refused',
  withStore(async (store) => {
    const driver = driverOver(store, [new FakeMethod('only')]);
    await driver.install('dev-1', SHA);
    await assert.rejects(driver.install('dev-1', SHA), { code: 'CONFLICT' });
    await assert.rejects(driver.install('dev-2', SHA, { methods: ['only', 'scomo'] }), { code: 'BAD_REQUEST', message: /scomo/ });
    await driver.close();
  }),
);

void test(
  'chain: a new driver over the same store resumes the running attempt\'s method with its state, not the chain from the start',
  withStore(async (store, dataDir) => {
    const skipped = new FakeMethod('skipped');
    skipped.cannotTry = 'not this device';
    const failed = new FakeMethod('failed');
    failed.onBegin = { status: 'failed', message: 'refused' };
    const resumable = new FakeMethod('resumable');
    resumable.onBegin = { status: 'running', state: { phase: 'downloading', token: 't-1' }, message: 'Downloading.' };
    const before = driverOver(store, [skipped, failed, resumable]);
    const job = await before.install('dev-1', SHA);
    await before.close();
    store.close();

    // The next process: fresh method objects, the same file.
    const reopened = openSqliteStore({ dataDir });
    try {
      const skipped2 = new FakeMethod('skipped');
      const failed2 = new FakeMethod('failed');
      const resumable2 = new FakeMethod('resumable');
      resumable2.onAdvance = (context, event) => (event.kind === 'resumed' ? { status: 'running', state: { ...(context.attempt.state as object), resumed: true }, message: 'Downloading (resumed).' } : { status: 'succeeded', message: 'installed' });
      const after = driverOver(reopened, [skipped2, failed2, resumable2]);
      await after.start();
      await after.tick();
      const view = (await after.view(job.id))!;
      assert.deepEqual(skipped2.calls, []);
      assert.deepEqual(failed2.calls, []);
      assert.deepEqual(resumable2.calls, ['advance:resumed:{"phase":"downloading","token":"t-1"}', 'advance:timer:{"phase":"downloading","token":"t-1","resumed":true}']);
      assert.equal(view.job.state, 'succeeded');
      assert.deepEqual(view.attempts.map((a) => [a.method, a.outcome]), [['skipped', 'skipped'], ['failed', 'failed'], ['resumable', 'succeeded']]);
      await after.close();
    } finally {
      reopened.close();
    }
  }),
);

void test(
  'chain: a new protocol state and a success are saved durably (fsync) unless the method can find them again (stateRecoverable); progress alone never is; a success ends attempt and job in one commit',
  withStore(async (store) => {
    const saves: [string, boolean][] = [];
    const ends: string[] = [];
    const repo = store.chainJobs;
    const spy: typeof repo = Object.create(repo) as typeof repo;
    spy.saveAttempt = (jobId, seq, state, message, now, bytes, jobMessage, progress) => {
      saves.push([message, progress === true]);
      return repo.saveAttempt(jobId, seq, state, message, now, bytes, jobMessage, progress);
    };
    spy.endAttempt = (jobId, seq, outcome, message, result, now, bytes, retry, tally, finish) => {
      ends.push(`endAttempt:${outcome}:${finish ? `finish${finish.soft ? ' soft' : ''}` : ''}`);
      return repo.endAttempt(jobId, seq, outcome, message, result, now, bytes, retry, tally, finish);
    };
    spy.finish = (id, state, message, now) => {
      ends.push(`finish:${state}`);
      return repo.finish(id, state, message, now);
    };
    const durable = new FakeMethod('durable');
    const recoverable = Object.assign(new FakeMethod('recoverable'), { stateRecoverable: true });
    durable.onAdvance = (context) => ({ status: 'running', state: context.attempt.state, message: 'Halfway.' });
    const driver = new ChainDriver({ store: { chainJobs: spy }, methods: [durable, recoverable], tickMs: 0, onError: (error) => assert.fail(error) });
    const a = await driver.install('dev-a', SHA, { methods: ['durable'] });
    await driver.tick();
    const b = await driver.install('dev-b', SHA, { methods: ['recoverable'] });
    assert.deepEqual(saves, [
      ['Working.', false],
      ['Halfway.', true],
      ['Working.', true],
    ]);
    recoverable.onAdvance = () => ({ status: 'succeeded', message: 'Installed.' });
    await driver.tick();
    const view = (await driver.view(b.id))!;
    assert.equal(view.job.state, 'succeeded');
    assert.equal(view.job.message, 'Installed by recoverable: Installed.');
    assert.deepEqual(ends, ['endAttempt:succeeded:finish soft'], 'the job ended with its attempt (not fsynced: the method can tell again), not by a second commit');
    durable.onAdvance = () => ({ status: 'succeeded', message: 'Done.' });
    await driver.tick();
    assert.deepEqual(ends.slice(1), ['endAttempt:succeeded:finish'], 'a method without stateRecoverable ends durably');
    assert.equal((await driver.view(a.id))!.job.state, 'succeeded');
    await driver.close();
  }),
);
