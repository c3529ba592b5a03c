import { StoreError } from '../errors.js';
import type { AttemptOutcome, ChainAttempt, ChainJob, ChainJobRepository, ChainJobState, JsonState, NewChainJob, TimeInput } from '../types.js';
import { type Statements, invalid, requireText, run, toMs } from './common.js';

interface JobRow {
  id: string;
  endpoint: string;
  package_sha256: string;
  activate: number;
  methods: string;
  state: ChainJobState;
  message: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

interface AttemptRow {
  job_id: string;
  seq: number;
  method: string;
  started_at: number;
  ended_at: number | null;
  outcome: AttemptOutcome;
  message: string | null;
  result: string | null;
  state: string;
}

const JOB_COLUMNS = 'id, endpoint, package_sha256, activate, methods, state, message, created_at, updated_at, finished_at';
const ATTEMPT_COLUMNS = 'job_id, seq, method, started_at, ended_at, outcome, message, result, state';

const SQL = {
  insert: `INSERT INTO install_chain_jobs (${JOB_COLUMNS}) VALUES (@id, @endpoint, @packageSha256, @activate, @methods, 'running', NULL, @now, @now, NULL)`,
  get: `SELECT ${JOB_COLUMNS} FROM install_chain_jobs WHERE id = ?`,
  open: `SELECT ${JOB_COLUMNS} FROM install_chain_jobs WHERE state = 'running' ORDER BY created_at, id`,
  finish: `UPDATE install_chain_jobs SET state = @state, message = @message, updated_at = @now, finished_at = @now WHERE id = @id AND state = 'running'`,
  message: 'UPDATE install_chain_jobs SET message = @message, updated_at = @now WHERE id = @id',
  lastSeq: 'SELECT COALESCE(MAX(seq), 0) AS seq FROM install_chain_attempts WHERE job_id = ?',
  addAttempt: `INSERT INTO install_chain_attempts (${ATTEMPT_COLUMNS}) VALUES (@jobId, @seq, @method, @now, @endedAt, @outcome, @message, NULL, @state)`,
  getAttempt: `SELECT ${ATTEMPT_COLUMNS} FROM install_chain_attempts WHERE job_id = ? AND seq = ?`,
  saveAttempt: `UPDATE install_chain_attempts SET state = @state, message = @message WHERE job_id = @jobId AND seq = @seq AND outcome = 'running'`,
  endAttempt: `UPDATE install_chain_attempts SET outcome = @outcome, message = @message, result = @result, ended_at = @now WHERE job_id = @jobId AND seq = @seq AND outcome = 'running'`,
  attempts: `SELECT ${ATTEMPT_COLUMNS} FROM install_chain_attempts WHERE job_id = ? ORDER BY seq`,
} as const;

function jobOf(r: JobRow): ChainJob {
  return {
    id: r.id,
    endpoint: r.endpoint,
    packageSha256: r.package_sha256,
    activate: r.activate === 1,
    methods: JSON.parse(r.methods) as string[],
    state: r.state,
    message: r.message,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
  };
}

function attemptOf(r: AttemptRow): ChainAttempt {
  return { jobId: r.job_id, seq: r.seq, method: r.method, startedAt: r.started_at, endedAt: r.ended_at, outcome: r.outcome, message: r.message, result: r.result, state: JSON.parse(r.state) as JsonState };
}

/**
 * Install-chain jobs and their method attempts (fleet's ChainJobRepository). Every write is
 * durable: an attempt is recorded before its method acts on the device, and the chain's
 * "exactly once" after a kill rests on it.
 */
export class SqliteChainJobRepository implements ChainJobRepository {
  constructor(private readonly s: Statements) {}

  create(job: NewChainJob, now: TimeInput): Promise<ChainJob> {
    return run('create install chain job', () =>
      this.s.transaction(() => {
        if (!Array.isArray(job.methods) || job.methods.some((m) => typeof m !== 'string' || !m)) throw invalid('methods must be a list of method names');
        this.s.get(SQL.insert).run({
          id: requireText(job.id, 'id'),
          endpoint: requireText(job.endpoint, 'endpoint'),
          packageSha256: requireText(job.packageSha256, 'packageSha256'),
          activate: job.activate ? 1 : 0,
          methods: JSON.stringify(job.methods),
          now: toMs(now, 'now'),
        });
        return jobOf(this.s.get(SQL.get).get(job.id) as JobRow);
      }),
    );
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

  finish(id: string, state: Exclude<ChainJobState, 'running'>, message: string, now: TimeInput): Promise<ChainJob> {
    return run('finish install chain job', () =>
      this.s.transaction(() => {
        if (this.s.get(SQL.finish).run({ id, state, message, now: toMs(now, 'now') }).changes === 0) {
          const row = this.s.get(SQL.get).get(id) as JobRow | undefined;
          if (!row) throw new StoreError('NOT_FOUND', `install chain job ${id} does not exist`);
          throw new StoreError('INVALID_TRANSITION', `install chain job ${id} already ended (${row.state})`);
        }
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

  addAttempt(jobId: string, attempt: { method: string; outcome: 'running' | 'skipped'; message: string | null; state: JsonState }, now: TimeInput): Promise<ChainAttempt> {
    return run('add install attempt', () =>
      this.s.transaction(() => {
        if (!this.s.get(SQL.get).get(jobId)) throw new StoreError('NOT_FOUND', `install chain job ${jobId} does not exist`);
        const at = toMs(now, 'now');
        const seq = (this.s.get(SQL.lastSeq).get(jobId) as { seq: number }).seq + 1;
        this.s.get(SQL.addAttempt).run({
          jobId,
          seq,
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

  saveAttempt(jobId: string, seq: number, state: JsonState, message: string, now: TimeInput): Promise<ChainAttempt> {
    toMs(now, 'now');
    return run('save install attempt', () =>
      this.s.transaction(() => {
        if (this.s.get(SQL.saveAttempt).run({ jobId, seq, state: JSON.stringify(state), message }).changes === 0) throw this.notRunning(jobId, seq);
        return attemptOf(this.s.get(SQL.getAttempt).get(jobId, seq) as AttemptRow);
      }),
    );
  }

  endAttempt(jobId: string, seq: number, outcome: Exclude<AttemptOutcome, 'running' | 'skipped'>, message: string, result: string | null, now: TimeInput): Promise<ChainAttempt> {
    return run('end install attempt', () =>
      this.s.transaction(() => {
        if (this.s.get(SQL.endAttempt).run({ jobId, seq, outcome, message, result, now: toMs(now, 'now') }).changes === 0) throw this.notRunning(jobId, seq);
        return attemptOf(this.s.get(SQL.getAttempt).get(jobId, seq) as AttemptRow);
      }),
    );
  }

  attempts(jobId: string): Promise<ChainAttempt[]> {
    return run('list install attempts', () => (this.s.get(SQL.attempts).all(jobId) as AttemptRow[]).map(attemptOf));
  }

  private notRunning(jobId: string, seq: number): StoreError {
    const row = this.s.get(SQL.getAttempt).get(jobId, seq) as AttemptRow | undefined;
    return row ? new StoreError('INVALID_TRANSITION', `attempt ${seq} of install chain job ${jobId} already ended (${row.outcome})`) : new StoreError('NOT_FOUND', `attempt ${seq} of install chain job ${jobId} does not exist`);
  }
}
