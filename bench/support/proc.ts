/**
 * Process and machine counters from /proc, for the benchmarks (Linux only; every reader
 * answers undefined when the file is not there or the process is gone).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest directory above this file with Depot's package.json. */
export function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string };
      if (parsed.name === 'depot') return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the Depot repository root above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/** The path of a command on PATH, or undefined. */
export function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { encoding: 'utf8' });
  const path = r.stdout.trim();
  return r.status === 0 && path !== '' ? path : undefined;
}

/** taskset pins servers to CPU 1 and load generators to CPU 0, when there is a CPU 1 and taskset. */
export const TASKSET = which('taskset');
export const PINNING = TASKSET !== undefined && availableParallelism() >= 2;
export function pinned(cpu: number, command: string, args: string[]): [string, string[]] {
  return PINNING ? [TASKSET!, ['-c', String(cpu), command, ...args]] : [command, args];
}

export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** user+system CPU seconds of a process (`self` or a pid), from /proc/<pid>/stat. */
export function cpuSeconds(pid: number | 'self'): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

export interface MemoryKiB {
  /** VmRSS: resident set size. */
  rss: number;
  /** RssAnon: the anonymous part of it (V8 heap, malloc: SQLite cache, buffers), without mapped files. */
  anon: number;
}

/** Resident memory in KiB, from /proc/<pid>/status. */
export function memoryKiB(pid: number | 'self'): MemoryKiB | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string): number | undefined => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) : undefined;
    };
    const rss = field('VmRSS');
    const anon = field('RssAnon');
    return rss === undefined || anon === undefined ? undefined : { rss, anon };
  } catch {
    return undefined;
  }
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** UDP datagrams dropped for a full receive buffer, machine-wide (Udp RcvbufErrors in /proc/net/snmp). */
export function udpReceiveBufferErrors(): number | undefined {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp: '));
    const names = lines[0]?.split(/\s+/) ?? [];
    const values = lines[1]?.split(/\s+/) ?? [];
    const i = names.indexOf('RcvbufErrors');
    return i > 0 && values[i] !== undefined ? Number(values[i]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Seconds the main thread of a process waited on a run queue (runnable, but its CPU was busy
 * with something else), from /proc/<pid>/schedstat: how much other load on its core held it up.
 */
export function runQueueWaitSeconds(pid: number | 'self'): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/);
    return fields[1] === undefined ? undefined : Number(fields[1]) / 1e9;
  } catch {
    return undefined;
  }
}

/** CPU counters at one moment: the given processes, this process, the machine. */
export interface CpuSample {
  /** performance.now() of the sample, ms. */
  at: number;
  self: number | undefined;
  selfWait: number | undefined;
  pids: Record<number, number | undefined>;
  pidsWait: Record<number, number | undefined>;
  machine: number;
  udpDrops: number | undefined;
}

export function sampleCpu(pids: number[]): CpuSample {
  const sample: CpuSample = {
    at: performance.now(),
    self: cpuSeconds('self'),
    selfWait: runQueueWaitSeconds('self'),
    pids: {},
    pidsWait: {},
    machine: machineBusySeconds(),
    udpDrops: udpReceiveBufferErrors(),
  };
  for (const pid of pids) {
    sample.pids[pid] = cpuSeconds(pid);
    sample.pidsWait[pid] = runQueueWaitSeconds(pid);
  }
  return sample;
}

/** % of the window that the main thread of `pid` (or this process) waited for its CPU. */
export function runQueueWaitPercent(from: CpuSample, to: CpuSample, pid: number | 'self'): number | undefined {
  const a = pid === 'self' ? from.selfWait : from.pidsWait[pid];
  const b = pid === 'self' ? to.selfWait : to.pidsWait[pid];
  const wall = (to.at - from.at) / 1000;
  if (a === undefined || b === undefined || wall <= 0) return undefined;
  return (100 * (b - a)) / wall;
}

/** % of one core that `pid` (or this process) used between two samples. */
export function cpuPercent(from: CpuSample, to: CpuSample, pid: number | 'self'): number | undefined {
  const a = pid === 'self' ? from.self : from.pids[pid];
  const b = pid === 'self' ? to.self : to.pids[pid];
  const wall = (to.at - from.at) / 1000;
  if (a === undefined || b === undefined || wall <= 0) return undefined;
  return (100 * (b - a)) / wall;
}

/** % of one core the whole machine was busy between two samples. */
export function machinePercent(from: CpuSample, to: CpuSample): number {
  const wall = (to.at - from.at) / 1000;
  return wall > 0 ? (100 * (to.machine - from.machine)) / wall : 0;
}

/**
 * Datagrams dropped so far on the UDP sockets a process holds (the `drops` column of
 * /proc/net/udp and /proc/net/udp6, matched by socket inode), or undefined when /proc says nothing.
 */
export function udpSocketDrops(pid: number): number | undefined {
  let inodes: Set<string>;
  try {
    inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return undefined;
  }
  let drops = 0;
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 13 || !inodes.has(f[9]!)) continue;
      drops += Number(f[f.length - 1]);
    }
  }
  return drops;
}
