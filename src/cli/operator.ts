/**
 * The operator commands of `depot` for the API actions the older commands do not cover
 * (issue 17: "depot covers every API action"): `depot bootstrap`, `depot lwm2m`, `depot packages`,
 * `depot fleet`, `depot audit`, and `depot api` for any route of /api/openapi.json by its method
 * and path (a route added later is reachable at once). Each subcommand is a row of a table: its
 * arguments, the request it makes and how its answer reads as text; `--json` prints the API's
 * answer as it is. URL and token from --url/--token, DEPOT_URL/DEPOT_API_TOKEN or `depot login`'s
 * config. Exit codes: 0 done, 1 refused or failed (the server's problem detail on stderr),
 * 2 usage error, 4 not signed in or the role may not.
 */
import { createReadStream, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ApiCallError, UsageError, callApi, cliTarget, exitCodeOf } from './login.js';

type Values = Record<string, string | boolean | string[] | undefined>;
type Body = Record<string, unknown>;

interface Sub {
  /** Positional arguments after the subcommand (a trailing `?` makes one optional). */
  args: string[];
  help: string;
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** The API path (arguments already percent-encoded). */
  path: (a: Record<string, string>, v: Values) => string;
  body?: (a: Record<string, string>, v: Values) => unknown;
  /** Answer as text (default: indented JSON). */
  text?: (body: Body, a: Record<string, string>) => string;
  /** Runs instead of the one request (uploads with a progress bar). */
  run?: (target: { url: string; token: string }, a: Record<string, string>, v: Values) => Promise<Body>;
}

interface Command {
  summary: string;
  options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; help: string }>;
  subs: Record<string, Sub>;
}

const e = encodeURIComponent;
/** A value of an API answer as text: objects as JSON, nothing as "". */
const txt = (v: unknown): string => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : `${v as string | number | boolean}`);
const list = <T>(body: Body, key: string): T[] => (body[key] as T[] | undefined) ?? [];
const q = (pairs: Record<string, unknown>): string => {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(pairs)) if (v !== undefined && v !== '' && v !== false) params.set(k, txt(v));
  return params.size ? `?${params.toString()}` : '';
};
const str = (v: Values, k: string): string | undefined => (typeof v[k] === 'string' ? (v[k]) : undefined);
const int = (v: Values, k: string): number | undefined => {
  const s = str(v, k);
  if (s === undefined) return undefined;
  if (!/^\d{1,9}$/.test(s)) throw new UsageError(`--${k} takes a whole number, got "${s}"`);
  return Number(s);
};
const json = (text: string | undefined, what: string): unknown => {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} is not JSON: ${(error as Error).message}`);
  }
};
const table = (rows: string[][]): string => {
  if (rows.length === 0) return '(none)';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
};

/** Uploads a file as the raw body, drawing a progress bar on stderr (a terminal) as the bytes go. */
export async function uploadWithProgress(target: { url: string; token: string }, path: string, file: string, progress: (sent: number, size: number) => void): Promise<Body> {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    throw new UsageError(`no such file: ${file}`);
  }
  let sent = 0;
  // Counted as the request takes each chunk, so the bar follows what has gone out.
  async function* chunks(): AsyncGenerator<Buffer> {
    for await (const chunk of createReadStream(file)) {
      sent += (chunk as Buffer).length;
      progress(sent, size);
      yield chunk as Buffer;
    }
  }
  let response: Response;
  try {
    response = await fetch(target.url + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.token}`, 'content-type': 'application/octet-stream', 'content-length': txt(size) },
      body: chunks(),
      duplex: 'half',
    });
  } catch (error) {
    throw new ApiCallError(0, `cannot reach ${target.url}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`);
  }
  const text = await response.text();
  let body: Body;
  try {
    body = JSON.parse(text) as Body;
  } catch {
    body = { detail: text };
  }
  if (!response.ok) throw new ApiCallError(response.status, `${response.status}: ${txt(body.detail ?? body.message ?? text)}`);
  return body;
}

export function uploadBar(sent: number, size: number, width = 30): string {
  const share = size === 0 ? 1 : sent / size;
  const filled = Math.round(share * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${txt(Math.round(share * 100)).padStart(3)}% uploaded ${(sent / 1e6).toFixed(2)}/${(size / 1e6).toFixed(2)} MB`;
}

const TARGET_OPTIONS = { url: { type: 'string', help: "Depot's HTTP address (default DEPOT_URL, else depot login's)" }, token: { type: 'string', help: 'API token (default DEPOT_API_TOKEN, else depot login\'s)' } } as const;

export const OPERATOR_COMMANDS: Record<string, Command> = {
  bootstrap: {
    summary: 'the LwM2M bootstrap queue and bootstrap credentials',
    options: { state: { type: 'string', help: 'list: pending, accepted or rejected' }, 'key-hex': { type: 'string', help: 'credential-add: the PSK, hex (16 to 64 bytes)' }, endpoint: { type: 'string', help: 'credential-add: bind to one endpoint (else a batch credential)' } },
    subs: {
      list: { args: [], help: 'bootstrap endpoints, both protocols (--state)', path: (_a, v) => `/api/v1/bootstrap${q({ state: str(v, 'state'), limit: 1000 })}`, text: (b) => table(list<Body>(b, 'endpoints').map((x) => [txt(x.protocol), txt(x.endpoint ?? x.msisdn ?? ''), txt(x.state)])) },
      accept: { args: ['endpoint'], help: 'accept a pending endpoint', method: 'POST', path: (a) => `/api/v1/bootstrap/${e(a.endpoint!)}/accept`, text: (_b, a) => `${a.endpoint} accepted` },
      reject: { args: ['endpoint'], help: 'reject a pending endpoint', method: 'POST', path: (a) => `/api/v1/bootstrap/${e(a.endpoint!)}/reject`, text: (_b, a) => `${a.endpoint} rejected` },
      now: { args: ['endpoint'], help: 'server-initiated bootstrap of an accepted endpoint', method: 'POST', path: (a) => `/api/v1/bootstrap/${e(a.endpoint!)}/bootstrap-now`, text: (_b, a) => `${a.endpoint} bootstrapped` },
      'rotate-key': { args: ['endpoint'], help: 'a new DM key at the next bootstrap', method: 'POST', path: (a) => `/api/v1/bootstrap/${e(a.endpoint!)}/rotate-key` },
      credentials: { args: [], help: 'bootstrap credentials (keys are never shown)', path: () => '/api/v1/bootstrap-credentials?limit=1000', text: (b) => table(list<Body>(b, 'credentials').map((c) => [txt(c.kind), txt(c.identity), txt(c.endpoint ?? '(batch)')])) },
      'credential-add': {
        args: ['kind', 'identity'],
        help: 'add a psk (--key-hex) or x509-subject credential (--endpoint binds it to one device)',
        method: 'POST',
        path: () => '/api/v1/bootstrap-credentials',
        body: (a, v) => ({ kind: a.kind, identity: a.identity, ...(str(v, 'key-hex') ? { keyHex: str(v, 'key-hex') } : {}), ...(str(v, 'endpoint') ? { endpoint: str(v, 'endpoint') } : {}) }),
        text: (b) => `${txt(b.kind)} credential ${txt(b.identity)} added`,
      },
      'credential-remove': { args: ['kind', 'identity'], help: 'remove a bootstrap credential', method: 'POST', path: (a) => `/api/v1/bootstrap-credentials/${e(a.kind!)}/${e(a.identity!)}/remove`, text: (_b, a) => `${a.kind} credential ${a.identity} removed` },
    },
  },
  lwm2m: {
    summary: 'LwM2M devices: registrations, read/write/execute/discover, queued operations, Object 9 software and jobs',
    options: {
      prefix: { type: 'string', help: 'list: endpoints starting with this' },
      type: { type: 'string', help: 'write: the value type (string, integer, float, boolean, opaque, time, objlnk)' },
      value: { type: 'string', help: 'write: the value (JSON for objlnk)' },
      arguments: { type: 'string', help: 'execute: the arguments' },
      limit: { type: 'string', help: 'lists: how many' },
    },
    subs: {
      list: { args: [], help: 'registered devices (--prefix, --limit)', path: (_a, v) => `/api/v1/devices${q({ endpointPrefix: str(v, 'prefix'), limit: int(v, 'limit') ?? 100 })}`, text: (b) => table(list<{ endpoint: string; registration: { state: string }; facts: { manufacturer: string | null; modelNumber: string | null } | null }>(b, 'devices').map((d) => [d.endpoint, d.registration.state, d.facts?.manufacturer ?? '-', d.facts?.modelNumber ?? '-'])) },
      show: { args: ['endpoint'], help: 'one device: registration and facts', path: (a) => `/api/v1/devices/${e(a.endpoint!)}` },
      read: { args: ['endpoint', 'path'], help: 'read a path, e.g. /3/0', method: 'POST', path: (a) => `/api/v1/devices/${e(a.endpoint!)}/read`, body: (a) => ({ path: a.path }) },
      write: {
        args: ['endpoint', 'path'],
        help: 'write a resource (--type, --value)',
        method: 'POST',
        path: (a) => `/api/v1/devices/${e(a.endpoint!)}/write`,
        body: (a, v) => {
          const type = str(v, 'type');
          const value = str(v, 'value');
          if (!type || value === undefined) throw new UsageError('write needs --type and --value');
          const parsed = type === 'objlnk' ? json(value, '--value') : type === 'float' ? Number(value) : type === 'boolean' ? value === 'true' : value;
          return { path: a.path, value: { type, value: parsed } };
        },
      },
      execute: { args: ['endpoint', 'path'], help: 'execute a resource (--arguments)', method: 'POST', path: (a) => `/api/v1/devices/${e(a.endpoint!)}/execute`, body: (a, v) => ({ path: a.path, ...(str(v, 'arguments') ? { arguments: str(v, 'arguments') } : {}) }) },
      discover: { args: ['endpoint', 'path'], help: 'discover under a path', method: 'POST', path: (a) => `/api/v1/devices/${e(a.endpoint!)}/discover`, body: (a) => ({ path: a.path }) },
      operations: { args: ['endpoint'], help: 'operations queued for a sleeping device, with results', path: (a, v) => `/api/v1/devices/${e(a.endpoint!)}/operations${q({ limit: int(v, 'limit') })}`, text: (b) => table(list<Body>(b, 'operations').map((o) => [txt(o.id), txt(o.kind), txt(o.path), txt(o.status), txt(o.resultCode ?? '')])) },
      software: { args: ['endpoint'], help: 'Object 9 instances read from the device now', path: (a) => `/api/v1/devices/${e(a.endpoint!)}/software`, text: (b) => table(list<Body>(b, 'instances').map((i) => [`/9/${txt(i.instanceId)}`, txt(i.name ?? '-'), txt(i.version ?? '-'), txt(i.state ?? i.updateState ?? '-')])) },
      installs: { args: ['endpoint'], help: 'the device\'s Object 9 jobs, newest first', path: (a, v) => `/api/v1/devices/${e(a.endpoint!)}/installs${q({ limit: int(v, 'limit') })}`, text: (b) => table(list<Body>(b, 'installs').map((j) => [txt(j.id), txt(j.kind), txt(j.state), txt(j.result ?? '-'), txt(j.message ?? '')])) },
      job: { args: ['id'], help: 'one Object 9 job with every transition', path: (a) => `/api/v1/installs/${e(a.id!)}` },
      cancel: { args: ['id'], help: 'cancel an open Object 9 job', method: 'POST', path: (a) => `/api/v1/installs/${e(a.id!)}/cancel`, text: (b) => `job ${txt(b.id)} ${txt(b.state)}` },
      uninstall: { args: ['endpoint', 'instance'], help: 'uninstall the software in an Object 9 instance', method: 'POST', path: (a) => `/api/v1/devices/${e(a.endpoint!)}/software/${e(a.instance!)}/uninstall`, text: (b) => `job ${txt(b.id)} ${txt(b.state)}` },
      activate: { args: ['endpoint', 'instance'], help: 'activate it', method: 'POST', path: (a) => `/api/v1/devices/${e(a.endpoint!)}/software/${e(a.instance!)}/activate`, text: (b) => `job ${txt(b.id)} ${txt(b.state)}` },
      deactivate: { args: ['endpoint', 'instance'], help: 'deactivate it', method: 'POST', path: (a) => `/api/v1/devices/${e(a.endpoint!)}/software/${e(a.instance!)}/deactivate`, text: (b) => `job ${txt(b.id)} ${txt(b.state)}` },
    },
  },
  packages: {
    summary: 'the package catalog of a running server: upload (with a progress bar), list, targets, who would get it, delete',
    options: {
      opaque: { type: 'boolean', help: 'upload: a vendor package kept byte for byte (needs --name, --version, --type)' },
      name: { type: 'string', help: 'upload --opaque: package name' },
      version: { type: 'string', help: 'upload --opaque: version' },
      type: { type: 'string', help: 'upload --opaque: MIME or package type' },
      targets: { type: 'string', help: 'set-targets: JSON, e.g. {"make":["Acme"],"osVersion":">=3"}' },
      after: { type: 'string', help: 'devices: continue from this cursor' },
    },
    subs: {
      list: { args: [], help: 'packages in the catalog', path: () => '/api/v1/packages?limit=1000', text: (b) => table(list<Body>(b, 'packages').map((p) => [txt(p.sha256).slice(0, 16), txt(p.name), txt(p.version), `${txt(p.size)} B`])) },
      show: { args: ['sha256'], help: 'one package', path: (a) => `/api/v1/packages/${e(a.sha256!)}` },
      upload: {
        args: ['file'],
        help: 'add a Depot package (or --opaque vendor file), showing upload progress',
        path: () => '/api/v1/packages',
        run: async (target, a, v) => {
          const opaque = v.opaque === true ? q({ format: 'opaque', name: str(v, 'name'), version: str(v, 'version'), type: str(v, 'type') }) : '';
          const tty = process.stderr.isTTY;
          let last = -1;
          const body = await uploadWithProgress(target, `/api/v1/packages${opaque}`, a.file!, (sent, size) => {
            const pct = Math.floor((sent / Math.max(1, size)) * 100);
            if (pct === last) return;
            last = pct;
            if (tty) process.stderr.write(`\r${uploadBar(sent, size)}`);
            else if (pct % 25 === 0) process.stderr.write(`${uploadBar(sent, size)}\n`);
          });
          if (tty) process.stderr.write('\n');
          return body;
        },
        text: (b) => `added ${txt(b.name)} ${txt(b.version)} (${txt(b.sha256)})`,
      },
      remove: { args: ['sha256'], help: 'delete a package nothing uses', method: 'POST', path: (a) => `/api/v1/packages/${e(a.sha256!)}/remove`, text: (_b, a) => `${a.sha256} removed` },
      targets: { args: ['sha256'], help: 'what a package targets', path: (a) => `/api/v1/packages/${e(a.sha256!)}/targets` },
      'set-targets': { args: ['sha256'], help: "state a package's targets once (--targets JSON)", method: 'POST', path: (a) => `/api/v1/packages/${e(a.sha256!)}/targets`, body: (_a, v) => json(str(v, 'targets') ?? '{}', '--targets') },
      devices: {
        args: ['sha256'],
        help: 'which devices would get it (one slice of the inventory; --after continues)',
        path: (a, v) => `/api/v1/packages/${e(a.sha256!)}/devices${q({ after: str(v, 'after') })}`,
        text: (b) => `${table(list<Body>(b, 'devices').map((d) => [txt(d.id), txt(d.make ?? '-'), txt(d.model ?? '-'), d.chosen ? 'would get it' : 'fits, gets another version']))}\n${txt(b.scanned)} devices judged${b.next ? `; continue with --after ${txt(b.next)}` : ''}`,
      },
    },
  },
  fleet: {
    summary: 'the fleet at a glance, the device table, roles, who you are, result codes',
    options: { q: { type: 'string', help: 'devices: search (start of endpoint, make or model)' }, sort: { type: 'string', help: 'devices: endpoint, manufacturer, model, os, firmware, lastSeen' }, desc: { type: 'boolean', help: 'devices: descending' }, limit: { type: 'string', help: 'devices: page size' }, offset: { type: 'string', help: 'devices: first row' } },
    subs: {
      summary: {
        args: [],
        help: 'devices by make/model/OS, installs in progress, failures by reason',
        path: () => '/api/v1/fleet/summary',
        text: (b) => `${txt(b.devices)} devices, ${txt(b.registered)} registered, ${list(b, 'installsInProgress').length} installs in progress\n${table(list<Body>(b, 'byModel').map((m) => [txt(m.manufacturer ?? '-'), txt(m.model ?? '-'), txt(m.os ?? '-'), txt(m.devices)]))}`,
      },
      devices: { args: [], help: 'the device table (--q, --sort, --desc, --limit, --offset)', path: (_a, v) => `/api/v1/fleet/devices${q({ q: str(v, 'q'), sort: str(v, 'sort'), dir: v.desc === true ? 'desc' : undefined, limit: int(v, 'limit'), offset: int(v, 'offset') })}`, text: (b) => `${table(list<Body>(b, 'devices').map((d) => [txt(d.endpoint), txt(d.manufacturer ?? '-'), txt(d.model ?? '-'), txt(d.state)]))}\n${txt(b.total)} devices` },
      whoami: { args: [], help: 'who the token is and its role', path: () => '/api/v1/session', text: (b) => `${txt(b.actor)} (${txt(b.role)})` },
      roles: { args: [], help: 'the roles and every route each may use', path: () => '/api/v1/roles', text: (b) => list<{ role: string; purpose: string; routes: string[] }>(b, 'roles').map((r) => `${r.role}: ${r.purpose} (${r.routes.length} routes)`).join('\n') },
      'result-codes': { args: [], help: 'every install result code and its meaning', path: () => '/api/v1/result-codes', text: (b) => table(list<Body>(b, 'results').map((r) => [txt(r.protocol), txt(r.name), txt(r.meaning)])) },
    },
  },
  certificates: {
    summary: "Send Depot's root certificate to devices (the routes of src/api/certificates.ts) and follow each push",
    options: {
      state: { type: 'string', help: 'devices: only pushes in this state' },
      endpoints: { type: 'string', help: 'send-many: endpoints, comma-separated' },
      make: { type: 'string', help: 'send-many: inventory filter' },
      model: { type: 'string', help: 'send-many: inventory filter' },
      group: { type: 'string', help: 'send-many: inventory filter' },
      tag: { type: 'string', help: 'send-many: inventory filter' },
      'trust-state': { type: 'string', help: 'send-many: unknown, yes or no' },
      after: { type: 'string', help: 'devices: continue from this cursor' },
    },
    subs: {
      status: { args: [], help: "the root's fingerprint, the channels, devices per push state", path: () => '/api/v1/certificates' },
      devices: { args: [], help: 'devices with their last push (--state, --after)', path: (_a, v) => `/api/v1/certificates/devices${q({ state: str(v, 'state'), after: str(v, 'after'), limit: 1000 })}` },
      show: { args: ['endpoint'], help: "a device's last push", path: (a) => `/api/v1/devices/${e(a.endpoint!)}/certificate` },
      send: { args: ['endpoint'], help: "send the root to one device (LwM2M endpoint or omadm:<DevId>)", method: 'POST', path: (a) => `/api/v1/devices/${e(a.endpoint!)}/certificate` },
      'send-many': {
        args: [],
        help: 'send the root to --endpoints, or to an inventory filter (--make, --model, --group, --tag, --trust-state)',
        method: 'POST',
        path: () => '/api/v1/certificates/send',
        body: (_a, v) => {
          const endpoints = str(v, 'endpoints')?.split(',').map((x) => x.trim()).filter(Boolean);
          if (endpoints?.length) return { endpoints };
          const pairs: [string, string][] = [['make', 'make'], ['model', 'model'], ['group', 'group'], ['tag', 'tag'], ['trustState', 'trust-state']];
          const filter: Record<string, string> = {};
          for (const [k, flag] of pairs) {
            const x = str(v, flag);
            if (x !== undefined) filter[k] = x;
          }
          if (Object.keys(filter).length === 0) throw new UsageError('send-many needs --endpoints or a filter (--make, --model, --group, --tag, --trust-state)');
          return { filter };
        },
      },
    },
  },
  audit: {
    summary: 'the audit log, newest first (admin)',
    options: { actor: { type: 'string', help: 'only this actor, e.g. user:alice' }, limit: { type: 'string', help: 'how many (default 100)' }, before: { type: 'string', help: 'continue from this cursor (the previous next)' } },
    subs: {
      list: {
        args: [],
        help: 'who changed what, when, on what, from where, with what outcome',
        path: (_a, v) => `/api/v1/audit${q({ actor: str(v, 'actor'), limit: int(v, 'limit') ?? 100, before: str(v, 'before') })}`,
        text: (b) => `${table(list<Body>(b, 'entries').map((x) => [txt(x.at), txt(x.actor), txt(x.action), txt(x.target ?? ''), txt(x.outcome)]))}${b.next ? `\nolder: --before ${txt(b.next)}` : ''}`,
      },
    },
  },
};

function usageOf(name: string, command: Command): string {
  const subs = Object.entries(command.subs).map(([sub, s]) => `  depot ${name} ${[sub, ...s.args.map((x) => `<${x}>`)].join(' ').padEnd(40)} ${s.help}`);
  const options = Object.entries({ ...command.options, ...TARGET_OPTIONS }).map(([k, o]) => `  --${k}${o.type === 'string' ? ' <value>' : ''}`.padEnd(26) + o.help);
  return `usage: depot ${name} <${Object.keys(command.subs).join('|')}> [args] [options]\n${command.summary}\n${subs.join('\n')}\nOptions:\n${options.join('\n')}\n  --json                  print the API's answer as JSON\n  -h, --help              this help\nExit codes: 0 done, 1 refused or failed, 2 usage error, 4 not signed in or the role may not.`;
}

export async function runOperatorCommand(name: string, argv: string[]): Promise<number> {
  const command = OPERATOR_COMMANDS[name]!;
  try {
    const options = Object.fromEntries(Object.entries({ ...command.options, ...TARGET_OPTIONS }).map(([k, o]) => [k, { type: o.type }]));
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...options, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      process.stdout.write(usageOf(name, command) + '\n');
      return 0;
    }
    const [subName, ...args] = positionals;
    // A command of one subcommand runs it without naming it.
    const only = Object.keys(command.subs).length === 1 ? Object.keys(command.subs)[0]! : undefined;
    const key = subName !== undefined && command.subs[subName] ? subName : only;
    if (key === undefined) throw new UsageError(subName ? `unknown subcommand "${subName}"` : 'a subcommand is required');
    const sub = command.subs[key]!;
    const given = key === subName ? args : positionals;
    if (given.length !== sub.args.length) throw new UsageError(`depot ${name} ${key} takes ${sub.args.length ? sub.args.map((x) => `<${x}>`).join(' ') : 'no arguments'}`);
    const a = Object.fromEntries(sub.args.map((n, i) => [n, given[i]!]));
    const v = values as Values;
    const target = cliTarget({ url: str(v, 'url'), token: str(v, 'token') });
    const body = sub.run ? await sub.run(target, a, v) : await callApi<Body>(target, sub.path(a, v), { method: sub.method ?? 'GET', ...(sub.body ? { json: sub.body(a, v) } : sub.method === 'POST' ? { json: {} } : {}) });
    process.stdout.write((values.json ? JSON.stringify(body) : sub.text ? sub.text(body, a) : JSON.stringify(body, null, 2)) + '\n');
    return 0;
  } catch (error) {
    process.stderr.write(`depot ${name}: ${(error as Error).message}${exitCodeOf(error) === 2 ? `\nRun "depot ${name} --help" for usage.` : ''}\n`);
    return exitCodeOf(error);
  }
}

const API_USAGE = `usage: depot api <routes|get|post|put|delete> [path] [options]
Any route of the running server's /api/openapi.json, by method and path: what no other command covers yet.
  depot api routes                       every operation with the role it needs
  depot api get /api/v1/devices          a GET; the answer as JSON
  depot api post <path> --data '<json>'  a POST with a JSON body (--data @file reads a file, --data - stdin)
  depot api put|delete <path> [--data]
Options:
  --url <url>   --token <token>   (default: DEPOT_URL / DEPOT_API_TOKEN, else "depot login"'s config)
  --data <json|@file|->   the JSON body
  --json   one line of JSON (default: indented)   -h, --help
Exit codes: 0 a 2xx answer, 1 refused or failed (the problem detail on stderr), 2 usage error, 4 not signed in or the role may not.`;

export async function runApiCommand(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { url: { type: 'string' }, token: { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      process.stdout.write(API_USAGE + '\n');
      return 0;
    }
    const [verb, path, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError('one path only (quote a query string)');
    const target = cliTarget(values);
    const out = (body: unknown) => process.stdout.write((values.json ? JSON.stringify(body) : JSON.stringify(body, null, 2)) + '\n');
    if (verb === 'routes') {
      const doc = await callApi<{ paths: Record<string, Record<string, { summary: string; 'x-depot-access'?: string }>> }>(target, '/api/openapi.json');
      const ops = Object.entries(doc.paths).flatMap(([p, methods]) => Object.entries(methods).map(([m, op]) => ({ method: m.toUpperCase(), path: p, access: op['x-depot-access'] ?? '', summary: op.summary })));
      if (values.json) out(ops);
      else process.stdout.write(table(ops.map((o) => [o.method, o.path, o.access, o.summary.length > 80 ? `${o.summary.slice(0, 79)}…` : o.summary])) + '\n');
      return 0;
    }
    const method = verb?.toUpperCase();
    if (!method || !['GET', 'POST', 'PUT', 'DELETE'].includes(method)) throw new UsageError(verb ? `unknown subcommand "${verb}"` : 'a subcommand is required');
    if (!path || !path.startsWith('/')) throw new UsageError('give the path, starting with /, e.g. /api/v1/devices');
    let data = values.data;
    if (data === '-') data = await new Promise<string>((resolve, reject) => {
      let text = '';
      process.stdin.on('data', (c: Buffer) => (text += c.toString('utf8')));
      process.stdin.on('end', () => resolve(text));
      process.stdin.on('error', reject);
    });
    else if (data?.startsWith('@')) {
      const { readFileSync } = await import('node:fs');
      data = readFileSync(data.slice(1), 'utf8');
    }
    const body = json(data, '--data');
    out(await callApi(target, path, { method, ...(body !== undefined ? { json: body } : method === 'POST' ? { json: {} } : {}) }));
    return 0;
  } catch (error) {
    process.stderr.write(`depot api: ${(error as Error).message}${exitCodeOf(error) === 2 ? '\nRun "depot api --help" for usage.' : ''}\n`);
    return exitCodeOf(error);
  }
}
