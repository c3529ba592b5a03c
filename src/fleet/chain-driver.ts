/**
 * The install chain: a job runs its methods in order until one succeeds (issue 16). A method
 * that cannot try this device is skipped with its reason; one that fails falls through to the
 * next; success stops the chain. Every attempt is in the store before the method acts on the
 * device, and a running attempt's protocol state after each step, so a new driver over the same
 * store resumes the attempt that was running (not the chain from its start).
 *
 * Steps of one job are serialised; events (a device's contact, the timer) reach the running
 * attempt of each open job of that device.
 */
import { randomBytes } from 'node:crypto';
import type { ChainAttempt, ChainJob, ChainJobRepository } from './domain.js';
import type { AttemptContext, InstallMethod, InstallTarget, MethodEvent, MethodStep } from './methods/method.js';

export interface ChainDriverOptions {
  store: { readonly chainJobs: ChainJobRepository };
  /** Every method the driver knows; a job names the ones it runs, in order. */
  methods: readonly InstallMethod[];
  /** The chain when a job names none. Default: every method, in the order given. */
  defaultChain?: readonly string[];
  /** Timer events to running attempts, ms; 0 for none (tests call tick()). Default 5000. */
  tickMs?: number;
  now?: () => number;
  onError?: (error: Error) => void;
}

export class ChainDriverError extends Error {
  override readonly name = 'ChainDriverError';
  constructor(
    readonly code: 'NOT_FOUND' | 'BAD_REQUEST' | 'CONFLICT',
    message: string,
  ) {
    super(message);
  }
}

export interface ChainJobView {
  job: ChainJob;
  attempts: ChainAttempt[];
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export class ChainDriver {
  private readonly repo: ChainJobRepository;
  private readonly methods = new Map<string, InstallMethod>();
  private readonly now: () => number;
  /** Open jobs of this process and the tail of their serialised steps. */
  private readonly queues = new Map<string, { endpoint: string; tail: Promise<void> }>();
  /** The same open jobs by device: a contact (every registration and update) finds its jobs without a scan. */
  private readonly openByEndpoint = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ChainDriverOptions) {
    this.repo = options.store.chainJobs;
    for (const m of options.methods) this.methods.set(m.name, m);
    this.now = options.now ?? Date.now;
  }

  /** Picks up the jobs a previous driver left running: each resumes its running attempt. */
  async start(): Promise<void> {
    for (const job of await this.repo.listOpen()) {
      this.track(job.id, job.endpoint);
      void this.enqueue(job.id, () => this.resume(job));
    }
    const tickMs = this.options.tickMs ?? 5000;
    if (tickMs > 0) {
      this.timer = setInterval(() => void this.tick(), tickMs);
      this.timer.unref();
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.queues.values()].map((q) => q.tail));
    this.queues.clear();
    this.openByEndpoint.clear();
  }

  /** A new job; resolves once its first method has begun (or the chain ended). */
  async install(endpoint: string, packageSha256: string, options: { activate?: boolean; methods?: readonly string[] } = {}): Promise<ChainJob> {
    if (!endpoint) throw new ChainDriverError('BAD_REQUEST', 'an endpoint is required');
    const chain = options.methods ?? this.options.defaultChain ?? [...this.methods.keys()];
    const unknown = chain.filter((name) => !this.methods.has(name));
    if (chain.length === 0 || unknown.length > 0) throw new ChainDriverError('BAD_REQUEST', chain.length === 0 ? 'the method chain is empty' : `unknown install methods: ${unknown.join(', ')}`);
    if (this.openByEndpoint.has(endpoint)) throw new ChainDriverError('CONFLICT', `device "${endpoint}" already has an open install job`);
    const job = await this.repo.create({ id: randomBytes(9).toString('base64url'), endpoint, packageSha256, activate: options.activate ?? false, methods: chain }, this.now());
    this.track(job.id, endpoint);
    await this.enqueue(job.id, () => this.walk(job, 0));
    return (await this.repo.get(job.id)) ?? job;
  }

  /** The device reached Depot: its open jobs' running attempts hear of it. */
  async contact(endpoint: string, protocol: 'lwm2m' = 'lwm2m'): Promise<void> {
    const open = this.openByEndpoint.get(endpoint);
    if (!open) return;
    await Promise.all([...open].map((id) => this.enqueue(id, () => this.deliver(id, { kind: 'contact', protocol }))));
  }

  /** A timer event to every running attempt (timeouts, polling). */
  async tick(): Promise<void> {
    await Promise.all([...this.queues.keys()].map((id) => this.enqueue(id, () => this.deliver(id, { kind: 'timer' }))));
  }

  /** Cancels an open job; the running method is told to stop what it started. */
  async cancel(id: string): Promise<ChainJobView> {
    const job = await this.repo.get(id);
    if (!job) throw new ChainDriverError('NOT_FOUND', `install job ${id} does not exist`);
    if (job.state !== 'running') throw new ChainDriverError('CONFLICT', `install job ${id} already ended (${job.state})`);
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
    return (await this.view(id))!;
  }

  async view(id: string): Promise<ChainJobView | null> {
    const job = await this.repo.get(id);
    return job ? { job, attempts: await this.repo.attempts(id) } : null;
  }

  // ------------------------------------------------------------------ internals

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

  /** Tries the job's methods from `from` on until one is running or has succeeded. */
  private async walk(job: ChainJob, from: number): Promise<void> {
    const target = this.target(job);
    for (let i = from; i < job.methods.length; i++) {
      const method = this.methods.get(job.methods[i]!);
      if (!method) {
        await this.repo.addAttempt(job.id, { method: job.methods[i]!, outcome: 'skipped', message: 'this server does not know the method', state: null }, this.now());
        continue;
      }
      let why: string | undefined;
      try {
        why = await method.preflight(target);
      } catch (error) {
        why = `preflight error: ${messageOf(error)}`;
      }
      if (why !== undefined) {
        await this.repo.addAttempt(job.id, { method: method.name, outcome: 'skipped', message: why, state: null }, this.now());
        continue;
      }
      // In the store before the method touches the device: a restart finds it and resumes it.
      const attempt = await this.repo.addAttempt(job.id, { method: method.name, outcome: 'running', message: 'Beginning.', state: {} }, this.now());
      const step = await method.begin(this.context(job, attempt)).catch((error: unknown): MethodStep => ({ status: 'failed', message: `method error: ${messageOf(error)}` }));
      if (await this.apply(job, attempt, step)) return;
    }
    const attempts = await this.repo.attempts(job.id);
    const reasons = attempts.filter((a) => a.outcome !== 'succeeded').map((a) => `${a.method}: ${a.message ?? a.outcome}`);
    await this.end(job.id, 'failed', `No install method succeeded (${reasons.join('; ') || 'no methods'}).`);
  }

  /**
   * Records a step of a running attempt. True when the chain stops here (still running, or
   * succeeded); false when the attempt failed and the next method should try.
   */
  private async apply(job: ChainJob, attempt: ChainAttempt, step: MethodStep): Promise<boolean> {
    switch (step.status) {
      case 'running':
        // Most timer events change nothing: no write (each is a durable commit).
        if (step.message === attempt.message && JSON.stringify(step.state) === JSON.stringify(attempt.state)) return true;
        await this.repo.saveAttempt(job.id, attempt.seq, step.state, step.message, this.now());
        await this.repo.setMessage(job.id, `${attempt.method}: ${step.message}`, this.now());
        return true;
      case 'succeeded':
        await this.repo.endAttempt(job.id, attempt.seq, 'succeeded', step.message, step.result ?? null, this.now());
        await this.end(job.id, 'succeeded', `Installed by ${attempt.method}: ${step.message}`);
        return true;
      case 'failed':
        await this.repo.endAttempt(job.id, attempt.seq, 'failed', step.message, step.result ?? null, this.now());
        return false;
    }
  }

  private async deliver(id: string, event: MethodEvent): Promise<void> {
    const job = await this.repo.get(id);
    if (!job || job.state !== 'running') {
      this.untrack(id);
      return;
    }
    const attempt = await this.running(id);
    if (!attempt) {
      // Between two methods when the previous process stopped: go on with the next one.
      await this.walk(job, await this.nextIndex(job));
      return;
    }
    const method = this.methods.get(attempt.method);
    const step: MethodStep = method
      ? await method.advance(this.context(job, attempt), event).catch((error: unknown): MethodStep => ({ status: 'failed', message: `method error: ${messageOf(error)}` }))
      : { status: 'failed', message: `this server does not know the method "${attempt.method}"` };
    if (!(await this.apply(job, attempt, step))) await this.walk(job, await this.nextIndex(job));
  }

  private track(id: string, endpoint: string): void {
    this.queues.set(id, { endpoint, tail: Promise.resolve() });
    const open = this.openByEndpoint.get(endpoint);
    if (open) open.add(id);
    else this.openByEndpoint.set(endpoint, new Set([id]));
  }

  private untrack(id: string): void {
    const q = this.queues.get(id);
    if (!q) return;
    this.queues.delete(id);
    const open = this.openByEndpoint.get(q.endpoint);
    open?.delete(id);
    if (open?.size === 0) this.openByEndpoint.delete(q.endpoint);
  }

  private resume(job: ChainJob): Promise<void> {
    return this.deliver(job.id, { kind: 'resumed' });
  }

  /** The chain position after the last attempt recorded (attempts follow the chain's order). */
  private async nextIndex(job: ChainJob): Promise<number> {
    return (await this.repo.attempts(job.id)).length;
  }

  private async end(id: string, state: 'succeeded' | 'failed' | 'cancelled', message: string): Promise<void> {
    await this.repo.finish(id, state, message, this.now());
    this.untrack(id);
  }
}
