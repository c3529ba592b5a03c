/**
 * SCOMO jobs of OMA DM devices (store `omadm_scomo_jobs`, docs/omadm.md "SCOMO"): one
 * operation (DownloadInstall, Activate, ...) on one device. Every change is a transition from a
 * named set of states, so two writers (a session, the API's cancel) never both win.
 */
import type { TimeInput } from '../types.js';
import { type Statements, invalid, run, toMs } from './common.js';

export type ScomoOperation = 'Download' | 'DownloadInstall' | 'DownloadInstallInactive' | 'Install' | 'InstallInactive' | 'Activate' | 'Deactivate' | 'Remove';
export const SCOMO_OPERATIONS: readonly ScomoOperation[] = ['Download', 'DownloadInstall', 'DownloadInstallInactive', 'Install', 'InstallInactive', 'Activate', 'Deactivate', 'Remove'];
export type ScomoJobState = 'queued' | 'taken' | 'sent' | 'executing' | 'verifying' | 'succeeded' | 'failed' | 'cancelled';
export const SCOMO_FINAL_STATES: readonly ScomoJobState[] = ['succeeded', 'failed', 'cancelled'];

export interface ScomoJob {
  readonly id: string;
  readonly deviceId: string;
  readonly operation: ScomoOperation;
  readonly packageSha256: string | null;
  readonly packageName: string | null;
  readonly packageVersion: string | null;
  /** The node name under <root>/Download (downloads) or the component's node under Inventory/Delivered|Deployed. */
  readonly node: string;
  /** Asked with Alert 1101 before the operation, when set. */
  readonly askUser: string | null;
  /** The device's SCOMO root once found (./SCOMO or where ?list=Struct showed it). */
  readonly root: string | null;
  readonly state: ScomoJobState;
  readonly correlator: string;
  readonly token: string | null;
  readonly tokenExpiresAt: number | null;
  readonly resultCode: number | null;
  readonly resultName: string | null;
  /** The Deployed (or Delivered) component's node name the device reported. */
  readonly identifier: string | null;
  /** Deployed/<id>/State as last read: Active or Inactive. */
  readonly componentState: string | null;
  readonly message: string | null;
  readonly retry: string | null;
  /** How many times the Exec went out (more than one only after the device said it never got it). */
  readonly sends: number;
  readonly downloadBytes: number | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly finishedAt: number | null;
}

export interface ScomoJobInput {
  readonly id: string;
  readonly deviceId: string;
  readonly operation: ScomoOperation;
  readonly packageSha256?: string;
  readonly packageName?: string;
  readonly packageVersion?: string;
  readonly node: string;
  readonly askUser?: string;
  readonly root?: string;
  readonly correlator: string;
  readonly token?: string;
  readonly tokenExpiresAt?: number;
}

/** What a transition may change. */
export interface ScomoJobPatch {
  readonly state?: ScomoJobState;
  readonly root?: string;
  readonly resultCode?: number | null;
  readonly resultName?: string | null;
  readonly identifier?: string | null;
  readonly componentState?: string | null;
  readonly message?: string | null;
  readonly retry?: string | null;
  readonly sendsIncrement?: boolean;
  readonly downloadBytes?: number;
  readonly tokenExpiresAt?: number;
}

interface Row {
  id: string;
  device_id: string;
  operation: ScomoOperation;
  package_sha256: string | null;
  package_name: string | null;
  package_version: string | null;
  node: string;
  ask_user: string | null;
  root: string | null;
  state: ScomoJobState;
  correlator: string;
  token: string | null;
  token_expires_at: number | null;
  result_code: number | null;
  result_name: string | null;
  identifier: string | null;
  component_state: string | null;
  message: string | null;
  retry: string | null;
  sends: number;
  download_bytes: number | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

const COLUMNS = `id, device_id, operation, package_sha256, package_name, package_version, node, ask_user, root, state, correlator, token, token_expires_at,
  result_code, result_name, identifier, component_state, message, retry, sends, download_bytes, created_at, updated_at, finished_at`;

const SQL = {
  insert: `INSERT INTO omadm_scomo_jobs (id, device_id, operation, package_sha256, package_name, package_version, node, ask_user, root, state, correlator, token, token_expires_at, created_at, updated_at)
    VALUES (@id, @device_id, @operation, @package_sha256, @package_name, @package_version, @node, @ask_user, @root, 'queued', @correlator, @token, @token_expires_at, @now, @now) RETURNING ${COLUMNS}`,
  get: `SELECT ${COLUMNS} FROM omadm_scomo_jobs WHERE id = ?`,
  open: `SELECT ${COLUMNS} FROM omadm_scomo_jobs WHERE device_id = ? AND finished_at IS NULL ORDER BY created_at, id LIMIT 20`,
  byCorrelator: `SELECT ${COLUMNS} FROM omadm_scomo_jobs WHERE correlator = ?`,
  byToken: `SELECT ${COLUMNS} FROM omadm_scomo_jobs WHERE token = ?`,
  byDevice: `SELECT ${COLUMNS} FROM omadm_scomo_jobs WHERE device_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`,
  update: `UPDATE omadm_scomo_jobs SET
      state = coalesce(@state, state),
      root = coalesce(@root, root),
      result_code = CASE WHEN @set_result THEN @result_code ELSE result_code END,
      result_name = CASE WHEN @set_name THEN @result_name ELSE result_name END,
      identifier = coalesce(@identifier, identifier),
      component_state = coalesce(@component_state, component_state),
      message = coalesce(@message, message),
      retry = CASE WHEN @set_retry THEN @retry ELSE retry END,
      sends = sends + @sends,
      download_bytes = max(coalesce(download_bytes, 0), coalesce(@download_bytes, 0)),
      token_expires_at = coalesce(@token_expires_at, token_expires_at),
      updated_at = @now,
      finished_at = CASE WHEN coalesce(@state, state) IN ('succeeded', 'failed', 'cancelled') THEN coalesce(finished_at, @now) ELSE NULL END
    WHERE id = @id`,
} as const;

function fromRow(r: Row): ScomoJob {
  return {
    id: r.id, deviceId: r.device_id, operation: r.operation, packageSha256: r.package_sha256, packageName: r.package_name, packageVersion: r.package_version,
    node: r.node, askUser: r.ask_user, root: r.root, state: r.state, correlator: r.correlator, token: r.token, tokenExpiresAt: r.token_expires_at,
    resultCode: r.result_code, resultName: r.result_name, identifier: r.identifier, componentState: r.component_state, message: r.message, retry: r.retry,
    sends: r.sends, downloadBytes: r.download_bytes, createdAt: r.created_at, updatedAt: r.updated_at, finishedAt: r.finished_at,
  };
}

export class SqliteScomoJobRepository {
  constructor(private readonly s: Statements) {}

  create(input: ScomoJobInput, now: TimeInput): Promise<ScomoJob> {
    return run('create SCOMO job', () => {
      if (!(SCOMO_OPERATIONS as readonly string[]).includes(input.operation)) throw invalid(`operation must be one of ${SCOMO_OPERATIONS.join(', ')}`);
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(input.node)) throw invalid('a SCOMO node name is 1-64 letters, digits, ".", "_" or "-"');
      const row = this.s.get(SQL.insert).get({
        id: input.id, device_id: input.deviceId, operation: input.operation, package_sha256: input.packageSha256 ?? null, package_name: input.packageName ?? null,
        package_version: input.packageVersion ?? null, node: input.node, ask_user: input.askUser ?? null, root: input.root ?? null, correlator: input.correlator,
        token: input.token ?? null, token_expires_at: input.tokenExpiresAt ?? null, now: toMs(now, 'now'),
      }) as Row;
      return fromRow(row);
    });
  }

  get(id: string): Promise<ScomoJob | null> {
    return run('read SCOMO job', () => {
      const row = this.s.get(SQL.get).get(id) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  /** The device's unfinished jobs, oldest first. */
  openFor(deviceId: string): Promise<ScomoJob[]> {
    return run('list open SCOMO jobs', () => (this.s.get(SQL.open).all(deviceId) as Row[]).map(fromRow));
  }

  byCorrelator(correlator: string): Promise<ScomoJob | null> {
    return run('find SCOMO job', () => {
      const row = this.s.get(SQL.byCorrelator).get(correlator) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  byToken(token: string): Promise<ScomoJob | null> {
    return run('find SCOMO job', () => {
      const row = this.s.get(SQL.byToken).get(token) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  listByDevice(deviceId: string, limit = 100): Promise<ScomoJob[]> {
    return run('list SCOMO jobs', () => (this.s.get(SQL.byDevice).all(deviceId, Math.min(Math.max(1, limit), 1000)) as Row[]).map(fromRow));
  }

  /** Applies `patch` if the job is in one of `from`; null (nothing written) otherwise. */
  transition(id: string, from: readonly ScomoJobState[], patch: ScomoJobPatch, now: TimeInput): Promise<ScomoJob | null> {
    return run('update SCOMO job', () => {
      const t = toMs(now, 'now');
      return this.s.transaction(() => {
        const row = this.s.get(SQL.get).get(id) as Row | undefined;
        if (!row || !from.includes(row.state)) return null;
        this.s.get(SQL.update).run({
          id, now: t, state: patch.state ?? null, root: patch.root ?? null,
          set_result: patch.resultCode !== undefined ? 1 : 0, result_code: patch.resultCode ?? null, set_name: patch.resultName !== undefined ? 1 : 0, result_name: patch.resultName ?? null,
          identifier: patch.identifier ?? null, component_state: patch.componentState ?? null, message: patch.message ?? null,
          set_retry: patch.retry !== undefined ? 1 : 0, retry: patch.retry ?? null,
          sends: patch.sendsIncrement === true ? 1 : 0, download_bytes: patch.downloadBytes ?? null, token_expires_at: patch.tokenExpiresAt ?? null,
        });
        return fromRow(this.s.get(SQL.get).get(id) as Row);
      });
    });
  }
}
