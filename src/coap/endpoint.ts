import { randomBytes } from 'node:crypto';
import type { Clock, Timer } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import { printable } from '../util/printable.js';
import { decode, encode, encodeEmpty, CoapFormatError } from './codec.js';
import { Code, EMPTY, MessageType, Method, codeClass, isRequestCode, methodName } from './codes.js';
import { DeduplicationStore } from './dedup.js';
import type { DedupTicket } from './dedup.js';
import { EMPTY_BYTES } from './message.js';
import type { CoapMessage, CoapOption } from './message.js';
import { checkOptions, encodeString, optionName } from './options.js';
import { defaultTransmissionParameters, derivedTimes } from './params.js';
import type { TransmissionParameters } from './params.js';
import type { DatagramTransport, Peer } from './transport.js';

/** A failure of a request at the message layer. */
export class CoapRequestError extends Error {
  constructor(
    message: string,
    readonly reason: 'timeout' | 'reset' | 'rejected' | 'cancelled' | 'closed' | 'transport',
  ) {
    super(message);
    this.name = 'CoapRequestError';
  }
}

/** What a server handler answers with; type, message ID and token are the endpoint's job. */
export interface ResponseInit {
  code: number;
  options?: CoapOption[];
  payload?: Uint8Array;
}

/** An incoming request and the means to answer it exactly once. */
export interface Exchange {
  readonly request: CoapMessage;
  readonly peer: Peer;
  /** Sends the response: piggybacked if still possible, otherwise as a separate response. */
  respond(response: ResponseInit): void;
  /** Whether respond() was called. */
  readonly responded: boolean;
}

export type RequestHandler = (exchange: Exchange) => void;

export interface OutgoingRequest {
  code: number;
  options: CoapOption[];
  payload?: Uint8Array;
  confirmable?: boolean;
  /** Overall time to wait for a response, in ms (default MAX_TRANSMIT_WAIT). */
  timeout?: number;
  /** Keep listening for further responses with this token (observe). */
  keepOpen?: boolean;
  /** Reuse a token (e.g. to re-register or cancel an observation). */
  token?: Uint8Array;
}

export interface ResponseListener {
  onResponse(response: CoapMessage): void;
  onError(error: CoapRequestError): void;
}

export interface RequestHandle {
  readonly token: Uint8Array;
  /** Stops retransmission and listening. No error is delivered. */
  cancel(): void;
}

/** Callbacks for a message sent with sendMessage (notifications, separate responses). */
export interface DeliveryCallbacks {
  onAck?(): void;
  onReset?(): void;
  onTimeout?(): void;
}

export interface EndpointOptions {
  transport: DatagramTransport;
  clock?: Clock;
  params?: Partial<TransmissionParameters>;
  /** Uniform [0,1) source for back-off randomisation (tests make it deterministic). */
  random?: () => number;
  /** Most (peer, message ID) pairs remembered for deduplication; the oldest go first (default 100,000). */
  deduplicationCapacity?: number;
  /** Most (peer, message ID) pairs remembered for one peer; its oldest go first (default 1,000). */
  deduplicationCapacityPerPeer?: number;
  /** Replies up to this size are kept in the deduplication store's arena (default 96 bytes). */
  deduplicationInlineReply?: number;
  /** Most bytes of larger replies kept for deduplication; beyond, the oldest records go (default 16 MiB). */
  deduplicationLargeReplyBudget?: number;
  /** How long a handler may take before the request is acknowledged with an empty ACK (ms). */
  separateResponseDelay?: number;
}

export interface EndpointStats {
  received: number;
  sent: number;
  retransmitted: number;
  duplicates: number;
  formatErrors: number;
  rejected: number;
}

interface PeerState {
  peer: Peer;
  /** Message ID → deduplication slot (RFC 7252 §4.5). */
  received: Map<number, number>;
  /** Outstanding requests to this peer (NSTART, §4.7). */
  active: number;
  queue: PendingRequest[];
}

interface PendingRequest {
  peer: Peer;
  message: CoapMessage;
  tokenKey: string;
  listener: ResponseListener;
  keepOpen: boolean;
  timeout: number;
  started: boolean;
  /** Counted against NSTART until the first response or failure. */
  counted: boolean;
  timer: Timer | undefined;
  transmission: Transmission | undefined;
}

/** A CON awaiting its ACK, retransmitted with exponential back-off (§4.2). */
interface Transmission {
  key: string;
  peer: Peer;
  bytes: Uint8Array;
  retransmissions: number;
  timeout: number;
  timer: Timer | undefined;
  onAck(ack: CoapMessage): void;
  onReset(): void;
  onGiveUp(): void;
}

const TOKEN_POOL_SIZE = 8 * 1024;

/**
 * Random bytes for tokens, shared by every endpoint of the process: one 8 KiB draw serves 1,024
 * tokens. (A pool per endpoint cost each simulated device, which sends a handful of requests, an
 * 8 KiB allocation and a getrandom call of its own.) Each byte is handed out once.
 */
let tokenPool = Buffer.alloc(0);
let tokenPoolPos = 0;

function newToken(): Uint8Array {
  if (tokenPoolPos + 8 > tokenPool.length) {
    tokenPool = randomBytes(TOKEN_POOL_SIZE);
    tokenPoolPos = 0;
  }
  const token = Uint8Array.prototype.slice.call(tokenPool, tokenPoolPos, tokenPoolPos + 8);
  tokenPoolPos += 8;
  return token;
}

const BACKGROUND = { background: true } as const;

/**
 * The CoAP message layer (RFC 7252 §4): CON/NON/ACK/RST, retransmission, deduplication,
 * token matching, piggybacked and separate responses, NSTART, pings. It is sans-IO:
 * bytes come and go through the injected transport and time through the injected clock.
 */
export class CoapEndpoint {
  readonly transport: DatagramTransport;
  readonly params: Readonly<TransmissionParameters>;
  readonly stats: EndpointStats = { received: 0, sent: 0, retransmitted: 0, duplicates: 0, formatErrors: 0, rejected: 0 };
  readonly clock: Clock;
  private readonly random: () => number;
  private readonly exchangeLifetime: number;
  private readonly maxTransmitWait: number;
  private readonly separateResponseDelay: number;
  private readonly peers = new Map<string, PeerState>();
  private readonly dedup: DeduplicationStore<PeerState>;
  private readonly inlineReplySize: number;
  private sweepTimer: Timer | undefined;
  private readonly transmissions = new Map<string, Transmission>();
  private readonly pending = new Map<string, PendingRequest>();
  private nextMessageId: number;
  private requestHandler: RequestHandler | undefined;
  private resetListener: ((peer: Peer, messageId: number) => void) | undefined;
  private closed = false;

  constructor(options: EndpointOptions) {
    this.transport = options.transport;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.params = { ...defaultTransmissionParameters, ...options.params };
    const times = derivedTimes(this.params);
    this.exchangeLifetime = times.exchangeLifetime;
    this.maxTransmitWait = times.maxTransmitWait;
    this.inlineReplySize = options.deduplicationInlineReply ?? 96;
    this.dedup = new DeduplicationStore<PeerState>(options.deduplicationCapacity ?? 100_000, this.inlineReplySize, (state) => this.forgetIdlePeer(state), {
      perPeerCapacity: options.deduplicationCapacityPerPeer ?? 1000,
      largeReplyBudget: options.deduplicationLargeReplyBudget ?? 16 * 1024 * 1024,
    });
    this.separateResponseDelay = options.separateResponseDelay ?? 500;
    this.nextMessageId = Math.floor(this.random() * 0x10000);
    this.transport.setReceiver((data, peer) => this.receive(data, peer));
    this.transport.setErrorListener((peer, error) => this.failPeer(peer, error));
  }

  /** Sets the handler of incoming requests. Without one, requests get 4.04. */
  setRequestHandler(handler: RequestHandler): void {
    this.requestHandler = handler;
  }

  /** Called for an RST that matches no CON of ours (e.g. the answer to a NON notification). */
  setResetListener(listener: (peer: Peer, messageId: number) => void): void {
    this.resetListener = listener;
  }

  newMessageId(): number {
    const id = this.nextMessageId;
    this.nextMessageId = (id + 1) & 0xffff;
    return id;
  }

  /** A fresh random 8-byte token (random tokens resist off-path spoofing, RFC 9175 §4.2). */
  newToken(): Uint8Array {
    return newToken();
  }

  // ---------------------------------------------------------------- receiving

  /** Entry point for every datagram from the transport. Never throws. */
  receive(data: Uint8Array, peer: Peer): void {
    if (this.closed) return;
    this.stats.received++;
    let msg: CoapMessage;
    try {
      msg = decode(data);
    } catch (error) {
      this.stats.formatErrors++;
      // §4.2: a CON with a format error is rejected with an RST; anything else is ignored (§4.3).
      if (error instanceof CoapFormatError && error.header?.type === MessageType.CON) {
        this.sendBytes(encodeEmpty(MessageType.RST, error.header.messageId), peer);
      }
      return;
    }
    try {
      switch (msg.type) {
        case MessageType.CON:
        case MessageType.NON:
          this.receiveConOrNon(msg, peer);
          break;
        case MessageType.ACK:
          this.receiveAck(msg, peer);
          break;
        case MessageType.RST:
          this.receiveReset(msg, peer);
          break;
      }
    } catch (error) {
      // A handler bug must not take the endpoint down; the peer sees 5.00 if it can.
      this.stats.rejected++;
      process.emitWarning(`CoAP endpoint: error while handling a message: ${printable(String(error))}`);
    }
  }

  private peerState(peer: Peer): PeerState {
    let state = this.peers.get(peer.key);
    if (!state) {
      state = { peer, received: new Map(), active: 0, queue: [] };
      this.peers.set(peer.key, state);
    }
    return state;
  }

  private receiveConOrNon(msg: CoapMessage, peer: Peer): void {
    const confirmable = msg.type === MessageType.CON;
    if (msg.code === EMPTY) {
      // §4.3: an empty CON is a ping and is answered with RST; an empty NON is ignored.
      if (confirmable) this.sendBytes(encodeEmpty(MessageType.RST, msg.messageId), peer);
      return;
    }
    const cls = codeClass(msg.code);
    if (cls === 1 || cls > 5) {
      // Reserved classes: no defined meaning, so the message lacks context (§4.2, §4.3).
      this.stats.rejected++;
      if (confirmable) this.sendBytes(encodeEmpty(MessageType.RST, msg.messageId), peer);
      return;
    }
    const state = this.peerState(peer);
    const now = this.clock.now();
    const seen = this.dedup.find(state, msg.messageId, now);
    if (seen >= 0) {
      // §4.5: a duplicate is acknowledged the same way again and not processed twice.
      this.stats.duplicates++;
      const reply = confirmable ? this.dedup.reply(seen) : undefined;
      if (reply) this.sendBytes(reply, peer);
      return;
    }
    const ticket = this.dedup.add(state, msg.messageId, now + this.exchangeLifetime);
    this.sweepTimer ??= this.clock.setTimer(1000, () => this.sweep(), BACKGROUND);
    if (cls === 0) this.receiveRequest(msg, peer, ticket);
    else this.receiveSeparateResponse(msg, peer, ticket);
  }

  private receiveRequest(msg: CoapMessage, peer: Peer, ticket: DedupTicket): void {
    const confirmable = msg.type === MessageType.CON;
    const problem = checkOptions(msg);
    if (problem) {
      this.stats.rejected++;
      // §5.4.1: critical option not understood: 4.02 for a CON request; a NON is rejected (ignored).
      if (confirmable) {
        const text = `unrecognized critical option ${optionName(problem.option.number)} (${problem.reason})`;
        this.replyPiggybacked(msg, peer, ticket, { code: Code.BadOption, payload: encodeString(text) });
      }
      return;
    }
    if (!isRequestCode(msg.code) || methodName(msg.code) === undefined) {
      // §5.8: unknown method → 4.05.
      if (confirmable) this.replyPiggybacked(msg, peer, ticket, { code: Code.MethodNotAllowed });
      return;
    }
    const exchange = new ServerExchange(this, msg, peer, ticket);
    const handler = this.requestHandler;
    if (!handler) {
      exchange.respond({ code: Code.NotFound });
      return;
    }
    try {
      handler(exchange);
    } catch (error) {
      if (!exchange.responded) exchange.respond({ code: Code.InternalServerError, payload: encodeString('internal error') });
      throw error;
    }
    if (!exchange.responded && confirmable) exchange.armSeparateAck(this.separateResponseDelay);
  }

  /** A response in a CON or NON (separate response or notification, §5.2.2). */
  private receiveSeparateResponse(msg: CoapMessage, peer: Peer, ticket: DedupTicket): void {
    const confirmable = msg.type === MessageType.CON;
    const pending = this.pending.get(tokenKey(peer, msg.token));
    const problem = checkOptions(msg);
    if (!pending || problem) {
      // §4.2/§4.3: no context (or §5.4.1: a critical option we cannot process) → reject.
      // An RST also tells an observe server that nobody listens any more (RFC 7641 §3.6).
      this.stats.rejected++;
      const rst = encodeEmpty(MessageType.RST, msg.messageId);
      this.dedup.setReply(ticket, rst);
      this.sendBytes(rst, peer);
      if (pending && problem) {
        this.finishPending(pending);
        pending.listener.onError(new CoapRequestError(`response rejected: unrecognized critical option ${optionName(problem.option.number)}`, 'rejected'));
      }
      return;
    }
    if (confirmable) {
      const ack = encodeEmpty(MessageType.ACK, msg.messageId);
      this.dedup.setReply(ticket, ack);
      this.sendBytes(ack, peer);
    }
    this.deliverResponse(pending, msg);
  }

  private receiveAck(msg: CoapMessage, peer: Peer): void {
    const transmission = this.transmissions.get(transmissionKey(peer, msg.messageId));
    if (!transmission) return; // §4.2: an unexpected ACK is silently ignored.
    this.endTransmission(transmission);
    transmission.onAck(msg);
  }

  private receiveReset(msg: CoapMessage, peer: Peer): void {
    const transmission = this.transmissions.get(transmissionKey(peer, msg.messageId));
    if (transmission) {
      this.endTransmission(transmission);
      transmission.onReset();
      return;
    }
    this.resetListener?.(peer, msg.messageId);
  }

  private deliverResponse(pending: PendingRequest, response: CoapMessage): void {
    if (pending.transmission) this.endTransmission(pending.transmission);
    if (pending.counted) this.releaseSlot(pending);
    if (!pending.keepOpen) {
      this.finishPending(pending);
    } else if (pending.timer) {
      // Answered: the timeout bounded the wait for a response, not how long an observation lasts.
      pending.timer.cancel();
      pending.timer = undefined;
    }
    pending.listener.onResponse(response);
  }

  // ---------------------------------------------------------------- deduplication

  private forgetIdlePeer(state: PeerState): void {
    // Only this state: a newer one for the same peer may have taken its place.
    if (state.received.size === 0 && state.active === 0 && state.queue.length === 0 && this.peers.get(state.peer.key) === state) this.peers.delete(state.peer.key);
  }

  private sweep(): void {
    this.sweepTimer = undefined;
    if (this.dedup.sweep(this.clock.now())) this.sweepTimer = this.clock.setTimer(1000, () => this.sweep(), BACKGROUND);
  }

  /** Number of remembered (peer, message ID) pairs. */
  get deduplicationSize(): number {
    return this.dedup.size;
  }

  /** Bytes of replies over the inline size kept for deduplication. */
  get deduplicationLargeReplyBytes(): number {
    return this.dedup.largeReplyBytes;
  }

  /** Number of peers the endpoint keeps state for (remembered messages, requests in progress). */
  get peerCount(): number {
    return this.peers.size;
  }

  // ---------------------------------------------------------------- responding

  /** Sends a response piggybacked on the ACK of a CON request, or as NON to a NON request. */
  replyPiggybacked(request: CoapMessage, peer: Peer, ticket: DedupTicket, response: ResponseInit): void {
    const confirmable = request.type === MessageType.CON;
    const bytes = encode({
      type: confirmable ? MessageType.ACK : MessageType.NON,
      code: response.code,
      messageId: confirmable ? request.messageId : this.newMessageId(),
      token: request.token,
      options: response.options ?? [],
      payload: response.payload ?? EMPTY_BYTES,
    });
    if (confirmable) {
      // A large answer to a safe request is made again for a duplicate rather than kept:
      // block-wise downloads to many devices would otherwise hold ~1 KiB per block for 247 s.
      if (bytes.length > this.inlineReplySize && (request.code === Method.GET || request.code === Method.FETCH)) this.dedup.release(ticket);
      else this.dedup.setReply(ticket, bytes);
    }
    this.sendBytes(bytes, peer);
  }

  /** Acknowledges a CON request now and promises a separate response (§5.2.2). */
  sendEmptyAck(request: CoapMessage, peer: Peer, ticket: DedupTicket): void {
    const ack = encodeEmpty(MessageType.ACK, request.messageId);
    this.dedup.setReply(ticket, ack);
    this.sendBytes(ack, peer);
  }

  /**
   * Sends a message that is not a request: a separate response or a notification.
   * A CON is retransmitted until acknowledged; callbacks report the outcome.
   * Returns the message ID used.
   */
  sendMessage(message: Omit<CoapMessage, 'messageId'>, peer: Peer, callbacks: DeliveryCallbacks = {}): number {
    const messageId = this.newMessageId();
    const bytes = encode({ ...message, messageId });
    if (message.type === MessageType.CON) {
      this.startTransmission(peer, messageId, bytes, {
        onAck: () => callbacks.onAck?.(),
        onReset: () => callbacks.onReset?.(),
        onGiveUp: () => callbacks.onTimeout?.(),
      });
    } else {
      this.sendBytes(bytes, peer);
    }
    return messageId;
  }

  // ---------------------------------------------------------------- requesting

  /** Sends a request and reports its response(s) to the listener. */
  request(peer: Peer, request: OutgoingRequest, listener: ResponseListener): RequestHandle {
    if (this.closed) throw new CoapRequestError('endpoint is closed', 'closed');
    const token = request.token ?? this.newToken();
    const message: CoapMessage = {
      type: request.confirmable === false ? MessageType.NON : MessageType.CON,
      code: request.code,
      messageId: 0,
      token,
      options: request.options,
      payload: request.payload ?? EMPTY_BYTES,
    };
    const key = tokenKey(peer, token);
    // Re-using a token (observe re-registration/cancel) replaces the older request.
    const older = this.pending.get(key);
    if (older) this.abandon(older);
    const pending: PendingRequest = {
      peer,
      message,
      tokenKey: key,
      listener,
      keepOpen: request.keepOpen ?? false,
      timeout: request.timeout ?? this.maxTransmitWait,
      started: false,
      counted: false,
      timer: undefined,
      transmission: undefined,
    };
    this.pending.set(key, pending);
    const state = this.peerState(peer);
    if (state.active < this.params.nstart) this.startRequest(pending, state);
    else state.queue.push(pending);
    return { token, cancel: () => this.abandon(pending) };
  }

  /** Sends a CoAP ping (empty CON, §4.3) and resolves when the peer answers with RST. */
  ping(peer: Peer): Promise<void> {
    return new Promise((resolve, reject) => {
      const messageId = this.newMessageId();
      this.startTransmission(peer, messageId, encodeEmpty(MessageType.CON, messageId), {
        onAck: () => resolve(),
        onReset: () => resolve(),
        onGiveUp: () => reject(new CoapRequestError('ping timed out', 'timeout')),
      });
    });
  }

  private startRequest(pending: PendingRequest, state: PeerState): void {
    pending.started = true;
    pending.counted = true;
    state.active++;
    const messageId = this.newMessageId();
    pending.message.messageId = messageId;
    const bytes = encode(pending.message);
    pending.timer = this.clock.setTimer(pending.timeout, () => {
      pending.timer = undefined;
      this.failPending(pending, new CoapRequestError(`no response within ${Math.round(pending.timeout)} ms`, 'timeout'));
    });
    if (pending.message.type === MessageType.CON) {
      pending.transmission = this.startTransmission(pending.peer, messageId, bytes, {
        onAck: (ack) => {
          pending.transmission = undefined;
          if (ack.code !== EMPTY) {
            // Piggybacked response (§5.2.1): must carry our token.
            if (equalBytes(ack.token, pending.message.token)) {
              const problem = checkOptions(ack);
              if (problem) {
                this.failPending(pending, new CoapRequestError(`response rejected: unrecognized critical option ${optionName(problem.option.number)}`, 'rejected'));
              } else {
                this.deliverResponse(pending, ack);
              }
            }
          }
        },
        onReset: () => this.failPending(pending, new CoapRequestError('request was reset by the peer', 'reset')),
        onGiveUp: () => this.failPending(pending, new CoapRequestError(`no acknowledgement after ${this.params.maxRetransmit} retransmissions`, 'timeout')),
      });
    } else {
      this.sendBytes(bytes, pending.peer);
    }
  }

  private startTransmission(peer: Peer, messageId: number, bytes: Uint8Array, handlers: Pick<Transmission, 'onAck' | 'onReset' | 'onGiveUp'>): Transmission {
    const p = this.params;
    const transmission: Transmission = {
      key: transmissionKey(peer, messageId),
      peer,
      bytes,
      retransmissions: 0,
      // §4.2: initial timeout random between ACK_TIMEOUT and ACK_TIMEOUT * ACK_RANDOM_FACTOR.
      timeout: p.ackTimeout * (1 + this.random() * (p.ackRandomFactor - 1)),
      timer: undefined,
      ...handlers,
    };
    this.transmissions.set(transmission.key, transmission);
    this.sendBytes(bytes, peer);
    this.armRetransmission(transmission);
    return transmission;
  }

  private armRetransmission(t: Transmission): void {
    t.timer = this.clock.setTimer(t.timeout, () => {
      t.timer = undefined;
      if (t.retransmissions >= this.params.maxRetransmit) {
        this.endTransmission(t);
        t.onGiveUp();
        return;
      }
      t.retransmissions++;
      t.timeout *= 2;
      this.stats.retransmitted++;
      this.sendBytes(t.bytes, t.peer);
      this.armRetransmission(t);
    });
  }

  private endTransmission(t: Transmission): void {
    t.timer?.cancel();
    t.timer = undefined;
    this.transmissions.delete(t.key);
  }

  private releaseSlot(pending: PendingRequest): void {
    pending.counted = false;
    const state = this.peers.get(pending.peer.key);
    if (!state) return;
    state.active--;
    while (state.active < this.params.nstart && state.queue.length > 0) {
      const next = state.queue.shift()!;
      this.startRequest(next, state);
    }
    this.forgetIdlePeer(state);
  }

  private finishPending(pending: PendingRequest): void {
    pending.timer?.cancel();
    pending.timer = undefined;
    if (pending.transmission) this.endTransmission(pending.transmission);
    pending.transmission = undefined;
    if (this.pending.get(pending.tokenKey) === pending) this.pending.delete(pending.tokenKey);
    if (pending.counted) this.releaseSlot(pending);
    if (!pending.started) {
      const state = this.peers.get(pending.peer.key);
      if (state) state.queue = state.queue.filter((p) => p !== pending);
    }
  }

  private failPending(pending: PendingRequest, error: CoapRequestError): void {
    if (this.pending.get(pending.tokenKey) !== pending) return;
    this.finishPending(pending);
    pending.listener.onError(error);
  }

  private abandon(pending: PendingRequest): void {
    this.finishPending(pending);
  }

  private failPeer(peer: Peer, error: Error): void {
    for (const pending of [...this.pending.values()]) {
      if (pending.peer.key === peer.key) this.failPending(pending, new CoapRequestError(error.message, 'transport'));
    }
  }

  // ---------------------------------------------------------------- sending and closing

  sendBytes(bytes: Uint8Array, peer: Peer): void {
    if (this.closed) return;
    this.stats.sent++;
    this.transport.send(bytes, peer);
  }

  get outstandingRequests(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const pending of [...this.pending.values()]) this.failPending(pending, new CoapRequestError('endpoint closed', 'closed'));
    for (const t of [...this.transmissions.values()]) this.endTransmission(t);
    this.sweepTimer?.cancel();
    this.closed = true;
    await this.transport.close();
  }
}

/** The server side of one incoming request. */
class ServerExchange implements Exchange {
  responded = false;
  private acked = false;
  private ackTimer: Timer | undefined;

  constructor(
    private readonly endpoint: CoapEndpoint,
    readonly request: CoapMessage,
    readonly peer: Peer,
    private readonly ticket: DedupTicket,
  ) {}

  respond(response: ResponseInit): void {
    if (this.responded) throw new Error('exchange already answered');
    this.responded = true;
    this.ackTimer?.cancel();
    if (!this.acked) {
      this.endpoint.replyPiggybacked(this.request, this.peer, this.ticket, response);
      return;
    }
    // The request was acknowledged already: a separate CON response (§5.2.2).
    this.endpoint.sendMessage(
      { type: MessageType.CON, code: response.code, token: this.request.token, options: response.options ?? [], payload: response.payload ?? EMPTY_BYTES },
      this.peer,
    );
  }

  armSeparateAck(delay: number): void {
    this.ackTimer = this.endpoint.clock.setTimer(delay, () => {
      this.ackTimer = undefined;
      if (this.responded) return;
      this.acked = true;
      this.endpoint.sendEmptyAck(this.request, this.peer, this.ticket);
    });
  }
}

function tokenKey(peer: Peer, token: Uint8Array): string {
  return peer.key + '#' + Buffer.from(token.buffer, token.byteOffset, token.byteLength).toString('hex');
}

function transmissionKey(peer: Peer, messageId: number): string {
  return peer.key + '#' + messageId;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
