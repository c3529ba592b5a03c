/**
 * Operator commands for OMA DM devices (Get, Replace, Exec on a node URI), run in the device's
 * next session: queued → sent (a session holds it) → succeeded | failed (the device's Status)
 * | unknown (sent, but the session ended without an answer: never re-run by itself, an Exec
 * must not run twice) — or back to queued when the session ended before sending it.
 *
 * Expiry: a command may carry expiresAt; still queued at that time, it is failed (no result
 * code, result data "expired ...") instead of being sent late — when a session of its device
 * opens (takeQueued) or by expireDue. A command left 'sent' by a server that stopped in the middle
 * of a session (sessions live in memory) is 'unknown' after the restart (abandonSent): it may or
 * may not have run, and it is never sent again by itself.
 */
import type { TimeInput } from '../types.js';
import { type Statements, invalid, run, toMs } from './common.js';

export type OmaDmCommandKind = 'Get' | 'Replace' | 'Exec';
export type OmaDmCommandStatus = 'queued' | 'sent' | 'succeeded' | 'failed' | 'unknown';

export interface OmaDmCommand {
  readonly id: number;
  readonly deviceId: string;
  readonly kind: OmaDmCommandKind;
  readonly uri: string;
  readonly data: string | null;
  readonly format: string | null;
  readonly status: OmaDmCommandStatus;
  readonly resultCode: number | null;
  readonly resultData: string | null;
  /** Not sent by then: failed as expired (ms since the epoch), or null: no expiry. */
  readonly expiresAt: number | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

interface Row {
  id: number;
  device_id: string;
  kind: OmaDmCommandKind;
  uri: string;
  data: string | null;
  format: string | null;
  status: OmaDmCommandStatus;
  result_code: number | null;
  result_data: string | null;
  expires_at: number | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS = 'id, device_id, kind, uri, data, format, status, result_code, result_data, expires_at, created_at, updated_at';
/** Commands a session takes at most: the rest wait for the next session. */
const MAX_PER_SESSION = 50;
const MAX_URI = 1024;
const MAX_DATA = 16 * 1024;

const SQL = {
  insert: `INSERT INTO omadm_commands (device_id, kind, uri, data, format, status, expires_at, created_at, updated_at)
    VALUES (@device_id, @kind, @uri, @data, @format, 'queued', @expires_at, @now, @now) RETURNING ${COLUMNS}`,
  expireDevice: `UPDATE omadm_commands SET status = 'failed', result_data = 'expired: not sent before ' || strftime('%Y-%m-%dT%H:%M:%fZ', expires_at / 1000.0, 'unixepoch'), updated_at = @now
    WHERE device_id = @device_id AND status = 'queued' AND expires_at IS NOT NULL AND expires_at <= @now`,
  expireAll: `UPDATE omadm_commands SET status = 'failed', result_data = 'expired: not sent before ' || strftime('%Y-%m-%dT%H:%M:%fZ', expires_at / 1000.0, 'unixepoch'), updated_at = @now
    WHERE status = 'queued' AND expires_at IS NOT NULL AND expires_at <= @now`,
  abandonSent: `UPDATE omadm_commands SET status = 'unknown', result_data = 'the server stopped while a session held this command: it may or may not have run', updated_at = @now
    WHERE status = 'sent'`,
  queued: `SELECT ${COLUMNS} FROM omadm_commands WHERE device_id = ? AND status = 'queued' ORDER BY id LIMIT ${MAX_PER_SESSION}`,
  markSent: "UPDATE omadm_commands SET status = 'sent', updated_at = ? WHERE id = ? AND status = 'queued'",
  finish: `UPDATE omadm_commands SET status = @status, result_code = @code, result_data = @data, updated_at = @now
    WHERE id = @id AND status = 'sent' RETURNING ${COLUMNS}`,
  unsend: "UPDATE omadm_commands SET status = 'queued', updated_at = ? WHERE id = ? AND status = 'sent'",
  byDevice: `SELECT ${COLUMNS} FROM omadm_commands WHERE device_id = ? ORDER BY id DESC LIMIT ?`,
} as const;

function fromRow(r: Row): OmaDmCommand {
  return {
    id: r.id, deviceId: r.device_id, kind: r.kind, uri: r.uri, data: r.data, format: r.format, status: r.status,
    resultCode: r.result_code, resultData: r.result_data, expiresAt: r.expires_at, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

export class SqliteOmaDmCommandRepository {
  constructor(private readonly s: Statements) {}

  enqueue(input: { deviceId: string; kind: OmaDmCommandKind; uri: string; data?: string; format?: string; expiresAt?: TimeInput }, now: TimeInput): Promise<OmaDmCommand> {
    return run('queue OMA DM command', () => {
      if (!['Get', 'Replace', 'Exec'].includes(input.kind)) throw invalid(`kind must be Get, Replace or Exec`);
      if (typeof input.uri !== 'string' || !input.uri.startsWith('./') || input.uri.length > MAX_URI || /\p{Cc}/u.test(input.uri)) throw invalid(`uri must be a node URI starting with ./, at most ${MAX_URI} printable characters`);
      if (input.data !== undefined && input.data.length > MAX_DATA) throw invalid(`data is at most ${MAX_DATA} characters`);
      const t = toMs(now, 'now');
      const expiresAt = input.expiresAt === undefined ? null : toMs(input.expiresAt, 'expiresAt');
      if (expiresAt !== null && expiresAt <= t) throw invalid('expiresAt must be in the future');
      const row = this.s.get(SQL.insert).get({ device_id: input.deviceId, kind: input.kind, uri: input.uri, data: input.data ?? null, format: input.format ?? null, expires_at: expiresAt, now: t }) as Row;
      return fromRow(row);
    });
  }

  /** The device's queued commands, now 'sent': the session about to open holds them. Those past their expiresAt are failed instead. */
  takeQueued(deviceId: string, now: TimeInput): Promise<OmaDmCommand[]> {
    return run('take OMA DM commands', () => {
      const t = toMs(now, 'now');
      return this.s.transaction(() => {
        this.s.get(SQL.expireDevice).run({ device_id: deviceId, now: t });
        const rows = this.s.get(SQL.queued).all(deviceId) as Row[];
        for (const r of rows) this.s.get(SQL.markSent).run(t, r.id);
        return rows.map((r) => fromRow({ ...r, status: 'sent', updated_at: t }));
      });
    });
  }

  /** The device's answer (code), or null for sent-without-answer ('unknown'). */
  finish(id: number, code: number | null, data: string | null, now: TimeInput): Promise<OmaDmCommand | null> {
    return run('finish OMA DM command', () => {
      const status: OmaDmCommandStatus = code === null ? 'unknown' : code >= 200 && code < 300 ? 'succeeded' : 'failed';
      const row = this.s.transaction(() => this.s.get(SQL.finish).get({ id, status, code, data: data === null ? null : data.slice(0, MAX_DATA), now: toMs(now, 'now') }) as Row | undefined);
      return row ? fromRow(row) : null;
    });
  }

  /** Back to queued: the session ended before sending it. */
  unsend(id: number, now: TimeInput): Promise<boolean> {
    return run('requeue OMA DM command', () => this.s.transaction(() => this.s.get(SQL.unsend).run(toMs(now, 'now'), id).changes > 0));
  }

  /** Queued commands past their expiresAt (of one device, or all), failed as expired, so that no list shows them queued; how many. */
  expireDue(now: TimeInput, deviceId?: string): Promise<number> {
    return run('expire OMA DM commands', () => {
      const t = toMs(now, 'now');
      return this.s.transaction(() => (deviceId === undefined ? this.s.get(SQL.expireAll).run({ now: t }) : this.s.get(SQL.expireDevice).run({ device_id: deviceId, now: t })).changes);
    });
  }

  /**
   * At start-up, before any session: every 'sent' command was held by a session of the process
   * that stopped (sessions are not persisted), so it becomes 'unknown', as if that session had
   * ended without the device's answer. How many.
   */
  abandonSent(now: TimeInput): Promise<number> {
    return run('abandon sent OMA DM commands', () => {
      const t = toMs(now, 'now');
      return this.s.transaction(() => this.s.get(SQL.abandonSent).run({ now: t }).changes);
    });
  }

  listByDevice(deviceId: string, limit = 100): Promise<OmaDmCommand[]> {
    return run('list OMA DM commands', () => (this.s.get(SQL.byDevice).all(deviceId, Math.min(Math.max(1, limit), 1000)) as Row[]).map(fromRow));
  }
}
