/**
 * Depot's LwM2M server: the Registration interface (TS Core 1.1 §6.2) on a CoAP server,
 * persisted through the store, and Device Management operations (§6.3) towards the
 * registered devices, queued durably for devices in queue mode (§6.5).
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { ClientResponse, Observation } from '../../coap/client.js';
import { CoapClient } from '../../coap/client.js';
import { Code, ContentFormat, codeClass } from '../../coap/codes.js';
import { encodeString } from '../../coap/options.js';
import { formatCoapUri } from '../../coap/uri.js';
import type { CoapScheme } from '../../coap/uri.js';
import type { BlockSource, CoapRequest, CoapResponse, CoapServer } from '../../coap/server.js';
import type { Peer } from '../../coap/transport.js';
import type { Clock, Timer } from '../../util/clock.js';
import { systemClock } from '../../util/clock.js';
import type { CredentialKind, DeviceFactsPatch, PeerIdentityRef, QueuedOperation, Registration, Store } from '../../store/types.js';
import { Lwm2mCodecError } from '../errors.js';
import { decode, decodeRecords, encode, encodeRecords } from '../content/index.js';
import { formatSenmlCbor } from '../content/senml.js';
import { announcedFormats, candidateFormats, LEARNED_FORMATS_FACT, learnedFormatsFrom, refusesFormat, type LearnedFormats } from './content-format.js';
import type { Lwm2mRecord } from '../node.js';
import type { Lwm2mNode, ResourceNode } from '../node.js';
import type { Lwm2mPath } from '../path.js';
import { formatPath, parsePath } from '../path.js';
import { MAX_REGISTRATION_BODY_BYTES, parseRegister, parseUpdate, RegistrationRequestError } from './registration-request.js';
import { printable } from '../../util/printable.js';
import { RegistrationIds } from './registration-ids.js';

export interface Lwm2mServerOptions {
  store: Pick<Store, 'registrations' | 'deviceFacts' | 'operations' | 'credentials'>;
  /** CoAP servers by scheme: devices register on them and are managed through them. */
  coap: { coap?: CoapServer; coaps?: CoapServer };
  clock?: Clock;
  /** Wall-clock time for persisted timestamps (ms since the epoch). */
  now?: () => number;
  /**
   * Accept registrations over plain CoAP (no DTLS). Off by default: the endpoint name
   * is then only a claim, so this is for trusted networks and tests.
   */
  allowUnsecured?: boolean;
  /** How often expired registrations are swept (ms, default 5 s). */
  expirySweepInterval?: number;
  /** Time a queue-mode device stays reachable after it last spoke (ms; MAX_TRANSMIT_WAIT, 93 s). */
  queueModeAwakeTime?: number;
  /** Read /3/0 after each registration to learn the device's facts (default true). */
  learnDeviceFacts?: boolean;
  /** Timeout of one request to a device (ms, default 30 s). */
  requestTimeout?: number;
  /** How long a queued operation waits for its sleeping device before it expires (ms, default 24 h). */
  queuedOperationLifetime?: number;
  /**
   * At most this many devices are being read (/3/0) and served their queued operations at
   * once after they registered or updated (default 256); the others wait their turn in FIFO
   * order. A burst of registrations is answered first, instead of every 2.01 being followed
   * at once by a request whose state (exchange, timers, promises) outlives the burst.
   */
  maxConcurrentContacts?: number;
  /**
   * Admission control (RFC 7252 §5.9.3.4): when this many contacts wait or run (devices whose
   * /3/0 read and queued operations are still to come), a Register or Update is answered
   * 5.03 Service Unavailable with a Max-Age telling the device when to come back (default
   * 10,000). A fleet rebooting at once is thus taken at the rate the server can serve it,
   * with every device told to retry, instead of a queue (and its memory) growing without bound
   * or datagrams dropped by the kernel.
   */
  maxPendingContacts?: number;
  /** Largest Max-Age of a 5.03 (seconds, default 60). */
  maxRetryAfterSec?: number;
  /** Registrations whose owner (endpoint, identity, address) is kept in memory for Updates (default 1,000,000; ~150 B each). */
  maxCachedRegistrations?: number;
}

/** What admission control did since the server started (bench and tests read it). */
export interface Lwm2mAdmissionStats {
  /** Registers and Updates answered 5.03 Service Unavailable. */
  refused: number;
  /** Contacts (reads after a Register/Update) waiting or running now. */
  pendingContacts: number;
  /** The bound (maxPendingContacts). */
  maxPendingContacts: number;
}

export interface DeviceResponse {
  /** "2.05" */
  code: string;
  contentFormat: number | undefined;
  payload: Uint8Array;
  /** The decoded value tree, for a successful Read of a known format. */
  node?: Lwm2mNode;
  /** Text payload of an error response (diagnostic). */
  diagnostic?: string;
  /** Decoded records of a composite answer (Read-Composite). */
  records?: Lwm2mRecord[];
}

/** Done now, or queued until a queue-mode device wakes up. */
export type OperationOutcome = { status: 'done'; response: DeviceResponse } | { status: 'queued'; operation: QueuedOperation };

export class Lwm2mServerError extends Error {
  constructor(
    message: string,
    readonly code: 'NOT_REGISTERED' | 'BAD_PATH' | 'TRANSPORT' | 'ENCODING',
  ) {
    super(message);
    this.name = 'Lwm2mServerError';
  }
}

export interface Lwm2mServerEvents {
  registered: [registration: Registration, replaced: Registration | null];
  updated: [registration: Registration];
  deregistered: [registration: Registration];
  expired: [registration: Registration];
  /** Queued operations whose device did not wake up in time (status 'expired'). */
  operationsExpired: [operations: QueuedOperation[]];
  factsLearned: [endpoint: string, patch: DeviceFactsPatch];
  operationFinished: [operation: QueuedOperation];
  /** Data a device pushed with the Send operation (TS Core §6.4.4). */
  send: [endpoint: string, records: Lwm2mRecord[]];
  error: [error: Error];
}

/** Object 3 resources Depot keeps as device facts (the fleet selects packages by them). */
/** Largest answer Depot takes from a device (a read of a whole object included); Depot's choice. */
const DEVICE_ANSWER_MAX_BYTES = 1024 * 1024;
/** Largest Send (TS Core 1.1 §6.4.3) body; it is buffered before the sender is checked. Depot's choice. */
const SEND_MAX_BYTES = 64 * 1024;

const DEVICE_FACT_RESOURCES: Record<number, keyof Omit<DeviceFactsPatch, 'extra'>> = {
  0: 'manufacturer',
  1: 'modelNumber',
  2: 'serialNumber',
  3: 'firmwareVersion',
  17: 'deviceType',
  18: 'hardwareVersion',
  19: 'softwareVersion',
};

export class Lwm2mServer extends EventEmitter<Lwm2mServerEvents> {
  private readonly store: Lwm2mServerOptions['store'];
  private readonly clock: Clock;
  private readonly wallNow: () => number;
  private readonly clients = new Map<string, CoapClient>();
  private readonly lastHeard = new Map<string, number>();
  private readonly draining = new Set<string>();
  private readonly observations = new Map<string, Set<Observation>>();
  /** Peer key → endpoint, to know who sends on /dp (the Send operation names no endpoint). */
  private readonly endpointsByPeer = new Map<string, string>();
  private readonly registrationIds = new RegistrationIds();
  private sweepTimer: Timer | undefined;
  private closed = false;
  /** Work after a Register/Update waiting for a slot (see maxConcurrentContacts); `contactHead` is the next to run. */
  private contactQueue: { registration: Registration; learn: boolean }[] = [];
  private contactHead = 0;
  private contactsRunning = 0;
  private contactsScheduled = false;
  private refused = 0;
  /** Contacts finished in the current one-second window, and the rate measured over the last one. */
  private contactsDone = 0;
  private contactsWindowStart = 0;
  private contactRate = 0;

  constructor(private readonly options: Lwm2mServerOptions) {
    super();
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.wallNow = options.now ?? Date.now;
    for (const [scheme, coap] of Object.entries(options.coap) as ['coap' | 'coaps', CoapServer | undefined][]) {
      if (!coap) continue;
      // A device's answer is bounded too (the client's default allows 64 MiB).
      this.clients.set(scheme, new CoapClient({ endpoint: coap.endpoint, maxBodySize: DEVICE_ANSWER_MAX_BYTES }));
      // Unauthenticated peers reach /rd and /dp: their bodies are buffered only up to these bounds.
      coap.resource('/rd', {
        title: 'LwM2M registration interface',
        maxBodySize: MAX_REGISTRATION_BODY_BYTES,
        post: (request) => this.register(request, scheme),
      });
      coap.resource('/dp', { hidden: true, maxBodySize: SEND_MAX_BYTES, post: (request) => this.receiveSend(request) });
      coap.resource('/rd', {
        prefix: true,
        hidden: true,
        maxBodySize: MAX_REGISTRATION_BODY_BYTES,
        post: (request) => this.update(request, scheme),
        delete: (request) => this.deregister(request),
      });
    }
    this.scheduleSweep();
  }

  // ------------------------------------------------------------------ registration interface

  private async register(request: CoapRequest, scheme: 'coap' | 'coaps'): Promise<CoapResponse> {
    if (request.path !== '/rd') return { code: Code.NotFound };
    const busy = this.admission();
    if (busy) return busy;
    let params;
    try {
      params = parseRegister(request.query, utf8Text(request.payload));
    } catch (error) {
      if (error instanceof RegistrationRequestError) return { code: Code.BadRequest, payload: error.message };
      throw error;
    }
    const identity = identityOf(request.peer);
    const refusal = await this.authorize(params.endpoint, identity);
    if (refusal) return { code: Code.Forbidden, payload: refusal };
    const id = this.registrationIds.next();
    const { registration, replaced } = await this.store.registrations.register(
      {
        id,
        endpoint: params.endpoint,
        lifetimeSec: params.lifetimeSec,
        lwm2mVersion: params.lwm2mVersion,
        binding: params.binding,
        smsNumber: params.smsNumber,
        queueMode: params.queueMode,
        objectLinks: params.objectLinks,
        address: { scheme, address: request.peer.address, port: request.peer.port },
        identity,
      },
      this.wallNow(),
    );
    this.heard(registration.endpoint);
    this.endpointsByPeer.set(request.peer.key, registration.endpoint);
    if (replaced) this.owners.delete(replaced.id);
    this.rememberOwner(registration);
    if (replaced) this.dropObservations(replaced.endpoint);
    this.emit('registered', registration, replaced);
    // After the answer is on its way: learn the device, then deliver what waited for it.
    this.scheduleContact(registration, true);
    return { code: Code.Created, locationPath: ['rd', id] };
  }

  private async update(request: CoapRequest, scheme: 'coap' | 'coaps'): Promise<CoapResponse> {
    const id = request.segments[1];
    if (request.segments.length !== 2 || !id) return { code: Code.NotFound };
    const busy = this.admission();
    if (busy) return busy;
    // Who may update it, from memory (kept for every registration this server made or read):
    // no read of the row per Update. The UPDATE below is still what says whether it exists.
    let existing = this.owners.get(id);
    if (!existing) {
      const stored = await this.store.registrations.getById(id);
      if (!stored) return { code: Code.NotFound };
      existing = this.rememberOwner(stored);
    }
    const refusal = ownerRefusal(existing, request.peer);
    if (refusal) return { code: Code.Forbidden, payload: refusal };
    // Credentials added after a plain registration end it at its next Update: the device must register with them.
    if (existing.identity === null && (await this.store.credentials.hasCredentials(existing.endpoint))) {
      return { code: Code.Forbidden, payload: 'this endpoint has credentials now: it registers only over DTLS with them' };
    }
    let params;
    try {
      params = parseUpdate(request.query, request.payload.length > 0 ? utf8Text(request.payload) : undefined);
    } catch (error) {
      if (error instanceof RegistrationRequestError) return { code: Code.BadRequest, payload: error.message };
      throw error;
    }
    const { objects: _objects, ...changes } = params;
    // The device may come back from another address (NAT rebinding): requests go there now.
    const registration = await this.store.registrations.update(id, { ...changes, address: { scheme, address: request.peer.address, port: request.peer.port } }, this.wallNow());
    if (!registration) {
      // Removed behind this server's back (the CLI, the API): forgotten here too.
      this.owners.delete(id);
      return { code: Code.NotFound };
    }
    this.rememberOwner(registration);
    this.heard(registration.endpoint);
    this.endpointsByPeer.set(request.peer.key, registration.endpoint);
    this.emit('updated', registration);
    this.scheduleContact(registration, params.objectLinks !== undefined);
    return { code: Code.Changed };
  }

  private async deregister(request: CoapRequest): Promise<CoapResponse> {
    const id = request.segments[1];
    if (request.segments.length !== 2 || !id) return { code: Code.NotFound };
    const existing = await this.store.registrations.getById(id);
    if (!existing) return { code: Code.NotFound };
    const refusal = ownerRefusal(existing, request.peer);
    if (refusal) return { code: Code.Forbidden, payload: refusal };
    await this.store.registrations.delete(id);
    this.owners.delete(id);
    this.lastHeard.delete(existing.endpoint);
    // Kept in the device's facts: read again if it comes back.
    this.learnedFormats.delete(existing.endpoint);
    this.dropObservations(existing.endpoint);
    this.emit('deregistered', existing);
    return { code: Code.Deleted };
  }

  /** Send (TS Core §6.4.4): a registered device pushes SenML records to /dp. */
  private async receiveSend(request: CoapRequest): Promise<CoapResponse> {
    const endpoint = this.endpointsByPeer.get(request.peer.key);
    const registration = endpoint ? await this.store.registrations.getByEndpoint(endpoint) : null;
    if (!registration || !sameIdentity(registration.identity, identityOf(request.peer))) return { code: Code.Forbidden, payload: 'Send is only accepted from a registered device' };
    const format = request.contentFormat;
    if (format !== ContentFormat.SenmlCbor && format !== ContentFormat.SenmlJson && format !== ContentFormat.LwM2mCbor) {
      return { code: Code.UnsupportedContentFormat, payload: 'Send takes SenML CBOR, SenML JSON or LwM2M CBOR' };
    }
    let records: Lwm2mRecord[];
    try {
      records = decodeRecords(format, request.payload);
    } catch (error) {
      if (error instanceof Lwm2mCodecError) return { code: Code.BadRequest, payload: error.message };
      throw error;
    }
    this.heard(registration.endpoint);
    this.emit('send', registration.endpoint, records);
    return { code: Code.Changed };
  }

  /**
   * An endpoint is bound to its credentials (TS Core §6.2.1, security considerations): a name that
   * has credentials registers only with them, whatever the flags; plain CoAP (--allow-unsecured)
   * is only for names with none, or anyone could take over a DTLS device's registration.
   */
  private async authorize(endpoint: string, identity: PeerIdentityRef | null): Promise<string | undefined> {
    if (!identity) {
      if (!this.options.allowUnsecured) return 'registration over an unsecured transport is not allowed';
      if (await this.store.credentials.hasCredentials(endpoint)) return 'this endpoint has credentials: it registers only over DTLS with them';
      return undefined;
    }
    const kind: CredentialKind = identity.kind === 'psk' ? 'psk' : identity.kind === 'x509' ? 'x509-subject' : 'rpk-sha256';
    const boundTo = await this.store.credentials.endpointOf(kind, identity.value);
    if (boundTo === null) return 'these credentials are not bound to any endpoint';
    if (boundTo !== endpoint) return 'these credentials belong to another endpoint';
    return undefined;
  }

  /**
   * 5.03 Service Unavailable with Max-Age (RFC 7252 §5.9.3.4) while the contact backlog is at its
   * bound, else undefined. Max-Age: the time the backlog takes to drain at the rate contacts
   * were finished in the last second (at least 1 s, at most maxRetryAfterSec), plus as much
   * again at random, so the refused devices do not all come back in the same second.
   */
  private admission(): CoapResponse | undefined {
    const pending = this.pendingContacts();
    const max = this.options.maxPendingContacts ?? 10_000;
    if (pending < max) return undefined;
    this.refused++;
    const cap = this.options.maxRetryAfterSec ?? 60;
    const drain = Math.min(cap, Math.max(1, Math.ceil(pending / Math.max(1, this.contactRate))));
    const maxAge = Math.min(cap, drain + Math.floor(Math.random() * (drain + 1)));
    return { code: Code.ServiceUnavailable, maxAge, payload: `server busy (${pending} devices waiting to be read): register again in ${maxAge} s` };
  }

  private pendingContacts(): number {
    return this.contactQueue.length - this.contactHead + this.contactsRunning;
  }

  /** Admission control's counters (see maxPendingContacts). */
  admissionStats(): Lwm2mAdmissionStats {
    return { refused: this.refused, pendingContacts: this.pendingContacts(), maxPendingContacts: this.options.maxPendingContacts ?? 10_000 };
  }

  private contactFinished(): void {
    this.contactsDone++;
    const now = this.clock.now();
    const elapsed = now - this.contactsWindowStart;
    if (elapsed >= 1000) {
      this.contactRate = (this.contactsDone * 1000) / elapsed;
      this.contactsDone = 0;
      this.contactsWindowStart = now;
    }
  }

  /** Background failures go to 'error' listeners, or become process warnings (never a crash). */
  private report(error: unknown): void {
    const e = error instanceof Error ? error : new Error(String(error));
    if (this.listenerCount('error') > 0) this.emit('error', e);
    else process.emitWarning(`LwM2M server: ${printable(e.message)}`);
  }

  /**
   * Registration id → what the owner check of an Update or De-register needs (endpoint,
   * identity, address), for the registrations this server made, updated or read. Bounded
   * (oldest first out): a miss reads the row as before.
   */
  private readonly owners = new Map<string, RegistrationOwner>();

  private rememberOwner(registration: Registration): RegistrationOwner {
    const owner: RegistrationOwner = { id: registration.id, endpoint: registration.endpoint, identity: registration.identity, address: registration.address };
    this.owners.delete(registration.id);
    this.owners.set(registration.id, owner);
    if (this.owners.size > (this.options.maxCachedRegistrations ?? 1_000_000)) this.owners.delete(this.owners.keys().next().value!);
    return owner;
  }

  /** Whether the owner of registration `id` is known from memory (tests). */
  knowsOwnerOf(id: string): boolean {
    return this.owners.has(id);
  }

  private heard(endpoint: string): void {
    this.lastHeard.set(endpoint, this.clock.now());
  }

  /** After the answer is on its way (next turn of the event loop), as a slot is free: learn the device, then deliver what waited for it. */
  private scheduleContact(registration: Registration, learn: boolean): void {
    this.contactQueue.push({ registration, learn });
    // One turn of the event loop for all the contacts queued in this one (not an Immediate and closure each).
    if (this.contactsScheduled) return;
    this.contactsScheduled = true;
    setImmediate(this.runScheduledContacts);
  }

  private readonly runScheduledContacts = (): void => {
    this.contactsScheduled = false;
    this.runContacts();
  };

  private runContacts(): void {
    // 256: under a flood of Registers a read's answer waits behind them in the socket's queue
    // (~0.1 s at 2,000 in flight), and reads run at (slots / round trip): 64 slots let the
    // backlog grow until admission control refused nearly everyone.
    const max = this.options.maxConcurrentContacts ?? 256;
    while (!this.closed && this.contactsRunning < max && this.contactHead < this.contactQueue.length) {
      const next = this.contactQueue[this.contactHead++]!;
      this.contactsRunning++;
      void this.afterContact(next.registration, next.learn);
    }
    if (this.contactHead === this.contactQueue.length) {
      this.contactQueue = [];
      this.contactHead = 0;
    } else if (this.contactHead > 1024 && this.contactHead * 2 > this.contactQueue.length) {
      this.contactQueue = this.contactQueue.slice(this.contactHead);
      this.contactHead = 0;
    }
  }

  /** One contact, in a slot: the slot is given back (and the next contact started) when it ends. */
  private async afterContact(registration: Registration, learn: boolean): Promise<void> {
    try {
      if (learn && this.options.learnDeviceFacts !== false) await this.learnFacts(registration);
      await this.drainQueue(registration.endpoint);
    } catch (error) {
      this.report(error);
    } finally {
      this.contactsRunning--;
      this.contactFinished();
      this.runContacts();
    }
  }

  /** Reads the Device object (/3/0) and keeps make, model, versions as device facts. */
  private async learnFacts(registration: Registration): Promise<void> {
    const response = await this.send(registration, { method: 'GET', path: [3, 0], accept: (await this.candidates(registration, [3, 0])).find((f) => f !== ContentFormat.TextPlain) ?? preferredFormat(registration) });
    let resources: readonly ResourceNode[];
    if (response.node?.kind === 'instance') {
      resources = response.node.resources;
    } else if (responseClass(response) === 4) {
      // Some clients read only single resources (an Object Instance read is refused): ask for the facts one by one.
      const found: ResourceNode[] = [];
      for (const id of Object.keys(DEVICE_FACT_RESOURCES).map(Number)) {
        const one = await this.send(registration, { method: 'GET', path: [3, 0, id], accept: ContentFormat.TextPlain });
        if (one.node?.kind === 'resource') found.push(one.node);
      }
      if (found.length === 0) return;
      resources = found;
    } else {
      return;
    }
    const patch: DeviceFactsPatch = { extra: {} };
    const sources: Record<string, string> = {};
    for (const resource of resources) {
      if (resource.kind !== 'resource') continue;
      const field = DEVICE_FACT_RESOURCES[resource.id];
      const value = resource.value;
      const text = value.type === 'string' ? value.value : value.type === 'integer' || value.type === 'unsignedInteger' || value.type === 'float' || value.type === 'boolean' ? String(value.value) : undefined;
      // An empty string is a missing value (it must not hide a fallback, e.g. the firmware version).
      if (text === undefined) continue;
      if (text.trim() === '') {
        if (field) patch[field] = null;
        continue;
      }
      if (field) {
        patch[field] = text;
        sources[field] = `/3/0/${resource.id}`;
      } else patch.extra![`3/0/${resource.id}`] = text;
    }
    // The OS version is the device's software version where it reports one, else its firmware version.
    patch.osVersion = patch.softwareVersion ?? patch.firmwareVersion ?? null;
    const osSource = typeof patch.softwareVersion === 'string' ? sources.softwareVersion : typeof patch.firmwareVersion === 'string' ? sources.firmwareVersion : undefined;
    if (osSource) sources.osVersion = osSource;
    // Which resource each fact came from (shown with the facts).
    patch.extra!.sources = sources;
    await this.store.deviceFacts.upsert(registration.endpoint, patch, this.wallNow());
    this.emit('factsLearned', registration.endpoint, patch);
  }

  private scheduleSweep(): void {
    if (this.closed) return;
    this.sweepTimer = this.clock.setTimer(
      this.options.expirySweepInterval ?? 5000,
      () => void this.sweepExpired().finally(() => this.scheduleSweep()),
      { background: true },
    );
  }

  /**
   * Removes registrations whose lifetime ran out without an Update (TS Core §6.2.2), and
   * marks queued operations past their deadline as expired.
   */
  async sweepExpired(): Promise<Registration[]> {
    const stale = await this.store.operations.expire(this.wallNow());
    if (stale.length > 0) this.emit('operationsExpired', stale);
    const expired = await this.store.registrations.listExpired(this.wallNow(), 1000);
    for (const registration of expired) {
      const removed = await this.store.registrations.delete(registration.id);
      this.owners.delete(registration.id);
      if (!removed) continue;
      this.lastHeard.delete(registration.endpoint);
      this.learnedFormats.delete(registration.endpoint);
      this.dropObservations(registration.endpoint);
      this.emit('expired', registration);
    }
    return expired;
  }

  // ------------------------------------------------------------------ device management

  async registration(endpoint: string): Promise<Registration> {
    const registration = await this.store.registrations.getByEndpoint(endpoint);
    if (!registration || registration.expiresAt <= this.wallNow()) throw new Lwm2mServerError(`device "${endpoint}" is not registered`, 'NOT_REGISTERED');
    return registration;
  }

  /** Whether a request can reach the device now (always, unless it is in queue mode and asleep). */
  isReachable(registration: Registration): boolean {
    if (!registration.queueMode) return true;
    const heard = this.lastHeard.get(registration.endpoint);
    return heard !== undefined && this.clock.now() - heard < (this.options.queueModeAwakeTime ?? 93_000);
  }

  /** Read (TS Core §6.3.1). */
  async read(endpoint: string, path: string, options: { accept?: number } = {}): Promise<OperationOutcome> {
    const registration = await this.registration(endpoint);
    const target = checkedPath(path);
    if (options.accept !== undefined) return this.operate(registration, target, 'read', { accept: options.accept });
    return this.negotiate(registration, target, 'Accept', async (accept) => this.operate(registration, target, 'read', { accept }));
  }

  /** Discover (TS Core §6.3.2): the link-format description of an object, instance or resource. */
  async discover(endpoint: string, path: string): Promise<OperationOutcome> {
    const registration = await this.registration(endpoint);
    return this.operate(registration, checkedPath(path), 'discover');
  }

  /**
   * Write (replace, PUT) of one resource with a body read block by block from `body` during
   * Block1 (RFC 7959 §2.5): an Object 9 Package push of a large file without holding it.
   * Only to a device that is reachable now (a stream cannot wait in the queue).
   */
  async writeStream(endpoint: string, path: string, body: BlockSource, contentFormat: number): Promise<DeviceResponse> {
    const registration = await this.registration(endpoint);
    if (!this.isReachable(registration)) throw new Lwm2mServerError(`"${endpoint}" is asleep (queue mode); a streamed write needs it awake`, 'TRANSPORT');
    return this.send(registration, { method: 'PUT', path: checkedPath(path), payload: body, contentFormat });
  }

  /** Write (TS Core §6.3.3): `replace` (PUT) or partial update (POST). */
  async write(endpoint: string, path: string, node: Lwm2mNode, options: { mode?: 'replace' | 'update'; contentFormat?: number } = {}): Promise<OperationOutcome> {
    const registration = await this.registration(endpoint);
    const target = checkedPath(path);
    if (options.mode === 'update' && !this.isReachable(registration)) {
      // The queue keeps the operation kind, not the method: a queued write is a replace.
      throw new Lwm2mServerError(`"${endpoint}" is asleep (queue mode); a partial update cannot be queued, only a replacing write`, 'TRANSPORT');
    }
    const method = options.mode === 'update' ? 'POST' : 'PUT';
    if (options.contentFormat !== undefined) return this.operate(registration, target, 'write', { payload: encodeNode(options.contentFormat, target, node), contentFormat: options.contentFormat, method });
    return this.negotiate(registration, target, 'Content-Format', async (format) => this.operate(registration, target, 'write', { payload: encodeNode(format, target, node), contentFormat: format, method }));
  }

  /** Execute (TS Core §6.3.5) with optional arguments (plain text, e.g. `0='a',1`). */
  async execute(endpoint: string, path: string, args?: string): Promise<OperationOutcome> {
    const registration = await this.registration(endpoint);
    return this.operate(registration, checkedPath(path), 'execute', args === undefined ? {} : { payload: encodeString(args), contentFormat: ContentFormat.TextPlain });
  }

  /** Read-Composite (TS Core §6.3.8): several paths in one FETCH, answered as SenML CBOR records. */
  async readComposite(endpoint: string, paths: string[]): Promise<DeviceResponse> {
    const registration = await this.registration(endpoint);
    if (!this.isReachable(registration)) throw new Lwm2mServerError(`"${endpoint}" is asleep (queue mode); composite operations are not queued`, 'TRANSPORT');
    const body = formatSenmlCbor(paths.map((p) => ({ n: formatPath(checkedPath(p)) })));
    return this.send(registration, { method: 'FETCH', path: [], payload: body, contentFormat: ContentFormat.SenmlCbor, accept: ContentFormat.SenmlCbor, composite: true });
  }

  /** Write-Composite (TS Core §6.3.9): values at several paths in one iPATCH. */
  async writeComposite(endpoint: string, records: Lwm2mRecord[]): Promise<DeviceResponse> {
    const registration = await this.registration(endpoint);
    if (!this.isReachable(registration)) throw new Lwm2mServerError(`"${endpoint}" is asleep (queue mode); composite operations are not queued`, 'TRANSPORT');
    let body: Uint8Array;
    try {
      body = encodeRecords(ContentFormat.SenmlCbor, records);
    } catch (error) {
      throw new Lwm2mServerError(`cannot encode the records: ${error instanceof Error ? error.message : String(error)}`, 'ENCODING');
    }
    return this.send(registration, { method: 'IPATCH', path: [], payload: body, contentFormat: ContentFormat.SenmlCbor });
  }

  /** Create (TS Core §6.3.6): a new instance of an object. */
  async create(endpoint: string, objectPath: string, instance: Lwm2mNode, contentFormat?: number): Promise<OperationOutcome> {
    const registration = await this.registration(endpoint);
    const target = checkedPath(objectPath);
    if (contentFormat !== undefined) return this.operate(registration, target, 'create', { payload: encodeNode(contentFormat, target, instance), contentFormat });
    return this.negotiate(registration, target, 'Content-Format', async (format) => this.operate(registration, target, 'create', { payload: encodeNode(format, target, instance), contentFormat: format }));
  }

  /** Delete (TS Core §6.3.7) of an object instance. */
  async delete(endpoint: string, path: string): Promise<OperationOutcome> {
    const registration = await this.registration(endpoint);
    return this.operate(registration, checkedPath(path), 'delete');
  }

  /** Write-Attributes (TS Core §6.3.4): pmin, pmax, gt, lt, st as query parameters. */
  async writeAttributes(endpoint: string, path: string, attributes: Record<string, number | null>): Promise<OperationOutcome> {
    const registration = await this.registration(endpoint);
    const query = Object.entries(attributes).map(([k, v]) => (v === null ? k : `${k}=${v}`));
    return this.operate(registration, checkedPath(path), 'write-attributes', { query });
  }

  /**
   * Observe (TS Core §6.4.1): notifications go to `onNotification` until cancelled, the
   * device deregisters, or its registration expires. Not queued: the device must be reachable.
   */
  async observe(endpoint: string, path: string, onNotification: (response: DeviceResponse) => void): Promise<{ first: DeviceResponse; cancel: () => Promise<void> }> {
    const registration = await this.registration(endpoint);
    const target = checkedPath(path);
    const client = this.clientFor(registration);
    const accept = (await this.candidates(registration, target))[0] ?? preferredFormat(registration);
    const observation = await client.observe(uriOf(registration, target), { onNotification: (r) => onNotification(toDeviceResponse(r, target)) }, { accept, timeout: this.options.requestTimeout ?? 30_000 });
    return this.keepObservation(endpoint, observation, toDeviceResponse(observation.first, target));
  }

  /**
   * Observe-Composite (TS Core §6.4.1): one observation over several paths, FETCH with
   * Observe and a SenML CBOR list of paths; each notification carries records.
   */
  async observeComposite(endpoint: string, paths: string[], onNotification: (response: DeviceResponse) => void): Promise<{ first: DeviceResponse; cancel: () => Promise<void> }> {
    const registration = await this.registration(endpoint);
    const client = this.clientFor(registration);
    const body = formatSenmlCbor(paths.map((p) => ({ n: formatPath(checkedPath(p)) })));
    const observation = await client.observe(
      uriOf(registration, []),
      { onNotification: (r) => onNotification(toCompositeResponse(r)) },
      { accept: ContentFormat.SenmlCbor, fetch: { payload: body, contentFormat: ContentFormat.SenmlCbor }, timeout: this.options.requestTimeout ?? 30_000 },
    );
    return this.keepObservation(endpoint, observation, toCompositeResponse(observation.first));
  }

  /** Remembers an observation so that de-registration or expiry cancels it. */
  private keepObservation(endpoint: string, observation: Observation, first: DeviceResponse): { first: DeviceResponse; cancel: () => Promise<void> } {
    let set = this.observations.get(endpoint);
    if (!set) this.observations.set(endpoint, (set = new Set()));
    set.add(observation);
    return {
      first,
      cancel: async () => {
        set.delete(observation);
        await observation.cancel();
      },
    };
  }

  private dropObservations(endpoint: string): void {
    const set = this.observations.get(endpoint);
    if (!set) return;
    this.observations.delete(endpoint);
    for (const o of set) void o.cancel().catch(() => undefined);
  }

  // ---------------------------------------------------------------- content formats

  /** What was learned of each endpoint's formats, as read from (and written to) its device facts; null: nothing. */
  private readonly learnedFormats = new Map<string, LearnedFormats | null>();

  /** What Depot learned of a device's content formats (the format that worked, those refused). */
  async learnedFormatsOf(endpoint: string): Promise<LearnedFormats | undefined> {
    let learned = this.learnedFormats.get(endpoint);
    if (learned === undefined) {
      const facts = await this.store.deviceFacts.get(endpoint).catch(() => null);
      learned = learnedFormatsFrom(facts?.extra[LEARNED_FORMATS_FACT]) ?? null;
      this.learnedFormats.set(endpoint, learned);
    }
    return learned ?? undefined;
  }

  private async learnFormat(endpoint: string, format: number, worked: boolean): Promise<void> {
    const was = (await this.learnedFormatsOf(endpoint)) ?? { refused: [] };
    const next: LearnedFormats = worked ? { format, refused: was.refused.filter((f) => f !== format) } : { ...(was.format !== undefined && was.format !== format ? { format: was.format } : {}), refused: [...new Set([...was.refused, format])] };
    if (was.format === next.format && was.refused.length === next.refused.length) return;
    this.learnedFormats.set(endpoint, next);
    // Kept with the device's facts (one row per device), so it survives a restart and a re-registration.
    const stored = { ...(next.format !== undefined ? { format: next.format } : {}), refused: next.refused };
    await this.store.deviceFacts.upsert(endpoint, { extra: { [LEARNED_FORMATS_FACT]: stored } }, this.wallNow()).catch((error: unknown) => this.report(error));
  }

  /**
   * The formats a registration's links announce, parsed once per distinct link string: a fleet
   * sends a few strings many times, and every read after a Register asked for them. Bounded.
   */
  private readonly announcedByLinks = new Map<string, readonly number[]>();

  private announced(objectLinks: string): readonly number[] {
    let formats = this.announcedByLinks.get(objectLinks);
    if (formats === undefined) {
      formats = announcedFormats(objectLinks).formats;
      if (this.announcedByLinks.size >= 1024) this.announcedByLinks.clear();
      this.announcedByLinks.set(objectLinks, formats);
    }
    return formats;
  }

  /** The formats to try for a request to `target`, best first (see content-format.ts). */
  private async candidates(registration: Registration, target: Lwm2mPath): Promise<number[]> {
    const announced = this.announced(registration.objectLinks);
    return candidateFormats(registration.lwm2mVersion, announced, await this.learnedFormatsOf(registration.endpoint), target.length >= 3);
  }

  /**
   * A request with no format given: in the chosen format; on 4.06 / 4.15 the format is marked
   * refused and the request sent once more in the next candidate (one retry per request, so a
   * device that refuses everything costs two exchanges per request until none is left, then a
   * clear error). A format the device took is remembered.
   */
  private async negotiate(registration: Registration, target: Lwm2mPath, option: 'Accept' | 'Content-Format', attempt: (format: number) => Promise<OperationOutcome>): Promise<OperationOutcome> {
    const candidates = await this.candidates(registration, target);
    if (candidates.length === 0) {
      const learned = await this.learnedFormatsOf(registration.endpoint);
      throw new Lwm2mServerError(
        `"${registration.endpoint}" refused every content format Depot can use for ${formatPath(target)} (refused: ${(learned?.refused ?? []).join(', ') || 'none'}; announced ct: ${announcedFormats(registration.objectLinks).formats.join(' ') || 'none'}); give a format explicitly`,
        'ENCODING',
      );
    }
    const refused: number[] = [];
    for (let i = 0; i < candidates.length && refused.length < 2; i++) {
      const format = candidates[i]!;
      let outcome: OperationOutcome;
      try {
        outcome = await attempt(format);
      } catch (error) {
        // The value cannot be carried in this format (e.g. several instances in text/plain): the next one.
        if (error instanceof Lwm2mServerError && error.code === 'ENCODING' && i + 1 < candidates.length) continue;
        throw error;
      }
      if (outcome.status !== 'done') return outcome;
      const code = outcome.response.code;
      if (!refusesFormat(code)) {
        if (responseClass(outcome.response) === 2) await this.learnFormat(registration.endpoint, format, true);
        return outcome;
      }
      await this.learnFormat(registration.endpoint, format, false);
      refused.push(format);
      if (refused.length === 2 || i + 1 === candidates.length) {
        const why = `the device answered ${code} to ${option} ${refused.join(' and then ')}; ${i + 1 === candidates.length ? 'no other format is left to try' : 'Depot tries the next format at the next request'}`;
        return { status: 'done', response: { ...outcome.response, diagnostic: outcome.response.diagnostic ? `${outcome.response.diagnostic} (${why})` : why } };
      }
    }
    throw new Lwm2mServerError(`no content format could carry the value for ${formatPath(target)}`, 'ENCODING');
  }

  /** Sends an operation now, or queues it while a queue-mode device sleeps. */
  private async operate(
    registration: Registration,
    target: Lwm2mPath,
    kind: QueuedOperation['kind'],
    request: { payload?: Uint8Array; contentFormat?: number; accept?: number; method?: 'PUT' | 'POST'; query?: string[] } = {},
  ): Promise<OperationOutcome> {
    const { payload, contentFormat, accept, method, query } = request;
    if (!this.isReachable(registration)) {
      const now = this.wallNow();
      const expiresAt = now + (this.options.queuedOperationLifetime ?? 24 * 3600_000);
      // Write-Attributes keeps its attributes with the path ("/3/0/9?pmin=10"), as a URI would.
      const stored = formatPath(target) + (query?.length ? '?' + query.join('&') : '');
      const operation = await this.store.operations.enqueue({ endpoint: registration.endpoint, kind, path: stored, payload: payload ?? null, contentFormat: contentFormat ?? null, expiresAt }, now);
      return { status: 'queued', operation };
    }
    const response = await this.send(registration, { method: method ?? methodFor(kind), path: target, payload, contentFormat, accept: accept ?? (kind === 'read' ? preferredFormat(registration) : undefined), query, discover: kind === 'discover' });
    return { status: 'done', response };
  }

  /** Delivers queued operations, oldest first, while the device is awake (TS Core §6.5). */
  private async drainQueue(endpoint: string): Promise<void> {
    if (this.draining.has(endpoint)) return;
    this.draining.add(endpoint);
    try {
      for (;;) {
        // The queue first: it is empty for nearly every contact, and then the registration need not be read.
        const op = await this.store.operations.nextPending(endpoint, this.wallNow());
        if (!op) return;
        const registration = await this.store.registrations.getByEndpoint(endpoint);
        if (!registration || !this.isReachable(registration)) return;
        await this.store.operations.markSent(op.id, this.wallNow());
        let finished: QueuedOperation;
        try {
          const [storedPath, storedQuery] = op.path.split('?', 2) as [string, string | undefined];
          const response = await this.send(registration, {
            method: op.kind === 'write' ? 'PUT' : methodFor(op.kind),
            path: parsePath(storedPath),
            query: storedQuery ? storedQuery.split('&') : undefined,
            payload: op.payload ?? undefined,
            contentFormat: op.contentFormat ?? undefined,
            accept: op.kind === 'read' ? ((await this.candidates(registration, parsePath(storedPath)))[0] ?? preferredFormat(registration)) : undefined,
            discover: op.kind === 'discover',
          });
          const result = { code: response.code, payload: response.payload, contentFormat: response.contentFormat ?? null, diagnostic: response.diagnostic ?? null };
          finished = response.code.startsWith('2.') ? await this.store.operations.markSucceeded(op.id, result, this.wallNow()) : await this.store.operations.markFailed(op.id, result, this.wallNow());
        } catch (error) {
          // The device went back to sleep before answering: try again at its next wake-up.
          await this.store.operations.requeue(op.id, this.wallNow());
          this.report(error);
          return;
        }
        this.emit('operationFinished', finished);
      }
    } finally {
      this.draining.delete(endpoint);
    }
  }

  private clientFor(registration: Registration): CoapClient {
    const client = this.clients.get(registration.address.scheme);
    if (!client) throw new Lwm2mServerError(`no ${registration.address.scheme} listener to reach "${registration.endpoint}"`, 'TRANSPORT');
    return client;
  }

  private async send(
    registration: Registration,
    request: {
      method: 'GET' | 'PUT' | 'POST' | 'DELETE' | 'FETCH' | 'IPATCH';
      path: Lwm2mPath;
      payload?: Uint8Array | BlockSource | undefined;
      contentFormat?: number | undefined;
      accept?: number | undefined;
      query?: string[] | undefined;
      discover?: boolean;
      composite?: boolean;
    },
  ): Promise<DeviceResponse> {
    const client = this.clientFor(registration);
    const accept = request.discover ? ContentFormat.LinkFormat : request.accept;
    const { scheme, address, port } = registration.address;
    let response: ClientResponse;
    try {
      response = await client.request({
        method: request.method,
        // In parts: a URI would only be formatted here to be parsed again by the client.
        uri: { scheme: scheme as 'coap' | 'coaps', address, port, uriPath: request.path.map(String), uriQuery: request.query ?? [] },
        ...(request.payload ? { payload: request.payload } : {}),
        ...(request.contentFormat !== undefined ? { contentFormat: request.contentFormat } : {}),
        ...(accept !== undefined ? { accept } : {}),
        timeout: this.options.requestTimeout ?? 30_000,
      });
    } catch (error) {
      throw new Lwm2mServerError(`no answer from "${registration.endpoint}": ${error instanceof Error ? error.message : String(error)}`, 'TRANSPORT');
    }
    this.heard(registration.endpoint);
    if (request.composite) return toCompositeResponse(response);
    return toDeviceResponse(response, request.discover ? undefined : request.path);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sweepTimer?.cancel();
    this.contactQueue = [];
    this.contactHead = 0;
    for (const endpoint of [...this.observations.keys()]) this.dropObservations(endpoint);
    await Promise.all([...this.clients.values()].map((c) => c.close()));
  }
}

// ------------------------------------------------------------------ helpers

/** Bytes as UTF-8 text (malformed sequences become U+FFFD), read in place rather than copied first. */
function utf8Text(bytes: Uint8Array): string {
  return (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString('utf8');
}

/** The class of a device's answer: 2 success, 4 client error, 5 server error. */
export function responseClass(response: Pick<DeviceResponse, 'code'>): number {
  return Number(response.code.split('.')[0]);
}

function identityOf(peer: Peer): PeerIdentityRef | null {
  const id = peer.identity;
  if (!id) return null;
  switch (id.kind) {
    case 'psk':
      return { kind: 'psk', value: id.identity };
    case 'x509':
      return { kind: 'x509', value: id.subject };
    case 'rpk':
      return { kind: 'rpk', value: createHash('sha256').update(id.publicKeyDer).digest('hex') };
  }
}

/**
 * Why `peer` may not Update or De-register `registration`, or undefined when it may: only the
 * registering identity, and for a registration over plain CoAP (no identity) only the same source
 * address (Depot's choice: the port may change with NAT rebinding, the address may not).
 */
type RegistrationOwner = Pick<Registration, 'id' | 'endpoint' | 'identity' | 'address'>;

function ownerRefusal(registration: RegistrationOwner, peer: Peer): string | undefined {
  if (!sameIdentity(registration.identity, identityOf(peer))) return 'this registration belongs to other credentials';
  if (registration.identity === null && peer.address !== registration.address.address) return 'this registration was made from another address';
  return undefined;
}

function sameIdentity(a: PeerIdentityRef | null, b: PeerIdentityRef | null): boolean {
  if (a === null || b === null) return a === b;
  return a.kind === b.kind && a.value === b.value;
}

/** Encodes a value tree for a request; a value the format cannot carry is the caller's error (ENCODING). */
function encodeNode(format: number, path: Lwm2mPath, node: Lwm2mNode): Uint8Array {
  try {
    return encode(format, path, node);
  } catch (error) {
    throw new Lwm2mServerError(`cannot encode the value for ${formatPath(path)}: ${error instanceof Error ? error.message : String(error)}`, 'ENCODING');
  }
}

function checkedPath(path: string): Lwm2mPath {
  try {
    return parsePath(path);
  } catch (error) {
    throw new Lwm2mServerError(`"${path}" is not an LwM2M path: ${error instanceof Error ? error.message : String(error)}`, 'BAD_PATH');
  }
}

/** TLV for 1.0 devices (the only format they must support); SenML CBOR from 1.1 on. */
function preferredFormat(registration: Registration): number {
  return registration.lwm2mVersion === '1.0' ? ContentFormat.LwM2mTlv : ContentFormat.SenmlCbor;
}

function methodFor(kind: QueuedOperation['kind']): 'GET' | 'PUT' | 'POST' | 'DELETE' {
  switch (kind) {
    case 'write-attributes':
    case 'write':
      return 'PUT';
    case 'execute':
    case 'create':
      return 'POST';
    case 'delete':
      return 'DELETE';
    default:
      return 'GET';
  }
}

/** The device's URI for a path (RFC 7252 §6.5: IPv6 literals bracketed, segments and query percent-encoded). */
function uriOf(registration: Registration, path: Lwm2mPath, query: readonly string[] = []): string {
  const { scheme, address, port } = registration.address;
  return formatCoapUri({ scheme: scheme as CoapScheme, host: address, port, uriPath: path.map(String), uriQuery: query });
}

function toDeviceResponse(response: ClientResponse, path: Lwm2mPath | undefined): DeviceResponse {
  const out: DeviceResponse = { code: response.codeText, contentFormat: response.contentFormat, payload: response.payload };
  if (codeClass(response.code) !== 2) {
    if (response.payload.length > 0) out.diagnostic = utf8Text(response.payload);
    return out;
  }
  // A single resource answered without a Content-Format is read as plain text, the LwM2M 1.0
  // default for resource values (some peers omit the option).
  const format = response.contentFormat ?? (path && path.length >= 3 ? ContentFormat.TextPlain : undefined);
  if (path && format !== undefined && response.payload.length > 0 && format !== ContentFormat.LinkFormat) {
    try {
      out.node = decode(format, path, response.payload);
    } catch (error) {
      if (!(error instanceof Lwm2mCodecError)) throw error;
      out.diagnostic = `payload could not be decoded: ${error.message}`;
    }
  }
  return out;
}

/** A composite answer (Read-Composite, Observe-Composite): its records, decoded. */
function toCompositeResponse(response: ClientResponse): DeviceResponse {
  const out = toDeviceResponse(response, undefined);
  if (codeClass(response.code) === 2 && response.contentFormat !== undefined && response.payload.length > 0) {
    try {
      out.records = decodeRecords(response.contentFormat, response.payload);
    } catch (error) {
      if (!(error instanceof Lwm2mCodecError)) throw error;
      out.diagnostic = `payload could not be decoded: ${error.message}`;
    }
  }
  return out;
}
