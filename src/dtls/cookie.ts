/**
 * Stateless cookies for HelloVerifyRequest (RFC 6347 §4.2.1):
 * Cookie = HMAC(Secret, Client-Address | Client-Parameters), with a secret that rotates.
 * The server keeps no per-client state until a ClientHello returns a valid cookie.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { utf8, Writer } from './bytes.js';
import type { ClientHello } from './messages.js';
import type { Clock } from '../util/clock.js';

export const COOKIE_LENGTH = 32;

export class CookieFactory {
  private current: Uint8Array;
  private previous: Uint8Array | undefined;
  private rotatedAt: number;

  constructor(
    private readonly clock: Clock,
    /** How long one secret stays current; cookies made with the previous secret are still accepted. */
    private readonly rotationMs = 5 * 60_000,
    private readonly random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n)),
  ) {
    this.current = this.random(32);
    this.rotatedAt = clock.now();
  }

  private maybeRotate(): void {
    const now = this.clock.now();
    if (now - this.rotatedAt >= this.rotationMs) {
      // After two periods without traffic both secrets are stale.
      this.previous = now - this.rotatedAt >= 2 * this.rotationMs ? undefined : this.current;
      this.current = this.random(32);
      this.rotatedAt = now;
    }
  }

  /** Forces a rotation now (exposed for tests and for operators). */
  rotate(): void {
    this.previous = this.current;
    this.current = this.random(32);
    this.rotatedAt = this.clock.now();
  }

  private compute(secret: Uint8Array, peerKey: string, hello: ClientHello): Uint8Array {
    // Every ClientHello field except the cookie itself, bound to the source address.
    const suites = new Writer();
    for (const s of hello.cipherSuites) suites.u16(s);
    const exts = new Writer();
    for (const e of hello.extensions) exts.u16(e.type).vec16(e.data);
    const params = new Writer()
      .vec16(utf8.encode(peerKey))
      .u16(hello.version)
      .bytes(hello.random)
      .vec8(hello.sessionId)
      .vec16(suites.finish())
      .vec8(hello.compressionMethods)
      .bytes(exts.finish())
      .finish();
    return new Uint8Array(createHmac('sha256', secret).update(params).digest()).subarray(0, COOKIE_LENGTH);
  }

  generate(peerKey: string, hello: ClientHello): Uint8Array {
    this.maybeRotate();
    return this.compute(this.current, peerKey, hello);
  }

  verify(peerKey: string, hello: ClientHello): boolean {
    this.maybeRotate();
    if (hello.cookie.length !== COOKIE_LENGTH) return false;
    const cookie = Buffer.from(hello.cookie);
    if (timingSafeEqual(cookie, this.compute(this.current, peerKey, hello))) return true;
    return this.previous !== undefined && timingSafeEqual(cookie, this.compute(this.previous, peerKey, hello));
  }
}
