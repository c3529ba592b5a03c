/**
 * DTLS 1.2 server benchmark: full PSK handshakes per second and memory per idle session, Depot's
 * server (CoapServer on DtlsTransport) against libcoap's coap-server-openssl, both driven in ONE
 * run by the same load generator (Depot's sans-IO client, bench/servers/dtls-load.ts) over loopback.
 * See bench/README.md.
 *
 *   npm run bench:dtls                 # 3 rounds: 5 s of handshakes (+2 s warm-up) and 2 000 idle sessions per server
 *   npm run bench:dtls -- --quick      # 1 round, 2 s, 500 sessions: a smoke check
 */

import { createSocket } from 'node:dgram';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BENCH_PSK_KEY_TEXT, BENCH_SUITE_NAME, HandshakeSlot } from './servers/dtls-handshaker.js';
import { cpuSeconds, machineBusySeconds, PINNING, pinned, which } from './support/proc.js';
import { hasExited, launch, listOption, numberOption, stopChild, type Tracked } from './support/children.js';

// ---------------------------------------------------------------- options

const USAGE = `usage: node dist/bench/dtls.js [options]
  --quick               1 round, 2 s of handshakes after 1 s warm-up, 500 sessions (a smoke check)
  --rounds <n>          rounds (default 3); the tables show the median
  --duration <s>        measured seconds of handshakes per run (default 5)
  --warmup <s>          warm-up seconds per run, not counted (default 2)
  --concurrency <n>     handshakes in flight, each from its own UDP socket (default 64)
  --sessions <n>        idle sessions established for the memory measurement (default 2000)
  --servers <list>      subset of depot,openssl (default both)
  --json <file>         also write every measurement as JSON
  -h, --help`;

const SERVER_IDS = ['depot', 'openssl'] as const;
type ServerId = (typeof SERVER_IDS)[number];

interface BenchOptions {
  rounds: number;
  duration: number;
  warmup: number;
  concurrency: number;
  sessions: number;
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
      sessions: { type: 'string' },
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
    concurrency: Math.round(numberOption(values.concurrency, 64, 'concurrency')),
    sessions: Math.round(numberOption(values.sessions, quick ? 500 : 2000, 'sessions')),
    servers: listOption(values.servers, SERVER_IDS, 'servers'),
    json: values.json,
  };
}

// ---------------------------------------------------------------- paths and tools

const DIST_BENCH = dirname(fileURLToPath(import.meta.url));
const LOAD_SCRIPT = join(DIST_BENCH, 'servers', 'dtls-load.js');
const HOST = '127.0.0.1';
/** Longest wait for V8 to shrink the young generation back before a memory reading (it takes ~10 s idle). */
const YOUNG_SETTLE_MS = 30_000;
const YOUNG_STABLE_MS = 12_000;
/** The load generator counts as saturated (so it, not the server, may set the pace) above this CPU. */
const CLIENT_SATURATED_PCT = 90;

/** Resident set size in bytes, from /proc (undefined if it is gone). */
function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function bindable(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  const ok = await new Promise<boolean>((resolve) => {
    socket.once('error', () => resolve(false));
    socket.bind(port, HOST, () => resolve(true));
  });
  if (ok) await new Promise<void>((resolve) => socket.close(() => resolve()));
  return ok;
}

/** A free UDP port, or (pair) a port P with P+1 also free: coap-server-openssl -p P listens for DTLS on P+1. */
async function freeUdpPort(pair = false): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, HOST, () => resolve()));
    const port = socket.address().port;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    if (!pair) return port;
    if (port < 65535 && (await bindable(port + 1))) return port;
  }
  throw new Error('no free pair of consecutive UDP ports');
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- processes

const exitReport = (p: Tracked): string | undefined => (hasExited(p.child) ? `exited (${p.child.exitCode ?? p.child.signalCode}):\n${p.output()}` : undefined);

/** Waits (bounded) until the output matches; throws with the output if the process exits first. */
async function waitForOutput(name: string, p: Tracked, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = pattern.exec(p.output());
    if (m) return m;
    if (hasExited(p.child)) throw new Error(`${name} exited (${p.child.exitCode ?? p.child.signalCode}) before printing ${String(pattern)}:\n${p.output()}`);
    if (Date.now() > deadline) throw new Error(`${name} did not print ${String(pattern)} within ${timeoutMs / 1000} s:\n${p.output()}`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------- servers

interface ServerMemory {
  rss: number;
  /** Depot only: V8 heap in use after a full GC. */
  heapUsed?: number;
  /** Depot only: reserved size of V8's young generation. */
  young?: number;
  /** Depot only: seconds waited for the young generation to shrink back (see settle). */
  settleSeconds?: number;
}

interface RunningServer {
  readonly pid: number;
  /** The port that speaks DTLS. */
  readonly port: number;
  /** Undefined while the process runs; its exit status and output once it has exited. */
  exited(): string | undefined;
  /**
   * Resident memory of the idle server. Depot: first waits (up to YOUNG_SETTLE_MS) until V8 has
   * given back the young generation it grew during a burst of handshakes — it does so after a few
   * idle seconds; that transient space belongs to no session — then forces a full GC.
   */
  memory(): Promise<ServerMemory>;
  stop(): Promise<void>;
}

interface ServerSpec {
  id: ServerId;
  label: string;
  start(): Promise<RunningServer>;
}

/** Depot: bench/servers/dtls-depot.js (compiled), pinned, with --expose-gc; memory over IPC after a full GC. */
async function startDepot(): Promise<RunningServer> {
  const port = await freeUdpPort();
  const [command, args] = pinned(1, process.execPath, ['--expose-gc', join(DIST_BENCH, 'servers', 'dtls-depot.js'), String(port)]);
  const p = launch('depot', command, args, true);
  try {
    await waitForOutput('dtls-depot', p, /^ready \d+$/m, 15_000);
  } catch (error) {
    await stopChild(p);
    throw error;
  }
  const ask = <T>(message: string, accept: (m: unknown) => m is T): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        p.child.off('message', onMessage);
        reject(new Error(`dtls-depot did not answer "${message}" within 10 s`));
      }, 10_000);
      const onMessage = (m: unknown): void => {
        if (!accept(m)) return;
        clearTimeout(timer);
        p.child.off('message', onMessage);
        resolve(m);
      };
      p.child.on('message', onMessage);
      p.child.send(message);
    });
  type Young = { young: number; youngAtStart: number };
  type Memory = { rss: number; heapUsed: number; young: number; gc: boolean };
  const isYoung = (m: unknown): m is Young => typeof m === 'object' && m !== null && 'youngAtStart' in m;
  const isMemory = (m: unknown): m is Memory => typeof m === 'object' && m !== null && 'rss' in m;
  const memory = async (): Promise<ServerMemory> => {
    const started = performance.now();
    let last = -1;
    let stableSince = started;
    for (;;) {
      const y = await ask('young', isYoung);
      const now = performance.now();
      if (y.young !== last) stableSince = now;
      last = y.young;
      // Back to its initial size, or no change for a while (V8 may keep it a little larger).
      if (y.young <= y.youngAtStart || now - stableSince > YOUNG_STABLE_MS || now - started > YOUNG_SETTLE_MS) break;
      await sleep(500);
    }
    const settleSeconds = (performance.now() - started) / 1000;
    const m = await ask('memory', isMemory);
    if (!m.gc) throw new Error('dtls-depot runs without --expose-gc: heap figures would include garbage');
    return { rss: m.rss, heapUsed: m.heapUsed, young: m.young, settleSeconds };
  };
  return { pid: p.child.pid!, port, exited: () => exitReport(p), memory, stop: () => stopChild(p) };
}

/** libcoap 4.3.1 coap-server-openssl -A 127.0.0.1 -p P -k KEY: plain CoAP on P, DTLS on P+1. */
async function startOpenssl(): Promise<RunningServer> {
  const binary = which('coap-server-openssl');
  if (!binary) throw new Error('coap-server-openssl not found (Debian package libcoap3-bin; see scripts/ensure-peers.sh)');
  const port = await freeUdpPort(true);
  const [command, args] = pinned(1, binary, ['-A', HOST, '-p', String(port), '-k', BENCH_PSK_KEY_TEXT]);
  const p = launch('coap-server-openssl', command, args);
  if (hasExited(p.child)) throw new Error(`coap-server-openssl exited at once:\n${p.output()}`);
  return { pid: p.child.pid!, port: port + 1, exited: () => exitReport(p), memory: () => Promise.resolve({ rss: rssBytes(p.child.pid!) ?? NaN }), stop: () => stopChild(p) };
}

const SPECS: Record<ServerId, ServerSpec> = {
  depot: { id: 'depot', label: 'Depot DtlsTransport + CoapServer', start: startDepot },
  openssl: { id: 'openssl', label: 'libcoap coap-server-openssl', start: startOpenssl },
};

/**
 * Before anything is measured: one handshake must complete against the server's DTLS port (this
 * also waits for it to come up), with the benchmark's suite, as a full handshake.
 */
async function checkHandshakes(spec: ServerSpec, server: RunningServer): Promise<void> {
  const deadline = Date.now() + 10_000;
  let last: unknown;
  while (Date.now() < deadline) {
    const gone = server.exited();
    if (gone !== undefined) throw new Error(`${spec.label} ${gone}`);
    const slot = new HandshakeSlot(HOST, server.port, 200, 2000);
    try {
      const { session } = await slot.handshake();
      if (session.cipherSuite.name !== BENCH_SUITE_NAME || session.resumed) throw new Error(`${spec.label} negotiated ${session.cipherSuite.name}${session.resumed ? ' (resumed)' : ''}, expected a full ${BENCH_SUITE_NAME} handshake`);
      return;
    } catch (error) {
      last = error;
      if (error instanceof Error && error.message.includes('negotiated')) throw error;
      await sleep(100);
    } finally {
      await slot.close();
    }
  }
  throw new Error(`no DTLS handshake with ${spec.label} on ${HOST}:${server.port} within 10 s: ${last instanceof Error ? last.message : String(last)}`);
}

// ---------------------------------------------------------------- measuring

interface RateResult {
  handshakes: number;
  failed: number;
  failures: Record<string, number>;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpuPct: number;
  eventLoopUtilization: number;
}

interface RateMeasurement extends RateResult {
  server: ServerId;
  round: number;
  /** The server's CPU over the measured seconds, % of one core. */
  serverCpu: number | undefined;
  /** Busy CPU of everything else on the machine over the measured seconds, % of one core. */
  foreignCpu: number | undefined;
}

async function measureRate(spec: ServerSpec, server: RunningServer, options: BenchOptions, round: number, warmup: number, duration: number): Promise<RateMeasurement> {
  const [command, args] = pinned(0, process.execPath, [LOAD_SCRIPT, 'rate', String(server.port), String(options.concurrency), String(warmup), String(duration)]);
  const load = launch('dtls-load', command, args);
  // Sample CPU counters when the load generator opens and closes its measured window.
  let start: { server: number | undefined; machine: number; time: number } | undefined;
  let end: typeof start;
  const sample = (): typeof start => ({ server: cpuSeconds(server.pid), machine: machineBusySeconds(), time: performance.now() });
  let seen = '';
  load.child.stdout?.on('data', (d: Buffer) => {
    seen += d.toString();
    if (!start && seen.includes('window start\n')) start = sample();
    if (!end && seen.includes('window end\n')) end = sample();
  });
  const killTimer = setTimeout(() => load.child.kill('SIGKILL'), (warmup + duration + 30) * 1000);
  await load.exited;
  clearTimeout(killTimer);
  const line = /^result (\{.*\})$/m.exec(load.output());
  if (load.child.exitCode !== 0 || !line) throw new Error(`the load generator against ${spec.label} failed (exit ${load.child.exitCode ?? load.child.signalCode}):\n${load.output()}`);
  const gone = server.exited();
  if (gone !== undefined) throw new Error(`${spec.label} ${gone}`);
  const result = JSON.parse(line[1]!) as RateResult;
  let serverCpu: number | undefined;
  let foreignCpu: number | undefined;
  if (start && end && start.server !== undefined && end.server !== undefined) {
    const wall = (end.time - start.time) / 1000;
    serverCpu = (100 * (end.server - start.server)) / wall;
    foreignCpu = (100 * (end.machine - start.machine)) / wall - serverCpu - result.cpuPct;
  }
  return { ...result, server: spec.id, round, serverCpu, foreignCpu };
}

interface MemoryMeasurement {
  server: ServerId;
  round: number;
  sessions: number;
  failed: number;
  before: ServerMemory;
  after: ServerMemory;
  rssPerSession: number;
  /** Depot: RSS per session without the change in V8's young generation (transient, not kept by any session). */
  rssPerSessionOld: number | undefined;
  heapPerSession: number | undefined;
  establishSeconds: number;
}

/** Starts `sessions` idle associations from the load generator; resolves with it still holding them. */
async function establish(server: RunningServer, concurrency: number, count: number): Promise<{ load: Tracked; established: number; failed: number; failures: Record<string, number>; seconds: number }> {
  const [command, args] = pinned(0, process.execPath, [LOAD_SCRIPT, 'sessions', String(server.port), String(concurrency), String(count)]);
  const load = launch('dtls-load', command, args);
  try {
    // Generous but bounded: a handshake gives up after 10 s, so even a stalled run ends.
    const m = await waitForOutput('dtls-load', load, /^established (\{.*\})$/m, 60_000 + count * 20);
    return { load, ...(JSON.parse(m[1]!) as { established: number; failed: number; failures: Record<string, number>; seconds: number }) };
  } catch (error) {
    await stopChild(load);
    throw error;
  }
}

/** On a fresh server: memory after a warm-up, then with `sessions` idle associations open. */
async function measureMemory(spec: ServerSpec, options: BenchOptions, round: number): Promise<MemoryMeasurement> {
  const server = await spec.start();
  try {
    await checkHandshakes(spec, server);
    // Warm-up: a batch of sessions opened and closed (close_notify), so first-use allocations are
    // not counted. Its sockets stay open until the end, so the measured batch never reuses a source
    // port the server has seen: when a close_notify gets lost (many are, when hundreds of sessions
    // close at once), libcoap keeps that session and ignores a new handshake from the same
    // address:port (no RFC 6347 §4.2.8 handling).
    const warm = await establish(server, options.concurrency, Math.min(256, options.sessions));
    try {
      warm.load.child.stdin?.write('close\n');
      await waitForOutput('dtls-load', warm.load, /^closed$/m, 10_000);
      await sleep(500);
      return await measureIdle(spec, server, options, round);
    } finally {
      await stopChild(warm.load);
    }
  } finally {
    await server.stop();
  }
}

/** With the server warmed up: memory before and after `sessions` more idle associations. */
async function measureIdle(spec: ServerSpec, server: RunningServer, options: BenchOptions, round: number): Promise<MemoryMeasurement> {
  const before = await server.memory();
  const run = await establish(server, options.concurrency, options.sessions);
  try {
    await sleep(1000); // let the server go idle (no retransmission or handshake state left)
    const after = await server.memory();
    const n = run.established;
    if (n === 0) throw new Error(`no session could be established with ${spec.label}: ${JSON.stringify(run.failures)}`);
    return {
      server: spec.id,
      round,
      sessions: n,
      failed: run.failed,
      before,
      after,
      rssPerSession: (after.rss - before.rss) / n,
      rssPerSessionOld: after.young !== undefined && before.young !== undefined ? (after.rss - before.rss - (after.young - before.young)) / n : undefined,
      heapPerSession: after.heapUsed !== undefined && before.heapUsed !== undefined ? (after.heapUsed - before.heapUsed) / n : undefined,
      establishSeconds: run.seconds,
    };
  } finally {
    await stopChild(run.load);
  }
}

// ---------------------------------------------------------------- report

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtPct = (n: number | undefined): string => (n === undefined ? '?' : `${Math.round(n)}%`);
const fmtMiB = (bytes: number | undefined): string => (bytes === undefined || Number.isNaN(bytes) ? '?' : `${(bytes / 1048576).toFixed(1)} MiB`);
const fmtBytes = (bytes: number | undefined): string => (bytes === undefined || Number.isNaN(bytes) ? '-' : `${fmtInt(bytes)} B (${(bytes / 1024).toFixed(2)} KiB)`);

function pad(cells: string[][]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells.map((row) => '| ' + row.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ') + ' |').join('\n');
}

function table(header: string[], rows: string[][]): string {
  return pad([header, header.map((h) => '-'.repeat(h.length)), ...rows]);
}

/** Depot: the young generation at each reading and how long it took to shrink back before it. */
function youngNote(m: MemoryMeasurement): string {
  const { before, after } = m;
  if (before.young === undefined || after.young === undefined) return '';
  return `young ${fmtMiB(before.young)} → ${fmtMiB(after.young)} (waited ${(before.settleSeconds ?? 0).toFixed(0)} / ${(after.settleSeconds ?? 0).toFixed(0)} s)`;
}

function report(options: BenchOptions, rates: RateMeasurement[], memories: MemoryMeasurement[]): string {
  const lines: string[] = [];
  const rateOf = (id: ServerId): RateMeasurement[] => rates.filter((r) => r.server === id);
  const memOf = (id: ServerId): MemoryMeasurement[] => memories.filter((m) => m.server === id);
  const med = <T>(items: T[], pick: (t: T) => number | undefined): number | undefined => {
    const values = items.map(pick).filter((v): v is number => v !== undefined && !Number.isNaN(v));
    return values.length ? median(values) : undefined;
  };
  /** Handshakes per second of server CPU: what the server could do on a full core, whatever the client managed. */
  const perCoreSecond = (r: RateMeasurement): number | undefined => (r.serverCpu ? (100 * r.perSecond) / r.serverCpu : undefined);
  const saturated = (id: ServerId): boolean => rateOf(id).some((r) => r.cpuPct >= CLIENT_SATURATED_PCT);

  lines.push(`Full PSK handshakes (${BENCH_SUITE_NAME}, cookie exchange, no resumption, close_notify after each), ${options.concurrency} in flight,`);
  lines.push(`${options.duration} s measured after ${options.warmup} s warm-up; median of ${options.rounds} round(s). Client: Depot's DtlsConnection.client, one process.`);
  lines.push('');
  lines.push(
    table(
      ['server', 'handshakes/s', 'per server core-second', 'p50 / p99 ms', 'server cpu', 'client cpu', 'failed'],
      options.servers.map((id) => {
        const rs = rateOf(id);
        return [
          SPECS[id].label,
          fmtInt(med(rs, (r) => r.perSecond) ?? NaN),
          fmtInt(med(rs, perCoreSecond) ?? NaN),
          `${(med(rs, (r) => r.p50Ms) ?? NaN).toFixed(1)} / ${(med(rs, (r) => r.p99Ms) ?? NaN).toFixed(1)}`,
          fmtPct(med(rs, (r) => r.serverCpu)),
          fmtPct(med(rs, (r) => r.cpuPct)) + (saturated(id) ? ' SATURATED' : ''),
          String(rs.reduce((n, r) => n + r.failed, 0)),
        ];
      }),
    ),
  );
  lines.push('');
  lines.push(`Memory per idle session: ${options.sessions} sessions established (each confirmed by one CoAP ping over it) on a fresh server after a warm-up; median of ${options.rounds} round(s).`);
  lines.push(`Depot is read once idle: after V8 has shrunk its young generation back (it grows under the handshake burst and shrinks after ~10 s idle; at most ${YOUNG_SETTLE_MS / 1000} s waited), then a full GC.`);
  lines.push('');
  lines.push(
    table(
      ['server', 'RSS per session', 'RSS per session without young-generation resizing', 'V8 heap per session', 'RSS before → after', 'sessions'],
      options.servers.map((id) => {
        const ms = memOf(id);
        return [
          SPECS[id].label,
          fmtBytes(med(ms, (m) => m.rssPerSession)),
          fmtBytes(med(ms, (m) => m.rssPerSessionOld)),
          fmtBytes(med(ms, (m) => m.heapPerSession)),
          `${fmtMiB(med(ms, (m) => m.before.rss))} → ${fmtMiB(med(ms, (m) => m.after.rss))}`,
          ms.map((m) => `${m.sessions}${m.failed ? ` (+${m.failed} failed)` : ''}`).join(', '),
        ];
      }),
    ),
  );
  lines.push('');

  if (options.servers.includes('depot') && options.servers.includes('openssl')) {
    const rateD = med(rateOf('depot'), (r) => r.perSecond);
    const rateO = med(rateOf('openssl'), (r) => r.perSecond);
    const memD = med(memOf('depot'), (m) => m.rssPerSession);
    const memO = med(memOf('openssl'), (m) => m.rssPerSession);
    const rateRatio = rateD !== undefined && rateO ? rateD / rateO : undefined;
    const effD = med(rateOf('depot'), perCoreSecond);
    const effO = med(rateOf('openssl'), perCoreSecond);
    const effRatio = effD !== undefined && effO ? effD / effO : undefined;
    const memRatio = memD !== undefined && memO ? memD / memO : undefined;
    // A verdict from a busy machine or a saturated client is not one.
    const doubt = rates.some((r) => r.foreignCpu !== undefined && r.foreignCpu > 25) ? ' (busy machine: unreliable)' : '';
    const rateDoubt = doubt || (saturated('openssl') ? ' (client saturated: upper bound)' : '');
    const verdict = (ok: boolean, note = doubt): string => (ok ? 'met' : 'MISSED') + note;
    lines.push(
      table(
        ['Depot / OpenSSL', 'ratio', 'target', ''],
        [
          ['handshakes/s', rateRatio === undefined ? '-' : `${rateRatio.toFixed(3)}x`, '≥ 0.8x', rateRatio === undefined ? '' : verdict(rateRatio >= 0.8, rateDoubt)],
          ['handshakes per server core-second', effRatio === undefined ? '-' : `${effRatio.toFixed(3)}x`, '(≥ 0.8x)', effRatio === undefined ? '' : verdict(effRatio >= 0.8)],
          ['RSS per idle session', memRatio === undefined ? '-' : `${memRatio.toFixed(3)}x`, '', ''],
          ['Depot RSS per idle session', fmtBytes(memD), '≤ 4 KiB', memD === undefined ? '' : verdict(memD <= 4096, '')],
          ['  without young-generation resizing', fmtBytes(med(memOf('depot'), (m) => m.rssPerSessionOld)), '(≤ 4 KiB)', ''],
          ['Depot V8 heap per idle session', fmtBytes(med(memOf('depot'), (m) => m.heapPerSession)), '(≤ 4 KiB)', ''],
        ],
      ),
    );
    lines.push('');
    if (saturated('openssl') && !saturated('depot')) {
      lines.push(`NOTE: against OpenSSL the load generator was the bottleneck (≥ ${CLIENT_SATURATED_PCT} % of its core): OpenSSL's handshakes/s is a lower bound and the`);
      lines.push(`Depot/OpenSSL handshakes/s ratio an upper bound. "Per server core-second" (handshakes/s ÷ server CPU) does not depend on the client;`);
      lines.push('it assumes the cost per handshake stays the same up to a full core. A faster (C) client is needed to measure OpenSSL\'s real ceiling.');
      lines.push('');
    }
  }

  lines.push('Per round:');
  const rows: string[][] = [];
  for (const r of rates) {
    rows.push([r.server, String(r.round), 'handshakes', fmtInt(r.perSecond), `${r.p50Ms.toFixed(1)}/${r.p99Ms.toFixed(1)} ms`, fmtPct(r.serverCpu), `${fmtPct(r.cpuPct)} (loop ${Math.round(100 * r.eventLoopUtilization)}%)`, fmtPct(r.foreignCpu), `${r.handshakes} ok, ${r.failed} failed`]);
  }
  for (const m of memories) {
    rows.push([m.server, String(m.round), 'memory', `${fmtInt(m.rssPerSession)} B/session`, m.heapPerSession === undefined ? '-' : `heap ${fmtInt(m.heapPerSession)} B/session`, `${fmtMiB(m.before.rss)} → ${fmtMiB(m.after.rss)}`, `${m.establishSeconds.toFixed(1)} s to open`, youngNote(m), `${m.sessions} ok, ${m.failed} failed`]);
  }
  lines.push(table(['server', 'round', 'what', 'result', 'latency / heap', 'server cpu / rss', 'client cpu', 'foreign', 'count'], rows));
  lines.push('');

  for (const id of options.servers) {
    if (saturated(id)) lines.push(`WARNING: the load generator used ≥ ${CLIENT_SATURATED_PCT} % of its core against ${id}: the client, not the server, may set that figure (it is a lower bound for the server).`);
  }
  const failedRuns = rates.filter((r) => r.failed > 0);
  if (failedRuns.length) lines.push(`WARNING: failed handshakes: ${failedRuns.map((r) => `${r.server} round ${r.round}: ${JSON.stringify(r.failures)}`).join('; ')}`);
  const failedSessions = memories.filter((m) => m.failed > 0);
  if (failedSessions.length) lines.push(`WARNING: sessions that could not be established: ${failedSessions.map((m) => `${m.server} round ${m.round}: ${m.failed}`).join('; ')}`);
  const busy = rates.filter((r) => r.foreignCpu !== undefined && r.foreignCpu > 25);
  if (busy.length) lines.push(`WARNING: other work took more than 25 % of a core during ${busy.length} run(s); rerun on a quiet machine before trusting those numbers.`);
  return lines.join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!existsSync(LOAD_SCRIPT)) throw new Error(`${LOAD_SCRIPT} is missing: run "npm run build" first`);
  const log = (text: string): void => void process.stderr.write(text + '\n');
  log(PINNING ? 'pinning: servers on CPU 1 (taskset -c 1), load generator on CPU 0 (taskset -c 0)' : 'pinning: off (no taskset or fewer than 2 CPUs): numbers are not comparable with pinned runs');
  log(`node ${process.version}, ${availableParallelism()} CPUs; servers: ${options.servers.join(', ')}; ${options.concurrency} in flight; ${options.rounds} round(s) × ${options.duration} s (+${options.warmup} s warm-up); ${options.sessions} idle sessions`);

  const rates: RateMeasurement[] = [];
  const memories: MemoryMeasurement[] = [];
  const running = new Map<ServerId, RunningServer>();
  try {
    // Handshake servers start once, are checked, and get a discarded warm-up run.
    for (const id of options.servers) {
      const spec = SPECS[id];
      const server = await spec.start();
      running.set(id, server);
      await checkHandshakes(spec, server);
      const warm = await measureRate(spec, server, options, 0, 0, options.warmup);
      log(`warm-up ${id}: ${fmtInt(warm.perSecond)} handshakes/s (discarded)`);
    }
    for (let round = 1; round <= options.rounds; round++) {
      for (const id of options.servers) {
        const m = await measureRate(SPECS[id], running.get(id)!, options, round, options.warmup, options.duration);
        rates.push(m);
        log(`round ${round} ${id}: ${fmtInt(m.perSecond)} handshakes/s p50=${m.p50Ms.toFixed(1)}ms p99=${m.p99Ms.toFixed(1)}ms server cpu ${fmtPct(m.serverCpu)} client cpu ${fmtPct(m.cpuPct)} foreign ${fmtPct(m.foreignCpu)} failed=${m.failed}`);
      }
    }
  } finally {
    for (const server of running.values()) await server.stop();
  }
  for (let round = 1; round <= options.rounds; round++) {
    for (const id of options.servers) {
      const m = await measureMemory(SPECS[id], options, round);
      memories.push(m);
      log(`round ${round} ${id}: ${m.sessions} idle sessions, RSS ${fmtMiB(m.before.rss)} → ${fmtMiB(m.after.rss)} = ${fmtInt(m.rssPerSession)} B/session${m.heapPerSession === undefined ? '' : `, heap ${fmtInt(m.heapPerSession)} B/session`} ${youngNote(m)}`);
    }
  }
  process.stdout.write('\n' + report(options, rates, memories) + '\n');
  if (options.json) {
    writeFileSync(options.json, JSON.stringify({ date: new Date().toISOString(), node: process.version, pinning: PINNING, options, rates, memories }, null, 2) + '\n');
    log(`wrote ${options.json}`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/dtls: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
