/**
 * The chain driver's policies with fake methods (FakeMethod: scripted answers, a record of the
 * calls) over the real SQLite store, on a fake clock: step timeouts, retries with backoff
 * (bounded), `completed` pushes instead of polling, contacts on any protocol, cancellation while
 * a retry waits, resuming a waiting retry after a restart, one running attempt per job, batch
 * creation in one transaction.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChainDriver } from '../../../src/fleet/chain-driver.js';
import type { JsonState } from '../../../src/fleet/domain.js';
import type { AttemptContext, InstallMethod, MethodEvent, MethodHost, MethodStep, RetryPolicy } from '../../../src/fleet/methods/method.js';
import { openSqliteStore, type SqliteStore } from '../../../src/store/index.js';

const SHA = 'b'.repeat(64);

/** A fake install method: every answer scripted, every call recorded. */
class FakeMethod implements InstallMethod {
  readonly calls: string[] = [];
  onBegin: () => MethodStep = () => ({ status: 'running', state: { ref: `${this.name}-job` }, message: 'Working.' });
  onAdvance: (context: AttemptContext, event: MethodEvent) => MethodStep = (context) => ({ status: 'running', state: context.attempt.state, message: context.attempt.message ?? 'Working.' });
  stepTimeoutMs?: number;
  retryPolicy?: RetryPolicy;
  host: MethodHost | undefined;

  constructor(readonly name: string) {}

  connect(host: MethodHost): void {
    this.host = host;
  }

  refOf(state: JsonState): string | undefined {
    return state && typeof state === 'object' && !Array.isArray(state) && typeof state.ref === 'string' ? state.ref : undefined;
  }

  preflight(): Promise<string | undefined> {
    return Promise.resolve(undefined);
  }

  begin(): Promise<MethodStep> {
    this.calls.push('begin');
    return Promise.resolve(this.onBegin());
  }

  advance(context: AttemptContext, event: MethodEvent): Promise<MethodStep> {
    this.calls.push(`advance:${event.kind}${event.kind === 'contact' ? `:${event.protocol}` : event.kind === 'completed' ? `:${event.ref}` : ''}`);
    return Promise.resolve(this.onAdvance(context, event));
  }

  cancel(): Promise<void> {
    this.calls.push('cancel');
    return Promise.resolve();
  }
}

interface Env {
  store: SqliteStore;
  dataDir: string;
  clock: { t: number };
  driver: (methods: InstallMethod[], store?: SqliteStore) => ChainDriver;
}

function withEnv(fn: (env: Env) => Promise<void>): () => Promise<void> {
  return async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'depot-chain-policy-'));
    const store = openSqliteStore({ dataDir });
    const clock = { t: 1_000_000 };
    const drivers: ChainDriver[] = [];
    try {
      await fn({
        store,
        dataDir,
        clock,
        driver: (methods, s = store) => {
          const d = new ChainDriver({ store: s, methods, tickMs: 0, now: () => clock.t, onError: (error) => assert.fail(error) });
          drivers.push(d);
          return d;
        },
      });
    } finally {
      for (const d of drivers) await d.close();
      store.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  };
}

const outcomes = async (driver: ChainDriver, id: string) => (await driver.view(id))!.attempts.map((a) => [a.method, a.position, a.outcome]);

void test(
  'chain policy: an attempt without progress past its method\'s step timeout is cancelled and fails with a reason naming the limit; the chain goes on',
  withEnv(async ({ driver: make, clock }) => {
    const slow = new FakeMethod('slow');
    slow.stepTimeoutMs = 10_000;
    const next = new FakeMethod('next');
    const driver = make([slow, next]);
    const job = await driver.install('dev-1', SHA);
    clock.t += 9_000;
    await driver.tick();
    assert.deepEqual(await outcomes(driver, job.id), [['slow', 0, 'running']], 'within the limit');
    // Progress (a new message) restarts the count.
    slow.onAdvance = () => ({ status: 'running', state: { ref: 'slow-job' }, message: 'Downloading 50 %.' });
    await driver.tick();
    clock.t += 9_000;
    slow.onAdvance = (context) => ({ status: 'running', state: context.attempt.state, message: context.attempt.message! });
    await driver.tick();
    assert.deepEqual(await outcomes(driver, job.id), [['slow', 0, 'running']], 'progress restarted the step clock');
    clock.t += 1_001;
    await driver.tick();
    const view = (await driver.view(job.id))!;
    assert.deepEqual(view.attempts.map((a) => [a.method, a.outcome]), [['slow', 'failed'], ['next', 'running']]);
    assert.match(view.attempts[0]!.message!, /^timed out: no progress for 10 s \(the step limit of slow is 10 s\); last: Downloading 50 %\.$/);
    assert.equal(view.attempts[0]!.result, 'TIMEOUT');
    assert.equal(slow.calls.at(-1), 'cancel', 'the method was told to stop');
  }),
);

void test(
  'chain policy: a retryable failure is tried again by the same method after its backoff, at most maxRetries times, then the chain falls through; a non-retryable one falls through at once',
  withEnv(async ({ driver: make, clock }) => {
    const flaky = new FakeMethod('flaky');
    flaky.retryPolicy = { maxRetries: 2, backoffMs: (n) => n * 60_000 };
    flaky.onBegin = () => ({ status: 'failed', message: 'gateway busy', result: 'BUSY', retryable: true });
    const next = new FakeMethod('next');
    const driver = make([flaky, next]);
    const job = await driver.install('dev-1', SHA);
    let view = (await driver.view(job.id))!;
    assert.equal(view.job.state, 'running');
    assert.equal(view.job.retryAt, clock.t + 60_000);
    assert.match(view.attempts[0]!.message!, /gateway busy \(retryable: retry 1 of 2 in 60 s\)/);
    assert.deepEqual(next.calls, [], 'the next method waits while a retry is due');
    clock.t += 59_999;
    await driver.tick();
    await driver.contact('dev-1', 'sms');
    assert.deepEqual(await outcomes(driver, job.id), [['flaky', 0, 'failed']], 'not before its time');
    clock.t += 1;
    await driver.tick();
    assert.equal((await driver.view(job.id))!.job.retryAt, clock.t + 120_000, 'second backoff is longer');
    clock.t += 120_000;
    await driver.tick();
    view = (await driver.view(job.id))!;
    assert.deepEqual(view.attempts.map((a) => [a.method, a.position, a.outcome]), [['flaky', 0, 'failed'], ['flaky', 0, 'failed'], ['flaky', 0, 'failed'], ['next', 1, 'running']]);
    assert.equal(view.attempts[2]!.message, 'gateway busy', 'the last try says no more retry');
    assert.equal(view.job.retryAt, null);
    assert.equal(flaky.calls.filter((c) => c === 'begin').length, 3, 'bounded: 1 + 2 retries');

    const final = new FakeMethod('final');
    final.retryPolicy = { maxRetries: 5, backoffMs: () => 1000 };
    final.onBegin = () => ({ status: 'failed', message: 'device refused the package', result: 'REFUSED' });
    const driver2 = make([final, new FakeMethod('other')]);
    const job2 = await driver2.install('dev-2', SHA);
    assert.deepEqual(await outcomes(driver2, job2.id), [['final', 0, 'failed'], ['other', 1, 'running']]);
  }),
);

void test(
  'chain policy: a method\'s completed push advances its attempt at once (no timer), also when pushed before begin returned',
  withEnv(async ({ driver: make }) => {
    const pushing = new FakeMethod('pushing');
    const driver = make([pushing]);
    const job = await driver.install('dev-1', SHA);
    pushing.onAdvance = (_context, event) => (event.kind === 'completed' ? { status: 'succeeded', message: 'done', result: 'INSTALLED', bytes: 4096 } : { status: 'running', state: { ref: 'pushing-job' }, message: 'Working.' });
    pushing.host!.completed('someone-else');
    pushing.host!.completed('pushing-job');
    await driver.close(); // waits for the queued step
    const view = (await driver.view(job.id))!;
    assert.equal(view.job.state, 'succeeded');
    assert.deepEqual(pushing.calls, ['begin', 'advance:completed:pushing-job']);
    assert.equal(view.attempts[0]!.bytes, 4096);
    assert.equal(view.attempts[0]!.result, 'INSTALLED');

    // Pushed while begin was still running (the protocol job ended at once).
    const quick = new FakeMethod('quick');
    const driver2 = make([quick]);
    quick.onBegin = () => {
      quick.host!.completed('quick-job');
      return { status: 'running', state: { ref: 'quick-job' }, message: 'Started.' };
    };
    quick.onAdvance = (_context, event) => (event.kind === 'completed' ? { status: 'succeeded', message: 'done' } : { status: 'running', state: { ref: 'quick-job' }, message: 'Started.' });
    const job2 = await driver2.install('dev-2', SHA);
    await driver2.close();
    assert.equal((await driver2.view(job2.id))!.job.state, 'succeeded');
    assert.deepEqual(quick.calls, ['begin', 'advance:completed:quick-job']);
  }),
);

void test(
  'chain policy: contacts carry their protocol (LwM2M, OMA DM, SMS) to the running attempt',
  withEnv(async ({ driver: make }) => {
    const m = new FakeMethod('m');
    const driver = make([m]);
    await driver.install('dev-1', SHA);
    await driver.contact('dev-1', 'omadm');
    await driver.contact('dev-1', 'sms');
    await driver.contact('dev-1');
    await driver.contact('another-device', 'lwm2m');
    assert.deepEqual(m.calls, ['begin', 'advance:contact:omadm', 'advance:contact:sms', 'advance:contact:lwm2m']);
  }),
);

void test(
  'chain policy: cancel while a retry waits ends the job; the retry never runs',
  withEnv(async ({ driver: make, clock }) => {
    const flaky = new FakeMethod('flaky');
    flaky.retryPolicy = { maxRetries: 3, backoffMs: () => 1000 };
    flaky.onBegin = () => ({ status: 'failed', message: 'timeout', retryable: true });
    const driver = make([flaky]);
    const job = await driver.install('dev-1', SHA);
    const view = await driver.cancel(job.id);
    assert.equal(view.job.state, 'cancelled');
    assert.equal(view.job.retryAt, null);
    clock.t += 10_000;
    await driver.tick();
    assert.equal(flaky.calls.filter((c) => c === 'begin').length, 1);
    assert.deepEqual(await outcomes(driver, job.id), [['flaky', 0, 'failed']]);
  }),
);

void test(
  'chain policy: a retry waiting when the server stopped runs once in the next process, when due',
  withEnv(async ({ driver: make, clock, dataDir, store }) => {
    const flaky = new FakeMethod('flaky');
    flaky.retryPolicy = { maxRetries: 1, backoffMs: () => 30_000 };
    flaky.onBegin = () => ({ status: 'failed', message: 'no answer', retryable: true });
    const first = make([flaky]);
    const job = await first.install('dev-1', SHA);
    await first.close();
    store.close();
    const reopened = openSqliteStore({ dataDir });
    try {
      const flaky2 = new FakeMethod('flaky');
      flaky2.retryPolicy = flaky.retryPolicy;
      const second = make([flaky2], reopened);
      await second.start();
      await second.tick();
      assert.deepEqual(flaky2.calls, [], 'not due yet');
      clock.t += 30_000;
      await second.tick();
      await second.tick();
      assert.deepEqual(flaky2.calls, ['begin', 'advance:timer'], 'begun once, then only advanced');
      assert.deepEqual(await outcomes(second, job.id), [['flaky', 0, 'failed'], ['flaky', 0, 'running']]);
      await second.close();
    } finally {
      reopened.close();
    }
  }),
);

void test(
  'chain policy: never two running attempts for one job (the store refuses the second); concurrent events do not start one',
  withEnv(async ({ driver: make, store, clock }) => {
    const m = new FakeMethod('m');
    m.onAdvance = (context) => ({ status: 'running', state: context.attempt.state, message: `at ${clock.t}` });
    const driver = make([m, new FakeMethod('n')]);
    const job = await driver.install('dev-1', SHA);
    await assert.rejects(store.chainJobs.addAttempt(job.id, { method: 'n', position: 1, outcome: 'running', message: null, state: {} }, clock.t), { code: 'CONFLICT' });
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? driver.tick() : driver.contact('dev-1', 'lwm2m'))));
    const attempts = (await driver.view(job.id))!.attempts;
    assert.equal(attempts.filter((a) => a.outcome === 'running').length, 1);
    assert.equal(attempts.length, 1);
    assert.throws(() => store.db.prepare("INSERT INTO install_chain_attempts (job_id, seq, method, started_at, outcome, state) VALUES (?, 9, 'x', 0, 'running', '{}')").run(job.id), /UNIQUE/);
  }),
);

void test(
  'chain policy: installMany creates a wave in one transaction (all or none) and starts each job; the history lists a device\'s jobs newest first',
  withEnv(async ({ driver: make, store, clock }) => {
    const m = new FakeMethod('m');
    const driver = make([m]);
    await driver.install('busy', SHA);
    await assert.rejects(driver.installMany([{ endpoint: 'a', packageSha256: SHA }, { endpoint: 'busy', packageSha256: SHA }]), { code: 'CONFLICT' });
    assert.equal((await store.chainJobs.listOpen()).length, 1, 'nothing of the refused batch was stored');
    await assert.rejects(store.chainJobs.createMany([{ id: 'x1', endpoint: 'a', packageSha256: SHA, activate: false, methods: ['m'] }, { id: 'x2', endpoint: '', packageSha256: SHA, activate: false, methods: ['m'] }], clock.t), { code: 'INVALID_ARGUMENT' });
    assert.equal(await store.chainJobs.get('x1'), null, 'all or none');
    const jobs = await driver.installMany(Array.from({ length: 50 }, (_, i) => ({ endpoint: `dev-${i}`, packageSha256: SHA })));
    assert.equal(jobs.length, 50);
    await driver.close();
    assert.equal(m.calls.filter((c) => c === 'begin').length, 51);
    clock.t += 1;
    const d2 = make([m]);
    await d2.start();
    const cancelled = await d2.cancel(jobs[0]!.id);
    assert.equal(cancelled.job.state, 'cancelled');
    clock.t += 1;
    await d2.install('dev-0', SHA);
    const history = await d2.history('dev-0', { limit: 1 });
    assert.equal(history.items.length, 1);
    assert.equal(history.items[0]!.job.state, 'running', 'newest first');
    const rest = await d2.history('dev-0', { after: history.next! });
    assert.deepEqual(rest.items.map((v) => [v.job.id, v.job.state, v.attempts.map((a) => a.outcome)]), [[jobs[0]!.id, 'cancelled', ['cancelled']]]);
    assert.equal(rest.next, null);
  }),
);

void test(
  'chain policy: killed after an attempt ended and before its job did: a success ends the job (the next method never runs), a failure goes on with the next; a failure and its retry are one commit',
  withEnv(async ({ driver: make, store, clock }) => {
    // What a killed process left: the attempt's end stored, the job's not.
    const leave = async (id: string, endpoint: string, outcome: 'succeeded' | 'failed') => {
      await store.chainJobs.create({ id, endpoint, packageSha256: SHA, activate: false, methods: ['first', 'second'] }, clock.t);
      const a = await store.chainJobs.addAttempt(id, { method: 'first', position: 0, outcome: 'running', message: 'Beginning.', state: {} }, clock.t);
      await store.chainJobs.endAttempt(id, a.seq, outcome, outcome === 'succeeded' ? 'installed' : 'refused', null, clock.t);
    };
    await leave('job-ok', 'dev-1', 'succeeded');
    await leave('job-ko', 'dev-2', 'failed');
    const first = new FakeMethod('first');
    const second = new FakeMethod('second');
    const driver = make([first, second]);
    await driver.start();
    await driver.close();
    const ok = (await driver.view('job-ok'))!;
    assert.equal(ok.job.state, 'succeeded');
    assert.equal(ok.job.message, 'Installed by first: installed');
    assert.deepEqual(ok.attempts.map((a) => a.method), ['first']);
    const ko = (await driver.view('job-ko'))!;
    assert.deepEqual(ko.attempts.map((a) => [a.method, a.outcome]), [['first', 'failed'], ['second', 'running']]);
    assert.deepEqual(first.calls, []);
    assert.deepEqual(second.calls, ['begin'], 'only the failed job went on');

    // endAttempt with a retry: both or neither.
    await store.chainJobs.create({ id: 'job-retry', endpoint: 'dev-3', packageSha256: SHA, activate: false, methods: ['first'] }, clock.t);
    const a = await store.chainJobs.addAttempt('job-retry', { method: 'first', position: 0, outcome: 'running', message: null, state: {} }, clock.t);
    await assert.rejects(store.chainJobs.endAttempt('job-retry', a.seq, 'succeeded', 'x', null, clock.t, null, { at: clock.t + 1, message: 'm' }), { code: 'INVALID_ARGUMENT' });
    assert.equal((await store.chainJobs.attempts('job-retry'))[0]!.outcome, 'running', 'nothing of a refused end was kept');
    await store.chainJobs.endAttempt('job-retry', a.seq, 'failed', 'busy', null, clock.t, 10, { at: clock.t + 5000, message: 'first: retry 1 of 1' });
    const job = (await store.chainJobs.get('job-retry'))!;
    assert.equal(job.retryAt, clock.t + 5000);
    assert.equal(job.message, 'first: retry 1 of 1');
    assert.equal((await store.chainJobs.attempts('job-retry'))[0]!.bytes, 10);
    await assert.rejects(store.chainJobs.saveAttempt('job-retry', a.seq, {}, 'x', clock.t, -1), { code: 'INVALID_ARGUMENT' });
  }),
);
