import { StoreError } from '../errors.js';
import {
  BOOTSTRAP_STATES,
  BOOTSTRAP_TRANSITIONS,
  type BootstrapEndpoint,
  type BootstrapRefusal,
  type BootstrapRepository,
  type BootstrapSighting,
  type BootstrapState,
  type Page,
  type PageRequest,
  type PendingLimits,
  type SightingResult,
  type TimeInput,
} from '../types.js';
import { type Statements, invalid, limitOf, pageOf, requireText, run, toMs } from './common.js';

interface Row {
  endpoint: string;
  state: BootstrapState;
  first_seen_at: number;
  last_seen_at: number;
  decided_at: number | null;
  decided_by: string | null;
  request_count: number;
  last_peer_address: string | null;
  last_transport: 'coap' | 'coaps' | null;
  bound_identity: string | null;
  bootstrap_count: number;
  last_bootstrap_at: number | null;
  rotate_key: number;
  refused_count: number;
  last_refusal: string | null;
  last_refused_at: number | null;
}

const COLUMNS =
  'endpoint, state, first_seen_at, last_seen_at, decided_at, decided_by, request_count, last_peer_address, ' +
  'last_transport, bound_identity, bootstrap_count, last_bootstrap_at, rotate_key, refused_count, last_refusal, last_refused_at';
/** Pending and never decided: what the bounds count and the TTL removes (a reset record was decided once and is kept). */
const UNDECIDED = "state = 'pending' AND decided_at IS NULL";
/** Refusal details are the server's text around untrusted names: kept short. */
const MAX_REFUSAL_TEXT = 300;

const SQL = {
  sighted: `INSERT INTO bootstrap_endpoints (endpoint, state, first_seen_at, last_seen_at, request_count, last_peer_address)
    VALUES (@endpoint, 'pending', @now, @now, 1, @peer)
    ON CONFLICT (endpoint) DO UPDATE SET last_seen_at = max(last_seen_at, excluded.last_seen_at),
      request_count = request_count + 1, last_peer_address = excluded.last_peer_address
    RETURNING ${COLUMNS}`,
  get: `SELECT ${COLUMNS} FROM bootstrap_endpoints WHERE endpoint = ?`,
  seenAgain: `UPDATE bootstrap_endpoints SET last_seen_at = max(last_seen_at, @now), request_count = request_count + 1,
      last_peer_address = @peer, last_transport = @transport
    WHERE endpoint = @endpoint RETURNING ${COLUMNS}`,
  countFromSource: `SELECT count(*) FROM bootstrap_endpoints WHERE ${UNDECIDED} AND source_host = ?`,
  countUndecided: `SELECT count(*) FROM bootstrap_endpoints WHERE ${UNDECIDED}`,
  insertPending: `INSERT INTO bootstrap_endpoints (endpoint, state, first_seen_at, last_seen_at, request_count, last_peer_address, source_host, last_transport)
    VALUES (@endpoint, 'pending', @now, @now, 1, @peer, @host, @transport) RETURNING ${COLUMNS}`,
  purgeUndecided: `DELETE FROM bootstrap_endpoints WHERE ${UNDECIDED} AND last_seen_at < ?`,
  bindIdentity: `UPDATE bootstrap_endpoints SET bound_identity = coalesce(bound_identity, @identity)
    WHERE endpoint = @endpoint RETURNING ${COLUMNS}`,
  noteRefusal: `UPDATE bootstrap_endpoints SET refused_count = refused_count + 1, last_refusal = @text, last_refused_at = @now
    WHERE endpoint = @endpoint RETURNING ${COLUMNS}`,
  markBootstrapped: `UPDATE bootstrap_endpoints SET bootstrap_count = bootstrap_count + 1, last_bootstrap_at = @now, rotate_key = 0
    WHERE endpoint = @endpoint RETURNING ${COLUMNS}`,
  requestRotation: `UPDATE bootstrap_endpoints SET rotate_key = 1 WHERE endpoint = ? RETURNING ${COLUMNS}`,
  decide: `UPDATE bootstrap_endpoints SET state = @state, decided_at = @now, decided_by = @by
    WHERE endpoint = @endpoint RETURNING ${COLUMNS}`,
  list: `SELECT ${COLUMNS} FROM bootstrap_endpoints WHERE endpoint > @after ORDER BY endpoint LIMIT @limit`,
  listState: `SELECT ${COLUMNS} FROM bootstrap_endpoints WHERE state = @state AND endpoint > @after
    ORDER BY endpoint LIMIT @limit`,
} as const;

function fromRow(r: Row): BootstrapEndpoint {
  return {
    endpoint: r.endpoint,
    state: r.state,
    firstSeenAt: r.first_seen_at,
    lastSeenAt: r.last_seen_at,
    decidedAt: r.decided_at,
    decidedBy: r.decided_by,
    requestCount: r.request_count,
    lastPeerAddress: r.last_peer_address,
    lastTransport: r.last_transport,
    boundIdentity: r.bound_identity,
    bootstrapCount: r.bootstrap_count,
    lastBootstrapAt: r.last_bootstrap_at,
    rotateKeyRequested: r.rotate_key === 1,
    refusedCount: r.refused_count,
    lastRefusal: r.last_refusal,
    lastRefusedAt: r.last_refused_at,
  };
}

function checkLimits(limits: PendingLimits): PendingLimits {
  for (const [name, value] of Object.entries(limits)) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw invalid(`pending limit ${name} must be a non-negative integer`);
  }
  return limits;
}

export class SqliteBootstrapRepository implements BootstrapRepository {
  constructor(private readonly s: Statements) {}

  sighted(endpoint: string, peerAddress: string | null, now: TimeInput): Promise<BootstrapEndpoint> {
    return run('record bootstrap request', () => {
      const row = this.s.get(SQL.sighted).get({
        endpoint: requireText(endpoint, 'endpoint'),
        now: toMs(now, 'now'),
        peer: peerAddress,
      }) as Row;
      return fromRow(row);
    });
  }

  request(endpoint: string, sighting: BootstrapSighting, limits: PendingLimits, now: TimeInput): Promise<SightingResult> {
    return run('record bootstrap request', () => {
      requireText(endpoint, 'endpoint');
      const { maxPerSource, maxTotal, ttlMs } = checkLimits(limits);
      const t = toMs(now, 'now');
      const params = { endpoint, now: t, peer: sighting.peerAddress, host: requireText(sighting.sourceHost, 'sourceHost'), transport: sighting.transport };
      return this.s.transaction((): SightingResult => {
        this.s.get(SQL.purgeUndecided).run(t - ttlMs);
        const seen = this.s.get(SQL.seenAgain).get(params) as Row | undefined;
        if (seen) return { admitted: true, endpoint: fromRow(seen) };
        if ((this.s.get(SQL.countFromSource).pluck().get(params.host) as number) >= maxPerSource) return { admitted: false, reason: 'source-limit' };
        if ((this.s.get(SQL.countUndecided).pluck().get() as number) >= maxTotal) return { admitted: false, reason: 'total-limit' };
        return { admitted: true, endpoint: fromRow(this.s.get(SQL.insertPending).get(params) as Row) };
      });
    });
  }

  purgeUndecided(before: TimeInput): Promise<number> {
    return run('purge undecided bootstrap endpoints', () => this.s.get(SQL.purgeUndecided).run(toMs(before, 'before')).changes);
  }

  bindIdentity(endpoint: string, identity: string, now: TimeInput): Promise<BootstrapEndpoint> {
    return run('bind bootstrap identity', () => {
      toMs(now, 'now');
      return this.existing(endpoint, this.s.get(SQL.bindIdentity).get({ endpoint, identity: requireText(identity, 'identity') }) as Row | undefined);
    });
  }

  noteRefusal(endpoint: string, reason: BootstrapRefusal, detail: string, now: TimeInput): Promise<BootstrapEndpoint | null> {
    return run('record bootstrap refusal', () => {
      const text = `${reason}: ${detail}`.slice(0, MAX_REFUSAL_TEXT);
      const row = this.s.get(SQL.noteRefusal).get({ endpoint, text, now: toMs(now, 'now') }) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  markBootstrapped(endpoint: string, now: TimeInput): Promise<BootstrapEndpoint> {
    return run('record bootstrap', () => this.existing(endpoint, this.s.get(SQL.markBootstrapped).get({ endpoint, now: toMs(now, 'now') }) as Row | undefined));
  }

  requestKeyRotation(endpoint: string, now: TimeInput): Promise<BootstrapEndpoint> {
    return run('request key rotation', () => {
      toMs(now, 'now');
      return this.existing(endpoint, this.s.get(SQL.requestRotation).get(endpoint) as Row | undefined);
    });
  }

  get(endpoint: string): Promise<BootstrapEndpoint | null> {
    return run('get bootstrap endpoint', () => {
      const row = this.s.get(SQL.get).get(endpoint) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  accept(endpoint: string, decidedBy: string, now: TimeInput): Promise<BootstrapEndpoint> {
    return run('accept bootstrap endpoint', () => this.move(endpoint, 'accepted', decidedBy, now));
  }

  reject(endpoint: string, decidedBy: string, now: TimeInput): Promise<BootstrapEndpoint> {
    return run('reject bootstrap endpoint', () => this.move(endpoint, 'rejected', decidedBy, now));
  }

  reset(endpoint: string, decidedBy: string, now: TimeInput): Promise<BootstrapEndpoint> {
    return run('reset bootstrap endpoint', () => this.move(endpoint, 'pending', decidedBy, now));
  }

  list(state?: BootstrapState, page: PageRequest = {}): Promise<Page<BootstrapEndpoint>> {
    return run('list bootstrap endpoints', () => {
      if (state !== undefined && !BOOTSTRAP_STATES.includes(state)) throw invalid(`unknown bootstrap state ${String(state)}`);
      const limit = limitOf(page);
      const params = { after: page.after ?? '', limit: limit + 1 };
      const rows = (state === undefined ? this.s.get(SQL.list).all(params) : this.s.get(SQL.listState).all({ ...params, state })) as Row[];
      return pageOf(rows, limit, fromRow, (r) => r.endpoint);
    });
  }

  private existing(endpoint: string, row: Row | undefined): BootstrapEndpoint {
    if (!row) throw new StoreError('NOT_FOUND', `bootstrap endpoint ${endpoint} was never seen`);
    return fromRow(row);
  }

  private move(endpoint: string, to: BootstrapState, decidedBy: string, now: TimeInput): BootstrapEndpoint {
    const params = { endpoint, state: to, by: requireText(decidedBy, 'decidedBy'), now: toMs(now, 'now') };
    return this.s.transaction(() => {
      const cur = this.s.get(SQL.get).get(endpoint) as Row | undefined;
      if (!cur) throw new StoreError('NOT_FOUND', `bootstrap endpoint ${endpoint} was never seen`);
      if (!BOOTSTRAP_TRANSITIONS[cur.state].includes(to)) {
        throw new StoreError('INVALID_TRANSITION', `bootstrap endpoint ${endpoint} is ${cur.state} and cannot become ${to}`);
      }
      return fromRow(this.s.get(SQL.decide).get(params) as Row);
    });
  }
}
