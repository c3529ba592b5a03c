/**
 * OMA DM bootstrap and DM start for phones reached by SMS (issue 15): creates a device's DM
 * account, sends it as a USERPIN/NETWPIN-secured Client Provisioning document over WAP Push,
 * follows each number through the states of machine.ts (sent → delivered by DLR → accepted by
 * the first DM session with that account, or rejected/expired), limits resends, and sends DM
 * notifications (package #0) to devices that have an account.
 *
 * It talks to the SMS layer only through the WapPushSender port, and to the DM endpoint through
 * `onAuthenticated` (wire it to OmaDmHttpServer's option of that name). PINs and DM secrets are
 * never written to the log: lines name the phone number, the DevId and the state.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { type BootstrapEvent, type BootstrapState, nextState } from './machine.js';
import { DEFAULT_PROFILE, type GroupOptions, type ModelProfile, groupOptionsFrom, profileFrom } from './profiles.js';
import { Initiator, encodeNotification } from '../notification.js';
import { PushApplicationId, PushContentType, type PushDeliveryListener, type PushDeliveryReport, type WapPushSender } from '../push-port.js';
import { dmAccountDocument } from '../provisioning/document.js';
import { provisioningKey, provisioningMac } from '../provisioning/security.js';
import { encodeProvisioningWbxml } from '../provisioning/wbxml.js';
import type { BootstrapDevice, BootstrapDeviceInput, BootstrapFilter, SqliteOmaDmBootstrapRepository } from '../../store/sqlite/omadm-bootstrap.js';
import type { OmaDmAccount, OmaDmAccountInput } from '../../store/sqlite/omadm-accounts.js';

export const DEFAULT_PIN = '12345';
export const DEFAULT_MAX_SENDS = 3;
/** How long a sent bootstrap waits for its first session before it is expired (never delivered) or rejected (delivered). */
export const DEFAULT_ACCEPT_WINDOW_MS = 24 * 60 * 60_000;

export type BootstrapRepository = Pick<SqliteOmaDmBootstrapRepository, 'upsert' | 'get' | 'getByDeviceId' | 'list' | 'transition' | 'serverCredentials' | 'setServerCredentials' | 'recordPush' | 'push' | 'setPushStatus' | 'waitingSince' | 'getSettings'>;

export interface BootstrapServiceOptions {
  readonly store: BootstrapRepository;
  readonly accounts: {
    get(deviceId: string): Promise<OmaDmAccount | null>;
    put(input: OmaDmAccountInput, initialNonce: Uint8Array, now: number): Promise<OmaDmAccount>;
  };
  readonly sender: WapPushSender;
  /** The ServerID written into accounts and notifications. */
  readonly serverId: string;
  /** The DM endpoint's URI as devices reach it (https://host:port/dm); a function when known only once it listens. */
  readonly serverUri: string | (() => string);
  readonly serverName?: string;
  /** Depot's root certificate (DER), for models whose profile asks for it. */
  readonly rootCertificate?: Uint8Array;
  readonly acceptWindowMs?: number;
  readonly now?: () => number;
  readonly log?: (line: string) => void;
  /** Told when a number reaches the resend limit (the operator decides what next). */
  readonly onOperatorAlert?: (device: BootstrapDevice, text: string) => void;
}

export type BootstrapOutcomeKind = 'sent' | 'skipped' | 'stopped' | 'refused';

export interface BootstrapOutcome {
  readonly msisdn: string;
  readonly outcome: BootstrapOutcomeKind;
  readonly state?: BootstrapState;
  readonly message: string;
  readonly pushId?: string;
}

export interface StartDmOutcome {
  readonly msisdn?: string;
  readonly deviceId?: string;
  readonly outcome: 'notified' | 'reported';
  readonly message: string;
  readonly pushId?: string;
  readonly sessionId?: number;
}

/** Which devices a request names: numbers, DevIds, a group, or a filter over the bootstrap table. */
export interface DeviceSelection {
  readonly msisdns?: readonly string[];
  readonly deviceIds?: readonly string[];
  readonly filter?: Omit<BootstrapFilter, 'after' | 'limit'>;
}

export class BootstrapError extends Error {}

/** At most this many devices per request: larger fleets go in pages. */
export const MAX_SELECTION = 1000;

export class OmaDmBootstrapService implements PushDeliveryListener {
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private readonly acceptWindowMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: BootstrapServiceOptions) {
    this.now = options.now ?? Date.now;
    this.log = options.log ?? (() => {});
    this.acceptWindowMs = options.acceptWindowMs ?? DEFAULT_ACCEPT_WINDOW_MS;
  }

  /** The PIN, security method and send limit for a device: its group's, else the global ones, else the defaults. */
  async settingsFor(device: Pick<BootstrapDevice, 'group' | 'model'>): Promise<{ pin: string; group: GroupOptions; profile: ModelProfile; maxSends: number }> {
    const global = await this.options.store.getSettings('global');
    const group = device.group === null ? null : await this.options.store.getSettings(`group:${device.group}`);
    const model = device.model === null ? null : await this.options.store.getSettings(`model:${device.model}`);
    const globalOptions = groupOptionsFrom(global?.data);
    const groupOptions = { ...globalOptions, ...groupOptionsFrom(group?.data) };
    const profile = profileFrom(model?.data, DEFAULT_PROFILE);
    return { pin: group?.pin ?? global?.pin ?? DEFAULT_PIN, group: groupOptions, profile, maxSends: groupOptions.maxSends ?? DEFAULT_MAX_SENDS };
  }

  private async move(device: BootstrapDevice, event: BootstrapEvent, extra: Parameters<BootstrapRepository['transition']>[4] = {}): Promise<BootstrapState | undefined> {
    const to = nextState(device.state, event);
    if (to === undefined) return undefined;
    const moved = await this.options.store.transition(device.msisdn, device.state, to, this.now(), extra);
    return moved ? to : undefined;
  }

  /** Registers the numbers given and sends each its bootstrap; one outcome per device, never a throw for one bad device. */
  async bootstrap(devices: readonly BootstrapDeviceInput[]): Promise<BootstrapOutcome[]> {
    if (devices.length > MAX_SELECTION) throw new BootstrapError(`at most ${MAX_SELECTION} devices per request`);
    const out: BootstrapOutcome[] = [];
    for (const input of devices) {
      let device: BootstrapDevice;
      try {
        device = await this.options.store.upsert(input, this.now());
      } catch (error) {
        out.push({ msisdn: String(input.msisdn), outcome: 'refused', message: error instanceof Error ? error.message : String(error) });
        continue;
      }
      out.push(await this.bootstrapOne(device));
    }
    return out;
  }

  /** Sends (or resends) the bootstrap of the devices already known that a selection names. */
  async resend(selection: DeviceSelection): Promise<BootstrapOutcome[]> {
    const out: BootstrapOutcome[] = [];
    for (const found of await this.select(selection)) {
      if ('missing' in found) out.push({ msisdn: found.missing, outcome: 'refused', message: found.message });
      else out.push(await this.bootstrapOne(found));
    }
    return out;
  }

  private async bootstrapOne(device: BootstrapDevice): Promise<BootstrapOutcome> {
    const base = { msisdn: device.msisdn };
    if (device.state === 'accepted') return { ...base, outcome: 'skipped', state: device.state, message: 'already bootstrapped: the device has opened a DM session with its account (use start-dm)' };
    if (device.state === 'stopped') return { ...base, outcome: 'skipped', state: device.state, message: `stopped after ${device.sends} bootstraps without acceptance: reset it first` };
    if (device.deviceId === null) return { ...base, outcome: 'refused', state: device.state, message: 'the device\'s DevId is not known: give its IMEI or deviceId' };
    const settings = await this.settingsFor(device);
    if (device.sends >= settings.maxSends) {
      const state = await this.move(device, 'limit-reached', { message: `${device.sends} bootstraps sent without acceptance` });
      const text = `OMA DM bootstrap of ${device.msisdn} stopped: ${device.sends} sent without acceptance (limit ${settings.maxSends}); check the number and the user's PIN, then reset`;
      this.log(`omadm bootstrap: ${text}`);
      this.options.onOperatorAlert?.({ ...device, state: state ?? device.state }, text);
      return { ...base, outcome: 'stopped', state: state ?? device.state, message: text };
    }
    const existing = await this.options.accounts.get(device.deviceId);
    const known = await this.options.store.serverCredentials(device.deviceId);
    if (existing !== null && known === null) {
      return { ...base, outcome: 'skipped', state: device.state, message: `${device.deviceId} already has a DM account that Depot did not bootstrap: use start-dm` };
    }
    const security = settings.group.security ?? settings.profile.provisioning.security;
    if ((security === 'NETWPIN' || security === 'USERNETWPIN') && device.imsi === null) {
      return { ...base, outcome: 'refused', state: device.state, message: `${security} needs the device's IMSI, which is not known` };
    }

    // The client account: made once, kept across resends (the same document again).
    const now = this.now();
    const account = existing ?? (await this.options.accounts.put({ deviceId: device.deviceId, clientUsername: device.deviceId, clientPassword: randomBytes(18).toString('base64url') }, randomBytes(16), now));
    const server = known ?? { serverId: this.options.serverId, password: randomBytes(18).toString('base64url'), nonce: new Uint8Array(randomBytes(16)) };
    // Both accounts are stored before the push: a push that fails leaves them for the retry.
    if (known === null) await this.options.store.setServerCredentials(device.msisdn, server, now);
    const p = settings.profile.provisioning;
    const serverUri = typeof this.options.serverUri === 'string' ? this.options.serverUri : this.options.serverUri();
    const uri = new URL(serverUri);
    const doc = dmAccountDocument({
      serverId: server.serverId,
      name: this.options.serverName ?? 'Depot',
      address: serverUri,
      ...(p.separatePort && uri.port !== '' ? { port: Number(uri.port) } : {}),
      authType: p.authType,
      server: { name: server.serverId, secret: server.password, nonce: server.nonce },
      client: { name: account.clientUsername, secret: account.clientPassword, nonce: account.clientNonce },
      init: p.init,
      ...(p.rootCertificate && this.options.rootCertificate !== undefined ? { rootCertificate: this.options.rootCertificate } : {}),
    });
    const body = encodeProvisioningWbxml(doc);
    const mac = provisioningMac(provisioningKey(security as 'USERPIN' | 'NETWPIN' | 'USERNETWPIN', { pin: settings.pin, ...(device.imsi === null ? {} : { imsi: device.imsi }) }), body);
    // The same step retried is the same key (the outbox sends it once); a reset starts a new series (its last send time).
    const idempotencyKey = `omadm-bootstrap:${device.msisdn}:${device.sentAt ?? 0}:${device.sends + 1}`;
    const pushed = await this.options.sender.push({ to: device.msisdn, contentType: PushContentType.ProvisioningWbxml, parameters: { SEC: security, MAC: mac }, body, idempotencyKey });
    const state = await this.move(device, 'send', { message: null, send: { security, serverId: server.serverId, serverPassword: server.password, serverNonce: server.nonce, push: { id: pushed.id, idempotencyKey } } });
    if (state === undefined) return { ...base, outcome: 'skipped', state: device.state, message: 'the bootstrap changed state meanwhile; nothing recorded', pushId: pushed.id };
    this.log(`omadm bootstrap: ${security} document for ${device.deviceId} sent to ${device.msisdn} (push ${pushed.id}, send ${device.sends + 1} of at most ${settings.maxSends})`);
    return { ...base, outcome: 'sent', state, message: `${security} provisioning document of ${body.length} bytes pushed`, pushId: pushed.id };
  }

  /** Sends a DM notification to each selected device that has a phone number and a DM account; the others are reported. */
  async startDm(selection: DeviceSelection): Promise<StartDmOutcome[]> {
    const out: StartDmOutcome[] = [];
    const request = randomUUID();
    for (const found of await this.select(selection)) {
      if ('missing' in found) {
        out.push({ ...(found.missing.startsWith('+') ? { msisdn: found.missing } : { deviceId: found.missing }), outcome: 'reported', message: found.message });
        continue;
      }
      const device = found;
      const ids = { msisdn: device.msisdn, ...(device.deviceId === null ? {} : { deviceId: device.deviceId }) };
      if (device.deviceId === null) {
        out.push({ ...ids, outcome: 'reported', message: 'no DevId known for this number' });
        continue;
      }
      const account = await this.options.accounts.get(device.deviceId);
      if (account === null) {
        out.push({ ...ids, outcome: 'reported', message: 'no DM account: bootstrap it first' });
        continue;
      }
      if (device.sends > 0 && device.state !== 'accepted') {
        out.push({ ...ids, outcome: 'reported', message: `its bootstrap is ${device.state}, not accepted: the device has no account to check a notification with` });
        continue;
      }
      const server = await this.options.store.serverCredentials(device.deviceId);
      if (server === null) {
        out.push({ ...ids, outcome: 'reported', message: 'no server credentials for this device (its account was not bootstrapped by Depot), so no notification digest can be made' });
        continue;
      }
      const { profile } = await this.settingsFor(device);
      const sessionId = randomInt(1, 0x10000);
      const body = encodeNotification(
        { version: 12, uiMode: profile.notification.uiMode, initiator: Initiator.Server, sessionId, serverId: server.serverId },
        { password: server.password, nonce: server.nonce },
        { version: profile.notification.version, digest: profile.notification.digest },
      );
      const idempotencyKey = `omadm-notification:${device.msisdn}:${request}`;
      const pushed = await this.options.sender.push({ to: device.msisdn, contentType: PushContentType.DmNotification, applicationId: PushApplicationId.SyncMLDm, body, idempotencyKey });
      await this.options.store.recordPush({ id: pushed.id, msisdn: device.msisdn, kind: 'notification', idempotencyKey }, this.now());
      this.log(`omadm: notification for ${device.deviceId} sent to ${device.msisdn} (push ${pushed.id}, session ${sessionId.toString(16).toUpperCase()})`);
      out.push({ ...ids, outcome: 'notified', message: 'DM notification pushed', pushId: pushed.id, sessionId });
    }
    return out;
  }

  private async select(selection: DeviceSelection): Promise<(BootstrapDevice | { missing: string; message: string })[]> {
    const out: (BootstrapDevice | { missing: string; message: string })[] = [];
    const seen = new Set<string>();
    const add = (d: BootstrapDevice): void => {
      if (!seen.has(d.msisdn)) {
        seen.add(d.msisdn);
        out.push(d);
      }
    };
    for (const msisdn of selection.msisdns ?? []) {
      const d = await this.options.store.get(msisdn);
      if (d === null) out.push({ missing: msisdn, message: 'no device with this phone number' });
      else add(d);
    }
    for (const deviceId of selection.deviceIds ?? []) {
      const d = await this.options.store.getByDeviceId(deviceId);
      if (d === null) out.push({ missing: deviceId, message: (await this.options.accounts.get(deviceId)) === null ? 'unknown device' : 'has a DM account but no phone number is known' });
      else add(d);
    }
    if (selection.filter !== undefined) {
      let after = '';
      for (;;) {
        const page = await this.options.store.list({ ...selection.filter, after, limit: 500 });
        for (const d of page.items) add(d);
        if (page.next === null || out.length > MAX_SELECTION) break;
        after = page.next;
      }
    }
    if (out.length > MAX_SELECTION) throw new BootstrapError(`the selection names more than ${MAX_SELECTION} devices: narrow it`);
    return out;
  }

  /** From the SMS layer: a push's delivery report moves its bootstrap to delivered (or failed). */
  async onDeliveryReport(report: PushDeliveryReport): Promise<void> {
    const push = await this.options.store.push(report.id);
    if (push === null) return; // not one of this layer's pushes
    await this.options.store.setPushStatus(report.id, report.status, report.at);
    if (push.kind !== 'bootstrap' || report.status === 'buffered') return;
    const device = await this.options.store.get(push.msisdn);
    if (device === null) return;
    const state = await this.move(device, report.status === 'delivered' ? 'dlr-delivered' : 'dlr-failed', report.status === 'failed' ? { message: `the SMSC could not deliver the bootstrap${report.detail === undefined ? '' : `: ${report.detail.slice(0, 120)}`}` } : {});
    if (state !== undefined) this.log(`omadm bootstrap: ${device.msisdn} ${state} (push ${report.id})`);
  }

  /** From the DM endpoint: a device authenticated with its account, so a pending bootstrap is accepted. */
  async onAuthenticated(deviceId: string): Promise<void> {
    const device = await this.options.store.getByDeviceId(deviceId);
    if (device === null) return;
    const state = await this.move(device, 'session', { message: null });
    if (state !== undefined) this.log(`omadm bootstrap: ${device.msisdn} accepted (${deviceId} opened its first DM session)`);
  }

  /** The operator's word on a number: reject a waiting bootstrap, or reset a stopped one. */
  async decide(msisdn: string, decision: 'reject' | 'reset'): Promise<BootstrapDevice> {
    const device = await this.options.store.get(msisdn);
    if (device === null) throw new BootstrapError(`no device with phone number ${msisdn}`);
    const state = await this.move(device, decision === 'reject' ? 'operator-reject' : 'operator-reset', { message: decision === 'reject' ? 'rejected by the operator' : null });
    if (state === undefined) throw new BootstrapError(`a bootstrap in state ${device.state} cannot be ${decision === 'reject' ? 'rejected' : 'reset'}`);
    return (await this.options.store.get(msisdn))!;
  }

  /** Bootstraps past the acceptance window: delivered ones are rejected, undelivered ones expired. */
  async sweep(): Promise<number> {
    const now = this.now();
    let moved = 0;
    for (const device of await this.options.store.waitingSince(now - this.acceptWindowMs)) {
      const state = await this.move(device, 'window-passed', { message: device.state === 'delivered' ? 'delivered but not accepted in time: the user entered a wrong PIN, or none' : 'not delivered in time' });
      if (state !== undefined) {
        moved++;
        this.log(`omadm bootstrap: ${device.msisdn} ${state}`);
      }
    }
    return moved;
  }

  /** Sweeps every `intervalMs` (unref'd) until close(). */
  start(intervalMs = 60_000): void {
    this.timer ??= setInterval(() => void this.sweep().catch((error: unknown) => this.log(`omadm bootstrap: sweep failed: ${error instanceof Error ? error.message : String(error)}`)), intervalMs).unref();
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
