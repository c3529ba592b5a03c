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

/** TLS 1.2 master secrets are 48 bytes (RFC 5246 §8.1). */
const MASTER_LENGTH = 48;

/**
 * A cached session, compact: the session ID is only the map key (a one-byte string), the master
 * secret a slot of the cache's shared buffer (a typed array of its own would cost ~250 bytes of
 * heap per session), the expiry whole milliseconds.
 */
class CachedSession {
  constructor(
    readonly key: string,
    readonly slot: number,
    readonly cipherSuite: number,
    readonly extendedMasterSecret: boolean,
    readonly peerIdentity: PeerIdentity | undefined,
    readonly expires: number,
  ) {}
}

/** Map key of a session ID: one byte per character, half the size of hex. */
const keyOf = (id: Uint8Array): string => String.fromCharCode(...id);

/** The server's bounded cache of resumable sessions, oldest evicted first, each with a lifetime. */
export class SessionCache {
  private readonly entries = new Map<string, CachedSession>();
  /** Master secrets, MASTER_LENGTH bytes per slot; grown by doubling up to maxEntries slots. */
  private masters = new Uint8Array(0);
  private slotsUsed = 0;
  /** Slots given back (zeroed), reused first. */
  private readonly freeSlots: number[] = [];

  constructor(
    private readonly clock: Clock,
    readonly maxEntries = 10_000,
    readonly lifetimeMs = 24 * 3600_000,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  put(session: ResumableSession): void {
    if (session.masterSecret.length !== MASTER_LENGTH) throw new RangeError('a master secret has 48 bytes');
    const k = keyOf(session.id);
    this.remove(k);
    const slot = this.takeSlot();
    this.masters.set(session.masterSecret, slot * MASTER_LENGTH);
    this.entries.set(k, new CachedSession(k, slot, session.cipherSuite, session.extendedMasterSecret, session.peerIdentity, Math.ceil(this.clock.now() + this.lifetimeMs)));
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.remove(oldest);
    }
  }

  get(id: Uint8Array): ResumableSession | undefined {
    if (id.length === 0) return undefined;
    const k = keyOf(id);
    const e = this.entries.get(k);
    if (!e) return undefined;
    if (e.expires <= this.clock.now()) {
      this.remove(k);
      return undefined;
    }
    return this.session(e);
  }

  delete(id: Uint8Array): void {
    this.remove(keyOf(id));
  }

  /** Removes every session the predicate selects; returns how many. */
  deleteWhere(predicate: (session: ResumableSession) => boolean): number {
    let n = 0;
    for (const [k, e] of [...this.entries]) {
      if (predicate(this.session(e))) {
        this.remove(k);
        n++;
      }
    }
    return n;
  }

  /** A ResumableSession with copies of the ID and the master secret. */
  private session(e: CachedSession): ResumableSession {
    const s = {
      id: Uint8Array.from(e.key, (c) => c.charCodeAt(0)),
      masterSecret: this.masters.slice(e.slot * MASTER_LENGTH, (e.slot + 1) * MASTER_LENGTH),
      cipherSuite: e.cipherSuite,
      extendedMasterSecret: e.extendedMasterSecret,
    };
    return e.peerIdentity ? { ...s, peerIdentity: e.peerIdentity } : s;
  }

  /** Forgets a session and wipes its master secret. */
  private remove(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.masters.fill(0, e.slot * MASTER_LENGTH, (e.slot + 1) * MASTER_LENGTH);
    this.freeSlots.push(e.slot);
  }

  private takeSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    const slot = this.slotsUsed++;
    if ((slot + 1) * MASTER_LENGTH > this.masters.length) {
      const grown = new Uint8Array(Math.max(64, Math.min(2 * (this.masters.length / MASTER_LENGTH), this.maxEntries + 1)) * MASTER_LENGTH);
      grown.set(this.masters);
      this.masters.fill(0);
      this.masters = grown;
    }
    return slot;
  }
}
