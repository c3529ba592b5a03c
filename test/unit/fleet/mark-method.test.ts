/**
 * Mark for Installation in the chain driver, with a fake method it hands over to at the
 * device's next contact (the Object 9 method in a real server). Real SQLite store.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChainDriver } from '../../../src/fleet/chain-driver.js';
import { MarkMethod } from '../../../src/fleet/methods/mark.js';
import type { AttemptContext, InstallMethod, MethodEvent, MethodStep } from '../../../src/fleet/methods/method.js';
import { openSqliteStore } from '../../../src/store/index.js';

const SHA = 'b'.repeat(64);
const T0 = Date.parse('2026-12-07T10:00:00.000Z');

/** Stands for the Object 9 method: cannot try until `reachable`, then runs and succeeds on its next event. */
class FakeHandover implements InstallMethod {
  readonly name = 'object9';
  reachable = false;
  readonly calls: string[] = [];
  preflight(): Promise<string | undefined> {
    return Promise.resolve(this.reachable ? undefined : 'device has no Object 9');
  }
  begin(): Promise<MethodStep> {
    this.calls.push('begin');
    return Promise.resolve({ status: 'running', state: { object9JobId: 'j1' }, message: 'Downloading.' });
  }
  advance(context: AttemptContext, event: MethodEvent): Promise<MethodStep> {
    this.calls.push(`advance:${event.kind}:${JSON.stringify(context.attempt.state)}`);
    return Promise.resolve({ status: 'succeeded', message: 'Installed.' });
  }
  cancel(context: AttemptContext): Promise<void> {
    this.calls.push(`cancel:${JSON.stringify(context.attempt.state)}`);
    return Promise.resolve();
  }
}

void test('mark: pending since the mark until a contact where the handover can try; then installed by it, through a restart', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'depot-mark-'));
  let now = T0;
  let store = openSqliteStore({ dataDir });
  try {
    const object9 = new FakeHandover();
    const chain = (h: FakeHandover): ChainDriver => new ChainDriver({ store, methods: [new MarkMethod({ handover: h, now: () => now })], tickMs: 0, now: () => now, onError: (e) => assert.fail(e) });
    let driver = chain(object9);
    const job = await driver.install('sleepy', SHA);
    assert.equal(job.message, 'mark: Marked for installation since 2026-12-07T10:00:00.000Z: installs at its next contact.');

    now += 60_000;
    await driver.tick();
    let view = (await driver.view(job.id))!;
    assert.equal(view.attempts[0]!.message, 'Marked for installation since 2026-12-07T10:00:00.000Z: installs at its next contact.', 'a timer is no contact');
    await driver.contact('sleepy');
    view = (await driver.view(job.id))!;
    assert.equal(view.job.state, 'running');
    assert.equal(view.attempts[0]!.message, 'Marked for installation since 2026-12-07T10:00:00.000Z: contacted at 2026-12-07T10:01:00.000Z, but object9 cannot try: device has no Object 9; still marked.');
    assert.deepEqual(object9.calls, [], 'nothing is started while the handover cannot try');
    await driver.tick();
    assert.match((await driver.view(job.id))!.attempts[0]!.message ?? '', /contacted at 2026-12-07T10:01:00.000Z/, 'a timer keeps what the last contact said');
    await driver.contact('other-device');

    object9.reachable = true;
    await driver.tick();
    assert.deepEqual(object9.calls, [], 'only a contact hands over');
    await driver.contact('sleepy');
    view = (await driver.view(job.id))!;
    assert.deepEqual(object9.calls, ['begin']);
    assert.deepEqual(view.attempts[0]!.state, { since: T0, handover: { object9JobId: 'j1' } });
    assert.match(view.job.message ?? '', /Installing \(marked since 2026-12-07T10:00:00.000Z, at its next contact by object9\): Downloading\./);

    // A restart: the mark resumes with the handover's state, not a new mark.
    await driver.close();
    store.close();
    store = openSqliteStore({ dataDir });
    const object9Again = new FakeHandover();
    driver = chain(object9Again);
    await driver.start();
    await driver.close();
    view = (await driver.view(job.id))!;
    assert.deepEqual(object9Again.calls, ['advance:resumed:{"object9JobId":"j1"}']);
    assert.equal(view.job.state, 'succeeded');
    assert.deepEqual(view.attempts.map((a) => [a.method, a.outcome]), [['mark', 'succeeded']]);
    assert.match(view.attempts[0]!.message ?? '', /^Installed \(marked since .*\): Installed\.$/);
  } finally {
    store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

void test('mark: cancel after the handover began reaches the handover with its own state', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'depot-mark-'));
  const store = openSqliteStore({ dataDir });
  try {
    const object9 = new FakeHandover();
    object9.reachable = true;
    const driver = new ChainDriver({ store, methods: [new MarkMethod({ handover: object9 })], tickMs: 0 });
    const job = await driver.install('dev', SHA);
    await driver.contact('dev');
    const view = await driver.cancel(job.id);
    assert.equal(view.job.state, 'cancelled');
    assert.deepEqual(object9.calls, ['begin', 'cancel:{"object9JobId":"j1"}']);
    await driver.close();
  } finally {
    store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

void test('mark: the handover\'s protocol job ref is the mark attempt\'s ref (so its end, pushed, reaches the mark); none before the handover', () => {
  const handover = new FakeHandover();
  const withRef = Object.assign(handover, { refOf: (state: unknown) => (state && typeof state === 'object' && 'object9JobId' in state ? `object9:${String((state as { object9JobId: string }).object9JobId)}` : undefined) });
  const mark = new MarkMethod({ handover: withRef });
  assert.equal(mark.refOf({ since: T0 }), undefined);
  assert.equal(mark.refOf({ since: T0, handover: { object9JobId: 'j1' } }), 'object9:j1');
});
