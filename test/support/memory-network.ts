/**
 * An in-memory datagram network for unit tests of the sans-IO CoAP layers: datagrams
 * queue up until flush(), can be dropped by a filter, and are recorded for
 * assertions. Real sockets are exercised by the interop tests.
 */
import type { DatagramReceiver, DatagramTransport, Peer, TransportErrorListener } from '../../src/coap/transport.js';

export interface Datagram {
  from: string;
  to: string;
  data: Uint8Array;
}

export class MemoryNetwork {
  readonly log: Datagram[] = [];
  private readonly queue: Datagram[] = [];
  private readonly nodes = new Map<string, MemoryTransport>();
  /** Return false to drop a datagram. */
  filter: (d: Datagram) => boolean = () => true;

  transport(address: string, port: number): MemoryTransport {
    const t = new MemoryTransport(this, address, port);
    this.nodes.set(`${address}|${port}`, t);
    return t;
  }

  enqueue(d: Datagram): void {
    this.log.push(d);
    if (this.filter(d)) this.queue.push(d);
  }

  /** Delivers queued datagrams (and the ones their handling sends) until none are left. */
  flush(limit = 100_000): number {
    let n = 0;
    while (this.queue.length > 0) {
      if (++n > limit) throw new Error('flush limit reached: message loop?');
      const d = this.queue.shift()!;
      const node = this.nodes.get(d.to);
      const [address, port] = d.from.split('|');
      node?.deliver(d.data, node.peer(address!, Number(port)));
    }
    return n;
  }

  /** Datagrams sent from `from` to `to` so far. */
  sent(from: MemoryTransport, to: MemoryTransport): Uint8Array[] {
    return this.log.filter((d) => d.from === from.key && d.to === to.key).map((d) => d.data);
  }
}

export class MemoryTransport implements DatagramTransport {
  readonly scheme = 'coap' as const;
  readonly key: string;
  private receiver: DatagramReceiver = () => undefined;
  closed = false;

  constructor(
    private readonly network: MemoryNetwork,
    private readonly host: string,
    private readonly port: number,
  ) {
    this.key = `${host}|${port}`;
  }

  address() {
    return { address: this.host, port: this.port, family: 'IPv4' as const };
  }
  peer(address: string, port: number): Peer {
    return { key: `${address}|${port}`, address, port, family: 'IPv4' };
  }
  send(data: Uint8Array, peer: Peer): void {
    this.network.enqueue({ from: this.key, to: peer.key, data: Uint8Array.from(data) });
  }
  deliver(data: Uint8Array, peer: Peer): void {
    this.receiver(data, peer);
  }
  setReceiver(receiver: DatagramReceiver): void {
    this.receiver = receiver;
  }
  setErrorListener(_listener: TransportErrorListener): void {}
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
