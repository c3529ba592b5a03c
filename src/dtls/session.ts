/** Session resumption state (RFC 5246 §7.3 abbreviated handshake, RFC 7627 §5.3). */
import type { PeerIdentity } from '../coap/transport.js';
import type { Clock } from '../util/clock.js';

/** What both sides keep of a finished full handshake so it can be resumed. Holds key material: never log it. */
export interface ResumableSession {
  readonly id: Uint8Array;
  readonly masterSecret: Uint8Array;
  readonly cipherSuite: number;
  readonly extendedMasterSecret: boolean;
  readonly peerIdentity?: PeerIdentity;
}

const keyOf = (id: Uint8Array): string => Buffer.from(id).toString('hex');

/** The server's bounded cache of resumable sessions, oldest evicted first, each with a lifetime. */
export class SessionCache {
  private readonly entries = new Map<string, { session: ResumableSession; expires: number }>();

  constructor(
    private readonly clock: Clock,
    readonly maxEntries = 10_000,
    readonly lifetimeMs = 24 * 3600_000,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  put(session: ResumableSession): void {
    const k = keyOf(session.id);
    this.entries.delete(k);
    this.entries.set(k, { session, expires: this.clock.now() + this.lifetimeMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  get(id: Uint8Array): ResumableSession | undefined {
    if (id.length === 0) return undefined;
    const k = keyOf(id);
    const e = this.entries.get(k);
    if (!e) return undefined;
    if (e.expires <= this.clock.now()) {
      this.entries.delete(k);
      return undefined;
    }
    return e.session;
  }

  delete(id: Uint8Array): void {
    this.entries.delete(keyOf(id));
  }

  /** Removes every session the predicate selects; returns how many. */
  deleteWhere(predicate: (session: ResumableSession) => boolean): number {
    let n = 0;
    for (const [k, e] of [...this.entries]) {
      if (predicate(e.session)) {
        this.entries.delete(k);
        n++;
      }
    }
    return n;
  }
}
