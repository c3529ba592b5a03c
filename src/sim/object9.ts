/**
 * The simulated devices' Object 9 (Software Management): which installer model a device
 * runs and what its hardware and network can do. Each failure a real device reports is
 * reached here through the cause a real device would have, not a result-code switch:
 *
 *   storageBytes         flash for staging a package       → Not enough storage (3)
 *   memoryBytes          RAM the device assembles it in    → Out of memory (4)
 *   linkDropsAfterBytes  the radio link is lost mid-download → Connection lost (5)
 *   linkFlakyEveryBytes  the link drops every N bytes and comes back: downloads resume
 *   downloadBytesPerSecond  a slow link: downloads take their time (a server can go down mid-way)
 *   (a package signed by a key the device does not trust)  → Integrity failure (6)
 *   scripts: false       no script runtime on the device    → Unsupported package type (7)
 *   pullSchemes          URI schemes its downloader speaks  → Invalid URI (8)
 *   flashFault           the staging storage is unusable    → Device defined error (9)
 *   installer            the installer model (SIM_MODELS)   → Installation failure (10), hangs, reboots
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FetchError, SIM_MODELS, SimulatedInstaller, SoftwareManagement, type PackageFetcher } from '../lwm2m/objects/software-management/index.js';
import type { ProfileName } from '../lwm2m/objects/software-management/encoding.js';
import type { TrustStore } from '../pkg/index.js';
import type { Clock } from '../util/clock.js';
import { verifyVendorImage } from './vendor-format.js';

export interface Object9Behaviours {
  /** Installer model: one of SIM_MODELS (sim-good, sim-broken-installer, ...). */
  installer?: string;
  /** Flash available for a staged package; default 64 MiB. */
  storageBytes?: number;
  /** The device assembles a package in this much RAM before flashing it (unset: streams to flash). */
  memoryBytes?: number;
  /** Whether the device can run package lifecycle scripts; default true. */
  scripts?: boolean;
  /** URI schemes the device's downloader supports; default coap, coaps, http, https. */
  pullSchemes?: string[];
  /** After this many bytes of a download the link is lost for good (resuming does not help). */
  linkDropsAfterBytes?: number;
  /** The link drops every this many bytes and comes back: the device resumes each time. */
  linkFlakyEveryBytes?: number;
  /** The link carries at most this many package bytes per second (a slow radio). */
  downloadBytesPerSecond?: number;
  /** The staging storage cannot be written (a broken flash partition). */
  flashFault?: boolean;
  /** Object 9 encoding the device speaks; default seed. */
  encoding?: ProfileName;
  /**
   * The device's integrity check expects its vendor's format (src/sim/vendor-format.ts, the
   * ACMEFW01 header with the body's SHA-256) instead of Depot's signed package: Depot's
   * packages fail its check, a vendor image relayed byte for byte installs.
   */
  vendorFormat?: 'acmefw';
}

export const DEFAULT_STORAGE_BYTES = 64 << 20;
const DEFAULT_SCHEMES = ['coap', 'coaps', 'http', 'https'];
const SCHEMES = ['coap', 'coaps', 'http', 'https'];

export class BehaviourError extends Error {
  override readonly name = 'BehaviourError';
}

/** Validates a model's `behaviours` object (from a profile); `where` names it in errors. */
export function parseObject9Behaviours(value: unknown, where: string): Object9Behaviours {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BehaviourError(`${where} must be an object`);
  const o = value as Record<string, unknown>;
  const known = new Set(['installer', 'storageBytes', 'memoryBytes', 'scripts', 'pullSchemes', 'linkDropsAfterBytes', 'linkFlakyEveryBytes', 'downloadBytesPerSecond', 'flashFault', 'encoding', 'vendorFormat']);
  for (const key of Object.keys(o)) if (!known.has(key)) throw new BehaviourError(`${where}.${key}: unknown behaviour (${[...known].join(', ')})`);
  const out: Object9Behaviours = {};
  if (o.installer !== undefined) {
    if (typeof o.installer !== 'string' || !SIM_MODELS[o.installer]) throw new BehaviourError(`${where}.installer: unknown behaviour ${typeof o.installer === 'string' ? o.installer : JSON.stringify(o.installer)} (${Object.keys(SIM_MODELS).join(', ')})`);
    out.installer = o.installer;
  }
  for (const key of ['storageBytes', 'memoryBytes', 'linkDropsAfterBytes', 'linkFlakyEveryBytes'] as const) {
    const v = o[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new BehaviourError(`${where}.${key} must be a whole number of bytes`);
    out[key] = v;
  }
  if (o.downloadBytesPerSecond !== undefined) {
    const v = o.downloadBytesPerSecond;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new BehaviourError(`${where}.downloadBytesPerSecond must be a whole number of bytes, at least 1`);
    out.downloadBytesPerSecond = v;
  }
  for (const key of ['scripts', 'flashFault'] as const) {
    const v = o[key];
    if (v === undefined) continue;
    if (typeof v !== 'boolean') throw new BehaviourError(`${where}.${key} must be true or false`);
    out[key] = v;
  }
  if (o.pullSchemes !== undefined) {
    if (!Array.isArray(o.pullSchemes) || !o.pullSchemes.every((s): s is string => typeof s === 'string' && SCHEMES.includes(s))) {
      throw new BehaviourError(`${where}.pullSchemes must be a list of ${SCHEMES.join(', ')}`);
    }
    out.pullSchemes = [...o.pullSchemes];
  }
  if (o.encoding !== undefined) {
    if (o.encoding !== 'seed' && o.encoding !== 'registry') throw new BehaviourError(`${where}.encoding must be "seed" or "registry"`);
    out.encoding = o.encoding;
  }
  if (o.vendorFormat !== undefined) {
    if (o.vendorFormat !== 'acmefw') throw new BehaviourError(`${where}.vendorFormat must be "acmefw"`);
    out.vendorFormat = o.vendorFormat;
  }
  if (out.installer === undefined && Object.keys(out).length > 0) throw new BehaviourError(`${where}: Object 9 behaviours need an installer`);
  return out;
}

/**
 * The device's downloader as its hardware allows: only some schemes (anything else is an
 * Invalid URI to Object 9), and a link that may be lost after some bytes of a download (every
 * later attempt at that URI fails at once) or drop every so many bytes and come back.
 */
export class SimulatedNetworkFetcher implements PackageFetcher {
  /** Bytes delivered per URI, for a link that is lost for good. */
  private readonly delivered = new Map<string, number>();

  constructor(
    private readonly inner: PackageFetcher,
    private readonly schemes: readonly string[],
    private readonly link: { lostAfterBytes?: number | undefined; flakyEveryBytes?: number | undefined; bytesPerSecond?: number | undefined; clock?: Clock } = {},
  ) {}

  /** Holds each chunk as long as a link of `bytesPerSecond` takes to carry it. */
  private throttled(opts: Parameters<PackageFetcher['fetch']>[1]): Parameters<PackageFetcher['fetch']>[1] {
    const { bytesPerSecond, clock } = this.link;
    if (!bytesPerSecond || !clock) return opts;
    return {
      ...opts,
      onData: async (chunk) => {
        await new Promise<void>((resolve) => clock.setTimer(Math.ceil((chunk.length / bytesPerSecond) * 1000), resolve));
        return opts.signal.aborted ? false : opts.onData(chunk);
      },
    };
  }

  supports(uri: string): boolean {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
    return scheme !== undefined && this.schemes.includes(scheme) && this.inner.supports(uri);
  }

  resumable(uri: string): boolean {
    return this.inner.resumable(uri);
  }

  async fetch(uri: string, given: Parameters<PackageFetcher['fetch']>[1]): Promise<void> {
    const opts = this.throttled(given);
    const { lostAfterBytes, flakyEveryBytes } = this.link;
    if (lostAfterBytes === undefined && flakyEveryBytes === undefined) return this.inner.fetch(uri, opts);
    const before = this.delivered.get(uri) ?? 0;
    // How many bytes this connection may carry before the link goes.
    const budget = Math.min(lostAfterBytes === undefined ? Infinity : lostAfterBytes - before, flakyEveryBytes ?? Infinity);
    if (budget <= 0) throw new FetchError('CONNECTION_LOST', `no link (lost after ${lostAfterBytes ?? 0} bytes, simulated radio)`);
    let received = 0;
    let dropped = false;
    await this.inner.fetch(uri, {
      ...opts,
      onData: async (chunk) => {
        const room = budget - received;
        if (room <= 0) {
          dropped = true;
          return false;
        }
        const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
        received += part.length;
        this.delivered.set(uri, before + received);
        const more = await opts.onData(part);
        if (part.length < chunk.length) dropped = true;
        return more && !dropped;
      },
    });
    if (dropped) throw new FetchError('CONNECTION_LOST', `link dropped after ${received} bytes (simulated radio)`);
  }
}

/** The Object 9 of one simulated device; its files live under `deviceDir`. */
export async function simulatedSoftwareManagement(options: {
  behaviours: Object9Behaviours & { installer: string };
  deviceDir: string;
  trust: TrustStore;
  clock: Clock;
  fetcher: PackageFetcher;
}): Promise<SoftwareManagement> {
  const b = options.behaviours;
  await mkdir(options.deviceDir, { recursive: true });
  let stagingDir = options.deviceDir;
  if (b.flashFault) {
    // A regular file where the staging partition should be mounted: every staging write fails (ENOTDIR).
    const mountPoint = join(options.deviceDir, 'flash');
    await writeFile(mountPoint, 'simulated broken flash partition\n');
    stagingDir = join(mountPoint, 'staging');
  }
  return new SoftwareManagement({
    dataDir: stagingDir,
    trust: options.trust,
    installer: SimulatedInstaller.forModel(b.installer, options.clock),
    quotaBytes: b.storageBytes ?? DEFAULT_STORAGE_BYTES,
    ...(b.memoryBytes !== undefined ? { memoryBytes: b.memoryBytes } : {}),
    ...(b.scripts !== undefined ? { runsScripts: b.scripts } : {}),
    ...(b.encoding !== undefined ? { profile: b.encoding } : {}),
    ...(b.vendorFormat === 'acmefw' ? { verifyPackage: verifyVendorImage } : {}),
    clock: options.clock,
    fetcher: new SimulatedNetworkFetcher(options.fetcher, b.pullSchemes ?? DEFAULT_SCHEMES, { lostAfterBytes: b.linkDropsAfterBytes, flakyEveryBytes: b.linkFlakyEveryBytes, bytesPerSecond: b.downloadBytesPerSecond, clock: options.clock }),
    // A simulated device resumes quickly and gives up on a silent push sooner (simulations should not wait minutes).
    resumeDelaysMs: [100, 300],
    pushIdleTimeoutMs: 20_000,
  });
}
