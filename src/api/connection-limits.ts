/**
 * Connection caps for the HTTP API's server: a flood of idle or slow connections (the timeouts in
 * HttpLimits end each one eventually) must not exhaust file descriptors, and one source must not
 * take every slot from the others. Connections over a cap are closed at once, before any byte is read.
 */
import type { Server } from 'node:net';

export interface ConnectionLimits {
  /** Open connections at most, all sources together (0: no cap). */
  readonly maxConnections: number;
  /** Open connections at most from one source address (0: no cap; behind a reverse proxy every client is the proxy). */
  readonly maxConnectionsPerSource: number;
}

/** Applies the caps to a listening or soon-listening server; `onRefused` hears of each connection closed by the per-source cap. */
export function limitConnections(server: Server, limits: ConnectionLimits, onRefused?: (source: string) => void): void {
  if (limits.maxConnections > 0) server.maxConnections = limits.maxConnections;
  const cap = limits.maxConnectionsPerSource;
  if (cap <= 0) return;
  const open = new Map<string, number>();
  server.on('connection', (socket) => {
    const source = socket.remoteAddress ?? 'unknown';
    const count = open.get(source) ?? 0;
    if (count >= cap) {
      socket.destroy();
      onRefused?.(source);
      return;
    }
    open.set(source, count + 1);
    socket.once('close', () => {
      const left = (open.get(source) ?? 1) - 1;
      if (left <= 0) open.delete(source);
      else open.set(source, left);
    });
  });
}
