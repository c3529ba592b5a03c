/** In-memory network for DTLS unit tests: a client connection and a server endpoint on a ManualClock. */
import { ManualClock } from '../../../src/util/clock.js';
import { DtlsConnection, type DtlsClientOptions, type DtlsError, type SessionInfo } from '../../../src/dtls/connection.js';
import { DtlsServerEndpoint, type DtlsServerEndpointOptions } from '../../../src/dtls/server.js';

export const PEER = '127.0.0.1|5684';

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
  /** Delivers queued datagrams until none remain; `drop` may discard some (return true to drop). */
  pump(drop?: (dir: 'toServer' | 'toClient', d: Uint8Array, index: number) => boolean): void;
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
  const pump: Pair['pump'] = (drop) => {
    for (let guard = 0; guard < 1000 && (toServer.length > 0 || toClient.length > 0); guard++) {
      const s = toServer.shift();
      if (s && !drop?.('toServer', s, index++)) server.handleDatagram(PEER, s);
      const c = toClient.shift();
      if (c && !drop?.('toClient', c, index++)) client.handleDatagram(c);
    }
  };
  return { clock, client, server, toServer, toClient, clientLog, serverLog, sent, pump };
}
