/**
 * Internal (encoding-independent) vocabulary of the LwM2M Software Management Object
 * (Object 9). Wire integers live in encoding.ts; these names never go on the wire.
 *
 * Spec: /work/shared/spec/lwm2m-software-management-object.txt (the "seed" text),
 * sections 5.1 (Package Installation) and 5.2 (Software Activation).
 */

/** Package Installation State Machine states (§5.1.2). */
export const PKG_STATES = ['INITIAL', 'DOWNLOAD_STARTED', 'DOWNLOADED', 'DELIVERED', 'INSTALLED'] as const;
export type PkgState = (typeof PKG_STATES)[number];

/** Software Activation State Machine states (§5.2). `null` in a snapshot = machine not alive. */
export const ACTIVATION_STATES = ['INACTIVE', 'ACTIVE'] as const;
export type ActivationState = (typeof ACTIVATION_STATES)[number];

/**
 * Update Result values by meaning. The seed spec defines 0–10; the OMA registry adds
 * DOWNLOADED_VERIFIED (3) and UNINSTALL_FAILURE (59). The engine never produces the
 * two registry-only values itself; they exist so a server can decode other devices.
 */
export const UPDATE_RESULTS = [
  'INITIAL',
  'DOWNLOADING',
  'INSTALLED',
  'DOWNLOADED_VERIFIED',
  'NOT_ENOUGH_STORAGE',
  'OUT_OF_MEMORY',
  'CONNECTION_LOST',
  'INTEGRITY_FAILURE',
  'UNSUPPORTED_PACKAGE_TYPE',
  'INVALID_URI',
  'DEVICE_ERROR',
  'INSTALL_FAILURE',
  'UNINSTALL_FAILURE',
] as const;
export type UpdateResult = (typeof UPDATE_RESULTS)[number];

/** Causes a download can fail with: Update Result 3–9 in the seed spec (§5.1.2.2). */
export const DOWNLOAD_ERRORS = [
  'NOT_ENOUGH_STORAGE',
  'OUT_OF_MEMORY',
  'CONNECTION_LOST',
  'INTEGRITY_FAILURE',
  'UNSUPPORTED_PACKAGE_TYPE',
  'INVALID_URI',
  'DEVICE_ERROR',
] as const satisfies readonly UpdateResult[];
export type DownloadError = (typeof DOWNLOAD_ERRORS)[number];

/**
 * Causes an installation can fail with. §5.1.2.4 says "range from 3 to 9" while the
 * §5.1.1 table says "Software Installation failure" (10); both are accepted, 10 is the default.
 */
export const INSTALL_ERRORS = [...DOWNLOAD_ERRORS, 'INSTALL_FAILURE'] as const satisfies readonly UpdateResult[];
export type InstallError = (typeof INSTALL_ERRORS)[number];

/** One instance's machine state: everything Update State, Update Result and Activation State are computed from. */
export interface MachineState {
  readonly pkg: PkgState;
  readonly result: UpdateResult;
  /** Software Activation State Machine; null when not alive (pkg !== INSTALLED). */
  readonly activation: ActivationState | null;
  /** An Install execution is under way (Update State still reads DELIVERED). */
  readonly installing: boolean;
}

export const INITIAL_MACHINE_STATE: MachineState = Object.freeze({
  pkg: 'INITIAL',
  result: 'INITIAL',
  activation: null,
  installing: false,
});

/** Machine events (the "Transition" column of §5.1.1 plus the §5.2 operations). */
export type MachineEvent =
  | { readonly type: 'write'; readonly via: 'package' | 'uri' }
  | { readonly type: 'downloadFailed'; readonly cause: DownloadError }
  | { readonly type: 'packageWritten' }
  | { readonly type: 'integrityOk' }
  | { readonly type: 'integrityKo'; readonly reason?: string }
  | { readonly type: 'install' }
  | { readonly type: 'installSucceeded' }
  | { readonly type: 'installFailed'; readonly cause?: InstallError }
  | { readonly type: 'uninstall'; readonly forUpdate?: boolean }
  | { readonly type: 'activate' }
  | { readonly type: 'deactivate' };

export type MachineEventType = MachineEvent['type'];

export const EVENT_TYPES: readonly MachineEventType[] = [
  'write',
  'downloadFailed',
  'packageWritten',
  'integrityOk',
  'integrityKo',
  'install',
  'installSucceeded',
  'installFailed',
  'uninstall',
  'activate',
  'deactivate',
];

/**
 * The (state, result) pairs the spec allows, used by restore() and the property tests.
 * - DOWNLOAD STARTED holds Downloading (§5.1.2.2);
 * - DOWNLOADED holds Initial (§5.1.2.3);
 * - DELIVERED holds Initial, or an installation error after a failed Install (§5.1.2.4);
 * - INSTALLED holds Software successfully installed (§5.1.2.5);
 * - INITIAL holds Initial or an error: a download/integrity error, or an installation error
 *   carried over by Uninstall from DELIVERED ("Update Result unchanged", §5.1.1).
 */
export function isAllowedCombination(s: MachineState): boolean {
  const aliveOk = s.pkg === 'INSTALLED' ? s.activation !== null : s.activation === null;
  if (!aliveOk) return false;
  if (s.installing && s.pkg !== 'DELIVERED') return false;
  switch (s.pkg) {
    case 'INITIAL':
      return s.result === 'INITIAL' || (INSTALL_ERRORS as readonly string[]).includes(s.result);
    case 'DOWNLOAD_STARTED':
      return s.result === 'DOWNLOADING';
    case 'DOWNLOADED':
      return s.result === 'INITIAL';
    case 'DELIVERED':
      return s.result === 'INITIAL' || (INSTALL_ERRORS as readonly string[]).includes(s.result);
    case 'INSTALLED':
      return s.result === 'INSTALLED';
  }
}
