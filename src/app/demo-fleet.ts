/**
 * The simulated fleet `depot serve --sim N` runs beside the server: devices of several
 * makes and models register over DTLS, each with its own PSK, bound in the credential
 * store before it starts (so the demo takes the secure path, like real devices).
 *
 * The demo devices have Object 9 and trust a demo package signing key kept in
 * <dataDir>/demo-signing/ (made on first use), so packages built with
 * `depot package build --key <dataDir>/demo-signing/depot-demo.key.pem` install on them.
 * Their hardware differs by model, as in a real fleet: the Globex G-200 meter assembles
 * packages in 256 KiB of RAM (bigger ones fail with Out of memory), the G-300 has no script
 * runtime, the Rocket-2 speaks the registry encoding of Object 9.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CERT_FILE_MODE, KEY_FILE_MODE, writeFileAtomic } from '../pki/files.js';
import type { SimProfile } from '../sim/profile.js';
import { devicePsk, parseProfile } from '../sim/profile.js';
import { Simulator, simulatedEndpointName } from '../sim/simulator.js';
import type { Store } from '../store/types.js';
import { COMPLIANCE_PROFILES, COMPLIANCE_PROFILE_NAMES, makeSimPhone } from '../sim/omadm/profiles.js';
import type { SimPhone } from '../sim/omadm/profiles.js';

/** Three makes, five models, mixed OS versions: enough to see package selection by model. */
export const DEMO_PROFILE: SimProfile = {
  lifetime: 300,
  models: [
    { manufacturer: 'Acme', model: 'Rocket-1', firmwareVersion: '1.4.2', osVersion: 'AcmeOS 3.1', deviceType: 'tracker', weight: 3, behaviours: { installer: 'sim-good' } },
    { manufacturer: 'Acme', model: 'Rocket-2', firmwareVersion: '2.0.0', osVersion: 'AcmeOS 4.0', deviceType: 'tracker', weight: 2, behaviours: { installer: 'sim-good', encoding: 'registry' } },
    { manufacturer: 'Globex', model: 'G-200', firmwareVersion: '7.1', osVersion: 'Zephyr 3.5', deviceType: 'meter', weight: 2, behaviours: { installer: 'sim-good', memoryBytes: 256 << 10 } },
    { manufacturer: 'Globex', model: 'G-300', firmwareVersion: '8.0', osVersion: 'Zephyr 3.7', deviceType: 'meter', weight: 1, behaviours: { installer: 'sim-good', scripts: false } },
    { manufacturer: 'Initech', model: 'Gateway-X', firmwareVersion: '5.2', osVersion: 'Linux 6.1', deviceType: 'gateway', weight: 1, behaviours: { installer: 'sim-good' } },
  ],
};

export interface DemoFleetOptions {
  count: number;
  /** coaps:// (or coap:// with --allow-unsecured) URI of the local server. */
  serverUri: string;
  store: Pick<Store, 'credentials'>;
  /** The server's data directory: the demo signing key and the devices' Object 9 files go below it. */
  dataDir: string;
  profileFile?: string;
  endpointPrefix?: string;
}

export const DEMO_KEY_ID = 'depot-demo';

/** The demo package signing key pair (<dataDir>/demo-signing/depot-demo.{key,pub}.pem), made once. */
export async function demoSigningKey(dataDir: string): Promise<{ keyId: string; privateKeyFile: string; publicKeyPem: string }> {
  const dir = join(dataDir, 'demo-signing');
  const privateKeyFile = join(dir, `${DEMO_KEY_ID}.key.pem`);
  const publicKeyFile = join(dir, `${DEMO_KEY_ID}.pub.pem`);
  try {
    return { keyId: DEMO_KEY_ID, privateKeyFile, publicKeyPem: await readFile(publicKeyFile, 'utf8') };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  await writeFileAtomic(privateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: KEY_FILE_MODE });
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  // Written last: its presence means the pair is complete.
  await writeFileAtomic(publicKeyFile, publicKeyPem, { mode: CERT_FILE_MODE });
  return { keyId: DEMO_KEY_ID, privateKeyFile, publicKeyPem };
}

export async function startDemoFleet(options: DemoFleetOptions): Promise<Simulator> {
  const base = options.profileFile ? parseProfile(JSON.parse(readFileSync(options.profileFile, 'utf8'))) : DEMO_PROFILE;
  const secure = options.serverUri.startsWith('coaps:');
  // Per-device keys derived from a secret made for this run (unless the profile brings its own).
  let profile: SimProfile = secure && !base.psk ? { ...base, psk: { deriveFrom: randomBytes(16).toString('hex') } } : base;
  if (!profile.trust && profile.models.some((m) => m.behaviours?.installer)) {
    const key = await demoSigningKey(options.dataDir);
    profile = { ...profile, trust: { [key.keyId]: key.publicKeyPem } };
  }
  const prefix = options.endpointPrefix ?? 'depot-sim-';
  if (secure) {
    for (let i = 1; i <= options.count; i++) {
      const endpoint = simulatedEndpointName(prefix, i, options.count);
      const psk = devicePsk(profile, endpoint)!;
      await options.store.credentials.bind(endpoint, { kind: 'psk', identity: psk.identity, key: psk.key }, Date.now());
    }
  }
  const simulator = new Simulator({ server: options.serverUri, count: options.count, profile, endpointPrefix: prefix, host: /^coaps?:\/\/(127\.|\[::1\]|localhost)/.test(options.serverUri) ? '127.0.0.1' : '0.0.0.0', dataDir: join(options.dataDir, 'sim') });
  await simulator.start();
  return simulator;
}

// ---------------------------------------------------------------- OMA DM phones (issue 14)

export interface DemoPhonesOptions {
  count: number;
  /** The DM endpoint's URL (https://host:port/dm). */
  dmUrl: string;
  /** Depot's root certificate (PEM), which every phone but the untrusting ones trusts. */
  caPem: string | undefined;
  store: { omadmAccounts: { put(input: { deviceId: string; clientUsername: string; clientPassword: string }, nonce: Uint8Array, now: number): Promise<unknown> } };
  /** How often each phone opens a session of its own (default 60 s). */
  sessionIntervalMs?: number;
  log?: (line: string) => void;
}

export interface DemoPhones {
  readonly phones: readonly SimPhone[];
  stats(): { total: number; sessions: number; failures: number; byProfile: Record<string, number> };
  stop(): Promise<void>;
}

/**
 * Simulated OMA DM phones beside the LwM2M fleet, one compliance profile after the other (full
 * DM + SCOMO, without SCOMO, XML only, WBXML only, MD5 only, untrusting, needs confirmation,
 * flaky, no DM at all): each gets a DM account, opens a session at start (so its DevInfo and
 * DevDetail are in the inventory) and then every interval, and once more after a SCOMO
 * operation finished on it (to report the result).
 */
export async function startDemoPhones(options: DemoPhonesOptions): Promise<DemoPhones> {
  const phones: SimPhone[] = [];
  for (let i = 1; i <= options.count; i++) {
    const profile = COMPLIANCE_PROFILE_NAMES[(i - 1) % COMPLIANCE_PROFILE_NAMES.length]!;
    const deviceId = `IMEI:35${String(8_000_000_000_000 + i).padStart(13, '0')}`;
    const password = randomBytes(12).toString('base64url');
    if (COMPLIANCE_PROFILES[profile].dm) await options.store.omadmAccounts.put({ deviceId, clientUsername: deviceId, clientPassword: password }, randomBytes(16), Date.now());
    phones.push(makeSimPhone(profile, { deviceId, password, index: i, ...(options.caPem === undefined ? {} : { caPem: options.caPem }), seed: i }));
  }
  let sessions = 0;
  let failures = 0;
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();
  const busy = new Set<SimPhone>();
  const session = async (p: SimPhone): Promise<void> => {
    if (stopped || p.phone === undefined || busy.has(p)) return;
    busy.add(p);
    try {
      await p.phone.runSession(options.dmUrl);
      sessions++;
      if (p.scomo !== undefined) {
        await p.scomo.idle();
        if (p.phone.pendingAlerts > 0 && !stopped) {
          await p.phone.runSession(options.dmUrl);
          sessions++;
        }
      }
    } catch (error) {
      failures++;
      if (failures <= 5) options.log?.(`demo phone ${p.deviceId} (${p.profile}): ${(error as Error).message}`);
    } finally {
      busy.delete(p);
    }
  };
  const interval = options.sessionIntervalMs ?? 60_000;
  phones.forEach((p, i) => {
    if (p.phone === undefined) return;
    // Staggered, so a large demo fleet does not arrive at once.
    const first = setTimeout(() => {
      void session(p);
      const every = setInterval(() => void session(p), interval);
      every.unref();
      timers.add(every);
    }, Math.min(i * 20, 5_000));
    first.unref();
    timers.add(first);
  });
  return {
    phones,
    stats: () => {
      const byProfile: Record<string, number> = {};
      for (const p of phones) byProfile[p.profile] = (byProfile[p.profile] ?? 0) + 1;
      return { total: phones.length, sessions, failures, byProfile };
    },
    stop: async () => {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      for (const p of phones) p.scomo?.stop();
      await Promise.all(phones.map((p) => p.scomo?.idle() ?? Promise.resolve()));
    },
  };
}
