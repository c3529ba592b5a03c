/**
 * The Object 9 method over a fake Object 9 engine: preflight from the registration's object
 * links, an attempt following its job to the end, a job already open on the device followed
 * rather than raced, and cancel reaching the job.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import type { InstallJob } from '../../../src/fleet/domain.js';
import { InstallDriverError, type JobView } from '../../../src/fleet/install-driver.js';
import { Object9Method } from '../../../src/fleet/methods/object9.js';
import type { AttemptContext } from '../../../src/fleet/methods/method.js';
import type { Registration } from '../../../src/store/types.js';

const SHA = 'c'.repeat(64);

function job(id: string, state: InstallJob['state'], extra: Partial<InstallJob> = {}): InstallJob {
  return { id, kind: 'install', endpoint: 'dev', packageSha256: SHA, instanceId: 0, method: 'pull', methodAuto: true, activate: false, state, attempts: 1, downloadToken: null, tokenExpiresAt: null, lastUpdateState: null, lastUpdateResult: null, resultName: null, retry: null, message: `${state}.`, createdAt: 0, updatedAt: 0, phaseStartedAt: 0, finishedAt: ['succeeded', 'failed', 'cancelled'].includes(state) ? 1 : null, ...extra };
}

class FakeEngine {
  jobs = new Map<string, InstallJob>();
  installs = 0;
  cancelled: string[] = [];
  conflict = false;
  install(): Promise<InstallJob> {
    this.installs++;
    if (this.conflict) return Promise.reject(new InstallDriverError('CONFLICT', 'device "dev" already has an open job (o9-old)'));
    const j = job(`o9-${this.installs}`, 'queued');
    this.jobs.set(j.id, j);
    return Promise.resolve(j);
  }
  view(id: string): Promise<JobView | null> {
    const j = this.jobs.get(id);
    return Promise.resolve(j ? { job: j, transitions: [], progress: null, percent: 0 } : null);
  }
  cancel(id: string): Promise<JobView> {
    this.cancelled.push(id);
    return this.view(id) as Promise<JobView>;
  }
  listJobs(): Promise<{ items: JobView[]; next: string | null }> {
    return Promise.resolve({ items: [...this.jobs.values()].map((j) => ({ job: j, transitions: [], progress: null, percent: 0 })), next: null });
  }
}

function method(engine: FakeEngine, objectLinks: string | null): Object9Method {
  const registration = objectLinks === null ? null : ({ endpoint: 'dev', objectLinks } as Registration);
  return new Object9Method({ engine, registrations: { getByEndpoint: () => Promise.resolve(registration) } });
}

function context(state: AttemptContext['attempt']['state']): AttemptContext {
  return {
    target: { jobId: 'chain-1', endpoint: 'dev', packageSha256: SHA, activate: false },
    job: { id: 'chain-1', endpoint: 'dev', packageSha256: SHA, activate: false, methods: ['object9'], plan: { chosenBy: 'operator', skip: {}, note: null }, state: 'running', message: null, retryAt: null, createdAt: 0, updatedAt: 0, finishedAt: null },
    attempt: { jobId: 'chain-1', seq: 1, position: 0, method: 'object9', startedAt: 0, endedAt: null, progressAt: 0, outcome: 'running', message: null, result: null, bytes: null, state },
  };
}

void test('object9 method: preflight says why a device cannot be tried (not registered, no </9>)', async () => {
  const engine = new FakeEngine();
  assert.equal(await method(engine, null).preflight(context({}).target), 'the device is not registered over LwM2M');
  assert.match((await method(engine, '</1/0>,</3/0>').preflight(context({}).target)) ?? '', /no Software Management object/);
  assert.equal(await method(engine, '</1/0>,</9>').preflight(context({}).target), undefined);
});

void test('object9 method: the attempt follows its Object 9 job: running, then the job\'s end with its result', async () => {
  const engine = new FakeEngine();
  const m = method(engine, '</9>');
  const begun = await m.begin(context({}));
  assert.deepEqual(begun, { status: 'running', state: { object9JobId: 'o9-1' }, message: 'Object 9 job o9-1: queued.' });
  engine.jobs.set('o9-1', job('o9-1', 'failed', { resultName: 'INTEGRITY_FAILURE', message: 'Integrity check failed.' }));
  assert.deepEqual(await m.advance(context({ object9JobId: 'o9-1' }), { kind: 'timer' }), { status: 'failed', message: 'Object 9 job o9-1 failed: Integrity check failed.', result: 'INTEGRITY_FAILURE' });
  engine.jobs.set('o9-1', job('o9-1', 'succeeded', { message: 'Installed.' }));
  assert.equal((await m.advance(context({ object9JobId: 'o9-1' }), { kind: 'resumed' })).status, 'succeeded');
  assert.equal((await m.advance(context({ object9JobId: 'gone' }), { kind: 'timer' })).status, 'failed');
});

void test('object9 method: a job of the same package already open on the device is followed, not raced; cancel reaches it', async () => {
  const engine = new FakeEngine();
  engine.jobs.set('o9-old', job('o9-old', 'downloading'));
  engine.conflict = true;
  const m = method(engine, '</9>');
  assert.deepEqual(await m.begin(context({})), { status: 'running', state: { object9JobId: 'o9-old' }, message: 'Object 9 job o9-old: downloading.' });
  await m.cancel(context({ object9JobId: 'o9-old' }));
  assert.deepEqual(engine.cancelled, ['o9-old']);
  engine.jobs.clear();
  engine.jobs.set('o9-other', job('o9-other', 'downloading', { packageSha256: 'd'.repeat(64) }));
  assert.equal((await m.begin(context({}))).status, 'failed', 'another package\'s open job is not followed');
});

void test('object9 method: resumed with no job id stored (killed right after starting it), the job it started is followed even if it already ended: never a second install', async () => {
  const engine = new FakeEngine();
  engine.jobs.set('o9-mine', job('o9-mine', 'succeeded', { message: 'Installed.', createdAt: 5 }));
  engine.jobs.set('o9-before', job('o9-before', 'failed', { createdAt: -5 }));
  const m = method(engine, '</9>');
  const ctx = context({});
  const resumed = await m.advance({ ...ctx, attempt: { ...ctx.attempt, startedAt: 1 } }, { kind: 'resumed' });
  assert.equal(resumed.status, 'succeeded');
  assert.match(resumed.message, /o9-mine/);
  assert.equal(engine.installs, 0, 'no new Object 9 job');
  engine.jobs.clear();
  assert.equal((await m.advance({ ...ctx, attempt: { ...ctx.attempt, startedAt: 1 } }, { kind: 'resumed' })).status, 'running', 'none found: started now');
  assert.equal(engine.installs, 1);
});

void test('object9 method: a job ended by the engine is pushed to the chain as completed with the ref the attempt state names; retry advice makes the failure retryable', async () => {
  const engine = new FakeEngine();
  const listeners: ((j: InstallJob) => void)[] = [];
  const m = new Object9Method({ engine: Object.assign(engine, { onJobEnded: (l: (j: InstallJob) => void) => { listeners.push(l); return () => undefined; } }), registrations: { getByEndpoint: () => Promise.resolve({ endpoint: 'dev', objectLinks: '</9>' } as Registration) } });
  const pushed: string[] = [];
  m.connect({ completed: (ref) => pushed.push(ref) });
  const begun = await m.begin(context({}));
  assert.equal(begun.status, 'running');
  const ref = m.refOf(begun.status === 'running' ? begun.state : null);
  listeners.forEach((l) => l(job('o9-1', 'failed', { retry: 'retry' })));
  assert.deepEqual(pushed, [ref]);
  engine.jobs.set('o9-1', job('o9-1', 'failed', { retry: 'retry', message: 'Timed out.' }));
  const failed = await m.advance(context({ object9JobId: 'o9-1' }), { kind: 'completed', ref: ref! });
  assert.equal(failed.status === 'failed' && failed.retryable, true);
  engine.jobs.set('o9-1', job('o9-1', 'failed', { retry: 'no-retry' }));
  const final = await m.advance(context({ object9JobId: 'o9-1' }), { kind: 'completed', ref: ref! });
  assert.equal(final.status === 'failed' && final.retryable, undefined);
});
