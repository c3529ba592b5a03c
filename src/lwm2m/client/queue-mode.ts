/**
 * Queue mode (TS Core 1.1: "Q" in the Register, §6.2.1): after a quiet period the client stops
 * listening (a sleeping device's radio is off); anything it sends wakes it up again. Done as a
 * transport wrapper so that the CoAP layers above are unchanged: while asleep, incoming datagrams
 * are dropped, which is what the server sees of a sleeping device.
 */
import type { DatagramReceiver, DatagramTransport, Peer, TransportErrorListener } from '../../coap/transport.js';
import type { Clock, Timer } from '../../util/clock.js';

export class QueueModeTransport implements DatagramTransport {
  readonly scheme: 'coap' | 'coaps';
  private asleep = false;
  private timer: Timer | undefined;

  constructor(
    private readonly inner: DatagramTransport,
    private readonly clock: Clock,
    /** Awake time after the last datagram in either direction (ms). */
    private readonly awakeMs: number,
    private readonly onSleep: () => void,
  ) {
    this.scheme = inner.scheme;
    this.touch();
  }

  get sleeping(): boolean {
    return this.asleep;
  }

  /** Wakes up (e.g. before an Update) and restarts the awake period. */
  wake(): void {
    this.asleep = false;
    this.touch();
  }

  private touch(): void {
    this.timer?.cancel();
    this.timer = this.clock.setTimer(this.awakeMs, () => {
      this.timer = undefined;
      this.asleep = true;
      this.onSleep();
    });
  }

  address(): { address: string; port: number; family: 'IPv4' | 'IPv6' } {
    return this.inner.address();
  }

  send(data: Uint8Array, peer: Peer): void {
    this.wake();
    this.inner.send(data, peer);
  }

  setReceiver(receiver: DatagramReceiver): void {
    this.inner.setReceiver((data, peer) => {
      if (this.asleep) return;
      this.touch();
      receiver(data, peer);
    });
  }

  setErrorListener(listener: TransportErrorListener): void {
    this.inner.setErrorListener(listener);
  }

  peer(address: string, port: number): Peer {
    return this.inner.peer(address, port);
  }

  /** Passes DtlsTransport.forgetAssociation through (false when the inner transport has none). */
  forgetAssociation(peer: Peer): boolean {
    return canForgetAssociations(this.inner) ? this.inner.forgetAssociation(peer) : false;
  }

  close(): Promise<void> {
    this.timer?.cancel();
    this.timer = undefined;
    return this.inner.close();
  }
}

/** A transport with associations that can be dropped (DtlsTransport, and wrappers of it). */
export interface AssociationForgetting {
  forgetAssociation(peer: Peer): boolean;
}

export function canForgetAssociations(t: DatagramTransport): t is DatagramTransport & AssociationForgetting {
  return typeof (t as Partial<AssociationForgetting>).forgetAssociation === 'function';
}
