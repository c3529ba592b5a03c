/**
 * Simulator profiles: the device models a run simulates (Object 3 facts, how many of each,
 * behaviours) and the credentials they use. A profile is a JSON file; see docs/lwm2m-client.md.
 */
import { createHmac } from 'node:crypto';
import { BehaviourError, parseObject9Behaviours, type Object9Behaviours } from './object9.js';

export interface SimModel {
  /** Manufacturer (/3/0/0). */
  manufacturer: string;
  /** Model Number (/3/0/1). */
  model: string;
  /** Firmware Version (/3/0/3). */
  firmwareVersion: string;
  /** OS / software version (/3/0/19), what the fleet logic selects packages by. */
  osVersion?: string;
  /** Device Type (/3/0/17). */
  deviceType?: string;
  hardwareVersion?: string;
  /** Exactly this many devices of the model ... */
  count?: number;
  /** ... or a share of the devices left after the counts (default 1). */
  weight?: number;
  /** Registration lifetime (s); default the profile's, else 300. */
  lifetime?: number;
  /** Queue mode (sleepy devices): register with Q and stop listening after `awakeMs` (default 93 s) of quiet. */
  queueMode?: boolean;
  awakeMs?: number;
  /**
   * Object 9: the installer model (sim-good, sim-broken-installer, sim-low-storage, sim-hang,
   * sim-reboot, sim-reboot-after-commit) and the device's storage, memory, script runtime,
   * downloader and link (see src/sim/object9.ts). Needs `trust` in the profile.
   */
  behaviours?: Object9Behaviours;
  /** LwM2M version the devices offer in Register (default 1.1): a fleet can mix 1.0, 1.1 and 1.2. */
  lwm2mVersion?: '1.0' | '1.1' | '1.2';
  /** Offer only `lwm2mVersion` (no fallback on 4.12). */
  pinVersion?: boolean;
  /** Content formats the devices announce (ct) and accept, e.g. [110] for a SenML-JSON-only device. */
  formats?: number[];
}

export interface SimProfile {
  models: SimModel[];
  lifetime?: number;
  /** Credentials: identity pattern ({ep} = endpoint name) and a shared key, or a key derived per device. */
  psk?: {
    identity?: string;
    /** Hex key shared by all devices. */
    key?: string;
    /** Hex secret: each device's key is HMAC-SHA256(secret, endpoint), first 16 bytes. */
    deriveFrom?: string;
  };
  /** Package signing keys the simulated Object 9 trusts: key id -> public key PEM. */
  trust?: Record<string, string>;
}

export class ProfileError extends Error {
  override readonly name = 'ProfileError';
}

function str(v: unknown, where: string, optional = false): string | undefined {
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || v === '') throw new ProfileError(`${where} must be a non-empty string`);
  return v;
}

function num(v: unknown, where: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new ProfileError(`${where} must be a number >= ${min}`);
  return v;
}

const HEX = /^(?:[0-9a-fA-F]{2})+$/;

/** Validates a parsed profile document; throws ProfileError with the offending field. */
export function parseProfile(doc: unknown): SimProfile {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ProfileError('the profile must be a JSON object');
  const d = doc as Record<string, unknown>;
  if (!Array.isArray(d.models) || d.models.length === 0) throw new ProfileError('models must be a non-empty array');
  const models = d.models.map((m: unknown, i): SimModel => {
    if (typeof m !== 'object' || m === null) throw new ProfileError(`models[${i}] must be an object`);
    const o = m as Record<string, unknown>;
    const out: SimModel = {
      manufacturer: str(o.manufacturer, `models[${i}].manufacturer`) as string,
      model: str(o.model, `models[${i}].model`) as string,
      firmwareVersion: str(o.firmwareVersion, `models[${i}].firmwareVersion`) as string,
    };
    const os = str(o.osVersion, `models[${i}].osVersion`, true);
    if (os !== undefined) out.osVersion = os;
    const dt = str(o.deviceType, `models[${i}].deviceType`, true);
    if (dt !== undefined) out.deviceType = dt;
    const hw = str(o.hardwareVersion, `models[${i}].hardwareVersion`, true);
    if (hw !== undefined) out.hardwareVersion = hw;
    const count = num(o.count, `models[${i}].count`, 0);
    if (count !== undefined) {
      if (!Number.isInteger(count)) throw new ProfileError(`models[${i}].count must be an integer`);
      out.count = count;
    }
    const weight = num(o.weight, `models[${i}].weight`, 0);
    if (weight !== undefined) out.weight = weight;
    const lt = num(o.lifetime, `models[${i}].lifetime`, 1);
    if (lt !== undefined) out.lifetime = lt;
    if (o.queueMode !== undefined) {
      if (typeof o.queueMode !== 'boolean') throw new ProfileError(`models[${i}].queueMode must be true or false`);
      out.queueMode = o.queueMode;
    }
    const awake = num(o.awakeMs, `models[${i}].awakeMs`, 1);
    if (awake !== undefined) out.awakeMs = awake;
    if (o.lwm2mVersion !== undefined) {
      if (o.lwm2mVersion !== '1.0' && o.lwm2mVersion !== '1.1' && o.lwm2mVersion !== '1.2') throw new ProfileError(`models[${i}].lwm2mVersion must be "1.0", "1.1" or "1.2"`);
      out.lwm2mVersion = o.lwm2mVersion;
    }
    if (o.pinVersion !== undefined) {
      if (typeof o.pinVersion !== 'boolean') throw new ProfileError(`models[${i}].pinVersion must be true or false`);
      out.pinVersion = o.pinVersion;
    }
    if (o.formats !== undefined) {
      if (!Array.isArray(o.formats) || o.formats.length === 0 || !o.formats.every((f) => Number.isInteger(f) && (f as number) >= 0 && (f as number) <= 65535)) {
        throw new ProfileError(`models[${i}].formats must be a non-empty array of content format numbers (0-65535)`);
      }
      out.formats = [...(o.formats as number[])];
    }
    if (o.behaviours !== undefined) {
      try {
        out.behaviours = parseObject9Behaviours(o.behaviours, `models[${i}].behaviours`);
      } catch (error) {
        throw error instanceof BehaviourError ? new ProfileError(error.message) : error;
      }
    }
    return out;
  });
  const profile: SimProfile = { models };
  const lt = num(d.lifetime, 'lifetime', 1);
  if (lt !== undefined) profile.lifetime = lt;
  if (d.psk !== undefined) {
    if (typeof d.psk !== 'object' || d.psk === null) throw new ProfileError('psk must be an object');
    const p = d.psk as Record<string, unknown>;
    const psk: NonNullable<SimProfile['psk']> = {};
    const identity = str(p.identity, 'psk.identity', true);
    if (identity !== undefined) psk.identity = identity;
    const key = str(p.key, 'psk.key', true);
    if (key !== undefined) {
      if (!HEX.test(key)) throw new ProfileError('psk.key must be hex');
      psk.key = key;
    }
    const derive = str(p.deriveFrom, 'psk.deriveFrom', true);
    if (derive !== undefined) {
      if (!HEX.test(derive)) throw new ProfileError('psk.deriveFrom must be hex');
      psk.deriveFrom = derive;
    }
    if (psk.key === undefined && psk.deriveFrom === undefined) throw new ProfileError('psk needs key or deriveFrom');
    profile.psk = psk;
  }
  if (d.trust !== undefined) {
    if (typeof d.trust !== 'object' || d.trust === null) throw new ProfileError('trust must be an object of key id -> PEM');
    profile.trust = Object.fromEntries(Object.entries(d.trust as Record<string, unknown>).map(([k, v]) => [k, str(v, `trust.${k}`) as string]));
  }
  return profile;
}

/**
 * Which model each of `count` devices gets (model indexes). Models with `count` get exactly
 * that many (in order, as far as devices last); the rest are shared by weight (default 1) with
 * largest remainders. The result is interleaved so that any prefix of the fleet is mixed.
 */
export function assignModels(profile: SimProfile, count: number): number[] {
  const quotas = profile.models.map(() => 0);
  let left = count;
  profile.models.forEach((m, i) => {
    if (m.count !== undefined) {
      const n = Math.min(m.count, left);
      quotas[i] = n;
      left -= n;
    }
  });
  const weighted = profile.models.map((m, i) => ({ i, w: m.count !== undefined ? 0 : (m.weight ?? 1) })).filter((x) => x.w > 0);
  const total = weighted.reduce((a, x) => a + x.w, 0);
  if (left > 0 && total === 0) {
    // Only counted models: the extra devices cycle through them.
    for (let k = 0; k < left; k++) quotas[k % quotas.length]! += 1;
    left = 0;
  }
  if (left > 0) {
    const shares = weighted.map((x) => ({ i: x.i, exact: (left * x.w) / total }));
    let given = 0;
    for (const s of shares) {
      const n = Math.floor(s.exact);
      quotas[s.i]! += n;
      given += n;
    }
    shares.sort((a, b) => b.exact - Math.floor(b.exact) - (a.exact - Math.floor(a.exact)) || a.i - b.i);
    for (let k = 0; k < left - given; k++) quotas[shares[k % shares.length]!.i]! += 1;
  }
  // Interleave: smooth weighted round-robin over the quotas.
  const out: number[] = [];
  const remaining = [...quotas];
  const credit = quotas.map(() => 0);
  for (let n = 0; n < count; n++) {
    let best = -1;
    for (let i = 0; i < remaining.length; i++) {
      if (remaining[i]! <= 0) continue;
      credit[i]! += quotas[i]!;
      if (best < 0 || credit[i]! > credit[best]!) best = i;
    }
    credit[best]! -= count;
    remaining[best]! -= 1;
    out.push(best);
  }
  return out;
}

/** The PSK of one device, from the profile (undefined: NoSec). */
export function devicePsk(profile: SimProfile, endpoint: string): { identity: string; key: Uint8Array } | undefined {
  const p = profile.psk;
  if (!p) return undefined;
  const identity = (p.identity ?? '{ep}').split('{ep}').join(endpoint);
  const key = p.key !== undefined ? Buffer.from(p.key, 'hex') : createHmac('sha256', Buffer.from(p.deriveFrom as string, 'hex')).update(endpoint).digest().subarray(0, 16);
  return { identity, key: Uint8Array.from(key) };
}
