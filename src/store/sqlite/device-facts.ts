import type {
  DeviceFactFields,
  DeviceFacts,
  DeviceFactsFilter,
  DeviceFactsPatch,
  DeviceFactsRepository,
  JsonValue,
  Page,
  TimeInput,
} from '../types.js';
import { toStoreError } from '../errors.js';
import { softWrite } from './batch.js';
import { type Statements, invalid, limitOf, pageOf, requireText, run, toMs } from './common.js';

interface Row {
  endpoint: string;
  manufacturer: string | null;
  model_number: string | null;
  serial_number: string | null;
  firmware_version: string | null;
  device_type: string | null;
  hardware_version: string | null;
  software_version: string | null;
  os_version: string | null;
  extra: string;
  updated_at: number;
}

/** Typed field → column. */
const FIELDS: readonly (readonly [keyof DeviceFactFields, keyof Row])[] = [
  ['manufacturer', 'manufacturer'],
  ['modelNumber', 'model_number'],
  ['serialNumber', 'serial_number'],
  ['firmwareVersion', 'firmware_version'],
  ['deviceType', 'device_type'],
  ['hardwareVersion', 'hardware_version'],
  ['softwareVersion', 'software_version'],
  ['osVersion', 'os_version'],
];

const COLUMNS = `endpoint, manufacturer, model_number, serial_number, firmware_version, device_type,
  hardware_version, software_version, os_version, extra, updated_at`;

const SQL = {
  get: `SELECT ${COLUMNS} FROM device_facts WHERE endpoint = ?`,
  upsert: `INSERT INTO device_facts (${COLUMNS}) VALUES (@endpoint, @manufacturer, @model_number, @serial_number,
    @firmware_version, @device_type, @hardware_version, @software_version, @os_version, @extra, @updated_at)
    ON CONFLICT (endpoint) DO UPDATE SET manufacturer = excluded.manufacturer, model_number = excluded.model_number,
    serial_number = excluded.serial_number, firmware_version = excluded.firmware_version,
    device_type = excluded.device_type, hardware_version = excluded.hardware_version,
    software_version = excluded.software_version, os_version = excluded.os_version, extra = excluded.extra,
    updated_at = excluded.updated_at`,
  list: `SELECT ${COLUMNS} FROM device_facts
    WHERE endpoint > @after
      AND (@manufacturer IS NULL OR manufacturer = @manufacturer)
      AND (@model_number IS NULL OR model_number = @model_number)
    ORDER BY endpoint LIMIT @limit`,
  delete: 'DELETE FROM device_facts WHERE endpoint = ?',
} as const;

function fromRow(r: Row): DeviceFacts {
  return {
    endpoint: r.endpoint,
    manufacturer: r.manufacturer,
    modelNumber: r.model_number,
    serialNumber: r.serial_number,
    firmwareVersion: r.firmware_version,
    deviceType: r.device_type,
    hardwareVersion: r.hardware_version,
    softwareVersion: r.software_version,
    osVersion: r.os_version,
    extra: JSON.parse(r.extra) as Record<string, JsonValue>,
    updatedAt: r.updated_at,
  };
}

export class SqliteDeviceFactsRepository implements DeviceFactsRepository {
  constructor(private readonly s: Statements) {}

  upsert(endpoint: string, patch: DeviceFactsPatch, now: TimeInput): Promise<DeviceFacts> {
    let t: number;
    try {
      requireText(endpoint, 'endpoint');
      t = toMs(now, 'now');
    } catch (err) {
      return Promise.reject(toStoreError(err, 'upsert device facts'));
    }
    // In the next group commit of soft writes (batch.ts), settled after it.
    return softWrite(this.s, 'upsert device facts', () => {
      // The row SQLite returns is a fresh object of our own: updated in place, not copied.
      const row: Row = (this.s.get(SQL.get).get(endpoint) as Row | undefined) ?? {
        endpoint, manufacturer: null, model_number: null, serial_number: null, firmware_version: null,
        device_type: null, hardware_version: null, software_version: null, os_version: null,
        extra: '{}', updated_at: t,
      };
      for (const [field, column] of FIELDS) {
        const v = patch[field];
        if (v === undefined) continue;
        if (v !== null && typeof v !== 'string') throw invalid(`${field} must be a string or null`);
        (row as unknown as Record<string, string | null>)[column] = v;
      }
      if (patch.extra !== undefined) {
        if (typeof patch.extra !== 'object' || patch.extra === null || Array.isArray(patch.extra)) {
          throw invalid('extra must be an object');
        }
        const extra = JSON.parse(row.extra) as Record<string, JsonValue>;
        for (const k of Object.keys(patch.extra)) {
          const v = patch.extra[k]!;
          if (v === null) delete extra[k];
          else extra[k] = v;
        }
        row.extra = JSON.stringify(extra);
      }
      row.updated_at = t;
      this.s.get(SQL.upsert).run(row);
      return fromRow(row);
    });
  }

  get(endpoint: string): Promise<DeviceFacts | null> {
    return run('get device facts', () => {
      const row = this.s.get(SQL.get).get(endpoint) as Row | undefined;
      return row ? fromRow(row) : null;
    });
  }

  list(filter: DeviceFactsFilter = {}): Promise<Page<DeviceFacts>> {
    return run('list device facts', () => {
      const limit = limitOf(filter);
      const rows = this.s.get(SQL.list).all({
        after: filter.after ?? '',
        manufacturer: filter.manufacturer ?? null,
        model_number: filter.modelNumber ?? null,
        limit: limit + 1,
      }) as Row[];
      return pageOf(rows, limit, fromRow, (r) => r.endpoint);
    });
  }

  delete(endpoint: string): Promise<boolean> {
    return run('delete device facts', () => this.s.soft(() => this.s.get(SQL.delete).run(endpoint).changes > 0));
  }
}
