/**
 * Depot's LwM2M Bootstrap-Server (TS Core 1.1 §6.1): client-initiated bootstrap over DTLS with a
 * bootstrap credential, behind an acceptance gate. A device proves a factory PSK or certificate
 * known to Depot (per device: valid for one endpoint name; per batch: the name is bound to it on
 * first use). An endpoint never seen before is held as pending (its Bootstrap-Request is
 * acknowledged, nothing is written) until an operator — or the fleet logic's PIN check — accepts
 * it; the device's next Bootstrap-Request is then served: its DM PSK (kept across re-bootstraps
 * unless the operator asked for rotation; or, in certificate mode, a certificate issued by
 * Depot's CA) is bound in the credential store, the Security (0) and Server (1) instances of the
 * Depot DM server are written, and Bootstrap-Finish is sent.
 *
 * Plain CoAP is refused unless the operator turned insecure (lab) bootstrap on: the DM key
 * would travel in clear. Undecided records are bounded per source address and in total and
 * expire; a provisioned device is re-bootstrapped at most once per interval.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { CoapClient } from '../../coap/client.js';
import type { ClientResponse } from '../../coap/client.js';
import { Code, ContentFormat } from '../../coap/codes.js';
import { formatCoapUri } from '../../coap/uri.js';
import type { CoapRequest, CoapResponse, CoapServer } from '../../coap/server.js';
import type { BootstrapEndpoint, BootstrapRefusal, PendingLimits, Store } from '../../store/types.js';
import { encode } from '../content/index.js';
import { Node } from '../node.js';
import { Value } from '../values.js';
import { MAX_REGISTRATION_BODY_BYTES, parseObjectLinks, validateEndpointName } from './registration-request.js';

export interface DmServerAccount {
  /** Where the device registers after bootstrap, e.g. coaps://depot.example:5684. */
  uri: string;
  shortServerId: number;
  lifetimeSec: number;
  binding: string;
}

export interface BootstrapServerOptions {
  store: Pick<Store, 'bootstrap' | 'credentials' | 'bootstrapCredentials'>;
  coap: { coap?: CoapServer; coaps?: CoapServer };
  /** The DM server account written to devices. */
  dmServer: DmServerAccount;
  /**
   * Certificate mode (Security Mode 2) instead of a PSK per device: each device gets a
   * certificate and key issued for its endpoint name (Depot's CA), and the CA's certificate as
   * the trust anchor for the server's chain (Certificate Usage 2).
   */
  certificates?: DeviceCertificateIssuer;
  now?: () => number;
  /** Endpoints are accepted without an operator (trusted networks, simulations). Default false. */
  autoAccept?: boolean;
  requestTimeout?: number;
  /**
   * Lab mode: serve Bootstrap-Requests over plain CoAP too, which sends the DM key in clear and
   * binds the name to no identity. Default false: plain CoAP gets 4.01 and nothing is written.
   */
  insecureBootstrap?: boolean;
  /** Bounds on undecided (pending) records; defaults: 16 per source address, 1,000 in all, 24 h. */
  pendingLimits?: Partial<PendingLimits>;
  /** A provisioned endpoint is bootstrapped again at most once per this long (ms, default 10 min). */
  rebootstrapIntervalMs?: number;
  /** Audit lines (refusals, bootstraps) for the operator's log; device strings in them are quoted and escaped. */
  audit?: (line: string) => void;
}

export const DEFAULT_PENDING_LIMITS: PendingLimits = { maxPerSource: 16, maxTotal: 1000, ttlMs: 24 * 3600_000 };
export const DEFAULT_REBOOTSTRAP_INTERVAL_MS = 10 * 60_000;

/** Why a Bootstrap-Request got no service: the store's refusals, and the bounds on new records. */
export type BootstrapRefusalReason = BootstrapRefusal | 'source-limit' | 'total-limit';

export interface DeviceCertificateIssuer {
  issue(endpoint: string): Promise<{ certificateDer: Uint8Array; privateKeyDer: Uint8Array; subject: string }>;
  /** DER of the CA certificate the server's own chain leads to. */
  readonly trustAnchorDer: Uint8Array;
}

export interface BootstrapServerEvents {
  pending: [endpoint: BootstrapEndpoint];
  rejected: [endpoint: string];
  /** `identity`: the PSK identity or the certificate subject provisioned (null: NoSec). */
  bootstrapped: [endpoint: string, identity: string | null];
  failed: [endpoint: string, reason: string];
  /** A Bootstrap-Request refused for security or load reasons; `detail` is for operators. */
  refused: [endpoint: string, reason: BootstrapRefusalReason, detail: string];
}


/** Security Mode values (Object 0, resource 2). */
const SECURITY_MODE = { psk: 0, certificate: 2, noSec: 3 } as const;
/** Certificate Usage (Object 0, resource 15): the server's chain must lead to this CA certificate. */
const TRUST_ANCHOR_ASSERTION = 2;

export class BootstrapServer extends EventEmitter<BootstrapServerEvents> {
  private readonly clients = new Map<string, CoapClient>();
  private readonly inProgress = new Set<string>();
  private readonly now: () => number;
  private readonly limits: PendingLimits;
  /**
   * Refusals per reason in the current minute, for the audit log's back-off: within a minute a
   * reason is logged at its 1st, 2nd, 4th, 8th … refusal, so a flood cannot fill the log while
   * isolated refusals are all logged.
   */
  private readonly refusalCounts = new Map<BootstrapRefusalReason, number>();
  private refusalWindowStart = -Infinity;

  constructor(private readonly options: BootstrapServerOptions) {
    super();
    this.now = options.now ?? Date.now;
    this.limits = { ...DEFAULT_PENDING_LIMITS, ...options.pendingLimits };
    for (const [scheme, coap] of Object.entries(options.coap) as ['coap' | 'coaps', CoapServer | undefined][]) {
      if (!coap) continue;
      this.clients.set(scheme, new CoapClient({ endpoint: coap.endpoint }));
      coap.resource('/bs', { title: 'LwM2M bootstrap interface', maxBodySize: MAX_REGISTRATION_BODY_BYTES, post: (request) => this.bootstrapRequest(request, scheme) });
    }
  }

  /** Accepts a pending endpoint (operator or PIN decision); its next Bootstrap-Request is served. */
  accept(endpoint: string, decidedBy: string): Promise<BootstrapEndpoint> {
    return this.options.store.bootstrap.accept(endpoint, decidedBy, this.now());
  }

  reject(endpoint: string, decidedBy: string): Promise<BootstrapEndpoint> {
    return this.options.store.bootstrap.reject(endpoint, decidedBy, this.now());
  }

  /** Lab mode is on: plain CoAP bootstrap, DM keys in clear (for status responses). */
  get insecureBootstrap(): boolean {
    return this.options.insecureBootstrap === true;
  }

  /** The endpoint's next bootstrap writes a new DM key (otherwise a re-bootstrap writes the same key again). */
  requestKeyRotation(endpoint: string): Promise<BootstrapEndpoint> {
    return this.options.store.bootstrap.requestKeyRotation(endpoint, this.now());
  }

  /**
   * Server-initiated bootstrap (TS Core §6.1.2): provisions an accepted endpoint at an address
   * without waiting for its Bootstrap-Request — by default the address it last asked from.
   */
  async bootstrapNow(endpoint: string, target?: { scheme?: 'coap' | 'coaps'; address: string; port: number }): Promise<void> {
    const record = await this.options.store.bootstrap.get(endpoint);
    if (!record || record.state !== 'accepted') throw new Error(`endpoint "${endpoint}" is not accepted for bootstrap`);
    let where = target;
    if (!where) {
      const last = record.lastPeerAddress ? /^(.*):(\d+)$/.exec(record.lastPeerAddress) : null;
      if (!last) throw new Error(`no known address for "${endpoint}"`);
      where = { address: last[1]!, port: Number(last[2]) };
    }
    const scheme = where.scheme ?? record.lastTransport ?? 'coaps';
    if (scheme === 'coap' && !this.insecureBootstrap) {
      throw new Error(`server-initiated bootstrap of "${endpoint}" over plain CoAP would send its key in clear: it needs insecure (lab) bootstrap mode, or coaps`);
    }
    const client = this.clients.get(scheme);
    if (!client) throw new Error(`no ${scheme} listener to reach "${endpoint}"`);
    if (this.inProgress.has(endpoint)) throw new Error(`bootstrap of "${endpoint}" is already in progress`);
    this.inProgress.add(endpoint);
    try {
      await this.provision(client, { scheme, address: where.address, port: where.port }, endpoint, record.rotateKeyRequested);
    } catch (error) {
      this.emit('failed', endpoint, error instanceof Error ? error.message : String(error));
      throw error;
    } finally {
      this.inProgress.delete(endpoint);
    }
  }

  /** Bootstrap-Request: POST /bs?ep=NAME (TS Core §6.1.3). */
  private async bootstrapRequest(request: CoapRequest, scheme: 'coap' | 'coaps'): Promise<CoapResponse> {
    const endpoint = request.queryParam('ep');
    if (!endpoint) return { code: Code.BadRequest, payload: 'the endpoint client name (ep) is missing' };
    const badName = validateEndpointName(endpoint);
    if (badName !== null) return { code: Code.BadRequest, payload: `bad endpoint client name (ep): ${badName}` };
    const peerAddress = `${request.peer.address}:${request.peer.port}`;
    const from = `from ${peerAddress} over ${scheme}`;
    // TS Core §6.1 leaves transport security to the deployment; Depot's choice: plain CoAP is refused
    // before anything is stored (the DM key would travel in clear), 4.01 as the device is unauthenticated.
    if (scheme === 'coap' && !this.insecureBootstrap) {
      return this.refuse(endpoint, 'insecure-transport', `${from}: bootstrap over plain CoAP is off (it would send the key in clear); use coaps with a bootstrap credential`, Code.Unauthorized, false);
    }
    let identity: string | null = null;
    if (scheme === 'coaps') {
      const peer = request.peer.identity;
      const claimed = peer?.kind === 'psk' ? { kind: 'psk' as const, identity: peer.identity } : peer?.kind === 'x509' ? { kind: 'x509-subject' as const, identity: peer.subject } : null;
      const credential = claimed ? await this.options.store.bootstrapCredentials.find(claimed.kind, claimed.identity) : null;
      if (!claimed || !credential) {
        return this.refuse(endpoint, 'unknown-credential', `${from}: the DTLS identity is not a bootstrap credential (add one with "depot credentials add-bootstrap-psk")`, Code.Forbidden, true);
      }
      identity = `${claimed.kind === 'psk' ? 'psk' : 'x509'}:${claimed.identity}`;
      if (credential.scope === 'device' && credential.endpoint !== endpoint) {
        return this.refuse(endpoint, 'credential-for-another-endpoint', `${from}: bootstrap credential ${JSON.stringify(identity)} belongs to another endpoint`, Code.Forbidden, true);
      }
    }
    const store = this.options.store.bootstrap;
    const now = this.now();
    const sighting = await store.request(endpoint, { sourceHost: request.peer.address, peerAddress, transport: scheme }, this.limits, now);
    if (!sighting.admitted) {
      const detail =
        sighting.reason === 'source-limit'
          ? `${from}: ${this.limits.maxPerSource} undecided endpoints from this address already; nothing recorded`
          : `${from}: ${this.limits.maxTotal} undecided endpoints already; nothing recorded`;
      return this.refuse(endpoint, sighting.reason, detail, sighting.reason === 'source-limit' ? Code.TooManyRequests : Code.ServiceUnavailable, false);
    }
    let record = sighting.endpoint;
    if (record.state === 'pending' && this.options.autoAccept) record = await store.accept(endpoint, 'auto', now);
    if (record.state === 'rejected') {
      this.emit('rejected', endpoint);
      return { code: Code.Forbidden, payload: 'bootstrap of this endpoint was rejected by the operator' };
    }
    if (record.state === 'pending') {
      // Acknowledged, nothing written: the device asks again and is served once accepted.
      this.emit('pending', record);
      return { code: Code.Changed };
    }
    const mismatch = (bound: string): Promise<CoapResponse> =>
      this.refuse(endpoint, 'identity-mismatch', `${from}: the name is bound to ${JSON.stringify(bound)}, the request came from ${identity === null ? 'an unauthenticated peer' : JSON.stringify(identity)}`, Code.Forbidden, true);
    if (record.boundIdentity !== null && record.boundIdentity !== identity) return mismatch(record.boundIdentity);
    if (this.inProgress.has(endpoint)) return { code: Code.Changed };
    const interval = this.options.rebootstrapIntervalMs ?? DEFAULT_REBOOTSTRAP_INTERVAL_MS;
    if (record.lastBootstrapAt !== null && now - record.lastBootstrapAt < interval) {
      const wait = Math.ceil((record.lastBootstrapAt + interval - now) / 1000);
      return this.refuse(endpoint, 'rate-limited', `${from}: bootstrapped ${Math.round((now - record.lastBootstrapAt) / 1000)} s ago; again in ${wait} s at the earliest`, Code.TooManyRequests, true);
    }
    // First use binds the name to this identity (a batch credential names no endpoint of its own).
    if (identity !== null && record.boundIdentity === null) {
      record = await store.bindIdentity(endpoint, identity, now);
      if (record.boundIdentity !== identity) return mismatch(record.boundIdentity!);
    }
    const client = this.clients.get(scheme)!;
    const target = { scheme, address: request.peer.address, port: request.peer.port };
    const rotate = record.rotateKeyRequested;
    this.inProgress.add(endpoint);
    // The answer goes first; provisioning follows as the Bootstrap-Server's own requests.
    setImmediate(() => {
      void this.provision(client, target, endpoint, rotate)
        .catch((error: unknown) => this.emit('failed', endpoint, error instanceof Error ? error.message : String(error)))
        .finally(() => this.inProgress.delete(endpoint));
    });
    return { code: Code.Changed };
  }

  /**
   * Answers a refused request, tells listeners and the audit log (backing off under a flood), and
   * counts the refusal on the name's record when `recorded` (never creating one).
   */
  private async refuse(endpoint: string, reason: BootstrapRefusalReason, detail: string, code: number, recorded: boolean): Promise<CoapResponse> {
    const now = this.now();
    if (recorded && reason !== 'source-limit' && reason !== 'total-limit') await this.options.store.bootstrap.noteRefusal(endpoint, reason, detail, now);
    if (now - this.refusalWindowStart >= 60_000) {
      this.refusalWindowStart = now;
      this.refusalCounts.clear();
    }
    const count = (this.refusalCounts.get(reason) ?? 0) + 1;
    this.refusalCounts.set(reason, count);
    if ((count & (count - 1)) === 0) this.options.audit?.(`refused ${JSON.stringify(endpoint)} (${reason}) ${detail}${count > 1 ? ` [${count} refusals of this kind this minute]` : ''}`);
    this.emit('refused', endpoint, reason, detail);
    return { code, payload: `bootstrap refused: ${reason}` };
  }

  private async provision(client: CoapClient, target: { scheme: 'coap' | 'coaps'; address: string; port: number }, endpoint: string, rotateKey: boolean): Promise<void> {
    const at = (...segments: string[]): string => formatCoapUri({ scheme: target.scheme, host: target.address, port: target.port, uriPath: segments });
    const timeout = this.options.requestTimeout ?? 30_000;
    const expect = (what: string, response: ClientResponse, ...codes: string[]): void => {
      if (!codes.includes(response.codeText)) throw new Error(`${what} answered ${response.codeText}${response.payload.length ? `: ${response.text()}` : ''}`);
    };
    // Bootstrap-Discover /0 (§6.1.7.1): keep clear of the client's own Bootstrap-Server account.
    const discovered = await client.get(at('0'), { accept: ContentFormat.LinkFormat, timeout });
    expect('Bootstrap-Discover /0', discovered, '2.05');
    const used = new Set(parseObjectLinks(discovered.text()).objects.filter((o) => o.objectId === 0 && o.instanceId !== undefined).map((o) => o.instanceId!));
    // Bootstrap-Delete / (§6.1.7.3) removes everything but the Bootstrap-Server account and /3.
    expect('Bootstrap-Delete /', await client.delete(at(), { timeout }), '2.02');
    let securityId = 1;
    while (used.has(securityId)) securityId++;
    const dm = this.options.dmServer;
    const secure = dm.uri.startsWith('coaps:');
    let identity: string | null = null;
    /** Bound once the device holds the key (after the Security write): a failed bootstrap leaves the working key alone. */
    let bindKey: (() => Promise<unknown>) | undefined;
    let keyNote = '';
    const certificates = secure ? this.options.certificates : undefined;
    const resources = [
      Node.resource(0, Value.string(dm.uri)),
      Node.resource(1, Value.boolean(false)),
      Node.resource(2, Value.integer(certificates ? SECURITY_MODE.certificate : secure ? SECURITY_MODE.psk : SECURITY_MODE.noSec)),
      Node.resource(10, Value.integer(dm.shortServerId)),
    ];
    if (certificates) {
      // A certificate for this endpoint name only, bound to it by subject.
      const issued = await certificates.issue(endpoint);
      identity = issued.subject;
      await this.options.store.credentials.bind(endpoint, { kind: 'x509-subject', identity }, this.now());
      resources.push(
        Node.resource(3, Value.opaque(issued.certificateDer)),
        Node.resource(4, Value.opaque(certificates.trustAnchorDer)),
        Node.resource(5, Value.opaque(issued.privateKeyDer)),
        Node.resource(15, Value.unsignedInteger(TRUST_ANCHOR_ASSERTION)),
      );
    } else if (secure) {
      // A per-device PSK, bound to this endpoint only: the device can authenticate as itself alone.
      // A re-bootstrap writes the key the device already works with, unless the operator asked for
      // a new one: a replayed or duplicate bootstrap must not lock the real device out.
      identity = endpoint;
      const existing = await this.options.store.credentials.findPsk(identity);
      const reuse = existing !== null && existing.endpoint === endpoint && !rotateKey;
      const key = reuse ? existing.key.reveal() : randomBytes(16);
      keyNote = reuse ? ', DM key kept' : existing ? ', DM key rotated' : ', new DM key';
      const psk = { kind: 'psk' as const, identity, key: Uint8Array.from(key) };
      if (!reuse) bindKey = () => this.options.store.credentials.bind(endpoint, psk, this.now());
      resources.push(Node.resource(3, Value.opaque(Buffer.from(identity))), Node.resource(4, Value.opaque(new Uint8Array(0))), Node.resource(5, Value.opaque(key)));
    }
    const format = ContentFormat.LwM2mTlv;
    const security = encode(format, [0, securityId], Node.instance(securityId, resources));
    expect('Bootstrap-Write /0', await client.put(at('0', String(securityId)), security, { contentFormat: format, timeout }), '2.04');
    await bindKey?.();
    const server = encode(
      format,
      [1, 0],
      Node.instance(0, [Node.resource(0, Value.integer(dm.shortServerId)), Node.resource(1, Value.unsignedInteger(dm.lifetimeSec)), Node.resource(6, Value.boolean(true)), Node.resource(7, Value.string(dm.binding))]),
    );
    expect('Bootstrap-Write /1', await client.put(at('1', '0'), server, { contentFormat: format, timeout }), '2.04');
    // Bootstrap-Finish (§6.1.7.6).
    expect('Bootstrap-Finish', await client.post(at('bs'), new Uint8Array(0), { timeout }), '2.04');
    const record = await this.options.store.bootstrap.markBootstrapped(endpoint, this.now());
    this.options.audit?.(`bootstrapped ${JSON.stringify(endpoint)} over ${target.scheme} at ${target.address}:${target.port}${record.boundIdentity ? ` as ${JSON.stringify(record.boundIdentity)}` : ''}${keyNote} (bootstrap #${record.bootstrapCount})`);
    this.emit('bootstrapped', endpoint, identity);
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
  }
}
