/**
 * The simulated fleet `depot serve --sim N` runs beside the server: devices of several
 * makes and models register over DTLS, each with its own PSK, bound in the credential
 * store before it starts (so the demo takes the secure path, like real devices).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SimProfile } from '../sim/profile.js';
import { devicePsk, parseProfile } from '../sim/profile.js';
import { Simulator, simulatedEndpointName } from '../sim/simulator.js';
import type { Store } from '../store/types.js';

/** Three makes, five models, mixed OS versions: enough to see package selection by model. */
export const DEMO_PROFILE: SimProfile = {
  lifetime: 300,
  models: [
    { manufacturer: 'Acme', model: 'Rocket-1', firmwareVersion: '1.4.2', osVersion: 'AcmeOS 3.1', deviceType: 'tracker', weight: 3 },
    { manufacturer: 'Acme', model: 'Rocket-2', firmwareVersion: '2.0.0', osVersion: 'AcmeOS 4.0', deviceType: 'tracker', weight: 2 },
    { manufacturer: 'Globex', model: 'G-200', firmwareVersion: '7.1', osVersion: 'Zephyr 3.5', deviceType: 'meter', weight: 2 },
    { manufacturer: 'Globex', model: 'G-300', firmwareVersion: '8.0', osVersion: 'Zephyr 3.7', deviceType: 'meter', weight: 1 },
    { manufacturer: 'Initech', model: 'Gateway-X', firmwareVersion: '5.2', osVersion: 'Linux 6.1', deviceType: 'gateway', weight: 1 },
  ],
};

export interface DemoFleetOptions {
  count: number;
  /** coaps:// (or coap:// with --allow-unsecured) URI of the local server. */
  serverUri: string;
  store: Pick<Store, 'credentials'>;
  profileFile?: string;
  endpointPrefix?: string;
}

export async function startDemoFleet(options: DemoFleetOptions): Promise<Simulator> {
  const base = options.profileFile ? parseProfile(JSON.parse(readFileSync(options.profileFile, 'utf8'))) : DEMO_PROFILE;
  const secure = options.serverUri.startsWith('coaps:');
  // Per-device keys derived from a secret made for this run (unless the profile brings its own).
  const profile: SimProfile = secure && !base.psk ? { ...base, psk: { deriveFrom: randomBytes(16).toString('hex') } } : base;
  const prefix = options.endpointPrefix ?? 'depot-sim-';
  if (secure) {
    for (let i = 1; i <= options.count; i++) {
      const endpoint = simulatedEndpointName(prefix, i, options.count);
      const psk = devicePsk(profile, endpoint)!;
      await options.store.credentials.bind(endpoint, { kind: 'psk', identity: psk.identity, key: psk.key }, Date.now());
    }
  }
  const simulator = new Simulator({ server: options.serverUri, count: options.count, profile, endpointPrefix: prefix, host: '127.0.0.1' });
  await simulator.start();
  return simulator;
}
