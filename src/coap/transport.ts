/**
 * The boundary between CoAP's message layer and whatever carries datagrams:
 * plain UDP today, DTLS (coaps) later. The layers above never touch sockets.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** Who a datagram came from or goes to. One Peer object per remote endpoint. */
export interface Peer {
  /** Stable identity for maps: "address|port" for UDP; transports may add more. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
  /**
   * The authenticated identity of the peer on a secure transport (PSK identity,
   * certificate subject, raw public key), undefined on plain UDP.
   */
  readonly identity?: PeerIdentity;
}

export type PeerIdentity =
  | { kind: 'psk'; identity: string }
  | { kind: 'x509'; subject: string; commonName?: string; certificateDer: Uint8Array }
  | { kind: 'rpk'; publicKeyDer: Uint8Array };

export type DatagramReceiver = (data: Uint8Array, peer: Peer) => void;
export type TransportErrorListener = (peer: Peer, error: Error) => void;

export interface DatagramTransport {
  /** URI scheme this transport serves: 'coap' for UDP, 'coaps' for DTLS. */
  readonly scheme: 'coap' | 'coaps';
  /** Where this transport listens (after it is bound). */
  address(): { address: string; port: number; family: 'IPv4' | 'IPv6' };
  /** Sends one CoAP message; a secure transport may queue it until its handshake is done. */
  send(data: Uint8Array, peer: Peer): void;
  /** Sets the single receiver of incoming CoAP messages. */
  setReceiver(receiver: DatagramReceiver): void;
  /** Sets the listener for per-peer failures (e.g. a DTLS handshake that failed). */
  setErrorListener(listener: TransportErrorListener): void;
  /**
   * The Peer object for a remote address (for outgoing requests). The address is an IP literal,
   * as replies come from one: resolve names first (CoapClient does). Throws a TypeError otherwise.
   */
  peer(address: string, port: number): Peer;
  close(): Promise<void>;
}

/**
 * Peers are keyed by the address replies come from: a name ("localhost") would key requests
 * apart from their answers, which then never match. Transports check with this.
 */
export function assertIpLiteral(address: string): void {
  if (isIP(address) === 0) throw new TypeError(`peer address ${JSON.stringify(address)} is not an IP literal: resolve the name first`);
}

/** The address to ask a transport's `peer` for: an IP literal as it is, a name resolved. */
export async function peerAddress(host: string): Promise<string> {
  return isIP(host) ? host : (await lookup(host)).address;
}
