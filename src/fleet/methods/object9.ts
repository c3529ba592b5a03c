/**
 * The LwM2M Object 9 method: the install runs as an Object 9 job of the install driver
 * (../install-driver.ts), which follows the device (Observe, polling, queue-mode wake-ups),
 * resumes after a restart on its own, and falls back from pull to push on Invalid URI. The
 * attempt's state is that job's id; each step reads where the job stands.
 */
import type { Registration } from '../../store/types.js';
import type { InstallJob } from '../domain.js';
import { InstallDriverError, preflightProblem, type InstallDriver } from '../install-driver.js';
import type { AttemptContext, InstallMethod, InstallTarget, MethodEvent, MethodStep } from './method.js';

export const OBJECT9_METHOD = 'object9';

export interface Object9MethodOptions {
  /** The Object 9 job engine. */
  engine: Pick<InstallDriver, 'install' | 'view' | 'cancel' | 'listJobs'>;
  registrations: { getByEndpoint(endpoint: string): Promise<Registration | null> };
}

const jobIdOf = (context: AttemptContext): string | undefined => {
  const state = context.attempt.state;
  return state && typeof state === 'object' && !Array.isArray(state) && typeof state.object9JobId === 'string' ? state.object9JobId : undefined;
};

export class Object9Method implements InstallMethod {
  readonly name = OBJECT9_METHOD;

  constructor(private readonly options: Object9MethodOptions) {}

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
      if (!(error instanceof InstallDriverError)) throw error;
      // A job of the same package already open on the device (started by hand, or by this
      // attempt before a restart): follow it rather than race it for the instance.
      const open = error.code === 'CONFLICT' ? (await this.options.engine.listJobs(endpoint, { limit: 10 })).items.find((v) => v.job.finishedAt === null && v.job.packageSha256 === packageSha256) : undefined;
      if (!open) return { status: 'failed', message: `Object 9 job not started: ${error.message}` };
      job = open.job;
    }
    return stepOf(job);
  }

  async advance(context: AttemptContext, _event: MethodEvent): Promise<MethodStep> {
    const id = jobIdOf(context);
    // Stopped between recording the attempt and starting the job: start it now.
    if (!id) return this.begin(context);
    const view = await this.options.engine.view(id);
    if (!view) return { status: 'failed', message: `Object 9 job ${id} no longer exists` };
    return stepOf(view.job);
  }

  async cancel(context: AttemptContext): Promise<void> {
    const id = jobIdOf(context);
    if (!id) return;
    await this.options.engine.cancel(id).catch((error: unknown) => {
      // Already ended: nothing left to stop.
      if (!(error instanceof InstallDriverError && error.code === 'CONFLICT')) throw error;
    });
  }
}

function stepOf(job: InstallJob): MethodStep {
  const message = job.message ?? job.state;
  const result = job.resultName ?? undefined;
  switch (job.state) {
    case 'succeeded':
      return { status: 'succeeded', message: `Object 9 job ${job.id}: ${message}`, ...(result ? { result } : {}) };
    case 'failed':
    case 'cancelled':
      return { status: 'failed', message: `Object 9 job ${job.id} ${job.state}: ${message}`, ...(result ? { result } : {}) };
    default:
      return { status: 'running', state: { object9JobId: job.id }, message: `Object 9 job ${job.id}: ${message}` };
  }
}
