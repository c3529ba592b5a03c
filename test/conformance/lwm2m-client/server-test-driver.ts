/**
 * TEST DRIVER (not Depot's LwM2M server): plays the server side of the Registration,
 * Bootstrap, Device Management and Information Reporting interfaces over a real UDP socket
 * on loopback, with CoapServer (to receive Register/Update/De-register/Bootstrap-Request/Send)
 * and a CoapClient sharing its endpoint (to send DM requests to the device from the port the
 * device registered with). It records every request and lets a test choose the answers.
 */
import { CoapClient } from '../../../src/coap/client.js';
import type { ClientRequest, ClientResponse, ObserveCallbacks, Observation } from '../../../src/coap/client.js';
import { Code } from '../../../src/coap/codes.js';
import type { MethodName } from '../../../src/coap/codes.js';
import { CoapServer } from '../../../src/coap/server.js';
import type { CoapRequest, CoapResponse } from '../../../src/coap/server.js';
import type { DatagramTransport, Peer } from '../../../src/coap/transport.js';
import { DtlsTransport } from '../../../src/dtls/transport.js';
import { UdpTransport } from '../../../src/coap/udp.js';

export interface RecordedRequest {
  method: MethodName;
  path: string;
  query: string[];
  payload: Uint8Array;
  text: string;
  contentFormat: number | undefined;
  peer: Peer;
  /** Date.now() at arrival (real time) and the test's clock reading, if one was given. */
  at: number;
  clockAt: number | undefined;
}

export type Responder = (request: CoapRequest) => CoapResponse | undefined;

export class Lwm2mServerTestDriver {
  readonly requests: RecordedRequest[] = [];
  /** Answer overrides, tried in order before the defaults. */
  readonly responders: Responder[] = [];
  private waiters: { pred: (r: RecordedRequest) => boolean; resolve: (r: RecordedRequest) => void }[] = [];
  private nextId = 1;
  /** While set, answers to Register (POST /rd) wait for it: a server slow to answer. */
  registerGate: Promise<void> | undefined;
  /** The peer of the latest Register (where DM requests go). */
  devicePeer: Peer | undefined;

  private constructor(
    readonly server: CoapServer,
    readonly client: CoapClient,
    private readonly transport: DatagramTransport,
    private readonly clockNow: (() => number) | undefined,
  ) {
    const handler = (request: CoapRequest): CoapResponse => this.handle(request);
    const post = (request: CoapRequest): CoapResponse | Promise<CoapResponse> => {
      const response = this.handle(request);
      const gate = request.path === '/rd' ? this.registerGate : undefined;
      return gate ? gate.then(() => response) : response;
    };
    server.resource('/', { prefix: true, get: handler, put: handler, post, delete: handler });
  }

  /** With `psk`, the driver listens on coaps:// (DTLS PSK) and knows these identity → key pairs. */
  static async start(options: { clockNow?: () => number; psk?: Map<string, Uint8Array>; alertUnknownAssociations?: boolean } = {}): Promise<Lwm2mServerTestDriver> {
    const psk = options.psk;
    const transport: DatagramTransport = psk
      ? await DtlsTransport.bind({ host: '127.0.0.1', port: 0, server: { pskLookup: (id) => psk.get(id), ...(options.alertUnknownAssociations !== undefined ? { alertUnknownAssociations: options.alertUnknownAssociations } : {}) } })
      : await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
    const server = new CoapServer({ transport, deduplicationCapacity: 1024 });
    const client = new CoapClient({ endpoint: server.endpoint });
    return new Lwm2mServerTestDriver(server, client, transport, options.clockNow);
  }

  get port(): number {
    return this.transport.address().port;
  }

  get uri(): string {
    return `${this.transport.scheme}://127.0.0.1:${this.port}`;
  }

  private handle(request: CoapRequest): CoapResponse {
    const rec: RecordedRequest = {
      method: request.method,
      path: request.path,
      query: [...request.query],
      payload: Uint8Array.from(request.payload),
      text: Buffer.from(request.payload).toString('utf8'),
      contentFormat: request.contentFormat,
      peer: request.peer,
      at: Date.now(),
      clockAt: this.clockNow?.(),
    };
    this.requests.push(rec);
    if (request.method === 'POST' && request.path === '/rd') this.devicePeer = request.peer;
    if (request.method === 'POST' && request.path === '/bs') this.devicePeer = request.peer;
    let response: CoapResponse | undefined;
    for (const r of this.responders) {
      response = r(request);
      if (response) break;
    }
    response ??= this.defaultResponse(request);
    // Waiters are told after the answer is chosen (and sent right after this handler returns).
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (w.pred(rec)) setImmediate(() => w.resolve(rec));
      else this.waiters.push(w);
    }
    return response;
  }

  private defaultResponse(request: CoapRequest): CoapResponse {
    if (request.method === 'POST' && request.path === '/rd') return { code: Code.Created, locationPath: ['rd', `r${this.nextId++}`] };
    if (request.method === 'POST' && request.path.startsWith('/rd/')) return { code: Code.Changed };
    if (request.method === 'DELETE' && request.path.startsWith('/rd/')) return { code: Code.Deleted };
    if (request.method === 'POST' && request.path === '/bs') return { code: Code.Changed };
    if (request.method === 'POST' && request.path === '/dp') return { code: Code.Changed };
    return { code: Code.NotFound };
  }

  /** Resolves with the first request (already received or future) matching `pred`. */
  waitFor(pred: (r: RecordedRequest) => boolean, timeoutMs = 5000, from = 0): Promise<RecordedRequest> {
    const seen = this.requests.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`test driver: no matching request within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
    });
  }

  /** Waits for the next request (after those seen so far) matching method and path. */
  next(method: MethodName, pathPrefix: string, timeoutMs = 5000): Promise<RecordedRequest> {
    return this.waitFor((r) => r.method === method && (r.path === pathPrefix || r.path.startsWith(pathPrefix + '/')), timeoutMs, this.requests.length);
  }

  deviceUri(path: string): string {
    const peer = this.devicePeer;
    if (!peer) throw new Error('test driver: the device has not registered');
    return `${this.transport.scheme}://127.0.0.1:${peer.port}${path}`;
  }

  /** Sends a DM request to the device. */
  request(method: MethodName, path: string, options: Omit<ClientRequest, 'uri' | 'method'> = {}): Promise<ClientResponse> {
    return this.client.request({ ...options, method, uri: this.deviceUri(path), timeout: options.timeout ?? 5000 });
  }

  observe(path: string, callbacks: ObserveCallbacks, options: { accept?: number } = {}): Promise<Observation> {
    return this.client.observe(this.deviceUri(path), callbacks, options);
  }

  async close(): Promise<void> {
    await this.server.close();
    await this.transport.close();
  }
}
