/**
 * Campaign benchmark (issue 16): a campaign installing one small signed package on N simulated
 * LwM2M devices through the API (staged waves, the install method chain, Object 9 first), and in
 * the same run, on a fresh server and fleet, direct Object 9 installs of the same package on the
 * same number of devices with the same waves and concurrency: jobs completed per second, server
 * CPU per job (/proc), RSS, store growth and durable commits (fsyncs) per job, and the ratio
 * chain / direct. `depot serve` on CPU 1, `depot sim` on CPU 0, plain CoAP over UDP. See
 * bench/README.md.
 *
 *   npm run bench:campaign                 # N = 10,000
 *   npm run bench:campaign -- --quick      # N = 500
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { simulatedEndpointName } from '../src/sim/simulator.js';
import { installProfile, makeBenchPackage, type BenchPackage } from './servers/install-package.js';
import { listOption, numberOption, stopChild, track, type Tracked } from './support/children.js';
import { api, cpuWindow, DEPOT_MAIN, DEPOT_RUN_OPTIONS, dropDir, keepTempDirs, log, markCpu, rssSampler, sleep, startDepot, tempDir, withStore, type CpuWindow, type DepotServer } from './support/depot.js';
import { DirectWaves } from './support/direct-waves.js';
import { memoryKiB, pinned, PINNING, udpReceiveBufferErrors, udpSocketDrops, which } from './support/proc.js';

// ---------------------------------------------------------------- options

const USAGE = `usage: node dist/bench/campaign.js [options]
  --quick               N = 500 (a smoke check)
  --devices <n>         simulated devices (default 10000)
  --waves <list>        cumulative wave percentages (default 1,10,50,100)
  --concurrency <n>     installs open at once, in both phases (default: N, i.e. every device of a wave at once)
  --phases <list>       campaign,direct (default both; the ratio needs both)
  --methods <list>      the campaign's explicit chain, e.g. object9 (default: none given, the chain's learned/default order)
  --size <bytes>        package file size (default 4096)
  --threshold <0..1>    success share of a wave before the next starts, both phases (default 0.9, the campaign default)
  --timeout <s>         bound of one phase's installs (default 150)
  --ramp <ms>           spread the simulated devices' start-up over this long (default N / 2.5 ms); not measured
  --data-parent <dir>   where the server's fresh data dir is made (default the OS temp dir)
  --device-parent <dir> where the simulated devices stage packages (default /dev/shm when present)
  --json <file>         also write the results as JSON
  --keep-data           keep the data dirs
  --server-node-arg <a> an extra node flag for depot serve, repeatable (e.g. --server-node-arg=--cpu-prof
                        --server-node-arg=--cpu-prof-dir=/tmp/prof)
  -h, --help`;

const PHASES = ['campaign', 'direct'] as const;
type Phase = (typeof PHASES)[number];

interface CampaignBenchOptions {
  devices: number;
  waves: number[];
  concurrency: number;
  phases: Phase[];
  methods: string[] | undefined;
  size: number;
  threshold: number;
  timeoutS: number;
  rampMs: number;
  dataParent: string;
  deviceParent: string;
  json: string | undefined;
  keepData: boolean;
  serverNodeArgs: string[];
}

function parseCampaignOptions(argv: string[]): CampaignBenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...DEPOT_RUN_OPTIONS,
      waves: { type: 'string' },
      concurrency: { type: 'string' },
      phases: { type: 'string' },
      methods: { type: 'string' },
      threshold: { type: 'string' },
    },
  });
  if (values.help) return 'help';
  const devices = Math.round(numberOption(values.devices, values.quick ? 500 : 10_000, 'devices', 1));
  const waves = (values.waves ?? '1,10,50,100').split(',').map((w) => numberOption(w.trim(), 0, 'waves'));
  for (let i = 1; i < waves.length; i++) if (waves[i]! < waves[i - 1]!) throw new Error(`--waves are cumulative percentages (1,10,50,100): ${waves[i]} is below ${waves[i - 1]}`);
  if (waves.some((w) => w > 100)) throw new Error('--waves: a percentage is at most 100');
  const threshold = values.threshold === undefined ? 0.9 : Number(values.threshold);
  if (!(threshold >= 0 && threshold <= 1)) throw new Error(`--threshold wants a fraction in 0..1, got "${values.threshold}"`);
  return {
    devices,
    waves,
    concurrency: Math.round(numberOption(values.concurrency, devices, 'concurrency', 1)),
    phases: listOption(values.phases, PHASES, 'phases'),
    methods: values.methods?.split(',').map((m) => m.trim()),
    size: Math.round(numberOption(values.size, 4096, 'size', 512)),
    threshold,
    timeoutS: numberOption(values.timeout, 150, 'timeout', 1),
    rampMs: numberOption(values.ramp, devices / 2.5, 'ramp', 0),
    dataParent: values['data-parent'] ?? tmpdir(),
    deviceParent: values['device-parent'] ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir()),
    json: values.json,
    keepData: values['keep-data'] ?? false,
    serverNodeArgs: values['server-node-arg'] ?? [],
  };
}

const ENDPOINT_PREFIX = 'bench-cmp-';
const TARGET_RATIO = 1.2;
/** Job-creating HTTP requests in flight at once in the direct phase (the installs open at once are --concurrency). */
const POSTS_IN_FLIGHT = 64;
const POLL_MS = 250;

// ---------------------------------------------------------------- durable commits (perf)

const PERF = which('perf');
const SYNC_EVENTS = ['syscalls:sys_enter_fdatasync', 'syscalls:sys_enter_fsync'];

/**
 * Counts the server's fsync/fdatasync calls over a window with `perf stat` on the kernel's
 * syscall tracepoints (no ptrace: the server runs at full speed). In WAL mode with
 * synchronous=FULL, SQLite syncs the WAL once per durable commit, and a checkpoint syncs the WAL
 * and the database file once more each.
 */
function countSyncs(pid: number): { stop: () => Promise<number | undefined> } | undefined {
  if (!PERF) return undefined;
  const child = spawn(PERF, ['stat', '-x', ',', '-e', SYNC_EVENTS.join(','), '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return {
    stop: async () => {
      child.kill('SIGINT');
      await exited;
      let total = 0;
      let found = 0;
      for (const line of err.split('\n')) {
        const [count, , event] = line.split(',');
        if (event && SYNC_EVENTS.includes(event) && /^\d+$/.test(count ?? '')) {
          total += Number(count);
          found++;
        }
      }
      return found === SYNC_EVENTS.length ? total : undefined;
    },
  };
}

// ---------------------------------------------------------------- results

interface PhaseResult {
  phase: Phase;
  devices: number;
  ok: number;
  failed: number;
  unfinished: number;
  /** First request to the end: the campaign's `completed` (its finished_at), direct the last job's finished_at (server clock). */
  totalMs: number | undefined;
  /** First request to the last install job's end (server clock): the same point for both phases. */
  lastJobMs: number | undefined;
  cpu: CpuWindow | undefined;
  rssBeforeKiB: number | undefined;
  rssPeakKiB: number | undefined;
  rssEndKiB: number | undefined;
  /** Logical store size (page_count × page_size, read beside the server) before and after. */
  storeBeforeBytes: number | undefined;
  storeAfterBytes: number | undefined;
  /** fsync + fdatasync calls of the server in the window (perf), undefined without perf. */
  syncs: number | undefined;
  /** Install jobs made: chain jobs and Object 9 jobs (each chain job runs one Object 9 job). */
  chainJobs: number;
  object9Jobs: number;
  /** Job batches the campaign made (distinct started_at of its members: one createJobs call each). */
  batches: number | undefined;
  /** Datagrams dropped on the server's UDP sockets and machine-wide (Udp RcvbufErrors) in the window: each costs a CoAP retransmission (2–3 s). */
  drops: { server: number | undefined; machine: number | undefined };
  failures: string[];
  error: string | undefined;
}

function emptyResult(phase: Phase, devices: number): PhaseResult {
  return {
    phase, devices, ok: 0, failed: 0, unfinished: devices, totalMs: undefined, lastJobMs: undefined, cpu: undefined, rssBeforeKiB: undefined, rssPeakKiB: undefined, rssEndKiB: undefined,
    storeBeforeBytes: undefined, storeAfterBytes: undefined, syncs: undefined, chainJobs: 0, object9Jobs: 0, batches: undefined, drops: { server: undefined, machine: undefined }, failures: [], error: undefined,
  };
}

const count = (db: { prepare(sql: string): { get(...a: unknown[]): unknown } }, sql: string, ...args: unknown[]): number => (db.prepare(sql).get(...args) as { n: number | null }).n ?? 0;
const storeBytes = (dataDir: string): number | undefined => withStore(dataDir, (db) => (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number));

// ---------------------------------------------------------------- one phase

async function runPhase(o: CampaignBenchOptions, phase: Phase, pkg: BenchPackage): Promise<PhaseResult> {
  const n = o.devices;
  const result = emptyResult(phase, n);
  const tag = `[${phase} N=${n}]`;
  const dataDir = tempDir(o.dataParent, `depot-bench-campaign-${phase}-`);
  const deviceDir = tempDir(o.deviceParent, `depot-bench-campaign-devices-`);
  let server: DepotServer | undefined;
  let sim: Tracked | undefined;
  let rss: ReturnType<typeof rssSampler> | undefined;
  let syncs: ReturnType<typeof countSyncs>;
  try {
    server = await startDepot(dataDir, o.serverNodeArgs);
    const upload = await api(server, 'POST', '/packages', pkg.bytes);
    if (upload.status !== 201 || (upload.json as { sha256?: string }).sha256 !== pkg.sha256) throw new Error(`package upload: HTTP ${upload.status} ${JSON.stringify(upload.json)}`);
    const profileFile = join(deviceDir, 'profile.json');
    writeFileSync(profileFile, JSON.stringify(installProfile(pkg, n)));
    const simArgs = ['sim', '--server', server.coapUri, '--count', String(n), '--profile', profileFile, '--data-dir', join(deviceDir, 'devices'), '--endpoint-prefix', ENDPOINT_PREFIX, '--ramp', String(Math.round(o.rampMs))];
    const [command, args] = pinned(0, process.execPath, [DEPOT_MAIN, ...simArgs]);
    sim = track(spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] }), 'depot sim');
    log(`${tag} depot serve pid ${server.pid} at ${server.coapUri}; depot sim pid ${sim.child.pid} starting ${n} devices over ${Math.round(o.rampMs)} ms`);

    // Every device registered and in the inventory with its model (read from its Object 3).
    const bound = performance.now() + 150_000 + o.rampMs;
    for (;;) {
      const [registered, known] = withStore(dataDir, (db) => [count(db, 'SELECT count(*) AS n FROM registrations'), count(db, `SELECT count(*) AS n FROM inventory_devices WHERE model = 'BI-1'`)]) ?? [0, 0];
      if (registered >= n && known >= n) break;
      if (sim.child.exitCode !== null) throw new Error(`depot sim exited:\n${sim.output().slice(-4000)}`);
      if (performance.now() > bound) throw new Error(`only ${registered}/${n} devices registered, ${known} in the inventory:\n${sim.output().slice(-4000)}`);
      await sleep(POLL_MS);
    }
    await sleep(2000); // the registrations' follow-ups settle
    result.rssBeforeKiB = memoryKiB(server.pid)?.rss;
    result.storeBeforeBytes = storeBytes(dataDir);
    rss = rssSampler(server.pid);
    syncs = countSyncs(server.pid);
    await sleep(200); // perf attached
    log(`${tag} ${n} devices registered; server RSS ${fmtMiB(result.rssBeforeKiB)}, store ${fmtMB(result.storeBeforeBytes)}`);

    const drops0 = [udpSocketDrops(server.pid), udpReceiveBufferErrors()];
    const cpu0 = markCpu(server.pid, sim.child.pid!, false);
    const t0 = Date.now();
    const limit = performance.now() + o.timeoutS * 1000;
    let campaignId: string | undefined;
    let lastLog = performance.now();
    if (phase === 'campaign') {
      const spec = {
        name: 'bench',
        target: { kind: 'filter', filter: { model: 'BI-1' } },
        package: { kind: 'fixed', sha256: pkg.sha256 },
        waves: o.waves.map((percent) => ({ percent })),
        concurrency: Math.min(o.concurrency, 100_000),
        successThreshold: o.threshold,
        ...(o.methods ? { methods: o.methods } : {}),
      };
      const created = await api(server, 'POST', '/campaigns', spec);
      campaignId = (created.json as { id?: string }).id;
      if (created.status !== 201 || !campaignId) throw new Error(`POST /campaigns: HTTP ${created.status} ${JSON.stringify(created.json).slice(0, 400)}`);
      log(`${tag} campaign ${campaignId} created in ${Date.now() - t0} ms`);
      for (;;) {
        const state = withStore(dataDir, (db) => (db.prepare('SELECT state FROM campaigns WHERE id = ?').get(campaignId) as { state: string }).state);
        if (state === 'completed' || state === 'cancelled' || state === 'paused') {
          if (state !== 'completed') result.failures.push(`campaign ${state}`);
          break;
        }
        if (performance.now() > limit) {
          log(`${tag} TIMEOUT after ${o.timeoutS} s`);
          break;
        }
        if (performance.now() - lastLog > 5000) {
          lastLog = performance.now();
          const states = withStore(dataDir, (db) => db.prepare('SELECT state, count(*) AS n FROM campaign_members WHERE campaign_id = ? GROUP BY state').all(campaignId) as { state: string; n: number }[]) ?? [];
          log(`${tag} ${((Date.now() - t0) / 1000).toFixed(0)} s: ${states.map((s) => `${s.state} ${s.n}`).join(', ')}; server RSS ${fmtMiB(memoryKiB(server.pid)?.rss)}`);
        }
        checkAlive(server, sim);
        await sleep(POLL_MS);
      }
    } else {
      const waves = new DirectWaves(n, o.waves, o.concurrency, o.threshold);
      let created = 0;
      for (;;) {
        const [ended, succeeded] = withStore(dataDir, (db) => [count(db, `SELECT count(*) AS n FROM install_jobs WHERE state IN ('succeeded', 'failed', 'cancelled')`), count(db, `SELECT count(*) AS n FROM install_jobs WHERE state = 'succeeded'`)]) ?? [0, 0];
        if (ended >= n || (waves.next >= n && ended >= created)) break;
        if (performance.now() > limit) {
          log(`${tag} TIMEOUT after ${o.timeoutS} s`);
          break;
        }
        const from = waves.next;
        // Succeeded jobs of devices [a, b): endpoints are zero-padded, so a range of names.
        const succeededIn = (a: number, b: number): number =>
          withStore(dataDir, (db) => count(db, `SELECT count(*) AS n FROM install_jobs WHERE state = 'succeeded' AND endpoint BETWEEN ? AND ?`, simulatedEndpointName(ENDPOINT_PREFIX, a + 1, n), simulatedEndpointName(ENDPOINT_PREFIX, b, n))) ?? 0;
        const start = waves.take(created - ended, succeededIn);
        if (start > 0) {
          const errors = await createDirect(server, pkg, from, start, n);
          created += start - errors.length;
          for (const e of errors) if (result.failures.length < 5) result.failures.push(`create: ${e}`);
          continue; // poll again at once: the creation took a while
        }
        if (performance.now() - lastLog > 5000) {
          lastLog = performance.now();
          log(`${tag} ${((Date.now() - t0) / 1000).toFixed(0)} s: created ${created}, ended ${ended}, succeeded ${succeeded}; server RSS ${fmtMiB(memoryKiB(server.pid)?.rss)}`);
        }
        checkAlive(server, sim);
        await sleep(POLL_MS);
      }
    }
    const cpu1 = markCpu(server.pid, sim.child.pid!, false);
    result.cpu = cpuWindow(cpu0, cpu1);
    const drops1 = [udpSocketDrops(server.pid), udpReceiveBufferErrors()];
    const delta = (i: number): number | undefined => (drops0[i] === undefined || drops1[i] === undefined ? undefined : drops1[i] - drops0[i]);
    result.drops = { server: delta(0), machine: delta(1) };
    result.syncs = await syncs?.stop();
    rss.stop();
    result.rssPeakKiB = rss.peak();
    result.rssEndKiB = memoryKiB(server.pid)?.rss;
    await sleep(500); // the last soft writes
    result.storeAfterBytes = storeBytes(dataDir);

    withStore(dataDir, (db) => {
      result.chainJobs = count(db, 'SELECT count(*) AS n FROM install_chain_jobs');
      result.object9Jobs = count(db, 'SELECT count(*) AS n FROM install_jobs');
      const lastJob = count(db, 'SELECT max(finished_at) AS n FROM install_jobs');
      result.lastJobMs = lastJob ? lastJob - t0 : undefined;
      if (phase === 'campaign') {
        const states = db.prepare('SELECT state, count(*) AS n FROM campaign_members WHERE campaign_id = ? GROUP BY state').all(campaignId) as { state: string; n: number }[];
        const c = (s: string): number => states.find((x) => x.state === s)?.n ?? 0;
        result.ok = c('succeeded');
        result.failed = c('failed') + c('cancelled') + c('no-package');
        result.unfinished = n - result.ok - result.failed;
        const finished = count(db, 'SELECT finished_at AS n FROM campaigns WHERE id = ?', campaignId);
        result.totalMs = finished ? finished - t0 : undefined;
        result.batches = count(db, 'SELECT count(DISTINCT started_at) AS n FROM campaign_members WHERE campaign_id = ? AND started_at IS NOT NULL', campaignId);
        const why = db.prepare(`SELECT coalesce(message, '') AS m, state, count(*) AS n FROM campaign_members WHERE campaign_id = ? AND state <> 'succeeded' GROUP BY 1, 2 ORDER BY n DESC LIMIT 5`).all(campaignId) as { m: string; state: string; n: number }[];
        for (const w of why) result.failures.push(`${w.n} × ${w.state}: ${w.m}`);
      } else {
        const states = db.prepare('SELECT state, count(*) AS n FROM install_jobs GROUP BY state').all() as { state: string; n: number }[];
        const c = (s: string): number => states.find((x) => x.state === s)?.n ?? 0;
        result.ok = c('succeeded');
        result.failed = c('failed') + c('cancelled');
        result.unfinished = n - result.ok - result.failed;
        result.totalMs = result.lastJobMs;
        const why = db.prepare(`SELECT coalesce(message, '') AS m, state, count(*) AS n FROM install_jobs WHERE state <> 'succeeded' GROUP BY 1, 2 ORDER BY n DESC LIMIT 5`).all() as { m: string; state: string; n: number }[];
        for (const w of why) result.failures.push(`${w.n} × ${w.state}: ${w.m}`);
      }
    });
    // The API agrees on one job.
    const one = withStore(dataDir, (db) => (db.prepare(phase === 'campaign' ? 'SELECT id FROM install_chain_jobs LIMIT 1' : 'SELECT id FROM install_jobs LIMIT 1').get() as { id: string } | undefined)?.id);
    if (one) {
      const view = await api(server, 'GET', phase === 'campaign' ? `/install-chains/${one}` : `/installs/${one}`);
      const v = view.json as { state?: string; attempts?: unknown };
      const attempts = Array.isArray(v.attempts) ? ` (${(v.attempts as { method: string; outcome: string }[]).map((a) => `${a.method} ${a.outcome}`).join(', ')})` : '';
      log(`${tag} GET ${phase === 'campaign' ? '/install-chains' : '/installs'}/${one}: HTTP ${view.status}, ${v.state ?? '?'}${attempts}`);
    }
    log(`${tag} ${result.ok} succeeded, ${result.failed} failed, ${result.unfinished} unfinished in ${fmtS(result.totalMs)}; server CPU ${result.cpu.serverS?.toFixed(2) ?? '?'} s, sim CPU ${result.cpu.loadS?.toFixed(2) ?? '?'} s; syncs ${result.syncs ?? '?'}`);
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    log(`${tag} FAILED: ${result.error}`);
  } finally {
    rss?.stop();
    if (sim) await stopChild(sim, 10_000);
    if (server) await stopChild(server.tracked, 10_000);
    dropDir(dataDir);
    dropDir(deviceDir);
  }
  return result;
}

function checkAlive(server: DepotServer, sim: Tracked): void {
  if (server.tracked.child.exitCode !== null || server.tracked.child.signalCode !== null) throw new Error(`depot serve exited:\n${server.tracked.output().slice(-4000)}`);
  if (sim.child.exitCode !== null || sim.child.signalCode !== null) throw new Error(`depot sim exited:\n${sim.output().slice(-4000)}`);
}

/** POSTs Object 9 install jobs for devices [from, from + count), POSTS_IN_FLIGHT at a time; answers the errors. */
async function createDirect(server: DepotServer, pkg: BenchPackage, from: number, count: number, n: number): Promise<string[]> {
  const errors: string[] = [];
  let i = from;
  const end = from + count;
  const worker = async (): Promise<void> => {
    while (i < end) {
      const endpoint = simulatedEndpointName(ENDPOINT_PREFIX, ++i, n);
      try {
        const r = await api(server, 'POST', `/devices/${encodeURIComponent(endpoint)}/installs`, { package: pkg.sha256 });
        if (r.status !== 201) errors.push(`${endpoint}: HTTP ${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
      } catch (error) {
        errors.push(`${endpoint}: ${(error as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(POSTS_IN_FLIGHT, count) }, worker));
  return errors;
}

// ---------------------------------------------------------------- report

const fmtS = (ms: number | undefined): string => (ms === undefined ? '?' : `${(ms / 1000).toFixed(2)} s`);
const fmtMiB = (kib: number | undefined): string => (kib === undefined ? '?' : `${(kib / 1024).toFixed(1)} MiB`);
const fmtMB = (bytes: number | undefined): string => (bytes === undefined ? '?' : `${(bytes / 1e6).toFixed(1)} MB`);
const fmtX = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '?' : `${x.toFixed(2)}x`);
const per = (total: number | undefined, jobs: number): number | undefined => (total === undefined || jobs === 0 ? undefined : total / jobs);

function pad(cells: string[][]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells.map((row) => '| ' + row.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ') + ' |').join('\n');
}

/** Per-job figures of a phase (per device of the fleet: every device gets one job). */
function perJob(r: PhaseResult): { cpuUs: number | undefined; wallMs: number | undefined; jobsPerS: number | undefined; syncs: number | undefined; storeBytes: number | undefined; rssKiB: number | undefined } {
  const jobs = r.devices;
  return {
    cpuUs: per(r.cpu?.serverS === undefined ? undefined : r.cpu.serverS * 1e6, jobs),
    wallMs: per(r.totalMs, jobs),
    jobsPerS: r.totalMs ? (r.ok * 1000) / r.totalMs : undefined,
    syncs: per(r.syncs, jobs),
    storeBytes: per(r.storeAfterBytes === undefined || r.storeBeforeBytes === undefined ? undefined : r.storeAfterBytes - r.storeBeforeBytes, jobs),
    rssKiB: per(r.rssPeakKiB === undefined || r.rssBeforeKiB === undefined ? undefined : r.rssPeakKiB - r.rssBeforeKiB, jobs),
  };
}

function report(o: CampaignBenchOptions, pkg: BenchPackage, results: PhaseResult[]): string {
  const lines: string[] = [];
  lines.push(
    `N = ${o.devices} devices, waves ${o.waves.join('/')} %, concurrency ${o.concurrency}, success threshold ${o.threshold}; package ${pkg.bytes.length} bytes (signed); plain CoAP over UDP; ` +
      (PINNING ? 'depot serve on CPU 1, depot sim on CPU 0.' : 'NOT pinned (no taskset or < 2 CPUs): not comparable with pinned runs.'),
  );
  lines.push('');
  const header = ['phase', 'ok/failed/unfinished', 'time', 'last job ended', 'jobs/s', 'server CPU', 'CPU/job', 'fsyncs/job', 'store/job', 'server RSS before/peak/end', 'sim CPU', 'foreign (softirq)', 'jobs chain/object9', 'job batches', 'udp drops srv/all'];
  const rows = results.map((r) => {
    const p = perJob(r);
    const c = r.cpu;
    return [
      r.phase,
      r.error && r.ok === 0 ? 'error' : `${r.ok}/${r.failed}/${r.unfinished}`,
      fmtS(r.totalMs),
      fmtS(r.lastJobMs),
      p.jobsPerS === undefined ? '?' : p.jobsPerS.toFixed(0),
      c?.serverS === undefined ? '?' : `${c.serverS.toFixed(2)} s (${Math.round((100 * c.serverS) / c.wallS)}%)`,
      p.cpuUs === undefined ? '?' : `${p.cpuUs.toFixed(0)} µs`,
      p.syncs === undefined ? '?' : p.syncs.toFixed(2),
      p.storeBytes === undefined ? '?' : `${(p.storeBytes / 1024).toFixed(2)} KiB`,
      `${fmtMiB(r.rssBeforeKiB)} / ${fmtMiB(r.rssPeakKiB)} / ${fmtMiB(r.rssEndKiB)}`,
      c?.loadS === undefined ? '?' : `${Math.round((100 * c.loadS) / c.wallS)}%`,
      c === undefined ? '?' : `${Math.round((100 * c.foreignS) / c.wallS)}% (${Math.round((100 * c.softirqS) / c.wallS)}%)`,
      `${r.chainJobs}/${r.object9Jobs}`,
      r.batches === undefined ? '-' : String(r.batches),
      `${r.drops.server ?? '?'} / ${r.drops.machine ?? '?'}`,
    ];
  });
  lines.push(pad([header, header.map((h) => '-'.repeat(h.length)), ...rows]));
  const chain = results.find((r) => r.phase === 'campaign');
  const direct = results.find((r) => r.phase === 'direct');
  if (chain && direct) {
    const a = perJob(chain);
    const b = perJob(direct);
    const cpuRatio = a.cpuUs !== undefined && b.cpuUs ? a.cpuUs / b.cpuUs : undefined;
    const wallRatio = a.wallMs !== undefined && b.wallMs ? a.wallMs / b.wallMs : undefined;
    const lastRatio = chain.lastJobMs !== undefined && direct.lastJobMs ? chain.lastJobMs / direct.lastJobMs : undefined;
    lines.push('');
    lines.push(`chain / direct per job (target: at most ${TARGET_RATIO}x):`);
    const h = ['per job', 'campaign (chain)', 'direct Object 9', 'ratio', 'target'];
    const judge = (x: number | undefined): string => (x === undefined ? '?' : x <= TARGET_RATIO ? 'PASS' : 'FAIL');
    lines.push(
      pad([
        h,
        h.map((x) => '-'.repeat(x.length)),
        ['server CPU', a.cpuUs === undefined ? '?' : `${a.cpuUs.toFixed(0)} µs`, b.cpuUs === undefined ? '?' : `${b.cpuUs.toFixed(0)} µs`, fmtX(cpuRatio), judge(cpuRatio)],
        ['wall (to completed)', a.wallMs === undefined ? '?' : `${a.wallMs.toFixed(2)} ms`, b.wallMs === undefined ? '?' : `${b.wallMs.toFixed(2)} ms`, fmtX(wallRatio), judge(wallRatio)],
        ['wall (to last job ended)', fmtS(chain.lastJobMs), fmtS(direct.lastJobMs), fmtX(lastRatio), '-'],
        ['fsyncs', a.syncs?.toFixed(2) ?? '?', b.syncs?.toFixed(2) ?? '?', fmtX(a.syncs !== undefined && b.syncs ? a.syncs / b.syncs : undefined), '-'],
        ['store growth', a.storeBytes === undefined ? '?' : `${(a.storeBytes / 1024).toFixed(2)} KiB`, b.storeBytes === undefined ? '?' : `${(b.storeBytes / 1024).toFixed(2)} KiB`, fmtX(a.storeBytes !== undefined && b.storeBytes ? a.storeBytes / b.storeBytes : undefined), '-'],
        ['RSS growth (peak)', a.rssKiB === undefined ? '?' : `${a.rssKiB.toFixed(2)} KiB`, b.rssKiB === undefined ? '?' : `${b.rssKiB.toFixed(2)} KiB`, '-', '-'],
      ]),
    );
  }
  lines.push('');
  lines.push('time: campaign = POST /campaigns to its `completed` (campaigns.finished_at); direct = first POST to the last job finished (server clock). jobs/s = succeeded / time.');
  lines.push('CPU/job: server user+system CPU over the window (/proc) / N. fsyncs/job: fsync+fdatasync calls of depot serve (perf stat on the syscall tracepoints) / N:');
  lines.push('  one per durable commit (synchronous=FULL; soft writes with NORMAL are not synced) plus two per WAL checkpoint. store/job: growth of page_count × page_size / N.');
  lines.push('job batches: createJobs calls of the campaign (distinct member start times): one transaction each. foreign = machine busy − server − sim − this driver.');
  lines.push('udp drops: datagrams dropped on the server\'s sockets / machine-wide in the window; each costs a CoAP retransmission (2–3 s) and shows in the wall time.');
  for (const r of results) {
    if (r.error) lines.push(`  ${r.phase}: ERROR: ${r.error.split('\n')[0]}`);
    for (const f of r.failures) lines.push(`  ${r.phase}: ${f}`);
    const c = r.cpu;
    if (c && (c.foreignS - c.softirqS) / c.wallS > 0.25) lines.push(`  ${r.phase}: WARNING: other work took ${Math.round((100 * (c.foreignS - c.softirqS)) / c.wallS)}% of a core (besides softirq) during the window; rerun on a quiet machine before trusting it.`);
  }
  if (results.some((r) => r.syncs === undefined)) lines.push('  (fsyncs: perf not found or not allowed to read the syscalls tracepoints: not counted)');
  return lines.join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const o = parseCampaignOptions(process.argv.slice(2));
  if (o === 'help') {
    process.stdout.write(USAGE + '\n');
    return;
  }
  keepTempDirs(o.keepData);
  if (!existsSync(DEPOT_MAIN)) throw new Error(`${DEPOT_MAIN} is missing: run npm run build first`);
  const limit = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
  const downloads = Math.min(o.concurrency, o.devices);
  if (Number.isFinite(limit) && limit < o.devices + downloads + 200) throw new Error(`ulimit -n is ${limit}: the simulator needs a socket per device (${o.devices}) and one per download at once (up to ${downloads}) and some; raise it or lower --concurrency`);
  log(PINNING ? 'pinning: depot serve on CPU 1 (taskset -c 1), depot sim on CPU 0 (taskset -c 0)' : 'pinning: off (no taskset or fewer than 2 CPUs): numbers are not comparable with pinned runs');
  log(`node ${process.version}, ${availableParallelism()} CPUs; N = ${o.devices}; phases ${o.phases.join(', ')}`);
  const pkg = makeBenchPackage(o.size);
  log(`package: ${pkg.bytes.length} bytes, sha256 ${pkg.sha256}`);
  const results: PhaseResult[] = [];
  for (const phase of o.phases) results.push(await runPhase(o, phase, pkg));
  process.stdout.write('\n' + report(o, pkg, results) + '\n');
  if (o.json) {
    writeFileSync(o.json, JSON.stringify({ date: new Date().toISOString(), node: process.version, pinning: PINNING, options: o, packageBytes: pkg.bytes.length, results, perJob: results.map((r) => ({ phase: r.phase, ...perJob(r) })) }, null, 2) + '\n');
    log(`wrote ${o.json}`);
  }
  if (results.some((r) => r.error || r.ok < r.devices)) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/campaign: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
