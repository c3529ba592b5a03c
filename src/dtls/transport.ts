/**
 * DatagramTransport over DTLS 1.2 (coaps): the sans-IO core wired to a node:dgram socket.
 * Server side: a DtlsServerEndpoint accepts associations (cookie exchange first).
 * Client side: `send` to a peer without an association starts a handshake and queues the data.
 */
import { createSocket, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { assertIpLiteral, type DatagramReceiver, type DatagramTransport, type Peer, type PeerIdentity, type TransportErrorListener } from '../coap/transport.js';
import { systemClock, type Clock } from '../util/clock.js';
import { DtlsConnection, DtlsError, type DtlsClientOptions, type SessionInfo } from './connection.js';
import { DtlsServerEndpoint, type DtlsServerEndpointOptions } from './server.js';
import type { ResumableSession } from './session.js';

export interface DtlsTransportOptions {
  /** Accept incoming associations with these settings (PSK lookup, certificate, trust roots ...). */
  server?: Omit<DtlsServerEndpointOptions, 'clock'>;
  /** Start associations to peers we send to with these settings (PSK identity+key, certificate ...). */
  client?: Omit<DtlsClientOptions, 'clock' | 'resume'> & {
    /** Remember each server's session and resume it on the next association (RFC 5246 §7.3). Default true. */
    resumption?: boolean;
  };
  /** Address to bind, as for UdpTransport: '0.0.0.0', '127.0.0.1', '::' … (default '0.0.0.0'). */
  host?: string;
  /** Same as `host` (kept for callers that say address). */
  address?: string;
  /** Local port; 0 picks a free one (default 0). */
  port?: number;
  /** Socket type; by default derived from the bound address. */
  type?: 'udp4' | 'udp6';
  /** For an IPv6 socket bound to '::', refuse IPv4-mapped traffic (default false). */
  ipv6Only?: boolean;
  receiveBufferSize?: number;
  sendBufferSize?: number;
  clock?: Clock;
}

const MAX_CACHED_PEERS = 65_536;

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * The socket's address lookup: peers are nearly always IP literals (from received datagrams), and
 * for those node:dgram's default path (dns.lookup, then a deferred callback) costs a tick per
 * datagram sent. Literals are answered at once; names still go to dns.lookup.
 */
export function literalFirstLookup(hostname: string, options: LookupOneOptions, callback: LookupCallback): void {
  const family = isIP(hostname);
  if (family !== 0) callback(null, hostname, family);
  // node:dgram passes the socket's family as a number here, which dns.lookup accepts as well.
  else dnsLookup(hostname, options as LookupOneOptions & number, callback);
}

class DtlsPeer implements Peer {
  identity?: PeerIdentity;
  constructor(
    readonly key: string,
    readonly address: string,
    readonly port: number,
    readonly family: 'IPv4' | 'IPv6',
  ) {}
}

export class DtlsTransport implements DatagramTransport {
  readonly scheme = 'coaps' as const;
  private readonly clock: Clock;
  private readonly peers = new Map<string, DtlsPeer>();
  private readonly clients = new Map<string, DtlsConnection>();
  private readonly resumable = new Map<string, ResumableSession>();
  private clientOptions: DtlsClientOptions | undefined;
  private readonly endpoint: DtlsServerEndpoint | undefined;
  private receiver: DatagramReceiver = () => {};
  private errorListener: TransportErrorListener = () => {};
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly options: DtlsTransportOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    if (options.server) {
      this.endpoint = new DtlsServerEndpoint(
        { ...options.server, clock: this.clock },
        {
          send: (key, d) => this.transmit(key, d),
          data: (key, d) => this.deliver(key, d),
          connected: (key, s) => this.onConnected(key, s),
          closed: (key, e) => this.onClosed(key, e),
          addressChanged: (oldKey, newKey) => {
            // RFC 9146 §6: the client moved; the association (and its identity) follows it.
            const moved = this.peerForKey(newKey);
            moved.identity = this.peers.get(oldKey)?.identity;
            this.peers.delete(oldKey);
          },
        },
      );
    }
    socket.on('message', (msg, rinfo) => {
      if (this.closed) return;
      const key = `${rinfo.address}|${rinfo.port}`;
      const data = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
      const client = this.clients.get(key);
      if (client) client.handleDatagram(data);
      else this.endpoint?.handleDatagram(key, data);
    });
    // Socket errors (e.g. ICMP port unreachable surfacing as ECONNREFUSED) must not crash the process.
    socket.on('error', () => {});
  }

  /** Creates the socket and binds it (the same shape as UdpTransport.bind). */
  static async bind(options: DtlsTransportOptions): Promise<DtlsTransport> {
    if (!options.server && !options.client) throw new Error('DtlsTransport needs server and/or client options');
    const host = options.host ?? options.address ?? (options.type === 'udp6' ? '::' : '0.0.0.0');
    const type = options.type ?? (isIPv6(host) ? 'udp6' : 'udp4');
    const socket = createSocket({ type, ipv6Only: options.ipv6Only ?? false, lookup: literalFirstLookup });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(options.port ?? 0, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    if (options.receiveBufferSize) socket.setRecvBufferSize(options.receiveBufferSize);
    if (options.sendBufferSize) socket.setSendBufferSize(options.sendBufferSize);
    return new DtlsTransport(socket, options);
  }

  /** Alias of `bind`. */
  static create(options: DtlsTransportOptions): Promise<DtlsTransport> {
    return DtlsTransport.bind(options);
  }

  address(): { address: string; port: number; family: 'IPv4' | 'IPv6' } {
    const a = this.socket.address();
    return { address: a.address, port: a.port, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4' };
  }

  setReceiver(receiver: DatagramReceiver): void {
    this.receiver = receiver;
  }

  setErrorListener(listener: TransportErrorListener): void {
    this.errorListener = listener;
  }

  peer(address: string, port: number): Peer {
    return this.peerFor(address, port);
  }

  private peerFor(address: string, port: number): DtlsPeer {
    const key = `${address}|${port}`;
    let p = this.peers.get(key);
    if (!p) {
      // A cache like UdpTransport's; peers with an association are re-added when they are used.
      if (this.peers.size >= MAX_CACHED_PEERS) this.pruneIdlePeers();
      assertIpLiteral(address);
      p = new DtlsPeer(key, address, port, isIPv6(address) ? 'IPv6' : 'IPv4');
      this.peers.set(key, p);
    }
    return p;
  }

  private pruneIdlePeers(): void {
    for (const key of [...this.peers.keys()]) {
      if (!this.clients.has(key) && !this.endpoint?.connection(key)) this.peers.delete(key);
    }
  }

  /** The session of an established association with `peer`, if any. */
  session(peer: Peer): SessionInfo | undefined {
    return (this.clients.get(peer.key) ?? this.endpoint?.connection(peer.key))?.session;
  }

  send(data: Uint8Array, peer: Peer): void {
    if (this.closed) return;
    const server = this.endpoint?.connection(peer.key);
    if (server && !server.isClosed) {
      if (!server.send(data)) this.errorListener(peer, new DtlsError('internal', 'DTLS send queue full or message too large'));
      return;
    }
    let client = this.clients.get(peer.key);
    if (!client) {
      if (!this.options.client) {
        this.errorListener(peer, new DtlsError('closed', `no DTLS association with ${peer.key}`));
        return;
      }
      client = this.connectClient(peer);
    }
    if (!client.send(data)) this.errorListener(peer, new DtlsError('internal', 'DTLS send queue full or message too large'));
  }

  private connectClient(peer: Peer): DtlsConnection {
    const key = peer.key;
    const resume = this.options.client?.resumption === false ? undefined : this.resumable.get(key);
    let up = false;
    // One options object for every new association (the suites usable with them are worked out
    // once per object); a resumption needs its own.
    this.clientOptions ??= { ...this.options.client!, clock: this.clock };
    const conn = DtlsConnection.client(
      resume ? { ...this.clientOptions, resume } : this.clientOptions,
      {
        send: (d) => this.transmit(key, d),
        data: (d) => this.deliver(key, d),
        connected: (s) => {
          up = true;
          const r = conn.resumable;
          if (r) this.resumable.set(key, r);
          else this.resumable.delete(key);
          this.onConnected(key, s);
        },
        closed: (e) => {
          if (this.clients.get(key) === conn) this.clients.delete(key);
          // A handshake that failed while offering a session must not offer it again, nor may a
          // session the server has lost (it restarted): the next association is a full handshake.
          if ((e && resume && !up) || e?.code === 'association_unknown') this.resumable.delete(key);
          this.onClosed(key, e);
        },
      },
    );
    this.clients.set(key, conn);
    // Keep the caller's Peer object as the one that gets the identity and receives data.
    if (peer instanceof DtlsPeer) this.peers.set(key, peer);
    else this.peerFor(peer.address, peer.port);
    conn.connect();
    return conn;
  }

  /** Peer objects exist only for endpoints with an association (or asked for via `peer()`). */
  private peerForKey(key: string): DtlsPeer {
    const i = key.lastIndexOf('|');
    return this.peerFor(key.slice(0, i), Number(key.slice(i + 1)));
  }

  private transmit(key: string, datagram: Uint8Array): void {
    if (this.closed) return;
    const i = key.lastIndexOf('|');
    this.inFlight++;
    this.socket.send(datagram, Number(key.slice(i + 1)), key.slice(0, i), () => {
      this.inFlight--;
      if (this.inFlight === 0) this.drained?.();
    });
  }

  /** Datagrams handed to the socket and not yet sent (close waits for them, so close_notify goes out). */
  private inFlight = 0;
  private drained: (() => void) | undefined;

  private deliver(key: string, data: Uint8Array): void {
    // A throwing receiver must not tear down the DTLS association (the core would answer internal_error).
    try {
      this.receiver(data, this.peerForKey(key));
    } catch (e) {
      process.emitWarning(`DTLS transport: receiver threw: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private onConnected(key: string, s: SessionInfo): void {
    this.peerForKey(key).identity = s.peerIdentity;
  }

  private onClosed(key: string, error: DtlsError | undefined): void {
    // The Peer keeps the identity it was authenticated with (messages already delivered carry it);
    // the next association with that address gets a fresh Peer object.
    const p = this.peers.get(key) ?? this.peerForKey(key);
    this.peers.delete(key);
    if (error && !this.closed) {
      try {
        this.errorListener(p, error);
      } catch (e) {
        process.emitWarning(`DTLS transport: error listener threw: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  /** Server side: drops cached sessions so they cannot be resumed (see DtlsServerEndpoint.forgetSessions). */
  forgetSessions(predicate: (session: ResumableSession) => boolean): number {
    return this.endpoint?.forgetSessions(predicate) ?? 0;
  }

  /**
   * Client side: the peer stopped answering on this association (a request went unanswered after
   * its retransmissions), so it may have lost the association's state (a server killed and
   * restarted). Ends the association and forgets its resumable session: the next send starts a
   * full handshake instead of more records the peer cannot read. Returns whether there was one.
   */
  forgetAssociation(peer: Peer): boolean {
    const had = this.resumable.delete(peer.key);
    const client = this.clients.get(peer.key);
    if (!client) return had;
    this.clients.delete(peer.key);
    // close_notify: a peer that still knows the association frees it; one that does not drops it.
    client.close();
    return true;
  }

  /** Ends the association with one peer (close_notify). A client-side session stays resumable. */
  disconnect(peer: Peer): void {
    this.clients.get(peer.key)?.close();
    this.endpoint?.close(peer.key);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const c of [...this.clients.values()]) c.close();
    this.endpoint?.close();
    this.closed = true;
    this.clients.clear();
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
