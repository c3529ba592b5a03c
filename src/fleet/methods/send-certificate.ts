/**
 * Send SSL certificate (issue 16, "Trust first"; the DME manual's "Send SSL certificate"): pushes
 * Depot's root certificate to a device through what the device supports, records the device's
 * trust state, and lets the chain retry the method that failed for want of it (docs/trust.md).
 *
 * It has the InstallMethod shape so the chain driver records it as an attempt like any other
 * (method, start, end, result, reason), but it is not one of the chain's install methods: the
 * driver runs it (ChainDriverOptions.trust) when a method's failed step says `needsTrust`, at
 * that method's position, then retries that method once. The operator also runs it on its own
 * (`send`), for one device or many, outside any install job.
 *
 * Channels, in order (the first that can reach the device is used):
 * - `sms-link`: a text with a one-time link to the root (GET /c/<token> on the API port, served
 *   as application/x-x509-ca-cert, DER). Why a text and not WAP Push SI or Client Provisioning:
 *   no OMA CP characteristic carries a CA certificate (vendors each had their own), Service
 *   Indication is gone from Android and iOS and was often disabled on feature phones, while every
 *   handset browser hands an application/x-x509-ca-cert download to its certificate installer
 *   (Android, Windows Phone, S40, Symbian; iOS shows it as a profile). The link is HTTP unless
 *   the public base is an HTTPS origin with a publicly trusted certificate: a device that lacks
 *   Depot's root cannot open an HTTPS link signed by it. Pushed = the device fetched the link.
 * - `lwm2m-bootstrap`: for an LwM2M device that bootstraps with Depot over certificates, Depot's
 *   bootstrap server writes its root as the Security object's Server Public Key (/0/x/4, the trust
 *   anchor) at every bootstrap; the device holds it. A device that does not bootstrap that way is
 *   skipped with the reason (LwM2M has no other way to give it a trust anchor).
 * Confirmed = the device's first TLS session with Depot after the push (TrustLedger.confirmed).
 */
import { createHash } from 'node:crypto';
import { maskNumber } from '../../sms/address.js';
import type { SmsMessageRecord } from '../../sms/outbox.js';
import { printable } from '../../util/printable.js';
import type { JsonState } from '../domain.js';
import type { InventoryDevice, InventoryRepository } from '../inventory-types.js';
import { identityOfAddress } from '../inventory.js';
import { newDownloadToken } from '../package-endpoint.js';
import { type TrustChannel, type TrustRecord, type TrustRepository, fingerprintOf, tokenHashOf } from '../trust.js';
import type { AttemptContext, InstallMethod, InstallTarget, MethodEvent, MethodStep } from './method.js';
import type { PhoneDirectory } from './sms-link.js';

export const SEND_CERTIFICATE_METHOD = 'send-certificate';
/** The certificate download route on the API port (GET /c/<token>). */
export const CERTIFICATE_LINK_PATH = '/c';
/** What a browser hands to its certificate installer (a CA certificate, DER). */
export const CA_CERT_CONTENT_TYPE = 'application/x-x509-ca-cert';

/** Depot's root, as pushed. */
export interface TrustRoot {
  readonly der: Uint8Array;
  /** SHA-256 of the DER, hex. */
  readonly sha256: string;
  /** SHA-256 fingerprint, colon-separated upper-case hex. */
  readonly fingerprint: string;
}

export function trustRootOf(der: Uint8Array): TrustRoot {
  return { der, sha256: createHash('sha256').update(der).digest('hex'), fingerprint: fingerprintOf(der) };
}

/** One way of getting the root onto a device. */
export interface CertificateChannel {
  readonly name: TrustChannel;
  /** Undefined when this channel can reach the device; else why not. */
  preflight(endpoint: string): Promise<string | undefined>;
  /** Pushes the root; `key` makes it idempotent (the same key twice is the same push). */
  push(endpoint: string, key: string): Promise<TrustRecord>;
  /** Re-reads where a push stands (e.g. its SMS failed), moving the record on. */
  follow(record: TrustRecord): Promise<TrustRecord>;
}

const iso = (t: number): string => new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export interface SmsLinkChannelOptions {
  readonly outbox: {
    sendText(request: { to: string; text: string; jobStep: string }): Promise<SmsMessageRecord>;
    get(idOrKey: string): Promise<SmsMessageRecord | null>;
  };
  readonly directory: PhoneDirectory;
  readonly trust: TrustRepository;
  readonly root: () => TrustRoot;
  /** Origin devices reach the API port at; http, or https with a publicly trusted certificate. */
  readonly publicBaseUrl: string;
  /** How long a link works (default 3 days). */
  readonly linkTtlMs?: number;
  readonly now?: () => number;
}

/** The root by SMS: a text with a one-time link (see the module comment for why). */
export class SmsCertificateLinkChannel implements CertificateChannel {
  readonly name = 'sms-link';
  private readonly now: () => number;

  constructor(private readonly options: SmsLinkChannelOptions) {
    this.now = options.now ?? Date.now;
  }

  async preflight(endpoint: string): Promise<string | undefined> {
    return (await this.options.directory.numberOf(endpoint)) ? undefined : 'Depot knows no phone number for the device (map one with depot sms number)';
  }

  async push(endpoint: string, key: string): Promise<TrustRecord> {
    const sent = await this.options.outbox.get(key);
    const existing = await this.options.trust.get(endpoint);
    // Pushed before under this key (a restart between sending and recording the step): follow it.
    if (sent && existing?.messageId === sent.id) return this.follow(existing);
    const number = await this.options.directory.numberOf(endpoint);
    if (!number) throw new Error('Depot knows no phone number for the device');
    const root = this.options.root();
    const now = this.now();
    const token = newDownloadToken();
    const expiresAt = now + (this.options.linkTtlMs ?? 3 * 24 * 3600_000);
    await this.options.trust.start({ endpoint, state: 'sent', channel: 'sms-link', detail: `SMS to ${maskNumber(number)} queued`, rootSha256: root.sha256, tokenHash: tokenHashOf(token), linkExpiresAt: expiresAt }, now);
    const url = `${this.options.publicBaseUrl.replace(/\/+$/, '')}${CERTIFICATE_LINK_PATH}/${token}`;
    // The fingerprint's start lets the user check what the installer shows.
    const text = `Install the Depot root certificate for secure device management: ${url} (SHA-256 ${root.fingerprint.slice(0, 23)}..., valid until ${iso(expiresAt)})`;
    let message: SmsMessageRecord;
    try {
      message = await this.options.outbox.sendText({ to: number, text, jobStep: key });
    } catch (error) {
      return (await this.options.trust.transition(endpoint, ['sent'], { state: 'failed', detail: `SMS not sent: ${printable(messageOf(error), 200)}` }, this.now()))!;
    }
    return (await this.options.trust.transition(endpoint, ['sent', 'pushed'], { messageId: message.id, detail: `SMS ${message.state} to ${maskNumber(number)}` }, this.now())) ?? (await this.options.trust.get(endpoint))!;
  }

  async follow(record: TrustRecord): Promise<TrustRecord> {
    if (record.state !== 'sent') return record;
    const message = record.messageId ? await this.options.outbox.get(record.messageId) : null;
    const now = this.now();
    if (message && (message.state === 'failed' || message.state === 'cancelled')) {
      return (await this.options.trust.transition(record.endpoint, ['sent'], { state: 'failed', detail: `the SMS ${message.state === 'failed' ? 'failed' : 'was cancelled'}${message.lastError ? `: ${printable(message.lastError, 200)}` : ''}` }, now)) ?? record;
    }
    if (record.linkExpiresAt !== null && record.linkExpiresAt <= now) {
      return (await this.options.trust.transition(record.endpoint, ['sent'], { state: 'failed', detail: 'the link expired before the device fetched the root' }, now)) ?? record;
    }
    const detail = message ? `SMS ${message.state} to ${maskNumber(message.to)}; link not fetched yet` : 'SMS queued; link not fetched yet';
    if (detail === record.detail) return record;
    return (await this.options.trust.transition(record.endpoint, ['sent'], { detail }, now)) ?? record;
  }
}

/** The root as an LwM2M trust anchor, written by Depot's bootstrap server (certificate mode). */
export class Lwm2mBootstrapChannel implements CertificateChannel {
  readonly name = 'lwm2m-bootstrap';
  private readonly now: () => number;

  constructor(
    private readonly options: {
      /** Whether the device bootstraps with Depot using certificates (so each bootstrap writes Depot's root as /0/x/4). */
      readonly bootstrapsWithCertificates: (endpoint: string) => Promise<boolean>;
      readonly trust: TrustRepository;
      readonly root: () => TrustRoot;
      readonly now?: () => number;
    },
  ) {
    this.now = options.now ?? Date.now;
  }

  async preflight(endpoint: string): Promise<string | undefined> {
    if (await this.options.bootstrapsWithCertificates(endpoint)) return undefined;
    return 'not an LwM2M device that bootstraps with Depot using certificates: only a bootstrap writes a trust anchor (Security object Server Public Key), LwM2M has no other way';
  }

  async push(endpoint: string): Promise<TrustRecord> {
    return this.options.trust.start(
      { endpoint, state: 'pushed', channel: 'lwm2m-bootstrap', detail: "Depot's bootstrap server writes its root as the Security object's Server Public Key (/0/x/4) at every bootstrap", rootSha256: this.options.root().sha256 },
      this.now(),
    );
  }

  follow(record: TrustRecord): Promise<TrustRecord> {
    return Promise.resolve(record);
  }
}

/** The device's trust as the chain's methods ask for it. */
export type DeviceTrust = 'yes' | 'pushed' | 'no' | 'unknown';

/** Trust records and the inventory's trustState, together. */
export class TrustLedger {
  private readonly now: () => number;

  constructor(
    private readonly options: {
      readonly trust: TrustRepository;
      readonly inventory?: Pick<InventoryRepository, 'findByIdentity' | 'upsert'>;
      readonly root: () => TrustRoot;
      readonly now?: () => number;
    },
  ) {
    this.now = options.now ?? Date.now;
  }

  get repository(): TrustRepository {
    return this.options.trust;
  }

  /** The inventory record behind a chain endpoint (LwM2M endpoint, or omadm:<DevId>). */
  async deviceOf(endpoint: string): Promise<InventoryDevice | null> {
    if (!this.options.inventory) return null;
    return this.options.inventory.findByIdentity(identityOfAddress(endpoint));
  }

  /** yes: confirmed (or the operator says so); pushed: on its way or taken, not yet confirmed; no: the operator says it lacks the root. */
  async stateOf(endpoint: string): Promise<DeviceTrust> {
    const record = await this.options.trust.get(endpoint);
    const current = record && record.rootSha256 === this.options.root().sha256 ? record : null;
    if (current?.state === 'confirmed') return 'yes';
    if (current?.state === 'pushed' || current?.state === 'sent') return 'pushed';
    const device = await this.deviceOf(endpoint).catch(() => null);
    if (device?.trustState === 'yes' && !current) return 'yes';
    if (device?.trustState === 'no') return 'no';
    return 'unknown';
  }

  /**
   * The device opened a TLS session with Depot: a push waiting for it is confirmed, and the
   * inventory says the device holds the root (with the time in its history). Nothing is written
   * for devices Depot never pushed to (one read per session).
   */
  async confirmed(endpoint: string, how: string): Promise<TrustRecord | null> {
    const record = await this.options.trust.transition(endpoint, ['sent', 'pushed'], { state: 'confirmed', detail: printable(how, 200) }, this.now());
    if (!record) return null;
    if (!this.options.inventory) return record;
    const device = await this.deviceOf(endpoint);
    if (device?.trustState === 'yes') return record;
    // A first session may come before the session's facts made the inventory record: made here then.
    await this.options.inventory.upsert(identityOfAddress(endpoint), { trustState: 'yes' }, { source: 'trust', create: 'seen' }, this.now());
    return record;
  }
}

export interface SendCertificateOptions {
  /** Tried in order; the first whose preflight passes pushes. */
  readonly channels: readonly CertificateChannel[];
  readonly ledger: TrustLedger;
  /** Longest wait for the device to take the root, ms (default 1 day). */
  readonly stepTimeoutMs?: number;
}

interface SendState {
  channel: string;
}

const channelOfState = (state: JsonState): string | undefined => (state && typeof state === 'object' && !Array.isArray(state) && typeof state.channel === 'string' ? state.channel : undefined);

export class SendCertificateMethod implements InstallMethod {
  readonly name = SEND_CERTIFICATE_METHOD;
  readonly stepTimeoutMs: number;

  constructor(private readonly options: SendCertificateOptions) {
    this.stepTimeoutMs = options.stepTimeoutMs ?? 24 * 3600_000;
  }

  async preflight(target: InstallTarget): Promise<string | undefined> {
    return (await this.choose(target.endpoint)).why;
  }

  async begin(context: AttemptContext): Promise<MethodStep> {
    const { channel, why } = await this.choose(context.target.endpoint);
    if (!channel) return { status: 'failed', message: `no way to send the certificate: ${why}`, result: 'NO_CHANNEL' };
    try {
      const record = await channel.push(context.target.endpoint, `send-certificate:${context.target.jobId}:${context.attempt.seq}`);
      return this.stepOf(channel, record);
    } catch (error) {
      return { status: 'failed', message: `certificate not sent: ${messageOf(error)}`, result: 'PUSH_FAILED' };
    }
  }

  async advance(context: AttemptContext, _event: MethodEvent): Promise<MethodStep> {
    const name = channelOfState(context.attempt.state);
    const channel = this.options.channels.find((c) => c.name === name);
    const record = await this.options.ledger.repository.get(context.target.endpoint);
    if (!channel || !record) return this.begin(context);
    return this.stepOf(channel, await channel.follow(record));
  }

  async cancel(): Promise<void> {
    // The SMS may already be on the handset; an unfetched link expires on its own.
  }

  /**
   * The operator's "send certificate" for one device, outside any install job; `key` makes a
   * repeated request the same push. Throws with the reason when no channel reaches the device.
   */
  async send(endpoint: string, key: string): Promise<TrustRecord> {
    const { channel, why } = await this.choose(endpoint);
    if (!channel) throw new SendCertificateError(`no way to send the certificate to ${printable(endpoint, 80)}: ${why}`);
    return channel.push(endpoint, key);
  }

  /** The device's push record, moved on by what its channel knows now (or null: never pushed). */
  async refresh(endpoint: string): Promise<TrustRecord | null> {
    const record = await this.options.ledger.repository.get(endpoint);
    if (!record) return null;
    const channel = this.options.channels.find((c) => c.name === record.channel);
    return channel ? channel.follow(record) : record;
  }

  private async choose(endpoint: string): Promise<{ channel?: CertificateChannel; why?: string }> {
    const reasons: string[] = [];
    for (const c of this.options.channels) {
      const why = await c.preflight(endpoint);
      if (why === undefined) return { channel: c };
      reasons.push(`${c.name}: ${why}`);
    }
    return { why: reasons.join('; ') || 'no channel is configured (SMS is off and LwM2M bootstrap does not use certificates)' };
  }

  private stepOf(channel: CertificateChannel, record: TrustRecord): MethodStep {
    const state: SendState = { channel: channel.name };
    const detail = record.detail ?? record.state;
    switch (record.state) {
      case 'pushed':
      case 'confirmed':
        return { status: 'succeeded', message: `root pushed by ${channel.name}: ${detail}`, result: record.state.toUpperCase() };
      case 'failed':
        return { status: 'failed', message: `root not pushed by ${channel.name}: ${detail}`, result: 'PUSH_FAILED' };
      default:
        return { status: 'running', state: { ...state }, message: `root sent by ${channel.name}: ${detail}` };
    }
  }
}

export class SendCertificateError extends Error {
  override readonly name = 'SendCertificateError';
}

/** Resolves and counts the certificate link fetches for the HTTP route (GET /c/<token>). */
export class CertificateLinks {
  private readonly now: () => number;

  constructor(
    private readonly options: { trust: Pick<TrustRepository, 'fetchLink'>; root: () => TrustRoot; maxFetches?: number; now?: () => number },
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The root (DER) behind a working token, counting this fetch; undefined for unknown, expired or used-up links. */
  async open(token: string): Promise<Uint8Array | undefined> {
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(token)) return undefined;
    const record = await this.options.trust.fetchLink(tokenHashOf(token), this.options.maxFetches ?? 5, this.now());
    if (!record) return undefined;
    const root = this.options.root();
    // A link made for an older root serves nothing (the device would trust the wrong one).
    return record.rootSha256 === root.sha256 ? root.der : undefined;
  }
}
