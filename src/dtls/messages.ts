/** Handshake message bodies (RFC 5246 §7.4, RFC 6347 §4.2.1, RFC 4279, RFC 4492/8422). */
import { DecodeError, Reader, Writer } from './bytes.js';
import { ExtensionType } from './constants.js';

export interface Extension {
  type: number;
  data: Uint8Array;
}

function decodeExtensions(r: Reader): Extension[] {
  if (r.remaining === 0) return [];
  // The extensions block is read in place: its end is checked after every extension.
  const end = vectorEnd(r, r.u16());
  const out: Extension[] = [];
  // Duplicates: a scan of the few extensions a hello has; a set only for a long list.
  let seen: Set<number> | undefined;
  while (r.offset < end) {
    const type = r.u16();
    const data = r.vec16();
    if (r.offset > end) throw new DecodeError('extension beyond the extensions block');
    if (out.length >= 16 && !seen) seen = new Set(out.map((e) => e.type));
    if (seen ? seen.has(type) : out.some((e) => e.type === type)) throw new DecodeError(`duplicate extension ${type}`);
    seen?.add(type);
    out.push({ type, data });
  }
  return out;
}

/** Where a vector of `length` bytes starting at the reader's position ends; DecodeError if past the input. */
function vectorEnd(r: Reader, length: number): number {
  if (length > r.remaining) throw new DecodeError(`truncated: need ${length} bytes, have ${r.remaining}`);
  return r.offset + length;
}

function encodeExtensions(w: Writer, exts: Extension[]): void {
  if (exts.length === 0) return;
  const inner = new Writer();
  for (const e of exts) inner.u16(e.type).vec16(e.data);
  w.vec16(inner.finish());
}

export function findExtension(exts: Extension[], type: number): Extension | undefined {
  return exts.find((e) => e.type === type);
}

export interface ClientHello {
  version: number;
  random: Uint8Array;
  sessionId: Uint8Array;
  cookie: Uint8Array;
  cipherSuites: number[];
  compressionMethods: Uint8Array;
  extensions: Extension[];
}

export function encodeClientHello(m: ClientHello): Uint8Array {
  // Room for a typical hello with a cookie at once: the buffer does not have to grow twice.
  const w = new Writer(256).u16(m.version).bytes(m.random).vec8(m.sessionId).vec8(m.cookie);
  const suites = new Writer();
  for (const s of m.cipherSuites) suites.u16(s);
  w.vec16(suites.finish()).vec8(m.compressionMethods);
  encodeExtensions(w, m.extensions);
  return w.finish();
}

export function decodeClientHello(body: Uint8Array): ClientHello {
  const r = new Reader(body);
  const version = r.u16();
  const random = r.bytes(32);
  const sessionId = r.vec8();
  if (sessionId.length > 32) throw new DecodeError('session_id too long');
  const cookie = r.vec8();
  const suitesLength = r.u16();
  if (suitesLength % 2 !== 0) throw new DecodeError('odd cipher_suites length');
  const suitesEnd = vectorEnd(r, suitesLength);
  const cipherSuites: number[] = [];
  while (r.offset < suitesEnd) cipherSuites.push(r.u16());
  if (cipherSuites.length === 0) throw new DecodeError('no cipher suites');
  const compressionMethods = r.vec8();
  if (compressionMethods.length === 0) throw new DecodeError('no compression methods');
  const extensions = decodeExtensions(r);
  r.end();
  return { version, random, sessionId, cookie, cipherSuites, compressionMethods, extensions };
}

export interface HelloVerifyRequest {
  version: number;
  cookie: Uint8Array;
}

export function encodeHelloVerifyRequest(m: HelloVerifyRequest): Uint8Array {
  return new Writer().u16(m.version).vec8(m.cookie).finish();
}

export function decodeHelloVerifyRequest(body: Uint8Array): HelloVerifyRequest {
  const r = new Reader(body);
  const version = r.u16();
  const cookie = r.vec8();
  r.end();
  return { version, cookie };
}

export interface ServerHello {
  version: number;
  random: Uint8Array;
  sessionId: Uint8Array;
  cipherSuite: number;
  compressionMethod: number;
  extensions: Extension[];
}

export function encodeServerHello(m: ServerHello): Uint8Array {
  // Room for a ServerHello with a session ID and a few extensions at once.
  const w = new Writer(128).u16(m.version).bytes(m.random).vec8(m.sessionId).u16(m.cipherSuite).u8(m.compressionMethod);
  encodeExtensions(w, m.extensions);
  return w.finish();
}

export function decodeServerHello(body: Uint8Array): ServerHello {
  const r = new Reader(body);
  const version = r.u16();
  const random = r.bytes(32);
  const sessionId = r.vec8();
  if (sessionId.length > 32) throw new DecodeError('session_id too long');
  const cipherSuite = r.u16();
  const compressionMethod = r.u8();
  const extensions = decodeExtensions(r);
  r.end();
  return { version, random, sessionId, cipherSuite, compressionMethod, extensions };
}

export function encodeCertificate(chain: Uint8Array[]): Uint8Array {
  const inner = new Writer();
  for (const c of chain) inner.vec24(c);
  return new Writer().vec24(inner.finish()).finish();
}

export function decodeCertificate(body: Uint8Array): Uint8Array[] {
  const r = new Reader(body);
  const list = new Reader(r.vec24());
  r.end();
  const out: Uint8Array[] = [];
  while (list.remaining > 0) out.push(list.vec24());
  return out;
}

/** ServerECDHParams for a named curve plus the signature (RFC 8422 §5.4). */
export interface EcdheServerKeyExchange {
  namedCurve: number;
  publicPoint: Uint8Array;
  /** The signed part: curve_type, named_curve, point. */
  params: Uint8Array;
  hashAlgorithm: number;
  signatureAlgorithm: number;
  signature: Uint8Array;
}

export function encodeEcdheParams(namedCurve: number, point: Uint8Array): Uint8Array {
  return new Writer().u8(3).u16(namedCurve).vec8(point).finish();
}

export function decodeEcdheServerKeyExchange(body: Uint8Array): EcdheServerKeyExchange {
  const r = new Reader(body);
  const curveType = r.u8();
  if (curveType !== 3) throw new DecodeError('only named_curve is supported');
  const namedCurve = r.u16();
  const publicPoint = r.vec8();
  const params = body.subarray(0, r.offset);
  const hashAlgorithm = r.u8();
  const signatureAlgorithm = r.u8();
  const signature = r.vec16();
  r.end();
  return { namedCurve, publicPoint, params, hashAlgorithm, signatureAlgorithm, signature };
}

export interface DigitallySigned {
  hashAlgorithm: number;
  signatureAlgorithm: number;
  signature: Uint8Array;
}

export function encodeDigitallySigned(s: DigitallySigned): Uint8Array {
  return new Writer().u8(s.hashAlgorithm).u8(s.signatureAlgorithm).vec16(s.signature).finish();
}

export function decodeDigitallySigned(body: Uint8Array): DigitallySigned {
  const r = new Reader(body);
  const hashAlgorithm = r.u8();
  const signatureAlgorithm = r.u8();
  const signature = r.vec16();
  r.end();
  return { hashAlgorithm, signatureAlgorithm, signature };
}

export interface CertificateRequest {
  certificateTypes: Uint8Array;
  signatureAlgorithms: number[];
  authorities: Uint8Array[];
}

export function encodeCertificateRequest(m: CertificateRequest): Uint8Array {
  const algs = new Writer();
  for (const a of m.signatureAlgorithms) algs.u16(a);
  const cas = new Writer();
  for (const a of m.authorities) cas.vec16(a);
  return new Writer().vec8(m.certificateTypes).vec16(algs.finish()).vec16(cas.finish()).finish();
}

export function decodeCertificateRequest(body: Uint8Array): CertificateRequest {
  const r = new Reader(body);
  const certificateTypes = r.vec8();
  const algsR = new Reader(r.vec16());
  const signatureAlgorithms: number[] = [];
  while (algsR.remaining > 0) signatureAlgorithms.push(algsR.u16());
  const casR = new Reader(r.vec16());
  const authorities: Uint8Array[] = [];
  while (casR.remaining > 0) authorities.push(casR.vec16());
  r.end();
  return { certificateTypes, signatureAlgorithms, authorities };
}

/** PSK identity / identity hint: opaque <0..2^16-1> (RFC 4279 §2). */
export function encodeOpaque16(b: Uint8Array): Uint8Array {
  return new Writer().vec16(b).finish();
}

export function decodeOpaque16(body: Uint8Array): Uint8Array {
  const r = new Reader(body);
  const v = r.vec16();
  r.end();
  return v;
}

/** ECDHE ClientKeyExchange: ECPoint <1..2^8-1>. */
export function encodeOpaque8(b: Uint8Array): Uint8Array {
  return new Writer().vec8(b).finish();
}

export function decodeOpaque8(body: Uint8Array): Uint8Array {
  const r = new Reader(body);
  const v = r.vec8();
  r.end();
  return v;
}

export interface Alert {
  level: number;
  description: number;
}

export function encodeAlert(a: Alert): Uint8Array {
  return Uint8Array.of(a.level, a.description);
}

export function decodeAlert(b: Uint8Array): Alert {
  const r = new Reader(b);
  const level = r.u8();
  const description = r.u8();
  r.end();
  return { level, description };
}

/** renegotiation_info with an empty renegotiated_connection (RFC 5746 §3.2). */
export const EMPTY_RENEGOTIATION_INFO: Extension = { type: ExtensionType.renegotiation_info, data: Uint8Array.of(0) };

export function u16List(values: number[], lengthBytes: 1 | 2 = 2): Uint8Array {
  const inner = new Writer();
  for (const v of values) inner.u16(v);
  const w = new Writer();
  return (lengthBytes === 2 ? w.vec16(inner.finish()) : w.vec8(inner.finish())).finish();
}

export function decodeU16List(data: Uint8Array): number[] {
  const r = new Reader(data);
  const inner = new Reader(r.vec16());
  r.end();
  const out: number[] = [];
  while (inner.remaining > 0) out.push(inner.u16());
  return out;
}
