/**
 * Campaigns (issue 16): one package, or the right package per device by selection, installed on
 * a group, a filter or a list of devices in staged waves. A wave's members are drawn at random
 * (seeded) or spread across models; the next wave starts when a wave reaches its success
 * threshold (after the operator's approval when asked); the campaign pauses when its failure
 * rate passes a limit, and a model whose failure rate passes its own limit is paused alone (the
 * campaign goes on for the others). A concurrency limit and a maintenance window bound when
 * installs start; a retry campaign is made from the failed devices in one call.
 *
 * Durable: the campaign, its waves and every member are in the store before anything is done;
 * a member is `starting` in the store before its install job is made, and `started` with the
 * job's id after, so a new engine over the same store resumes every campaign where it was and
 * never makes a second job for a device (see start()).
 *
 * Jobs are made through CampaignJobPort, declared here: the install chain driver satisfies it
 * (the adapter is in src/app/server.ts); tests hand the engine a fake.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { printable } from '../util/printable.js';
import type {
  Campaign,
  CampaignMember,
  CampaignRepository,
  CampaignSpec,
  CampaignWave,
  CountRow,
  MaintenanceWindow,
  MemberState,
  NewMember,
  WaveSpec,
} from './campaign-types.js';
import type { InventoryDevice, InventoryRepository } from './inventory-types.js';
import { explainSelection, selectionFactsOf, type PackageTargets } from './selection.js';
import type { PackageRecord } from './domain.js';
import { addressOf } from './inventory.js';
import { seededRandom } from '../util/seeded-random.js';

export * from './campaign-types.js';

/** One install job a wave asks for. */
export interface CampaignJobSpec {
  readonly campaignId: string;
  readonly deviceId: string;
  /** The device's address for the install chain (its LwM2M endpoint when it has one). */
  readonly endpoint: string;
  readonly packageSha256: string;
  readonly activate: boolean;
  readonly methods?: readonly string[];
}

export type CampaignJobResult = { readonly jobId: string } | { readonly error: string };

export interface CampaignJobStatus {
  readonly state: 'running' | 'succeeded' | 'failed' | 'cancelled';
  /** The method of the last attempt that ran (not skipped), when any. */
  readonly method: string | null;
  readonly message: string | null;
}

/** What campaigns need of the install jobs (the chain driver, through an adapter). */
export interface CampaignJobPort {
  /** Makes one job per spec, answers in order (a batch: one transaction where the port can). */
  createJobs(specs: readonly CampaignJobSpec[]): Promise<CampaignJobResult[]>;
  /** The state of each job found (a job unknown to the port is missing from the map). */
  jobStates(ids: readonly string[]): Promise<Map<string, CampaignJobStatus>>;
  cancel(id: string): Promise<void>;
  /**
   * The job made for a device and package at or after `since` (ms), open or ended, if any: a
   * restart between making a job and recording it adopts it instead of making a second one.
   */
  findJob(endpoint: string, packageSha256: string, since: number): Promise<string | null>;
}

/** What campaigns need of the catalog. */
export interface CampaignCatalogPort {
  get(sha256: string): Promise<PackageRecord | null>;
  candidates(name?: string): Promise<{ record: PackageRecord; targets: PackageTargets }[]>;
}

export class CampaignError extends Error {
  override readonly name = 'CampaignError';
  constructor(
    readonly code: 'BAD_REQUEST' | 'NOT_FOUND' | 'CONFLICT',
    message: string,
  ) {
    super(message);
  }
}

export interface CampaignEngineOptions {
  campaigns: CampaignRepository;
  inventory: Pick<InventoryRepository, 'ids' | 'getMany'>;
  catalog: CampaignCatalogPort;
  jobs: CampaignJobPort;
  now?: () => number;
  /** How often running campaigns are advanced, ms; 0 for never (tests call tick()). Default 2000. */
  tickMs?: number;
  onError?: (error: Error) => void;
}

export interface Counts {
  pending: number;
  'no-package': number;
  starting: number;
  started: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  total: number;
}

export interface CampaignProgress {
  readonly campaign: Campaign;
  readonly totals: Counts;
  readonly waves: readonly (CampaignWave & { counts: Counts })[];
  readonly models: readonly { model: string; paused: string | null; counts: Counts }[];
  /** Installs that ended, by the method that ran last. */
  readonly methods: readonly { method: string; succeeded: number; failed: number }[];
}

const emptyCounts = (): Counts => ({ pending: 0, 'no-package': 0, starting: 0, started: 0, succeeded: 0, failed: 0, cancelled: 0, total: 0 });


function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** "make/model" in lower case, "?" for what is unknown. */
export function modelKeyOf(device: Pick<InventoryDevice, 'make' | 'model' | 'expectedMake' | 'expectedModel'>): string {
  return `${(device.make ?? device.expectedMake ?? '?').toLowerCase()}/${(device.model ?? device.expectedModel ?? '?').toLowerCase()}`;
}

/** The address the install chain knows a device by. */
export function jobEndpointOf(device: InventoryDevice): string {
  return addressOf(device);
}

/**
 * Orders devices: shuffled, or spread (each model shuffled, then models taken in turn so every
 * stretch of the order, and so every wave, has each model in proportion).
 */
export function orderDevices<T>(devices: readonly T[], modelOf: (d: T) => string, order: 'random' | 'spread', seed: number): T[] {
  const random = seededRandom(seed);
  if (order === 'random') return shuffle([...devices], random);
  const byModel = new Map<string, T[]>();
  for (const d of devices) {
    const key = modelOf(d);
    const list = byModel.get(key);
    if (list) list.push(d);
    else byModel.set(key, [d]);
  }
  const lists = [...byModel.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, list]) => shuffle(list, random));
  // Proportional interleave: take next from the model furthest behind its share.
  const out: T[] = [];
  const taken = lists.map(() => 0);
  const total = devices.length;
  for (let n = 0; n < total; n++) {
    let best = -1;
    let bestLag = -Infinity;
    lists.forEach((list, i) => {
      if (taken[i]! >= list.length) return;
      const lag = ((n + 1) * list.length) / total - taken[i]!;
      if (lag > bestLag) {
        bestLag = lag;
        best = i;
      }
    });
    out.push(lists[best]![taken[best]!]!);
    taken[best]!++;
  }
  return out;
}

/** Wave sizes for `n` devices: cumulative percentages or fixed sizes; the rest joins the last wave. */
export function waveSizes(n: number, waves: readonly WaveSpec[]): number[] {
  const sizes: number[] = [];
  let placed = 0;
  for (const w of waves) {
    let end = w.percent !== undefined ? Math.ceil((n * w.percent) / 100) : placed + (w.size ?? 0);
    end = Math.min(n, Math.max(end, placed));
    sizes.push(end - placed);
    placed = end;
  }
  if (sizes.length > 0) sizes[sizes.length - 1]! += n - placed;
  return sizes;
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

function minutesOf(hhmm: string): number {
  const m = HHMM.exec(hhmm)!;
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Whether `at` falls in the daily window, in `timeZone` (IANA) or UTC. */
export function inWindow(window: MaintenanceWindow, at: number, timeZone: string | null): boolean {
  let minutes: number;
  if (window.deviceTime && timeZone) {
    const parts = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(at));
    minutes = Number(parts.find((p) => p.type === 'hour')!.value) * 60 + Number(parts.find((p) => p.type === 'minute')!.value);
  } else {
    const d = new Date(at);
    minutes = d.getUTCHours() * 60 + d.getUTCMinutes();
  }
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  return start <= end ? minutes >= start && minutes < end : minutes >= start || minutes < end;
}

function specProblem(spec: CampaignSpec): string | undefined {
  if (typeof spec.name !== 'string' || spec.name.trim() === '' || spec.name.length > 200) return 'name must have 1..200 characters';
  const rate = (v: number | undefined, field: string): string | undefined => (v === undefined || (typeof v === 'number' && v >= 0 && v <= 1) ? undefined : `${field} must be a fraction in 0..1`);
  const waves = spec.waves ?? [];
  if (waves.length > 100) return 'at most 100 waves';
  let last = 0;
  for (const [i, w] of waves.entries()) {
    if ((w.percent === undefined) === (w.size === undefined)) return `wave ${i + 1} needs either percent or size`;
    if (w.percent !== undefined) {
      if (!(w.percent > 0 && w.percent <= 100)) return `wave ${i + 1}: percent must be in (0, 100]`;
      if (w.percent < last) return `wave ${i + 1}: percentages are cumulative (1, 10, 50, 100), ${w.percent} is below ${last}`;
      last = w.percent;
    }
    if (w.size !== undefined && !(Number.isInteger(w.size) && w.size > 0)) return `wave ${i + 1}: size must be a positive integer`;
    if (w.window && windowProblem(w.window)) return `wave ${i + 1}: ${windowProblem(w.window)}`;
  }
  if (spec.window && windowProblem(spec.window)) return windowProblem(spec.window);
  for (const [i, w] of waves.entries()) if (smsRateProblem(w.smsPerMinute)) return `wave ${i + 1}: ${smsRateProblem(w.smsPerMinute)}`;
  if (smsRateProblem(spec.smsPerMinute)) return smsRateProblem(spec.smsPerMinute);
  if (spec.concurrency !== undefined && !(Number.isInteger(spec.concurrency) && spec.concurrency >= 1 && spec.concurrency <= 100_000)) return 'concurrency must be an integer in 1..100000';
  if (spec.minSamples !== undefined && !(Number.isInteger(spec.minSamples) && spec.minSamples >= 1)) return 'minSamples must be a positive integer';
  if (spec.seed !== undefined && !(Number.isInteger(spec.seed) && spec.seed >= 0 && spec.seed <= 0xffffffff)) return 'seed must be an integer in 0..4294967295';
  return rate(spec.successThreshold, 'successThreshold') ?? rate(spec.failureLimit, 'failureLimit') ?? rate(spec.modelFailureLimit, 'modelFailureLimit');
}

function smsRateProblem(perMinute: number | undefined): string | undefined {
  return perMinute === undefined || (typeof perMinute === 'number' && perMinute > 0 && perMinute <= 60_000) ? undefined : 'smsPerMinute must be a number in (0, 60000]';
}

function windowProblem(w: MaintenanceWindow): string | undefined {
  if (!HHMM.test(w.start) || !HHMM.test(w.end)) return 'a maintenance window is "HH:MM" to "HH:MM" (24 h)';
  if (w.start === w.end) return 'a maintenance window must not be empty (start equals end)';
  return undefined;
}

const ENDED: readonly MemberState[] = ['succeeded', 'failed', 'cancelled'];

export class CampaignEngine extends EventEmitter<{ progress: [progress: CampaignProgress] }> {
  private readonly now: () => number;
  /** Steps of one campaign are serialised. */
  private readonly chains = new Map<string, Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private readonly lastSent = new Map<string, string>();
  /** Per campaign, the step queued and not begun yet. */
  private readonly waitingSteps = new Map<string, Promise<void>>();

  constructor(private readonly options: CampaignEngineOptions) {
    super();
    this.now = options.now ?? Date.now;
  }

  /**
   * Resumes the campaigns a previous engine left: members `starting` (the process stopped
   * between recording them and recording their jobs) adopt the device's open job when there is
   * one, else go back to pending; then every active campaign is advanced.
   */
  async start(): Promise<void> {
    for (const campaign of await this.options.campaigns.listActive()) {
      await this.serial(campaign.id, async () => {
        const starting = await this.options.campaigns.members(campaign.id, { states: ['starting'] });
        const adopted: { deviceId: string; jobId: string }[] = [];
        const back: string[] = [];
        for (const m of starting) {
          const jobId = m.packageSha256 ? await this.options.jobs.findJob(m.endpoint, m.packageSha256, m.startedAt ?? 0) : null;
          if (jobId) adopted.push({ deviceId: m.deviceId, jobId });
          else back.push(m.deviceId);
        }
        if (adopted.length > 0) await this.options.campaigns.recordStarted(campaign.id, adopted, this.now());
        if (back.length > 0) await this.options.campaigns.revertStarting(campaign.id, back, this.now());
      });
    }
    await this.tick();
    const tickMs = this.options.tickMs ?? 2000;
    if (tickMs > 0) {
      this.timer = setInterval(() => void this.tick(), tickMs);
      this.timer.unref();
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.chains.values()].map((p) => p.catch(() => undefined)));
  }

  /**
   * Creates a campaign: resolves its target to devices, the package of each (selection, or the
   * one given), orders them into waves, stores it all in one transaction, then starts wave 1.
   */
  async create(spec: CampaignSpec, options: { retryOf?: string } = {}): Promise<Campaign> {
    const problem = specProblem(spec);
    if (problem) throw new CampaignError('BAD_REQUEST', problem);
    const deviceIds = await this.resolveTarget(spec);
    if (deviceIds.length === 0) throw new CampaignError('BAD_REQUEST', 'the campaign targets no device');
    const devices = await this.options.inventory.getMany(deviceIds);
    if (spec.target.kind === 'list' && devices.length < deviceIds.length) {
      const known = new Set(devices.map((d) => d.id));
      const missing = deviceIds.filter((id) => !known.has(id));
      throw new CampaignError('BAD_REQUEST', `${missing.length} devices of the list are not in the inventory: ${missing.slice(0, 5).map((id) => printable(id, 40)).join(', ')}${missing.length > 5 ? ', …' : ''}`);
    }
    const pkg = spec.package;
    let chosen: (d: InventoryDevice) => { sha256: string | null; message: string | null };
    if (pkg.kind === 'fixed') {
      if (!(await this.options.catalog.get(pkg.sha256))) throw new CampaignError('BAD_REQUEST', `package ${printable(pkg.sha256, 64)} is not in the catalog`);
      chosen = () => ({ sha256: pkg.sha256, message: null });
    } else {
      const candidates = await this.options.catalog.candidates(pkg.name);
      if (candidates.length === 0) throw new CampaignError('BAD_REQUEST', pkg.name ? `no package named "${printable(pkg.name, 80)}" in the catalog` : 'the catalog is empty');
      chosen = (d) => {
        const e = explainSelection(candidates, selectionFactsOf(d));
        return { sha256: e.chosen?.sha256 ?? null, message: e.chosen ? null : `no package fits: ${e.reason}` };
      };
    }
    const full: Campaign['spec'] = {
      name: spec.name.trim(),
      target: spec.target,
      package: spec.package,
      waves: spec.waves && spec.waves.length > 0 ? spec.waves : [{ percent: 100 }],
      order: spec.order ?? 'spread',
      seed: spec.seed ?? randomBytes(4).readUInt32BE(0),
      successThreshold: spec.successThreshold ?? 0.9,
      failureLimit: spec.failureLimit ?? 0.2,
      modelFailureLimit: spec.modelFailureLimit ?? 0.5,
      minSamples: spec.minSamples ?? 3,
      approval: spec.approval ?? false,
      concurrency: spec.concurrency ?? 100,
      activate: spec.activate ?? false,
      ...(spec.window ? { window: spec.window } : {}),
      ...(spec.methods ? { methods: spec.methods } : {}),
      ...(spec.smsPerMinute !== undefined ? { smsPerMinute: spec.smsPerMinute } : {}),
    };
    const ordered = orderDevices(devices, modelKeyOf, full.order, full.seed);
    const sizes = waveSizes(ordered.length, full.waves);
    const members: NewMember[] = [];
    let wave = 0;
    let inWave = 0;
    ordered.forEach((d, position) => {
      while (wave < sizes.length - 1 && inWave >= sizes[wave]!) {
        wave++;
        inWave = 0;
      }
      inWave++;
      const c = chosen(d);
      members.push({ deviceId: d.id, position, wave, endpoint: jobEndpointOf(d), modelKey: modelKeyOf(d), packageSha256: c.sha256, state: c.sha256 ? 'pending' : 'no-package', message: c.message });
    });
    const id = `cmp_${randomBytes(9).toString('base64url')}`;
    const campaign = await this.options.campaigns.create({ id, name: full.name, spec: full, retryOf: options.retryOf ?? null, state: 'running' }, sizes.map((size, w) => ({ wave: w, size })), members, this.now());
    await this.step(id);
    return (await this.options.campaigns.get(id)) ?? campaign;
  }

  /** A new campaign of the failed devices of `id`, the same package choice, one wave unless given. */
  async retryFailed(id: string, overrides: Partial<Pick<CampaignSpec, 'name' | 'waves' | 'concurrency' | 'window' | 'approval'>> = {}): Promise<Campaign> {
    const campaign = await this.require(id);
    const failed = await this.options.campaigns.members(id, { states: ['failed'] });
    if (failed.length === 0) throw new CampaignError('CONFLICT', `campaign ${id} has no failed device to retry`);
    const { spec } = campaign;
    return this.create(
      {
        ...spec,
        name: overrides.name ?? `${spec.name} (retry)`.slice(0, 200),
        target: { kind: 'list', devices: failed.map((m) => m.deviceId) },
        waves: overrides.waves ?? [{ percent: 100 }],
        approval: overrides.approval ?? false,
        ...(overrides.concurrency !== undefined ? { concurrency: overrides.concurrency } : {}),
        ...(overrides.window !== undefined ? { window: overrides.window } : {}),
        seed: spec.seed,
      },
      { retryOf: id },
    );
  }

  /**
   * The SMS pacing of the install running on this job address with this package, when a campaign
   * made it and its wave (or the campaign) sets a send rate: one pace group per wave.
   */
  async smsPace(endpoint: string, packageSha256: string): Promise<{ group: string; perMinute: number } | undefined> {
    const member = await this.options.campaigns.memberInstalling(endpoint, packageSha256);
    if (!member) return undefined;
    const campaign = await this.options.campaigns.get(member.campaignId);
    const perMinute = campaign?.spec.waves[member.wave]?.smsPerMinute ?? campaign?.spec.smsPerMinute;
    return perMinute === undefined ? undefined : { group: `campaign:${member.campaignId}:wave:${member.wave + 1}`, perMinute };
  }

  async get(id: string): Promise<Campaign> {
    return this.require(id);
  }

  list(page?: { limit?: number; after?: string }) {
    return this.options.campaigns.list(page);
  }

  members(id: string, filter?: { states?: readonly MemberState[]; limit?: number; afterPosition?: number }): Promise<CampaignMember[]> {
    return this.options.campaigns.members(id, filter);
  }

  async pause(id: string, reason = 'paused by the operator'): Promise<Campaign> {
    return this.serial(id, async () => {
      const c = await this.require(id);
      if (c.state === 'completed' || c.state === 'cancelled') throw new CampaignError('CONFLICT', `campaign ${id} already ended (${c.state})`);
      if (c.state === 'paused') return c;
      const updated = await this.options.campaigns.update(id, { state: 'paused', pauseReason: reason }, this.now());
      await this.publish(id);
      return updated;
    });
  }

  /**
   * Resumes a paused campaign; `models` also resumes models paused for their failure rate
   * (`all` every one). A campaign paused because a wave ended below its threshold goes on to
   * the next wave (the operator accepted the wave).
   */
  async resume(id: string, options: { models?: readonly string[] | 'all' } = {}): Promise<Campaign> {
    await this.serial(id, async () => {
      const c = await this.require(id);
      if (c.state === 'completed' || c.state === 'cancelled') throw new CampaignError('CONFLICT', `campaign ${id} already ended (${c.state})`);
      const pausedModels = { ...c.pausedModels };
      if (options.models === 'all') for (const k of Object.keys(pausedModels)) delete pausedModels[k];
      else for (const k of options.models ?? []) delete pausedModels[k.toLowerCase()];
      if (c.state === 'paused') {
        const waves = await this.options.campaigns.waves(id);
        const wave = waves[c.currentWave];
        if (wave?.state === 'running' && (await this.waveOpen(id, c.currentWave, pausedModels)) === 0) await this.options.campaigns.setWave(id, c.currentWave, 'done', this.now());
      }
      // What failed so far is accepted: rates count from here (else the campaign would pause again at once).
      const tallies = CampaignEngine.tallies(await this.options.campaigns.counts(id));
      const models = { ...c.accepted.models };
      for (const k of Object.keys(c.pausedModels)) if (!(k in pausedModels)) models[k] = tallies.get(k) ?? { failed: 0, ended: 0 };
      let overall = c.accepted.overall;
      if (c.state === 'paused') {
        let failed = 0;
        let ended = 0;
        for (const [k, t] of tallies) {
          if (k in pausedModels) continue;
          failed += t.failed;
          ended += t.ended;
        }
        overall = { failed, ended };
      }
      await this.options.campaigns.update(id, { ...(c.state === 'paused' ? { state: 'running', pauseReason: null } : {}), pausedModels, accepted: { overall, models } }, this.now());
    });
    await this.step(id);
    return this.require(id);
  }

  /** Approves the wave awaiting approval; it starts. */
  async approve(id: string): Promise<Campaign> {
    await this.serial(id, async () => {
      const c = await this.require(id);
      if (c.state !== 'awaiting-approval') throw new CampaignError('CONFLICT', `campaign ${id} is not awaiting approval (${c.state})`);
      await this.options.campaigns.setWave(id, c.currentWave, 'running', this.now());
      await this.options.campaigns.update(id, { state: 'running', pauseReason: null }, this.now());
    });
    await this.step(id);
    return this.require(id);
  }

  /** Cancels the campaign: pending devices are not started, running installs are cancelled. */
  async cancel(id: string): Promise<Campaign> {
    return this.serial(id, async () => {
      const c = await this.require(id);
      if (c.state === 'completed' || c.state === 'cancelled') throw new CampaignError('CONFLICT', `campaign ${id} already ended (${c.state})`);
      // In the store first: a restart in the middle does not start anything more.
      const cancelled = await this.options.campaigns.update(id, { state: 'cancelled', pauseReason: 'cancelled by the operator' }, this.now());
      await this.options.campaigns.cancelPending(id, 'cancelled with the campaign', this.now());
      await this.reconcile(id);
      const started = await this.options.campaigns.members(id, { states: ['started'] });
      const ended: { deviceId: string; state: 'cancelled'; method: string | null; message: string }[] = [];
      for (const m of started) {
        await this.options.jobs.cancel(m.jobId!).catch((error: unknown) => this.report(error));
        ended.push({ deviceId: m.deviceId, state: 'cancelled', method: m.method, message: 'cancelled with the campaign' });
      }
      if (ended.length > 0) await this.options.campaigns.recordEnded(id, ended, this.now());
      await this.publish(id);
      return cancelled;
    });
  }

  async progress(id: string): Promise<CampaignProgress> {
    const campaign = await this.require(id);
    const [rows, waves] = await Promise.all([this.options.campaigns.counts(id), this.options.campaigns.waves(id)]);
    return progressOf(campaign, waves, rows);
  }

  /** Advances every active campaign (the timer calls it; tests too). */
  async tick(): Promise<void> {
    const active = await this.options.campaigns.listActive().catch((error: unknown) => {
      this.report(error);
      return [];
    });
    await Promise.all(active.map((c) => this.step(c.id)));
  }

  // ------------------------------------------------------------------ internals

  private serial<T>(id: string, work: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(work);
    const tail = next.catch(() => undefined);
    this.chains.set(id, tail);
    void tail.then(() => {
      if (this.chains.get(id) === tail) this.chains.delete(id);
    });
    return next;
  }

  private report(error: unknown): void {
    this.options.onError?.(error instanceof Error ? error : new Error(String(error)));
  }

  private async require(id: string): Promise<Campaign> {
    const c = await this.options.campaigns.get(id);
    if (!c) throw new CampaignError('NOT_FOUND', `campaign ${printable(id, 64)} does not exist`);
    return c;
  }

  private async resolveTarget(spec: CampaignSpec): Promise<string[]> {
    const t = spec.target;
    switch (t.kind) {
      case 'group':
        return this.options.inventory.ids({ group: t.group });
      case 'filter':
        return this.options.inventory.ids(t.filter);
      case 'list':
        if (!Array.isArray(t.devices) || t.devices.length > 1_000_000) throw new CampaignError('BAD_REQUEST', 'a device list has at most 1,000,000 device ids');
        return [...new Set<string>(t.devices)];
      default:
        throw new CampaignError('BAD_REQUEST', 'target kind is group, filter or list');
    }
  }

  /** Advances one campaign; a step already waiting for its turn covers this call too (timer ticks do not pile up). */
  step(id: string): Promise<void> {
    const waiting = this.waitingSteps.get(id);
    if (waiting) return waiting;
    const next = this.serial(id, () => {
      this.waitingSteps.delete(id);
      return this.advance(id);
    }).catch((error: unknown) => this.report(error));
    this.waitingSteps.set(id, next);
    return next;
  }

  /** Job ends → members; returns nothing. */
  private async reconcile(id: string): Promise<void> {
    const started = await this.options.campaigns.members(id, { states: ['started'] });
    if (started.length === 0) return;
    const states = await this.options.jobs.jobStates(started.map((m) => m.jobId!));
    const ended: { deviceId: string; state: 'succeeded' | 'failed' | 'cancelled'; method: string | null; message: string | null }[] = [];
    for (const m of started) {
      const s = states.get(m.jobId!);
      if (!s) ended.push({ deviceId: m.deviceId, state: 'failed', method: null, message: `install job ${m.jobId} is gone` });
      else if (s.state !== 'running') ended.push({ deviceId: m.deviceId, state: s.state, method: s.method, message: s.message });
    }
    if (ended.length > 0) await this.options.campaigns.recordEnded(id, ended, this.now());
  }

  /** Members of wave `wave` that may still start or are running (paused models left out). */
  private async waveOpen(id: string, wave: number, pausedModels: Readonly<Record<string, string>>): Promise<number> {
    const open = await this.options.campaigns.members(id, { states: ['pending', 'starting', 'started'], maxWave: wave });
    return open.filter((m) => m.wave === wave && !(m.modelKey in pausedModels)).length;
  }

  /** Ended installs (succeeded or failed) per model, from the grouped counts. */
  private static tallies(rows: readonly CountRow[]): Map<string, { failed: number; ended: number }> {
    const byModel = new Map<string, { failed: number; ended: number }>();
    for (const r of rows) {
      if (r.state !== 'succeeded' && r.state !== 'failed') continue;
      const m = byModel.get(r.modelKey) ?? { failed: 0, ended: 0 };
      m.ended += r.n;
      if (r.state === 'failed') m.failed += r.n;
      byModel.set(r.modelKey, m);
    }
    return byModel;
  }

  private async advance(id: string): Promise<void> {
    let c = await this.require(id);
    if (c.state === 'completed' || c.state === 'cancelled') return;
    await this.reconcile(id);
    const { spec } = c;
    const byModel = CampaignEngine.tallies(await this.options.campaigns.counts(id));

    // Per model (counted from what the operator accepted at the last resume of that model):
    // a model failing past its limit is paused alone, the campaign goes on for the others.
    const pausedModels = { ...c.pausedModels };
    let modelsChanged = false;
    for (const [model, m] of byModel) {
      const base = c.accepted.models[model] ?? { failed: 0, ended: 0 };
      const ended = m.ended - base.ended;
      const failed = m.failed - base.failed;
      if (model in pausedModels || ended < spec.minSamples) continue;
      if (failed / ended > spec.modelFailureLimit) {
        pausedModels[model] = `${failed} of ${ended} installs failed (${Math.round((100 * failed) / ended)} %, limit ${Math.round(spec.modelFailureLimit * 100)} %)`;
        modelsChanged = true;
      }
    }
    if (modelsChanged) c = await this.options.campaigns.update(id, { pausedModels }, this.now());

    // Overall, over the models still in the campaign, since the last resume.
    let failed = -c.accepted.overall.failed;
    let ended = -c.accepted.overall.ended;
    for (const [model, m] of byModel) {
      if (model in pausedModels) continue;
      failed += m.failed;
      ended += m.ended;
    }
    if (c.state === 'running' && ended >= spec.minSamples && failed / ended > spec.failureLimit) {
      c = await this.options.campaigns.update(id, { state: 'paused', pauseReason: `failure rate ${Math.round((100 * failed) / ended)} % (${failed} of ${ended}) passed the limit of ${Math.round(spec.failureLimit * 100)} %` }, this.now());
    }
    if (c.state === 'paused') {
      await this.publish(id);
      return;
    }
    if (c.state === 'awaiting-approval') {
      // The waves already approved finish their devices meanwhile.
      await this.startMembers(c, pausedModels, c.currentWave - 1);
      await this.publish(id);
      return;
    }

    // Waves: the current one runs; the next starts when it reaches its success threshold.
    const waves = await this.options.campaigns.waves(id);
    for (;;) {
      const wave = waves[c.currentWave]!;
      if (wave.state === 'pending' || wave.state === 'awaiting-approval') {
        await this.options.campaigns.setWave(id, wave.wave, 'running', this.now());
        (wave as { state: string }).state = 'running';
      }
      if (wave.state === 'running') {
        const counts = emptyCounts();
        for (const r of await this.options.campaigns.counts(id)) if (r.wave === wave.wave && !(r.modelKey in pausedModels)) counts[r.state] += r.n;
        const eligible = counts.pending + counts.starting + counts.started + counts.succeeded + counts.failed;
        const open = counts.pending + counts.starting + counts.started;
        const reached = eligible === 0 || counts.succeeded / eligible >= spec.successThreshold;
        if (!reached && open > 0) break;
        if (!reached) {
          await this.options.campaigns.update(id, { state: 'paused', pauseReason: `wave ${wave.wave + 1} ended with ${counts.succeeded} of ${eligible} installed (${Math.round((100 * counts.succeeded) / eligible)} %), below the success threshold of ${Math.round(spec.successThreshold * 100)} %: resume to go on` }, this.now());
          await this.publish(id);
          return;
        }
        await this.options.campaigns.setWave(id, wave.wave, 'done', this.now());
        (wave as { state: string }).state = 'done';
      }
      if (c.currentWave + 1 >= waves.length) {
        const open = await this.options.campaigns.members(id, { states: ['pending', 'starting', 'started'] });
        if (open.some((m) => !(m.modelKey in pausedModels))) break;
        const paused = Object.keys(pausedModels);
        await this.options.campaigns.update(id, { state: 'completed', pauseReason: paused.length > 0 ? `completed; paused models not installed: ${paused.join(', ')}` : null }, this.now());
        await this.publish(id);
        return;
      }
      const next = c.currentWave + 1;
      if (spec.approval) {
        await this.options.campaigns.setWave(id, next, 'awaiting-approval', this.now());
        c = await this.options.campaigns.update(id, { state: 'awaiting-approval', currentWave: next, pauseReason: `wave ${next + 1} awaits the operator's approval` }, this.now());
        await this.startMembers(c, pausedModels, next - 1);
        await this.publish(id);
        return;
      }
      c = await this.options.campaigns.update(id, { currentWave: next }, this.now());
    }
    await this.startMembers(c, pausedModels, c.currentWave);
    await this.publish(id);
  }

  /** Starts pending members of the waves so far, up to the concurrency limit, in their window; one batch. */
  private async startMembers(c: Campaign, pausedModels: Readonly<Record<string, string>>, maxWave: number): Promise<void> {
    if (maxWave < 0) return;
    const running = await this.options.campaigns.members(c.id, { states: ['starting', 'started'] });
    let room = c.spec.concurrency - running.length;
    if (room <= 0) return;
    const waves = c.spec.waves;
    const pending = await this.options.campaigns.members(c.id, { states: ['pending'], maxWave });
    const now = this.now();
    const needZones = pending.some((m) => (waves[m.wave]?.window ?? c.spec.window)?.deviceTime);
    const zones = new Map<string, string | null>();
    if (needZones) for (const d of await this.options.inventory.getMany(pending.slice(0, room * 4 + 100).map((m) => m.deviceId))) zones.set(d.id, d.timeZone);
    const batch: CampaignMember[] = [];
    for (const m of pending) {
      if (room <= 0) break;
      if (m.modelKey in pausedModels || !m.packageSha256) continue;
      const window = waves[m.wave]?.window ?? c.spec.window;
      if (window && !inWindow(window, now, zones.get(m.deviceId) ?? null)) continue;
      batch.push(m);
      room--;
    }
    if (batch.length === 0) return;
    // In the store before the jobs exist: a restart knows these devices may have one.
    await this.options.campaigns.markStarting(c.id, batch.map((m) => m.deviceId), now);
    let results: CampaignJobResult[];
    try {
      results = await this.options.jobs.createJobs(batch.map((m) => ({ campaignId: c.id, deviceId: m.deviceId, endpoint: m.endpoint, packageSha256: m.packageSha256!, activate: c.spec.activate, ...(c.spec.methods ? { methods: c.spec.methods } : {}) })));
    } catch (error) {
      // Unknown which were made: a later start() adopts or reverts them; this process retries at its next step.
      this.report(error);
      const adopted: { deviceId: string; jobId: string }[] = [];
      const back: string[] = [];
      for (const m of batch) {
        const jobId = await this.options.jobs.findJob(m.endpoint, m.packageSha256!, now).catch(() => null);
        if (jobId) adopted.push({ deviceId: m.deviceId, jobId });
        else back.push(m.deviceId);
      }
      if (adopted.length > 0) await this.options.campaigns.recordStarted(c.id, adopted, this.now());
      if (back.length > 0) await this.options.campaigns.revertStarting(c.id, back, this.now());
      return;
    }
    await this.options.campaigns.recordStarted(
      c.id,
      batch.map((m, i) => {
        const r = results[i];
        return r && 'jobId' in r ? { deviceId: m.deviceId, jobId: r.jobId } : { deviceId: m.deviceId, error: r ? r.error : 'the job port gave no answer' };
      }),
      this.now(),
    );
  }

  private async publish(id: string): Promise<void> {
    if (this.listenerCount('progress') === 0) return;
    const p = await this.progress(id);
    const key = JSON.stringify([p.campaign.state, p.campaign.currentWave, p.totals, p.campaign.pausedModels]);
    if (this.lastSent.get(id) === key) return;
    this.lastSent.set(id, key);
    this.emit('progress', p);
  }
}

/** Progress from the grouped counts. */
export function progressOf(campaign: Campaign, waves: readonly CampaignWave[], rows: readonly CountRow[]): CampaignProgress {
  const totals = emptyCounts();
  const byWave = new Map<number, Counts>();
  const byModel = new Map<string, Counts>();
  const byMethod = new Map<string, { succeeded: number; failed: number }>();
  for (const r of rows) {
    for (const counts of [totals, byWave.get(r.wave) ?? byWave.set(r.wave, emptyCounts()).get(r.wave)!, byModel.get(r.modelKey) ?? byModel.set(r.modelKey, emptyCounts()).get(r.modelKey)!]) {
      counts[r.state] += r.n;
      counts.total += r.n;
    }
    if (ENDED.includes(r.state) && r.method && r.state !== 'cancelled') {
      const m = byMethod.get(r.method) ?? { succeeded: 0, failed: 0 };
      if (r.state === 'succeeded') m.succeeded += r.n;
      else m.failed += r.n;
      byMethod.set(r.method, m);
    }
  }
  return {
    campaign,
    totals,
    waves: waves.map((w) => ({ ...w, counts: byWave.get(w.wave) ?? emptyCounts() })),
    models: [...byModel.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([model, counts]) => ({ model, paused: campaign.pausedModels[model] ?? null, counts })),
    methods: [...byMethod.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([method, m]) => ({ method, ...m })),
  };
}
