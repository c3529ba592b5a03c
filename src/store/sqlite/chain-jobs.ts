import { StoreError } from '../errors.js';
import type { AttemptOutcome, ChainAttempt, ChainJob, ChainJobRepository, ChainJobState, ChainPlan, JsonState, ModelKey, NewChainAttempt, NewChainJob } from '../../fleet/domain.js';
import { recordOutcome } from './method-stats.js';
import type { Page, PageRequest, TimeInput } from '../types.js';
import { type Statements, createdAtCursor, createdAtKey, invalid, limitOf, pageOf, PREFIX_END, requireText, run, toMs } from './common.js';

interface JobRow {
  id: string;
  endpoint: string;
  package_sha256: string;
  activate: number;
  methods: string;
  plan: string | null;
  state: ChainJobState;
  message: string | null;
  retry_at: number | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

interface AttemptRow {
  job_id: string;
  seq: number;
  position: number | null;
  method: string;
  started_at: number;
  ended_at: number | null;
  progress_at: number | null;
  outcome: AttemptOutcome;
  message: string | null;
  result: string | null;
  bytes: number | null;
  state: string;
}

const JOB_COLUMNS = 'id, endpoint, package_sha256, activate, methods, plan, state, message, retry_at, created_at, updated_at, finished_at';
const ATTEMPT_COLUMNS = 'job_id, seq, position, method, started_at, ended_at, progress_at, outcome, message, result, bytes, state';

const SQL = {
  insert: `INSERT INTO install_chain_jobs (${JOB_COLUMNS}) VALUES (@id, @endpoint, @packageSha256, @activate, @methods, @plan, 'running', NULL, NULL, @now, @now, NULL)`,
  get: `SELECT ${JOB_COLUMNS} FROM install_chain_jobs WHERE id = ?`,
  open: `SELECT ${JOB_COLUMNS} FROM install_chain_jobs WHERE state = 'running' ORDER BY created_at, id`,
  byEndpoint: `SELECT ${JOB_COLUMNS} FROM install_chain_jobs WHERE endpoint = @endpoint AND (created_at < @at OR (created_at = @at AND id < @id)) ORDER BY created_at DESC, id DESC LIMIT @limit`,
  finish: `UPDATE install_chain_jobs SET state = @state, message = @message, retry_at = NULL, updated_at = @now, finished_at = @now WHERE id = @id AND state = 'running'`,
  message: 'UPDATE install_chain_jobs SET message = @message, updated_at = @now WHERE id = @id',
  retry: `UPDATE install_chain_jobs SET retry_at = @retryAt, message = @message, updated_at = @now WHERE id = @id AND state = 'running'`,
  lastSeq: 'SELECT COALESCE(MAX(seq), 0) AS seq FROM install_chain_attempts WHERE job_id = ?',
  runningAttempt: `SELECT seq FROM install_chain_attempts WHERE job_id = ? AND outcome = 'running'`,
  addAttempt: `INSERT INTO install_chain_attempts (${ATTEMPT_COLUMNS}) VALUES (@jobId, @seq, @position, @method, @now, @endedAt, @now, @outcome, @message, NULL, NULL, @state)`,
  getAttempt: `SELECT ${ATTEMPT_COLUMNS} FROM install_chain_attempts WHERE job_id = ? AND seq = ?`,
  saveAttempt: `UPDATE install_chain_attempts SET state = @state, message = @message, progress_at = @now, bytes = COALESCE(@bytes, bytes) WHERE job_id = @jobId AND seq = @seq AND outcome = 'running'`,
  endAttempt: `UPDATE install_chain_attempts SET outcome = @outcome, message = @message, result = @result, ended_at = @now, progress_at = @now, bytes = COALESCE(@bytes, bytes) WHERE job_id = @jobId AND seq = @seq AND outcome = 'running'`,
  attempts: `SELECT ${ATTEMPT_COLUMNS} FROM install_chain_attempts WHERE job_id = ? ORDER BY seq`,
} as const;

const OPERATOR_PLAN: ChainPlan = { chosenBy: 'operator', skip: {}, note: null };

function planOf(text: string | null): ChainPlan {
  if (text === null) return OPERATOR_PLAN;
  const p = JSON.parse(text) as Partial<ChainPlan>;
  return { chosenBy: p.chosenBy ?? 'operator', skip: p.skip ?? {}, note: p.note ?? null };
}

function jobOf(r: JobRow): ChainJob {
  return {
    id: r.id,
    endpoint: r.endpoint,
    packageSha256: r.package_sha256,
    activate: r.activate === 1,
    methods: JSON.parse(r.methods) as string[],
    plan: planOf(r.plan),
    state: r.state,
    message: r.message,
    retryAt: r.retry_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
  };
}

function attemptOf(r: AttemptRow): ChainAttempt {
  return {
    jobId: r.job_id,
    seq: r.seq,
    // Attempts written before positions were kept: one per method, in chain order.
    position: r.position ?? r.seq - 1,
    method: r.method,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    progressAt: r.progress_at ?? r.ended_at ?? r.started_at,
    outcome: r.outcome,
    message: r.message,
    result: r.result,
    bytes: r.bytes,
    state: JSON.parse(r.state) as JsonState,
  };
}

function optionalBytes(bytes: number | null | undefined): number | null {
  if (bytes === undefined || bytes === null) return null;
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw invalid('bytes must be a non-negative integer');
  return bytes;
}

/**
 * Install-chain jobs and their method attempts (fleet's ChainJobRepository). Every write is
 * durable: an attempt is recorded before its method acts on the device, and the chain's
 * "exactly once" after a kill rests on it. The file itself refuses a second running attempt
 * of one job (a partial unique index).
 */
export class SqliteChainJobRepository implements ChainJobRepository {
  constructor(private readonly s: Statements) {}

  create(job: NewChainJob, now: TimeInput): Promise<ChainJob> {
    return run('create install chain job', () => this.s.transaction(() => this.insert(job, toMs(now, 'now'))));
  }

  createMany(jobs: readonly NewChainJob[], now: TimeInput): Promise<ChainJob[]> {
    return run('create install chain jobs', () => {
      const at = toMs(now, 'now');
      return this.s.transaction(() => jobs.map((job) => this.insert(job, at)));
    });
  }

  /** CONFLICT when the device already has an open job (a partial unique index: one open job per device). */
  private insert(job: NewChainJob, at: number): ChainJob {
    if (!Array.isArray(job.methods) || job.methods.some((m) => typeof m !== 'string' || !m)) throw invalid('methods must be a list of method names');
    this.s.get(SQL.insert).run({
      id: requireText(job.id, 'id'),
      endpoint: requireText(job.endpoint, 'endpoint'),
      packageSha256: requireText(job.packageSha256, 'packageSha256'),
      activate: job.activate ? 1 : 0,
      methods: JSON.stringify(job.methods),
      plan: job.plan ? JSON.stringify(job.plan) : null,
      now: at,
    });
    return jobOf(this.s.get(SQL.get).get(job.id) as JobRow);
  }

  get(id: string): Promise<ChainJob | null> {
    return run('get install chain job', () => {
      const row = this.s.get(SQL.get).get(id) as JobRow | undefined;
      return row ? jobOf(row) : null;
    });
  }

  listOpen(): Promise<ChainJob[]> {
    return run('list open install chain jobs', () => (this.s.get(SQL.open).all() as JobRow[]).map(jobOf));
  }

  listByEndpoint(endpoint: string, page?: PageRequest): Promise<Page<ChainJob>> {
    return run('list install chain jobs of a device', () => {
      const limit = limitOf(page);
      // Same created_at: ids descending.
      const { at, id } = createdAtCursor(page?.after, PREFIX_END);
      const rows = this.s.get(SQL.byEndpoint).all({ endpoint, at, id, limit: limit + 1 }) as JobRow[];
      return pageOf(rows, limit, jobOf, createdAtKey);
    });
  }

  finish(id: string, state: Exclude<ChainJobState, 'running'>, message: string, now: TimeInput): Promise<ChainJob> {
    return run('finish install chain job', () =>
      this.s.transaction(() => {
        if (this.s.get(SQL.finish).run({ id, state, message, now: toMs(now, 'now') }).changes === 0) throw this.ended(id);
        return jobOf(this.s.get(SQL.get).get(id) as JobRow);
      }),
    );
  }

  setMessage(id: string, message: string, now: TimeInput): Promise<ChainJob> {
    return run('set install chain job message', () =>
      this.s.transaction(() => {
        if (this.s.get(SQL.message).run({ id, message, now: toMs(now, 'now') }).changes === 0) throw new StoreError('NOT_FOUND', `install chain job ${id} does not exist`);
        return jobOf(this.s.get(SQL.get).get(id) as JobRow);
      }),
    );
  }

  setRetry(id: string, retryAt: number | null, message: string, now: TimeInput): Promise<ChainJob> {
    return run('set install chain job retry', () =>
      this.s.transaction(() => {
        if (retryAt !== null) toMs(retryAt, 'retryAt');
        if (this.s.get(SQL.retry).run({ id, retryAt, message, now: toMs(now, 'now') }).changes === 0) throw this.ended(id);
        return jobOf(this.s.get(SQL.get).get(id) as JobRow);
      }),
    );
  }

  addAttempt(jobId: string, attempt: NewChainAttempt, now: TimeInput): Promise<ChainAttempt> {
    return run('add install attempt', () =>
      this.s.transaction(() => {
        const job = this.s.get(SQL.get).get(jobId) as JobRow | undefined;
        if (!job) throw new StoreError('NOT_FOUND', `install chain job ${jobId} does not exist`);
        if (job.state !== 'running') throw new StoreError('INVALID_TRANSITION', `install chain job ${jobId} already ended (${job.state})`);
        const busy = this.s.get(SQL.runningAttempt).get(jobId) as { seq: number } | undefined;
        if (busy) throw new StoreError('CONFLICT', `install chain job ${jobId} already has a running attempt (${busy.seq})`);
        if (!Number.isSafeInteger(attempt.position) || attempt.position < 0) throw invalid('position must be a non-negative integer');
        const at = toMs(now, 'now');
        const seq = (this.s.get(SQL.lastSeq).get(jobId) as { seq: number }).seq + 1;
        this.s.get(SQL.addAttempt).run({
          jobId,
          seq,
          position: attempt.position,
          method: requireText(attempt.method, 'method'),
          now: at,
          endedAt: attempt.outcome === 'running' ? null : at,
          outcome: attempt.outcome,
          message: attempt.message,
          state: JSON.stringify(attempt.state),
        });
        return attemptOf(this.s.get(SQL.getAttempt).get(jobId, seq) as AttemptRow);
      }),
    );
  }

  saveAttempt(jobId: string, seq: number, state: JsonState, message: string, now: TimeInput, bytes?: number | null, jobMessage?: string, progress = false): Promise<ChainAttempt> {
    return run('save install attempt', () =>
      this.s.transaction(() => {
        const at = toMs(now, 'now');
        if (this.s.get(SQL.saveAttempt).run({ jobId, seq, state: JSON.stringify(state), message, now: at, bytes: optionalBytes(bytes) }).changes === 0) throw this.notRunning(jobId, seq);
        if (jobMessage !== undefined) this.s.get(SQL.message).run({ id: jobId, message: jobMessage, now: at });
        return attemptOf(this.s.get(SQL.getAttempt).get(jobId, seq) as AttemptRow);
      }, progress ? 'soft' : 'durable'),
    );
  }

  endAttempt(
    jobId: string,
    seq: number,
    outcome: Exclude<AttemptOutcome, 'running' | 'skipped'>,
    message: string,
    result: string | null,
    now: TimeInput,
    bytes?: number | null,
    retry?: { readonly at: number; readonly message: string },
    tally?: ModelKey,
    finish?: { readonly message: string; readonly soft?: boolean },
  ): Promise<ChainAttempt> {
    return run('end install attempt', () =>
      this.s.transaction(() => {
        const at = toMs(now, 'now');
        if (retry !== undefined && outcome !== 'failed') throw invalid('only a failed attempt is retried');
        if (finish !== undefined && outcome !== 'succeeded') throw invalid('only a succeeded attempt ends its job with it');
        if (this.s.get(SQL.endAttempt).run({ jobId, seq, outcome, message, result, now: at, bytes: optionalBytes(bytes) }).changes === 0) throw this.notRunning(jobId, seq);
        if (retry !== undefined && this.s.get(SQL.retry).run({ id: jobId, retryAt: toMs(retry.at, 'retry.at'), message: retry.message, now: at }).changes === 0) throw this.ended(jobId);
        if (tally !== undefined && (outcome === 'succeeded' || outcome === 'failed')) {
          const row = this.s.get(SQL.getAttempt).get(jobId, seq) as AttemptRow;
          recordOutcome(this.s, tally, row.method, outcome, outcome === 'failed' ? message : null, result, at);
        }
        if (finish !== undefined && this.s.get(SQL.finish).run({ id: jobId, state: 'succeeded', message: finish.message, now: at }).changes === 0) throw this.ended(jobId);
        return attemptOf(this.s.get(SQL.getAttempt).get(jobId, seq) as AttemptRow);
      }, finish?.soft ? 'soft' : 'durable'),
    );
  }

  attempts(jobId: string): Promise<ChainAttempt[]> {
    return run('list install attempts', () => (this.s.get(SQL.attempts).all(jobId) as AttemptRow[]).map(attemptOf));
  }

  private ended(id: string): StoreError {
    const row = this.s.get(SQL.get).get(id) as JobRow | undefined;
    if (!row) return new StoreError('NOT_FOUND', `install chain job ${id} does not exist`);
    return new StoreError('INVALID_TRANSITION', `install chain job ${id} already ended (${row.state})`);
  }

  private notRunning(jobId: string, seq: number): StoreError {
    const row = this.s.get(SQL.getAttempt).get(jobId, seq) as AttemptRow | undefined;
    return row ? new StoreError('INVALID_TRANSITION', `attempt ${seq} of install chain job ${jobId} already ended (${row.outcome})`) : new StoreError('NOT_FOUND', `attempt ${seq} of install chain job ${jobId} does not exist`);
  }
}
