/**
 * One DTLS 1.2 association (RFC 6347), client or server role, as a sans-IO state machine:
 * datagrams go in through `handleDatagram`, application data through `send`; datagrams,
 * plaintext and state changes come out through the `DtlsConnectionEvents` callbacks.
 * Time comes from the injected Clock (retransmission and handshake timeout).
 */
import { createECDH, createPublicKey, sign, timingSafeEqual, verify, type ECDH, type KeyObject, type X509Certificate } from 'node:crypto';
import type { PeerIdentity } from '../coap/transport.js';
import type { Clock, Timer } from '../util/clock.js';
import { concat, DecodeError, equalConstantTime, equalConstantTimeAt, randomBytesPooled, Reader, utf8, utf8Decoder, Writer } from './bytes.js';
import { CertificateError, describeSubject, parseCertificates, validateChain } from './certificates.js';
import {
  CIPHER_SUITES,
  CipherSuite,
  keyBlockLength,
  keyMaterialFromBlock,
  type AeadProtection,
  type CipherSuiteInfo,
} from './cipher.js';
import {
  AlertDescription,
  AlertLevel,
  alertName,
  CertificateType,
  ClientCertificateType,
  ContentType,
  DTLS_1_2,
  EMPTY_RENEGOTIATION_INFO_SCSV,
  HANDSHAKE_HEADER_LENGTH,
  ExtensionType,
  HandshakeType,
  HashAlgorithm,
  MAX_PLAINTEXT,
  NamedGroup,
  RECORD_HEADER_LENGTH,
  SignatureAlgorithm,
} from './constants.js';
import { decodeFragments, writeHandshakeHeader, HandshakeReassembler, type HandshakeFragment, type HandshakeMessage } from './fragment.js';
import {
  decodeAlert,
  decodeCertificate,
  decodeCertificateRequest,
  decodeClientHello,
  decodeDigitallySigned,
  decodeEcdheServerKeyExchange,
  decodeHelloVerifyRequest,
  decodeOpaque16,
  decodeOpaque8,
  decodeServerHello,
  decodeU16List,
  EMPTY_RENEGOTIATION_INFO,
  encodeAlert,
  encodeCertificate,
  encodeCertificateRequest,
  encodeClientHello,
  encodeDigitallySigned,
  encodeEcdheParams,
  encodeOpaque16,
  encodeOpaque8,
  encodeServerHello,
  findExtension,
  u16List,
  type ClientHello,
  type Extension,
} from './messages.js';
import { extendedMasterSecret, keyBlock, masterSecret, Prf, pskPreMasterSecret, verifyData } from './prf.js';
import { Transcript } from './transcript.js';
import { encodeRecord, MAX_SEQUENCE, ReplayWindow, writeRecordHeader } from './record.js';
import type { ResumableSession, SessionCache } from './session.js';

/** ecdsa_secp256r1_sha256 as a SignatureAndHashAlgorithm (RFC 5246 §7.4.1.4.1). */
const ECDSA_SHA256 = (HashAlgorithm.sha256 << 8) | SignatureAlgorithm.ecdsa;

export const DEFAULT_CIPHER_SUITES: readonly number[] = [
  CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
  CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
  CipherSuite.TLS_PSK_WITH_AES_128_CCM_8,
  CipherSuite.TLS_PSK_WITH_AES_128_GCM_SHA256,
  CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
  CipherSuite.TLS_PSK_WITH_AES_128_CCM,
];

export interface CertificateCredentials {
  /** DER certificates, leaf first (intermediates may follow). */
  chain: Uint8Array[];
  /** The leaf's EC P-256 private key. */
  privateKey: KeyObject;
}

export interface DtlsCommonOptions {
  clock: Clock;
  /** Suites in preference order; filtered by the credentials that are configured. */
  cipherSuites?: readonly number[];
  /** Own certificate for ECDHE-ECDSA (required on the server, optional on the client for client auth). */
  certificate?: CertificateCredentials;
  /** Trust anchors for the peer's certificate. */
  trustRoots?: readonly X509Certificate[];
  /**
   * An extra decision on a peer certificate whose chain validated (revocation list, device registry,
   * endpoint-name rules). May answer asynchronously. Refusal gives bad_certificate.
   */
  verifyCertificate?: (leaf: X509Certificate, chain: readonly X509Certificate[]) => boolean | Promise<boolean>;
  /** Own raw public key (RFC 7250) for ECDHE-ECDSA: an EC P-256 private key (the public key is derived). */
  rawPublicKey?: { privateKey: KeyObject };
  /**
   * Decides whether a peer's raw public key (SubjectPublicKeyInfo, DER) is trusted; enables RPK for
   * the peer. May answer asynchronously (a device registry lookup).
   */
  verifyRawPublicKey?: (spkiDer: Uint8Array) => boolean | Promise<boolean>;
  /**
   * Connection ID (RFC 9146): the CID we want to receive in the peer's records. On the client `true`
   * offers the extension with an empty CID (we send the server's CID, it sends us plain records).
   * The server endpoint allocates the server's CIDs itself.
   */
  connectionId?: Uint8Array | boolean;
  /** Path MTU for handshake fragmentation and record packing (bytes of UDP payload). Default 1200. */
  mtu?: number;
  /** First retransmission timeout, doubled on every retransmission (RFC 6347 §4.2.4.1). Default 1000 ms. */
  initialRetransmitMs?: number;
  /** Upper bound of the retransmission timeout. Default 60 000 ms. */
  maxRetransmitMs?: number;
  /** Retransmissions of one flight before the handshake is abandoned. Default 7. */
  maxRetransmissions?: number;
  /** Whole-handshake deadline; when it passes, the state is freed. Default 60 000 ms. */
  handshakeTimeoutMs?: number;
  /** Offer / accept the extended master secret (RFC 7627). Default true. */
  extendedMasterSecret?: boolean;
  /** Wall-clock time for certificate validity checks. Default Date.now. */
  wallClock?: () => number;
  /** Randomness source (tests may make it deterministic). */
  random?: (n: number) => Uint8Array;
}

export interface DtlsClientOptions extends DtlsCommonOptions {
  /** PSK credentials: identity (UTF-8) and key. */
  psk?: { identity: string; key: Uint8Array };
  /** A session from an earlier connection to the same server, offered for an abbreviated handshake. */
  resume?: ResumableSession;
}

export interface DtlsServerOptions extends DtlsCommonOptions {
  /** Returns the key for a PSK identity, or undefined when the identity is unknown. */
  pskLookup?: (identity: string) => Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** Optional PSK identity hint sent in ServerKeyExchange. */
  pskIdentityHint?: string;
  /** Whether a client certificate is requested in ECDHE-ECDSA handshakes. Default 'require' when trustRoots are set. */
  clientCertificate?: 'none' | 'request' | 'require';
  /** Where full handshakes are remembered for resumption; without one, sessions are not resumable. */
  sessionCache?: SessionCache;
}

export type DtlsErrorCode =
  | 'handshake_timeout'
  | 'alert_received'
  | 'alert_sent'
  | 'closed'
  | 'internal'
  /** The peer answered our protected records with a plaintext fatal alert: it has no state for this association (it restarted). */
  | 'association_unknown';

export class DtlsError extends Error {
  override readonly name = 'DtlsError';
  constructor(
    readonly code: DtlsErrorCode,
    message: string,
    /** The alert description involved (received or sent), if any. */
    readonly alert?: number,
  ) {
    super(message);
  }
}

export interface SessionInfo {
  cipherSuite: CipherSuiteInfo;
  extendedMasterSecret: boolean;
  /** True when this association came from an abbreviated (resumed) handshake. */
  resumed: boolean;
  peerIdentity?: PeerIdentity;
}

/** A ClientHello body the endpoint decoded: its message_seq, body length and fields. */
export interface DecodedHello {
  messageSeq: number;
  length: number;
  hello: ClientHello;
}

export interface DtlsConnectionEvents {
  /** A datagram to put on the wire. */
  send(datagram: Uint8Array): void;
  /** Decrypted application data. */
  data?(plaintext: Uint8Array): void;
  /** The handshake completed. */
  connected?(info: SessionInfo): void;
  /** The association ended: cleanly (no error) or through failure. Called once. */
  closed?(error?: DtlsError): void;
  /**
   * A protected record newer than every earlier one just authenticated; called before its content is
   * delivered, so an endpoint can move the association to the record's source address (RFC 9146 §6).
   */
  freshRecord?(): void;
}

type State =
  | 'idle'
  | 'wait_server_hello'
  | 'wait_server_hello_done'
  | 'wait_client_hello'
  | 'wait_client_key_exchange'
  | 'wait_ccs'
  | 'wait_finished'
  | 'established'
  | 'closed';

interface ReadState {
  protection?: AeadProtection;
  window: ReplayWindow;
}

interface WriteState {
  protection?: AeadProtection;
  seq: number;
}

/**
 * A flight as kept for retransmission: its messages encoded whole (header and body, as they enter
 * the transcript), those sent in epoch 0 in one buffer, then optionally a ChangeCipherSpec and the
 * messages of epoch 1 (the Finished). Every flight has this shape, and it costs a handshake one
 * object and a buffer or two rather than an object per message.
 */
class Flight {
  constructor(
    readonly plain: Uint8Array,
    readonly changeCipherSpec: boolean,
    readonly protectedMessages: Uint8Array | undefined,
  ) {}
}

class Fatal extends Error {
  constructor(
    readonly alert: number,
    message: string,
  ) {
    super(message);
  }
}

const MAX_QUEUED_APP_DATA = 64;
const MAX_FUTURE_RECORDS = 16;
const MAX_EARLY_DATA = 8;

/** A record of the next epoch held until the ChangeCipherSpec (see handleRecord). */
interface BufferedRecord {
  type: number;
  version: number;
  epoch: number;
  sequence: number;
  fragment: Uint8Array;
  ownCid: boolean;
}

/** Shared empty values, so an association holds no buffers or lists of its own for them. */
const NO_BYTES = new Uint8Array(0);
const CCS_BODY = Uint8Array.of(1);

/**
 * The datagram being assembled by transmitFlight, shared by all connections: a flight is written and
 * sent without yielding, and each datagram leaves as a copy before the scratch is reused.
 */
const assembly = { bytes: new Uint8Array(1500), size: 0 };

/**
 * The state of one handshake, apart from the connection so that an established association drops
 * all of it at once (see DtlsConnection.releaseHandshakeState).
 */
class Handshake {
  /** Epoch 0's read state: an established association ignores plaintext records. */
  read0: ReadState | undefined = { window: new ReplayWindow() };
  /** Records of the next epoch that overtook the ChangeCipherSpec. */
  futureRecords: BufferedRecord[] | undefined;
  sendSeq = 0;
  transcript = new Transcript();
  /**
   * The handshake's one timer, due at `timerDue`: for the next retransmission or the handshake
   * deadline, whichever comes first (a timer each would cost twice the objects per handshake).
   */
  timer: Timer | undefined;
  timerDue = 0;
  /** The timer's callback, made once per handshake. */
  onTimer: (() => void) | undefined;
  /** Clock time when the whole handshake gives up. */
  deadline = 0;
  /** Clock time of the next retransmission of our flight; undefined when none is expected. */
  retransmitDue: number | undefined;
  retransmissions = 0;
  clientRandomValue: Uint8Array | undefined;
  serverRandom: Uint8Array | undefined;
  helloVerifyCount = 0;
  master: Uint8Array | undefined;
  /** The PRF keyed with the master secret (key block, both Finished). */
  masterPrf: Prf | undefined;
  pendingRead: AeadProtection | undefined;
  pendingWrite: AeadProtection | undefined;
  ecdh: ECDH | undefined;
  pendingPeerPoint: Uint8Array | undefined;
  peerPublicKey: KeyObject | undefined;
  certificateRequested = false;
  expectCertificateVerify = false;
  gotServerKeyExchange = false;
  gotServerCertificate = false;
  gotClientCertificate = false;
  gotClientKeyExchange = false;
  /** Application data sent before the handshake completed. */
  queued: Uint8Array[] | undefined;
  /** RFC 7250 certificate types in use for each side (X.509 unless negotiated otherwise). */
  serverCertType: number = CertificateType.x509;
  clientCertType: number = CertificateType.x509;
  clientCertMode: 'none' | 'request' | 'require' = 'none';
  sessionId: Uint8Array = NO_BYTES;
  earlyCcs = false;
  /** Waiting for an asynchronous decision (see awaitExternal). */
  paused = false;
  /** Server: the first ClientHello as the endpoint decoded it (see DtlsConnection.server). */
  decodedHello: DecodedHello | undefined;
  /** Authenticated application data that overtook the peer's Finished. */
  earlyData: Uint8Array[] | undefined;

  constructor(
    readonly random: (n: number) => Uint8Array,
    readonly suites: number[],
    public retransmitMs: number,
  ) {}
}

/** An established association's handshake: nothing, and frozen, so a stray write fails loudly. */
const RELEASED = ((): Handshake => {
  const hs = new Handshake(() => NO_BYTES, [], 0);
  hs.read0 = undefined; // an established association ignores plaintext records
  return Object.freeze(hs);
})();

export class DtlsConnection {
  readonly role: 'client' | 'server';
  private state: State = 'idle';
  private readonly clock: Clock;
  private readonly mtu: number;

  /**
   * Epoch 0 (plaintext) and epoch 1 (protected) states: renegotiation is refused, so there is no
   * other epoch. Epoch 0's are dropped once the handshake needs them no more.
   */
  private read1: ReadState | undefined;
  private write0: WriteState | undefined = { seq: 0 };
  private write1: WriteState | undefined;
  private readEpoch = 0;
  private writeEpoch = 0;

  /**
   * Inbound handshake messages: while a handshake runs, and briefly when an established association
   * gets a handshake record (see inbound). An idle association keeps only `peerNextSeq`.
   */
  private reassembler: HandshakeReassembler | undefined = new HandshakeReassembler();
  /** The peer's next message_seq while there is no reassembler: older ones are retransmissions. */
  private peerNextSeq = 0;

  /** Our last flight, kept until the peer shows it has it. */
  private flight: Flight | undefined;
  /** message_seq of the last message of the peer's previous flight; a copy of it makes us resend ours. */
  private peerFlightEnd = -1;

  private suite: CipherSuiteInfo | undefined;
  private useEms = false;
  private peerIdentity: PeerIdentity | undefined;
  private pskIdentityHintBytes: Uint8Array | undefined;

  /** RFC 9146: the CID we receive (announced by us) and the CID we send (announced by the peer), once negotiated. */
  private ownCid: Uint8Array = NO_BYTES;
  private peerCid: Uint8Array = NO_BYTES;
  private cidNegotiated = false;
  /** Set by handleRecord when a protected record newer than any before it authenticated (RFC 9146 §6). */
  private freshRecord = false;
  private resumed = false;
  private resumableSession: ResumableSession | undefined;
  /** True when the last flight we sent completes the handshake (kept to answer retransmissions). */
  private sentFinalFlight = false;
  private closedNotified = false;
  /** Application data went out since the peer's last authenticated record: we wait for an answer. */
  private awaitingPeer = false;

  /** `options.connectionId`, or the CID the server endpoint allocated for this association. */
  private readonly cidOption: Uint8Array | boolean | undefined;
  /** What only the handshake needs; replaced by the frozen RELEASED once the association is established. */
  private hs: Handshake;

  private constructor(
    role: 'client' | 'server',
    private readonly options: DtlsClientOptions & DtlsServerOptions,
    private readonly events: DtlsConnectionEvents,
    connectionId: Uint8Array | boolean | undefined,
  ) {
    this.role = role;
    this.clock = options.clock;
    this.mtu = Math.max(256, options.mtu ?? 1200);
    this.hs = new Handshake(options.random ?? randomBytesPooled, usableSuites(role, options), options.initialRetransmitMs ?? 1000);
    this.cidOption = connectionId;
  }

  /** A client connection; call `connect()` to send the first ClientHello. */
  static client(options: DtlsClientOptions, events: DtlsConnectionEvents): DtlsConnection {
    return new DtlsConnection('client', options, events, options.connectionId);
  }

  /**
   * A server connection waiting for a ClientHello. Cookie verification is the job of the
   * endpoint in front of it (see DtlsServerEndpoint); the connection trusts what it is handed.
   * `connectionId` overrides `options.connectionId` (the endpoint allocates one per association and
   * shares one options object between all of them). `decodedHello`: the ClientHello of the first
   * datagram the connection will be handed, as the endpoint already decoded it (not decoded twice).
   */
  static server(
    options: DtlsServerOptions,
    events: DtlsConnectionEvents,
    connectionId: Uint8Array | boolean | undefined = options.connectionId,
    decodedHello?: DecodedHello,
  ): DtlsConnection {
    const c = new DtlsConnection('server', options, events, connectionId);
    c.state = 'wait_client_hello';
    c.hs.decodedHello = decodedHello;
    c.startHandshakeTimer();
    return c;
  }

  get isEstablished(): boolean {
    return this.state === 'established';
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** The client random of the current handshake (the endpoint uses it to spot retransmitted ClientHellos). */
  get clientRandom(): Uint8Array | undefined {
    return this.hs.clientRandomValue;
  }

  get session(): SessionInfo | undefined {
    if (this.state !== 'established' || !this.suite) return undefined;
    const info: SessionInfo = { cipherSuite: this.suite, extendedMasterSecret: this.useEms, resumed: this.resumed };
    if (this.peerIdentity) info.peerIdentity = this.peerIdentity;
    return info;
  }

  /** Client: the PSK identity hint the server sent (RFC 4279 §2), if any. */
  get pskIdentityHint(): string | undefined {
    return this.pskIdentityHintBytes && utf8Decoder.decode(this.pskIdentityHintBytes);
  }

  /** Client: the session to pass as `resume` to a later connection (undefined if the server gave no session ID). */
  get resumable(): ResumableSession | undefined {
    return this.state === 'established' ? this.resumableSession : undefined;
  }

  /** Client only: starts the handshake. */
  connect(): void {
    if (this.role !== 'client' || this.state !== 'idle') return;
    this.guard(() => {
      if (this.hs.suites.length === 0) throw new Fatal(AlertDescription.internal_error, 'no usable cipher suite for the configured credentials');
      this.startHandshakeTimer();
      this.hs.clientRandomValue = this.hs.random(32);
      this.sendClientHello(NO_BYTES);
    });
  }

  /** Sends application data, queued until the handshake completes. Returns false if the connection is closed or the queue is full. */
  send(data: Uint8Array): boolean {
    if (this.state === 'closed') return false;
    if (data.length > MAX_PLAINTEXT) return false;
    if (this.state !== 'established') {
      this.hs.queued ??= [];
      if (this.hs.queued.length >= MAX_QUEUED_APP_DATA) return false;
      this.hs.queued.push(data);
      return true;
    }
    this.events.send(this.protect(ContentType.application_data, this.writeEpoch, data));
    this.awaitingPeer = true;
    return true;
  }

  /** Sends close_notify (if established) and frees the state. */
  close(): void {
    if (this.state === 'closed') return;
    if (this.state === 'established') this.sendAlert(AlertLevel.warning, AlertDescription.close_notify);
    this.finish(undefined);
  }

  /** Frees the state without telling the peer (e.g. it restarted and cannot read our alerts). */
  abandon(): void {
    if (this.state !== 'closed') this.finish(new DtlsError('closed', 'association abandoned'));
  }

  /** Feeds one received datagram. Never throws. */
  handleDatagram(datagram: Uint8Array): boolean {
    if (this.state === 'closed') return false;
    this.freshRecord = false;
    this.guard(() => this.handleRecords(datagram));
    return this.freshRecord;
  }

  /**
   * Handles the records of one datagram in order (§4.1.1), read in place: no object per record. A
   * truncated or unparseable record ends the datagram (the records before it count).
   */
  private handleRecords(d: Uint8Array): void {
    const cid = this.cidOption instanceof Uint8Array ? this.cidOption : NO_BYTES;
    for (let at = 0; d.length - at >= RECORD_HEADER_LENGTH; ) {
      if (this.isClosed) return;
      const type = d[at]!;
      const withCid = type === ContentType.tls12_cid;
      // The CID length is not on the wire: only the receiver that chose the CID can parse it (RFC 9146 §4).
      if (withCid && cid.length === 0) return;
      const lengthAt = at + RECORD_HEADER_LENGTH - 2 + (withCid ? cid.length : 0);
      if (lengthAt + 2 > d.length) return;
      const start = lengthAt + 2;
      const end = start + ((d[lengthAt]! << 8) | d[lengthAt + 1]!);
      if (end > d.length) return;
      const version = (d[at + 1]! << 8) | d[at + 2]!;
      const epoch = (d[at + 3]! << 8) | d[at + 4]!;
      const sequence = ((d[at + 5]! << 8) | d[at + 6]!) * 0x1_0000_0000 + ((d[at + 7]! << 24) >>> 0) + ((d[at + 8]! << 16) | (d[at + 9]! << 8) | d[at + 10]!);
      // Whether the record carries the CID we announce (compared once negotiated: see handleRecord).
      const ownCid = withCid && equalConstantTimeAt(d, at + RECORD_HEADER_LENGTH - 2, cid);
      this.handleRecord(type, version, epoch, sequence, d.subarray(start, end), ownCid);
      at = end;
    }
  }

  /** Length of the CID in records addressed to us (0 = none); fixed from the start so early records parse. */
  get ownCidLength(): number {
    const c = this.cidOption;
    return c instanceof Uint8Array ? c.length : 0;
  }

  /** The negotiated connection IDs (RFC 9146), if any: `receive` is ours, `send` the peer's. */
  get connectionIds(): { receive: Uint8Array; send: Uint8Array } | undefined {
    return this.cidNegotiated ? { receive: this.ownCid, send: this.peerCid } : undefined;
  }

  // ---------------------------------------------------------------- plumbing

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (this.isClosed) return;
      if (e instanceof Fatal) this.fatal(e.alert, e.message);
      else if (e instanceof DecodeError) this.fatal(AlertDescription.decode_error, e.message);
      else if (e instanceof CertificateError) this.fatal(AlertDescription[e.alert], e.message);
      else this.fatal(AlertDescription.internal_error, e instanceof Error ? e.message : String(e));
    }
  }

  private fatal(alert: number, message: string): void {
    if (this.state === 'closed') return;
    this.sendAlert(AlertLevel.fatal, alert);
    this.finish(new DtlsError('alert_sent', `${alertName(alert)}: ${message}`, alert));
  }

  private finish(error: DtlsError | undefined): void {
    this.state = 'closed';
    this.releaseHandshakeState(); // timers cancelled, keys and queued data dropped
    this.flight = undefined;
    this.write0 = undefined;
    if (!this.closedNotified) {
      this.closedNotified = true;
      this.events.closed?.(error);
    }
  }

  private startHandshakeTimer(): void {
    this.hs.deadline = wholeMs(this.clock.now() + (this.options.handshakeTimeoutMs ?? 60_000));
    this.armTimer();
  }

  /** Arms the handshake's timer for the earlier of the next retransmission and the deadline. */
  private armTimer(): void {
    const hs = this.hs;
    const due = hs.retransmitDue === undefined ? hs.deadline : Math.min(hs.deadline, hs.retransmitDue);
    if (hs.timer && hs.timerDue <= due) return; // it fires first and arms the next one
    hs.timer?.cancel();
    hs.timerDue = due;
    hs.timer = this.clock.setTimer(due - this.clock.now(), (hs.onTimer ??= () => this.onTimer()));
  }

  private onTimer(): void {
    const hs = this.hs;
    hs.timer = undefined;
    if (this.state === 'closed' || this.state === 'established') return;
    // The time the timer was set for, not clock.now(): a timer may fire a little early or late.
    const now = hs.timerDue;
    if (now >= hs.deadline) {
      this.finish(new DtlsError('handshake_timeout', `handshake not complete after ${this.options.handshakeTimeoutMs ?? 60_000} ms`));
      return;
    }
    if (hs.retransmitDue !== undefined && now >= hs.retransmitDue) {
      this.guard(() => {
        if (hs.retransmissions >= (this.options.maxRetransmissions ?? 7)) {
          this.finish(new DtlsError('handshake_timeout', `no answer after ${hs.retransmissions} retransmissions`));
          return;
        }
        hs.retransmissions++;
        hs.retransmitMs = Math.min(hs.retransmitMs * 2, this.options.maxRetransmitMs ?? 60_000);
        this.transmitFlight();
        hs.retransmitDue = wholeMs(now + hs.retransmitMs);
      });
    }
    if (!this.isClosed) this.armTimer();
  }

  private sendAlert(level: number, description: number): void {
    try {
      this.events.send(this.protect(ContentType.alert, this.writeEpoch, encodeAlert({ level, description })));
    } catch {
      // Sequence space exhausted or similar: nothing more to say.
    }
  }

  /** Builds one record for `epoch` with that epoch's protection and next sequence number. */
  private protect(type: number, epoch: number, payload: Uint8Array): Uint8Array {
    const ws = this.writeState(epoch);
    if (!ws) throw new Error(`no write state for epoch ${epoch}`);
    const seq = this.nextSequence(ws);
    if (ws.protection) return ws.protection.sealRecord(type, DTLS_1_2, epoch, seq, payload, this.peerCid);
    return encodeRecord({ type, version: DTLS_1_2, epoch, sequence: seq, fragment: payload });
  }

  /** The next sequence number of a write state. */
  private nextSequence(ws: WriteState): number {
    if (ws.seq > MAX_SEQUENCE) throw new Fatal(AlertDescription.internal_error, 'sequence numbers exhausted');
    return ws.seq++;
  }

  /** Appends a whole record to the datagram being assembled (see `assembly`), sending what is there first if it would not fit. */
  private appendRecord(record: Uint8Array): void {
    const at = this.reserve(record.length);
    assembly.bytes.set(record, at);
  }

  /**
   * Room for a record of `length` bytes at the end of the datagram being assembled; where it starts.
   * A full datagram goes out first; a record larger than the MTU goes alone.
   */
  private reserve(length: number): number {
    if (assembly.size > 0 && assembly.size + length > this.mtu) this.flushDatagram();
    const at = assembly.size;
    if (at + length > assembly.bytes.length) {
      const grown = new Uint8Array(Math.max(2 * assembly.bytes.length, at + length));
      grown.set(assembly.bytes.subarray(0, at));
      assembly.bytes = grown;
    }
    assembly.size = at + length;
    return at;
  }

  /** Sends the assembled datagram: a copy of exactly its bytes, taken before anything else can reuse the scratch. */
  private flushDatagram(): void {
    if (assembly.size === 0) return;
    const datagram = assembly.bytes.slice(0, assembly.size);
    assembly.size = 0;
    this.events.send(datagram);
  }

  private overhead(epoch: number): number {
    return this.writeState(epoch)?.protection?.overhead ?? 0;
  }

  private readState(epoch: number): ReadState | undefined {
    return epoch === 0 ? this.hs.read0 : epoch === 1 ? this.read1 : undefined;
  }

  private writeState(epoch: number): WriteState | undefined {
    return epoch === 0 ? this.write0 : epoch === 1 ? this.write1 : undefined;
  }

  /**
   * Sends the current flight (again), packed into as few datagrams as the MTU allows. Every
   * transmission takes new record sequence numbers (§4.2.4); plaintext records are written straight
   * into the datagram, without a buffer per fragment or record.
   */
  private transmitFlight(): void {
    const flight = this.flight;
    if (!flight) return;
    assembly.size = 0;
    try {
      this.transmitMessages(flight.plain, 0);
      if (flight.changeCipherSpec) {
        const ws = this.writeState(0);
        if (!ws) throw new Error('no write state for epoch 0');
        assembly.bytes.set(CCS_BODY, this.startPlainRecord(ws, ContentType.change_cipher_spec, 0, CCS_BODY.length));
      }
      if (flight.protectedMessages) this.transmitMessages(flight.protectedMessages, 1);
      this.flushDatagram();
    } finally {
      // Nothing half-written stays behind for the next flight, whichever connection sends it
      // (a send callback may make another connection transmit before this one is done).
      assembly.size = 0;
    }
  }

  /** Adds encoded whole messages to the datagrams being assembled, fragmented to fit the MTU (§4.2.3). */
  private transmitMessages(messages: Uint8Array, epoch: number): void {
    if (messages.length === 0) return;
    const ws = this.writeState(epoch);
    if (!ws) throw new Error(`no write state for epoch ${epoch}`);
    const room = Math.max(1, this.mtu - RECORD_HEADER_LENGTH - this.overhead(epoch) - HANDSHAKE_HEADER_LENGTH);
    for (let at = 0; at < messages.length; ) {
      const msgType = messages[at]!;
      const length = (messages[at + 1]! << 16) | (messages[at + 2]! << 8) | messages[at + 3]!;
      const messageSeq = (messages[at + 4]! << 8) | messages[at + 5]!;
      const bodyAt = at + HANDSHAKE_HEADER_LENGTH;
      let offset = 0;
      do {
        const n = Math.min(room, length - offset);
        if (ws.protection) {
          // A message that fits is its own plaintext; a fragment gets a header of its own.
          const whole = n === length && at === 0 && bodyAt + length === messages.length;
          const plaintext = whole ? messages : new Uint8Array(HANDSHAKE_HEADER_LENGTH + n);
          if (!whole) {
            writeHandshakeHeader(plaintext, 0, msgType, length, messageSeq, offset, n);
            copyBytes(plaintext, HANDSHAKE_HEADER_LENGTH, messages, bodyAt + offset, n);
          }
          this.appendRecord(this.protect(ContentType.handshake, epoch, plaintext));
        } else {
          const to = this.startPlainRecord(ws, ContentType.handshake, epoch, HANDSHAKE_HEADER_LENGTH + n);
          writeHandshakeHeader(assembly.bytes, to, msgType, length, messageSeq, offset, n);
          copyBytes(assembly.bytes, to + HANDSHAKE_HEADER_LENGTH, messages, bodyAt + offset, n);
        }
        offset += n;
      } while (offset < length);
      at = bodyAt + length;
    }
  }

  /**
   * Writes the header of an unprotected record with `length` bytes of content into the datagram being
   * assembled; returns where in assembly.bytes the content goes.
   */
  private startPlainRecord(ws: WriteState, type: number, epoch: number, length: number): number {
    const at = this.reserve(RECORD_HEADER_LENGTH + length);
    return writeRecordHeader(assembly.bytes, at, type, DTLS_1_2, epoch, this.nextSequence(ws), undefined, length);
  }

  /** Sends a new flight. `expectReply`: retransmit it until the peer answers (not for the last flight). */
  private sendFlight(flight: Flight, expectReply: boolean): void {
    const hs = this.hs;
    hs.retransmitDue = undefined;
    this.flight = flight;
    hs.retransmitMs = this.options.initialRetransmitMs ?? 1000;
    hs.retransmissions = 0;
    this.transmitFlight();
    if (expectReply) {
      hs.retransmitDue = wholeMs(this.clock.now() + hs.retransmitMs);
      this.armTimer();
    }
  }

  /**
   * The peer has started its next flight: stop retransmitting ours (RFC 6347 §4.2.4). The timer
   * stays; when it fires it only arms the next one for the deadline.
   */
  private stopRetransmit(): void {
    this.hs.retransmitDue = undefined;
  }

  /** Our next handshake message, encoded whole (as it enters the transcript and a flight). */
  private nextMessage(msgType: number, body: Uint8Array): Uint8Array {
    const encoded = new Uint8Array(HANDSHAKE_HEADER_LENGTH + body.length);
    writeHandshakeHeader(encoded, 0, msgType, body.length, this.hs.sendSeq++, 0, body.length);
    encoded.set(body, HANDSHAKE_HEADER_LENGTH);
    this.hs.transcript.addEncoded(encoded);
    return encoded;
  }

  /** Hash of the transcript so far. */
  private transcriptHash(): Uint8Array {
    return this.hs.transcript.digest();
  }

  // ---------------------------------------------------------------- receive path

  /** One received record; `ownCid`: a tls12_cid record carrying the CID we announce. */
  private handleRecord(recordType: number, version: number, epoch: number, sequence: number, fragment: Uint8Array, ownCid: boolean): void {
    if ((version & 0xff00) !== 0xfe00) return;
    const rs = this.readState(epoch);
    if (!rs) {
      if (epoch === 0 && recordType === ContentType.alert) this.handleUnauthenticatedAlert(fragment);
      // Records of the next epoch can overtake the ChangeCipherSpec; keep a few (§4.1).
      if (epoch === this.readEpoch + 1 && this.state !== 'established' && (this.hs.futureRecords?.length ?? 0) < MAX_FUTURE_RECORDS) (this.hs.futureRecords ??= []).push({ type: recordType, version, epoch, sequence, fragment, ownCid });
      return;
    }
    if (!rs.window.check(sequence)) return;
    let plaintext = fragment;
    let type = recordType;
    const usesCid = this.cidNegotiated && this.ownCid.length > 0;
    if (recordType === ContentType.tls12_cid) {
      // Only with a negotiated CID of ours, only protected, only our CID (RFC 9146 §4).
      if (!usesCid || !rs.protection || !ownCid) return;
    } else if (usesCid && rs.protection) {
      return; // protected records must carry our CID once it is negotiated
    }
    if (rs.protection) {
      let opened: Uint8Array | undefined;
      if (recordType === ContentType.tls12_cid) {
        const inner = rs.protection.openCid(epoch, sequence, version, this.ownCid, fragment);
        if (inner) {
          opened = inner.content;
          type = inner.type;
        }
      } else {
        opened = rs.protection.open(epoch, sequence, recordType, version, fragment);
      }
      if (!opened) {
        // Invalid records are discarded (§4.1.2.7), except while we wait for the peer's Finished:
        // then the keys disagree (wrong PSK) and the handshake cannot succeed.
        // Only a handshake record (the Finished) counts: stale alerts or data of an older association
        // with the same address are just dropped.
        if (this.state === 'wait_finished' && epoch === this.readEpoch && (recordType === ContentType.handshake || recordType === ContentType.tls12_cid)) throw new Fatal(AlertDescription.bad_record_mac, 'record of the new epoch does not authenticate');
        return;
      }
      plaintext = opened;
    }
    if (plaintext.length > MAX_PLAINTEXT) return;
    const fresh = rs.protection !== undefined && sequence > rs.window.highest;
    rs.window.update(sequence);
    if (fresh) {
      this.awaitingPeer = false;
      this.freshRecord = true;
      this.events.freshRecord?.();
    }
    if (this.role === 'server' && this.state === 'wait_client_hello' && epoch === 0) {
      // Continue the record numbering of a stateless HelloVerifyRequest, which reused the
      // ClientHello's sequence number (§4.2.1): never send epoch-0 numbers the client has seen.
      this.write0!.seq = Math.max(this.write0!.seq, sequence);
    }
    switch (type) {
      case ContentType.handshake:
        this.handleHandshakeRecord(plaintext, epoch);
        break;
      case ContentType.change_cipher_spec:
        if (plaintext.length === 1 && plaintext[0] === 1) this.handleChangeCipherSpec(epoch);
        break;
      case ContentType.alert:
        this.handleAlert(plaintext, epoch);
        break;
      case ContentType.application_data:
        if (epoch !== this.readEpoch || epoch === 0) break;
        if (this.state === 'established') {
          if (this.flight) this.releaseFlight(); // the peer has our Finished
          this.events.data?.(plaintext);
        } else if (this.state === 'wait_finished' && (this.hs.earlyData?.length ?? 0) < MAX_EARLY_DATA) {
          // Authenticated data that overtook the peer's Finished: deliver it once the handshake is done.
          (this.hs.earlyData ??= []).push(plaintext);
        }
        break;
      default:
        break;
    }
  }

  /**
   * A plaintext (epoch 0) alert after the handshake. It is not authenticated, so by itself it must
   * not end the association (anyone could forge it). But a server that lost its state (restarted)
   * can only answer in plaintext, and Depot's server does so for records of associations it does
   * not know (RFC 6347 §4.2.8: the client must then start a new handshake). A client that sent data
   * and has heard nothing authenticated since takes a fatal one as that answer and closes, so the
   * next send handshakes again; a forger gains no more than one extra handshake.
   */
  private handleUnauthenticatedAlert(fragment: Uint8Array): void {
    if (this.role !== 'client' || this.state !== 'established' || !this.awaitingPeer) return;
    let alert;
    try {
      alert = decodeAlert(fragment);
    } catch {
      return;
    }
    if (alert.level !== AlertLevel.fatal) return;
    this.finish(new DtlsError('association_unknown', `the server does not know this DTLS association (plaintext fatal alert ${alertName(alert.description)} in answer to our data; it probably restarted): a new handshake is needed`, alert.description));
  }

  private handleAlert(plaintext: Uint8Array, epoch: number): void {
    let alert;
    try {
      alert = decodeAlert(plaintext);
    } catch {
      return;
    }
    // Once established, only authenticated alerts count (a plaintext one is a hint at most).
    if (this.state === 'established' && epoch !== this.readEpoch) {
      if (epoch === 0) this.handleUnauthenticatedAlert(plaintext);
      return;
    }
    if (alert.description === AlertDescription.close_notify) {
      if (this.state === 'established') this.sendAlert(AlertLevel.warning, AlertDescription.close_notify);
      this.finish(this.state === 'established' ? undefined : new DtlsError('alert_received', 'peer closed during the handshake', alert.description));
      return;
    }
    if (alert.level === AlertLevel.fatal) {
      this.finish(new DtlsError('alert_received', `peer sent fatal alert ${alertName(alert.description)}`, alert.description));
    }
    // Other warnings (e.g. no_renegotiation) are ignored.
  }

  private handleHandshakeRecord(plaintext: Uint8Array, epoch: number): void {
    let fragments: HandshakeFragment[];
    try {
      fragments = decodeFragments(plaintext);
    } catch (e) {
      if (e instanceof DecodeError && epoch === 0) return; // unauthenticated garbage: drop
      throw e;
    }
    for (const f of fragments) {
      if (this.isClosed) return;
      // Finished is always protected; everything else of a first handshake is in epoch 0.
      const protectedExpected = f.msgType === HandshakeType.finished || this.state === 'established';
      if (protectedExpected !== epoch > 0) continue;
      const res = this.inbound().add(f);
      if (res === 'old') this.onRetransmittedFragment(f);
      else if (res === 'bad' && epoch > 0) throw new Fatal(AlertDescription.decode_error, 'inconsistent handshake fragments');
    }
    this.processMessages();
  }

  private onRetransmittedFragment(f: HandshakeFragment): void {
    // The peer retransmitted its last flight: it lost (part of) ours. Resend ours (§4.2.4).
    if (f.messageSeq === this.peerFlightEnd && this.flight && f.fragmentOffset === 0) this.transmitFlight();
  }

  private processMessages(): void {
    for (;;) {
      const reassembler = this.reassembler;
      if (this.isClosed || this.hs.paused || !reassembler) return;
      if (this.role === 'client' && this.state === 'wait_server_hello') {
        // The server's first message_seq depends on whether it sent a HelloVerifyRequest.
        const first = reassembler.peekLowestComplete();
        if (first && (first.msgType === HandshakeType.server_hello || first.msgType === HandshakeType.hello_verify_request)) {
          reassembler.skipTo(first.messageSeq);
        }
      }
      if (this.role === 'server' && this.state === 'wait_client_hello') {
        const first = reassembler.peekLowestComplete();
        if (first?.msgType === HandshakeType.client_hello) reassembler.skipTo(first.messageSeq);
      }
      const m = reassembler.take();
      if (!m) break;
      this.handleMessage(m);
    }
    if (this.state === 'established') this.dropReassembler();
  }

  /** The reassembler, made again (continuing the peer's message_seq) when an idle association needs it. */
  private inbound(): HandshakeReassembler {
    if (!this.reassembler) {
      this.reassembler = new HandshakeReassembler();
      this.reassembler.next = this.peerNextSeq;
    }
    return this.reassembler;
  }

  /** Drops the reassembler of an established association once nothing waits in it. */
  private dropReassembler(): void {
    const r = this.reassembler;
    if (!r || r.buffered > 0) return;
    this.peerNextSeq = r.next;
    this.reassembler = undefined;
  }

  private handleChangeCipherSpec(epoch: number): void {
    if (epoch !== this.readEpoch) return;
    if (this.state !== 'wait_ccs' || !this.hs.pendingRead) {
      // Reordered ahead of the handshake messages before it: the only CCS the peer sends in a
      // handshake is the one before its Finished, so remember it for when we get there.
      if (this.state !== 'established' && this.state !== 'wait_finished') this.hs.earlyCcs = true;
      return;
    }
    this.hs.earlyCcs = false;
    this.readEpoch = 1;
    this.read1 = { protection: this.hs.pendingRead, window: new ReplayWindow() };
    this.hs.pendingRead = undefined;
    this.state = 'wait_finished';
    const future = this.hs.futureRecords ?? [];
    this.hs.futureRecords = undefined;
    for (const r of future) {
      if (this.isClosed) return;
      this.handleRecord(r.type, r.version, r.epoch, r.sequence, r.fragment, r.ownCid);
    }
  }

  private handleMessage(m: HandshakeMessage): void {
    if (this.state === 'established') {
      this.handleEstablishedMessage(m);
      return;
    }
    if (this.role === 'client') this.clientMessage(m);
    else this.serverMessage(m);
  }

  /** Renegotiation is refused (RFC 5746 spirit, RFC 5246 §7.2.2 no_renegotiation). */
  private handleEstablishedMessage(m: HandshakeMessage): void {
    if ((this.role === 'server' && m.msgType === HandshakeType.client_hello) || (this.role === 'client' && m.msgType === HandshakeType.hello_request)) {
      this.sendAlert(AlertLevel.warning, AlertDescription.no_renegotiation);
      return;
    }
    throw new Fatal(AlertDescription.unexpected_message, `unexpected handshake message ${m.msgType} after the handshake`);
  }

  // ---------------------------------------------------------------- client

  private clientExtensions(): Extension[] {
    const exts: Extension[] = [];
    const ecc = this.hs.suites.some((id) => CIPHER_SUITES.get(id)?.keyExchange === 'ecdhe_ecdsa');
    if (ecc) {
      exts.push({ type: ExtensionType.supported_groups, data: u16List([NamedGroup.secp256r1]) });
      exts.push({ type: ExtensionType.ec_point_formats, data: Uint8Array.of(1, 0) });
      exts.push({ type: ExtensionType.signature_algorithms, data: u16List([ECDSA_SHA256]) });
      if (this.options.verifyRawPublicKey) {
        const types = [CertificateType.raw_public_key, ...((this.options.trustRoots?.length ?? 0) > 0 ? [CertificateType.x509] : [])];
        exts.push({ type: ExtensionType.server_certificate_type, data: new Writer().vec8(Uint8Array.from(types)).finish() });
      }
      if (this.options.rawPublicKey) {
        const types = [CertificateType.raw_public_key, ...(this.options.certificate ? [CertificateType.x509] : [])];
        exts.push({ type: ExtensionType.client_certificate_type, data: new Writer().vec8(Uint8Array.from(types)).finish() });
      }
    }
    if (this.options.extendedMasterSecret !== false) exts.push({ type: ExtensionType.extended_master_secret, data: NO_BYTES });
    const cid = this.cidOption;
    if (cid) exts.push({ type: ExtensionType.connection_id, data: new Writer().vec8(cid instanceof Uint8Array ? cid : NO_BYTES).finish() });
    exts.push(EMPTY_RENEGOTIATION_INFO);
    return exts;
  }

  private sendClientHello(cookie: Uint8Array): void {
    const hello: ClientHello = {
      version: DTLS_1_2,
      random: this.hs.clientRandomValue!,
      sessionId: this.options.resume?.id ?? NO_BYTES,
      cookie,
      cipherSuites: [...this.hs.suites],
      compressionMethods: Uint8Array.of(0),
      extensions: this.clientExtensions(),
    };
    // The ClientHello before a HelloVerifyRequest is not part of the transcript (§4.2.6): start afresh.
    if (this.hs.transcript.length > 0) this.hs.transcript = new Transcript();
    // A CertificateVerify signs the messages themselves: keep them if we may have to send one.
    if (this.options.certificate || this.options.rawPublicKey) this.hs.transcript.keepMessages();
    const msg = this.nextMessage(HandshakeType.client_hello, encodeClientHello(hello));
    this.state = 'wait_server_hello';
    this.sendFlight(new Flight(msg, false, undefined), true);
  }

  private clientMessage(m: HandshakeMessage): void {
    switch (this.state) {
      case 'wait_server_hello': {
        if (m.msgType === HandshakeType.hello_verify_request) {
          const hvr = decodeHelloVerifyRequest(m.body);
          if (++this.hs.helloVerifyCount > 4) throw new Fatal(AlertDescription.handshake_failure, 'too many HelloVerifyRequests');
          if (hvr.cookie.length === 0) throw new Fatal(AlertDescription.illegal_parameter, 'empty cookie');
          this.sendClientHello(hvr.cookie);
          return;
        }
        if (m.msgType !== HandshakeType.server_hello) throw new Fatal(AlertDescription.unexpected_message, 'expected ServerHello');
        this.stopRetransmit();
        this.hs.transcript.add(m);
        this.onServerHello(m.body);
        return;
      }
      case 'wait_server_hello_done':
        this.hs.transcript.add(m);
        this.onServerFlightMessage(m);
        return;
      case 'wait_finished':
        if (m.msgType !== HandshakeType.finished) throw new Fatal(AlertDescription.unexpected_message, 'expected Finished');
        this.checkFinished(m.body, 'server finished');
        this.stopRetransmit();
        this.peerFlightEnd = m.messageSeq;
        if (this.resumed) {
          // Abbreviated handshake: the client speaks last (RFC 5246 §7.3 figure 2).
          this.hs.transcript.add(m);
          this.sendFinalFlight('client finished');
          return;
        }
        this.established();
        return;
      default:
        throw new Fatal(AlertDescription.unexpected_message, `unexpected handshake message ${m.msgType} in state ${this.state}`);
    }
  }

  private onServerHello(body: Uint8Array): void {
    const sh = decodeServerHello(body);
    if (sh.version !== DTLS_1_2) throw new Fatal(AlertDescription.protocol_version, 'server did not choose DTLS 1.2');
    const suite = CIPHER_SUITES.get(sh.cipherSuite);
    if (!suite || !this.hs.suites.includes(sh.cipherSuite)) throw new Fatal(AlertDescription.illegal_parameter, 'server chose a suite we did not offer');
    if (sh.compressionMethod !== 0) throw new Fatal(AlertDescription.illegal_parameter, 'compression is not supported');
    const offered = this.clientExtensions();
    for (const e of sh.extensions) if (!findExtension(offered, e.type)) throw new Fatal(AlertDescription.unsupported_extension, `unsolicited extension ${e.type}`);
    const reneg = findExtension(sh.extensions, ExtensionType.renegotiation_info);
    if (reneg && (reneg.data.length !== 1 || reneg.data[0] !== 0)) throw new Fatal(AlertDescription.handshake_failure, 'non-empty renegotiation_info');
    this.useEms = findExtension(sh.extensions, ExtensionType.extended_master_secret) !== undefined;
    const cidExt = findExtension(sh.extensions, ExtensionType.connection_id);
    if (cidExt) {
      this.peerCid = decodeCid(cidExt.data);
      const own = this.cidOption;
      this.ownCid = own instanceof Uint8Array ? own : NO_BYTES;
      this.cidNegotiated = true;
    }
    this.hs.serverCertType = chosenCertType(sh.extensions, ExtensionType.server_certificate_type, offered);
    this.hs.clientCertType = chosenCertType(sh.extensions, ExtensionType.client_certificate_type, offered);
    this.suite = suite;
    // Copies: views would keep the server's datagram alive (the session ID for as long as the session).
    this.hs.serverRandom = sh.random.slice();
    this.hs.sessionId = sh.sessionId.length === 0 ? NO_BYTES : sh.sessionId.slice();
    const resume = this.options.resume;
    if (resume && sh.sessionId.length > 0 && equalConstantTime(sh.sessionId, resume.id)) {
      if (sh.cipherSuite !== resume.cipherSuite) throw new Fatal(AlertDescription.illegal_parameter, 'resumed session with another cipher suite');
      // RFC 7627 §5.3: the EMS status of a resumed session cannot change.
      if (this.useEms !== resume.extendedMasterSecret) throw new Fatal(AlertDescription.handshake_failure, 'extended_master_secret differs from the resumed session');
      this.resumed = true;
      if (resume.peerIdentity) this.peerIdentity = resume.peerIdentity;
      this.hs.master = resume.masterSecret.slice();
      this.hs.masterPrf = new Prf(this.hs.master);
      this.expandKeys();
      this.state = 'wait_ccs';
      if (this.hs.earlyCcs) this.handleChangeCipherSpec(this.readEpoch);
      return;
    }
    this.state = 'wait_server_hello_done';
  }

  private onServerFlightMessage(m: HandshakeMessage): void {
    const suite = this.suite!;
    const ecdhe = suite.keyExchange === 'ecdhe_ecdsa';
    switch (m.msgType) {
      case HandshakeType.certificate: {
        if (!ecdhe || this.hs.gotServerCertificate) throw new Fatal(AlertDescription.unexpected_message, 'unexpected Certificate');
        if (!this.acceptPeerCertificate(this.hs.serverCertType, m.body)) throw new Fatal(AlertDescription.bad_certificate, 'empty server certificate');
        this.hs.gotServerCertificate = true;
        return;
      }
      case HandshakeType.server_key_exchange: {
        if (this.hs.gotServerKeyExchange) throw new Fatal(AlertDescription.unexpected_message, 'duplicate ServerKeyExchange');
        this.hs.gotServerKeyExchange = true;
        if (!ecdhe) {
          this.pskIdentityHintBytes = decodeOpaque16(m.body).slice();
          return;
        }
        if (!this.hs.gotServerCertificate) throw new Fatal(AlertDescription.unexpected_message, 'ServerKeyExchange before Certificate');
        const ske = decodeEcdheServerKeyExchange(m.body);
        if (ske.namedCurve !== NamedGroup.secp256r1) throw new Fatal(AlertDescription.illegal_parameter, 'unsupported curve');
        if (ske.hashAlgorithm !== HashAlgorithm.sha256 || ske.signatureAlgorithm !== SignatureAlgorithm.ecdsa) {
          throw new Fatal(AlertDescription.illegal_parameter, 'unsupported signature algorithm');
        }
        const signed = concat(this.hs.clientRandomValue!, this.hs.serverRandom!, ske.params);
        if (!verifySignature(this.hs.peerPublicKey!, signed, ske.signature)) throw new Fatal(AlertDescription.decrypt_error, 'bad ServerKeyExchange signature');
        this.hs.ecdh = createECDH('prime256v1');
        this.hs.ecdh.generateKeys();
        this.hs.pendingPeerPoint = ske.publicPoint;
        return;
      }
      case HandshakeType.certificate_request: {
        if (!ecdhe || !this.hs.gotServerKeyExchange || this.hs.certificateRequested) throw new Fatal(AlertDescription.unexpected_message, 'unexpected CertificateRequest');
        const req = decodeCertificateRequest(m.body);
        this.hs.certificateRequested = true;
        // Send our certificate only if the server can take an ECDSA/SHA-256 signature.
        this.hs.expectCertificateVerify =
          (this.hs.clientCertType === CertificateType.raw_public_key ? this.options.rawPublicKey !== undefined : this.options.certificate !== undefined) &&
          req.certificateTypes.includes(ClientCertificateType.ecdsa_sign) &&
          req.signatureAlgorithms.includes(ECDSA_SHA256);
        return;
      }
      case HandshakeType.server_hello_done: {
        if (m.body.length !== 0) throw new DecodeError('ServerHelloDone with a body');
        if (ecdhe && !this.hs.gotServerKeyExchange) throw new Fatal(AlertDescription.unexpected_message, 'missing ServerKeyExchange');
        this.peerFlightEnd = m.messageSeq;
        this.sendClientFinalFlight();
        return;
      }
      default:
        throw new Fatal(AlertDescription.unexpected_message, `unexpected handshake message ${m.msgType}`);
    }
  }


  private sendClientFinalFlight(): void {
    const suite = this.suite!;
    const plain: Uint8Array[] = [];
    if (this.hs.certificateRequested) {
      const body = this.hs.expectCertificateVerify ? this.ownCertificateBody(this.hs.clientCertType) : encodeCertificate([]);
      plain.push(this.nextMessage(HandshakeType.certificate, body));
    }
    let preMaster: Uint8Array;
    if (suite.keyExchange === 'psk') {
      const psk = this.options.psk!;
      plain.push(this.nextMessage(HandshakeType.client_key_exchange, encodeOpaque16(utf8.encode(psk.identity))));
      preMaster = pskPreMasterSecret(psk.key);
    } else {
      const ecdh = this.hs.ecdh!;
      preMaster = computeEcdhSecret(ecdh, this.hs.pendingPeerPoint!);
      plain.push(this.nextMessage(HandshakeType.client_key_exchange, encodeOpaque8(new Uint8Array(ecdh.getPublicKey()))));
    }
    this.deriveKeys(preMaster);
    if (this.hs.expectCertificateVerify) {
      const sig = sign('sha256', this.hs.transcript.messageBytes(), { key: this.ownSigningKey(this.hs.clientCertType), dsaEncoding: 'der' });
      const body = encodeDigitallySigned({ hashAlgorithm: HashAlgorithm.sha256, signatureAlgorithm: SignatureAlgorithm.ecdsa, signature: new Uint8Array(sig) });
      plain.push(this.nextMessage(HandshakeType.certificate_verify, body));
    }
    this.enterWriteEpoch1();
    const finished = this.nextMessage(HandshakeType.finished, verifyData(this.hs.masterPrf!, 'client finished', this.transcriptHash()));
    this.state = 'wait_ccs';
    this.sendFlight(new Flight(joined(plain), true, finished), true);
    if (this.hs.earlyCcs) this.handleChangeCipherSpec(this.readEpoch);
  }

  // ---------------------------------------------------------------- server

  private serverMessage(m: HandshakeMessage): void {
    switch (this.state) {
      case 'wait_client_hello':
        if (m.msgType !== HandshakeType.client_hello) throw new Fatal(AlertDescription.unexpected_message, 'expected ClientHello');
        this.onClientHello(m); // which adds it to the transcript
        return;
      case 'wait_client_key_exchange':
        this.stopRetransmit();
        this.onClientFlightMessage(m);
        return;
      case 'wait_finished':
        if (m.msgType !== HandshakeType.finished) throw new Fatal(AlertDescription.unexpected_message, 'expected Finished');
        this.checkFinished(m.body, 'client finished');
        this.hs.transcript.add(m);
        this.peerFlightEnd = m.messageSeq;
        if (this.resumed) {
          this.stopRetransmit();
          this.established();
          return;
        }
        this.sendFinalFlight('server finished');
        return;
      default:
        throw new Fatal(AlertDescription.unexpected_message, `unexpected handshake message ${m.msgType} in state ${this.state}`);
    }
  }

  private onClientHello(m: HandshakeMessage): void {
    // The endpoint's decoding serves if it is of this very message: the first record of the first
    // datagram carried it whole, so the first ClientHello taken with its message_seq and length is it.
    const decoded = this.hs.decodedHello;
    this.hs.decodedHello = undefined;
    const ch = decoded && decoded.messageSeq === m.messageSeq && decoded.length === m.body.length ? decoded.hello : decodeClientHello(m.body);
    // A copy: a view would keep the whole received datagram alive for the handshake.
    this.hs.clientRandomValue = ch.random.slice();
    // DTLS version numbers count down: 1.2 = 0xfefd < 1.0 = 0xfeff.
    if (ch.version > DTLS_1_2) throw new Fatal(AlertDescription.protocol_version, 'client does not offer DTLS 1.2');
    if (!ch.compressionMethods.includes(0)) throw new Fatal(AlertDescription.illegal_parameter, 'null compression not offered');
    const reneg = findExtension(ch.extensions, ExtensionType.renegotiation_info);
    if (reneg && (reneg.data.length !== 1 || reneg.data[0] !== 0)) throw new Fatal(AlertDescription.handshake_failure, 'non-empty renegotiation_info in an initial handshake');
    const secureReneg = reneg !== undefined || ch.cipherSuites.includes(EMPTY_RENEGOTIATION_INFO_SCSV);
    const cidExt = findExtension(ch.extensions, ExtensionType.connection_id);
    const ownCid = this.cidOption;
    if (cidExt && ownCid instanceof Uint8Array) {
      this.peerCid = decodeCid(cidExt.data);
      this.ownCid = ownCid;
      this.cidNegotiated = true;
    }

    const groups = findExtension(ch.extensions, ExtensionType.supported_groups);
    const sigAlgs = findExtension(ch.extensions, ExtensionType.signature_algorithms);
    // RFC 7250: which certificate types the client accepts from us and can send us (X.509 when not said).
    const serverTypes = certTypeList(findExtension(ch.extensions, ExtensionType.server_certificate_type));
    const clientTypes = certTypeList(findExtension(ch.extensions, ExtensionType.client_certificate_type));
    const serverCertType =
      serverTypes.includes(CertificateType.raw_public_key) && this.options.rawPublicKey
        ? CertificateType.raw_public_key
        : serverTypes.includes(CertificateType.x509) && this.options.certificate
          ? CertificateType.x509
          : undefined;
    this.hs.clientCertType =
      clientTypes.includes(CertificateType.raw_public_key) && this.options.verifyRawPublicKey ? CertificateType.raw_public_key : CertificateType.x509;
    const canVerifyClient = this.hs.clientCertType === CertificateType.raw_public_key || (this.options.trustRoots?.length ?? 0) > 0;
    this.hs.clientCertMode = this.options.clientCertificate ?? (canVerifyClient ? 'require' : 'none');
    if (this.hs.clientCertType === CertificateType.x509 && !clientTypes.includes(CertificateType.x509)) this.hs.clientCertMode = 'none';
    const eccOk =
      serverCertType !== undefined &&
      (!groups || safeList(groups.data).includes(NamedGroup.secp256r1)) &&
      (!sigAlgs || safeList(sigAlgs.data).includes(ECDSA_SHA256));
    this.hs.serverCertType = serverCertType ?? CertificateType.x509;
    const chosen = this.hs.suites.find((id) => ch.cipherSuites.includes(id) && (CIPHER_SUITES.get(id)!.keyExchange === 'psk' || eccOk));
    if (chosen === undefined) throw new Fatal(AlertDescription.handshake_failure, 'no cipher suite in common');
    this.useEms = this.options.extendedMasterSecret !== false && findExtension(ch.extensions, ExtensionType.extended_master_secret) !== undefined;
    this.hs.serverRandom = this.hs.random(32);
    const cached = this.options.sessionCache?.get(ch.sessionId);
    // RFC 7627 §5.3: resume only when the EMS status matches the original session's; otherwise a full handshake.
    if (cached && ch.cipherSuites.includes(cached.cipherSuite) && this.hs.suites.includes(cached.cipherSuite) && cached.extendedMasterSecret === this.useEms) {
      this.hs.transcript.add(m);
      this.resumeSession(m, cached, secureReneg);
      return;
    }
    const suite = CIPHER_SUITES.get(chosen)!;
    // The client's CertificateVerify signs the messages themselves: keep them if we ask for one.
    if (suite.keyExchange === 'ecdhe_ecdsa' && this.hs.clientCertMode !== 'none') this.hs.transcript.keepMessages();
    this.hs.transcript.add(m);
    this.suite = suite;
    this.hs.sessionId = this.options.sessionCache ? this.hs.random(32) : NO_BYTES;

    const exts: Extension[] = [];
    if (secureReneg) exts.push(EMPTY_RENEGOTIATION_INFO);
    if (this.useEms) exts.push({ type: ExtensionType.extended_master_secret, data: NO_BYTES });
    if (this.cidNegotiated) exts.push({ type: ExtensionType.connection_id, data: new Writer().vec8(this.ownCid).finish() });
    if (suite.keyExchange === 'ecdhe_ecdsa' && findExtension(ch.extensions, ExtensionType.ec_point_formats)) {
      exts.push({ type: ExtensionType.ec_point_formats, data: Uint8Array.of(1, 0) });
    }
    if (suite.keyExchange === 'ecdhe_ecdsa' && findExtension(ch.extensions, ExtensionType.server_certificate_type)) {
      exts.push({ type: ExtensionType.server_certificate_type, data: Uint8Array.of(this.hs.serverCertType) });
    }
    if (suite.keyExchange === 'ecdhe_ecdsa' && this.hs.clientCertMode !== 'none' && findExtension(ch.extensions, ExtensionType.client_certificate_type)) {
      exts.push({ type: ExtensionType.client_certificate_type, data: Uint8Array.of(this.hs.clientCertType) });
    }
    // Answer with the ClientHello's message_seq, as a stateless cookie exchange leaves us no other record (§4.2.2).
    this.hs.sendSeq = m.messageSeq;
    this.peerFlightEnd = m.messageSeq;
    const plain: Uint8Array[] = [];
    const add = (type: number, body: Uint8Array): void => void plain.push(this.nextMessage(type, body));
    add(
      HandshakeType.server_hello,
      encodeServerHello({ version: DTLS_1_2, random: this.hs.serverRandom, sessionId: this.hs.sessionId, cipherSuite: chosen, compressionMethod: 0, extensions: exts }),
    );
    if (suite.keyExchange === 'ecdhe_ecdsa') {
      add(HandshakeType.certificate, this.ownCertificateBody(this.hs.serverCertType));
      this.hs.ecdh = createECDH('prime256v1');
      this.hs.ecdh.generateKeys();
      const params = encodeEcdheParams(NamedGroup.secp256r1, new Uint8Array(this.hs.ecdh.getPublicKey()));
      const sig = sign('sha256', concat(ch.random, this.hs.serverRandom, params), { key: this.ownSigningKey(this.hs.serverCertType), dsaEncoding: 'der' });
      add(
        HandshakeType.server_key_exchange,
        concat(params, encodeDigitallySigned({ hashAlgorithm: HashAlgorithm.sha256, signatureAlgorithm: SignatureAlgorithm.ecdsa, signature: new Uint8Array(sig) })),
      );
      if (this.hs.clientCertMode !== 'none') {
        this.hs.certificateRequested = true;
        add(
          HandshakeType.certificate_request,
          encodeCertificateRequest({ certificateTypes: Uint8Array.of(ClientCertificateType.ecdsa_sign), signatureAlgorithms: [ECDSA_SHA256], authorities: [] }),
        );
      }
    } else if (this.options.pskIdentityHint !== undefined) {
      add(HandshakeType.server_key_exchange, encodeOpaque16(utf8.encode(this.options.pskIdentityHint)));
    }
    add(HandshakeType.server_hello_done, NO_BYTES);
    this.state = 'wait_client_key_exchange';
    this.sendFlight(new Flight(joined(plain), false, undefined), true);
  }

  /** Abbreviated handshake, server side: ServerHello, ChangeCipherSpec, Finished (RFC 5246 §7.3). */
  private resumeSession(m: HandshakeMessage, cached: ResumableSession, secureReneg: boolean): void {
    this.suite = CIPHER_SUITES.get(cached.cipherSuite)!;
    this.resumed = true;
    this.hs.sessionId = cached.id;
    if (cached.peerIdentity) this.peerIdentity = cached.peerIdentity;
    const exts: Extension[] = [];
    if (secureReneg) exts.push(EMPTY_RENEGOTIATION_INFO);
    if (this.useEms) exts.push({ type: ExtensionType.extended_master_secret, data: NO_BYTES });
    if (this.cidNegotiated) exts.push({ type: ExtensionType.connection_id, data: new Writer().vec8(this.ownCid).finish() });
    this.hs.sendSeq = m.messageSeq;
    this.peerFlightEnd = m.messageSeq;
    const hello = this.nextMessage(
      HandshakeType.server_hello,
      encodeServerHello({ version: DTLS_1_2, random: this.hs.serverRandom!, sessionId: cached.id, cipherSuite: cached.cipherSuite, compressionMethod: 0, extensions: exts }),
    );
    this.hs.master = cached.masterSecret.slice();
    this.hs.masterPrf = new Prf(this.hs.master);
    this.expandKeys();
    this.enterWriteEpoch1();
    const finished = this.nextMessage(HandshakeType.finished, verifyData(this.hs.masterPrf, 'server finished', this.transcriptHash()));
    this.state = 'wait_ccs';
    this.sendFlight(new Flight(hello, true, finished), true);
  }

  private onClientFlightMessage(m: HandshakeMessage): void {
    const suite = this.suite!;
    if (this.hs.certificateRequested && !this.hs.gotClientCertificate) {
      if (m.msgType !== HandshakeType.certificate) throw new Fatal(AlertDescription.unexpected_message, 'expected Certificate');
      this.hs.transcript.add(m);
      this.hs.gotClientCertificate = true;
      if (!this.acceptPeerCertificate(this.hs.clientCertType, m.body)) {
        if (this.hs.clientCertMode === 'require') throw new Fatal(AlertDescription.handshake_failure, 'client certificate required');
        return;
      }
      this.hs.expectCertificateVerify = true;
      return;
    }
    if (!this.hs.gotClientKeyExchange) {
      if (m.msgType !== HandshakeType.client_key_exchange) throw new Fatal(AlertDescription.unexpected_message, 'expected ClientKeyExchange');
      this.hs.transcript.add(m);
      this.hs.gotClientKeyExchange = true;
      let preMaster: Uint8Array;
      if (suite.keyExchange === 'psk') {
        const identityBytes = decodeOpaque16(m.body);
        const identity = utf8Decoder.decode(identityBytes);
        const key = this.options.pskLookup!(identity);
        if (key instanceof Promise) {
          this.awaitExternal(key, (k) => this.pskKnown(identity, k), 'PSK lookup');
          return;
        }
        this.pskKnown(identity, key);
        return;
      } else {
        preMaster = computeEcdhSecret(this.hs.ecdh!, decodeOpaque8(m.body));
      }
      this.deriveKeys(preMaster);
      if (!this.hs.expectCertificateVerify) this.enterWaitCcs();
      return;
    }
    if (this.hs.expectCertificateVerify) {
      if (m.msgType !== HandshakeType.certificate_verify) throw new Fatal(AlertDescription.unexpected_message, 'expected CertificateVerify');
      const ds = decodeDigitallySigned(m.body);
      if (ds.hashAlgorithm !== HashAlgorithm.sha256 || ds.signatureAlgorithm !== SignatureAlgorithm.ecdsa) {
        throw new Fatal(AlertDescription.illegal_parameter, 'unsupported CertificateVerify algorithm');
      }
      if (!verifySignature(this.hs.peerPublicKey!, this.hs.transcript.messageBytes(), ds.signature)) throw new Fatal(AlertDescription.decrypt_error, 'bad CertificateVerify signature');
      this.hs.transcript.add(m);
      this.hs.expectCertificateVerify = false;
      this.enterWaitCcs();
      return;
    }
    throw new Fatal(AlertDescription.unexpected_message, `unexpected handshake message ${m.msgType}`);
  }

  private pskKnown(identity: string, key: Uint8Array | undefined): void {
    if (this.isClosed) return;
    if (!key) throw new Fatal(AlertDescription.unknown_psk_identity, 'unknown PSK identity');
    this.peerIdentity = { kind: 'psk', identity };
    this.deriveKeys(pskPreMasterSecret(key));
    this.enterWaitCcs();
  }

  /**
   * Holds the handshake on an asynchronous decision (key store, trust store). Messages that arrive
   * meanwhile stay queued, a CCS is remembered and next-epoch records are buffered; all of it is
   * processed when the promise settles. A rejection ends the handshake with internal_error.
   */
  private awaitExternal<T>(p: Promise<T>, then: (value: T) => void, what: string): void {
    this.hs.paused = true;
    p.then(
      (v) =>
        this.guard(() => {
          if (this.isClosed) return;
          this.hs.paused = false;
          then(v);
          this.processMessages();
        }),
      () =>
        this.guard(() => {
          throw new Fatal(AlertDescription.internal_error, `${what} failed`);
        }),
    );
  }

  private enterWaitCcs(): void {
    this.state = 'wait_ccs';
    if (this.hs.earlyCcs) this.handleChangeCipherSpec(this.readEpoch);
  }

  /** CCS + Finished that completes the handshake: the server's in a full handshake, the client's in an abbreviated one. */
  private sendFinalFlight(label: 'client finished' | 'server finished'): void {
    this.enterWriteEpoch1();
    const finished = this.nextMessage(HandshakeType.finished, verifyData(this.hs.masterPrf!, label, this.transcriptHash()));
    this.sentFinalFlight = true;
    this.sendFlight(new Flight(NO_BYTES, true, finished), false);
    this.established();
  }

  // ---------------------------------------------------------------- shared

  /** Our Certificate message body for the negotiated type (RFC 7250 §3 for raw public keys). */
  private ownCertificateBody(type: number): Uint8Array {
    if (type === CertificateType.raw_public_key) {
      const spki = createPublicKey(this.options.rawPublicKey!.privateKey).export({ type: 'spki', format: 'der' });
      return new Writer().vec24(new Uint8Array(spki)).finish();
    }
    return encodeCertificate(this.options.certificate!.chain);
  }

  private ownSigningKey(type: number): KeyObject {
    return type === CertificateType.raw_public_key ? this.options.rawPublicKey!.privateKey : this.options.certificate!.privateKey;
  }

  /**
   * Validates the peer's Certificate message of the negotiated type and records its key and identity.
   * Returns false for an empty X.509 list (no certificate); throws on anything unacceptable.
   */
  private acceptPeerCertificate(type: number, body: Uint8Array): boolean {
    if (type === CertificateType.raw_public_key) {
      const r = new Reader(body);
      const spki = r.vec24();
      r.end();
      let key: KeyObject;
      try {
        key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
      } catch {
        throw new Fatal(AlertDescription.bad_certificate, 'unparseable raw public key');
      }
      if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
        throw new Fatal(AlertDescription.unsupported_certificate, 'raw public key is not EC P-256');
      }
      const der = new Uint8Array(spki);
      const trusted = this.options.verifyRawPublicKey?.(der) ?? false;
      const decide = (ok: boolean): void => {
        if (!ok) throw new Fatal(AlertDescription.bad_certificate, 'raw public key not trusted');
      };
      // The key is only used (to check a signature) after the decision, since later messages wait for it.
      if (trusted instanceof Promise) this.awaitExternal(trusted, decide, 'raw public key check');
      else decide(trusted);
      this.hs.peerPublicKey = key;
      this.peerIdentity = { kind: 'rpk', publicKeyDer: der };
      return true;
    }
    const ders = decodeCertificate(body);
    if (ders.length === 0) return false;
    const chain = parseCertificates(ders);
    this.hs.peerPublicKey = validateChain(chain, this.options.trustRoots ?? [], (this.options.wallClock ?? Date.now)());
    this.peerIdentity = { kind: 'x509', ...describeSubject(chain[0]!), certificateDer: new Uint8Array(chain[0]!.raw) };
    const check = this.options.verifyCertificate;
    if (check) {
      const decide = (ok: boolean): void => {
        if (!ok) throw new Fatal(AlertDescription.bad_certificate, 'certificate refused by policy');
      };
      let verdict: boolean | Promise<boolean>;
      try {
        verdict = check(chain[0]!, chain);
      } catch {
        throw new Fatal(AlertDescription.internal_error, 'certificate check failed');
      }
      if (verdict instanceof Promise) this.awaitExternal(verdict, decide, 'certificate check');
      else decide(verdict);
    }
    return true;
  }

  private deriveKeys(preMaster: Uint8Array): void {
    const cr = this.hs.clientRandomValue!;
    const sr = this.hs.serverRandom!;
    // With EMS the session hash covers the transcript up to and including ClientKeyExchange (RFC 7627 §3).
    this.hs.master = this.useEms ? extendedMasterSecret(preMaster, this.transcriptHash()) : masterSecret(preMaster, cr, sr);
    preMaster.fill(0);
    this.hs.masterPrf = new Prf(this.hs.master);
    this.expandKeys();
  }

  private expandKeys(): void {
    const cr = this.hs.clientRandomValue!;
    const sr = this.hs.serverRandom!;
    const suite = this.suite!;
    const keys = keyMaterialFromBlock(suite, keyBlock(this.hs.masterPrf!, cr, sr, keyBlockLength(suite)));
    const mine = this.role === 'client' ? keys.clientWrite : keys.serverWrite;
    const theirs = this.role === 'client' ? keys.serverWrite : keys.clientWrite;
    this.hs.pendingWrite = mine;
    this.hs.pendingRead = theirs;
  }


  private enterWriteEpoch1(): void {
    this.writeEpoch = 1;
    this.write1 = { protection: this.hs.pendingWrite!, seq: 0 };
    this.hs.pendingWrite = undefined;
  }

  private checkFinished(body: Uint8Array, label: 'client finished' | 'server finished'): void {
    const expected = verifyData(this.hs.masterPrf!, label, this.transcriptHash());
    if (body.length !== expected.length || !timingSafeEqual(body, expected)) throw new Fatal(AlertDescription.decrypt_error, 'Finished verify_data mismatch');
  }

  private established(): void {
    this.state = 'established';
    const hs = this.hs;
    if (hs.sessionId.length > 0 && hs.master) {
      const rs: ResumableSession = { id: hs.sessionId, masterSecret: hs.master, cipherSuite: this.suite!.id, extendedMasterSecret: this.useEms };
      const session = this.peerIdentity ? { ...rs, peerIdentity: this.peerIdentity } : rs;
      // The server's cache keeps what resumption needs; only a client hands its session out.
      if (this.role === 'client') this.resumableSession = session;
      else if (!this.resumed) this.options.sessionCache?.put(session);
    }
    this.releaseHandshakeState();
    // The client's last flight needs no more retransmission; the server keeps its own to answer
    // a retransmitted client Finished (§4.2.4) until application data shows the client has it.
    if (!this.sentFinalFlight) this.releaseFlight();
    const info = this.session!;
    this.events.connected?.(info);
    for (const d of hs.earlyData ?? []) {
      if (this.isClosed) return;
      this.events.data?.(d);
    }
    for (const d of hs.queued ?? []) {
      if (this.isClosed) return;
      this.send(d);
    }
  }

  /**
   * Drops what only the handshake needed, so an established association keeps just its record
   * layer, identity and (for a client) its resumable session: an idle association should cost
   * little memory.
   */
  private releaseHandshakeState(): void {
    if (this.hs === RELEASED) return;
    this.hs.timer?.cancel();
    this.hs = RELEASED;
    this.reassembler?.clear();
    this.dropReassembler();
  }

  /** The peer has our last flight: no retransmission will be needed, nor epoch 0 to send it in. */
  private releaseFlight(): void {
    this.flight = undefined;
    if (this.state === 'established') this.write0 = undefined;
  }
}

const suitesByOptions = { client: new WeakMap<object, number[]>(), server: new WeakMap<object, number[]>() };

/** The configured suites usable with the configured credentials, worked out once per options object. */
function usableSuites(role: 'client' | 'server', o: DtlsClientOptions & DtlsServerOptions): number[] {
  const cached = suitesByOptions[role].get(o);
  if (cached) return cached;
  const wanted = o.cipherSuites ?? DEFAULT_CIPHER_SUITES;
  const suites = wanted.filter((id) => {
    const s = CIPHER_SUITES.get(id);
    if (!s) return false;
    if (s.keyExchange === 'psk') return role === 'client' ? o.psk !== undefined : o.pskLookup !== undefined;
    return role === 'client'
      ? (o.trustRoots?.length ?? 0) > 0 || o.verifyRawPublicKey !== undefined
      : o.certificate !== undefined || o.rawPublicKey !== undefined;
  });
  suitesByOptions[role].set(o, suites);
  return suites;
}

/** The parts as one buffer (the part itself when there is only one). */
function joined(parts: Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : concat(...parts);
}

/** Copies src[start…start+n) to dst at `at`, without a view of either. */
function copyBytes(dst: Uint8Array, at: number, src: Uint8Array, start: number, n: number): void {
  for (let i = 0; i < n; i++) dst[at + i] = src[start + i]!;
}

/**
 * A clock time rounded up to whole milliseconds: a small integer, where a fraction would be a boxed
 * number in every handshake that holds it.
 */
function wholeMs(t: number): number {
  return Math.ceil(t);
}

/** The certificate types a ClientHello extension lists (RFC 7250 §4); X.509 only when absent or malformed. */
function certTypeList(ext: Extension | undefined): number[] {
  if (!ext) return [CertificateType.x509];
  try {
    const r = new Reader(ext.data);
    const list = [...r.vec8()];
    r.end();
    return list;
  } catch {
    return [CertificateType.x509];
  }
}

/** The single certificate type a ServerHello chose, checked against what we offered. */
function chosenCertType(serverExts: Extension[], type: number, offered: Extension[]): number {
  const ext = findExtension(serverExts, type);
  if (!ext) return CertificateType.x509;
  if (ext.data.length !== 1 || !certTypeList(findExtension(offered, type)).includes(ext.data[0]!)) {
    throw new Fatal(AlertDescription.illegal_parameter, 'certificate type we did not offer');
  }
  return ext.data[0]!;
}

function decodeCid(data: Uint8Array): Uint8Array {
  const r = new Reader(data);
  const cid = r.vec8();
  r.end();
  // A copy, as a view would keep the received datagram alive; none for an empty CID.
  return cid.length === 0 ? NO_BYTES : cid.slice();
}

function safeList(data: Uint8Array): number[] {
  try {
    return decodeU16List(data);
  } catch {
    return [];
  }
}

function verifySignature(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify('sha256', data, { key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}

function computeEcdhSecret(ecdh: ECDH, peerPoint: Uint8Array): Uint8Array {
  if (peerPoint.length !== 65 || peerPoint[0] !== 4) throw new Fatal(AlertDescription.illegal_parameter, 'expected an uncompressed P-256 point');
  try {
    return new Uint8Array(ecdh.computeSecret(peerPoint));
  } catch {
    throw new Fatal(AlertDescription.illegal_parameter, 'invalid ECDH public point');
  }
}
