import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createApi } from '../api/server.js';
import { Code, ContentFormat } from '../coap/codes.js';
import { CoapServer } from '../coap/server.js';
import { UdpTransport } from '../coap/udp.js';
import { Lwm2mServer } from '../lwm2m/server/server.js';
import { openSqliteStore } from '../store/index.js';
import type { SqliteStore } from '../store/index.js';

export interface DepotServerConfig {
  host: string;
  coapPort: number;
  httpPort: number;
  /** Address the HTTP API binds to (default: the same as host). */
  httpHost?: string;
  dataDir: string;
  /** Accept LwM2M registrations over plain CoAP (trusted networks and simulations only). */
  allowUnsecured: boolean;
  /** The API bearer token; default: DEPOT_API_TOKEN, else <dataDir>/api-token (created once). */
  apiToken?: string;
}

export interface RunningDepotServer {
  coap: CoapServer;
  lwm2m: Lwm2mServer;
  store: SqliteStore;
  api: FastifyInstance;
  /** Where each listener is bound, e.g. { coap: 'coap://0.0.0.0:5683' }. */
  listening: Record<string, string>;
  close(): Promise<void>;
}

export const DEPOT_VERSION = '0.1.0';

/** The API token: given, from the environment, or generated once into the data dir (mode 0600). */
export function apiToken(dataDir: string, given?: string): { token: string; source: string } {
  if (given) return { token: given, source: 'command line' };
  const fromEnv = process.env.DEPOT_API_TOKEN;
  if (fromEnv) return { token: fromEnv, source: 'DEPOT_API_TOKEN' };
  const file = join(dataDir, 'api-token');
  if (!existsSync(file)) {
    const temp = file + '.tmp';
    writeFileSync(temp, randomBytes(24).toString('base64url') + '\n', { mode: 0o600 });
    renameSync(temp, file);
  }
  return { token: readFileSync(file, 'utf8').trim(), source: file };
}

/** Starts Depot: the embedded store, CoAP with the LwM2M server, and the HTTP API. */
export async function startDepotServer(config: DepotServerConfig): Promise<RunningDepotServer> {
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const store = openSqliteStore({ dataDir });
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
  const lwm2m = new Lwm2mServer({ store, coap: { coap }, allowUnsecured: config.allowUnsecured });
  const { token, source } = apiToken(dataDir, config.apiToken);
  const api = createApi({ lwm2m, store, token, version: DEPOT_VERSION });
  const httpHost = config.httpHost ?? config.host;
  await api.listen({ host: httpHost, port: config.httpPort });
  const a = transport.address();
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  const httpAddress = api.server.address();
  const httpPort = typeof httpAddress === 'object' && httpAddress ? httpAddress.port : config.httpPort;
  return {
    coap,
    lwm2m,
    store,
    api,
    listening: {
      coap: `coap://${host}:${a.port}`,
      http: `http://${httpHost.includes(':') ? `[${httpHost}]` : httpHost}:${httpPort}/api/v1 (OpenAPI at /api/openapi.json)`,
      'api token': source,
      'data dir': dataDir,
    },
    close: async () => {
      await api.close();
      await lwm2m.close();
      await coap.close();
      store.close();
    },
  };
}
