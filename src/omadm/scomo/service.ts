/**
 * SCOMO 1.0 (OMA-TS-DM-SCOMO-V1_0) on Depot's DM sessions: software component jobs on OMA DM
 * devices, durable in the store, driven by the device's sessions.
 *
 * A job's life (states in the store, docs/omadm.md "SCOMO"):
 *
 *   queued ─session─▶ taken ─reply with the Exec written─▶ sent ─Exec Status 202─▶ executing
 *     executing ─Generic Alert 1226 (Correlator) 12xx─▶ verifying ─Deployed/<id>/State read─▶ succeeded
 *     any open state ─failure Status / failure result─▶ failed      queued|taken ─operator─▶ cancelled
 *
 * - taken: a session holds the job; nothing that changes the device has gone out. A session that
 *   ends, or a server that dies, leaves it taken: the next session starts it again.
 * - sent: written before the reply carrying the Exec leaves (the job-sent effect), so a restart
 *   never sends the Exec blind: the next session first asks the device whether it has the
 *   Download node (a probe Get). 404: the device never got it, and only then it goes again.
 *   Otherwise the job waits for the device's Generic Alert: the operation runs at most once.
 * - The Generic Alert is matched by Correlator (DM Protocol "Generic Alert", SCOMO "Alert"),
 *   only to a job of the device that sent it; repeated alerts (a device that did not hear the
 *   Status) change nothing.
 *
 * PkgURL is a one-time HTTPS URL on Depot's DM endpoint (`/pkg/<token>`, Range for resuming),
 * valid while the job is open and before the token expires.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Item } from '../syncml.js';
import type { JobResult, ServerJob, SessionEffect } from '../session.js';
import { describeStatus } from '../status-codes.js';
import { AlertCode } from '../status-codes.js';
import { isScomoSuccess, scomoResultAdvice } from './results.js';
import type { ScomoJob, ScomoJobPatch, ScomoJobState, ScomoOperation, SqliteScomoJobRepository } from '../../store/sqlite/omadm-scomo.js';

/** SCOMO's management object identifier (the root node's Type). */
export const SCOMO_MO_ID = 'urn:oma:mo:oma-scomo:1.0';
/** Generic Alert types of SCOMO results: 1.0's and the urn form of later versions. */
export const SCOMO_ALERT_TYPE_PREFIXES = ['org.openmobilealliance.softwarecomponent.', 'urn:oma:at:scomo:1.0:'] as const;
export const SCOMO_DEFAULT_ROOT = './SCOMO';

const DOWNLOAD_OPERATIONS: readonly ScomoOperation[] = ['Download', 'DownloadInstall', 'DownloadInstallInactive'];
const DELIVERED_OPERATIONS: readonly ScomoOperation[] = ['Install', 'InstallInactive'];
const OPEN: readonly ScomoJobState[] = ['queued', 'taken', 'sent', 'executing', 'verifying'];

export class ScomoError extends Error {
  constructor(readonly code: 'NOT_FOUND' | 'INVALID_ARGUMENT' | 'CONFLICT', message: string) {
    super(message);
    this.name = 'ScomoError';
  }
}

export interface ScomoServiceOptions {
  readonly jobs: Pick<SqliteScomoJobRepository, 'create' | 'get' | 'openFor' | 'byCorrelator' | 'byToken' | 'listByDevice' | 'transition'>;
  readonly catalog: {
    get(sha256: string): Promise<{ sha256: string; name: string; version: string; size: number } | null>;
    pathOf(sha256: string): string;
  };
  /** Whether a DM account exists for the device (a job for a stranger is refused). */
  readonly accounts: { get(deviceId: string): Promise<unknown> };
  /** The public base of the DM endpoint ("https://host:port"); PkgURL is <base>/pkg/<token>. */
  readonly downloadBase: () => string | undefined;
  readonly now?: () => number;
  readonly log?: (line: string) => void;
  /** How long a download link works (default 7 days). */
  readonly tokenTtlMs?: number;
  /** How long a job waits for the device's result once the device has the operation (default 3 days): then it fails NO_RESULT. */
  readonly resultTimeoutMs?: number;
}

export interface ScomoJobRequest {
  readonly deviceId: string;
  readonly operation: ScomoOperation;
  /** The package (download operations). */
  readonly packageSha256?: string;
  /** The component's node under Inventory/Delivered or Inventory/Deployed (the other operations). */
  readonly component?: string;
  /** Ask the phone's user first (Alert 1101 with this text); the job fails as USER_CANCELLED if they decline. */
  readonly askUser?: string;
}

type Step = 'discover' | 'list' | 'install' | 'probe' | 'verify';

function jobIdOf(serverJobId: string): { id: string; step: Step } | undefined {
  const m = /^scomo:([^:]+):(discover|list|install|probe|verify)$/.exec(serverJobId);
  return m ? { id: m[1]!, step: m[2] as Step } : undefined;
}

const is2xx = (code: number | null | undefined): boolean => code !== null && code !== undefined && code >= 200 && code < 300;

/** The SCOMO root among the node URIs a `?list=Struct` Get returned: the shortest ending in /SCOMO. */
export function scomoRootIn(items: readonly Item[]): string | undefined {
  // Device strings: a plain node path (no query, no "..", bounded) or nothing.
  const uris = items.map((i) => i.source?.locUri ?? i.target?.locUri).filter((u): u is string => typeof u === 'string' && u.length <= 200 && /^\.(\/[A-Za-z0-9._-]+)*\/SCOMO$/.test(u) && !u.includes('/../'));
  return uris.sort((a, b) => a.length - b.length)[0];
}

/** A Generic Alert's SCOMO result: the code in Data (a number, or <ResultCode>n</ResultCode>), the component from <Identifier> or the Source URI. */
export function parseScomoAlert(item: Item): { code: number; identifier?: string } | undefined {
  const data = typeof item.data === 'string' ? item.data : item.data === undefined ? '' : Buffer.from(item.data).toString('utf8');
  const m = /<ResultCode>\s*(\d{1,5})\s*<\/ResultCode>/.exec(data) ?? /^\s*(\d{1,5})\s*$/.exec(data);
  if (!m) return undefined;
  const ident = /<Identifier>\s*([A-Za-z0-9._-]{1,64})\s*<\/Identifier>/.exec(data)?.[1] ?? /\/Inventory\/(?:Deployed|Delivered)\/([A-Za-z0-9._-]{1,64})$/.exec(item.source?.locUri ?? '')?.[1];
  // A node name, nothing else: it goes into the URI Depot reads the Deployed inventory at.
  return { code: Number(m[1]), ...(ident === undefined || ident === '.' || ident === '..' ? {} : { identifier: ident }) };
}

export class ScomoService {
  private readonly now: () => number;
  private readonly log: (line: string) => void;

  constructor(private readonly options: ScomoServiceOptions) {
    this.now = options.now ?? Date.now;
    this.log = options.log ?? (() => {});
  }

  /** Queues a SCOMO operation for the device's next session. */
  async create(request: ScomoJobRequest): Promise<ScomoJob> {
    if (!(await this.options.accounts.get(request.deviceId))) throw new ScomoError('NOT_FOUND', `no OMA DM account for device "${request.deviceId}": a SCOMO job needs the device to open DM sessions`);
    const id = randomUUID();
    const download = DOWNLOAD_OPERATIONS.includes(request.operation);
    let pkg: { sha256: string; name: string; version: string } | undefined;
    if (download) {
      if (request.packageSha256 === undefined) throw new ScomoError('INVALID_ARGUMENT', `${request.operation} needs a package (packageSha256)`);
      pkg = (await this.options.catalog.get(request.packageSha256)) ?? undefined;
      if (!pkg) throw new ScomoError('NOT_FOUND', `no package ${request.packageSha256} in the catalog`);
      if (this.options.downloadBase() === undefined) throw new ScomoError('CONFLICT', 'the OMA DM endpoint is not serving: no download link can be made');
    } else if (request.component === undefined || !/^[A-Za-z0-9._-]{1,64}$/.test(request.component)) {
      throw new ScomoError('INVALID_ARGUMENT', `${request.operation} needs the component's node name (component: 1-64 letters, digits, ".", "_" or "-")`);
    }
    if (request.askUser !== undefined && (request.askUser.length === 0 || request.askUser.length > 200 || /\p{Cc}/u.test(request.askUser))) {
      throw new ScomoError('INVALID_ARGUMENT', 'askUser is 1-200 printable characters');
    }
    const now = this.now();
    return this.options.jobs.create({
      id, deviceId: request.deviceId, operation: request.operation,
      ...(pkg ? { packageSha256: pkg.sha256, packageName: pkg.name, packageVersion: pkg.version } : {}),
      node: download ? `depot-${id.slice(0, 8)}` : request.component!,
      ...(request.askUser === undefined ? {} : { askUser: request.askUser }),
      correlator: `depot-${randomBytes(12).toString('base64url')}`,
      ...(download ? { token: randomBytes(16).toString('base64url'), tokenExpiresAt: now + (this.options.tokenTtlMs ?? 7 * 86_400_000) } : {}),
    }, now);
  }

  async get(id: string): Promise<ScomoJob | null> {
    const job = await this.options.jobs.get(id);
    return job === null ? null : this.expired(job);
  }

  /** A job waiting for a result past the deadline fails: the device never reported (checked whenever the job is read). */
  private async expired(job: ScomoJob): Promise<ScomoJob> {
    const limit = this.options.resultTimeoutMs ?? 3 * 86_400_000;
    if (job.state !== 'executing' && job.state !== 'sent') return job;
    if (this.now() - job.updatedAt < limit) return job;
    const span = limit >= 3_600_000 ? `${Math.round(limit / 3_600_000)} h` : `${Math.max(1, Math.round(limit / 60_000))} min`;
    return (await this.options.jobs.transition(job.id, ['executing', 'sent'], {
      state: 'failed', resultName: 'NO_RESULT',
      message: `the device reported no result within ${span} of getting the operation: look at the device (it may still be installing, or it lost the operation), then retry`,
      retry: 'retry',
    }, this.now())) ?? job;
  }

  list(deviceId: string): Promise<ScomoJob[]> {
    return this.options.jobs.listByDevice(deviceId);
  }

  /** Stops a job that has not reached the device; one already sent runs to its end on the device. */
  async cancel(id: string): Promise<ScomoJob> {
    const done = await this.options.jobs.transition(id, ['queued', 'taken'], { state: 'cancelled', message: 'cancelled by the operator before it reached the device' }, this.now());
    if (done) return done;
    const job = await this.options.jobs.get(id);
    if (!job) throw new ScomoError('NOT_FOUND', `no SCOMO job ${id}`);
    throw new ScomoError('CONFLICT', `SCOMO job ${id} is ${job.state}: ${job.finishedAt === null ? 'the device already has the operation, it cannot be called back' : 'it has ended'}`);
  }

  /** The package file behind a download token, while its job is open and the token unexpired. */
  async resolveDownload(token: string): Promise<{ jobId: string; path: string; size: number } | undefined> {
    if (!/^[A-Za-z0-9_-]{22}$/.test(token)) return undefined;
    const job = await this.options.jobs.byToken(token);
    if (!job || job.packageSha256 === null || job.tokenExpiresAt === null || job.tokenExpiresAt <= this.now()) return undefined;
    if (!['taken', 'sent', 'executing'].includes(job.state)) return undefined;
    const pkg = await this.options.catalog.get(job.packageSha256);
    if (!pkg) return undefined;
    return { jobId: job.id, path: this.options.catalog.pathOf(pkg.sha256), size: pkg.size };
  }

  /** Bytes of a job's package sent (kept as the job's download progress). */
  async served(jobId: string, end: number): Promise<void> {
    await this.options.jobs.transition(jobId, OPEN, { downloadBytes: end }, this.now());
  }

  // ------------------------------------------------------------ the session hooks

  /** What the device's session should run for its SCOMO jobs (called once it has authenticated). */
  async jobsFor(deviceId: string): Promise<ServerJob[]> {
    const out: ServerJob[] = [];
    for (const stored of await this.options.jobs.openFor(deviceId)) {
      const job = await this.expired(stored);
      if (job.state === 'queued' || job.state === 'taken') {
        const taken = await this.options.jobs.transition(job.id, ['queued', 'taken'], { state: 'taken' }, this.now());
        if (taken) out.push(this.start(taken));
      } else if (job.state === 'sent') {
        out.push(this.probe(job));
      } else if (job.state === 'verifying') {
        out.push(this.verify(job));
      }
    }
    return out;
  }

  async onEffect(effect: SessionEffect): Promise<void> {
    if (effect.kind === 'generic-alert') {
      await this.onAlert(effect.deviceId, effect.correlator, effect.items);
      return;
    }
    if (effect.kind !== 'job-sent' && effect.kind !== 'job-result') return;
    const ref = jobIdOf(effect.jobId);
    if (!ref) return;
    const now = this.now();
    const move = (from: readonly ScomoJobState[], patch: ScomoJobPatch) => this.options.jobs.transition(ref.id, from, patch, now);
    if (effect.kind === 'job-sent') {
      // Written before the reply leaves: from here on the Exec may have reached the device.
      if (ref.step === 'install') await move(['taken'], { state: 'sent', sendsIncrement: true, message: 'sent to the device' });
      return;
    }
    const job = await this.options.jobs.get(ref.id);
    if (!job || job.deviceId !== effect.deviceId) return;
    const result: JobResult = { code: effect.code, items: effect.items, ...(effect.children === undefined ? {} : { children: effect.children }) };
    switch (ref.step) {
      case 'discover':
        if (is2xx(result.code)) await move(['taken'], { root: SCOMO_DEFAULT_ROOT });
        return;
      case 'list': {
        if (result.code === null) return;
        const root = is2xx(result.code) ? scomoRootIn(result.items) : undefined;
        if (root !== undefined) await move(['taken'], { root });
        else await move(['taken'], { state: 'failed', resultName: 'NO_SCOMO', message: `the device has no SCOMO management object (no ${SCOMO_DEFAULT_ROOT}, none in its tree): use another install method for this model`, retry: 'no-retry' });
        return;
      }
      case 'install':
        await this.onInstallResult(job, result, move);
        return;
      case 'probe':
        if (result.code === 404 && DOWNLOAD_OPERATIONS.includes(job.operation)) await move(['sent'], { state: 'taken', message: 'the device never got the operation: sending it again' });
        else if (result.code === 404 && job.operation === 'Remove') await move(['sent'], { state: 'succeeded', message: `${job.node} is no longer in the device's inventory` });
        else if (result.code === 404) await move(['sent'], { state: 'failed', resultName: 'NO_COMPONENT', message: `the device has no component ${job.node} in its inventory`, retry: 'no-retry' });
        else if (is2xx(result.code)) await move(['sent'], { state: 'executing', message: 'the device has the operation: waiting for its result' });
        return;
      case 'verify': {
        if (result.code === null) return;
        const state = typeof result.items[0]?.data === 'string' ? (result.items[0].data).slice(0, 32) : undefined;
        if (is2xx(result.code)) await move(['verifying'], { state: 'succeeded', ...(state === undefined ? {} : { componentState: state }), message: `deployed on the device as ${job.identifier ?? '?'}${state === undefined ? '' : ` (${state})`}` });
        else await move(['verifying'], { state: 'failed', resultName: 'NOT_DEPLOYED', message: `the device reported success, but its Deployed inventory has no ${job.identifier ?? 'component'} (${describeStatus(result.code)}); look at the device`, retry: 'retry' });
        return;
      }
    }
  }

  private async onInstallResult(job: ScomoJob, result: JobResult, move: (from: readonly ScomoJobState[], patch: ScomoJobPatch) => Promise<ScomoJob | null>): Promise<void> {
    const children = result.children ?? [];
    const layout = this.layout(job);
    const codeOf = (part: 'alert' | 'add' | 'exec'): number | null | undefined => {
      const i = layout.indexOf(part);
      return i < 0 ? undefined : children[i];
    };
    const from: ScomoJobState[] = ['sent', 'taken'];
    const alert = codeOf('alert');
    if (alert !== undefined && alert !== null && !is2xx(alert)) {
      const advice = scomoResultAdvice(1401);
      await move(from, { state: 'failed', resultCode: 1401, resultName: advice.name, message: `${advice.message} (Alert 1101 answered ${alert}: ${describeStatus(alert)})`, retry: advice.retry });
      return;
    }
    const add = codeOf('add');
    if (add !== undefined && add !== null && !is2xx(add)) {
      const hint = add === 404 || add === 405 ? 'its SCOMO tree does not take new downloads there' : add === 418 ? 'a download node of that name already exists' : describeStatus(add);
      await move(from, { state: 'failed', resultName: 'DOWNLOAD_NODE_REFUSED', message: `the device refused to create the download node (${add}: ${hint})`, retry: add === 418 ? 'retry' : 'no-retry' });
      return;
    }
    const exec = codeOf('exec');
    if (exec === null || exec === undefined) {
      if (result.code !== null && !is2xx(result.code)) {
        await move(from, { state: 'failed', resultName: 'SEQUENCE_REFUSED', message: `the device refused the operation (${result.code}: ${describeStatus(result.code)})`, retry: 'retry' });
      }
      // No answer: the outcome is unknown; the job stays sent and the next session asks the device.
      return;
    }
    if (exec === 202) {
      await move(from, { state: 'executing', message: 'the device accepted the operation: waiting for its result (Generic Alert)' });
    } else if (exec === 200) {
      await move(from, { state: 'succeeded', resultCode: 1200, resultName: 'SUCCESSFUL', message: `the device completed ${job.operation} at once` });
    } else {
      const notThere = exec === 404 || exec === 405 || exec === 406;
      await move(from, {
        state: 'failed', resultName: 'EXEC_REFUSED',
        message: `the device refused to run ${job.operation} (${exec}: ${describeStatus(exec)})${notThere ? ': it does not support this SCOMO operation' : ''}`,
        retry: notThere ? 'no-retry' : 'retry',
      });
    }
  }

  private async onAlert(deviceId: string, correlator: string | undefined, items: readonly Item[]): Promise<void> {
    const item = items.find((i) => SCOMO_ALERT_TYPE_PREFIXES.some((p) => i.meta?.type?.startsWith(p) === true));
    if (item === undefined) return;
    if (correlator === undefined) {
      this.log(`omadm scomo: ${JSON.stringify(deviceId.slice(0, 64))} sent a SCOMO alert without a Correlator; ignored`);
      return;
    }
    const job = await this.options.jobs.byCorrelator(correlator.slice(0, 64));
    if (!job || job.deviceId !== deviceId) {
      this.log(`omadm scomo: ${JSON.stringify(deviceId.slice(0, 64))} sent a SCOMO alert for an unknown correlator; ignored`);
      return;
    }
    const parsed = parseScomoAlert(item);
    if (!parsed) {
      this.log(`omadm scomo: job ${job.id}: the device's alert carries no result code; ignored`);
      return;
    }
    if (job.finishedAt !== null || job.state === 'verifying') return; // a repeat: the first one counted
    const advice = scomoResultAdvice(parsed.code);
    const from: ScomoJobState[] = ['taken', 'sent', 'executing'];
    const now = this.now();
    if (isScomoSuccess(parsed.code)) {
      const installs = job.operation !== 'Download' && (DOWNLOAD_OPERATIONS.includes(job.operation) || DELIVERED_OPERATIONS.includes(job.operation));
      const identifier = parsed.identifier ?? (DOWNLOAD_OPERATIONS.includes(job.operation) ? undefined : job.node);
      if (installs && identifier !== undefined && job.root !== null) {
        await this.options.jobs.transition(job.id, from, { state: 'verifying', resultCode: parsed.code, resultName: advice.name, identifier, message: 'the device reports success: reading its Deployed inventory' }, now);
      } else {
        const what = job.operation === 'Download' ? `delivered${identifier === undefined ? '' : ` as ${identifier}`}` : `${job.operation} done`;
        await this.options.jobs.transition(job.id, from, { state: 'succeeded', resultCode: parsed.code, resultName: advice.name, ...(identifier === undefined ? {} : { identifier }), message: `${advice.message} (${what})` }, now);
      }
    } else {
      await this.options.jobs.transition(job.id, from, { state: 'failed', resultCode: parsed.code, resultName: advice.name, message: advice.message, retry: advice.retry }, now);
    }
  }

  // ------------------------------------------------------------ the commands

  /** Which commands the install Sequence holds, in order. */
  private layout(job: ScomoJob): ('alert' | 'add' | 'exec')[] {
    return [...(job.askUser !== null ? ['alert' as const] : []), ...(DOWNLOAD_OPERATIONS.includes(job.operation) ? ['add' as const] : []), 'exec'];
  }

  private start(job: ScomoJob): ServerJob {
    if (job.root !== null) return this.install(job, job.root);
    // Find the SCOMO root: ./SCOMO, else where the device's tree structure shows one (DM 1.2 Get ?list=Struct).
    const list: ServerJob = { id: `scomo:${job.id}:list`, kind: 'Get', uri: '.?list=Struct', then: (r) => {
      const root = is2xx(r.code) ? scomoRootIn(r.items) : undefined;
      return root === undefined ? [] : [this.install(job, root)];
    } };
    return { id: `scomo:${job.id}:discover`, kind: 'Get', uri: SCOMO_DEFAULT_ROOT, then: (r) => (is2xx(r.code) ? [this.install(job, SCOMO_DEFAULT_ROOT)] : r.code === 404 ? [list] : []) };
  }

  /** One Sequence (RepPro <Sequence>: in order, stopping at a failure): ask the user, create the download node, run the operation. */
  private install(job: ScomoJob, root: string): ServerJob {
    const children: ServerJob[] = [];
    if (job.askUser !== null) {
      // Protocol "User Interaction Commands": Alert 1101, first Item the options (MINDT: seconds shown), second the text.
      children.push({ id: `scomo:${job.id}:ask`, kind: 'Alert', uri: '', alertCode: AlertCode.ContinueOrAbort, items: [{ data: 'MINDT=60' }, { data: job.askUser }] });
    }
    let target: string;
    if (DOWNLOAD_OPERATIONS.includes(job.operation)) {
      const node = `${root}/Download/${job.node}`;
      const base = this.options.downloadBase() ?? '';
      children.push({
        id: `scomo:${job.id}:add`, kind: 'Add', uri: node,
        items: [
          { target: { locUri: node }, meta: { format: 'node' } },
          { target: { locUri: `${node}/PkgID` }, meta: { format: 'chr' }, data: `${job.packageName ?? 'package'}-${job.packageVersion ?? ''}`.slice(0, 64) },
          { target: { locUri: `${node}/Name` }, meta: { format: 'chr' }, data: (job.packageName ?? 'package').slice(0, 64) },
          { target: { locUri: `${node}/PkgURL` }, meta: { format: 'chr' }, data: `${base}/pkg/${job.token ?? ''}` },
        ],
      });
      target = `${node}/Operations/${job.operation}`;
    } else if (DELIVERED_OPERATIONS.includes(job.operation)) {
      target = `${root}/Inventory/Delivered/${job.node}/Operations/${job.operation}`;
    } else {
      target = `${root}/Inventory/Deployed/${job.node}/Operations/${job.operation}`;
    }
    children.push({ id: `scomo:${job.id}:exec`, kind: 'Exec', uri: target, correlator: job.correlator });
    return { id: `scomo:${job.id}:install`, kind: 'Sequence', uri: '', children };
  }

  /** After an unknown outcome: does the device have the operation? (A Download node it never got is 404.) */
  private probe(job: ScomoJob): ServerJob {
    const root = job.root ?? SCOMO_DEFAULT_ROOT;
    const uri = DOWNLOAD_OPERATIONS.includes(job.operation) ? `${root}/Download/${job.node}/PkgID` : DELIVERED_OPERATIONS.includes(job.operation) ? `${root}/Inventory/Delivered/${job.node}` : `${root}/Inventory/Deployed/${job.node}`;
    return { id: `scomo:${job.id}:probe`, kind: 'Get', uri, then: (r) => (r.code === 404 && DOWNLOAD_OPERATIONS.includes(job.operation) ? [this.install({ ...job, state: 'taken' }, root)] : []) };
  }

  private verify(job: ScomoJob): ServerJob {
    return { id: `scomo:${job.id}:verify`, kind: 'Get', uri: `${job.root ?? SCOMO_DEFAULT_ROOT}/Inventory/Deployed/${job.identifier ?? job.node}/State` };
  }
}
