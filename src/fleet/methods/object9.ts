/**
 * The LwM2M Object 9 method: the install runs as an Object 9 job of the install driver
 * (../install-driver.ts), which follows the device (Observe, polling, queue-mode wake-ups),
 * resumes after a restart on its own, and falls back from pull to push on Invalid URI. The
 * attempt's state is that job's id; each step reads where the job stands. When the engine
 * announces job ends (onJobEnded), the method pushes a `completed` event to the chain, so the
 * chain does not poll.
 */
import type { Registration } from '../../store/types.js';
import { FleetError, type InstallJob, type JsonState } from '../domain.js';
import { preflightProblem, type InstallDriver, type JobView } from '../install-driver.js';
import type { AttemptContext, InstallMethod, InstallTarget, MethodEvent, MethodHost, MethodStep, RetryPolicy } from './method.js';

export const OBJECT9_METHOD = 'object9';

export interface Object9MethodOptions {
  /** The Object 9 job engine (onJobEnded optional: without it the chain's timer polls). */
  engine: Pick<InstallDriver, 'install' | 'view' | 'cancel' | 'listJobs'> & Partial<Pick<InstallDriver, 'onJobEnded'>>;
  registrations: { getByEndpoint(endpoint: string): Promise<Registration | null> };
  /** Retries of a job the engine ended with retry advice (e.g. a timeout while the device was away). Default: none. */
  retryPolicy?: RetryPolicy;
  /** Step timeout of the attempt, ms. Default: none (the engine's own phase timeouts end the job). */
  stepTimeoutMs?: number;
  /** The catalog, for the bytes delivered by a finished install (the package's size). */
  catalog?: { get(sha256: string): Promise<{ size: number } | null> };
}

const jobIdOf = (state: JsonState): string | undefined =>
  state && typeof state === 'object' && !Array.isArray(state) && typeof state.object9JobId === 'string' ? state.object9JobId : undefined;

export class Object9Method implements InstallMethod {
  readonly name = OBJECT9_METHOD;
  /** advance() without a job id finds the Object 9 job this attempt started (see there). */
  readonly stateRecoverable = true;
  readonly retryPolicy?: RetryPolicy;
  readonly stepTimeoutMs?: number;

  constructor(private readonly options: Object9MethodOptions) {
    if (options.retryPolicy) this.retryPolicy = options.retryPolicy;
    if (options.stepTimeoutMs !== undefined) this.stepTimeoutMs = options.stepTimeoutMs;
  }

  connect(host: MethodHost): void {
    this.options.engine.onJobEnded?.((job) => host.completed(refOfJob(job.id)));
  }

  refOf(state: JsonState): string | undefined {
    const id = jobIdOf(state);
    return id === undefined ? undefined : refOfJob(id);
  }

  async preflight(target: InstallTarget): Promise<string | undefined> {
    const registration = await this.options.registrations.getByEndpoint(target.endpoint);
    if (!registration) return 'the device is not registered over LwM2M';
    return preflightProblem(registration);
  }

  async begin(context: AttemptContext): Promise<MethodStep> {
    const { endpoint, packageSha256, activate } = context.target;
    let job: InstallJob;
    try {
      job = await this.options.engine.install(endpoint, packageSha256, { activate });
    } catch (error) {
      if (!(error instanceof FleetError)) throw error;
      // A job of the same package already open on the device (started by hand, or by this
      // attempt before a restart): follow it rather than race it for the instance.
      const open = error.code === 'CONFLICT' ? (await this.options.engine.listJobs(endpoint, { limit: 10 })).items.find((v) => v.job.finishedAt === null && v.job.packageSha256 === packageSha256) : undefined;
      if (!open) return { status: 'failed', message: `Object 9 job not started: ${error.message}` };
      job = open.job;
    }
    return this.withSize(stepOf(job, await this.options.engine.view(job.id)), job);
  }

  /** A delivery that happened (not "already installed") brought the whole package. */
  private async withSize(step: MethodStep, job: InstallJob): Promise<MethodStep> {
    if (step.status !== 'succeeded' || job.attempts === 0 || !this.options.catalog || job.packageSha256 === null) return step;
    const record = await this.options.catalog.get(job.packageSha256).catch(() => null);
    return record ? { ...step, bytes: record.size } : step;
  }

  async advance(context: AttemptContext, _event: MethodEvent): Promise<MethodStep> {
    const id = jobIdOf(context.attempt.state);
    if (!id) {
      // Stopped between recording the attempt and storing its job id: the job this attempt
      // started (same package, created since the attempt began) is followed, ended or not, so
      // a restart never installs twice; only when there is none is it started now.
      const mine = (await this.options.engine.listJobs(context.target.endpoint, { limit: 10 })).items.find(
        (v) => v.job.kind === 'install' && v.job.packageSha256 === context.target.packageSha256 && v.job.createdAt >= context.attempt.startedAt,
      );
      return mine ? this.withSize(stepOf(mine.job, mine), mine.job) : this.begin(context);
    }
    const view = await this.options.engine.view(id);
    if (!view) return { status: 'failed', message: `Object 9 job ${id} no longer exists` };
    return this.withSize(stepOf(view.job, view), view.job);
  }

  async cancel(context: AttemptContext): Promise<void> {
    const id = jobIdOf(context.attempt.state);
    if (!id) return;
    await this.options.engine.cancel(id).catch((error: unknown) => {
      // Already ended: nothing left to stop.
      if (!(error instanceof FleetError && error.code === 'CONFLICT')) throw error;
    });
  }
}

const refOfJob = (id: string): string => `object9:${id}`;

function stepOf(job: InstallJob, view: JobView | null): MethodStep {
  const message = job.message ?? job.state;
  const result = job.resultName ?? undefined;
  const served = view?.progress?.served;
  const bytes = served !== undefined ? { bytes: served } : {};
  switch (job.state) {
    case 'succeeded':
      return { status: 'succeeded', message: `Object 9 job ${job.id}: ${message}`, ...(result ? { result } : {}), ...bytes };
    case 'failed':
    case 'cancelled':
      return {
        status: 'failed',
        message: `Object 9 job ${job.id} ${job.state}: ${message}`,
        ...(result ? { result } : {}),
        ...bytes,
        ...(job.state === 'failed' && (job.retry === 'retry' || job.retry === 'retry-resume') ? { retryable: true } : {}),
      };
    default:
      return { status: 'running', state: { object9JobId: job.id }, message: `Object 9 job ${job.id}: ${message}`, ...bytes };
  }
}
