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
 * A cached session, compact: the session ID and master secret share one buffer (each small typed
 * array costs ~200 bytes of heap on its own), the expiry is whole milliseconds.
 */
class CachedSession {
  constructor(
    /** session ID ‖ master secret */
    readonly secrets: Uint8Array,
    readonly idLength: number,
    readonly cipherSuite: number,
    readonly extendedMasterSecret: boolean,
    readonly peerIdentity: PeerIdentity | undefined,
    readonly expires: number,
  ) {}

  /** A ResumableSession with copies of the ID and the master secret. */
  session(): ResumableSession {
    const s = {
      id: this.secrets.slice(0, this.idLength),
      masterSecret: this.secrets.slice(this.idLength),
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
    const secrets = new Uint8Array(session.id.length + session.masterSecret.length);
    secrets.set(session.id);
    secrets.set(session.masterSecret, session.id.length);
    this.entries.delete(k);
    this.entries.set(k, new CachedSession(secrets, session.id.length, session.cipherSuite, session.extendedMasterSecret, session.peerIdentity, Math.ceil(this.clock.now() + this.lifetimeMs)));
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
