/**
 * Child processes for interop tests: real protocol peers (libcoap, …) and Depot's own CLI.
 * Every wait is bounded; every process started here can be stopped with stop().
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';

/**
 * The absolute path of an executable on PATH. Throws (so the test FAILS, never skips)
 * when it is missing: interop tests are worthless if they silently do nothing.
 */
export function requireExecutable(name: string, hint = 'see scripts/ensure-peers.sh'): string {
  const found = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || path === '') throw new Error(`required executable not found on PATH: ${name} (${hint})`);
  return path;
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  /** stdout (as latin1 text) followed by stderr, for diagnostics and pattern checks. */
  output: string;
}

/**
 * Runs a process to completion. Rejects if it cannot be spawned or does not exit within
 * `timeoutMs` (it is then killed); the error carries the output seen so far.
 */
export function runProcess(command: string, args: string[], options: { timeoutMs: number; cwd?: string; env?: NodeJS.ProcessEnv }): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const spawnOptions: SpawnOptions = { stdio: ['ignore', 'pipe', 'pipe'] };
    if (options.cwd !== undefined) spawnOptions.cwd = options.cwd;
    if (options.env !== undefined) spawnOptions.env = options.env;
    const child = spawn(command, args, spawnOptions);
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => stdout.push(d));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      const out = Buffer.concat(stdout).toString('latin1');
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${options.timeoutMs} ms; output:\n${tail(out + stderr)}`));
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const out = Buffer.concat(stdout);
      resolve({ code, signal, stdout: out, stderr, output: out.toString('latin1') + stderr });
    });
  });
}

/** A long-running child (a server, an observing client) whose output is collected as it arrives. */
export class PeerProcess {
  readonly child: ChildProcess;
  private stdoutText = '';
  private stderrText = '';
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exitPromise: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly command: string,
    readonly args: string[],
    options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
  ) {
    const spawnOptions: SpawnOptions = { stdio: ['ignore', 'pipe', 'pipe'] };
    if (options.cwd !== undefined) spawnOptions.cwd = options.cwd;
    if (options.env !== undefined) spawnOptions.env = options.env;
    this.child = spawn(command, args, spawnOptions);
    this.child.stdout!.on('data', (d: Buffer) => {
      this.stdoutText += d.toString('latin1');
      this.wake();
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderrText += d.toString('utf8');
      this.wake();
    });
    this.exitPromise = new Promise((resolve) => {
      this.child.on('error', (error) => {
        this.stderrText += `\nspawn error: ${error.message}`;
        this.exitInfo ??= { code: null, signal: null };
        this.wake();
        resolve(this.exitInfo);
      });
      this.child.on('close', (code, signal) => {
        this.exitInfo = { code, signal };
        this.wake();
        resolve(this.exitInfo);
      });
    });
  }

  get stdout(): string {
    return this.stdoutText;
  }
  get stderr(): string {
    return this.stderrText;
  }
  get output(): string {
    return this.stdoutText + this.stderrText;
  }
  get exited(): boolean {
    return this.exitInfo !== undefined;
  }

  /** Resolves once stdout+stderr matches `pattern`; rejects on timeout or if the process exits first. */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return this.waitUntil(() => this.output.match(pattern) ?? undefined, timeoutMs, `output matching ${String(pattern)}`);
  }

  /** Resolves with the exit status; rejects (without killing) after `timeoutMs`. */
  async waitForExit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    await this.waitUntil(() => this.exitInfo, timeoutMs, 'exit', true);
    return this.exitInfo!;
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. Safe to call twice. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exitPromise;
    clearTimeout(timer);
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private waitUntil<T>(check: () => T | undefined, timeoutMs: number, what: string, exitIsSuccess = false): Promise<T> {
    return new Promise((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(poll);
      };
      const poll = (): void => {
        const value = check();
        if (value !== undefined) {
          finish();
          resolve(value);
        } else if (this.exited && !exitIsSuccess) {
          finish();
          reject(new Error(`${this.command} exited (${JSON.stringify(this.exitInfo)}) before ${what}; output:\n${tail(this.output)}`));
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(poll);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} from ${this.command}; output:\n${tail(this.output)}`));
      }, timeoutMs);
      this.waiters.add(poll);
      poll();
    });
  }
}

/** Polls `check` until it returns a value other than undefined/false; rejects after `timeoutMs`. */
export async function pollUntil<T>(check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Rejects if `promise` has not settled within `timeoutMs`. */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function tail(text: string, max = 4000): string {
  return text.length > max ? '…' + text.slice(-max) : text;
}
