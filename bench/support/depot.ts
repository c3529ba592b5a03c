/**
 * A `depot serve` child for benchmarks (started pinned to CPU 1 with an API token, its coap and
 * http addresses and V8 heap read from its output), the operator API, a read-only view of its
 * store beside it, CPU windows from /proc, RSS sampling and temporary data dirs. Used by
 * bench/install.ts and bench/campaign.ts.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SQLITE_FILE_NAME } from '../../src/store/index.js';
import { stopChild, track, type Tracked } from './children.js';
import { CLK_TCK, cpuSeconds, findRepoRoot, machineBusySeconds, memoryKiB, pinned } from './proc.js';

export const DEPOT_MAIN = join(findRepoRoot(), 'dist', 'src', 'cli', 'main.js');
export const API_TOKEN = 'bench-' + randomBytes(12).toString('hex');

/** parseArgs options every benchmark with a `depot serve` child and a simulated fleet takes (see their USAGE). */
export const DEPOT_RUN_OPTIONS = {
  quick: { type: 'boolean' },
  devices: { type: 'string' },
  size: { type: 'string' },
  timeout: { type: 'string' },
  ramp: { type: 'string' },
  'data-parent': { type: 'string' },
  'device-parent': { type: 'string' },
  json: { type: 'string' },
  'keep-data': { type: 'boolean' },
  'server-node-arg': { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

export const log = (text: string): void => void process.stderr.write(text + '\n');
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const tempDirs = new Set<string>();
let keepData = false;
/** Keep the data dirs made by tempDir (--keep-data). */
export function keepTempDirs(keep: boolean): void {
  keepData = keep;
}
process.on('exit', () => {
  if (!keepData) for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
export function tempDir(parent: string, prefix: string): string {
  const dir = mkdtempSync(join(parent, prefix));
  tempDirs.add(dir);
  return dir;
}
export function dropDir(dir: string): void {
  if (keepData) return;
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** user+system CPU seconds of a process and of its children it has waited for (/proc/<pid>/stat utime, stime, cutime, cstime). */
export function cpuWithChildren(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** A free UDP port on 127.0.0.1 (bound and released; the server binds it right after). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/** Waits for a line matching `test` (bounded); fails early when the child exits. */
export function waitLine<T>(t: Tracked, name: string, timeoutMs: number, test: (line: string) => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => finish(new Error(`${name}: no answer within ${Math.round(timeoutMs / 1000)} s\n${t.output().slice(-4000)}`)), timeoutMs);
    const finish = (error: Error | undefined, value?: T): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(value as T);
    };
    t.onLine((line) => {
      const value = test(line);
      if (value !== undefined) finish(undefined, value);
    });
    void t.exited.then(() => finish(new Error(`${name} exited (${t.child.exitCode ?? t.child.signalCode}):\n${t.output().slice(-4000)}`)));
  });
}

/** Samples a process's VmRSS every `everyMs` and keeps the peak. */
export function rssSampler(pid: number, everyMs = 100): { peak: () => number | undefined; stop: () => void } {
  let peak: number | undefined;
  const take = (): void => {
    const m = memoryKiB(pid);
    if (m && (peak === undefined || m.rss > peak)) peak = m.rss;
  };
  take();
  const timer = setInterval(take, everyMs);
  return { peak: () => peak, stop: () => clearInterval(timer) };
}

export interface CpuWindow {
  /** CPU seconds of the server over the window. */
  serverS: number | undefined;
  /** CPU seconds of the load side (simulator, or the clients' parent with its reaped clients). */
  loadS: number | undefined;
  /** Busy CPU seconds of the machine minus server, load side and this driver. */
  foreignS: number;
  /** The machine's softirq seconds, part of foreignS: loopback UDP is processed there, i.e. partly this run's own packets. */
  softirqS: number;
  wallS: number;
}

export interface CpuMark {
  at: number;
  server: number | undefined;
  load: number | undefined;
  self: number | undefined;
  machine: number;
  softirq: number;
}

/** Softirq CPU seconds of the whole machine (/proc/stat, 7th field of the cpu line). */
export function softirqSeconds(): number {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
    return Number(fields[7]) / CLK_TCK;
  } catch {
    return 0;
  }
}
export function markCpu(serverPid: number, loadPid: number, loadWithChildren: boolean): CpuMark {
  return { at: performance.now(), server: cpuSeconds(serverPid), load: loadWithChildren ? cpuWithChildren(loadPid) : cpuSeconds(loadPid), self: cpuSeconds('self'), machine: machineBusySeconds(), softirq: softirqSeconds() };
}
export function cpuWindow(a: CpuMark, b: CpuMark): CpuWindow {
  const d = (x: number | undefined, y: number | undefined): number | undefined => (x === undefined || y === undefined ? undefined : y - x);
  const serverS = d(a.server, b.server);
  const loadS = d(a.load, b.load);
  const selfS = d(a.self, b.self) ?? 0;
  return { serverS, loadS, foreignS: b.machine - a.machine - (serverS ?? 0) - (loadS ?? 0) - selfS, softirqS: b.softirq - a.softirq, wallS: (b.at - a.at) / 1000 };
}

export interface DepotServer {
  tracked: Tracked;
  pid: number;
  coapUri: string;
  api: string;
  /** V8 heap in use after the latest GC, and the highest such value since resetHeapPeak (MB, from --trace-gc). */
  heap: { last: number | undefined; peak: number | undefined };
  resetHeapPeak: () => void;
}

export const GC_LINE = /(?:Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Compact)[^\n]*?[\d.]+ \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/;

export async function startDepot(dataDir: string, nodeArgs: string[]): Promise<DepotServer> {
  const serveArgs = ['serve', '--host', '127.0.0.1', '--coap-port', '0', '--coaps-port', 'off', '--http-port', '0', '--data-dir', dataDir, '--allow-unsecured'];
  const [command, args] = pinned(1, process.execPath, ['--trace-gc', ...nodeArgs, DEPOT_MAIN, ...serveArgs]);
  const tracked = track(spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, DEPOT_API_TOKEN: API_TOKEN } }), 'depot serve');
  let coapUri: string | undefined;
  let api: string | undefined;
  const heap: DepotServer['heap'] = { last: undefined, peak: undefined };
  tracked.onLine((line) => {
    const gc = GC_LINE.exec(line);
    if (gc) {
      heap.last = Number(gc[1]);
      if (heap.peak === undefined || heap.last > heap.peak) heap.peak = heap.last;
    }
    const coap = /^depot: coap (coap:\/\/\S+)$/.exec(line);
    if (coap) coapUri = coap[1];
    const http = /^depot: http (http:\/\/\S+\/api\/v1)/.exec(line);
    if (http) api = http[1];
  });
  try {
    await waitLine(tracked, 'depot serve', 30_000, (line) => (line === 'depot: ready' ? true : undefined));
  } catch (error) {
    await stopChild(tracked);
    throw error;
  }
  if (!coapUri || !api) {
    await stopChild(tracked);
    throw new Error(`depot serve did not print its coap and http addresses:\n${tracked.output()}`);
  }
  return { tracked, pid: tracked.child.pid!, coapUri, api, heap, resetHeapPeak: () => (heap.peak = heap.last) };
}

export async function api(server: DepotServer, method: string, path: string, body?: Buffer | object): Promise<{ status: number; json: unknown }> {
  const headers: Record<string, string> = { authorization: `Bearer ${API_TOKEN}` };
  let payload: Buffer | string | undefined;
  if (Buffer.isBuffer(body)) {
    headers['content-type'] = 'application/octet-stream';
    payload = body;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const response = await fetch(server.api + path, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
  const text = await response.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, json };
}

/** Reads the server's store read-only beside it (WAL allows it): no load on the server's core. */
export function withStore<T>(dataDir: string, fn: (db: Database.Database) => T): T | undefined {
  let db: Database.Database | undefined;
  try {
    db = new Database(join(dataDir, SQLITE_FILE_NAME), { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 1000');
    return fn(db);
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}
