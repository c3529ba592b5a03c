/**
 * CoAP server benchmark: Depot's CoapServer against libcoap's coap-server-notls, the npm
 * `coap` server and a raw node:dgram responder, all driven in ONE run by the same coapload
 * flags (GET, CON) over loopback. See bench/README.md.
 *
 *   npm run bench:coap                 # 3 rounds × {c=32, c=1} × 4 servers, 5 s each after a 2 s warm-up
 *   npm run bench:coap -- --quick      # 1 round, 2 s: a smoke check
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createSocket } from 'node:dgram';
import { CoapClient } from '../src/coap/client.js';
import type { ClientResponse } from '../src/coap/client.js';
import { ContentFormat } from '../src/coap/codes.js';
import { cpuSeconds, findRepoRoot, machineBusySeconds, PINNING, pinned, which } from './support/proc.js';
import { hasExited, launch, listOption, numberOption, stopChild, track } from './support/children.js';

// ---------------------------------------------------------------- options

const USAGE = `usage: node dist/bench/coap.js [options]
  --quick               1 round, 2 s per measurement, 1 s warm-up (a smoke check)
  --rounds <n>          rounds (default 3); the table shows the median
  --duration <s>        measured seconds per run (default 5)
  --warmup <s>          coapload warm-up seconds per run, not counted (default 2)
  --concurrency <list>  coapload -c values, comma-separated (default 32,1)
  --busy-poll           coapload -b (busy-polling client) for every run
  --servers <list>      subset of depot,libcoap,npm-coap,raw-node,depot-serve,depot-serve-core (default all)
                        depot-serve: the real composition (\`depot serve --allow-unsecured\`: LwM2M and
                        bootstrap servers, dedup, every route), GET /depot/info; depot-serve-core: the
                        same server, GET /.well-known/core (issue 13). Their ratio is to libcoap's /hello.
  --json <file>         also write every measurement as JSON
  -h, --help`;

const SERVER_IDS = ['depot', 'libcoap', 'npm-coap', 'raw-node', 'depot-serve', 'depot-serve-core'] as const;
type ServerId = (typeof SERVER_IDS)[number];

interface BenchOptions {
  rounds: number;
  duration: number;
  warmup: number;
  concurrencies: number[];
  busyPoll: boolean;
  servers: ServerId[];
  json: string | undefined;
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string' },
      'busy-poll': { type: 'boolean' },
      servers: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const quick = values.quick ?? false;
  return {
    rounds: Math.round(numberOption(values.rounds, quick ? 1 : 3, 'rounds')),
    duration: numberOption(values.duration, quick ? 2 : 5, 'duration'),
    warmup: numberOption(values.warmup, quick ? 1 : 2, 'warmup'),
    concurrencies: (values.concurrency ?? '32,1').split(',').map((c) => Math.round(numberOption(c.trim(), 1, 'concurrency'))),
    busyPoll: values['busy-poll'] ?? false,
    servers: listOption(values.servers, SERVER_IDS, 'servers'),
    json: values.json,
  };
}

// ---------------------------------------------------------------- paths and tools


const REPO = findRepoRoot();
const DIST_BENCH = dirname(fileURLToPath(import.meta.url));
const COAPLOAD_DIR = resolve(REPO, '..', 'shared', 'tools', 'coapload');
const HOST = '127.0.0.1';
const PATH = '/hello';
const EXPECTED_BODY = 'Hello, world';


function buildCoapload(): string {
  if (!existsSync(join(COAPLOAD_DIR, 'coapload.c'))) throw new Error(`coapload sources not found in ${COAPLOAD_DIR} (expected <repo>/../shared/tools/coapload)`);
  const made = spawnSync('make', ['-C', COAPLOAD_DIR], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (made.status !== 0) throw new Error(`make -C ${COAPLOAD_DIR} failed`);
  const binary = join(COAPLOAD_DIR, 'coapload');
  if (!existsSync(binary)) throw new Error(`make did not produce ${binary}`);
  return binary;
}




/** Resident set size in KiB, from /proc (undefined if it is gone). */
function rssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}


async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, HOST, () => resolve()));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

// ---------------------------------------------------------------- servers

interface RunningServer {
  readonly pid: number;
  readonly port: number;
  stop(): Promise<void>;
}

interface ServerSpec {
  id: ServerId;
  label: string;
  /** The path measured, when not PATH; checked with \`check\` instead of the "Hello, world" body. */
  path?: string;
  check?: (response: ClientResponse) => string | undefined;
  /** Started anew for every measurement (npm coap: its per-response cache grows without bound). */
  fresh: boolean;
  start(): Promise<RunningServer>;
}

/** A node server from dist/bench/servers, pinned; ready when it prints "ready PORT". */
async function startNodeServer(name: string, script: string): Promise<RunningServer> {
  const port = await freeUdpPort();
  const [command, args] = pinned(1, process.execPath, [join(DIST_BENCH, 'servers', script), String(port)]);
  const tracked = launch(name, command, args);
  const { child, output } = tracked;
  const deadline = Date.now() + 15_000;
  while (!/^ready \d+$/m.test(output())) {
    if (hasExited(child)) throw new Error(`${name} exited before it was ready:\n${output()}`);
    if (Date.now() > deadline) {
      await stopChild(tracked);
      throw new Error(`${name} was not ready within 15 s:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { pid: child.pid!, port, stop: () => stopChild(tracked) };
}

/** libcoap's server with a dynamic resource /hello holding "Hello, world" (PUT once, -d 1). */
async function startLibcoap(): Promise<RunningServer> {
  const binary = which('coap-server-notls');
  if (!binary) throw new Error('coap-server-notls not found (Debian package libcoap3-bin; see scripts/ensure-peers.sh)');
  const port = await freeUdpPort();
  const [command, args] = pinned(1, binary, ['-A', HOST, '-p', String(port), '-d', '1']);
  const tracked = launch('coap-server-notls', command, args);
  const { child, output } = tracked;
  const client = new CoapClient();
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (hasExited(child)) throw new Error(`coap-server-notls exited:\n${output()}`);
      try {
        const put = await client.put(`coap://${HOST}:${port}${PATH}`, EXPECTED_BODY, { contentFormat: ContentFormat.TextPlain, timeout: 500 });
        if (put.codeText !== '2.01') throw new Error(`PUT ${PATH} to libcoap answered ${put.codeText}`);
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
    }
  } catch (error) {
    await stopChild(tracked);
    throw error;
  } finally {
    await client.close();
  }
  return { pid: child.pid!, port, stop: () => stopChild(tracked) };
}

/** \`depot serve\` (compiled, pinned), fresh data dir, plain CoAP only; ready when it prints "depot: ready". */
async function startDepotServe(): Promise<RunningServer> {
  const port = await freeUdpPort();
  const dataDir = mkdtempSync(join(tmpdir(), 'depot-bench-coap-'));
  const [command, args] = pinned(1, process.execPath, [join(REPO, 'dist', 'src', 'cli', 'main.js'), 'serve', '--host', HOST, '--coap-port', String(port), '--coaps-port', 'off', '--http-port', '0', '--data-dir', dataDir, '--allow-unsecured']);
  const tracked = launch('depot serve', command, args);
  const { child, output } = tracked;
  const deadline = Date.now() + 30_000;
  while (!/^depot: ready$/m.test(output())) {
    if (hasExited(child)) throw new Error(`depot serve exited before it was ready:\n${output()}`);
    if (Date.now() > deadline) {
      await stopChild(tracked);
      throw new Error(`depot serve was not ready within 30 s:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    pid: child.pid!,
    port,
    stop: async () => {
      await stopChild(tracked);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const SPECS: Record<ServerId, ServerSpec> = {
  depot: { id: 'depot', label: 'Depot CoapServer', fresh: false, start: () => startNodeServer('depot', 'depot.js') },
  libcoap: { id: 'libcoap', label: 'libcoap coap-server-notls', fresh: false, start: startLibcoap },
  'npm-coap': { id: 'npm-coap', label: 'npm coap 1.5.0 (fresh)', fresh: true, start: () => startNodeServer('npm-coap', 'npm-coap.js') },
  'raw-node': { id: 'raw-node', label: 'raw node:dgram', fresh: false, start: () => startNodeServer('raw-node', 'raw-dgram.js') },
  'depot-serve': {
    id: 'depot-serve',
    label: 'depot serve, GET /depot/info',
    fresh: false,
    path: '/depot/info',
    check: (r) => (r.codeText === '2.05' && /"name":"depot"/.test(r.text()) ? undefined : `${r.codeText} ${r.text()}`),
    start: startDepotServe,
  },
  'depot-serve-core': {
    id: 'depot-serve-core',
    label: 'depot serve, GET /.well-known/core',
    fresh: false,
    path: '/.well-known/core',
    check: (r) => (r.codeText === '2.05' && r.text().includes('</rd>') ? undefined : `${r.codeText} ${r.text()}`),
    start: startDepotServe,
  },
};

/** Every server must answer GET /hello with 2.05 "Hello, world" before it is measured. */
async function checkServes(spec: ServerSpec, server: RunningServer): Promise<void> {
  const client = new CoapClient();
  try {
    const path = spec.path ?? PATH;
    const response = await client.get(`coap://${HOST}:${server.port}${path}`, { timeout: 5000 });
    const wrong = spec.check ? spec.check(response) : response.codeText !== '2.05' || response.text() !== EXPECTED_BODY ? `${response.codeText} "${response.text()}"` : undefined;
    if (wrong) throw new Error(`${spec.label} answered ${wrong} to GET ${path}`);
  } finally {
    await client.close();
  }
}

// ---------------------------------------------------------------- measuring

interface Measurement {
  server: ServerId;
  round: number;
  concurrency: number;
  reqPerSec: number;
  ok: number;
  err: number;
  lost: number;
  p50: number;
  p99: number;
  /** The server's CPU over the measured seconds, % of one core. */
  serverCpu: number | undefined;
  /** coapload's own CPU, % of one core. */
  loadCpu: number | undefined;
  /** Busy CPU of everything else on the machine over the measured seconds, % of one core. */
  foreignCpu: number | undefined;
  /** Server RSS right after the run, KiB. */
  rssKiB: number | undefined;
  detail: string;
}

async function measure(coapload: string, options: BenchOptions, spec: ServerSpec, server: RunningServer, round: number, concurrency: number, warmup: number, duration: number): Promise<Measurement> {
  const loadArgs = ['-h', HOST, '-p', String(server.port), '-P', spec.path ?? PATH, '-c', String(concurrency), '-d', String(duration), '-w', String(warmup)];
  if (options.busyPoll) loadArgs.push('-b');
  const [command, args] = pinned(0, coapload, loadArgs);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const { exited } = track(child, 'coapload');
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // Sample CPU counters when the warm-up ends and when the run ends: the measured window.
  let start: { server: number | undefined; machine: number; time: number } | undefined;
  const warmTimer = setTimeout(() => (start = { server: cpuSeconds(server.pid), machine: machineBusySeconds(), time: performance.now() }), warmup * 1000);
  const killTimer = setTimeout(() => child.kill('SIGKILL'), (warmup + duration + 30) * 1000);
  await exited;
  const end = { server: cpuSeconds(server.pid), machine: machineBusySeconds(), time: performance.now() };
  clearTimeout(warmTimer);
  clearTimeout(killTimer);
  const line = /req_s=([\d.]+) ok=(\d+) err=(\d+) lost=(\d+) p50_us=(\d+) p99_us=(\d+)/.exec(stdout);
  if (child.exitCode !== 0 || !line) throw new Error(`coapload against ${spec.label} failed (exit ${child.exitCode ?? child.signalCode}):\n${stdout}${stderr}`);
  const detail = stderr.split('\n').find((l) => l.startsWith('# coapload')) ?? '';
  const loadCpu = /cpu=(\d+)%/.exec(detail)?.[1];
  let serverCpu: number | undefined;
  let foreignCpu: number | undefined;
  if (start && start.server !== undefined && end.server !== undefined) {
    const wall = (end.time - start.time) / 1000;
    serverCpu = (100 * (end.server - start.server)) / wall;
    if (loadCpu !== undefined) foreignCpu = (100 * (end.machine - start.machine)) / wall - serverCpu - Number(loadCpu);
  }
  return {
    server: spec.id,
    round,
    concurrency,
    reqPerSec: Number(line[1]),
    ok: Number(line[2]),
    err: Number(line[3]),
    lost: Number(line[4]),
    p50: Number(line[5]),
    p99: Number(line[6]),
    serverCpu,
    loadCpu: loadCpu === undefined ? undefined : Number(loadCpu),
    foreignCpu,
    rssKiB: rssKiB(server.pid),
    detail,
  };
}

// ---------------------------------------------------------------- report

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtK = (n: number): string => (n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : fmtInt(n));
const fmtPct = (n: number | undefined): string => (n === undefined ? '?' : `${Math.round(n)}%`);
const fmtMiB = (kib: number | undefined): string => (kib === undefined ? '?' : `${(kib / 1024).toFixed(1)} MiB`);

function pad(cells: string[][]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells.map((row) => '| ' + row.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ') + ' |').join('\n');
}

function report(options: BenchOptions, results: Measurement[], finalRss: Map<ServerId, number | undefined>): string {
  const lines: string[] = [];
  const mode = options.busyPoll ? 'busy-poll client (-b)' : 'blocking client';
  const of = (server: ServerId, c: number): Measurement[] => results.filter((r) => r.server === server && r.concurrency === c);
  const med = (server: ServerId, c: number, pick: (m: Measurement) => number): number | undefined => {
    const ms = of(server, c);
    return ms.length ? median(ms.map(pick)) : undefined;
  };
  lines.push(`Median of ${options.rounds} round(s), req/s (p50 / p99 µs, medians over the rounds); CON GET ${PATH}, ${options.duration} s measured after ${options.warmup} s warm-up, ${mode}.`);
  lines.push('');
  const header = ['server', ...options.concurrencies.map((c) => `c=${c}`)];
  const rows = options.servers.map((id) => [
    SPECS[id].label,
    ...options.concurrencies.map((c) => {
      const rps = med(id, c, (m) => m.reqPerSec);
      return rps === undefined ? '-' : `${fmtInt(rps)} (${fmtInt(med(id, c, (m) => m.p50)!)} / ${fmtInt(med(id, c, (m) => m.p99)!)})`;
    }),
  ]);
  lines.push(pad([header, header.map((h) => '-'.repeat(h.length)), ...rows]));
  lines.push('');
  if (options.servers.some((id) => id === 'depot' || id.startsWith('depot-serve'))) {
    const ratioRows: string[][] = [];
    for (const other of ['libcoap', 'raw-node', 'npm-coap'] as const) {
      if (!options.servers.includes(other) || !options.servers.includes('depot')) continue;
      const name = { libcoap: 'Depot / libcoap', 'raw-node': 'Depot / raw node:dgram', 'npm-coap': 'Depot / npm coap' }[other];
      ratioRows.push([
        name,
        ...options.concurrencies.map((c) => {
          const a = med('depot', c, (m) => m.reqPerSec);
          const b = med(other, c, (m) => m.reqPerSec);
          return a !== undefined && b ? `${(a / b).toFixed(2)}x` : '-';
        }),
      ]);
    }
    for (const id of ['depot-serve', 'depot-serve-core'] as const) {
      if (!options.servers.includes(id)) continue;
      for (const [other, name] of [['libcoap', 'libcoap /hello'], ['depot', 'bare CoapServer /hello']] as const) {
        if (!options.servers.includes(other)) continue;
        ratioRows.push([
          `${SPECS[id].label} / ${name}`,
          ...options.concurrencies.map((c) => {
            const a = med(id, c, (m) => m.reqPerSec);
            const b = med(other, c, (m) => m.reqPerSec);
            return a !== undefined && b ? `${(a / b).toFixed(2)}x` : '-';
          }),
        ]);
      }
    }
    const ratioHeader = ['ratio (median req/s)', ...options.concurrencies.map((c) => `c=${c}`)];
    lines.push(pad([ratioHeader, ratioHeader.map((h) => '-'.repeat(h.length)), ...ratioRows]));
    lines.push('');
  }
  lines.push('Per round: req/s, server CPU, coapload CPU, foreign CPU (other load on the machine, % of a core; about 0 ± 20 when quiet), ok/err/lost:');
  const roundRows: string[][] = [['server', 'c', 'round', 'req/s', 'p50/p99 µs', 'server cpu', 'req per server core-s', 'load cpu', 'foreign', 'ok', 'err', 'lost', 'rss after']];
  roundRows.push(roundRows[0]!.map((h) => '-'.repeat(h.length)));
  for (const c of options.concurrencies) {
    for (const id of options.servers) {
      for (const m of of(id, c)) {
        roundRows.push([id, String(c), String(m.round), fmtK(m.reqPerSec), `${m.p50}/${m.p99}`, fmtPct(m.serverCpu), m.serverCpu ? fmtK((m.reqPerSec * 100) / m.serverCpu) : '?', fmtPct(m.loadCpu), fmtPct(m.foreignCpu), String(m.ok), String(m.err), String(m.lost), fmtMiB(m.rssKiB)]);
      }
    }
  }
  lines.push(pad(roundRows));
  lines.push('');
  const rss = options.servers.map((id) => {
    if (SPECS[id].fresh) {
      const last = results.filter((r) => r.server === id).map((r) => r.rssKiB ?? 0);
      return `${id} ${fmtMiB(last.length ? Math.max(...last) : undefined)} (largest, each after one fresh measurement)`;
    }
    return `${id} ${fmtMiB(finalRss.get(id))}`;
  });
  lines.push(`Server RSS after the run: ${rss.join('; ')}`);
  const troubled = results.filter((r) => r.err > 0 || r.lost > 0);
  if (troubled.length) lines.push(`WARNING: error responses or lost requests in ${troubled.length} run(s): ${troubled.map((r) => `${r.server} c=${r.concurrency} round ${r.round}: err=${r.err} lost=${r.lost} ${r.detail}`).join('; ')}`);
  const busy = results.filter((r) => r.foreignCpu !== undefined && r.foreignCpu > 25);
  if (busy.length) lines.push(`WARNING: other work took more than 25 % of a core during ${busy.length} run(s); rerun on a quiet machine before trusting those numbers.`);
  return lines.join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const coapload = buildCoapload();
  const log = (text: string): void => void process.stderr.write(text + '\n');
  log(`coapload: ${coapload}`);
  log(PINNING ? 'pinning: servers on CPU 1 (taskset -c 1), coapload on CPU 0 (taskset -c 0)' : 'pinning: off (no taskset or fewer than 2 CPUs): numbers are not comparable with pinned runs');
  log(`node ${process.version}, ${availableParallelism()} CPUs; servers: ${options.servers.join(', ')}; c=${options.concurrencies.join(',')}; ${options.rounds} round(s) × ${options.duration} s (+${options.warmup} s warm-up)`);

  // Long-lived servers start once, are checked, and get a discarded warm-up at the highest concurrency.
  const running = new Map<ServerId, RunningServer>();
  const results: Measurement[] = [];
  const finalRss = new Map<ServerId, number | undefined>();
  try {
    for (const id of options.servers) {
      const spec = SPECS[id];
      if (spec.fresh) {
        // Checked once up front, so a broken server fails before the long part of the run.
        const probe = await spec.start();
        try {
          await checkServes(spec, probe);
        } finally {
          await probe.stop();
        }
        continue;
      }
      const server = await spec.start();
      running.set(id, server);
      await checkServes(spec, server);
      const warm = await measure(coapload, options, spec, server, 0, Math.max(...options.concurrencies), 0, options.warmup);
      log(`warm-up ${id}: ${fmtK(warm.reqPerSec)} req/s (discarded)`);
    }
    for (let round = 1; round <= options.rounds; round++) {
      for (const c of options.concurrencies) {
        for (const id of options.servers) {
          const spec = SPECS[id];
          const server = spec.fresh ? await spec.start() : running.get(id)!;
          try {
            const m = await measure(coapload, options, spec, server, round, c, options.warmup, options.duration);
            results.push(m);
            log(`round ${round} c=${c} ${id}: ${fmtK(m.reqPerSec)} req/s p50=${m.p50}µs p99=${m.p99}µs server cpu ${fmtPct(m.serverCpu)} foreign ${fmtPct(m.foreignCpu)} err=${m.err} lost=${m.lost}`);
          } finally {
            if (spec.fresh) await server.stop();
          }
        }
      }
    }
    for (const [id, server] of running) finalRss.set(id, rssKiB(server.pid));
  } finally {
    for (const server of running.values()) await server.stop();
  }
  process.stdout.write('\n' + report(options, results, finalRss) + '\n');
  if (options.json) {
    writeFileSync(options.json, JSON.stringify({ date: new Date().toISOString(), node: process.version, pinning: PINNING, options, results, finalRssKiB: Object.fromEntries(finalRss) }, null, 2) + '\n');
    log(`wrote ${options.json}`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/coap: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
