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
import { open } from 'node:fs/promises';
import { Code, ContentFormat } from '../coap/codes.js';
import type { BlockSource, CoapRequest, CoapResponse, CoapServer } from '../coap/server.js';
import type { InstallJobRepository } from '../store/types.js';
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

export class PackageEndpoint {
  private readonly now: () => number;
  private readonly progress = new Map<string, DownloadProgress>();
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

  forget(jobId: string): void {
    this.progress.delete(jobId);
  }

  onProgress(listener: (jobId: string, progress: DownloadProgress) => void): void {
    this.listener = listener;
  }

  /** The file a token gives access to now, or undefined (unknown, expired, withdrawn, package gone). */
  async resolve(token: string): Promise<{ jobId: string; path: string; size: number } | undefined> {
    if (!token) return undefined;
    const job = await this.options.jobs.getByToken(token);
    if (!job || job.packageSha256 === null || job.tokenExpiresAt === null || job.tokenExpiresAt <= this.now() || job.state !== 'downloading') return undefined;
    const record = await this.options.catalog.get(job.packageSha256);
    if (!record) return undefined;
    return { jobId: job.id, path: this.options.catalog.pathOf(record.sha256), size: record.size };
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
    const { path, size, jobId } = found;
    const source: BlockSource = {
      size,
      read: async (offset, length) => {
        const fh = await open(path, 'r');
        try {
          const buf = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
          const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
          this.served(jobId, offset + bytesRead, size);
          return buf.subarray(0, bytesRead);
        } finally {
          await fh.close();
        }
      },
    };
    return { code: Code.Content, contentFormat: ContentFormat.OctetStream, payload: source };
  }
}
