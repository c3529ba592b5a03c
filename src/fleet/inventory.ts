/**
 * The inventory (issue 16): one record per device whatever protocols it speaks, with a stable
 * Depot device id, kept up to date from every contact (LwM2M registrations and updates, Object 3
 * facts, OMA DM sessions through recordContact) and from imported device lists (CSV) of devices
 * Depot has never seen. Every change of a record is kept in its history.
 *
 * Every string a device sends is untrusted: facts are bounded and their control characters
 * escaped (util/printable.ts) before they are stored; identities are checked (IMEI digits and
 * check digit, phone numbers E.164) and refused when malformed.
 */
import { printable } from '../util/printable.js';
import type { Registration } from '../store/types.js';
import type { DeviceFactsPatch } from '../store/types.js';
import type { Page } from '../store/types.js';
import type {
  BootstrapState,
  DeviceFilter,
  DeviceHistoryEntry,
  DeviceIdentities,
  DevicePatch,
  DeviceWrite,
  InstalledSoftware,
  InventoryDevice,
  InventoryRepository,
  Protocol,
  TrustState,
} from './inventory-types.js';

export * from './inventory-types.js';

/** What one contact of a device tells the inventory (the InventoryPort the protocol layers call). */
export interface ContactReport {
  readonly protocol: Protocol;
  readonly endpoint?: string;
  /** OMA DM DevId (e.g. "IMEI:356938035643809"): an IMEI in it becomes the device's IMEI. */
  readonly devId?: string;
  readonly imei?: string;
  readonly msisdn?: string;
  readonly make?: string | null;
  readonly model?: string | null;
  readonly os?: string | null;
  readonly osVersion?: string | null;
  readonly firmware?: string | null;
  readonly software?: readonly InstalledSoftware[];
  readonly trustState?: TrustState;
  readonly bootstrapState?: BootstrapState;
  readonly timeZone?: string;
  /** When the contact happened (default now). */
  readonly at?: number;
}

/** What other layers call (OMA DM sessions, SMS delivery reports, bootstrap, the chain). */
export interface InventoryPort {
  recordContact(report: ContactReport): Promise<InventoryDevice | null>;
}

export class InventoryError extends Error {
  override readonly name = 'InventoryError';
  constructor(
    readonly code: 'BAD_REQUEST' | 'NOT_FOUND',
    message: string,
  ) {
    super(message);
  }
}

/** Device facts (make, model, versions): trimmed, bounded, control characters escaped; empty is null. */
export function cleanFact(value: string | null | undefined): string | null | undefined {
  if (value === undefined || value === null) return value;
  const trimmed = value.trim();
  return trimmed === '' ? null : printable(trimmed, 200);
}

/** Luhn check (IMEI check digit, 3GPP TS 23.003 §B.2). */
function luhnOk(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** An IMEI (15 digits with its check digit, or 14 without; IMEISV 16), else why not. */
export function imeiProblem(imei: string): string | undefined {
  if (!/^\d{14,16}$/.test(imei)) return `IMEI "${printable(imei, 40)}" is not 14 to 16 digits`;
  if (imei.length === 15 && !luhnOk(imei)) return `IMEI ${imei} has a wrong check digit`;
  return undefined;
}

/** A phone number in E.164 (spaces, dashes, dots and parentheses dropped), or a problem. */
export function normalizeMsisdn(raw: string): { msisdn: string } | { problem: string } {
  const compact = raw.trim().replace(/[\s\-.()]/g, '');
  const withPlus = compact.startsWith('00') ? `+${compact.slice(2)}` : compact;
  if (!/^\+?[1-9]\d{5,14}$/.test(withPlus)) return { problem: `phone number "${printable(raw, 40)}" is not an international number (E.164: + and 6 to 15 digits)` };
  return { msisdn: withPlus.startsWith('+') ? withPlus : `+${withPlus}` };
}

/** The IMEI inside an OMA DM DevId ("IMEI:…") or an LwM2M endpoint name ("urn:imei:…"). */
export function imeiIn(identity: string | undefined): string | undefined {
  const m = identity === undefined ? null : /^(?:IMEI:|urn:imei:)(\d{14,16})$/i.exec(identity);
  return m && imeiProblem(m[1]!) === undefined ? m[1] : undefined;
}

/** An IANA zone Intl knows, else undefined. */
export function validTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return zone.length <= 64;
  } catch {
    return false;
  }
}

export interface InventoryOptions {
  repository: InventoryRepository;
  now?: () => number;
  /** Told about each device whose record changed (live views, campaigns). */
  onChange?: (write: DeviceWrite) => void;
}

export class Inventory implements InventoryPort {
  readonly repository: InventoryRepository;
  private readonly now: () => number;

  constructor(private readonly options: InventoryOptions) {
    this.repository = options.repository;
    this.now = options.now ?? Date.now;
  }

  /**
   * A device reached Depot over `protocol`: finds its record by any identity it gave (creating
   * it when new), records the contact and what it reported. Malformed identities are dropped (a
   * device's word is not enough to refuse its contact); the record is still found by the others.
   */
  async recordContact(report: ContactReport): Promise<InventoryDevice | null> {
    const identities: { -readonly [K in keyof DeviceIdentities]?: string } = {};
    const ident = (v: string | undefined): string | undefined => (v !== undefined && v.length > 0 && v.length <= 255 ? v : undefined);
    const endpoint = ident(report.endpoint);
    const devId = ident(report.devId);
    if (endpoint) identities.lwm2mEndpoint = endpoint;
    if (devId) identities.omadmDevId = devId;
    const imei = report.imei !== undefined && imeiProblem(report.imei) === undefined ? report.imei : (imeiIn(devId) ?? imeiIn(endpoint));
    if (imei) identities.imei = imei;
    if (report.msisdn !== undefined) {
      const n = normalizeMsisdn(report.msisdn);
      if ('msisdn' in n) identities.msisdn = n.msisdn;
    }
    if (Object.keys(identities).length === 0) return null;
    const patch: { -readonly [K in keyof DevicePatch]: DevicePatch[K] } = {};
    for (const key of ['make', 'model', 'os', 'osVersion', 'firmware'] as const) {
      const v = cleanFact(report[key]);
      if (v !== undefined) patch[key] = v;
    }
    if (report.software) patch.software = report.software.slice(0, 256).map((s) => ({ name: cleanFact(s.name) ?? '?', version: cleanFact(s.version) ?? null, source: cleanFact(s.source) ?? report.protocol }));
    if (report.trustState) patch.trustState = report.trustState;
    if (report.bootstrapState) patch.bootstrapState = report.bootstrapState;
    if (report.timeZone !== undefined && validTimeZone(report.timeZone)) patch.timeZone = report.timeZone;
    const at = report.at ?? this.now();
    const write = await this.repository.upsert(identities, patch, { source: report.protocol, create: 'seen', contact: { protocol: report.protocol, at } }, this.now());
    if (write?.changed) this.options.onChange?.(write);
    return write?.device ?? null;
  }

  /** An LwM2M Register or Update (the hook in src/app/server.ts). */
  fromRegistration(registration: Registration): Promise<InventoryDevice | null> {
    return this.recordContact({ protocol: 'lwm2m', endpoint: registration.endpoint, ...(registration.smsNumber ? { msisdn: registration.smsNumber } : {}), at: registration.lastUpdateAt });
  }

  /** Object 3 facts the LwM2M server read (its factsLearned event). */
  async fromFacts(endpoint: string, facts: DeviceFactsPatch): Promise<InventoryDevice | null> {
    const write = await this.repository.upsert(
      { lwm2mEndpoint: endpoint },
      {
        ...(facts.manufacturer !== undefined ? { make: cleanFact(facts.manufacturer) ?? null } : {}),
        ...(facts.modelNumber !== undefined ? { model: cleanFact(facts.modelNumber) ?? null } : {}),
        ...(facts.firmwareVersion !== undefined ? { firmware: cleanFact(facts.firmwareVersion) ?? null } : {}),
        ...(facts.osVersion !== undefined ? { osVersion: cleanFact(facts.osVersion) ?? null } : {}),
      },
      // Soft like the device facts it copies: read again from the device at its next Register.
      { source: 'lwm2m', create: 'seen', durability: 'soft' },
      this.now(),
    );
    if (write?.changed) this.options.onChange?.(write);
    return write?.device ?? null;
  }

  async get(id: string): Promise<InventoryDevice> {
    const device = await this.repository.get(id);
    if (!device) throw new InventoryError('NOT_FOUND', `device ${printable(id, 64)} is not in the inventory`);
    return device;
  }

  list(filter: DeviceFilter = {}): Promise<Page<InventoryDevice>> {
    return this.repository.list(filter);
  }

  history(id: string, page?: { limit?: number; after?: string }): Promise<Page<DeviceHistoryEntry>> {
    return this.repository.history(id, page);
  }

  label(id: string, kind: 'tag' | 'group', add: readonly string[], remove: readonly string[]): Promise<InventoryDevice> {
    return this.repository.label(id, kind, add, remove, 'operator', this.now());
  }

  /**
   * A package an install put on the device (any method), kept in its software list in place of
   * another version of the same name. `address` is the install's: an LwM2M endpoint,
   * `omadm:<DevId>` or `device:<id>`. Null when no record has that address.
   */
  async recordInstalled(address: string, software: { name: string; version: string | null }, source: string): Promise<InventoryDevice | null> {
    const device = await deviceAtAddress(this.repository, address);
    if (!device) return null;
    const name = cleanFact(software.name) ?? '?';
    const entry: InstalledSoftware = { name, version: cleanFact(software.version ?? undefined) ?? null, source };
    const list = [entry, ...device.software.filter((s) => s.name !== name)].slice(0, 256);
    // Soft (group-committed, no fsync of its own): the install job is the durable record; this is its view in the inventory.
    const write = await this.repository.upsert(identityOf(device), { software: list }, { source: 'install', create: false, durability: 'soft' }, this.now());
    if (write?.changed) this.options.onChange?.(write);
    return write?.device ?? null;
  }

  /** The operator's word on a device (time zone, trust state, bootstrap state). */
  async set(id: string, patch: { timeZone?: string | null; trustState?: TrustState; bootstrapState?: BootstrapState }): Promise<InventoryDevice> {
    const device = await this.get(id);
    if (patch.timeZone != null && !validTimeZone(patch.timeZone)) throw new InventoryError('BAD_REQUEST', `"${printable(patch.timeZone, 64)}" is not an IANA time zone`);
    const write = await this.repository.upsert(identityOf(device), patch, { source: 'operator', create: false }, this.now());
    return write!.device;
  }
}

/** One identity that finds a device's record again. */
function identityOf(device: InventoryDevice): Partial<DeviceIdentities> {
  return device.lwm2mEndpoint ? { lwm2mEndpoint: device.lwm2mEndpoint } : device.omadmDevId ? { omadmDevId: device.omadmDevId } : device.imei ? { imei: device.imei } : { msisdn: device.msisdn! };
}

/** Prefix of the install address of a device known only to the inventory (an imported one not seen yet). */
export const DEVICE_ADDRESS_PREFIX = 'device:';
/** Prefix of the install address of an OMA DM device (`omadm:<DevId>`, as its facts are keyed). */
const OMADM_ADDRESS_PREFIX = 'omadm:';

/** The install address of a device: its LwM2M endpoint, else `omadm:<DevId>`, else `device:<Depot id>`. */
export function addressOf(device: Pick<InventoryDevice, 'id' | 'lwm2mEndpoint' | 'omadmDevId'>): string {
  return device.lwm2mEndpoint ?? (device.omadmDevId ? `${OMADM_ADDRESS_PREFIX}${device.omadmDevId}` : `${DEVICE_ADDRESS_PREFIX}${device.id}`);
}

/** The protocol identity a `omadm:<DevId>` or LwM2M endpoint address carries. */
export function identityOfAddress(address: string): Partial<DeviceIdentities> {
  return address.startsWith(OMADM_ADDRESS_PREFIX) ? { omadmDevId: address.slice(OMADM_ADDRESS_PREFIX.length) } : { lwm2mEndpoint: address };
}

/** The inventory record an install address names (any of the three forms), or null. */
export function deviceAtAddress<T>(inventory: { get(id: string): Promise<T | null>; findByIdentity(identities: Partial<DeviceIdentities>): Promise<T | null> }, address: string): Promise<T | null> {
  return address.startsWith(DEVICE_ADDRESS_PREFIX) ? inventory.get(address.slice(DEVICE_ADDRESS_PREFIX.length)) : inventory.findByIdentity(identityOfAddress(address));
}
