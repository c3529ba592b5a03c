/**
 * Pushes of Depot's root certificate to devices (store `device_trust`, migration 17; domain in
 * src/fleet/trust.ts): one row per device, its last push. The one-time link's token is kept only
 * as its SHA-256 (the link is a capability; a copy of the file does not give it away).
 */
import type { Page, TimeInput } from '../types.js';
import type { NewTrustPush, TrustFilter, TrustPatch, TrustPushState, TrustRecord, TrustRepository } from '../../fleet/trust.js';
import { TRUST_CHANNELS, TRUST_PUSH_STATES } from '../../fleet/trust.js';
import { type Statements, invalid, limitOf, pageOf, run, toMs } from './common.js';

export const TRUST_MIGRATION_SQL = `
CREATE TABLE device_trust (
  endpoint         TEXT    PRIMARY KEY,
  state            TEXT    NOT NULL CHECK (state IN ('sent', 'pushed', 'confirmed', 'failed')),
  channel          TEXT    NOT NULL CHECK (channel IN ('sms-link', 'lwm2m-bootstrap', 'tls-session')),
  detail           TEXT,
  message_id       TEXT,
  root_sha256      TEXT    NOT NULL,
  token_hash       TEXT    UNIQUE,
  link_expires_at  INTEGER,
  fetches          INTEGER NOT NULL DEFAULT 0 CHECK (fetches >= 0),
  sent_at          INTEGER,
  pushed_at        INTEGER,
  confirmed_at     INTEGER,
  updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX device_trust_state ON device_trust (state, endpoint);
`;

interface Row {
  endpoint: string;
  state: TrustPushState;
  channel: TrustRecord['channel'];
  detail: string | null;
  message_id: string | null;
  root_sha256: string;
  link_expires_at: number | null;
  fetches: number;
  sent_at: number | null;
  pushed_at: number | null;
  confirmed_at: number | null;
  updated_at: number;
}

const COLUMNS = 'endpoint, state, channel, detail, message_id, root_sha256, link_expires_at, fetches, sent_at, pushed_at, confirmed_at, updated_at';

const SQL = {
  get: `SELECT ${COLUMNS} FROM device_trust WHERE endpoint = ?`,
  upsert: `INSERT INTO device_trust (endpoint, state, channel, detail, message_id, root_sha256, token_hash, link_expires_at, fetches, sent_at, pushed_at, confirmed_at, updated_at)
    VALUES (@endpoint, @state, @channel, @detail, @message_id, @root_sha256, @token_hash, @link_expires_at, 0, @sent_at, @pushed_at, NULL, @now)
    ON CONFLICT (endpoint) DO UPDATE SET state = excluded.state, channel = excluded.channel, detail = excluded.detail, message_id = excluded.message_id,
      root_sha256 = excluded.root_sha256, token_hash = excluded.token_hash, link_expires_at = excluded.link_expires_at, fetches = 0,
      sent_at = excluded.sent_at, pushed_at = excluded.pushed_at, confirmed_at = NULL, updated_at = excluded.updated_at`,
  update: `UPDATE device_trust SET state = coalesce(@state, state), detail = coalesce(@detail, detail), message_id = coalesce(@message_id, message_id),
      pushed_at = CASE WHEN @state IN ('pushed', 'confirmed') THEN coalesce(pushed_at, @now) ELSE pushed_at END,
      confirmed_at = CASE WHEN @state = 'confirmed' THEN @now ELSE confirmed_at END,
      updated_at = @now WHERE endpoint = @endpoint`,
  byToken: `SELECT ${COLUMNS} FROM device_trust WHERE token_hash = ?`,
  fetch: `UPDATE device_trust SET fetches = fetches + 1, state = CASE WHEN state = 'sent' THEN 'pushed' ELSE state END,
      pushed_at = coalesce(pushed_at, @now), updated_at = @now, detail = 'the device fetched the root from its link'
    WHERE token_hash = @token_hash AND state != 'failed' AND link_expires_at > @now AND fetches < @max RETURNING ${COLUMNS}`,
  list: `SELECT ${COLUMNS} FROM device_trust WHERE endpoint > @after AND (@state IS NULL OR state = @state) ORDER BY endpoint LIMIT @limit`,
} as const;

function fromRow(r: Row): TrustRecord {
  return {
    endpoint: r.endpoint, state: r.state, channel: r.channel, detail: r.detail, messageId: r.message_id, rootSha256: r.root_sha256,
    linkExpiresAt: r.link_expires_at, fetches: r.fetches, sentAt: r.sent_at, pushedAt: r.pushed_at, confirmedAt: r.confirmed_at, updatedAt: r.updated_at,
  };
}

export class SqliteTrustRepository implements TrustRepository {
  constructor(private readonly s: Statements) {}

  get(endpoint: string): Promise<TrustRecord | null> {
    return run('read trust record', () => {
      const row = this.s.get(SQL.get).get(endpoint) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  start(push: NewTrustPush, now: TimeInput): Promise<TrustRecord> {
    return run('record certificate push', () => {
      if (!TRUST_PUSH_STATES.includes(push.state)) throw invalid(`trust state must be one of ${TRUST_PUSH_STATES.join(', ')}`);
      if (!TRUST_CHANNELS.includes(push.channel)) throw invalid(`trust channel must be one of ${TRUST_CHANNELS.join(', ')}`);
      if (push.endpoint.length === 0 || push.endpoint.length > 300) throw invalid('a device endpoint is 1-300 characters');
      const t = toMs(now, 'now');
      return this.s.transaction(() => {
        this.s.get(SQL.upsert).run({
          endpoint: push.endpoint, state: push.state, channel: push.channel, detail: push.detail, message_id: push.messageId ?? null, root_sha256: push.rootSha256,
          token_hash: push.tokenHash ?? null, link_expires_at: push.linkExpiresAt ?? null, sent_at: t, pushed_at: push.state === 'pushed' || push.state === 'confirmed' ? t : null, now: t,
        });
        if (push.state === 'confirmed') this.s.get(SQL.update).run({ endpoint: push.endpoint, state: 'confirmed', detail: null, message_id: null, now: t });
        return fromRow(this.s.get(SQL.get).get(push.endpoint) as Row);
      });
    });
  }

  transition(endpoint: string, from: readonly TrustPushState[], patch: TrustPatch, now: TimeInput): Promise<TrustRecord | null> {
    return run('update trust record', () => {
      const t = toMs(now, 'now');
      return this.s.transaction(() => {
        const row = this.s.get(SQL.get).get(endpoint) as Row | undefined;
        if (!row || !from.includes(row.state)) return null;
        this.s.get(SQL.update).run({ endpoint, state: patch.state ?? null, detail: patch.detail ?? null, message_id: patch.messageId ?? null, now: t });
        return fromRow(this.s.get(SQL.get).get(endpoint) as Row);
      });
    });
  }

  fetchLink(tokenHash: string, maxFetches: number, now: TimeInput): Promise<TrustRecord | null> {
    return run('count certificate link fetch', () => {
      const row = this.s.get(SQL.fetch).get({ token_hash: tokenHash, now: toMs(now, 'now'), max: maxFetches }) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  list(filter: TrustFilter = {}): Promise<Page<TrustRecord>> {
    return run('list trust records', () => {
      const limit = limitOf(filter);
      const rows = this.s.get(SQL.list).all({ after: filter.after ?? '', state: filter.state ?? null, limit: limit + 1 }) as Row[];
      return pageOf(rows, limit, fromRow, (r) => r.endpoint);
    });
  }
}
