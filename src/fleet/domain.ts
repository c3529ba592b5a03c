/**
 * The fleet's domain: catalogued packages and install jobs, and the repositories the fleet
 * needs to keep them. Declared here, by the layer that uses them; src/store implements them
 * (as Leshan's server core declares RegistrationStore and its Redis module implements it).
 */
import type { Page, PageRequest, TimeInput } from '../store/types.js';

/** A package in the catalog; the bytes live in <dataDir>/packages/<sha256>. */
export interface PackageRecord {
  /** SHA-256 of the whole package file, lowercase hex: the catalog key. */
  readonly sha256: string;
  readonly name: string;
  readonly version: string;
  /** Size of the whole file, bytes. */
  readonly size: number;
  readonly keyId: string;
  /** The manifest as found in the file (JSON object). */
  readonly manifest: Record<string, unknown>;
  readonly addedAt: number;
}

export interface PackageRepository {
  /** Adds the record; an existing sha256 is kept as is (the same bytes). Returns the stored record. */
  add(record: PackageRecord): Promise<PackageRecord>;
  get(sha256: string): Promise<PackageRecord | null>;
  /** In sha256 order. */
  list(page?: PageRequest): Promise<Page<PackageRecord>>;
  remove(sha256: string): Promise<boolean>;
}

// ---------------------------------------------------------------- install jobs (Object 9 driver)

export const INSTALL_JOB_KINDS = ['install', 'uninstall', 'activate', 'deactivate'] as const;
export type InstallJobKind = (typeof INSTALL_JOB_KINDS)[number];

export const INSTALL_JOB_STATES = ['queued', 'downloading', 'delivered', 'installing', 'installed', 'activating', 'succeeded', 'failed', 'cancelled'] as const;
export type InstallJobState = (typeof INSTALL_JOB_STATES)[number];

export const FINAL_INSTALL_JOB_STATES: readonly InstallJobState[] = ['succeeded', 'failed', 'cancelled'];

/**
 * Allowed job state changes (the repository refuses others with INVALID_TRANSITION).
 * Going back (e.g. installing → downloading) is a retry; a job may also jump forward
 * when the device reports a later state than expected (after a restart).
 */
export const INSTALL_JOB_TRANSITIONS: Readonly<Record<InstallJobState, readonly InstallJobState[]>> = {
  queued: ['downloading', 'delivered', 'installing', 'installed', 'activating', 'succeeded', 'failed', 'cancelled'],
  downloading: ['queued', 'downloading', 'delivered', 'installing', 'installed', 'succeeded', 'failed', 'cancelled'],
  delivered: ['queued', 'downloading', 'installing', 'installed', 'succeeded', 'failed', 'cancelled'],
  installing: ['queued', 'downloading', 'delivered', 'installed', 'succeeded', 'failed', 'cancelled'],
  installed: ['activating', 'succeeded', 'failed', 'cancelled'],
  activating: ['succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  cancelled: [],
};

export type InstallRetry = 'retry' | 'retry-resume' | 'no-retry';

export interface InstallJob {
  readonly id: string;
  readonly kind: InstallJobKind;
  readonly endpoint: string;
  readonly packageSha256: string | null;
  /** The Object 9 instance on the device, once known. */
  readonly instanceId: number | null;
  readonly method: 'pull' | 'push';
  /** Depot chose the method (learned for the device's model, or the default): it may fall back to the other. */
  readonly methodAuto: boolean;
  /** Execute Activate after the install. */
  readonly activate: boolean;
  readonly state: InstallJobState;
  readonly attempts: number;
  /** One-time download capability for /pkg/<token> (pull), while downloading. */
  readonly downloadToken: string | null;
  readonly tokenExpiresAt: number | null;
  /** Last Update State / Update Result integers the device reported (its own encoding). */
  readonly lastUpdateState: number | null;
  readonly lastUpdateResult: number | null;
  /** The decoded Update Result (e.g. INTEGRITY_FAILURE). */
  readonly resultName: string | null;
  readonly retry: InstallRetry | null;
  /** What the operator should know (the latest result, in words). */
  readonly message: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** When the current phase began (per-phase timeouts): the last transition, a retry included. */
  readonly phaseStartedAt: number;
  readonly finishedAt: number | null;
}

export interface NewInstallJob {
  readonly id: string;
  readonly kind: InstallJobKind;
  readonly endpoint: string;
  readonly packageSha256: string | null;
  readonly instanceId?: number | null;
  readonly method: 'pull' | 'push';
  readonly methodAuto?: boolean;
  readonly activate: boolean;
}

export type InstallJobPatch = Partial<
  Pick<InstallJob, 'instanceId' | 'method' | 'attempts' | 'downloadToken' | 'tokenExpiresAt' | 'lastUpdateState' | 'lastUpdateResult' | 'resultName' | 'retry' | 'message'>
>;

export interface InstallTransition {
  readonly seq: number;
  readonly jobId: string;
  readonly at: number;
  readonly from: InstallJobState | null;
  readonly to: InstallJobState;
  readonly detail: string | null;
}

export interface InstallJobRepository {
  /** Creates the job in state queued, with its first transition (null → queued). */
  create(job: NewInstallJob, now: TimeInput): Promise<InstallJob>;
  get(id: string): Promise<InstallJob | null>;
  getByToken(token: string): Promise<InstallJob | null>;
  /** Jobs not in a final state, oldest first. */
  listOpen(): Promise<InstallJob[]>;
  /** A device's jobs, newest first. */
  listByEndpoint(endpoint: string, page?: PageRequest): Promise<Page<InstallJob>>;
  /** Changes fields without a state change. NOT_FOUND when missing. */
  update(id: string, patch: InstallJobPatch, now: TimeInput): Promise<InstallJob>;
  /**
   * Moves the job to `to` (checked against INSTALL_JOB_TRANSITIONS; the same state is
   * allowed only when listed), applies the patch and appends a transition, in one transaction.
   */
  transition(id: string, to: InstallJobState, detail: string | null, patch: InstallJobPatch, now: TimeInput): Promise<InstallJob>;
  transitions(id: string): Promise<InstallTransition[]>;
}

// ---------------------------------------------------------------- errors

/**
 * What the fleet's drivers refuse with (the install driver's Object 9 jobs and the chain's
 * jobs alike): NOT_FOUND (404), BAD_REQUEST (400), CONFLICT (409) at the API.
 */
export class FleetError extends Error {
  override readonly name: string = 'FleetError';
  constructor(
    readonly code: 'NOT_FOUND' | 'BAD_REQUEST' | 'CONFLICT',
    message: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- install chain (method seam)

/** A method's per-attempt protocol state: plain JSON, stored with the attempt. */
export type JsonState = null | boolean | number | string | JsonState[] | { [key: string]: JsonState };

export const CHAIN_JOB_STATES = ['running', 'succeeded', 'failed', 'cancelled'] as const;
export type ChainJobState = (typeof CHAIN_JOB_STATES)[number];

/** How a job's chain was chosen, and the methods the plan skips (with why), decided at creation. */
export interface ChainPlan {
  /** operator: the chain given at creation, as given; learned: ordered by what worked for the model; default: the server's default order. */
  readonly chosenBy: 'operator' | 'learned' | 'default';
  /** Method name → why the chain skips it without trying (never worked on the model, forbidden by the operator). */
  readonly skip: Readonly<Record<string, string>>;
  /** In words, for the operator (e.g. the model and the counts the order rests on). */
  readonly note: string | null;
}

/** An install of one package on one device through a chain of methods (src/fleet/methods). */
export interface ChainJob {
  readonly id: string;
  readonly endpoint: string;
  readonly packageSha256: string;
  readonly activate: boolean;
  /** Method names, tried in this order. */
  readonly methods: readonly string[];
  readonly plan: ChainPlan;
  readonly state: ChainJobState;
  readonly message: string | null;
  /** A failed attempt will be tried again (same method) at this time; null when no retry is waiting. */
  readonly retryAt: number | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly finishedAt: number | null;
}

export interface NewChainJob {
  readonly id: string;
  readonly endpoint: string;
  readonly packageSha256: string;
  readonly activate: boolean;
  readonly methods: readonly string[];
  /** Default: chosen by the operator, nothing skipped. */
  readonly plan?: ChainPlan;
}

export const ATTEMPT_OUTCOMES = ['running', 'skipped', 'succeeded', 'failed', 'cancelled'] as const;
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];

/** One method's try at a chain job: what an operator reads in the device's history. */
export interface ChainAttempt {
  readonly jobId: string;
  /** 1, 2, … in the order tried. */
  readonly seq: number;
  /** Index of the method in the job's chain (a retry has the same position as the try before it). */
  readonly position: number;
  readonly method: string;
  readonly startedAt: number;
  readonly endedAt: number | null;
  /** When the attempt last changed state (its start, then each stored step): step timeouts count from here. */
  readonly progressAt: number;
  readonly outcome: AttemptOutcome;
  /** Why skipped, why it failed, or what it waits for. */
  readonly message: string | null;
  /** The protocol's own result when it gave one (e.g. Object 9 Update Result name). */
  readonly result: string | null;
  /** Bytes of the package delivered to the device, when the method knows. */
  readonly bytes: number | null;
  /** The method's protocol state (see InstallMethod). */
  readonly state: JsonState;
}

export interface NewChainAttempt {
  readonly method: string;
  readonly position: number;
  readonly outcome: 'running' | 'skipped';
  readonly message: string | null;
  readonly state: JsonState;
}

export interface ChainJobRepository {
  create(job: NewChainJob, now: TimeInput): Promise<ChainJob>;
  /** Creates every job in one transaction (a campaign's wave: one commit, not one per device); all or none. */
  createMany(jobs: readonly NewChainJob[], now: TimeInput): Promise<ChainJob[]>;
  get(id: string): Promise<ChainJob | null>;
  /** Jobs still running, oldest first. */
  listOpen(): Promise<ChainJob[]>;
  /** A device's jobs, newest first. */
  listByEndpoint(endpoint: string, page?: PageRequest): Promise<Page<ChainJob>>;
  /** Ends the job (succeeded, failed or cancelled). NOT_FOUND when missing. */
  finish(id: string, state: Exclude<ChainJobState, 'running'>, message: string, now: TimeInput): Promise<ChainJob>;
  setMessage(id: string, message: string, now: TimeInput): Promise<ChainJob>;
  /** Sets (or clears, null) the time of the waiting retry, with the job's message. */
  setRetry(id: string, retryAt: number | null, message: string, now: TimeInput): Promise<ChainJob>;
  /**
   * Appends an attempt (seq = last + 1): `running` with its state, or already ended (`skipped`).
   * CONFLICT when the job already has a running attempt (never two at once), INVALID_TRANSITION when the job ended.
   */
  addAttempt(jobId: string, attempt: NewChainAttempt, now: TimeInput): Promise<ChainAttempt>;
  /**
   * Stores a running attempt's new state and message (and bytes delivered when known; and the job's message, in the same commit).
   * `progress`: only the message or bytes changed (the state is the one stored), so the commit
   * need not be fsynced: it survives a crash of the process, a power cut may lose it (the next
   * step of the attempt writes it again).
   */
  saveAttempt(jobId: string, seq: number, state: JsonState, message: string, now: TimeInput, bytes?: number | null, jobMessage?: string, progress?: boolean): Promise<ChainAttempt>;
  /**
   * Ends a running attempt. `retry` (a failed attempt to be tried again): sets the job's retryAt
   * and message in the same transaction, so a kill never keeps the failure and loses the retry.
   * `tally`: a succeeded or failed attempt also counts for this model in the method statistics
   * (MethodStatsRepository), in the same transaction: counted once, whatever a kill interrupts.
   * `finish`: a succeeded attempt also ends its job (succeeded, with this message) in the same
   * commit (one fsync instead of two per job); `finish.soft`: without an fsync, for a method
   * whose protocol job is durable and says the same again after a power cut (stateRecoverable).
   */
  endAttempt(
    jobId: string,
    seq: number,
    outcome: Exclude<AttemptOutcome, 'running' | 'skipped'>,
    message: string,
    result: string | null,
    now: TimeInput,
    bytes?: number | null,
    retry?: { readonly at: number; readonly message: string },
    tally?: ModelKey,
    finish?: { readonly message: string; readonly soft?: boolean },
  ): Promise<ChainAttempt>;
  /** In seq order. */
  attempts(jobId: string): Promise<ChainAttempt[]>;
}

// ---------------------------------------------------------------- learning (per model)

/** A device's model as learning keys it; strings as the device reported them ('' when unknown). */
export interface ModelKey {
  readonly make: string;
  readonly model: string;
  readonly osVersion: string;
}

export interface MethodStats extends ModelKey {
  readonly method: string;
  readonly successes: number;
  readonly failures: number;
  readonly lastSuccessAt: number | null;
  readonly lastFailureAt: number | null;
  /** The last failure's reason, and its protocol result when there was one. */
  readonly lastReason: string | null;
  readonly lastResult: string | null;
  readonly updatedAt: number;
}

export type MethodRuleKind = 'pin' | 'forbid';

/** The operator's word on a method for a model (every OS version of it). */
export interface MethodRule {
  readonly make: string;
  readonly model: string;
  readonly method: string;
  readonly rule: MethodRuleKind;
  readonly updatedAt: number;
}

export interface MethodStatsRepository {
  /** Counts one ended attempt (in one transaction: a row is created on first sight). */
  record(key: ModelKey, method: string, outcome: 'succeeded' | 'failed', reason: string | null, result: string | null, now: TimeInput): Promise<MethodStats>;
  /** Every OS version of the model (osVersion undefined), or one. In method order. */
  list(filter?: { make?: string; model?: string; osVersion?: string }): Promise<MethodStats[]>;
  rules(make: string, model: string): Promise<MethodRule[]>;
  allRules(): Promise<MethodRule[]>;
  /** Sets the rule for (make, model, method), replacing the one there was. */
  setRule(make: string, model: string, method: string, rule: MethodRuleKind, now: TimeInput): Promise<MethodRule>;
  /** False when there was none. */
  removeRule(make: string, model: string, method: string): Promise<boolean>;
}
