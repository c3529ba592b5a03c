/**
 * Device-side package download for Object 9 pull (Package URI): CoAP (Block2, resumable from
 * any offset) and HTTP(S) (Range, resumable). Streams chunks to the Object 9 instance, which
 * writes them to staging on disk; nothing holds the whole package.
 */
import { CoapClient, CoapClientError } from '../../coap/client.js';
import { CoapRequestError } from '../../coap/endpoint.js';
import { FetchError } from '../objects/software-management/index.js';
import type { PackageFetcher } from '../objects/software-management/index.js';

type FetchOptions = Parameters<PackageFetcher['fetch']>[1];

export interface PackageFetcherOptions {
  timeoutMs?: number;
  blockSize?: number;
  /**
   * The device's DM session (Lwm2mClient.sessionClientFor): coap(s) URIs on the DM server are
   * fetched over it — for coaps://, the DTLS association and credentials the device already has.
   */
  session?: (uri: string) => CoapClient | undefined;
  /** A request over the DM session failed (Lwm2mClient.sessionRequestFailed: drop a dead association). */
  sessionFailed?: (uri: string, error: unknown) => Promise<void>;
}

export class DefaultPackageFetcher implements PackageFetcher {
  constructor(private readonly options: PackageFetcherOptions = {}) {}

  /** coap, http and https always; coaps over the DM session only (that is where its credentials are). */
  supports(uri: string): boolean {
    if (/^(coap|https?):\/\//.test(uri)) return true;
    return uri.startsWith('coaps://') && this.options.session?.(uri) !== undefined;
  }

  resumable(): boolean {
    return true;
  }

  fetch(uri: string, opts: FetchOptions): Promise<void> {
    return /^coaps?:\/\//.test(uri) ? this.fetchCoap(uri, opts) : this.fetchHttp(uri, opts);
  }

  private async fetchCoap(uri: string, opts: FetchOptions): Promise<void> {
    const shared = this.options.session?.(uri);
    if (!shared && uri.startsWith('coaps://')) throw new FetchError('CONNECTION_LOST', `GET ${uri}: the DTLS session with the server is gone`);
    const client = shared ?? new CoapClient({ deduplicationCapacity: 64 });
    try {
      await client.getBlocks(uri, {
        offset: opts.offset,
        blockSize: this.options.blockSize ?? 1024,
        timeout: this.options.timeoutMs ?? 30_000,
        signal: opts.signal,
        onBlock: (chunk) => opts.onData(chunk),
      });
    } catch (error) {
      if (shared) await this.options.sessionFailed?.(uri, error).catch(() => undefined);
      throw toFetchError(uri, error);
    } finally {
      if (!shared) await client.close();
    }
  }

  private async fetchHttp(uri: string, opts: FetchOptions): Promise<void> {
    let response: Response;
    try {
      response = await fetch(uri, { signal: opts.signal, ...(opts.offset > 0 ? { headers: { range: `bytes=${opts.offset}-` } } : {}) });
    } catch (error) {
      throw new FetchError('CONNECTION_LOST', `GET ${uri}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (response.status === 404 || response.status === 410) throw new FetchError('INVALID_URI', `GET ${uri}: ${response.status}`);
    if (response.status !== 200 && response.status !== 206) throw new FetchError('CONNECTION_LOST', `GET ${uri}: HTTP ${response.status}`);
    // A server that ignored Range answers 200 with the whole body: skip what we already have.
    let skip = response.status === 200 ? opts.offset : 0;
    const reader = response.body?.getReader();
    if (!reader) return;
    try {
      for (;;) {
        const { value, done } = (await reader.read()) as { value: Uint8Array | undefined; done: boolean };
        if (done || !value) return;
        let chunk = value;
        if (skip > 0) {
          const drop = Math.min(skip, chunk.length);
          chunk = chunk.subarray(drop);
          skip -= drop;
        }
        if (chunk.length > 0 && !(await opts.onData(chunk))) {
          await reader.cancel();
          return;
        }
      }
    } catch (error) {
      throw new FetchError('CONNECTION_LOST', `GET ${uri}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

function toFetchError(uri: string, error: unknown): FetchError {
  if (error instanceof FetchError) return error;
  // 4.04 from Depot's package endpoint: the one-time link is unknown or used up.
  if (error instanceof CoapClientError && error.response?.codeText === '4.04') return new FetchError('INVALID_URI', `GET ${uri}: 4.04`);
  if (error instanceof CoapRequestError || error instanceof CoapClientError) return new FetchError('CONNECTION_LOST', `GET ${uri}: ${error.message}`);
  return new FetchError('CONNECTION_LOST', `GET ${uri}: ${error instanceof Error ? error.message : String(error)}`);
}
