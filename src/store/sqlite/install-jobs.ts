import { StoreError } from '../errors.js';
import {
  FINAL_INSTALL_JOB_STATES,
  INSTALL_JOB_KINDS,
  INSTALL_JOB_TRANSITIONS,
  type InstallJob,
  type InstallJobPatch,
  type InstallJobRepository,
  type InstallJobState,
  type InstallRetry,
  type InstallTransition,
  type NewInstallJob,
} from '../../fleet/domain.js';
import type { Page, PageRequest, TimeInput } from '../types.js';
import { type Statements, createdAtCursor, createdAtKey, invalid, limitOf, optionalInt, pageOf, requireText, run, toMs } from './common.js';

interface Row {
  id: string;
  kind: InstallJob['kind'];
  endpoint: string;
  package_sha256: string | null;
  instance_id: number | null;
  method: 'pull' | 'push';
  method_auto: number;
  activate: number;
  state: InstallJobState;
  attempts: number;
  download_token: string | null;
  token_expires_at: number | null;
  last_update_state: number | null;
  last_update_result: number | null;
  result_name: string | null;
  retry: InstallRetry | null;
  message: string | null;
  created_at: number;
  updated_at: number;
  phase_started_at: number;
  finished_at: number | null;
}

interface TransitionRow {
  seq: number;
  job_id: string;
  at: number;
  from_state: InstallJobState | null;
  to_state: InstallJobState;
  detail: string | null;
}

const COLUMNS =
  'id, kind, endpoint, package_sha256, instance_id, method, method_auto, activate, state, attempts, download_token, token_expires_at, last_update_state, last_update_result, result_name, retry, message, created_at, updated_at, phase_started_at, finished_at';

const PATCH_COLUMNS: Record<keyof InstallJobPatch, string> = {
  instanceId: 'instance_id',
  method: 'method',
  attempts: 'attempts',
  downloadToken: 'download_token',
  tokenExpiresAt: 'token_expires_at',
  lastUpdateState: 'last_update_state',
  lastUpdateResult: 'last_update_result',
  resultName: 'result_name',
  retry: 'retry',
  message: 'message',
};

const SQL = {
  insert: `INSERT INTO install_jobs (${COLUMNS}) VALUES (@id, @kind, @endpoint, @packageSha256, @instanceId, @method, @methodAuto, @activate, 'queued', 0,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, @now, @now, @now, NULL)`,
  get: `SELECT ${COLUMNS} FROM install_jobs WHERE id = ?`,
  byToken: `SELECT ${COLUMNS} FROM install_jobs WHERE download_token = ?`,
  open: `SELECT ${COLUMNS} FROM install_jobs WHERE state NOT IN ('succeeded', 'failed', 'cancelled') ORDER BY created_at, id`,
  byEndpoint: `SELECT ${COLUMNS} FROM install_jobs WHERE endpoint = @endpoint AND (created_at < @at OR (created_at = @at AND id > @id))
    ORDER BY created_at DESC, id LIMIT @limit`,
  setState: 'UPDATE install_jobs SET state = @state, updated_at = @now, phase_started_at = @phase, finished_at = @finished WHERE id = @id',
  addTransition: 'INSERT INTO install_transitions (job_id, at, from_state, to_state, detail) VALUES (@jobId, @at, @from, @to, @detail)',
  transitions: 'SELECT seq, job_id, at, from_state, to_state, detail FROM install_transitions WHERE job_id = ? ORDER BY seq',
} as const;

function fromRow(r: Row): InstallJob {
  return {
    id: r.id,
    kind: r.kind,
    endpoint: r.endpoint,
    packageSha256: r.package_sha256,
    instanceId: r.instance_id,
    method: r.method,
    methodAuto: r.method_auto === 1,
    activate: r.activate === 1,
    state: r.state,
    attempts: r.attempts,
    downloadToken: r.download_token,
    tokenExpiresAt: r.token_expires_at,
    lastUpdateState: r.last_update_state,
    lastUpdateResult: r.last_update_result,
    resultName: r.result_name,
    retry: r.retry,
    message: r.message,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    phaseStartedAt: r.phase_started_at,
    finishedAt: r.finished_at,
  };
}

/** Install jobs of the Object 9 driver and their transition log. */
export class SqliteInstallJobRepository implements InstallJobRepository {
  constructor(private readonly s: Statements) {}

  create(job: NewInstallJob, now: TimeInput): Promise<InstallJob> {
    return run('create install job', () =>
      this.s.transaction(() => {
        if (!(INSTALL_JOB_KINDS as readonly string[]).includes(job.kind)) throw invalid(`unknown job kind ${String(job.kind)}`);
        if (job.method !== 'pull' && job.method !== 'push') throw invalid('method must be pull or push');
        const at = toMs(now, 'now');
        this.s.get(SQL.insert).run({
          id: requireText(job.id, 'id'),
          kind: job.kind,
          endpoint: requireText(job.endpoint, 'endpoint'),
          packageSha256: job.packageSha256,
          instanceId: optionalInt(job.instanceId, 'instanceId', 0, 65534),
          method: job.method,
          methodAuto: job.methodAuto ? 1 : 0,
          activate: job.activate ? 1 : 0,
          now: at,
        });
        this.s.get(SQL.addTransition).run({ jobId: job.id, at, from: null, to: 'queued', detail: `${job.kind} job created` });
        return fromRow(this.s.get(SQL.get).get(job.id) as Row);
      }),
    );
  }

  get(id: string): Promise<InstallJob | null> {
    return run('get install job', () => {
      const row = this.s.get(SQL.get).get(id) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  getByToken(token: string): Promise<InstallJob | null> {
    return run('find install job by token', () => {
      const row = this.s.get(SQL.byToken).get(token) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  listOpen(): Promise<InstallJob[]> {
    return run('list open install jobs', () => (this.s.get(SQL.open).all() as Row[]).map(fromRow));
  }

  listByEndpoint(endpoint: string, page?: PageRequest): Promise<Page<InstallJob>> {
    return run('list install jobs', () => {
      const limit = limitOf(page);
      // Same created_at: ids ascending.
      const { at, id } = createdAtCursor(page?.after, '');
      const rows = this.s.get(SQL.byEndpoint).all({ endpoint, at, id, limit: limit + 1 }) as Row[];
      return pageOf(rows, limit, fromRow, createdAtKey);
    });
  }

  /**
   * Progress (updates and transitions) is committed as soft state (synchronous=NORMAL: kept
   * through a crash of the process; the last ones may be lost on power loss): the driver decides
   * every step from a fresh read of the device, so a job set back a few steps re-derives them,
   * and an fsync per step (~3 ms blocking the event loop) would dominate installs at fleet
   * scale. Creating a job and cancelling one are the operator's acts: durable.
   */
  update(id: string, patch: InstallJobPatch, now: TimeInput): Promise<InstallJob> {
    return run('update install job', () => this.s.transaction(() => this.applyPatch(id, patch, toMs(now, 'now')), 'soft'));
  }

  transition(id: string, to: InstallJobState, detail: string | null, patch: InstallJobPatch, now: TimeInput): Promise<InstallJob> {
    return run('change install job state', () =>
      this.s.transaction(() => {
        const at = toMs(now, 'now');
        const current = this.s.get(SQL.get).get(id) as Row | undefined;
        if (!current) throw new StoreError('NOT_FOUND', `install job ${id} does not exist`);
        if (!INSTALL_JOB_TRANSITIONS[current.state].includes(to)) {
          throw new StoreError('INVALID_TRANSITION', `install job ${id} cannot go from ${current.state} to ${to}`);
        }
        const final = FINAL_INSTALL_JOB_STATES.includes(to);
        this.s.get(SQL.setState).run({ id, state: to, now: at, phase: at, finished: final ? at : null });
        this.s.get(SQL.addTransition).run({ jobId: id, at, from: current.state, to, detail });
        return this.applyPatch(id, patch, at);
      }, to === 'cancelled' ? 'durable' : 'soft'),
    );
  }

  transitions(id: string): Promise<InstallTransition[]> {
    return run('list install transitions', () =>
      (this.s.get(SQL.transitions).all(id) as TransitionRow[]).map((r) => ({ seq: r.seq, jobId: r.job_id, at: r.at, from: r.from_state, to: r.to_state, detail: r.detail })),
    );
  }

  private applyPatch(id: string, patch: InstallJobPatch, now: number): InstallJob {
    const sets: string[] = [];
    const values: Record<string, unknown> = { id, now };
    for (const [key, column] of Object.entries(PATCH_COLUMNS) as [keyof InstallJobPatch, string][]) {
      if (!(key in patch)) continue;
      sets.push(`${column} = @${key}`);
      const v = patch[key];
      values[key] = v === undefined ? null : v;
    }
    // Dynamic column list, but only from the fixed PATCH_COLUMNS names: no user text in SQL.
    const sql = `UPDATE install_jobs SET ${[...sets, 'updated_at = @now'].join(', ')} WHERE id = @id`;
    if (this.s.get(sql).run(values).changes === 0) throw new StoreError('NOT_FOUND', `install job ${id} does not exist`);
    return fromRow(this.s.get(SQL.get).get(id) as Row);
  }
}
