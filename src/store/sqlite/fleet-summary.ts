/**
 * Read-only fleet counts and the searchable, sortable device table of the console (issue 17).
 * Everything is one indexed or aggregate query: the dashboard and the device table stay quick
 * with 100,000 devices (measured in test/e2e and bench numbers in docs/operators.md).
 */
import type { Statements } from './common.js';
import { run } from './common.js';

export interface FleetSummary {
  devices: number;
  registered: number;
  byModel: { manufacturer: string | null; model: string | null; os: string | null; devices: number }[];
  installsInProgress: { id: string; endpoint: string; state: string; kind: string; updatedAt: number }[];
  installsByState: { state: string; jobs: number }[];
  failuresByReason: { reason: string; jobs: number }[];
  bootstrapPending: number;
  operationsQueued: number;
}

export type DeviceSort = 'endpoint' | 'manufacturer' | 'model' | 'os' | 'firmware' | 'lastSeen';
const SORT_COLUMNS: Record<DeviceSort, string> = {
  endpoint: 'r.endpoint',
  manufacturer: 'f.manufacturer',
  model: 'f.model_number',
  os: 'f.os_version',
  firmware: 'f.firmware_version',
  lastSeen: 'r.last_update_at',
};

export interface DeviceRow {
  endpoint: string;
  manufacturer: string | null;
  model: string | null;
  os: string | null;
  firmware: string | null;
  lastSeenAt: number;
  expiresAt: number;
}

const OPEN = "('queued', 'downloading', 'delivered', 'installing', 'installed', 'activating')";

export class SqliteFleetSummary {
  constructor(private readonly s: Statements) {}

  summary(now: number): Promise<FleetSummary> {
    return run('fleet summary', () => ({
      devices: this.s.get('SELECT count(*) FROM registrations').pluck().get() as number,
      registered: this.s.get('SELECT count(*) FROM registrations WHERE expires_at > ?').pluck().get(now) as number,
      byModel: this.s
        .get(
          `SELECT f.manufacturer AS manufacturer, f.model_number AS model, coalesce(f.os_version, f.software_version) AS os, count(*) AS devices
             FROM registrations r LEFT JOIN device_facts f ON f.endpoint = r.endpoint
            GROUP BY 1, 2, 3 ORDER BY devices DESC, 1, 2, 3 LIMIT 200`,
        )
        .all() as FleetSummary['byModel'],
      installsInProgress: this.s.get(`SELECT id, endpoint, state, kind, updated_at AS updatedAt FROM install_jobs WHERE state IN ${OPEN} ORDER BY updated_at DESC LIMIT 50`).all() as FleetSummary['installsInProgress'],
      installsByState: this.s.get('SELECT state, count(*) AS jobs FROM install_jobs GROUP BY state ORDER BY jobs DESC').all() as FleetSummary['installsByState'],
      failuresByReason: this.s
        .get("SELECT coalesce(result_name, message, 'unknown') AS reason, count(*) AS jobs FROM install_jobs WHERE state = 'failed' GROUP BY 1 ORDER BY jobs DESC LIMIT 50")
        .all() as FleetSummary['failuresByReason'],
      bootstrapPending: this.s.get("SELECT count(*) FROM bootstrap_endpoints WHERE state = 'pending'").pluck().get() as number,
      operationsQueued: this.s.get("SELECT count(*) FROM queued_operations WHERE status = 'queued'").pluck().get() as number,
    }));
  }

  /** Registrations not expired, and all (the device gauge). */
  counts(now: number): Promise<{ registered: number; devices: number }> {
    return run('device counts', () => ({
      devices: this.s.get('SELECT count(*) FROM registrations').pluck().get() as number,
      registered: this.s.get('SELECT count(*) FROM registrations WHERE expires_at > ?').pluck().get(now) as number,
    }));
  }

  /** Open install jobs and queued operations, for the queue-depth gauges. */
  queueDepths(): Promise<{ installsOpen: number; operationsQueued: number; bootstrapPending: number }> {
    return run('queue depths', () => ({
      installsOpen: this.s.get(`SELECT count(*) FROM install_jobs WHERE state IN ${OPEN}`).pluck().get() as number,
      operationsQueued: this.s.get("SELECT count(*) FROM queued_operations WHERE status = 'queued'").pluck().get() as number,
      bootstrapPending: this.s.get("SELECT count(*) FROM bootstrap_endpoints WHERE state = 'pending'").pluck().get() as number,
    }));
  }

  /**
   * A page of the device table: `q` matches the start of the endpoint, manufacturer or model
   * (case-insensitive), sorted on one column (endpoint breaks ties), `offset` from the start.
   */
  devices(options: { q?: string; sort?: DeviceSort; desc?: boolean; limit: number; offset: number }): Promise<{ total: number; devices: DeviceRow[] }> {
    return run('device table', () => {
      const column = SORT_COLUMNS[options.sort ?? 'endpoint'];
      const dir = options.desc ? 'DESC' : 'ASC';
      const q = options.q?.trim() ?? '';
      const like = q.replace(/[\\%_]/g, (c) => `\\${c}`) + '%';
      const where = q ? "WHERE (r.endpoint LIKE @like ESCAPE '\\' OR f.manufacturer LIKE @like ESCAPE '\\' OR f.model_number LIKE @like ESCAPE '\\')" : '';
      const from = `FROM registrations r LEFT JOIN device_facts f ON f.endpoint = r.endpoint ${where}`;
      // Without a search the total needs no join (the count then walks one index).
      const total = (q ? this.s.get(`SELECT count(*) ${from}`).pluck().get({ like }) : this.s.get('SELECT count(*) FROM registrations').pluck().get()) as number;
      // endpoint is never NULL: no NULLS LAST there, so the endpoint index gives the order without a sort.
      const order = column === 'r.endpoint' ? `r.endpoint ${dir}` : `${column} ${dir} NULLS LAST, r.endpoint ${dir}`;
      const devices = this.s
        .get(
          `SELECT r.endpoint AS endpoint, f.manufacturer AS manufacturer, f.model_number AS model, coalesce(f.os_version, f.software_version) AS os,
                  f.firmware_version AS firmware, r.last_update_at AS lastSeenAt, r.expires_at AS expiresAt
             ${from} ORDER BY ${order} LIMIT @limit OFFSET @offset`,
        )
        .all({ ...(q ? { like } : {}), limit: options.limit, offset: options.offset }) as DeviceRow[];
      return { total, devices };
    });
  }
}
