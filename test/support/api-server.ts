/** `depot serve`'s own composition on loopback for API tests: a temporary data dir, plain CoAP, ephemeral ports. */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDepotServer, type DepotServerConfig, type RunningDepotServer } from '../../src/app/server.js';

export interface ApiTestServer {
  server: RunningDepotServer;
  /** The HTTP API's port on 127.0.0.1. */
  port: number;
  dir: string;
  close(): Promise<void>;
}

export async function startApiTestServer(name: string, token: string, api: DepotServerConfig['api'] = {}): Promise<ApiTestServer> {
  const dir = mkdtempSync(join(tmpdir(), `depot-${name}-`));
  const server = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: dir, allowUnsecured: true, apiToken: token, api });
  return {
    server,
    port: (server.api.server.address() as AddressInfo).port,
    dir,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
