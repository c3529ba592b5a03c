/**
 * LwM2M server ceiling (issue 18): `depot serve --allow-unsecured` (pinned to CPU 1) driven by
 * coapload's LwM2M registration mode (`-R`, `-U`; pinned to CPU 0), a generator that is not the
 * bottleneck, and libcoap's `coap-rd-notls` in the same invocation as the ceiling of the CoAP
 * part of the work (it stores nothing and reads nothing back). A fresh server and data dir per
 * measurement. Reached from bench/lwm2m.ts:
 *
 *   npm run bench:lwm2m -- --ceiling                 # registrations, then 1 Update each; 3 rounds
 *   npm run bench:lwm2m -- --ceiling --quick         # 1 round, 3 s
 *   npm run bench:lwm2m -- --burst 100000            # a fleet rebooting at once (see burst())
 *
 * CPU figures are read from /proc (the server's user+system time over the measured window), so
 * "per server core-second" stays meaningful on a machine shared with other work, where the
 * wall-clock rate does not; foreign CPU (the machine minus server and coapload) is printed.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { SQLITE_FILE_NAME } from '../src/store/index.js';
import { findRepoRoot, memoryKiB, pinned, PINNING, sampleCpu, cpuPercent, machinePercent, udpSocketDrops, which } from './support/proc.js';
import { launch, numberOption, stopChild, type Tracked } from './support/children.js';

const USAGE = `usage: node dist/bench/lwm2m.js --ceiling [options] | --burst <devices> [options]
  --ceiling             server ceiling mode (this file): depot serve and coap-rd-notls under coapload -R
  --quick               1 round, 3 s per measurement
  --rounds <n>          rounds (default 3); the table shows the median
  --duration <s>        measured seconds (default 5)
  --warmup <s>          coapload warm-up seconds, not counted (default 1)
  --concurrency <n>     Registers in flight (coapload -c, default 64)
  --sources <n>         UDP source sockets (coapload -s, default 64)
  --updates <list>      coapload -U values to measure, comma-separated (default 0,1)
  --servers <list>      depot,libcoap (default both)
  --baseline <dir>      also measure the build in <dir> (its dist/src/cli/main.js) as "baseline",
                        interleaved with depot in each round (before/after in the same minutes)
  --cpu-prof <dir>      run each depot serve under node --cpu-prof, profiles written to <dir>
  --burst <n>           instead: offer about n Registers within --burst-seconds to depot serve
  --burst-seconds <s>   (default 30); --burst-concurrency <n> in flight (default 2000)
  --json <file>         also write the results as JSON`;

const REPO = findRepoRoot();
const DEPOT_MAIN = join(REPO, 'dist', 'src', 'cli', 'main.js');
const COAPLOAD_DIR = resolve(REPO, '..', 'shared', 'tools', 'coapload');
const HOST = '127.0.0.1';
const log = (text: string): void => void process.stderr.write(text + '\n');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Options {
  rounds: number;
  duration: number;
  warmup: number;
  concurrency: number;
  sources: number;
  updates: number[];
  servers: ('depot' | 'libcoap' | 'baseline')[];
  baseline: string | undefined;
  cpuProf: string | undefined;
  burst: number | undefined;
  burstSeconds: number;
  burstConcurrency: number;
  json: string | undefined;
}

function parse(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      ceiling: { type: 'boolean' },
      quick: { type: 'boolean' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string' },
      sources: { type: 'string' },
      updates: { type: 'string' },
      servers: { type: 'string' },
      baseline: { type: 'string' },
      'cpu-prof': { type: 'string' },
      burst: { type: 'string' },
      'burst-seconds': { type: 'string' },
      'burst-concurrency': { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const quick = values.quick === true;
  const servers = (values.servers ?? 'depot,libcoap').split(',').map((s) => s.trim());
  for (const s of servers) if (s !== 'depot' && s !== 'libcoap') throw new Error(`--servers: unknown "${s}" (depot, libcoap)`);
  if (values.baseline !== undefined) {
    if (!existsSync(join(values.baseline, 'dist', 'src', 'cli', 'main.js'))) throw new Error(`--baseline: no dist/src/cli/main.js in ${values.baseline} (build it first)`);
    servers.unshift('baseline');
  }
  const updates = (values.updates ?? '0,1').split(',').map((u) => numberOption(u.trim(), 0, 'updates', 0));
  return {
    rounds: numberOption(values.rounds, quick ? 1 : 3, 'rounds', 1),
    duration: numberOption(values.duration, quick ? 3 : 5, 'duration'),
    warmup: numberOption(values.warmup, 1, 'warmup', 0),
    concurrency: numberOption(values.concurrency, 64, 'concurrency', 1),
    sources: numberOption(values.sources, 64, 'sources', 1),
    updates,
    servers: servers as Options['servers'],
    baseline: values.baseline === undefined ? undefined : resolve(values.baseline),
    cpuProf: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    burst: values.burst === undefined ? undefined : numberOption(values.burst, 0, 'burst', 1),
    burstSeconds: numberOption(values['burst-seconds'], 30, 'burst-seconds'),
    burstConcurrency: numberOption(values['burst-concurrency'], 2000, 'burst-concurrency', 1),
    json: values.json,
  };
}

/**
 * coapload's TLV answer to GET /3/0 puts the length byte before the identifier for values of 8
 * bytes or more (TS Core §7.4.3 wants type, identifier, length), so Depot refuses it and no facts
 * would be learned. The bench builds its own copy (../shared is read-only here) with that one
 * encoding fixed, so that every registration really learns (and stores) its device's facts.
 */
const COAPLOAD_TLV_BUG = `          if (len < 8) o[n++] = (uint8_t)(0xC0 | len);
          else { o[n++] = 0xC8; o[n++] = (uint8_t)len; }
          o[n++] = (uint8_t)i;`;
const COAPLOAD_TLV_FIX = `          o[n++] = (uint8_t)(len < 8 ? (0xC0 | len) : 0xC8);
          o[n++] = (uint8_t)i;
          if (len >= 8) o[n++] = (uint8_t)len;`;

function buildCoapload(): string {
  const source = join(COAPLOAD_DIR, 'coapload.c');
  if (!existsSync(source)) throw new Error(`coapload sources not found in ${COAPLOAD_DIR} (expected <repo>/../shared/tools/coapload)`);
  const text = readFileSync(source, 'utf8');
  const fixed = text.replace(COAPLOAD_TLV_BUG, COAPLOAD_TLV_FIX);
  const dir = join(tmpdir(), `depot-coapload-${createHash('sha256').update(fixed).digest('hex').slice(0, 16)}`);
  const binary = join(dir, 'coapload');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'coapload.c'), fixed);
  if (fixed === text) log('coapload: its TLV encoding no longer matches the known bug; built as is');
  const made = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-o', binary, join(dir, 'coapload.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (made.status !== 0) throw new Error(`building coapload in ${dir} failed`);
  return binary;
}

interface Server {
  tracked: Tracked;
  port: number;
  dataDir: string | undefined;
}

let nextPort = 20000 + Math.floor(Math.random() * 20000);

async function startServer(kind: 'depot' | 'libcoap' | 'baseline', extra: string[] = [], options?: Options): Promise<Server> {
  const port = nextPort++;
  if (kind === 'libcoap') {
    const binary = which('coap-rd-notls');
    if (!binary) throw new Error('coap-rd-notls not found (apt-get install libcoap3-bin)');
    // -v 0: its warnings (one per re-used resource name) would cost it CPU.
    const [command, args] = pinned(1, binary, ['-A', HOST, '-p', String(port), '-v', '0']);
    const tracked = launch('coap-rd-notls', command, args);
    await sleep(500);
    return { tracked, port, dataDir: undefined };
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'depot-bench-ceiling-'));
  const main = kind === 'baseline' ? join(options!.baseline!, 'dist', 'src', 'cli', 'main.js') : DEPOT_MAIN;
  const prof = options?.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', join(options.cpuProf, kind)] : [];
  const [command, args] = pinned(1, process.execPath, [...prof, main, 'serve', '--host', HOST, '--coap-port', String(port), '--coaps-port', 'off', '--http-port', '0', '--data-dir', dataDir, '--allow-unsecured', ...extra]);
  const tracked = launch('depot serve', command, args);
  await new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`depot serve did not start:\n${tracked.output()}`)), 30_000);
    tracked.onLine((line) => {
      if (line === 'depot: ready') {
        clearTimeout(timer);
        resolveReady();
      }
    });
    void tracked.exited.then(() => reject(new Error(`depot serve exited:\n${tracked.output()}`)));
  });
  return { tracked, port, dataDir };
}

/** Stops the server; for Depot, counts what its store kept (registrations, and facts learned from /3/0). */
async function stopServer(server: Server): Promise<{ registrations: number; facts: number } | undefined> {
  await stopChild(server.tracked, 10_000);
  if (!server.dataDir) return undefined;
  let kept: { registrations: number; facts: number } | undefined;
  try {
    const db = new Database(join(server.dataDir, SQLITE_FILE_NAME), { readonly: true });
    const count = (sql: string): number => (db.prepare(sql).get() as { n: number }).n;
    kept = { registrations: count('SELECT count(*) AS n FROM registrations'), facts: count("SELECT count(*) AS n FROM device_facts WHERE model_number = 'lwm2m-bench'") };
    db.close();
  } catch {
    kept = undefined;
  }
  rmSync(server.dataDir, { recursive: true, force: true });
  return kept;
}

interface LoadResult {
  regPerS: number;
  updPerS: number;
  p50us: number;
  p99us: number;
  regOk: number;
  updOk: number;
  endpoints: number;
  lost: number;
  errCodes: string;
  serverCpuPct: number | undefined;
  loadCpuPct: number | undefined;
  foreignPct: number;
  /** Server CPU µs per answered request (Register or Update). */
  cpuUsPerRequest: number | undefined;
  /** Registrations per second of server CPU. */
  regPerCoreS: number | undefined;
  updPerCoreS: number | undefined;
  rssKiB: number | undefined;
  rssBeforeKiB: number | undefined;
  drops: number | undefined;
  line: string;
}

async function load(coapload: string, server: Server, args: string[], seconds: number, warmup: number): Promise<LoadResult> {
  const pid = server.tracked.child.pid!;
  const rssBefore = memoryKiB(pid)?.rss;
  const [command, cargs] = pinned(0, coapload, ['-h', HOST, '-p', String(server.port), '-d', String(seconds), '-w', String(warmup), ...args]);
  const child = launch('coapload', command, cargs);
  // The measured window starts after the warm-up.
  await sleep(warmup * 1000);
  const from = sampleCpu([pid, child.child.pid!]);
  await child.exited;
  const to = sampleCpu([pid, child.child.pid!]);
  const out = child.output();
  const line = out.split('\n').find((l) => l.startsWith('req_s=')) ?? '';
  const detail = out.split('\n').find((l) => l.startsWith('# coapload')) ?? '';
  if (!line) throw new Error(`coapload failed:\n${out}`);
  const num = (text: string, name: string): number => Number(new RegExp(`\\b${name}=([\\d.]+)`).exec(text)?.[1] ?? NaN);
  const regOk = num(detail, 'reg_ok');
  const updOk = num(detail, 'upd_ok');
  // coapload's CPU sample ends when it exits; its CPU% is its own figure.
  const serverCpu = to.pids[pid] !== undefined && from.pids[pid] !== undefined ? to.pids[pid] - from.pids[pid] : undefined;
  const serverCpuPct = cpuPercent(from, to, pid);
  const loadCpuPct = num(detail, 'cpu');
  const machine = machinePercent(from, to);
  return {
    regPerS: regOk / seconds,
    updPerS: updOk / seconds,
    p50us: num(line, 'p50_us'),
    p99us: num(line, 'p99_us'),
    regOk,
    updOk,
    endpoints: num(detail, 'endpoints'),
    lost: num(line, 'lost'),
    errCodes: /err_codes=(\S+)/.exec(detail)?.[1] ?? '',
    serverCpuPct,
    loadCpuPct,
    foreignPct: machine - (serverCpuPct ?? 0) - (Number.isFinite(loadCpuPct) ? loadCpuPct : 0),
    cpuUsPerRequest: serverCpu !== undefined && regOk + updOk > 0 ? (serverCpu * 1e6) / (regOk + updOk) : undefined,
    regPerCoreS: serverCpu ? regOk / serverCpu : undefined,
    updPerCoreS: serverCpu ? updOk / serverCpu : undefined,
    rssKiB: memoryKiB(pid)?.rss,
    rssBeforeKiB: rssBefore,
    drops: udpSocketDrops(pid),
    line: `${line} ${detail}`,
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const int = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '?' : Math.round(n).toLocaleString('en-US'));

async function ceiling(options: Options, coapload: string): Promise<void> {
  const results: { server: string; updates: number; round: number; r: LoadResult }[] = [];
  log(`coapload: ${coapload}; ${PINNING ? 'servers on CPU 1, coapload on CPU 0' : 'no pinning (taskset missing or < 2 CPUs): not comparable'}`);
  for (let round = 1; round <= options.rounds; round++) {
    for (const updates of options.updates) {
      for (const kind of options.servers) {
        const server = await startServer(kind, [], options);
        let stopped = false;
        try {
          const args = ['-R', `r${round}u${updates}-`, '-U', String(updates), '-c', String(options.concurrency), '-s', String(options.sources), '-t', '5000'];
          const r = await load(coapload, server, args, options.duration, options.warmup);
          results.push({ server: kind, updates, round, r });
          const kept = await stopServer(server).finally(() => (stopped = true));
          log(`round ${round} ${kind} -U ${updates}: ${int(r.regPerS)} reg/s, ${int(r.updPerS)} upd/s, p50/p99 ${(r.p50us / 1000).toFixed(1)}/${(r.p99us / 1000).toFixed(1)} ms, server CPU ${int(r.serverCpuPct)} % (${r.cpuUsPerRequest?.toFixed(1) ?? '?'} µs/request), foreign ${int(r.foreignPct)} %, lost ${r.lost}${r.errCodes ? `, errors ${r.errCodes}` : ''}${kept ? `; stored ${int(kept.registrations)} registrations, facts of ${int(kept.facts)}` : ''}`);
        } finally {
          if (!stopped) await stopServer(server);
        }
      }
    }
  }
  const rows: string[] = [];
  rows.push('| server | -U | registrations/s | updates/s | p50 / p99 ms | server CPU | µs CPU per request | reg per core-s | upd per core-s | RSS KiB per device | ratio to ceiling (reg/s, per core-s) |');
  rows.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const updates of options.updates) {
    const of = (kind: string): LoadResult[] => results.filter((x) => x.server === kind && x.updates === updates).map((x) => x.r);
    const ceilingReg = median(of('libcoap').map((r) => r.regPerS));
    const ceilingCore = median(of('libcoap').map((r) => r.regPerCoreS ?? NaN));
    for (const kind of options.servers) {
      const label = kind === 'depot' ? '`depot serve`' : kind === 'baseline' ? '`depot serve` baseline' : '`coap-rd-notls` (ceiling)';
      const rs = of(kind);
      const reg = median(rs.map((r) => r.regPerS));
      const core = median(rs.map((r) => r.regPerCoreS ?? NaN));
      const perDevice = median(rs.map((r) => (r.rssKiB !== undefined && r.rssBeforeKiB !== undefined ? (r.rssKiB - r.rssBeforeKiB) / Math.max(1, r.endpoints) : NaN)));
      rows.push(
        `| ${label} | ${updates} | ${int(reg)} | ${int(median(rs.map((r) => r.updPerS)))} | ${(median(rs.map((r) => r.p50us)) / 1000).toFixed(1)} / ${(median(rs.map((r) => r.p99us)) / 1000).toFixed(1)} | ${int(median(rs.map((r) => r.serverCpuPct ?? NaN)))} % | ${median(rs.map((r) => r.cpuUsPerRequest ?? NaN)).toFixed(1)} | ${int(core)} | ${int(median(rs.map((r) => r.updPerCoreS ?? NaN)))} | ${Number.isFinite(perDevice) ? perDevice.toFixed(2) : '?'} | ${kind !== 'libcoap' && Number.isFinite(ceilingReg) ? `${(reg / ceilingReg).toFixed(2)}x, ${(core / ceilingCore).toFixed(2)}x` : '–'} |`,
      );
    }
  }
  const foreign = results.map((x) => x.r.foreignPct);
  const text = [
    `LwM2M server ceiling, ${new Date().toISOString()}: coapload -R, -c ${options.concurrency} -s ${options.sources}, ${options.duration} s measured after ${options.warmup} s, median of ${options.rounds} round(s)`,
    '',
    ...rows,
    '',
    `foreign CPU (other work on the machine, % of a core) per run: ${foreign.map((f) => int(f)).join(', ')}${Math.max(...foreign) > 25 ? ' — the machine was busy: trust the per-core-second columns more than the wall-clock rates' : ''}`,
    ...(options.updates.some((u) => u > 0) && options.servers.includes('libcoap') ? ['coap-rd-notls answers an Update with 4.05 (it implements Register only): its rows with -U > 0 are no ceiling for updates, and the ratio there compares registrations only.'] : []),
    `RSS per device: growth of the server's RSS over the run divided by the endpoints registered (includes the heap V8 has not given back).`,
  ].join('\n');
  process.stdout.write(text + '\n');
  if (options.json) writeFileSync(options.json, JSON.stringify({ options, results }, null, 2));
}

/**
 * A fleet rebooting at once: coapload keeps --burst-concurrency Registers in flight (each a new
 * endpoint) for --burst-seconds against depot serve, and sends a new one as soon as one is
 * answered, 2.01 or 5.03 alike (it does not wait the Max-Age: a worst case). Reported: Registers
 * offered, 2.01 and 5.03 answers, lost (no answer within 30 s), datagrams the kernel dropped,
 * and the registrations in the store afterwards (every 2.01 must be there).
 */
async function burst(options: Options, coapload: string): Promise<void> {
  const target = options.burst!;
  const server = await startServer('depot');
  let r: LoadResult;
  try {
    // -t 30000: an answer that comes late is late, not lost.
    r = await load(coapload, server, ['-R', 'burst-', '-L', '3600', '-c', String(options.burstConcurrency), '-s', '256', '-t', '30000'], options.burstSeconds, 0);
    await sleep(2000);
  } finally {
    await stopChild(server.tracked);
  }
  const db = new Database(join(server.dataDir!, SQLITE_FILE_NAME), { readonly: true });
  const stored = (db.prepare("SELECT count(*) AS n FROM registrations WHERE endpoint LIKE 'burst-%'").get() as { n: number }).n;
  db.close();
  rmSync(server.dataDir!, { recursive: true, force: true });
  const unavailable = Number(/5\.03=(\d+)/.exec(r.errCodes)?.[1] ?? 0);
  const text = [
    `Registration burst, ${new Date().toISOString()}: ${options.burstConcurrency} Registers in flight for ${options.burstSeconds} s (offered ${int(r.endpoints)}; target ${int(target)})`,
    `  2.01: ${int(r.regOk)} (${int(r.regPerS)}/s)   5.03 + Max-Age: ${int(unavailable)}   other errors: ${r.errCodes.replace(/5\.03=\d+,?/, '') || 'none'}   lost: ${r.lost}   kernel drops on the server socket: ${r.drops ?? '?'}`,
    `  registrations in the store afterwards: ${int(stored)} (every 2.01 answered: ${stored >= r.regOk ? 'yes' : 'NO'})   server CPU ${int(r.serverCpuPct)} %   foreign CPU ${int(r.foreignPct)} %`,
    `  p50/p99 ${(r.p50us / 1000).toFixed(1)}/${(r.p99us / 1000).toFixed(1)} ms`,
    r.endpoints < target ? `  fewer than ${int(target)} Registers were offered in ${options.burstSeconds} s: raise --burst-concurrency or --burst-seconds` : '',
  ].join('\n');
  process.stdout.write(text + '\n');
  if (options.json) writeFileSync(options.json, JSON.stringify({ options, result: r, stored }, null, 2));
}

export async function main(argv: string[]): Promise<void> {
  const options = parse(argv);
  const coapload = buildCoapload();
  if (options.burst !== undefined) await burst(options, coapload);
  else await ceiling(options, coapload);
}
