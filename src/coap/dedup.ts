/**
 * Memory of received messages for deduplication (RFC 7252 §4.5).
 *
 * A fixed-capacity ring in typed arrays: slots are written in arrival order, so the
 * oldest entry is always next to go, whether it expires (EXCHANGE_LIFETIME) or
 * capacity forces it out. Each peer maps message ID → slot with small integers
 * only, and short replies are copied into one preallocated arena, so remembering a
 * message allocates no JavaScript objects: at high rates, hundreds of thousands of
 * live record objects would make garbage collection the server's main cost.
 *
 * Bounds: `capacity` records in total (the ring), `perPeerCapacity` of one peer (beyond, the
 * peer's own oldest record goes, so one flooding peer does not push out everybody else's), and
 * `largeReplyBudget` bytes of replies kept outside the arena (beyond, the oldest records go
 * until the new one fits). The arena itself is capacity × inlineReplySize, allocated once.
 */

/** The per-peer part: message ID → slot. */
export interface DedupPeer {
  readonly received: Map<number, number>;
}

/** Identifies one remembered message; stale once its slot is reused. */
export interface DedupTicket {
  readonly slot: number;
  readonly seq: number;
}

const NO_REPLY = -1;
const LARGE_REPLY = -2;

export class DeduplicationStore<P extends DedupPeer> {
  private readonly expires: Float64Array;
  private readonly seqs: Uint32Array;
  private readonly mids: Uint16Array;
  private readonly replyLengths: Int32Array;
  private readonly peers: (P | undefined)[];
  private readonly large: (Uint8Array | undefined)[];
  private readonly largeReplyBudget: number;
  /** Allocated on the first short reply: a device that is only ever asked large things (or nothing) needs none. */
  private arena: Buffer | undefined;
  private head = 0;
  private tail = 0;
  /** Ring slots in use, including records a peer's bound ended early (they leave when the tail passes). */
  private count = 0;
  private endedEarly = 0;
  private largeBytes = 0;
  private seq = 0;
  readonly perPeerCapacity: number;

  /**
   * @param capacity most messages remembered at once
   * @param inlineReplySize replies up to this size are kept in the arena; larger ones as copies
   * @param onPeerEmpty called when a peer has no remembered message left
   * @param limits most records of one peer (default: capacity), most bytes of large replies (default: unbounded)
   */
  constructor(
    readonly capacity: number,
    private readonly inlineReplySize: number,
    private readonly onPeerEmpty: (peer: P) => void,
    limits: { perPeerCapacity?: number; largeReplyBudget?: number } = {},
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`deduplication capacity must be a positive integer, got ${capacity}`);
    this.perPeerCapacity = Math.min(capacity, limits.perPeerCapacity ?? capacity);
    if (!Number.isInteger(this.perPeerCapacity) || this.perPeerCapacity < 1) throw new RangeError(`deduplication capacity per peer must be a positive integer, got ${limits.perPeerCapacity}`);
    this.largeReplyBudget = limits.largeReplyBudget ?? Infinity;
    this.expires = new Float64Array(capacity);
    this.seqs = new Uint32Array(capacity);
    this.mids = new Uint16Array(capacity);
    this.replyLengths = new Int32Array(capacity);
    this.peers = new Array<P | undefined>(capacity).fill(undefined);
    this.large = new Array<Uint8Array | undefined>(capacity).fill(undefined);
  }

  /** Records remembered now. */
  get size(): number {
    return this.count - this.endedEarly;
  }

  /** Bytes of replies kept outside the arena now. */
  get largeReplyBytes(): number {
    return this.largeBytes;
  }

  /** The slot of a live record of (peer, messageId), or -1. */
  find(peer: P, messageId: number, now: number): number {
    const slot = peer.received.get(messageId);
    if (slot === undefined || this.expires[slot]! <= now) return -1;
    return slot;
  }

  /** The reply sent for the message in `slot` (a copy), or undefined if none was sent yet. */
  reply(slot: number): Uint8Array | undefined {
    const length = this.replyLengths[slot]!;
    if (length === NO_REPLY) return undefined;
    if (length === LARGE_REPLY) return this.large[slot];
    const start = slot * this.inlineReplySize;
    return Uint8Array.prototype.slice.call(this.arena!, start, start + length);
  }

  /** Remembers a message until `expiresAt`; the oldest record goes if the store is full. */
  add(peer: P, messageId: number, expiresAt: number): DedupTicket {
    // The peer being added to is not reported empty on the way (its owner would forget it meanwhile).
    if (this.count === this.capacity) this.evictOldest(peer);
    // A message ID seen again after expiry moves to the end, so a peer's map stays oldest-first.
    const again = peer.received.get(messageId);
    if (again !== undefined) {
      peer.received.delete(messageId);
      this.endEarly(again);
    }
    if (peer.received.size >= this.perPeerCapacity) {
      const [oldestId, oldestSlot] = peer.received.entries().next().value!;
      peer.received.delete(oldestId);
      this.endEarly(oldestSlot);
    }
    const slot = this.head;
    this.head = slot + 1 === this.capacity ? 0 : slot + 1;
    this.count++;
    const seq = (this.seq = (this.seq + 1) >>> 0);
    this.expires[slot] = expiresAt;
    this.seqs[slot] = seq;
    this.mids[slot] = messageId;
    this.replyLengths[slot] = NO_REPLY;
    this.peers[slot] = peer;
    peer.received.set(messageId, slot);
    return { slot, seq };
  }

  /** Records the reply to a remembered message (ignored if the record is gone). */
  setReply(ticket: DedupTicket, bytes: Uint8Array): void {
    const { slot, seq } = ticket;
    if (this.seqs[slot] !== seq || this.peers[slot] === undefined) return;
    this.dropLarge(slot);
    if (bytes.length <= this.inlineReplySize) {
      (this.arena ??= Buffer.alloc(this.capacity * this.inlineReplySize)).set(bytes, slot * this.inlineReplySize);
      this.replyLengths[slot] = bytes.length;
    } else {
      if (bytes.length > this.largeReplyBudget) {
        // Never fits: this record ends (a duplicate is processed again) rather than all the others.
        this.forget(slot);
        return;
      }
      // Within the budget, the oldest records going first (possibly this one: then none is kept).
      while (this.largeBytes + bytes.length > this.largeReplyBudget && this.count > 0 && this.seqs[slot] === seq && this.peers[slot] !== undefined) this.evictOldest();
      if (this.seqs[slot] !== seq || this.peers[slot] === undefined) return;
      this.large[slot] = Uint8Array.from(bytes);
      this.largeBytes += bytes.length;
      this.replyLengths[slot] = LARGE_REPLY;
    }
  }

  private dropLarge(slot: number): void {
    const kept = this.large[slot];
    if (kept) this.largeBytes -= kept.length;
    this.large[slot] = undefined;
  }

  /** Ends a live record now, as if it had expired. */
  private forget(slot: number): void {
    const peer = this.peers[slot];
    if (!peer) return;
    const mid = this.mids[slot]!;
    this.endEarly(slot);
    if (peer.received.get(mid) === slot) {
      peer.received.delete(mid);
      if (peer.received.size === 0) this.onPeerEmpty(peer);
    }
  }

  /**
   * Ends a record the peer's map no longer points to: its slot leaves the ring when the tail
   * reaches it, holding nothing meanwhile.
   */
  private endEarly(slot: number): void {
    if (this.peers[slot] === undefined) return;
    this.peers[slot] = undefined;
    this.expires[slot] = 0;
    this.replyLengths[slot] = NO_REPLY;
    this.dropLarge(slot);
    this.endedEarly++;
  }

  /**
   * Ends a record early: a duplicate of its message is then processed again. Only for safe
   * requests (GET, FETCH), whose large replies are cheaper to make again than to keep for
   * EXCHANGE_LIFETIME (RFC 7252 §4.5 lets a server process a duplicate idempotent request again).
   */
  release(ticket: DedupTicket): void {
    const { slot, seq } = ticket;
    if (this.seqs[slot] !== seq || this.peers[slot] === undefined) return;
    this.expires[slot] = 0;
    this.replyLengths[slot] = NO_REPLY;
    this.dropLarge(slot);
  }

  /** Forgets every record that has expired by `now`. Returns whether any remain. */
  sweep(now: number): boolean {
    while (this.count > 0 && this.expires[this.tail]! <= now) this.evictOldest();
    return this.count > 0;
  }

  private evictOldest(adding?: P): void {
    const slot = this.tail;
    this.tail = slot + 1 === this.capacity ? 0 : slot + 1;
    this.count--;
    const peer = this.peers[slot];
    this.peers[slot] = undefined;
    this.dropLarge(slot);
    if (!peer) {
      this.endedEarly--;
      return;
    }
    const mid = this.mids[slot]!;
    // The peer's map may point to a newer slot if the message ID was received again after expiry.
    if (peer.received.get(mid) === slot) {
      peer.received.delete(mid);
      if (peer.received.size === 0 && peer !== adding) this.onPeerEmpty(peer);
    }
  }
}
