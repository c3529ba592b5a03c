import { isIP } from 'node:net';
import type { Clock } from '../util/clock.js';
import { blockSize, decodeBlock, encodeBlock, szxFor } from './block.js';
import type { BlockValue } from './block.js';
import { Code, Method, codeClass, formatCode } from './codes.js';
import type { MethodName } from './codes.js';
import { CoapEndpoint, CoapRequestError } from './endpoint.js';
import type { EndpointOptions, RequestHandle } from './endpoint.js';
import type { CoapMessage, CoapOption } from './message.js';
import { EMPTY_BYTES } from './message.js';
import { OptionNumber, decodeString, encodeString, encodeUint, getOption, getUintOption } from './options.js';
import { isFresh } from './observe.js';
import { peerAddress, type DatagramTransport, type Peer } from './transport.js';
import type { BlockSource } from './server.js';
import { UdpTransport } from './udp.js';
import { CoapUriError, checkUriPathValue, checkUriQueryValue, parseCoapUri } from './uri.js';
import type { CoapScheme } from './uri.js';

/**
 * Where a request goes, already split into what its options carry: for a caller that knows
 * the peer's address (a server talking back to registered devices) and would otherwise
 * format a URI only for it to be parsed again.
 */
export interface CoapDestination {
  scheme: 'coap' | 'coaps';
  /** An IPv4 or IPv6 address (IPv6 without brackets); no name to resolve, so no Uri-Host. */
  address: string;
  port: number;
  /** Uri-Path values (not percent-encoded; "." and ".." are refused as in a URI). */
  uriPath?: readonly string[];
  /** Uri-Query values (not percent-encoded). */
  uriQuery?: readonly string[];
}

export interface ClientRequest {
  method?: MethodName;
  /** coap://host[:port]/path?query, or the destination in parts. */
  uri: string | CoapDestination;
  /** The body; a BlockSource is read block by block as Block1 goes (nothing holds the whole body). */
  payload?: Uint8Array | string | BlockSource;
  contentFormat?: number;
  accept?: number;
  confirmable?: boolean;
  /** Block size for Block1 uploads and the Block2 size asked for (16…1024). */
  blockSize?: number;
  /** Extra options, e.g. ETag or If-Match. */
  options?: CoapOption[];
  /** Overall timeout per message exchange (ms). */
  timeout?: number;
}

/** A body in memory as a BlockSource, for Block1. */
function wholeBody(bytes: Uint8Array): BlockSource {
  return { size: bytes.length, read: (offset, length) => bytes.subarray(offset, offset + length) };
}

/** Whether a response is the first block of several (RFC 7959 §2.4): its Block2 has the M bit. */
function hasMoreBlocks(response: CoapMessage): boolean {
  const raw = getUintOption(response, OptionNumber.Block2);
  return raw !== undefined && decodeBlock(raw)?.more === true;
}

export interface ClientResponse {
  code: number;
  /** "2.05" */
  codeText: string;
  options: CoapOption[];
  payload: Uint8Array;
  contentFormat: number | undefined;
  /** Observe sequence number for notifications. */
  observe: number | undefined;
  text(): string;
}

export interface Observation {
  /** The first response (registration answer). */
  readonly first: ClientResponse;
  /** Whether the server accepted the registration (the first response carried Observe). */
  readonly established: boolean;
  /** Cancels actively (GET with Observe=1, RFC 7641 §3.6). */
  cancel(): Promise<void>;
}

export interface ObserveCallbacks {
  onNotification(response: ClientResponse): void;
  /** The observation ended: a non-2.xx notification, or the server stopped answering. */
  onEnd?(reason: string): void;
}

/** A transport for a scheme (coaps is provided by the DTLS layer). */
export type TransportFactory = (scheme: CoapScheme, family: 'IPv4' | 'IPv6') => Promise<DatagramTransport>;

export interface CoapClientOptions extends Omit<EndpointOptions, 'transport'> {
  /** Opens transports; the default opens UDP sockets for coap://. */
  transportFactory?: TransportFactory;
  /**
   * Sends every request over this endpoint instead of opening its own (a server
   * talking back to devices from the port they reached it on). It is not closed by close().
   */
  endpoint?: CoapEndpoint;
  /** Largest body assembled from Block2 responses (default 64 MiB). */
  maxBodySize?: number;
}

export class CoapClientError extends Error {
  constructor(
    message: string,
    readonly response?: ClientResponse,
  ) {
    super(message);
    this.name = 'CoapClientError';
  }
}

/** A CoAP client: requests by URI, block-wise transfers, observation. */
export class CoapClient {
  private readonly endpoints = new Map<string, Promise<CoapEndpoint>>();
  private readonly maxBodySize: number;
  private readonly clock: Clock | undefined;

  constructor(private readonly options: CoapClientOptions = {}) {
    this.maxBodySize = options.maxBodySize ?? 64 * 1024 * 1024;
    this.clock = options.clock;
  }

  async get(uri: string, options: Omit<ClientRequest, 'uri' | 'method'> = {}): Promise<ClientResponse> {
    return this.request({ ...options, uri, method: 'GET' });
  }
  async put(uri: string, payload: Uint8Array | string, options: Omit<ClientRequest, 'uri' | 'method' | 'payload'> = {}): Promise<ClientResponse> {
    return this.request({ ...options, uri, method: 'PUT', payload });
  }
  async post(uri: string, payload: Uint8Array | string, options: Omit<ClientRequest, 'uri' | 'method' | 'payload'> = {}): Promise<ClientResponse> {
    return this.request({ ...options, uri, method: 'POST', payload });
  }
  async delete(uri: string, options: Omit<ClientRequest, 'uri' | 'method'> = {}): Promise<ClientResponse> {
    return this.request({ ...options, uri, method: 'DELETE' });
  }

  /** Sends a request; bodies larger than a block go with Block1, and Block2 responses are assembled. */
  async request(request: ClientRequest): Promise<ClientResponse> {
    const { endpoint, peer, baseOptions } = await this.resolve(request.uri);
    const body: BlockSource | Uint8Array = typeof request.payload === 'string' ? encodeString(request.payload) : (request.payload ?? EMPTY_BYTES);
    // baseOptions is this request's own array: the rest is added to it.
    const options = baseOptions;
    if (request.options) options.push(...request.options);
    if (request.contentFormat !== undefined) options.push({ number: OptionNumber.ContentFormat, value: encodeUint(request.contentFormat) });
    if (request.accept !== undefined) options.push({ number: OptionNumber.Accept, value: encodeUint(request.accept) });
    const code = Method[request.method ?? 'GET'];
    const szx = request.blockSize === undefined ? 6 : szxFor(request.blockSize);
    const send = (opts: CoapOption[], payload: Uint8Array): Promise<CoapMessage> => {
      const outgoing: Parameters<CoapEndpoint['request']>[1] = { code, options: opts, payload, confirmable: request.confirmable ?? true };
      if (request.timeout !== undefined) outgoing.timeout = request.timeout;
      return exchangeOnce(endpoint, peer, outgoing);
    };

    let response: CoapMessage;
    const size = body instanceof Uint8Array ? body.length : body.size;
    if (size > blockSize(szx)) {
      response = await this.uploadBlockwise(send, options, body instanceof Uint8Array ? wholeBody(body) : body, szx);
    } else {
      const first = request.blockSize !== undefined && code === Method.GET ? withBlock(options, OptionNumber.Block2, { num: 0, more: false, szx }) : options;
      response = await send(first, body instanceof Uint8Array ? body : await body.read(0, size));
    }
    if (!hasMoreBlocks(response)) return toClientResponse(response);
    return this.completeBlock2(response, (num, blockSzx) => send(withBlock(options, OptionNumber.Block2, { num, more: false, szx: blockSzx }), EMPTY_BYTES));
  }

  /** Block1 (RFC 7959 §2.5): blocks in sequence, following the server's size preference. */
  private async uploadBlockwise(send: (o: CoapOption[], b: Uint8Array) => Promise<CoapMessage>, options: CoapOption[], payload: BlockSource, initialSzx: number): Promise<CoapMessage> {
    let szx = initialSzx;
    let offset = 0;
    for (;;) {
      const size = blockSize(szx);
      const num = offset / size;
      const end = Math.min(payload.size, offset + size);
      const more = end < payload.size;
      const opts = withBlock(options, OptionNumber.Block1, { num, more, szx });
      if (num === 0) opts.push({ number: OptionNumber.Size1, value: encodeUint(payload.size) });
      const chunk = await payload.read(offset, end - offset);
      if (chunk.length !== end - offset) throw new Error(`body source gave ${chunk.length} bytes at offset ${offset}, expected ${end - offset}`);
      const response = await send(opts, chunk);
      if (response.code === Code.RequestEntityTooLarge) {
        const limit = getUintOption(response, OptionNumber.Size1);
        throw new CoapClientError(`server refused the ${payload.size}-byte body (4.13${limit !== undefined ? `, limit ${limit} bytes` : ''})`, toClientResponse(response));
      }
      if (!more) return response;
      if (response.code !== Code.Continue) return response; // the server answered early (e.g. an error)
      const echoed = getUintOption(response, OptionNumber.Block1);
      const block = echoed === undefined ? undefined : decodeBlock(echoed);
      offset = end;
      // §2.3: a smaller SZX in the answer sets the size of the following blocks.
      if (block && block.szx < szx) szx = block.szx;
    }
  }

  /**
   * Streams a resource block by block (RFC 7959 §2.4) from byte `offset` — a download that
   * resumes where it stopped — without holding the body. `onBlock` gets each chunk in order
   * and returns false to stop. A changed ETag between blocks is an error (the representation
   * changed under us). Resolves with the total size when it is known.
   */
  async getBlocks(
    uri: string,
    options: { offset?: number; blockSize?: number; timeout?: number; signal?: AbortSignal; onBlock: (chunk: Uint8Array, offset: number) => boolean | Promise<boolean> },
  ): Promise<{ size: number | undefined }> {
    const { endpoint, peer, baseOptions } = await this.resolve(uri);
    let szx = szxFor(options.blockSize ?? 1024);
    let offset = options.offset ?? 0;
    let num = Math.floor(offset / blockSize(szx));
    let etag: Uint8Array | undefined;
    let size: number | undefined;
    for (;;) {
      if (options.signal?.aborted) return { size };
      const response = await exchangeOnce(endpoint, peer, {
        code: Method.GET,
        options: withBlock(baseOptions, OptionNumber.Block2, { num, more: false, szx }),
        confirmable: true,
        ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
      });
      if (codeClass(response.code) !== 2) throw new CoapClientError(`block ${num} of ${uri}: ${formatCode(response.code)}`, toClientResponse(response));
      const raw = getUintOption(response, OptionNumber.Block2);
      const block = raw === undefined ? undefined : decodeBlock(raw);
      const tag = getOption(response, OptionNumber.ETag);
      if (num > 0 && etag && (!tag || Buffer.compare(etag, tag) !== 0)) throw new CoapClientError('representation changed during the block-wise transfer (ETag differs)');
      etag ??= tag && Uint8Array.from(tag);
      size ??= getUintOption(response, OptionNumber.Size2);
      // Without Block2 the server sent the whole body at once.
      const start = block ? blockSize(block.szx) * block.num : 0;
      if (block && start > offset) throw new CoapClientError(`server answered block ${block.num} for offset ${offset}`);
      const chunk = response.payload.subarray(offset - start);
      if (chunk.length > 0 && !(await options.onBlock(Uint8Array.from(chunk), offset))) return { size };
      offset += chunk.length;
      if (!block || !block.more) return { size: size ?? offset };
      // Follow the server's block size if it chose a smaller one (§2.3).
      szx = Math.min(szx, block.szx);
      num = offset / blockSize(szx);
      if (!Number.isInteger(num)) throw new CoapClientError(`server blocks do not line up at offset ${offset}`);
    }
  }

  /** Block2 (RFC 7959 §2.4): fetches the remaining blocks and joins them. */
  private async completeBlock2(first: CoapMessage, fetchBlock: (num: number, szx: number) => Promise<CoapMessage>): Promise<ClientResponse> {
    const raw = getUintOption(first, OptionNumber.Block2);
    const block = raw === undefined ? undefined : decodeBlock(raw);
    if (!block || !block.more) return toClientResponse(first);
    // RFC 7959 §4: Size2 announces the whole body; refuse before fetching what would not be kept.
    const announced = getUintOption(first, OptionNumber.Size2);
    if (announced !== undefined && announced > this.maxBodySize) throw new CoapClientError(`response body of ${announced} bytes (Size2) exceeds ${this.maxBodySize} bytes`);
    const chunks: Uint8Array[] = [Uint8Array.from(first.payload)];
    let total = first.payload.length;
    const etag = getOption(first, OptionNumber.ETag);
    let szx = block.szx;
    let offset = blockSize(block.szx) * block.num + first.payload.length;
    for (;;) {
      const size = blockSize(szx);
      const response = await fetchBlock(offset / size, szx);
      if (codeClass(response.code) !== 2) throw new CoapClientError(`block at offset ${offset} failed with ${formatCode(response.code)}`, toClientResponse(response));
      const nextRaw = getUintOption(response, OptionNumber.Block2);
      const next = nextRaw === undefined ? undefined : decodeBlock(nextRaw);
      const nextEtag = getOption(response, OptionNumber.ETag);
      // §2.4: a changed ETag means the representation changed under us.
      if (etag && (!nextEtag || Buffer.compare(etag, nextEtag) !== 0)) throw new CoapClientError('representation changed during the block-wise transfer (ETag differs)');
      if (!next || blockSize(next.szx) * next.num !== offset) throw new CoapClientError(`server answered a block request with the wrong block (offset ${offset})`);
      chunks.push(Uint8Array.from(response.payload));
      total += response.payload.length;
      if (total > this.maxBodySize) throw new CoapClientError(`response body exceeds ${this.maxBodySize} bytes`);
      offset += response.payload.length;
      szx = next.szx;
      if (!next.more) {
        const joined: CoapMessage = { ...first, options: first.options.filter((o) => o.number !== OptionNumber.Block2), payload: Buffer.concat(chunks, total) };
        return toClientResponse(joined);
      }
    }
  }

  /**
   * Observes a resource (RFC 7641), with GET or — given `fetch` — with FETCH and a body
   * (RFC 8132 §2.4). Notifications are delivered fresh-only, in order.
   */
  async observe(uri: string, callbacks: ObserveCallbacks, options: Omit<ClientRequest, 'uri' | 'method' | 'payload'> & { fetch?: { payload: Uint8Array; contentFormat: number } } = {}): Promise<Observation> {
    const { endpoint, peer, baseOptions } = await this.resolve(uri);
    const opts = [...baseOptions, ...(options.options ?? [])];
    const method = options.fetch ? Method.FETCH : Method.GET;
    const body = options.fetch?.payload ?? EMPTY_BYTES;
    if (options.fetch) opts.push({ number: OptionNumber.ContentFormat, value: encodeUint(options.fetch.contentFormat) });
    if (options.accept !== undefined) opts.push({ number: OptionNumber.Accept, value: encodeUint(options.accept) });
    const registerOptions = [...opts, { number: OptionNumber.Observe, value: encodeUint(0) }];
    const clock = this.clock ?? endpoint.clock;
    let last: { sequence: number; time: number } | undefined;
    let firstResolve: ((r: ClientResponse) => void) | undefined;
    let firstReject: ((e: Error) => void) | undefined;
    const firstResponse = new Promise<ClientResponse>((resolve, reject) => {
      firstResolve = resolve;
      firstReject = reject;
    });
    let ended = false;
    let handle: RequestHandle | undefined = undefined;
    const end = (reason: string): void => {
      if (ended) return;
      ended = true;
      handle?.cancel();
      callbacks.onEnd?.(reason);
    };
    const fetchRest = (message: CoapMessage): Promise<ClientResponse> =>
      this.completeBlock2(message, (num, szx) => exchangeOnce(endpoint, peer, { code: method, options: withBlock(opts, OptionNumber.Block2, { num, more: false, szx }), payload: body, confirmable: true }));

    handle = endpoint.request(
      peer,
      { code: method, options: registerOptions, payload: body, confirmable: options.confirmable ?? true, keepOpen: true, ...(options.timeout !== undefined ? { timeout: options.timeout } : {}) },
      {
        onResponse: (message) => {
          const sequence = getUintOption(message, OptionNumber.Observe);
          const now = clock.now();
          if (firstResolve) {
            const resolve = firstResolve;
            firstResolve = undefined;
            if (sequence !== undefined) last = { sequence, time: now };
            fetchRest(message).then(resolve, (error: Error) => firstReject?.(error));
            if (sequence === undefined || codeClass(message.code) !== 2) end('the server did not accept the observation');
            return;
          }
          if (codeClass(message.code) !== 2 || sequence === undefined) {
            // RFC 7641 §3.2: a notification without Observe or with an error ends the relationship.
            const reason = `observation ended by the server (${formatCode(message.code)})`;
            // The final notification is delivered before the end is reported.
            fetchRest(message).then(
              (r) => {
                callbacks.onNotification(r);
                end(reason);
              },
              () => end(reason),
            );
            return;
          }
          // §3.4: drop notifications older than the newest one seen.
          if (last && !isFresh(last.sequence, last.time, sequence, now)) return;
          last = { sequence, time: now };
          fetchRest(message).then((r) => callbacks.onNotification(r), (error: Error) => end(`could not fetch the notification body: ${error.message}`));
        },
        onError: (error) => {
          if (firstReject) {
            firstReject(error);
            firstResolve = undefined;
            firstReject = undefined;
          }
          end(error.message);
        },
      },
    );
    const first = await firstResponse;
    const token = handle.token;
    return {
      first,
      established: first.observe !== undefined && codeClass(first.code) === 2,
      cancel: async () => {
        if (ended) return;
        ended = true;
        handle?.cancel();
        // Reusing the token with Observe=1 deregisters (§3.6).
        const cancelOptions = [...opts, { number: OptionNumber.Observe, value: encodeUint(1) }];
        // Bounded like the registration: a server that never answers must not hold the caller for EXCHANGE_LIFETIME.
        await exchangeOnce(endpoint, peer, { code: method, options: cancelOptions, payload: body, token, confirmable: true, ...(options.timeout !== undefined ? { timeout: options.timeout } : {}) }).catch(() => undefined);
        callbacks.onEnd?.('cancelled');
      },
    };
  }

  /** Sends a CoAP ping (empty CON) and resolves when the peer answers. */
  async ping(uri: string): Promise<void> {
    const { endpoint, peer } = await this.resolve(uri);
    await endpoint.ping(peer);
  }

  async close(): Promise<void> {
    const endpoints = await Promise.allSettled([...this.endpoints.values()]);
    this.endpoints.clear();
    await Promise.all(endpoints.flatMap((e) => (e.status === 'fulfilled' ? [e.value.close()] : [])));
  }

  private async resolve(uri: string | CoapDestination): Promise<{ endpoint: CoapEndpoint; peer: Peer; baseOptions: CoapOption[] }> {
    if (typeof uri !== 'string') return this.resolveDestination(uri);
    const parts = parseCoapUri(uri);
    if (parts.scheme !== 'coap' && parts.scheme !== 'coaps') throw new CoapClientError(`scheme ${parts.scheme} is not supported over datagrams`);
    const address = await peerAddress(parts.host);
    const family = isIP(address) === 6 ? 'IPv6' : 'IPv4';
    const endpoint = await this.endpointFor(parts.scheme, family);
    const peer = endpoint.transport.peer(address, parts.port);
    const baseOptions: CoapOption[] = [];
    // RFC 7252 §6.4: Uri-Host only for a registered name; Uri-Port is implied by the destination.
    if (!parts.hostIsLiteral) baseOptions.push({ number: OptionNumber.UriHost, value: encodeString(parts.host) });
    for (const segment of parts.uriPath) baseOptions.push({ number: OptionNumber.UriPath, value: encodeString(segment) });
    for (const q of parts.uriQuery) baseOptions.push({ number: OptionNumber.UriQuery, value: encodeString(q) });
    return { endpoint, peer, baseOptions };
  }

  private async resolveDestination(destination: CoapDestination): Promise<{ endpoint: CoapEndpoint; peer: Peer; baseOptions: CoapOption[] }> {
    const { scheme, address, port } = destination;
    if (scheme !== 'coap' && scheme !== 'coaps') throw new CoapClientError(`scheme ${String(scheme)} is not supported over datagrams`);
    const family = isIP(address);
    if (family === 0) throw new CoapUriError('RFC 7252 §6.5 step 2', `${JSON.stringify(address)} is not an IP address`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CoapUriError('RFC 7252 §6.5 step 4', `port ${port} is out of range 0-65535`);
    const baseOptions: CoapOption[] = [];
    // The values a URI could carry, as if one had been formatted and parsed.
    for (const segment of destination.uriPath ?? []) {
      checkUriPathValue(segment);
      baseOptions.push({ number: OptionNumber.UriPath, value: encodeString(segment) });
    }
    for (const q of destination.uriQuery ?? []) {
      checkUriQueryValue(q);
      baseOptions.push({ number: OptionNumber.UriQuery, value: encodeString(q) });
    }
    const endpoint = await this.endpointFor(scheme, family === 6 ? 'IPv6' : 'IPv4');
    return { endpoint, peer: endpoint.transport.peer(address, port), baseOptions };
  }

  private endpointFor(scheme: 'coap' | 'coaps', family: 'IPv4' | 'IPv6'): Promise<CoapEndpoint> {
    const shared = this.options.endpoint;
    if (shared) {
      if (shared.transport.scheme !== scheme) return Promise.reject(new CoapClientError(`this client sends over ${shared.transport.scheme}://, not ${scheme}://`));
      return Promise.resolve(shared);
    }
    const key = scheme + family;
    let endpoint = this.endpoints.get(key);
    if (!endpoint) {
      const factory = this.options.transportFactory ?? defaultTransportFactory;
      // A client remembers few incoming messages (responses to its own requests), so a small
      // deduplication store will do; the server-sized default would cost ~13 MB per client.
      endpoint = factory(scheme, family).then((transport) => new CoapEndpoint({ deduplicationCapacity: 1024, ...this.options, transport }));
      this.endpoints.set(key, endpoint);
    }
    return endpoint;
  }
}

const defaultTransportFactory: TransportFactory = async (scheme, family) => {
  if (scheme !== 'coap') throw new CoapClientError(`no transport for ${scheme}:// (DTLS is not configured)`);
  return UdpTransport.bind({ host: family === 'IPv6' ? '::' : '0.0.0.0', port: 0 });
};

function exchangeOnce(endpoint: CoapEndpoint, peer: Peer, request: Parameters<CoapEndpoint['request']>[1]): Promise<CoapMessage> {
  return new Promise((resolve, reject) => {
    endpoint.request(peer, request, { onResponse: resolve, onError: (error: CoapRequestError) => reject(error) });
  });
}

function withBlock(options: CoapOption[], number: number, block: BlockValue): CoapOption[] {
  return [...options.filter((o) => o.number !== number), { number, value: encodeUint(encodeBlock(block)) }];
}

export function toClientResponse(message: CoapMessage): ClientResponse {
  const payload = Uint8Array.from(message.payload);
  return {
    code: message.code,
    codeText: formatCode(message.code),
    options: message.options.map((o) => ({ number: o.number, value: Uint8Array.from(o.value) })),
    payload,
    contentFormat: getUintOption(message, OptionNumber.ContentFormat),
    observe: getUintOption(message, OptionNumber.Observe),
    text: () => decodeString(payload),
  };
}

export { CoapRequestError };
