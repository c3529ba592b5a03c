/**
 * SMS link install: for a device without a working DM path, a text with a one-time HTTPS
 * download link (bound to this job's attempt and device, expiring, Range-capable, counted:
 * GET /d/<token> on the API port, src/api/sms.ts). Depot records sent and delivered (from the
 * outbox and its delivery reports), downloaded (the link was fetched, how far) and installed:
 * the device later reports the package's version through any protocol (its device facts).
 *
 * The phone number comes from a PhoneDirectory: the explicit mapping (`depot sms number`, API
 * POST /api/v1/sms/numbers), else the device facts' extra `msisdn` (or `sms.number`), else the
 * SMS number an LwM2M registration gave.
 */
import { maskNumber, normalizeNumber } from '../../sms/address.js';
import { SmsError } from '../../sms/errors.js';
import type { SmsMessageRecord } from '../../sms/outbox.js';
import type { DeviceFacts, PackageRecord, Registration } from '../../store/types.js';
import type { SmsLinkRecord } from '../../store/sqlite/sms-outbox.js';
import { deviceAtAddress } from '../inventory.js';
import { newDownloadToken } from '../package-endpoint.js';
import type { AttemptContext, InstallMethod, InstallTarget, MethodEvent, MethodStep } from './method.js';

export const SMS_LINK_METHOD = 'sms-link';
/** The download route on the API port. */
export const SMS_LINK_PATH = '/d';

export interface PhoneDirectory {
  /** The device's number (E.164), or null when Depot knows none. */
  numberOf(endpoint: string): Promise<string | null>;
}

/** The directory over the store: explicit mapping, then device facts, then the LwM2M registration. */
export class StorePhoneDirectory implements PhoneDirectory {
  constructor(
    private readonly sources: {
      numbers: { get(endpoint: string): Promise<string | null> };
      deviceFacts: { get(endpoint: string): Promise<DeviceFacts | null> };
      registrations?: { getByEndpoint(endpoint: string): Promise<Registration | null> };
      /** The inventory's phone number (an imported device list's, or one a registration gave): last. */
      inventory?: InventoryNumbers;
    },
  ) {}

  async numberOf(endpoint: string): Promise<string | null> {
    const mapped = await this.sources.numbers.get(endpoint);
    if (mapped) return mapped;
    const facts = await this.sources.deviceFacts.get(endpoint);
    for (const key of ['msisdn', 'sms.number']) {
      const v = facts?.extra[key];
      if (typeof v === 'string') {
        try {
          return normalizeNumber(v);
        } catch {
          // a device's own word for its number: ignored when not E.164
        }
      }
    }
    const reg = await this.sources.registrations?.getByEndpoint(endpoint);
    if (reg?.smsNumber) {
      try {
        return normalizeNumber(reg.smsNumber.startsWith('+') ? reg.smsNumber : `+${reg.smsNumber}`);
      } catch {
        // fall through to the inventory
      }
    }
    const inventory = this.sources.inventory;
    if (!inventory) return null;
    return (await deviceAtAddress(inventory, endpoint))?.msisdn ?? null;
  }
}

/** What the phone directory reads of the inventory (src/fleet/inventory-types.ts InventoryRepository). */
export interface InventoryNumbers {
  get(id: string): Promise<{ readonly msisdn: string | null } | null>;
  findByIdentity(identities: { lwm2mEndpoint?: string; omadmDevId?: string }): Promise<{ readonly msisdn: string | null } | null>;
}

/** Whether the device reports the package installed: device facts' extra `packages` map or `package:<name>`, or its software version. */
export class FactsInstalledVersions {
  constructor(private readonly deviceFacts: { get(endpoint: string): Promise<DeviceFacts | null> }) {}

  async reports(endpoint: string, name: string, version: string): Promise<boolean> {
    const facts = await this.deviceFacts.get(endpoint);
    if (!facts) return false;
    const packages = facts.extra['packages'];
    if (packages && typeof packages === 'object' && !Array.isArray(packages) && packages[name] === version) return true;
    if (facts.extra[`package:${name}`] === version) return true;
    return facts.softwareVersion === version;
  }
}

export interface SmsLinkStore {
  create(token: string, link: Pick<SmsLinkRecord, 'jobId' | 'attemptSeq' | 'endpoint' | 'packageSha256' | 'size' | 'expiresAt' | 'maxFetches'>, now: number): Promise<SmsLinkRecord>;
  byAttempt(jobId: string, attemptSeq: number): Promise<SmsLinkRecord | null>;
  byToken(token: string): Promise<SmsLinkRecord | null>;
  countFetch(token: string, now: number): Promise<boolean>;
  served(token: string, end: number, now: number): Promise<void>;
  revoke(jobId: string, attemptSeq: number, now: number): Promise<void>;
}

export interface SmsLinkMethodOptions {
  readonly outbox: {
    sendText(request: { to: string; text: string; jobStep: string; pace?: { group: string; perMinute: number } }): Promise<SmsMessageRecord>;
    get(idOrKey: string): Promise<SmsMessageRecord | null>;
    cancel(id: string): Promise<SmsMessageRecord>;
  };
  readonly links: SmsLinkStore;
  readonly catalog: { get(sha256: string): Promise<PackageRecord | null> };
  readonly directory: PhoneDirectory;
  readonly installed: { reports(endpoint: string, name: string, version: string): Promise<boolean> };
  /** HTTPS origin devices reach Depot's API port at, e.g. https://depot.example.com. */
  readonly publicBaseUrl: string;
  /** The send rate the job's SMS is paced by (a campaign wave's), if any: the outbox schedules it. */
  readonly pace?: (target: InstallTarget) => Promise<{ group: string; perMinute: number } | undefined>;
  /** How long a link works (default 3 days). */
  readonly linkTtlMs?: number;
  /** Fetches (whole or ranged GETs) one link allows (default 20). */
  readonly maxFetches?: number;
  readonly now?: () => number;
}

const iso = (t: number): string => new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The idempotency key of an attempt's SMS. */
export const smsLinkJobStep = (jobId: string, seq: number): string => `sms-link:${jobId}:${seq}`;

export class SmsLinkMethod implements InstallMethod {
  readonly name = SMS_LINK_METHOD;
  private readonly now: () => number;

  constructor(private readonly options: SmsLinkMethodOptions) {
    this.now = options.now ?? Date.now;
    const base = new URL(options.publicBaseUrl);
    if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new SmsError('NOT_CONFIGURED', 'the public base URL for SMS links must be https (or http in a lab)');
  }

  async preflight(target: InstallTarget): Promise<string | undefined> {
    const number = await this.options.directory.numberOf(target.endpoint);
    if (!number) return 'Depot knows no phone number for the device (map one with depot sms number, or the device reports msisdn)';
    if (!(await this.options.catalog.get(target.packageSha256))) return 'the package is not in the catalog';
    return undefined;
  }

  async begin(context: AttemptContext): Promise<MethodStep> {
    const { target, attempt } = context;
    const key = smsLinkJobStep(target.jobId, attempt.seq);
    const pkg = await this.options.catalog.get(target.packageSha256);
    if (!pkg) return { status: 'failed', message: 'SMS link: the package is no longer in the catalog' };
    const number = await this.options.directory.numberOf(target.endpoint);
    if (!number) return { status: 'failed', message: 'SMS link: Depot knows no phone number for the device' };
    // Begun before (a restart between sending and saving the step): follow that SMS and its link.
    let message = await this.options.outbox.get(key);
    if (!message) {
      const now = this.now();
      const token = newDownloadToken();
      const link = await this.options.links.create(
        token,
        { jobId: target.jobId, attemptSeq: attempt.seq, endpoint: target.endpoint, packageSha256: pkg.sha256, size: pkg.size, expiresAt: now + (this.options.linkTtlMs ?? 3 * 24 * 3600_000), maxFetches: this.options.maxFetches ?? 20 },
        now,
      );
      const url = `${this.options.publicBaseUrl.replace(/\/+$/, '')}${SMS_LINK_PATH}/${token}`;
      try {
        const pace = await this.options.pace?.(target);
        message = await this.options.outbox.sendText({ to: number, jobStep: key, text: `${pkg.name} ${pkg.version}: download and install from ${url} (valid until ${iso(link.expiresAt)})`, ...(pace ? { pace } : {}) });
      } catch (error) {
        await this.options.links.revoke(target.jobId, attempt.seq, now);
        return { status: 'failed', message: `SMS link not sent: ${(error as Error).message}` };
      }
    }
    return this.step(context, message, pkg);
  }

  async advance(context: AttemptContext, _event: MethodEvent): Promise<MethodStep> {
    const message = await this.options.outbox.get(smsLinkJobStep(context.target.jobId, context.attempt.seq));
    if (!message) return this.begin(context);
    const pkg = await this.options.catalog.get(context.target.packageSha256);
    if (!pkg) return { status: 'failed', message: 'SMS link: the package is no longer in the catalog' };
    return this.step(context, message, pkg);
  }

  async cancel(context: AttemptContext): Promise<void> {
    const { jobId } = context.target;
    await this.options.links.revoke(jobId, context.attempt.seq, this.now());
    const message = await this.options.outbox.get(smsLinkJobStep(jobId, context.attempt.seq));
    if (message?.state === 'queued') await this.options.outbox.cancel(message.id);
  }

  private async step(context: AttemptContext, message: SmsMessageRecord, pkg: PackageRecord): Promise<MethodStep> {
    const { target, attempt } = context;
    const link = await this.options.links.byAttempt(target.jobId, attempt.seq);
    const to = maskNumber(message.to);
    const download = link
      ? link.fetches === 0
        ? 'link not fetched yet'
        : `link fetched ${link.fetches} time(s), ${link.bytesServed} of ${link.size} bytes downloaded${link.completedAt ? ` (complete at ${iso(link.completedAt)})` : ''}`
      : 'no link';
    const state = {
      messageId: message.id,
      sms: message.state,
      fetches: link?.fetches ?? 0,
      bytesServed: link?.bytesServed ?? 0,
      downloaded: link?.completedAt !== null && link?.completedAt !== undefined,
      expiresAt: link?.expiresAt ?? null,
    };
    if (await this.options.installed.reports(target.endpoint, pkg.name, pkg.version)) {
      await this.options.links.revoke(target.jobId, attempt.seq, this.now());
      return { status: 'succeeded', message: `SMS link: the device reports ${pkg.name} ${pkg.version} installed (${download})` };
    }
    if (message.state === 'failed' || message.state === 'cancelled') {
      await this.options.links.revoke(target.jobId, attempt.seq, this.now());
      return { status: 'failed', message: `SMS link: the SMS to ${to} ${message.state === 'failed' ? 'failed' : 'was cancelled'}${message.lastError ? `: ${message.lastError}` : ''}`, result: 'SMS_FAILED' };
    }
    if (!link || link.revokedAt !== null || link.expiresAt <= this.now()) {
      // A text still waiting in the outbox (paced, or the gateway down) would carry a dead link: it does not go.
      if (message.state === 'queued') await this.options.outbox.cancel(message.id).catch(() => undefined);
      return { status: 'failed', message: `SMS link: the link ${link?.revokedAt ? 'was withdrawn' : 'expired'} before the device reported ${pkg.name} ${pkg.version} (${download})`, result: 'LINK_EXPIRED' };
    }
    const paced = message.scheduledAt !== null && message.scheduledAt > this.now() ? `, paced: goes at ${iso(message.scheduledAt)}` : '';
    const sms = { queued: `queued for ${to}${paced}${message.lastError ? ` (${message.lastError})` : ''}`, submitted: `sent to ${to}`, delivered: `delivered to ${to}`, unknown: `sent to ${to} (gateway answer unknown)` }[message.state];
    return { status: 'running', state, message: `SMS link: SMS ${sms}; ${download}; waiting for the device to report ${pkg.name} ${pkg.version}` };
  }
}

/** Resolves and counts SMS link downloads for the HTTP route. */
export class SmsLinkDownloads {
  private readonly now: () => number;

  constructor(
    private readonly options: {
      links: Pick<SmsLinkStore, 'byToken' | 'countFetch' | 'served'>;
      catalog: { get(sha256: string): Promise<PackageRecord | null>; pathOf(sha256: string): string };
      /** Records "installed" reports (POST /d/<token>/installed); without it reports are refused. */
      report?: (endpoint: string, name: string, version: string) => Promise<void>;
      now?: () => number;
    },
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The file behind a token, counting this fetch; undefined for unknown, expired, withdrawn or used-up links. */
  async open(token: string): Promise<{ path: string; size: number } | undefined> {
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(token)) return undefined;
    const link = await this.options.links.byToken(token);
    if (!link || link.revokedAt !== null || link.expiresAt <= this.now()) return undefined;
    const pkg = await this.options.catalog.get(link.packageSha256);
    if (!pkg) return undefined;
    if (!(await this.options.links.countFetch(token, this.now()))) return undefined;
    return { path: this.options.catalog.pathOf(pkg.sha256), size: pkg.size };
  }

  served(token: string, end: number): Promise<void> {
    return this.options.links.served(token, end, this.now());
  }

  /**
   * The installer on the device reports the package installed, over the link it downloaded it
   * from (the token is the capability: bound to one device, attempt and package). Accepted only
   * for a live link whose download completed; recorded in the device's facts as
   * `package:<name>` = version, which is what the method's installed check reads. Undefined when
   * the link is unknown, withdrawn, expired or not fully downloaded.
   */
  async installed(token: string): Promise<{ endpoint: string; name: string; version: string } | undefined> {
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(token) || !this.options.report) return undefined;
    const link = await this.options.links.byToken(token);
    if (!link || link.revokedAt !== null || link.expiresAt <= this.now() || link.completedAt === null) return undefined;
    const pkg = await this.options.catalog.get(link.packageSha256);
    if (!pkg) return undefined;
    await this.options.report(link.endpoint, pkg.name, pkg.version);
    return { endpoint: link.endpoint, name: pkg.name, version: pkg.version };
  }
}

/** Records a device's report of an installed package in its facts (what FactsInstalledVersions reads). */
export function factsInstallReport(deviceFacts: { upsert(endpoint: string, patch: { extra: Record<string, string> }, now: number): Promise<unknown> }, now: () => number = Date.now) {
  return async (endpoint: string, name: string, version: string): Promise<void> => {
    await deviceFacts.upsert(endpoint, { extra: { [`package:${name}`]: version } }, now());
  };
}
