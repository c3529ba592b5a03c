/** Shared set-up for the client conformance tests: a client on loopback against the test driver. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lwm2mClient } from '../../../src/lwm2m/client/index.js';
import type { Lwm2mClientConfig } from '../../../src/lwm2m/client/index.js';
import { ManualClock } from '../../../src/util/clock.js';
import { Lwm2mServerTestDriver } from './server-test-driver.js';

export const DEVICE = {
  manufacturer: 'Acme Devices',
  modelNumber: 'GW-200',
  serialNumber: 'SN-0001',
  firmwareVersion: '4.2.1',
  deviceType: 'gateway',
  softwareVersion: 'AcmeOS 5.10',
};

export interface Setup {
  driver: Lwm2mServerTestDriver;
  client: Lwm2mClient;
  clock: ManualClock | undefined;
  dir: string;
  close(): Promise<void>;
}

/** Starts the driver and a client configured for it (not yet started unless `start`). */
export async function setup(options: { manualClock?: boolean; start?: boolean; config?: Partial<Lwm2mClientConfig> } = {}): Promise<Setup> {
  const clock = options.manualClock ? new ManualClock(1_000_000) : undefined;
  const driver = await Lwm2mServerTestDriver.start(clock ? { clockNow: () => clock.now() } : {});
  const dir = await mkdtemp(join(tmpdir(), 'depot-lwm2m-client-'));
  const client = new Lwm2mClient({
    endpoint: 'urn:dev:test-1',
    serverUri: driver.uri,
    lifetime: 300,
    host: '127.0.0.1',
    device: DEVICE,
    stateFile: join(dir, 'state.json'),
    retry: { initialMs: 50, maxMs: 200 },
    random: () => 0,
    ...(clock ? { clock } : {}),
    ...options.config,
  });
  if (options.start !== false) await client.start();
  return {
    driver,
    client,
    clock,
    dir,
    close: async () => {
      await client.stop({ deregister: false }).catch(() => undefined);
      await driver.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function waitUntil(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
