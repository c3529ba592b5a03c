import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { assertIpLiteral, type DatagramReceiver, type DatagramTransport, type Peer, type TransportErrorListener } from './transport.js';

const MAX_CACHED_PEERS = 65_536;

export interface UdpTransportOptions {
  /** Address to bind: '0.0.0.0', '127.0.0.1', '::', '::1' … (default '0.0.0.0'). */
  host?: string;
  /** Port to bind; 0 picks a free one (default 0). */
  port?: number;
  /** For an IPv6 socket bound to '::', refuse IPv4-mapped traffic (default false). */
  ipv6Only?: boolean;
  /** Kernel buffer sizes; a busy server wants more than the default 208 KiB. */
  receiveBufferSize?: number;
  sendBufferSize?: number;
}

/**
 * Linux caps SO_RCVBUF / SO_SNDBUF at net.core.rmem_max / wmem_max (4 MiB or less by default,
 * 208 KiB on many systems) without an error, and reports twice the granted size (the kernel
 * counts its bookkeeping). A burst of registrations that outruns a capped buffer is dropped and
 * costs each device a CoAP retransmission (2–3 s): say so once, with the fix.
 */
function warnIfClamped(which: 'receive' | 'send', wanted: number, reported: number, sysctl: string): void {
  if (reported >= wanted) return;
  process.emitWarning(
    `UDP ${which} buffer is ${Math.floor(reported / 2 / 1024)} KiB, not the ${Math.floor(wanted / 1024)} KiB asked for: ` +
      `the kernel caps it at ${sysctl}; raise it (e.g. sysctl -w ${sysctl}=${wanted}) for large fleets`,
  );
}

/** CoAP over plain UDP (RFC 7252), IPv4 or IPv6 depending on the bound address. */
export class UdpTransport implements DatagramTransport {
  readonly scheme = 'coap' as const;
  private receiver: DatagramReceiver = () => undefined;
  private readonly peers = new Map<string, Peer>();
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('message', (data, rinfo) => {
      this.receiver(data, this.peer(rinfo.address, rinfo.port));
    });
    // Errors on an unconnected UDP socket (e.g. ICMP unreachable) must not crash the process.
    socket.on('error', (error) => process.emitWarning(`UDP socket error: ${error.message}`));
  }

  static async bind(options: UdpTransportOptions = {}): Promise<UdpTransport> {
    const host = options.host ?? '0.0.0.0';
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', ipv6Only: options.ipv6Only ?? false });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(options.port ?? 0, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    if (options.receiveBufferSize) {
      socket.setRecvBufferSize(options.receiveBufferSize);
      warnIfClamped('receive', options.receiveBufferSize, socket.getRecvBufferSize(), 'net.core.rmem_max');
    }
    if (options.sendBufferSize) {
      socket.setSendBufferSize(options.sendBufferSize);
      warnIfClamped('send', options.sendBufferSize, socket.getSendBufferSize(), 'net.core.wmem_max');
    }
    return new UdpTransport(socket);
  }

  /** The kernel's socket buffers as granted (bytes; Linux reports twice what it grants, halved here). */
  bufferSizes(): { receive: number; send: number } {
    return { receive: Math.floor(this.socket.getRecvBufferSize() / 2), send: Math.floor(this.socket.getSendBufferSize() / 2) };
  }

  address(): { address: string; port: number; family: 'IPv4' | 'IPv6' } {
    const a = this.socket.address();
    return { address: a.address, port: a.port, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4' };
  }

  peer(address: string, port: number): Peer {
    const key = address + '|' + port;
    let peer = this.peers.get(key);
    if (!peer) {
      // Peer objects are a cache; the key is what identifies a peer, so clearing is safe.
      if (this.peers.size >= MAX_CACHED_PEERS) this.peers.clear();
      assertIpLiteral(address);
      peer = { key, address, port, family: isIPv6(address) ? 'IPv6' : 'IPv4' };
      this.peers.set(key, peer);
    }
    return peer;
  }

  send(data: Uint8Array, peer: Peer): void {
    if (this.closed) return;
    // No per-datagram callback: it would cost a closure on the hot path. UDP send
    // failures surface as socket 'error' events (reported above).
    this.socket.send(data, peer.port, peer.address);
  }

  setReceiver(receiver: DatagramReceiver): void {
    this.receiver = receiver;
  }

  /** Plain UDP has no per-peer failures to report (no handshake, no ICMP on unconnected sockets). */
  setErrorListener(_listener: TransportErrorListener): void {}

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
