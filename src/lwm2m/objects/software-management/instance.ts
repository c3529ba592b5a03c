/**
 * One Software Management Object instance (one software component): resources 0–13 with
 * read / write / execute returning typed results and CoAP codes, driven by the transition
 * tables, with a JSON persisted form and restore() after a crash.
 *
 * Sans-IO with respect to the network: the LwM2M layer calls read/write/execute and hands
 * Block1 chunks to writePackage(); pull downloads go through an injected PackageFetcher.
 * The instance does do file I/O (staging file, installer), which is the point of it.
 */
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import {
  PackageStagingWriter,
  fileSize,
  verifyPackageFile,
  verifyStaged,
  type IntegrityVerdict,
  type StagingOptions,
  type WriteOutcome,
  type TrustStore,
  type VerifiedPackage,
} from '../../../pkg/index.js';
import type { Clock, Timer } from '../../../util/clock.js';
import { systemClock } from '../../../util/clock.js';
import {
  DEFAULT_PROFILE,
  encodeUpdateResult,
  encodeUpdateState,
  type ProfileName,
} from './encoding.js';
import { canApply, step, type ResourceChange, type StepOutcome } from './machine.js';
import {
  INITIAL_MACHINE_STATE,
  isAllowedCombination,
  type DownloadError,
  type MachineEvent,
  type MachineState,
} from './model.js';
import { DeviceRebootError, type Installer } from './installer.js';
import { ObjectId, SoftwareManagementResource } from '../definitions.js';

// Ids come from the generated definitions (one source of truth: objects/registry.json).
export const SW_MGMT_OBJECT_ID = ObjectId.SoftwareManagement;

/** Resource IDs (§6). */
export const SW_MGMT_RID = SoftwareManagementResource;

export interface Objlnk {
  readonly objectId: number;
  readonly instanceId: number;
}

export type ResourceValue =
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'integer'; readonly value: number }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'objlnk'; readonly value: Objlnk };

/** What write() takes: a typed value (the LwM2M layer's decoded value), or raw bytes for Package. */
export type WriteValue = ResourceValue | { readonly type: 'opaque'; readonly value: Uint8Array } | Uint8Array;

export type ReadResult =
  | { readonly ok: true; readonly code: '2.05'; readonly value: ResourceValue }
  | { readonly ok: false; readonly code: '4.04' | '4.05'; readonly reason: string };

export type WriteResult =
  | { readonly ok: true; readonly code: '2.04' | '2.31' }
  | {
      readonly ok: false;
      readonly code: '4.00' | '4.04' | '4.05' | '4.08' | '4.13' | '5.00';
      readonly reason: string;
      /** With 4.13: the largest package (bytes) the device can take (RFC 7959 §2.9.3 Size1). */
      readonly size1?: number;
    };

export type ExecuteResult =
  | { readonly ok: true; readonly code: '2.04' }
  | { readonly ok: false; readonly code: '4.00' | '4.04' | '4.05' | '5.00'; readonly reason: string };

/** Block1 position of a Package write chunk (RFC 7959): block number, size, more flag. */
export interface Block1 {
  readonly num: number;
  readonly size: number;
  readonly more: boolean;
}

/** Pull downloads (Package URI). Implemented by the CoAP / HTTP layers. */
export interface PackageFetcher {
  /** Whether the URI's scheme/host can be fetched at all (else Invalid URI). */
  supports(uri: string): boolean;
  /** Whether a download interrupted at byte N can continue from N (Block2 / HTTP Range). */
  resumable(uri: string): boolean;
  /**
   * Fetches from `offset`, calling onData for each chunk in order; onData returns false to
   * stop. Rejects with FetchError (or any Error: Connection lost) on failure.
   */
  fetch(uri: string, opts: { offset: number; signal: AbortSignal; onData: (chunk: Uint8Array) => Promise<boolean> }): Promise<void>;
}

export class FetchError extends Error {
  override readonly name = 'FetchError';
  constructor(
    readonly result: DownloadError,
    message: string,
  ) {
    super(message);
  }
}

/** A notification for Observe: one instance's machine-driven resources changed. */
export interface InstanceChange {
  readonly iid: number;
  readonly transition: string;
  readonly state: MachineState;
  /** Internal values. */
  readonly changes: readonly ResourceChange[];
  /**
   * The same changes as wire values in the instance's encoding profile, plus PkgName (0) and
   * PkgVersion (1) when they changed with the transition (set at Integrity OK, cleared when
   * the package goes away).
   */
  readonly wire: readonly { readonly rid: number; readonly value: number | boolean | string }[];
  /** Detail for logs/operators (e.g. the integrity failure reason). */
  readonly detail?: string;
}

export interface SoftwareManagementDeps {
  /** Directory for staging files (<dataDir>/obj9-<iid>.dpkg). */
  readonly dataDir: string;
  readonly trust: TrustStore;
  readonly installer: Installer;
  /** Largest package accepted, in bytes. */
  readonly quotaBytes: number;
  /** RAM for assembling a package, on devices that do so (see StagingOptions.memoryBytes). */
  readonly memoryBytes?: number;
  /** False on devices without a script runtime (see StagingOptions.runsScripts). */
  readonly runsScripts?: boolean;
  readonly profile?: ProfileName;
  readonly fetcher?: PackageFetcher;
  readonly clock?: Clock;
  /** An installation that has not finished after this long is failed (default 10 min). */
  readonly installTimeoutMs?: number;
  /** A Block1 push with no new block for this long is abandoned: Connection lost (default 120 s). */
  readonly pushIdleTimeoutMs?: number;
  /**
   * Pauses before resuming a pull download after a lost connection, while no byte arrives
   * (default 1 s, 4 s, 15 s); when they run out the download fails with Connection lost.
   */
  readonly resumeDelaysMs?: readonly number[];
  /**
   * The device's own integrity check of a staged package, for devices that take their vendor's
   * format rather than Depot's (default: verifyPackageFile, Depot's signed format).
   */
  readonly verifyPackage?: (path: string, trust: TrustStore) => Promise<IntegrityVerdict>;
  /** Durable storage of the persisted form; awaited before effects are carried out. */
  readonly persist?: (snapshot: PersistedInstance) => void | Promise<void>;
}

/**
 * Removes a staging file. A storage fault that prevents it (a broken partition: ENOTDIR,
 * EIO) must not abort the state change that asked for it; the next download truncates the
 * file anyway.
 */
export async function removeStaging(path: string): Promise<void> {
  await rm(path, { force: true }).catch(() => undefined);
}

const DEFAULT_RESUME_DELAYS_MS: readonly number[] = [1000, 4000, 15_000];

function stagingOptionsOf(deps: SoftwareManagementDeps): StagingOptions {
  return {
    quotaBytes: deps.quotaBytes,
    ...(deps.memoryBytes !== undefined ? { memoryBytes: deps.memoryBytes } : {}),
    ...(deps.runsScripts !== undefined ? { runsScripts: deps.runsScripts } : {}),
    ...(deps.verifyPackage ? { foreignFormat: true } : {}),
  };
}

export type DownloadSource =
  | { readonly kind: 'push'; readonly blockSize: number | null }
  | { readonly kind: 'pull'; readonly uri: string };

/** JSON-serialisable form of an instance. */
export interface PersistedInstance {
  readonly v: 1;
  readonly iid: number;
  readonly state: MachineState;
  readonly pkgName: string;
  readonly pkgVersion: string;
  readonly source: DownloadSource | null;
  /** Bytes staged so far (DOWNLOAD STARTED). */
  readonly bytes: number;
  readonly updateSupportedObjects: boolean;
  readonly checkpoint: Objlnk | null;
  readonly packageSettings: Objlnk | null;
}

export interface RestoreReport {
  readonly from: MachineState;
  readonly to: MachineState;
  readonly action: string;
}

export class SoftwareManagementInstance {
  readonly profile: ProfileName;
  private st: MachineState = INITIAL_MACHINE_STATE;
  private pkgName = '';
  private pkgVersion = '';
  private notifiedName = '';
  private notifiedVersion = '';
  private source: DownloadSource | null = null;
  private updateSupportedObjects = false;
  private checkpoint: Objlnk | null = null;
  private packageSettings: Objlnk | null = null;
  private writer: PackageStagingWriter | undefined;
  private verified: VerifiedPackage | undefined;
  private generation = 0;
  private installAbort: AbortController | undefined;
  private downloadAbort: AbortController | undefined;
  private installTimer: Timer | undefined;
  /** Fires when a Block1 push stops coming (the server went away mid-transfer). */
  private pushIdle: Timer | undefined;
  private readonly listeners = new Set<(c: InstanceChange) => void>();
  private background: Promise<void> = Promise.resolve();
  private halted = false;
  private readonly clock: Clock;

  constructor(
    readonly iid: number,
    private readonly deps: SoftwareManagementDeps,
  ) {
    this.profile = deps.profile ?? DEFAULT_PROFILE;
    this.clock = deps.clock ?? systemClock;
  }

  get state(): MachineState {
    return this.st;
  }

  get stagingPath(): string {
    return join(this.deps.dataDir, `obj9-${this.iid}.dpkg`);
  }

  /** True after the installer simulated a reboot: the instance must be restored from its persisted form. */
  get isHalted(): boolean {
    return this.halted;
  }

  onChange(listener: (c: InstanceChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when background work started so far (verification, install, download) is done. */
  async settled(): Promise<void> {
    for (;;) {
      const current = this.background;
      await current;
      if (current === this.background) return;
    }
  }

  /**
   * Stops background work and closes the staging file (instance deleted, client shutting
   * down). The persisted form is left as it is: restore() picks up from there.
   */
  async dispose(): Promise<void> {
    this.halted = true;
    this.generation++;
    this.pushIdle?.cancel();
    this.downloadAbort?.abort();
    this.installAbort?.abort();
    this.installTimer?.cancel();
    const w = this.writer;
    this.writer = undefined;
    if (w) await w.finish().catch(() => undefined);
    await this.settled();
  }

  // -------------------------------------------------------------------------------------
  // Read

  read(rid: number): ReadResult {
    const ok = (value: ResourceValue): ReadResult => ({ ok: true, code: '2.05', value });
    switch (rid) {
      case SW_MGMT_RID.PkgName:
        return ok({ type: 'string', value: this.pkgName });
      case SW_MGMT_RID.PkgVersion:
        return ok({ type: 'string', value: this.pkgVersion });
      case SW_MGMT_RID.UpdateState:
        return ok({ type: 'integer', value: encodeUpdateState(this.profile, this.st.pkg) });
      case SW_MGMT_RID.UpdateSupportedObjects:
        return ok({ type: 'boolean', value: this.updateSupportedObjects });
      case SW_MGMT_RID.UpdateResult:
        return ok({ type: 'integer', value: encodeUpdateResult(this.profile, this.st.result) });
      case SW_MGMT_RID.ActivationState:
        return ok({ type: 'boolean', value: this.st.activation === 'ACTIVE' });
      case SW_MGMT_RID.Checkpoint:
        return this.checkpoint ? ok({ type: 'objlnk', value: this.checkpoint }) : { ok: false, code: '4.04', reason: 'Checkpoint not set' };
      case SW_MGMT_RID.PackageSettings:
        return this.packageSettings
          ? ok({ type: 'objlnk', value: this.packageSettings })
          : { ok: false, code: '4.04', reason: 'Package Settings not set' };
      case SW_MGMT_RID.Package:
      case SW_MGMT_RID.PackageUri:
        return { ok: false, code: '4.05', reason: `resource ${rid} is write-only` };
      case SW_MGMT_RID.Install:
      case SW_MGMT_RID.Uninstall:
      case SW_MGMT_RID.Activate:
      case SW_MGMT_RID.Deactivate:
        return { ok: false, code: '4.05', reason: `resource ${rid} is executable` };
      default:
        return { ok: false, code: '4.04', reason: `no resource ${rid} in object 9` };
    }
  }

  /** All readable resources present (for a Read of the whole instance). */
  readAll(): Map<number, ResourceValue> {
    const out = new Map<number, ResourceValue>();
    for (const rid of [0, 1, 5, 7, 8, 9, 12, 13]) {
      const r = this.read(rid);
      if (r.ok) out.set(rid, r.value);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------
  // Write

  /**
   * Write to one resource. Package (rid 2) chunks go through writePackage(); here rid 2
   * means a whole package in one request.
   */
  async write(rid: number, value: WriteValue): Promise<WriteResult> {
    switch (rid) {
      case SW_MGMT_RID.Package:
        if (value instanceof Uint8Array) return this.writePackage(value);
        if (value.type === 'opaque') return this.writePackage(value.value);
        return { ok: false, code: '4.00', reason: 'Package is opaque' };
      case SW_MGMT_RID.PackageUri:
        if (value instanceof Uint8Array || value.type !== 'string') return { ok: false, code: '4.00', reason: 'Package URI is a string' };
        return this.writePackageUri(value.value);
      case SW_MGMT_RID.UpdateSupportedObjects:
        if (value instanceof Uint8Array || value.type !== 'boolean') return { ok: false, code: '4.00', reason: 'boolean expected' };
        this.updateSupportedObjects = value.value;
        await this.save();
        return { ok: true, code: '2.04' };
      case SW_MGMT_RID.PackageSettings:
        if (value instanceof Uint8Array || value.type !== 'objlnk') return { ok: false, code: '4.00', reason: 'objlnk expected' };
        this.packageSettings = value.value;
        await this.save();
        return { ok: true, code: '2.04' };
      case SW_MGMT_RID.PkgName:
      case SW_MGMT_RID.PkgVersion:
      case SW_MGMT_RID.Checkpoint:
      case SW_MGMT_RID.UpdateState:
      case SW_MGMT_RID.UpdateResult:
      case SW_MGMT_RID.ActivationState:
      case SW_MGMT_RID.Install:
      case SW_MGMT_RID.Uninstall:
      case SW_MGMT_RID.Activate:
      case SW_MGMT_RID.Deactivate:
        return { ok: false, code: '4.05', reason: `resource ${rid} is not writable` };
      default:
        return { ok: false, code: '4.04', reason: `no resource ${rid} in object 9` };
    }
  }

  /** Device-side configuration of the Checkpoint link (read-only to servers). */
  async setCheckpoint(link: Objlnk | null): Promise<void> {
    this.checkpoint = link;
    await this.save();
  }

  /**
   * One chunk of the Package resource. Without `block` the chunk is the whole package.
   * Block 0 in INITIAL starts the download (PKG Write); later blocks must follow in order.
   */
  async writePackage(chunk: Uint8Array, block?: Block1): Promise<WriteResult> {
    const first = !block || block.num === 0;
    if (first) {
      if (!canApply(this.st, { type: 'write', via: 'package' })) {
        return { ok: false, code: '4.05', reason: `Package write not allowed in ${this.st.pkg}` };
      }
      this.source = { kind: 'push', blockSize: block?.size ?? null };
      this.pkgName = '';
      this.pkgVersion = '';
      await this.apply({ type: 'write', via: 'package' });
      try {
        this.writer = await PackageStagingWriter.create(this.stagingPath, stagingOptionsOf(this.deps));
      } catch (err) {
        await this.apply({ type: 'downloadFailed', cause: 'DEVICE_ERROR' }, String(err));
        return { ok: false, code: '5.00', reason: `cannot create staging file: ${String(err)}` };
      }
    } else {
      if (this.st.pkg !== 'DOWNLOAD_STARTED' || this.source?.kind !== 'push' || !this.writer) {
        return { ok: false, code: '4.05', reason: `no Package transfer in progress (${this.st.pkg})` };
      }
      const expected = block.num * block.size;
      if (expected !== this.writer.bytesWritten) {
        return {
          ok: false,
          code: '4.08',
          reason: `block ${block.num} (offset ${expected}) does not follow byte ${this.writer.bytesWritten}`,
        };
      }
    }
    const writer = this.writer;
    if (!writer) return { ok: false, code: '5.00', reason: 'no staging writer' };
    const r = await writer.write(chunk);
    if (!r.ok) {
      this.writer = undefined;
      await this.apply({ type: 'downloadFailed', cause: r.error }, r.detail);
      if (r.error === 'NOT_ENOUGH_STORAGE') return { ok: false, code: '4.13', reason: r.detail, size1: this.deps.quotaBytes };
      if (r.error === 'UNSUPPORTED_PACKAGE_TYPE') return { ok: false, code: '4.00', reason: r.detail };
      return { ok: false, code: '5.00', reason: r.detail };
    }
    if (block?.more) {
      // Progress needs no save: an interrupted push cannot be resumed after a restart anyway.
      this.armPushIdle(writer);
      return { ok: true, code: '2.31' };
    }
    this.pushIdle?.cancel();
    this.pushIdle = undefined;
    const failed = await this.packageComplete(writer);
    if (failed) return failed.error === 'NOT_ENOUGH_STORAGE' ? { ok: false, code: '4.13', reason: failed.detail, size1: this.deps.quotaBytes } : { ok: false, code: '5.00', reason: failed.detail };
    return { ok: true, code: '2.04' };
  }

  /**
   * A push whose next block does not come within `pushIdleTimeoutMs` was abandoned by the
   * server: PKG Download Failed with Connection lost (§5.1.1), so the instance is back in
   * INITIAL and a new attempt can start, instead of waiting in DOWNLOAD STARTED for ever.
   */
  private armPushIdle(writer: PackageStagingWriter): void {
    this.pushIdle?.cancel();
    const gen = this.generation;
    const idleMs = this.deps.pushIdleTimeoutMs ?? 120_000;
    this.pushIdle = this.clock.setTimer(
      idleMs,
      () => {
        this.pushIdle = undefined;
        this.track(async () => {
          if (gen !== this.generation || this.halted || this.writer !== writer || this.st.pkg !== 'DOWNLOAD_STARTED') return;
          this.writer = undefined;
          await writer.abort();
          await this.apply({ type: 'downloadFailed', cause: 'CONNECTION_LOST' }, `no Package block for ${Math.round(idleMs / 1000)} s: push abandoned`);
        });
      },
      { background: true },
    );
  }

  /** Package URI write: PKG/URI Write, then a pull download through the fetcher. */
  async writePackageUri(uri: string): Promise<WriteResult> {
    if (!canApply(this.st, { type: 'write', via: 'uri' })) {
      return { ok: false, code: '4.05', reason: `Package URI write not allowed in ${this.st.pkg}` };
    }
    this.source = { kind: 'pull', uri };
    this.pkgName = '';
    this.pkgVersion = '';
    await this.apply({ type: 'write', via: 'uri' });
    if (!validUri(uri) || !this.deps.fetcher?.supports(uri)) {
      await this.apply({ type: 'downloadFailed', cause: 'INVALID_URI' }, `cannot download from "${uri}"`);
      return { ok: false, code: '4.00', reason: `invalid or unsupported Package URI "${uri}"` };
    }
    let writer: PackageStagingWriter;
    try {
      writer = await PackageStagingWriter.create(this.stagingPath, stagingOptionsOf(this.deps));
    } catch (err) {
      await this.apply({ type: 'downloadFailed', cause: 'DEVICE_ERROR' }, String(err));
      return { ok: false, code: '5.00', reason: String(err) };
    }
    this.writer = writer;
    this.startPull(uri, writer);
    return { ok: true, code: '2.04' };
  }

  private startPull(uri: string, writer: PackageStagingWriter): void {
    const fetcher = this.deps.fetcher;
    if (!fetcher) return;
    const gen = this.generation;
    const abort = new AbortController();
    this.downloadAbort = abort;
    this.track(async () => {
      // A lost connection is resumed from the bytes already staged, still in DOWNLOAD STARTED
      // (§5.1.2.2), while the source can resume; pauses grow while no byte arrives, and start
      // over once one does. Only then does the download fail with Connection lost.
      const pauses = this.deps.resumeDelaysMs ?? DEFAULT_RESUME_DELAYS_MS;
      let quietRetries = 0;
      for (;;) {
        let failure: { cause: DownloadError; detail: string } | undefined;
        const before = writer.bytesWritten;
        try {
          await fetcher.fetch(uri, {
            offset: writer.bytesWritten,
            signal: abort.signal,
            onData: async (chunk) => {
              const r = await writer.write(chunk);
              if (!r.ok) failure = { cause: r.error, detail: r.detail };
              return r.ok && gen === this.generation;
            },
          });
        } catch (err) {
          failure ??= {
            cause: err instanceof FetchError ? err.result : 'CONNECTION_LOST',
            detail: err instanceof Error ? err.message : String(err),
          };
        }
        if (gen !== this.generation || this.halted) return;
        if (failure?.cause === 'CONNECTION_LOST' && !abort.signal.aborted && fetcher.resumable(uri)) {
          if (writer.bytesWritten > before) quietRetries = 0;
          const pause = pauses[quietRetries++];
          if (pause !== undefined) {
            await new Promise<void>((resolve) => this.clock.setTimer(pause, resolve));
            if (gen !== this.generation || this.halted) return;
            continue;
          }
        }
        if (failure) {
          await writer.abort();
          this.writer = undefined;
          await this.apply({ type: 'downloadFailed', cause: failure.cause }, failure.detail);
          return;
        }
        await this.packageComplete(writer);
        return;
      }
    });
  }

  /** PKG Written, then the automatic integrity check (§5.1.2.3). */
  private async packageComplete(writer: PackageStagingWriter): Promise<WriteOutcome & { ok: false } | undefined> {
    this.writer = undefined;
    // The last batch reaches the staging file now; storage can still fail here.
    const flushed = await writer.flushed();
    if (!flushed.ok) {
      await this.apply({ type: 'downloadFailed', cause: flushed.error }, flushed.detail);
      return flushed;
    }
    const staged = await writer.finish();
    await this.apply({ type: 'packageWritten' });
    const gen = this.generation;
    this.track(async () => {
      const verdict = this.deps.verifyPackage ? await this.deps.verifyPackage(staged.path, this.deps.trust) : await verifyStaged(staged, this.deps.trust);
      if (gen !== this.generation) return;
      await this.integrityVerdict(verdict);
    });
    return undefined;
  }

  private async integrityVerdict(verdict: IntegrityVerdict): Promise<void> {
    if (verdict.ok) {
      this.verified = verdict;
      this.pkgName = verdict.manifest.name;
      this.pkgVersion = verdict.manifest.version;
      await this.apply({ type: 'integrityOk' });
    } else {
      await this.apply({ type: 'integrityKo', reason: verdict.reason }, `${verdict.reason}: ${verdict.detail}`);
    }
  }

  // -------------------------------------------------------------------------------------
  // Execute

  async execute(rid: number, args?: string): Promise<ExecuteResult> {
    switch (rid) {
      case SW_MGMT_RID.Install:
        return this.install();
      case SW_MGMT_RID.Uninstall: {
        const a = (args ?? '').trim();
        if (a !== '' && a !== '0' && a !== '1') return { ok: false, code: '4.00', reason: `Uninstall argument must be 0 or 1, got "${a}"` };
        return this.uninstall(a === '1');
      }
      case SW_MGMT_RID.Activate:
        return this.setActive(true);
      case SW_MGMT_RID.Deactivate:
        return this.setActive(false);
      case SW_MGMT_RID.PkgName:
      case SW_MGMT_RID.PkgVersion:
      case SW_MGMT_RID.Package:
      case SW_MGMT_RID.PackageUri:
      case SW_MGMT_RID.Checkpoint:
      case SW_MGMT_RID.UpdateState:
      case SW_MGMT_RID.UpdateSupportedObjects:
      case SW_MGMT_RID.UpdateResult:
      case SW_MGMT_RID.ActivationState:
      case SW_MGMT_RID.PackageSettings:
        return { ok: false, code: '4.05', reason: `resource ${rid} is not executable` };
      default:
        return { ok: false, code: '4.04', reason: `no resource ${rid} in object 9` };
    }
  }

  private async install(): Promise<ExecuteResult> {
    const o = await this.apply({ type: 'install' });
    if (!o.accepted) return { ok: false, code: '4.05', reason: o.reason };
    const pkg = this.verified;
    const gen = this.generation;
    if (!pkg) {
      await this.apply({ type: 'installFailed', cause: 'DEVICE_ERROR' }, 'verified package missing');
      return { ok: true, code: '2.04' };
    }
    this.runInstall(pkg, gen);
    return { ok: true, code: '2.04' };
  }

  private runInstall(pkg: VerifiedPackage, gen: number): void {
    const abort = new AbortController();
    this.installAbort = abort;
    this.installTimer = this.clock.setTimer(this.deps.installTimeoutMs ?? 600_000, () => abort.abort());
    this.track(async () => {
      let outcome;
      try {
        outcome = await this.deps.installer.install(pkg, abort.signal);
      } catch (err) {
        if (err instanceof DeviceRebootError) {
          this.halted = true;
          return;
        }
        outcome = { ok: false as const, result: 'INSTALL_FAILURE' as const, reason: String(err) };
      } finally {
        this.installTimer?.cancel();
      }
      if (gen !== this.generation || this.halted) return;
      if (outcome.ok) {
        await this.apply({ type: 'installSucceeded' });
        await removeStaging(this.stagingPath);
      } else {
        const reason = abort.signal.aborted ? 'installation timed out' : outcome.reason;
        await this.apply({ type: 'installFailed', cause: abort.signal.aborted ? 'INSTALL_FAILURE' : outcome.result }, reason);
      }
    });
  }

  private async uninstall(forUpdate: boolean): Promise<ExecuteResult> {
    const event: MachineEvent = { type: 'uninstall', forUpdate };
    if (!canApply(this.st, event)) {
      return { ok: false, code: '4.05', reason: `Uninstall not allowed in ${this.st.pkg}` };
    }
    if (this.st.pkg === 'INSTALLED') {
      const r = await this.deps.installer.uninstall(this.pkgName, { forUpdate });
      if (!r.ok) return { ok: false, code: '5.00', reason: r.reason };
    }
    await this.apply(event);
    return { ok: true, code: '2.04' };
  }

  private async setActive(active: boolean): Promise<ExecuteResult> {
    const event: MachineEvent = { type: active ? 'activate' : 'deactivate' };
    if (!canApply(this.st, event)) {
      return { ok: false, code: '4.05', reason: `${event.type} not allowed: activation machine not alive (${this.st.pkg})` };
    }
    const target = active ? 'ACTIVE' : 'INACTIVE';
    if (this.st.activation !== target) {
      const r = active ? await this.deps.installer.activate(this.pkgName) : await this.deps.installer.deactivate(this.pkgName);
      if (!r.ok) return { ok: false, code: '5.00', reason: r.reason };
    }
    await this.apply(event);
    return { ok: true, code: '2.04' };
  }

  // -------------------------------------------------------------------------------------
  // Engine glue

  /** Feeds one event to the machine, persists, notifies, and carries out the row's effects. */
  private async apply(event: MachineEvent, detail?: string): Promise<StepOutcome> {
    const o = step(this.st, event);
    if (!o.accepted) return o;
    this.st = o.after;
    for (const effect of o.effects) {
      switch (effect) {
        case 'deletePackage':
          this.generation++;
          this.verified = undefined;
          this.downloadAbort?.abort();
          this.downloadAbort = undefined;
          if (this.writer) {
            await this.writer.abort();
            this.writer = undefined;
          }
          await removeStaging(this.stagingPath);
          if (o.after.pkg === 'INITIAL') {
            this.pkgName = '';
            this.pkgVersion = '';
            this.source = null;
          }
          break;
        case 'cancelInstall':
          this.installTimer?.cancel();
          this.installAbort?.abort();
          this.installAbort = undefined;
          break;
        case 'startDownload':
        case 'verifyIntegrity':
        case 'runInstall':
          // Started by the caller once the state is persisted.
          break;
      }
    }
    await this.save();
    if (o.changes.length > 0) this.emit(o, detail);
    return o;
  }

  private emit(o: StepOutcome & { accepted: true }, detail?: string): void {
    const names: { rid: number; value: string }[] = [];
    if (this.pkgName !== this.notifiedName) names.push({ rid: 0, value: this.pkgName });
    if (this.pkgVersion !== this.notifiedVersion) names.push({ rid: 1, value: this.pkgVersion });
    this.notifiedName = this.pkgName;
    this.notifiedVersion = this.pkgVersion;
    const machine = o.changes.map((c) => {
      switch (c.rid) {
        case 7:
          return { rid: 7, value: encodeUpdateState(this.profile, c.to) };
        case 9:
          return { rid: 9, value: encodeUpdateResult(this.profile, c.to) };
        case 12:
          return { rid: 12, value: c.to };
      }
    });
    const wire = [...names, ...machine];
    const change: InstanceChange = {
      iid: this.iid,
      transition: o.row.id,
      state: o.after,
      changes: o.changes,
      wire,
      ...(detail !== undefined ? { detail } : {}),
    };
    for (const l of this.listeners) {
      try {
        l(change);
      } catch {
        // A listener's failure must not break the state machine.
      }
    }
  }

  private track(task: () => Promise<void>): void {
    const run = task().catch(() => undefined);
    this.background = Promise.all([this.background, run]).then(() => undefined);
  }

  private async save(): Promise<void> {
    if (this.halted) return;
    await this.deps.persist?.(this.snapshot());
  }

  // -------------------------------------------------------------------------------------
  // Persistence

  snapshot(): PersistedInstance {
    return {
      v: 1,
      iid: this.iid,
      state: { ...this.st },
      pkgName: this.pkgName,
      pkgVersion: this.pkgVersion,
      source: this.source,
      bytes: this.writer?.bytesWritten ?? 0,
      updateSupportedObjects: this.updateSupportedObjects,
      checkpoint: this.checkpoint,
      packageSettings: this.packageSettings,
    };
  }

  /**
   * Rebuilds an instance after a restart. What happens in each persisted state:
   *
   * - INITIAL: nothing to do (a leftover staging file is removed).
   * - DOWNLOAD STARTED, pull from a resumable source with a staging file: the file is re-read
   *   (rebuilding the hash) and the download continues from its end.
   * - DOWNLOAD STARTED otherwise (Block1 push — the server's transfer died with us — or a
   *   non-resumable source, or no staging file): PKG Download Failed with Connection lost,
   *   back to INITIAL, staging file removed.
   * - DOWNLOADED: the staged file is verified again from scratch (the in-memory verdict was
   *   lost): Integrity OK -> DELIVERED, KO -> INITIAL with Integrity failure.
   * - DELIVERED (not installing): the staged file is verified again; if it is gone or no
   *   longer verifies the package is unusable: INITIAL with Integrity failure.
   * - DELIVERED with an installation under way (crash mid-install): the installer says
   *   whether the new version was committed (its commit is atomic). Committed -> INSTALLED
   *   (INACTIVE, result Installed). Not committed -> DELIVERED with Installation failure; the
   *   previous version is intact and Install can be executed again.
   * - INSTALLED: restored as persisted, including the activation state (the client is
   *   expected to start ACTIVE software at boot; no hook is re-run).
   * A persisted form that is not an allowed combination is reset to INITIAL.
   */
  static async restore(
    p: PersistedInstance,
    deps: SoftwareManagementDeps,
  ): Promise<{ instance: SoftwareManagementInstance; report: RestoreReport }> {
    const inst = new SoftwareManagementInstance(p.iid, deps);
    inst.updateSupportedObjects = p.updateSupportedObjects;
    inst.checkpoint = p.checkpoint;
    inst.packageSettings = p.packageSettings;
    inst.pkgName = p.pkgName;
    inst.pkgVersion = p.pkgVersion;
    inst.notifiedName = p.pkgName;
    inst.notifiedVersion = p.pkgVersion;
    inst.source = p.source;
    const from = p.state;
    const report = (action: string): { instance: SoftwareManagementInstance; report: RestoreReport } => ({
      instance: inst,
      report: { from, to: inst.st, action },
    });
    if (p.v !== 1 || !isAllowedCombination(p.state)) {
      inst.st = INITIAL_MACHINE_STATE;
      inst.pkgName = '';
      inst.pkgVersion = '';
      inst.source = null;
      await removeStaging(inst.stagingPath);
      await inst.save();
      return report('invalid persisted state: reset to INITIAL');
    }
    inst.st = { ...p.state };
    switch (p.state.pkg) {
      case 'INITIAL':
        await removeStaging(inst.stagingPath);
        return report('none');
      case 'DOWNLOAD_STARTED': {
        const size = await fileSize(inst.stagingPath);
        const src = p.source;
        if (src?.kind === 'pull' && size !== undefined && deps.fetcher?.supports(src.uri) && deps.fetcher.resumable(src.uri)) {
          const writer = await PackageStagingWriter.resume(inst.stagingPath, stagingOptionsOf(deps));
          inst.writer = writer;
          const offset = writer.bytesWritten;
          inst.startPull(src.uri, writer);
          return report(`resuming download at byte ${offset}`);
        }
        await inst.apply({ type: 'downloadFailed', cause: 'CONNECTION_LOST' }, 'restart during download');
        return report('download interrupted: Connection lost');
      }
      case 'DOWNLOADED': {
        const verdict = await (deps.verifyPackage ?? verifyPackageFile)(inst.stagingPath, deps.trust);
        await inst.integrityVerdict(verdict);
        return report(verdict.ok ? 'integrity re-verified: OK' : `integrity re-verified: ${verdict.reason}`);
      }
      case 'DELIVERED': {
        const verdict = await (deps.verifyPackage ?? verifyPackageFile)(inst.stagingPath, deps.trust);
        if (p.state.installing) {
          const name = verdict.ok ? verdict.manifest.name : p.pkgName;
          const version = verdict.ok ? verdict.manifest.version : p.pkgVersion;
          const r = await deps.installer.recover(name, version);
          if (verdict.ok) inst.verified = verdict;
          if (r === 'installed') {
            await inst.apply({ type: 'installSucceeded' });
            await removeStaging(inst.stagingPath);
            return report('installation had committed before the crash: INSTALLED');
          }
          await inst.apply({ type: 'installFailed', cause: 'INSTALL_FAILURE' }, 'restart during installation');
          if (!verdict.ok) {
            await inst.forceInitial('INTEGRITY_FAILURE');
            return report('installation interrupted and package unusable: INITIAL');
          }
          return report('installation interrupted: DELIVERED with Installation failure');
        }
        if (!verdict.ok) {
          await inst.forceInitial('INTEGRITY_FAILURE');
          return report(`delivered package no longer verifies (${verdict.reason}): INITIAL`);
        }
        inst.verified = verdict;
        return report('none');
      }
      case 'INSTALLED':
        await removeStaging(inst.stagingPath);
        return report('none');
    }
  }

  /** Restore-only: DELIVERED whose package vanished. Not a table transition; documented in restore(). */
  private async forceInitial(result: 'INTEGRITY_FAILURE'): Promise<void> {
    const before = this.st;
    this.st = { pkg: 'INITIAL', result, activation: null, installing: false };
    this.verified = undefined;
    this.pkgName = '';
    this.pkgVersion = '';
    this.source = null;
    await removeStaging(this.stagingPath);
    await this.save();
    const changes: ResourceChange[] = [{ rid: 7, from: before.pkg, to: 'INITIAL' }];
    if (before.result !== result) changes.push({ rid: 9, from: before.result, to: result });
    const wire = changes.map((c) =>
      c.rid === 7 ? { rid: 7, value: encodeUpdateState(this.profile, 'INITIAL') } : { rid: 9, value: encodeUpdateResult(this.profile, result) },
    );
    const names = [
      ...(this.notifiedName !== '' ? [{ rid: 0, value: '' }] : []),
      ...(this.notifiedVersion !== '' ? [{ rid: 1, value: '' }] : []),
    ];
    this.notifiedName = '';
    this.notifiedVersion = '';
    const all = [...names, ...wire];
    for (const l of this.listeners) {
      try {
        l({ iid: this.iid, transition: 'restore-reset', state: this.st, changes, wire: all });
      } catch {
        // see emit()
      }
    }
  }
}

function validUri(uri: string): boolean {
  if (uri.length === 0 || Buffer.byteLength(uri, 'utf8') > 255) return false;
  try {
    const u = new URL(uri);
    return u.protocol.length > 1;
  } catch {
    return false;
  }
}
