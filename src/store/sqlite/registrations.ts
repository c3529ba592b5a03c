import { StoreError, sqliteCode, toStoreError } from '../errors.js';
import type {
  NewRegistration,
  Page,
  PeerIdentityRef,
  RegisterResult,
  Registration,
  RegistrationFilter,
  RegistrationRepository,
  RegistrationUpdate,
  TimeInput,
  TransportAddress,
} from '../types.js';
import { softWrite } from './batch.js';
import { PREFIX_END, type Statements, invalid, limitOf, pageOf, requireInt, requireText, run, toMs } from './common.js';

interface Row {
  id: string;
  endpoint: string;
  lifetime_sec: number;
  lwm2m_version: string;
  binding: string;
  sms_number: string | null;
  queue_mode: number;
  object_links: string;
  transport_scheme: string;
  transport_address: string;
  transport_port: number;
  identity_kind: 'psk' | 'x509' | 'rpk' | null;
  identity_value: string | null;
  registered_at: number;
  last_update_at: number;
  expires_at: number;
}

const COLUMNS = `id, endpoint, lifetime_sec, lwm2m_version, binding, sms_number, queue_mode, object_links,
  transport_scheme, transport_address, transport_port, identity_kind, identity_value,
  registered_at, last_update_at, expires_at`;

const FILTERS = `AND (@lwm2m_version IS NULL OR lwm2m_version = @lwm2m_version)
  AND (@queue_mode IS NULL OR queue_mode = @queue_mode)
  AND (@alive_at IS NULL OR expires_at > @alive_at)`;

const SQL = {
  insert: `INSERT INTO registrations (${COLUMNS}) VALUES (@id, @endpoint, @lifetime_sec, @lwm2m_version, @binding,
    @sms_number, @queue_mode, @object_links, @transport_scheme, @transport_address, @transport_port,
    @identity_kind, @identity_value, @registered_at, @last_update_at, @expires_at)`,
  // An Update (TS Core §6.2.2) in one statement: what is not given is kept; the expiry counts
  // from now with the lifetime given or kept (the right-hand sides see the row before the update).
  patch: `UPDATE registrations SET lifetime_sec = COALESCE(@lifetime_sec, lifetime_sec), binding = COALESCE(@binding, binding),
    sms_number = CASE WHEN @sms_set THEN @sms_number ELSE sms_number END, queue_mode = COALESCE(@queue_mode, queue_mode),
    object_links = COALESCE(@object_links, object_links), transport_scheme = COALESCE(@transport_scheme, transport_scheme),
    transport_address = COALESCE(@transport_address, transport_address), transport_port = COALESCE(@transport_port, transport_port),
    identity_kind = CASE WHEN @identity_set THEN @identity_kind ELSE identity_kind END,
    identity_value = CASE WHEN @identity_set THEN @identity_value ELSE identity_value END,
    last_update_at = @t, expires_at = @t + COALESCE(@lifetime_sec, lifetime_sec) * 1000
    WHERE id = @id RETURNING ${COLUMNS}`,
  byId: `SELECT ${COLUMNS} FROM registrations WHERE id = ?`,
  byEndpoint: `SELECT ${COLUMNS} FROM registrations WHERE endpoint = ?`,
  deleteById: `DELETE FROM registrations WHERE id = ? RETURNING ${COLUMNS}`,
  deleteByEndpoint: `DELETE FROM registrations WHERE endpoint = ? RETURNING ${COLUMNS}`,
  // Keyset paging: `endpoint > @after` (@after is '' on the first page) is a range on the
  // endpoint index. A NULL filter parameter switches its condition off.
  list: `SELECT ${COLUMNS} FROM registrations WHERE endpoint > @after ${FILTERS} ORDER BY endpoint LIMIT @limit`,
  listPrefix: `SELECT ${COLUMNS} FROM registrations
    WHERE endpoint > @after AND endpoint >= @prefix AND endpoint < @prefix || @prefix_end ${FILTERS}
    ORDER BY endpoint LIMIT @limit`,
  expired: `SELECT ${COLUMNS} FROM registrations WHERE expires_at <= ? ORDER BY expires_at, endpoint LIMIT ?`,
} as const;

function fromRow(r: Row): Registration {
  return {
    id: r.id,
    endpoint: r.endpoint,
    lifetimeSec: r.lifetime_sec,
    lwm2mVersion: r.lwm2m_version,
    binding: r.binding,
    smsNumber: r.sms_number,
    queueMode: r.queue_mode === 1,
    objectLinks: r.object_links,
    address: { scheme: r.transport_scheme, address: r.transport_address, port: r.transport_port },
    identity: r.identity_kind !== null && r.identity_value !== null ? { kind: r.identity_kind, value: r.identity_value } : null,
    registeredAt: r.registered_at,
    lastUpdateAt: r.last_update_at,
    expiresAt: r.expires_at,
  };
}

function checkAddress(a: TransportAddress): TransportAddress {
  if (typeof a !== 'object' || a === null) throw invalid('address must be an object');
  return { scheme: requireText(a.scheme, 'address.scheme'), address: requireText(a.address, 'address.address'), port: requireInt(a.port, 'address.port', 0, 65535) };
}

function checkIdentity(i: PeerIdentityRef | null | undefined): PeerIdentityRef | null {
  if (i === null || i === undefined) return null;
  if (i.kind !== 'psk' && i.kind !== 'x509' && i.kind !== 'rpk') throw invalid('identity.kind must be psk, x509 or rpk');
  return { kind: i.kind, value: requireText(i.value, 'identity.value') };
}

function checkOptionalText(v: string | null | undefined, name: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string') throw invalid(`${name} must be a string`);
  return v;
}

function toRow(r: Registration): Row {
  return {
    id: r.id,
    endpoint: r.endpoint,
    lifetime_sec: r.lifetimeSec,
    lwm2m_version: r.lwm2mVersion,
    binding: r.binding,
    sms_number: r.smsNumber,
    queue_mode: r.queueMode ? 1 : 0,
    object_links: r.objectLinks,
    transport_scheme: r.address.scheme,
    transport_address: r.address.address,
    transport_port: r.address.port,
    identity_kind: r.identity?.kind ?? null,
    identity_value: r.identity?.value ?? null,
    registered_at: r.registeredAt,
    last_update_at: r.lastUpdateAt,
    expires_at: r.expiresAt,
  };
}

const MAX_LIFETIME_SEC = 0x7fffffff;

export class SqliteRegistrationRepository implements RegistrationRepository {
  constructor(private readonly s: Statements) {}

  register(reg: NewRegistration, now: TimeInput): Promise<RegisterResult> {
    let registration: Registration;
    try {
      const t = toMs(now, 'now');
      const lifetimeSec = requireInt(reg.lifetimeSec, 'lifetimeSec', 1, MAX_LIFETIME_SEC);
      if (typeof reg.queueMode !== 'boolean') throw invalid('queueMode must be a boolean');
      if (typeof reg.objectLinks !== 'string') throw invalid('objectLinks must be a string');
      registration = {
        id: requireText(reg.id, 'id'),
        endpoint: requireText(reg.endpoint, 'endpoint'),
        lifetimeSec,
        lwm2mVersion: requireText(reg.lwm2mVersion, 'lwm2mVersion'),
        binding: requireText(reg.binding, 'binding'),
        smsNumber: checkOptionalText(reg.smsNumber, 'smsNumber'),
        queueMode: reg.queueMode,
        objectLinks: reg.objectLinks,
        address: checkAddress(reg.address),
        identity: checkIdentity(reg.identity),
        registeredAt: t,
        lastUpdateAt: t,
        expiresAt: t + lifetimeSec * 1000,
      };
    } catch (err) {
      return Promise.reject(toStoreError(err, 'register'));
    }
    // Checked now; written in the next group commit of soft writes (batch.ts), settled after it.
    return softWrite(this.s, 'register', () => {
      const old = this.s.get(SQL.deleteByEndpoint).get(registration.endpoint) as Row | undefined;
      try {
        this.s.get(SQL.insert).run(toRow(registration));
      } catch (err) {
        // The id is taken by another endpoint (its own old row was deleted just above). Found by
        // the primary key rather than looked up first: one statement less per registration. The
        // caller's savepoint undoes the delete.
        const holder = sqliteCode(err) === 'SQLITE_CONSTRAINT_PRIMARYKEY' ? (this.s.get(SQL.byId).get(registration.id) as Row | undefined) : undefined;
        if (holder) throw new StoreError('CONFLICT', `registration id ${registration.id} is already used by endpoint ${holder.endpoint}`);
        throw err;
      }
      return { registration, replaced: old ? fromRow(old) : null };
    });
  }

  update(id: string, changes: RegistrationUpdate, now: TimeInput): Promise<Registration | null> {
    let params: Record<string, string | number | null>;
    try {
      const t = toMs(now, 'now');
      if (changes.queueMode !== undefined && typeof changes.queueMode !== 'boolean') throw invalid('queueMode must be a boolean');
      if (changes.objectLinks !== undefined && typeof changes.objectLinks !== 'string') throw invalid('objectLinks must be a string');
      const address = changes.address === undefined ? undefined : checkAddress(changes.address);
      const identity = changes.identity === undefined ? undefined : checkIdentity(changes.identity);
      // NULL: keep the column (the *_set flags tell "set to NULL" from "keep" for nullable columns).
      params = {
        id,
        t,
        lifetime_sec: changes.lifetimeSec === undefined ? null : requireInt(changes.lifetimeSec, 'lifetimeSec', 1, MAX_LIFETIME_SEC),
        binding: changes.binding === undefined ? null : requireText(changes.binding, 'binding'),
        sms_set: changes.smsNumber === undefined ? 0 : 1,
        sms_number: changes.smsNumber === undefined ? null : checkOptionalText(changes.smsNumber, 'smsNumber'),
        queue_mode: changes.queueMode === undefined ? null : changes.queueMode ? 1 : 0,
        object_links: changes.objectLinks ?? null,
        transport_scheme: address?.scheme ?? null,
        transport_address: address?.address ?? null,
        transport_port: address?.port ?? null,
        identity_set: identity === undefined ? 0 : 1,
        identity_kind: identity?.kind ?? null,
        identity_value: identity?.value ?? null,
      };
    } catch (err) {
      return Promise.reject(toStoreError(err, 'update registration'));
    }
    // One UPDATE … RETURNING in the next group commit of soft writes (batch.ts), settled after it.
    return softWrite(this.s, 'update registration', () => {
      const row = this.s.get(SQL.patch).get(params) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  delete(id: string): Promise<Registration | null> {
    return run('delete registration', () => {
      const row = this.s.soft(() => this.s.get(SQL.deleteById).get(id) as Row | undefined);
      return row ? fromRow(row) : null;
    });
  }

  getById(id: string): Promise<Registration | null> {
    return run('get registration', () => {
      const row = this.s.get(SQL.byId).get(id) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  getByEndpoint(endpoint: string): Promise<Registration | null> {
    return run('get registration', () => {
      const row = this.s.get(SQL.byEndpoint).get(endpoint) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  list(filter: RegistrationFilter = {}): Promise<Page<Registration>> {
    return run('list registrations', () => {
      const limit = limitOf(filter);
      const prefix = filter.endpointPrefix ?? null;
      const rows = this.s.get(prefix === null ? SQL.list : SQL.listPrefix).all({
        after: filter.after ?? '',
        ...(prefix === null ? {} : { prefix, prefix_end: PREFIX_END }),
        lwm2m_version: filter.lwm2mVersion ?? null,
        queue_mode: filter.queueMode === undefined ? null : filter.queueMode ? 1 : 0,
        alive_at: filter.aliveAt === undefined ? null : toMs(filter.aliveAt, 'aliveAt'),
        limit: limit + 1,
      }) as Row[];
      return pageOf(rows, limit, fromRow, (r) => r.endpoint);
    });
  }

  listExpired(asOf: TimeInput, limit = 1000): Promise<Registration[]> {
    return run('list expired registrations', () => {
      const rows = this.s.get(SQL.expired).all(toMs(asOf, 'asOf'), requireInt(limit, 'limit', 1)) as Row[];
      return rows.map(fromRow);
    });
  }
}
