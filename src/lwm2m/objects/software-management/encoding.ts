/**
 * Wire encodings of Update State (rid 7) and Update Result (rid 9), as named profiles.
 *
 * - `seed`: the spec text Depot was given (/work/shared/spec/lwm2m-software-management-object.txt,
 *   §6): Update State 1 INITIAL … 5 INSTALLED; Update Result 0–10. Default.
 * - `registry`: the object as published in the OMA LwM2M registry
 *   (github.com/OpenMobileAlliance/lwm2m-registry):
 *     version_history/9-1_0.xml  (OMA-SUP-XML_9-V1_0_2-20210119-A, ObjectVersion 1.0, commit c3a58fea)
 *     9.xml                      (OMA-SUP-XML_9-V1_0_3-20240312-A, ObjectVersion 1.1, commit 228db4f9)
 *   Both versions carry the same values for these two resources: Update State 0..4 and
 *   Update Result 0 Initial, 1 Downloading, 2 Installed, 3 "Successfully Downloaded and
 *   package integrity verified", 50 Not enough storage, 51 Out of memory, 52 Connection
 *   lost, 53 Integrity failure, 54 Unsupported package type, 56 Invalid URI (55 is not
 *   assigned in either file), 57 Device defined update error, 58 Installation failure,
 *   59 Uninstallation failure during forUpdate. This is what Anjay and Zephyr devices send.
 */
import type { MachineState, PkgState, UpdateResult } from './model.js';
import { PKG_STATES, UPDATE_RESULTS, isAllowedCombination } from './model.js';

export type ProfileName = 'seed' | 'registry';

export interface EncodingProfile {
  readonly name: ProfileName;
  readonly source: string;
  readonly updateState: Readonly<Record<PkgState, number>>;
  /** Results the profile can express. Others are encoded through `resultFallback`. */
  readonly updateResult: Readonly<Partial<Record<UpdateResult, number>>>;
  /** For results the profile has no number for. */
  readonly resultFallback: Readonly<Partial<Record<UpdateResult, UpdateResult>>>;
}

export const SEED_PROFILE: EncodingProfile = Object.freeze<EncodingProfile>({
  name: 'seed',
  source: 'shared/spec/lwm2m-software-management-object.txt §6 (rid 7: 1-5, rid 9: 0-10)',
  updateState: { INITIAL: 1, DOWNLOAD_STARTED: 2, DOWNLOADED: 3, DELIVERED: 4, INSTALLED: 5 },
  updateResult: {
    INITIAL: 0,
    DOWNLOADING: 1,
    INSTALLED: 2,
    NOT_ENOUGH_STORAGE: 3,
    OUT_OF_MEMORY: 4,
    CONNECTION_LOST: 5,
    INTEGRITY_FAILURE: 6,
    UNSUPPORTED_PACKAGE_TYPE: 7,
    INVALID_URI: 8,
    DEVICE_ERROR: 9,
    INSTALL_FAILURE: 10,
  },
  // The engine never produces these; a value is still needed if a registry-decoded state is re-encoded.
  resultFallback: { DOWNLOADED_VERIFIED: 'INITIAL', UNINSTALL_FAILURE: 'DEVICE_ERROR' },
});

export const REGISTRY_PROFILE: EncodingProfile = Object.freeze<EncodingProfile>({
  name: 'registry',
  source:
    'OpenMobileAlliance/lwm2m-registry version_history/9-1_0.xml (V1_0_2, obj 1.0) and 9.xml (V1_0_3, obj 1.1)',
  updateState: { INITIAL: 0, DOWNLOAD_STARTED: 1, DOWNLOADED: 2, DELIVERED: 3, INSTALLED: 4 },
  updateResult: {
    INITIAL: 0,
    DOWNLOADING: 1,
    INSTALLED: 2,
    DOWNLOADED_VERIFIED: 3,
    NOT_ENOUGH_STORAGE: 50,
    OUT_OF_MEMORY: 51,
    CONNECTION_LOST: 52,
    INTEGRITY_FAILURE: 53,
    UNSUPPORTED_PACKAGE_TYPE: 54,
    INVALID_URI: 56,
    DEVICE_ERROR: 57,
    INSTALL_FAILURE: 58,
    UNINSTALL_FAILURE: 59,
  },
  resultFallback: {},
});

export const PROFILES: Readonly<Record<ProfileName, EncodingProfile>> = Object.freeze({
  seed: SEED_PROFILE,
  registry: REGISTRY_PROFILE,
});

export const DEFAULT_PROFILE: ProfileName = 'seed';

export function profile(name: ProfileName | EncodingProfile): EncodingProfile {
  return typeof name === 'string' ? PROFILES[name] : name;
}

export function encodeUpdateState(p: ProfileName | EncodingProfile, s: PkgState): number {
  return profile(p).updateState[s];
}

export function encodeUpdateResult(p: ProfileName | EncodingProfile, r: UpdateResult): number {
  const prof = profile(p);
  const direct = prof.updateResult[r];
  if (direct !== undefined) return direct;
  const fb = prof.resultFallback[r];
  const viaFallback = fb === undefined ? undefined : prof.updateResult[fb];
  if (viaFallback === undefined) throw new Error(`profile ${prof.name} cannot encode Update Result ${r}`);
  return viaFallback;
}

/** Activation State (rid 12) is a Boolean in both profiles. */
export function encodeActivationState(s: MachineState): boolean {
  return s.activation === 'ACTIVE';
}

export function decodeUpdateState(p: ProfileName | EncodingProfile, wire: number): PkgState | undefined {
  const prof = profile(p);
  return PKG_STATES.find((s) => prof.updateState[s] === wire);
}

export function decodeUpdateResult(p: ProfileName | EncodingProfile, wire: number): UpdateResult | undefined {
  const prof = profile(p);
  return UPDATE_RESULTS.find((r) => prof.updateResult[r] === wire);
}

/** The three machine-driven resources as integers/booleans, ready for the wire. */
export interface WireSnapshot {
  readonly updateState: number;
  readonly updateResult: number;
  readonly activationState: boolean;
}

export function encodeSnapshot(p: ProfileName | EncodingProfile, s: MachineState): WireSnapshot {
  return {
    updateState: encodeUpdateState(p, s.pkg),
    updateResult: encodeUpdateResult(p, s.result),
    activationState: encodeActivationState(s),
  };
}

// ---------------------------------------------------------------------------------------
// Server side: understanding a device that speaks either encoding.

export interface DeviceReport {
  readonly updateState: number;
  readonly updateResult: number;
  readonly activationState?: boolean;
}

export interface Interpretation {
  readonly profile: ProfileName;
  readonly pkg: PkgState;
  readonly result: UpdateResult;
  readonly activation: 'ACTIVE' | 'INACTIVE' | null;
  /** True when the other profile also explains the report. */
  readonly ambiguous: boolean;
  /** Why this profile was chosen. */
  readonly basis: 'hint' | 'only-decodable' | 'consistent' | 'default';
}

export interface InterpretOptions {
  /**
   * What the server already knows: a profile learned for this device model, or the object
   * version from the registration ("</9>;ver=1.1" or a plain "</9>", both registry objects).
   */
  readonly hint?: ProfileName;
}

function decodeWith(p: ProfileName, r: DeviceReport): { pkg: PkgState; result: UpdateResult; consistent: boolean } | undefined {
  const pkg = decodeUpdateState(p, r.updateState);
  const result = decodeUpdateResult(p, r.updateResult);
  if (pkg === undefined || result === undefined) return undefined;
  const activation = pkg === 'INSTALLED' ? (r.activationState ? 'ACTIVE' : 'INACTIVE') : null;
  // Registry devices report 3 (downloaded and verified) in DELIVERED: treat it like Initial there.
  const normalized = result === 'DOWNLOADED_VERIFIED' ? 'INITIAL' : result;
  const allowed =
    isAllowedCombination({ pkg, result: normalized, activation, installing: false }) &&
    (result !== 'DOWNLOADED_VERIFIED' || pkg === 'DELIVERED' || pkg === 'DOWNLOADED') &&
    (r.activationState !== true || pkg === 'INSTALLED');
  return { pkg, result, consistent: allowed };
}

/**
 * Decodes a device's Update State / Update Result (and optionally Activation State) when
 * the device's encoding is not known for sure. Order of preference:
 *  1. the hint, if the report decodes under it;
 *  2. the only profile under which both integers decode (e.g. state 0 or 5, results ≥ 11);
 *  3. the only profile under which the pair is a combination the spec allows
 *     (e.g. state 2 with result 1 is seed DOWNLOAD STARTED/Downloading; registry would be
 *     DOWNLOADED/Downloading, which cannot happen);
 *  4. otherwise the registry profile (what deployed devices speak), flagged ambiguous.
 * Returns undefined when neither profile can decode the integers.
 */
export function interpretDeviceReport(r: DeviceReport, opts: InterpretOptions = {}): Interpretation | undefined {
  const names: ProfileName[] = ['registry', 'seed'];
  const decoded = names.map((n) => ({ n, d: decodeWith(n, r) }));
  const make = (n: ProfileName, basis: Interpretation['basis'], ambiguous: boolean): Interpretation | undefined => {
    const d = decoded.find((x) => x.n === n)?.d;
    if (!d) return undefined;
    const activation = d.pkg === 'INSTALLED' ? (r.activationState ? 'ACTIVE' : 'INACTIVE') : null;
    return { profile: n, pkg: d.pkg, result: d.result, activation, ambiguous, basis };
  };
  const decodable = decoded.filter((x) => x.d !== undefined);
  const consistent = decodable.filter((x) => x.d?.consistent);
  const bothExplain = consistent.length === 2;
  if (opts.hint && decoded.find((x) => x.n === opts.hint)?.d) {
    return make(opts.hint, 'hint', bothExplain);
  }
  if (decodable.length === 0) return undefined;
  if (decodable.length === 1) return make(decodable[0]!.n, 'only-decodable', false);
  if (consistent.length === 1) return make(consistent[0]!.n, 'consistent', false);
  return make('registry', 'default', true);
}
