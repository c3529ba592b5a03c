import { StoreError, toStoreError } from '../errors.js';
import { softWrite } from './batch.js';
import { ClusteredIds } from '../../util/clustered-id.js';
import type { Page, PageRequest, TimeInput } from '../types.js';
import type {
  DeviceFilter,
  DeviceHistoryEntry,
  DeviceIdentities,
  DevicePatch,
  DeviceWrite,
  InstalledSoftware,
  InventoryDevice,
  InventoryRepository,
  Protocol,
  UpsertOptions,
} from '../../fleet/inventory-types.js';
import { BOOTSTRAP_STATES, PROTOCOLS, TRUST_STATES } from '../../fleet/inventory-types.js';
import { type Statements, invalid, limitOf, pageOf, run, toMs } from './common.js';

interface Row {
  id: string;
  lwm2m_endpoint: string | null;
  omadm_dev_id: string | null;
  imei: string | null;
  msisdn: string | null;
  make: string | null;
  model: string | null;
  os: string | null;
  os_version: string | null;
  firmware: string | null;
  expected_make: string | null;
  expected_model: string | null;
  time_zone: string | null;
  lwm2m_last_at: number | null;
  omadm_last_at: number | null;
  sms_last_at: number | null;
  bootstrap_state: string;
  trust_state: string;
  software: string;
  source: 'seen' | 'imported';
  created_at: number;
  updated_at: number;
}

const COLUMNS = `id, lwm2m_endpoint, omadm_dev_id, imei, msisdn, make, model, os, os_version, firmware, expected_make,
  expected_model, time_zone, lwm2m_last_at, omadm_last_at, sms_last_at, bootstrap_state, trust_state, software, source,
  created_at, updated_at`;

/** Patch field → column (software handled apart: JSON). */
const FIELDS = {
  lwm2mEndpoint: 'lwm2m_endpoint',
  omadmDevId: 'omadm_dev_id',
  imei: 'imei',
  msisdn: 'msisdn',
  make: 'make',
  model: 'model',
  os: 'os',
  osVersion: 'os_version',
  firmware: 'firmware',
  expectedMake: 'expected_make',
  expectedModel: 'expected_model',
  timeZone: 'time_zone',
  bootstrapState: 'bootstrap_state',
  trustState: 'trust_state',
} as const satisfies Record<string, keyof Row>;

const IDENTITY_ORDER = ['lwm2mEndpoint', 'omadmDevId', 'imei', 'msisdn'] as const satisfies readonly (keyof DeviceIdentities)[];

const SQL = {
  get: `SELECT ${COLUMNS} FROM inventory_devices WHERE id = ?`,
  byLwm2mEndpoint: `SELECT ${COLUMNS} FROM inventory_devices WHERE lwm2m_endpoint = ?`,
  byOmadmDevId: `SELECT ${COLUMNS} FROM inventory_devices WHERE omadm_dev_id = ?`,
  byImei: `SELECT ${COLUMNS} FROM inventory_devices WHERE imei = ?`,
  byMsisdn: `SELECT ${COLUMNS} FROM inventory_devices WHERE msisdn = ?`,
  insertRow: `INSERT INTO inventory_devices (${COLUMNS}) VALUES (@id, @lwm2m_endpoint, @omadm_dev_id, @imei, @msisdn, @make, @model, @os,
    @os_version, @firmware, @expected_make, @expected_model, @time_zone, @lwm2m_last_at, @omadm_last_at, @sms_last_at,
    @bootstrap_state, @trust_state, @software, @source, @created_at, @updated_at)`,
  labels: 'SELECT kind, name FROM inventory_labels WHERE device_id = ? ORDER BY kind, name',
  addLabel: 'INSERT INTO inventory_labels (device_id, kind, name) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
  removeLabel: 'DELETE FROM inventory_labels WHERE device_id = ? AND kind = ? AND name = ?',
  lastSeq: 'SELECT COALESCE(MAX(seq), 0) AS seq FROM inventory_history WHERE device_id = ?',
  addHistory: 'INSERT INTO inventory_history (device_id, seq, at, source, changes) VALUES (?, ?, ?, ?, ?)',
  history: 'SELECT seq, at, source, changes FROM inventory_history WHERE device_id = @id AND seq < @before ORDER BY seq DESC LIMIT @limit',
} as const;

const BY_IDENTITY: Record<(typeof IDENTITY_ORDER)[number], string> = {
  lwm2mEndpoint: SQL.byLwm2mEndpoint,
  omadmDevId: SQL.byOmadmDevId,
  imei: SQL.byImei,
  msisdn: SQL.byMsisdn,
};

const MAX_TEXT = 255;
const MAX_LABEL = 64;

function text(value: unknown, field: string): string | null {
  if (value === null) return null;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT) throw invalid(`${field} must be a string of 1..${MAX_TEXT} characters or null`);
  return value;
}

/** Tags and groups: printable, no commas (CSV and query lists use them), bounded. */
export function labelProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_LABEL) return `a tag or group name has 1..${MAX_LABEL} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f,]/.test(name)) return 'a tag or group name has no control characters and no commas';
  return undefined;
}

function fromRow(r: Row, labels: { kind: string; name: string }[]): InventoryDevice {
  const lastContact: Partial<Record<Protocol, number>> = {};
  if (r.lwm2m_last_at !== null) lastContact.lwm2m = r.lwm2m_last_at;
  if (r.omadm_last_at !== null) lastContact.omadm = r.omadm_last_at;
  if (r.sms_last_at !== null) lastContact.sms = r.sms_last_at;
  return {
    id: r.id,
    lwm2mEndpoint: r.lwm2m_endpoint,
    omadmDevId: r.omadm_dev_id,
    imei: r.imei,
    msisdn: r.msisdn,
    make: r.make,
    model: r.model,
    os: r.os,
    osVersion: r.os_version,
    firmware: r.firmware,
    expectedMake: r.expected_make,
    expectedModel: r.expected_model,
    timeZone: r.time_zone,
    bootstrapState: r.bootstrap_state as InventoryDevice['bootstrapState'],
    trustState: r.trust_state as InventoryDevice['trustState'],
    software: JSON.parse(r.software) as InstalledSoftware[],
    lastContact,
    tags: labels.filter((l) => l.kind === 'tag').map((l) => l.name),
    groups: labels.filter((l) => l.kind === 'group').map((l) => l.name),
    source: r.source,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** A new record as the schema's defaults make it. */
function newRow(id: string, source: Row['source'], t: number): Row {
  return {
    id,
    lwm2m_endpoint: null,
    omadm_dev_id: null,
    imei: null,
    msisdn: null,
    make: null,
    model: null,
    os: null,
    os_version: null,
    firmware: null,
    expected_make: null,
    expected_model: null,
    time_zone: null,
    lwm2m_last_at: null,
    omadm_last_at: null,
    sms_last_at: null,
    bootstrap_state: 'unknown',
    trust_state: 'unknown',
    software: '[]',
    source,
    created_at: t,
    updated_at: t,
  };
}

/** Device ids: `dev_` and a clustered id (util/clustered-id.ts): devices made together share index and history pages. */
const deviceIds = new ClusteredIds();
const deviceId = (): string => `dev_${deviceIds.next()}`;

/** The inventory (fleet's InventoryRepository): devices, their tags and groups, the history of every change. */
export class SqliteInventoryRepository implements InventoryRepository {
  constructor(private readonly s: Statements) {}

  upsert(
    identities: Partial<DeviceIdentities>,
    patch: DevicePatch,
    options: UpsertOptions,
    now: TimeInput,
  ): Promise<DeviceWrite | null> {
    // A contact is soft state (the device sends it again); operator data and imports are durable.
    const soft = (options.durability ?? (options.contact && options.create !== 'imported' ? 'soft' : 'durable')) === 'soft';
    if (soft) {
      // In the group commit of soft writes (batch.ts) with the registrations it follows: one
      // transaction per registration was ~a commit each (and its PRAGMA switches) per device.
      let t: number;
      try {
        t = toMs(now, 'now');
      } catch (error) {
        return Promise.reject(toStoreError(error, 'upsert inventory device'));
      }
      return softWrite(this.s, 'upsert inventory device', () => this.upsertNow(identities, patch, options, t));
    }
    return run('upsert inventory device', () => {
      const t = toMs(now, 'now');
      return this.s.transaction(() => this.upsertNow(identities, patch, options, t), 'durable');
    });
  }

  /**
   * Many upserts in one transaction (an import batch: one commit, not one per row); each item
   * in its own savepoint, so a refused item leaves no trace and the others are kept.
   */
  upsertMany(items: readonly { identities: Partial<DeviceIdentities>; patch: DevicePatch; options: UpsertOptions }[], now: TimeInput): Promise<(DeviceWrite | null | StoreError)[]> {
    return run('upsert inventory devices', () => {
      const t = toMs(now, 'now');
      return this.s.transaction(() =>
        items.map((item) => {
          try {
            return this.s.transaction(() => this.upsertNow(item.identities, item.patch, item.options, t));
          } catch (error) {
            return error instanceof StoreError ? error : invalid(error instanceof Error ? error.message : String(error));
          }
        }),
      );
    });
  }

  private upsertNow(identities: Partial<DeviceIdentities>, patch: DevicePatch, options: UpsertOptions, t: number): DeviceWrite | null {
    {
      if (options.contact && !PROTOCOLS.includes(options.contact.protocol)) throw invalid(`protocol must be one of ${PROTOCOLS.join(', ')}`);
      for (const name of [...(options.labels?.groups ?? []), ...(options.labels?.tags ?? [])]) {
        const problem = labelProblem(name);
        if (problem) throw invalid(problem);
      }
      const work = (): DeviceWrite | null => {
        let row = this.find(identities);
        let created = false;
        if (!row) {
          if (options.create === false) return null;
          // Built here and inserted whole below (one INSERT instead of insert, read back, update).
          row = newRow(deviceId(), options.create, t);
          created = true;
        }
        const before = { ...row };
        const changes: Record<string, [unknown, unknown]> = {};
        const full: DevicePatch = { ...identities, ...patch };
        for (const [field, column] of Object.entries(FIELDS) as [keyof typeof FIELDS, keyof Row][]) {
          const value = full[field];
          if (value === undefined) continue;
          let v: string | null;
          if (field === 'bootstrapState') {
            if (!BOOTSTRAP_STATES.includes(value as never)) throw invalid(`bootstrapState must be one of ${BOOTSTRAP_STATES.join(', ')}`);
            v = value;
          } else if (field === 'trustState') {
            if (!TRUST_STATES.includes(value as never)) throw invalid(`trustState must be one of ${TRUST_STATES.join(', ')}`);
            v = value;
          } else {
            v = text(value, field);
          }
          if (row[column] === v) continue;
          // A new record's identities were all just looked up by find(), with no holder: not again.
          if (v !== null && (IDENTITY_ORDER as readonly string[]).includes(field) && !(created && identities[field as keyof DeviceIdentities] === v)) {
            const holder = this.s.get(BY_IDENTITY[field as (typeof IDENTITY_ORDER)[number]]).get(v) as Row | undefined;
            if (holder && holder.id !== row.id) {
              // Never taken from another device: the operator sees the conflict in the history.
              changes[`conflict.${field}`] = [v, holder.id];
              continue;
            }
          }
          changes[field] = [row[column], v];
          (row as unknown as Record<string, unknown>)[column] = v;
        }
        if (patch.software !== undefined) {
          const list: readonly InstalledSoftware[] = patch.software;
          if (!Array.isArray(list)) throw invalid('software must be a list');
          const software = JSON.stringify(list.map((s: InstalledSoftware) => ({ name: text(s.name, 'software name'), version: s.version === null ? null : text(s.version, 'software version'), source: text(s.source, 'software source') })));
          if (software !== row.software) {
            changes.software = [JSON.parse(row.software), JSON.parse(software)];
            row.software = software;
          }
        }
        if (options.create === 'seen' && row.source === 'imported' && options.contact) {
          changes.source = ['imported', 'seen'];
          row.source = 'seen';
        }
        const changedFields = Object.keys(changes).filter((k) => !k.startsWith('conflict.'));
        if (options.contact) (row as unknown as Record<string, unknown>)[`${options.contact.protocol}_last_at`] = Math.max(options.contact.at, (row as unknown as Record<string, number | null>)[`${options.contact.protocol}_last_at`] ?? 0);
        // A new record goes in first (its labels refer to it); it is made with updated_at = t.
        if (created) this.s.get(SQL.insertRow).run(row);
        const labels = this.addLabels(row.id, options.labels, changes);
        if (!created) {
          if (changedFields.length > 0 || labels) row.updated_at = t;
          this.saveChanged(row, before);
        }
        if (Object.keys(changes).length > 0 || created) this.addHistory(row.id, t, options.source, created ? { created: [null, options.create], ...changes } : changes, created);
        // The record as written (no read back); its labels are read only when it may have any.
        return { device: fromRow(row, created && !labels ? [] : this.labels(row.id)), created, changed: created || changedFields.length > 0 || labels };
      };
      return work();
    }
  }

  get(id: string): Promise<InventoryDevice | null> {
    return run('get inventory device', () => this.read(id));
  }

  findByIdentity(identities: Partial<DeviceIdentities>): Promise<InventoryDevice | null> {
    return run('find inventory device', () => {
      const row = this.find(identities);
      return row ? this.read(row.id) : null;
    });
  }

  list(filter: DeviceFilter = {}): Promise<Page<InventoryDevice>> {
    return run('list inventory devices', () => {
      const limit = limitOf(filter);
      const { where, params } = this.where(filter);
      const rows = this.s.get(`SELECT ${COLUMNS} FROM inventory_devices d WHERE id > @after${where} ORDER BY id LIMIT @limit`).all({ ...params, after: filter.after ?? '', limit: limit + 1 }) as Row[];
      return pageOf(rows, limit, (r) => fromRow(r, this.labels(r.id)), (r) => r.id);
    });
  }

  ids(filter: Omit<DeviceFilter, 'limit' | 'after'>): Promise<string[]> {
    return run('list inventory device ids', () => {
      const { where, params } = this.where(filter);
      return this.s.get(`SELECT id FROM inventory_devices d WHERE 1 = 1${where} ORDER BY id`).pluck().all(params) as string[];
    });
  }

  getMany(ids: readonly string[]): Promise<InventoryDevice[]> {
    return run('get inventory devices', () => ids.map((id) => this.read(id)).filter((d): d is InventoryDevice => d !== null));
  }

  label(id: string, kind: 'tag' | 'group', add: readonly string[], remove: readonly string[], source: string, now: TimeInput): Promise<InventoryDevice> {
    return run('label inventory device', () => {
      const t = toMs(now, 'now');
      for (const name of [...add, ...remove]) {
        const problem = labelProblem(name);
        if (problem) throw invalid(problem);
      }
      return this.s.transaction(() => {
        const row = this.s.get(SQL.get).get(id) as Row | undefined;
        if (!row) throw new StoreError('NOT_FOUND', `device ${id} is not in the inventory`);
        const before = this.labels(id).filter((l) => l.kind === kind).map((l) => l.name);
        for (const name of add) this.s.get(SQL.addLabel).run(id, kind, name);
        for (const name of remove) this.s.get(SQL.removeLabel).run(id, kind, name);
        const after = this.labels(id).filter((l) => l.kind === kind).map((l) => l.name);
        if (JSON.stringify(before) !== JSON.stringify(after)) {
          row.updated_at = t;
          this.save(row);
          this.addHistory(id, t, source, { [`${kind}s`]: [before, after] });
        }
        return this.read(id)!;
      });
    });
  }

  history(id: string, page?: PageRequest): Promise<Page<DeviceHistoryEntry>> {
    return run('device history', () => {
      const limit = limitOf(page);
      const before = page?.after ? Number(page.after) : Number.MAX_SAFE_INTEGER;
      if (!Number.isSafeInteger(before)) throw invalid('after must be a history sequence number');
      const rows = this.s.get(SQL.history).all({ id, before, limit: limit + 1 }) as { seq: number; at: number; source: string; changes: string }[];
      return pageOf(rows, limit, (r) => ({ seq: r.seq, at: r.at, source: r.source, changes: JSON.parse(r.changes) as DeviceHistoryEntry['changes'] }), (r) => String(r.seq));
    });
  }

  // ------------------------------------------------------------------ internals

  private find(identities: Partial<DeviceIdentities>): Row | undefined {
    for (const key of IDENTITY_ORDER) {
      const v = identities[key];
      if (typeof v !== 'string' || v === '') continue;
      const row = this.s.get(BY_IDENTITY[key]).get(v) as Row | undefined;
      if (row) return row;
    }
    return undefined;
  }

  private read(id: string): InventoryDevice | null {
    const row = this.s.get(SQL.get).get(id) as Row | undefined;
    return row ? fromRow(row, this.labels(id)) : null;
  }

  private labels(id: string): { kind: string; name: string }[] {
    return this.s.get(SQL.labels).all(id) as { kind: string; name: string }[];
  }

  private addLabels(id: string, labels: { groups?: readonly string[]; tags?: readonly string[] } | undefined, changes: Record<string, [unknown, unknown]>): boolean {
    let changed = false;
    for (const [kind, names] of [['group', labels?.groups ?? []], ['tag', labels?.tags ?? []]] as const) {
      if (names.length === 0) continue;
      const before = this.labels(id).filter((l) => l.kind === kind).map((l) => l.name);
      for (const name of names) this.s.get(SQL.addLabel).run(id, kind, name);
      const after = this.labels(id).filter((l) => l.kind === kind).map((l) => l.name);
      if (JSON.stringify(before) !== JSON.stringify(after)) {
        changes[`${kind}s`] = [before, after];
        changed = true;
      }
    }
    return changed;
  }

  private save(row: Row): void {
    const sets = (Object.keys(row) as (keyof Row)[]).filter((k) => k !== 'id').map((k) => `${k} = @${k}`).join(', ');
    this.s.get(`UPDATE inventory_devices SET ${sets} WHERE id = @id`).run(row);
  }

  /**
   * Writes only the columns that differ from `before` (a contact usually changes only its
   * last-contact time: the unique identity columns and their indexes are then left alone).
   */
  private saveChanged(row: Row, before: Row): void {
    const params: Record<string, unknown> = { id: row.id };
    let sets = '';
    for (const k of Object.keys(row) as (keyof Row)[]) {
      if (k === 'id' || row[k] === before[k]) continue;
      sets += `${sets ? ', ' : ''}${k} = @${k}`;
      params[k] = row[k];
    }
    if (sets) this.s.get(`UPDATE inventory_devices SET ${sets} WHERE id = @id`).run(params);
  }

  private addHistory(id: string, at: number, source: string, changes: Record<string, [unknown, unknown]>, first = false): void {
    const seq = first ? 1 : (this.s.get(SQL.lastSeq).get(id) as { seq: number }).seq + 1;
    this.s.get(SQL.addHistory).run(id, seq, at, source, JSON.stringify(changes));
  }

  private where(filter: Omit<DeviceFilter, 'limit' | 'after'>): { where: string; params: Record<string, string> } {
    let where = '';
    const params: Record<string, string> = {};
    // Imported devices not seen yet are found by what the list said they would be.
    if (filter.make !== undefined) {
      where += ' AND COALESCE(make, expected_make) = @make COLLATE NOCASE';
      params.make = filter.make;
    }
    if (filter.model !== undefined) {
      where += ' AND COALESCE(model, expected_model) = @model COLLATE NOCASE';
      params.model = filter.model;
    }
    if (filter.os !== undefined) {
      where += ' AND os = @os COLLATE NOCASE';
      params.os = filter.os;
    }
    if (filter.group !== undefined) {
      where += " AND EXISTS (SELECT 1 FROM inventory_labels l WHERE l.device_id = d.id AND l.kind = 'group' AND l.name = @group)";
      params.group = filter.group;
    }
    if (filter.tag !== undefined) {
      where += " AND EXISTS (SELECT 1 FROM inventory_labels l WHERE l.device_id = d.id AND l.kind = 'tag' AND l.name = @tag)";
      params.tag = filter.tag;
    }
    if (filter.protocol !== undefined) {
      if (!PROTOCOLS.includes(filter.protocol)) throw invalid(`protocol must be one of ${PROTOCOLS.join(', ')}`);
      where += ` AND ${filter.protocol}_last_at IS NOT NULL`;
    }
    return { where, params };
  }
}
