/**
 * OMA DM 1.2 authentication values (OMA-TS-DM_Security-V1_2 §5.3, the SyncML credential types
 * of OMA-TS-DM_RepPro-V1_2 <Cred>): pure functions, no session state. A nonce is bytes: the
 * NextNonce in a Chal is their base64, and digests are taken over the decoded bytes (a common
 * interop mistake is to hash the base64 text instead).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { DmAuthFormatError } from './errors.js';

export const AuthType = {
  Basic: 'syncml:auth-basic',
  Md5: 'syncml:auth-md5',
  Hmac: 'syncml:auth-MAC',
} as const;

export type AuthType = (typeof AuthType)[keyof typeof AuthType];

const SECURITY = 'OMA-TS-DM_Security-V1_2 §5.3';
/** The integrity clause is cited by name: its number was not checked against the spec text. */
const HMAC_CLAUSE = 'OMA-TS-DM_Security-V1_2 x-syncml-hmac';
/** An x-syncml-hmac header is three short fields: anything longer is not one. */
const MAX_HMAC_HEADER = 1024;
const MD5_LENGTH = 16;

function md5(...parts: (string | Uint8Array)[]): Buffer {
  const hash = createHash('md5');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** B64(MD5(username:password)): the part of every digest that does not change with the nonce. */
function userDigest(username: string, password: string): string {
  return md5(`${username}:${password}`).toString('base64');
}

/**
 * Strict base64 (RFC 4648 §4, padded): Buffer.from(..., 'base64') would skip any character it
 * does not know, so "not base64" could pass as a shorter value.
 */
export function decodeBase64Strict(text: string, what: string): Uint8Array {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new DmAuthFormatError(`${what} is not base64`, 'RFC 4648 §4');
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) throw new DmAuthFormatError(`${what} is not canonical base64`, 'RFC 4648 §3.5');
  return new Uint8Array(bytes);
}

/** A fresh nonce for a Chal's NextNonce (send it as base64 with Format b64). */
export function newNonce(length = 16): Uint8Array {
  return new Uint8Array(randomBytes(length));
}

/** syncml:auth-basic: B64(username:password). */
export function basicCredential(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}

/** The username and password of a syncml:auth-basic credential; a DmAuthFormatError if it is not one. */
export function parseBasicCredential(data: string): { username: string; password: string } {
  const text = Buffer.from(decodeBase64Strict(data.trim(), 'basic credential')).toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) throw new DmAuthFormatError('basic credential has no ":" between username and password', SECURITY);
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** syncml:auth-md5 (§5.3): B64(MD5(B64(MD5(username:password)):nonce)). */
export function md5Credential(username: string, password: string, nonce: Uint8Array): string {
  return md5(`${userDigest(username, password)}:`, nonce).toString('base64');
}

/** Compares two base64 MD5 values in constant time; anything not a base64 MD5 is simply not equal. */
function sameDigest(presented: string, expected: string): boolean {
  let presentedBytes: Uint8Array;
  try {
    presentedBytes = decodeBase64Strict(presented.trim(), 'digest');
  } catch {
    return false;
  }
  const expectedBytes = Buffer.from(expected, 'base64');
  return presentedBytes.length === MD5_LENGTH && timingSafeEqual(presentedBytes, expectedBytes);
}

/** Whether a syncml:auth-md5 Cred's Data is right for this password and the nonce Depot sent. */
export function verifyMd5Credential(presented: string, username: string, password: string, nonce: Uint8Array): boolean {
  return sameDigest(presented, md5Credential(username, password, nonce));
}

/**
 * The HMAC-MD5 integrity value of a message (the x-syncml-hmac HTTP header, OMA-TS-DM_Security-V1_2):
 * B64(MD5(B64(MD5(username:password)):nonce:B64(MD5(body)))), over the body's exact bytes.
 */
export function hmacMac(username: string, password: string, nonce: Uint8Array, body: Uint8Array): string {
  return md5(`${userDigest(username, password)}:`, nonce, `:${md5(body).toString('base64')}`).toString('base64');
}

export interface HmacHeader {
  readonly algorithm: 'MD5';
  readonly username: string;
  readonly mac: string;
}

/** The x-syncml-hmac header value: algorithm=MD5, username="…", mac=…. */
export function formatHmacHeader(header: HmacHeader): string {
  if (/["\\\r\n]/.test(header.username)) throw new RangeError('username cannot be written in a quoted header field');
  return `algorithm=${header.algorithm}, username="${header.username}", mac=${header.mac}`;
}

/**
 * Reads an x-syncml-hmac header. The algorithm may be omitted (MD5 is the default); a field
 * may be quoted; unknown fields are ignored. Throws DmAuthFormatError for anything else.
 */
export function parseHmacHeader(value: string): HmacHeader {
  if (value.length > MAX_HMAC_HEADER) throw new DmAuthFormatError(`x-syncml-hmac header longer than ${MAX_HMAC_HEADER} characters`, 'limit');
  const fields = new Map<string, string>();
  // name=value or name="value", separated by commas.
  const field = /\s*([A-Za-z-]+)\s*=\s*(?:"([^"]*)"|([^,"\s]*))\s*(?:,|$)/y;
  let pos = 0;
  while (pos < value.length) {
    field.lastIndex = pos;
    const m = field.exec(value);
    if (m === null || field.lastIndex === pos) throw new DmAuthFormatError(`x-syncml-hmac header is malformed near character ${pos}`, HMAC_CLAUSE);
    const name = m[1]!.toLowerCase();
    if (fields.has(name)) throw new DmAuthFormatError(`x-syncml-hmac field ${name} appears twice`, HMAC_CLAUSE);
    fields.set(name, m[2] ?? m[3] ?? '');
    pos = field.lastIndex;
  }
  const algorithm = fields.get('algorithm') ?? 'MD5';
  if (algorithm.toUpperCase() !== 'MD5') throw new DmAuthFormatError(`x-syncml-hmac algorithm ${JSON.stringify(algorithm.slice(0, 20))} is not MD5`, HMAC_CLAUSE);
  const username = fields.get('username');
  const mac = fields.get('mac');
  if (username === undefined || username === '') throw new DmAuthFormatError('x-syncml-hmac has no username', HMAC_CLAUSE);
  if (mac === undefined || mac === '') throw new DmAuthFormatError('x-syncml-hmac has no mac', HMAC_CLAUSE);
  return { algorithm: 'MD5', username, mac };
}

/** Whether a message's x-syncml-hmac is right for this password, the nonce Depot sent and the body received. */
export function verifyHmac(header: HmacHeader, password: string, nonce: Uint8Array, body: Uint8Array): boolean {
  return sameDigest(header.mac, hmacMac(header.username, password, nonce, body));
}
