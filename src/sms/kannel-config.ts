/**
 * Kannel's configuration for Depot, rendered from the template in the repository
 * (config/kannel/lab.conf.in): bearerbox + smsbox + a fake SMSC for the lab; for a real
 * SMSC the fake group is swapped for an SMPP one (config/kannel/smpp-example.conf).
 * Values are checked before they go in, so none can end a quoted string or add a line.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SmsError } from './errors.js';
import { normalizeSender } from './address.js';
import { moUrl } from './kannel.js';

/** config/kannel/ in the repository (from dist/src/sms/ or src/sms/). */
export function kannelConfigDir(): string {
  return fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../config/kannel/' : '../../config/kannel/', import.meta.url));
}

export interface KannelConfigValues {
  readonly adminPort: number;
  readonly smsboxPort: number;
  readonly sendsmsPort: number;
  readonly fakeSmscPort: number;
  readonly adminPassword: string;
  readonly sendsmsUsername: string;
  readonly sendsmsPassword: string;
  /** Where Kannel reaches Depot's API port, e.g. http://127.0.0.1:8080. */
  readonly callbackBase: string;
  readonly callbackSecret: string;
  /** Log, store and pid files go here (absolute). */
  readonly dir: string;
  /** The sender when Depot gives none (default "Depot"). */
  readonly globalSender?: string;
}

function safe(value: string, what: string): string {
  if (!/^[\x20-\x7e]*$/.test(value) || /["\\]/.test(value)) throw new SmsError('NOT_CONFIGURED', `${what} cannot go into Kannel's configuration: printable ASCII without quotes or backslashes only`);
  return value;
}

function port(n: number, what: string): string {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new SmsError('NOT_CONFIGURED', `${what} must be a port number`);
  return String(n);
}

/** Checks a callback base URL: http(s), no credentials, query or fragment. */
export function checkCallbackBase(base: string): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new SmsError('NOT_CONFIGURED', `the callback base ${JSON.stringify(base)} is not a URL`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash) throw new SmsError('NOT_CONFIGURED', 'the callback base must be an http(s) URL without credentials, query or fragment');
  return base.replace(/\/+$/, '');
}

export function renderKannelConfig(values: KannelConfigValues, template = readFileSync(kannelConfigDir() + 'lab.conf.in', 'utf8')): string {
  if (!values.dir.startsWith('/')) throw new SmsError('NOT_CONFIGURED', 'the Kannel directory must be an absolute path');
  // Kannel reads "%" in get-url as its own escapes: the secret must not need percent-encoding.
  if (!/^[A-Za-z0-9_-]{16,200}$/.test(values.callbackSecret)) throw new SmsError('NOT_CONFIGURED', 'the callback secret must be 16 to 200 characters of A-Z a-z 0-9 _ -');
  const map: Record<string, string> = {
    ADMIN_PORT: port(values.adminPort, 'adminPort'),
    SMSBOX_PORT: port(values.smsboxPort, 'smsboxPort'),
    SENDSMS_PORT: port(values.sendsmsPort, 'sendsmsPort'),
    FAKE_SMSC_PORT: port(values.fakeSmscPort, 'fakeSmscPort'),
    ADMIN_PASSWORD: safe(values.adminPassword, 'the admin password'),
    SENDSMS_USERNAME: safe(values.sendsmsUsername, 'the sendsms username'),
    SENDSMS_PASSWORD: safe(values.sendsmsPassword, 'the sendsms password'),
    MO_URL: safe(moUrl(checkCallbackBase(values.callbackBase), values.callbackSecret), 'the MO URL'),
    DIR: safe(values.dir.replace(/\/+$/, ''), 'the directory'),
    GLOBAL_SENDER: safe(normalizeSender(values.globalSender ?? 'Depot'), 'the global sender'),
  };
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (_m, name: string) => {
    const v = map[name];
    if (v === undefined) throw new SmsError('NOT_CONFIGURED', `the Kannel template names an unknown value {{${name}}}`);
    return v;
  });
}
