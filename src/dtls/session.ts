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

/**
 * A cached session, compact: the session ID is only the map key (a one-byte string), the master
 * secret a copy of its own (48 bytes stay inside the V8 heap, where a larger array would get a
 * separate malloc'd backing store), the expiry whole milliseconds.
 */
class CachedSession {
  constructor(
    readonly key: string,
    readonly masterSecret: Uint8Array,
    readonly cipherSuite: number,
    readonly extendedMasterSecret: boolean,
    readonly peerIdentity: PeerIdentity | undefined,
    readonly expires: number,
  ) {}

  /** A ResumableSession with copies of the ID and the master secret. */
  session(): ResumableSession {
    const s = {
      id: Uint8Array.from(this.key, (c) => c.charCodeAt(0)),
      masterSecret: this.masterSecret.slice(),
      cipherSuite: this.cipherSuite,
      extendedMasterSecret: this.extendedMasterSecret,
    };
    return this.peerIdentity ? { ...s, peerIdentity: this.peerIdentity } : s;
  }
}

/** Map key of a session ID: one byte per character, half the size of hex. */
const keyOf = (id: Uint8Array): string => String.fromCharCode(...id);

/** The server's bounded cache of resumable sessions, oldest evicted first, each with a lifetime. */
export class SessionCache {
  private readonly entries = new Map<string, CachedSession>();

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
    this.entries.set(k, new CachedSession(k, session.masterSecret.slice(), session.cipherSuite, session.extendedMasterSecret, session.peerIdentity, Math.ceil(this.clock.now() + this.lifetimeMs)));
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
    return e.session();
  }

  delete(id: Uint8Array): void {
    this.entries.delete(keyOf(id));
  }

  /** Removes every session the predicate selects; returns how many. */
  deleteWhere(predicate: (session: ResumableSession) => boolean): number {
    let n = 0;
    for (const [k, e] of [...this.entries]) {
      if (predicate(e.session())) {
        this.entries.delete(k);
        n++;
      }
    }
    return n;
  }
}
