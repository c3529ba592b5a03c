/**
 * Child processes of a benchmark run: tracked so that every one is killed when the run ends,
 * fails or is interrupted, with their output kept for error reports.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const child of children) child.kill('SIGKILL');
    process.exit(130);
  });
}

/** Output kept per child for error reports: the tail, so a chatty child cannot grow without bound. */
const OUTPUT_TAIL = 256 * 1024;

export interface Tracked {
  child: ChildProcess;
  exited: Promise<void>;
  /** The tail of stdout and stderr, interleaved as they arrived. */
  output: () => string;
  /** Called with every complete stdout line from now on. */
  onLine: (listener: (line: string) => void) => void;
}

export function track(child: ChildProcess, name: string): Tracked {
  children.add(child);
  let output = '';
  let partial = '';
  const listeners: ((line: string) => void)[] = [];
  const keep = (text: string): void => {
    output = (output + text).slice(-OUTPUT_TAIL);
  };
  child.stdout?.on('data', (d: Buffer) => {
    const text = d.toString();
    keep(text);
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) for (const l of listeners) l(line);
  });
  child.stderr?.on('data', (d: Buffer) => keep(d.toString()));
  const exited = new Promise<void>((resolve) => {
    child.on('error', (error) => {
      keep(`\n${name}: ${error.message}`);
      children.delete(child);
      resolve();
    });
    child.on('close', () => {
      children.delete(child);
      resolve();
    });
  });
  return { child, exited, output: () => output, onLine: (l) => listeners.push(l) };
}

/** Spawns and tracks a child with piped stdio (and an IPC channel if asked). */
export function launch(name: string, command: string, args: string[], ipc = false): Tracked {
  return track(spawn(command, args, { stdio: ipc ? ['pipe', 'pipe', 'pipe', 'ipc'] : ['pipe', 'pipe', 'pipe'] }), name);
}

export const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

/** SIGTERM (after closing stdin), then SIGKILL if it has not exited within `graceMs`. */
export async function stopChild({ child, exited }: Tracked, graceMs = 3000): Promise<void> {
  if (hasExited(child)) return;
  child.stdin?.end();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * A numeric command-line option: `fallback` when absent; otherwise a finite number above 0,
 * or at least `min` when one is given.
 */
export function numberOption(text: string | undefined, fallback: number, name: string, min?: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (min === undefined) {
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} wants a positive number, got "${text}"`);
  } else if (!Number.isFinite(n) || n < min) {
    throw new Error(`--${name} wants a number >= ${min}, got "${text}"`);
  }
  return n;
}

/** A comma-separated list option: every item must be one of `known`; all of them when absent. */
export function listOption<T extends string>(text: string | undefined, known: readonly T[], name: string): T[] {
  const items = (text?.split(',') ?? [...known]).map((t) => t.trim());
  for (const t of items) if (!(known as readonly string[]).includes(t)) throw new Error(`--${name}: unknown "${t}" (known: ${known.join(', ')})`);
  return items as T[];
}
