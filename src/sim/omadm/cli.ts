/**
 * `depot sim --protocol omadm`: N simulated OMA DM phones, each running DM sessions against a
 * Depot OMA DM endpoint over HTTPS (trusting the given root, e.g. `depot ca export`) or, for
 * labs, plain HTTP. Each phone's account must exist on the server (POST /api/v1/omadm/accounts):
 * DevId <prefix><index>, username = DevId, the one --password.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { DmPhone, httpTransport, phoneTree } from './phone.js';
import type { DmPhoneProfile } from './phone.js';
import { COMPLIANCE_PROFILE_NAMES, makeSimPhone } from './profiles.js';
import type { ComplianceProfileName } from './profiles.js';
import { SMS_PHONES_USAGE, runSmsDmPhonesCommand } from '../sms/dm-phones-cli.js';

const USAGE = `usage: depot sim --protocol omadm --server <https://host:port/dm> --count N --password <text> [options]
  --server <url>           Depot's OMA DM endpoint
  --count <n>              number of simulated phones
  --password <text>        the client password of every phone's DM account
  --ca <file.pem>          root the phones trust for the server's certificate (Depot's CA: depot ca export)
  --device-prefix <p>      DevIds are <p><index, 6 digits> (default IMEI:35999900)
  --encoding xml|wbxml|mixed  what the phones speak (default mixed: alternating)
  --auth md5|hmac          how the phones authenticate (default md5)
  --sessions <n>           sessions per phone, one after the other (default 1)
  --concurrency <n>        phones in session at once (default 20)
  --profiles <list>        compliance profiles, given to the phones in turn (comma-separated):
                           ${COMPLIANCE_PROFILE_NAMES.join(', ')} (default full); phones
                           without DM (no-dm) open no session and count as "no-dm"
${SMS_PHONES_USAGE}`;

function positive(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^[1-9]\d{0,6}$/.test(value)) throw new Error(`${flag} takes a positive number, got "${value}"`);
  return Number(value);
}

export async function runOmaDmSimCommand(argv: string[]): Promise<number> {
  // Phones reached by SMS through the lab Kannel (src/sim/sms/dm-phones-cli.ts).
  if (argv.some((a) => a === '--smsc' || a.startsWith('--smsc='))) return runSmsDmPhonesCommand(argv);
  let options;
  let profiles: string[] | undefined;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        server: { type: 'string' },
        count: { type: 'string' },
        password: { type: 'string' },
        ca: { type: 'string' },
        'device-prefix': { type: 'string', default: 'IMEI:35999900' },
        encoding: { type: 'string', default: 'mixed' },
        auth: { type: 'string', default: 'md5' },
        sessions: { type: 'string' },
        concurrency: { type: 'string' },
        profiles: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (values.server === undefined || !/^https?:\/\//.test(values.server)) throw new Error('--server must be an http(s) URL');
    if (values.password === undefined) throw new Error('--password is required');
    if (!['xml', 'wbxml', 'mixed'].includes(values.encoding)) throw new Error(`--encoding is xml, wbxml or mixed, got "${values.encoding}"`);
    const auth = values.auth;
    if (auth !== 'md5' && auth !== 'hmac') throw new Error(`--auth is md5 or hmac, got "${auth}"`);
    profiles = values.profiles?.split(',').map((p) => p.trim()).filter((p) => p !== '');
    options = {
      server: values.server,
      count: positive(values.count, '--count', NaN),
      password: values.password,
      ca: values.ca === undefined ? undefined : await readFile(values.ca, 'utf8'),
      prefix: values['device-prefix'],
      encoding: values.encoding,
      auth,
      sessions: positive(values.sessions, '--sessions', 1),
      concurrency: positive(values.concurrency, '--concurrency', 20),
    };
    if (Number.isNaN(options.count)) throw new Error('--count is required');
    if (profiles !== undefined) for (const p of profiles) if (!(COMPLIANCE_PROFILE_NAMES as string[]).includes(p)) throw new Error(`--profiles: unknown profile "${p}" (known: ${COMPLIANCE_PROFILE_NAMES.join(', ')})`);
  } catch (error) {
    process.stderr.write(`depot sim: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const transport = httpTransport(options.ca);
  const phones = Array.from({ length: options.count }, (_, i) => {
    const deviceId = `${options.prefix}${String(i + 1).padStart(6, '0')}`;
    if (profiles !== undefined) {
      const name = profiles[i % profiles.length] as ComplianceProfileName;
      const encoding: DmPhoneProfile['encoding'] | undefined = options.encoding === 'mixed' ? undefined : (options.encoding as DmPhoneProfile['encoding']);
      return makeSimPhone(name, { deviceId, password: options.password, index: i, ...(options.ca === undefined ? {} : { caPem: options.ca }), ...(encoding === undefined ? {} : { encoding }), auth: options.auth === 'hmac' ? 'hmac' : 'md5' }).phone ?? null;
    }
    const encoding: DmPhoneProfile['encoding'] = options.encoding === 'mixed' ? (i % 2 === 0 ? 'xml' : 'wbxml') : (options.encoding as DmPhoneProfile['encoding']);
    return new DmPhone({ deviceId, username: deviceId, password: options.password, encoding, auth: options.auth === 'hmac' ? 'hmac' : 'md5', tree: phoneTree(deviceId, i) }, transport);
  });
  const outcomes = new Map<string, number>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < phones.length) {
      const phone = phones[next++]!;
      if (phone === null) {
        outcomes.set('no-dm', (outcomes.get('no-dm') ?? 0) + 1);
        continue;
      }
      for (let s = 0; s < options.sessions; s++) {
        let outcome: string;
        try {
          outcome = (await phone.runSession(options.server)).ended;
        } catch (error) {
          outcome = `error: ${(error as Error).message}`;
        }
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, phones.length) }, worker));
  for (const [outcome, n] of outcomes) process.stdout.write(`depot sim: omadm sessions ${outcome}: ${n}\n`);
  return [...outcomes.keys()].every((k) => k === 'completed' || k === 'no-dm') && outcomes.has('completed') ? 0 : 1;
}
