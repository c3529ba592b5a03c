/**
 * The server side in front of many DtlsConnections, still sans-IO: demultiplexes datagrams by
 * peer key and runs the stateless cookie exchange (RFC 6347 §4.2.1) so that no per-client state
 * exists until a ClientHello returns a valid cookie.
 */
import type { Clock } from '../util/clock.js';
import { ContentType, DTLS_1_0, HandshakeType } from './constants.js';
import { DtlsConnection, type DtlsError, type DtlsServerOptions, type SessionInfo } from './connection.js';
import { CookieFactory } from './cookie.js';
import { decodeFragments, encodeFragment } from './fragment.js';
import { decodeClientHello, encodeHelloVerifyRequest, type ClientHello } from './messages.js';
import { decodeRecords, encodeRecord, type DtlsRecord } from './record.js';
import { SessionCache } from './session.js';

export interface DtlsServerEndpointOptions extends DtlsServerOptions {
  /** Rotation period of the cookie secret. Default 5 minutes. */
  cookieRotationMs?: number;
  /** Upper bound on simultaneous associations (handshaking or established). Default 10 000. */
  maxConnections?: number;
  /** Offer session resumption (RFC 5246 §7.3) with an in-memory cache unless `sessionCache` is given. Default true. */
  resumption?: boolean;
}

export interface DtlsServerEndpointEvents {
  send(peerKey: string, datagram: Uint8Array): void;
  data?(peerKey: string, plaintext: Uint8Array, session: SessionInfo): void;
  connected?(peerKey: string, session: SessionInfo): void;
  closed?(peerKey: string, error?: DtlsError): void;
}

interface Initial {
  record: DtlsRecord;
  messageSeq: number;
  hello: ClientHello;
}

/** Parses the first record of a datagram as an unfragmented epoch-0 ClientHello; undefined otherwise. */
export function parseInitialClientHello(datagram: Uint8Array): Initial | undefined {
  try {
    const { records } = decodeRecords(datagram);
    const record = records[0];
    if (!record || record.type !== ContentType.handshake || record.epoch !== 0) return undefined;
    if ((record.version & 0xff00) !== 0xfe00) return undefined;
    const frags = decodeFragments(record.fragment);
    const f = frags[0];
    if (!f || f.msgType !== HandshakeType.client_hello || f.fragmentOffset !== 0 || f.body.length !== f.length) return undefined;
    return { record, messageSeq: f.messageSeq, hello: decodeClientHello(f.body) };
  } catch {
    return undefined;
  }
}

export class DtlsServerEndpoint {
  private readonly connections = new Map<string, DtlsConnection>();
  private readonly cookies: CookieFactory;
  private readonly clock: Clock;
  private readonly options: DtlsServerEndpointOptions;

  constructor(
    options: DtlsServerEndpointOptions,
    private readonly events: DtlsServerEndpointEvents,
  ) {
    this.clock = options.clock;
    const sessionCache = options.resumption === false ? undefined : (options.sessionCache ?? new SessionCache(options.clock));
    this.options = { ...options, sessionCache };
    this.cookies = new CookieFactory(this.clock, options.cookieRotationMs, options.random);
  }

  get size(): number {
    return this.connections.size;
  }

  connection(peerKey: string): DtlsConnection | undefined {
    return this.connections.get(peerKey);
  }

  /** Rotates the cookie secret now. */
  rotateCookieSecret(): void {
    this.cookies.rotate();
  }

  /** Feeds one datagram from `peerKey`. Never throws. */
  handleDatagram(peerKey: string, datagram: Uint8Array): void {
    const existing = this.connections.get(peerKey);
    if (existing && !existing.isClosed) {
      const initial = datagram[0] === ContentType.handshake ? parseInitialClientHello(datagram) : undefined;
      const cr = existing.clientRandom;
      // A ClientHello with a new random from a known address is a new association (client restart):
      // it must pass the cookie exchange before the old association is replaced (§4.2.8).
      if (!initial || (cr && Buffer.compare(Buffer.from(cr), Buffer.from(initial.hello.random)) === 0)) {
        existing.handleDatagram(datagram);
        return;
      }
      this.statelessHello(peerKey, datagram, initial);
      return;
    }
    const initial = parseInitialClientHello(datagram);
    if (!initial) return; // nothing but a ClientHello may create state
    this.statelessHello(peerKey, datagram, initial);
  }

  private statelessHello(peerKey: string, datagram: Uint8Array, initial: Initial): void {
    if (!this.cookies.verify(peerKey, initial.hello)) {
      this.events.send(peerKey, this.helloVerifyRequest(peerKey, initial));
      return;
    }
    const old = this.connections.get(peerKey);
    if (!old && this.connections.size >= (this.options.maxConnections ?? 10_000)) return;
    if (old) {
      this.connections.delete(peerKey);
      // The client restarted and lost its keys; a close_notify would only confuse its new handshake.
      old.abandon();
    }
    const conn = DtlsConnection.server(this.options, {
      send: (d) => this.events.send(peerKey, d),
      data: (d) => {
        const s = conn.session;
        if (s) this.events.data?.(peerKey, d, s);
      },
      connected: (s) => this.events.connected?.(peerKey, s),
      closed: (e) => {
        if (this.connections.get(peerKey) === conn) this.connections.delete(peerKey);
        this.events.closed?.(peerKey, e);
      },
    });
    this.connections.set(peerKey, conn);
    conn.handleDatagram(datagram);
  }

  private helloVerifyRequest(peerKey: string, initial: Initial): Uint8Array {
    const cookie = this.cookies.generate(peerKey, initial.hello);
    const body = encodeHelloVerifyRequest({ version: DTLS_1_0, cookie });
    const fragment = encodeFragment({ msgType: HandshakeType.hello_verify_request, length: body.length, messageSeq: initial.messageSeq, fragmentOffset: 0, body });
    // §4.2.1: the HelloVerifyRequest reuses the ClientHello's record sequence number; DTLS 1.0 version.
    return encodeRecord({ type: ContentType.handshake, version: DTLS_1_0, epoch: 0, sequence: initial.record.sequence, fragment });
  }

  /** Sends application data to an established (or handshaking: queued) association. */
  send(peerKey: string, data: Uint8Array): boolean {
    return this.connections.get(peerKey)?.send(data) ?? false;
  }

  /** Closes one association (close_notify) or all of them. */
  close(peerKey?: string): void {
    if (peerKey !== undefined) {
      this.connections.get(peerKey)?.close();
      return;
    }
    for (const c of [...this.connections.values()]) c.close();
    this.connections.clear();
  }
}

