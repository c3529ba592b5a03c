/**
 * SMS persistence (issue 15): the outbox (messages and their parts), concatenation reference
 * numbers per recipient, the SMS secrets (sendsms password, callback secret), the explicit
 * endpoint → phone number mapping, and the SMS link download tokens.
 *
 * Secrets at rest: part payloads (a Client Provisioning document carries DM credentials, a
 * link text carries a download capability) and the SMS secrets are sealed with the store's
 * secret key (secret-box.ts), bound to their row; download tokens are kept as their SHA-256
 * only. UDHs, numbers and states are not secret.
 */
import { createHash } from 'node:crypto';
import { StoreError } from '../errors.js';
import type { SecretBox } from '../secret-box.js';
import { type Statements, invalid, run } from './common.js';
import type { DeliveryReport } from '../../sms/gateway.js';
import {
  messageStateOf,
  segmentStateAfterReport,
  type NewSmsMessage,
  type SmsListFilter,
  type SmsMessageRecord,
  type SmsMessageState,
  type SmsOutboxRepository,
  type SmsSegmentState,
} from '../../sms/outbox.js';
import type { Coding, Segment } from '../../sms/udh.js';

interface MessageRow {
  id: string;
  idem_key: string;
  to_number: string;
  from_addr: string | null;
  kind: 'text' | 'binary' | 'wap-push';
  content_type: string | null;
  state: SmsMessageState;
  size: number;
  attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
  expires_at: number;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  pace_group: string | null;
  scheduled_at: number | null;
}

interface SegmentRow {
  message_id: string;
  seq: number;
  state: SmsSegmentState;
  submitted_at: number | null;
  reply: string | null;
  dlr_type: number | null;
  dlr_text: string | null;
  dlr_at: number | null;
}

const INSERT_COLUMNS = 'id, idem_key, to_number, from_addr, kind, content_type, state, size, attempts, next_attempt_at, last_error, expires_at, created_at, updated_at, finished_at';
/** Read: the inserted columns and the send pacing (migration sms-send-pacing). */
const M_COLUMNS = `${INSERT_COLUMNS}, pace_group, scheduled_at`;
const S_COLUMNS = 'message_id, seq, state, submitted_at, reply, dlr_type, dlr_text, dlr_at';
const FINAL: readonly SmsMessageState[] = ['delivered', 'failed', 'cancelled'];

const SQL = {
  insert: `INSERT INTO sms_messages (${INSERT_COLUMNS}) VALUES (@id, @key, @to, @from, @kind, @contentType, 'queued', @size, 0, @now, NULL, @expiresAt, @now, @now, NULL)`,
  insertSegment: `INSERT INTO sms_segments (message_id, seq, coding, udh, data, state) VALUES (?, ?, ?, ?, ?, 'pending')`,
  get: `SELECT ${M_COLUMNS} FROM sms_messages WHERE id = ?`,
  getByKey: `SELECT ${M_COLUMNS} FROM sms_messages WHERE idem_key = ?`,
  segments: `SELECT ${S_COLUMNS} FROM sms_segments WHERE message_id = ? ORDER BY seq`,
  segmentData: 'SELECT coding, udh, data FROM sms_segments WHERE message_id = ? AND seq = ?',
  due: `SELECT ${M_COLUMNS} FROM sms_messages WHERE state = 'queued' AND next_attempt_at <= ? ORDER BY next_attempt_at, rowid LIMIT ?`,
  nextDue: `SELECT MIN(next_attempt_at) FROM sms_messages WHERE state = 'queued'`,
  setSegment: 'UPDATE sms_segments SET state = @state, reply = COALESCE(@reply, reply), submitted_at = CASE WHEN @state = \'submitted\' AND submitted_at IS NULL THEN @now ELSE submitted_at END WHERE message_id = @id AND seq = @seq',
  setMessageState: 'UPDATE sms_messages SET state = @state, updated_at = @now, finished_at = @finishedAt, next_attempt_at = CASE WHEN @state = \'queued\' THEN next_attempt_at ELSE NULL END WHERE id = @id',
  failure: 'UPDATE sms_messages SET attempts = attempts + 1, last_error = @error, next_attempt_at = @next, updated_at = @now WHERE id = @id',
  dlr: 'UPDATE sms_segments SET state = @state, dlr_type = @type, dlr_text = @text, dlr_at = @at WHERE message_id = @id AND seq = @seq',
  dlrOnly: 'UPDATE sms_segments SET dlr_type = @type, dlr_text = @text, dlr_at = @at WHERE message_id = @id AND seq = @seq',
  segmentState: 'SELECT state FROM sms_segments WHERE message_id = ? AND seq = ?',
  expired: `SELECT id FROM sms_messages WHERE state = 'queued' AND expires_at <= ? LIMIT 100`,
  cancelSegments: `UPDATE sms_segments SET state = 'cancelled' WHERE message_id = ? AND state = 'pending'`,
  interrupted: `SELECT DISTINCT message_id FROM sms_segments WHERE state = 'submitting'`,
  unknownSegments: `UPDATE sms_segments SET state = 'unknown', reply = 'Depot stopped while submitting: not resent' WHERE message_id = ? AND state = 'submitting'`,
  ref: `INSERT INTO sms_concat_refs (to_number, last_ref) VALUES (?, 0) ON CONFLICT (to_number) DO UPDATE SET last_ref = (last_ref + 1) % 256 RETURNING last_ref`,
  getSecret: 'SELECT sealed FROM sms_secrets WHERE name = ?',
  putSecret: 'INSERT INTO sms_secrets (name, sealed, created_at, updated_at) VALUES (@name, @sealed, @now, @now) ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at',
  getNumber: 'SELECT number FROM sms_numbers WHERE endpoint = ?',
  putNumber: 'INSERT INTO sms_numbers (endpoint, number, updated_at) VALUES (?, ?, ?) ON CONFLICT (endpoint) DO UPDATE SET number = excluded.number, updated_at = excluded.updated_at',
  removeNumber: 'DELETE FROM sms_numbers WHERE endpoint = ?',
  lastScheduled: 'SELECT MAX(scheduled_at) FROM sms_messages WHERE pace_group = ?',
  schedule: 'UPDATE sms_messages SET pace_group = @group, scheduled_at = @at, next_attempt_at = @at, expires_at = expires_at + (@at - @now) WHERE id = @id',
} as const;

function segmentContext(id: string, seq: number): string {
  return `sms_segments/${id}/${seq}`;
}

function cursorOf(r: MessageRow): string {
  return `${r.created_at}:${r.id}`;
}

export class SqliteSmsOutboxRepository implements SmsOutboxRepository {
  constructor(
    private readonly s: Statements,
    private readonly secrets: SecretBox,
  ) {}

  private recordOf(r: MessageRow): SmsMessageRecord {
    const segments = (this.s.get(SQL.segments).all(r.id) as SegmentRow[]).map((g) => ({
      seq: g.seq,
      state: g.state,
      submittedAt: g.submitted_at,
      reply: g.reply,
      dlrType: g.dlr_type,
      dlrText: g.dlr_text,
      dlrAt: g.dlr_at,
    }));
    return {
      id: r.id,
      key: r.idem_key,
      to: r.to_number,
      from: r.from_addr,
      kind: r.kind,
      contentType: r.content_type,
      state: r.state,
      size: r.size,
      attempts: r.attempts,
      nextAttemptAt: r.next_attempt_at,
      lastError: r.last_error,
      expiresAt: r.expires_at,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      finishedAt: r.finished_at,
      paceGroup: r.pace_group,
      scheduledAt: r.scheduled_at,
      segments,
    };
  }

  private require(id: string): SmsMessageRecord {
    const row = this.s.get(SQL.get).get(id) as MessageRow | undefined;
    if (!row) throw new StoreError('NOT_FOUND', `no SMS ${id}`);
    return this.recordOf(row);
  }

  /** Derives the message state from its parts and stores it; returns the record. */
  private settle(id: string, now: number): SmsMessageRecord {
    const row = this.s.get(SQL.get).get(id) as MessageRow;
    const states = (this.s.get(SQL.segments).all(id) as SegmentRow[]).map((g) => g.state);
    let state = messageStateOf(states);
    // A failure recorded on the message itself (refused, expired) stands.
    if (row.state === 'failed' || row.state === 'cancelled') state = row.state;
    if (state !== row.state) {
      this.s.get(SQL.setMessageState).run({ id, state, now, finishedAt: FINAL.includes(state) ? now : null });
    }
    return this.require(id);
  }

  create(message: NewSmsMessage, now: number): Promise<{ record: SmsMessageRecord; created: boolean }> {
    return run('store SMS', () =>
      this.s.transaction(() => {
        const existing = this.s.get(SQL.getByKey).get(message.key) as MessageRow | undefined;
        if (existing) {
          if (existing.to_number !== message.to) throw new StoreError('CONFLICT', `job step ${message.key} already sent its SMS to another number`);
          return { record: this.recordOf(existing), created: false };
        }
        if (message.segments.length === 0) throw invalid('an SMS needs at least one part');
        const size = message.segments.reduce((n, g) => n + g.data.length, 0);
        this.s.get(SQL.insert).run({ id: message.id, key: message.key, to: message.to, from: message.from, kind: message.kind, contentType: message.contentType, size, expiresAt: message.expiresAt, now });
        message.segments.forEach((g, i) => {
          this.s.get(SQL.insertSegment).run(message.id, i + 1, g.coding, g.udh ? Buffer.from(g.udh) : null, this.secrets.seal(g.data, segmentContext(message.id, i + 1)));
        });
        if (message.pace) {
          // The group's next slot, in the same transaction as the insert: two sends never share one.
          const last = this.s.get(SQL.lastScheduled).pluck().get(message.pace.group) as number | null;
          const at = last === null ? now : Math.max(now, last + message.pace.intervalMs);
          this.s.get(SQL.schedule).run({ id: message.id, group: message.pace.group, at, now });
        }
        return { record: this.require(message.id), created: true };
      }),
    );
  }

  get(id: string): Promise<SmsMessageRecord | null> {
    return run('get SMS', () => {
      const row = this.s.get(SQL.get).get(id) as MessageRow | undefined;
      return row ? this.recordOf(row) : null;
    });
  }

  getByKey(key: string): Promise<SmsMessageRecord | null> {
    return run('get SMS', () => {
      const row = this.s.get(SQL.getByKey).get(key) as MessageRow | undefined;
      return row ? this.recordOf(row) : null;
    });
  }

  list(filter: SmsListFilter): Promise<{ items: SmsMessageRecord[]; next: string | null }> {
    return run('list SMS', () => {
      const limit = Math.min(Math.max(1, filter.limit ?? 100), 1000);
      const where: string[] = [];
      const args: (string | number)[] = [];
      if (filter.state) {
        where.push('state = ?');
        args.push(filter.state);
      }
      if (filter.to) {
        where.push('to_number = ?');
        args.push(filter.to);
      }
      if (filter.after) {
        const m = /^(\d+):([A-Za-z0-9_-]+)$/.exec(filter.after);
        if (!m) throw invalid('after is not a cursor from a previous page');
        where.push('(created_at < ? OR (created_at = ? AND id < ?))');
        args.push(Number(m[1]), Number(m[1]), m[2]!);
      }
      const sql = `SELECT ${M_COLUMNS} FROM sms_messages ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`;
      const rows = this.s.get(sql).all(...args, limit + 1) as MessageRow[];
      const kept = rows.slice(0, limit);
      return { items: kept.map((r) => this.recordOf(r)), next: rows.length > limit ? cursorOf(kept[kept.length - 1]!) : null };
    });
  }

  due(now: number, limit: number): Promise<SmsMessageRecord[]> {
    return run('list due SMS', () => (this.s.get(SQL.due).all(now, limit) as MessageRow[]).map((r) => this.recordOf(r)));
  }

  nextDueAt(): Promise<number | null> {
    return run('next SMS attempt', () => this.s.get(SQL.nextDue).pluck().get() as number | null);
  }

  segment(id: string, seq: number): Promise<Segment | null> {
    return run('read SMS part', () => {
      const row = this.s.get(SQL.segmentData).get(id, seq) as { coding: Coding; udh: Buffer | null; data: Buffer } | undefined;
      if (!row) return null;
      const data = this.secrets.open(row.data, segmentContext(id, seq));
      if (!data) throw new StoreError('STORE_CORRUPT', `SMS ${id} part ${seq} does not open with the store's secret key`);
      return { coding: row.coding, udh: row.udh ? new Uint8Array(row.udh) : null, data: new Uint8Array(data) };
    });
  }

  setSegmentState(id: string, seq: number, state: SmsSegmentState, reply: string | null, now: number): Promise<SmsMessageRecord> {
    return run('update SMS part', () =>
      this.s.transaction(() => {
        const current = this.s.get(SQL.segmentState).pluck().get(id, seq) as SmsSegmentState | undefined;
        if (current === undefined) throw new StoreError('NOT_FOUND', `no SMS part ${id}.${seq}`);
        // A delivery report can overtake the gateway's answer to the submit: a settled part stays settled.
        const settled = current === 'delivered' || current === 'failed' || current === 'cancelled';
        this.s.get(SQL.setSegment).run({ id, seq, state: settled ? current : state, reply, now });
        return this.settle(id, now);
      }),
    );
  }

  recordAttemptFailure(id: string, error: string, nextAttemptAt: number | null, now: number): Promise<SmsMessageRecord> {
    return run('record SMS failure', () =>
      this.s.transaction(() => {
        if (this.s.get(SQL.failure).run({ id, error: error.slice(0, 500), next: nextAttemptAt, now }).changes === 0) throw new StoreError('NOT_FOUND', `no SMS ${id}`);
        if (nextAttemptAt === null) {
          this.s.get(SQL.cancelSegments).run(id);
          this.s.get(SQL.setMessageState).run({ id, state: 'failed', now, finishedAt: now });
        }
        return this.settle(id, now);
      }),
    );
  }

  recordDeliveryReport(report: DeliveryReport, now: number): Promise<SmsMessageRecord | null> {
    return run('record SMS delivery report', () =>
      this.s.transaction(() => {
        const current = this.s.get(SQL.segmentState).pluck().get(report.messageId, report.seq) as SmsSegmentState | undefined;
        if (current === undefined) return null;
        const next = segmentStateAfterReport(current, report.type);
        const args = { id: report.messageId, seq: report.seq, type: report.type, text: report.text, at: report.at };
        if (next) this.s.get(SQL.dlr).run({ ...args, state: next });
        else if (current !== 'delivered' && current !== 'failed') this.s.get(SQL.dlrOnly).run(args);
        return this.settle(report.messageId, now);
      }),
    );
  }

  expire(now: number): Promise<SmsMessageRecord[]> {
    return run('expire SMS', () =>
      this.s.transaction(() => {
        const ids = this.s.get(SQL.expired).pluck().all(now) as string[];
        return ids.map((id) => {
          const row = this.s.get(SQL.get).get(id) as MessageRow;
          const why = `not submitted within its validity${row.last_error ? `; last error: ${row.last_error}` : ''}`;
          this.s.get(SQL.failure).run({ id, error: why.slice(0, 500), next: null, now });
          this.s.get(SQL.cancelSegments).run(id);
          this.s.get(SQL.setMessageState).run({ id, state: 'failed', now, finishedAt: now });
          return this.require(id);
        });
      }),
    );
  }

  cancel(id: string, now: number): Promise<SmsMessageRecord | null> {
    return run('cancel SMS', () =>
      this.s.transaction(() => {
        const row = this.s.get(SQL.get).get(id) as MessageRow | undefined;
        if (!row) return null;
        if (this.s.get(SQL.cancelSegments).run(id).changes > 0) this.s.get(SQL.setMessageState).run({ id, state: 'cancelled', now, finishedAt: now });
        return this.settle(id, now);
      }),
    );
  }

  recoverInterrupted(now: number): Promise<number> {
    return run('recover SMS', () =>
      this.s.transaction(() => {
        const ids = this.s.get(SQL.interrupted).pluck().all() as string[];
        let n = 0;
        for (const id of ids) {
          n += this.s.get(SQL.unknownSegments).run(id).changes;
          this.settle(id, now);
        }
        return n;
      }),
    );
  }

  nextConcatRef(to: string): Promise<number> {
    return run('next SMS reference', () => this.s.transaction(() => this.s.get(SQL.ref).pluck().get(to) as number));
  }
}

/** Names of the SMS secrets. */
export type SmsSecretName = 'kannel.sendsms-password' | 'callback-secret';

/** The SMS secrets, sealed at rest (context sms_secrets/<name>). */
export class SqliteSmsSecrets {
  constructor(
    private readonly s: Statements,
    private readonly secrets: SecretBox,
  ) {}

  get(name: SmsSecretName): Promise<string | null> {
    return run('read SMS secret', () => {
      const sealed = this.s.get(SQL.getSecret).pluck().get(name) as Buffer | undefined;
      if (!sealed) return null;
      const plain = this.secrets.open(sealed, `sms_secrets/${name}`);
      if (!plain) throw new StoreError('STORE_CORRUPT', `the SMS secret ${name} does not open with the store's secret key`);
      return plain.toString('utf8');
    });
  }

  put(name: SmsSecretName, value: string, now: number): Promise<void> {
    return run('store SMS secret', () => {
      if (!/^[\x21-\x7e]{8,200}$/.test(value)) throw invalid(`the SMS secret ${name} must be 8 to 200 printable characters without spaces`);
      this.s.transaction(() => this.s.get(SQL.putSecret).run({ name, sealed: this.secrets.seal(Buffer.from(value, 'utf8'), `sms_secrets/${name}`), now }));
    });
  }
}

/** Explicit endpoint → phone number mapping (numbers normalised by the caller). */
export class SqliteSmsNumbers {
  constructor(private readonly s: Statements) {}

  get(endpoint: string): Promise<string | null> {
    return run('read SMS number', () => (this.s.get(SQL.getNumber).pluck().get(endpoint) as string | undefined) ?? null);
  }

  put(endpoint: string, number: string, now: number): Promise<void> {
    return run('store SMS number', () => void this.s.transaction(() => this.s.get(SQL.putNumber).run(endpoint, number, now)));
  }

  remove(endpoint: string): Promise<boolean> {
    return run('remove SMS number', () => this.s.transaction(() => this.s.get(SQL.removeNumber).run(endpoint).changes > 0));
  }
}

/** One SMS link download capability (the token itself is never stored, only its SHA-256). */
export interface SmsLinkRecord {
  readonly jobId: string;
  readonly attemptSeq: number;
  readonly endpoint: string;
  readonly packageSha256: string;
  readonly size: number;
  readonly expiresAt: number;
  readonly maxFetches: number;
  readonly fetches: number;
  /** Highest byte offset served (end of the furthest range sent). */
  readonly bytesServed: number;
  readonly firstFetchAt: number | null;
  readonly lastFetchAt: number | null;
  readonly completedAt: number | null;
  readonly revokedAt: number | null;
  readonly createdAt: number;
}

interface LinkRow {
  job_id: string;
  attempt_seq: number;
  endpoint: string;
  package_sha256: string;
  size: number;
  expires_at: number;
  max_fetches: number;
  fetches: number;
  bytes_served: number;
  first_fetch_at: number | null;
  last_fetch_at: number | null;
  completed_at: number | null;
  revoked_at: number | null;
  created_at: number;
}

const L_COLUMNS = 'job_id, attempt_seq, endpoint, package_sha256, size, expires_at, max_fetches, fetches, bytes_served, first_fetch_at, last_fetch_at, completed_at, revoked_at, created_at';

function linkOf(r: LinkRow): SmsLinkRecord {
  return {
    jobId: r.job_id,
    attemptSeq: r.attempt_seq,
    endpoint: r.endpoint,
    packageSha256: r.package_sha256,
    size: r.size,
    expiresAt: r.expires_at,
    maxFetches: r.max_fetches,
    fetches: r.fetches,
    bytesServed: r.bytes_served,
    firstFetchAt: r.first_fetch_at,
    lastFetchAt: r.last_fetch_at,
    completedAt: r.completed_at,
    revokedAt: r.revoked_at,
    createdAt: r.created_at,
  };
}

export const tokenHash = (token: string): string => createHash('sha256').update(token).digest('hex');

export class SqliteSmsLinks {
  constructor(private readonly s: Statements) {}

  /** Records a new link for a chain job's attempt (a second one for the same attempt replaces the first). */
  create(token: string, link: Pick<SmsLinkRecord, 'jobId' | 'attemptSeq' | 'endpoint' | 'packageSha256' | 'size' | 'expiresAt' | 'maxFetches'>, now: number): Promise<SmsLinkRecord> {
    return run('store SMS link', () =>
      this.s.transaction(() => {
        this.s.get('UPDATE sms_links SET revoked_at = ? WHERE job_id = ? AND attempt_seq = ? AND revoked_at IS NULL').run(now, link.jobId, link.attemptSeq);
        this.s
          .get(`INSERT INTO sms_links (token_hash, ${L_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, NULL, NULL, NULL, NULL, ?)`)
          .run(tokenHash(token), link.jobId, link.attemptSeq, link.endpoint, link.packageSha256, link.size, link.expiresAt, link.maxFetches, now);
        return linkOf(this.s.get(`SELECT ${L_COLUMNS} FROM sms_links WHERE token_hash = ?`).get(tokenHash(token)) as LinkRow);
      }),
    );
  }

  /** The link of a token, whatever its state (the caller checks expiry, revocation and fetches). */
  byToken(token: string): Promise<SmsLinkRecord | null> {
    return run('read SMS link', () => {
      const row = this.s.get(`SELECT ${L_COLUMNS} FROM sms_links WHERE token_hash = ?`).get(tokenHash(token)) as LinkRow | undefined;
      return row ? linkOf(row) : null;
    });
  }

  /** The newest link of a chain job's attempt. */
  byAttempt(jobId: string, attemptSeq: number): Promise<SmsLinkRecord | null> {
    return run('read SMS link', () => {
      const row = this.s.get(`SELECT ${L_COLUMNS} FROM sms_links WHERE job_id = ? AND attempt_seq = ? ORDER BY created_at DESC LIMIT 1`).get(jobId, attemptSeq) as LinkRow | undefined;
      return row ? linkOf(row) : null;
    });
  }

  /** Counts a fetch (a GET, whole or ranged) if the link still allows one; false when it does not. */
  countFetch(token: string, now: number): Promise<boolean> {
    return run('count SMS link fetch', () =>
      this.s.transaction(
        () =>
          this.s
            .get('UPDATE sms_links SET fetches = fetches + 1, first_fetch_at = COALESCE(first_fetch_at, ?), last_fetch_at = ? WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ? AND fetches < max_fetches')
            .run(now, now, tokenHash(token), now).changes > 0,
      ),
    );
  }

  /** Records bytes served up to `end` (the furthest so far is kept); complete when it reaches the size. */
  served(token: string, end: number, now: number): Promise<void> {
    return run('record SMS link progress', () =>
      void this.s.transaction(
        () =>
          this.s
            .get('UPDATE sms_links SET bytes_served = MAX(bytes_served, @end), completed_at = CASE WHEN completed_at IS NULL AND MAX(bytes_served, @end) >= size THEN @now ELSE completed_at END WHERE token_hash = @hash')
            .run({ end, now, hash: tokenHash(token) }),
        'soft',
      ),
    );
  }

  revoke(jobId: string, attemptSeq: number, now: number): Promise<void> {
    return run('revoke SMS link', () => void this.s.transaction(() => this.s.get('UPDATE sms_links SET revoked_at = ? WHERE job_id = ? AND attempt_seq = ? AND revoked_at IS NULL').run(now, jobId, attemptSeq)));
  }
}

/** The SMS repositories of one store. */
export class SqliteSmsRepositories {
  readonly outbox: SqliteSmsOutboxRepository;
  readonly secrets: SqliteSmsSecrets;
  readonly numbers: SqliteSmsNumbers;
  readonly links: SqliteSmsLinks;

  constructor(s: Statements, box: SecretBox) {
    this.outbox = new SqliteSmsOutboxRepository(s, box);
    this.secrets = new SqliteSmsSecrets(s, box);
    this.numbers = new SqliteSmsNumbers(s);
    this.links = new SqliteSmsLinks(s);
  }
}

/** SQL of the SMS migration (src/store/migrations.ts). */
export const SMS_MIGRATION_SQL = `
CREATE TABLE sms_messages (
  id              TEXT    NOT NULL PRIMARY KEY,
  idem_key        TEXT    NOT NULL UNIQUE,
  to_number       TEXT    NOT NULL,
  from_addr       TEXT,
  kind            TEXT    NOT NULL CHECK (kind IN ('text', 'binary', 'wap-push')),
  content_type    TEXT,
  state           TEXT    NOT NULL CHECK (state IN ('queued', 'submitted', 'delivered', 'failed', 'unknown', 'cancelled')),
  size            INTEGER NOT NULL CHECK (size >= 0),
  attempts        INTEGER NOT NULL CHECK (attempts >= 0),
  next_attempt_at INTEGER,
  last_error      TEXT,
  expires_at      INTEGER NOT NULL,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  finished_at     INTEGER
) STRICT;
CREATE INDEX sms_messages_due ON sms_messages (next_attempt_at) WHERE state = 'queued';
CREATE INDEX sms_messages_created ON sms_messages (created_at, id);
CREATE INDEX sms_messages_to ON sms_messages (to_number, created_at);
CREATE TABLE sms_segments (
  message_id   TEXT    NOT NULL REFERENCES sms_messages (id) ON DELETE CASCADE,
  seq          INTEGER NOT NULL CHECK (seq BETWEEN 1 AND 255),
  coding       INTEGER NOT NULL CHECK (coding IN (0, 1, 2)),
  udh          BLOB,
  data         BLOB    NOT NULL,
  state        TEXT    NOT NULL CHECK (state IN ('pending', 'submitting', 'submitted', 'delivered', 'failed', 'unknown', 'cancelled')),
  submitted_at INTEGER,
  reply        TEXT,
  dlr_type     INTEGER,
  dlr_text     TEXT,
  dlr_at       INTEGER,
  PRIMARY KEY (message_id, seq)
) STRICT;
CREATE INDEX sms_segments_submitting ON sms_segments (message_id) WHERE state = 'submitting';
CREATE TABLE sms_concat_refs (
  to_number TEXT    NOT NULL PRIMARY KEY,
  last_ref  INTEGER NOT NULL CHECK (last_ref BETWEEN 0 AND 255)
) STRICT;
CREATE TABLE sms_secrets (
  name       TEXT    NOT NULL PRIMARY KEY,
  sealed     BLOB    NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE sms_numbers (
  endpoint   TEXT    NOT NULL PRIMARY KEY,
  number     TEXT    NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE sms_links (
  token_hash     TEXT    NOT NULL PRIMARY KEY,
  job_id         TEXT    NOT NULL,
  attempt_seq    INTEGER NOT NULL,
  endpoint       TEXT    NOT NULL,
  package_sha256 TEXT    NOT NULL,
  size           INTEGER NOT NULL CHECK (size >= 0),
  expires_at     INTEGER NOT NULL,
  max_fetches    INTEGER NOT NULL CHECK (max_fetches > 0),
  fetches        INTEGER NOT NULL CHECK (fetches >= 0),
  bytes_served   INTEGER NOT NULL CHECK (bytes_served >= 0),
  first_fetch_at INTEGER,
  last_fetch_at  INTEGER,
  completed_at   INTEGER,
  revoked_at     INTEGER,
  created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX sms_links_attempt ON sms_links (job_id, attempt_seq, created_at);
`;

/**
 * Send pacing (issue 16: a campaign wave's SMS do not flood the gateway): a message of a pace
 * group is scheduled one interval after the group's last one; the dispatcher sends nothing
 * before its scheduled time, and the time stays recorded after it was sent.
 */
export const SMS_PACING_MIGRATION_SQL = `
ALTER TABLE sms_messages ADD COLUMN pace_group TEXT;
ALTER TABLE sms_messages ADD COLUMN scheduled_at INTEGER;
CREATE INDEX sms_messages_pace ON sms_messages (pace_group, scheduled_at) WHERE pace_group IS NOT NULL;
`;
