import { randomFillSync } from 'node:crypto';

/**
 * Registration ids: 9 random bytes (72 bits) in base64url, the location a device updates. Taken
 * from a pool refilled from the CSPRNG, rather than a fresh randomBytes Buffer per registration.
 */
export class RegistrationIds {
  private static readonly ID_BYTES = 9;
  private readonly pool = Buffer.alloc(RegistrationIds.ID_BYTES * 256);
  private used = this.pool.length;

  next(): string {
    if (this.used === this.pool.length) {
      randomFillSync(this.pool);
      this.used = 0;
    }
    const start = this.used;
    this.used += RegistrationIds.ID_BYTES;
    return this.pool.toString('base64url', start, this.used);
  }
}
