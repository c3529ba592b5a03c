/**
 * The inventory's domain: one device record across protocols (issue 16), and the repository the
 * inventory needs, declared here by the fleet and implemented by src/store/sqlite/inventory.ts.
 */
import type { Page, PageRequest, TimeInput } from '../store/types.js';

export const PROTOCOLS = ['lwm2m', 'omadm', 'sms'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const BOOTSTRAP_STATES = ['unknown', 'not-bootstrapped', 'pending', 'bootstrapped', 'failed'] as const;
export type BootstrapState = (typeof BOOTSTRAP_STATES)[number];

/** Does the device hold Depot's root certificate? */
export const TRUST_STATES = ['unknown', 'yes', 'no'] as const;
export type TrustState = (typeof TRUST_STATES)[number];

/** A piece of software the device reported (Object 9 instance, SCOMO Deployed node, a version string). */
export interface InstalledSoftware {
  readonly name: string;
  readonly version: string | null;
  /** Where the report came from, e.g. "lwm2m:/9/0", "omadm:./SCOMO/Deployed/x", "campaign:<id>". */
  readonly source: string;
}

/** The identities a device is known by; each is unique across the inventory. */
export interface DeviceIdentities {
  readonly lwm2mEndpoint: string | null;
  /** OMA DM DevId as the device sends it (e.g. "IMEI:356938035643809"). */
  readonly omadmDevId: string | null;
  /** 14–16 digits. */
  readonly imei: string | null;
  /** E.164 without spaces, e.g. "+4915112345678". */
  readonly msisdn: string | null;
}

export interface DeviceFields {
  readonly make: string | null;
  readonly model: string | null;
  readonly os: string | null;
  readonly osVersion: string | null;
  readonly firmware: string | null;
  /** What an imported list said the device would be (before Depot has seen it). */
  readonly expectedMake: string | null;
  readonly expectedModel: string | null;
  /** IANA time zone (e.g. "Europe/Berlin"), for maintenance windows in the device's own time. */
  readonly timeZone: string | null;
  readonly bootstrapState: BootstrapState;
  readonly trustState: TrustState;
  readonly software: readonly InstalledSoftware[];
}

export interface InventoryDevice extends DeviceIdentities, DeviceFields {
  /** Depot's stable device id ("dev_…"), whatever protocol the device speaks. */
  readonly id: string;
  /** Last contact per protocol (ms since the epoch); a protocol is "seen" when it has one. */
  readonly lastContact: Readonly<Partial<Record<Protocol, number>>>;
  readonly tags: readonly string[];
  readonly groups: readonly string[];
  /** `seen`: made by a device's contact; `imported`: from a device list, not seen yet (or since). */
  readonly source: 'seen' | 'imported';
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** One change of a device record: field → [before, after]. */
export interface DeviceHistoryEntry {
  readonly seq: number;
  readonly at: number;
  /** What changed it: "lwm2m", "omadm", "import", "operator", … */
  readonly source: string;
  readonly changes: Readonly<Record<string, readonly [unknown, unknown]>>;
}

export type DevicePatch = Partial<DeviceIdentities & Omit<DeviceFields, 'software'>> & { software?: readonly InstalledSoftware[] };

export interface DeviceFilter extends PageRequest {
  make?: string;
  model?: string;
  os?: string;
  group?: string;
  tag?: string;
  /** Devices that have contacted Depot over this protocol. */
  protocol?: Protocol;
}

/** What a write found: the device, and whether the record changed (besides last contact). */
export interface DeviceWrite {
  readonly device: InventoryDevice;
  readonly created: boolean;
  readonly changed: boolean;
}

export interface UpsertOptions {
  /** What changed the record (history): "lwm2m", "omadm", "import", "operator", … */
  readonly source: string;
  /** Create the device when no identity matches (as seen, or imported); false: only update. */
  readonly create: 'seen' | 'imported' | false;
  readonly contact?: { readonly protocol: Protocol; readonly at: number };
  /**
   * 'soft': what a device reported (sent again at its next contact), committed in the group
   * commit of soft writes (store/sqlite/batch.ts) with synchronous=NORMAL. Default: soft for a
   * contact that is not an import, else durable.
   */
  readonly durability?: 'soft' | 'durable';
  /** Tags and groups added (never removed) by this write. */
  readonly labels?: { readonly groups?: readonly string[]; readonly tags?: readonly string[] };
}

export interface InventoryRepository {
  /**
   * Finds the device any of `identities` names (in the order lwm2m endpoint, DevId, IMEI, MSISDN),
   * or creates it; applies the patch (identities already held by another device are left, and the
   * conflict noted in the history), the contact time, and appends a history entry when a field
   * changed; all in one transaction. `durability: 'soft'` for device contacts (sent again anyway).
   */
  upsert(identities: Partial<DeviceIdentities>, patch: DevicePatch, options: UpsertOptions, now: TimeInput): Promise<DeviceWrite | null>;
  /** Many upserts in one transaction; a refused item is its Error, the others are kept. */
  upsertMany(items: readonly { identities: Partial<DeviceIdentities>; patch: DevicePatch; options: UpsertOptions }[], now: TimeInput): Promise<(DeviceWrite | null | Error)[]>;
  get(id: string): Promise<InventoryDevice | null>;
  findByIdentity(identities: Partial<DeviceIdentities>): Promise<InventoryDevice | null>;
  list(filter?: DeviceFilter): Promise<Page<InventoryDevice>>;
  /** Every device id matching the filter (no paging: campaign targeting). */
  ids(filter: Omit<DeviceFilter, 'limit' | 'after'>): Promise<string[]>;
  getMany(ids: readonly string[]): Promise<InventoryDevice[]>;
  /** Adds and removes tags or groups; history entry with source. NOT_FOUND when missing. */
  label(id: string, kind: 'tag' | 'group', add: readonly string[], remove: readonly string[], source: string, now: TimeInput): Promise<InventoryDevice>;
  history(id: string, page?: PageRequest): Promise<Page<DeviceHistoryEntry>>;
}
