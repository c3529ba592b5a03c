/**
 * The campaign engine over a real SQLite store and catalog, with a fake job port (FakeJobPort:
 * jobs are finished by the test): waves by percentage, spread across models, the success
 * threshold, per-model and overall failure pauses, approval, concurrency, maintenance windows,
 * cancel, a retry campaign, batching per wave, and restarts with a new engine over the same file
 * (no device gets a second job).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { CampaignEngine, inWindow, orderDevices, waveSizes, type CampaignJobPort, type CampaignJobResult, type CampaignJobSpec, type CampaignJobStatus } from '../../../src/fleet/campaigns.js';
import { PackageCatalog } from '../../../src/fleet/packages.js';
import { recordCampaignHistory } from '../../../src/fleet/campaign-history.js';
import { openSqliteStore, type SqliteStore } from '../../../src/store/index.js';
import { tempDir } from '../store/helpers.js';

/** A fake install-job port: records what it was asked; the test ends jobs. */
class FakeJobPort implements CampaignJobPort {
  readonly jobs = new Map<string, { spec: CampaignJobSpec } & CampaignJobStatus>();
  /** Sizes of the createJobs batches. */
  readonly batches: number[] = [];
  cancelled: string[] = [];
  private n = 0;
  failCreate = false;

  createJobs(specs: readonly CampaignJobSpec[]): Promise<CampaignJobResult[]> {
    if (this.failCreate) return Promise.reject(new Error('port down'));
    this.batches.push(specs.length);
    return Promise.resolve(
      specs.map((spec) => {
        if ([...this.jobs.values()].some((j) => j.spec.endpoint === spec.endpoint && j.state === 'running')) return { error: `device "${spec.endpoint}" already has an open install job` };
        const id = `job-${++this.n}`;
        this.jobs.set(id, { spec, state: 'running', method: null, message: null });
        return { jobId: id };
      }),
    );
  }

  jobStates(ids: readonly string[]): Promise<Map<string, CampaignJobStatus>> {
    return Promise.resolve(new Map(ids.filter((id) => this.jobs.has(id)).map((id) => [id, this.jobs.get(id)!])));
  }

  cancel(id: string): Promise<void> {
    this.cancelled.push(id);
    const j = this.jobs.get(id)!;
    this.jobs.set(id, { ...j, state: 'cancelled' });
    return Promise.resolve();
  }

  findJob(endpoint: string, sha: string): Promise<string | null> {
    return Promise.resolve([...this.jobs.entries()].find(([, j]) => j.spec.endpoint === endpoint && j.spec.packageSha256 === sha)?.[0] ?? null);
  }

  running(): [string, CampaignJobSpec][] {
    return [...this.jobs.entries()].filter(([, j]) => j.state === 'running').map(([id, j]) => [id, j.spec]);
  }

  /** Ends every running job: `outcome(spec)` says how. */
  finishAll(outcome: (spec: CampaignJobSpec) => 'succeeded' | 'failed', method = 'object9'): number {
    const open = this.running();
    for (const [id, spec] of open) this.jobs.set(id, { spec, state: outcome(spec), method, message: 'done' });
    return open.length;
  }
}

interface Fixture {
  store: SqliteStore;
  catalog: PackageCatalog;
  jobs: FakeJobPort;
  engine: CampaignEngine;
  dataDir: string;
  sha: string;
}

async function fixture(devices: { make: string; model: string; group?: string; timeZone?: string }[]): Promise<Fixture> {
  const dataDir = join(tempDir('depot-campaign-'), 'data');
  const store = openSqliteStore({ dataDir });
  const catalog = new PackageCatalog({ dataDir, repository: store.packages, targets: store.packageTargets, inUse: (s) => store.campaigns.packageInUse(s) });
  const record = await catalog.addOpaqueBytes(Buffer.from('firmware 1'), { name: 'fw', version: '1.0', packageType: 'acmefw' });
  let i = 0;
  for (const d of devices) {
    i++;
    await store.inventory.upsert({ lwm2mEndpoint: `ep-${String(i).padStart(3, '0')}` }, { make: d.make, model: d.model, ...(d.timeZone ? { timeZone: d.timeZone } : {}) }, { source: 'test', create: 'seen', labels: { groups: [d.group ?? 'fleet'] } }, 1000);
  }
  const jobs = new FakeJobPort();
  const engine = new CampaignEngine({ campaigns: store.campaigns, inventory: store.inventory, catalog, jobs, tickMs: 0, onError: (e) => assert.fail(e) });
  return { store, catalog, jobs, engine, dataDir, sha: record.sha256 };
}

const fleet = (n: number, make = 'Acme', model = 'S-1') => Array.from({ length: n }, () => ({ make, model }));

void test('campaigns: waves sized by cumulative percentage or fixed size; the rest joins the last wave', () => {
  assert.deepEqual(waveSizes(200, [{ percent: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }]), [2, 18, 80, 100]);
  assert.deepEqual(waveSizes(10, [{ size: 2 }, { size: 3 }]), [2, 8]);
  assert.deepEqual(waveSizes(3, [{ percent: 1 }, { percent: 100 }]), [1, 2]);
});

void test('campaigns: spread order gives each stretch every model in proportion; the same seed, the same order', () => {
  const devices = [...Array.from({ length: 60 }, (_, i) => ({ id: `a${i}`, m: 'a' })), ...Array.from({ length: 30 }, (_, i) => ({ id: `b${i}`, m: 'b' })), ...Array.from({ length: 10 }, (_, i) => ({ id: `c${i}`, m: 'c' }))];
  const order = orderDevices(devices, (d) => d.m, 'spread', 42);
  const first10 = order.slice(0, 10).map((d) => d.m);
  assert.deepEqual([first10.filter((m) => m === 'a').length, first10.filter((m) => m === 'b').length, first10.filter((m) => m === 'c').length], [6, 3, 1]);
  assert.deepEqual(orderDevices(devices, (d) => d.m, 'spread', 42), order);
  assert.notDeepEqual(orderDevices(devices, (d) => d.m, 'random', 1).map((d) => d.id), orderDevices(devices, (d) => d.m, 'random', 2).map((d) => d.id));
});

void test('campaigns: maintenance windows in UTC or the device time zone, across midnight', () => {
  const at = Date.UTC(2026, 0, 15, 23, 30);
  assert.equal(inWindow({ start: '22:00', end: '02:00' }, at, null), true);
  assert.equal(inWindow({ start: '01:00', end: '05:00' }, at, null), false);
  // 23:30 UTC is 00:30 in Berlin (winter): in a 00:00–04:00 window in device time.
  assert.equal(inWindow({ start: '00:00', end: '04:00', deviceTime: true }, at, 'Europe/Berlin'), true);
  assert.equal(inWindow({ start: '00:00', end: '04:00', deviceTime: true }, at, null), false, 'no known zone: UTC');
});

void test('campaigns: two waves run to completion; wave 2 starts when wave 1 reaches its threshold; one batch per wave', async () => {
  const f = await fixture(fleet(20));
  const c = await f.engine.create({ name: 'fw 1.0', target: { kind: 'group', group: 'fleet' }, package: { kind: 'fixed', sha256: f.sha }, waves: [{ percent: 10 }, { percent: 100 }], seed: 7 });
  assert.equal(c.state, 'running');
  assert.deepEqual(f.jobs.batches, [2], 'wave 1 (10 % of 20) made in one batch');
  await assert.rejects(f.catalog.remove(f.sha), /cannot be deleted: campaign .* still has devices/);
  f.jobs.finishAll(() => 'succeeded');
  await f.engine.tick();
  assert.deepEqual(f.jobs.batches, [2, 18], 'wave 2 in one batch');
  let p = await f.engine.progress(c.id);
  assert.equal(p.campaign.currentWave, 1);
  assert.equal(p.waves[0]!.state, 'done');
  f.jobs.finishAll(() => 'succeeded', 'mark');
  await f.engine.tick();
  p = await f.engine.progress(c.id);
  assert.equal(p.campaign.state, 'completed');
  assert.equal(p.totals.succeeded, 20);
  assert.deepEqual(p.methods, [{ method: 'mark', succeeded: 18, failed: 0 }, { method: 'object9', succeeded: 2, failed: 0 }]);
  assert.equal(await f.catalog.remove(f.sha), true, 'no longer in use');
  f.store.close();
});

void test('campaigns: a model that fails everywhere is paused and reported; the campaign goes on for the others', async () => {
  const f = await fixture([...fleet(10, 'Acme', 'S-1'), ...fleet(10, 'Globex', 'G-2')]);
  const c = await f.engine.create({ name: 'mixed', target: { kind: 'group', group: 'fleet' }, package: { kind: 'fixed', sha256: f.sha }, waves: [{ percent: 40 }, { percent: 100 }], seed: 1, successThreshold: 0.8, modelFailureLimit: 0.5, failureLimit: 0.3 });
  assert.deepEqual(f.jobs.batches, [8]);
  f.jobs.finishAll((s) => (s.endpoint <= 'ep-010' ? 'succeeded' : 'failed'));
  await f.engine.tick();
  let p = await f.engine.progress(c.id);
  assert.match(p.campaign.pausedModels['globex/g-2'] ?? '', /4 of 4 installs failed \(100 %, limit 50 %\)/);
  assert.equal(p.campaign.state, 'running', 'the overall rate counts the models still in the campaign');
  assert.equal(p.campaign.currentWave, 1, 'wave 1 reached its threshold among the models not paused');
  const started = f.jobs.running().map(([, s]) => s.endpoint);
  assert.equal(started.length, 6);
  assert.ok(started.every((e) => e <= 'ep-010'), 'no Globex device was started after its model was paused');
  f.jobs.finishAll(() => 'succeeded');
  await f.engine.tick();
  p = await f.engine.progress(c.id);
  assert.equal(p.campaign.state, 'completed');
  assert.match(p.campaign.pauseReason ?? '', /paused models not installed: globex\/g-2/);
  assert.deepEqual(p.models.map((m) => [m.model, m.counts.succeeded, m.counts.failed, m.counts.pending, m.paused !== null]), [['acme/s-1', 10, 0, 0, false], ['globex/g-2', 0, 4, 6, true]]);

  // One action: a retry campaign of the failed devices.
  const retry = await f.engine.retryFailed(c.id);
  assert.equal(retry.retryOf, c.id);
  assert.equal((await f.engine.members(retry.id)).length, 4);
  assert.deepEqual(f.jobs.batches.slice(-1), [4]);
  f.store.close();
});

void test('campaigns: overall failure rate pauses; resume accepts the failures so far; a wave below its threshold pauses until resumed', async () => {
  const f = await fixture(fleet(10));
  const c = await f.engine.create({ name: 'x', target: { kind: 'group', group: 'fleet' }, package: { kind: 'fixed', sha256: f.sha }, waves: [{ size: 5 }, { size: 5 }], seed: 3, failureLimit: 0.3, modelFailureLimit: 1, successThreshold: 0.6 });
  let n = 0;
  f.jobs.finishAll(() => (n++ < 3 ? 'succeeded' : 'failed'));
  await f.engine.tick();
  let p = await f.engine.progress(c.id);
  assert.equal(p.campaign.state, 'paused');
  assert.match(p.campaign.pauseReason ?? '', /failure rate 40 % \(2 of 5\) passed the limit of 30 %/);
  await f.engine.tick();
  assert.deepEqual(f.jobs.batches, [5], 'nothing started while paused');
  await f.engine.resume(c.id);
  p = await f.engine.progress(c.id);
  assert.equal(p.campaign.state, 'running', 'the failures the operator accepted do not pause it again');
  assert.deepEqual(f.jobs.batches, [5, 5], 'wave 1 reached its 60 % threshold: wave 2 started');
  f.jobs.finishAll(() => 'failed');
  await f.engine.tick();
  p = await f.engine.progress(c.id);
  assert.equal(p.campaign.state, 'paused');
  assert.match(p.campaign.pauseReason ?? '', /failure rate 100 % \(5 of 5\)/, 'counted since the resume');
  await f.engine.resume(c.id);
  assert.equal((await f.engine.get(c.id)).state, 'completed', 'resuming a paused campaign whose wave is over accepts the wave');
  f.store.close();

  // Failures under the limit, but a wave below its success threshold: paused until resumed.
  const g = await fixture(fleet(6));
  const d = await g.engine.create({ name: 'y', target: { kind: 'group', group: 'fleet' }, package: { kind: 'fixed', sha256: g.sha }, waves: [{ size: 3 }, { size: 3 }], seed: 3, failureLimit: 1, modelFailureLimit: 1, successThreshold: 0.9 });
  let k = 0;
  g.jobs.finishAll(() => (k++ < 2 ? 'succeeded' : 'failed'));
  await g.engine.tick();
  p = await g.engine.progress(d.id);
  assert.equal(p.campaign.state, 'paused');
  assert.match(p.campaign.pauseReason ?? '', /wave 1 ended with 2 of 3 installed \(67 %\), below the success threshold of 90 %: resume to go on/);
  assert.deepEqual(g.jobs.batches, [3]);
  await g.engine.resume(d.id);
  assert.deepEqual(g.jobs.batches, [3, 3], 'resumed: wave 2 started');
  g.store.close();
});

void test('campaigns: approval before each wave after the first, concurrency limit, window, cancel', async () => {
  const f = await fixture(fleet(12));
  const c = await f.engine.create({ name: 'gated', target: { kind: 'filter', filter: { make: 'acme' } }, package: { kind: 'fixed', sha256: f.sha }, waves: [{ size: 4 }, { size: 8 }], approval: true, concurrency: 3, seed: 9 });
  assert.deepEqual(f.jobs.batches, [3], 'at most 3 at once');
  f.jobs.finishAll(() => 'succeeded');
  await f.engine.tick();
  assert.deepEqual(f.jobs.batches, [3, 1]);
  f.jobs.finishAll(() => 'succeeded');
  await f.engine.tick();
  let p = await f.engine.progress(c.id);
  assert.equal(p.campaign.state, 'awaiting-approval');
  assert.equal(p.waves[1]!.state, 'awaiting-approval');
  await f.engine.tick();
  assert.deepEqual(f.jobs.batches, [3, 1], 'wave 2 waits for the operator');
  await f.engine.approve(c.id);
  assert.deepEqual(f.jobs.batches, [3, 1, 3]);
  await assert.rejects(f.engine.approve(c.id), /not awaiting approval/);
  await f.engine.cancel(c.id);
  p = await f.engine.progress(c.id);
  assert.equal(p.campaign.state, 'cancelled');
  assert.equal(p.totals.cancelled, 8);
  assert.equal(f.jobs.cancelled.length, 3, 'running installs cancelled');
  await f.engine.tick();
  assert.deepEqual(f.jobs.batches, [3, 1, 3]);
  await assert.rejects(f.engine.resume(c.id), /already ended \(cancelled\)/);

  // A window that is closed now: nothing starts.
  const now = new Date();
  const closedStart = `${String((now.getUTCHours() + 2) % 24).padStart(2, '0')}:00`;
  const closedEnd = `${String((now.getUTCHours() + 3) % 24).padStart(2, '0')}:00`;
  const w = await f.engine.create({ name: 'night', target: { kind: 'group', group: 'fleet' }, package: { kind: 'fixed', sha256: f.sha }, window: { start: closedStart, end: closedEnd } });
  assert.equal((await f.engine.progress(w.id)).totals.started, 0);
  assert.deepEqual(f.jobs.batches, [3, 1, 3]);
  await assert.rejects(f.engine.create({ name: 'bad', target: { kind: 'group', group: 'fleet' }, package: { kind: 'fixed', sha256: f.sha }, waves: [{ percent: 50 }, { percent: 10 }] }), /percentages are cumulative/);
  await assert.rejects(f.engine.create({ name: 'none', target: { kind: 'group', group: 'nobody' }, package: { kind: 'fixed', sha256: f.sha } }), /targets no device/);
  f.store.close();
});

void test('campaigns: the right package per device by selection; devices no package fits are reported, not failed', async () => {
  const f = await fixture([...fleet(3, 'Acme', 'S-1'), ...fleet(2, 'Globex', 'G-2'), ...fleet(1, 'Initech', 'I-9')]);
  const acme = await f.catalog.addOpaqueBytes(Buffer.from('acme build'), { name: 'agent', version: '2.0', packageType: 'acmefw' });
  const globex = await f.catalog.addOpaqueBytes(Buffer.from('globex build'), { name: 'agent', version: '2.0', packageType: 'gx' });
  await f.catalog.setTargets(acme.sha256, { make: ['acme*'] });
  await f.catalog.setTargets(globex.sha256, { make: ['globex'], model: ['G-*'] });
  await assert.rejects(f.catalog.setTargets(globex.sha256, { make: ['x'] }), /already states its targets/);
  const c = await f.engine.create({ name: 'agent 2', target: { kind: 'group', group: 'fleet' }, package: { kind: 'select', name: 'agent' } });
  const members = await f.engine.members(c.id);
  const byModel = Object.fromEntries(members.map((m) => [m.modelKey, m]));
  assert.equal(byModel['acme/s-1']!.packageSha256, acme.sha256);
  assert.equal(byModel['globex/g-2']!.packageSha256, globex.sha256);
  assert.equal(byModel['initech/i-9']!.state, 'no-package');
  assert.match(byModel['initech/i-9']!.message ?? '', /no package fits/);
  f.jobs.finishAll(() => 'succeeded');
  await f.engine.tick();
  const p = await f.engine.progress(c.id);
  assert.equal(p.campaign.state, 'completed');
  assert.equal(p.totals['no-package'], 1);
  f.store.close();
});

void test('campaigns: durable: a new engine over the same SQLite file resumes; members caught between "starting" and their job adopt it or start once', async () => {
  const f = await fixture(fleet(10));
  const c = await f.engine.create({ name: 'durable', target: { kind: 'group', group: 'fleet' }, package: { kind: 'fixed', sha256: f.sha }, waves: [{ size: 4 }, { size: 6 }], seed: 5, concurrency: 10 });
  assert.deepEqual(f.jobs.batches, [4]);
  await f.engine.close();
  f.store.close();

  // A crash between "starting" and the job ids being recorded: two members with a job, two without.
  const store2 = openSqliteStore({ dataDir: f.dataDir });
  const wave1 = await store2.campaigns.members(c.id, { states: ['started'] });
  store2.db.prepare("UPDATE campaign_members SET state = 'starting', job_id = NULL WHERE campaign_id = ?").run(c.id);
  for (const m of wave1.slice(2)) f.jobs.jobs.delete(m.jobId!);
  const engine2 = new CampaignEngine({ campaigns: store2.campaigns, inventory: store2.inventory, catalog: new PackageCatalog({ dataDir: f.dataDir, repository: store2.packages }), jobs: f.jobs, tickMs: 0, onError: (e) => assert.fail(e) });
  await engine2.start();
  const after = await store2.campaigns.members(c.id, { states: ['started'] });
  assert.equal(after.length, 4);
  assert.deepEqual(after.filter((m) => wave1.slice(0, 2).some((w) => w.deviceId === m.deviceId)).map((m) => m.jobId), wave1.slice(0, 2).map((m) => m.jobId), 'adopted the jobs made before the crash');
  const perDevice = new Map<string, number>();
  for (const j of f.jobs.jobs.values()) perDevice.set(j.spec.deviceId, (perDevice.get(j.spec.deviceId) ?? 0) + 1);
  assert.ok([...perDevice.values()].every((n) => n === 1), 'no device got a second job');

  // A port that fails mid-batch: members go back to pending and start at the next step.
  f.jobs.finishAll(() => 'succeeded');
  f.jobs.failCreate = true;
  const errors: Error[] = [];
  const engine3 = new CampaignEngine({ campaigns: store2.campaigns, inventory: store2.inventory, catalog: new PackageCatalog({ dataDir: f.dataDir, repository: store2.packages }), jobs: f.jobs, tickMs: 0, onError: (e) => errors.push(e) });
  await engine3.tick();
  assert.match(errors[0]?.message ?? '', /port down/);
  assert.equal((await store2.campaigns.members(c.id, { states: ['starting'] })).length, 0);
  f.jobs.failCreate = false;
  await engine3.tick();
  f.jobs.finishAll(() => 'succeeded');
  await engine3.tick();
  assert.equal((await engine3.get(c.id)).state, 'completed');
  assert.equal(f.jobs.jobs.size, 10);
  store2.close();
});

void test('campaigns: progress over time is kept per change (one row per second at most), members page by cursor, and the inventory make/model filters walk an index', async () => {
  const f = await fixture([...fleet(6), ...fleet(4, 'Globex', 'G-2')]);
  let clock = Date.UTC(2026, 11, 7, 12);
  const stop = recordCampaignHistory(f.engine, f.store.campaignHistory, () => (clock += 1500), (e) => assert.fail(e));
  const c = await f.engine.create({ name: 'history', target: { kind: 'group', group: 'fleet' }, package: { kind: 'fixed', sha256: f.sha }, waves: [{ percent: 50 }, { percent: 100 }], seed: 3, successThreshold: 0.5, failureLimit: 1, modelFailureLimit: 1 });
  f.jobs.finishAll((spec) => (spec.endpoint === 'ep-001' ? 'failed' : 'succeeded'));
  await f.engine.tick();
  f.jobs.finishAll(() => 'succeeded');
  await f.engine.tick();
  await new Promise((resolve) => setImmediate(resolve));
  stop();
  const samples = await f.store.campaignHistory.list(c.id);
  assert.ok(samples.length >= 3, JSON.stringify(samples));
  for (let i = 1; i < samples.length; i++) {
    assert.ok(samples[i]!.at > samples[i - 1]!.at, 'oldest first');
    assert.ok(samples[i]!.ended >= samples[i - 1]!.ended, 'ended never goes back');
  }
  const last = samples.at(-1)!;
  assert.deepEqual([last.total, last.ended, last.succeeded + last.failed, last.pending, last.running], [10, 10, 10, 0, 0]);
  // Thinned to 2 points: the first and the last stay.
  assert.deepEqual(await f.store.campaignHistory.list(c.id, 2), [samples[0], last]);
  // Two changes within one second keep one row, with the later totals.
  await f.store.campaignHistory.record(c.id, { ...last, failed: 99 }, last.at + 200);
  assert.equal((await f.store.campaignHistory.list(c.id)).at(-1)!.failed, 99);
  assert.equal((await f.store.campaignHistory.list(c.id)).length, samples.length);

  // Members by cursor: pages of 3 cover every device once, in campaign order.
  const all = await f.engine.members(c.id);
  const seen: string[] = [];
  let after: number | undefined;
  for (;;) {
    const page = await f.engine.members(c.id, { limit: 3, ...(after !== undefined ? { afterPosition: after } : {}) });
    if (page.length === 0) break;
    seen.push(...page.map((m) => m.deviceId));
    after = page.at(-1)!.position;
  }
  assert.deepEqual(seen, all.map((m) => m.deviceId));

  // The filters compare COALESCE(make, expected_make): the plan uses the indexes on those expressions.
  const plan = (where: string) => (f.store.db.prepare(`EXPLAIN QUERY PLAN SELECT id FROM inventory_devices d WHERE id > '' AND ${where} ORDER BY id LIMIT 51`).all({ make: 'Acme', model: 'S-1' }) as { detail: string }[]).map((r) => r.detail).join('; ');
  assert.match(plan('COALESCE(make, expected_make) = @make COLLATE NOCASE'), /USING INDEX inventory_devices_eff_make/);
  assert.match(plan('COALESCE(model, expected_model) = @model COLLATE NOCASE'), /USING INDEX inventory_devices_eff_model/);
  assert.match(plan('COALESCE(make, expected_make) = @make COLLATE NOCASE AND COALESCE(model, expected_model) = @model COLLATE NOCASE'), /USING INDEX inventory_devices_eff_make_model/);
  assert.equal((await f.store.inventory.list({ make: 'globex' })).items.length, 4);
  f.store.close();
});

void test('campaigns: an SMS send rate per campaign and per wave; the install running on a member finds its wave\'s pace group and rate; bad rates are refused', async () => {
  const { engine, jobs, sha } = await fixture(fleet(10));
  for (const smsPerMinute of [0, -1, 70_000]) {
    await assert.rejects(engine.create({ name: 'bad', target: { kind: 'group', group: 'fleet' }, package: { kind: 'fixed', sha256: sha }, smsPerMinute }), /smsPerMinute must be a number in \(0, 60000\]/);
  }
  await assert.rejects(engine.create({ name: 'bad', target: { kind: 'group', group: 'fleet' }, package: { kind: 'fixed', sha256: sha }, waves: [{ percent: 50, smsPerMinute: 0 }] }), /wave 1: smsPerMinute/);
  const c = await engine.create({ name: 'paced', target: { kind: 'group', group: 'fleet' }, package: { kind: 'fixed', sha256: sha }, waves: [{ percent: 30, smsPerMinute: 6 }, { percent: 100 }], smsPerMinute: 60, seed: 3, successThreshold: 1 });
  assert.equal(c.spec.smsPerMinute, 60);
  const wave1 = jobs.running().map(([, spec]) => spec.endpoint);
  assert.equal(wave1.length, 3);
  // Wave 1 has its own rate; a device the campaign is not installing on has none.
  assert.deepEqual(await engine.smsPace(wave1[0]!, sha), { group: `campaign:${c.id}:wave:1`, perMinute: 6 });
  assert.equal(await engine.smsPace('ep-unknown', sha), undefined);
  assert.equal(await engine.smsPace(wave1[0]!, 'f'.repeat(64)), undefined);
  jobs.finishAll(() => 'succeeded');
  await engine.tick();
  const wave2 = jobs.running().map(([, spec]) => spec.endpoint);
  assert.equal(wave2.length, 7);
  // Wave 2 takes the campaign's rate, in a pace group of its own.
  assert.deepEqual(await engine.smsPace(wave2[0]!, sha), { group: `campaign:${c.id}:wave:2`, perMinute: 60 });
  // Ended installs are paced no more.
  assert.equal(await engine.smsPace(wave1[0]!, sha), undefined);
  // A campaign without a rate paces nothing.
  jobs.finishAll(() => 'succeeded');
  await engine.tick();
  await engine.create({ name: 'unpaced', target: { kind: 'group', group: 'fleet' }, package: { kind: 'fixed', sha256: sha } });
  assert.equal(await engine.smsPace(jobs.running()[0]![1].endpoint, sha), undefined);
});
