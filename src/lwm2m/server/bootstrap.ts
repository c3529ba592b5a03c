/**
 * Depot's LwM2M Bootstrap-Server (TS Core 1.1 §6.1): client-initiated bootstrap behind an
 * acceptance gate. An endpoint never seen before is held as pending (its Bootstrap-Request
 * is acknowledged, nothing is written) until an operator — or the fleet logic's PIN check —
 * accepts it; the device's next Bootstrap-Request is then served: a PSK is generated for it
 * (or, in certificate mode, a certificate issued by Depot's CA) and bound in the credential
 * store, the Security (0) and Server (1) instances of the
 * Depot DM server are written, and Bootstrap-Finish is sent.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { CoapClient } from '../../coap/client.js';
import type { ClientResponse } from '../../coap/client.js';
import { Code, ContentFormat } from '../../coap/codes.js';
import { formatCoapUri } from '../../coap/uri.js';
import type { CoapRequest, CoapResponse, CoapServer } from '../../coap/server.js';
import type { BootstrapEndpoint, Store } from '../../store/types.js';
import { encode } from '../content/index.js';
import { Node } from '../node.js';
import { Value } from '../values.js';
import { parseObjectLinks } from './registration-request.js';

export interface DmServerAccount {
  /** Where the device registers after bootstrap, e.g. coaps://depot.example:5684. */
  uri: string;
  shortServerId: number;
  lifetimeSec: number;
  binding: string;
}

export interface BootstrapServerOptions {
  store: Pick<Store, 'bootstrap' | 'credentials'>;
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
}

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
}

/** Security Mode values (Object 0, resource 2). */
const SECURITY_MODE = { psk: 0, certificate: 2, noSec: 3 } as const;
/** Certificate Usage (Object 0, resource 15): the server's chain must lead to this CA certificate. */
const TRUST_ANCHOR_ASSERTION = 2;

export class BootstrapServer extends EventEmitter<BootstrapServerEvents> {
  private readonly clients = new Map<string, CoapClient>();
  private readonly inProgress = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly options: BootstrapServerOptions) {
    super();
    this.now = options.now ?? Date.now;
    for (const [scheme, coap] of Object.entries(options.coap) as ['coap' | 'coaps', CoapServer | undefined][]) {
      if (!coap) continue;
      this.clients.set(scheme, new CoapClient({ endpoint: coap.endpoint }));
      coap.resource('/bs', { title: 'LwM2M bootstrap interface', post: (request) => this.bootstrapRequest(request, scheme) });
    }
  }

  /** Accepts a pending endpoint (operator or PIN decision); its next Bootstrap-Request is served. */
  accept(endpoint: string, decidedBy: string): Promise<BootstrapEndpoint> {
    return this.options.store.bootstrap.accept(endpoint, decidedBy, this.now());
  }

  reject(endpoint: string, decidedBy: string): Promise<BootstrapEndpoint> {
    return this.options.store.bootstrap.reject(endpoint, decidedBy, this.now());
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
    const scheme = where.scheme ?? 'coap';
    const client = this.clients.get(scheme);
    if (!client) throw new Error(`no ${scheme} listener to reach "${endpoint}"`);
    if (this.inProgress.has(endpoint)) throw new Error(`bootstrap of "${endpoint}" is already in progress`);
    this.inProgress.add(endpoint);
    try {
      await this.provision(client, { scheme, address: where.address, port: where.port }, endpoint);
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
    const store = this.options.store.bootstrap;
    let record = await store.sighted(endpoint, `${request.peer.address}:${request.peer.port}`, this.now());
    if (record.state === 'pending' && this.options.autoAccept) record = await store.accept(endpoint, 'auto', this.now());
    if (record.state === 'rejected') {
      this.emit('rejected', endpoint);
      return { code: Code.Forbidden, payload: 'bootstrap of this endpoint was rejected by the operator' };
    }
    if (record.state === 'pending') {
      // Acknowledged, nothing written: the device asks again and is served once accepted.
      this.emit('pending', record);
      return { code: Code.Changed };
    }
    if (this.inProgress.has(endpoint)) return { code: Code.Changed };
    const client = this.clients.get(scheme)!;
    const target = { scheme, address: request.peer.address, port: request.peer.port };
    this.inProgress.add(endpoint);
    // The answer goes first; provisioning follows as the Bootstrap-Server's own requests.
    setImmediate(() => {
      void this.provision(client, target, endpoint)
        .catch((error: unknown) => this.emit('failed', endpoint, error instanceof Error ? error.message : String(error)))
        .finally(() => this.inProgress.delete(endpoint));
    });
    return { code: Code.Changed };
  }

  private async provision(client: CoapClient, target: { scheme: 'coap' | 'coaps'; address: string; port: number }, endpoint: string): Promise<void> {
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
      // A fresh per-device PSK, bound to this endpoint only: the device can authenticate as itself alone.
      identity = endpoint;
      const key = randomBytes(16);
      await this.options.store.credentials.bind(endpoint, { kind: 'psk', identity, key }, this.now());
      resources.push(Node.resource(3, Value.opaque(Buffer.from(identity))), Node.resource(4, Value.opaque(new Uint8Array(0))), Node.resource(5, Value.opaque(key)));
    }
    const format = ContentFormat.LwM2mTlv;
    const security = encode(format, [0, securityId], Node.instance(securityId, resources));
    expect('Bootstrap-Write /0', await client.put(at('0', String(securityId)), security, { contentFormat: format, timeout }), '2.04');
    const server = encode(
      format,
      [1, 0],
      Node.instance(0, [Node.resource(0, Value.integer(dm.shortServerId)), Node.resource(1, Value.unsignedInteger(dm.lifetimeSec)), Node.resource(6, Value.boolean(true)), Node.resource(7, Value.string(dm.binding))]),
    );
    expect('Bootstrap-Write /1', await client.put(at('1', '0'), server, { contentFormat: format, timeout }), '2.04');
    // Bootstrap-Finish (§6.1.7.6).
    expect('Bootstrap-Finish', await client.post(at('bs'), new Uint8Array(0), { timeout }), '2.04');
    this.emit('bootstrapped', endpoint, identity);
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
  }
}
