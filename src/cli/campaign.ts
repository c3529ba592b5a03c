/**
 * `depot campaign …`: campaigns of a running Depot through its HTTP API: create, list, show
 * progress (per wave, per model, per method), watch it live (server-sent events), pause, resume,
 * cancel, approve the next wave, and retry the failed devices.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { printable } from '../util/printable.js';
import { COMMON_OPTIONS, UsageError, apiCaller, processIo, runCli, type CliIo } from './inventory.js';

const USAGE = `usage: depot campaign <command> [options]

Commands:
  create --name NAME (--group G | --filter key=value[,key=value] | --list FILE-OF-DEVICE-IDS)
         (--package SHA256 | --select [PACKAGE-NAME])
         [--waves 1,10,50,100 | --sizes 10,100,1000] [--order spread|random] [--seed N]
         [--threshold 0.9] [--failure-limit 0.2] [--model-failure-limit 0.5] [--min-samples 3]
         [--approval] [--concurrency N] [--window HH:MM-HH:MM [--device-time]] [--activate]
         [--sms-per-minute N]   pace each wave's SMS link texts (the outbox schedules them)
                  filter keys: make, model, os, group, tag, protocol
  list                          campaigns, newest first
  show <id>                     progress per wave, per model (paused models and why), per method
  watch <id>                    live progress (server-sent events) until the campaign ends
  members <id> [--state S]      devices with their state, method and message
  pause <id> | cancel <id> | approve <id>
  resume <id> [--models all|MODEL,…]   resume (also models paused for their failure rate)
  retry-failed <id>             a new campaign of the failed devices

Options:
  --api <url>  --token <token>  --data-dir <dir>  --json  -h, --help   (as for depot inventory)

Exit codes: 0 done, 1 the API refused (the message says why), 2 usage error.
`;

interface Counts {
  pending: number;
  'no-package': number;
  started: number;
  starting: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  total: number;
}

interface ProgressJson {
  campaign: { id: string; name: string; state: string; currentWave: number; pauseReason: string | null };
  totals: Counts;
  waves: { wave: number; size: number; state: string; counts: Counts }[];
  models: { model: string; paused: string | null; counts: Counts }[];
  methods: { method: string; succeeded: number; failed: number }[];
}

const c = (n: Counts): string => `${n.succeeded} ok, ${n.failed} failed, ${n.started + n.starting} running, ${n.pending} pending${n['no-package'] ? `, ${n['no-package']} no package` : ''}${n.cancelled ? `, ${n.cancelled} cancelled` : ''} / ${n.total}`;

export function progressText(p: ProgressJson): string {
  return [
    `${p.campaign.id} ${printable(p.campaign.name, 80)}: ${p.campaign.state}, wave ${p.campaign.currentWave} of ${p.waves.length}${p.campaign.pauseReason ? ` (${printable(p.campaign.pauseReason, 300)})` : ''}\n`,
    `  total: ${c(p.totals)}\n`,
    ...p.waves.map((w) => `  wave ${w.wave} (${w.size}, ${w.state}): ${c(w.counts)}\n`),
    ...p.models.map((m) => `  model ${printable(m.model, 80)}: ${c(m.counts)}${m.paused ? `  PAUSED: ${printable(m.paused, 200)}` : ''}\n`),
    ...p.methods.map((m) => `  method ${m.method}: ${m.succeeded} ok, ${m.failed} failed\n`),
  ].join('');
}

function number(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`${name} must be a number`);
  return n;
}

export async function runCampaignCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  return runCli('campaign', () => campaign(argv, io), io);
}

async function campaign(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...COMMON_OPTIONS,
      name: { type: 'string' },
      group: { type: 'string' },
      filter: { type: 'string' },
      list: { type: 'string' },
      package: { type: 'string' },
      select: { type: 'boolean', default: false },
      waves: { type: 'string' },
      sizes: { type: 'string' },
      order: { type: 'string' },
      seed: { type: 'string' },
      threshold: { type: 'string' },
      'failure-limit': { type: 'string' },
      'model-failure-limit': { type: 'string' },
      'min-samples': { type: 'string' },
      approval: { type: 'boolean', default: false },
      concurrency: { type: 'string' },
      'sms-per-minute': { type: 'string' },
      window: { type: 'string' },
      'device-time': { type: 'boolean', default: false },
      activate: { type: 'boolean', default: false },
      state: { type: 'string' },
      models: { type: 'string' },
    },
  });
  if (values.help || positionals.length === 0) {
    io.stdout(USAGE);
    return values.help ? 0 : 2;
  }
  const [command, arg] = positionals as [string, string | undefined];
  const call = apiCaller(values, io);
  const id = (): string => {
    if (!arg) throw new UsageError(`${command} needs a campaign id`);
    return encodeURIComponent(arg);
  };
  const out = (json: unknown, text: () => string): number => {
    io.stdout(values.json ? `${JSON.stringify(json, null, 2)}\n` : text());
    return 0;
  };
  const campaignLine = (x: Record<string, unknown>): string => `${String(x.id)} ${printable(String(x.name), 80)}: ${String(x.state)}, wave ${String(x.currentWave)}${typeof x.pauseReason === 'string' ? ` (${printable(x.pauseReason, 300)})` : ''}\n`;
  switch (command) {
    case 'create': {
      if (!values.name) throw new UsageError('create needs --name');
      const targets = [values.group, values.filter, values.list].filter((v) => v !== undefined);
      if (targets.length !== 1) throw new UsageError('create needs one of --group, --filter, --list');
      const target = values.group
        ? { kind: 'group', group: values.group }
        : values.filter
          ? {
              kind: 'filter',
              filter: Object.fromEntries(
                values.filter.split(',').map((kv) => {
                  const [k, ...rest] = kv.split('=');
                  if (!k || rest.length === 0) throw new UsageError(`--filter takes key=value pairs, not "${printable(kv, 40)}"`);
                  return [k.trim(), rest.join('=').trim()];
                }),
              ),
            }
          : { kind: 'list', devices: readFileSync(values.list!, 'utf8').split(/[\s,]+/).filter((s) => s !== '') };
      if ((values.package === undefined) === !values.select) throw new UsageError('create needs --package SHA256 or --select [NAME]');
      const pkg = values.package ? { kind: 'fixed', sha256: values.package } : { kind: 'select', ...(arg ? { name: arg } : {}) };
      if (values.waves && values.sizes) throw new UsageError('--waves or --sizes, not both');
      const waves = values.waves ? values.waves.split(',').map((v) => ({ percent: number(v, '--waves')! })) : values.sizes ? values.sizes.split(',').map((v) => ({ size: number(v, '--sizes')! })) : undefined;
      let window: { start: string; end: string; deviceTime?: boolean } | undefined;
      if (values.window) {
        const m = /^(\d\d:\d\d)-(\d\d:\d\d)$/.exec(values.window);
        if (!m) throw new UsageError('--window is HH:MM-HH:MM (UTC, or device time with --device-time)');
        window = { start: m[1]!, end: m[2]!, ...(values['device-time'] ? { deviceTime: true } : {}) };
      }
      const opt = <T>(key: string, v: T | undefined): Record<string, T> => (v === undefined ? {} : { [key]: v });
      const body = {
        name: values.name,
        target,
        package: pkg,
        ...opt('waves', waves),
        ...opt('order', values.order),
        ...opt('seed', number(values.seed, '--seed')),
        ...opt('successThreshold', number(values.threshold, '--threshold')),
        ...opt('failureLimit', number(values['failure-limit'], '--failure-limit')),
        ...opt('modelFailureLimit', number(values['model-failure-limit'], '--model-failure-limit')),
        ...opt('minSamples', number(values['min-samples'], '--min-samples')),
        ...opt('concurrency', number(values.concurrency, '--concurrency')),
        ...opt('smsPerMinute', number(values['sms-per-minute'], '--sms-per-minute')),
        ...opt('window', window),
        ...(values.approval ? { approval: true } : {}),
        ...(values.activate ? { activate: true } : {}),
      };
      const created = await call('POST', '/api/v1/campaigns', { json: body });
      return out(created, () => campaignLine(created));
    }
    case 'list': {
      const r = (await call('GET', '/api/v1/campaigns')) as { campaigns: Record<string, unknown>[] };
      return out(r, () => r.campaigns.map(campaignLine).join(''));
    }
    case 'show': {
      const p = (await call('GET', `/api/v1/campaigns/${id()}/progress`)) as unknown as ProgressJson;
      return out(p, () => progressText(p));
    }
    case 'members': {
      const r = (await call('GET', `/api/v1/campaigns/${id()}/members${values.state ? `?state=${encodeURIComponent(values.state)}` : ''}`)) as { members: { device: string; wave: number; model: string; state: string; method: string | null; message: string | null }[] };
      return out(r, () => r.members.map((m) => `${m.device} wave ${m.wave} ${printable(m.model, 60)} ${m.state}${m.method ? ` by ${m.method}` : ''}${m.message ? `: ${printable(m.message, 300)}` : ''}\n`).join(''));
    }
    case 'watch':
      return watch(values, id(), io);
    case 'pause':
    case 'cancel':
    case 'approve': {
      const r = await call('POST', `/api/v1/campaigns/${id()}/${command}`);
      return out(r, () => campaignLine(r));
    }
    case 'resume': {
      const models = values.models === undefined ? undefined : values.models === 'all' ? 'all' : values.models.split(',');
      const r = await call('POST', `/api/v1/campaigns/${id()}/resume`, { json: models ? { models } : {} });
      return out(r, () => campaignLine(r));
    }
    case 'retry-failed': {
      const r = await call('POST', `/api/v1/campaigns/${id()}/retry-failed`, { json: {} });
      return out(r, () => campaignLine(r));
    }
    default:
      throw new UsageError(`unknown campaign command "${printable(command, 40)}"`);
  }
}

/** Follows the event stream, printing each progress event, until the campaign ends. */
async function watch(values: { api?: string; token?: string; 'data-dir'?: string; json?: boolean }, id: string, io: CliIo): Promise<number> {
  // The caller checks the token and the campaign first (a clear error rather than a dead stream).
  const call = apiCaller(values, io);
  await call('GET', `/api/v1/campaigns/${id}`);
  const api = (values.api ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const token = values.token ?? process.env.DEPOT_API_TOKEN ?? readFileSync(`${values['data-dir'] ?? './depot-data'}/api-token`, 'utf8').trim();
  const response = await io.fetch(`${api}/api/v1/campaigns/${id}/events`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
  if (!response.ok || !response.body) throw new Error(`the event stream answered ${response.status}`);
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = /^data: (.*)$/m.exec(block);
      if (!data) continue;
      const p = JSON.parse(data[1]!) as ProgressJson;
      io.stdout(values.json ? `${data[1]}\n` : `${new Date().toISOString()}\n${progressText(p)}`);
    }
  }
  return 0;
}
