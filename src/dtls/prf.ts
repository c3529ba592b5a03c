/** TLS 1.2 PRF with P_SHA256 (RFC 5246 §5) and the derivations built on it. */
import { createHash } from 'node:crypto';
import { HmacSha256 } from './sha256.js';

export { HmacSha256 };
import { utf8 } from './bytes.js';

const SHA256_LENGTH = 32;
const NO_BYTES = new Uint8Array(0);

const labels = new Map<string, Uint8Array>();

function labelBytes(label: string): Uint8Array {
  let bytes = labels.get(label);
  if (!bytes) {
    bytes = utf8.encode(label);
    if (labels.size < 16) labels.set(label, bytes);
  }
  return bytes;
}

/** A(i) and one output block of P_SHA256: scratch, as a derivation runs start to end without yielding. */
const chain = new Uint8Array(SHA256_LENGTH);
const outputBlock = new Uint8Array(SHA256_LENGTH);

/**
 * P_SHA256(secret, label ‖ seed ‖ seed2) (RFC 5246 §5), exactly `length` bytes in a buffer of its own.
 * A(0) = label ‖ seed ‖ seed2, A(i) = HMAC(A(i-1)), output = HMAC(A(1) ‖ A(0)) ‖ HMAC(A(2) ‖ A(0)) ‖ …
 * The pieces of A(0) are fed to the MAC one after the other, never joined.
 */
function expand(mac: HmacSha256, label: Uint8Array, seed: Uint8Array, seed2: Uint8Array | undefined, length: number): Uint8Array {
  const out = new Uint8Array(length);
  mac.begin().update(label).update(seed);
  if (seed2) mac.update(seed2);
  mac.digest(chain);
  for (let off = 0; off < length; off += SHA256_LENGTH) {
    if (off > 0) mac.mac(chain, undefined, chain);
    mac.begin().update(chain).update(label).update(seed);
    if (seed2) mac.update(seed2);
    mac.digest(outputBlock);
    const n = Math.min(SHA256_LENGTH, length - off);
    for (let i = 0; i < n; i++) out[off + i] = outputBlock[i]!;
  }
  outputBlock.fill(0);
  chain.fill(0);
  return out;
}

/** P_SHA256(secret, seed) truncated to `length` bytes. */
export function pSha256(secret: Uint8Array, seed: Uint8Array, length: number): Uint8Array {
  return expand(new HmacSha256(secret), NO_BYTES, seed, undefined, length);
}

/**
 * The PRF keyed with one secret, for several derivations from it (the master secret gives the key
 * block and both verify_data values).
 */
export class Prf {
  private readonly mac: HmacSha256;

  constructor(secret: Uint8Array) {
    this.mac = new HmacSha256(secret);
  }

  /** PRF(secret, label, seed ‖ seed2) truncated to `length` bytes. */
  derive(label: string, seed: Uint8Array, length: number, seed2?: Uint8Array): Uint8Array {
    return expand(this.mac, labelBytes(label), seed, seed2, length);
  }
}

/** PRF(secret, label, seed) = P_SHA256(secret, label + seed). */
export function prf(secret: Uint8Array, label: string, seed: Uint8Array, length: number): Uint8Array {
  return new Prf(secret).derive(label, seed, length);
}

export function sha256(data: Uint8Array): Uint8Array {
  const d = createHash('sha256').update(data).digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** RFC 5246 §8.1 master secret. */
export function masterSecret(preMaster: Uint8Array, clientRandom: Uint8Array, serverRandom: Uint8Array): Uint8Array {
  return new Prf(preMaster).derive('master secret', clientRandom, 48, serverRandom);
}

/** RFC 7627 §4 extended master secret: the seed is the session hash. */
export function extendedMasterSecret(preMaster: Uint8Array, sessionHash: Uint8Array): Uint8Array {
  return prf(preMaster, 'extended master secret', sessionHash, 48);
}

/** RFC 4279 §2 PSK pre-master secret: uint16 N, N zero bytes, uint16 N, psk. */
export function pskPreMasterSecret(psk: Uint8Array): Uint8Array {
  const n = psk.length;
  const out = new Uint8Array(4 + 2 * n);
  out[0] = n >>> 8;
  out[1] = n & 0xff;
  out[2 + n] = n >>> 8;
  out[3 + n] = n & 0xff;
  out.set(psk, 4 + n);
  return out;
}

/** RFC 5246 §6.3 key block. */
export function keyBlock(master: Uint8Array | Prf, clientRandom: Uint8Array, serverRandom: Uint8Array, length: number): Uint8Array {
  return (master instanceof Prf ? master : new Prf(master)).derive('key expansion', serverRandom, length, clientRandom);
}

/** RFC 5246 §7.4.9 verify_data (12 bytes). */
export function verifyData(master: Uint8Array | Prf, label: 'client finished' | 'server finished', transcriptHash: Uint8Array): Uint8Array {
  return (master instanceof Prf ? master : new Prf(master)).derive(label, transcriptHash, 12);
}
