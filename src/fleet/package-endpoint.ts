/**
 * `/pkg/<token>`: Depot's CoAP resource from which devices pull packages (Object 9
 * Package URI). The body is a BlockSource over the catalogued file, so a transfer reads
 * one block at a time from disk (RFC 7959 Block2) and never holds the package in memory;
 * a device may resume a download by asking for any block.
 *
 * The same tokens work over HTTP (`GET /pkg/<token>` on the API listener, with `Range:
 * bytes=N-` for resuming; see src/api/server.ts).
 *
 * A token is a capability: 16 random bytes (base64url), issued for one install job,
 * stored with the job (so it survives a restart), valid while the job is downloading and
 * until it expires. Unknown, expired or withdrawn tokens get 4.04.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { Code, ContentFormat } from '../coap/codes.js';
import type { BlockSource, CoapRequest, CoapResponse, CoapServer } from '../coap/server.js';
import type { InstallJobRepository } from './domain.js';
import type { PackageCatalog } from './packages.js';

export const PACKAGE_RESOURCE = '/pkg';

/** A new download token: 128 random bits. */
export function newDownloadToken(): string {
  return randomBytes(16).toString('base64url');
}

export interface DownloadProgress {
  /** Highest byte offset served (end of the last block sent). */
  readonly served: number;
  readonly size: number;
  readonly at: number;
}

export interface PackageEndpointOptions {
  catalog: PackageCatalog;
  jobs: Pick<InstallJobRepository, 'getByToken'>;
  now?: () => number;
}

/**
 * Package bytes shared by every transfer of a package: a package up to `maxFileBytes` is read
 * into memory once and each block is a view of it (a thousand devices pulling the same 1 MiB
 * cost 1 MiB, and a block costs no system call); larger ones, or beyond `maxTotalBytes`, are
 * read block by block through one shared file handle. Dropped after `idleMs` unused.
 */
class SharedFiles {
  private readonly entries = new Map<string, { bytes?: Promise<Buffer>; fh?: Promise<FileHandle>; size: number; users: number; idle: NodeJS.Timeout | undefined }>();
  private cachedBytes = 0;

  constructor(
    private readonly idleMs: number,
    private readonly maxFileBytes = 32 << 20,
    private readonly maxTotalBytes = 256 << 20,
  ) {}

  async read(path: string, size: number, offset: number, length: number): Promise<Uint8Array> {
    let entry = this.entries.get(path);
    if (!entry) {
      const inMemory = size <= this.maxFileBytes && this.cachedBytes + size <= this.maxTotalBytes;
      entry = inMemory ? { bytes: readFile(path), size, users: 0, idle: undefined } : { fh: open(path, 'r'), size: 0, users: 0, idle: undefined };
      if (inMemory) this.cachedBytes += size;
      const e = entry;
      this.entries.set(path, e);
      (e.bytes ?? e.fh)!.catch(() => void this.drop(path, e));
    }
    entry.users++;
    if (entry.idle) clearTimeout(entry.idle);
    entry.idle = undefined;
    try {
      if (entry.bytes) return (await entry.bytes).subarray(offset, offset + length);
      const fh = await entry.fh!;
      const buf = Buffer.allocUnsafe(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    } finally {
      if (--entry.users === 0) {
        const e = entry;
        e.idle = setTimeout(() => {
          if (e.users === 0) void this.drop(path, e);
        }, this.idleMs);
        e.idle.unref();
      }
    }
  }

  /** Forgets a file; returns the closing of its handle (if it had one). */
  private drop(path: string, entry: { fh?: Promise<FileHandle>; size: number; idle: NodeJS.Timeout | undefined }): Promise<void> {
    if (this.entries.get(path) !== entry) return Promise.resolve();
    this.entries.delete(path);
    if (entry.idle) clearTimeout(entry.idle);
    this.cachedBytes -= entry.size;
    return entry.fh ? entry.fh.then((fh) => fh.close()).catch(() => undefined) : Promise.resolve();
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.entries].map(([path, e]) => this.drop(path, e)));
  }
}

/** How long a resolved token is trusted without asking the store again (every block asks). */
const TOKEN_CACHE_MS = 1000;

export class PackageEndpoint {
  private readonly now: () => number;
  private readonly progress = new Map<string, DownloadProgress>();
  private readonly files = new SharedFiles(10_000);
  private readonly tokens = new Map<string, { jobId: string; path: string; size: number; until: number }>();
  private listener: ((jobId: string, progress: DownloadProgress) => void) | undefined;

  constructor(private readonly options: PackageEndpointOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Mounts /pkg/<token> on a CoAP server (hidden from /.well-known/core). */
  mount(server: CoapServer): void {
    server.resource(PACKAGE_RESOURCE, { prefix: true, hidden: true, get: (request) => this.serve(request) });
  }

  /** How far a job's download got (bytes the device asked for), if it started. */
  progressOf(jobId: string): DownloadProgress | undefined {
    return this.progress.get(jobId);
  }

  /** Progress recorded before a restart (see InstallDriver): a resumed download counts on from there. */
  restoreProgress(jobId: string, progress: DownloadProgress): void {
    const now = this.progress.get(jobId);
    if (!now || now.served < progress.served) this.progress.set(jobId, { served: progress.served, size: progress.size, at: progress.at });
  }

  /** The job ended: drop its progress and any cached token. */
  forget(jobId: string): void {
    this.progress.delete(jobId);
    this.withdraw(jobId);
  }

  /** The job's token was replaced or withdrawn in the store: stop honouring the cached one now. */
  withdraw(jobId: string): void {
    for (const [token, t] of this.tokens) if (t.jobId === jobId) this.tokens.delete(token);
  }

  async close(): Promise<void> {
    this.tokens.clear();
    await this.files.closeAll();
  }

  /**
   * A job's package as a BlockSource read from disk block by block (the pull endpoint and the
   * driver's Block1 push both use it), recording progress.
   */
  fileSource(jobId: string, path: string, size: number): BlockSource {
    return {
      size,
      read: async (offset, length) => {
        const chunk = await this.files.read(path, size, offset, Math.max(0, Math.min(length, size - offset)));
        this.served(jobId, offset + chunk.length, size);
        return chunk;
      },
    };
  }

  onProgress(listener: (jobId: string, progress: DownloadProgress) => void): void {
    this.listener = listener;
  }

  /** The file a token gives access to now, or undefined (unknown, expired, withdrawn, package gone). */
  async resolve(token: string): Promise<{ jobId: string; path: string; size: number } | undefined> {
    if (!token) return undefined;
    const now = this.now();
    const cached = this.tokens.get(token);
    if (cached && cached.until > now) return cached;
    this.tokens.delete(token);
    const job = await this.options.jobs.getByToken(token);
    if (!job || job.packageSha256 === null || job.tokenExpiresAt === null || job.tokenExpiresAt <= now || job.state !== 'downloading') return undefined;
    const record = await this.options.catalog.get(job.packageSha256);
    if (!record) return undefined;
    const found = { jobId: job.id, path: this.options.catalog.pathOf(record.sha256), size: record.size };
    if (this.tokens.size > 100_000) this.tokens.clear();
    this.tokens.set(token, { ...found, until: Math.min(now + TOKEN_CACHE_MS, job.tokenExpiresAt) });
    return found;
  }

  /** Records that bytes up to `end` of a job's package were sent (CoAP blocks, HTTP streams). */
  served(jobId: string, end: number, size: number): void {
    const before = this.progress.get(jobId);
    const p = { served: Math.max(before?.served ?? 0, end), size, at: this.now() };
    this.progress.set(jobId, p);
    this.listener?.(jobId, p);
  }

  private async serve(request: CoapRequest): Promise<CoapResponse> {
    const segments = request.segments;
    if (segments.length !== 2 || segments[0] !== 'pkg' || !segments[1]) return { code: Code.NotFound };
    const found = await this.resolve(segments[1]);
    if (!found) return { code: Code.NotFound, payload: 'unknown or expired package token' };
    const source = this.fileSource(found.jobId, found.path, found.size);
    return { code: Code.Content, contentFormat: ContentFormat.OctetStream, payload: source };
  }
}
