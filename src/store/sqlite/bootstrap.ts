import { StoreError } from '../errors.js';
import {
  BOOTSTRAP_STATES,
  BOOTSTRAP_TRANSITIONS,
  type BootstrapEndpoint,
  type BootstrapRepository,
  type BootstrapState,
  type Page,
  type PageRequest,
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
}

const COLUMNS = 'endpoint, state, first_seen_at, last_seen_at, decided_at, decided_by, request_count, last_peer_address';

const SQL = {
  sighted: `INSERT INTO bootstrap_endpoints (${COLUMNS})
    VALUES (@endpoint, 'pending', @now, @now, NULL, NULL, 1, @peer)
    ON CONFLICT (endpoint) DO UPDATE SET last_seen_at = max(last_seen_at, excluded.last_seen_at),
      request_count = request_count + 1, last_peer_address = excluded.last_peer_address
    RETURNING ${COLUMNS}`,
  get: `SELECT ${COLUMNS} FROM bootstrap_endpoints WHERE endpoint = ?`,
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
  };
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
