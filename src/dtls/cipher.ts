/**
 * Cipher suites and AEAD record protection (RFC 5246 §6.2.3.3, RFC 5288 GCM, RFC 6655 / RFC 7251 CCM_8).
 * All supported suites are AEAD with a 4-byte implicit salt and an 8-byte explicit nonce.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { concat, Writer } from './bytes.js';
import { epochAndSequence } from './record.js';
import { ContentType } from './constants.js';

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

/** One direction's record protection for one epoch. */
export class AeadProtection {
  constructor(
    readonly suite: CipherSuiteInfo,
    private readonly key: Uint8Array,
    private readonly salt: Uint8Array,
  ) {}

  /** Expansion of a record: explicit nonce plus tag. */
  get overhead(): number {
    return EXPLICIT_NONCE_LENGTH + this.suite.tagLength;
  }

  private aad(epoch: number, seq: number, type: number, version: number, length: number): Uint8Array {
    return new Writer().bytes(epochAndSequence(epoch, seq)).u8(type).u16(version).u16(length).finish();
  }

  seal(epoch: number, seq: number, type: number, version: number, plaintext: Uint8Array): Uint8Array {
    return this.sealWith(epoch, seq, plaintext, this.aad(epoch, seq, type, version, plaintext.length));
  }

  /** RFC 9146 §5 additional data for a tls12_cid record. */
  private cidAad(epoch: number, seq: number, version: number, cid: Uint8Array, innerLength: number): Uint8Array {
    return new Writer()
      .bytes(new Uint8Array(8).fill(0xff))
      .u8(ContentType.tls12_cid)
      .u8(cid.length)
      .u8(ContentType.tls12_cid)
      .u16(version)
      .u16(epoch)
      .u48(seq)
      .bytes(cid)
      .u16(innerLength)
      .finish();
  }

  /** Protects DTLSInnerPlaintext (content ‖ real type, no padding) for a tls12_cid record (RFC 9146 §4–5). */
  sealCid(epoch: number, seq: number, type: number, version: number, cid: Uint8Array, content: Uint8Array): Uint8Array {
    const inner = concat(content, Uint8Array.of(type));
    return this.sealWith(epoch, seq, inner, this.cidAad(epoch, seq, version, cid, inner.length));
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

  private sealWith(epoch: number, seq: number, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    const explicit = epochAndSequence(epoch, seq);
    const nonce = concat(this.salt, explicit);
    if (this.suite.aead === 'aes-128-ccm') {
      const c = createCipheriv('aes-128-ccm', this.key, nonce, { authTagLength: this.suite.tagLength });
      c.setAAD(aad, { plaintextLength: plaintext.length });
      const body = c.update(plaintext);
      c.final();
      return concat(explicit, body, c.getAuthTag());
    }
    const c = createCipheriv('aes-128-gcm', this.key, nonce, { authTagLength: this.suite.tagLength });
    c.setAAD(aad);
    const body = concat(c.update(plaintext), c.final());
    return concat(explicit, body, c.getAuthTag());
  }

  private openWith(fragment: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
    const tagLength = this.suite.tagLength;
    if (fragment.length < EXPLICIT_NONCE_LENGTH + tagLength) return undefined;
    const explicit = fragment.subarray(0, EXPLICIT_NONCE_LENGTH);
    const body = fragment.subarray(EXPLICIT_NONCE_LENGTH, fragment.length - tagLength);
    const tag = fragment.subarray(fragment.length - tagLength);
    const nonce = concat(this.salt, explicit);
    try {
      if (this.suite.aead === 'aes-128-ccm') {
        const d = createDecipheriv('aes-128-ccm', this.key, nonce, { authTagLength: tagLength });
        d.setAuthTag(tag);
        d.setAAD(aad, { plaintextLength: body.length });
        const out = d.update(body);
        d.final();
        return new Uint8Array(out);
      }
      const d = createDecipheriv('aes-128-gcm', this.key, nonce, { authTagLength: tagLength });
      d.setAuthTag(tag);
      d.setAAD(aad);
      return new Uint8Array(concat(d.update(body), d.final()));
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

export interface KeyMaterial {
  clientWrite: AeadProtection;
  serverWrite: AeadProtection;
}

/** Splits the key block (RFC 5246 §6.3) for an AEAD suite: keys then implicit IVs, no MAC keys. */
export function keyBlockLength(suite: CipherSuiteInfo): number {
  return 2 * (suite.keyLength + suite.fixedIvLength);
}

export function keyMaterialFromBlock(suite: CipherSuiteInfo, block: Uint8Array): KeyMaterial {
  const k = suite.keyLength;
  const iv = suite.fixedIvLength;
  return {
    clientWrite: new AeadProtection(suite, block.slice(0, k), block.slice(2 * k, 2 * k + iv)),
    serverWrite: new AeadProtection(suite, block.slice(k, 2 * k), block.slice(2 * k + iv, 2 * k + 2 * iv)),
  };
}
