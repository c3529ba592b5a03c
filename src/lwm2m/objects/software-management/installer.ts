/**
 * Installers: what actually puts a verified package's software on the device.
 *
 * - DirectoryInstaller: the real one. Unpacks into a versioned directory atomically and
 *   runs the package's optional lifecycle scripts under a timeout.
 * - SimulatedInstaller: per-model behaviours for the simulator and tests (succeeds, fails
 *   with a given result, hangs, reboots mid-install).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { extractArchive, type ScriptName, type VerifiedPackage } from '../../../pkg/index.js';
import { systemClock, type Clock } from '../../../util/clock.js';
import type { InstallError } from './model.js';

export type InstallerOutcome = { readonly ok: true } | { readonly ok: false; readonly result: InstallError; readonly reason: string };

export interface Installer {
  /** Installs a verified package. Must leave any previously installed version intact on failure. */
  install(pkg: VerifiedPackage, signal: AbortSignal): Promise<InstallerOutcome>;
  /** Removes the installed software (`forUpdate`: keep it in place, an update will replace it). */
  uninstall(name: string, opts: { forUpdate: boolean }): Promise<InstallerOutcome>;
  activate(name: string): Promise<InstallerOutcome>;
  deactivate(name: string): Promise<InstallerOutcome>;
  /**
   * After a crash while install(name@version) ran: is that version committed? Implementations
   * also clean up what the interrupted installation left behind.
   */
  recover(name: string, version: string): Promise<'installed' | 'not-installed'>;
}

/**
 * Thrown by an installer when the device goes down under it (the simulator's "reboot"). The
 * instance must then stop touching its state: what was persisted is what a restart sees.
 */
export class DeviceRebootError extends Error {
  override readonly name = 'DeviceRebootError';
}

// ---------------------------------------------------------------------------------------
// Script runner

export interface ScriptResult {
  readonly ok: boolean;
  readonly reason: string;
  readonly timedOut: boolean;
}

/**
 * Runs `/bin/sh script` in its own process group; on timeout or abort the whole group is
 * SIGKILLed and the result is a failure.
 */
export function runScript(
  script: string,
  opts: { cwd: string; env: Record<string, string>; timeoutMs: number; clock?: Clock; signal?: AbortSignal },
): Promise<ScriptResult> {
  const clock = opts.clock ?? systemClock;
  return new Promise((resolve) => {
    let output = '';
    let settled = false;
    const child = spawn('/bin/sh', [script], {
      cwd: opts.cwd,
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...opts.env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer): void => {
      output = (output + d.toString('utf8')).slice(-2000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const kill = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    let timedOut = false;
    const timer = clock.setTimer(opts.timeoutMs, () => {
      timedOut = true;
      kill();
    });
    const onAbort = (): void => kill();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (r: ScriptResult): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      opts.signal?.removeEventListener('abort', onAbort);
      resolve(r);
    };
    child.on('error', (err) => finish({ ok: false, reason: `cannot run ${script}: ${err.message}`, timedOut: false }));
    child.on('close', (code, sig) => {
      if (timedOut) finish({ ok: false, reason: `${script} killed after ${opts.timeoutMs} ms`, timedOut: true });
      else if (opts.signal?.aborted) finish({ ok: false, reason: `${script} cancelled`, timedOut: false });
      else if (code === 0) finish({ ok: true, reason: '', timedOut: false });
      else finish({ ok: false, reason: `${script} exited with ${code ?? sig}: ${output.trim()}`, timedOut: false });
    });
  });
}

// ---------------------------------------------------------------------------------------
// DirectoryInstaller

interface CurrentRecord {
  readonly version: string;
  readonly scripts: Partial<Record<ScriptName, string>>;
}

export interface DirectoryInstallerOptions {
  /** Where software lives: <root>/<name>/versions/<version>, <root>/<name>/current.json. */
  readonly root: string;
  readonly scriptTimeoutMs?: number;
  readonly clock?: Clock;
}

/**
 * Atomic, versioned installation:
 *  1. extract the payload into <root>/<name>/.staging-XXXX (a fresh directory);
 *  2. run the package's install script there (cwd = staging dir) under a timeout;
 *     on any failure the staging dir is removed: the previous version was never touched;
 *  3. rename the staging dir to versions/<version> (same filesystem: atomic);
 *  4. commit: write current.json.tmp, fsync, rename over current.json (atomic);
 *  5. only then remove the previous version's directory.
 * A crash before step 4 leaves the previous version current; recover() removes the debris.
 */
export class DirectoryInstaller implements Installer {
  private readonly timeoutMs: number;
  private readonly clock: Clock;

  /** Absolute: scripts run with the staging directory as their working directory. */
  private readonly root: string;

  constructor(opts: DirectoryInstallerOptions) {
    this.root = resolve(opts.root);
    this.timeoutMs = opts.scriptTimeoutMs ?? 60_000;
    this.clock = opts.clock ?? systemClock;
  }

  private dir(name: string): string {
    if (!/^[A-Za-z0-9._+-]{1,255}$/.test(name) || name === '.' || name === '..') throw new Error(`unsafe package name ${name}`);
    return join(this.root, name);
  }

  private static safeVersion(version: string): string {
    if (!/^[A-Za-z0-9._+~-]{1,255}$/.test(version) || version === '.' || version === '..') throw new Error(`unsafe version ${version}`);
    return version;
  }

  async current(name: string): Promise<CurrentRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir(name), 'current.json'), 'utf8')) as CurrentRecord;
    } catch {
      return undefined;
    }
  }

  /** Directory of the committed version, if any. */
  async currentDir(name: string): Promise<string | undefined> {
    const cur = await this.current(name);
    return cur ? join(this.dir(name), 'versions', cur.version) : undefined;
  }

  private async commit(name: string, record: CurrentRecord | undefined): Promise<void> {
    const base = this.dir(name);
    const file = join(base, 'current.json');
    if (!record) {
      await rm(file, { force: true });
      return;
    }
    const tmp = join(base, 'current.json.tmp');
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(JSON.stringify(record));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  }

  async install(pkg: VerifiedPackage, signal: AbortSignal): Promise<InstallerOutcome> {
    const { name, version, scripts = {} } = pkg.manifest;
    let base: string;
    try {
      base = this.dir(name);
      DirectoryInstaller.safeVersion(version);
    } catch (err) {
      return { ok: false, result: 'UNSUPPORTED_PACKAGE_TYPE', reason: (err as Error).message };
    }
    await mkdir(join(base, 'versions'), { recursive: true });
    const staging = await mkdtemp(join(base, '.staging-'));
    const previous = await this.current(name);
    try {
      await extractArchive(pkg.path, pkg.payloadOffset, pkg.manifest.size, staging);
      if (signal.aborted) throw new Error('installation cancelled');
      const finalDir = join(base, 'versions', version);
      if (scripts.install) {
        const r = await runScript(join(staging, ...scripts.install.split('/')), {
          cwd: staging,
          env: {
            DEPOT_PKG_NAME: name,
            DEPOT_PKG_VERSION: version,
            DEPOT_INSTALL_DIR: finalDir,
            DEPOT_PREVIOUS_VERSION: previous?.version ?? '',
          },
          timeoutMs: this.timeoutMs,
          clock: this.clock,
          signal,
        });
        if (!r.ok) throw new Error(r.reason);
      }
      if (signal.aborted) throw new Error('installation cancelled');
      // Re-installing the same version: move the old tree aside, it stays until the commit.
      let aside: string | undefined;
      if (await exists(finalDir)) {
        aside = join(base, `.old-${version}-${Date.now()}`);
        await rename(finalDir, aside);
      }
      await rename(staging, finalDir);
      await this.commit(name, { version, scripts });
      if (aside) await rm(aside, { recursive: true, force: true });
      if (previous && previous.version !== version) {
        await rm(join(base, 'versions', previous.version), { recursive: true, force: true });
      }
      return { ok: true };
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      return { ok: false, result: 'INSTALL_FAILURE', reason: (err as Error).message };
    }
  }

  private async runHook(name: string, hook: ScriptName): Promise<InstallerOutcome> {
    const cur = await this.current(name);
    if (!cur) return { ok: false, result: 'DEVICE_ERROR', reason: `${name} is not installed` };
    const script = cur.scripts[hook];
    if (!script) return { ok: true };
    const dir = join(this.dir(name), 'versions', cur.version);
    const r = await runScript(join(dir, ...script.split('/')), {
      cwd: dir,
      env: { DEPOT_PKG_NAME: name, DEPOT_PKG_VERSION: cur.version, DEPOT_INSTALL_DIR: dir },
      timeoutMs: this.timeoutMs,
      clock: this.clock,
    });
    return r.ok ? { ok: true } : { ok: false, result: 'DEVICE_ERROR', reason: r.reason };
  }

  async uninstall(name: string, opts: { forUpdate: boolean }): Promise<InstallerOutcome> {
    if (opts.forUpdate) return { ok: true };
    const hook = await this.runHook(name, 'uninstall');
    if (!hook.ok) return hook;
    await this.commit(name, undefined);
    await rm(this.dir(name), { recursive: true, force: true });
    return { ok: true };
  }

  activate(name: string): Promise<InstallerOutcome> {
    return this.runHook(name, 'activate');
  }

  deactivate(name: string): Promise<InstallerOutcome> {
    return this.runHook(name, 'deactivate');
  }

  async recover(name: string, version: string): Promise<'installed' | 'not-installed'> {
    let base: string;
    try {
      base = this.dir(name);
    } catch {
      return 'not-installed';
    }
    const cur = await this.current(name);
    const entries = await readdir(base).catch((): string[] => []);
    for (const e of entries) {
      // A re-install of the committed version moved its tree aside: if the crash came before
      // the new tree replaced it, put the old one back.
      if (e.startsWith('.old-') && cur && e.slice(5, e.lastIndexOf('-')) === cur.version) {
        const target = join(base, 'versions', cur.version);
        if (!(await exists(target))) {
          await mkdir(join(base, 'versions'), { recursive: true });
          await rename(join(base, e), target);
          continue;
        }
      }
      if (e.startsWith('.staging-') || e.startsWith('.old-') || e === 'current.json.tmp') {
        await rm(join(base, e), { recursive: true, force: true });
      }
    }
    const versions = await readdir(join(base, 'versions')).catch((): string[] => []);
    // A version directory that was renamed into place but never committed is debris.
    for (const v of versions) {
      if (v !== cur?.version) await rm(join(base, 'versions', v), { recursive: true, force: true });
    }
    return cur?.version === version ? 'installed' : 'not-installed';
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// SimulatedInstaller

export type SimBehaviour =
  | { readonly kind: 'succeed'; readonly delayMs?: number }
  | { readonly kind: 'fail'; readonly result: InstallError; readonly delayMs?: number }
  /** Never finishes on its own (until cancelled: then fails). */
  | { readonly kind: 'hang' }
  /** The device reboots mid-install; `committed` says whether the new version made it. */
  | { readonly kind: 'reboot'; readonly committed?: boolean };

/** Behaviours of the simulator's device models. */
export const SIM_MODELS: Readonly<Record<string, SimBehaviour>> = Object.freeze({
  'sim-good': { kind: 'succeed' },
  'sim-broken-installer': { kind: 'fail', result: 'INSTALL_FAILURE' },
  'sim-low-storage': { kind: 'fail', result: 'NOT_ENOUGH_STORAGE' },
  'sim-hang': { kind: 'hang' },
  'sim-reboot': { kind: 'reboot', committed: false },
  'sim-reboot-after-commit': { kind: 'reboot', committed: true },
});

export class SimulatedInstaller implements Installer {
  /** Installed software by name: version and whether activation hooks ran. */
  readonly installed = new Map<string, { version: string; active: boolean }>();
  readonly calls: string[] = [];
  private pendingReboot: { name: string; version: string; committed: boolean } | undefined;

  constructor(
    private behaviour: SimBehaviour = { kind: 'succeed' },
    private readonly clock: Clock = systemClock,
  ) {}

  static forModel(model: string, clock?: Clock): SimulatedInstaller {
    const b = SIM_MODELS[model];
    if (!b) throw new Error(`unknown simulator model ${model}`);
    return new SimulatedInstaller(b, clock);
  }

  setBehaviour(b: SimBehaviour): void {
    this.behaviour = b;
  }

  private delay(ms: number | undefined): Promise<void> {
    if (!ms) return Promise.resolve();
    return new Promise((resolve) => {
      this.clock.setTimer(ms, resolve);
    });
  }

  async install(pkg: VerifiedPackage, signal: AbortSignal): Promise<InstallerOutcome> {
    const { name, version } = pkg.manifest;
    this.calls.push(`install ${name}@${version}`);
    const b = this.behaviour;
    switch (b.kind) {
      case 'succeed':
        await this.delay(b.delayMs);
        if (signal.aborted) return { ok: false, result: 'INSTALL_FAILURE', reason: 'cancelled' };
        this.installed.set(name, { version, active: false });
        return { ok: true };
      case 'fail':
        await this.delay(b.delayMs);
        return { ok: false, result: b.result, reason: 'simulated failure' };
      case 'hang':
        return new Promise((resolve) => {
          const done = (): void => resolve({ ok: false, result: 'INSTALL_FAILURE', reason: 'cancelled while hanging' });
          if (signal.aborted) done();
          else signal.addEventListener('abort', done, { once: true });
        });
      case 'reboot':
        this.pendingReboot = { name, version, committed: b.committed ?? false };
        if (b.committed) this.installed.set(name, { version, active: false });
        throw new DeviceRebootError(`simulated reboot while installing ${name}@${version}`);
    }
  }

  uninstall(name: string, opts: { forUpdate: boolean }): Promise<InstallerOutcome> {
    this.calls.push(`uninstall ${name}${opts.forUpdate ? ' forUpdate' : ''}`);
    if (!opts.forUpdate) this.installed.delete(name);
    return Promise.resolve({ ok: true });
  }

  activate(name: string): Promise<InstallerOutcome> {
    this.calls.push(`activate ${name}`);
    const sw = this.installed.get(name);
    if (sw) sw.active = true;
    return Promise.resolve({ ok: true });
  }

  deactivate(name: string): Promise<InstallerOutcome> {
    this.calls.push(`deactivate ${name}`);
    const sw = this.installed.get(name);
    if (sw) sw.active = false;
    return Promise.resolve({ ok: true });
  }

  recover(name: string, version: string): Promise<'installed' | 'not-installed'> {
    this.calls.push(`recover ${name}@${version}`);
    const r = this.pendingReboot;
    this.pendingReboot = undefined;
    if (r && r.name === name && r.version === version) return Promise.resolve(r.committed ? 'installed' : 'not-installed');
    return Promise.resolve(this.installed.get(name)?.version === version ? 'installed' : 'not-installed');
  }
}
