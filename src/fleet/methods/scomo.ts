/**
 * The OMA DM SCOMO method: the install runs as a SCOMO job (src/omadm/scomo/service.ts), which
 * the device's own DM sessions drive and which survives restarts in the store. The attempt's
 * state is that job's id; every step, whatever event caused it (a DM or LwM2M contact, the
 * driver's timer, a restart), re-reads where the job stands, so the method needs no event of
 * its own.
 *
 * The chain's endpoint names the device: an OMA DM device's facts endpoint (`omadm:<DevId>`)
 * or its DevId.
 */
import type { JsonState } from '../domain.js';
import type { ScomoJob } from '../../store/sqlite/omadm-scomo.js';
import type { AttemptContext, InstallMethod, InstallTarget, MethodEvent, MethodStep } from './method.js';

export const SCOMO_METHOD = 'scomo';
/** SCOMO result 1401: User cancelled (the result codes of src/omadm/scomo). */
const USER_DECLINED = 1401;

/** What the method needs of the SCOMO service and the store (src/omadm/scomo/service.ts implements the first). */
export interface ScomoMethodOptions {
  readonly scomo: {
    create(request: { deviceId: string; operation: 'DownloadInstall' | 'DownloadInstallInactive'; packageSha256: string; askUser?: string }): Promise<ScomoJob>;
    get(id: string): Promise<ScomoJob | null>;
    list(deviceId: string): Promise<ScomoJob[]>;
    cancel(id: string): Promise<ScomoJob>;
  };
  readonly accounts: { get(deviceId: string): Promise<unknown> };
  /** Device facts: a DM device that has had a session has a facts row under omadm:<DevId>. */
  readonly deviceFacts: { get(endpoint: string): Promise<unknown> };
  /**
   * Trust first (docs/trust.md), given when the DM endpoint is HTTPS and Depot can send its root:
   * the method then fails with `needsTrust` (the chain sends the root and tries SCOMO once more)
   * when the signs say the device's DM client refuses Depot's TLS certificate:
   * - the device has a DM account but never opened a session, and its trust is not known
   *   (a bootstrapped phone whose first session never came: the TLS handshake failed);
   * - the inventory says the device does not hold Depot's root;
   * - a SCOMO job stayed `queued` (no session took it) for `noSessionMs` while the device's trust
   *   is not confirmed: the device is not getting through.
   */
  readonly trust?: {
    stateOf(endpoint: string): Promise<'yes' | 'pushed' | 'no' | 'unknown'>;
    /** Default 1 hour. */
    readonly noSessionMs?: number;
  };
  readonly now?: () => number;
}

/** SCOMO's results when the device's trust in Depot's root is the problem. */
export const SCOMO_NO_TRUST = 'NO_TRUST';
export const SCOMO_NO_SESSION = 'NO_SESSION';

/** The DevId behind a chain endpoint. */
export function dmDeviceIdOf(endpoint: string): string {
  return endpoint.startsWith('omadm:') ? endpoint.slice('omadm:'.length) : endpoint;
}

const jobIdOf = (state: JsonState): string | undefined =>
  state && typeof state === 'object' && !Array.isArray(state) && typeof state.scomoJobId === 'string' ? state.scomoJobId : undefined;

export class ScomoMethod implements InstallMethod {
  readonly name = SCOMO_METHOD;

  constructor(private readonly options: ScomoMethodOptions) {}

  async preflight(target: InstallTarget): Promise<string | undefined> {
    const deviceId = dmDeviceIdOf(target.endpoint);
    if (!(await this.options.accounts.get(deviceId))) return 'the device has no OMA DM account';
    // With trust first, a device that never got a session through is tried: begin says why it failed.
    if (!(await this.options.deviceFacts.get(`omadm:${deviceId}`)) && (!this.options.trust || (await this.options.trust.stateOf(target.endpoint)) === 'yes')) return 'the device has never opened an OMA DM session';
    // A device found without SCOMO stays without it: do not queue what cannot run.
    const noScomo = (await this.options.scomo.list(deviceId)).find((j) => j.resultName === 'NO_SCOMO');
    if (noScomo) return `the device has no SCOMO management object (found by SCOMO job ${noScomo.id})`;
    return undefined;
  }

  async begin(context: AttemptContext): Promise<MethodStep> {
    const { endpoint, packageSha256, activate } = context.target;
    const deviceId = dmDeviceIdOf(endpoint);
    if (this.options.trust) {
      const trust = await this.options.trust.stateOf(endpoint);
      const seen = (await this.options.deviceFacts.get(`omadm:${deviceId}`)) !== null;
      if (trust === 'no') return { status: 'failed', message: "the inventory says the device does not hold Depot's root certificate: its DM client refuses Depot's TLS certificate", result: SCOMO_NO_TRUST, needsTrust: true };
      if (!seen && trust === 'unknown') {
        return { status: 'failed', message: "the device has a DM account but never opened a DM session: over HTTPS that is a DM client refusing Depot's TLS certificate (root not installed)", result: SCOMO_NO_TRUST, needsTrust: true };
      }
    }
    // A job of the same package already open on the device (started by hand, or by this attempt before a restart): follow it.
    const open = (await this.options.scomo.list(deviceId)).find((j) => j.finishedAt === null && j.packageSha256 === packageSha256 && j.operation.startsWith('DownloadInstall'));
    let job: ScomoJob;
    try {
      job = open ?? (await this.options.scomo.create({ deviceId, operation: activate ? 'DownloadInstall' : 'DownloadInstallInactive', packageSha256 }));
    } catch (error) {
      return { status: 'failed', message: `SCOMO job not started: ${error instanceof Error ? error.message : String(error)}` };
    }
    return stepOf(job);
  }

  async advance(context: AttemptContext, _event: MethodEvent): Promise<MethodStep> {
    const id = jobIdOf(context.attempt.state);
    if (id === undefined) return this.begin(context);
    const job = await this.options.scomo.get(id);
    if (!job) return { status: 'failed', message: `SCOMO job ${id} no longer exists` };
    if (job.state === 'failed' && job.resultCode === USER_DECLINED && job.askUser === null) return this.askUser(context, job);
    const waited = (this.options.now ?? Date.now)() - job.createdAt;
    if (this.options.trust && job.state === 'queued' && waited >= (this.options.trust.noSessionMs ?? 3600_000)) {
      const trust = await this.options.trust.stateOf(context.target.endpoint);
      if (trust !== 'yes') {
        await this.options.scomo.cancel(id).catch(() => undefined);
        return { status: 'failed', message: `SCOMO job ${id}: no DM session came for ${Math.round(waited / 1000)} s and the device's trust in Depot's root is ${trust}: a DM client that refuses Depot's TLS certificate never gets its session through`, result: SCOMO_NO_SESSION, needsTrust: true };
      }
    }
    return stepOf(job);
  }

  /**
   * The phone refused with 1401 without having been asked: it installs only what its user
   * confirmed (a "needs confirmation" model). The install is sent again, this time with the
   * question (Alert 1101) before it; a 1401 then is the user's own no, and fails the attempt.
   * Idempotent: an open asking job of the same package (made before a restart) is followed.
   */
  private async askUser(context: AttemptContext, declined: ScomoJob): Promise<MethodStep> {
    const { packageSha256, activate } = context.target;
    const deviceId = dmDeviceIdOf(context.target.endpoint);
    const open = (await this.options.scomo.list(deviceId)).find((j) => j.finishedAt === null && j.packageSha256 === packageSha256 && j.askUser !== null && j.operation.startsWith('DownloadInstall'));
    const what = declined.packageName && declined.packageVersion ? `${declined.packageName} ${declined.packageVersion}` : 'the software update';
    try {
      const job = open ?? (await this.options.scomo.create({ deviceId, operation: activate ? 'DownloadInstall' : 'DownloadInstallInactive', packageSha256, askUser: `Install ${what}?`.slice(0, 200) }));
      const step = stepOf(job);
      return step.status === 'running' ? { ...step, message: `${step.message} (SCOMO job ${declined.id} was refused unasked, 1401: asking the user first)` } : step;
    } catch (error) {
      return { status: 'failed', message: `SCOMO job ${declined.id} refused (1401) and asking the user failed: ${error instanceof Error ? error.message : String(error)}`, result: declined.resultName ?? 'USER_CANCELLED' };
    }
  }

  async cancel(context: AttemptContext): Promise<void> {
    const id = jobIdOf(context.attempt.state);
    if (id === undefined) return;
    // Best effort: a job the device already has runs to its end there.
    await this.options.scomo.cancel(id).catch(() => undefined);
  }
}

function stepOf(job: ScomoJob): MethodStep {
  const message = `SCOMO job ${job.id}: ${job.message ?? job.state}`;
  const result = job.resultName ?? undefined;
  switch (job.state) {
    case 'succeeded':
      return { status: 'succeeded', message, ...(result ? { result } : {}) };
    case 'failed':
    case 'cancelled':
      return { status: 'failed', message: `SCOMO job ${job.id} ${job.state}: ${job.message ?? ''}`.trimEnd(), ...(result ? { result } : {}) };
    default:
      return { status: 'running', state: { scomoJobId: job.id }, message };
  }
}
