/**
 * Campaigns' domain (issue 16) and the repository the campaign engine needs, declared here and
 * implemented by src/store/sqlite/campaigns.ts.
 */
import type { Page, PageRequest, TimeInput } from '../store/types.js';
import type { DeviceFilter } from './inventory-types.js';

/** Whom a campaign installs on: an inventory group, a filter, or a list of Depot device ids (an import, a retry). */
export type CampaignTarget =
  | { readonly kind: 'group'; readonly group: string }
  | { readonly kind: 'filter'; readonly filter: Omit<DeviceFilter, 'limit' | 'after'> }
  | { readonly kind: 'list'; readonly devices: readonly string[] };

/** One package for every device, or the right package per device by selection (optionally among packages of one name). */
export type CampaignPackage = { readonly kind: 'fixed'; readonly sha256: string } | { readonly kind: 'select'; readonly name?: string };

/** A daily window "HH:MM"–"HH:MM" (end before start: across midnight), UTC or the device's own time zone when known. */
export interface MaintenanceWindow {
  readonly start: string;
  readonly end: string;
  /** Judge the window in the device's time zone when the inventory knows it (else UTC). */
  readonly deviceTime?: boolean;
}

/** A wave: a cumulative share of the campaign (percent: 1, 10, 50, 100) or a number of devices (size). */
export interface WaveSpec {
  readonly percent?: number;
  readonly size?: number;
  /** This wave's own window (else the campaign's). */
  readonly window?: MaintenanceWindow;
  /** This wave's SMS send rate (else the campaign's). */
  readonly smsPerMinute?: number;
}

export interface CampaignSpec {
  readonly name: string;
  readonly target: CampaignTarget;
  readonly package: CampaignPackage;
  /** Default: one wave of 100 %. Devices beyond the last wave's share join the last wave. */
  readonly waves?: readonly WaveSpec[];
  /** How devices are ordered into waves: shuffled (seeded) or spread across models (each wave gets every model). Default spread. */
  readonly order?: 'random' | 'spread';
  /** Seed of the shuffle (the same seed, the same waves). Default: random, recorded. */
  readonly seed?: number;
  /** Share of a wave's devices (with a package, models not paused) that must succeed before the next wave starts. Default 0.9. */
  readonly successThreshold?: number;
  /** Failure rate past which the campaign pauses (over ended installs, models not paused). Default 0.2. */
  readonly failureLimit?: number;
  /** Failure rate past which one model is paused (the others go on). Default 0.5. */
  readonly modelFailureLimit?: number;
  /** Ended installs needed before a rate is judged. Default 3. */
  readonly minSamples?: number;
  /** The operator approves each wave after the first. Default false. */
  readonly approval?: boolean;
  /** Most installs running at once. Default 100. */
  readonly concurrency?: number;
  readonly window?: MaintenanceWindow;
  readonly activate?: boolean;
  /** The install chain's methods, in order (default: the driver's). */
  readonly methods?: readonly string[];
  /**
   * Most SMS per minute one wave sends (SMS link installs), so that a wave does not flood the
   * gateway: each SMS is scheduled in the outbox one interval after the wave's previous one.
   * Default: no pacing (the outbox's own rate limit only).
   */
  readonly smsPerMinute?: number;
}

export const CAMPAIGN_STATES = ['running', 'paused', 'awaiting-approval', 'completed', 'cancelled'] as const;
export type CampaignState = (typeof CAMPAIGN_STATES)[number];

export interface Campaign {
  readonly id: string;
  readonly name: string;
  /** The spec as created, defaults filled in (seed included). */
  readonly spec: Required<Omit<CampaignSpec, 'window' | 'methods' | 'smsPerMinute'>> & Pick<CampaignSpec, 'window' | 'methods' | 'smsPerMinute'>;
  readonly state: CampaignState;
  /** The wave in progress (0-based). */
  readonly currentWave: number;
  readonly pauseReason: string | null;
  /** Models paused for their failure rate: model key → why. */
  readonly pausedModels: Readonly<Record<string, string>>;
  /** Failures the operator accepted when resuming: failure rates count the installs that ended since. */
  readonly accepted: Accepted;
  readonly retryOf: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly finishedAt: number | null;
}

export const MEMBER_STATES = ['pending', 'no-package', 'starting', 'started', 'succeeded', 'failed', 'cancelled'] as const;
export type MemberState = (typeof MEMBER_STATES)[number];

export interface CampaignMember {
  readonly campaignId: string;
  readonly deviceId: string;
  /** Order in the campaign (waves are consecutive runs of positions). */
  readonly position: number;
  readonly wave: number;
  /** The device's address for install jobs. */
  readonly endpoint: string;
  /** "make/model", lower case ("?" unknown): per-model statistics and pauses. */
  readonly modelKey: string;
  readonly packageSha256: string | null;
  readonly state: MemberState;
  readonly jobId: string | null;
  /** The install method that succeeded or failed last. */
  readonly method: string | null;
  readonly message: string | null;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
}

export const WAVE_STATES = ['pending', 'awaiting-approval', 'running', 'done'] as const;
export type WaveState = (typeof WAVE_STATES)[number];

export interface CampaignWave {
  readonly campaignId: string;
  readonly wave: number;
  readonly size: number;
  readonly state: WaveState;
  readonly approvedAt: number | null;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
}

export interface NewMember {
  readonly deviceId: string;
  readonly position: number;
  readonly wave: number;
  readonly endpoint: string;
  readonly modelKey: string;
  readonly packageSha256: string | null;
  readonly state: 'pending' | 'no-package';
  readonly message: string | null;
}

export interface Tally {
  readonly failed: number;
  readonly ended: number;
}

export interface Accepted {
  readonly overall: Tally;
  readonly models: Readonly<Record<string, Tally>>;
}

export interface CampaignPatch {
  readonly accepted?: Accepted;
  readonly state?: CampaignState;
  readonly currentWave?: number;
  readonly pauseReason?: string | null;
  readonly pausedModels?: Readonly<Record<string, string>>;
}

/** One group of the progress counts. */
export interface CountRow {
  readonly wave: number;
  readonly modelKey: string;
  readonly state: MemberState;
  readonly method: string | null;
  readonly n: number;
}

export interface CampaignRepository {
  /** The campaign, its waves and every member, in one transaction. */
  create(campaign: { id: string; name: string; spec: Campaign['spec']; retryOf: string | null; state: CampaignState }, waves: readonly { wave: number; size: number }[], members: readonly NewMember[], now: TimeInput): Promise<Campaign>;
  get(id: string): Promise<Campaign | null>;
  /** Newest first. */
  list(page?: PageRequest): Promise<Page<Campaign>>;
  /** Campaigns not completed or cancelled, oldest first. */
  listActive(): Promise<Campaign[]>;
  update(id: string, patch: CampaignPatch, now: TimeInput): Promise<Campaign>;
  setWave(id: string, wave: number, state: WaveState, now: TimeInput): Promise<void>;
  waves(id: string): Promise<CampaignWave[]>;
  /** Members in these states (all when omitted), by position; waves up to `maxWave` when given. */
  members(id: string, filter?: { states?: readonly MemberState[]; maxWave?: number; limit?: number; afterPosition?: number }): Promise<CampaignMember[]>;
  /** Members pending → starting (in the store before any job is made), one transaction. */
  markStarting(id: string, deviceIds: readonly string[], now: TimeInput): Promise<void>;
  /** starting → started with the job id, or → failed with why it could not start; one transaction. */
  recordStarted(id: string, results: readonly { deviceId: string; jobId?: string; error?: string }[], now: TimeInput): Promise<void>;
  /** started → its end; one transaction. */
  recordEnded(id: string, results: readonly { deviceId: string; state: 'succeeded' | 'failed' | 'cancelled'; method: string | null; message: string | null }[], now: TimeInput): Promise<void>;
  /** starting → pending (after a restart, when no job was made for them). */
  revertStarting(id: string, deviceIds: readonly string[], now: TimeInput): Promise<void>;
  /** pending → cancelled for every pending member (cancel). */
  cancelPending(id: string, message: string, now: TimeInput): Promise<number>;
  counts(id: string): Promise<CountRow[]>;
  /** The campaign and wave of the member being installed on this job address with this package (starting or started), if any. */
  memberInstalling(endpoint: string, packageSha256: string): Promise<{ campaignId: string; wave: number } | null>;
  /** Why a package cannot be deleted (a member about to use it), else undefined. */
  packageInUse(sha256: string): Promise<string | undefined>;
}
