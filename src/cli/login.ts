/**
 * `depot login`: signs in to a running Depot and keeps the URL and an API token in a config
 * file (mode 0600), which `depot users`, `depot tokens` (and any command reading
 * `cliTarget`) use when no --url/--token or DEPOT_URL/DEPOT_API_TOKEN is given.
 * Also the small HTTP client those commands share.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../pki/files.js';

const USAGE = `usage: depot login [--url <url>] (--username <name> [--password-stdin] | --token <token>) [options]

Signs in to a running Depot and saves its URL and an API token of your role in the config file
(mode 0600; default ~/.config/depot/config.json, or DEPOT_CONFIG). Later commands (depot users,
depot tokens) use it unless --url/--token or DEPOT_URL/DEPOT_API_TOKEN say otherwise.

Options:
  --url <url>          Depot's HTTP address (default DEPOT_URL, else http://127.0.0.1:8080)
  --username <name>    sign in with this user's password: a new API token is made for this machine
  --password-stdin     read the password from standard input (else DEPOT_PASSWORD, else a prompt)
  --token <token>      save this API token instead (checked against the server first)
  --name <name>        name of the token made (default depot-cli@<hostname>)
  --days <n>           validity of the token made, days (default 90, at most 365)
  --json               print the result as JSON
  -h, --help           show this help

Exit codes: 0 signed in, 1 the server refused or failed, 2 usage error, 4 wrong credentials.`;

export class UsageError extends Error {}

export interface CliConfig {
  url: string;
  token: string;
  username?: string | null;
  role?: string;
  expiresAt?: string;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DEPOT_CONFIG) return env.DEPOT_CONFIG;
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'depot', 'config.json');
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): CliConfig | undefined {
  const file = configPath(env);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as CliConfig;
  } catch (error) {
    throw new Error(`${file}: unreadable config (${(error as Error).message}); run "depot login" again`, { cause: error });
  }
}

export async function writeConfig(config: CliConfig, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const file = configPath(env);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/** Where to send requests and with which token: flags, then the environment, then the config file. */
export function cliTarget(flags: { url?: string | undefined; token?: string | undefined }, env: NodeJS.ProcessEnv = process.env): { url: string; token: string } {
  const config = flags.url && flags.token ? undefined : readConfig(env);
  const url = (flags.url ?? env.DEPOT_URL ?? config?.url ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const token = flags.token ?? env.DEPOT_API_TOKEN ?? config?.token;
  if (!token) throw new UsageError('no API token: run "depot login", or give --token or DEPOT_API_TOKEN');
  return { url, token };
}

export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A JSON request to the API; non-2xx answers throw ApiCallError with the server's detail. */
export async function callApi<T = Record<string, unknown>>(target: { url: string; token?: string }, path: string, init: { method?: string; json?: unknown } = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(target.url + path, {
      method: init.method ?? (init.json === undefined ? 'GET' : 'POST'),
      headers: { ...(target.token ? { authorization: `Bearer ${target.token}` } : {}), ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
    });
  } catch (error) {
    throw new ApiCallError(0, `cannot reach ${target.url}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`);
  }
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { detail: text };
  }
  const detail = typeof body.detail === 'string' ? body.detail : typeof body.message === 'string' ? body.message : text;
  if (!response.ok) throw new ApiCallError(response.status, `${response.status}: ${detail}`);
  return body as T;
}

/** Exit code of a failed command: 2 usage, 4 not signed in or not allowed, 1 anything else. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return 2;
  if (error instanceof ApiCallError && (error.status === 401 || error.status === 403)) return 4;
  return 1;
}

export async function readPassword(fromStdin: boolean, prompt: string): Promise<string> {
  if (!fromStdin && process.env.DEPOT_PASSWORD) return process.env.DEPOT_PASSWORD;
  if (fromStdin || !process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  // A terminal: read a line without echoing it.
  process.stderr.write(prompt);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  let password = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      stdin.on('data', (data: Buffer) => {
        for (const c of data.toString('utf8')) {
          if (c === '\r' || c === '\n') return resolve(password);
          if (c === '\u0003') return reject(new UsageError('cancelled'));
          if (c === '\u007f') password = password.slice(0, -1);
          else password += c;
        }
      });
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

export async function runLoginCommand(argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        username: { type: 'string' },
        'password-stdin': { type: 'boolean', default: false },
        token: { type: 'string' },
        name: { type: 'string' },
        days: { type: 'string', default: '90' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    const url = (values.url ?? process.env.DEPOT_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
    if (!/^https?:\/\/[^/]+/.test(url)) throw new UsageError(`--url takes an http:// or https:// address, got "${url}"`);
    if (!/^[1-9]\d{0,2}$/.test(values.days) || Number(values.days) > 365) throw new UsageError('--days takes 1 to 365');
    let config: CliConfig;
    if (values.token !== undefined) {
      if (values.username !== undefined) throw new UsageError('give --username or --token, not both');
      const me = await callApi<{ username: string | null; role: string }>({ url, token: values.token }, '/api/v1/session');
      config = { url, token: values.token, username: me.username, role: me.role };
    } else {
      if (!values.username) throw new UsageError('--username (or --token) is required');
      const password = await readPassword(values['password-stdin'], `password for ${values.username} at ${url}: `);
      const made = await callApi<{ token: string; role: string; username: string; expiresAt: string }>({ url }, '/api/v1/login', {
        json: { username: values.username, password, token: { name: values.name ?? `depot-cli@${hostname()}`.slice(0, 64), days: Number(values.days) } },
      });
      config = { url, token: made.token, username: made.username, role: made.role, expiresAt: made.expiresAt };
    }
    const file = await writeConfig(config);
    if (values.json) process.stdout.write(JSON.stringify({ url, username: config.username ?? null, role: config.role, expiresAt: config.expiresAt ?? null, config: file }) + '\n');
    else process.stdout.write(`signed in to ${url} as ${config.username ?? 'a token'} (${config.role}); token saved in ${file}${config.expiresAt ? ` (expires ${config.expiresAt})` : ''}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`depot login: ${(error as Error).message}${exitCodeOf(error) === 2 ? '\nRun "depot login --help" for usage.' : ''}\n`);
    return exitCodeOf(error);
  }
}
