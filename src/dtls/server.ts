/**
 * The server side in front of many DtlsConnections, still sans-IO: demultiplexes datagrams by
 * peer key and runs the stateless cookie exchange (RFC 6347 §4.2.1) so that no per-client state
 * exists until a ClientHello returns a valid cookie.
 */
import { randomBytesPooled } from './bytes.js';
import type { Clock } from '../util/clock.js';
import { AlertDescription, AlertLevel, ContentType, DTLS_1_0, DTLS_1_2, ExtensionType, HANDSHAKE_HEADER_LENGTH, HandshakeType, RECORD_HEADER_LENGTH } from './constants.js';
import { DtlsConnection, type DtlsConnectionEvents, type DtlsError, type DtlsServerOptions, type SessionInfo } from './connection.js';
import { CookieFactory } from './cookie.js';
import { decodeFragments, encodeFragment } from './fragment.js';
import { decodeClientHello, encodeAlert, encodeHelloVerifyRequest, findExtension, type ClientHello } from './messages.js';
import { decodeRecords, encodeRecord, type DtlsRecord } from './record.js';
import { SessionCache, type ResumableSession } from './session.js';

export interface DtlsServerEndpointOptions extends DtlsServerOptions {
  /** Rotation period of the cookie secret. Default 5 minutes. */
  cookieRotationMs?: number;
  /**
   * Upper bound on simultaneous associations (handshaking or established). Default 10 000. When it
   * is reached, a new client first displaces associations idle for longer than `idleTimeoutMs`, then
   * the least recently active established one.
   */
  maxConnections?: number;
  /** An association without authenticated traffic for this long may be displaced. Default 24 h. */
  idleTimeoutMs?: number;
  /** Offer session resumption (RFC 5246 §7.3) with an in-memory cache unless `sessionCache` is given. Default true. */
  resumption?: boolean;
  /**
   * Give clients that ask for it a connection ID (RFC 9146), so an association survives a change of
   * the client's address (NAT rebinding). Default true. Overrides `connectionId` of the server options.
   */
  connectionIds?: boolean;
  /**
   * Answer protected records of an association this endpoint does not know (the client's peer
   * state outlived ours: we restarted) with a plaintext fatal alert, so the client handshakes
   * again instead of retransmitting into the void. At most one per address per second and
   * UNKNOWN_ASSOCIATION_ALERTS_PER_SECOND in all; never in answer to an alert. Default true.
   */
  alertUnknownAssociations?: boolean;
  /**
   * Upper bound on associations still handshaking (a cookie-verified ClientHello, no Finished yet),
   * in all and per IP address. Past it a new ClientHello is dropped (the client retransmits it), so
   * half-open handshakes hold bounded memory and never displace established associations.
   * Defaults 2,000 and 256: a NAT (or a simulator) may hide many devices behind one address, and a
   * fleet coming back after a server restart handshakes at once. About 4 KiB per open handshake.
   */
  maxHandshakes?: number;
  maxHandshakesPerAddress?: number;
}

/** The address part of a peer key ("address|port"). */
function addressOf(peerKey: string): string {
  const bar = peerKey.lastIndexOf('|');
  return bar < 0 ? peerKey : peerKey.slice(0, bar);
}

/** Least time between two unknown-association alerts to one address (ms). */
export const UNKNOWN_ASSOCIATION_ALERT_INTERVAL_MS = 1000;
/** Most unknown-association alerts per second in all (a flood of forged sources gets no more). */
export const UNKNOWN_ASSOCIATION_ALERTS_PER_SECOND = 1000;
/** Addresses remembered for the per-address limit before old entries are pruned. */
const MAX_ALERTED_PEERS = 10_000;
/**
 * The shortest protected record: header, explicit nonce and the shortest tag (CCM_8). The alert
 * sent back (15 bytes) is smaller than any record answered, so it amplifies nothing.
 */
const MIN_PROTECTED_RECORD = RECORD_HEADER_LENGTH + 8 + 8;

/** Length of the connection IDs this endpoint hands out. */
export const SERVER_CID_LENGTH = 6;

/**
 * The map key of a CID at bytes[offset…offset+6): its 48 bits as a number (exact below 2^53), so
 * routing a datagram makes no string and an association keeps none.
 */
function cidKey(bytes: Uint8Array, offset: number): number {
  let key = 0;
  for (let i = 0; i < SERVER_CID_LENGTH; i++) key = key * 256 + bytes[offset + i]!;
  return key;
}

export interface DtlsServerEndpointEvents {
  send(peerKey: string, datagram: Uint8Array): void;
  data?(peerKey: string, plaintext: Uint8Array, session: SessionInfo): void;
  connected?(peerKey: string, session: SessionInfo): void;
  closed?(peerKey: string, error?: DtlsError): void;
  /** An association moved to a new address: an authenticated, newer record with its CID came from there (RFC 9146 §6). */
  addressChanged?(oldPeerKey: string, newPeerKey: string): void;
}

/**
 * One association as the endpoint sees it, and the receiver of its connection's events: one object
 * per peer rather than a set of closures.
 */
class Entry implements DtlsConnectionEvents {
  conn!: DtlsConnection;
  /** The CID as a number (see cidKey), when the client asked for one. */
  cid: number | undefined;
  /** Clock time (whole ms) of creation or of the last newer authenticated record. */
  lastActivity: number;
  /** Counted among the endpoint's open handshakes (until connected or removed), under this address. */
  handshakingFrom: string | undefined;

  constructor(
    private readonly endpoint: DtlsServerEndpoint,
    public peerKey: string,
    /** The random of the ClientHello that created the association (latin1), to recognise its retransmissions. */
    readonly clientRandom: string,
  ) {
    this.lastActivity = endpoint.now();
  }

  send(datagram: Uint8Array): void {
    this.endpoint.events.send(this.peerKey, datagram);
  }

  data(plaintext: Uint8Array): void {
    const s = this.conn.session;
    if (s) this.endpoint.events.data?.(this.peerKey, plaintext, s);
  }

  connected(session: SessionInfo): void {
    this.endpoint.handshakeEnded(this);
    this.endpoint.events.connected?.(this.peerKey, session);
  }

  freshRecord(): void {
    this.lastActivity = this.endpoint.now();
    this.endpoint.follow(this);
  }

  closed(error?: DtlsError): void {
    this.endpoint.remove(this, false);
    this.endpoint.events.closed?.(this.peerKey, error);
  }
}

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('latin1');

interface Initial {
  record: DtlsRecord;
  messageSeq: number;
  /** Length of the ClientHello body. */
  length: number;
  hello: ClientHello;
}

/** Parses the first record of a datagram as an unfragmented epoch-0 ClientHello; undefined otherwise. */
export function parseInitialClientHello(datagram: Uint8Array): Initial | undefined {
  // Most handshake datagrams of an association are not ClientHellos: look at the first record's
  // type, epoch and first message type in place before decoding anything.
  if (
    datagram.length < RECORD_HEADER_LENGTH + HANDSHAKE_HEADER_LENGTH ||
    datagram[0] !== ContentType.handshake ||
    datagram[3] !== 0 ||
    datagram[4] !== 0 ||
    datagram[RECORD_HEADER_LENGTH] !== HandshakeType.client_hello
  ) {
    return undefined;
  }
  try {
    const { records } = decodeRecords(datagram.subarray(0, RECORD_HEADER_LENGTH + ((datagram[11]! << 8) | datagram[12]!)));
    const record = records[0];
    if (!record || record.type !== ContentType.handshake || record.epoch !== 0) return undefined;
    if ((record.version & 0xff00) !== 0xfe00) return undefined;
    const frags = decodeFragments(record.fragment);
    const f = frags[0];
    if (!f || f.msgType !== HandshakeType.client_hello || f.fragmentOffset !== 0 || f.body.length !== f.length) return undefined;
    return { record, messageSeq: f.messageSeq, length: f.length, hello: decodeClientHello(f.body) };
  } catch {
    return undefined;
  }
}

export class DtlsServerEndpoint {
  private readonly connections = new Map<string, Entry>();
  private readonly byCid = new Map<number, Entry>();
  /** Open handshakes per IP address, and in all (see maxHandshakes). */
  private readonly handshakesByAddress = new Map<string, number>();
  private handshakeCount = 0;
  /** ClientHellos dropped because the handshake bounds were reached. */
  handshakesRefused = 0;
  private readonly cookies: CookieFactory;
  private readonly clock: Clock;
  private readonly options: DtlsServerEndpointOptions;
  private readonly random: (n: number) => Uint8Array;

  constructor(
    options: DtlsServerEndpointOptions,
    /** Also read by the associations (Entry). */
    readonly events: DtlsServerEndpointEvents,
  ) {
    this.clock = options.clock;
    const sessionCache = options.resumption === false ? undefined : (options.sessionCache ?? new SessionCache(options.clock));
    this.options = { ...options, sessionCache };
    this.cookies = new CookieFactory(this.clock, options.cookieRotationMs, options.random);
    this.random = options.random ?? randomBytesPooled;
  }

  get size(): number {
    return this.connections.size;
  }

  /** Associations still handshaking. */
  get handshaking(): number {
    return this.handshakeCount;
  }

  /** Takes the entry out of the open-handshake counts (idempotent). */
  handshakeEnded(entry: Entry): void {
    const address = entry.handshakingFrom;
    if (address === undefined) return;
    entry.handshakingFrom = undefined;
    this.handshakeCount--;
    const n = (this.handshakesByAddress.get(address) ?? 1) - 1;
    if (n > 0) this.handshakesByAddress.set(address, n);
    else this.handshakesByAddress.delete(address);
  }

  connection(peerKey: string): DtlsConnection | undefined {
    return this.connections.get(peerKey)?.conn;
  }

  /**
   * Drops cached sessions (e.g. after revoking a PSK or certificate) so they cannot be resumed.
   * Established associations are not affected; close them with `close(peerKey)`.
   */
  forgetSessions(predicate: (session: ResumableSession) => boolean): number {
    return this.options.sessionCache?.deleteWhere(predicate) ?? 0;
  }

  /** Rotates the cookie secret now. */
  rotateCookieSecret(): void {
    this.cookies.rotate();
  }

  /** Feeds one datagram from `peerKey`. Never throws. */
  handleDatagram(peerKey: string, datagram: Uint8Array): void {
    if (datagram[0] === ContentType.tls12_cid) {
      this.handleCidDatagram(peerKey, datagram);
      return;
    }
    const entry = this.connections.get(peerKey);
    const existing = entry?.conn;
    if (entry && existing && !existing.isClosed) {
      const initial = datagram[0] === ContentType.handshake ? parseInitialClientHello(datagram) : undefined;
      // A ClientHello with a new random from a known address is a new association (client restart):
      // it must pass the cookie exchange before the old association is replaced (§4.2.8).
      if (!initial || latin1(initial.hello.random) === entry.clientRandom) {
        existing.handleDatagram(datagram);
        return;
      }
      this.statelessHello(peerKey, datagram, initial);
      return;
    }
    const initial = parseInitialClientHello(datagram);
    if (!initial) {
      // Nothing but a ClientHello may create state.
      this.answerUnknownAssociation(peerKey, datagram);
      return;
    }
    this.statelessHello(peerKey, datagram, initial);
  }

  /** Last unknown-association alert per address, and the current second's count in all. */
  private readonly alerted = new Map<string, number>();
  private alertSecond = { start: 0, count: 0 };

  /**
   * A protected record (epoch > 0, or a CID record) from a peer without an association here: the
   * client still holds keys of an association this process never had (we restarted without
   * close_notify, e.g. kill -9). RFC 6347 §4.1.2.7 lets invalid records be dropped silently, but
   * then the client retransmits into the void until its own timers give up; a plaintext fatal
   * alert tells it at once (RFC 6347 §4.2.8: it must start a new handshake). Depot's client acts
   * on it only while it waits for an answer (see DtlsConnection.handleUnauthenticatedAlert).
   */
  private answerUnknownAssociation(peerKey: string, datagram: Uint8Array): void {
    if (this.options.alertUnknownAssociations === false || datagram.length < MIN_PROTECTED_RECORD) return;
    const type = datagram[0];
    const epoch = (datagram[3]! << 8) | datagram[4]!;
    // Data only: never answer an alert (no alert ping-pong) nor a stray handshake record.
    if (datagram[1] !== 0xfe || !(type === ContentType.tls12_cid || (type === ContentType.application_data && epoch > 0))) return;
    const now = this.now();
    const last = this.alerted.get(peerKey);
    if (last !== undefined && now - last < UNKNOWN_ASSOCIATION_ALERT_INTERVAL_MS) return;
    if (now - this.alertSecond.start >= 1000) this.alertSecond = { start: now, count: 0 };
    if (this.alertSecond.count >= UNKNOWN_ASSOCIATION_ALERTS_PER_SECOND) return;
    this.alertSecond.count++;
    if (this.alerted.size >= MAX_ALERTED_PEERS) {
      for (const [key, at] of this.alerted) if (now - at >= UNKNOWN_ASSOCIATION_ALERT_INTERVAL_MS) this.alerted.delete(key);
      if (this.alerted.size >= MAX_ALERTED_PEERS) this.alerted.clear();
    }
    this.alerted.set(peerKey, now);
    const fragment = encodeAlert({ level: AlertLevel.fatal, description: AlertDescription.unexpected_message });
    this.events.send(peerKey, encodeRecord({ type: ContentType.alert, version: DTLS_1_2, epoch: 0, sequence: 0, fragment }));
  }

  /** Routes by connection ID, not by address, and follows the client to a new address (RFC 9146 §6). */
  private handleCidDatagram(peerKey: string, datagram: Uint8Array): void {
    const start = RECORD_HEADER_LENGTH - 2; // the CID follows the sequence number
    if (datagram.length < start + SERVER_CID_LENGTH) return;
    const entry = this.byCid.get(cidKey(datagram, start));
    if (!entry || entry.conn.isClosed) {
      if (!entry) this.answerUnknownAssociation(peerKey, datagram);
      return;
    }
    this.source = peerKey;
    try {
      entry.conn.handleDatagram(datagram);
    } finally {
      this.source = undefined;
    }
  }

  /** Source address of the tls12_cid datagram being processed. */
  private source: string | undefined;

  /** Clock time in whole milliseconds (a small integer, not a boxed number, in each association). */
  now(): number {
    return Math.floor(this.clock.now());
  }

  /** Only an authenticated record newer than all before it may move the association (RFC 9146 §6). */
  follow(entry: Entry): void {
    const peerKey = this.source;
    if (peerKey === undefined || entry.peerKey === peerKey || entry.conn.isClosed) return;
    const old = entry.peerKey;
    const displaced = this.connections.get(peerKey);
    if (displaced && displaced !== entry) this.remove(displaced, true);
    this.connections.delete(old);
    entry.peerKey = peerKey;
    this.connections.set(peerKey, entry);
    this.events.addressChanged?.(old, peerKey);
  }

  remove(entry: Entry, abandon: boolean): void {
    this.handshakeEnded(entry);
    if (this.connections.get(entry.peerKey) === entry) this.connections.delete(entry.peerKey);
    if (entry.cid !== undefined && this.byCid.get(entry.cid) === entry) this.byCid.delete(entry.cid);
    if (abandon) entry.conn.abandon();
  }

  /** Frees a slot: idle associations first, else the least recently active established one. */
  private makeRoom(): boolean {
    const idleBefore = this.now() - (this.options.idleTimeoutMs ?? 24 * 3600_000);
    let freed = false;
    let lru: Entry | undefined;
    for (const e of [...this.connections.values()]) {
      if (e.lastActivity < idleBefore) {
        this.dropEntry(e);
        freed = true;
      } else if (e.conn.isEstablished && (!lru || e.lastActivity < lru.lastActivity)) {
        lru = e;
      }
    }
    if (freed) return true;
    if (!lru) return false; // everything is mid-handshake; those time out on their own
    this.dropEntry(lru);
    return true;
  }

  private dropEntry(e: Entry): void {
    this.remove(e, false);
    e.conn.close(); // close_notify if established; the closed event reports it
  }

  private newCid(): Uint8Array {
    for (;;) {
      const cid = this.random(SERVER_CID_LENGTH);
      if (!this.byCid.has(cidKey(cid, 0))) return cid;
    }
  }

  private statelessHello(peerKey: string, datagram: Uint8Array, initial: Initial): void {
    if (!this.cookies.verify(peerKey, initial.hello)) {
      this.events.send(peerKey, this.helloVerifyRequest(peerKey, initial));
      return;
    }
    const old = this.connections.get(peerKey);
    const address = addressOf(peerKey);
    // The old association's own handshake (if any) is about to end, so it does not count against the new one.
    const ownOld = old?.handshakingFrom !== undefined ? 1 : 0;
    if (
      this.handshakeCount - ownOld >= (this.options.maxHandshakes ?? 2000) ||
      (this.handshakesByAddress.get(address) ?? 0) - ownOld >= (this.options.maxHandshakesPerAddress ?? 256)
    ) {
      this.handshakesRefused++;
      return;
    }
    if (!old && this.connections.size >= (this.options.maxConnections ?? 10_000) && !this.makeRoom()) return;
    // The client restarted and lost its keys; a close_notify would only confuse its new handshake.
    if (old) this.remove(old, true);
    // A CID only for a client that asks for one (RFC 9146 §3): the others need no CID state.
    const wantsCid = this.options.connectionIds !== false && findExtension(initial.hello.extensions, ExtensionType.connection_id) !== undefined;
    const cid = wantsCid ? this.newCid() : undefined;
    const entry = new Entry(this, peerKey, latin1(initial.hello.random));
    entry.handshakingFrom = address;
    this.handshakeCount++;
    this.handshakesByAddress.set(address, (this.handshakesByAddress.get(address) ?? 0) + 1);
    if (cid) entry.cid = cidKey(cid, 0);
    const conn = DtlsConnection.server(this.options, entry, cid ?? false, initial);
    entry.conn = conn;
    this.connections.set(peerKey, entry);
    // Registered from the start: the client's Finished may already arrive as a tls12_cid record on its own.
    if (entry.cid !== undefined) this.byCid.set(entry.cid, entry);
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
    return this.connections.get(peerKey)?.conn.send(data) ?? false;
  }

  /** Closes one association (close_notify) or all of them. */
  close(peerKey?: string): void {
    if (peerKey !== undefined) {
      this.connections.get(peerKey)?.conn.close();
      return;
    }
    for (const e of [...this.connections.values()]) e.conn.close();
    this.connections.clear();
    this.byCid.clear();
  }
}

