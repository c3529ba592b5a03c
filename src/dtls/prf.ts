/** TLS 1.2 PRF with P_SHA256 (RFC 5246 §5) and the derivations built on it. */
import { createHash } from 'node:crypto';
import { HmacSha256 } from './sha256.js';

export { HmacSha256 };
import { utf8 } from './bytes.js';

const SHA256_LENGTH = 32;

const labels = new Map<string, Uint8Array>();

function labelBytes(label: string): Uint8Array {
  let bytes = labels.get(label);
  if (!bytes) {
    bytes = utf8.encode(label);
    if (labels.size < 16) labels.set(label, bytes);
  }
  return bytes;
}

/**
 * P_SHA256(secret, labelAndSeed) (RFC 5246 §5), exactly `length` bytes in a buffer of its own.
 * A(0) = seed, A(i) = HMAC(A(i-1)), output = HMAC(A(1) ‖ seed) ‖ HMAC(A(2) ‖ seed) ‖ …
 */
function expand(mac: HmacSha256, labelAndSeed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const a = new Uint8Array(SHA256_LENGTH);
  const block = new Uint8Array(SHA256_LENGTH);
  mac.mac(labelAndSeed, undefined, a);
  for (let off = 0; off < length; off += SHA256_LENGTH) {
    if (off > 0) mac.mac(a, undefined, a);
    mac.mac(a, labelAndSeed, block);
    const n = Math.min(SHA256_LENGTH, length - off);
    for (let i = 0; i < n; i++) out[off + i] = block[i]!;
  }
  block.fill(0);
  a.fill(0);
  return out;
}

function labelAndSeed(label: string, seed: Uint8Array, seed2?: Uint8Array): Uint8Array {
  const l = labelBytes(label);
  const out = new Uint8Array(l.length + seed.length + (seed2?.length ?? 0));
  out.set(l);
  out.set(seed, l.length);
  if (seed2) out.set(seed2, l.length + seed.length);
  return out;
}

/** P_SHA256(secret, seed) truncated to `length` bytes. */
export function pSha256(secret: Uint8Array, seed: Uint8Array, length: number): Uint8Array {
  return expand(new HmacSha256(secret), seed, length);
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
    return expand(this.mac, labelAndSeed(label, seed, seed2), length);
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
