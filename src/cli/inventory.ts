/**
 * `depot inventory …`: the device inventory of a running Depot through its HTTP API: list with
 * filters, show a device and its history, tags and groups, import a CSV device list (streamed),
 * explain which package a device would get, and state a package's targets.
 */
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { printable } from '../util/printable.js';

const USAGE = `usage: depot inventory <command> [options]

Commands:
  list [--make M] [--model M] [--os OS] [--group G] [--tag T] [--protocol lwm2m|omadm|sms] [--limit N] [--all]
                          devices (one line each; --all follows every page)
  show <device-id>        one device: identities, make, model, OS, protocols, trust, software, tags, groups
  history <device-id>     every change of the device's record, newest first
  tag <device-id> [--add T]… [--remove T]…      add or remove tags
  group <device-id> [--add G]… [--remove G]…    add or remove groups
  import <file.csv>       import a device list (header: phone,imei,make,model,group), streamed;
                          each bad line is reported with its number and why
  explain <device-id> [--name PACKAGE]          which package the device would get, and why (or why none)
  targets <sha256> [--platform P] [--os-version RANGE] [--make GLOB]… [--model GLOB]… [--type T] [--priority N]
                          state what a package targets (once); without options, show them

Options:
  --api <url>          Depot's HTTP API (default http://127.0.0.1:8080)
  --token <token>      API bearer token (default DEPOT_API_TOKEN, else <data-dir>/api-token)
  --data-dir <dir>     where to find api-token (default ./depot-data)
  --json               print the API's JSON answer
  -h, --help           show this help

Exit codes: 0 done, 1 the API refused (the message says why) or an import had bad lines, 2 usage error.
`;

export class UsageError extends Error {}

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  fetch: typeof fetch;
}

export const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  fetch: (...args) => fetch(...args),
};

export type ApiCall = (method: string, path: string, body?: { json?: unknown; file?: string }) => Promise<Record<string, unknown>>;

/** An API caller with the token from --token, DEPOT_API_TOKEN or <data-dir>/api-token. */
export function apiCaller(values: { api?: string; token?: string; 'data-dir'?: string }, io: CliIo): ApiCall {
  const dataDir = values['data-dir'] ?? './depot-data';
  const file = join(dataDir, 'api-token');
  const token = values.token ?? process.env.DEPOT_API_TOKEN ?? (existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined);
  if (!token) throw new UsageError(`no API token: give --token, set DEPOT_API_TOKEN, or point --data-dir at the server's data directory (${file} not found)`);
  const api = (values.api ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  return async (method, path, body) => {
    let response: Response;
    try {
      response = await io.fetch(`${api}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body?.json !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(body?.file ? { 'content-type': 'application/octet-stream', 'content-length': String(statSync(body.file).size) } : {}),
        },
        ...(body?.json !== undefined ? { body: JSON.stringify(body.json) } : {}),
        // Streamed from the file, never read whole.
        ...(body?.file ? { body: Readable.toWeb(createReadStream(body.file)), duplex: 'half' } : {}),
      });
    } catch (err) {
      throw new Error(`cannot reach the Depot API at ${api}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const json = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    const text = (v: unknown, fallback: string): string => (typeof v === 'string' ? v : fallback);
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text(json['error'], '')}: ${text(json['message'], response.statusText)}`);
    return json;
  };
}

export const COMMON_OPTIONS = {
  api: { type: 'string' },
  token: { type: 'string' },
  'data-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** Runs a command, mapping usage errors to exit code 2 and API errors to 1. */
export async function runCli(name: string, run: () => Promise<number>, io: CliIo): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`depot ${name}: ${(err as Error).message}\nRun "depot ${name} --help" for usage.\n`);
      return 2;
    }
    io.stderr(`depot ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

const p = (v: string | number | null | undefined): string => (v === null || v === undefined ? '-' : printable(String(v), 80));

interface DeviceJson {
  id: string;
  identities: Record<string, string | null>;
  make: string | null;
  model: string | null;
  os: string | null;
  osVersion: string | null;
  firmware: string | null;
  expected: { make: string | null; model: string | null };
  protocols: string[];
  lastContact: Record<string, string>;
  bootstrapState: string;
  trustState: string;
  software: { name: string; version: string | null; source: string }[];
  tags: string[];
  groups: string[];
  source: string;
}

function deviceLine(d: DeviceJson): string {
  const ident = Object.entries(d.identities).filter(([, v]) => v).map(([k, v]) => `${k}=${p(v)}`).join(' ');
  const make = d.make ?? (d.expected.make ? `(${d.expected.make})` : null);
  const model = d.model ?? (d.expected.model ? `(${d.expected.model})` : null);
  return `${d.id}  ${p(make)} ${p(model)}  ${p(d.os)} ${p(d.osVersion)}  [${d.protocols.join(',') || d.source}]  ${ident}${d.groups.length ? `  groups=${d.groups.map(p).join(',')}` : ''}${d.tags.length ? `  tags=${d.tags.map(p).join(',')}` : ''}\n`;
}

export async function runInventoryCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  return runCli('inventory', () => inventory(argv, io), io);
}

async function inventory(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...COMMON_OPTIONS,
      make: { type: 'string', multiple: true },
      model: { type: 'string', multiple: true },
      os: { type: 'string' },
      group: { type: 'string' },
      tag: { type: 'string' },
      protocol: { type: 'string' },
      limit: { type: 'string' },
      all: { type: 'boolean', default: false },
      add: { type: 'string', multiple: true },
      remove: { type: 'string', multiple: true },
      name: { type: 'string' },
      platform: { type: 'string' },
      'os-version': { type: 'string' },
      type: { type: 'string' },
      priority: { type: 'string' },
    },
  });
  if (values.help || positionals.length === 0) {
    io.stdout(USAGE);
    return values.help ? 0 : 2;
  }
  const [command, arg] = positionals as [string, string | undefined];
  const call = apiCaller(values, io);
  const need = (what: string): string => {
    if (!arg) throw new UsageError(`${command} needs ${what}`);
    return encodeURIComponent(arg);
  };
  const out = (json: unknown, text: () => string): number => {
    io.stdout(values.json ? `${JSON.stringify(json, null, 2)}\n` : text());
    return 0;
  };
  switch (command) {
    case 'list': {
      const q = new URLSearchParams();
      if (values.make?.[0]) q.set('make', values.make[0]);
      if (values.model?.[0]) q.set('model', values.model[0]);
      for (const k of ['os', 'group', 'tag', 'protocol', 'limit'] as const) if (values[k]) q.set(k, values[k]);
      const devices: DeviceJson[] = [];
      for (;;) {
        const page = (await call('GET', `/api/v1/inventory/devices?${q.toString()}`)) as { devices: DeviceJson[]; next: string | null };
        devices.push(...page.devices);
        if (!values.all || !page.next) {
          if (page.next && !values.json) io.stderr(`more: --all, or the next page with after=${page.next}\n`);
          break;
        }
        q.set('after', page.next);
      }
      return out(devices, () => devices.map(deviceLine).join(''));
    }
    case 'show': {
      const d = (await call('GET', `/api/v1/inventory/devices/${need('a device id')}`)) as unknown as DeviceJson;
      return out(d, () =>
        [
          deviceLine(d),
          `  firmware ${p(d.firmware)}; bootstrap ${d.bootstrapState}; trust (holds Depot's root) ${d.trustState}; ${d.source}\n`,
          ...Object.entries(d.lastContact).map(([proto, at]) => `  last ${proto} contact ${at}\n`),
          ...d.software.map((s) => `  software ${p(s.name)} ${p(s.version)} (${p(s.source)})\n`),
        ].join(''),
      );
    }
    case 'history': {
      const h = (await call('GET', `/api/v1/inventory/devices/${need('a device id')}/history`)) as { history: { at: string; source: string; changes: Record<string, [unknown, unknown]> }[] };
      return out(h, () => h.history.map((e) => `${e.at} ${e.source}: ${Object.entries(e.changes).map(([k, [a, b]]) => `${k} ${p(JSON.stringify(a))} → ${p(JSON.stringify(b))}`).join('; ')}\n`).join(''));
    }
    case 'tag':
    case 'group': {
      const d = (await call('POST', `/api/v1/inventory/devices/${need('a device id')}/${command}s`, { json: { add: values.add ?? [], remove: values.remove ?? [] } })) as unknown as DeviceJson;
      return out(d, () => deviceLine(d));
    }
    case 'import': {
      if (!arg || !existsSync(arg)) throw new UsageError(`import needs a CSV file${arg ? ` (${arg} not found)` : ''}`);
      const r = (await call('POST', '/api/v1/inventory/import', { file: arg })) as { rows: number; created: number; updated: number; unchanged: number; failed: number; errors: { line: number; message: string }[] };
      out(r, () => `${r.rows} rows: ${r.created} new, ${r.updated} updated, ${r.unchanged} unchanged, ${r.failed} refused\n${r.errors.map((e) => `  line ${e.line}: ${e.message}\n`).join('')}`);
      return r.failed > 0 ? 1 : 0;
    }
    case 'explain': {
      const e = (await call('GET', `/api/v1/inventory/devices/${need('a device id')}/selection${values.name ? `?name=${encodeURIComponent(values.name)}` : ''}`)) as { reason: string; chosen: { name: string; version: string; sha256: string } | null; packages: { name: string; version: string; sha256: string; fits: boolean; rules: { rule: string; ok: boolean; detail: string }[] }[] };
      return out(e, () =>
        [
          e.chosen ? `chosen: ${p(e.chosen.name)} ${p(e.chosen.version)} (${e.chosen.sha256.slice(0, 12)}…)\n` : 'chosen: none\n',
          `why: ${e.reason}\n`,
          ...e.packages.map((pkg) => `  ${pkg.fits ? 'fits ' : 'no   '} ${p(pkg.name)} ${p(pkg.version)} (${pkg.sha256.slice(0, 12)}…)\n${pkg.rules.map((r) => `        ${r.ok ? 'ok  ' : 'FAIL'} ${r.rule}: ${r.detail}\n`).join('')}`),
        ].join(''),
      );
    }
    case 'targets': {
      const sha = need('a package SHA-256');
      const targets = {
        ...(values.platform ? { platform: values.platform } : {}),
        ...(values['os-version'] ? { osVersion: values['os-version'] } : {}),
        ...(values.make ? { make: values.make } : {}),
        ...(values.model ? { model: values.model } : {}),
        ...(values.type ? { packageType: values.type } : {}),
        ...(values.priority !== undefined ? { priority: Number(values.priority) } : {}),
      };
      const t = Object.keys(targets).length > 0 ? await call('POST', `/api/v1/packages/${sha}/targets`, { json: targets }) : await call('GET', `/api/v1/packages/${sha}/targets`);
      return out(t, () => `${JSON.stringify(t)}\n`);
    }
    default:
      throw new UsageError(`unknown inventory command "${printable(command, 40)}"`);
  }
}
