/**
 * A simulated handset that is reached by SMS (issue 15): it takes WAP Pushes, and
 *
 * - a Client Provisioning document (application/vnd.wap.connectivity-wbxml) with SEC/MAC: its
 *   simulated user enters a PIN (the right one, a wrong one, or none); the MAC is checked with
 *   that PIN (and the SIM's IMSI for NETWPIN/USERNETWPIN, OMA-WAP-ProvBoot §5); only a document
 *   whose MAC verifies is applied; its w7 application becomes the phone's DM account, and with
 *   INIT the phone opens its first DM session at once;
 * - a DM notification: checked by notification-client.ts, then a session with the notification's
 *   SessionID and Alert 1200.
 *
 * The sessions are those of DmPhone (phone.ts), which this class makes once an account exists.
 * Written from the device's side of the specs: it decodes with Depot's codecs but shares no
 * server logic.
 */
import { DmPhone, httpTransport, phoneTree } from './phone.js';
import type { DmSessionReport, DmTransport } from './phone.js';
import { readNotification, type NotificationVerdict, type ReceivedPush } from './notification-client.js';
import type { DigestVariant } from '../../omadm/notification.js';
import { PushContentType, type PushSecurity } from '../../omadm/push-port.js';
import { type DmAccountBootstrap, readDmAccount } from '../../omadm/provisioning/document.js';
import { verifyProvisioningMac } from '../../omadm/provisioning/security.js';
import { ProvisioningFormatError, decodeProvisioningWbxml } from '../../omadm/provisioning/wbxml.js';
import { AlertCode } from '../../omadm/status-codes.js';

export interface HandsetProfile {
  readonly msisdn: string;
  readonly imei: string;
  readonly imsi?: string;
  /** The PIN the user types when a secured document arrives; null: the user dismisses it. */
  readonly userPin: string | null;
  /** The DM client's digest habit for notifications (a model quirk). */
  readonly notificationDigest?: DigestVariant;
  /** Trusted roots for the DM server's certificate (PEM). */
  readonly ca?: string | readonly string[];
  readonly index?: number;
}

export type HandsetEvent =
  | { readonly kind: 'installed'; readonly serverId: string; readonly session?: DmSessionReport }
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'session'; readonly session: DmSessionReport }
  | { readonly kind: 'ignored'; readonly reason: string };

const SECURITY: readonly string[] = ['NETWPIN', 'USERPIN', 'USERNETWPIN', 'USERPINMAC'];

export class SimulatedHandset {
  private readonly accounts: DmAccountBootstrap[] = [];
  private phone: DmPhone | undefined;
  /** What the handset did with each push, for tests and the simulator's report. */
  readonly events: HandsetEvent[] = [];

  constructor(
    readonly profile: HandsetProfile,
    private readonly transport: DmTransport = httpTransport(profile.ca),
  ) {}

  get deviceId(): string {
    return `IMEI:${this.profile.imei}`;
  }

  /** The DM accounts installed (none on a never-bootstrapped phone). */
  get installed(): readonly DmAccountBootstrap[] {
    return this.accounts;
  }

  async receive(push: ReceivedPush): Promise<HandsetEvent> {
    const event = push.contentType === PushContentType.ProvisioningWbxml ? await this.provision(push) : await this.notify(push);
    this.events.push(event);
    return event;
  }

  private async provision(push: ReceivedPush): Promise<HandsetEvent> {
    const sec = push.parameters?.SEC;
    // An unsecured document is not applied: a bootstrap must be authenticated (ProvBoot §5).
    if (sec === undefined || !SECURITY.includes(sec)) return { kind: 'refused', reason: 'the document carries no security method (SEC)' };
    const pin = this.profile.userPin;
    if ((sec === 'USERPIN' || sec === 'USERNETWPIN' || sec === 'USERPINMAC') && pin === null) return { kind: 'refused', reason: 'the user entered no PIN' };
    const ok = verifyProvisioningMac(sec as PushSecurity, push.parameters?.MAC, push.body, { ...(pin === null ? {} : { pin }), ...(this.profile.imsi === undefined ? {} : { imsi: this.profile.imsi }) });
    if (!ok) return { kind: 'refused', reason: 'the MAC does not verify (wrong PIN)' };
    let account: DmAccountBootstrap;
    try {
      account = readDmAccount(decodeProvisioningWbxml(push.body));
    } catch (error) {
      if (error instanceof ProvisioningFormatError) return { kind: 'refused', reason: error.message };
      throw error;
    }
    const i = this.accounts.findIndex((a) => a.serverId === account.serverId);
    if (i >= 0) this.accounts.splice(i, 1);
    this.accounts.push(account);
    this.phone = new DmPhone(
      {
        deviceId: this.deviceId,
        username: account.client.name,
        password: account.client.secret,
        encoding: 'xml',
        auth: account.authType === 'HMAC' ? 'hmac' : 'md5',
        tree: phoneTree(this.deviceId, this.profile.index ?? 0),
      },
      this.transport,
    );
    // The client nonce of the account (AAUTHDATA) is the one its first digest uses.
    this.phone.nonce = account.client.nonce;
    if (account.init !== true) return { kind: 'installed', serverId: account.serverId };
    const session = await this.phone.runSession(this.urlOf(account));
    return { kind: 'installed', serverId: account.serverId, session };
  }

  private urlOf(account: DmAccountBootstrap): string {
    if (account.port === undefined) return account.address;
    const u = new URL(account.address);
    u.port = String(account.port);
    return u.toString();
  }

  private async notify(push: ReceivedPush): Promise<HandsetEvent> {
    const verdict: NotificationVerdict = readNotification(push, this.accounts, this.profile.notificationDigest ?? 'standard');
    if (verdict.outcome === 'ignored') return { kind: 'ignored', reason: verdict.reason };
    const account = this.accounts.find((a) => a.serverId === verdict.notification.serverId)!;
    const session = await this.phone!.runSession(this.urlOf(account), { sessionId: verdict.sessionId, alert: AlertCode.ServerInitiatedManagement });
    return { kind: 'session', session };
  }
}
