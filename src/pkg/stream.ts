/**
 * Incremental reading of a Depot package as its bytes arrive (Block1 writes or a pull
 * download): recognises the header early, hashes the payload on the fly, and writes the
 * bytes to a staging file under a storage quota.
 */
import { createHash, type Hash } from 'node:crypto';
import { mkdir, open, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HEADER_FIXED, MAX_MANIFEST, PACKAGE_FORMAT_VERSION, PACKAGE_MAGIC } from './manifest.js';

export type HeaderInfo =
  | { readonly ok: true; readonly manifestJson: string; readonly payloadOffset: number; readonly declaredSize: number | undefined; readonly hasScripts: boolean }
  | { readonly ok: false; readonly reason: 'bad-magic' | 'unsupported-version' | 'manifest-too-large'; readonly detail: string };

/** Pure parser state: feed it every byte of the package, in order. */
export class PackageStreamParser {
  private head = Buffer.alloc(0);
  private manifestLength = -1;
  private headerInfo: HeaderInfo | undefined;
  private readonly hash: Hash = createHash('sha256');
  private payload = 0;
  private total = 0;

  /** Header verdict once known (as early as the 4th byte for a foreign file). */
  get header(): HeaderInfo | undefined {
    return this.headerInfo;
  }
  get bytes(): number {
    return this.total;
  }
  get payloadBytes(): number {
    return this.payload;
  }

  feed(chunk: Uint8Array): void {
    this.total += chunk.length;
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.headerInfo === undefined) {
      const need = this.manifestLength < 0 ? HEADER_FIXED : HEADER_FIXED + this.manifestLength;
      const take = Math.min(need - this.head.length, data.length);
      this.head = Buffer.concat([this.head, data.subarray(0, take)]);
      data = data.subarray(take);
      this.advanceHeader();
      if (this.headerInfo === undefined && data.length > 0) {
        // The fixed part just completed: read the manifest from the rest of this chunk.
        const rest = HEADER_FIXED + this.manifestLength - this.head.length;
        const more = Math.min(rest, data.length);
        this.head = Buffer.concat([this.head, data.subarray(0, more)]);
        data = data.subarray(more);
        this.advanceHeader();
      }
    }
    if (this.headerInfo?.ok && data.length > 0) {
      this.hash.update(data);
      this.payload += data.length;
    }
  }

  private advanceHeader(): void {
    const h = this.head;
    if (h.length >= 4 && !h.subarray(0, 4).equals(PACKAGE_MAGIC)) {
      this.headerInfo = { ok: false, reason: 'bad-magic', detail: 'not a Depot package (magic)' };
      return;
    }
    if (h.length >= 5 && h[4] !== PACKAGE_FORMAT_VERSION) {
      this.headerInfo = { ok: false, reason: 'unsupported-version', detail: `package format version ${h[4]}` };
      return;
    }
    if (h.length >= HEADER_FIXED && this.manifestLength < 0) {
      const len = h.readUInt32BE(5);
      if (len < 2 || len > MAX_MANIFEST) {
        this.headerInfo = { ok: false, reason: 'manifest-too-large', detail: `manifest length ${len}` };
        return;
      }
      this.manifestLength = len;
    }
    if (this.manifestLength >= 0 && h.length === HEADER_FIXED + this.manifestLength) {
      const manifestJson = h.subarray(HEADER_FIXED).toString('utf8');
      let declaredSize: number | undefined;
      let hasScripts = false;
      try {
        const v = JSON.parse(manifestJson) as { size?: unknown; scripts?: unknown };
        if (typeof v.size === 'number' && Number.isSafeInteger(v.size) && v.size >= 0) declaredSize = v.size;
        hasScripts = typeof v.scripts === 'object' && v.scripts !== null && Object.keys(v.scripts).length > 0;
      } catch {
        declaredSize = undefined;
      }
      this.headerInfo = { ok: true, manifestJson, payloadOffset: h.length, declaredSize, hasScripts };
    }
  }

  /** Payload SHA-256 so far (hex). */
  digest(): string {
    return this.hash.copy().digest('hex');
  }
}

export type StagingError = 'NOT_ENOUGH_STORAGE' | 'OUT_OF_MEMORY' | 'UNSUPPORTED_PACKAGE_TYPE' | 'DEVICE_ERROR';

export type WriteOutcome = { readonly ok: true; readonly bytes: number } | { readonly ok: false; readonly error: StagingError; readonly detail: string };

export interface StagedPackage {
  readonly path: string;
  readonly bytes: number;
  readonly header: HeaderInfo | undefined;
  readonly payloadBytes: number;
  readonly payloadSha256: string;
}

export interface StagingOptions {
  /** Maximum size of the staged package in bytes ("Not enough storage" beyond). */
  readonly quotaBytes: number;
  /**
   * For devices that assemble a package in RAM before writing it to flash (small devices
   * without streaming flash writes): the RAM available for that, "Out of memory" beyond.
   */
  readonly memoryBytes?: number;
  /** False on devices without a script runtime: a package with lifecycle scripts is then an unsupported type. */
  readonly runsScripts?: boolean;
  /** A device whose own integrity check reads its vendor's format: a header that is not Depot's is no staging failure. */
  readonly foreignFormat?: boolean;
}

/**
 * Writes a package's bytes to a staging file as they arrive. Fails fast with
 * NOT_ENOUGH_STORAGE as soon as the quota is exceeded or the manifest declares a payload
 * that cannot fit (OUT_OF_MEMORY likewise for a RAM budget), and with
 * UNSUPPORTED_PACKAGE_TYPE as soon as the header is foreign or asks for what the device
 * cannot do (scripts without a script runtime).
 * After a failure the staging file is removed and every further write fails the same way.
 */
/** Bytes gathered before one write to the staging file (a flash write per 1 KiB block is slow and wears it). */
const WRITE_BATCH = 64 * 1024;

export class PackageStagingWriter {
  private failure: (WriteOutcome & { ok: false }) | undefined;
  private closed = false;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly parser: PackageStreamParser,
    private readonly opts: StagingOptions,
  ) {}

  /** Starts a new staging file (truncating any previous one). */
  static async create(path: string, opts: StagingOptions): Promise<PackageStagingWriter> {
    await mkdir(dirname(path), { recursive: true });
    const fh = await open(path, 'w', 0o600);
    return new PackageStagingWriter(path, fh, new PackageStreamParser(), opts);
  }

  /**
   * Continues a staging file left by an interrupted download: its bytes are re-read to
   * rebuild the hash, and new bytes are appended. Returns the writer and the resume offset.
   */
  static async resume(path: string, opts: StagingOptions): Promise<PackageStagingWriter> {
    const parser = new PackageStreamParser();
    const rd = await open(path, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const { bytesRead } = await rd.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        parser.feed(buf.subarray(0, bytesRead));
      }
    } finally {
      await rd.close();
    }
    const fh = await open(path, 'a', 0o600);
    return new PackageStagingWriter(path, fh, parser, opts);
  }

  get bytesWritten(): number {
    return this.parser.bytes;
  }

  async write(chunk: Uint8Array): Promise<WriteOutcome> {
    if (this.failure) return this.failure;
    if (this.closed) return this.fail('DEVICE_ERROR', 'staging file already closed');
    if (this.parser.bytes + chunk.length > this.opts.quotaBytes) {
      return this.fail('NOT_ENOUGH_STORAGE', `package exceeds the ${this.opts.quotaBytes}-byte quota`);
    }
    const memory = this.opts.memoryBytes;
    if (memory !== undefined && this.parser.bytes + chunk.length > memory) {
      return this.fail('OUT_OF_MEMORY', `package exceeds the device's ${memory}-byte download buffer`);
    }
    this.parser.feed(chunk);
    const h = this.parser.header;
    if (h && !h.ok && !this.opts.foreignFormat) return this.fail('UNSUPPORTED_PACKAGE_TYPE', h.detail);
    if (h?.ok) {
      if (h.hasScripts && this.opts.runsScripts === false) {
        return this.fail('UNSUPPORTED_PACKAGE_TYPE', 'the package has lifecycle scripts and this device has no script runtime');
      }
      const total = h.declaredSize !== undefined ? h.payloadOffset + h.declaredSize : undefined;
      if (total !== undefined && total > this.opts.quotaBytes) {
        return this.fail('NOT_ENOUGH_STORAGE', `package declares ${total} bytes, quota ${this.opts.quotaBytes}`);
      }
      if (total !== undefined && memory !== undefined && total > memory) {
        return this.fail('OUT_OF_MEMORY', `package declares ${total} bytes, the device's download buffer holds ${memory}`);
      }
    }
    // Copied: the caller's buffer may be reused once we return.
    this.pending.push(Buffer.from(chunk));
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= WRITE_BATCH) {
      const failed = await this.flush();
      if (failed) return failed;
    }
    return { ok: true, bytes: this.parser.bytes };
  }

  /** Writes the batched bytes to the file; the outcome of the whole package so far. */
  async flushed(): Promise<WriteOutcome> {
    if (this.failure) return this.failure;
    return (await this.flush()) ?? { ok: true, bytes: this.parser.bytes };
  }

  private async flush(): Promise<(WriteOutcome & { ok: false }) | undefined> {
    if (this.pendingBytes === 0) return undefined;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    try {
      await this.fh.write(data);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return this.fail(code === 'ENOSPC' || code === 'EDQUOT' ? 'NOT_ENOUGH_STORAGE' : 'DEVICE_ERROR', String(err));
    }
    return undefined;
  }

  /** Flushes and closes the staging file: the package is "fully written". */
  async finish(): Promise<StagedPackage> {
    if (!this.closed) {
      const failed = await this.flush();
      if (failed) throw new Error(`staging ${this.path}: ${failed.detail}`);
      this.closed = true;
      await this.fh.sync();
      await this.fh.close();
    }
    return {
      path: this.path,
      bytes: this.parser.bytes,
      header: this.parser.header,
      payloadBytes: this.parser.payloadBytes,
      payloadSha256: this.parser.digest(),
    };
  }

  /** Closes and removes the staging file. */
  async abort(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => undefined);
    }
    await rm(this.path, { force: true });
  }

  private async fail(error: StagingError, detail: string): Promise<WriteOutcome & { ok: false }> {
    this.failure = { ok: false, error, detail };
    await this.abort();
    return this.failure;
  }
}

/** Reads a whole staged file through the parser (used when the hash state was lost). */
export async function scanPackageFile(path: string): Promise<StagedPackage> {
  const parser = new PackageStreamParser();
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      parser.feed(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return { path, bytes: parser.bytes, header: parser.header, payloadBytes: parser.payloadBytes, payloadSha256: parser.digest() };
}

export async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}
