import { timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * Key material that must not leak: JSON.stringify, util.inspect, console.log, String()
 * and template literals all show "[redacted]". The bytes are only reachable through
 * `reveal()`, which makes every use of the secret explicit and greppable.
 */
export class SecretKey {
  readonly #bytes: Uint8Array;

  /** Copies `bytes`: later changes to the caller's buffer do not affect the key. */
  constructor(bytes: Uint8Array) {
    this.#bytes = Uint8Array.from(bytes);
  }

  /** The key bytes (a copy). */
  reveal(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  get length(): number {
    return this.#bytes.length;
  }

  /** Constant-time comparison with other key bytes. */
  equals(other: Uint8Array | SecretKey): boolean {
    const b = other instanceof SecretKey ? other.#bytes : other;
    return b.length === this.#bytes.length && timingSafeEqual(b, this.#bytes);
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `SecretKey(${REDACTED}, ${this.#bytes.length} bytes)`;
  }
}
