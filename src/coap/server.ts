import type { Clock, Timer } from '../util/clock.js';
import { printable } from '../util/printable.js';
import { blockOffset, blockSize, decodeBlock, encodeBlock } from './block.js';
import type { BlockValue } from './block.js';
import { Code, ContentFormat, Method, MessageType, codeClass, methodName } from './codes.js';
import type { MethodName } from './codes.js';
import { CoapEndpoint } from './endpoint.js';
import type { EndpointOptions, Exchange, ResponseInit } from './endpoint.js';
import type { CoapMessage, CoapOption } from './message.js';
import { EMPTY_BYTES } from './message.js';
import {
  OptionNumber,
  decodeUint,
  encodeString,
  encodeUint,
  getOptions,
  getStringOptions,
  getUintOption,
  hasOption,
  uriPathOf,
} from './options.js';
import type { Peer } from './transport.js';
import { filterLinks, serializeLinkFormat } from './linkformat.js';
import type { Link } from './linkformat.js';
import { describeResource } from './wellknown.js';
import type { ResourceDescription } from './wellknown.js';

/** A representation served block by block without being held whole (e.g. a package file). */
export interface BlockSource {
  readonly size: number;
  read(offset: number, length: number): Uint8Array | Promise<Uint8Array>;
}

export interface CoapRequest {
  readonly method: MethodName;
  /** "/a/b" (decoded Uri-Path segments joined). */
  readonly path: string;
  readonly segments: string[];
  readonly query: string[];
  readonly payload: Uint8Array;
  readonly contentFormat: number | undefined;
  readonly accept: number | undefined;
  readonly peer: Peer;
  readonly message: CoapMessage;
  /** Value of a "name=value" query parameter. */
  queryParam(name: string): string | undefined;
}

export interface CoapResponse {
  code: number;
  payload?: Uint8Array | string | BlockSource;
  contentFormat?: number;
  maxAge?: number;
  etag?: Uint8Array;
  locationPath?: string[];
  locationQuery?: string[];
  /** Further options, kept as given. */
  options?: CoapOption[];
}

export type Handler = (request: CoapRequest) => CoapResponse | Promise<CoapResponse>;

/**
 * Receives a Block1 upload as it arrives (RFC 7959 §2.5). Chunks come in order;
 * end() produces the final response; abort() is called when the transfer is given up.
 */
export interface UploadSink {
  write(chunk: Uint8Array, offset: number): void | Promise<void>;
  end(): CoapResponse | Promise<CoapResponse>;
  abort(reason: string): void;
}

export interface ResourceDefinition extends ResourceDescription {
  get?: Handler;
  put?: Handler;
  post?: Handler;
  delete?: Handler;
  fetch?: Handler;
  /** iPATCH (RFC 8132), e.g. LwM2M Write-Composite. */
  ipatch?: Handler;
  /** Receives PUT/POST bodies as they arrive — Block1 blocks or a single message — instead of put/post. */
  upload?: (request: CoapRequest) => UploadSink | CoapResponse;
  /** Whether GET with Observe registers an observer (RFC 7641). */
  observable?: boolean;
  /** Serves every path below this one too (the handler sees the full path). */
  prefix?: boolean;
  /** Left out of /.well-known/core. */
  hidden?: boolean;
  /**
   * Largest request body this resource takes, in bytes; a larger one gets 4.13 with Size1 as soon
   * as Size1 or a Block1 number shows it (RFC 7959 §2.9.3). Default: the server's maxBodySize for
   * a resource with an `upload` sink, its maxBufferedBodySize otherwise. A resource anyone can
   * reach without credentials (LwM2M /rd, /bs) should declare a small one.
   */
  maxBodySize?: number;
}

export interface CoapServerOptions extends Omit<EndpointOptions, 'transport'> {
  /** Largest body streamed to a resource's `upload` sink that declares no limit; larger → 4.13 (default 16 MiB). */
  maxBodySize?: number;
  /** Largest body the server buffers for a handler, if the resource declares no limit; larger → 4.13 (default 128 KiB). */
  maxBufferedBodySize?: number;
  /** Most bytes held by all unfinished buffered Block1 uploads together; beyond → 5.03 (default 16 MiB). */
  maxBufferedBytes?: number;
  /** Preferred block size for responses and Block1 (16…1024, default 1024). */
  blockSize?: number;
  /** An abandoned block-wise transfer is dropped after this long without a block (ms, default 60 s). */
  blockTransferTimeout?: number;
  /** Most concurrent unfinished Block1 uploads in total (default 1,000); beyond → 5.03 with Max-Age. */
  maxUploads?: number;
  /** Most concurrent unfinished Block1 uploads of one peer (default 4); beyond → 5.03 with Max-Age. */
  maxUploadsPerPeer?: number;
  /** Most Block2 representations kept for follow-up requests, in total (default 10,000); the oldest go first. */
  maxCachedBodies?: number;
  /** Most Block2 representations kept for one peer (default 8); the peer's oldest goes first. */
  maxCachedBodiesPerPeer?: number;
  /** Most observers in total (default 100,000); beyond, a registration is served as a plain GET (RFC 7641 §4.1). */
  maxObservers?: number;
  /** Most observers of one peer (default 256); beyond, as for maxObservers. */
  maxObserversPerPeer?: number;
  /** Send a CON notification at least this often per observer (ms, default 24 h, RFC 7641 §4.5). */
  confirmableNotificationInterval?: number;
}

interface Route {
  path: string;
  definition: ResourceDefinition;
  observers: Map<string, Observer>;
}

interface Observer {
  key: string;
  route: Route;
  peer: Peer;
  token: Uint8Array;
  request: CoapMessage;
  sequence: number;
  lastConfirmable: number;
  inFlight: boolean;
  dirty: boolean;
  lastMessageId: number;
}

interface Upload {
  key: string;
  peerKey: string;
  route: Route;
  request: CoapRequest;
  sink: UploadSink;
  received: number;
  /** The server holds the bytes (a buffering sink), so they count against maxBufferedBytes. */
  buffered: boolean;
  timer: Timer;
}

/** Cached representation for Block2 follow-up requests. */
interface CachedBody {
  peerKey: string;
  response: CoapResponse;
  body: Uint8Array | BlockSource;
  timer: Timer;
}

/** What the server holds for peers at the moment: each kind is bounded per peer and in total. */
export interface CoapServerHeld {
  /** Unfinished Block1 uploads. */
  uploads: number;
  /** Bytes of unfinished Block1 uploads the server buffers itself (not those streamed to an upload sink). */
  bufferedBytes: number;
  /** Representations kept for Block2 follow-up requests. */
  cachedBodies: number;
  observers: number;
}

const NOT_FOUND: ResponseInit = { code: Code.NotFound };
/** Placeholder until an upload's expiry timer is set (the timer's callback needs the upload). */
const NO_TIMER: Timer = { cancel: () => undefined };
/** Cache and transfer expiry is housekeeping: it must not keep a process alive. */
const BACKGROUND = { background: true } as const;

/**
 * The observers of every route nobody observes: one shared empty map, replaced by a map of the
 * route's own on the first registration (a simulated device has a dozen resources and no observer;
 * a Map each cost ~200 bytes per resource). Never written to.
 */
const NO_OBSERVERS: Map<string, Observer> = new Map<string, Observer>();

/** A CoAP server: resources, routing, .well-known/core, block-wise transfer and observe. */
export class CoapServer {
  readonly endpoint: CoapEndpoint;
  private readonly clock: Clock;
  private readonly exact = new Map<string, Route>();
  private readonly prefixes: Route[] = [];
  private readonly uploads = new Map<string, Upload>();
  private readonly bodies = new Map<string, CachedBody>();
  private readonly observersByMessage = new Map<string, Observer>();
  /** Peer key → that peer's unfinished uploads / cached bodies (body keys, oldest first) / observers. */
  private readonly uploadsByPeer = new Map<string, number>();
  private readonly bodiesByPeer = new Map<string, Set<string>>();
  private readonly observersByPeer = new Map<string, number>();
  private observerTotal = 0;
  private bufferedBytes = 0;
  private readonly maxBodySize: number;
  private readonly maxBufferedBodySize: number;
  private readonly maxBufferedBytes: number;
  private readonly preferredSzx: number;
  private readonly transferTimeout: number;
  private readonly maxUploads: number;
  private readonly maxUploadsPerPeer: number;
  private readonly maxCachedBodies: number;
  private readonly maxCachedBodiesPerPeer: number;
  private readonly maxObservers: number;
  private readonly maxObserversPerPeer: number;
  private readonly conInterval: number;
  private sequence = Math.floor(Math.random() * 0x10000);
  private etagCounter = Math.floor(Math.random() * 0x100000000);

  constructor(options: CoapServerOptions & { transport: EndpointOptions['transport'] }) {
    this.endpoint = new CoapEndpoint(options);
    this.clock = this.endpoint.clock;
    this.maxBodySize = options.maxBodySize ?? 16 * 1024 * 1024;
    this.maxBufferedBodySize = options.maxBufferedBodySize ?? 128 * 1024;
    this.maxBufferedBytes = options.maxBufferedBytes ?? 16 * 1024 * 1024;
    this.preferredSzx = Math.log2(options.blockSize ?? 1024) - 4;
    this.transferTimeout = options.blockTransferTimeout ?? 60_000;
    this.maxUploads = options.maxUploads ?? 1000;
    this.maxUploadsPerPeer = options.maxUploadsPerPeer ?? 4;
    this.maxCachedBodies = options.maxCachedBodies ?? 10_000;
    this.maxCachedBodiesPerPeer = options.maxCachedBodiesPerPeer ?? 8;
    this.maxObservers = options.maxObservers ?? 100_000;
    this.maxObserversPerPeer = options.maxObserversPerPeer ?? 256;
    this.conInterval = options.confirmableNotificationInterval ?? 24 * 3600_000;
    this.endpoint.setRequestHandler((exchange) => this.handle(exchange));
    this.endpoint.setResetListener((peer, messageId) => {
      // RFC 7641 §3.6: an RST to a notification cancels the observation.
      const observer = this.observersByMessage.get(peer.key + '#' + messageId);
      if (observer) this.removeObserver(observer);
    });
    this.resource('/.well-known/core', {
      hidden: true,
      get: (request) => ({
        code: Code.Content,
        contentFormat: ContentFormat.LinkFormat,
        // Built once per set of resources (routes change rarely, discovery is asked often), filtered per query.
        payload: request.query.length === 0 ? this.discovery().text : serializeLinkFormat(filterLinks(this.discovery().links, request.query)),
      }),
    });
  }

  /** The /.well-known/core links and their unfiltered document, until a resource is added or removed. */
  private discovered: { links: Link[]; text: string } | undefined;

  private discovery(): { links: Link[]; text: string } {
    if (!this.discovered) {
      const links = this.descriptions().map((r) => describeResource(r.path, r.description, r.observable));
      this.discovered = { links, text: serializeLinkFormat(links) };
    }
    return this.discovered;
  }

  /** Registers (or replaces) a resource. Paths look like "/a/b"; "/" is the root. */
  resource(path: string, definition: ResourceDefinition): void {
    this.discovered = undefined;
    const normalized = normalizePath(path);
    // Observers stay with the route this one replaces (same path and kind), and see the new definition.
    const replaced = definition.prefix ? this.prefixes.find((r) => r.path === normalized) : this.exact.get(normalized);
    const route: Route = { path: normalized, definition, observers: replaced?.observers ?? NO_OBSERVERS };
    for (const observer of route.observers.values()) observer.route = route;
    if (definition.prefix) {
      const at = this.prefixes.findIndex((r) => r.path === normalized);
      if (at >= 0) this.prefixes.splice(at, 1);
      this.prefixes.push(route);
      this.prefixes.sort((a, b) => b.path.length - a.path.length);
    } else {
      this.exact.set(normalized, route);
    }
  }

  removeResource(path: string): void {
    this.discovered = undefined;
    const normalized = normalizePath(path);
    const route = this.exact.get(normalized) ?? this.prefixes.find((r) => r.path === normalized);
    if (!route) return;
    for (const observer of [...route.observers.values()]) this.endObservation(observer, { code: Code.NotFound });
    this.exact.delete(normalized);
    const at = this.prefixes.indexOf(route);
    if (at >= 0) this.prefixes.splice(at, 1);
  }

  /**
   * Tells observers of `path` (or, for a prefix resource, of paths below it) that
   * the resource changed: each gets a notification built by re-running GET.
   */
  notifyChanged(path: string): void {
    const normalized = normalizePath(path);
    const route = this.findRoute(normalized);
    if (!route) return;
    for (const observer of route.observers.values()) {
      const observed = uriPathOf(observer.request);
      if (observed === normalized || (route.definition.prefix && observed.startsWith(normalized === '/' ? '/' : normalized + '/'))) {
        this.sendNotification(observer);
      }
    }
  }

  observerCount(path?: string): number {
    if (path !== undefined) return this.findRoute(normalizePath(path))?.observers.size ?? 0;
    let n = 0;
    for (const r of [...this.exact.values(), ...this.prefixes]) n += r.observers.size;
    return n;
  }

  get activeUploads(): number {
    return this.uploads.size;
  }

  /** What the server holds for peers now (the figures its limits bound). */
  get held(): CoapServerHeld {
    return { uploads: this.uploads.size, bufferedBytes: this.bufferedBytes, cachedBodies: this.bodies.size, observers: this.observerTotal };
  }

  close(): Promise<void> {
    for (const upload of [...this.uploads.values()]) this.dropUpload(upload, 'server closed');
    for (const cached of this.bodies.values()) cached.timer.cancel();
    this.bodies.clear();
    this.bodiesByPeer.clear();
    return this.endpoint.close();
  }

  /** The body limit of a resource: its own, else the server's for streamed or buffered bodies. */
  private bodyLimit(route: Route): number {
    return route.definition.maxBodySize ?? (route.definition.upload ? this.maxBodySize : this.maxBufferedBodySize);
  }

  private descriptions(): { path: string; description: ResourceDescription; observable: boolean }[] {
    const out = [];
    for (const route of [...this.exact.values(), ...this.prefixes]) {
      if (route.definition.hidden) continue;
      out.push({ path: route.path, description: route.definition, observable: !!route.definition.observable });
    }
    return out;
  }

  private findRoute(path: string): Route | undefined {
    const route = this.exact.get(path);
    if (route) return route;
    for (const r of this.prefixes) {
      if (path === r.path || path.startsWith(r.path === '/' ? '/' : r.path + '/')) return r;
    }
    return undefined;
  }

  // ---------------------------------------------------------------- dispatch

  private handle(exchange: Exchange): void {
    const message = exchange.request;
    // One pass over the options for the ones that steer dispatch.
    let block1Raw: number | undefined;
    let block2Raw: number | undefined;
    let observe: number | undefined;
    let proxy = false;
    for (const o of message.options) {
      if (o.number === OptionNumber.Observe) observe = decodeUint(o.value);
      else if (o.number === OptionNumber.Block2) block2Raw = decodeUint(o.value);
      else if (o.number === OptionNumber.Block1) block1Raw = decodeUint(o.value);
      else if (o.number === OptionNumber.ProxyUri || o.number === OptionNumber.ProxyScheme) proxy = true;
    }
    if (proxy) {
      // RFC 7252 §5.10.2: not a forward-proxy, so a proxy request gets 5.05 (not a local resource).
      exchange.respond({ code: Code.ProxyingNotSupported });
      return;
    }
    const path = uriPathOf(message);
    const route = this.findRoute(path);
    if (!route) {
      exchange.respond(NOT_FOUND);
      return;
    }
    const request = new Request(message, exchange.peer, path);
    const method = request.method;
    if (block2Raw !== undefined && block1Raw === undefined && method !== 'GET') {
      // RFC 7959 §2.7/§3.3: after a PUT/POST/FETCH whose answer needed Block2, the client asks
      // for the following blocks with the same method and no body: serve the stored answer.
      const followUp = decodeBlock(block2Raw);
      if (followUp && followUp.num > 0) {
        const cached = this.bodies.get(this.bodyKey(exchange.peer, message));
        if (cached) this.sendBlock(exchange, cached.response.code, responseOptions(cached.response, undefined), cached.body, followUp);
        else exchange.respond({ code: Code.RequestEntityIncomplete, payload: encodeString('no stored response to continue (RFC 7959 §2.7)') });
        return;
      }
    }
    const continuation = block1Raw !== undefined && (decodeBlock(block1Raw)?.num ?? 0) > 0;
    if (method !== 'GET' && !continuation && (hasOption(message, OptionNumber.IfMatch) || hasOption(message, OptionNumber.IfNoneMatch))) {
      this.checkPreconditions(exchange, route, request, () => this.dispatch(exchange, route, request, method, block1Raw, block2Raw, observe));
      return;
    }
    this.dispatch(exchange, route, request, method, block1Raw, block2Raw, observe);
  }

  /**
   * RFC 7252 §5.10.8: If-Match / If-None-Match are evaluated against the resource's current
   * representation (its GET answer and ETag); a failed condition gives 4.12.
   */
  private checkPreconditions(exchange: Exchange, route: Route, request: CoapRequest, proceed: () => void): void {
    const message = exchange.request;
    const ifMatch = getOptions(message, OptionNumber.IfMatch);
    const ifNoneMatch = hasOption(message, OptionNumber.IfNoneMatch);
    const evaluate = (current: CoapResponse | undefined): void => {
      const exists = current !== undefined && codeClass(current.code) === 2;
      let ok = true;
      if (ifNoneMatch && exists) ok = false;
      if (ifMatch.length > 0) {
        // An empty If-Match value matches any existing representation.
        const etag = current?.etag;
        ok &&= exists && ifMatch.some((v) => v.length === 0 || (etag !== undefined && Buffer.compare(v, etag) === 0));
      }
      if (ok) proceed();
      else exchange.respond({ code: Code.PreconditionFailed });
    };
    const get = route.definition.get;
    if (!get) {
      evaluate(undefined);
      return;
    }
    const probe = new Request({ ...message, code: Method.GET, payload: EMPTY_BYTES }, request.peer, request.path);
    this.run(get, probe, exchange, evaluate);
  }

  private dispatch(exchange: Exchange, route: Route, request: CoapRequest, method: MethodName, block1Raw: number | undefined, block2Raw: number | undefined, observe: number | undefined): void {
    const message = exchange.request;
    const definition = route.definition;
    if (block1Raw !== undefined && (method === 'PUT' || method === 'POST' || method === 'FETCH')) {
      this.handleBlock1(exchange, route, request, block1Raw);
      return;
    }
    const limit = this.bodyLimit(route);
    if (message.payload.length > limit) {
      exchange.respond(tooLarge(limit));
      return;
    }
    if (definition.upload && (method === 'PUT' || method === 'POST')) {
      // A single-message body through the streaming interface.
      this.runUploadInOneGo(exchange, route, request);
      return;
    }
    const handler = handlerFor(definition, method);
    if (!handler) {
      exchange.respond({ code: Code.MethodNotAllowed });
      return;
    }
    if (method === 'GET') {
      const block2 = block2Raw === undefined ? undefined : decodeBlock(block2Raw);
      if (block2Raw !== undefined && !block2) {
        exchange.respond({ code: Code.BadOption, payload: encodeString('Block2 SZX 7 is reserved (RFC 7959 §2.2)') });
        return;
      }
      if (block2 && block2.num > 0) {
        this.serveFollowUpBlock(exchange, request, handler, block2);
        return;
      }
      if (observe !== undefined && definition.observable) {
        this.handleObserve(exchange, route, request, handler, observe, block2);
        return;
      }
      this.run(handler, request, exchange, (response) => this.respondWithBody(exchange, response, block2, undefined));
      return;
    }
    if (method === 'FETCH' && observe !== undefined && definition.observable) {
      // RFC 8132 §2.4: FETCH can be observed like GET (LwM2M Observe-Composite).
      this.handleObserve(exchange, route, request, handler, observe, undefined);
      return;
    }
    // RFC 7959 §2.4: Block2 in a request is early negotiation of the answer's block size, for any method.
    const block2 = block2Raw === undefined ? undefined : decodeBlock(block2Raw);
    this.run(handler, request, exchange, (response) => this.respondWithBody(exchange, response, block2, undefined));
  }

  /** Runs a handler, sync or async, turning a throw into 5.00. */
  private run(handler: Handler, request: CoapRequest, exchange: Exchange, then: (response: CoapResponse) => void): void {
    let result: CoapResponse | Promise<CoapResponse>;
    try {
      result = handler(request);
    } catch (error) {
      exchange.respond(internalError(error));
      return;
    }
    if (result instanceof Promise) {
      result.then(then, (error: unknown) => {
        if (!exchange.responded) exchange.respond(internalError(error));
      });
    } else {
      then(result);
    }
  }

  // ---------------------------------------------------------------- responses and Block2

  /**
   * Answers with a response whose body may need Block2 (RFC 7959 §2.4): the first
   * block carries Size2, and the body is kept for the follow-up requests.
   */
  private respondWithBody(exchange: Exchange, given: CoapResponse, block2: BlockValue | undefined, extra: CoapOption[] | undefined): void {
    const body = bodyOf(given.payload);
    const size = body instanceof Uint8Array ? body.length : body.size;
    const szx = Math.min(block2?.szx ?? this.preferredSzx, this.preferredSzx);
    const response = this.tagIfBlockwise(given, size, szx);
    const options = responseOptions(response, extra);
    if (size <= blockSize(szx) && !block2 && body instanceof Uint8Array) {
      exchange.respond({ code: response.code, options, payload: body });
      return;
    }
    if (size > blockSize(szx) || block2) this.cacheBody(exchange.peer, exchange.request, response, body);
    this.sendBlock(exchange, response.code, options, body, { num: 0, more: false, szx });
  }

  /**
   * A body sent in several blocks needs an ETag, so a client can tell when the
   * representation changed between blocks (RFC 7959 §2.4); add one if the handler gave none.
   */
  private tagIfBlockwise(response: CoapResponse, size: number, szx: number): CoapResponse {
    if (response.etag || size <= blockSize(szx)) return response;
    this.etagCounter = (this.etagCounter + 1) >>> 0;
    const etag = Buffer.alloc(4);
    etag.writeUInt32BE(this.etagCounter);
    return { ...response, etag };
  }

  private sendBlock(exchange: Exchange, code: number, options: CoapOption[], body: Uint8Array | BlockSource, requested: BlockValue): void {
    const size = body instanceof Uint8Array ? body.length : body.size;
    const length = blockSize(requested.szx);
    const offset = blockOffset(requested);
    if (offset >= size && !(offset === 0 && size === 0)) {
      exchange.respond({ code: Code.BadOption, payload: encodeString(`block ${requested.num} is beyond the end of the ${size}-byte body`) });
      return;
    }
    const more = offset + length < size;
    const blockOptions = options.filter((o) => o.number !== OptionNumber.Block2 && o.number !== OptionNumber.Size2);
    blockOptions.push({ number: OptionNumber.Block2, value: encodeUint(encodeBlock({ num: requested.num, more, szx: requested.szx })) });
    if (requested.num === 0) blockOptions.push({ number: OptionNumber.Size2, value: encodeUint(size) });
    const end = Math.min(size, offset + length);
    const chunk = body instanceof Uint8Array ? body.subarray(offset, end) : body.read(offset, end - offset);
    if (chunk instanceof Promise) {
      chunk.then(
        (bytes) => exchange.respond({ code, options: blockOptions, payload: bytes }),
        (error: unknown) => exchange.respond(internalError(error)),
      );
    } else {
      exchange.respond({ code, options: blockOptions, payload: chunk });
    }
  }

  private bodyKey(peer: Peer, message: CoapMessage): string {
    // RFC 7959 §2.4: follow-up requests are matched on method, request URI and Accept, not the token.
    let key = peer.key + ' ' + message.code + ' ' + uriPathOf(message) + '?' + getStringOptions(message, OptionNumber.UriQuery).join('&');
    const accept = getUintOption(message, OptionNumber.Accept);
    if (accept !== undefined) key += '#' + accept;
    return key;
  }

  /** Keeps a representation for the Block2 follow-ups of the request that produced it (§2.4). */
  private cacheBody(peer: Peer, request: CoapMessage, response: CoapResponse, body: Uint8Array | BlockSource): void {
    const key = this.bodyKey(peer, request);
    this.forgetBody(key);
    let ofPeer = this.bodiesByPeer.get(peer.key);
    // Bounded per peer and in total, the oldest going first: a follow-up for an evicted body
    // re-runs GET, or gets 4.08 after another method (the client starts again).
    if (ofPeer && ofPeer.size >= this.maxCachedBodiesPerPeer) this.forgetBody(ofPeer.values().next().value!);
    if (this.bodies.size >= this.maxCachedBodies) this.forgetBody(this.bodies.keys().next().value!);
    ofPeer = this.bodiesByPeer.get(peer.key);
    if (!ofPeer) this.bodiesByPeer.set(peer.key, (ofPeer = new Set<string>()));
    ofPeer.add(key);
    const timer = this.clock.setTimer(this.transferTimeout, () => this.forgetBody(key), BACKGROUND);
    this.bodies.set(key, { peerKey: peer.key, response, body, timer });
  }

  private forgetBody(key: string): void {
    const cached = this.bodies.get(key);
    if (!cached) return;
    cached.timer.cancel();
    this.bodies.delete(key);
    const ofPeer = this.bodiesByPeer.get(cached.peerKey);
    if (ofPeer) {
      ofPeer.delete(key);
      if (ofPeer.size === 0) this.bodiesByPeer.delete(cached.peerKey);
    }
  }

  private serveFollowUpBlock(exchange: Exchange, request: CoapRequest, handler: Handler, block2: BlockValue): void {
    const key = this.bodyKey(exchange.peer, exchange.request);
    const cached = this.bodies.get(key);
    if (cached) {
      cached.timer.cancel();
      cached.timer = this.clock.setTimer(this.transferTimeout, () => this.forgetBody(key), BACKGROUND);
      this.sendBlock(exchange, cached.response.code, responseOptions(cached.response, undefined), cached.body, block2);
      return;
    }
    // Nothing cached (expired, or another server node): build the representation again.
    this.run(handler, request, exchange, (given) => {
      const body = bodyOf(given.payload);
      const response = this.tagIfBlockwise(given, body instanceof Uint8Array ? body.length : body.size, block2.szx);
      this.cacheBody(exchange.peer, exchange.request, response, body);
      this.sendBlock(exchange, response.code, responseOptions(response, undefined), body, block2);
    });
  }

  // ---------------------------------------------------------------- Block1

  private handleBlock1(exchange: Exchange, route: Route, request: CoapRequest, raw: number): void {
    const block = decodeBlock(raw);
    if (!block) {
      exchange.respond({ code: Code.BadOption, payload: encodeString('Block1 SZX 7 is reserved (RFC 7959 §2.2)') });
      return;
    }
    const message = exchange.request;
    const key = this.bodyKey(exchange.peer, message);
    let upload = this.uploads.get(key);
    const offset = blockOffset(block);
    const limit = this.bodyLimit(route);
    const size1 = getUintOption(message, OptionNumber.Size1);
    const end = offset + message.payload.length;
    // RFC 7959 §2.9.3/§4: refuse as soon as Size1 or the block's place shows the body cannot fit
    // (with More set, at least one byte follows this block), rather than after buffering.
    if ((size1 !== undefined && size1 > limit) || end > limit || (block.more && end >= limit)) {
      if (upload) this.dropUpload(upload, 'body too large');
      exchange.respond(tooLarge(limit));
      return;
    }
    if (block.num === 0) {
      if (upload) this.dropUpload(upload, 'restarted by the client');
      if (!block.more) {
        // A one-block transfer is an ordinary request.
        this.handleSingleBlock(exchange, route, request, block);
        return;
      }
      const peerKey = exchange.peer.key;
      const ofPeer = this.uploadsByPeer.get(peerKey) ?? 0;
      if (ofPeer >= this.maxUploadsPerPeer) {
        exchange.respond(this.busy(`${ofPeer} unfinished block-wise uploads from this peer already (limit ${this.maxUploadsPerPeer})`));
        return;
      }
      if (this.uploads.size >= this.maxUploads) {
        exchange.respond(this.busy(`too many unfinished block-wise uploads (limit ${this.maxUploads})`));
        return;
      }
      const sink = this.openSink(route, request);
      if (!('write' in sink)) {
        this.respondWithBody(exchange, sink, undefined, undefined);
        return;
      }
      const opened: Upload = { key, peerKey, route, request, sink, received: 0, buffered: !route.definition.upload, timer: NO_TIMER };
      opened.timer = this.clock.setTimer(this.transferTimeout, () => this.dropUpload(opened, 'timed out'), BACKGROUND);
      this.uploads.set(key, opened);
      this.uploadsByPeer.set(peerKey, ofPeer + 1);
      upload = opened;
    }
    if (!upload || offset !== upload.received) {
      // RFC 7959 §2.9.2: a block out of sequence, or with no transfer in progress.
      exchange.respond({ code: Code.RequestEntityIncomplete, payload: encodeString(upload ? `expected offset ${upload.received}, got ${offset}` : 'no block-wise transfer in progress') });
      return;
    }
    if (block.more && message.payload.length !== blockSize(block.szx)) {
      this.dropUpload(upload, 'bad block size');
      exchange.respond({ code: Code.BadRequest, payload: encodeString(`block ${block.num} has ${message.payload.length} bytes, SZX says ${blockSize(block.szx)} (RFC 7959 §2.3)`) });
      return;
    }
    if (upload.buffered && this.bufferedBytes + message.payload.length > this.maxBufferedBytes) {
      // All buffered uploads together are at their bound: this one goes, freeing what it held.
      this.dropUpload(upload, 'server buffers full');
      exchange.respond(this.busy(`the server holds too many unfinished uploads (${this.maxBufferedBytes} bytes); start again later`));
      return;
    }
    const current = upload;
    current.timer.cancel();
    current.timer = this.clock.setTimer(this.transferTimeout, () => this.dropUpload(current, 'timed out'), BACKGROUND);
    let written: void | Promise<void>;
    try {
      written = current.sink.write(message.payload, current.received);
    } catch (error) {
      this.dropUpload(current, 'write failed');
      exchange.respond(internalError(error));
      return;
    }
    current.received += message.payload.length;
    if (current.buffered) this.bufferedBytes += message.payload.length;
    // RFC 7959 §2.3: the server may ask for smaller blocks in its answer.
    const szx = Math.min(block.szx, this.preferredSzx);
    const proceed = (): void => {
      if (block.more) {
        exchange.respond({ code: Code.Continue, options: [{ number: OptionNumber.Block1, value: encodeUint(encodeBlock({ num: block.num, more: true, szx })) }] });
        return;
      }
      this.forgetUpload(current);
      const block1Echo: CoapOption = { number: OptionNumber.Block1, value: encodeUint(encodeBlock({ num: block.num, more: false, szx })) };
      let result: CoapResponse | Promise<CoapResponse>;
      try {
        result = current.sink.end();
      } catch (error) {
        exchange.respond(internalError(error));
        return;
      }
      const send = (response: CoapResponse): void => this.respondWithBody(exchange, response, decodeBlockOption(message, OptionNumber.Block2), [block1Echo]);
      if (result instanceof Promise) result.then(send, (error: unknown) => exchange.respond(internalError(error)));
      else send(result);
    };
    if (written instanceof Promise) {
      written.then(proceed, (error: unknown) => {
        this.dropUpload(current, 'write failed');
        exchange.respond(internalError(error));
      });
    } else {
      proceed();
    }
  }

  private handleSingleBlock(exchange: Exchange, route: Route, request: CoapRequest, block: BlockValue): void {
    const echo: CoapOption = { number: OptionNumber.Block1, value: encodeUint(encodeBlock({ num: 0, more: false, szx: block.szx })) };
    if (route.definition.upload) {
      this.runUploadInOneGo(exchange, route, request, [echo]);
      return;
    }
    const handler = handlerFor(route.definition, request.method);
    if (!handler) {
      exchange.respond({ code: Code.MethodNotAllowed });
      return;
    }
    this.run(handler, request, exchange, (response) => this.respondWithBody(exchange, response, decodeBlockOption(request.message, OptionNumber.Block2), [echo]));
  }

  private openSink(route: Route, request: CoapRequest): UploadSink | CoapResponse {
    if (route.definition.upload) return route.definition.upload(request);
    const handler = handlerFor(route.definition, request.method);
    if (!handler) return { code: Code.MethodNotAllowed };
    return bufferingSink(request, handler);
  }

  private runUploadInOneGo(exchange: Exchange, route: Route, request: CoapRequest, extra?: CoapOption[]): void {
    const sink = route.definition.upload!(request);
    if (!('write' in sink)) {
      this.respondWithBody(exchange, sink, undefined, extra);
      return;
    }
    Promise.resolve()
      .then(() => sink.write(request.payload, 0))
      .then(() => sink.end())
      .then(
        (response) => this.respondWithBody(exchange, response, decodeBlockOption(request.message, OptionNumber.Block2), extra),
        (error: unknown) => {
          sink.abort('write failed');
          if (!exchange.responded) exchange.respond(internalError(error));
        },
      );
  }

  /**
   * RFC 7252 §5.9.3.4: 5.03 with Max-Age saying when to try again — by then every unfinished
   * upload has either finished or expired.
   */
  private busy(reason: string): ResponseInit {
    const retryAfter = Math.max(1, Math.ceil(this.transferTimeout / 1000));
    return { code: Code.ServiceUnavailable, options: [{ number: OptionNumber.MaxAge, value: encodeUint(retryAfter) }], payload: encodeString(reason) };
  }

  /** Removes an upload from the books (finished or dropped); what it buffered is no longer counted. */
  private forgetUpload(upload: Upload): void {
    upload.timer.cancel();
    if (this.uploads.get(upload.key) !== upload) return;
    this.uploads.delete(upload.key);
    if (upload.buffered) this.bufferedBytes -= upload.received;
    const left = (this.uploadsByPeer.get(upload.peerKey) ?? 1) - 1;
    if (left > 0) this.uploadsByPeer.set(upload.peerKey, left);
    else this.uploadsByPeer.delete(upload.peerKey);
  }

  private dropUpload(upload: Upload, reason: string): void {
    if (this.uploads.get(upload.key) !== upload) return;
    this.forgetUpload(upload);
    try {
      upload.sink.abort(reason);
    } catch {
      // An abort handler's failure changes nothing: the transfer is gone either way.
    }
  }

  // ---------------------------------------------------------------- observe (RFC 7641)

  private handleObserve(exchange: Exchange, route: Route, request: CoapRequest, handler: Handler, observe: number, block2: BlockValue | undefined): void {
    const peer = exchange.peer;
    const token = exchange.request.token;
    const key = peer.key + '#' + Buffer.from(token).toString('hex');
    if (observe === 1) {
      // §3.6: deregistration; the request is then served like a plain GET.
      const existing = route.observers.get(key);
      if (existing) this.removeObserver(existing);
      this.run(handler, request, exchange, (response) => this.respondWithBody(exchange, response, block2, undefined));
      return;
    }
    if (observe !== 0) {
      this.run(handler, request, exchange, (response) => this.respondWithBody(exchange, response, block2, undefined));
      return;
    }
    this.run(handler, request, exchange, (response) => {
      if (codeClass(response.code) !== 2) {
        // §4.1: only a successful response establishes an observation.
        const existing = route.observers.get(key);
        if (existing) this.removeObserver(existing);
        this.respondWithBody(exchange, response, block2, undefined);
        return;
      }
      // §4.1: a matching endpoint/token pair replaces the existing entry.
      let observer = route.observers.get(key);
      if (!observer && !this.observerSlotFree(peer)) {
        // RFC 7641 §4.1: a server unable to add an observer processes the GET as usual,
        // and the response carries no Observe option.
        this.respondWithBody(exchange, response, block2, undefined);
        return;
      }
      if (!observer) {
        observer = { key, route, peer, token: Uint8Array.from(token), request: copyMessage(exchange.request), sequence: 0, lastConfirmable: this.clock.now(), inFlight: false, dirty: false, lastMessageId: -1 };
        if (route.observers === NO_OBSERVERS) route.observers = new Map<string, Observer>();
        route.observers.set(key, observer);
        this.observerTotal++;
        this.observersByPeer.set(peer.key, (this.observersByPeer.get(peer.key) ?? 0) + 1);
      } else {
        observer.request = copyMessage(exchange.request);
      }
      observer.sequence = this.nextSequence();
      this.respondWithBody(exchange, response, block2, [{ number: OptionNumber.Observe, value: encodeUint(observer.sequence) }]);
    });
  }

  private nextSequence(): number {
    this.sequence = (this.sequence + 1) & 0xffffff;
    return this.sequence;
  }

  private sendNotification(observer: Observer): void {
    if (observer.inFlight) {
      // §4.5.2: while a CON notification is outstanding, only the newest state matters.
      observer.dirty = true;
      return;
    }
    // A notification re-runs the method that registered: GET, or FETCH with its stored body.
    const handler = observer.request.code === Method.FETCH ? observer.route.definition.fetch : observer.route.definition.get;
    if (!handler) return;
    const request = new Request(observer.request, observer.peer, uriPathOf(observer.request));
    let result: CoapResponse | Promise<CoapResponse>;
    try {
      result = handler(request);
    } catch (error) {
      this.endObservation(observer, internalError(error));
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (response) => this.deliverNotification(observer, response),
        (error: unknown) => this.endObservation(observer, internalError(error)),
      );
    } else {
      this.deliverNotification(observer, result);
    }
  }

  private deliverNotification(observer: Observer, given: CoapResponse): void {
    if (observer.route.observers.get(observer.key) !== observer) return;
    if (codeClass(given.code) !== 2) {
      // §3.2: a non-2.xx notification ends the observation.
      this.endObservation(observer, { code: given.code, payload: payloadBytes(given.payload) });
      return;
    }
    const now = this.clock.now();
    const confirmable = now - observer.lastConfirmable >= this.conInterval;
    observer.sequence = this.nextSequence();
    const body = bodyOf(given.payload);
    const szx = Math.min(decodeBlockOption(observer.request, OptionNumber.Block2)?.szx ?? this.preferredSzx, this.preferredSzx);
    const size = body instanceof Uint8Array ? body.length : body.size;
    const response = this.tagIfBlockwise(given, size, szx);
    const options = responseOptions(response, [{ number: OptionNumber.Observe, value: encodeUint(observer.sequence) }]);
    const send = (payload: Uint8Array): void => {
      if (confirmable) {
        observer.inFlight = true;
        observer.lastConfirmable = now;
      }
      this.forgetMessage(observer);
      observer.lastMessageId = this.endpoint.sendMessage(
        { type: confirmable ? MessageType.CON : MessageType.NON, code: response.code, token: observer.token, options, payload },
        observer.peer,
        {
          onAck: () => this.notificationAcked(observer),
          onReset: () => this.removeObserver(observer),
          // §4.5: an observer that does not acknowledge a CON notification is removed.
          onTimeout: () => this.removeObserver(observer),
        },
      );
      this.observersByMessage.set(observer.peer.key + '#' + observer.lastMessageId, observer);
    };
    if (size > blockSize(szx)) {
      // RFC 7959 §3.4: a notification carries the first block; the client GETs the rest.
      this.cacheBody(observer.peer, observer.request, response, body);
      options.push({ number: OptionNumber.Block2, value: encodeUint(encodeBlock({ num: 0, more: true, szx })) }, { number: OptionNumber.Size2, value: encodeUint(size) });
      const first = body instanceof Uint8Array ? body.subarray(0, blockSize(szx)) : body.read(0, blockSize(szx));
      if (first instanceof Promise) first.then(send, (error: unknown) => this.endObservation(observer, internalError(error)));
      else send(first);
    } else {
      const payload = body instanceof Uint8Array ? body : body.read(0, size);
      if (payload instanceof Promise) payload.then(send, (error: unknown) => this.endObservation(observer, internalError(error)));
      else send(payload);
    }
  }

  private notificationAcked(observer: Observer): void {
    observer.inFlight = false;
    if (observer.dirty) {
      observer.dirty = false;
      this.sendNotification(observer);
    }
  }

  /** Sends a final (error) notification and removes the observer. */
  private endObservation(observer: Observer, response: ResponseInit): void {
    this.removeObserver(observer);
    this.endpoint.sendMessage(
      { type: MessageType.CON, code: response.code, token: observer.token, options: response.options ?? [], payload: response.payload ?? EMPTY_BYTES },
      observer.peer,
    );
  }

  private observerSlotFree(peer: Peer): boolean {
    return this.observerTotal < this.maxObservers && (this.observersByPeer.get(peer.key) ?? 0) < this.maxObserversPerPeer;
  }

  private removeObserver(observer: Observer): void {
    if (observer.route.observers.get(observer.key) === observer) {
      observer.route.observers.delete(observer.key);
      this.observerTotal--;
      const left = (this.observersByPeer.get(observer.peer.key) ?? 1) - 1;
      if (left > 0) this.observersByPeer.set(observer.peer.key, left);
      else this.observersByPeer.delete(observer.peer.key);
    }
    this.forgetMessage(observer);
  }

  private forgetMessage(observer: Observer): void {
    if (observer.lastMessageId >= 0) this.observersByMessage.delete(observer.peer.key + '#' + observer.lastMessageId);
  }
}

// ---------------------------------------------------------------- helpers

class Request implements CoapRequest {
  private querySegments: string[] | undefined;

  constructor(
    readonly message: CoapMessage,
    readonly peer: Peer,
    readonly path: string,
  ) {}

  get method(): MethodName {
    return methodName(this.message.code) ?? 'GET';
  }
  get segments(): string[] {
    return this.path === '/' ? [] : this.path.slice(1).split('/');
  }
  get query(): string[] {
    return (this.querySegments ??= getStringOptions(this.message, OptionNumber.UriQuery));
  }
  get payload(): Uint8Array {
    return this.message.payload;
  }
  get contentFormat(): number | undefined {
    return getUintOption(this.message, OptionNumber.ContentFormat);
  }
  get accept(): number | undefined {
    return getUintOption(this.message, OptionNumber.Accept);
  }
  queryParam(name: string): string | undefined {
    const prefix = name + '=';
    for (const q of this.query) {
      if (q === name) return '';
      if (q.startsWith(prefix)) return q.slice(prefix.length);
    }
    return undefined;
  }
}

function normalizePath(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  if (trimmed === '') return '/';
  return trimmed.startsWith('/') ? trimmed : '/' + trimmed;
}

function handlerFor(definition: ResourceDefinition, method: MethodName): Handler | undefined {
  switch (method) {
    case 'GET':
      return definition.get;
    case 'PUT':
      return definition.put;
    case 'POST':
      return definition.post;
    case 'DELETE':
      return definition.delete;
    case 'FETCH':
      return definition.fetch;
    case 'IPATCH':
      return definition.ipatch;
    default:
      return undefined;
  }
}

function bodyOf(payload: CoapResponse['payload']): Uint8Array | BlockSource {
  if (payload === undefined) return EMPTY_BYTES;
  if (typeof payload === 'string') return encodeString(payload);
  return payload;
}

function payloadBytes(payload: CoapResponse['payload']): Uint8Array {
  const body = bodyOf(payload);
  return body instanceof Uint8Array ? body : EMPTY_BYTES;
}

function responseOptions(response: CoapResponse, extra: CoapOption[] | undefined): CoapOption[] {
  const options: CoapOption[] = response.options ? [...response.options] : [];
  if (response.contentFormat !== undefined) options.push({ number: OptionNumber.ContentFormat, value: encodeUint(response.contentFormat) });
  if (response.maxAge !== undefined) options.push({ number: OptionNumber.MaxAge, value: encodeUint(response.maxAge) });
  if (response.etag) options.push({ number: OptionNumber.ETag, value: response.etag });
  if (response.locationPath) for (const p of response.locationPath) options.push({ number: OptionNumber.LocationPath, value: encodeString(p) });
  if (response.locationQuery) for (const q of response.locationQuery) options.push({ number: OptionNumber.LocationQuery, value: encodeString(q) });
  if (extra) options.push(...extra);
  return options;
}

function decodeBlockOption(message: CoapMessage, number: number): BlockValue | undefined {
  const raw = getUintOption(message, number);
  return raw === undefined ? undefined : decodeBlock(raw);
}

function tooLarge(limit: number): ResponseInit {
  // RFC 7959 §2.9.3: 4.13 with Size1 telling the largest acceptable body.
  return { code: Code.RequestEntityTooLarge, options: [{ number: OptionNumber.Size1, value: encodeUint(limit) }], payload: encodeString(`request body exceeds ${limit} bytes`) };
}

function internalError(error: unknown): ResponseInit {
  // A handler's message may quote what a device sent.
  process.emitWarning(`CoAP handler failed: ${printable(error instanceof Error ? error.message : String(error))}`);
  return { code: Code.InternalServerError, payload: encodeString('internal server error') };
}

function copyMessage(message: CoapMessage): CoapMessage {
  // The original views point into a receive buffer; keep our own bytes.
  return {
    ...message,
    token: Uint8Array.from(message.token),
    options: message.options.map((o) => ({ number: o.number, value: Uint8Array.from(o.value) })),
    // A FETCH's body selects what is observed (RFC 8132 §2.4); a GET's body means nothing.
    payload: message.code === Method.FETCH ? Uint8Array.from(message.payload) : EMPTY_BYTES,
  };
}

/** Collects a Block1 body in memory (bounded by maxBodySize), then runs the handler. */
function bufferingSink(request: CoapRequest, handler: Handler): UploadSink {
  const chunks: Uint8Array[] = [];
  let size = 0;
  return {
    write(chunk) {
      chunks.push(Uint8Array.from(chunk));
      size += chunk.length;
    },
    end() {
      const body = Buffer.concat(chunks, size);
      const complete: CoapMessage = { ...request.message, payload: body };
      return handler(new Request(complete, request.peer, request.path));
    },
    abort() {
      chunks.length = 0;
    },
  };
}

