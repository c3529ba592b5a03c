/** TLS 1.2 PRF with P_SHA256 (RFC 5246 §5) and the derivations built on it. */
import { createHash, createHmac } from 'node:crypto';
import { concat, utf8 } from './bytes.js';

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(data).digest());
}

/** P_SHA256(secret, seed) truncated to `length` bytes. */
export function pSha256(secret: Uint8Array, seed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let a = seed;
  let off = 0;
  while (off < length) {
    a = hmac(secret, a);
    const block = hmac(secret, concat(a, seed));
    out.set(block.subarray(0, Math.min(block.length, length - off)), off);
    off += block.length;
  }
  return out;
}

/** PRF(secret, label, seed) = P_SHA256(secret, label + seed). */
export function prf(secret: Uint8Array, label: string, seed: Uint8Array, length: number): Uint8Array {
  return pSha256(secret, concat(utf8.encode(label), seed), length);
}

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

/** RFC 5246 §8.1 master secret. */
export function masterSecret(preMaster: Uint8Array, clientRandom: Uint8Array, serverRandom: Uint8Array): Uint8Array {
  return prf(preMaster, 'master secret', concat(clientRandom, serverRandom), 48);
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
export function keyBlock(master: Uint8Array, clientRandom: Uint8Array, serverRandom: Uint8Array, length: number): Uint8Array {
  return prf(master, 'key expansion', concat(serverRandom, clientRandom), length);
}

/** RFC 5246 §7.4.9 verify_data (12 bytes). */
export function verifyData(master: Uint8Array, label: 'client finished' | 'server finished', transcriptHash: Uint8Array): Uint8Array {
  return prf(master, label, transcriptHash, 12);
}
