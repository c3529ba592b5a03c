/**
 * `depot chain …`: install chain jobs (issue 16) through a running Depot's HTTP API: create one
 * for a device, show one with its attempts, list a device's history, cancel; the learned method
 * table per model; pin, forbid or unpin a method for a model.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { printable as escapeUnprintable } from '../util/printable.js';
import { runCommand, SERVER_OPTIONS, UsageError } from './command.js';

const USAGE = `usage: depot chain <command> [options]

Install a package on a device through the install method chain (LwM2M Object 9, then the next
method, … Mark for Installation), and see what Depot learned per model.

Commands:
  create <device> <package-sha256>   new chain job; without --methods the order learned for the
                                     device's model (or the default), with it exactly that chain
  show <job-id>                      a job with every attempt
  list <device>                      the device's jobs, newest first, with their attempts
  cancel <job-id>                    cancel an open job
  methods [--make M --model N]       the learned table: counts per (make, model, OS, method), rules
  pin|forbid <make> <model> <method> always try the method first / never try it, for the model
  unpin <make> <model> <method>      remove the pin or forbid

Options:
  --api <url>          Depot's HTTP API (default http://127.0.0.1:8080)
  --token <token>      API bearer token (default DEPOT_API_TOKEN, else <data-dir>/api-token)
  --data-dir <dir>     where to find api-token (default ./depot-data)
  --methods <a,b,…>    create: the explicit chain (e.g. object9,mark)
  --activate           create: activate the software once installed
  --limit <n>          list: jobs per page (default 20)
  --make, --model      methods: only this make / model
  --json               print the API's JSON as is
  -h, --help           show this help

Exit codes: 0 done, 1 the API refused or failed, 2 usage error.
`;

export interface ChainCommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  fetch: typeof fetch;
}

const processIo: ChainCommandIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  fetch: (...args) => fetch(...args),
};

interface AttemptJson {
  seq: number;
  method: string;
  outcome: string;
  startedAt: string;
  endedAt: string | null;
  result: string | null;
  bytes: number | null;
  message: string | null;
}

interface JobJson {
  id: string;
  endpoint: string;
  package: string;
  state: string;
  chosenBy: string;
  methods: string[];
  plan: { skip: Record<string, string>; note: string | null };
  message: string | null;
  retryAt: string | null;
  createdAt: string;
  finishedAt: string | null;
  attempts: AttemptJson[];
}

interface StatsJson {
  make: string;
  model: string;
  osVersion: string;
  method: string;
  successes: number;
  failures: number;
  lastReason: string | null;
}

/** Device strings shown on a terminal: unprintable characters escaped, long ones cut. */
const printable = (s: string): string => escapeUnprintable(s, 1000);

export function formatJob(job: JobJson): string {
  const lines = [
    `job ${job.id} on ${printable(job.endpoint)}: ${job.state}${job.message ? ` — ${printable(job.message)}` : ''}`,
    `  package ${job.package.slice(0, 12)}…  chain ${job.methods.join(' → ')} (${job.chosenBy}${job.plan.note ? `: ${printable(job.plan.note)}` : ''})`,
    `  created ${job.createdAt}${job.finishedAt ? `, ended ${job.finishedAt}` : ''}${job.retryAt ? `, retry at ${job.retryAt}` : ''}`,
  ];
  for (const a of job.attempts) {
    const extra = [a.result ? `result ${printable(a.result)}` : '', a.bytes !== null ? `${a.bytes} bytes` : ''].filter(Boolean).join(', ');
    lines.push(`  ${String(a.seq).padStart(2)}. ${a.method.padEnd(8)} ${a.outcome.padEnd(9)} ${a.startedAt}${a.endedAt ? ` → ${a.endedAt}` : ''}${extra ? ` (${extra})` : ''}`);
    if (a.message) lines.push(`      ${printable(a.message)}`);
  }
  return lines.join('\n') + '\n';
}

export function formatTable(stats: StatsJson[], rules: { make: string; model: string; method: string; rule: string }[]): string {
  if (stats.length === 0 && rules.length === 0) return 'nothing learned yet\n';
  const rows = stats.map((s) => [printable(s.make), printable(s.model), printable(s.osVersion || '-'), s.method, String(s.successes), String(s.failures), printable(s.lastReason ?? '')]);
  const header = ['MAKE', 'MODEL', 'OS', 'METHOD', 'OK', 'FAILED', 'LAST FAILURE'];
  const widths = header.map((h, i) => Math.min(40, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.slice(0, widths[i]).padEnd(widths[i]!))).join('  ').trimEnd();
  const out = rows.length > 0 ? [line(header), ...rows.map(line)] : ['nothing learned yet'];
  if (rules.length > 0) out.push('', 'rules:', ...rules.map((r) => `  ${r.rule.padEnd(6)} ${r.method} on ${printable(r.make)} ${printable(r.model)}`));
  return out.join('\n') + '\n';
}

export async function runChainCommand(argv: string[], io: ChainCommandIo = processIo): Promise<number> {
  return runCommand('chain', io, () => chain(argv, io));
}

async function chain(argv: string[], io: ChainCommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...SERVER_OPTIONS,
      methods: { type: 'string' },
      activate: { type: 'boolean', default: false },
      limit: { type: 'string', default: '20' },
      make: { type: 'string' },
      model: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout(USAGE);
    return 0;
  }
  const [command, ...args] = positionals;
  const need = (n: number, what: string): string[] => {
    if (args.length !== n) throw new UsageError(`${command ?? ''} takes ${what}`);
    return args;
  };
  if (!command) throw new UsageError('give a command (create, show, list, cancel, methods, pin, forbid, unpin)');
  const known = ['create', 'show', 'list', 'cancel', 'methods', 'pin', 'forbid', 'unpin'];
  if (!known.includes(command)) throw new UsageError(`unknown command "${command}"`);
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError('--limit must be an integer 1..1000');
  const token = values.token ?? process.env.DEPOT_API_TOKEN ?? readToken(values['data-dir']);
  const api = values.api.replace(/\/+$/, '');
  const call = async (method: string, path: string, json?: unknown): Promise<Record<string, unknown>> => {
    let response: Response;
    try {
      response = await io.fetch(`${api}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(json !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
      });
    } catch (err) {
      throw new Error(`cannot reach the Depot API at ${api}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    const text = (v: unknown, fallback: string): string => (typeof v === 'string' ? v : fallback);
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text(body['error'], '')}: ${text(body['message'], response.statusText)}`);
    return body;
  };
  const print = (body: Record<string, unknown>, human: () => string): number => {
    io.stdout(values.json ? `${JSON.stringify(body, null, 2)}\n` : human());
    return 0;
  };
  const e = encodeURIComponent;
  switch (command) {
    case 'create': {
      const [device, sha] = need(2, 'a device and a package SHA-256') as [string, string];
      if (!/^[0-9a-f]{64}$/i.test(sha)) throw new UsageError('the package is its SHA-256 (64 hex digits); add a file with "depot install" or POST /api/v1/packages first');
      const methods = values.methods?.split(',').map((m) => m.trim()).filter(Boolean);
      if (values.methods !== undefined && (!methods || methods.length === 0)) throw new UsageError('--methods names at least one method');
      const body = await call('POST', `/api/v1/devices/${e(device)}/install-chains`, { package: sha.toLowerCase(), ...(values.activate ? { activate: true } : {}), ...(methods ? { methods } : {}) });
      return print(body, () => formatJob(body as unknown as JobJson));
    }
    case 'show': {
      const [id] = need(1, 'a job id') as [string];
      const body = await call('GET', `/api/v1/install-chains/${e(id)}`);
      return print(body, () => formatJob(body as unknown as JobJson));
    }
    case 'list': {
      const [device] = need(1, 'a device') as [string];
      const body = await call('GET', `/api/v1/devices/${e(device)}/install-chains?limit=${limit}`);
      const jobs = body['jobs'] as JobJson[];
      return print(body, () => (jobs.length === 0 ? `no install chain jobs for ${printable(device)}\n` : jobs.map(formatJob).join('\n')) + (body['next'] ? `(more: --json shows the next cursor)\n` : ''));
    }
    case 'cancel': {
      const [id] = need(1, 'a job id') as [string];
      const body = await call('POST', `/api/v1/install-chains/${e(id)}/cancel`);
      return print(body, () => formatJob(body as unknown as JobJson));
    }
    case 'methods': {
      need(0, 'no arguments (filter with --make and --model)');
      const q = new URLSearchParams({ ...(values.make !== undefined ? { make: values.make } : {}), ...(values.model !== undefined ? { model: values.model } : {}) }).toString();
      const body = await call('GET', `/api/v1/install-methods${q ? `?${q}` : ''}`);
      return print(body, () => `methods: ${(body['methods'] as string[]).join(', ')}\n${formatTable(body['stats'] as StatsJson[], body['rules'] as { make: string; model: string; method: string; rule: string }[])}`);
    }
    default: {
      const [make, model, method] = need(3, 'a make, a model and a method') as [string, string, string];
      const path = `/api/v1/install-methods/${e(make)}/${e(model)}/${e(method)}`;
      const body = command === 'unpin' ? await call('DELETE', path) : await call('PUT', path, { rule: command });
      return print(body, () => (command === 'unpin' ? `removed the rule of ${method} on ${make} ${model}\n` : `${command === 'pin' ? 'pinned' : 'forbidden'}: ${method} on ${make} ${model}\n`));
    }
  }
}

function readToken(dataDir: string): string {
  const file = join(dataDir, 'api-token');
  if (!existsSync(file)) throw new UsageError(`no API token: give --token, set DEPOT_API_TOKEN, or point --data-dir at the server's data directory (${file} not found)`);
  return readFileSync(file, 'utf8').trim();
}
