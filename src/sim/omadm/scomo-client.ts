/**
 * The SCOMO 1.0 side of a simulated phone (OMA-TS-DM-SCOMO-V1_0), written from the spec and not
 * from Depot's server: the phone's ./SCOMO tree (Download, Inventory/Delivered,
 * Inventory/Deployed), Exec of their Operations answered 202 (accepted, the result comes later),
 * the package fetched from PkgURL over HTTPS with Range resumption across lost connections,
 * and the result reported by a Generic Alert carrying the Exec's Correlator.
 */
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { DmPhone, DmPhoneExtension } from './phone.js';
import type { ItemCommand } from '../../omadm/syncml.js';
import { seededRandom } from '../../util/seeded-random.js';

export const OPERATION_COMPLETE = 'org.openmobilealliance.softwarecomponent.OperationComplete';

export interface ScomoClientOptions {
  /** Where the SCOMO object is in the phone's tree (default ./SCOMO). */
  readonly root?: string;
  /** Roots trusted for HTTPS downloads (Depot's CA). */
  readonly ca?: string | readonly string[];
  /** The phone asks its user before installing: without a confirmed Alert 1101 in the same message, the result is 1401. */
  readonly requiresConfirmation?: boolean;
  /** Fraction of installs that fail (1405), drawn from a seeded generator so runs repeat. */
  readonly failureRate?: number;
  readonly seed?: number;
  /** Download retry: tries and the first delay (doubling to 2 s); the default rides out a server restart of half a minute. */
  readonly downloadTries?: number;
  readonly retryDelayMs?: number;
  /** A slow radio: the download is read at about this rate (tests stop the server in the middle). */
  readonly bytesPerSecond?: number;
  /** Download in pieces of this many bytes, one Range request each. */
  readonly chunkBytes?: number;
}


const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class ScomoClient implements DmPhoneExtension {
  readonly root: string;
  /** Completed installs (a test checks an install ran once). */
  installs = 0;
  /** Bytes fetched per download, including resumed requests (Range starts), for tests. */
  readonly rangeStarts: number[] = [];
  /** Bytes of the current download held so far. */
  received = 0;
  private readonly random: () => number;
  private readonly work = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    private readonly phone: DmPhone,
    private readonly options: ScomoClientOptions = {},
  ) {
    this.root = options.root ?? './SCOMO';
    this.random = seededRandom(options.seed ?? 1);
    // The SCOMO object exists from the start (its Download and Inventory interior nodes).
    for (const node of ['Download', 'Inventory/Deployed', 'Inventory/Delivered']) phone.addNode(`${this.root}/${node}`);
    phone.extend(this);
  }

  /** Gives up downloads in progress (the phone is switched off). */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves when every download and install started so far has ended (its alert queued). */
  async idle(): Promise<void> {
    while (this.work.size > 0) await Promise.all([...this.work]);
  }

  exec(uri: string, command: ItemCommand, context: { readonly confirmed: boolean | undefined }): number | undefined {
    if (!uri.startsWith(`${this.root}/`)) return undefined;
    const m = /^(.*)\/Operations\/(Download|DownloadInstall|DownloadInstallInactive|Install|InstallInactive|Activate|Deactivate|Remove)$/.exec(uri);
    if (!m) return 405;
    const [, node, operation] = m as unknown as [string, string, string];
    if (!this.phone.has(node)) return 404;
    const correlator = command.correlator;
    const asked = this.options.requiresConfirmation === true && context.confirmed !== true;
    const track = (p: Promise<void>): void => {
      const tracked = p.catch(() => undefined).finally(() => this.work.delete(tracked));
      this.work.add(tracked);
    };
    if (node.startsWith(`${this.root}/Download/`)) {
      if (!['Download', 'DownloadInstall', 'DownloadInstallInactive'].includes(operation)) return 405;
      const url = this.phone.get(`${node}/PkgURL`);
      if (url === undefined) return 412;
      track(this.download(node, operation, url, correlator, asked));
      return 202;
    }
    if (node.startsWith(`${this.root}/Inventory/Delivered/`)) {
      if (operation !== 'Install' && operation !== 'InstallInactive' && operation !== 'Remove') return 405;
      track(this.fromDelivered(node, operation, correlator, asked));
      return 202;
    }
    if (node.startsWith(`${this.root}/Inventory/Deployed/`)) {
      if (operation !== 'Activate' && operation !== 'Deactivate' && operation !== 'Remove') return 405;
      const id = node.slice(node.lastIndexOf('/') + 1);
      if (operation === 'Remove') this.phone.delete(node);
      else this.phone.set(`${node}/State`, operation === 'Activate' ? 'Active' : 'Inactive');
      this.report(correlator, `${node}/Operations/${operation}`, 1200, id);
      return 202;
    }
    return 405;
  }

  private report(correlator: string | undefined, source: string, code: number, identifier?: string): void {
    const data = identifier === undefined ? String(code) : `<ResultCode>${code}</ResultCode><Identifier>${identifier}</Identifier>`;
    this.phone.queueGenericAlert(correlator, { source: { locUri: source }, meta: { type: OPERATION_COMPLETE, format: 'chr' }, data });
  }

  private async download(node: string, operation: string, url: string, correlator: string | undefined, needsUser: boolean): Promise<void> {
    const opUri = `${node}/Operations/${operation}`;
    this.phone.set(`${node}/Status`, 'DOWNLOAD_PROGRESSING');
    let bytes: Buffer;
    try {
      bytes = await this.fetch(url);
    } catch {
      this.phone.set(`${node}/Status`, 'DOWNLOAD_FAILED');
      this.report(correlator, opUri, 1402);
      return;
    }
    const pkgId = this.phone.get(`${node}/PkgID`) ?? node.slice(node.lastIndexOf('/') + 1);
    const id = pkgId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64) || 'component';
    if (operation === 'Download') {
      const delivered = `${this.root}/Inventory/Delivered/${id}`;
      this.phone.set(`${delivered}/PkgID`, pkgId);
      this.phone.set(`${delivered}/Size`, String(bytes.length));
      this.phone.set(`${delivered}/Operations/Install`, '');
      this.phone.set(`${node}/Status`, 'DOWNLOAD_COMPLETE');
      this.report(correlator, opUri, 1200, id);
      return;
    }
    this.install(node, opUri, id, pkgId, operation === 'DownloadInstallInactive' ? 'Inactive' : 'Active', correlator, needsUser);
  }

  private async fromDelivered(node: string, operation: string, correlator: string | undefined, needsUser: boolean): Promise<void> {
    await Promise.resolve();
    const id = node.slice(node.lastIndexOf('/') + 1);
    const opUri = `${node}/Operations/${operation}`;
    if (operation === 'Remove') {
      this.phone.delete(node);
      this.report(correlator, opUri, 1200, id);
      return;
    }
    this.install(node, opUri, id, this.phone.get(`${node}/PkgID`) ?? id, operation === 'InstallInactive' ? 'Inactive' : 'Active', correlator, needsUser);
  }

  private install(node: string, opUri: string, id: string, pkgId: string, state: string, correlator: string | undefined, needsUser: boolean): void {
    if (needsUser) {
      // The phone would ask its user; nobody confirmed within the session: declined (SCOMO 1401).
      this.report(correlator, opUri, 1401);
      return;
    }
    if (this.random() < (this.options.failureRate ?? 0)) {
      this.phone.set(`${node}/Status`, 'INSTALL_FAILED');
      this.report(correlator, opUri, 1405);
      return;
    }
    const deployed = `${this.root}/Inventory/Deployed/${id}`;
    this.phone.set(`${deployed}/ID`, id);
    this.phone.set(`${deployed}/PkgIDRef`, pkgId);
    this.phone.set(`${deployed}/State`, state);
    for (const op of ['Activate', 'Deactivate', 'Remove']) this.phone.set(`${deployed}/Operations/${op}`, '');
    this.phone.set(`${node}/Status`, 'INSTALL_COMPLETE');
    this.installs++;
    this.report(correlator, opUri, 1200, id);
  }

  /**
   * GET with Range resumption: a lost connection or a refused one (server restarting) is retried
   * from the bytes already held. With `chunkBytes` the phone asks for the package piece by piece
   * (as many phones do), each piece a Range request.
   */
  private async fetch(url: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let have = 0;
    let size: number | undefined;
    let delay = this.options.retryDelayMs ?? 250;
    let failures = 0;
    const tries = this.options.downloadTries ?? 120;
    const piece = this.options.chunkBytes;
    while (failures < tries && !this.stopped) {
      try {
        this.rangeStarts.push(have);
        const res = await this.get(url, have, piece);
        if (res.status === 200 && have > 0) {
          chunks.length = 0; // the server ignored Range: start over
          have = 0;
        } else if (res.status !== 200 && res.status !== 206) {
          res.stream.resume();
          if (res.status === 404) throw Object.assign(new Error('the package link is gone'), { fatal: true });
          throw new Error(`HTTP ${res.status}`);
        }
        size = res.size ?? size;
        const expected = res.length;
        let got = 0;
        await new Promise<void>((resolve, reject) => {
          res.stream.on('data', (c: Buffer) => {
            chunks.push(c);
            have += c.length;
            got += c.length;
            this.received = have;
          });
          res.stream.on('end', () => (expected === undefined || got >= expected ? resolve() : reject(new Error('short body'))));
          res.stream.on('error', reject);
          res.stream.on('close', () => reject(new Error('closed')));
        });
        // A slow radio: the piece took as long as the rate says.
        if (this.options.bytesPerSecond !== undefined) await sleep(Math.ceil((got / this.options.bytesPerSecond) * 1000));
        if (size === undefined || have >= size) return Buffer.concat(chunks);
        delay = this.options.retryDelayMs ?? 250;
        continue; // the next piece
      } catch (error) {
        if ((error as { fatal?: boolean }).fatal === true) throw error;
        failures++;
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 2000);
    }
    throw new Error('download failed');
  }

  private get(url: string, from: number, piece: number | undefined): Promise<{ status: number; size: number | undefined; length: number | undefined; stream: NodeJS.ReadableStream }> {
    return new Promise((resolve, reject) => {
      const u = new URL(url);
      const make = u.protocol === 'https:' ? httpsRequest : httpRequest;
      const ca = this.options.ca;
      const range = piece !== undefined ? `bytes=${from}-${from + piece - 1}` : from > 0 ? `bytes=${from}-` : undefined;
      const req = make(u, { method: 'GET', headers: range === undefined ? {} : { range }, ...(u.protocol === 'https:' && ca !== undefined ? { ca: typeof ca === 'string' ? ca : [...ca] } : {}) }, (res) => {
        const total = /\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''))?.[1] ?? (res.statusCode === 200 ? res.headers['content-length'] : undefined);
        const length = res.headers['content-length'];
        resolve({ status: res.statusCode ?? 0, size: total === undefined ? undefined : Number(total), length: length === undefined ? undefined : Number(length), stream: res });
      });
      req.on('error', reject);
      req.end();
    });
  }
}
