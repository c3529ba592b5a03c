/**
 * Cipher suites and AEAD record protection (RFC 5246 §6.2.3.3, RFC 5288 GCM, RFC 6655 / RFC 7251 CCM_8).
 * All supported suites are AEAD with a 4-byte implicit salt and an 8-byte explicit nonce.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { concat } from './bytes.js';
import { writeEpochAndSequence, writeRecordHeader } from './record.js';
import { ContentType, RECORD_HEADER_LENGTH } from './constants.js';

export type KeyExchange = 'psk' | 'ecdhe_ecdsa';

export interface CipherSuiteInfo {
  id: number;
  name: string;
  keyExchange: KeyExchange;
  aead: 'aes-128-ccm' | 'aes-128-gcm';
  tagLength: 8 | 16;
  keyLength: 16;
  fixedIvLength: 4;
}

export const CipherSuite = {
  TLS_PSK_WITH_AES_128_CCM_8: 0xc0a8,
  TLS_PSK_WITH_AES_128_GCM_SHA256: 0x00a8,
  TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8: 0xc0ae,
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 0xc02b,
  /** RFC 6655 / RFC 7251 CCM with the full 16-byte tag. */
  TLS_PSK_WITH_AES_128_CCM: 0xc0a4,
  TLS_ECDHE_ECDSA_WITH_AES_128_CCM: 0xc0ac,
} as const;

export const CIPHER_SUITES: ReadonlyMap<number, CipherSuiteInfo> = new Map(
  (
    [
      [CipherSuite.TLS_PSK_WITH_AES_128_CCM_8, 'TLS_PSK_WITH_AES_128_CCM_8', 'psk', 'aes-128-ccm', 8],
      [CipherSuite.TLS_PSK_WITH_AES_128_GCM_SHA256, 'TLS_PSK_WITH_AES_128_GCM_SHA256', 'psk', 'aes-128-gcm', 16],
      [CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8', 'ecdhe_ecdsa', 'aes-128-ccm', 8],
      [CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'ecdhe_ecdsa', 'aes-128-gcm', 16],
      [CipherSuite.TLS_PSK_WITH_AES_128_CCM, 'TLS_PSK_WITH_AES_128_CCM', 'psk', 'aes-128-ccm', 16],
      [CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM, 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM', 'ecdhe_ecdsa', 'aes-128-ccm', 16],
    ] as const
  ).map(([id, name, keyExchange, aead, tagLength]) => [id, { id, name, keyExchange, aead, tagLength, keyLength: 16, fixedIvLength: 4 }]),
);

export const EXPLICIT_NONCE_LENGTH = 8;
const NONCE_LENGTH = 12;
const AAD_LENGTH = 13;

// Scratch space for the nonce and the additional data of one record: node:crypto copies both
// before returning, and everything here is synchronous, so one buffer each serves every record.
const nonceScratch = new Uint8Array(NONCE_LENGTH);
const KEY_LENGTH = 16;
const keyScratch = new Uint8Array(KEY_LENGTH);
const aadScratch = new Uint8Array(AAD_LENGTH);

/**
 * One direction's record protection for one epoch. The key and the 4-byte implicit salt are read
 * from `material` at the given offsets: both directions of an association share one small buffer
 * (the key block), so an idle association holds one allocation for its keys, not four.
 */
export class AeadProtection {
  constructor(
    readonly suite: CipherSuiteInfo,
    private readonly material: Uint8Array,
    private readonly keyOffset: number = 0,
    private readonly saltOffset: number = suite.keyLength,
  ) {
    if (keyOffset + suite.keyLength > material.length || saltOffset + suite.fixedIvLength > material.length) throw new RangeError('key material too short');
  }

  /** Expansion of a record: explicit nonce plus tag. */
  get overhead(): number {
    return EXPLICIT_NONCE_LENGTH + this.suite.tagLength;
  }

  /**
   * Fills keyScratch with the key for one cipher (node:crypto copies it into the cipher context): a
   * subarray view would make V8 move the small key block out of the heap for the association's lifetime.
   */
  private key(): Uint8Array {
    for (let i = 0; i < KEY_LENGTH; i++) keyScratch[i] = this.material[this.keyOffset + i]!;
    return keyScratch;
  }

  /** Fills nonceScratch: salt ‖ explicit nonce (byte by byte, for the same reason as `key`). */
  private nonce(explicit: Uint8Array, offset: number): Uint8Array {
    for (let i = 0; i < 4; i++) nonceScratch[i] = this.material[this.saltOffset + i]!;
    for (let i = 0; i < EXPLICIT_NONCE_LENGTH; i++) nonceScratch[4 + i] = explicit[offset + i]!;
    return nonceScratch;
  }

  /** RFC 5246 §6.2.3.3 additional data: seq_num ‖ type ‖ version ‖ length. */
  private aad(epoch: number, seq: number, type: number, version: number, length: number): Uint8Array {
    writeEpochAndSequence(aadScratch, 0, epoch, seq);
    aadScratch[8] = type;
    aadScratch[9] = version >>> 8;
    aadScratch[10] = version & 0xff;
    aadScratch[11] = length >>> 8;
    aadScratch[12] = length & 0xff;
    return aadScratch;
  }

  /** The protected fragment (explicit nonce ‖ ciphertext ‖ tag) of a record. */
  seal(epoch: number, seq: number, type: number, version: number, plaintext: Uint8Array): Uint8Array {
    const out = new Uint8Array(this.overhead + plaintext.length);
    this.sealInto(out, 0, epoch, seq, plaintext, this.aad(epoch, seq, type, version, plaintext.length));
    return out;
  }

  /**
   * A whole protected record: header and fragment in one allocation. With a non-empty `cid` it is
   * a tls12_cid record carrying DTLSInnerPlaintext (content ‖ real type, no padding; RFC 9146 §4–5).
   */
  sealRecord(type: number, version: number, epoch: number, seq: number, plaintext: Uint8Array, cid?: Uint8Array): Uint8Array {
    const withCid = cid !== undefined && cid.length > 0;
    const inner = withCid ? innerPlaintext(plaintext, type) : plaintext;
    const fragmentLength = this.overhead + inner.length;
    const out = new Uint8Array(RECORD_HEADER_LENGTH + (withCid ? cid.length : 0) + fragmentLength);
    const at = writeRecordHeader(out, 0, withCid ? ContentType.tls12_cid : type, version, epoch, seq, withCid ? cid : undefined, fragmentLength);
    const aad = withCid ? this.cidAad(epoch, seq, version, cid, inner.length) : this.aad(epoch, seq, type, version, inner.length);
    this.sealInto(out, at, epoch, seq, inner, aad);
    return out;
  }

  /** RFC 9146 §5 additional data for a tls12_cid record. */
  private cidAad(epoch: number, seq: number, version: number, cid: Uint8Array, innerLength: number): Uint8Array {
    // seq_num placeholder ‖ tls12_cid ‖ cid_length ‖ tls12_cid ‖ version ‖ epoch ‖ sequence ‖ cid ‖ length
    const aad = new Uint8Array(23 + cid.length);
    aad.fill(0xff, 0, 8);
    aad[8] = ContentType.tls12_cid;
    aad[9] = cid.length;
    aad[10] = ContentType.tls12_cid;
    aad[11] = version >>> 8;
    aad[12] = version & 0xff;
    writeEpochAndSequence(aad, 13, epoch, seq);
    aad.set(cid, 21);
    aad[21 + cid.length] = innerLength >>> 8;
    aad[22 + cid.length] = innerLength & 0xff;
    return aad;
  }

  /** Protects DTLSInnerPlaintext (content ‖ real type, no padding) for a tls12_cid record (RFC 9146 §4–5). */
  sealCid(epoch: number, seq: number, type: number, version: number, cid: Uint8Array, content: Uint8Array): Uint8Array {
    const inner = innerPlaintext(content, type);
    const out = new Uint8Array(this.overhead + inner.length);
    this.sealInto(out, 0, epoch, seq, inner, this.cidAad(epoch, seq, version, cid, inner.length));
    return out;
  }

  /** Opens a tls12_cid record: the real content type and content, or undefined. Never throws. */
  openCid(epoch: number, seq: number, version: number, cid: Uint8Array, fragment: Uint8Array): { type: number; content: Uint8Array } | undefined {
    const bodyLength = fragment.length - EXPLICIT_NONCE_LENGTH - this.suite.tagLength;
    if (bodyLength < 1) return undefined;
    const inner = this.openWith(fragment, this.cidAad(epoch, seq, version, cid, bodyLength));
    if (!inner) return undefined;
    let end = inner.length;
    while (end > 0 && inner[end - 1] === 0) end--; // strip zero padding
    if (end === 0) return undefined;
    return { type: inner[end - 1]!, content: inner.subarray(0, end - 1) };
  }

  /** Writes explicit nonce ‖ ciphertext ‖ tag at out[at…]. */
  private sealInto(out: Uint8Array, at: number, epoch: number, seq: number, plaintext: Uint8Array, aad: Uint8Array): void {
    writeEpochAndSequence(out, at, epoch, seq);
    const nonce = this.nonce(out, at);
    const tagLength = this.suite.tagLength;
    const bodyAt = at + EXPLICIT_NONCE_LENGTH;
    if (this.suite.aead === 'aes-128-ccm') {
      const c = createCipheriv('aes-128-ccm', this.key(), nonce, { authTagLength: tagLength });
      keyScratch.fill(0);
      c.setAAD(aad, { plaintextLength: plaintext.length });
      out.set(c.update(plaintext), bodyAt);
      c.final();
      out.set(c.getAuthTag(), bodyAt + plaintext.length);
      return;
    }
    const c = createCipheriv('aes-128-gcm', this.key(), nonce, { authTagLength: tagLength });
    keyScratch.fill(0);
    c.setAAD(aad);
    const body = c.update(plaintext);
    out.set(body, bodyAt);
    const rest = c.final();
    if (rest.length > 0) out.set(rest, bodyAt + body.length);
    out.set(c.getAuthTag(), bodyAt + plaintext.length);
  }

  private openWith(fragment: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
    const tagLength = this.suite.tagLength;
    if (fragment.length < EXPLICIT_NONCE_LENGTH + tagLength) return undefined;
    const body = fragment.subarray(EXPLICIT_NONCE_LENGTH, fragment.length - tagLength);
    const tag = fragment.subarray(fragment.length - tagLength);
    const nonce = this.nonce(fragment, 0);
    try {
      if (this.suite.aead === 'aes-128-ccm') {
        const d = createDecipheriv('aes-128-ccm', this.key(), nonce, { authTagLength: tagLength });
        keyScratch.fill(0);
        d.setAuthTag(tag);
        d.setAAD(aad, { plaintextLength: body.length });
        const out = d.update(body);
        d.final();
        return plain(out);
      }
      const d = createDecipheriv('aes-128-gcm', this.key(), nonce, { authTagLength: tagLength });
      keyScratch.fill(0);
      d.setAuthTag(tag);
      d.setAAD(aad);
      const out = d.update(body);
      const rest = d.final();
      return rest.length > 0 ? concat(out, rest) : plain(out);
    } catch {
      return undefined;
    }
  }

  /** Returns the plaintext, or undefined when the record does not authenticate. Never throws. */
  open(epoch: number, seq: number, type: number, version: number, fragment: Uint8Array): Uint8Array | undefined {
    const bodyLength = fragment.length - EXPLICIT_NONCE_LENGTH - this.suite.tagLength;
    if (bodyLength < 0) return undefined;
    return this.openWith(fragment, this.aad(epoch, seq, type, version, bodyLength));
  }
}

/** A Buffer's bytes as a plain Uint8Array (what callers get everywhere else), without copying. */
function plain(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** DTLSInnerPlaintext without padding: content ‖ real type (RFC 9146 §4). */
function innerPlaintext(content: Uint8Array, type: number): Uint8Array {
  const inner = new Uint8Array(content.length + 1);
  inner.set(content);
  inner[content.length] = type;
  return inner;
}

export interface KeyMaterial {
  clientWrite: AeadProtection;
  serverWrite: AeadProtection;
}

/** Length of the key block (RFC 5246 §6.3) for an AEAD suite: two keys and two implicit IVs, no MAC keys. */
export function keyBlockLength(suite: CipherSuiteInfo): number {
  return 2 * (suite.keyLength + suite.fixedIvLength);
}

/**
 * Both directions' protection over one key block (client key ‖ server key ‖ client IV ‖ server IV).
 * The block is used in place, neither sliced nor viewed: pass a buffer of its own (a view of a
 * pooled or larger buffer would keep all of it alive as long as the association).
 */
export function keyMaterialFromBlock(suite: CipherSuiteInfo, block: Uint8Array): KeyMaterial {
  const k = suite.keyLength;
  const iv = suite.fixedIvLength;
  if (block.length !== keyBlockLength(suite)) throw new RangeError('key block of the wrong length');
  return {
    clientWrite: new AeadProtection(suite, block, 0, 2 * k),
    serverWrite: new AeadProtection(suite, block, k, 2 * k + iv),
  };
}
