/**
 * The package catalog: Depot package files (src/pkg format) the server can install on
 * devices. The bytes live in `<dataDir>/packages/<sha256>` (0600, written to a temporary
 * file and renamed into place), the metadata in the store (`packages` table).
 *
 * A file is checked before it is accepted: header, manifest shape, payload size and
 * SHA-256 against the manifest, signature structure (an Ed25519 signature is 64 bytes),
 * the archive's entries, and — when the catalog has a trust store — the signature itself.
 */
import { createHash, randomBytes, verify } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ArchiveError, listArchive, manifestProblem, scanPackageFile, verifySignature, type Manifest, type TrustStore } from '../pkg/index.js';
import type { Page, PageRequest } from '../store/types.js';
import type { PackageRecord, PackageRepository } from './domain.js';
import { targetsOf, targetsProblem, type PackageTargets } from './selection.js';

/** TOO_LARGE: over the size limit of addStream; INTERRUPTED: the stream failed before its end (an aborted upload). */
export type PackageErrorCode = 'CORRUPT_PACKAGE' | 'UNTRUSTED_PACKAGE' | 'NOT_FOUND' | 'IO' | 'TOO_LARGE' | 'INTERRUPTED' | 'IN_USE' | 'BAD_TARGETS';

/** manifest.format of an opaque package's record. */
export const OPAQUE_FORMAT = 'opaque';

/** Whether a catalogued package is opaque (relayed byte for byte, the device's check decides). */
export function isOpaque(record: PackageRecord): boolean {
  return record.manifest.format === OPAQUE_FORMAT;
}

export class PackageError extends Error {
  override readonly name = 'PackageError';
  constructor(
    readonly code: PackageErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface PackageCatalogOptions {
  dataDir: string;
  repository: PackageRepository;
  /** When given, the signature must verify with one of these keys. */
  trust?: TrustStore;
  now?: () => number;
  /** What each package targets (selection); set once, like the package (issue 16). */
  targets?: PackageTargetRepository;
  /** Why a package cannot be deleted (an open job or an unfinished campaign uses it), else undefined. */
  inUse?: (sha256: string) => Promise<string | undefined>;
}

/** Where package targets are kept (src/store/sqlite/campaigns.ts implements it). */
export interface PackageTargetRepository {
  get(sha256: string): Promise<PackageTargets | null>;
  /** Sets the targets once; false when the package already has targets (they are immutable). */
  setOnce(sha256: string, targets: PackageTargets, now: number): Promise<boolean>;
}

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * An opaque package: the bytes exactly as the vendor ships them (a firmware image, an APK, a
 * vendor bundle). Depot does not read them; it relays them byte for byte and the device's own
 * integrity check decides. The metadata comes from the operator at upload.
 */
export interface OpaqueMetadata {
  name: string;
  version: string;
  /** Package type: a MIME type (application/vnd.android.package-archive, …) or a vendor name. */
  packageType: string;
  /** Target devices: manufacturer, model, OS (informational; device strings are matched by the operator). */
  target?: { manufacturer?: string; model?: string; os?: string };
  /** SHA-256 the vendor published (lowercase hex): the upload is refused when the bytes differ. */
  sha256?: string;
  /** Ed25519 signature (base64) of the file's 32-byte SHA-256, by `keyId` in the catalog's trust store. */
  signature?: { keyId: string; value: string };
}

/** Checks operator-given metadata (length, no control characters); throws CORRUPT_PACKAGE naming the field. */
export function opaqueMetadataProblem(m: OpaqueMetadata): string | undefined {
  const text = (v: string | undefined, field: string, required: boolean): string | undefined => {
    if (v === undefined || v === '') return required ? `${field} is required for an opaque package` : undefined;
    if (v.length > 255) return `${field} is longer than 255 characters`;
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(v)) return `${field} contains control characters`;
    return undefined;
  };
  return (
    text(m.name, 'name', true) ??
    text(m.version, 'version', true) ??
    text(m.packageType, 'packageType', true) ??
    text(m.target?.manufacturer, 'target manufacturer', false) ??
    text(m.target?.model, 'target model', false) ??
    text(m.target?.os, 'target OS', false) ??
    (m.sha256 !== undefined && !SHA256.test(m.sha256) ? 'the declared sha256 is not 64 lowercase hex digits' : undefined) ??
    (m.signature !== undefined ? text(m.signature.keyId, 'signature key id', true) : undefined)
  );
}

export class PackageCatalog {
  readonly dir: string;
  private readonly now: () => number;

  constructor(private readonly options: PackageCatalogOptions) {
    this.dir = join(resolve(options.dataDir), 'packages');
    this.now = options.now ?? Date.now;
  }

  /** Where a catalogued package's bytes are. */
  pathOf(sha256: string): string {
    if (!SHA256.test(sha256)) throw new PackageError('NOT_FOUND', `"${sha256}" is not a package SHA-256`);
    return join(this.dir, sha256);
  }

  /** Adds a package from bytes in memory. */
  async addBytes(bytes: Uint8Array): Promise<PackageRecord> {
    return this.add(async (fh) => {
      await fh.writeFile(bytes);
      return createHash('sha256').update(bytes).digest('hex');
    });
  }

  /** Adds a package file, copied block by block. */
  async addFile(path: string): Promise<PackageRecord> {
    const file = createReadStream(path);
    try {
      return await this.add((fh) => copyInto(fh, file, Infinity, (err) => new PackageError('IO', `cannot read ${path}: ${describe(err)}`)));
    } finally {
      file.destroy();
    }
  }

  /**
   * Adds a package from a stream (the HTTP upload), written to a temporary file in the
   * catalog's directory and hashed as it arrives, never held in memory. Past `maxBytes` it
   * stops reading and throws TOO_LARGE (the stream is left unread and undestroyed, so an HTTP
   * request can still be answered); a stream that fails (an aborted upload) throws
   * INTERRUPTED. Either way the temporary file is removed and the catalog is unchanged.
   */
  async addStream(source: AsyncIterable<Uint8Array>, options: { maxBytes?: number; opaque?: OpaqueMetadata } = {}): Promise<PackageRecord> {
    if (options.opaque) {
      const problem = opaqueMetadataProblem(options.opaque);
      if (problem) throw new PackageError('CORRUPT_PACKAGE', problem);
    }
    return this.add((fh) => copyInto(fh, source, options.maxBytes ?? Infinity, (err) => new PackageError('INTERRUPTED', `the upload ended before the package was complete: ${describe(err)}`)), options.opaque);
  }

  /** Adds an opaque package from bytes in memory (see OpaqueMetadata). */
  async addOpaqueBytes(bytes: Uint8Array, metadata: OpaqueMetadata): Promise<PackageRecord> {
    const problem = opaqueMetadataProblem(metadata);
    if (problem) throw new PackageError('CORRUPT_PACKAGE', problem);
    return this.add(async (fh) => {
      await fh.writeFile(bytes);
      return createHash('sha256').update(bytes).digest('hex');
    }, metadata);
  }

  async get(sha256: string): Promise<PackageRecord | null> {
    return SHA256.test(sha256) ? this.options.repository.get(sha256) : null;
  }

  /** The record, or PackageError NOT_FOUND. */
  async require(sha256: string): Promise<PackageRecord> {
    const record = await this.get(sha256);
    if (!record) throw new PackageError('NOT_FOUND', `package ${sha256} is not in the catalog`);
    return record;
  }

  list(page?: PageRequest): Promise<Page<PackageRecord>> {
    return this.options.repository.list(page);
  }

  async remove(sha256: string): Promise<boolean> {
    if (!SHA256.test(sha256)) return false;
    // A package a job or a campaign still needs stays (checked first: nothing is removed otherwise).
    const why = await this.options.inUse?.(sha256);
    if (why !== undefined) throw new PackageError('IN_USE', `package ${sha256} cannot be deleted: ${why}`);
    const removed = await this.options.repository.remove(sha256);
    await rm(join(this.dir, sha256), { force: true });
    return removed;
  }

  /**
   * States what a package targets (selection.ts). Targets are part of the package version: set
   * once (BAD_TARGETS when already set or malformed); a package for other devices is a new upload.
   */
  async setTargets(sha256: string, targets: PackageTargets): Promise<PackageTargets> {
    await this.require(sha256);
    if (!this.options.targets) throw new PackageError('IO', 'this catalog keeps no package targets');
    const problem = targetsProblem(targets);
    if (problem) throw new PackageError('BAD_TARGETS', problem);
    if (!(await this.options.targets.setOnce(sha256, targets, this.now()))) throw new PackageError('IN_USE', `package ${sha256} already states its targets; they cannot change (upload a new version)`);
    return targets;
  }

  /** A package's effective targets (stored, else an opaque upload's target, else none). */
  async targets(record: PackageRecord): Promise<PackageTargets> {
    return targetsOf(record, (await this.options.targets?.get(record.sha256)) ?? null);
  }

  /** Every catalogued package (optionally of one name) with its targets: selection's candidates. */
  async candidates(name?: string): Promise<{ record: PackageRecord; targets: PackageTargets }[]> {
    const out: { record: PackageRecord; targets: PackageTargets }[] = [];
    let after: string | undefined;
    do {
      const page = await this.list({ limit: 1000, ...(after ? { after } : {}) });
      for (const record of page.items) if (name === undefined || record.name === name) out.push({ record, targets: await this.targets(record) });
      after = page.next ?? undefined;
    } while (after);
    return out;
  }

  private async add(write: (fh: FileHandle) => Promise<string>, opaque?: OpaqueMetadata): Promise<PackageRecord> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const temp = join(this.dir, `.upload-${randomBytes(8).toString('hex')}`);
    const fh = await open(temp, 'wx', 0o600);
    let sha256: string;
    try {
      try {
        sha256 = await write(fh);
        await fh.sync();
      } finally {
        await fh.close();
      }
      const target = join(this.dir, sha256);
      if (opaque) {
        this.checkOpaque(sha256, opaque);
        await chmod(temp, 0o600);
        await rename(temp, target);
        const size = (await stat(target)).size;
        return await this.options.repository.add({
          sha256,
          name: opaque.name,
          version: opaque.version,
          size,
          // The store wants a key id: an unsigned opaque package says so.
          keyId: opaque.signature?.keyId ?? 'unsigned',
          manifest: {
            format: OPAQUE_FORMAT,
            packageType: opaque.packageType,
            ...(opaque.target ? { target: { ...opaque.target } } : {}),
            sha256,
            signed: opaque.signature !== undefined,
          },
          addedAt: this.now(),
        });
      }
      const manifest = await this.check(temp);
      await chmod(temp, 0o600);
      await rename(temp, target);
      const size = (await stat(target)).size;
      return await this.options.repository.add({
        sha256,
        name: manifest.name,
        version: manifest.version,
        size,
        keyId: manifest.keyId,
        manifest: { ...manifest },
        addedAt: this.now(),
      });
    } finally {
      await rm(temp, { force: true });
    }
  }

  /**
   * An opaque package's checks before it is kept: the SHA-256 the vendor published, and the
   * signature when one is declared (Ed25519 over the 32-byte digest, a key the catalog trusts).
   */
  private checkOpaque(sha256: string, m: OpaqueMetadata): void {
    if (m.sha256 !== undefined && m.sha256 !== sha256) throw new PackageError('CORRUPT_PACKAGE', `the file's SHA-256 ${sha256} differs from the declared ${m.sha256}: damaged or not the vendor's file; nothing was kept`);
    if (!m.signature) return;
    const key = this.options.trust?.get(m.signature.keyId);
    if (!key) throw new PackageError('UNTRUSTED_PACKAGE', `signing key "${m.signature.keyId}" is not trusted`);
    const sig = Buffer.from(m.signature.value, 'base64');
    let ok: boolean;
    try {
      ok = sig.length === 64 && verify(null, Buffer.from(sha256, 'hex'), key, sig);
    } catch {
      ok = false;
    }
    if (!ok) throw new PackageError('UNTRUSTED_PACKAGE', 'the signature does not verify over the file\'s SHA-256; nothing was kept');
  }

  /** The checks a file must pass; throws PackageError CORRUPT_PACKAGE / UNTRUSTED_PACKAGE. */
  private async check(path: string): Promise<Manifest> {
    const corrupt = (why: string): PackageError => new PackageError('CORRUPT_PACKAGE', `not a valid Depot package: ${why}`);
    const staged = await scanPackageFile(path);
    const h = staged.header;
    if (!h) throw corrupt(`only ${staged.bytes} bytes, the header is incomplete`);
    if (!h.ok) throw corrupt(h.detail);
    let parsed: unknown;
    try {
      parsed = JSON.parse(h.manifestJson);
    } catch {
      throw corrupt('the manifest is not JSON');
    }
    const problem = manifestProblem(parsed);
    if (problem) throw corrupt(`manifest: ${problem}`);
    const manifest = parsed as Manifest;
    if (staged.payloadBytes !== manifest.size) throw corrupt(`the payload has ${staged.payloadBytes} bytes, the manifest says ${manifest.size}`);
    if (staged.payloadSha256 !== manifest.sha256) throw corrupt('the payload SHA-256 differs from the manifest (damaged file)');
    const signature = Buffer.from(manifest.signature, 'base64');
    if (signature.length !== 64 || signature.toString('base64') !== manifest.signature) throw corrupt('the signature is not a base64 Ed25519 signature (64 bytes)');
    if (this.options.trust) {
      const verdict = verifySignature(manifest, this.options.trust);
      if (verdict !== 'ok') throw new PackageError('UNTRUSTED_PACKAGE', verdict === 'unknown-key' ? `signing key "${manifest.keyId}" is not trusted` : 'the manifest signature does not verify');
    }
    const fh = await open(path, 'r');
    try {
      const entries = await listArchive(fh, h.payloadOffset, manifest.size);
      for (const [name, p] of Object.entries(manifest.scripts ?? {})) {
        if (!entries.some((e) => e.type === 'file' && e.path === p)) throw corrupt(`the ${name} script ${p} is not in the payload`);
      }
    } catch (err) {
      if (err instanceof ArchiveError) throw corrupt(`archive: ${err.message}`);
      throw err;
    } finally {
      await fh.close();
    }
    return manifest;
  }
}

/** Writes `source` into `fh`, hashing it; returns the SHA-256 (hex). */
async function copyInto(fh: FileHandle, source: AsyncIterable<Uint8Array>, maxBytes: number, sourceError: (err: unknown) => PackageError): Promise<string> {
  const hash = createHash('sha256');
  let size = 0;
  // Iterated by hand: leaving a for-await early would destroy the source (and an HTTP
  // request's socket with it, before the 413 answer could be sent).
  const chunks = source[Symbol.asyncIterator]();
  while (true) {
    let next: IteratorResult<Uint8Array>;
    try {
      next = await chunks.next();
    } catch (err) {
      throw sourceError(err);
    }
    if (next.done) return hash.digest('hex');
    size += next.value.length;
    if (size > maxBytes) throw new PackageError('TOO_LARGE', `the package is larger than the upload limit of ${maxBytes} bytes`);
    hash.update(next.value);
    for (let at = 0; at < next.value.length; ) at += (await fh.write(next.value, at)).bytesWritten;
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
