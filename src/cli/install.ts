/**
 * `depot install <device> <package-sha256-or-file>`: installs a package on a device through
 * a running Depot's HTTP API (Object 9 install job) and shows its progress until it ends.
 * A file is uploaded to the catalog first (POST /api/v1/packages).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runCommand, SERVER_OPTIONS, UsageError } from './command.js';

const USAGE = `usage: depot install <device> <package-sha256-or-file> [options]

Installs a Depot package on a device through LwM2M Object 9, following the job until it
succeeds or fails. Depot chooses how the package reaches the device (what last worked for the
device's model, else the device pulls it, with push as the fallback) unless --method says.

Options:
  --api <url>          Depot's HTTP API (default http://127.0.0.1:8080)
  --token <token>      API bearer token (default DEPOT_API_TOKEN, else <data-dir>/api-token)
  --data-dir <dir>     where to find api-token (default ./depot-data)
  --activate           activate the software once installed
  --method pull|push   pull (the device downloads from Depot's Package URI) or push (Depot writes
                       the package block-wise); no fallback when given
  --no-wait            print the job id and return at once
  --interval <ms>      polling interval (default 1000)
  -h, --help           show this help

Exit codes: 0 installed, 1 the install failed (the message says whether to retry), 2 usage error.
`;

export interface InstallCommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether stdout is a terminal (progress bar redrawn in place). */
  tty: boolean;
  fetch: typeof fetch;
  sleep: (ms: number) => Promise<void>;
}

const processIo: InstallCommandIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  tty: process.stdout.isTTY === true,
  fetch: (...args) => fetch(...args),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

interface JobJson {
  id: string;
  state: string;
  percent: number;
  message: string | null;
  retry: string | null;
  result: string | null;
  instance: number | null;
  download: { bytes: number; size: number } | null;
  transitions: { at: string; from: string | null; to: string; detail: string | null }[];
}

/** A text progress bar: `[#####.....]  50% downloading 1.2/2.4 MB`. */
export function progressLine(job: Pick<JobJson, 'state' | 'percent' | 'download'>, width = 30): string {
  const filled = Math.max(0, Math.min(width, Math.round((job.percent / 100) * width)));
  const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
  const mb = (n: number) => (n / 1e6).toFixed(n < 1e6 ? 2 : 1);
  const dl = job.state === 'downloading' && job.download ? ` ${mb(job.download.bytes)}/${mb(job.download.size)} MB` : '';
  return `[${bar}] ${String(job.percent).padStart(3)}% ${job.state}${dl}`;
}

export async function runInstallCommand(argv: string[], io: InstallCommandIo = processIo): Promise<number> {
  return runCommand('install', io, () => install(argv, io));
}

async function install(argv: string[], io: InstallCommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...SERVER_OPTIONS,
      activate: { type: 'boolean', default: false },
      method: { type: 'string' },
      'no-wait': { type: 'boolean', default: false },
      interval: { type: 'string', default: '1000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout(USAGE);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError('give a device and a package (SHA-256 or file)');
  const [device, pkg] = positionals as [string, string];
  const interval = Number(values.interval);
  if (!Number.isInteger(interval) || interval < 10) throw new UsageError('--interval must be an integer ≥ 10 (ms)');
  if (values.method !== undefined && values.method !== 'pull' && values.method !== 'push') throw new UsageError('--method is pull or push');
  const token = values.token ?? process.env.DEPOT_API_TOKEN ?? readToken(values['data-dir']);
  const api = values.api.replace(/\/+$/, '');

  const call = async (method: string, path: string, body?: { json?: unknown; bytes?: Uint8Array }): Promise<Record<string, unknown>> => {
    let response: Response;
    try {
      response = await io.fetch(`${api}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body?.json !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(body?.bytes ? { 'content-type': 'application/octet-stream' } : {}),
        },
        ...(body?.json !== undefined ? { body: JSON.stringify(body.json) } : {}),
        ...(body?.bytes ? { body: body.bytes } : {}),
      });
    } catch (err) {
      throw new Error(`cannot reach the Depot API at ${api}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const json = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    const text = (v: unknown, fallback: string): string => (typeof v === 'string' ? v : fallback);
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text(json['error'], '')}: ${text(json['message'], response.statusText)}`);
    return json;
  };

  let sha = pkg.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha)) {
    if (!existsSync(pkg)) throw new UsageError(`"${pkg}" is neither a package SHA-256 nor a file`);
    const added = await call('POST', '/api/v1/packages', { bytes: readFileSync(pkg) });
    if (typeof added['sha256'] !== 'string') throw new Error('the API answered no sha256 for the upload');
    sha = added['sha256'];
    io.stdout(`package ${JSON.stringify(added['name'])} ${JSON.stringify(added['version'])} (${sha.slice(0, 12)}…) in the catalog\n`);
  }
  let job = (await call('POST', `/api/v1/devices/${encodeURIComponent(device)}/installs`, { json: { package: sha, ...(values.activate ? { activate: true } : {}), ...(values.method ? { method: values.method } : {}) } })) as unknown as JobJson;
  io.stdout(`install job ${job.id} on ${device}\n`);
  if (values['no-wait']) return 0;
  let shown = 0;
  let lastLine = '';
  for (;;) {
    // Every new transition on its own line; the bar redrawn in place on a terminal.
    for (const t of job.transitions.slice(shown)) {
      if (io.tty && lastLine) io.stdout('\r\x1b[2K');
      io.stdout(`${t.at} ${t.from ?? '-'} → ${t.to}${t.detail ? `: ${t.detail}` : ''}\n`);
      lastLine = '';
    }
    shown = job.transitions.length;
    const line = progressLine(job);
    if (io.tty) {
      io.stdout(`\r\x1b[2K${line}`);
      lastLine = line;
    } else if (line !== lastLine) {
      io.stdout(`${line}\n`);
      lastLine = line;
    }
    if (job.state === 'succeeded' || job.state === 'failed' || job.state === 'cancelled') break;
    await io.sleep(interval);
    job = (await call('GET', `/api/v1/installs/${encodeURIComponent(job.id)}`)) as unknown as JobJson;
  }
  if (io.tty) io.stdout('\n');
  if (job.state === 'succeeded') {
    io.stdout(`installed on ${device}${job.instance !== null ? ` (/9/${job.instance})` : ''}: ${job.message ?? ''}\n`);
    return 0;
  }
  io.stderr(`install ${job.state}${job.result ? ` (${job.result})` : ''}: ${job.message ?? 'no message'}\n${job.retry ? `retry: ${job.retry}\n` : ''}`);
  return 1;
}

function readToken(dataDir: string): string {
  const file = join(dataDir, 'api-token');
  if (!existsSync(file)) throw new UsageError(`no API token: give --token, set DEPOT_API_TOKEN, or point --data-dir at the server's data directory (${file} not found)`);
  return readFileSync(file, 'utf8').trim();
}
