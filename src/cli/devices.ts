/**
 * `depot devices …`: OMA DM devices reached by SMS, through a running server's API
 * (src/api/omadm-bootstrap.ts, docs/omadm-bootstrap.md), and Send certificate (src/api/certificates.ts,
 * docs/trust.md).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runCommand, SERVER_OPTIONS, UsageError } from './command.js';

const USAGE = `usage: depot devices <command> [options]
commands:
  bootstrap   register phones and push each its OMA DM bootstrap (PIN-secured Client Provisioning):
                --msisdn <+E164> --imei <digits> [--imsi <digits>] [--group <g>] [--model <m>]
              or resend to known phones: --msisdn … (repeatable) | --device-id … | --group <g> | --state <s> | --all
  start-dm    start the DM client of devices by SMS (DM notification): --msisdn … | --device-id … |
              --group <g> | --state <s> | --model <m> | --all; devices without a number or an accepted
              account are reported
  list        the OMA DM bootstraps [--state <s>] [--group <g>]
  pin         set a PIN: --pin <digits> [--group <g>] (default scope: global); never printed back
  send-certificate <endpoint…>
              send Depot's root certificate (SMS with a one-time link, or the LwM2M bootstrap's trust
              anchor; docs/trust.md) to devices named by endpoint (an LwM2M endpoint or omadm:<DevId>),
              or by inventory filter: --group <g> | --model <m> | --trust-state unknown|yes|no
common options:
  --api <url>          Depot's HTTP API (default http://127.0.0.1:8080)
  --token <token>      API bearer token (default DEPOT_API_TOKEN, else <data-dir>/api-token)
  --data-dir <dir>     where to find api-token (default ./depot-data)
  --json               print the API's answer as JSON
Exit codes: 0 done (every device sent/notified), 1 some devices were reported or refused, or an error, 2 usage error.
`;

export interface DevicesCommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  fetch: typeof fetch;
}

const processIo: DevicesCommandIo = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), fetch: (...args) => fetch(...args) };

export async function runDevicesCommand(argv: string[], io: DevicesCommandIo = processIo): Promise<number> {
  return runCommand('devices', io, () => devices(argv, io));
}

interface Result {
  msisdn?: string;
  deviceId?: string;
  outcome: string;
  message: string;
  state?: string;
}

async function devices(argv: string[], io: DevicesCommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...SERVER_OPTIONS,
      msisdn: { type: 'string', multiple: true },
      'device-id': { type: 'string', multiple: true },
      imei: { type: 'string' },
      imsi: { type: 'string' },
      group: { type: 'string' },
      model: { type: 'string' },
      state: { type: 'string' },
      pin: { type: 'string' },
      'trust-state': { type: 'string' },
      all: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || positionals.length === 0) {
    io.stdout(USAGE);
    return values.help ? 0 : 2;
  }
  const [command, ...rest] = positionals;
  if (rest.length > 0 && command !== 'send-certificate') throw new UsageError(`unexpected argument "${rest[0]}"`);
  const token = values.token ?? process.env.DEPOT_API_TOKEN ?? readToken(values['data-dir']);
  const api = values.api.replace(/\/+$/, '');
  const call = async (method: string, path: string, json?: unknown): Promise<Record<string, unknown>> => {
    let response: Response;
    try {
      response = await io.fetch(`${api}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(json === undefined ? {} : { 'content-type': 'application/json' }) }, ...(json === undefined ? {} : { body: JSON.stringify(json) }) });
    } catch (err) {
      throw new Error(`cannot reach the Depot API at ${api}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    const text = (v: unknown, fallback: string): string => (typeof v === 'string' ? v : fallback);
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text(body['error'], '')}: ${text(body['message'], response.statusText)}`);
    return body;
  };
  const selection = (): Record<string, unknown> => {
    const filter: Record<string, string> = {};
    if (values.state !== undefined) filter['state'] = values.state;
    if (values.model !== undefined) filter['model'] = values.model;
    const sel = {
      ...(values.msisdn ? { msisdns: values.msisdn } : {}),
      ...(values['device-id'] ? { deviceIds: values['device-id'] } : {}),
      ...(values.group !== undefined ? { group: values.group } : {}),
      ...(Object.keys(filter).length > 0 || values.all ? { filter } : {}),
    };
    if (Object.keys(sel).length === 0) throw new UsageError('name the devices: --msisdn, --device-id, --group, --state, --model or --all');
    return sel;
  };
  const report = (results: Result[], good: string): number => {
    for (const r of results) io.stdout(`${(r.msisdn ?? r.deviceId ?? '?').padEnd(16)} ${r.outcome.padEnd(9)} ${r.message}\n`);
    return results.every((r) => r.outcome === good) ? 0 : 1;
  };
  switch (command) {
    case 'bootstrap': {
      let body: unknown;
      if (values.imei !== undefined) {
        if (values.msisdn?.length !== 1) throw new UsageError('a new phone needs exactly one --msisdn with its --imei');
        body = { devices: [{ msisdn: values.msisdn[0], imei: values.imei, ...(values.imsi ? { imsi: values.imsi } : {}), ...(values.group ? { group: values.group } : {}), ...(values.model ? { model: values.model } : {}) }] };
      } else body = selection();
      const out = await call('POST', '/api/v1/omadm/bootstrap', body);
      if (values.json) {
        io.stdout(`${JSON.stringify(out, null, 2)}\n`);
        return 0;
      }
      return report(out['results'] as Result[], 'sent');
    }
    case 'start-dm': {
      const out = await call('POST', '/api/v1/omadm/start-dm', selection());
      if (values.json) {
        io.stdout(`${JSON.stringify(out, null, 2)}\n`);
        return 0;
      }
      return report(out['results'] as Result[], 'notified');
    }
    case 'list': {
      const q = new URLSearchParams({ ...(values.state ? { state: values.state } : {}), ...(values.group ? { group: values.group } : {}) });
      const out = await call('GET', `/api/v1/omadm/bootstrap${q.size > 0 ? `?${q.toString()}` : ''}`);
      if (values.json) {
        io.stdout(`${JSON.stringify(out, null, 2)}\n`);
        return 0;
      }
      for (const b of out['bootstraps'] as { msisdn: string; deviceId: string | null; state: string; sends: number; message: string | null }[]) {
        io.stdout(`${b.msisdn.padEnd(16)} ${(b.deviceId ?? '-').padEnd(24)} ${b.state.padEnd(9)} sent ${b.sends}${b.message ? `  ${b.message}` : ''}\n`);
      }
      return 0;
    }
    case 'pin': {
      if (values.pin === undefined || !/^\d{4,16}$/.test(values.pin)) throw new UsageError('--pin is 4 to 16 digits');
      const scope = values.group === undefined ? 'global' : `group:${values.group}`;
      await call('POST', '/api/v1/omadm/bootstrap-settings', { scope, pin: values.pin });
      io.stdout(`PIN set for ${scope}\n`);
      return 0;
    }
    case 'send-certificate': {
      const filter = { ...(values.group !== undefined ? { group: values.group } : {}), ...(values.model !== undefined ? { model: values.model } : {}), ...(values['trust-state'] !== undefined ? { trustState: values['trust-state'] } : {}) };
      if ((rest.length > 0) === (Object.keys(filter).length > 0)) throw new UsageError('name the devices: endpoints, or a filter (--group, --model, --trust-state), not both');
      const out = await call('POST', '/api/v1/certificates/send', rest.length > 0 ? { endpoints: rest } : { filter });
      if (values.json) {
        io.stdout(`${JSON.stringify(out, null, 2)}\n`);
        return 0;
      }
      const results = out['results'] as { endpoint: string; outcome: string; message: string | null }[];
      for (const r of results) io.stdout(`${r.endpoint.padEnd(32)} ${r.outcome.padEnd(8)} ${r.message ?? ''}\n`);
      if (results.length === 0) io.stdout('no device matches\n');
      return results.every((r) => r.outcome === 'sent') ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function readToken(dataDir: string): string {
  const file = join(dataDir, 'api-token');
  if (!existsSync(file)) throw new UsageError(`no API token: give --token, set DEPOT_API_TOKEN, or point --data-dir at the server's data directory (${file} not found)`);
  return readFileSync(file, 'utf8').trim();
}
