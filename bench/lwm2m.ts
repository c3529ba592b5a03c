/**
 * LwM2M fleet benchmark: one `depot serve` (compiled, pinned to CPU 1) and one simulator
 * process (src/sim's Simulator, pinned to CPU 0) with N devices, over plain CoAP (UDP) and
 * over DTLS with a PSK per device. Measures registrations/s, Registration Update round-trips/s
 * and the server's memory per registered device. See bench/README.md.
 *
 *   npm run bench:lwm2m                # 10,000 devices, UDP then DTLS
 *   npm run bench:lwm2m -- --quick     # 1,000 devices: a smoke check
 *   npm run bench:lwm2m -- --ceiling   # server ceiling with coapload -R/-U (lwm2m-ceiling.ts)
 *   npm run bench:lwm2m -- --burst 100000
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEMO_PROFILE } from '../src/app/demo-fleet.js';
import { devicePsk } from '../src/sim/profile.js';
import type { SimProfile } from '../src/sim/profile.js';
import { SQLITE_FILE_NAME, openSqliteStore } from '../src/store/index.js';
import type { FleetConfig, PhaseResult } from './servers/lwm2m-fleet.js';
import type { MemoryKiB } from './support/proc.js';
import { findRepoRoot, memoryKiB, pinned, PINNING, udpSocketDrops } from './support/proc.js';
import { listOption, numberOption, stopChild, track, type Tracked } from './support/children.js';
import { waitLine } from './support/depot.js';

// ---------------------------------------------------------------- options

const USAGE = `usage: node dist/bench/lwm2m.js [options]
  --quick               1,000 devices (a smoke check)
  --devices <n>         simulated devices (default 10000)
  --transports <list>   udp,dtls (default both, in that order)
  --ramp <ms>           spread the device starts evenly over this long (default 0)
  --jitter <ms>         start each device after a random delay up to this long, as a rebooting
                        fleet comes back (default devices / 2.5: 2,500 starts/s offered on average,
                        above the 2,000/s target; 0 with --ramp 0 = all at once, a worst case)
  --timeout <s>         bound of each phase (registration, update), default 180 (--quick: 60)
  --data-parent <dir>   where the server's fresh data dir is made (default the OS temp dir;
                        /dev/shm takes the store's fsyncs out of the measurement)
  --no-trace-gc         do not run the server with --trace-gc (the heap column is then empty)
  --gc-nvp              run the server with --trace-gc-nvp instead: V8 bytes allocated and promoted
                        to the old generation per registered device (what a handshake leaves
                        behind), no committed-heap figure
  --steady-wait <s>     after the settled reading, wait up to this long for V8's memory reducer
                        (the full GCs that compact the heap and return the burst's pages) and take
                        the steady reading after it; 0 skips it (default 150, --quick 0; 0 with --no-trace-gc)
  --server-node-arg <a> an extra node flag for depot serve, repeatable, as in bench:install
                        (e.g. --server-node-arg=--max-semi-space-size=32); printed with the results
  --sim-node-arg <a>    the same for the simulator (e.g. --sim-node-arg=--cpu-prof)
  --json <file>         also write the results as JSON
  --ceiling             server ceiling mode instead: coapload -R/-U against depot serve and
                        coap-rd-notls (see bench/lwm2m-ceiling.ts; --ceiling --help for its options)
  --burst <n>           a fleet rebooting at once instead: ~n Registers offered by coapload, 5.03s counted
  --keep-data           keep the server's data dirs
  -h, --help`;

const TRANSPORTS = ['udp', 'dtls'] as const;
type Transport = (typeof TRANSPORTS)[number];

interface BenchOptions {
  devices: number;
  transports: Transport[];
  rampMs: number;
  jitterMs: number;
  timeoutS: number;
  dataParent: string;
  traceGc: boolean;
  gcNvp: boolean;
  steadyWaitS: number;
  serverNodeArgs: string[];
  simNodeArgs: string[];
  json: string | undefined;
  keepData: boolean;
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      devices: { type: 'string' },
      transports: { type: 'string' },
      ramp: { type: 'string' },
      jitter: { type: 'string' },
      timeout: { type: 'string' },
      'data-parent': { type: 'string' },
      'no-trace-gc': { type: 'boolean' },
      'server-node-arg': { type: 'string', multiple: true },
      'sim-node-arg': { type: 'string', multiple: true },
      'gc-nvp': { type: 'boolean' },
      'steady-wait': { type: 'string' },
      json: { type: 'string' },
      'keep-data': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const devices = Math.round(numberOption(values.devices, quick ? 1000 : 10_000, 'devices', 1));
  return {
    devices,
    transports: listOption(values.transports, TRANSPORTS, 'transports'),
    rampMs: numberOption(values.ramp, 0, 'ramp', 0),
    jitterMs: numberOption(values.jitter, Math.round(devices / 2.5), 'jitter', 0),
    timeoutS: numberOption(values.timeout, quick ? 60 : 180, 'timeout', 1),
    dataParent: values['data-parent'] ?? tmpdir(),
    traceGc: !(values['no-trace-gc'] ?? false),
    gcNvp: values['gc-nvp'] ?? false,
    // The steady reading waits for V8's reducing GCs, seen only in the server's GC trace.
    steadyWaitS: values['no-trace-gc'] && !values['gc-nvp'] ? 0 : numberOption(values['steady-wait'], quick ? 0 : 150, 'steady-wait', 0),
    serverNodeArgs: values['server-node-arg'] ?? [],
    simNodeArgs: values['sim-node-arg'] ?? [],
    json: values.json,
    keepData: values['keep-data'] ?? false,
  };
}

// ---------------------------------------------------------------- paths and tools


const REPO = findRepoRoot();
const DIST_BENCH = dirname(fileURLToPath(import.meta.url));
const DEPOT_MAIN = join(REPO, 'dist', 'src', 'cli', 'main.js');
const FLEET_SCRIPT = join(DIST_BENCH, 'servers', 'lwm2m-fleet.js');
const ENDPOINT_PREFIX = 'bench-';
const TARGET_REG_PER_S = 2000;
const TARGET_KIB_PER_DEVICE = 8;



/** Open file limit of children (each simulated device has a socket). */
function openFileLimit(): number | undefined {
  const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) ? n : undefined;
}

const log = (text: string): void => void process.stderr.write(text + '\n');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- children

const dataDirs = new Set<string>();
let keepData = false;
process.on('exit', () => {
  if (!keepData) for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});


interface RunningServer {
  tracked: Tracked;
  pid: number;
  coapPort: number;
  coapsPort: number;
  /** V8 heap in use after the most recent GC (MB, from --trace-gc), if traced. */
  heapMB: () => number | undefined;
  /** V8 heap committed (all spaces, young generation included) after the most recent GC (MB, from --trace-gc). */
  committedMB: () => number | undefined;
  /** Bytes V8 allocated and promoted so far (sums over --trace-gc-nvp lines; zero without --gc-nvp). */
  gcTotals: () => { allocated: number; promoted: number };
  /** Memory-reducing full GCs seen so far (V8's memory reducer: "Mark-Compact (reduce)", or reduce_memory=1 with --gc-nvp). */
  reducingGcs: () => number;
}

const REDUCING_GC = /Mark-Compact \(reduce\)|\bgc=mc\b.*\breduce_memory=1\b/;
const NVP_FIELDS = /\bgc=(\w+)\b.*?\btotal_size_after=(\d+)\b.*?\ballocated=(\d+)\b.*?\bpromoted=(\d+)\b/;
const GC_LINE = /(?:Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Compact)[^\n]*?[\d.]+ \([\d.]+\) -> ([\d.]+) \(([\d.]+)\) MB/;

async function startServer(options: BenchOptions, transport: Transport, dataDir: string): Promise<RunningServer> {
  const traceArgs = options.gcNvp ? ['--trace-gc-nvp'] : options.traceGc ? ['--trace-gc'] : [];
  const nodeArgs = [...traceArgs, ...options.serverNodeArgs];
  const serveArgs = ['serve', '--host', '127.0.0.1', '--coap-port', '0', '--coaps-port', '0', '--http-port', '0', '--data-dir', dataDir];
  if (transport === 'udp') serveArgs.push('--allow-unsecured');
  const [command, args] = pinned(1, process.execPath, [...nodeArgs, DEPOT_MAIN, ...serveArgs]);
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, DEPOT_API_TOKEN: 'bench-' + randomBytes(8).toString('hex') } });
  const tracked = track(child, 'depot serve');
  let heap: number | undefined;
  let committed: number | undefined;
  const totals = { allocated: 0, promoted: 0 };
  let reducing = 0;
  const ports: Record<string, number> = {};
  tracked.onLine((line) => {
    const gc = GC_LINE.exec(line);
    if (gc) {
      heap = Number(gc[1]);
      committed = Number(gc[2]);
    }
    if (REDUCING_GC.test(line)) reducing++;
    const nvp = NVP_FIELDS.exec(line);
    if (nvp) {
      heap = Number(nvp[2]) / 1e6;
      totals.allocated += Number(nvp[3]);
      totals.promoted += Number(nvp[4]);
    }
    const listen = /^depot: (coaps?) coaps?:\/\/[^\s]*:(\d+)$/.exec(line);
    if (listen) ports[listen[1]!] = Number(listen[2]);
  });
  try {
    await waitLine(tracked, 'depot serve', 20_000, (line) => (line === 'depot: ready' ? true : undefined));
  } catch (error) {
    await stopChild(tracked, 3000);
    throw error;
  }
  if (ports.coap === undefined || ports.coaps === undefined) {
    await stopChild(tracked, 3000);
    throw new Error(`depot serve did not print its coap/coaps ports:\n${tracked.output()}`);
  }
  return { tracked, pid: child.pid!, coapPort: ports.coap, coapsPort: ports.coaps, heapMB: () => heap, committedMB: () => committed, gcTotals: () => ({ ...totals }), reducingGcs: () => reducing };
}

/** Binds every device's PSK in the (not yet served) store: one process, WAL, no fsync per bind. */
async function bindPsks(dataDir: string, profile: SimProfile, count: number): Promise<void> {
  const store = openSqliteStore({ dataDir, synchronous: 'NORMAL' });
  try {
    // The simulator's naming: prefix + index zero-padded to at least 5 digits (src/sim/simulator.ts).
    const width = Math.max(5, String(count).length);
    const now = Date.now();
    for (let i = 1; i <= count; i++) {
      const endpoint = ENDPOINT_PREFIX + String(i).padStart(width, '0');
      const psk = devicePsk(profile, endpoint)!;
      await store.credentials.bind(endpoint, { kind: 'psk', identity: psk.identity, key: psk.key }, now);
    }
  } finally {
    store.close();
  }
}

/** First and last time the server stored, from its own timestamps: its side of a phase. */
interface ServerSpan {
  count: number;
  spanMs: number;
  /** (count − 1) / span: the server's rate, without the simulator's start-up and event-loop delays. */
  perSecond: number | undefined;
}

/** Reads the registrations table (read-only, beside the running server; WAL allows it). */
function serverSpan(dataDir: string, column: 'registered_at' | 'last_update_at'): ServerSpan | undefined {
  let db: Database.Database | undefined;
  try {
    db = new Database(join(dataDir, SQLITE_FILE_NAME), { readonly: true, fileMustExist: true });
    const where = column === 'last_update_at' ? 'WHERE last_update_at > registered_at' : '';
    const row = db.prepare(`SELECT count(*) AS n, min(${column}) AS first, max(${column}) AS last FROM registrations ${where}`).get() as { n: number; first: number | null; last: number | null };
    if (row.first === null || row.last === null) return { count: row.n, spanMs: 0, perSecond: undefined };
    const spanMs = row.last - row.first;
    return { count: row.n, spanMs, perSecond: spanMs > 0 ? (1000 * (row.n - 1)) / spanMs : undefined };
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}

/** Resident KiB of glibc's main malloc heap ("[heap]" in smaps): native allocations, not V8's heap. */
function mallocHeapKiB(pid: number): number | undefined {
  try {
    const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
    const at = smaps.indexOf('[heap]');
    if (at < 0) return undefined;
    const m = /^Rss:\s+(\d+) kB/m.exec(smaps.slice(at));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const SETTLE_MAX_MS = 30_000;
const SETTLE_STABLE_MS = 5_000;

/**
 * The server's memory once the burst is over: right after the last 2.01 the server is still
 * reading /3/0 from the devices it just registered, and V8 keeps the young generation it grew
 * under the burst for a few idle seconds. Waits until RSS has not moved by more than 1 MiB for
 * SETTLE_STABLE_MS (at most SETTLE_MAX_MS). What stays is what the registered devices cost.
 */
async function settle(pid: number): Promise<(MemoryKiB & { mallocHeap: number | undefined; waitedS: number }) | undefined> {
  const started = performance.now();
  if (!(await untilRssStable(pid, 1024, SETTLE_STABLE_MS, SETTLE_MAX_MS))) return undefined;
  const m = memoryKiB(pid);
  return m ? { ...m, mallocHeap: mallocHeapKiB(pid), waitedS: (performance.now() - started) / 1000 } : undefined;
}

/** Waits until RSS has stayed within `toleranceKiB` of one reading for `stableMs` (at most `maxMs`); false if the process is gone. */
async function untilRssStable(pid: number, toleranceKiB: number, stableMs: number, maxMs: number): Promise<boolean> {
  const started = performance.now();
  let anchor = memoryKiB(pid);
  let stableSince = started;
  while (anchor && performance.now() - started < maxMs && performance.now() - stableSince < stableMs) {
    await sleep(500);
    const now = memoryKiB(pid);
    if (!now) return false;
    if (Math.abs(now.rss - anchor.rss) > toleranceKiB) {
      stableSince = performance.now();
      anchor = now;
    }
  }
  return anchor !== undefined;
}

/**
 * The steady reading: V8 keeps the pages a burst's garbage was promoted to (old generation) and
 * the young generation it grew until its memory reducer runs full GCs that compact the heap and
 * release them. It starts once the allocation rate it estimates is low: seconds after the burst
 * when devices keep talking, but in a server that falls silent its estimate stays on the burst
 * until a 100 s watchdog. Waits for a reducing GC after `reducingBefore`, then until RSS is stable.
 */
async function steady(server: RunningServer, reducingBefore: number, waitS: number): Promise<(MemoryKiB & { waitedS: number; reduced: boolean }) | undefined> {
  const started = performance.now();
  while (server.reducingGcs() === reducingBefore && performance.now() - started < waitS * 1000) await sleep(500);
  const reduced = server.reducingGcs() > reducingBefore;
  // The reducer runs up to three GCs 0.5 s apart; then let RSS settle.
  if (!(await untilRssStable(server.pid, 256, 2000, 10_000))) return undefined;
  const m = memoryKiB(server.pid);
  return m ? { ...m, waitedS: (performance.now() - started) / 1000, reduced } : undefined;
}

// ---------------------------------------------------------------- one run

interface RunResult {
  transport: Transport;
  devices: number;
  register: PhaseResult | undefined;
  update: PhaseResult | undefined;
  serverBefore: MemoryKiB | undefined;
  serverAfterRegister: MemoryKiB | undefined;
  serverAfterUpdate: MemoryKiB | undefined;
  heapBeforeMB: number | undefined;
  heapAfterRegisterMB: number | undefined;
  /** V8 heap committed before and once settled (MB): how much of the RSS growth is V8's heap (live, garbage, young-generation growth). */
  committedBeforeMB: number | undefined;
  committedSettledMB: number | undefined;
  /** (RSS after registration − before) / registered devices, KiB. */
  rssPerDeviceKiB: number | undefined;
  anonPerDeviceKiB: number | undefined;
  /** The same once the server has settled after the burst (see settle()), and how long that took. */
  serverSettled: (MemoryKiB & { mallocHeap: number | undefined; waitedS: number }) | undefined;
  settledRssPerDeviceKiB: number | undefined;
  /** After V8's memory reducer (see steady()): what the registered devices cost once the burst's garbage is returned. */
  serverSteady: (MemoryKiB & { waitedS: number; reduced: boolean }) | undefined;
  steadyRssPerDeviceKiB: number | undefined;
  /** Resident part of glibc's main malloc heap ([heap] in smaps), before and settled. */
  mallocHeapBefore: number | undefined;
  heapPerDeviceKiB: number | undefined;
  /** With --gc-nvp: V8 bytes allocated and promoted to the old generation during registration, per registered device (KiB). */
  allocatedPerDeviceKiB: number | undefined;
  promotedPerDeviceKiB: number | undefined;
  /** Datagrams dropped (full receive buffer) on the server's and the simulator's sockets, per phase. */
  drops: { register?: { server: number | undefined; sim: number | undefined }; update?: { server: number | undefined; sim: number | undefined } };
  /** The server's own first-to-last timestamps in the store, per phase. */
  serverSide: { register?: ServerSpan | undefined; update?: ServerSpan | undefined };
  error: string | undefined;
}

async function runOne(options: BenchOptions, transport: Transport): Promise<RunResult> {
  const result: RunResult = {
    transport,
    devices: options.devices,
    register: undefined,
    update: undefined,
    serverBefore: undefined,
    serverAfterRegister: undefined,
    serverAfterUpdate: undefined,
    heapBeforeMB: undefined,
    heapAfterRegisterMB: undefined,
    committedBeforeMB: undefined,
    committedSettledMB: undefined,
    rssPerDeviceKiB: undefined,
    anonPerDeviceKiB: undefined,
    serverSettled: undefined,
    settledRssPerDeviceKiB: undefined,
    serverSteady: undefined,
    steadyRssPerDeviceKiB: undefined,
    mallocHeapBefore: undefined,
    heapPerDeviceKiB: undefined,
    allocatedPerDeviceKiB: undefined,
    promotedPerDeviceKiB: undefined,
    drops: {},
    serverSide: {},
    error: undefined,
  };
  const dataDir = mkdtempSync(join(options.dataParent, `depot-bench-lwm2m-${transport}-`));
  dataDirs.add(dataDir);
  // The demo models without their Object 9 behaviours: this measures registration, and an
  // installer per device would need a staging directory each (and trust keys).
  const models = DEMO_PROFILE.models.map(({ behaviours: _behaviours, ...model }) => model);
  const profile: SimProfile = transport === 'dtls' ? { ...DEMO_PROFILE, models, psk: { deriveFrom: randomBytes(16).toString('hex') } } : { ...DEMO_PROFILE, models };
  let server: RunningServer | undefined;
  let fleet: Tracked | undefined;
  try {
    if (transport === 'dtls') {
      const t = performance.now();
      await bindPsks(dataDir, profile, options.devices);
      log(`[${transport}] bound ${options.devices} PSKs in the store in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    server = await startServer(options, transport, dataDir);
    if (options.steadyWaitS > 0) {
      // The baseline of the steady figure must be steady too: V8 reduces the start-up's garbage
      // a few seconds after the server goes idle (~8 s); reading before that would credit the
      // start-up's garbage to the devices.
      const base = await steady(server, 0, 30);
      log(`[${transport}] baseline after ${base?.reduced ? "V8's memory reducer" : 'no memory-reducing GC'}: ${fmtMiB(base?.rss)}`);
    } else {
      await sleep(1000);
    }
    result.serverBefore = memoryKiB(server.pid);
    result.mallocHeapBefore = mallocHeapKiB(server.pid);
    result.heapBeforeMB = server.heapMB();
    result.committedBeforeMB = server.committedMB();
    const gcBefore = server.gcTotals();
    const serverDrops0 = udpSocketDrops(server.pid);
    const uri = transport === 'dtls' ? `coaps://127.0.0.1:${server.coapsPort}` : `coap://127.0.0.1:${server.coapPort}`;
    log(`[${transport}] depot serve pid ${server.pid} at ${uri}, RSS ${fmtMiB(result.serverBefore?.rss)}; starting ${options.devices} devices (${startText(options)})`);

    const config: FleetConfig = {
      server: uri,
      count: options.devices,
      endpointPrefix: ENDPOINT_PREFIX,
      profile,
      rampMs: options.rampMs,
      jitterMs: options.jitterMs,
      timeoutMs: options.timeoutS * 1000,
      serverPid: server.pid,
    };
    const [command, args] = pinned(0, process.execPath, [...options.simNodeArgs, FLEET_SCRIPT, JSON.stringify(config)]);
    fleet = track(spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] }), 'simulator');
    fleet.onLine((line) => {
      if (!line.startsWith('{"type":"progress"')) return;
      const p = JSON.parse(line) as { phase: string; done: number; total: number; failures: number };
      log(`[${transport}] ${p.phase}: ${p.done}/${p.total}${p.failures ? ` (failures ${p.failures})` : ''}`);
    });
    const phase = (name: 'register' | 'update'): Promise<PhaseResult> =>
      waitLine(fleet!, `simulator (${name})`, options.timeoutS * 1000 + 60_000, (line) => {
        if (!line.startsWith('{"type":"phase"')) return undefined;
        const p = JSON.parse(line) as PhaseResult;
        return p.phase === name ? p : undefined;
      });

    // Creating 10,000 clients takes a while before the first Register: the outer bound covers it.
    const register = await phase('register');
    result.serverAfterRegister = memoryKiB(server.pid);
    result.register = register;
    const minus = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined ? undefined : a - b);
    const serverDrops1 = udpSocketDrops(server.pid);
    const simDrops1 = udpSocketDrops(fleet.child.pid!);
    result.drops.register = { server: minus(serverDrops1, serverDrops0), sim: simDrops1 };
    result.serverSide.register = serverSpan(dataDir, 'registered_at');
    log(`[${transport}] registered ${register.done}/${register.total} in ${(register.elapsedMs / 1000).toFixed(2)} s: ${fmtInt(register.perSecond)}/s; sim CPU ${fmtPct(register.simCpu)}, server CPU ${fmtPct(register.serverCpu)}`);
    // --trace-gc lines are read asynchronously: give the pipe a moment before taking the heap figure.
    await sleep(200);
    result.heapAfterRegisterMB = server.heapMB();
    if (options.gcNvp && register.done > 0) {
      const gcAfter = server.gcTotals();
      result.allocatedPerDeviceKiB = (gcAfter.allocated - gcBefore.allocated) / 1024 / register.done;
      result.promotedPerDeviceKiB = (gcAfter.promoted - gcBefore.promoted) / 1024 / register.done;
      log(`[${transport}] V8 during registration: allocated ${fmtKiB(result.allocatedPerDeviceKiB)}/device, promoted ${fmtKiB(result.promotedPerDeviceKiB)}/device`);
    }
    if (register.done > 0 && result.serverBefore && result.serverAfterRegister) {
      result.rssPerDeviceKiB = (result.serverAfterRegister.rss - result.serverBefore.rss) / register.done;
      result.anonPerDeviceKiB = (result.serverAfterRegister.anon - result.serverBefore.anon) / register.done;
    }
    if (register.done > 0 && result.heapBeforeMB !== undefined && result.heapAfterRegisterMB !== undefined) {
      result.heapPerDeviceKiB = ((result.heapAfterRegisterMB - result.heapBeforeMB) * 1024) / register.done;
    }
    const reducingBefore = server.reducingGcs();
    result.serverSettled = await settle(server.pid);
    result.committedSettledMB = server.committedMB();
    if (register.done > 0 && result.serverBefore && result.serverSettled) {
      result.settledRssPerDeviceKiB = (result.serverSettled.rss - result.serverBefore.rss) / register.done;
    }
    log(`[${transport}] server RSS settled after ${result.serverSettled?.waitedS.toFixed(0) ?? '?'} s: ${fmtMiB(result.serverSettled?.rss)} (${fmtKiB(result.settledRssPerDeviceKiB)}/device)`);
    if (options.steadyWaitS > 0) {
      result.serverSteady = await steady(server, reducingBefore, options.steadyWaitS);
      if (register.done > 0 && result.serverBefore && result.serverSteady) {
        result.steadyRssPerDeviceKiB = (result.serverSteady.rss - result.serverBefore.rss) / register.done;
      }
      const how = result.serverSteady?.reduced ? "after V8's memory reducer" : `no memory-reducing GC within ${options.steadyWaitS} s`;
      log(`[${transport}] server RSS steady ${fmtMiB(result.serverSteady?.rss)} (${fmtKiB(result.steadyRssPerDeviceKiB)}/device), ${how}, ${result.serverSteady?.waitedS.toFixed(0) ?? '?'} s after the settled reading`);
    }

    fleet.child.stdin!.write('update\n');
    const update = await phase('update');
    result.update = update;
    result.serverAfterUpdate = memoryKiB(server.pid);
    result.drops.update = { server: minus(udpSocketDrops(server.pid), serverDrops1), sim: minus(udpSocketDrops(fleet.child.pid!), simDrops1) };
    result.serverSide.update = serverSpan(dataDir, 'last_update_at');
    log(`[${transport}] updated ${update.done}/${update.total} in ${(update.elapsedMs / 1000).toFixed(2)} s: ${fmtInt(update.perSecond)}/s; sim CPU ${fmtPct(update.simCpu)}, server CPU ${fmtPct(update.serverCpu)}`);
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    log(`[${transport}] FAILED: ${result.error}`);
  } finally {
    if (fleet) await stopChild(fleet, 5000);
    if (server) await stopChild(server.tracked, 10_000);
    if (!options.keepData) {
      rmSync(dataDir, { recursive: true, force: true });
      dataDirs.delete(dataDir);
    }
  }
  return result;
}

// ---------------------------------------------------------------- report

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtPct = (n: number | undefined): string => (n === undefined ? '?' : `${Math.round(n)}%`);
const fmtMiB = (kib: number | undefined): string => (kib === undefined ? '?' : `${(kib / 1024).toFixed(1)} MiB`);
const fmtKiB = (kib: number | undefined): string => (kib === undefined ? '?' : `${kib.toFixed(1)} KiB`);

const fmtSpan = (s: ServerSpan | undefined): string => (s?.perSecond === undefined ? '?' : `${fmtInt(s.perSecond)}/s over ${(s.spanMs / 1000).toFixed(2)} s`);
const fmtDrops = (d: { server: number | undefined; sim: number | undefined } | undefined): string => (d ? `${d.server ?? '?'} / ${d.sim ?? '?'}` : '?');

function pad(cells: string[][]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells.map((row) => '| ' + row.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ') + ' |').join('\n');
}

/** Which side limited a phase, from the CPU and run-queue wait of both processes over the window. */
function bottleneck(p: PhaseResult): string {
  const sim = p.simCpu ?? 0;
  const server = p.serverCpu ?? 0;
  const held = [(p.simWait ?? 0) >= 15 ? 'simulator' : '', (p.serverWait ?? 0) >= 15 ? 'server' : ''].filter(Boolean);
  const also = held.length ? `; the ${held.join(' and ')} waited for ${held.length > 1 ? 'their cores' : 'its core'} (runq wait)` : '';
  if (sim >= 90 && server >= 90) return 'both cores saturated' + also;
  if (sim >= 90) return 'SIMULATOR saturated its core (a lower bound for the server)' + also;
  if (server >= 90) return 'server saturated its core' + also;
  if (held.length) return `neither saturated${also}`;
  return 'neither saturated: the server was blocked or idle (store fsyncs, retransmission timeouts)';
}

/** How the devices were started, and the start rate that offers (the ceiling of the end-to-end rate). */
function startText(options: BenchOptions): string {
  const spread = options.rampMs + options.jitterMs;
  if (spread === 0) return 'all at once';
  const parts = [options.rampMs ? `evenly over ${fmtInt(options.rampMs)} ms` : '', options.jitterMs ? `${options.rampMs ? 'plus ' : ''}at random over ${fmtInt(options.jitterMs)} ms` : ''].filter(Boolean);
  return `${parts.join(' ')} (${fmtInt((1000 * options.devices) / spread)} starts/s offered on average: the end-to-end rate cannot exceed it)`;
}

function report(options: BenchOptions, results: RunResult[]): string {
  const lines: string[] = [];
  lines.push(
    `${options.devices.toLocaleString('en-US')} devices per run, started ${startText(options)}; server data dir under ${options.dataParent}; ` +
      (PINNING ? 'server on CPU 1, simulator on CPU 0.' : 'NOT pinned (no taskset or < 2 CPUs): not comparable with pinned runs.'),
  );
  lines.push('');
  const header = ['run', 'devices', 'registrations/s', 'updates/s', 'RSS/device steady | settled | right after', 'sim CPU reg/upd', 'server CPU reg/upd', 'targets'];
  const rows = results.map((r) => {
    const reg = r.register;
    const upd = r.update;
    const regText = reg ? `${fmtInt(reg.perSecond)}${reg.complete ? '' : ` (${reg.done}/${reg.total}, timed out)`}` : 'failed';
    const updText = upd ? `${fmtInt(upd.perSecond)}${upd.complete ? '' : ` (${upd.done}/${upd.total}, timed out)`}` : '-';
    const regOk = reg !== undefined && reg.complete && reg.perSecond >= TARGET_REG_PER_S;
    const mem = r.steadyRssPerDeviceKiB ?? r.settledRssPerDeviceKiB ?? r.rssPerDeviceKiB;
    const memOk = mem !== undefined && mem <= TARGET_KIB_PER_DEVICE;
    const targets = `reg/s ${regOk ? 'PASS' : 'FAIL'}, mem ${mem === undefined ? '?' : memOk ? 'PASS' : 'FAIL'}`;
    return [r.transport.toUpperCase() + (r.transport === 'dtls' ? ' PSK' : ''), fmtInt(r.devices), regText, updText, `${r.serverSteady ? fmtKiB(r.steadyRssPerDeviceKiB) + (r.serverSteady.reduced ? '' : ' (no reducer GC)') : '-'} | ${fmtKiB(r.settledRssPerDeviceKiB)} | ${fmtKiB(r.rssPerDeviceKiB)}`, `${fmtPct(reg?.simCpu)} / ${fmtPct(upd?.simCpu)}`, `${fmtPct(reg?.serverCpu)} / ${fmtPct(upd?.serverCpu)}`, targets];
  });
  lines.push(pad([header, header.map((h) => '-'.repeat(h.length)), ...rows]));
  lines.push(`Targets: >= ${fmtInt(TARGET_REG_PER_S)} registrations/s, <= ${TARGET_KIB_PER_DEVICE} KiB server RSS per registered device (judged on the steady reading where taken: after V8's memory reducer returned the burst's garbage, up to ${options.steadyWaitS} s later; else on the settled one: RSS stable within 1 MiB for ${SETTLE_STABLE_MS / 1000} s, at most ${SETTLE_MAX_MS / 1000} s after the last 2.01; "right after" includes the burst's transients).`);
  lines.push('');
  lines.push('Details: window = first request to last answer; foreign = machine busy minus simulator and server (% of a core);');
  lines.push('drops srv/sim = datagrams dropped for a full receive buffer on the server\'s / the simulator\'s sockets (/proc/net/udp) in the phase;');
  lines.push("runq wait = % of the window the process's main thread was runnable but waited for its pinned core: taken by other processes, or by its own GC/libuv threads (taskset pins them to the same core);");
  lines.push("server side = the server's first to last stored registered_at / last_update_at (store timestamps, ms): its rate without the simulator's start-up.");
  const detail: string[][] = [['run', 'phase', 'done', 'window', 'first answer', 'server side', 'failures', 'drops srv/sim', 'foreign', 'runq wait sim/server', 'sim RSS', 'bottleneck']];
  detail.push(detail[0]!.map((h) => '-'.repeat(h.length)));
  for (const r of results) {
    for (const p of [r.register, r.update]) {
      if (!p) continue;
      const foreign = p.machineCpu - (p.simCpu ?? 0) - (p.serverCpu ?? 0);
      const failures = `${p.failures}${p.phase === 'update' && p.reRegistrations ? ` (+${p.reRegistrations} re-registered)` : ''}`;
      detail.push([r.transport, p.phase, `${p.done}/${p.total}`, `${(p.elapsedMs / 1000).toFixed(2)} s`, p.firstAnswerMs === undefined ? '-' : `${Math.round(p.firstAnswerMs)} ms`, fmtSpan(r.serverSide[p.phase]), failures, fmtDrops(r.drops[p.phase]), fmtPct(foreign), `${fmtPct(p.simWait)} / ${fmtPct(p.serverWait)}`, fmtMiB(p.simRssKiB), bottleneck(p)]);
    }
  }
  lines.push(pad(detail));
  lines.push('');
  lines.push('Server memory (VmRSS; anon = RssAnon; heap = V8 heap in use after the last GC, from --trace-gc):');
  for (const r of results) {
    const heap = r.heapBeforeMB !== undefined && r.heapAfterRegisterMB !== undefined ? `; heap ${r.heapBeforeMB.toFixed(1)} -> ${r.heapAfterRegisterMB.toFixed(1)} MB (${fmtKiB(r.heapPerDeviceKiB)}/device)` : '';
    const gc = r.promotedPerDeviceKiB !== undefined ? `; during registration V8 allocated ${fmtKiB(r.allocatedPerDeviceKiB)}/device and promoted ${fmtKiB(r.promotedPerDeviceKiB)}/device` : '';
    lines.push(
      `  ${r.transport}: before ${fmtMiB(r.serverBefore?.rss)}, after registration ${fmtMiB(r.serverAfterRegister?.rss)} (${fmtKiB(r.rssPerDeviceKiB)}/device; anon ${fmtKiB(r.anonPerDeviceKiB)}/device)${heap}${gc}, ` +
        `settled ${fmtMiB(r.serverSettled?.rss)} after ${r.serverSettled?.waitedS.toFixed(0) ?? '?'} s (${fmtKiB(r.settledRssPerDeviceKiB)}/device; glibc malloc heap ${fmtMiB(r.mallocHeapBefore)} -> ${fmtMiB(r.serverSettled?.mallocHeap)}; V8 heap committed ${r.committedBeforeMB?.toFixed(1) ?? '?'} -> ${r.committedSettledMB?.toFixed(1) ?? '?'} MB)${r.serverSteady ? `, steady ${fmtMiB(r.serverSteady.rss)} ${r.serverSteady.reduced ? "after V8's memory reducer" : 'without a memory-reducing GC'} ${r.serverSteady.waitedS.toFixed(0)} s later (${fmtKiB(r.steadyRssPerDeviceKiB)}/device)` : ''}, after the updates ${fmtMiB(r.serverAfterUpdate?.rss)}`,
    );
  }
  for (const r of results) {
    if (r.error) lines.push(`ERROR (${r.transport}): ${r.error.split('\n')[0]}`);
    for (const p of [r.register, r.update]) {
      if (!p) continue;
      if ((p.simCpu ?? 0) >= 90) lines.push(`NOTE (${r.transport} ${p.phase}): the simulator used ${fmtPct(p.simCpu)} of its core: it, not the server, set this rate.`);
      const foreign = p.machineCpu - (p.simCpu ?? 0) - (p.serverCpu ?? 0);
      if (foreign > 25) lines.push(`WARNING (${r.transport} ${p.phase}): other work took ${fmtPct(foreign)} of a core during the window; rerun on a quiet machine before trusting it.`);
      if (!p.complete) lines.push(`WARNING (${r.transport} ${p.phase}): only ${p.done} of ${p.total} devices finished within ${options.timeoutS} s; the rate is over the whole bound.`);
    }
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  // The server ceiling (coapload -R/-U against depot serve and coap-rd-notls) and the burst live in lwm2m-ceiling.ts.
  if (process.argv.includes('--ceiling') || process.argv.some((a) => a === '--burst' || a.startsWith('--burst='))) {
    const { main: ceiling } = await import('./lwm2m-ceiling.js');
    return ceiling(process.argv.slice(2));
  }
  const options = parseOptions(process.argv.slice(2));
  keepData = options.keepData;
  for (const file of [DEPOT_MAIN, FLEET_SCRIPT]) if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build first`);
  const limit = openFileLimit();
  if (limit !== undefined && limit < options.devices + 200) throw new Error(`ulimit -n is ${limit}: the simulator needs a socket per device (${options.devices}) and some; raise it`);
  log(PINNING ? 'pinning: depot serve on CPU 1 (taskset -c 1), simulator on CPU 0 (taskset -c 0)' : 'pinning: off (no taskset or fewer than 2 CPUs): numbers are not comparable with pinned runs');
  log(`node ${process.version}, ${availableParallelism()} CPUs; ${options.devices} devices; transports ${options.transports.join(', ')}; data dirs under ${options.dataParent}${options.serverNodeArgs.length > 0 ? '; server node args ' + options.serverNodeArgs.join(' ') : ''}${options.simNodeArgs.length > 0 ? '; simulator node args ' + options.simNodeArgs.join(' ') : ''}`);
  const results: RunResult[] = [];
  for (const transport of options.transports) results.push(await runOne(options, transport));
  process.stdout.write('\n' + report(options, results) + '\n');
  if (options.json) {
    writeFileSync(options.json, JSON.stringify({ date: new Date().toISOString(), node: process.version, pinning: PINNING, options, results }, null, 2) + '\n');
    log(`wrote ${options.json}`);
  }
  if (results.some((r) => r.error)) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/lwm2m: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
