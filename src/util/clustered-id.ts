import { randomFillSync } from 'node:crypto';

/**
 * Ids of 12 base64url characters (9 bytes) for rows keyed by them: 3 bytes of the time of making
 * (16 ms units, wrapping every ~74 h) and 6 random bytes (48 bits; two ids made in the same 16 ms
 * collide with odds of ~1 in 10^10 even at 10,000 ids per second). The time prefix keeps the rows
 * made together next to each other in the B-trees keyed by the id, so a burst of inserts dirties
 * a few pages per commit instead of one page per row (issue 18: measured 7.5 → 4.3 page writes per
 * LwM2M registration). Not an authenticator: whoever uses the id checks its owner.
 * The random part comes from a pool refilled from the CSPRNG, not a Buffer per id.
 */
export class ClusteredIds {
  private static readonly TIME_BYTES = 3;
  private static readonly RANDOM_BYTES = 6;
  private readonly pool = Buffer.alloc(ClusteredIds.RANDOM_BYTES * 256);
  private used = this.pool.length;
  private readonly bytes = Buffer.alloc(ClusteredIds.TIME_BYTES + ClusteredIds.RANDOM_BYTES);

  constructor(private readonly now: () => number = Date.now) {}

  next(): string {
    if (this.used === this.pool.length) {
      randomFillSync(this.pool);
      this.used = 0;
    }
    this.bytes.writeUIntBE(Math.floor(this.now() / 16) % 0x1000000, 0, ClusteredIds.TIME_BYTES);
    this.pool.copy(this.bytes, ClusteredIds.TIME_BYTES, this.used, this.used + ClusteredIds.RANDOM_BYTES);
    this.used += ClusteredIds.RANDOM_BYTES;
    return this.bytes.toString('base64url');
  }
}
