/**
 * SMS in `depot serve` (issue 15): the outbox over the store, the Kannel gateway, the API's
 * SMS routes and the SMS link install method, wired from one small configuration. The
 * secrets (sendsms password, callback secret) live sealed in the store: made once here (or
 * by `depot sms kannel-config`), and the Kannel configuration is rendered from the same ones.
 */
import { randomBytes } from 'node:crypto';
import type { SmsApiOptions } from '../api/sms.js';
import { FactsInstalledVersions, SmsLinkDownloads, SmsLinkMethod, StorePhoneDirectory } from '../fleet/methods/sms-link.js';
import type { PackageCatalog } from '../fleet/packages.js';
import { checkCallbackBase } from '../sms/kannel-config.js';
import { KannelGateway } from '../sms/kannel.js';
import { SmsOutbox } from '../sms/outbox.js';
import type { SqliteStore } from '../store/sqlite.js';

export interface SmsServerConfig {
  /** smsbox's sendsms interface; without it messages are stored and wait (the outbox says why). */
  kannel?: { sendsmsUrl: string; username?: string };
  /** Where Kannel reaches Depot's API port for delivery reports and MO messages, e.g. http://127.0.0.1:8080. */
  callbackBase: string;
  /** Origin of SMS download links (default: the callback base); https for real devices. */
  publicBaseUrl?: string;
  /** Default sender address. */
  from?: string;
  ratePerSecond?: number;
  backoff?: { baseMs: number; maxMs: number };
  validityMs?: number;
  linkTtlMs?: number;
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
  const linkMethod = new SmsLinkMethod({
    outbox,
    links: store.sms.links,
    catalog,
    directory: new StorePhoneDirectory({ numbers: store.sms.numbers, deviceFacts: store.deviceFacts, registrations: store.registrations }),
    installed: new FactsInstalledVersions(store.deviceFacts),
    publicBaseUrl: config.publicBaseUrl ?? callbackBase,
    ...(config.linkTtlMs ? { linkTtlMs: config.linkTtlMs } : {}),
  });
  await outbox.start();
  return {
    outbox,
    api: { outbox, callbackSecret: secrets.callbackSecret, numbers: store.sms.numbers, downloads: new SmsLinkDownloads({ links: store.sms.links, catalog }) },
    linkMethod,
    close: () => outbox.stop(),
  };
}
