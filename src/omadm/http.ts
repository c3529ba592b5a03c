/**
 * The OMA DM HTTP(S) endpoint (OMA-TS-DM_Protocol-V1_2 over HTTP, the SyncML HTTP binding):
 * the I/O edge around DmServerSession. node:https directly rather than fastify: one POST route
 * whose body must stay raw bytes (WBXML, and the exact bytes an x-syncml-hmac covers), with its
 * own size bound and media types, so a router and content-type parsers would only be in the way.
 *
 * Per request: bounded body → media type → decode → session (by SessionID + SyncHdr/Source) →
 * account from the store → engine → effects written to the store → reply. A body that cannot be
 * decoded has no SessionID to answer in SyncML, so it gets a plain HTTP 400.
 */
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createReadStream } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { formatHmacHeader, hmacMac, parseHmacHeader } from './auth.js';
import type { HmacHeader } from './auth.js';
import { OmaDmFormatError } from './errors.js';
import { DmServerSession } from './session.js';
import type { DmAccount, ReceiveOutput, ServerJob, SessionConfig, SessionEffect } from './session.js';
import { SYNCML_DM_WBXML, SYNCML_DM_XML, decodeSyncML, encodeSyncML } from './syncml.js';
import type { SyncMLEncoding } from './syncml.js';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import type { DeviceFactsPatch, DeviceFactsRepository } from '../store/types.js';

/** The media types DM clients send: DM 1.2's and the legacy SyncML 1.1 ones older engines still use. */
const MEDIA_TYPES: ReadonlyMap<string, SyncMLEncoding> = new Map([
  [SYNCML_DM_XML, 'xml'],
  [SYNCML_DM_WBXML, 'wbxml'],
  ['application/vnd.syncml+xml', 'xml'],
  ['application/vnd.syncml+wbxml', 'wbxml'],
]);

/** The device-facts endpoint name of a DM device: DM DevIds and LwM2M endpoint names never collide. */
export function factsEndpointOf(deviceId: string): string {
  return `omadm:${deviceId}`;
}

/** What the endpoint needs of the store. */
export interface OmaDmStore {
  readonly omadmAccounts: {
    get(deviceId: string): Promise<DmAccount | null>;
    setNonce(deviceId: string, nonce: Uint8Array, now: number): Promise<boolean>;
    /** The nonce a device gave Depot for its server credential (needed when accounts have server credentials). */
    setServerNonce?(deviceId: string, nonce: Uint8Array, now: number): Promise<boolean>;
  };
  readonly deviceFacts: Pick<DeviceFactsRepository, 'upsert'>;
}

export interface OmaDmServerOptions {
  readonly store: OmaDmStore;
  readonly host?: string;
  readonly port: number;
  /** The server's TLS certificate and key (PEM). Without it the endpoint is plain HTTP, which needs `insecureHttp`. */
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly insecureHttp?: boolean;
  /** The server's URI in SyncHdr/Source; also sent as RespURI when given as `respUri`. */
  readonly serverUri?: string;
  readonly respUri?: string;
  readonly allowBasic?: boolean;
  /** Largest body accepted, and the MaxMsgSize Depot announces (default 64 KiB). */
  readonly maxMessageBytes?: number;
  readonly maxSessions?: number;
  readonly sessionTimeoutMs?: number;
  /** Operator commands for a device's next session (after the facts are read). */
  readonly jobsFor?: (deviceId: string) => readonly ServerJob[] | Promise<readonly ServerJob[]>;
  readonly onEffect?: (effect: SessionEffect) => void | Promise<void>;
  /** A device authenticated with its account (the bootstrap's acceptance, src/omadm/bootstrap/service.ts). */
  readonly onAuthenticated?: (deviceId: string) => void | Promise<void>;
  /** A session's DevInfo/DevDetail facts, once stored (the inventory hears of the device). */
  readonly onFacts?: (deviceId: string, facts: DeviceFactsPatch) => void | Promise<void>;
  readonly log?: (line: string) => void;
  readonly clock?: Clock;
  /**
   * Authentication failures per device (default 5) and per source address (default 50) within
   * `throttleWindowMs` before answers are refusals without a check. A session's first attempt that
   * fails counts for its device only: each phone's first digest (over a nonce it has not been
   * given yet, or a stale one) fails once as the normal nonce round, and many phones share a carrier
   * NAT. A failure after Depot gave a fresh nonce in the same session counts for both.
   */
  readonly throttleFailuresPerDevice?: number;
  readonly throttleFailuresPerSource?: number;
  readonly throttleWindowMs?: number;
  readonly nonce?: () => Uint8Array;
  /**
   * Package downloads on the same HTTPS port (`GET /pkg/<token>`, the SCOMO PkgURL), with Range
   * for resuming (RFC 9110 §14): the token is the capability, resolved to a file while its job is open.
   */
  readonly downloads?: {
    resolve(token: string): Promise<{ jobId: string; path: string; size: number } | undefined>;
    served?(jobId: string, end: number): void | Promise<void>;
  };
}

/** `bytes=N-` or `bytes=N-M` against a size: the inclusive range, 'unsatisfiable', or undefined for no (or an ignorable) Range. */
export function parseByteRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d{1,15})-(\d{0,15})$/.exec(header.trim());
  if (!m) return undefined; // other forms (suffix, several ranges) are answered with the whole file, as RFC 9110 allows
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/** Authentication failures counted per key within a window (sans-IO: takes the time). */
export class AuthThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly maxKeys = 10_000,
  ) {}

  blocked(key: string, now: number): boolean {
    const list = this.failures.get(key);
    if (list === undefined) return false;
    const recent = list.filter((t) => now - t < this.windowMs);
    if (recent.length === 0) this.failures.delete(key);
    else this.failures.set(key, recent);
    return recent.length >= this.limit;
  }

  record(key: string, now: number): void {
    if (!this.failures.has(key) && this.failures.size >= this.maxKeys) {
      // Bounded: the oldest key goes (Map keeps insertion order).
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    const list = this.failures.get(key) ?? [];
    list.push(now);
    if (list.length > this.limit * 2) list.splice(0, list.length - this.limit * 2);
    this.failures.set(key, list);
  }
}

const FACT_FIELDS: Readonly<Record<string, keyof DeviceFactsPatch>> = {
  './DevInfo/DevId': 'serialNumber',
  './DevInfo/Man': 'manufacturer',
  './DevInfo/Mod': 'modelNumber',
  './DevDetail/DevTyp': 'deviceType',
  './DevDetail/FwV': 'firmwareVersion',
  './DevDetail/SwV': 'softwareVersion',
  './DevDetail/HwV': 'hardwareVersion',
};

/** DevInfo/DevDetail leaves as a device-facts patch: the typed fields, the rest under extra ("omadm:./DevInfo/DmV"). */
export function factsPatch(facts: Readonly<Record<string, string>>): DeviceFactsPatch {
  const patch: { -readonly [K in keyof DeviceFactsPatch]: DeviceFactsPatch[K] } = {};
  const extra: Record<string, string> = {};
  for (const [uri, value] of Object.entries(facts)) {
    const field = FACT_FIELDS[uri];
    if (field !== undefined && field !== 'extra') (patch as Record<string, string>)[field] = value;
    else extra[`omadm:${uri}`] = value;
  }
  // A phone's software version is its OS ("Android 4.4"): the inventory's OS column too.
  if (facts['./DevDetail/SwV'] !== undefined) patch.osVersion = facts['./DevDetail/SwV'];
  if (Object.keys(extra).length > 0) patch.extra = extra;
  return patch;
}

class BodyTooLarge extends Error {}

/** The session table is walked for idle sessions at most this often (while it is not full). */
const SWEEP_INTERVAL_MS = 1000;

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > limit) {
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.destroy();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Printable, bounded: device strings go into log lines. */
function shown(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

export class OmaDmHttpServer {
  private readonly server: Server;
  private readonly sessions = new Map<string, DmServerSession>();
  private readonly clock: Clock;
  private readonly deviceThrottle: AuthThrottle;
  private readonly sourceThrottle: AuthThrottle;
  private readonly maxMessageBytes: number;
  private readonly maxSessions: number;
  private readonly log: (line: string) => void;
  /** One config for every session (the session keeps it with its defaults, shared). */
  private readonly sessionConfig: SessionConfig;

  constructor(private readonly options: OmaDmServerOptions) {
    if (options.tls === undefined && options.insecureHttp !== true) throw new Error('the OMA DM endpoint needs a TLS certificate, or insecureHttp for labs');
    this.clock = options.clock ?? systemClock;
    this.deviceThrottle = new AuthThrottle(options.throttleFailuresPerDevice ?? 5, options.throttleWindowMs ?? 60_000);
    this.sourceThrottle = new AuthThrottle(options.throttleFailuresPerSource ?? 50, options.throttleWindowMs ?? 60_000);
    this.maxMessageBytes = options.maxMessageBytes ?? 64 * 1024;
    this.maxSessions = options.maxSessions ?? 10_000;
    this.log = options.log ?? (() => {});
    this.sessionConfig = {
      serverUri: options.serverUri ?? 'depot',
      ...(options.allowBasic === undefined ? {} : { allowBasic: options.allowBasic }),
      ...(options.sessionTimeoutMs === undefined ? {} : { timeoutMs: options.sessionTimeoutMs }),
      ...(options.nonce === undefined ? {} : { nonce: options.nonce }),
      ownMaxMsgSize: this.maxMessageBytes,
    };
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.handle(req, res).catch((error: unknown) => {
        this.log(`omadm: request failed: ${error instanceof Error ? error.message : String(error)}`);
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    };
    this.server = options.tls === undefined ? createHttpServer(handler) : createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler);
    this.server.headersTimeout = 20_000;
    this.server.requestTimeout = 30_000;
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host ?? '::', () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.sessions.clear();
  }

  get openSessions(): number {
    return this.sessions.size;
  }

  /** When the session table was last swept. */
  private lastSweep = -Infinity;

  /**
   * Drops idle sessions; run before admitting a new one, so the table stays bounded without a
   * timer. A walk over the whole table at most once a second (SWEEP_INTERVAL_MS), or whenever the
   * table is full: not once per new session, which with thousands open would cost more than the
   * session. A session idle past its time is refused by the session itself in the meantime.
   */
  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_INTERVAL_MS && this.sessions.size < this.maxSessions) return;
    this.lastSweep = now;
    for (const [key, session] of this.sessions) {
      const ended = session.expire(now);
      if (ended.length > 0) {
        this.sessions.delete(key);
        void this.applyAll(ended, now);
        this.log(`omadm: session of ${shown(session.deviceId)} timed out`);
      }
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if ((req.method === 'GET' || req.method === 'HEAD') && this.options.downloads !== undefined && /^\/pkg\/[^/?]*$/.test(req.url ?? '')) {
      await this.download(req, res, (req.url ?? '').slice(5));
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const encoding = MEDIA_TYPES.get(mediaType);
    if (encoding === undefined) {
      res.writeHead(415, { accept: [...MEDIA_TYPES.keys()].join(', ') }).end();
      req.resume();
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(req, this.maxMessageBytes);
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        this.log(`omadm: refused a body over ${this.maxMessageBytes} bytes from ${req.socket.remoteAddress ?? '?'}`);
        res.writeHead(413, { connection: 'close' }).end();
        return;
      }
      throw error;
    }
    let message;
    try {
      message = decodeSyncML(body, encoding, { limits: { maxBytes: this.maxMessageBytes } });
    } catch (error) {
      if (!(error instanceof OmaDmFormatError)) throw error;
      this.log(`omadm: undecodable ${encoding} message from ${req.socket.remoteAddress ?? '?'}: ${error.message}`);
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end(`${error.message}\n`);
      return;
    }
    let hmac: HmacHeader | undefined;
    const hmacValue = req.headers['x-syncml-hmac'];
    if (typeof hmacValue === 'string') {
      try {
        hmac = parseHmacHeader(hmacValue);
      } catch (error) {
        this.log(`omadm: unreadable x-syncml-hmac: ${error instanceof Error ? error.message : String(error)}`);
        res.writeHead(400).end();
        return;
      }
    }

    const now = this.clock.now();
    const deviceId = message.header.source.locUri;
    // The source address is part of the key: a session authenticated once (MD5) is not open to another host that knows its SessionID and DevId.
    const key = `${message.header.sessionId}\u0000${deviceId}\u0000${req.socket.remoteAddress ?? '?'}`;
    let session = this.sessions.get(key);
    // MsgID 1 starts a session (RepPro <MsgID>): a phone that restarted and reuses its SessionID gets a new one.
    if (session !== undefined && message.header.msgId === '1') {
      this.sessions.delete(key);
      await this.applyAll(session.close('server-abort', 'a new session under the same SessionID'), now);
      session = undefined;
    }
    if (session === undefined) {
      this.sweep(now);
      if (this.sessions.size >= this.maxSessions) {
        this.log('omadm: session table full, answering 503');
        res.writeHead(503, { 'retry-after': '30' }).end();
        return;
      }
      if (deviceId.length > 128 || message.header.sessionId.length > 32) {
        res.writeHead(400).end();
        return;
      }
      session = new DmServerSession(message.header.sessionId, deviceId, [], this.sessionConfig, now);
      this.sessions.set(key, session);
    }
    // An authenticated MD5/Basic session checks nothing more against the account: no store read (and no decryption) per message.
    const account = session.needsAccount ? ((await this.options.store.omadmAccounts.get(deviceId)) ?? undefined) : undefined;
    const source = `source:${req.socket.remoteAddress ?? '?'}`;
    const throttled = !session.isAuthenticated && (this.deviceThrottle.blocked(deviceId, now) || this.sourceThrottle.blocked(source, now));
    let out: ReceiveOutput;
    try {
      out = session.receive({
        message,
        encoding,
        account,
        ...(hmac === undefined ? {} : { hmac: { header: hmac, body } }),
        throttled,
        ...(this.options.respUri === undefined ? {} : { respUri: this.options.respUri }),
        now,
      });
    } catch (error) {
      this.sessions.delete(key);
      throw error;
    }
    // Everything the session changed is in the store before the reply goes out.
    await this.applyEffects(out.effects, source, now);
    // Operator jobs are taken from their queue only once the device has proved who it is.
    if (!out.ended && out.effects.some((e) => e.kind === 'authenticated') && this.options.jobsFor !== undefined) {
      session.addJobs(await this.options.jobsFor(deviceId));
    }
    if (out.ended) this.sessions.delete(key);
    const reply = out.encoded ?? encodeSyncML(out.reply, encoding);
    const headers: Record<string, string | number> = { 'content-type': mediaType === 'application/vnd.syncml+xml' || mediaType === 'application/vnd.syncml+wbxml' ? mediaType : encoding === 'xml' ? SYNCML_DM_XML : SYNCML_DM_WBXML, 'content-length': reply.length };
    // Server authentication in an HMAC session: the MAC over the exact reply bytes (OMA-TS-DM_Security-V1_2 x-syncml-hmac).
    if (out.mac !== undefined) headers['x-syncml-hmac'] = formatHmacHeader({ algorithm: 'MD5', username: out.mac.username, mac: hmacMac(out.mac.username, out.mac.password, out.mac.nonce, reply) });
    res.writeHead(200, headers);
    res.end(reply);
  }

  private async download(req: IncomingMessage, res: ServerResponse, token: string): Promise<void> {
    const downloads = this.options.downloads!;
    const found = await downloads.resolve(decodeURIComponent(token)).catch(() => undefined);
    if (!found) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('unknown or expired package link\n');
      return;
    }
    const range = parseByteRange(typeof req.headers.range === 'string' ? req.headers.range : undefined, found.size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${found.size}` }).end();
      return;
    }
    const { start, end } = range ?? { start: 0, end: found.size - 1 };
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', 'content-length': String(Math.max(0, end - start + 1)) };
    if (range !== undefined) headers['content-range'] = `bytes ${start}-${end}/${found.size}`;
    res.writeHead(range === undefined ? 200 : 206, headers);
    if (req.method === 'HEAD' || found.size === 0) {
      res.end();
      return;
    }
    let sent = start;
    const stream = createReadStream(found.path, { start, end });
    stream.on('data', (chunk) => { sent += chunk.length; });
    await new Promise<void>((resolve) => {
      const done = (): void => resolve();
      stream.on('error', (error) => {
        this.log(`omadm: package download of job ${found.jobId} failed: ${error.message}`);
        res.destroy();
        done();
      });
      res.on('close', () => {
        stream.destroy();
        done();
      });
      stream.pipe(res);
    });
    if (sent > start) await Promise.resolve(downloads.served?.(found.jobId, sent)).catch(() => undefined);
  }

  /** Effects of a session ended outside a request (no source address to throttle). */
  private async applyAll(effects: readonly SessionEffect[], now: number): Promise<void> {
    try {
      await this.applyEffects(effects, 'source:?', now);
    } catch (error) {
      this.log(`omadm: effects of an ended session failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /**
   * A message's effects: first its store writes (nonces, facts), asked for together so that they
   * share one group commit (src/store/sqlite/batch.ts: the nonce durably, on disk when it settles),
   * then, in order, what each effect tells the rest of Depot (onFacts, onAuthenticated, onEffect).
   * Any write failing fails the request (HTTP 500, no reply carrying a nonce that is not stored).
   */
  private async applyEffects(effects: readonly SessionEffect[], source: string, now: number): Promise<void> {
    const writes: Promise<unknown>[] = [];
    const patches = new Map<SessionEffect, DeviceFactsPatch>();
    const at = Date.now();
    for (const effect of effects) {
      if (effect.kind === 'client-nonce') writes.push(this.options.store.omadmAccounts.setNonce(effect.deviceId, effect.nonce, at));
      else if (effect.kind === 'server-nonce' && this.options.store.omadmAccounts.setServerNonce !== undefined) writes.push(this.options.store.omadmAccounts.setServerNonce(effect.deviceId, effect.nonce, at));
      else if (effect.kind === 'facts') {
        const patch = factsPatch(effect.facts);
        patches.set(effect, patch);
        writes.push(this.options.store.deviceFacts.upsert(factsEndpointOf(effect.deviceId), patch, at));
      }
    }
    if (writes.length === 1) await writes[0];
    else if (writes.length > 1) await Promise.all(writes);
    for (const effect of effects) await this.apply(effect, source, now, patches.get(effect));
  }

  /** What one effect tells the rest of Depot, once the store has what it changed (applyEffects). */
  private async apply(effect: SessionEffect, source: string, now: number, patch: DeviceFactsPatch | undefined): Promise<void> {
    switch (effect.kind) {
      case 'facts':
        await this.options.onFacts?.(effect.deviceId, patch ?? factsPatch(effect.facts));
        break;
      case 'auth-failed':
        this.deviceThrottle.record(effect.deviceId, now);
        if (effect.attempt > 1) this.sourceThrottle.record(source, now);
        this.log(effect.final
          ? `omadm: authentication of ${shown(effect.deviceId)} from ${source.slice(7)} refused after ${effect.attempt} attempts: ${effect.reason}`
          : `omadm: authentication of ${shown(effect.deviceId)} from ${source.slice(7)}: ${effect.reason === 'throttled' ? 'not checked (throttled)' : effect.reason}, challenged with a new nonce`);
        break;
      case 'server-auth-refused':
        this.log(`omadm: ${shown(effect.deviceId)} did not accept Depot's server credential (${effect.code})${effect.retry ? ', resent over its new nonce' : ''}`);
        break;
      case 'authenticated':
        await this.options.onAuthenticated?.(effect.deviceId);
        break;
      case 'protocol-warning':
        this.log(`omadm: ${shown(effect.deviceId)}: ${effect.text}`);
        break;
      case 'session-ended':
        if (effect.reason !== 'completed') this.log(`omadm: session of ${shown(effect.deviceId)} ended: ${effect.reason}${effect.detail === undefined ? '' : ` (${effect.detail})`}`);
        break;
      default:
        break;
    }
    await this.options.onEffect?.(effect);
  }
}
