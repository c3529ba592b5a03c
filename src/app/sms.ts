/**
 * SMS in `depot serve` (issue 15): the outbox over the store, the Kannel gateway, the API's
 * SMS routes and the SMS link install method, wired from one small configuration. The
 * secrets (sendsms password, callback secret) live sealed in the store: made once here (or
 * by `depot sms kannel-config`), and the Kannel configuration is rendered from the same ones.
 */
import { randomBytes } from 'node:crypto';
import type { SmsApiOptions } from '../api/sms.js';
import { FactsInstalledVersions, SmsLinkDownloads, SmsLinkMethod, StorePhoneDirectory, factsInstallReport } from '../fleet/methods/sms-link.js';
import type { InstallTarget } from '../fleet/methods/method.js';
import type { PackageCatalog } from '../fleet/packages.js';
import { checkCallbackBase } from '../sms/kannel-config.js';
import { KannelGateway } from '../sms/kannel.js';
import { SmsError } from '../sms/errors.js';
import { registrationUpdateTrigger } from '../sms/lwm2m-trigger.js';
import { SmsOutbox, type SmsMessageRecord } from '../sms/outbox.js';
import type { PushDeliveryListener, PushDeliveryReport, WapPushSender } from '../omadm/push-port.js';
import type { SqliteStore } from '../store/sqlite.js';

export interface SmsServerConfig {
  /** smsbox's sendsms interface; without it messages are stored and wait (the outbox says why). */
  kannel?: { sendsmsUrl: string; username?: string };
  /** Where Kannel reaches Depot's API port for delivery reports and MO messages, e.g. http://127.0.0.1:8080. */
  callbackBase: string;
  /** Origin of SMS download links (default: the callback base); https for real devices. */
  publicBaseUrl?: string;
  /**
   * Origin of Send certificate's links to Depot's root (default: publicBaseUrl): http, or https
   * with a publicly trusted certificate (a device without Depot's root cannot open a link signed by it).
   */
  certificateBaseUrl?: string;
  /** Default sender address. */
  from?: string;
  ratePerSecond?: number;
  backoff?: { baseMs: number; maxMs: number };
  validityMs?: number;
  linkTtlMs?: number;
  /** Depot's Short Server ID as LwM2M devices know it (for the SMS wake-up; default 1, what bootstrap writes). */
  lwm2mShortServerId?: number;
}

export interface SmsSecrets {
  sendsmsPassword: string;
  callbackSecret: string;
}

/** The store's SMS secrets, made (random, sealed) when missing. */
export async function ensureSmsSecrets(store: Pick<SqliteStore, 'sms'>, now = Date.now()): Promise<SmsSecrets> {
  const get = async (name: 'kannel.sendsms-password' | 'callback-secret'): Promise<string> => {
    const existing = await store.sms.secrets.get(name);
    if (existing) return existing;
    const made = randomBytes(24).toString('base64url');
    await store.sms.secrets.put(name, made, now);
    return made;
  };
  return { sendsmsPassword: await get('kannel.sendsms-password'), callbackSecret: await get('callback-secret') };
}

export interface RunningSms {
  outbox: SmsOutbox;
  api: Omit<SmsApiOptions, 'now'>;
  /** The SMS link install method, for the install chain. */
  linkMethod: SmsLinkMethod;
  /** Where SMS link installs find their send rate (a campaign wave's): the campaign engine. */
  setPacing(pace: (target: InstallTarget) => Promise<{ group: string; perMinute: number } | undefined>): void;
  /** A device reported an SMS link install (POST /d/<token>/installed); returns the unsubscribe. */
  onInstalled(listener: (endpoint: string) => void): () => void;
  /** LwM2M SMS wake-up: the Registration Update Trigger to a registered device's number. */
  wakeUp(endpoint: string, jobStep?: string): Promise<SmsMessageRecord>;
  close(): Promise<void>;
}

export async function startSms(store: SqliteStore, catalog: PackageCatalog, config: SmsServerConfig, log: (line: string) => void = (l) => process.emitWarning(l)): Promise<RunningSms> {
  const callbackBase = checkCallbackBase(config.callbackBase);
  const secrets = await ensureSmsSecrets(store);
  const gateway = config.kannel ? new KannelGateway({ sendsmsUrl: config.kannel.sendsmsUrl, username: config.kannel.username ?? 'depot', password: secrets.sendsmsPassword }) : null;
  const outbox = new SmsOutbox({
    repository: store.sms.outbox,
    gateway,
    callbackBase,
    callbackSecret: secrets.callbackSecret,
    log,
    ...(config.from ? { from: config.from } : {}),
    ...(config.ratePerSecond ? { ratePerSecond: config.ratePerSecond } : {}),
    ...(config.backoff ? { backoff: config.backoff } : {}),
    ...(config.validityMs ? { validityMs: config.validityMs } : {}),
  });
  const directory = new StorePhoneDirectory({ numbers: store.sms.numbers, deviceFacts: store.deviceFacts, registrations: store.registrations, inventory: store.inventory });
  const installedListeners = new Set<(endpoint: string) => void>();
  const wakeUp = async (endpoint: string, jobStep?: string): Promise<SmsMessageRecord> => {
    if (!(await store.registrations.getByEndpoint(endpoint))) throw new SmsError('NOT_FOUND', `device "${endpoint}" is not registered over LwM2M`);
    const number = await directory.numberOf(endpoint);
    if (!number) throw new SmsError('NOT_FOUND', `Depot knows no phone number for "${endpoint}" (map one with depot sms number)`);
    return outbox.sendBinary({ to: number, data: registrationUpdateTrigger(config.lwm2mShortServerId ?? 1), jobStep: jobStep ?? `lwm2m-wakeup:${endpoint}:${Date.now()}` });
  };
  // The campaign engine (made after SMS in depot serve) tells each SMS link install its wave's send rate.
  let pacing: ((target: InstallTarget) => Promise<{ group: string; perMinute: number } | undefined>) | undefined;
  const linkMethod = new SmsLinkMethod({
    pace: (target) => pacing?.(target) ?? Promise.resolve(undefined),
    outbox,
    links: store.sms.links,
    catalog,
    directory,
    installed: new FactsInstalledVersions(store.deviceFacts),
    publicBaseUrl: config.publicBaseUrl ?? callbackBase,
    ...(config.linkTtlMs ? { linkTtlMs: config.linkTtlMs } : {}),
  });
  await outbox.start();
  return {
    outbox,
    api: {
      outbox,
      callbackSecret: secrets.callbackSecret,
      numbers: store.sms.numbers,
      downloads: new SmsLinkDownloads({ links: store.sms.links, catalog, report: factsInstallReport(store.deviceFacts) }),
      wakeUp,
      onInstalled: (endpoint) => {
        for (const listener of installedListeners) listener(endpoint);
      },
    },
    linkMethod,
    onInstalled: (listener) => {
      installedListeners.add(listener);
      return () => installedListeners.delete(listener);
    },
    setPacing: (pace) => {
      pacing = pace;
    },
    wakeUp,
    close: () => outbox.stop(),
  };
}

/** The OMA DM layer's WAP Push port, carried by the outbox (its idempotency key is the outbox's job step). */
export function wapPushSenderOf(outbox: Pick<SmsOutbox, 'wapPush'>): WapPushSender {
  return {
    push: async (message) => {
      const record = await outbox.wapPush({
        to: message.to,
        jobStep: message.idempotencyKey,
        contentType: message.contentType,
        body: message.body,
        ...(message.parameters ? { parameters: message.parameters } : {}),
        ...(message.applicationId ? { applicationId: message.applicationId } : {}),
      });
      return { id: record.id };
    },
  };
}

/** What a WAP Push's outbox record says of its delivery, in the OMA DM port's terms (undefined: nothing new). */
export function pushDeliveryReportOf(message: SmsMessageRecord): PushDeliveryReport | undefined {
  if (message.kind !== 'wap-push') return undefined;
  const at = message.updatedAt;
  const detail = message.lastError ?? undefined;
  switch (message.state) {
    case 'delivered':
      return { id: message.id, status: 'delivered', at };
    case 'failed':
    case 'cancelled':
      return { id: message.id, status: 'failed', at, ...(detail ? { detail } : {}) };
    default:
      return undefined;
  }
}

/** Forwards the outbox's WAP Push outcomes to the listener; returns the unsubscribe. */
export function forwardPushDeliveryReports(outbox: Pick<SmsOutbox, 'onUpdate'>, listener: PushDeliveryListener, log: (line: string) => void = (l) => process.emitWarning(l)): () => void {
  return outbox.onUpdate((update) => {
    const report = pushDeliveryReportOf(update.message);
    if (!report) return;
    listener.onDeliveryReport(report).catch((error: unknown) => log(`push delivery report ${report.id}: ${error instanceof Error ? error.message : String(error)}`));
  });
}
