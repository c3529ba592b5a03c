import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Code, ContentFormat } from '../coap/codes.js';
import { CoapServer } from '../coap/server.js';
import { UdpTransport } from '../coap/udp.js';

export interface DepotServerConfig {
  host: string;
  coapPort: number;
  dataDir: string;
}

export interface RunningDepotServer {
  coap: CoapServer;
  /** Where each listener is bound, e.g. { coap: 'coap://0.0.0.0:5683' }. */
  listening: Record<string, string>;
  close(): Promise<void>;
}

export const DEPOT_VERSION = '0.1.0';

/** Starts Depot's listeners. Grows with each layer (LwM2M, DTLS, HTTP API). */
export async function startDepotServer(config: DepotServerConfig): Promise<RunningDepotServer> {
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const transport = await UdpTransport.bind({ host: config.host, port: config.coapPort, receiveBufferSize: 4 * 1024 * 1024 });
  const coap = new CoapServer({ transport });
  const started = Date.now();
  coap.resource('/depot/info', {
    title: 'Depot server information',
    contentFormats: [ContentFormat.Json],
    get: () => ({
      code: Code.Content,
      contentFormat: ContentFormat.Json,
      payload: JSON.stringify({ name: 'depot', version: DEPOT_VERSION, uptimeSeconds: Math.round((Date.now() - started) / 1000) }),
    }),
  });
  const a = transport.address();
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    coap,
    listening: { coap: `coap://${host}:${a.port}`, dataDir },
    close: () => coap.close(),
  };
}
