/**
 * The server side of LwM2M Object 9 (Software Management): durable install / uninstall /
 * activate / deactivate jobs, driven from the state the device reports.
 *
 * Install (pull), following the seed spec §5.1.1 state machine:
 *   queued → (Create /9/i if needed, Write Package URI /9/i/3 = coap://host:port/pkg/<token>)
 *   downloading → (device: DOWNLOAD STARTED → DOWNLOADED → DELIVERED)
 *   delivered → (Execute Install /9/i/4) installing → (device: INSTALLED) installed
 *   → (optional Execute Activate /9/i/10) activating → succeeded; or failed at any point.
 *
 * Every job state change is a row in the store's transition log (time, from, to, detail).
 * The device is followed by Observe on Update State (/9/i/7) and by polling Read of the
 * instance (the fallback, and what catches changes of Update Result alone). Decisions are
 * taken from a fresh Read, never from the job's memory alone, so after a server restart a
 * job resumes from what the device reports: a device already INSTALLED with the package
 * is not installed again, and Execute Install is only sent in DELIVERED (a second Execute
 * while the device is installing has no effect, 4.05, by the §5.1.1 table).
 *
 * Queue-mode devices: nothing is sent while the device sleeps; the job continues when the
 * device registers or updates (its wake-up).
 */
import { randomBytes } from 'node:crypto';
import type { Lwm2mValue } from '../lwm2m/values.js';
import { Value } from '../lwm2m/values.js';
import type { InstanceNode, Lwm2mNode } from '../lwm2m/node.js';
import { Node } from '../lwm2m/node.js';
import { interpretDeviceReport, type Interpretation, type ProfileName } from '../lwm2m/objects/software-management/encoding.js';
import { parseObjectLinks } from '../lwm2m/server/registration-request.js';
import { Lwm2mServerError, responseClass, type OperationOutcome } from '../lwm2m/server/server.js';
import type { Registration } from '../store/types.js';
import type { InstallJob, InstallJobKind, InstallJobPatch, InstallJobState, InstallTransition, PackageRecord } from './domain.js';
import { FINAL_INSTALL_JOB_STATES, FleetError as InstallDriverError } from './domain.js';
import type { InstallStorePort, Lwm2mDevicePort } from './ports.js';
import { PACKAGE_RESOURCE, newDownloadToken, type DownloadProgress, type PackageEndpoint } from './package-endpoint.js';
import { PackageError, type PackageCatalog } from './packages.js';
import { RESULT_ADVICE, isFailure } from './results.js';

declare module '../store/types.js' {
  interface KnownSettings {
    /**
     * Written when a driver starts, removed when it closes: found at start, the previous process
     * died without closing (killed, crashed, power cut).
     */
    'installs.running': { pid: number; startedAt: number };
    /** Download progress of open jobs (bytes served of the package), kept so that a restart knows how far each got. */
    'installs.downloadProgress': Record<string, { served: number; size: number; at: number }>;
  }
}

/** How often download progress is written to the store, at most (ms). */
const PROGRESS_SAVE_MS = 1000;
/** The device-facts key (extra) under which the Object 9 numbering a device has shown is kept. */
const OBJECT9_NUMBERING_FACT = 'object9.numbering';

/** Job messages while the device cannot be reached start with this (and are replaced once it is back). */
const WAITING = 'Waiting for ';

/** The message of a job in each state when there is nothing more to say. */
const STATE_MESSAGE: Record<InstallJobState, string> = {
  queued: 'Queued.',
  downloading: 'Downloading.',
  delivered: 'Delivered.',
  installing: 'Installing.',
  installed: 'Installed.',
  activating: 'Activating.',
  succeeded: 'Succeeded.',
  failed: 'Failed.',
  cancelled: 'Cancelled.',
};

const iso = (t: number): string => new Date(t).toISOString();

/** Object 9 resource ids (seed spec §6). */
const R = { name: 0, version: 1, package: 2, uri: 3, install: 4, uninstall: 6, state: 7, result: 9, activate: 10, deactivate: 11, activation: 12 } as const;
const TLV = 11542;
const OPAQUE = 42;

export interface PhaseTimeouts {
  /** Waiting for the device to be registered and awake (queue mode). Default 24 h. */
  queuedMs: number;
  /** Package URI written → DELIVERED. Default 30 min. */
  downloadMs: number;
  /** Execute Install → INSTALLED. Default 15 min. */
  installMs: number;
  /** Execute Activate → Activation State true. Default 2 min. */
  activateMs: number;
}

export interface InstallDriverOptions {
  store: InstallStorePort;
  /** The LwM2M server, through the fleet's port (Lwm2mServer satisfies it). */
  lwm2m: Lwm2mDevicePort;
  catalog: PackageCatalog;
  endpoint: PackageEndpoint;
  /**
   * Base of the Package URI, e.g. coap://depot.example:5683 (Depot's CoAP listener as devices
   * reach it) or http://depot.example:8080 (the API listener serves /pkg/<token> too); given
   * the device's registration, so a device on DTLS can be sent to coaps:// (its own session).
   */
  packageBaseUri: string | ((registration: Registration | null) => string);
  timeouts?: Partial<PhaseTimeouts>;
  /** Polling Read of the instance (also the Observe fallback), ms. Default 5000. */
  pollIntervalMs?: number;
  /** Automatic retries of retryable download failures: attempts in all. Default 3. */
  maxAttempts?: number;
  /** Validity of a download token, ms. Default 2 h. */
  tokenTtlMs?: number;
  now?: () => number;
  /** Called with errors the driver could not attribute to a job (logging). */
  onError?: (error: Error) => void;
  /** Called after each job transition is stored (logs and metrics, issue 17); must not throw. */
  onTransition?: (job: InstallJob, from: InstallJobState) => void;
}

/** One Object 9 instance as a device reports it. */
export interface SoftwareInstance {
  instanceId: number;
  name: string | null;
  version: string | null;
  updateState: number | null;
  updateResult: number | null;
  activation: boolean | null;
  /** Decoded with interpretDeviceReport. */
  state: string | null;
  result: string | null;
  profile: ProfileName | null;
  ambiguous: boolean;
  /** The report alone showed the numbering (not inferred from what Depot recorded for the device). */
  numberingShown: boolean;
}

export interface JobView {
  job: InstallJob;
  transitions: InstallTransition[];
  progress: DownloadProgress | null;
  /** Percentage 0..100 of the whole operation (download counts for 80 % of an install). */
  percent: number;
}

/** One fleet error type: the Object 9 driver's and the chain's are the same class (FleetError). */
export { FleetError as InstallDriverError } from './domain.js';

const DEFAULT_TIMEOUTS: PhaseTimeouts = { queuedMs: 24 * 3600_000, downloadMs: 30 * 60_000, installMs: 15 * 60_000, activateMs: 2 * 60_000 };

function numberOf(v: Lwm2mValue | undefined): number | null {
  if (!v) return null;
  switch (v.type) {
    case 'integer':
    case 'unsignedInteger':
    case 'time':
      return Number(v.value);
    case 'float':
      return v.value;
    case 'string': {
      const n = Number(v.value);
      return Number.isFinite(n) ? n : null;
    }
    case 'boolean':
      return v.value ? 1 : 0;
    default:
      return null;
  }
}

function stringOf(v: Lwm2mValue | undefined): string | null {
  if (!v) return null;
  if (v.type === 'string') return v.value;
  if (v.type === 'opaque') return Buffer.from(v.value).toString('utf8');
  return null;
}

function booleanOf(v: Lwm2mValue | undefined): boolean | null {
  if (!v) return null;
  if (v.type === 'boolean') return v.value;
  const n = numberOf(v);
  return n === null ? null : n !== 0;
}

function resourceMap(node: InstanceNode): Map<number, Lwm2mValue> {
  const map = new Map<number, Lwm2mValue>();
  for (const r of node.resources) if (r.kind === 'resource') map.set(r.id, r.value);
  return map;
}

function describeInstance(node: InstanceNode, hint?: ProfileName): SoftwareInstance {
  const r = resourceMap(node);
  const updateState = numberOf(r.get(R.state));
  const updateResult = numberOf(r.get(R.result));
  const activation = booleanOf(r.get(R.activation));
  const i: Interpretation | undefined =
    updateState !== null && updateResult !== null ? interpretDeviceReport({ updateState, updateResult, ...(activation !== null ? { activationState: activation } : {}) }, hint ? { hint } : {}) : undefined;
  const name = stringOf(r.get(R.name));
  const version = stringOf(r.get(R.version));
  return {
    instanceId: node.id,
    name: name || null,
    version: version || null,
    updateState,
    updateResult,
    activation,
    state: i?.pkg ?? null,
    result: i?.result ?? null,
    profile: i?.profile ?? null,
    ambiguous: i ? i.ambiguous && i.basis !== 'hint' : true,
    numberingShown: i !== undefined && !i.ambiguous && i.basis !== 'hint' && i.profile !== undefined && i.profile !== null,
  };
}

/** Runs one job: steps are serialised; kick() asks for another step. */
class JobRunner {
  private running = false;
  private again = false;
  private observation: { cancel: () => Promise<void> } | undefined;
  private observing = false;
  /** When the shared poll timer next reads this job's device (Date.now() ms). */
  nextPollAt = 0;
  /** Learned encoding of this device (first unambiguous report). */
  hint: ProfileName | undefined;
  /** Sent in this process (a restart forgets them, and the device's state decides again). */
  uriWritten = false;
  installExecuted = false;
  activateExecuted = false;
  operationExecuted = false;
  stopped = false;
  /** Since when the device could not be reached (the job's "waiting since"). */
  waitingSince: number | undefined;

  constructor(
    readonly id: string,
    readonly endpoint: string,
    private readonly driver: InstallDriver,
  ) {}

  /** Observed jobs need polling only as a safety net (a lost notification, a Result-only change). */
  get observed(): boolean {
    return this.observation !== undefined;
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void (async () => {
      try {
        do {
          this.again = false;
          await this.driver.step(this);
        } while (this.again && !this.stopped);
      } catch (error) {
        this.driver.reportError(error);
      } finally {
        this.running = false;
      }
    })();
  }

  async observe(endpoint: string, path: string, lwm2m: Lwm2mDevicePort): Promise<void> {
    if (this.observation || this.observing) return;
    this.observing = true;
    try {
      const o = await lwm2m.observe(endpoint, path, () => this.kick());
      if (this.stopped) await o.cancel().catch(() => undefined);
      else this.observation = o;
    } catch {
      // Not observable, or the device went to sleep: polling covers it.
    } finally {
      this.observing = false;
    }
  }

  dropObservation(): void {
    const o = this.observation;
    this.observation = undefined;
    if (o) void o.cancel().catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const o = this.observation;
    this.observation = undefined;
    if (o) await o.cancel().catch(() => undefined);
  }
}

export class InstallDriver {
  private readonly store: InstallDriverOptions['store'];
  private readonly lwm2m: Lwm2mDevicePort;
  private readonly timeouts: PhaseTimeouts;
  private readonly now: () => number;
  private readonly maxAttempts: number;
  private readonly tokenTtlMs: number;
  private readonly pollMs: number;
  private readonly runners = new Map<string, JobRunner>();
  /** One timer for every open job's polling Read (not one per job: fleets have thousands). */
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly onWake = (registration: Registration): void => this.wake(registration.endpoint);
  private started = false;
  /**
   * Jobs resumed after a restart in a state that cannot repeat in the log (installing → installing
   * is no transition): the restart is told in the detail of their next transition.
   */
  private readonly restartNotes = new Map<string, string>();
  private progressSave: NodeJS.Timeout | undefined;
  private progressSaving: Promise<void> = Promise.resolve();
  /** Told when a job reaches a final state (the chain's Object 9 method wakes its attempt with it). */
  private readonly endedListeners = new Set<(job: InstallJob) => void>();

  constructor(private readonly options: InstallDriverOptions) {
    this.store = options.store;
    this.lwm2m = options.lwm2m;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.now = options.now ?? Date.now;
    this.maxAttempts = options.maxAttempts ?? 3;
    this.tokenTtlMs = options.tokenTtlMs ?? 2 * 3600_000;
    this.pollMs = options.pollIntervalMs ?? 5000;
  }

  /** Resumes the jobs left open by a previous run and follows registrations (queue-mode wake-ups). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.lwm2m.on('registered', this.onWake);
    this.lwm2m.on('updated', this.onWake);
    const previous = await this.store.settings.get('installs.running');
    await this.store.settings.set('installs.running', { pid: process.pid, startedAt: this.now() }, this.now());
    const saved = (await this.store.settings.get('installs.downloadProgress')) ?? {};
    this.options.endpoint.onProgress(() => this.scheduleProgressSave());
    // "after a crash" only when known: the previous process left its run marker behind.
    const restarted = previous ? `server restarted after a crash (the process started ${iso(previous.startedAt)} did not shut down)` : 'server restarted';
    for (let job of await this.store.installJobs.listOpen()) {
      try {
        job = await this.noteRestart(job, restarted, saved[job.id]);
      } catch (error) {
        this.reportError(error);
      }
      this.run(job);
    }
    this.pollTimer = setInterval(() => this.pollDue(), Math.max(50, Math.floor(this.pollMs / 5)));
    this.pollTimer.unref();
  }

  /**
   * Kicks the jobs whose poll is due: every pollMs, or every 6 × pollMs while Update State is
   * observed. Due times are spread at start so a thousand jobs do not read at once.
   */
  private pollDue(): void {
    const now = Date.now();
    for (const runner of this.runners.values()) {
      if (runner.nextPollAt > now) continue;
      runner.nextPollAt = now + (runner.observed ? 6 * this.pollMs : this.pollMs);
      runner.kick();
    }
  }

  async close(): Promise<void> {
    const wasStarted = this.started;
    this.started = false;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    this.lwm2m.off('registered', this.onWake);
    this.lwm2m.off('updated', this.onWake);
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
    if (wasStarted) {
      if (this.progressSave) clearTimeout(this.progressSave);
      this.progressSave = undefined;
      await this.saveProgress().catch((error: unknown) => this.reportError(error));
      // A clean stop: the next start will not report a crash.
      await this.store.settings.delete('installs.running').catch((error: unknown) => this.reportError(error));
    }
    this.runners.clear();
  }

  /**
   * A job left open by the previous process. Its history says the server restarted (after a
   * crash when known) and, during a download, how far the download had got; the download goes on
   * with the same token, so the device resumes where it was (CoAP Block2 / HTTP Range).
   */
  private async noteRestart(job: InstallJob, restarted: string, progress: { served: number; size: number; at: number } | undefined): Promise<InstallJob> {
    if (job.state === 'queued') return job;
    if (job.state === 'downloading') {
      if (progress) this.options.endpoint.restoreProgress(job.id, progress);
      const percent = progress && progress.size > 0 ? Math.floor((progress.served / progress.size) * 100) : undefined;
      const where = percent !== undefined ? `at ${percent} % (${progress!.served} of ${progress!.size} bytes, last served ${iso(progress!.at)})` : '(no download progress recorded yet)';
      const how = job.method === 'pull' && job.downloadToken ? 'resumed: the device continues with the same download link' : 'resumed: the device\'s state decides what happens next';
      return this.transition(job, 'downloading', `${restarted} during download ${where}; ${how}`, {
        message: percent !== undefined ? `Downloading (resumed at ${percent} % after a server restart).` : 'Downloading (resumed after a server restart).',
      });
    }
    this.restartNotes.set(job.id, `${restarted} while ${job.state}`);
    return this.store.installJobs.update(job.id, { message: `${STATE_MESSAGE[job.state].slice(0, -1)} (${restarted}; following the device again).` }, this.now());
  }

  private scheduleProgressSave(): void {
    if (this.progressSave || !this.started) return;
    this.progressSave = setTimeout(() => {
      this.progressSave = undefined;
      void this.saveProgress().catch((error: unknown) => this.reportError(error));
    }, PROGRESS_SAVE_MS);
    this.progressSave.unref();
  }

  /** Writes the download progress of the open jobs (one settings row; saves are serialised). */
  private saveProgress(): Promise<void> {
    this.progressSaving = this.progressSaving.catch(() => undefined).then(async () => {
      const all: Record<string, { served: number; size: number; at: number }> = {};
      for (const id of this.runners.keys()) {
        const p = this.options.endpoint.progressOf(id);
        if (p) all[id] = { served: p.served, size: p.size, at: p.at };
      }
      await this.store.settings.set('installs.downloadProgress', all, this.now());
    });
    return this.progressSaving;
  }

  /**
   * Calls `listener` with each job that reaches a final state (succeeded, failed, cancelled), after
   * the state is stored. Returns the unsubscribe function.
   */
  onJobEnded(listener: (job: InstallJob) => void): () => void {
    this.endedListeners.add(listener);
    return () => this.endedListeners.delete(listener);
  }

  private announceEnd(job: InstallJob): void {
    for (const listener of this.endedListeners) {
      try {
        listener(job);
      } catch (error) {
        this.reportError(error);
      }
    }
  }

  /**
   * A new install job. Without a `method` Depot chooses: what last worked for the device's
   * model, else pull; and it may fall back to push when the device cannot use the Package URI.
   */
  async install(endpoint: string, packageSha256: string, options: { activate?: boolean; method?: 'pull' | 'push' } = {}): Promise<InstallJob> {
    try {
      await this.options.catalog.require(packageSha256);
    } catch (error) {
      if (error instanceof PackageError) throw new InstallDriverError('NOT_FOUND', error.message);
      throw error;
    }
    const method = options.method ?? (await this.learnedMethod(endpoint)) ?? 'pull';
    return this.create({ kind: 'install', endpoint, packageSha256, method, methodAuto: options.method === undefined, activate: options.activate ?? false, instanceId: null });
  }

  /** The delivery method that last worked for this device's model ("Depot remembers what works per model"). */
  private async learnedMethod(endpoint: string): Promise<'pull' | 'push' | undefined> {
    const key = modelKey(await this.store.deviceFacts.get(endpoint));
    return key ? (await this.store.settings.get('installs.methodByModel'))?.[key] : undefined;
  }

  private async rememberMethod(job: InstallJob): Promise<void> {
    const key = modelKey(await this.store.deviceFacts.get(job.endpoint));
    if (!key) return;
    const known = (await this.store.settings.get('installs.methodByModel')) ?? {};
    if (known[key] === job.method) return;
    await this.store.settings.set('installs.methodByModel', { ...known, [key]: job.method }, this.now());
  }

  /** Uninstall (Execute /9/i/6), Activate (/9/i/10) or Deactivate (/9/i/11) of an instance. */
  async operate(kind: Exclude<InstallJobKind, 'install'>, endpoint: string, instanceId: number): Promise<InstallJob> {
    if (!Number.isInteger(instanceId) || instanceId < 0 || instanceId > 65534) throw new InstallDriverError('BAD_REQUEST', 'instance must be an integer 0..65534');
    return this.create({ kind, endpoint, packageSha256: null, method: 'pull', activate: false, instanceId });
  }

  /**
   * Cancels an open job: state cancelled, download token withdrawn (a pull in progress then
   * gets 4.04 and fails on the device). What the device already has stays (a DELIVERED
   * package can be dropped with an uninstall job; an installation already started runs on).
   */
  async cancel(id: string): Promise<JobView> {
    const job = await this.store.installJobs.get(id);
    if (!job) throw new InstallDriverError('NOT_FOUND', `install job ${id} does not exist`);
    if (FINAL_INSTALL_JOB_STATES.includes(job.state)) throw new InstallDriverError('CONFLICT', `install job ${id} already ended (${job.state})`);
    const runner = this.runners.get(id);
    this.runners.delete(id);
    await runner?.stop();
    const cancelled = await this.transition(job, 'cancelled', 'cancelled by the operator', { downloadToken: null, tokenExpiresAt: null, message: 'Cancelled.' });
    this.options.endpoint.forget(id);
    this.announceEnd(cancelled);
    return (await this.view(id))!;
  }

  /** A device's jobs, newest first (without transitions). */
  async listJobs(endpoint: string, page?: { limit?: number; after?: string }): Promise<{ items: JobView[]; next: string | null }> {
    const result = await this.store.installJobs.listByEndpoint(endpoint, page);
    return { items: result.items.map((job) => { const progress = this.options.endpoint.progressOf(job.id) ?? null; return { job, transitions: [], progress, percent: percentOf(job, progress) }; }), next: result.next };
  }

  /** A job with its transition log and download progress. */
  async view(id: string): Promise<JobView | null> {
    const job = await this.store.installJobs.get(id);
    if (!job) return null;
    const transitions = await this.store.installJobs.transitions(id);
    const progress = this.options.endpoint.progressOf(id) ?? null;
    return { job, transitions, progress, percent: percentOf(job, progress) };
  }

  /** What the device has in Object 9 (every instance), read now. */
  async listInstalled(endpoint: string): Promise<SoftwareInstance[]> {
    const outcome = await this.lwm2m.read(endpoint, '/9');
    if (outcome.status !== 'done') throw new InstallDriverError('BAD_REQUEST', `"${endpoint}" is asleep (queue mode); the read was queued for its next wake-up`);
    const r = outcome.response;
    if (r.code === '4.04') return [];
    if (responseClass(r) !== 2 || !r.node) throw new InstallDriverError('BAD_REQUEST', `the device answered ${r.code} to a Read of /9${r.diagnostic ? `: ${r.diagnostic}` : ''}`);
    const nodes = instancesOf(r.node);
    let hint = await this.numberingOf(endpoint);
    const shown = nodes.map((n) => describeInstance(n, hint)).find((i) => i.numberingShown && i.profile);
    if (shown?.profile && shown.profile !== hint) {
      await this.recordNumbering(endpoint, shown.profile);
      hint = shown.profile;
    }
    return nodes.map((n) => describeInstance(n, hint));
  }

  /** The Object 9 numbering a device has shown (seed 0–10 table or registry 50–59 results), recorded once seen. */
  async numberingOf(endpoint: string): Promise<ProfileName | undefined> {
    const shown = (await this.store.deviceFacts.get(endpoint))?.extra[OBJECT9_NUMBERING_FACT];
    return shown === 'seed' || shown === 'registry' ? shown : undefined;
  }

  /** Kept with the device's facts (one row per device; extra keys merge, so nothing else is touched). */
  private async recordNumbering(endpoint: string, profile: ProfileName): Promise<void> {
    if ((await this.numberingOf(endpoint).catch(() => undefined)) === profile) return;
    await this.store.deviceFacts.upsert(endpoint, { extra: { [OBJECT9_NUMBERING_FACT]: profile } }, this.now()).catch((error: unknown) => this.reportError(error));
  }

  reportError(error: unknown): void {
    this.options.onError?.(error instanceof Error ? error : new Error(String(error)));
  }

  // ------------------------------------------------------------------ internals

  private async create(job: { kind: InstallJobKind; endpoint: string; packageSha256: string | null; method: 'pull' | 'push'; methodAuto?: boolean; activate: boolean; instanceId: number | null }): Promise<InstallJob> {
    if (!job.endpoint) throw new InstallDriverError('BAD_REQUEST', 'an endpoint is required');
    // A device Depot has seen may be asleep or offline (the job waits for it); one never seen is a typo.
    const known = (await this.store.registrations.getByEndpoint(job.endpoint)) ?? (await this.store.deviceFacts.get(job.endpoint));
    if (!known) throw new InstallDriverError('NOT_FOUND', `device "${job.endpoint}" is unknown: it never registered with Depot`);
    // One Object 9 job at a time per device: two would race for the same instance.
    const busy = [...this.runners.values()].find((r) => r.endpoint === job.endpoint);
    if (busy) throw new InstallDriverError('CONFLICT', `device "${job.endpoint}" already has an open job (${busy.id}); wait for it to finish`);
    const created = await this.store.installJobs.create({ ...job, id: randomBytes(9).toString('base64url') }, this.now());
    this.run(created);
    return created;
  }

  private run(job: InstallJob): void {
    if (this.runners.has(job.id)) return;
    const runner = new JobRunner(job.id, job.endpoint, this);
    runner.nextPollAt = Date.now() + this.pollMs + Math.floor(Math.random() * this.pollMs);
    this.runners.set(job.id, runner);
    runner.kick();
  }

  private wake(endpoint: string): void {
    for (const runner of this.runners.values()) if (runner.endpoint === endpoint) runner.kick();
  }

  private async transition(job: InstallJob, to: InstallJobState, detail: string, patch: InstallJobPatch = {}): Promise<InstallJob> {
    const note = this.restartNotes.get(job.id);
    const next = await this.store.installJobs.transition(job.id, to, note ? `${note}; then ${detail}` : detail, patch, this.now());
    this.restartNotes.delete(job.id);
    if ('downloadToken' in patch) this.options.endpoint.withdraw(job.id);
    this.options.onTransition?.(next, job.state);
    return next;
  }

  private async finish(runner: JobRunner, job: InstallJob, to: 'succeeded' | 'failed', detail: string, patch: InstallJobPatch = {}): Promise<void> {
    const ended = await this.transition(job, to, detail, { downloadToken: null, tokenExpiresAt: null, ...patch });
    // Only a delivery that really happened teaches anything (not "already installed").
    if (to === 'succeeded' && job.kind === 'install' && job.attempts > 0) await this.rememberMethod(job).catch((error: unknown) => this.reportError(error));
    this.options.endpoint.forget(job.id);
    this.runners.delete(job.id);
    this.restartNotes.delete(job.id);
    await runner.stop();
    this.announceEnd(ended);
  }

  private timeoutOf(state: InstallJobState): number {
    switch (state) {
      case 'queued':
        return this.timeouts.queuedMs;
      case 'downloading':
        return this.timeouts.downloadMs;
      case 'delivered':
      case 'installing':
        return this.timeouts.installMs;
      default:
        return this.timeouts.activateMs;
    }
  }

  /** One step of a job: look at the device, act, record. Called serialised per job. */
  async step(runner: JobRunner): Promise<void> {
    const job = await this.store.installJobs.get(runner.id);
    if (!job || FINAL_INSTALL_JOB_STATES.includes(job.state)) {
      this.runners.delete(runner.id);
      await runner.stop();
      return;
    }
    const elapsed = this.now() - job.phaseStartedAt;
    if (elapsed > this.timeoutOf(job.state)) {
      await this.finish(runner, job, 'failed', `timeout: no progress in state ${job.state} for ${Math.round(elapsed / 1000)} s`, {
        retry: 'retry',
        message: `The device did not get past "${job.state}" within ${Math.round(this.timeoutOf(job.state) / 1000)} s; retry when the device is reachable.`,
      });
      return;
    }
    const registration = await this.store.registrations.getByEndpoint(job.endpoint);
    if (!registration || registration.expiresAt <= this.now() || !this.lwm2m.isReachable(registration)) {
      // Wait for a registration or wake-up, and say so (with when the device was last seen).
      await this.noteWaiting(runner, job, registration);
      return;
    }
    if (job.state === 'queued') {
      const problem = preflightProblem(registration);
      if (problem) {
        // Not a device exchange that failed: this method cannot work on this device (the method chain falls through).
        await this.finish(runner, job, 'failed', `preflight: ${problem}`, { retry: 'no-retry', message: `Not started: ${problem}.` });
        return;
      }
    }
    try {
      await this.stepWithDevice(runner, job);
    } catch (error) {
      if (!(error instanceof Lwm2mServerError) || error.code !== 'TRANSPORT') throw error;
      await this.noteWaiting(runner, job, registration, error.message);
    }
  }

  /**
   * The job's message while its device cannot be reached: what it waits for, since when, and
   * when the device was last seen. Written when the text changes (not at every poll).
   */
  private async noteWaiting(runner: JobRunner, job: InstallJob, registration: Registration | null, failure?: string): Promise<void> {
    const now = this.now();
    runner.waitingSince ??= job.state === 'queued' ? job.createdAt : now;
    const device = `device "${job.endpoint}"`;
    let what: string;
    if (!registration) {
      const facts = await this.store.deviceFacts.get(job.endpoint);
      what = `${device} to register (not registered; last seen ${facts ? iso(facts.updatedAt) : 'never'})`;
    } else if (registration.expiresAt <= now) {
      what = `${device} to register again (its registration expired at ${iso(registration.expiresAt)}; last seen ${iso(registration.lastUpdateAt)})`;
    } else if (failure !== undefined) {
      const secure = registration.address.scheme === 'coaps' ? '; a DTLS device is reachable again once it opens a new session, at its next Update or registration' : '';
      what = `${device} to answer (${failure}; last seen ${iso(registration.lastUpdateAt)}${secure})`;
    } else {
      what = `${device} to wake up (queue mode; last seen ${iso(registration.lastUpdateAt)})`;
    }
    const message = `${WAITING}${what}; waiting since ${iso(runner.waitingSince)}.`;
    if (job.message !== message) await this.store.installJobs.update(job.id, { message }, now);
  }

  /** One step with the device registered and awake; Lwm2mServerError TRANSPORT when it does not answer. */
  private async stepWithDevice(runner: JobRunner, job: InstallJob): Promise<void> {
    if (runner.waitingSince !== undefined || job.message?.startsWith(WAITING)) {
      // Reached again: the state's own message replaces the waiting one.
      runner.waitingSince = undefined;
      if (job.message?.startsWith(WAITING)) job = await this.store.installJobs.update(job.id, { message: STATE_MESSAGE[job.state] }, this.now());
    }

    if (job.kind !== 'install') {
      await this.stepOperation(runner, job);
      return;
    }
    const record = job.packageSha256 ? await this.options.catalog.get(job.packageSha256) : null;
    if (!record) {
      await this.finish(runner, job, 'failed', 'package no longer in the catalog', { retry: 'no-retry', message: 'The package was removed from the catalog.' });
      return;
    }

    runner.hint ??= await this.numberingOf(job.endpoint);
    if (job.instanceId === null || job.state === 'queued') {
      const prepared = await this.prepare(runner, job, record);
      if (!prepared || FINAL_INSTALL_JOB_STATES.includes(prepared.state)) return;
      job = prepared;
    }
    const iid = job.instanceId!;
    void runner.observe(job.endpoint, `/9/${iid}/${R.state}`, this.lwm2m);

    const report = await this.readInstance(job.endpoint, iid, runner.hint);
    if (!report) return; // asleep or no answer: next poll / wake-up
    if (report === 'missing') {
      await this.finish(runner, job, 'failed', `/9/${iid} no longer exists on the device`, { retry: 'retry', message: 'The Object 9 instance was deleted on the device during the install.' });
      return;
    }
    if (!report.ambiguous && report.profile) runner.hint = report.profile;
    if (report.numberingShown && report.profile) await this.recordNumbering(job.endpoint, report.profile);
    if (report.updateState !== job.lastUpdateState || report.updateResult !== job.lastUpdateResult) {
      job = await this.store.installJobs.update(job.id, { lastUpdateState: report.updateState, lastUpdateResult: report.updateResult, resultName: report.result }, this.now());
    }
    if (report.ambiguous) return; // e.g. 3/0 before the encoding is known: wait for a clearer report
    await this.advanceInstall(runner, job, record, report);
  }

  /** queued: find what the device has, reuse or Create an instance, write the Package URI. */
  private async prepare(runner: JobRunner, job: InstallJob, record: PackageRecord): Promise<InstallJob | undefined> {
    const read = await this.lwm2m.read(job.endpoint, '/9');
    if (read.status !== 'done') return undefined;
    const instances = read.response.code === '4.04' || !read.response.node ? [] : instancesOf(read.response.node).map((n) => describeInstance(n, runner.hint));
    if (responseClass(read.response) !== 2 && read.response.code !== '4.04') {
      await this.finish(runner, job, 'failed', `Read /9 answered ${read.response.code}`, { retry: 'no-retry', message: `The device does not offer Object 9 (Read /9: ${read.response.code}).` });
      return undefined;
    }
    const done = instances.find((i) => i.state === 'INSTALLED' && i.name === record.name && i.version === record.version);
    if (done && job.instanceId === null) {
      return this.transition(job, 'installed', `/9/${done.instanceId} already reports ${record.name} ${record.version} INSTALLED: not installed again`, {
        instanceId: done.instanceId,
        lastUpdateState: done.updateState,
        lastUpdateResult: done.updateResult,
        resultName: done.result,
        message: 'Already installed.',
      });
    }
    const delivered = job.instanceId === null ? instances.find((i) => i.state === 'DELIVERED' && i.name === record.name && i.version === record.version) : undefined;
    if (delivered) {
      // Left by an earlier attempt (e.g. an Installation failure): install it without downloading again.
      job = await this.store.installJobs.update(job.id, { instanceId: delivered.instanceId }, this.now());
      return this.transition(job, 'delivered', `/9/${delivered.instanceId} already holds ${record.name} ${record.version} DELIVERED: installing it without a new download`, { message: 'Delivered.' });
    }
    let iid = job.instanceId;
    const older = iid === null ? instances.find((i) => i.state === 'INSTALLED' && i.name === record.name && i.version !== record.version) : undefined;
    if (older) {
      // An update of installed software goes into its own instance: Uninstall with "1" (prepare
      // for update: the device keeps the running version until the new one is installed, OMA
      // registry Object 9 resource 6), then the new package into the same instance.
      const executed = await this.lwm2m.execute(job.endpoint, `/9/${older.instanceId}/${R.uninstall}`, '1');
      if (executed.status !== 'done') return undefined;
      if (responseClass(executed.response) === 2) {
        iid = older.instanceId;
        job = await this.store.installJobs.update(job.id, { instanceId: iid }, this.now());
        return this.startDownload(runner, job, `update of /9/${iid} from ${record.name} ${older.version ?? '?'} (Uninstall for update: ${executed.response.code}); ${await this.downloadDetail(job, iid)}`);
      }
      // A device that refuses the update argument keeps the old instance; the new version gets its own.
    }
    if (iid === null) {
      const free = instances.find((i) => i.state === 'INITIAL' && !i.ambiguous);
      if (free) iid = free.instanceId;
      else {
        const used = new Set(instances.map((i) => i.instanceId));
        iid = 0;
        while (used.has(iid)) iid++;
        const created = await this.lwm2m.create(job.endpoint, '/9', Node.object(9, [Node.instance(iid, [])]), TLV);
        if (created.status !== 'done') return undefined;
        if (responseClass(created.response) !== 2) {
          await this.finish(runner, job, 'failed', `Create /9/${iid} answered ${created.response.code}`, { retry: 'no-retry', message: `The device refused a new Object 9 instance (${created.response.code}).` });
          return undefined;
        }
      }
      job = await this.store.installJobs.update(job.id, { instanceId: iid }, this.now());
    }
    return this.startDownload(runner, job, await this.downloadDetail(job, iid));
  }

  private async downloadDetail(job: InstallJob, iid: number): Promise<string> {
    return job.method === 'pull' ? `Package URI ${await this.packageBase(job)}${PACKAGE_RESOURCE}/… written to /9/${iid}/${R.uri}` : `Package pushed (Block1) to /9/${iid}/${R.package}`;
  }

  private async startDownload(runner: JobRunner, job: InstallJob, detail: string): Promise<InstallJob | undefined> {
    const pull = job.method === 'pull';
    // Persisted (token, state) before the device can ask for the bytes.
    job = await this.transition(job, 'downloading', detail, {
      downloadToken: pull ? newDownloadToken() : null,
      tokenExpiresAt: pull ? this.now() + this.tokenTtlMs : null,
      attempts: job.attempts + 1,
      retry: null,
      message: 'Downloading.',
    });
    await this.sendPackage(runner, job);
    return job;
  }

  /**
   * Pull: Write Package URI (/9/i/3). Push: Write Package (/9/i/2) as opaque, block-wise
   * (RFC 7959 Block1) — the Write returns when the device has the whole package.
   * A refused write (4.00 Invalid URI, 4.05 not in INITIAL, 4.13 too large) is not an
   * error here: the device's Update State / Update Result say what happened.
   */
  private async sendPackage(runner: JobRunner, job: InstallJob): Promise<void> {
    const iid = job.instanceId!;
    if (job.method === 'pull') {
      const uri = `${await this.packageBase(job)}${PACKAGE_RESOURCE}/${job.downloadToken ?? ''}`;
      const outcome = await this.lwm2m.write(job.endpoint, `/9/${iid}/${R.uri}`, Node.resource(R.uri, Value.string(uri)));
      runner.uriWritten = outcome.status === 'done' && responseClass(outcome.response) === 2;
    } else {
      // Block1 straight from the catalogued file: one block in memory at a time, whatever the size.
      const record = await this.options.catalog.get(job.packageSha256!);
      if (!record) return;
      const source = this.options.endpoint.fileSource(job.id, this.options.catalog.pathOf(record.sha256), record.size);
      const response = await this.lwm2m.writeStream(job.endpoint, `/9/${iid}/${R.package}`, source, OPAQUE);
      runner.uriWritten = responseClass(response) === 2;
    }
  }

  /** Where this device pulls from: depends on how it registered (coaps:// for a DTLS device). */
  private async packageBase(job: InstallJob): Promise<string> {
    const base = this.options.packageBaseUri;
    return typeof base === 'function' ? base(await this.store.registrations.getByEndpoint(job.endpoint)) : base;
  }

  private async advanceInstall(runner: JobRunner, job: InstallJob, record: PackageRecord, report: SoftwareInstance): Promise<void> {
    const iid = job.instanceId!;
    const here = `/9/${iid}`;
    const result = report.result as keyof typeof RESULT_ADVICE | null;
    const advice = result ? RESULT_ADVICE[result] : undefined;
    switch (report.state) {
      case 'DOWNLOAD_STARTED':
      case 'DOWNLOADED':
        return;
      case 'DELIVERED': {
        if (job.state === 'downloading' || job.state === 'queued') {
          job = await this.transition(job, 'delivered', `device reports DELIVERED (${report.name ?? '?'} ${report.version ?? '?'})`, { downloadToken: null, tokenExpiresAt: null, message: 'Delivered.' });
        }
        if (result && isFailure(result) && job.state === 'installing') {
          await this.finish(runner, job, 'failed', `device reports ${result}`, { retry: advice!.retry, message: advice!.message });
          return;
        }
        if (job.state === 'delivered' || (job.state === 'installing' && !runner.installExecuted)) {
          if (report.name !== record.name || report.version !== record.version) {
            await this.finish(runner, job, 'failed', `${here} holds ${report.name ?? '?'} ${report.version ?? '?'}, not ${record.name} ${record.version}`, { retry: 'no-retry', message: 'The device instance holds another package.' });
            return;
          }
          const executed = await this.lwm2m.execute(job.endpoint, `${here}/${R.install}`);
          if (executed.status !== 'done') return;
          runner.installExecuted = true;
          if (job.state === 'delivered') {
            const code = executed.response.code;
            await this.transition(job, 'installing', `Execute Install ${here}/${R.install}: ${code}`, { message: 'Installing.' });
          }
        }
        return;
      }
      case 'INSTALLED': {
        if (report.name !== record.name || report.version !== record.version) {
          await this.finish(runner, job, 'failed', `${here} reports INSTALLED with ${report.name ?? '?'} ${report.version ?? '?'}`, { retry: 'no-retry', message: 'The device instance holds another package.' });
          return;
        }
        if (job.state !== 'installed' && job.state !== 'activating') {
          job = await this.transition(job, 'installed', `device reports INSTALLED (${RESULT_ADVICE.INSTALLED.message})`, { downloadToken: null, tokenExpiresAt: null, message: RESULT_ADVICE.INSTALLED.message });
        }
        if (!job.activate || report.activation === true) {
          await this.finish(runner, job, 'succeeded', job.activate ? 'device reports Activation State true' : 'installed', { message: job.activate ? 'Installed and activated.' : RESULT_ADVICE.INSTALLED.message });
          return;
        }
        if (job.state === 'installed' || !runner.activateExecuted) {
          const executed = await this.lwm2m.execute(job.endpoint, `${here}/${R.activate}`);
          if (executed.status !== 'done') return;
          runner.activateExecuted = true;
          if (responseClass(executed.response) !== 2) {
            await this.finish(runner, job, 'failed', `Execute Activate answered ${executed.response.code}`, { retry: 'retry', message: `The device refused to activate the software (${executed.response.code}).` });
            return;
          }
          if (job.state === 'installed') await this.transition(job, 'activating', `Execute Activate ${here}/${R.activate}: ${executed.response.code}`, { message: 'Activating.' });
          runner.kick();
        }
        return;
      }
      case 'INITIAL': {
        if (result === 'INVALID_URI' && job.method === 'pull' && job.methodAuto && job.attempts < this.maxAttempts) {
          // The device cannot use a Package URI from us (scheme, reachability): deliver it ourselves.
          job = await this.store.installJobs.update(job.id, { method: 'push' }, this.now());
          await this.startDownload(runner, job, `device reports INVALID_URI for the Package URI: falling back to push; ${await this.downloadDetail(job, iid)}`);
          return;
        }
        if (result && isFailure(result)) {
          if (advice!.automatic && job.attempts < this.maxAttempts) {
            await this.startDownload(runner, job, `device reports ${result}; retry ${job.attempts + 1} of ${this.maxAttempts}`);
            return;
          }
          await this.finish(runner, job, 'failed', `device reports ${result}`, { retry: advice!.retry, message: advice!.message });
          return;
        }
        if (job.state === 'downloading' && !runner.uriWritten) {
          // Restarted before the write reached the device, or the write did not go through.
          await this.sendPackage(runner, job);
          return;
        }
        if (job.state === 'installing' || job.state === 'delivered' || job.state === 'installed' || job.state === 'activating') {
          await this.finish(runner, job, 'failed', `device went back to INITIAL (${result ?? 'no result'})`, { retry: 'retry', message: 'The device dropped the package (uninstalled or reset) during the operation.' });
        }
        return;
      }
      default:
        return;
    }
  }

  /** Uninstall / Activate / Deactivate: one Execute, then the device's state confirms. */
  private async stepOperation(runner: JobRunner, job: InstallJob): Promise<void> {
    const iid = job.instanceId!;
    const rid = job.kind === 'uninstall' ? R.uninstall : job.kind === 'activate' ? R.activate : R.deactivate;
    if (!runner.operationExecuted) {
      const executed = await this.lwm2m.execute(job.endpoint, `/9/${iid}/${rid}`);
      if (executed.status !== 'done') return;
      runner.operationExecuted = true;
      const code = executed.response.code;
      if (responseClass(executed.response) !== 2) {
        const why = code === '4.05' ? 'not allowed in the instance\'s current state (§5.1.1 / §5.2 tables)' : code === '4.04' ? 'no such instance' : `answered ${code}`;
        await this.finish(runner, job, 'failed', `Execute /9/${iid}/${rid}: ${code}`, { retry: 'no-retry', message: `${job.kind} of /9/${iid}: ${why}.` });
        return;
      }
      job = await this.transition(job, job.kind === 'uninstall' ? 'installing' : 'activating', `Execute /9/${iid}/${rid}: ${code}`);
    }
    const report = await this.readInstance(job.endpoint, iid, runner.hint);
    if (!report) return;
    if (report === 'missing') {
      if (job.kind === 'uninstall') await this.finish(runner, job, 'succeeded', `/9/${iid} is gone`, { message: 'Uninstalled.' });
      return;
    }
    await this.store.installJobs.update(job.id, { lastUpdateState: report.updateState, lastUpdateResult: report.updateResult, resultName: report.result }, this.now());
    const done = job.kind === 'uninstall' ? report.state === 'INITIAL' : job.kind === 'activate' ? report.activation === true : report.activation === false;
    if (done) await this.finish(runner, job, 'succeeded', `device reports ${report.state ?? '?'}${report.activation !== null ? `, activation ${String(report.activation)}` : ''}`, { message: `${job.kind} done.` });
  }

  /** Reads /9/i: the instance, 'missing' (4.04), or undefined (asleep / no answer / error). */
  private async readInstance(endpoint: string, iid: number, hint: ProfileName | undefined): Promise<SoftwareInstance | 'missing' | undefined> {
    let outcome: OperationOutcome;
    try {
      outcome = await this.lwm2m.read(endpoint, `/9/${iid}`);
    } catch (error) {
      // No answer: the caller says what the job is waiting for.
      if (error instanceof Lwm2mServerError && error.code === 'TRANSPORT') throw error;
      this.reportError(error);
      return undefined;
    }
    if (outcome.status !== 'done') return undefined;
    const r = outcome.response;
    if (r.code === '4.04') return 'missing';
    if (responseClass(r) !== 2 || !r.node || r.node.kind !== 'instance') return undefined;
    return describeInstance(r.node, hint);
  }
}

function modelKey(facts: { manufacturer: string | null; modelNumber: string | null } | null): string | undefined {
  return facts?.manufacturer && facts.modelNumber ? `${facts.manufacturer}/${facts.modelNumber}` : undefined;
}

function instancesOf(node: Lwm2mNode): InstanceNode[] {
  if (node.kind === 'object') return [...node.instances];
  if (node.kind === 'instance') return [node];
  return [];
}

function percentOf(job: InstallJob, progress: DownloadProgress | null): number {
  switch (job.state) {
    case 'queued':
      return 0;
    case 'downloading':
      return progress && progress.size > 0 ? Math.min(80, Math.floor((progress.served / progress.size) * 80)) : 0;
    case 'delivered':
      return 80;
    case 'installing':
      return 85;
    case 'installed':
    case 'activating':
      return 95;
    default:
      return 100;
  }
}

/**
 * Install preflight (Depot's choice, from the registered object links of TS Core 1.1 §6.2.1):
 * an Object 9 job needs the device to have announced `</9>` or `</9/i>` (an object link
 * without instances still lets Depot Create one, Object 9 spec §5.1). Undefined when it may go
 * ahead; else why not, for the operator.
 */
export function preflightProblem(registration: Pick<Registration, 'objectLinks'>): string | undefined {
  let objects;
  try {
    objects = parseObjectLinks(registration.objectLinks).objects;
  } catch (error) {
    return `the device's registered object links cannot be read (${error instanceof Error ? error.message : String(error)})`;
  }
  if (!objects.some((o) => o.objectId === 9)) return 'device has no Software Management object (Object 9) in its registered object links';
  return undefined;
}
