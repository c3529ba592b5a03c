/** In-memory network for DTLS unit tests: a client connection and a server endpoint on a ManualClock. */
import { ManualClock } from '../../../src/util/clock.js';
import { DtlsConnection, type DtlsClientOptions, type DtlsError, type SessionInfo } from '../../../src/dtls/connection.js';
import { DtlsServerEndpoint, type DtlsServerEndpointOptions } from '../../../src/dtls/server.js';

export const PEER = '127.0.0.1|5684';

export type Hook = (dir: 'toServer' | 'toClient', d: Uint8Array, index: number) => boolean | Uint8Array | undefined;

export interface Pair {
  clock: ManualClock;
  client: DtlsConnection;
  server: DtlsServerEndpoint;
  /** Datagrams in flight, delivered by `pump`. */
  toServer: Uint8Array[];
  toClient: Uint8Array[];
  clientLog: { connected?: SessionInfo; closed?: DtlsError | 'clean'; data: Uint8Array[] };
  serverLog: { connected?: SessionInfo; closed?: DtlsError | 'clean'; data: Uint8Array[] };
  /** Counts of datagrams ever sent each way. */
  sent: { toServer: number; toClient: number };
  /**
   * Delivers queued datagrams until none remain. The hook sees every datagram (with a running
   * index): return true to drop it, a Uint8Array to deliver that instead, false/undefined to pass.
   */
  pump(hook?: Hook): void;
  /** Pumps, then advances the clock in `stepMs` steps until `done()` or `maxMs` elapsed. */
  settle(done: () => boolean, hook?: Hook, stepMs?: number, maxMs?: number): void;
}

export function makePair(
  clientOpts: Omit<DtlsClientOptions, 'clock'>,
  serverOpts: Omit<DtlsServerEndpointOptions, 'clock'>,
  clock = new ManualClock(),
): Pair {
  const toServer: Uint8Array[] = [];
  const toClient: Uint8Array[] = [];
  const sent = { toServer: 0, toClient: 0 };
  const clientLog: Pair['clientLog'] = { data: [] };
  const serverLog: Pair['serverLog'] = { data: [] };
  const client = DtlsConnection.client(
    { ...clientOpts, clock },
    {
      send: (d) => {
        sent.toServer++;
        toServer.push(d);
      },
      data: (d) => clientLog.data.push(d),
      connected: (s) => (clientLog.connected = s),
      closed: (e) => (clientLog.closed = e ?? 'clean'),
    },
  );
  const server = new DtlsServerEndpoint(
    { ...serverOpts, clock },
    {
      send: (_peer, d) => {
        sent.toClient++;
        toClient.push(d);
      },
      data: (_peer, d) => serverLog.data.push(d),
      connected: (_peer, s) => (serverLog.connected = s),
      closed: (_peer, e) => (serverLog.closed = e ?? 'clean'),
    },
  );
  let index = 0;
  const apply = (hook: Hook | undefined, dir: 'toServer' | 'toClient', d: Uint8Array): Uint8Array | undefined => {
    const r = hook?.(dir, d, index++);
    if (r === true) return undefined;
    return r instanceof Uint8Array ? r : d;
  };
  const pump: Pair['pump'] = (hook) => {
    for (let guard = 0; guard < 1000 && (toServer.length > 0 || toClient.length > 0); guard++) {
      const s = toServer.shift();
      const s2 = s && apply(hook, 'toServer', s);
      if (s2) server.handleDatagram(PEER, s2);
      const c = toClient.shift();
      const c2 = c && apply(hook, 'toClient', c);
      if (c2) client.handleDatagram(c2);
    }
  };
  const settle: Pair['settle'] = (done, hook, stepMs = 250, maxMs = 120_000) => {
    pump(hook);
    for (let t = 0; t < maxMs && !done(); t += stepMs) {
      clock.advance(stepMs);
      pump(hook);
    }
  };
  return { clock, client, server, toServer, toClient, clientLog, serverLog, sent, pump, settle };
}
