/**
 * The Object 9 state machines as data. Each row of PACKAGE_TRANSITIONS is one row of the
 * §5.1.1 table (Transition / Description / Applicable State / Post Transition State /
 * Update Result), plus the rows Depot needs to make the table executable (the Install
 * execution is split into its request and its two outcomes). ACTIVATION_TRANSITIONS is
 * §5.2. The engine in machine.ts interprets the rows; it contains no per-event logic.
 */
import type { ActivationState, MachineEventType, PkgState, UpdateResult } from './model.js';

/** What a row does to the Update Result resource. */
export type ResultEffect =
  | { readonly kind: 'set'; readonly value: UpdateResult }
  | { readonly kind: 'unchanged' }
  /** Set from the event's cause (download error / installation error). */
  | { readonly kind: 'cause'; readonly fallback: UpdateResult };

/** Side effects the instance carries out after a transition. The engine only names them. */
export type Effect =
  | 'startDownload'
  | 'deletePackage'
  | 'verifyIntegrity'
  | 'runInstall'
  | 'cancelInstall';

export type InstallingGuard = 'idle' | 'installing';

export interface TransitionRow {
  /** Stable identifier (tests and logs use it). */
  readonly id: string;
  /** Spec section the row comes from. */
  readonly section: string;
  /** The spec's "Transition" column. */
  readonly transition: string;
  /** The spec's "Description" column. */
  readonly description: string;
  readonly event: MachineEventType;
  /** Applicable State. */
  readonly from: PkgState;
  /** For activation rows: applicable Activation state. */
  readonly fromActivation?: ActivationState;
  /** Only applicable while an installation is (not) running. */
  readonly guard?: InstallingGuard;
  /** Post Transition State. */
  readonly to: PkgState;
  /** Post Activation state for activation rows, or for rows entering/leaving INSTALLED. */
  readonly toActivation?: ActivationState | null;
  readonly result: ResultEffect;
  /** Value of the `installing` flag after the row (default false). */
  readonly installing?: boolean;
  readonly effects: readonly Effect[];
}

const set = (value: UpdateResult): ResultEffect => ({ kind: 'set', value });
const unchanged: ResultEffect = { kind: 'unchanged' };

/** §5.1.1 Package Installation State Machine, row by row. */
export const PACKAGE_TRANSITIONS: readonly TransitionRow[] = [
  {
    id: 'pkg-uri-write',
    section: '5.1.1',
    transition: 'PKG/URI Write',
    description: 'Start of the PKG Download Process',
    event: 'write',
    from: 'INITIAL',
    to: 'DOWNLOAD_STARTED',
    result: set('DOWNLOADING'),
    effects: ['startDownload'],
  },
  {
    id: 'pkg-download-failed',
    section: '5.1.1',
    transition: 'PKG Download Failed',
    description: 'Error during Download process',
    event: 'downloadFailed',
    from: 'DOWNLOAD_STARTED',
    to: 'INITIAL',
    result: { kind: 'cause', fallback: 'DEVICE_ERROR' },
    // §5.1.2.2: "Faulty package is removed".
    effects: ['deletePackage'],
  },
  {
    id: 'pkg-written',
    section: '5.1.1',
    transition: 'PKG Written',
    description: 'PKG fully loaded',
    event: 'packageWritten',
    from: 'DOWNLOAD_STARTED',
    to: 'DOWNLOADED',
    result: set('INITIAL'),
    // §5.1.2.3: the move to DELIVERED "will automatically occur" once integrity is verified.
    effects: ['verifyIntegrity'],
  },
  {
    id: 'pkg-integrity-ok',
    section: '5.1.1',
    transition: 'PKG Integrity OK',
    description: 'PKG successfully loaded',
    event: 'integrityOk',
    from: 'DOWNLOADED',
    to: 'DELIVERED',
    result: set('INITIAL'),
    effects: [],
  },
  {
    id: 'pkg-integrity-ko',
    section: '5.1.1',
    transition: 'PKG Integrity KO',
    description: 'PKG with Integrity failure',
    event: 'integrityKo',
    from: 'DOWNLOADED',
    to: 'INITIAL',
    result: set('INTEGRITY_FAILURE'),
    // §5.1.2.3: "Faulty package is removed".
    effects: ['deletePackage'],
  },
  {
    // Not a row of the spec's table: the request half of "Install execution". Update State
    // stays DELIVERED while the installer runs (§5.1.2.4); only the outcome moves it.
    id: 'install-execute',
    section: '5.1.3.1',
    transition: 'Install execution',
    description: 'Installation requested',
    event: 'install',
    from: 'DELIVERED',
    guard: 'idle',
    to: 'DELIVERED',
    result: unchanged,
    installing: true,
    effects: ['runInstall'],
  },
  {
    id: 'install-succeeded',
    section: '5.1.1',
    transition: 'Install execution',
    description: 'SW successfully Installed',
    event: 'installSucceeded',
    from: 'DELIVERED',
    guard: 'installing',
    to: 'INSTALLED',
    // §5.2: "When the Package Installation State Machine enters the INSTALLED State, the
    // current state of the Software Activation State is set to INACTIVE State."
    toActivation: 'INACTIVE',
    result: set('INSTALLED'),
    effects: [],
  },
  {
    id: 'install-failed',
    section: '5.1.1',
    transition: 'Install execution',
    description: 'Installation failure',
    event: 'installFailed',
    from: 'DELIVERED',
    guard: 'installing',
    to: 'DELIVERED',
    result: { kind: 'cause', fallback: 'INSTALL_FAILURE' },
    effects: [],
  },
  {
    id: 'uninstall-installed',
    section: '5.1.1',
    transition: 'Uninstall execution',
    description: 'Software is de-installed',
    event: 'uninstall',
    from: 'INSTALLED',
    to: 'INITIAL',
    // §5.1.2.5: "the Software Activation sub-process is devalidated".
    toActivation: null,
    result: set('INITIAL'),
    effects: ['deletePackage'],
  },
  {
    id: 'uninstall-delivered',
    section: '5.1.1',
    transition: 'Uninstall execution',
    description: 'Software is de-installed',
    event: 'uninstall',
    from: 'DELIVERED',
    to: 'INITIAL',
    result: unchanged,
    // Uninstall while an Install runs cancels it (what Anjay does too).
    effects: ['cancelInstall', 'deletePackage'],
  },
];

/** §5.2 Software Activation State Machine (alive only in INSTALLED). */
export const ACTIVATION_TRANSITIONS: readonly TransitionRow[] = [
  {
    id: 'activate',
    section: '5.2',
    transition: 'Activate',
    description: 'INACTIVE to ACTIVE',
    event: 'activate',
    from: 'INSTALLED',
    fromActivation: 'INACTIVE',
    to: 'INSTALLED',
    toActivation: 'ACTIVE',
    result: unchanged,
    effects: [],
  },
  {
    // Depot decision: Activate on already-active software is accepted and changes nothing
    // (idempotent, as Anjay does); the machine is alive so the operation is allowed.
    id: 'activate-again',
    section: '5.2',
    transition: 'Activate',
    description: 'already ACTIVE (idempotent)',
    event: 'activate',
    from: 'INSTALLED',
    fromActivation: 'ACTIVE',
    to: 'INSTALLED',
    toActivation: 'ACTIVE',
    result: unchanged,
    effects: [],
  },
  {
    id: 'deactivate',
    section: '5.2',
    transition: 'Deactivate',
    description: 'ACTIVE to INACTIVE',
    event: 'deactivate',
    from: 'INSTALLED',
    fromActivation: 'ACTIVE',
    to: 'INSTALLED',
    toActivation: 'INACTIVE',
    result: unchanged,
    effects: [],
  },
  {
    id: 'deactivate-again',
    section: '5.2',
    transition: 'Deactivate',
    description: 'already INACTIVE (idempotent)',
    event: 'deactivate',
    from: 'INSTALLED',
    fromActivation: 'INACTIVE',
    to: 'INSTALLED',
    toActivation: 'INACTIVE',
    result: unchanged,
    effects: [],
  },
];

export const ALL_TRANSITIONS: readonly TransitionRow[] = [...PACKAGE_TRANSITIONS, ...ACTIVATION_TRANSITIONS];
