/**
 * Install benchmark: Object 9 installs of a 1 MiB signed package on N simulated devices at once,
 * by `depot serve` (pinned to CPU 1) with a `depot sim` fleet (pinned to CPU 0), pull and push;
 * compared in the same run with libcoap moving the same bytes block-wise the same number of times
 * (`coap-server-notls` on CPU 1, N concurrent `coap-client-notls` on CPU 0). See bench/README.md.
 *
 *   npm run bench:install                 # N = 100 and 1,000; pull and push; Depot and libcoap
 *   npm run bench:install -- --quick      # N = 100
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { simulatedEndpointName } from '../src/sim/simulator.js';
import type { InstallClientsConfig, InstallClientsResult } from './servers/install-coap-clients.js';
import { installProfile, makeBenchPackage, type BenchPackage } from './servers/install-package.js';
import { listOption, numberOption, stopChild, track, type Tracked } from './support/children.js';
import { api, cpuWindow, DEPOT_MAIN, DEPOT_RUN_OPTIONS, dropDir, freeUdpPort, GC_LINE, keepTempDirs, log, markCpu, rssSampler, sleep, startDepot, tempDir, waitLine, withStore, type CpuWindow, type DepotServer } from './support/depot.js';
import { memoryKiB, pinned, PINNING, udpReceiveBufferErrors, udpSocketDrops, which } from './support/proc.js';

// ---------------------------------------------------------------- options

const USAGE = `usage: node dist/bench/install.js [options]
  --quick               N = 100 only (a smoke check)
  --devices <list>      device counts, e.g. 100,1000 (default 100,1000)
  --methods <list>      pull,push (default both)
  --peers <list>        depot,libcoap (default both)
  --size <bytes>        package file size (default 1048576)
  --timeout <s>         bound of one run's transfers (default 600; --quick 240)
  --client-timeout <s>  coap-client-notls -B: a libcoap client gives up after this long (default 120);
                        libcoap's time is to its last successful transfer, failures are counted
  --ramp <ms>           spread the simulated devices' start-up (registration) over this long
                        (default 5 ms per device); not part of any measured window
  --data-parent <dir>   where the server's fresh data dir is made (default the OS temp dir)
  --device-parent <dir> where the simulated devices stage packages and libcoap's clients write
                        their downloads (default /dev/shm when present: device flash is not measured)
  --json <file>         also write the results as JSON
  --keep-data           keep the data dirs
  --server-node-arg <a> an extra node flag for depot serve, repeatable (e.g. --server-node-arg=--cpu-prof
                        --server-node-arg=--cpu-prof-dir=/tmp/prof: the profile is written when it stops)
  -h, --help`;

const METHODS = ['pull', 'push'] as const;
type Method = (typeof METHODS)[number];
const PEERS = ['depot', 'libcoap'] as const;
type Peer = (typeof PEERS)[number];

interface BenchOptions {
  devices: number[];
  methods: Method[];
  peers: Peer[];
  size: number;
  timeoutS: number;
  rampMsPerDevice: number | undefined;
  rampMs: number | undefined;
  dataParent: string;
  deviceParent: string;
  json: string | undefined;
  keepData: boolean;
  /** coap-client-notls -B: each client gives up after this long. */
  clientTimeoutS: number;
  /** Extra node flags for `depot serve` (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof). */
  serverNodeArgs: string[];
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...DEPOT_RUN_OPTIONS,
      methods: { type: 'string' },
      peers: { type: 'string' },
      'client-timeout': { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const devices = (values.devices ?? (quick ? '100' : '100,1000')).split(',').map((d) => Math.round(numberOption(d.trim(), 0, 'devices', 1)));
  return {
    devices,
    methods: listOption(values.methods, METHODS, 'methods'),
    peers: listOption(values.peers, PEERS, 'peers'),
    size: Math.round(numberOption(values.size, 1 << 20, 'size', 1024)),
    timeoutS: numberOption(values.timeout, quick ? 240 : 600, 'timeout', 1),
    rampMsPerDevice: values.ramp === undefined ? 5 : undefined,
    rampMs: values.ramp === undefined ? undefined : numberOption(values.ramp, 0, 'ramp', 0),
    dataParent: values['data-parent'] ?? tmpdir(),
    deviceParent: values['device-parent'] ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir()),
    json: values.json,
    keepData: values['keep-data'] ?? false,
    serverNodeArgs: values['server-node-arg'] ?? [],
    clientTimeoutS: Math.round(numberOption(values['client-timeout'], 120, 'client-timeout', 1)),
  };
}

// ---------------------------------------------------------------- paths and tools

const DIST_BENCH = dirname(fileURLToPath(import.meta.url));
const CLIENTS_SCRIPT = join(DIST_BENCH, 'servers', 'install-coap-clients.js');
const ENDPOINT_PREFIX = 'bench-inst-';
/** Block size on both sides: Depot's device downloader asks for 1024-byte Block2 blocks and its push uses Block1 SZX 6 (1024). */
const BLOCK_SIZE = 1024;
const TARGET_RATIO = 1.5;


// ---------------------------------------------------------------- results

interface RunResult {
  peer: Peer;
  method: Method;
  devices: number;
  ok: number;
  failed: number;
  /** Not ended within the bound. */
  unfinished: number;
  /** Depot: first POST of a job to the last job's finished_at; libcoap: the gated clients released to the last one exited. */
  totalMs: number | undefined;
  /** First POST (Depot) or the release (libcoap) to the last *successful* transfer's end: the time compared. */
  lastOkMs: number | undefined;
  /** Depot: first `downloading` to last `delivered` transition (the bytes moving); libcoap: = totalMs. */
  transferMs: number | undefined;
  /** Per device: Depot `downloading` → `delivered`; libcoap release → exit. */
  perTransferP50Ms: number | undefined;
  perTransferP95Ms: number | undefined;
  /** Depot: time to create the N jobs through the API (inside totalMs); libcoap: time to create the N gated clients (before the clock). */
  startMs: number | undefined;
  cpu: CpuWindow | undefined;
  rssBeforeKiB: number | undefined;
  rssPeakKiB: number | undefined;
  rssEndKiB: number | undefined;
  loadRssPeakKiB: number | undefined;
  /** Depot: V8 heap in use after GC (MB, --trace-gc): before the jobs, highest during, at the end. */
  heapMB: { before: number | undefined; peak: number | undefined; end: number | undefined } | undefined;
  drops: { server: number | undefined; machine: number | undefined };
  /** Depot: jobs that needed more than one attempt. */
  retries: number | undefined;
  failures: string[];
  error: string | undefined;
}

function emptyResult(peer: Peer, method: Method, devices: number): RunResult {
  return {
    peer, method, devices, ok: 0, failed: 0, unfinished: devices, totalMs: undefined, lastOkMs: undefined, transferMs: undefined, perTransferP50Ms: undefined, perTransferP95Ms: undefined,
    startMs: undefined, cpu: undefined, rssBeforeKiB: undefined, rssPeakKiB: undefined, rssEndKiB: undefined, loadRssPeakKiB: undefined, heapMB: undefined,
    drops: { server: undefined, machine: undefined }, retries: undefined, failures: [], error: undefined,
  };
}

const quantile = (sorted: number[], p: number): number | undefined => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : undefined);

// ---------------------------------------------------------------- Depot

const ENDED = `('succeeded', 'failed', 'cancelled')`;

async function runDepot(o: BenchOptions, method: Method, n: number, pkg: BenchPackage): Promise<RunResult> {
  const result = emptyResult('depot', method, n);
  const tag = `[depot ${method} N=${n}]`;
  const dataDir = tempDir(o.dataParent, 'depot-bench-install-');
  const deviceDir = tempDir(o.deviceParent, 'depot-bench-install-devices-');
  let server: DepotServer | undefined;
  let sim: Tracked | undefined;
  let rss: ReturnType<typeof rssSampler> | undefined;
  let simRss: ReturnType<typeof rssSampler> | undefined;
  try {
    server = await startDepot(dataDir, o.serverNodeArgs);
    const upload = await api(server, 'POST', '/packages', pkg.bytes);
    const record = upload.json as { sha256?: string };
    if (upload.status !== 201 || record.sha256 !== pkg.sha256) throw new Error(`package upload: HTTP ${upload.status} ${JSON.stringify(upload.json)}`);

    const profileFile = join(deviceDir, 'profile.json');
    writeFileSync(profileFile, JSON.stringify(installProfile(pkg, n)));
    const ramp = o.rampMs ?? (o.rampMsPerDevice ?? 5) * n;
    const simArgs = ['sim', '--server', server.coapUri, '--count', String(n), '--profile', profileFile, '--data-dir', join(deviceDir, 'devices'), '--endpoint-prefix', ENDPOINT_PREFIX, '--ramp', String(ramp)];
    const [command, args] = pinned(0, process.execPath, [DEPOT_MAIN, ...simArgs]);
    sim = track(spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] }), 'depot sim');
    log(`${tag} depot serve pid ${server.pid} at ${server.coapUri}; package ${pkg.sha256.slice(0, 12)} uploaded; depot sim pid ${sim.child.pid} starting ${n} devices over ${ramp} ms`);

    // Every device registered (the server's store says so).
    const registerBound = performance.now() + 120_000 + ramp;
    for (;;) {
      const count = withStore(dataDir, (db) => (db.prepare('SELECT count(*) AS n FROM registrations').get() as { n: number }).n) ?? 0;
      if (count >= n) break;
      if (sim.child.exitCode !== null) throw new Error(`depot sim exited:\n${sim.output().slice(-4000)}`);
      if (performance.now() > registerBound) throw new Error(`only ${count}/${n} devices registered:\n${sim.output().slice(-4000)}`);
      await sleep(250);
    }
    // Let the registrations' follow-ups (the server's Read of /3/0, store writes) settle.
    await sleep(2000);
    result.rssBeforeKiB = memoryKiB(server.pid)?.rss;
    const heapBefore = server.heap.last;
    server.resetHeapPeak();
    rss = rssSampler(server.pid);
    simRss = rssSampler(sim.child.pid!, 250);
    const drops0 = udpSocketDrops(server.pid);
    const machineDrops0 = udpReceiveBufferErrors();
    log(`${tag} ${n} devices registered; server RSS ${fmtMiB(result.rssBeforeKiB)}; creating ${n} ${method} jobs at once`);

    const cpu0 = markCpu(server.pid, sim.child.pid!, false);
    const t0 = Date.now();
    const created = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const endpoint = simulatedEndpointName(ENDPOINT_PREFIX, i + 1, n);
        try {
          const r = await api(server!, 'POST', `/devices/${encodeURIComponent(endpoint)}/installs`, { package: pkg.sha256, method });
          if (r.status !== 201) return { error: `${endpoint}: HTTP ${r.status} ${JSON.stringify(r.json).slice(0, 200)}` };
          return { id: (r.json as { id: string }).id };
        } catch (error) {
          return { error: `${endpoint}: ${(error as Error).message}` };
        }
      }),
    );
    result.startMs = Date.now() - t0;
    const ids = created.flatMap((c) => ('id' in c && c.id ? [c.id] : []));
    for (const c of created) if ('error' in c && c.error && result.failures.length < 5) result.failures.push(`create: ${c.error}`);
    log(`${tag} ${ids.length}/${n} jobs created in ${(result.startMs / 1000).toFixed(2)} s`);

    // Until every job has ended (the store, read-only, every 250 ms).
    const bound = performance.now() + o.timeoutS * 1000;
    let lastLog = performance.now();
    let ended = 0;
    for (;;) {
      ended = withStore(dataDir, (db) => (db.prepare(`SELECT count(*) AS n FROM install_jobs WHERE state IN ${ENDED}`).get() as { n: number }).n) ?? ended;
      if (ended >= ids.length) break;
      if (server.tracked.child.exitCode !== null || server.tracked.child.signalCode !== null) {
        const tail = server.tracked.output().split('\n').filter((l) => !GC_LINE.test(l)).slice(-40).join('\n');
        const outside = server.tracked.output().includes('depot: shutting down') ? ' after a SIGINT/SIGTERM from outside the benchmark ("depot: shutting down")' : '';
        throw new Error(`depot serve exited (${server.tracked.child.exitCode ?? server.tracked.child.signalCode})${outside} with ${ended}/${ids.length} jobs ended; its output (GC lines left out):\n${tail}`);
      }
      if (sim.child.exitCode !== null || sim.child.signalCode !== null) throw new Error(`depot sim exited (${sim.child.exitCode ?? sim.child.signalCode}) with ${ended}/${ids.length} jobs ended:\n${sim.output().slice(-4000)}`);
      if (performance.now() > bound) {
        log(`${tag} TIMEOUT: ${ended}/${ids.length} jobs ended within ${o.timeoutS} s`);
        break;
      }
      if (performance.now() - lastLog > 5000) {
        lastLog = performance.now();
        const states = withStore(dataDir, (db) => db.prepare('SELECT state, count(*) AS n FROM install_jobs GROUP BY state').all() as { state: string; n: number }[]) ?? [];
        log(`${tag} ${((Date.now() - t0) / 1000).toFixed(0)} s: ${states.map((s) => `${s.state} ${s.n}`).join(', ')}; server RSS ${fmtMiB(memoryKiB(server.pid)?.rss)}`);
      }
      await sleep(250);
    }
    const cpu1 = markCpu(server.pid, sim.child.pid!, false);
    result.cpu = cpuWindow(cpu0, cpu1);
    rss.stop();
    simRss.stop();
    result.rssPeakKiB = rss.peak();
    result.rssEndKiB = memoryKiB(server.pid)?.rss;
    result.loadRssPeakKiB = simRss.peak();
    await sleep(200); // --trace-gc lines arrive through a pipe
    result.heapMB = { before: heapBefore, peak: server.heap.peak, end: server.heap.last };
    const drops1 = udpSocketDrops(server.pid);
    const machineDrops1 = udpReceiveBufferErrors();
    result.drops = {
      server: drops0 === undefined || drops1 === undefined ? undefined : drops1 - drops0,
      machine: machineDrops0 === undefined || machineDrops1 === undefined ? undefined : machineDrops1 - machineDrops0,
    };

    // The outcome, from the store (the server's own timestamps), then a check through the API.
    withStore(dataDir, (db) => {
      const states = db.prepare('SELECT state, count(*) AS n FROM install_jobs GROUP BY state').all() as { state: string; n: number }[];
      const count = (s: string): number => states.find((x) => x.state === s)?.n ?? 0;
      result.ok = count('succeeded');
      result.failed = count('failed') + count('cancelled') + (n - ids.length);
      result.unfinished = ids.length - result.ok - count('failed') - count('cancelled');
      const last = (db.prepare(`SELECT max(finished_at) AS t FROM install_jobs WHERE state IN ${ENDED}`).get() as { t: number | null }).t;
      result.totalMs = last === null ? undefined : last - t0;
      if (result.unfinished > 0) result.totalMs = Date.now() - t0;
      const lastOk = (db.prepare(`SELECT max(finished_at) AS t FROM install_jobs WHERE state = 'succeeded'`).get() as { t: number | null }).t;
      result.lastOkMs = lastOk === null ? undefined : lastOk - t0;
      result.retries = (db.prepare('SELECT count(*) AS n FROM install_jobs WHERE attempts > 1').get() as { n: number }).n;
      const spans = db
        .prepare(
          `SELECT min(CASE WHEN to_state = 'downloading' THEN at END) AS start, max(CASE WHEN to_state = 'delivered' THEN at END) AS done
           FROM install_transitions GROUP BY job_id`,
        )
        .all() as { start: number | null; done: number | null }[];
      const starts = spans.flatMap((s) => (s.start === null ? [] : [s.start]));
      const dones = spans.flatMap((s) => (s.done === null ? [] : [s.done]));
      if (starts.length && dones.length) result.transferMs = Math.max(...dones) - Math.min(...starts);
      const per = spans.flatMap((s) => (s.start !== null && s.done !== null ? [s.done - s.start] : [])).sort((a, b) => a - b);
      result.perTransferP50Ms = quantile(per, 0.5);
      result.perTransferP95Ms = quantile(per, 0.95);
      const messages = db.prepare(`SELECT coalesce(result_name, '') AS r, coalesce(message, '') AS m, state, count(*) AS n FROM install_jobs WHERE state != 'succeeded' GROUP BY 1, 2, 3 ORDER BY n DESC LIMIT 5`).all() as { r: string; m: string; state: string; n: number }[];
      for (const m of messages) result.failures.push(`${m.n} × ${m.state}${m.r ? ` (${m.r})` : ''}: ${m.m}`);
    });
    // The API agrees (one job, and the first unsuccessful one if any).
    if (ids[0]) {
      const first = await api(server, 'GET', `/installs/${ids[0]}`);
      const view = first.json as { state?: string };
      log(`${tag} GET /api/v1/installs/${ids[0]}: HTTP ${first.status}, state ${view.state ?? '?'}`);
    }
    log(
      `${tag} ${result.ok} succeeded, ${result.failed} failed, ${result.unfinished} unfinished in ${fmtS(result.totalMs)} (transfers ${fmtS(result.transferMs)}); ` +
        `server CPU ${fmtCpuS(result.cpu.serverS)}, sim CPU ${fmtCpuS(result.cpu.loadS)}, foreign ${fmtCpuS(result.cpu.foreignS)}; server RSS ${fmtMiB(result.rssBeforeKiB)} → peak ${fmtMiB(result.rssPeakKiB)}, end ${fmtMiB(result.rssEndKiB)}`,
    );
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    log(`${tag} FAILED: ${result.error}`);
  } finally {
    rss?.stop();
    simRss?.stop();
    if (sim) await stopChild(sim, 10_000);
    if (server) await stopChild(server.tracked, 10_000);
    dropDir(dataDir);
    dropDir(deviceDir);
  }
  return result;
}

// ---------------------------------------------------------------- libcoap

async function runLibcoap(o: BenchOptions, method: Method, n: number, pkg: BenchPackage, pkgFile: string, tools: { server: string; client: string }): Promise<RunResult> {
  const result = emptyResult('libcoap', method, n);
  const tag = `[libcoap ${method} N=${n}]`;
  const outDir = tempDir(o.deviceParent, 'depot-bench-install-libcoap-');
  let server: Tracked | undefined;
  let clients: Tracked | undefined;
  let rss: ReturnType<typeof rssSampler> | undefined;
  try {
    const port = await freeUdpPort();
    // -d 4: dynamic resources (created by PUT, held in memory); the package is PUT once to /pkg below.
    const [command, args] = pinned(1, tools.server, ['-A', '127.0.0.1', '-p', String(port), '-d', '4']);
    server = track(spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] }), 'coap-server-notls');
    const pid = server.child.pid!;
    const uri = `coap://127.0.0.1:${port}/pkg`;
    // Set-up, not measured: PUT the package (creates /pkg), GET it back and compare.
    let ready = false;
    for (let i = 0; i < 20 && !ready; i++) {
      await sleep(100);
      const put = spawnSync(tools.client, ['-m', 'put', '-b', String(BLOCK_SIZE), '-B', '10', '-f', pkgFile, uri], { encoding: 'utf8' });
      ready = put.status === 0 && (put.stdout + put.stderr).trim() === '';
    }
    if (!ready) throw new Error(`coap-server-notls did not take the package at ${uri}:\n${server.output()}`);
    const check = join(outDir, 'check.bin');
    spawnSync(tools.client, ['-m', 'get', '-b', String(BLOCK_SIZE), '-B', '10', '-o', check, uri]);
    if (!existsSync(check) || !readFileSync(check).equals(pkg.bytes)) throw new Error(`GET ${uri} did not return the package`);
    rmSync(check);

    const config: InstallClientsConfig = { coapClient: tools.client, uri, method, file: pkgFile, sha256: pkg.sha256, count: n, blockSize: BLOCK_SIZE, timeoutS: o.clientTimeoutS, outDir };
    const [cCommand, cArgs] = pinned(0, process.execPath, [CLIENTS_SCRIPT, JSON.stringify(config)]);
    clients = track(spawn(cCommand, cArgs, { stdio: ['pipe', 'pipe', 'pipe'] }), 'coap clients');
    await waitLine(clients, 'coap clients', 180_000, (line) => (line.includes('"type":"ready"') ? true : undefined));
    await sleep(1000);
    result.rssBeforeKiB = memoryKiB(pid)?.rss;
    rss = rssSampler(pid);
    const drops0 = udpSocketDrops(pid);
    const machineDrops0 = udpReceiveBufferErrors();
    log(`${tag} coap-server-notls pid ${pid} at ${uri}, RSS ${fmtMiB(result.rssBeforeKiB)}; starting ${n} coap-client-notls ${method === 'pull' ? 'GET' : 'PUT'} at once`);
    const cpu0 = markCpu(pid, clients.child.pid!, true);
    const done = waitLine(clients, 'coap clients', (o.timeoutS + 60) * 1000, (line) => (line.includes('"type":"done"') ? (JSON.parse(line) as InstallClientsResult) : undefined));
    clients.child.stdin!.write('go\n');
    const r = await done;
    // The clients' parent has reaped every client: its cutime/cstime hold their CPU.
    const cpu1 = markCpu(pid, clients.child.pid!, true);
    result.cpu = cpuWindow(cpu0, cpu1);
    rss.stop();
    result.rssPeakKiB = rss.peak();
    result.rssEndKiB = memoryKiB(pid)?.rss;
    const drops1 = udpSocketDrops(pid);
    const machineDrops1 = udpReceiveBufferErrors();
    result.drops = {
      server: drops0 === undefined || drops1 === undefined ? undefined : drops1 - drops0,
      machine: machineDrops0 === undefined || machineDrops1 === undefined ? undefined : machineDrops1 - machineDrops0,
    };
    result.ok = r.ok;
    result.failed = r.failed;
    result.unfinished = 0;
    // A client that never finishes waits for its -B bound: the time is to the last successful
    // transfer, and the failures are counted (like Depot's failed jobs).
    result.totalMs = r.elapsedMs;
    result.lastOkMs = r.ok > 0 ? r.lastOkMs : undefined;
    result.transferMs = result.lastOkMs;
    if (r.failed > 0) result.failures.push(`${r.failed} transfers failed; the last client exited after ${fmtS(r.elapsedMs)}`);
    result.startMs = r.spawnMs;
    result.perTransferP50Ms = r.p50Ms;
    result.perTransferP95Ms = r.p95Ms;
    result.failures.push(...r.errors);
    log(
      `${tag} ${r.ok} ok, ${r.failed} failed in ${fmtS(r.elapsedMs)} (clients created beforehand in ${fmtS(r.spawnMs)}); server CPU ${fmtCpuS(result.cpu.serverS)}, clients CPU ${fmtCpuS(result.cpu.loadS)}, foreign ${fmtCpuS(result.cpu.foreignS)}; ` +
        `server RSS ${fmtMiB(result.rssBeforeKiB)} → peak ${fmtMiB(result.rssPeakKiB)}, end ${fmtMiB(result.rssEndKiB)}`,
    );
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    log(`${tag} FAILED: ${result.error}`);
  } finally {
    rss?.stop();
    if (clients) await stopChild(clients, 5000);
    if (server) await stopChild(server, 5000);
    dropDir(outDir);
  }
  return result;
}

// ---------------------------------------------------------------- report

const fmtS = (ms: number | undefined): string => (ms === undefined ? '?' : `${(ms / 1000).toFixed(2)} s`);
const fmtCpuS = (s: number | undefined): string => (s === undefined ? '?' : `${s.toFixed(2)} s`);
const fmtMiB = (kib: number | undefined): string => (kib === undefined ? '?' : `${(kib / 1024).toFixed(1)} MiB`);
const fmtKiB = (kib: number | undefined): string => (kib === undefined ? '?' : `${kib.toFixed(1)} KiB`);
const fmtX = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '?' : `${x.toFixed(2)}x`);

function pad(cells: string[][]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells.map((row) => '| ' + row.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ') + ' |').join('\n');
}

const perDevice = (r: RunResult, after: number | undefined): number | undefined => (after === undefined || r.rssBeforeKiB === undefined ? undefined : (after - r.rssBeforeKiB) / r.devices);

function report(o: BenchOptions, pkg: BenchPackage, results: RunResult[]): string {
  const lines: string[] = [];
  lines.push(
    `Package ${pkg.bytes.length.toLocaleString('en-US')} bytes (${Math.ceil(pkg.bytes.length / BLOCK_SIZE)} blocks of ${BLOCK_SIZE}); all N transfers started at once; ` +
      (PINNING ? 'servers on CPU 1, devices/clients on CPU 0.' : 'NOT pinned (no taskset or < 2 CPUs): not comparable with pinned runs.'),
  );
  lines.push('');
  const header = ['N', 'method', 'peer', 'ok/failed/unfinished', 'total time', 'to last success', 'transfers', 'per transfer p50/p95', 'server CPU', 'CPU/transfer', 'server RSS before/peak/end', 'RSS growth/device peak/end', 'load CPU', 'foreign (softirq)', 'udp drops srv/all'];
  const rows = results.map((r) => {
    const c = r.cpu;
    return [
      String(r.devices),
      r.method,
      r.peer,
      r.error && r.ok === 0 ? `error` : `${r.ok}/${r.failed}/${r.unfinished}`,
      fmtS(r.totalMs),
      r.ok === r.devices ? '=' : fmtS(r.lastOkMs),
      r.peer === 'depot' ? fmtS(r.transferMs) : '-',
      `${fmtS(r.perTransferP50Ms)} / ${fmtS(r.perTransferP95Ms)}`,
      c?.serverS === undefined ? '?' : `${c.serverS.toFixed(2)} s (${Math.round((100 * c.serverS) / c.wallS)}%)`,
      c?.serverS === undefined ? '?' : `${((1000 * c.serverS) / r.devices).toFixed(1)} ms`,
      `${fmtMiB(r.rssBeforeKiB)} / ${fmtMiB(r.rssPeakKiB)} / ${fmtMiB(r.rssEndKiB)}`,
      `${fmtKiB(perDevice(r, r.rssPeakKiB))} / ${fmtKiB(perDevice(r, r.rssEndKiB))}`,
      c?.loadS === undefined ? '?' : `${Math.round((100 * c.loadS) / c.wallS)}%`,
      c === undefined ? '?' : `${Math.round((100 * c.foreignS) / c.wallS)}% (${Math.round((100 * c.softirqS) / c.wallS)}%)`,
      `${r.drops.server ?? '?'} / ${r.drops.machine ?? '?'}`,
    ];
  });
  lines.push(pad([header, header.map((h) => '-'.repeat(h.length)), ...rows]));
  lines.push('');
  lines.push(`Depot / libcoap (target: total time <= ${TARGET_RATIO}x libcoap's):`);
  const ratioHeader = ['N', 'method', 'time ratio (to last success)', 'time ratio (Depot transfers only)', 'server CPU ratio', 'CPU/transfer depot vs libcoap', 'RSS growth/device (peak) depot vs libcoap', 'target'];
  const ratioRows: string[][] = [];
  for (const n of o.devices) {
    for (const method of o.methods) {
      const d = results.find((r) => r.peer === 'depot' && r.method === method && r.devices === n);
      const l = results.find((r) => r.peer === 'libcoap' && r.method === method && r.devices === n);
      if (!d || !l) continue;
      const ratio = d.lastOkMs !== undefined && l.lastOkMs ? d.lastOkMs / l.lastOkMs : undefined;
      const complete = d.ok === n && l.ok === n;
      ratioRows.push([
        String(n),
        method,
        fmtX(ratio),
        fmtX(d.transferMs !== undefined && l.lastOkMs ? d.transferMs / l.lastOkMs : undefined),
        fmtX(d.cpu?.serverS !== undefined && l.cpu?.serverS ? d.cpu.serverS / l.cpu.serverS : undefined),
        `${d.cpu?.serverS === undefined ? '?' : ((1000 * d.cpu.serverS) / n).toFixed(1)} ms vs ${l.cpu?.serverS === undefined ? '?' : ((1000 * l.cpu.serverS) / n).toFixed(1)} ms`,
        `${fmtKiB(perDevice(d, d.rssPeakKiB))} vs ${fmtKiB(perDevice(l, l.rssPeakKiB))}`,
        `${ratio !== undefined && ratio <= TARGET_RATIO ? 'time PASS' : 'time FAIL'}${complete ? '' : ` (not every transfer succeeded: depot ${d.ok}/${n}, libcoap ${l.ok}/${n})`}`,
      ]);
    }
  }
  if (ratioRows.length) lines.push(pad([ratioHeader, ratioHeader.map((h) => '-'.repeat(h.length)), ...ratioRows]));
  // Memory against N: growth per device should not depend on N (a per-transfer constant).
  if (o.devices.length > 1) {
    lines.push('');
    lines.push('Server RSS growth per device (peak − before) / N, by N — constant when memory is a per-transfer constant:');
    for (const peer of o.peers) {
      for (const method of o.methods) {
        const cells = o.devices.map((n) => {
          const r = results.find((x) => x.peer === peer && x.method === method && x.devices === n);
          return `N=${n}: ${r ? fmtKiB(perDevice(r, r.rssPeakKiB)) : '-'}`;
        });
        lines.push(`  ${peer} ${method}: ${cells.join(', ')}`);
      }
    }
  }
  lines.push('');
  lines.push('The time compared is to the last successful transfer (failures are counted beside it); total time is until every transfer ended or the bound.');
  lines.push('total time: Depot = first job POST to the last job finished (store timestamps): API, Create /9 instance, Package URI or Package write, transfer,');
  lines.push('  Execute Install, install; libcoap = the N clients released at once (created beforehand, held at a FIFO gate) to the last exit.');
  lines.push('transfers: Depot = first `downloading` to last `delivered` transition. load CPU: the simulator, or the clients with their parent; foreign = machine − server − load − driver;');
  lines.push("  (softirq) = the machine's softirq part of it: loopback UDP is processed there, so much of it is this run's own packets, not other work.");
  for (const r of results) {
    const c = r.cpu;
    lines.push(`  ${r.peer} ${r.method} N=${r.devices}: start ${fmtS(r.startMs)} (${r.peer === 'depot' ? 'creating the jobs, inside total time' : 'creating the gated client processes, before the clock'})` + (r.retries ? `, ${r.retries} jobs retried` : '') + (r.loadRssPeakKiB ? `, simulator RSS peak ${fmtMiB(r.loadRssPeakKiB)}` : '') + (c ? `, window ${c.wallS.toFixed(2)} s` : ''));
    if (r.heapMB) {
      const h = r.heapMB;
      const per = h.before !== undefined && h.peak !== undefined ? ` (${(((h.peak - h.before) * 1024) / r.devices).toFixed(1)} KiB/device at the peak)` : '';
      lines.push(`    server V8 heap after GC: before ${h.before?.toFixed(1) ?? '?'} MB, peak ${h.peak?.toFixed(1) ?? '?'} MB${per}, end ${h.end?.toFixed(1) ?? '?'} MB`);
    }
    if (r.error) lines.push(`    ERROR: ${r.error.split('\n')[0]}`);
    for (const f of r.failures) lines.push(`    ${f}`);
    if (c && (c.foreignS - c.softirqS) / c.wallS > 0.25) lines.push(`    WARNING: other work took ${Math.round((100 * (c.foreignS - c.softirqS)) / c.wallS)}% of a core (besides softirq) during the window; rerun on a quiet machine before trusting it.`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  keepTempDirs(o.keepData);
  for (const file of [DEPOT_MAIN, CLIENTS_SCRIPT]) if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build first`);
  const tools = { server: which('coap-server-notls'), client: which('coap-client-notls') };
  if (o.peers.includes('libcoap') && (!tools.server || !tools.client)) throw new Error('coap-server-notls / coap-client-notls not found (Debian libcoap3-bin; scripts/ensure-peers.sh)');
  const limit = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
  const most = Math.max(...o.devices);
  if (Number.isFinite(limit) && limit < 2 * most + 200) throw new Error(`ulimit -n is ${limit}: the simulator needs up to two sockets per device (${most}) and some; raise it`);
  log(PINNING ? 'pinning: servers on CPU 1 (taskset -c 1), simulator / clients on CPU 0 (taskset -c 0)' : 'pinning: off (no taskset or fewer than 2 CPUs): numbers are not comparable with pinned runs');
  log(`node ${process.version}, ${availableParallelism()} CPUs; N = ${o.devices.join(', ')}; ${o.methods.join(', ')}; ${o.peers.join(', ')}`);

  const pkg = makeBenchPackage(o.size);
  const pkgDir = tempDir(tmpdir(), 'depot-bench-install-pkg-');
  const pkgFile = join(pkgDir, 'package.dpkg');
  writeFileSync(pkgFile, pkg.bytes);
  log(`package: ${pkg.bytes.length} bytes, sha256 ${pkg.sha256}`);

  const results: RunResult[] = [];
  for (const n of o.devices) {
    for (const method of o.methods) {
      for (const peer of o.peers) {
        results.push(peer === 'depot' ? await runDepot(o, method, n, pkg) : await runLibcoap(o, method, n, pkg, pkgFile, { server: tools.server!, client: tools.client! }));
      }
    }
  }
  process.stdout.write('\n' + report(o, pkg, results) + '\n');
  if (o.json) {
    writeFileSync(o.json, JSON.stringify({ date: new Date().toISOString(), node: process.version, pinning: PINNING, options: o, packageBytes: pkg.bytes.length, results }, null, 2) + '\n');
    log(`wrote ${o.json}`);
  }
  if (results.some((r) => r.error)) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/install: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
