/**
 * `depot sms …`: Kannel's configuration for Depot, and the SMS outbox through a running
 * Depot's API.
 *
 *   kannel-config  renders Kannel's configuration (bearerbox + smsbox + the lab's fake SMSC)
 *                  from config/kannel/lab.conf.in with the store's SMS secrets (made when
 *                  missing), mode 0600. For a real SMSC swap the fake group for an SMPP one
 *                  (config/kannel/smpp-example.conf, docs/sms.md).
 *   outbox         lists the outbox (API GET /api/v1/sms/outbox)
 *   send           sends a text (API POST /api/v1/sms/texts)
 *   number         maps a device to its phone number (API POST /api/v1/sms/numbers)
 *   wakeup         LwM2M SMS wake-up (API POST /api/v1/devices/<endpoint>/sms-wakeup)
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SERVER_OPTIONS } from './command.js';
import { ensureSmsSecrets } from '../app/sms.js';
import { renderKannelConfig } from '../sms/kannel-config.js';
import { openSqliteStore } from '../store/sqlite.js';

const USAGE = `usage: depot sms <command> [options]
commands:
  kannel-config --callback-base <url> [--out <file>] [--kannel-dir <dir>] [--data-dir <dir>]
                [--admin-port 13000] [--smsbox-port 13001] [--sendsms-port 13013] [--fake-smsc-port 10000]
                [--username depot] [--sender Depot]
      writes Kannel's configuration (bearerbox, smsbox, fake SMSC, sendsms user, MO service) with
      the sendsms password and callback secret kept sealed in Depot's store (made when missing);
      the file (default ./kannel.conf) is written with mode 0600. Then run:
        bearerbox kannel.conf & smsbox kannel.conf &
        depot serve --sms-kannel http://127.0.0.1:13013/cgi-bin/sendsms --sms-callback-base <url>
  outbox [--state queued|submitted|delivered|failed|unknown|cancelled] [--to <number>]
      the SMS outbox of a running Depot, newest first, with the gateway's last error
  send --to <number> --text <text> --job-step <key>
      sends a text through a running Depot (the same job step never sends twice)
  number <endpoint> <number>
      maps a device to its phone number (E.164) for the SMS methods
  wakeup <endpoint> [--job-step <key>]
      LwM2M SMS wake-up: the Registration Update Trigger by SMS to a registered device
options for outbox, send, number, wakeup:
  --api <url>       Depot's HTTP API (default http://127.0.0.1:8080)
  --token <token>   API bearer token (default DEPOT_API_TOKEN, else <data-dir>/api-token)
  --data-dir <dir>  Depot's data directory (default ./depot-data)`;

class UsageError extends Error {}

function port(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`${flag} must be a port number, got "${value}"`);
  return n;
}

export interface SmsCommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
  fetch: typeof fetch;
}

const defaultIo: SmsCommandIo = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), fetch: (...a) => fetch(...a) };

export async function runSmsCommand(argv: string[], io: SmsCommandIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h') {
    io.stdout(USAGE + '\n');
    return command ? 0 : 2;
  }
  try {
    switch (command) {
      case 'kannel-config':
        return await kannelConfig(rest, io);
      case 'outbox':
      case 'send':
      case 'number':
      case 'wakeup':
        return await apiCommand(command, rest, io);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`depot sms: ${(error as Error).message}\n${USAGE}\n`);
      return 2;
    }
    io.stderr(`depot sms ${command}: ${(error as Error).message}\n`);
    return 1;
  }
}

async function kannelConfig(argv: string[], io: SmsCommandIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'callback-base': { type: 'string' },
      out: { type: 'string', default: './kannel.conf' },
      'kannel-dir': { type: 'string' },
      'data-dir': { type: 'string', default: './depot-data' },
      'admin-port': { type: 'string', default: '13000' },
      'smsbox-port': { type: 'string', default: '13001' },
      'sendsms-port': { type: 'string', default: '13013' },
      'fake-smsc-port': { type: 'string', default: '10000' },
      username: { type: 'string', default: 'depot' },
      sender: { type: 'string', default: 'Depot' },
    },
  });
  if (!values['callback-base']) throw new UsageError('--callback-base is required: where Kannel reaches Depot\'s API port, e.g. http://127.0.0.1:8080');
  const out = resolve(values.out);
  const store = openSqliteStore({ dataDir: values['data-dir'] });
  let secrets;
  try {
    secrets = await ensureSmsSecrets(store);
  } finally {
    store.close();
  }
  const config = renderKannelConfig({
    adminPort: port(values['admin-port'], '--admin-port'),
    smsboxPort: port(values['smsbox-port'], '--smsbox-port'),
    sendsmsPort: port(values['sendsms-port'], '--sendsms-port'),
    fakeSmscPort: port(values['fake-smsc-port'], '--fake-smsc-port'),
    adminPassword: randomBytes(18).toString('base64url'),
    sendsmsUsername: values.username,
    globalSender: values.sender,
    sendsmsPassword: secrets.sendsmsPassword,
    callbackBase: values['callback-base'],
    callbackSecret: secrets.callbackSecret,
    dir: resolve(values['kannel-dir'] ?? join(out, '..')),
  });
  writeFileSync(out, config, { mode: 0o600 });
  // An existing file keeps its mode on write: narrowed here.
  chmodSync(out, 0o600);
  io.stdout(`wrote ${out} (mode 0600: it holds the sendsms password and the callback secret)\n`);
  io.stdout(`Depot: depot serve --sms-kannel http://127.0.0.1:${values['sendsms-port']}/cgi-bin/sendsms --sms-callback-base ${values['callback-base']} --data-dir ${values['data-dir']}\n`);
  return 0;
}

function readToken(dataDir: string): string {
  const file = join(dataDir, 'api-token');
  if (!existsSync(file)) throw new UsageError(`no API token: give --token, set DEPOT_API_TOKEN, or point --data-dir at the server's data directory (${file} not found)`);
  return readFileSync(file, 'utf8').trim();
}

async function apiCommand(command: 'outbox' | 'send' | 'number' | 'wakeup', argv: string[], io: SmsCommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...SERVER_OPTIONS,
      state: { type: 'string' },
      to: { type: 'string' },
      text: { type: 'string' },
      'job-step': { type: 'string' },
    },
  });
  const token = values.token ?? process.env.DEPOT_API_TOKEN ?? readToken(values['data-dir']);
  const api = values.api.replace(/\/+$/, '');
  const call = async (method: string, path: string, json?: unknown): Promise<Record<string, unknown>> => {
    let response: Response;
    try {
      response = await io.fetch(`${api}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(json !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
    } catch (err) {
      throw new Error(`cannot reach the Depot API at ${api}: ${(err as Error).message}`, { cause: err });
    }
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    const text = (v: unknown, fallback: string): string => (typeof v === 'string' ? v : fallback);
    if (!response.ok) throw new Error(`${response.status} ${text(body['error'], '')}: ${text(body['message'], response.statusText)}`);
    return body;
  };
  if (command === 'outbox') {
    const q = new URLSearchParams();
    if (values.state) q.set('state', values.state);
    if (values.to) q.set('to', values.to);
    const body = await call('GET', `/api/v1/sms/outbox${q.size ? `?${q.toString()}` : ''}`);
    const gateway = body['gateway'] as { description: string | null; lastError: string | null };
    io.stdout(`gateway: ${gateway.description ?? 'none configured'}${gateway.lastError ? ` (last error: ${gateway.lastError})` : ''}\n`);
    for (const m of body['messages'] as { id: string; state: string; to: string; kind: string; parts: number; createdAt: string; lastError: string | null; jobStep: string }[]) {
      io.stdout(`${m.createdAt}  ${m.id}  ${m.state.padEnd(9)}  ${m.to}  ${m.kind}  ${m.parts} part(s)  ${m.jobStep}${m.lastError ? `  (${m.lastError})` : ''}\n`);
    }
    return 0;
  }
  if (command === 'send') {
    if (!values.to || !values.text || !values['job-step']) throw new UsageError('send needs --to, --text and --job-step');
    const m = await call('POST', '/api/v1/sms/texts', { to: values.to, text: values.text, jobStep: values['job-step'] });
    io.stdout(`SMS ${String(m['id'])} ${String(m['state'])} to ${String(m['to'])} (${String(m['parts'])} part(s))\n`);
    return 0;
  }
  if (command === 'wakeup') {
    if (positionals.length !== 1) throw new UsageError('wakeup takes an endpoint');
    const m = await call('POST', `/api/v1/devices/${encodeURIComponent(positionals[0]!)}/sms-wakeup`, values['job-step'] ? { jobStep: values['job-step'] } : {});
    io.stdout(`wake-up SMS ${String(m['id'])} ${String(m['state'])} to ${String(m['to'])}\n`);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError('number takes an endpoint and a phone number');
  const r = await call('POST', '/api/v1/sms/numbers', { endpoint: positionals[0], number: positionals[1] });
  io.stdout(`${String(r['endpoint'])} → ${String(r['number'])}\n`);
  return 0;
}
