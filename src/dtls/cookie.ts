/**
 * Stateless cookies for HelloVerifyRequest (RFC 6347 §4.2.1):
 * Cookie = HMAC(Secret, Client-Address | Client-Parameters), with a secret that rotates.
 * The server keeps no per-client state until a ClientHello returns a valid cookie.
 */
import { randomBytes } from 'node:crypto';
import { equalConstantTime, utf8 } from './bytes.js';
import { HmacSha256 } from './sha256.js';
import type { ClientHello } from './messages.js';
import type { Clock } from '../util/clock.js';

export const COOKIE_LENGTH = 32;

/** Ends the address in the HMAC input (a peer key never contains NUL). */
const SEPARATOR = Uint8Array.of(0);
/** Scratch for the numeric fields: HMAC.update consumes its input before returning. */
const numbers = new Uint8Array(4);
/** Scratch for the cookie a ClientHello should carry (compared, never kept). */
const expected = new Uint8Array(COOKIE_LENGTH);
/** Scratch for the peer address (UTF-8), likewise. */
const addressScratch = new Uint8Array(128);

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

  private compute(secret: Uint8Array, peerKey: string, hello: ClientHello, out: Uint8Array = new Uint8Array(COOKIE_LENGTH)): Uint8Array {
    // Every ClientHello field except the cookie itself, bound to the source address; each field
    // with its length, fed to the HMAC piece by piece (no buffer is assembled for it).
    const h = this.keyed(secret).begin();
    const n = numbers;
    const address = utf8.encodeInto(peerKey, addressScratch);
    if (address.read === peerKey.length) h.update(addressScratch, 0, address.written);
    else h.update(utf8.encode(peerKey)); // longer than any address
    h.update(SEPARATOR);
    n[0] = hello.version >>> 8;
    n[1] = hello.version & 0xff;
    h.update(n, 0, 2).update(hello.random);
    n[0] = hello.sessionId.length;
    h.update(n, 0, 1).update(hello.sessionId);
    const suitesLength = 2 * hello.cipherSuites.length;
    n[0] = suitesLength >>> 8;
    n[1] = suitesLength & 0xff;
    h.update(n, 0, 2);
    for (const suite of hello.cipherSuites) {
      n[0] = suite >>> 8;
      n[1] = suite & 0xff;
      h.update(n, 0, 2);
    }
    n[0] = hello.compressionMethods.length;
    h.update(n, 0, 1).update(hello.compressionMethods);
    for (const e of hello.extensions) {
      n[0] = e.type >>> 8;
      n[1] = e.type & 0xff;
      n[2] = e.data.length >>> 8;
      n[3] = e.data.length & 0xff;
      h.update(n).update(e.data);
    }
    return h.digest(out);
  }

  /** The HMAC keyed with `secret`, kept while the secret is in use (it changes every rotation). */
  private keyed(secret: Uint8Array): HmacSha256 {
    if (this.macSecret !== secret) {
      this.macSecret = secret;
      this.mac = new HmacSha256(secret);
    }
    return this.mac!;
  }

  private macSecret: Uint8Array | undefined;
  private mac: HmacSha256 | undefined;

  generate(peerKey: string, hello: ClientHello): Uint8Array {
    this.maybeRotate();
    return this.compute(this.current, peerKey, hello);
  }

  verify(peerKey: string, hello: ClientHello): boolean {
    this.maybeRotate();
    if (hello.cookie.length !== COOKIE_LENGTH) return false;
    if (equalConstantTime(hello.cookie, this.compute(this.current, peerKey, hello, expected))) return true;
    return this.previous !== undefined && equalConstantTime(hello.cookie, this.compute(this.previous, peerKey, hello, expected));
  }
}
