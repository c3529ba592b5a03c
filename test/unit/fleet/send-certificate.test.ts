/**
 * Send certificate (issue 16, "Trust first") with fakes: the chain driver runs the trust step
 * when a method fails with `needsTrust`, at that method's position, then retries the method once
 * (never twice), goes on when the step fails, and after a restart picks up where it stopped; the
 * step's SMS link channel over the real SQLite trust records (one-time, expiring link; a failed
 * SMS fails the push); the trust ledger's states and its confirmation into the inventory; and
 * SCOMO's trust signals (an account without a session, a job no session takes).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ChainDriver } from '../../../src/fleet/chain-driver.js';
import type { AttemptContext, InstallMethod, MethodStep } from '../../../src/fleet/methods/method.js';
import { CertificateLinks, Lwm2mBootstrapChannel, SendCertificateMethod, SmsCertificateLinkChannel, TrustLedger, trustRootOf } from '../../../src/fleet/methods/send-certificate.js';
import { ScomoMethod } from '../../../src/fleet/methods/scomo.js';
import type { SmsMessageRecord } from '../../../src/sms/outbox.js';
import type { ScomoJob } from '../../../src/store/sqlite/omadm-scomo.js';
import { withTempStore } from '../../support/temp-store.js';

const SHA = 'a'.repeat(64);
const ROOT = trustRootOf(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]));

class FakeMethod implements InstallMethod {
  readonly calls: string[] = [];
  cannotTry: string | undefined;
  begins: MethodStep[] = [];
  onAdvance: MethodStep = { status: 'running', state: { step: 1 }, message: 'Still working.' };

  constructor(readonly name: string) {}

  preflight(): Promise<string | undefined> {
    return Promise.resolve(this.cannotTry);
  }

  begin(): Promise<MethodStep> {
    this.calls.push('begin');
    return Promise.resolve(this.begins.shift() ?? { status: 'running', state: { step: 1 }, message: 'Working.' });
  }

  advance(): Promise<MethodStep> {
    this.calls.push('advance');
    return Promise.resolve(this.onAdvance);
  }

  cancel(): Promise<void> {
    return Promise.resolve();
  }
}

const withStore = (fn: Parameters<typeof withTempStore>[1]) => withTempStore('trust', fn);

const untrusted: MethodStep = { status: 'failed', message: 'TLS refused', result: 'NO_TRUST', needsTrust: true };
const history = async (driver: ChainDriver, id: string) => (await driver.view(id))!.attempts.map((a) => [a.method, a.position, a.outcome, a.result]);

void test(
  'trust first: a method failing for want of the root gets the trust step at its position, then one more try; a second trust failure falls through',
  withStore(async (store) => {
    const dm = new FakeMethod('dm');
    const next = new FakeMethod('next');
    const trust = new FakeMethod('send-certificate');
    dm.begins = [untrusted, untrusted];
    trust.begins = [{ status: 'running', state: { channel: 'fake' }, message: 'sent' }];
    trust.onAdvance = { status: 'succeeded', message: 'pushed', result: 'PUSHED' };
    const driver = new ChainDriver({ store, methods: [dm, next], trust, tickMs: 0, onError: (e) => assert.fail(e) });
    assert.deepEqual(driver.methodNames(), ['dm', 'next']);
    const job = await driver.install('dev-1', SHA);
    assert.deepEqual(job.methods, ['dm', 'next']);
    assert.deepEqual(await history(driver, job.id), [
      ['dm', 0, 'failed', 'NO_TRUST'],
      ['send-certificate', 0, 'running', null],
    ]);
    assert.match((await driver.view(job.id))!.attempts[0]!.message!, /TLS refused \(Depot's root is sent first, then dm is tried once more\)/);
    await driver.tick();
    assert.deepEqual(await history(driver, job.id), [
      ['dm', 0, 'failed', 'NO_TRUST'],
      ['send-certificate', 0, 'succeeded', 'PUSHED'],
      ['dm', 0, 'failed', 'NO_TRUST'],
      ['next', 1, 'running', null],
    ]);
    assert.deepEqual(trust.calls, ['begin', 'advance']);
    assert.deepEqual(dm.calls, ['begin', 'begin']);
    await driver.close();
  }),
);

void test(
  'trust first: the retried method succeeds and ends the job; a failed trust step goes on with the next method; the step is never a chain method',
  withStore(async (store) => {
    const dm = new FakeMethod('dm');
    const next = new FakeMethod('next');
    const trust = new FakeMethod('send-certificate');
    dm.begins = [untrusted, { status: 'succeeded', message: 'installed' }];
    trust.begins = [{ status: 'succeeded', message: 'pushed', result: 'PUSHED' }];
    const driver = new ChainDriver({ store, methods: [dm, next], trust, tickMs: 0, onError: (e) => assert.fail(e) });
    const ok = await driver.install('dev-1', SHA);
    assert.equal((await driver.view(ok.id))!.job.state, 'succeeded');
    assert.deepEqual(await history(driver, ok.id), [
      ['dm', 0, 'failed', 'NO_TRUST'],
      ['send-certificate', 0, 'succeeded', 'PUSHED'],
      ['dm', 0, 'succeeded', null],
    ]);
    dm.begins = [untrusted];
    trust.begins = [{ status: 'failed', message: 'no number', result: 'NO_CHANNEL' }];
    const fell = await driver.install('dev-2', SHA);
    assert.deepEqual(await history(driver, fell.id), [
      ['dm', 0, 'failed', 'NO_TRUST'],
      ['send-certificate', 0, 'failed', 'NO_CHANNEL'],
      ['next', 1, 'running', null],
    ]);
    // A trust step that cannot try is skipped with its reason, and the chain goes on.
    dm.begins = [untrusted];
    trust.cannotTry = 'Depot knows no phone number';
    const skipped = await driver.install('dev-3', SHA);
    assert.deepEqual((await driver.view(skipped.id))!.attempts.map((a) => [a.method, a.outcome, a.message]).slice(1), [
      ['send-certificate', 'skipped', 'Depot knows no phone number'],
      ['next', 'running', 'Working.'],
    ]);
    await assert.rejects(driver.install('dev-4', SHA, { methods: ['send-certificate', 'dm'] }), /send-certificate is not an install method/);
    await driver.close();
    assert.throws(() => new ChainDriver({ store, methods: [dm, trust], trust }), /must not also be a chain method/);
  }),
);

void test(
  'trust first across a restart: a failure noted for the trust step whose step never began gets it from the next driver',
  withStore(async (store) => {
    const now = Date.now();
    const job = await store.chainJobs.create({ id: 'job-restart', endpoint: 'dev-9', packageSha256: SHA, activate: false, methods: ['dm', 'next'] }, now);
    const a = await store.chainJobs.addAttempt(job.id, { method: 'dm', position: 0, outcome: 'running', message: 'Beginning.', state: {} }, now);
    await store.chainJobs.endAttempt(job.id, a.seq, 'failed', "TLS refused (Depot's root is sent first, then dm is tried once more)", 'NO_TRUST', now);
    const dm = new FakeMethod('dm');
    const next = new FakeMethod('next');
    const trust = new FakeMethod('send-certificate');
    trust.begins = [{ status: 'succeeded', message: 'pushed', result: 'PUSHED' }];
    dm.begins = [{ status: 'succeeded', message: 'installed' }];
    const driver = new ChainDriver({ store, methods: [dm, next], trust, tickMs: 0, onError: (e) => assert.fail(e) });
    await driver.start();
    await driver.close();
    assert.deepEqual(await history(driver, job.id), [
      ['dm', 0, 'failed', 'NO_TRUST'],
      ['send-certificate', 0, 'succeeded', 'PUSHED'],
      ['dm', 0, 'succeeded', null],
    ]);
  }),
);

/** An outbox that keeps texts and lets a test set their state. */
class FakeOutbox {
  readonly sent: { to: string; text: string; jobStep: string; record: SmsMessageRecord }[] = [];
  sendText(request: { to: string; text: string; jobStep: string }): Promise<SmsMessageRecord> {
    const existing = this.sent.find((s) => s.jobStep === request.jobStep);
    if (existing) return Promise.resolve(existing.record);
    const record = { id: `sms-${this.sent.length + 1}`, to: request.to, state: 'submitted', lastError: null } as unknown as SmsMessageRecord;
    this.sent.push({ ...request, record });
    return Promise.resolve(record);
  }
  get(idOrKey: string): Promise<SmsMessageRecord | null> {
    return Promise.resolve(this.sent.find((s) => s.record.id === idOrKey || s.jobStep === idOrKey)?.record ?? null);
  }
  setState(id: string, state: string, lastError: string | null = null): void {
    const s = this.sent.find((x) => x.record.id === id)!;
    s.record = { ...s.record, state, lastError } as unknown as SmsMessageRecord;
  }
}

const context = (endpoint: string, seq: number, state: unknown = {}): AttemptContext => ({ target: { jobId: 'job-1', endpoint, packageSha256: SHA, activate: true }, job: {} as never, attempt: { seq, state } as never });

void test(
  'Send certificate by SMS link: a text with a one-time link; fetching it serves the root and makes the push `pushed` (the step succeeds); the link has a fetch limit and an expiry; a failed SMS fails the push',
  withStore(async (store) => {
    let clock = Date.UTC(2026, 11, 7);
    const outbox = new FakeOutbox();
    const numbers: Record<string, string> = { 'omadm:IMEI:1': '+4792000001', 'omadm:IMEI:2': '+4792000002', 'omadm:IMEI:3': '+4792000003' };
    const channel = new SmsCertificateLinkChannel({ outbox, directory: { numberOf: (e) => Promise.resolve(numbers[e] ?? null) }, trust: store.trust, root: () => ROOT, publicBaseUrl: 'http://depot.example:8080/', linkTtlMs: 60_000, now: () => clock });
    const ledger = new TrustLedger({ trust: store.trust, inventory: store.inventory, root: () => ROOT, now: () => clock });
    const method = new SendCertificateMethod({ channels: [channel, new Lwm2mBootstrapChannel({ trust: store.trust, root: () => ROOT, bootstrapsWithCertificates: () => Promise.resolve(false) })], ledger });
    const links = new CertificateLinks({ trust: store.trust, root: () => ROOT, maxFetches: 2, now: () => clock });

    assert.match((await method.preflight({ jobId: 'j', endpoint: 'omadm:IMEI:none', packageSha256: SHA, activate: true }))!, /sms-link: Depot knows no phone number.*lwm2m-bootstrap: not an LwM2M device that bootstraps with Depot using certificates/);
    assert.equal(await ledger.stateOf('omadm:IMEI:1'), 'unknown');
    const begun = await method.begin(context('omadm:IMEI:1', 3));
    assert.equal(begun.status, 'running', JSON.stringify(begun));
    assert.equal(outbox.sent.length, 1);
    const { text, jobStep, to } = outbox.sent[0]!;
    assert.equal(to, '+4792000001');
    assert.equal(jobStep, 'send-certificate:job-1:3');
    assert.ok(text.includes(ROOT.fingerprint.slice(0, 23)), text);
    const token = /^.*http:\/\/depot\.example:8080\/c\/([A-Za-z0-9_-]+) /.exec(text)![1]!;
    assert.equal(await ledger.stateOf('omadm:IMEI:1'), 'pushed');
    // Begun again (a restart before the step was stored): the same SMS, no second one.
    await method.begin(context('omadm:IMEI:1', 3));
    assert.equal(outbox.sent.length, 1);
    const state = begun.status === 'running' ? begun.state : null;
    assert.equal((await method.advance(context('omadm:IMEI:1', 3, state), { kind: 'timer' })).status, 'running');
    // The token is stored only as its hash.
    assert.equal(JSON.stringify(await store.trust.get('omadm:IMEI:1')).includes(token), false);
    assert.equal(await links.open('x'.repeat(22)), undefined);
    assert.deepEqual(await links.open(token), ROOT.der);
    const done = await method.advance(context('omadm:IMEI:1', 3, state), { kind: 'timer' });
    assert.deepEqual([done.status, done.status === 'succeeded' ? done.result : ''], ['succeeded', 'PUSHED']);
    assert.deepEqual(await links.open(token), ROOT.der);
    assert.equal(await links.open(token), undefined, 'past the fetch limit');

    // Confirmation: the device's TLS session; the inventory record says it holds the root.
    const confirmed = await ledger.confirmed('omadm:IMEI:1', 'HTTPS DM session');
    assert.equal(confirmed?.state, 'confirmed');
    assert.equal(await ledger.stateOf('omadm:IMEI:1'), 'yes');
    assert.equal((await store.inventory.findByIdentity({ omadmDevId: 'IMEI:1' }))?.trustState, 'yes');
    assert.equal(await ledger.confirmed('omadm:IMEI:never', 'HTTPS DM session'), null, 'nothing for devices never pushed to');

    // A link that expires unfetched fails the push.
    const second = await method.begin(context('omadm:IMEI:2', 1));
    clock += 61_000;
    const expired = await method.advance(context('omadm:IMEI:2', 1, second.status === 'running' ? second.state : null), { kind: 'timer' });
    assert.equal(expired.status, 'failed');
    assert.match(expired.message, /the link expired before the device fetched the root/);
    // A failed SMS fails it.
    const third = await method.begin(context('omadm:IMEI:3', 2));
    outbox.setState(outbox.sent[2]!.record.id, 'failed', 'SMSC rejected');
    const failed = await method.advance(context('omadm:IMEI:3', 2, third.status === 'running' ? third.state : null), { kind: 'timer' });
    assert.deepEqual([failed.status, failed.message], ['failed', 'root not pushed by sms-link: the SMS failed: SMSC rejected']);
    const listed = await store.trust.list({ state: 'failed' });
    assert.deepEqual(listed.items.map((r) => r.endpoint), ['omadm:IMEI:2', 'omadm:IMEI:3']);
    // The operator's send (outside a job) is the same push; no channel is a clear refusal.
    assert.equal((await method.send('omadm:IMEI:2', 'op-1')).state, 'sent');
    await assert.rejects(method.send('omadm:IMEI:none', 'op-2'), /no way to send the certificate/);
  }),
);

void test(
  'Send certificate for an LwM2M device that bootstraps with certificates: the bootstrap writes the trust anchor; pushed at once',
  withStore(async (store) => {
    const ledger = new TrustLedger({ trust: store.trust, root: () => ROOT });
    const method = new SendCertificateMethod({ channels: [new Lwm2mBootstrapChannel({ trust: store.trust, root: () => ROOT, bootstrapsWithCertificates: (e) => Promise.resolve(e === 'urn:dev:x509') })], ledger });
    const step = await method.begin(context('urn:dev:x509', 1));
    assert.equal(step.status, 'succeeded');
    assert.match(step.message, /Server Public Key \(\/0\/x\/4\)/);
    assert.equal((await store.trust.get('urn:dev:x509'))?.channel, 'lwm2m-bootstrap');
    assert.match((await method.preflight({ jobId: 'j', endpoint: 'urn:dev:psk', packageSha256: SHA, activate: true }))!, /only a bootstrap writes a trust anchor/);
  }),
);

void test('SCOMO with trust first: an account without a session and unknown trust fails NO_TRUST (needsTrust); after a push it queues; a job no session takes fails NO_SESSION', async () => {
  let clock = 1_000_000;
  let trust: 'yes' | 'pushed' | 'no' | 'unknown' = 'unknown';
  const jobs: ScomoJob[] = [];
  const cancelled: string[] = [];
  const method = new ScomoMethod({
    scomo: {
      create: (r) => {
        const job = { id: `s${jobs.length + 1}`, deviceId: r.deviceId, operation: r.operation, packageSha256: r.packageSha256, state: 'queued', finishedAt: null, createdAt: clock, message: null, resultName: null } as unknown as ScomoJob;
        jobs.push(job);
        return Promise.resolve(job);
      },
      get: (id) => Promise.resolve(jobs.find((j) => j.id === id) ?? null),
      list: () => Promise.resolve([]),
      cancel: (id) => {
        cancelled.push(id);
        return Promise.resolve(jobs.find((j) => j.id === id)!);
      },
    },
    accounts: { get: (id) => Promise.resolve(id === 'IMEI:1' ? {} : null) },
    deviceFacts: { get: () => Promise.resolve(null) },
    trust: { stateOf: () => Promise.resolve(trust), noSessionMs: 60_000 },
    now: () => clock,
  });
  const target = { jobId: 'j', endpoint: 'omadm:IMEI:1', packageSha256: SHA, activate: true };
  assert.equal(await method.preflight(target), undefined, 'tried: begin says why it fails');
  const first = await method.begin(context('omadm:IMEI:1', 1));
  assert.deepEqual([first.status, first.status === 'failed' ? [first.result, first.needsTrust] : null], ['failed', ['NO_TRUST', true]]);
  assert.equal(jobs.length, 0, 'no SCOMO job for a device that cannot reach Depot');
  trust = 'pushed';
  const second = await method.begin(context('omadm:IMEI:1', 3));
  assert.equal(second.status, 'running');
  const state = second.status === 'running' ? second.state : null;
  clock += 59_000;
  assert.equal((await method.advance(context('omadm:IMEI:1', 3, state), { kind: 'timer' })).status, 'running');
  clock += 2_000;
  const stalled = await method.advance(context('omadm:IMEI:1', 3, state), { kind: 'timer' });
  assert.deepEqual([stalled.status, stalled.status === 'failed' ? [stalled.result, stalled.needsTrust] : null], ['failed', ['NO_SESSION', true]]);
  assert.deepEqual(cancelled, ['s1']);
  // The operator says the device lacks the root: NO_TRUST even with a session seen.
  trust = 'no';
  const refused = await method.begin(context('omadm:IMEI:1', 5));
  assert.equal(refused.status === 'failed' ? refused.result : '', 'NO_TRUST');
  // Trust confirmed and still no session: the old rule.
  trust = 'yes';
  assert.equal(await method.preflight(target), 'the device has never opened an OMA DM session');
});
