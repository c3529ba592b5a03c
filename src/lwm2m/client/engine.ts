/**
 * The LwM2M client engine (device side): bootstrap, registration, device management and
 * information reporting over one CoAP endpoint. See docs/lwm2m-client.md.
 *
 * One socket per client: requests to the server (Register, Update, Send) and the server's
 * requests to the device (Read, Write, Observe ...) share one CoapEndpoint, so the server
 * reaches the device at the address it registered from.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { CoapClient } from '../../coap/client.js';
import type { ClientResponse } from '../../coap/client.js';
import { Code, parseCode } from '../../coap/codes.js';
import type { EndpointOptions } from '../../coap/endpoint.js';
import { CoapRequestError } from '../../coap/endpoint.js';
import { OptionNumber, decodeString, getUintOption } from '../../coap/options.js';
import { CoapServer } from '../../coap/server.js';
import type { CoapRequest, CoapResponse, ResourceDefinition as CoapResourceDefinition, UploadSink } from '../../coap/server.js';
import { peerAddress, type DatagramTransport } from '../../coap/transport.js';
import { UdpTransport } from '../../coap/udp.js';
import { parseCoapUri } from '../../coap/uri.js';
import type { CertificateCredentials } from '../../dtls/connection.js';
import { DtlsTransport } from '../../dtls/transport.js';
import { systemClock } from '../../util/clock.js';
import type { Clock, Timer } from '../../util/clock.js';
import { ContentFormat, decode, decodeRecords, encode, encodeRecords } from '../content/index.js';
import { decodeSenmlEntries } from '../content/senml.js';
import { Lwm2mCodecError } from '../errors.js';
import { isExecutable } from '../model.js';
import { Node, nodeToRecords, recordsToNode } from '../node.js';
import type { InstanceNode, Lwm2mNode, Lwm2mRecord, ResourceNode } from '../node.js';
import { defaultRegistry } from '../objects/registry.js';
import type { Lwm2mPath } from '../path.js';
import { formatPath, isPrefixOf, parsePath } from '../path.js';
import type { BasicObject } from './basic-object.js';
import { BOOTSTRAP_ACCESS, DM_ACCESS, ObjectError } from './object-api.js';
import type { AccessContext, ClientObject, ObjectChange, UploadTarget } from './object-api.js';
import {
  accountOf,
  createConnectivityObject,
  createDeviceObject,
  createSecurityObject,
  createServerObject,
  securityValues,
  serverValues,
} from './objects.js';
import type { ConnectivityInfo, DeviceHooks, DeviceInfo, SecurityAccount } from './objects.js';
import { QueueModeTransport, canForgetAssociations } from './queue-mode.js';
import { dumpFromJson, dumpToJson, loadClientState, saveClientState } from './state.js';

/** Content formats the client can produce and consume, advertised in the registration (`ct`). */
export const SUPPORTED_FORMATS = [ContentFormat.PlainText, ContentFormat.Opaque, ContentFormat.SenmlJson, ContentFormat.SenmlCbor, ContentFormat.Tlv, ContentFormat.Lwm2mCbor];

/** LwM2M versions the client can register with, highest first (TS Core 1.2 §6.2.1: 4.12 → the next lower one). */
export const LWM2M_VERSIONS = ['1.2', '1.1', '1.0'] as const;
export type Lwm2mVersion = (typeof LWM2M_VERSIONS)[number];

/** Formats a client always takes for a single value and for Discover, whatever it announces. */
const ALWAYS_ACCEPTED: readonly number[] = [ContentFormat.PlainText, ContentFormat.Opaque, ContentFormat.LinkFormat];

/** Content formats defined by each version (TS Core 1.0 §6.4, 1.1 §7, 1.2 §7): 1.0 has no SenML / LwM2M CBOR. */
const VERSION_FORMATS: Record<Lwm2mVersion, readonly number[]> = {
  '1.0': [ContentFormat.PlainText, ContentFormat.Opaque, ContentFormat.Tlv],
  '1.1': [ContentFormat.PlainText, ContentFormat.Opaque, ContentFormat.Tlv, ContentFormat.SenmlJson, ContentFormat.SenmlCbor, ContentFormat.Lwm2mCbor],
  '1.2': [ContentFormat.PlainText, ContentFormat.Opaque, ContentFormat.Tlv, ContentFormat.SenmlJson, ContentFormat.SenmlCbor, ContentFormat.Lwm2mCbor],
};

/** Single `ct` value for a LwM2M 1.1 Register: the client's preferred structured format (Depot's choice of order). */
const SINGLE_CT_PREFERENCE: readonly number[] = [ContentFormat.SenmlCbor, ContentFormat.SenmlJson, ContentFormat.Lwm2mCbor, ContentFormat.Tlv];

/**
 * How the root link announces content formats: `list` (1.2: `ct="0 42 110 …"`, TS Core 1.2
 * §6.2.1), `single` (1.1: one value, `ct=112`), `none` (no ct, the version's mandatory formats).
 */
export type CtForm = 'list' | 'single' | 'none';

/** The root link (`</>;rt="oma.lwm2m"[;ct=…]`) for the announced formats in the given form. */
export function rootLink(formats: readonly number[], version: Lwm2mVersion, form: CtForm): string {
  const defined = formats.filter((f) => VERSION_FORMATS[version].includes(f));
  if (form === 'list' && defined.length > 0) return `</>;rt="oma.lwm2m";ct="${defined.join(' ')}"`;
  if (form !== 'none') {
    const structured = defined.filter((f) => f !== ContentFormat.PlainText && f !== ContentFormat.Opaque);
    const single = SINGLE_CT_PREFERENCE.find((f) => structured.includes(f)) ?? structured[0];
    // 1.0 knows no ct on the root link beyond TLV (mandatory): nothing to announce.
    if (single !== undefined && !(version === '1.0' && single === ContentFormat.Tlv)) return `</>;rt="oma.lwm2m";ct=${single}`;
  }
  return '</>;rt="oma.lwm2m"';
}

/** The ct form the version's rules call for: a list from 1.2, one value in 1.1, none in 1.0. */
export function ctFormFor(version: Lwm2mVersion): CtForm {
  return version === '1.2' ? 'list' : version === '1.1' ? 'single' : 'none';
}

export interface Lwm2mClientConfig {
  /** Endpoint Client Name (`ep`). May be omitted when the state file holds one. */
  endpoint?: string;
  /** LwM2M server (factory bootstrap), e.g. coap://127.0.0.1:5683 or coaps://…:5684. */
  serverUri?: string;
  /** Bootstrap-Server (client-initiated bootstrap, TS Core 1.1 §6.1). */
  bootstrapUri?: string;
  /** PSK for the factory-configured server (or the Bootstrap-Server when only that is given). */
  psk?: { identity: string; key: Uint8Array };
  /** Short Server ID of the factory-configured server (default 1). */
  shortServerId?: number;
  /** Registration lifetime in seconds for the factory-configured server (default 300). */
  lifetime?: number;
  /** Binding (default "U"). */
  binding?: string;
  /**
   * LwM2M version offered in Register (`lwm2m=`, default 1.1). On 4.12 Precondition Failed the
   * client registers again with the next lower version (1.2 → 1.1 → 1.0) unless `pinVersion`.
   */
  lwm2mVersion?: Lwm2mVersion;
  /** Only ever offer `lwm2mVersion`: a 4.12 is a failure, retried with back-off. */
  pinVersion?: boolean;
  /**
   * Content formats the client announces in `ct` and accepts (default SUPPORTED_FORMATS). When
   * given, a request in another format is refused (4.06 for Accept, 4.15 for Content-Format),
   * text/plain, opaque and link format excepted: a device that supports only what it announced.
   */
  formats?: number[];
  /** Pins how `ct` is announced (list, single, none) instead of following the registered version's rules. */
  announce?: CtForm;
  /**
   * Queue mode: Register carries `Q` (TS Core 1.1 §6.2.1) and the client stops listening after
   * `queueModeAwakeMs` without traffic (default 93 s, MAX_TRANSMIT_WAIT) until it sends again.
   */
  queueMode?: boolean;
  queueModeAwakeMs?: number;
  /** State file (Security and Server instances, endpoint); written atomically with mode 0600. */
  stateFile?: string;
  /** Object 3 values. */
  device?: DeviceInfo;
  deviceHooks?: DeviceHooks;
  connectivity?: ConnectivityInfo;
  /** Further objects (e.g. SoftwareManagementAdapter for Object 9). */
  objects?: ClientObject[];
  clock?: Clock;
  /** Local address and port to bind (default 0.0.0.0, any port). */
  host?: string;
  port?: number;
  /** Opens the datagram transport instead of UDP / DTLS sockets (tests, shared simulators). */
  transportFactory?: (scheme: 'coap' | 'coaps', psk: SecurityAccount['psk']) => Promise<DatagramTransport>;
  /**
   * Retry back-off after a failed bootstrap / registration: first delay and cap (ms). Each delay
   * is drawn from [d/2, d] of the doubling delay d; the first re-registration after a failed
   * Update waits a random part of `initialMs`.
   */
  retry?: { initialMs?: number; maxMs?: number };
  /** Uniform [0,1) source for back-off jitter (default Math.random). */
  random?: () => number;
  /** How long to wait for Bootstrap-Finish after the Bootstrap-Request (ms, default 120 s). */
  bootstrapTimeoutMs?: number;
  /** Timeout of one request to the server (ms); default: the CoAP exchange limit. */
  requestTimeoutMs?: number;
  /** CoAP endpoint tuning; the deduplication store defaults to 256 entries (a device, not a server). */
  coap?: Partial<Omit<EndpointOptions, 'transport' | 'clock'>>;
}

export type ClientEvent =
  | { type: 'bootstrapStarted'; uri: string }
  | { type: 'bootstrapped'; serverUri: string }
  | { type: 'bootstrapFailed'; reason: string; retryInMs: number }
  | { type: 'registered'; location: string; serverUri: string }
  | { type: 'updated'; location: string; objectsChanged: boolean }
  | { type: 'registrationFailed'; reason: string; code?: string; retryInMs: number }
  /** A Register was refused: the next one offers this version and ct form. */
  | { type: 'registrationDowngraded'; reason: string; lwm2mVersion: Lwm2mVersion; ctForm: CtForm }
  | { type: 'updateFailed'; reason: string; code?: string }
  | { type: 'deregistered'; location: string }
  | { type: 'reboot' }
  /** Queue mode: the awake period ended; requests are not received until the client sends again. */
  | { type: 'sleeping' }
  | { type: 'stateSaved'; path: string }
  | { type: 'error'; error: Error };

export type ClientState = 'stopped' | 'bootstrapping' | 'registering' | 'registered' | 'stopping';

interface Connection {
  scheme: 'coap' | 'coaps';
  pskKey: string;
  transport: DatagramTransport;
  server: CoapServer;
  client: CoapClient;
}

interface Registration {
  location: string;
  serverUri: string;
  lifetime: number;
  binding: string;
  timer: Timer | undefined;
}

interface Attributes {
  pmin?: number;
  pmax?: number;
  gt?: number;
  lt?: number;
  st?: number;
}

interface Observed {
  path: Lwm2mPath;
  key: string;
  lastSent: number;
  pending: Timer | undefined;
  pmaxTimer: Timer | undefined;
  /** The numeric value last notified (for gt / lt / st). */
  lastValue: number | undefined;
}

/** Margin before lifetime expiry at which the periodic Update is sent (ms). */
export function updateMarginMs(lifetimeSeconds: number): number {
  const lifetime = lifetimeSeconds * 1000;
  // At least MAX_TRANSMIT_WAIT (93 s, RFC 7252 §4.8.2) so that a retransmitted Update still
  // arrives in time, at least 10 % of the lifetime, at most half of it.
  return Math.min(Math.max(93_000, lifetime * 0.1), lifetime / 2);
}

export class Lwm2mClient {
  readonly security: BasicObject;
  readonly server: BasicObject;
  readonly device: BasicObject;
  readonly connectivity: BasicObject;
  private readonly objects = new Map<number, ClientObject>();
  private readonly clock: Clock;
  private readonly listeners = new Set<(e: ClientEvent) => void>();
  private readonly attributes = new Map<string, Attributes>();
  private readonly observed = new Map<string, Observed>();
  private conn: Connection | undefined;
  private opening: Promise<Connection> | undefined;
  private registration: Registration | undefined;
  /** The Register request awaiting its answer, so stop() can de-register what it creates. */
  private registerInFlight: { post: Promise<ClientResponse>; serverUri: string } | undefined;
  private endpointName: string | undefined;
  private stateValue: ClientState = 'stopped';
  private bootstrapping = false;
  /** Peer key of the Bootstrap-Server during bootstrap: only it gets bootstrap rights. */
  private bootstrapPeer: string | undefined;
  private bootstrapFinish: ((ok: boolean) => void) | undefined;
  private loop: Promise<void> | undefined;
  private sleepTimer: { timer: Timer; wake: () => void } | undefined;
  private updating: Promise<void> | undefined;
  private pendingUpdate: { objectsChanged: boolean } | undefined;
  private saveChain: Promise<void> = Promise.resolve();
  private saveQueued = false;
  private readonly unsubscribes: (() => void)[] = [];
  /** Version and ct form the next Register offers (lowered on 4.12 / 4.00). */
  private offeredVersion: Lwm2mVersion;
  private ctForm: CtForm;
  private readonly formats: readonly number[];

  constructor(private readonly config: Lwm2mClientConfig) {
    this.clock = config.clock ?? systemClock;
    this.offeredVersion = config.lwm2mVersion ?? '1.1';
    if (!LWM2M_VERSIONS.includes(this.offeredVersion)) throw new Error(`LwM2M version ${String(this.offeredVersion)} is not one of ${LWM2M_VERSIONS.join(', ')}`);
    this.ctForm = config.announce ?? ctFormFor(this.offeredVersion);
    this.formats = config.formats && config.formats.length > 0 ? [...config.formats] : SUPPORTED_FORMATS;
    this.endpointName = config.endpoint;
    this.security = createSecurityObject();
    this.server = createServerObject([], {
      onUpdateTrigger: () => this.requestUpdate(),
      onBootstrapTrigger: () => undefined,
    });
    const hooks = config.deviceHooks ?? {};
    this.device = createDeviceObject(
      config.device ?? { manufacturer: 'Depot', modelNumber: 'depot-client', serialNumber: config.endpoint ?? '0', firmwareVersion: '0.1.0' },
      {
        ...hooks,
        onReboot: async () => {
          this.emit({ type: 'reboot' });
          await hooks.onReboot?.();
        },
      },
    );
    this.connectivity = createConnectivityObject(config.connectivity);
    for (const o of [this.security, this.server, this.device, this.connectivity, ...(config.objects ?? [])]) this.addObject(o);
  }

  // ---------------------------------------------------------------- public API

  get endpoint(): string | undefined {
    return this.endpointName;
  }

  get state(): ClientState {
    return this.stateValue;
  }

  /** The registration location ("/rd/<id>") while registered. */
  get location(): string | undefined {
    return this.registration?.location;
  }

  /** Where the client's socket is bound (after start). */
  address(): { address: string; port: number } | undefined {
    return this.conn?.transport.address();
  }

  /**
   * A CoAP client over the DM server session, for a URI on that same server (host and port):
   * a coaps:// Package URI from Depot is then fetched over the DTLS association the device
   * registered with, with its credentials and no second handshake. Undefined when the URI
   * points elsewhere or the client is not registered.
   */
  sessionClientFor(uri: string): CoapClient | undefined {
    const reg = this.registration;
    const conn = this.conn;
    if (!reg || !conn) return undefined;
    try {
      const target = parseCoapUri(uri);
      const server = parseCoapUri(reg.serverUri);
      return target.scheme === server.scheme && target.port === server.port && target.host === server.host ? conn.client : undefined;
    } catch {
      return undefined;
    }
  }

  /** Adds (or replaces) an object. After start, the server is told with a registration Update. */
  addObject(obj: ClientObject): void {
    const had = this.objects.has(obj.id);
    this.objects.set(obj.id, obj);
    this.unsubscribes.push(obj.subscribe((c) => this.onObjectChange(obj.id, c)));
    this.syncRoutes();
    if (!had && this.registration) this.requestUpdate({ objectsChanged: true });
  }

  getObject(id: number): ClientObject | undefined {
    return this.objects.get(id);
  }

  on(listener: (e: ClientEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves at the next event of this type (or rejects after `timeoutMs` of the injected clock). */
  waitFor<T extends ClientEvent['type']>(type: T, timeoutMs?: number): Promise<Extract<ClientEvent, { type: T }>> {
    return new Promise((resolve, reject) => {
      let timer: Timer | undefined;
      const off = this.on((e) => {
        if (e.type !== type) return;
        off();
        timer?.cancel();
        resolve(e as Extract<ClientEvent, { type: T }>);
      });
      if (timeoutMs !== undefined) {
        timer = this.clock.setTimer(timeoutMs, () => {
          off();
          reject(new Error(`no ${type} event within ${timeoutMs} ms`));
        });
      }
    });
  }

  /**
   * Loads the state file (or sets up the configured server / Bootstrap-Server accounts),
   * opens the socket and starts bootstrapping or registering in the background.
   */
  async start(): Promise<void> {
    if (this.stateValue !== 'stopped') throw new Error('client already started');
    await this.loadState();
    if (!this.endpointName) throw new Error('no endpoint name (config.endpoint or a state file)');
    const account = this.serverAccount()?.account ?? this.bootstrapAccount();
    if (!account) throw new Error('no LwM2M server or Bootstrap-Server configured');
    this.stateValue = 'registering';
    try {
      await this.connection(account);
    } catch (error) {
      this.stateValue = 'stopped';
      throw error;
    }
    this.loop = this.run();
  }

  /** De-registers (when registered) and closes the socket. */
  async stop(options: { deregister?: boolean } = {}): Promise<void> {
    if (this.stateValue === 'stopped' || this.stateValue === 'stopping') return;
    this.stateValue = 'stopping';
    this.sleepTimer?.timer.cancel();
    this.sleepTimer?.wake();
    this.bootstrapFinish?.(false);
    const reg = this.registration;
    this.registration = undefined;
    reg?.timer?.cancel();
    const registering = this.registerInFlight;
    for (const o of this.observed.values()) {
      o.pending?.cancel();
      o.pmaxTimer?.cancel();
    }
    this.observed.clear();
    let registered: { serverUri: string; location: string } | undefined = reg;
    if (!registered && registering && options.deregister !== false) {
      // Stopped while a Register was in flight: a 2.01 still creates a registration on the
      // server, which must be de-registered rather than left to expire (TS Core 1.1 §6.2.3).
      const res = await registering.post.catch(() => undefined);
      const location = res?.code === Code.Created ? locationOf(res) : undefined;
      if (location !== undefined) registered = { serverUri: registering.serverUri, location };
    }
    if (registered && options.deregister !== false && this.conn) {
      try {
        const res = await this.conn.client.delete(registered.serverUri + registered.location, { timeout: this.config.requestTimeoutMs ?? 10_000 });
        if (res.code === Code.Deleted) this.emit({ type: 'deregistered', location: registered.location });
        else this.emit({ type: 'error', error: new Error(`De-register answered ${res.codeText}`) });
      } catch (error) {
        this.emit({ type: 'error', error: error as Error });
      }
    }
    // Closing the endpoint fails requests still in flight, so the loops below end.
    await this.closeConnection();
    await this.updating?.catch(() => undefined);
    await this.loop?.catch(() => undefined);
    await this.saveChain;
    this.stateValue = 'stopped';
  }

  /**
   * Asks for a registration Update now (TS Core 1.1 §6.2.2): with `objectsChanged`, the Update
   * carries the new object list. Updates requested while one is in flight are coalesced.
   */
  requestUpdate(options: { objectsChanged?: boolean } = {}): void {
    if (!this.registration) return;
    const objectsChanged = !!options.objectsChanged || !!this.pendingUpdate?.objectsChanged;
    if (this.updating) {
      this.pendingUpdate = { objectsChanged };
      return;
    }
    this.pendingUpdate = undefined;
    this.updating = this.update(objectsChanged).finally(() => {
      this.updating = undefined;
      const next = this.pendingUpdate;
      if (next) this.requestUpdate(next);
    });
  }

  /**
   * LwM2M Send (TS Core 1.1 §6.4.4): POST /dp with the values under `paths` as SenML CBOR.
   * Resolves with the server's response code ("2.04" on success).
   */
  async send(paths: readonly string[]): Promise<string> {
    const reg = this.registration;
    if (!reg || !this.conn) throw new Error('not registered');
    const records: Lwm2mRecord[] = [];
    for (const text of paths) {
      const path = parsePath(text);
      const node = this.readNode(path, DM_ACCESS);
      records.push(...nodeToRecords(path, node));
    }
    const payload = encodeRecords(ContentFormat.SenmlCbor, records);
    const conn = this.conn;
    try {
      const res = await conn.client.post(reg.serverUri + '/dp', payload, { contentFormat: ContentFormat.SenmlCbor, ...this.timeout() });
      return res.codeText;
    } catch (error) {
      await this.afterTransportFailure(conn, reg.serverUri, error);
      throw error;
    }
  }

  /**
   * A request of the caller's over the DM session (sessionClientFor: a package download, say)
   * failed: with no answer, the association is dropped as after a failed Update, so the
   * caller's retry starts a new handshake.
   */
  async sessionRequestFailed(uri: string, error: unknown): Promise<void> {
    const conn = this.conn;
    if (conn && this.sessionClientFor(uri) === conn.client) await this.afterTransportFailure(conn, uri, error);
  }

  /** The LwM2M version the client offers (after any 4.12 fallback: the one registered). */
  get lwm2mVersion(): Lwm2mVersion {
    return this.offeredVersion;
  }

  /** The registration link body (CoRE link format, TS Core 1.1 §6.2.1). */
  registrationLinks(): string {
    const links = [rootLink(this.formats, this.offeredVersion, this.ctForm)];
    for (const id of [...this.objects.keys()].sort((a, b) => a - b)) {
      if (id === 0) continue; // the Security object is never reported (TS Core 1.1 §6.2.1)
      const obj = this.objects.get(id) as ClientObject;
      const instances = obj.instanceIds();
      if (obj.version !== undefined && obj.version !== '1.0') links.push(`</${id}>;ver=${obj.version}`);
      else if (instances.length === 0) links.push(`</${id}>`);
      for (const iid of instances) links.push(`</${id}/${iid}>`);
    }
    return links.join(',');
  }

  // ---------------------------------------------------------------- lifecycle

  /** Bootstraps / registers until registered; `firstDelayMs` spreads a fleet's re-registrations. */
  private async run(firstDelayMs = 0): Promise<void> {
    let failures = 0;
    if (firstDelayMs > 0) await this.sleep(firstDelayMs);
    while (this.stateValue === 'registering' || this.stateValue === 'bootstrapping') {
      const server = this.serverAccount();
      if (!server) {
        const bs = this.bootstrapAccount();
        if (!bs) {
          this.emit({ type: 'error', error: new Error('no server account and no Bootstrap-Server') });
          return;
        }
        const reason = await this.bootstrap(bs);
        if (reason === true) {
          failures = 0;
          continue;
        }
        if (this.stopping()) return;
        failures++;
        const retryInMs = this.backoff(failures);
        this.emit({ type: 'bootstrapFailed', reason, retryInMs });
        await this.sleep(retryInMs);
        continue;
      }
      const result = await this.register(server.account, server.serverIid);
      if (result === true || this.stopping()) return;
      this.adjustRegister(result);
      failures++;
      const retryInMs = this.backoff(failures);
      this.emit({ type: 'registrationFailed', reason: result.reason, ...(result.code ? { code: result.code } : {}), retryInMs });
      await this.sleep(retryInMs);
    }
  }

  /**
   * A refused Register is not sent again unchanged: 4.12 Precondition Failed (the server does not
   * support the offered version, TS Core 1.1 §6.2.1 / 1.2 §6.2.1) → the next lower version and
   * its ct rules; 4.00 Bad Request → the next plainer ct form (list → single → none), since a
   * LwM2M 1.1 server may take only one value there. Either way the retry still backs off.
   */
  private adjustRegister(result: { reason: string; code?: string }): void {
    if (result.code === '4.12' && !this.config.pinVersion) {
      const next = LWM2M_VERSIONS[LWM2M_VERSIONS.indexOf(this.offeredVersion) + 1];
      if (next === undefined) return;
      this.offeredVersion = next;
      const form = ctFormFor(next);
      // Keep a plainer form already learned from a 4.00.
      this.ctForm = CT_FORMS.indexOf(form) > CT_FORMS.indexOf(this.ctForm) ? form : this.ctForm;
      this.emit({ type: 'registrationDowngraded', reason: result.reason, lwm2mVersion: next, ctForm: this.ctForm });
    } else if (result.code === '4.00') {
      const next = CT_FORMS[CT_FORMS.indexOf(this.ctForm) + 1];
      if (next === undefined) return;
      this.ctForm = next;
      this.emit({ type: 'registrationDowngraded', reason: result.reason, lwm2mVersion: this.offeredVersion, ctForm: next });
    }
  }

  private stopping(): boolean {
    return this.stateValue === 'stopping' || this.stateValue === 'stopped';
  }

  private backoff(failures: number): number {
    const initial = this.config.retry?.initialMs ?? 1_000;
    const max = this.config.retry?.maxMs ?? 300_000;
    const base = Math.min(max, initial * 2 ** Math.max(0, failures - 1));
    // Jitter below the (capped) delay, over half of it: devices that failed together (their server
    // went away) spread out, even once all of them are at the cap.
    return Math.max(1, Math.round(base * (1 - 0.5 * (this.config.random ?? Math.random)())));
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping()) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        this.sleepTimer = undefined;
        resolve();
      };
      this.sleepTimer = { timer: this.clock.setTimer(ms, wake), wake };
    });
  }

  private timeout(): { timeout?: number } {
    return this.config.requestTimeoutMs !== undefined ? { timeout: this.config.requestTimeoutMs } : {};
  }

  /** One client-initiated bootstrap: true, or why it failed. */
  private async bootstrap(account: SecurityAccount): Promise<true | string> {
    this.stateValue = 'bootstrapping';
    const conn = await this.connection(account);
    this.emit({ type: 'bootstrapStarted', uri: account.uri });
    const finished = new Promise<boolean>((resolve) => {
      const timer = this.clock.setTimer(this.config.bootstrapTimeoutMs ?? 120_000, () => resolve(false));
      this.bootstrapFinish = (ok) => {
        timer.cancel();
        resolve(ok);
      };
    });
    this.bootstrapping = true;
    this.bootstrapPeer = await peerKey(conn, account.uri).catch(() => undefined);
    let reason = 'Bootstrap-Finish did not arrive';
    try {
      const res = await conn.client.post(`${base(account.uri)}/bs?ep=${encodeURIComponent(this.endpointName as string)}&pct=${ContentFormat.SenmlCbor}`, new Uint8Array(0), this.timeout());
      if (res.code !== Code.Changed) {
        reason = `Bootstrap-Request answered ${res.codeText}`;
        this.bootstrapFinish?.(false);
      }
    } catch (error) {
      await this.afterTransportFailure(conn, account.uri, error);
      reason = `Bootstrap-Request failed: ${(error as Error).message}`;
      this.bootstrapFinish?.(false);
    }
    const ok = await finished;
    this.bootstrapping = false;
    this.bootstrapPeer = undefined;
    this.bootstrapFinish = undefined;
    if (this.stopping()) return 'stopping';
    this.stateValue = 'registering';
    if (!ok) return reason;
    await this.saveState();
    const server = this.serverAccount();
    this.emit({ type: 'bootstrapped', serverUri: server?.account.uri ?? '' });
    return true;
  }

  private registerQuery(lifetime: number, binding: string): string {
    let q = `ep=${encodeURIComponent(this.endpointName as string)}&lt=${lifetime}&lwm2m=${this.offeredVersion}&b=${binding}`;
    if (this.config.queueMode) q += '&Q';
    return q;
  }

  private async register(account: SecurityAccount, serverIid: number): Promise<true | { reason: string; code?: string }> {
    const conn = await this.connection(account);
    const lifetime = this.serverNumber(serverIid, 1) ?? this.config.lifetime ?? 300;
    const binding = this.serverString(serverIid, 7) ?? this.config.binding ?? 'U';
    const serverUri = base(account.uri);
    let res: ClientResponse;
    const post = conn.client.post(`${serverUri}/rd?${this.registerQuery(lifetime, binding)}`, this.registrationLinks(), {
      contentFormat: ContentFormat.LinkFormat,
      ...this.timeout(),
    });
    this.registerInFlight = { post, serverUri };
    try {
      res = await post;
    } catch (error) {
      await this.afterTransportFailure(conn, serverUri, error);
      return { reason: `Register failed: ${(error as Error).message}` };
    } finally {
      if (this.registerInFlight?.post === post) this.registerInFlight = undefined;
    }
    // stop() took over this Register's answer (it de-registers what the server created).
    if (this.stopping()) return { reason: 'stopping' };
    if (res.code !== Code.Created) {
      // The server's diagnostic payload says why (untrusted: printable ASCII, bounded).
      const why = diagnostic(res.payload);
      return { reason: `Register (lwm2m=${this.offeredVersion}) answered ${res.codeText}${why ? `: ${why}` : ''}`, code: res.codeText };
    }
    const location = locationOf(res);
    if (location === undefined) return { reason: 'Register answer has no Location-Path' };
    this.registration = { location, serverUri, lifetime, binding, timer: undefined };
    this.stateValue = 'registered';
    this.scheduleUpdate();
    this.emit({ type: 'registered', location, serverUri });
    return true;
  }

  private scheduleUpdate(): void {
    const reg = this.registration;
    if (!reg) return;
    reg.timer?.cancel();
    const delay = reg.lifetime * 1000 - updateMarginMs(reg.lifetime);
    reg.timer = this.clock.setTimer(delay, () => this.requestUpdate());
  }

  private async update(objectsChanged: boolean): Promise<void> {
    const reg = this.registration;
    const conn = this.conn;
    if (!reg || !conn) return;
    const server = this.serverAccount();
    const lifetime = server ? (this.serverNumber(server.serverIid, 1) ?? reg.lifetime) : reg.lifetime;
    const binding = server ? (this.serverString(server.serverIid, 7) ?? reg.binding) : reg.binding;
    const query: string[] = [];
    if (lifetime !== reg.lifetime) query.push(`lt=${lifetime}`);
    if (binding !== reg.binding) query.push(`b=${binding}`);
    const uri = reg.serverUri + reg.location + (query.length ? '?' + query.join('&') : '');
    let res: ClientResponse;
    try {
      res = objectsChanged
        ? await conn.client.post(uri, this.registrationLinks(), { contentFormat: ContentFormat.LinkFormat, ...this.timeout() })
        : await conn.client.post(uri, new Uint8Array(0), this.timeout());
    } catch (error) {
      await this.afterTransportFailure(conn, reg.serverUri, error);
      if (this.registration !== reg) return;
      this.emit({ type: 'updateFailed', reason: `Update failed: ${(error as Error).message}` });
      this.reregister(reg);
      return;
    }
    if (this.registration !== reg) return;
    if (res.code === Code.Changed) {
      reg.lifetime = lifetime;
      reg.binding = binding;
      this.scheduleUpdate();
      this.emit({ type: 'updated', location: reg.location, objectsChanged });
      return;
    }
    // 4.04: the server forgot the registration; register again (TS Core 1.1 §6.2.2).
    this.emit({ type: 'updateFailed', reason: `Update answered ${res.codeText}`, code: res.codeText });
    this.reregister(reg);
  }

  /**
   * A request to the server got no answer (or the DTLS association failed): the server may have
   * lost the association (killed and restarted: it cannot read our records, and will not answer
   * them). Drop it, and any session resumption the server cannot know, so the next request
   * starts a full handshake instead of retransmitting into the old association forever.
   */
  private async afterTransportFailure(conn: Connection, serverUri: string, error: unknown): Promise<void> {
    if (!(error instanceof CoapRequestError) || (error.reason !== 'timeout' && error.reason !== 'transport')) return;
    if (!canForgetAssociations(conn.transport)) return;
    try {
      const p = parseCoapUri(serverUri);
      conn.transport.forgetAssociation(conn.transport.peer(await peerAddress(p.host), p.port));
    } catch {
      // An unresolvable name: nothing to forget.
    }
  }

  /**
   * The Update failed: register again, after a random part of the first back-off, so that a fleet
   * whose server came back does not re-register in one burst (each device's Update failed at
   * about the same time).
   */
  private reregister(reg: Registration): void {
    reg.timer?.cancel();
    if (this.registration === reg) this.registration = undefined;
    if (this.stateValue !== 'registered') return;
    this.stateValue = 'registering';
    const initial = this.config.retry?.initialMs ?? 1_000;
    this.loop = this.run(Math.floor((this.config.random ?? Math.random)() * initial));
  }

  // ---------------------------------------------------------------- accounts

  /** The first Security instance that is not the Bootstrap-Server, with its Server instance. */
  private serverAccount(): { account: SecurityAccount; serverIid: number } | undefined {
    for (const iid of this.security.instanceIds()) {
      const account = accountOf(this.security, iid);
      if (!account || account.bootstrap) continue;
      const serverIid = this.server.instanceIds().find((s) => this.serverNumber(s, 0) === account.shortServerId) ?? (this.server.instanceIds().length === 1 ? this.server.instanceIds()[0] : undefined);
      if (serverIid === undefined) continue;
      return { account, serverIid };
    }
    return undefined;
  }

  private bootstrapAccount(): SecurityAccount | undefined {
    for (const iid of this.security.instanceIds()) {
      const account = accountOf(this.security, iid);
      if (account?.bootstrap) return account;
    }
    return undefined;
  }

  private serverNumber(iid: number, rid: number): number | undefined {
    const v = this.server.get(iid, rid);
    if (!v || v instanceof Map || (v.type !== 'integer' && v.type !== 'unsignedInteger')) return undefined;
    return Number(v.value);
  }

  private serverString(iid: number, rid: number): string | undefined {
    const v = this.server.get(iid, rid);
    return v && !(v instanceof Map) && v.type === 'string' ? v.value : undefined;
  }

  // ---------------------------------------------------------------- state file

  private async loadState(): Promise<void> {
    const path = this.config.stateFile;
    const state = path ? await loadClientState(path) : undefined;
    if (state && (!this.config.endpoint || state.endpoint === this.config.endpoint)) {
      this.endpointName = state.endpoint;
      this.security.load(dumpFromJson(state.objects['0']));
      this.server.load(dumpFromJson(state.objects['1']));
      return;
    }
    const ssid = this.config.shortServerId ?? 1;
    let iid = 0;
    if (this.config.bootstrapUri) {
      const account: SecurityAccount = { uri: this.config.bootstrapUri, bootstrap: true };
      if (this.config.psk && !this.config.serverUri) account.psk = this.config.psk;
      this.security.create(iid++, securityValues(account).map(([rid, v]) => Node.resource(rid, v)), BOOTSTRAP_ACCESS);
    }
    if (this.config.serverUri) {
      const account: SecurityAccount = { uri: this.config.serverUri, bootstrap: false, shortServerId: ssid };
      if (this.config.psk) account.psk = this.config.psk;
      this.security.create(iid, securityValues(account).map(([rid, v]) => Node.resource(rid, v)), BOOTSTRAP_ACCESS);
      const values = serverValues({ shortServerId: ssid, lifetime: this.config.lifetime ?? 300, binding: this.config.binding ?? 'U' });
      this.server.create(0, values.map(([rid, v]) => Node.resource(rid, v)), BOOTSTRAP_ACCESS);
    }
    await this.saveState();
  }

  private saveState(): Promise<void> {
    const path = this.config.stateFile;
    if (!path || !this.endpointName) return Promise.resolve();
    if (this.saveQueued) return this.saveChain;
    this.saveQueued = true;
    this.saveChain = this.saveChain.then(async () => {
      this.saveQueued = false;
      try {
        await saveClientState(path, {
          v: 1,
          endpoint: this.endpointName as string,
          objects: { '0': dumpToJson(this.security.dump()), '1': dumpToJson(this.server.dump()) },
        });
        this.emit({ type: 'stateSaved', path });
      } catch (error) {
        this.emit({ type: 'error', error: error as Error });
      }
    });
    return this.saveChain;
  }

  // ---------------------------------------------------------------- transport

  private async connection(account: SecurityAccount): Promise<Connection> {
    const scheme = parseCoapUri(account.uri).scheme === 'coaps' ? 'coaps' : 'coap';
    // What identifies the credentials: a change (new bootstrap) needs a new DTLS session.
    const pskKey = account.certificate
      ? 'x509:' + createHash('sha256').update(account.certificate.certificateDer).update(account.certificate.serverTrustDer).digest('hex')
      : account.psk
        ? account.psk.identity + ':' + Buffer.from(account.psk.key).toString('hex')
        : '';
    if (this.opening) await this.opening.catch(() => undefined);
    if (this.conn && this.conn.scheme === scheme && (scheme === 'coap' || this.conn.pskKey === pskKey)) return this.conn;
    const open = async (): Promise<Connection> => {
      const previousPort = this.conn?.transport.address().port;
      await this.closeConnection();
      const opened = this.config.transportFactory
        ? await this.config.transportFactory(scheme, account.psk)
        : scheme === 'coaps'
          ? await DtlsTransport.bind({
              host: this.config.host ?? '0.0.0.0',
              port: previousPort ?? this.config.port ?? 0,
              clock: this.clock,
              client: account.certificate ? certificateClient(account.certificate) : account.psk ? { psk: account.psk } : {},
            })
          : await UdpTransport.bind({ host: this.config.host ?? '0.0.0.0', port: previousPort ?? this.config.port ?? 0 });
      const transport = this.config.queueMode
        ? new QueueModeTransport(opened, this.clock, this.config.queueModeAwakeMs ?? 93_000, () => this.emit({ type: 'sleeping' }))
        : opened;
      const server = new CoapServer({ deduplicationCapacity: 256, ...this.config.coap, transport, clock: this.clock });
      const client = new CoapClient({ endpoint: server.endpoint, clock: this.clock });
      const conn: Connection = { scheme, pskKey, transport, server, client };
      this.conn = conn;
      this.installRoutes(conn);
      return conn;
    };
    this.opening = open();
    try {
      return await this.opening;
    } finally {
      this.opening = undefined;
    }
  }

  private async closeConnection(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    if (!conn) return;
    await conn.client.close();
    await conn.server.close();
    await conn.transport.close();
  }

  // ---------------------------------------------------------------- routes

  private readonly routePaths = new Set<string>();

  private readonly handleRequest = (request: CoapRequest): Promise<CoapResponse> => this.handle(request);
  /** The definition every exact route of this client shares: the engine dispatches by path itself. */
  private readonly exactRoute: CoapResourceDefinition = {
    get: this.handleRequest,
    put: this.handleRequest,
    post: this.handleRequest,
    delete: this.handleRequest,
    fetch: this.handleRequest,
    ipatch: this.handleRequest,
    upload: (request) => this.openUpload(request),
    observable: true,
    hidden: true,
  };
  private readonly prefixRoute: CoapResourceDefinition = { ...this.exactRoute, prefix: true };

  /**
   * One prefix route serves every path; objects and instances get exact routes of their own so
   * that a notification for /3/0 reaches the observers of /3/0 only (CoapServer.notifyChanged
   * on a prefix route would also reach the observers below it).
   */
  private installRoutes(conn: Connection): void {
    this.routePaths.clear();
    conn.server.resource('/', this.prefixRoute);
    // An exact route for "/" too: Observe-Composite (FETCH /) observers live there, apart from
    // the single-path observers of the prefix route.
    conn.server.resource('/', this.exactRoute);
    this.syncRoutes();
  }

  private syncRoutes(): void {
    const conn = this.conn;
    if (!conn) return;
    const wanted = new Set<string>();
    for (const [id, obj] of this.objects) {
      wanted.add(`/${id}`);
      for (const iid of obj.instanceIds()) wanted.add(`/${id}/${iid}`);
    }
    for (const p of this.routePaths) {
      if (!wanted.has(p)) {
        conn.server.removeResource(p);
        this.routePaths.delete(p);
      }
    }
    for (const p of wanted) {
      if (!this.routePaths.has(p)) {
        conn.server.resource(p, this.exactRoute);
        this.routePaths.add(p);
      }
    }
  }

  // ---------------------------------------------------------------- changes and observe

  private onObjectChange(objectId: number, change: ObjectChange): void {
    if (change.instancesChanged) this.syncRoutes();
    if (objectId === 0 || objectId === 1) {
      if (!this.bootstrapping) void this.saveState();
      if (objectId === 1 && this.registration && change.rids?.some((r) => r === 1 || r === 7)) this.requestUpdate();
    }
    if (change.objectsChanged || (change.instancesChanged && objectId !== 0)) this.requestUpdate({ objectsChanged: true });
    const changed: Lwm2mPath[] = [];
    if (change.iid === undefined) changed.push([objectId]);
    else if (!change.rids || change.rids.length === 0) changed.push([objectId, change.iid]);
    else for (const rid of change.rids) changed.push([objectId, change.iid, rid]);
    for (const o of this.observed.values()) {
      if (changed.some((c) => isPrefixOf(o.path, c) || isPrefixOf(c, o.path))) this.scheduleNotify(o);
    }
  }

  /** Effective attributes of a path: its own, else inherited from its parents, else the server's defaults. */
  private effectiveAttributes(path: Lwm2mPath): Attributes {
    const out: Attributes = {};
    for (let n = path.length; n >= 1; n--) {
      const a = this.attributes.get(formatPath(path.slice(0, n) as unknown as Lwm2mPath));
      if (!a) continue;
      for (const k of Object.keys(a) as (keyof Attributes)[]) if (out[k] === undefined && a[k] !== undefined) out[k] = a[k];
    }
    const server = this.serverAccount();
    if (server) {
      out.pmin ??= this.serverNumber(server.serverIid, 2);
      out.pmax ??= this.serverNumber(server.serverIid, 3);
    }
    return out;
  }

  private track(path: Lwm2mPath): void {
    const key = formatPath(path);
    if (this.observed.has(key)) return;
    const o: Observed = { path, key, lastSent: this.clock.now(), pending: undefined, pmaxTimer: undefined, lastValue: this.numericValue(path) };
    this.observed.set(key, o);
    this.armPmax(o);
  }

  /**
   * Whether anyone may still observe `o`: exact routes (/, /o, /o/i) are counted precisely;
   * resource paths share the prefix route, so any observer there keeps them alive.
   */
  private mayBeObserved(o: Observed): boolean {
    const server = this.conn?.server;
    if (!server) return false;
    if (o.path.length === 0 || (o.path.length <= 2 && this.routePaths.has(o.key))) return server.observerCount(o.key) > 0;
    return server.observerCount() > 0;
  }

  private armPmax(o: Observed): void {
    o.pmaxTimer?.cancel();
    o.pmaxTimer = undefined;
    const pmax = this.effectiveAttributes(o.path).pmax;
    if (!pmax || pmax <= 0) return;
    o.pmaxTimer = this.clock.setTimer(pmax * 1000, () => {
      o.pmaxTimer = undefined;
      if (!this.mayBeObserved(o)) {
        this.observed.delete(o.key);
        return;
      }
      this.notifyNow(o);
    });
  }

  /** The value of a numeric single resource (or resource instance), else undefined. */
  private numericValue(path: Lwm2mPath): number | undefined {
    if (path.length < 3) return undefined;
    try {
      const node = this.readNode(path, DM_ACCESS);
      if (node.kind !== 'resource' && node.kind !== 'resourceInstance') return undefined;
      const v = node.value;
      return v.type === 'integer' || v.type === 'unsignedInteger' || v.type === 'float' ? Number(v.value) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * gt / lt / st (TS Core 1.1 §6.3.4 attributes): with any of them set on a numeric resource,
   * a change is notified only when it crosses gt or lt, or moved by at least st since the last notification.
   */
  private passesThresholds(o: Observed, attrs: Attributes): boolean {
    if (attrs.gt === undefined && attrs.lt === undefined && attrs.st === undefined) return true;
    const v = this.numericValue(o.path);
    const last = o.lastValue;
    if (v === undefined || last === undefined) return true;
    const crosses = (t: number | undefined): boolean => t !== undefined && (last <= t) !== (v <= t);
    return crosses(attrs.gt) || crosses(attrs.lt) || (attrs.st !== undefined && Math.abs(v - last) >= attrs.st);
  }

  private scheduleNotify(o: Observed): void {
    if (o.pending) return;
    const attrs = this.effectiveAttributes(o.path);
    if (!this.passesThresholds(o, attrs)) return;
    const pmin = (attrs.pmin ?? 0) * 1000;
    const wait = o.lastSent + pmin - this.clock.now();
    if (wait <= 0) this.notifyNow(o);
    else
      o.pending = this.clock.setTimer(wait, () => {
        o.pending = undefined;
        this.notifyNow(o);
      });
  }

  private notifyNow(o: Observed): void {
    o.lastSent = this.clock.now();
    o.lastValue = this.numericValue(o.path);
    this.conn?.server.notifyChanged(o.key);
    this.armPmax(o);
  }

  // ---------------------------------------------------------------- request handling

  private async handle(request: CoapRequest): Promise<CoapResponse> {
    try {
      const fromBootstrapServer = this.bootstrapping && request.peer.key === this.bootstrapPeer;
      if (request.segments.length === 1 && request.segments[0] === 'bs') return this.handleBootstrapFinish(request, fromBootstrapServer);
      const path = toPath(request.segments);
      if (!path) return error(Code.NotFound, `no such path ${request.path}`);
      const ctx = fromBootstrapServer ? BOOTSTRAP_ACCESS : DM_ACCESS;
      if (!ctx.bootstrap && path[0] === 0) return error(Code.Unauthorized, 'the Security object is not accessible to LwM2M servers');
      const refused = this.refusedFormat(request);
      if (refused) return refused;
      switch (request.method) {
        case 'GET':
          return request.accept === ContentFormat.LinkFormat ? this.discover(path, ctx) : this.read(request, path, ctx);
        case 'PUT':
          if (request.payload.length === 0 && request.contentFormat === undefined && request.query.length > 0 && !ctx.bootstrap) return this.writeAttributes(request, path);
          return await this.write(request, path, 'replace', ctx);
        case 'POST':
          return await this.post(request, path, ctx);
        case 'DELETE':
          return await this.delete(path, ctx);
        case 'FETCH':
          return path.length === 0 && !ctx.bootstrap ? this.readComposite(request) : error(Code.MethodNotAllowed, 'FETCH is Read-Composite on /');
        case 'IPATCH':
          return path.length === 0 && !ctx.bootstrap ? await this.writeComposite(request) : error(Code.MethodNotAllowed, 'iPATCH is Write-Composite on /');
        default:
          return error(Code.MethodNotAllowed, `${request.method} is not an LwM2M operation`);
      }
    } catch (e) {
      return fromError(e);
    }
  }

  /**
   * Block1 bodies: an opaque Write of a resource whose object streams uploads (Object 9 Package)
   * goes to it block by block; anything else is buffered and handled as one request.
   */
  private openUpload(request: CoapRequest): UploadSink | CoapResponse {
    const path = toPath(request.segments);
    const opaque = request.contentFormat === undefined || request.contentFormat === ContentFormat.Opaque || request.contentFormat === ContentFormat.LegacyOpaque;
    const fromBootstrapServer = this.bootstrapping && request.peer.key === this.bootstrapPeer;
    if (path && path.length === 3 && path[0] !== 0 && opaque && (request.method === 'PUT' || request.method === 'POST')) {
      const obj = this.objects.get(path[0]);
      let target: UploadTarget | undefined;
      try {
        target = obj?.openUpload?.(path[1], path[2], fromBootstrapServer ? BOOTSTRAP_ACCESS : DM_ACCESS);
      } catch (e) {
        return fromError(e);
      }
      if (target) {
        const t = target;
        let failure: unknown;
        return {
          write: async (chunk, offset) => {
            if (failure !== undefined) return;
            // A failed block is answered when the transfer ends (a thrown error here would be a 5.00).
            await t.write(chunk, offset).catch((e: unknown) => {
              failure = e;
            });
          },
          end: async () => {
            if (failure !== undefined) return fromError(failure);
            try {
              await t.end();
              return { code: Code.Changed };
            } catch (e) {
              return fromError(e);
            }
          },
          abort: (reason) => t.abort(reason),
        };
      }
    }
    const chunks: Uint8Array[] = [];
    return {
      write: (chunk) => {
        chunks.push(Uint8Array.from(chunk));
      },
      end: () => this.handle(withPayload(request, Buffer.concat(chunks))),
      abort: () => {
        chunks.length = 0;
      },
    };
  }

  private readNode(path: Lwm2mPath, ctx: AccessContext): Lwm2mNode {
    const [o, i, r, ri] = path;
    if (o === undefined) throw new ObjectError('4.05', 'Read of the root is not allowed');
    const obj = this.objects.get(o);
    if (!obj) throw new ObjectError('4.04', `no object ${o}`);
    if (i === undefined) return Node.object(o, obj.instanceIds().map((iid) => obj.readInstance(iid, ctx)));
    if (r === undefined) return obj.readInstance(i, ctx);
    const res = obj.readResource(i, r, ctx);
    if (ri === undefined) return res;
    if (res.kind !== 'multiResource') throw new ObjectError('4.04', `${formatPath(path.slice(0, 3) as unknown as Lwm2mPath)} is single-instance`);
    const inst = res.instances.find((x) => x.id === ri);
    if (!inst) throw new ObjectError('4.04', `no resource instance ${formatPath(path)}`);
    return inst;
  }

  /**
   * A client configured with `formats` supports only those (and text/plain, opaque, link format):
   * another Accept is 4.06 Not Acceptable, another Content-Format 4.15 (RFC 7252 §5.10.4, §5.9.2.9).
   */
  private refusedFormat(request: CoapRequest): CoapResponse | undefined {
    if (!this.config.formats || this.config.formats.length === 0) return undefined;
    const ok = (f: number): boolean => this.formats.includes(f) || ALWAYS_ACCEPTED.includes(f);
    if (request.accept !== undefined && !ok(request.accept)) return error(Code.NotAcceptable, `content format ${request.accept} is not supported (${this.formats.join(' ')})`);
    if (request.contentFormat !== undefined && !ok(request.contentFormat)) return error(Code.UnsupportedContentFormat, `content format ${request.contentFormat} is not supported (${this.formats.join(' ')})`);
    return undefined;
  }

  private read(request: CoapRequest, path: Lwm2mPath, ctx: AccessContext): CoapResponse {
    const node = this.readNode(path, ctx);
    let format = request.accept ?? defaultFormat(node);
    // Without Accept, a structured answer in a format the client announced (TLV may not be one).
    if (request.accept === undefined && this.config.formats && !this.formats.includes(format) && !ALWAYS_ACCEPTED.includes(format)) {
      format = this.formats.find((f) => f === ContentFormat.Tlv || f === ContentFormat.SenmlJson || f === ContentFormat.SenmlCbor || f === ContentFormat.Lwm2mCbor) ?? format;
    }
    const payload = encode(format, path, node, { registry: defaultRegistry });
    // Observe=0 on a successful Read starts an observation (TS Core 1.1 §6.4.1); track it for pmin/pmax.
    if (getUintOption(request.message, OptionNumber.Observe) === 0) this.track(path);
    return { code: Code.Content, contentFormat: format, payload };
  }

  /**
   * Read-Composite (TS Core 1.1 §6.3.8): FETCH / with the paths as SenML names; absent paths are
   * left out. With Observe it is Observe-Composite: the observers are notified on any change of
   * the client's values (the FETCH body is re-run each time), not only of their paths.
   */
  private readComposite(request: CoapRequest): CoapResponse {
    const cf = request.contentFormat;
    if (cf !== ContentFormat.SenmlJson && cf !== ContentFormat.SenmlCbor) return error(Code.UnsupportedContentFormat, 'Read-Composite takes SenML JSON or CBOR');
    const entries = decodeSenmlEntries(cf === ContentFormat.SenmlJson ? 'json' : 'cbor', request.payload, { registry: defaultRegistry });
    const records: Lwm2mRecord[] = [];
    for (const { path } of entries) {
      const roots: Lwm2mPath[] = path.length === 0 ? [...this.objects.keys()].filter((id) => id !== 0).sort((a, b) => a - b).map((id) => [id] as Lwm2mPath) : [path];
      for (const p of roots) {
        if (p[0] === 0) return error(Code.Unauthorized, 'the Security object is not accessible to LwM2M servers');
        let node: Lwm2mNode;
        try {
          node = this.readNode(p, DM_ACCESS);
        } catch (e) {
          if (e instanceof ObjectError && (e.code === '4.04' || e.code === '4.05')) continue;
          throw e;
        }
        records.push(...nodeToRecords(p, node));
      }
    }
    const format = request.accept ?? cf;
    const payload = encodeRecords(format, records, { registry: defaultRegistry });
    // Observe-Composite (TS Core 1.1 §6.4.1 with FETCH, RFC 8132 §2.4): any change is reported.
    if (getUintOption(request.message, OptionNumber.Observe) === 0) this.track([]);
    return { code: Code.Content, contentFormat: format, payload };
  }

  /** Write-Composite (TS Core 1.1 §6.3.9): iPATCH / with SenML records; each instance gets a partial update. */
  private async writeComposite(request: CoapRequest): Promise<CoapResponse> {
    const cf = request.contentFormat;
    if (cf === undefined) return error(Code.BadRequest, 'Write-Composite needs a Content-Format');
    const records = decodeRecords(cf, request.payload, { registry: defaultRegistry });
    const byInstance = new Map<string, Lwm2mRecord[]>();
    for (const r of records) {
      if (r.path.length < 3) return error(Code.BadRequest, `Write-Composite record ${formatPath(r.path)} is not a resource`);
      if (r.path[0] === 0) return error(Code.Unauthorized, 'the Security object is not accessible to LwM2M servers');
      const key = `${r.path[0]}/${r.path[1]}`;
      byInstance.set(key, [...(byInstance.get(key) ?? []), r]);
    }
    // Check every target first so that an unknown object or instance changes nothing.
    for (const key of byInstance.keys()) {
      const [o, i] = key.split('/').map(Number) as [number, number];
      const obj = this.objects.get(o);
      if (!obj || !obj.instanceIds().includes(i)) return error(Code.NotFound, `no instance /${key}`);
    }
    for (const [key, recs] of byInstance) {
      const [o, i] = key.split('/').map(Number) as [number, number];
      const inst = recordsToNode([o, i], recs, defaultRegistry);
      if (inst.kind !== 'instance') continue;
      await (this.objects.get(o) as ClientObject).write(i, inst.resources, 'update', DM_ACCESS);
    }
    return { code: Code.Changed };
  }

  private discover(path: Lwm2mPath, ctx: AccessContext): CoapResponse {
    if (ctx.bootstrap) return this.bootstrapDiscover(path);
    const [o, i, r] = path;
    if (o === undefined || path.length > 3) return error(Code.BadRequest, 'Discover needs an object, instance or resource path');
    const obj = this.objects.get(o);
    if (!obj) return error(Code.NotFound, `no object ${o}`);
    const links: string[] = [];
    const attrs = (p: string): string => {
      const a = this.attributes.get(p);
      if (!a) return '';
      return Object.entries(a)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `;${k}=${String(v)}`)
        .join('');
    };
    const resourceLink = (iid: number, rid: number): string => {
      const p = `/${o}/${iid}/${rid}`;
      let dim = '';
      try {
        const node = obj.readResource(iid, rid, BOOTSTRAP_ACCESS);
        if (node.kind === 'multiResource') dim = `;dim=${node.instances.length}`;
      } catch {
        // executable or unreadable: no dim
      }
      return `<${p}>${dim}${attrs(p)}`;
    };
    if (i === undefined) {
      links.push(`</${o}>${obj.version && obj.version !== '1.0' ? `;ver=${obj.version}` : ''}${attrs(`/${o}`)}`);
      for (const iid of obj.instanceIds()) {
        links.push(`</${o}/${iid}>${attrs(`/${o}/${iid}`)}`);
        for (const rid of obj.resourceIds(iid)) links.push(resourceLink(iid, rid));
      }
    } else if (r === undefined) {
      const rids = obj.resourceIds(i);
      links.push(`</${o}/${i}>${attrs(`/${o}/${i}`)}`);
      for (const rid of rids) links.push(resourceLink(i, rid));
    } else {
      if (!obj.resourceIds(i).includes(r)) return error(Code.NotFound, `no resource ${formatPath(path)}`);
      links.push(resourceLink(i, r));
    }
    return { code: Code.Content, contentFormat: ContentFormat.LinkFormat, payload: links.join(',') };
  }

  /** Bootstrap-Discover (TS Core 1.1 §5.2.7.3): `</>;lwm2m=1.1`, then instances with ssid/uri. */
  private bootstrapDiscover(path: Lwm2mPath): CoapResponse {
    if (path.length > 1) return error(Code.BadRequest, 'Bootstrap-Discover takes / or an object');
    const links = [`</>;lwm2m=${this.offeredVersion}`];
    for (const id of [...this.objects.keys()].sort((a, b) => a - b)) {
      if (path.length === 1 && path[0] !== id) continue;
      const obj = this.objects.get(id) as ClientObject;
      const instances = obj.instanceIds();
      if (instances.length === 0) links.push(`</${id}>`);
      for (const iid of instances) {
        let extra = '';
        if (id === 0) {
          const a = accountOf(this.security, iid);
          if (a && !a.bootstrap && a.shortServerId !== undefined) extra += `;ssid=${a.shortServerId}`;
          if (a) extra += `;uri="${a.uri}"`;
        } else if (id === 1) {
          const ssid = this.serverNumber(iid, 0);
          if (ssid !== undefined) extra += `;ssid=${ssid}`;
        }
        links.push(`</${id}/${iid}>${extra}`);
      }
    }
    return { code: Code.Content, contentFormat: ContentFormat.LinkFormat, payload: links.join(',') };
  }

  private writeAttributes(request: CoapRequest, path: Lwm2mPath): CoapResponse {
    if (path.length === 0) return error(Code.MethodNotAllowed, 'Write-Attributes needs a path');
    this.readNodeExists(path);
    const key = formatPath(path);
    const attrs: Attributes = { ...this.attributes.get(key) };
    for (const q of request.query) {
      const eq = q.indexOf('=');
      const name = eq < 0 ? q : q.slice(0, eq);
      const text = eq < 0 ? undefined : q.slice(eq + 1);
      if (!['pmin', 'pmax', 'gt', 'lt', 'st', 'epmin', 'epmax'].includes(name)) return error(Code.BadRequest, `unknown attribute ${name}`);
      if (name === 'epmin' || name === 'epmax') continue;
      const k = name as keyof Attributes;
      if (text === undefined || text === '') {
        delete attrs[k];
        continue;
      }
      const n = Number(text);
      if (!Number.isFinite(n) || ((k === 'pmin' || k === 'pmax') && (!Number.isInteger(n) || n < 0))) return error(Code.BadRequest, `bad value for ${name}: ${text}`);
      if ((k === 'gt' || k === 'lt' || k === 'st') && path.length < 3) return error(Code.BadRequest, `${name} applies to numeric resources only`);
      attrs[k] = n;
    }
    if (attrs.pmin !== undefined && attrs.pmax !== undefined && attrs.pmax < attrs.pmin) return error(Code.BadRequest, 'pmax must not be less than pmin');
    if (Object.keys(attrs).length === 0) this.attributes.delete(key);
    else this.attributes.set(key, attrs);
    for (const o of this.observed.values()) if (isPrefixOf(path, o.path)) this.armPmax(o);
    return { code: Code.Changed };
  }

  private readNodeExists(path: Lwm2mPath): void {
    const [o, i, r] = path;
    const obj = this.objects.get(o as number);
    if (!obj) throw new ObjectError('4.04', `no object ${o}`);
    if (i !== undefined && !obj.instanceIds().includes(i)) throw new ObjectError('4.04', `no instance /${o}/${i}`);
    if (i !== undefined && r !== undefined && !obj.resourceIds(i).includes(r)) throw new ObjectError('4.04', `no resource ${formatPath(path)}`);
  }

  private decodeBody(request: CoapRequest, path: Lwm2mPath): Lwm2mNode {
    if (request.contentFormat === undefined) throw new ObjectError('4.00', 'a Write needs a Content-Format');
    return decode(request.contentFormat, path, request.payload, { registry: defaultRegistry });
  }

  private async write(request: CoapRequest, path: Lwm2mPath, mode: 'replace' | 'update', ctx: AccessContext): Promise<CoapResponse> {
    const [o, i, r, ri] = path;
    if (o === undefined) return error(Code.MethodNotAllowed, 'Write on the root is not allowed');
    const obj = this.objects.get(o);
    if (!obj) return error(Code.NotFound, `no object ${o}`);
    if (i === undefined) {
      // Bootstrap-Write on an object (TS Core 1.1 §5.2.7.4): every instance given.
      if (!ctx.bootstrap) return error(Code.MethodNotAllowed, 'Write on an object is a Bootstrap-Write');
      const node = this.decodeBody(request, path);
      if (node.kind !== 'object') return error(Code.BadRequest, 'an object payload was expected');
      for (const inst of node.instances) await this.bootstrapWriteInstance(obj, inst);
      return { code: Code.Changed };
    }
    if (r === undefined) {
      const node = this.decodeBody(request, path);
      if (node.kind !== 'instance') return error(Code.BadRequest, 'an instance payload was expected');
      if (ctx.bootstrap) await this.bootstrapWriteInstance(obj, node);
      else await obj.write(i, node.resources, mode, ctx);
      return { code: Code.Changed };
    }
    if (ri === undefined) {
      const node = this.decodeBody(request, path);
      if (node.kind !== 'resource' && node.kind !== 'multiResource') return error(Code.BadRequest, 'a resource payload was expected');
      if (ctx.bootstrap && !obj.instanceIds().includes(i)) {
        await obj.create(i, [node], ctx);
        return { code: Code.Changed };
      }
      let toWrite: ResourceNode = node;
      if (mode === 'update' && node.kind === 'multiResource') {
        // Partial Update of a multiple resource (TS Core 1.1 §6.3.3): merge the given instances.
        const current = obj.readResource(i, r, BOOTSTRAP_ACCESS);
        if (current.kind === 'multiResource') {
          const merged = new Map(current.instances.map((x) => [x.id, x.value]));
          for (const x of node.instances) merged.set(x.id, x.value);
          toWrite = Node.multiResource(r, [...merged.entries()]);
        }
      }
      await obj.write(i, [toWrite], 'update', ctx);
      return { code: Code.Changed };
    }
    const node = this.decodeBody(request, path);
    if (node.kind !== 'resourceInstance') return error(Code.BadRequest, 'a resource instance payload was expected');
    const current = obj.readResource(i, r, BOOTSTRAP_ACCESS);
    if (current.kind !== 'multiResource') return error(Code.NotFound, `${formatPath(path.slice(0, 3) as unknown as Lwm2mPath)} is single-instance`);
    const merged = new Map(current.instances.map((x) => [x.id, x.value]));
    merged.set(ri, node.value);
    await obj.write(i, [Node.multiResource(r, [...merged.entries()])], 'update', ctx);
    return { code: Code.Changed };
  }

  private async bootstrapWriteInstance(obj: ClientObject, node: InstanceNode): Promise<void> {
    if (obj.instanceIds().includes(node.id)) await obj.write(node.id, node.resources, 'update', BOOTSTRAP_ACCESS);
    else await obj.create(node.id, node.resources, BOOTSTRAP_ACCESS);
  }

  private async post(request: CoapRequest, path: Lwm2mPath, ctx: AccessContext): Promise<CoapResponse> {
    const [o, i, r] = path;
    if (o === undefined) return error(Code.MethodNotAllowed, 'POST on the root is not an LwM2M operation');
    const obj = this.objects.get(o);
    if (!obj) return error(Code.NotFound, `no object ${o}`);
    if (i === undefined) return this.create(request, obj, o, ctx);
    if (r === undefined) return this.write(request, path, 'update', ctx);
    if (path.length === 4) return error(Code.MethodNotAllowed, 'POST on a resource instance');
    const def = defaultRegistry.resource(o, r);
    if ((def && isExecutable(def)) || (!def && request.contentFormat === undefined)) {
      // Execute (TS Core 1.1 §5.4.5): the payload is the argument list as text.
      await obj.execute(i, r, decodeString(request.payload), ctx);
      return { code: Code.Changed };
    }
    if (def && request.contentFormat === undefined) return error(Code.MethodNotAllowed, `${formatPath(path)} is not executable`);
    return this.write(request, path, 'update', ctx);
  }

  private async create(request: CoapRequest, obj: ClientObject, o: number, ctx: AccessContext): Promise<CoapResponse> {
    const created: number[] = [];
    if (request.payload.length === 0) {
      created.push(await obj.create(undefined, [], ctx));
    } else {
      if (request.contentFormat === undefined) return error(Code.BadRequest, 'a Create needs a Content-Format');
      let node: Lwm2mNode | undefined;
      try {
        node = decode(request.contentFormat, [o], request.payload, { registry: defaultRegistry });
      } catch {
        node = undefined;
      }
      if (node?.kind === 'object' && node.instances.length > 0) {
        for (const inst of node.instances) created.push(await obj.create(inst.id, inst.resources, ctx));
      } else {
        // Resources without an instance id: the client picks the id (TS Core 1.1 §5.4.6).
        let free = 0;
        const used = new Set(obj.instanceIds());
        while (used.has(free)) free++;
        const inst = decode(request.contentFormat, [o, free], request.payload, { registry: defaultRegistry });
        if (inst.kind !== 'instance') return error(Code.BadRequest, 'an instance payload was expected');
        created.push(await obj.create(undefined, inst.resources, ctx));
      }
    }
    const response: CoapResponse = { code: Code.Created };
    if (created.length === 1) response.locationPath = [String(o), String(created[0])];
    return response;
  }

  private async delete(path: Lwm2mPath, ctx: AccessContext): Promise<CoapResponse> {
    const [o, i] = path;
    if (ctx.bootstrap) {
      // Bootstrap-Delete (TS Core 1.1 §5.2.7.5): everything in /0 and /1 but the Bootstrap-Server account.
      if (path.length > 2) return error(Code.BadRequest, 'Bootstrap-Delete takes /, an object or an instance');
      for (const id of o === undefined ? [0, 1] : [o]) {
        const obj = this.objects.get(id);
        if (!obj) continue;
        for (const iid of i === undefined ? obj.instanceIds() : [i]) {
          if (id === 0 && accountOf(this.security, iid)?.bootstrap) continue;
          if (!obj.instanceIds().includes(iid)) continue;
          await obj.delete(iid, ctx);
        }
      }
      return { code: Code.Deleted };
    }
    if (o === undefined || i === undefined || path.length > 2) return error(Code.MethodNotAllowed, 'Delete takes an object instance');
    const obj = this.objects.get(o);
    if (!obj) return error(Code.NotFound, `no object ${o}`);
    await obj.delete(i, ctx);
    return { code: Code.Deleted };
  }

  private handleBootstrapFinish(request: CoapRequest, fromBootstrapServer: boolean): CoapResponse {
    if (request.method !== 'POST') return error(Code.MethodNotAllowed, 'Bootstrap-Finish is a POST');
    if (!fromBootstrapServer || !this.bootstrapFinish) return error(Code.MethodNotAllowed, 'no bootstrap in progress with this peer');
    // Bootstrap-Finish (TS Core 1.1 §5.2.7.6): 4.06 when the configuration is unusable.
    if (!this.serverAccount()) return error(Code.NotAcceptable, 'no usable LwM2M Server account (Security + Server instances with the same Short Server ID)');
    const finish = this.bootstrapFinish;
    // Registration starts after this response has been sent.
    queueMicrotask(() => finish(true));
    return { code: Code.Changed };
  }

  private emit(event: ClientEvent): void {
    for (const l of this.listeners) l(event);
  }
}

// ---------------------------------------------------------------- helpers

/** Formats answer requests without Accept: plain text (opaque: 42) for one value, TLV otherwise. */
/**
 * DTLS client credentials for Security Mode 2: the device's certificate and key, and the
 * server's certificate as the trust root (with usage 2 it is the CA the server's chain leads
 * to; with 1 or 3 the server's own self-contained certificate).
 */
function certificateClient(c: NonNullable<SecurityAccount['certificate']>): { certificate: CertificateCredentials; trustRoots: X509Certificate[] } {
  return {
    certificate: { chain: [Uint8Array.from(c.certificateDer)], privateKey: createPrivateKey({ key: Buffer.from(c.privateKeyDer), format: 'der', type: 'pkcs8' }) },
    trustRoots: [new X509Certificate(Buffer.from(c.serverTrustDer))],
  };
}

export function defaultFormat(node: Lwm2mNode): number {
  if (node.kind === 'resource' || node.kind === 'resourceInstance') return node.value.type === 'opaque' ? ContentFormat.Opaque : ContentFormat.PlainText;
  return ContentFormat.Tlv;
}

function toPath(segments: string[]): Lwm2mPath | undefined {
  const ids = segments.filter((s, i) => !(s === '' && i === segments.length - 1));
  if (ids.length > 4) return undefined;
  try {
    return parsePath('/' + ids.join('/'));
  } catch {
    return undefined;
  }
}

/** The transport's peer key for a server URI (host names resolved as CoapClient does). */
async function peerKey(conn: Connection, uri: string): Promise<string> {
  const p = parseCoapUri(uri);
  return conn.transport.peer(await peerAddress(p.host), p.port).key;
}

/** The same request with the whole (reassembled) body. */
function withPayload(request: CoapRequest, payload: Uint8Array): CoapRequest {
  return {
    method: request.method,
    path: request.path,
    segments: request.segments,
    query: request.query,
    payload,
    contentFormat: request.contentFormat,
    accept: request.accept,
    peer: request.peer,
    message: request.message,
    queryParam: (name) => request.queryParam(name),
  };
}

const CT_FORMS: readonly CtForm[] = ['list', 'single', 'none'];

/** A peer's diagnostic payload, for a log line: printable ASCII only, at most 200 characters. */
/** The registration's location from a Register's 2.01 (Location-Path segments), if it has one. */
function locationOf(res: ClientResponse): string | undefined {
  const segments = res.options.filter((o) => o.number === OptionNumber.LocationPath).map((o) => decodeString(o.value));
  return segments.length === 0 ? undefined : '/' + segments.map(encodeURIComponent).join('/');
}

function diagnostic(payload: Uint8Array): string {
  const text = Buffer.from(payload.subarray(0, 400)).toString('latin1').replace(/[^\x20-\x7e]/g, '?');
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function base(uri: string): string {
  const p = parseCoapUri(uri);
  const host = p.host.includes(':') ? `[${p.host}]` : p.host;
  return `${p.scheme}://${host}:${p.port}`;
}

function error(code: number, message: string): CoapResponse {
  return { code, payload: message };
}

function fromError(e: unknown): CoapResponse {
  if (e instanceof ObjectError) {
    const res = error(parseCode(e.code), e.message);
    if (e.size1 !== undefined) res.options = [{ number: OptionNumber.Size1, value: encodeUintBytes(e.size1) }];
    return res;
  }
  if (e instanceof Lwm2mCodecError) return error(e.codeByte, e.diagnostic);
  return error(Code.InternalServerError, e instanceof Error ? e.message : String(e));
}

function encodeUintBytes(n: number): Uint8Array {
  const out: number[] = [];
  while (n > 0) {
    out.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return Uint8Array.from(out);
}

