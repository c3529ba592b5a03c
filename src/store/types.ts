/**
 * The store's interfaces: what the LwM2M server, the DTLS credential lookup and the
 * fleet logic see. One implementation today (SQLite, ./sqlite.ts); a PostgreSQL one
 * can follow behind the same interfaces, which is why every operation returns a
 * Promise even though SQLite answers synchronously.
 *
 * Conventions:
 * - Time goes in as `TimeInput` (ms since the epoch, or a Date) and comes out as ms
 *   since the epoch. The store never reads the clock itself.
 * - "Not there" is `null`, not an error, for lookups (`get*`, `find*`); operations on
 *   a record that must exist reject with StoreError NOT_FOUND.
 * - Lists page by an opaque cursor: pass `page.next` as `after` to get the next page.
 */
import type { SecretKey } from './secret.js';
import type { ChainJobRepository, InstallJobRepository, MethodStatsRepository, PackageRepository } from '../fleet/domain.js';

/** Milliseconds since the Unix epoch. */
export type EpochMs = number;
/** A point in time: ms since the epoch or a Date. */
export type TimeInput = number | Date;

export interface PageRequest {
  /** Items per page: 1..1000, default 100. */
  limit?: number;
  /** The `next` cursor of the previous page. */
  after?: string;
}

export interface Page<T> {
  items: T[];
  /** Cursor of the following page; null on the last page. */
  next: string | null;
}

// ---------------------------------------------------------------------------
// 1. Registrations (LwM2M registration interface)

/** Where the device's registration came from: the address to send requests to. */
export interface TransportAddress {
  /** 'coap', 'coaps', 'coap+tcp', 'coaps+tcp' (or 'sms' for the SMS binding). */
  scheme: string;
  /** IP address (or MSISDN for SMS). */
  address: string;
  /** UDP/TCP port; 0 when the scheme has none. */
  port: number;
}

/**
 * The authenticated peer the registration arrived from, as the store keeps it:
 * PSK identity, certificate subject (or fingerprint), or hex SHA-256 of a raw public key.
 */
export interface PeerIdentityRef {
  kind: 'psk' | 'x509' | 'rpk';
  value: string;
}

export interface Registration {
  /** Registration id handed to the device (the Location path); opaque, unique. */
  id: string;
  /** Endpoint client name; unique: one live registration per endpoint. */
  endpoint: string;
  /** Lifetime in seconds. */
  lifetimeSec: number;
  /** LwM2M version the client announced ("1.0", "1.1", "1.2"). */
  lwm2mVersion: string;
  /** Binding mode as received ("U", "UQ", "T", ...). */
  binding: string;
  smsNumber: string | null;
  queueMode: boolean;
  /** The registration's CoRE link-format payload, exactly as received. */
  objectLinks: string;
  address: TransportAddress;
  /** null on an unsecured transport. */
  identity: PeerIdentityRef | null;
  registeredAt: EpochMs;
  lastUpdateAt: EpochMs;
  /** lastUpdateAt + lifetime: after this the registration is expired. */
  expiresAt: EpochMs;
}

export interface NewRegistration {
  id: string;
  endpoint: string;
  lifetimeSec: number;
  lwm2mVersion: string;
  binding: string;
  smsNumber?: string | null;
  queueMode: boolean;
  objectLinks: string;
  address: TransportAddress;
  identity?: PeerIdentityRef | null;
}

/** Fields an Update may change; absent fields stay as they are. */
export interface RegistrationUpdate {
  lifetimeSec?: number;
  binding?: string;
  smsNumber?: string | null;
  queueMode?: boolean;
  objectLinks?: string;
  address?: TransportAddress;
  identity?: PeerIdentityRef | null;
}

export interface RegistrationFilter extends PageRequest {
  /** Endpoint names starting with this text. */
  endpointPrefix?: string;
  lwm2mVersion?: string;
  queueMode?: boolean;
  /** Only registrations still alive at this time (expiresAt > aliveAt). */
  aliveAt?: TimeInput;
}

export interface RegisterResult {
  registration: Registration;
  /** The endpoint's previous registration, which this one replaced. */
  replaced: Registration | null;
}

export interface RegistrationRepository {
  /**
   * Stores a new registration, replacing the endpoint's previous one in the same
   * transaction. registeredAt = lastUpdateAt = now, expiresAt = now + lifetime.
   * Rejects with CONFLICT when the registration id belongs to another endpoint.
   */
  register(reg: NewRegistration, now: TimeInput): Promise<RegisterResult>;
  /** Applies an Update: changes the given fields, sets lastUpdateAt = now and a new expiresAt. Null when the id is unknown. */
  update(id: string, changes: RegistrationUpdate, now: TimeInput): Promise<Registration | null>;
  /** Deregistration: removes and returns the registration, null when the id is unknown. */
  delete(id: string): Promise<Registration | null>;
  getById(id: string): Promise<Registration | null>;
  getByEndpoint(endpoint: string): Promise<Registration | null>;
  /** Pages in endpoint-name order. */
  list(filter?: RegistrationFilter): Promise<Page<Registration>>;
  /** Registrations with expiresAt <= asOf, soonest expired first. */
  listExpired(asOf: TimeInput, limit?: number): Promise<Registration[]>;
}

// ---------------------------------------------------------------------------
// 2. Device facts (Object 3 values learned from the device)

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** The typed facts; every one may be unknown (null). */
export interface DeviceFactFields {
  manufacturer: string | null; // 3/0/0
  modelNumber: string | null; // 3/0/1
  serialNumber: string | null; // 3/0/2
  firmwareVersion: string | null; // 3/0/3
  deviceType: string | null; // 3/0/17
  hardwareVersion: string | null; // 3/0/18
  softwareVersion: string | null; // 3/0/19
  osVersion: string | null;
}

export interface DeviceFacts extends DeviceFactFields {
  endpoint: string;
  /** Everything else learned (other resources, vendor data), keyed by the caller's choice (e.g. "3/0/16"). */
  extra: Record<string, JsonValue>;
  updatedAt: EpochMs;
}

export interface DeviceFactsPatch extends Partial<DeviceFactFields> {
  /** Merged key by key into the stored extras; a key set to null is removed. */
  extra?: Record<string, JsonValue>;
}

export interface DeviceFactsFilter extends PageRequest {
  manufacturer?: string;
  modelNumber?: string;
}

export interface DeviceFactsRepository {
  /**
   * Merges what was learned: fields present in `patch` replace the stored ones (null
   * clears), absent fields stay. Creates the record on first sight.
   */
  upsert(endpoint: string, patch: DeviceFactsPatch, now: TimeInput): Promise<DeviceFacts>;
  get(endpoint: string): Promise<DeviceFacts | null>;
  /** Pages in endpoint-name order. */
  list(filter?: DeviceFactsFilter): Promise<Page<DeviceFacts>>;
  delete(endpoint: string): Promise<boolean>;
}

// ---------------------------------------------------------------------------
// 3. Queued operations (for devices in queue mode)

export type OperationKind =
  | 'read'
  | 'read-composite'
  | 'discover'
  | 'write'
  | 'write-composite'
  | 'write-attributes'
  | 'execute'
  | 'create'
  | 'delete'
  | 'observe'
  | 'observe-composite'
  | 'cancel-observe';

export const OPERATION_KINDS: readonly OperationKind[] = [
  'read', 'read-composite', 'discover', 'write', 'write-composite', 'write-attributes',
  'execute', 'create', 'delete', 'observe', 'observe-composite', 'cancel-observe',
];

export type OperationStatus = 'queued' | 'sent' | 'succeeded' | 'failed' | 'expired' | 'cancelled';

export const OPERATION_STATUSES: readonly OperationStatus[] = [
  'queued', 'sent', 'succeeded', 'failed', 'expired', 'cancelled',
];

/**
 * The queued operation's state machine, as data: for each status, the statuses it
 * may move to. Terminal statuses have none.
 */
export const OPERATION_TRANSITIONS: Readonly<Record<OperationStatus, readonly OperationStatus[]>> = {
  queued: ['sent', 'failed', 'expired', 'cancelled'],
  sent: ['queued', 'succeeded', 'failed', 'expired', 'cancelled'],
  succeeded: [],
  failed: [],
  expired: [],
  cancelled: [],
};

export interface QueuedOperation {
  /** Increasing with enqueue order (FIFO), never reused. */
  id: number;
  endpoint: string;
  kind: OperationKind;
  /** LwM2M path, e.g. "/3/0/1" (composite operations: the paths joined by ","). */
  path: string;
  payload: Uint8Array | null;
  /** CoAP Content-Format of the payload. */
  contentFormat: number | null;
  status: OperationStatus;
  createdAt: EpochMs;
  updatedAt: EpochMs;
  /** After this the operation is not sent any more; null = no deadline. */
  expiresAt: EpochMs | null;
  /** Response code, e.g. "2.05" or "4.04". */
  resultCode: string | null;
  resultPayload: Uint8Array | null;
  resultContentFormat: number | null;
  /** Why it failed, for operators. */
  diagnostic: string | null;
  /** How many times it was sent. */
  attempts: number;
}

export interface NewOperation {
  endpoint: string;
  kind: OperationKind;
  path: string;
  payload?: Uint8Array | null;
  contentFormat?: number | null;
  expiresAt?: TimeInput | null;
}

export interface OperationResult {
  code?: string | null;
  payload?: Uint8Array | null;
  contentFormat?: number | null;
  diagnostic?: string | null;
}

export interface OperationFilter extends PageRequest {
  status?: OperationStatus;
}

export interface OperationQueueRepository {
  enqueue(op: NewOperation, now: TimeInput): Promise<QueuedOperation>;
  get(id: number): Promise<QueuedOperation | null>;
  /** The endpoint's oldest operation in 'queued' whose deadline has not passed at `now`. */
  nextPending(endpoint: string, now: TimeInput): Promise<QueuedOperation | null>;
  /** queued → sent; counts an attempt. */
  markSent(id: number, now: TimeInput): Promise<QueuedOperation>;
  /** sent → succeeded, with the response. */
  markSucceeded(id: number, result: OperationResult, now: TimeInput): Promise<QueuedOperation>;
  /** queued|sent → failed, with the response or a diagnostic. */
  markFailed(id: number, result: OperationResult, now: TimeInput): Promise<QueuedOperation>;
  /** sent → queued: the device went back to sleep before answering; send again on its next wake-up. */
  requeue(id: number, now: TimeInput): Promise<QueuedOperation>;
  /** queued|sent → cancelled. */
  cancel(id: number, now: TimeInput): Promise<QueuedOperation>;
  /** Every queued/sent operation whose deadline is <= asOf becomes 'expired'; returns them. */
  expire(asOf: TimeInput): Promise<QueuedOperation[]>;
  /** The endpoint's operations in FIFO order. */
  listByEndpoint(endpoint: string, filter?: OperationFilter): Promise<Page<QueuedOperation>>;
  /** All operations in one status, in FIFO order. */
  listByStatus(status: OperationStatus, page?: PageRequest): Promise<Page<QueuedOperation>>;
  /** Deletes finished operations (succeeded, failed, expired, cancelled) last updated before `before`; returns how many. */
  purgeFinished(before: TimeInput): Promise<number>;
}

// ---------------------------------------------------------------------------
// 4. Bootstrap endpoints (the acceptance gate)

export type BootstrapState = 'pending' | 'accepted' | 'rejected';

export const BOOTSTRAP_STATES: readonly BootstrapState[] = ['pending', 'accepted', 'rejected'];

/**
 * The gate's state machine, as data. A decision is taken once; an operator who
 * changes their mind resets the endpoint to pending first.
 */
export const BOOTSTRAP_TRANSITIONS: Readonly<Record<BootstrapState, readonly BootstrapState[]>> = {
  pending: ['accepted', 'rejected'],
  accepted: ['pending'],
  rejected: ['pending'],
};

/** Why a Bootstrap-Request was refused; kept on the endpoint's record for operators. */
export type BootstrapRefusal =
  /** Plain CoAP while insecure (lab) bootstrap is off. */
  | 'insecure-transport'
  /** The DTLS identity is not a bootstrap credential (e.g. a device's DM credential). */
  | 'unknown-credential'
  /** A per-device bootstrap credential used for another endpoint name. */
  | 'credential-for-another-endpoint'
  /** The name is bound to another identity (the one that first bootstrapped it). */
  | 'identity-mismatch'
  /** A provisioned device asked again sooner than the re-bootstrap interval. */
  | 'rate-limited';

export interface BootstrapEndpoint {
  endpoint: string;
  state: BootstrapState;
  firstSeenAt: EpochMs;
  lastSeenAt: EpochMs;
  /** When the state last changed by a decision or reset; null while never decided. */
  decidedAt: EpochMs | null;
  /** Who decided (operator name, "pin", "auto"). */
  decidedBy: string | null;
  /** Bootstrap-Requests seen from this endpoint. */
  requestCount: number;
  /** "address:port" of the last request. */
  lastPeerAddress: string | null;
  /** Transport of the last request: 'coap' only in insecure (lab) bootstrap mode. */
  lastTransport: 'coap' | 'coaps' | null;
  /**
   * The identity the name is bound to ("psk:<identity>" or "x509:<subject>"): the one that first
   * bootstrapped it. Requests under this name with another identity are refused.
   */
  boundIdentity: string | null;
  /** Completed bootstraps. */
  bootstrapCount: number;
  lastBootstrapAt: EpochMs | null;
  /** The operator asked for a new DM key at the next bootstrap (otherwise the existing key is written again). */
  rotateKeyRequested: boolean;
  /** Refused Bootstrap-Requests under this name, and the last reason ("identity-mismatch: …"). */
  refusedCount: number;
  lastRefusal: string | null;
  lastRefusedAt: EpochMs | null;
}

/** Bounds on the gate's undecided (pending, never decided) records. */
export interface PendingLimits {
  /** Undecided records one source address may create. */
  maxPerSource: number;
  /** Undecided records in all. */
  maxTotal: number;
  /** An undecided record not asked for again for this long is deleted (ms). */
  ttlMs: number;
}

export interface BootstrapSighting {
  /** Source IP address (without port): what the per-source bound counts. */
  sourceHost: string;
  /** "address:port". */
  peerAddress: string;
  transport: 'coap' | 'coaps';
}

export type SightingResult =
  | { admitted: true; endpoint: BootstrapEndpoint }
  /** A new name over the bounds: nothing was written. */
  | { admitted: false; reason: 'source-limit' | 'total-limit' };

export interface BootstrapRepository {
  /** A Bootstrap-Request was seen: creates the endpoint as pending, or counts the request. Unbounded (tools, tests). */
  sighted(endpoint: string, peerAddress: string | null, now: TimeInput): Promise<BootstrapEndpoint>;
  /**
   * A Bootstrap-Request from the network: deletes undecided records past their TTL, then counts
   * the request on the name's record (one per name), or creates it as pending unless the source's
   * or the total bound of undecided records is reached. One transaction.
   */
  request(endpoint: string, sighting: BootstrapSighting, limits: PendingLimits, now: TimeInput): Promise<SightingResult>;
  /** Deletes undecided records last seen before `before`; returns how many. */
  purgeUndecided(before: TimeInput): Promise<number>;
  get(endpoint: string): Promise<BootstrapEndpoint | null>;
  /** pending → accepted. NOT_FOUND for an endpoint never seen, INVALID_TRANSITION when already decided. */
  accept(endpoint: string, decidedBy: string, now: TimeInput): Promise<BootstrapEndpoint>;
  /** pending → rejected. */
  reject(endpoint: string, decidedBy: string, now: TimeInput): Promise<BootstrapEndpoint>;
  /** accepted|rejected → pending. */
  reset(endpoint: string, decidedBy: string, now: TimeInput): Promise<BootstrapEndpoint>;
  /** Binds the name to `identity` unless it is bound already; returns the record (compare boundIdentity). NOT_FOUND when missing. */
  bindIdentity(endpoint: string, identity: string, now: TimeInput): Promise<BootstrapEndpoint>;
  /** Counts a refusal on the name's record, if there is one (refusals never create records). */
  noteRefusal(endpoint: string, reason: BootstrapRefusal, detail: string, now: TimeInput): Promise<BootstrapEndpoint | null>;
  /** A bootstrap completed: counts it, stamps lastBootstrapAt, clears the rotation request. NOT_FOUND when missing. */
  markBootstrapped(endpoint: string, now: TimeInput): Promise<BootstrapEndpoint>;
  /** The next bootstrap of this endpoint writes a new DM key (rotation). NOT_FOUND when missing. */
  requestKeyRotation(endpoint: string, now: TimeInput): Promise<BootstrapEndpoint>;
  /** Pages in endpoint-name order. */
  list(state?: BootstrapState, page?: PageRequest): Promise<Page<BootstrapEndpoint>>;
}

/**
 * A bootstrap credential: what a device proves to the Bootstrap-Server over DTLS (a factory
 * PSK, or a certificate subject). Per device (`endpoint` set: valid for that name only) or per
 * batch (`endpoint` null: one identity for many devices; each name is bound to it on first use).
 * The keys live apart from the DM credentials: a bootstrap credential never registers a device.
 */
export interface BootstrapCredential {
  kind: 'psk' | 'x509-subject';
  identity: string;
  scope: 'device' | 'batch';
  endpoint: string | null;
  /** The PSK (redacted in JSON and logs); null for a certificate subject. */
  key: SecretKey | null;
  createdAt: EpochMs;
  updatedAt: EpochMs;
}

export type BootstrapCredentialInput =
  | { kind: 'psk'; identity: string; key: Uint8Array | SecretKey; endpoint?: string | null }
  | { kind: 'x509-subject'; identity: string; endpoint?: string | null };

export interface BootstrapCredentialRepository {
  /** Adds a bootstrap credential. CONFLICT when the identity exists already (here or as a device PSK identity). */
  add(credential: BootstrapCredentialInput, now: TimeInput): Promise<BootstrapCredential>;
  find(kind: BootstrapCredential['kind'], identity: string): Promise<BootstrapCredential | null>;
  /** In (kind, identity) order; keys redacted as ever. */
  list(page?: PageRequest): Promise<Page<BootstrapCredential>>;
  remove(kind: BootstrapCredential['kind'], identity: string): Promise<boolean>;
}

// ---------------------------------------------------------------------------
// 5. Credentials

/**
 * How a DTLS peer proves who it is, and what the store keys it by:
 * - 'psk': the PSK identity (UTF-8 text), with the key;
 * - 'x509-subject': the certificate subject DN as text;
 * - 'x509-sha256': SHA-256 of the certificate DER, lowercase hex;
 * - 'rpk-sha256': SHA-256 of the SubjectPublicKeyInfo DER, lowercase hex.
 */
export type CredentialKind = 'psk' | 'x509-subject' | 'x509-sha256' | 'rpk-sha256';

export const CREDENTIAL_KINDS: readonly CredentialKind[] = ['psk', 'x509-subject', 'x509-sha256', 'rpk-sha256'];

export interface CredentialBase {
  kind: CredentialKind;
  /** The lookup key; one (kind, identity) maps to exactly one endpoint. */
  identity: string;
  endpoint: string;
  createdAt: EpochMs;
  updatedAt: EpochMs;
}

export interface PskCredential extends CredentialBase {
  kind: 'psk';
  /** Redacted in JSON, inspect and String(); `key.reveal()` gives the bytes. */
  key: SecretKey;
}

export interface IdentityCredential extends CredentialBase {
  kind: 'x509-subject' | 'x509-sha256' | 'rpk-sha256';
}

export type Credential = PskCredential | IdentityCredential;

export type CredentialInput =
  | { kind: 'psk'; identity: string; key: Uint8Array | SecretKey }
  | { kind: 'x509-subject' | 'x509-sha256' | 'rpk-sha256'; identity: string };

export interface CredentialRepository {
  /**
   * Binds a credential to an endpoint. The same (kind, identity) already bound to the
   * same endpoint is updated (a PSK gets the new key); bound to another endpoint it is
   * refused with CONFLICT, so a device can only authenticate as itself.
   */
  bind(endpoint: string, credential: CredentialInput, now: TimeInput): Promise<Credential>;
  /** Key lookup for the DTLS server (pskLookup). */
  findPsk(identity: string): Promise<PskCredential | null>;
  find(kind: CredentialKind, identity: string): Promise<Credential | null>;
  /** The endpoint a credential is bound to, or null: what authorization needs, without reading any key. */
  endpointOf(kind: CredentialKind, identity: string): Promise<string | null>;
  listByEndpoint(endpoint: string): Promise<Credential[]>;
  /**
   * Replaces all of the endpoint's PSK credentials with this one, in one transaction
   * (new identity and key, or the same identity with a new key).
   */
  rotatePsk(endpoint: string, identity: string, key: Uint8Array | SecretKey, now: TimeInput): Promise<PskCredential>;
  remove(kind: CredentialKind, identity: string): Promise<boolean>;
  /**
   * Whether the endpoint name has any credential: a device credential, or a per-device
   * bootstrap credential bound to it. Such a name may only register with its credentials.
   */
  hasCredentials(endpoint: string): Promise<boolean>;
  /** Removes all of an endpoint's credentials; returns how many. */
  removeEndpoint(endpoint: string): Promise<number>;
}

// ---------------------------------------------------------------------------
// 6. Settings

/**
 * The settings Depot knows and their types. Other modules add theirs by declaration
 * merging:
 *
 *   declare module '../store/types.js' { interface KnownSettings { 'sms.gateway': string } }
 */
export interface KnownSettings {
  /** PIN an operator types to accept pending bootstrap endpoints in bulk. */
  'bootstrap.pin': string;
  /** Accept every new bootstrap endpoint without a decision. */
  'bootstrap.autoAccept': boolean;
  /** Directory of Depot's certificate authority. */
  'pki.caDir': string;
  /** The Object 9 delivery method that last worked per device model ("manufacturer/model"). */
  'installs.methodByModel': Record<string, 'pull' | 'push'>;
  /** Default lifetime (s) handed to clients that do not send one. */
  'lwm2m.defaultLifetimeSec': number;
}

export type SettingKey = Extract<keyof KnownSettings, string>;

export interface SettingsRepository {
  get<K extends SettingKey>(key: K): Promise<KnownSettings[K] | null>;
  set<K extends SettingKey>(key: K, value: KnownSettings[K], now: TimeInput): Promise<void>;
  delete(key: SettingKey): Promise<boolean>;
}

// ---------------------------------------------------------------------------

/** The whole store, as the layers above use it. */
export interface Store {
  readonly registrations: RegistrationRepository;
  readonly deviceFacts: DeviceFactsRepository;
  readonly operations: OperationQueueRepository;
  readonly bootstrap: BootstrapRepository;
  readonly credentials: CredentialRepository;
  readonly bootstrapCredentials: BootstrapCredentialRepository;
  readonly settings: SettingsRepository;
  readonly packages: PackageRepository;
  readonly installJobs: InstallJobRepository;
  readonly chainJobs: ChainJobRepository;
  readonly methodStats: MethodStatsRepository;
  /** Closes the database; later calls reject with CLOSED. Idempotent. */
  close(): void;
}

// ---------------------------------------------------------------- packages and install jobs

// The fleet declares these (src/fleet/domain.ts) and the store implements them; re-exported
// here so the store's callers keep one import.
export * from '../fleet/domain.js';
