import { StoreError } from '../errors.js';
import {
  OPERATION_KINDS,
  OPERATION_STATUSES,
  OPERATION_TRANSITIONS,
  type NewOperation,
  type OperationFilter,
  type OperationKind,
  type OperationQueueRepository,
  type OperationResult,
  type OperationStatus,
  type Page,
  type PageRequest,
  type QueuedOperation,
  type TimeInput,
} from '../types.js';
import { type Statements, blob, bytes, invalid, limitOf, optionalInt, pageOf, requireText, run, toMs } from './common.js';

interface Row {
  id: number;
  endpoint: string;
  kind: OperationKind;
  path: string;
  payload: Buffer | null;
  content_format: number | null;
  status: OperationStatus;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
  result_code: string | null;
  result_payload: Buffer | null;
  result_content_format: number | null;
  diagnostic: string | null;
  attempts: number;
}

const COLUMNS = `id, endpoint, kind, path, payload, content_format, status, created_at, updated_at, expires_at,
  result_code, result_payload, result_content_format, diagnostic, attempts`;

const SQL = {
  insert: `INSERT INTO queued_operations (endpoint, kind, path, payload, content_format, status, created_at,
    updated_at, expires_at) VALUES (@endpoint, @kind, @path, @payload, @content_format, 'queued', @now, @now, @expires_at)
    RETURNING ${COLUMNS}`,
  get: `SELECT ${COLUMNS} FROM queued_operations WHERE id = ?`,
  nextPending: `SELECT ${COLUMNS} FROM queued_operations
    WHERE endpoint = @endpoint AND status = 'queued' AND (expires_at IS NULL OR expires_at > @now)
    ORDER BY id LIMIT 1`,
  /** Moves one operation to a new status, and records the result when one is given. */
  transition: `UPDATE queued_operations SET status = @status, updated_at = @now,
    attempts = attempts + @attempt,
    result_code = CASE WHEN @has_result THEN @result_code ELSE result_code END,
    result_payload = CASE WHEN @has_result THEN @result_payload ELSE result_payload END,
    result_content_format = CASE WHEN @has_result THEN @result_content_format ELSE result_content_format END,
    diagnostic = CASE WHEN @has_result THEN @diagnostic ELSE diagnostic END
    WHERE id = @id RETURNING ${COLUMNS}`,
  expire: `UPDATE queued_operations SET status = 'expired', updated_at = @now
    WHERE status IN ('queued', 'sent') AND expires_at IS NOT NULL AND expires_at <= @now
    RETURNING ${COLUMNS}`,
  byEndpoint: `SELECT ${COLUMNS} FROM queued_operations WHERE endpoint = @endpoint AND id > @after
    ORDER BY id LIMIT @limit`,
  byEndpointStatus: `SELECT ${COLUMNS} FROM queued_operations WHERE endpoint = @endpoint AND status = @status AND id > @after
    ORDER BY id LIMIT @limit`,
  purgeFinished: `DELETE FROM queued_operations
    WHERE status IN ('succeeded', 'failed', 'expired', 'cancelled') AND updated_at < ?`,
  byStatus: `SELECT ${COLUMNS} FROM queued_operations WHERE status = @status AND id > @after ORDER BY id LIMIT @limit`,
} as const;

function fromRow(r: Row): QueuedOperation {
  return {
    id: r.id,
    endpoint: r.endpoint,
    kind: r.kind,
    path: r.path,
    payload: bytes(r.payload),
    contentFormat: r.content_format,
    status: r.status,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    expiresAt: r.expires_at,
    resultCode: r.result_code,
    resultPayload: bytes(r.result_payload),
    resultContentFormat: r.result_content_format,
    diagnostic: r.diagnostic,
    attempts: r.attempts,
  };
}

function cursor(after: string | undefined): number {
  if (after === undefined) return 0;
  const n = Number(after);
  if (!Number.isSafeInteger(n) || n < 0) throw invalid('after is not a cursor of this list');
  return n;
}

function checkStatus(status: OperationStatus): OperationStatus {
  if (!OPERATION_STATUSES.includes(status)) throw invalid(`unknown operation status ${String(status)}`);
  return status;
}

export class SqliteOperationQueueRepository implements OperationQueueRepository {
  constructor(private readonly s: Statements) {}

  enqueue(op: NewOperation, now: TimeInput): Promise<QueuedOperation> {
    return run('enqueue operation', () => {
      if (!OPERATION_KINDS.includes(op.kind)) throw invalid(`unknown operation kind ${String(op.kind)}`);
      const row = this.s.get(SQL.insert).get({
        endpoint: requireText(op.endpoint, 'endpoint'),
        kind: op.kind,
        path: requireText(op.path, 'path'),
        payload: blob(op.payload, 'payload'),
        content_format: optionalInt(op.contentFormat, 'contentFormat', 0, 65535),
        now: toMs(now, 'now'),
        expires_at: op.expiresAt === null || op.expiresAt === undefined ? null : toMs(op.expiresAt, 'expiresAt'),
      }) as Row;
      return fromRow(row);
    });
  }

  get(id: number): Promise<QueuedOperation | null> {
    return run('get operation', () => {
      const row = this.s.get(SQL.get).get(id) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  nextPending(endpoint: string, now: TimeInput): Promise<QueuedOperation | null> {
    return run('next pending operation', () => {
      const row = this.s.get(SQL.nextPending).get({ endpoint, now: toMs(now, 'now') }) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  markSent(id: number, now: TimeInput): Promise<QueuedOperation> {
    return run('mark operation sent', () => this.move(id, 'sent', now, null, 1));
  }

  markSucceeded(id: number, result: OperationResult, now: TimeInput): Promise<QueuedOperation> {
    return run('mark operation succeeded', () => this.move(id, 'succeeded', now, result, 0));
  }

  markFailed(id: number, result: OperationResult, now: TimeInput): Promise<QueuedOperation> {
    return run('mark operation failed', () => this.move(id, 'failed', now, result, 0));
  }

  requeue(id: number, now: TimeInput): Promise<QueuedOperation> {
    return run('requeue operation', () => this.move(id, 'queued', now, null, 0));
  }

  cancel(id: number, now: TimeInput): Promise<QueuedOperation> {
    return run('cancel operation', () => this.move(id, 'cancelled', now, null, 0));
  }

  expire(asOf: TimeInput): Promise<QueuedOperation[]> {
    return run('expire operations', () => {
      const rows = this.s.transaction(() => this.s.get(SQL.expire).all({ now: toMs(asOf, 'asOf') }) as Row[]);
      return rows.map(fromRow).sort((a, b) => a.id - b.id);
    });
  }

  listByEndpoint(endpoint: string, filter: OperationFilter = {}): Promise<Page<QueuedOperation>> {
    return run('list operations', () => {
      const limit = limitOf(filter);
      const params = { endpoint, after: cursor(filter.after), limit: limit + 1 };
      const rows = (
        filter.status === undefined
          ? this.s.get(SQL.byEndpoint).all(params)
          : this.s.get(SQL.byEndpointStatus).all({ ...params, status: checkStatus(filter.status) })
      ) as Row[];
      return pageOf(rows, limit, fromRow, (r) => String(r.id));
    });
  }

  listByStatus(status: OperationStatus, page: PageRequest = {}): Promise<Page<QueuedOperation>> {
    return run('list operations', () => {
      const limit = limitOf(page);
      const rows = this.s.get(SQL.byStatus).all({ status: checkStatus(status), after: cursor(page.after), limit: limit + 1 }) as Row[];
      return pageOf(rows, limit, fromRow, (r) => String(r.id));
    });
  }

  purgeFinished(before: TimeInput): Promise<number> {
    return run('purge operations', () => this.s.get(SQL.purgeFinished).run(toMs(before, 'before')).changes);
  }

  /** One transition of OPERATION_TRANSITIONS, checked against the stored status in the same transaction. */
  private move(id: number, to: OperationStatus, now: TimeInput, result: OperationResult | null, attempt: number): QueuedOperation {
    const t = toMs(now, 'now');
    const params = {
      id,
      status: to,
      now: t,
      attempt,
      has_result: result ? 1 : 0,
      result_code: result?.code ?? null,
      result_payload: blob(result?.payload, 'result.payload'),
      result_content_format: optionalInt(result?.contentFormat, 'result.contentFormat', 0, 65535),
      diagnostic: result?.diagnostic ?? null,
    };
    return this.s.transaction(() => {
      const cur = this.s.get(SQL.get).get(id) as Row | undefined;
      if (!cur) throw new StoreError('NOT_FOUND', `no queued operation ${id}`);
      if (!OPERATION_TRANSITIONS[cur.status].includes(to)) {
        throw new StoreError('INVALID_TRANSITION', `operation ${id} is ${cur.status} and cannot become ${to}`);
      }
      return fromRow(this.s.get(SQL.transition).get(params) as Row);
    });
  }
}
