/**
 * The DTLS benchmark's client side, shared by the load generator process (dtls-load.ts) and the
 * driver's readiness probe: Depot's sans-IO `DtlsConnection.client` over one node:dgram socket per
 * handshake slot, PSK with TLS_PSK_WITH_AES_128_CCM_8 only, never resuming (every handshake is full,
 * cookie exchange included: ClientHello, HelloVerifyRequest, ClientHello+cookie, ...).
 */
import { createSocket, type Socket } from 'node:dgram';
import { CipherSuite, CIPHER_SUITES } from '../../src/dtls/cipher.js';
import { DtlsConnection, type DtlsError, type SessionInfo } from '../../src/dtls/connection.js';
import { systemClock } from '../../src/util/clock.js';

/** The PSK every compared server is configured with (libcoap: `-k`, any identity; Depot: this identity). */
export const BENCH_PSK_IDENTITY = 'bench-client';
export const BENCH_PSK_KEY_TEXT = 'depot-bench-psk-0123456789';
export const BENCH_PSK_KEY = Uint8Array.from(Buffer.from(BENCH_PSK_KEY_TEXT, 'utf8'));
export const BENCH_SUITE = CipherSuite.TLS_PSK_WITH_AES_128_CCM_8;
export const BENCH_SUITE_NAME = CIPHER_SUITES.get(BENCH_SUITE)!.name;

export interface HandshakeOutcome {
  /** Milliseconds from the first ClientHello to `connected`. */
  latencyMs: number;
  session: SessionInfo;
}

/**
 * One client endpoint: a UDP socket (its own source port, so servers keep one association per
 * slot) and at most one DtlsConnection at a time.
 */
export class HandshakeSlot {
  private readonly socket: Socket;
  private conn: DtlsConnection | undefined;
  private bound: Promise<void>;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly retransmitMs = 1000,
    private readonly timeoutMs = 10_000,
  ) {
    this.socket = createSocket('udp4');
    this.socket.on('error', () => {}); // ICMP port unreachable while a server starts: the handshake retransmits
    this.socket.on('message', (msg) => this.conn?.handleDatagram(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength)));
    this.bound = new Promise((resolve) => this.socket.bind(0, '127.0.0.1', () => resolve()));
  }

  /**
   * Runs one full handshake; resolves when it completes, rejects with the DtlsError when it fails.
   * `onData` receives application data on the established association.
   */
  async handshake(onData?: (data: Uint8Array) => void): Promise<HandshakeOutcome> {
    await this.bound;
    return new Promise((resolve, reject) => {
      const started = performance.now();
      let settled = false;
      const conn = DtlsConnection.client(
        {
          clock: systemClock,
          psk: { identity: BENCH_PSK_IDENTITY, key: BENCH_PSK_KEY },
          cipherSuites: [BENCH_SUITE],
          initialRetransmitMs: this.retransmitMs,
          handshakeTimeoutMs: this.timeoutMs,
        },
        {
          send: (d) => this.transmit(d),
          data: (d) => onData?.(d),
          connected: (session) => {
            settled = true;
            resolve({ latencyMs: performance.now() - started, session });
          },
          closed: (error?: DtlsError) => {
            if (this.conn === conn) this.conn = undefined;
            if (!settled) {
              settled = true;
              reject(error ?? new Error('association closed during the handshake'));
            }
          },
        },
      );
      this.conn = conn;
      conn.connect();
    });
  }

  /** Datagrams handed to the socket and not sent yet: closing the socket would cancel them. */
  private inFlight = 0;
  private drained: (() => void) | undefined;

  private transmit(datagram: Uint8Array): void {
    this.inFlight++;
    this.socket.send(datagram, this.port, this.host, () => {
      if (--this.inFlight === 0) this.drained?.();
    });
  }

  /** Application data on the current association (false when there is none). */
  send(data: Uint8Array): boolean {
    return this.conn?.send(data) ?? false;
  }

  /** close_notify to the server (if established) and forget the association. */
  closeAssociation(): void {
    const c = this.conn;
    this.conn = undefined;
    c?.close();
  }

  /** close_notify, then closes the socket once that has gone out (at most 1 s later). */
  async close(): Promise<void> {
    this.closeAssociation();
    await this.bound;
    if (this.inFlight > 0) {
      // Without this the close_notify would be cancelled with the socket, and a server would keep
      // the association (libcoap then stalls on a later handshake from the same port).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}

/** A CoAP ping (RFC 7252 §4.3): an empty CON, answered with RST by every CoAP server. */
export function coapPing(messageId: number): Uint8Array {
  return Uint8Array.of(0x40, 0x00, (messageId >> 8) & 0xff, messageId & 0xff);
}

/** True for an RST (or ACK) echoing `messageId`. */
export function isPingAnswer(data: Uint8Array, messageId: number): boolean {
  return data.length >= 4 && ((data[0]! >> 4) & 0x3) >= 2 && ((data[2]! << 8) | data[3]!) === messageId;
}
