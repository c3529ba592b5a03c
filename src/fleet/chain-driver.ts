/**
 * The install chain: a job runs its methods in order until one succeeds (issue 16). A method
 * that cannot try this device is skipped with its reason; one that fails falls through to the
 * next (or is tried again after a backoff when its failure is retryable and its retry policy
 * allows); success stops the chain. Every attempt is in the store before the method acts on the
 * device, and a running attempt's protocol state after each step, so a new driver over the same
 * store resumes the attempt that was running (not the chain from its start). The store refuses a
 * second running attempt of one job.
 *
 * Events reach the running attempt of a job: a device's contact (any protocol, via contact()),
 * a method's own `completed` push (MethodHost), and a safety-net timer (tickMs, default 60 s)
 * which also enforces the methods' step timeouts and starts due retries. Steps of one job are
 * serialised.
 *
 * The driver depends on interfaces only: the InstallMethod seam, the ChainJobRepository and,
 * optionally, a ChainPlanner (./learning.ts) for the order of jobs created without a chain.
 */
import { randomBytes } from 'node:crypto';
import { FleetError, type ChainAttempt, type ChainJob, type ChainJobRepository, type ChainPlan, type ModelKey, type NewChainJob } from './domain.js';
import type { ChainPlanner } from './learning.js';
import type { AttemptContext, ContactProtocol, InstallMethod, InstallTarget, MethodEvent, MethodStep } from './methods/method.js';

export interface ChainDriverOptions {
  store: { readonly chainJobs: ChainJobRepository };
  /** Every method the driver knows; a job names the ones it runs, in order. */
  methods: readonly InstallMethod[];
  /** The chain when a job names none. Default: every method, in the order given. */
  defaultChain?: readonly string[];
  /**
   * The trust step (Send certificate, ./methods/send-certificate.ts): run when a method's failed
   * step says `needsTrust`, at that method's position, recorded as an attempt like the others;
   * when it succeeds the method is tried once more, when it fails the chain goes on. Not one of
   * the chain's methods (never in a job's `methods`, never counted in the learned table).
   */
  trust?: InstallMethod;
  /** Orders the chain of jobs created without one (per-model learning); also told every attempt's end. */
  learning?: ChainPlanner;
  /** Step timeouts by method name, ms, overriding what the methods declare (0: none). */
  stepTimeoutMs?: Readonly<Record<string, number>>;
  /** Safety-net timer events to running attempts, ms; 0 for none (tests call tick()). Default 60000. */
  tickMs?: number;
  now?: () => number;
  onError?: (error: Error) => void;
  /** A job ended installed, by `method` (after its end is in the store): e.g. the inventory's software list. */
  onInstalled?: (job: ChainJob, method: string) => void;
}

/** One fleet error type: the chain's and the Object 9 driver's are the same class. */
export { FleetError as ChainDriverError } from './domain.js';

export interface ChainJobView {
  job: ChainJob;
  attempts: ChainAttempt[];
}

export interface ChainInstallRequest {
  endpoint: string;
  packageSha256: string;
  activate?: boolean;
  /** An explicit chain, honoured as given; without it the learned (or default) order. */
  methods?: readonly string[];
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));
/** Remembered `completed` pushes whose attempt is not indexed yet (pushed while begin was still running). */
const EARLY_COMPLETIONS = 1000;
/** Appended to a failure that sends the root next: a restart finds it there (the store keeps no other flag). */
const TRUST_FIRST_NOTE = (method: string): string => ` (Depot's root is sent first, then ${method} is tried once more)`;
const TRUST_FIRST = / \(Depot's root is sent first, then \S+ is tried once more\)$/;

export class ChainDriver {
  private readonly repo: ChainJobRepository;
  private readonly methods = new Map<string, InstallMethod>();
  private readonly now: () => number;
  /** Open jobs of this process and the tail of their serialised steps. */
  private readonly queues = new Map<string, { endpoint: string; tail: Promise<void> }>();
  /** The same open jobs by device: a contact (every registration and update) finds its jobs without a scan. */
  private readonly openByEndpoint = new Map<string, Set<string>>();
  /** A method's protocol job reference → the chain job whose running attempt holds it. */
  private readonly byRef = new Map<string, string>();
  private readonly refByJob = new Map<string, string>();
  private readonly earlyCompletions = new Set<string>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: ChainDriverOptions) {
    this.repo = options.store.chainJobs;
    for (const m of options.methods) this.methods.set(m.name, m);
    this.now = options.now ?? Date.now;
    const all = new Set(options.methods);
    if (options.trust) {
      if (this.methods.has(options.trust.name)) throw new Error(`the trust step "${options.trust.name}" must not also be a chain method`);
      this.methods.set(options.trust.name, options.trust);
      all.add(options.trust);
    }
    for (const m of all) m.connect?.({ completed: (ref) => this.completed(ref) });
  }

  /** Picks up the jobs a previous driver left running: each resumes its running attempt (or its waiting retry). */
  async start(): Promise<void> {
    this.closed = false;
    for (const job of await this.repo.listOpen()) {
      this.track(job.id, job.endpoint);
      void this.enqueue(job.id, () => this.deliver(job.id, { kind: 'resumed' }));
    }
    const tickMs = this.options.tickMs ?? 60_000;
    if (tickMs > 0) {
      this.timer = setInterval(() => void this.tick(), tickMs);
      this.timer.unref();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
    await Promise.all([...this.queues.values()].map((q) => q.tail));
    this.queues.clear();
    this.openByEndpoint.clear();
    this.byRef.clear();
    this.refByJob.clear();
  }

  /** A new job; resolves once its first method has begun (or the chain ended). */
  async install(endpoint: string, packageSha256: string, options: { activate?: boolean; methods?: readonly string[] } = {}): Promise<ChainJob> {
    const [job] = await this.createJobs([{ endpoint, packageSha256, ...options }]);
    await this.enqueue(job!.id, () => this.walk(job!, 0));
    return (await this.repo.get(job!.id)) ?? job!;
  }

  /**
   * Many jobs at once (a campaign's wave): every job is planned, then all are created in one
   * transaction (all or none: one device with an open job refuses the batch with CONFLICT);
   * resolves once they are stored, their first methods begin in the background.
   */
  async installMany(requests: readonly ChainInstallRequest[]): Promise<ChainJob[]> {
    const jobs = await this.createJobs(requests);
    for (const job of jobs) void this.enqueue(job.id, () => this.walk(job, 0));
    return jobs;
  }

  /** The device reached Depot over `protocol`: its open jobs' running attempts hear of it. Any protocol layer may call it. */
  async contact(endpoint: string, protocol: ContactProtocol = 'lwm2m'): Promise<void> {
    const open = this.openByEndpoint.get(endpoint);
    if (!open) return;
    await Promise.all([...open].map((id) => this.enqueue(id, () => this.deliver(id, { kind: 'contact', protocol }))));
  }

  /** A method's protocol job `ref` ended: the attempt holding it advances now (not at the next tick). */
  completed(ref: string): void {
    const id = this.byRef.get(ref);
    if (id === undefined) {
      // Pushed before the attempt holding it was stored (begin still running): delivered once it is.
      this.earlyCompletions.add(ref);
      if (this.earlyCompletions.size > EARLY_COMPLETIONS) this.earlyCompletions.delete(this.earlyCompletions.values().next().value!);
      return;
    }
    void this.enqueue(id, () => this.deliver(id, { kind: 'completed', ref }));
  }

  /** A timer event to every open job (step timeouts, due retries, polling methods). */
  async tick(): Promise<void> {
    await Promise.all([...this.queues.keys()].map((id) => this.enqueue(id, () => this.deliver(id, { kind: 'timer' }))));
  }

  /** Cancels an open job at any point: the running method is told to stop what it started; a waiting retry is dropped. */
  async cancel(id: string): Promise<ChainJobView> {
    const job = await this.repo.get(id);
    if (!job) throw new FleetError('NOT_FOUND', `install job ${id} does not exist`);
    if (job.state !== 'running') throw new FleetError('CONFLICT', `install job ${id} already ended (${job.state})`);
    if (!this.queues.has(id)) this.track(id, job.endpoint);
    await this.enqueue(id, async () => {
      const current = await this.repo.get(id);
      if (!current || current.state !== 'running') return;
      const attempt = await this.running(id);
      if (attempt) {
        const method = this.methods.get(attempt.method);
        await method?.cancel(this.context(current, attempt)).catch((error: unknown) => this.reportError(error));
        await this.repo.endAttempt(id, attempt.seq, 'cancelled', 'cancelled by the operator', null, this.now());
      }
      await this.end(id, 'cancelled', 'Cancelled by the operator.');
    });
    const view = await this.view(id);
    if (view?.job.state === 'running') throw new FleetError('CONFLICT', `install job ${id} could not be cancelled now; try again`);
    return view!;
  }

  async view(id: string): Promise<ChainJobView | null> {
    const job = await this.repo.get(id);
    return job ? { job, attempts: await this.repo.attempts(id) } : null;
  }

  /** A device's jobs with their attempts (its install history), newest first. */
  async history(endpoint: string, page?: { limit?: number; after?: string }): Promise<{ items: ChainJobView[]; next: string | null }> {
    const result = await this.repo.listByEndpoint(endpoint, page);
    return { items: await Promise.all(result.items.map(async (job) => ({ job, attempts: await this.repo.attempts(job.id) }))), next: result.next };
  }

  /** Names of the methods this driver runs, in the default order. */
  methodNames(): string[] {
    return [...(this.options.defaultChain ?? this.options.methods.map((m) => m.name))];
  }

  // ------------------------------------------------------------------ internals

  private async createJobs(requests: readonly ChainInstallRequest[]): Promise<ChainJob[]> {
    const seen = new Set<string>();
    const planned: NewChainJob[] = [];
    for (const r of requests) {
      if (!r.endpoint) throw new FleetError('BAD_REQUEST', 'an endpoint is required');
      if (!/^[0-9a-f]{64}$/.test(r.packageSha256)) throw new FleetError('BAD_REQUEST', 'package must be a SHA-256 (64 lowercase hex digits)');
      if (this.openByEndpoint.has(r.endpoint) || seen.has(r.endpoint)) throw new FleetError('CONFLICT', `device "${r.endpoint}" already has an open install job`);
      seen.add(r.endpoint);
      const { methods, plan } = await this.planOf(r);
      // Hex: an id never starts with '-' (a command line would take it for an option).
      planned.push({ id: randomBytes(12).toString('hex'), endpoint: r.endpoint, packageSha256: r.packageSha256, activate: r.activate ?? false, methods, plan });
    }
    const jobs = planned.length === 1 ? [await this.repo.create(planned[0]!, this.now())] : await this.repo.createMany(planned, this.now());
    for (const job of jobs) this.track(job.id, job.endpoint);
    return jobs;
  }

  private async planOf(r: ChainInstallRequest): Promise<{ methods: string[]; plan: ChainPlan }> {
    if (r.methods) {
      if (this.options.trust && r.methods.includes(this.options.trust.name)) throw new FleetError('BAD_REQUEST', `${this.options.trust.name} is not an install method: it runs by itself (depot devices send-certificate) or when a method fails for want of Depot's root`);
      const unknown = r.methods.filter((name) => !this.methods.has(name));
      if (r.methods.length === 0 || unknown.length > 0) throw new FleetError('BAD_REQUEST', r.methods.length === 0 ? 'the method chain is empty' : `unknown install methods: ${unknown.join(', ')} (known: ${[...this.methods.keys()].join(', ')})`);
      if (new Set(r.methods).size !== r.methods.length) throw new FleetError('BAD_REQUEST', 'a method appears twice in the chain');
      return { methods: [...r.methods], plan: { chosenBy: 'operator', skip: {}, note: null } };
    }
    const chain = this.methodNames();
    if (this.options.learning) return this.options.learning.plan(r.endpoint, chain);
    return { methods: chain, plan: { chosenBy: 'default', skip: {}, note: null } };
  }

  private enqueue(id: string, step: () => Promise<void>): Promise<void> {
    const q = this.queues.get(id);
    if (!q) return Promise.resolve();
    const next = q.tail.then(step).catch((error: unknown) => this.reportError(error));
    q.tail = next;
    return next;
  }

  private reportError(error: unknown): void {
    this.options.onError?.(error instanceof Error ? error : new Error(String(error)));
  }

  private target(job: ChainJob): InstallTarget {
    return { jobId: job.id, endpoint: job.endpoint, packageSha256: job.packageSha256, activate: job.activate };
  }

  private context(job: ChainJob, attempt: ChainAttempt): AttemptContext {
    return { target: this.target(job), job, attempt };
  }

  private async running(jobId: string): Promise<ChainAttempt | undefined> {
    return (await this.repo.attempts(jobId)).find((a) => a.outcome === 'running');
  }

  private stepTimeoutOf(method: InstallMethod): number | undefined {
    const configured = this.options.stepTimeoutMs?.[method.name];
    if (configured !== undefined) return configured > 0 ? configured : undefined;
    return method.stepTimeoutMs;
  }

  /** Tries the job's methods from position `from` on until one is running, has succeeded, or waits for a retry. */
  private async walk(job: ChainJob, from: number): Promise<void> {
    const target = this.target(job);
    for (let i = from; i < job.methods.length; i++) {
      const name = job.methods[i]!;
      const method = this.methods.get(name);
      const planned = job.plan.skip[name];
      let why: string | undefined = !method ? 'this server does not know the method' : planned;
      if (method && why === undefined) {
        try {
          why = await method.preflight(target);
        } catch (error) {
          why = `preflight error: ${messageOf(error)}`;
        }
      }
      if (why !== undefined || !method) {
        await this.repo.addAttempt(job.id, { method: name, position: i, outcome: 'skipped', message: why ?? 'skipped', state: null }, this.now());
        continue;
      }
      // In the store before the method touches the device: a restart finds it and resumes it.
      const attempt = await this.repo.addAttempt(job.id, { method: name, position: i, outcome: 'running', message: 'Beginning.', state: {} }, this.now());
      const step = await method.begin(this.context(job, attempt)).catch((error: unknown): MethodStep => ({ status: 'failed', message: `method error: ${messageOf(error)}` }));
      if (await this.apply(job, attempt, step)) return;
    }
    const attempts = await this.repo.attempts(job.id);
    const reasons = attempts.filter((a) => a.outcome !== 'succeeded').map((a) => `${a.method}: ${a.message ?? a.outcome}`);
    await this.end(job.id, 'failed', `No install method succeeded (${reasons.join('; ') || 'no methods'}).`);
  }

  /**
   * Records a step of a running attempt. True when the chain stops here (still running,
   * succeeded, or a retry of this method is waiting); false when the next method should try.
   */
  private async apply(job: ChainJob, attempt: ChainAttempt, step: MethodStep): Promise<boolean> {
    const method = this.methods.get(attempt.method);
    switch (step.status) {
      case 'running': {
        const ref = method?.refOf?.(step.state);
        if (ref !== undefined) {
          const previous = this.refByJob.get(job.id);
          if (previous !== undefined && previous !== ref) this.byRef.delete(previous);
          this.byRef.set(ref, job.id);
          this.refByJob.set(job.id, ref);
          if (this.earlyCompletions.delete(ref)) void this.enqueue(job.id, () => this.deliver(job.id, { kind: 'completed', ref }));
        }
        // Most timer events change nothing: no write (each is a durable commit).
        const sameState = JSON.stringify(step.state) === JSON.stringify(attempt.state);
        if (step.message === attempt.message && sameState && (step.bytes === undefined || step.bytes === attempt.bytes)) return true;
        // One commit for the attempt's state and the job's message; progress alone (same state),
        // or a state the method can find again (stateRecoverable), is not fsynced.
        await this.repo.saveAttempt(job.id, attempt.seq, step.state, step.message, this.now(), step.bytes ?? null, `${attempt.method}: ${step.message}`, sameState || method?.stateRecoverable === true);
        return true;
      }
      case 'succeeded':
        this.forgetRefs(job.id);
        if (this.isTrustStep(job, attempt)) {
          // The root is on the device: the method that needed it is tried once more, at its position.
          await this.repo.endAttempt(job.id, attempt.seq, 'succeeded', step.message, step.result ?? null, this.now(), step.bytes ?? null);
          await this.walk(job, attempt.position);
          return true;
        }
        // The attempt's end, its count in the learned table and the job's end: one commit (counted once
        // through any kill); not fsynced when the method's own durable job says it again after a power cut.
        await this.repo.endAttempt(job.id, attempt.seq, 'succeeded', step.message, step.result ?? null, this.now(), step.bytes ?? null, undefined, await this.tallyOf(job), {
          message: `Installed by ${attempt.method}: ${step.message}`,
          soft: method?.stateRecoverable === true,
        });
        this.untrack(job.id);
        this.options.onInstalled?.(job, attempt.method);
        return true;
      case 'failed': {
        this.forgetRefs(job.id);
        if (this.isTrustStep(job, attempt)) {
          await this.repo.endAttempt(job.id, attempt.seq, 'failed', step.message, step.result ?? null, this.now(), step.bytes ?? null);
          return false;
        }
        const trust = step.needsTrust === true ? await this.trustDue(job, attempt.position) : undefined;
        if (!trust) return this.failed(job, attempt, step.message, step.result ?? null, step.bytes ?? null, step.retryable === true);
        await this.failed(job, attempt, `${step.message}${TRUST_FIRST_NOTE(attempt.method)}`, step.result ?? null, step.bytes ?? null, false);
        return this.beginTrust(job, trust, attempt.position);
      }
    }
  }

  /** A trust step's attempt (not a chain method at that position). */
  private isTrustStep(job: ChainJob, attempt: ChainAttempt): boolean {
    const trust = this.options.trust;
    return trust !== undefined && attempt.method === trust.name && job.methods[attempt.position] !== trust.name;
  }

  /** The trust step, when one is configured and has not run yet for the method at `position` (once per method per job). */
  private async trustDue(job: ChainJob, position: number): Promise<InstallMethod | undefined> {
    const trust = this.options.trust;
    if (!trust) return undefined;
    const attempts = await this.repo.attempts(job.id);
    return attempts.some((a) => a.position === position && a.method === trust.name) ? undefined : trust;
  }

  /** Runs the trust step at `position`; true when the chain stops here (running, or the retried method runs). */
  private async beginTrust(job: ChainJob, trust: InstallMethod, position: number): Promise<boolean> {
    const target = this.target(job);
    let why: string | undefined;
    try {
      why = await trust.preflight(target);
    } catch (error) {
      why = `preflight error: ${messageOf(error)}`;
    }
    if (why !== undefined) {
      await this.repo.addAttempt(job.id, { method: trust.name, position, outcome: 'skipped', message: why, state: null }, this.now());
      return false;
    }
    const attempt = await this.repo.addAttempt(job.id, { method: trust.name, position, outcome: 'running', message: 'Beginning.', state: {} }, this.now());
    const step = await trust.begin(this.context(job, attempt)).catch((error: unknown): MethodStep => ({ status: 'failed', message: `method error: ${messageOf(error)}` }));
    return this.apply(job, attempt, step);
  }

  /** Ends a failed attempt; true when a retry of the same method now waits (the chain stops here). */
  private async failed(job: ChainJob, attempt: ChainAttempt, message: string, result: string | null, bytes: number | null, retryable: boolean): Promise<boolean> {
    const policy = this.methods.get(attempt.method)?.retryPolicy;
    const attempts = await this.repo.attempts(job.id);
    const retriesSoFar = attempts.filter((a) => a.position === attempt.position && a.outcome === 'failed').length;
    const retry = retryable && policy && retriesSoFar < policy.maxRetries ? retriesSoFar + 1 : undefined;
    const delay = retry !== undefined ? Math.max(0, Math.floor(policy!.backoffMs(retry))) : 0;
    const why = retry !== undefined ? `${message} (retryable: retry ${retry} of ${policy!.maxRetries} in ${Math.round(delay / 1000)} s)` : message;
    const at = this.now() + delay;
    // The failure and its retry in one commit: a kill never keeps one without the other.
    const planned = retry !== undefined ? { at, message: `${attempt.method}: failed (${message}); retry ${retry} of ${policy!.maxRetries} at ${new Date(at).toISOString()}` } : undefined;
    // The trust step is not an install method: its ends do not count in the learned table.
    await this.repo.endAttempt(job.id, attempt.seq, 'failed', why, result, this.now(), bytes, planned, this.isTrustStep(job, attempt) ? undefined : await this.tallyOf(job));
    if (retry === undefined) return false;
    this.scheduleRetry(job.id, delay);
    return true;
  }

  /** The model the attempt's end counts for in the learned table (none without learning, or when unknown). */
  private async tallyOf(job: ChainJob): Promise<ModelKey | undefined> {
    return this.options.learning?.modelOf(job.endpoint).catch((error: unknown) => {
      this.reportError(error);
      return undefined;
    });
  }

  private scheduleRetry(id: string, delayMs: number): void {
    if ((this.options.tickMs ?? 60_000) === 0 || this.closed) return;
    clearTimeout(this.retryTimers.get(id));
    const t = setTimeout(() => {
      this.retryTimers.delete(id);
      void this.enqueue(id, () => this.deliver(id, { kind: 'timer' }));
    }, delayMs);
    t.unref();
    this.retryTimers.set(id, t);
  }

  private async deliver(id: string, event: MethodEvent): Promise<void> {
    const job = await this.repo.get(id);
    if (!job || job.state !== 'running') {
      this.untrack(id);
      return;
    }
    const attempt = await this.running(id);
    if (!attempt) {
      const attempts = await this.repo.attempts(id);
      const last = attempts[attempts.length - 1];
      if (job.retryAt !== null) {
        // A retry waits: due now, or later (a restart re-arms its timer).
        if (job.retryAt > this.now()) {
          if (event.kind === 'resumed') this.scheduleRetry(id, job.retryAt - this.now());
          return;
        }
        const fresh = await this.repo.setRetry(id, null, `${last?.method ?? 'method'}: retrying.`, this.now());
        await this.walk(fresh, last?.position ?? 0);
        return;
      }
      // The previous process stopped after the last attempt ended and before the job did:
      // a success or a cancel ends the job now (never a second install by the next method) ...
      if (last?.outcome === 'succeeded' && this.isTrustStep(job, last)) {
        // The root went out, the retry of the method that needed it did not start yet.
        await this.walk(job, last.position);
        return;
      }
      if (last?.outcome === 'succeeded') {
        await this.end(id, 'succeeded', `Installed by ${last.method}: ${last.message ?? 'succeeded'}`);
        return;
      }
      if (last?.outcome === 'cancelled') {
        await this.end(id, 'cancelled', 'Cancelled by the operator.');
        return;
      }
      // A method that failed for want of the root, stopped before its trust step began: that step now.
      const trust = last?.outcome === 'failed' && TRUST_FIRST.test(last.message ?? '') && !this.isTrustStep(job, last) ? await this.trustDue(job, last.position) : undefined;
      if (last && trust) {
        if (!(await this.beginTrust(job, trust, last.position))) await this.walk(job, last.position + 1);
        return;
      }
      // ... and a failure goes on with the next method.
      await this.walk(job, last ? last.position + 1 : 0);
      return;
    }
    const method = this.methods.get(attempt.method);
    if (!method) {
      if (!(await this.failed(job, attempt, `this server does not know the method "${attempt.method}"`, null, null, false))) await this.walk(job, attempt.position + 1);
      return;
    }
    const limit = this.stepTimeoutOf(method);
    if (limit !== undefined && this.now() - attempt.progressAt > limit) {
      await method.cancel(this.context(job, attempt)).catch((error: unknown) => this.reportError(error));
      this.forgetRefs(job.id);
      const stalled = Math.round((this.now() - attempt.progressAt) / 1000);
      const why = `timed out: no progress for ${stalled} s (the step limit of ${attempt.method} is ${Math.round(limit / 1000)} s); last: ${attempt.message ?? 'nothing'}`;
      if (!(await this.failed(job, attempt, why, 'TIMEOUT', null, true))) await this.walk(job, attempt.position + 1);
      return;
    }
    const step: MethodStep = await method.advance(this.context(job, attempt), event).catch((error: unknown): MethodStep => ({ status: 'failed', message: `method error: ${messageOf(error)}` }));
    if (!(await this.apply(job, attempt, step))) await this.walk(job, attempt.position + 1);
  }

  private track(id: string, endpoint: string): void {
    if (this.queues.has(id)) return;
    this.queues.set(id, { endpoint, tail: Promise.resolve() });
    const open = this.openByEndpoint.get(endpoint);
    if (open) open.add(id);
    else this.openByEndpoint.set(endpoint, new Set([id]));
  }

  private untrack(id: string): void {
    const q = this.queues.get(id);
    if (!q) return;
    this.queues.delete(id);
    this.forgetRefs(id);
    clearTimeout(this.retryTimers.get(id));
    this.retryTimers.delete(id);
    const open = this.openByEndpoint.get(q.endpoint);
    open?.delete(id);
    if (open?.size === 0) this.openByEndpoint.delete(q.endpoint);
  }

  private forgetRefs(id: string): void {
    const ref = this.refByJob.get(id);
    if (ref === undefined) return;
    this.refByJob.delete(id);
    this.byRef.delete(ref);
  }

  private async end(id: string, state: 'succeeded' | 'failed' | 'cancelled', message: string): Promise<void> {
    await this.repo.finish(id, state, message, this.now());
    this.untrack(id);
  }
}
