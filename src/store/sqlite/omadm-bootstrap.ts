/**
 * OMA DM bootstrap over Client Provisioning (issue 15), in three tables of migration
 * "omadm-bootstrap":
 *
 * - omadm_bootstrap: one row per phone number (MSISDN): what Depot knows of the handset (DevId,
 *   IMEI, IMSI, group, model), the bootstrap's state (src/omadm/bootstrap/machine.ts), how many
 *   documents were sent, and the server's credentials for that device (the APPSRV password,
 *   sealed like every secret, context omadm_bootstrap/server/<msisdn>, and its nonce). The
 *   client's credentials live in omadm_accounts.
 * - omadm_pushes: every push handed to the SMS layer (its outbox id), so a delivery report
 *   finds its number and kind.
 * - omadm_bootstrap_settings: PINs and options by scope ("global", "group:<name>",
 *   "model:<name>"): the PIN sealed (context omadm_bootstrap_settings/pin/<scope>), the rest JSON.
 *
 * Transitions are checked by the caller against the machine's table; this file stores them with
 * a compare-and-set on the state read, so two writers cannot both move one row.
 */
import { StoreError } from '../errors.js';
import type { SecretBox } from '../secret-box.js';
import type { TimeInput } from '../types.js';
import { type Statements, invalid, run, toMs } from './common.js';
import type { BootstrapState } from '../../omadm/bootstrap/machine.js';

export interface BootstrapDevice {
  readonly msisdn: string;
  readonly deviceId: string | null;
  readonly imei: string | null;
  readonly imsi: string | null;
  readonly group: string | null;
  readonly model: string | null;
  readonly state: BootstrapState;
  readonly security: string | null;
  readonly sends: number;
  readonly serverId: string | null;
  readonly message: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly sentAt: number | null;
  readonly deliveredAt: number | null;
  readonly decidedAt: number | null;
}

export interface BootstrapDeviceInput {
  readonly msisdn: string;
  readonly deviceId?: string;
  readonly imei?: string;
  readonly imsi?: string;
  readonly group?: string;
  readonly model?: string;
}

export interface ServerCredentialsRow {
  readonly serverId: string;
  readonly password: string;
  readonly nonce: Uint8Array;
}

export interface PushRecord {
  readonly id: string;
  readonly msisdn: string;
  readonly kind: 'bootstrap' | 'notification';
  readonly idempotencyKey: string;
  readonly status: 'sent' | 'delivered' | 'failed' | 'buffered';
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface BootstrapSettings {
  readonly scope: string;
  readonly pin: string | null;
  readonly data: Readonly<Record<string, unknown>>;
  readonly updatedAt: number;
}

export interface BootstrapFilter {
  readonly group?: string;
  readonly model?: string;
  readonly state?: BootstrapState;
  readonly msisdnPrefix?: string;
  readonly after?: string;
  readonly limit?: number;
}

interface Row {
  msisdn: string;
  device_id: string | null;
  imei: string | null;
  imsi: string | null;
  group_name: string | null;
  model: string | null;
  state: BootstrapState;
  security: string | null;
  sends: number;
  server_id: string | null;
  server_password: Buffer | null;
  server_nonce: Buffer | null;
  message: string | null;
  created_at: number;
  updated_at: number;
  sent_at: number | null;
  delivered_at: number | null;
  decided_at: number | null;
}

const COLUMNS = 'msisdn, device_id, imei, imsi, group_name, model, state, security, sends, server_id, server_password, server_nonce, message, created_at, updated_at, sent_at, delivered_at, decided_at';

/** E.164 with "+": what the SMS layer takes; anything else is refused before it is stored. */
export const MSISDN = /^\+[1-9]\d{5,14}$/;
const IMEI = /^\d{14,16}$/;
const IMSI = /^\d{6,15}$/;
const NAME = /^[^\p{Cc}]{1,64}$/u;
const DEVICE_ID = /^[^\p{Cc}]{1,128}$/u;

function check(value: string | undefined, re: RegExp, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !re.test(value)) throw invalid(`${what} ${JSON.stringify(String(value).slice(0, 40))} is not valid`);
  return value;
}

export function serverContext(msisdn: string): string {
  return `omadm_bootstrap/server/${msisdn}`;
}

function pinContext(scope: string): string {
  return `omadm_bootstrap_settings/pin/${scope}`;
}

export class SqliteOmaDmBootstrapRepository {
  constructor(
    private readonly s: Statements,
    private readonly secrets: SecretBox,
  ) {}

  private fromRow(r: Row): BootstrapDevice {
    return {
      msisdn: r.msisdn, deviceId: r.device_id, imei: r.imei, imsi: r.imsi, group: r.group_name, model: r.model, state: r.state,
      security: r.security, sends: r.sends, serverId: r.server_id, message: r.message, createdAt: r.created_at, updatedAt: r.updated_at,
      sentAt: r.sent_at, deliveredAt: r.delivered_at, decidedAt: r.decided_at,
    };
  }

  /** Adds a phone number, or completes what is known of it (given fields replace stored ones; nothing is cleared). */
  upsert(input: BootstrapDeviceInput, now: TimeInput): Promise<BootstrapDevice> {
    return run('put OMA DM bootstrap device', () => {
      const msisdn = check(input.msisdn, MSISDN, 'phone number (E.164, e.g. +4712345678)')!;
      const values = {
        msisdn,
        device_id: check(input.deviceId, DEVICE_ID, 'deviceId') ?? (input.imei !== undefined ? `IMEI:${check(input.imei, IMEI, 'IMEI')!}` : null),
        imei: check(input.imei, IMEI, 'IMEI') ?? null,
        imsi: check(input.imsi, IMSI, 'IMSI') ?? null,
        group_name: check(input.group, NAME, 'group') ?? null,
        model: check(input.model, NAME, 'model') ?? null,
        now: toMs(now, 'now'),
      };
      return this.s.transaction(() => {
        this.s.get(`INSERT INTO omadm_bootstrap (msisdn, device_id, imei, imsi, group_name, model, state, sends, created_at, updated_at)
          VALUES (@msisdn, @device_id, @imei, @imsi, @group_name, @model, 'new', 0, @now, @now)
          ON CONFLICT (msisdn) DO UPDATE SET device_id = COALESCE(excluded.device_id, device_id), imei = COALESCE(excluded.imei, imei),
          imsi = COALESCE(excluded.imsi, imsi), group_name = COALESCE(excluded.group_name, group_name), model = COALESCE(excluded.model, model),
          updated_at = excluded.updated_at`).run(values);
        return this.fromRow(this.s.get(`SELECT ${COLUMNS} FROM omadm_bootstrap WHERE msisdn = ?`).get(msisdn) as Row);
      });
    });
  }

  get(msisdn: string): Promise<BootstrapDevice | null> {
    return run('get OMA DM bootstrap device', () => {
      const r = this.s.get(`SELECT ${COLUMNS} FROM omadm_bootstrap WHERE msisdn = ?`).get(msisdn) as Row | undefined;
      return r ? this.fromRow(r) : null;
    });
  }

  getByDeviceId(deviceId: string): Promise<BootstrapDevice | null> {
    return run('get OMA DM bootstrap device', () => {
      const r = this.s.get(`SELECT ${COLUMNS} FROM omadm_bootstrap WHERE device_id = ?`).get(deviceId) as Row | undefined;
      return r ? this.fromRow(r) : null;
    });
  }

  /** Rows matching every given field, by phone number, after the cursor. */
  list(filter: BootstrapFilter = {}): Promise<{ items: BootstrapDevice[]; next: string | null }> {
    return run('list OMA DM bootstrap devices', () => {
      const limit = Math.min(Math.max(1, filter.limit ?? 100), 1000);
      const where = ['msisdn > @after'];
      if (filter.group !== undefined) where.push('group_name = @group');
      if (filter.model !== undefined) where.push('model = @model');
      if (filter.state !== undefined) where.push('state = @state');
      if (filter.msisdnPrefix !== undefined) where.push("substr(msisdn, 1, length(@prefix)) = @prefix");
      const rows = this.s.get(`SELECT ${COLUMNS} FROM omadm_bootstrap WHERE ${where.join(' AND ')} ORDER BY msisdn LIMIT @limit`).all({
        after: filter.after ?? '', group: filter.group ?? null, model: filter.model ?? null, state: filter.state ?? null, prefix: filter.msisdnPrefix ?? '', limit: limit + 1,
      }) as Row[];
      const more = rows.length > limit;
      const kept = more ? rows.slice(0, limit) : rows;
      return { items: kept.map((r) => this.fromRow(r)), next: more ? kept[kept.length - 1]!.msisdn : null };
    });
  }

  /**
   * Moves a row from `from` to `to` (compare-and-set); false when the row is no longer in `from`.
   * `sent` also counts the send and keeps the server's credentials (sealed) and the push.
   */
  transition(msisdn: string, from: BootstrapState, to: BootstrapState, now: TimeInput, extra: { message?: string | null; send?: { security: string; serverId: string; serverPassword: string; serverNonce: Uint8Array; push: { id: string; idempotencyKey: string } } } = {}): Promise<boolean> {
    return run('move OMA DM bootstrap', () => {
      const t = toMs(now, 'now');
      return this.s.transaction(() => {
        const send = extra.send;
        const changes = this.s.get(`UPDATE omadm_bootstrap SET state = @to, updated_at = @now,
            message = CASE WHEN @has_message THEN @message ELSE message END,
            sends = CASE WHEN @to = 'new' THEN 0 ELSE sends + @sent END, sent_at = CASE WHEN @sent THEN @now ELSE sent_at END,
            delivered_at = CASE WHEN @to = 'delivered' THEN @now WHEN @sent THEN NULL ELSE delivered_at END,
            decided_at = CASE WHEN @to IN ('accepted', 'rejected', 'expired', 'stopped') THEN @now WHEN @to IN ('sent', 'new') THEN NULL ELSE decided_at END,
            security = COALESCE(@security, security), server_id = COALESCE(@server_id, server_id),
            server_password = COALESCE(@server_password, server_password), server_nonce = COALESCE(@server_nonce, server_nonce)
          WHERE msisdn = @msisdn AND state = @from`).run({
          msisdn, from, to, now: t, has_message: extra.message !== undefined ? 1 : 0, message: extra.message ?? null, sent: send ? 1 : 0,
          security: send?.security ?? null, server_id: send?.serverId ?? null,
          server_password: send ? this.secrets.seal(Buffer.from(send.serverPassword, 'utf8'), serverContext(msisdn)) : null,
          server_nonce: send ? Buffer.from(send.serverNonce) : null,
        }).changes;
        if (changes === 0) return false;
        if (send) this.s.get(`INSERT INTO omadm_pushes (id, msisdn, kind, idempotency_key, status, created_at, updated_at) VALUES (?, ?, 'bootstrap', ?, 'sent', ?, ?) ON CONFLICT (id) DO NOTHING`).run(send.push.id, msisdn, send.push.idempotencyKey, t, t);
        return true;
      });
    });
  }

  /** Keeps the server's credentials of a number (sealed) before its first document goes out, so a failed push leaves them to the retry. */
  setServerCredentials(msisdn: string, credentials: ServerCredentialsRow, now: TimeInput): Promise<boolean> {
    return run('set OMA DM server credentials', () =>
      this.s.transaction(() => this.s.get('UPDATE omadm_bootstrap SET server_id = ?, server_password = ?, server_nonce = ?, updated_at = ? WHERE msisdn = ?')
        .run(credentials.serverId, this.secrets.seal(Buffer.from(credentials.password, 'utf8'), serverContext(msisdn)), Buffer.from(credentials.nonce), toMs(now, 'now'), msisdn).changes > 0));
  }

  /** The server's credentials for a device (by DevId), for its notifications; null when Depot never bootstrapped it. */
  serverCredentials(deviceId: string): Promise<ServerCredentialsRow | null> {
    return run('get OMA DM server credentials', () => {
      const r = this.s.get('SELECT msisdn, server_id, server_password, server_nonce FROM omadm_bootstrap WHERE device_id = ?').get(deviceId) as Pick<Row, 'msisdn' | 'server_id' | 'server_password' | 'server_nonce'> | undefined;
      if (!r || r.server_id === null || r.server_password === null || r.server_nonce === null) return null;
      const plain = this.secrets.open(r.server_password, serverContext(r.msisdn));
      if (!plain) throw new StoreError('STORE_CORRUPT', `the server password of OMA DM bootstrap ${r.msisdn} does not open with the store's secret key`);
      const password = plain.toString('utf8');
      plain.fill(0);
      return { serverId: r.server_id, password, nonce: new Uint8Array(r.server_nonce) };
    });
  }

  recordPush(push: { id: string; msisdn: string; kind: 'bootstrap' | 'notification'; idempotencyKey: string }, now: TimeInput): Promise<void> {
    return run('record OMA DM push', () => {
      const t = toMs(now, 'now');
      this.s.get(`INSERT INTO omadm_pushes (id, msisdn, kind, idempotency_key, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'sent', ?, ?)
        ON CONFLICT (id) DO NOTHING`).run(push.id, push.msisdn, push.kind, push.idempotencyKey, t, t);
    });
  }

  push(id: string): Promise<PushRecord | null> {
    return run('get OMA DM push', () => {
      const r = this.s.get('SELECT id, msisdn, kind, idempotency_key, status, created_at, updated_at FROM omadm_pushes WHERE id = ?').get(id) as
        | { id: string; msisdn: string; kind: PushRecord['kind']; idempotency_key: string; status: PushRecord['status']; created_at: number; updated_at: number }
        | undefined;
      return r ? { id: r.id, msisdn: r.msisdn, kind: r.kind, idempotencyKey: r.idempotency_key, status: r.status, createdAt: r.created_at, updatedAt: r.updated_at } : null;
    });
  }

  setPushStatus(id: string, status: PushRecord['status'], now: TimeInput): Promise<boolean> {
    return run('set OMA DM push status', () => this.s.get('UPDATE omadm_pushes SET status = ?, updated_at = ? WHERE id = ?').run(status, toMs(now, 'now'), id).changes > 0);
  }

  /** Rows whose bootstrap was sent before `before` and is still waiting (sent, delivered, failed). */
  waitingSince(before: number, limit = 500): Promise<BootstrapDevice[]> {
    return run('list waiting OMA DM bootstraps', () => (this.s.get(`SELECT ${COLUMNS} FROM omadm_bootstrap WHERE state IN ('sent', 'delivered', 'failed') AND sent_at < ? ORDER BY sent_at LIMIT ?`).all(before, limit) as Row[]).map((r) => this.fromRow(r)));
  }

  // ---- settings

  getSettings(scope: string): Promise<BootstrapSettings | null> {
    return run('get OMA DM bootstrap settings', () => {
      const r = this.s.get('SELECT scope, pin, data, updated_at FROM omadm_bootstrap_settings WHERE scope = ?').get(scope) as { scope: string; pin: Buffer | null; data: string; updated_at: number } | undefined;
      if (!r) return null;
      let pin: string | null = null;
      if (r.pin !== null) {
        const plain = this.secrets.open(r.pin, pinContext(scope));
        if (!plain) throw new StoreError('STORE_CORRUPT', `the PIN of OMA DM bootstrap settings ${scope} does not open with the store's secret key`);
        pin = plain.toString('ascii');
        plain.fill(0);
      }
      return { scope: r.scope, pin, data: JSON.parse(r.data) as Record<string, unknown>, updatedAt: r.updated_at };
    });
  }

  /** Sets a scope's PIN (undefined keeps it, null clears it) and options (replaced when given). */
  putSettings(scope: string, input: { pin?: string | null; data?: Readonly<Record<string, unknown>> }, now: TimeInput): Promise<void> {
    return run('put OMA DM bootstrap settings', () => {
      if (!/^(global|group:[^\p{Cc}]{1,64}|model:[^\p{Cc}]{1,64})$/u.test(scope)) throw invalid(`settings scope ${JSON.stringify(scope.slice(0, 80))} is not global, group:<name> or model:<name>`);
      if (input.pin !== undefined && input.pin !== null && !/^\d{4,16}$/.test(input.pin)) throw invalid('a PIN is 4 to 16 digits');
      const t = toMs(now, 'now');
      this.s.transaction(() => {
        const old = this.s.get('SELECT pin, data FROM omadm_bootstrap_settings WHERE scope = ?').get(scope) as { pin: Buffer | null; data: string } | undefined;
        const pin = input.pin === undefined ? (old?.pin ?? null) : input.pin === null ? null : this.secrets.seal(Buffer.from(input.pin, 'ascii'), pinContext(scope));
        const data = input.data === undefined ? (old?.data ?? '{}') : JSON.stringify(input.data);
        this.s.get(`INSERT INTO omadm_bootstrap_settings (scope, pin, data, updated_at) VALUES (?, ?, ?, ?)
          ON CONFLICT (scope) DO UPDATE SET pin = excluded.pin, data = excluded.data, updated_at = excluded.updated_at`).run(scope, pin, data, t);
      });
    });
  }
}

export const OMADM_BOOTSTRAP_MIGRATION_SQL = `
CREATE TABLE omadm_bootstrap (
  msisdn           TEXT    NOT NULL PRIMARY KEY,
  device_id        TEXT    UNIQUE,
  imei             TEXT,
  imsi             TEXT,
  group_name       TEXT,
  model            TEXT,
  state            TEXT    NOT NULL CHECK (state IN ('new', 'sent', 'delivered', 'failed', 'accepted', 'rejected', 'expired', 'stopped')),
  security         TEXT    CHECK (security IN ('NETWPIN', 'USERPIN', 'USERNETWPIN', 'USERPINMAC')),
  sends            INTEGER NOT NULL DEFAULT 0 CHECK (sends >= 0),
  server_id        TEXT,
  server_password  BLOB,
  server_nonce     BLOB,
  message          TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  sent_at          INTEGER,
  delivered_at     INTEGER,
  decided_at       INTEGER
) STRICT;
CREATE INDEX omadm_bootstrap_group ON omadm_bootstrap (group_name, msisdn);
CREATE INDEX omadm_bootstrap_waiting ON omadm_bootstrap (sent_at) WHERE state IN ('sent', 'delivered', 'failed');
CREATE TABLE omadm_pushes (
  id               TEXT    NOT NULL PRIMARY KEY,
  msisdn           TEXT    NOT NULL,
  kind             TEXT    NOT NULL CHECK (kind IN ('bootstrap', 'notification')),
  idempotency_key  TEXT    NOT NULL,
  status           TEXT    NOT NULL CHECK (status IN ('sent', 'delivered', 'failed', 'buffered')),
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
) STRICT;
CREATE TABLE omadm_bootstrap_settings (
  scope            TEXT    NOT NULL PRIMARY KEY,
  pin              BLOB,
  data             TEXT    NOT NULL,
  updated_at       INTEGER NOT NULL
) STRICT;
`;
