/**
 * Errors of the LwM2M codec layer. Every failure to decode or encode a payload is a
 * Lwm2mCodecError carrying the CoAP response code that the request should get.
 */

/** CoAP response codes the codecs can produce (RFC 7252 §12.1.2), as "c.dd" text. */
export type CoapErrorCode = '4.00' | '4.04' | '4.05' | '4.06' | '4.13' | '4.15' | '5.00';

/** The CoAP code byte (class << 5 | detail) of a "c.dd" code. */
export function coapCodeByte(code: CoapErrorCode): number {
  const [cls, detail] = code.split('.');
  return (Number(cls) << 5) | Number(detail);
}

export class Lwm2mCodecError extends Error {
  override readonly name = 'Lwm2mCodecError';
  /** CoAP response code, e.g. '4.00' Bad Request. */
  readonly code: CoapErrorCode;
  /** The code as a CoAP code byte, e.g. 0x80 for 4.00. */
  readonly codeByte: number;
  /** Human readable diagnostic, safe to send as a CoAP diagnostic payload. */
  readonly diagnostic: string;

  constructor(code: CoapErrorCode, diagnostic: string, options?: { cause?: unknown }) {
    super(`${code} ${diagnostic}`, options);
    this.code = code;
    this.codeByte = coapCodeByte(code);
    this.diagnostic = diagnostic;
  }
}

/** 4.00 Bad Request: malformed payload or path. */
export function badRequest(diagnostic: string): Lwm2mCodecError {
  return new Lwm2mCodecError('4.00', diagnostic);
}

/** 4.15 Unsupported Content-Format: the format cannot carry this request's data. */
export function unsupportedFormat(diagnostic: string): Lwm2mCodecError {
  return new Lwm2mCodecError('4.15', diagnostic);
}

/** 4.06 Not Acceptable: the value cannot be represented in the requested format. */
export function notAcceptable(diagnostic: string): Lwm2mCodecError {
  return new Lwm2mCodecError('4.06', diagnostic);
}

/** 4.13 Request Entity Too Large: a configured size limit was exceeded. */
export function tooLarge(diagnostic: string): Lwm2mCodecError {
  return new Lwm2mCodecError('4.13', diagnostic);
}

/** Limits applied by every decoder; all are checked before allocating. */
export interface CodecLimits {
  /** Largest payload accepted, in bytes. */
  readonly maxPayloadBytes: number;
  /** Deepest nesting of CBOR/JSON containers or TLV levels. */
  readonly maxDepth: number;
  /** Most entries (records, TLVs, map entries) in one payload. */
  readonly maxEntries: number;
}

export const DEFAULT_LIMITS: CodecLimits = {
  maxPayloadBytes: 16 * 1024 * 1024,
  maxDepth: 16,
  maxEntries: 65536,
};
