/**
 * The OMA DM 1.2 notification, "package #0" (OMA-TS-DM_Notification-V1_2): the server's trigger
 * that makes a device's DM client open a session, pushed over WAP Push as
 * application/vnd.syncml.notification to x-wap-application:syncml.dm. Sans-IO: values in, bytes
 * out, and back.
 *
 * Layout (DM Notification "Package #0", bit fields most significant bit first):
 *
 *   digest            128 bits  MD5, see below
 *   version            10 bits  the DM version times ten: 1.2 is 12
 *   ui-mode             2 bits  0 not specified, 1 background, 2 informative, 3 user interaction
 *   initiator           1 bit   0 user initiated, 1 server initiated
 *   future-use         27 bits  zero
 *   session-id         16 bits  the SessionID the device uses in the session it opens
 *   length-identifier   8 bits  length of the server identifier
 *   server-identifier   n bytes the server's ID as in the device's DM account (ServerID)
 *   vendor-specific     the rest (trigger body)
 *
 * digest = H(B64(H(server-identifier:password)):nonce:B64(H(trigger))), H = MD5, where trigger is
 * everything after the digest, and password/nonce are the server's credentials for that device
 * (the APPSRV AAUTHSECRET/AAUTHDATA of its account). A device that computes another digest MUST
 * ignore the notification (DM Notification "Security").
 *
 * Device clients differ: some expect another version number, some hash the nonce's base64 text
 * instead of its bytes. Those are NotificationQuirks, chosen per model profile, never branches here.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const NOTIFICATION_CLAUSE = 'OMA-TS-DM_Notification-V1_2 Package #0';

export const UiMode = { NotSpecified: 0, Background: 1, Informative: 2, UserInteraction: 3 } as const;
export type UiMode = (typeof UiMode)[keyof typeof UiMode];

export const Initiator = { User: 0, Server: 1 } as const;
export type Initiator = (typeof Initiator)[keyof typeof Initiator];

export interface DmNotification {
  /** 10 bits: the DM protocol version times ten (12 for DM 1.2). */
  readonly version: number;
  readonly uiMode: UiMode;
  readonly initiator: Initiator;
  /** 16 bits. */
  readonly sessionId: number;
  /** The server identifier (ServerID), at most 255 bytes of UTF-8. */
  readonly serverId: string;
  readonly vendorSpecific?: Uint8Array;
}

/** How a digest is computed: the standard, or a known client variant. */
export type DigestVariant =
  /** The nonce's bytes, as the spec says. */
  | 'standard'
  /** The nonce's base64 text hashed as it appears in the account (a common client mistake). */
  | 'nonce-as-base64-text'
  /** All-zero digest: clients that never check it (no verification possible, sent anyway). */
  | 'zero';

/** Client quirks a model profile may choose (data, not code paths). */
export interface NotificationQuirks {
  /** The version field's value (default 12). */
  readonly version?: number;
  readonly digest?: DigestVariant;
}

const DIGEST_BYTES = 16;
const FIXED_HEADER_BYTES = 8; // version..session-id = 10+2+1+27+16 = 56 bits = 7 bytes, + length-identifier
/** A notification travels in one or a few SMS: anything longer is not one. */
export const MAX_NOTIFICATION_BYTES = 1024;

/** Bytes that are not a package #0 (the device ignores them); `clause` names the rule, or "limit". */
export class NotificationFormatError extends Error {
  constructor(
    message: string,
    readonly clause: string,
    readonly offset?: number,
  ) {
    super(`${message}${offset === undefined ? '' : ` at byte ${offset}`} (${clause})`);
    this.name = 'NotificationFormatError';
  }
}

function md5(...parts: (string | Uint8Array)[]): Buffer {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** The trigger (header + body): the bytes after the digest, which the digest covers. */
export function encodeTrigger(n: DmNotification): Uint8Array {
  if (!Number.isInteger(n.version) || n.version < 0 || n.version > 0x3ff) throw new RangeError(`notification version ${n.version} does not fit 10 bits`);
  if (![0, 1, 2, 3].includes(n.uiMode)) throw new RangeError(`ui-mode ${n.uiMode} is not 0-3`);
  if (n.initiator !== 0 && n.initiator !== 1) throw new RangeError('initiator is 0 or 1');
  if (!Number.isInteger(n.sessionId) || n.sessionId < 0 || n.sessionId > 0xffff) throw new RangeError(`session id ${n.sessionId} does not fit 16 bits`);
  const serverId = Buffer.from(n.serverId, 'utf8');
  if (serverId.length === 0 || serverId.length > 255) throw new RangeError('the server identifier is 1 to 255 bytes');
  const vendor = n.vendorSpecific ?? new Uint8Array();
  const out = Buffer.alloc(FIXED_HEADER_BYTES + serverId.length + vendor.length);
  // version(10) ui-mode(2) initiator(1) future-use(27): 40 bits in bytes 0-4.
  out[0] = (n.version >> 2) & 0xff;
  out[1] = ((n.version & 0x03) << 6) | (n.uiMode << 4) | (n.initiator << 3);
  // bytes 2-4 and the low 3 bits of byte 1 are future-use, zero.
  out.writeUInt16BE(n.sessionId, 5);
  out[7] = serverId.length;
  serverId.copy(out, 8);
  Buffer.from(vendor).copy(out, 8 + serverId.length);
  return new Uint8Array(out);
}

/**
 * The digest of a trigger for this server identifier, server password and server nonce.
 * `nonce` is the nonce's bytes; the 'nonce-as-base64-text' variant hashes their base64 instead.
 */
export function notificationDigest(serverId: string, password: string, nonce: Uint8Array, trigger: Uint8Array, variant: DigestVariant = 'standard'): Uint8Array {
  if (variant === 'zero') return new Uint8Array(DIGEST_BYTES);
  const nonceBytes = variant === 'nonce-as-base64-text' ? Buffer.from(Buffer.from(nonce).toString('base64'), 'utf8') : nonce;
  const inner = md5(`${serverId}:${password}`).toString('base64');
  return new Uint8Array(md5(`${inner}:`, nonceBytes, `:${md5(trigger).toString('base64')}`));
}

export interface ServerCredentials {
  readonly password: string;
  readonly nonce: Uint8Array;
}

/** The whole package #0: digest then trigger. */
export function encodeNotification(n: DmNotification, credentials: ServerCredentials, quirks: NotificationQuirks = {}): Uint8Array {
  const trigger = encodeTrigger(quirks.version === undefined ? n : { ...n, version: quirks.version });
  const digest = notificationDigest(n.serverId, credentials.password, credentials.nonce, trigger, quirks.digest ?? 'standard');
  const out = new Uint8Array(DIGEST_BYTES + trigger.length);
  out.set(digest, 0);
  out.set(trigger, DIGEST_BYTES);
  return out;
}

export interface DecodedNotification extends DmNotification {
  readonly digest: Uint8Array;
  /** The bytes the digest covers. */
  readonly trigger: Uint8Array;
}

/** Reads a package #0; a NotificationFormatError for anything that is not one (the device ignores it). */
export function decodeNotification(data: Uint8Array): DecodedNotification {
  if (data.length > MAX_NOTIFICATION_BYTES) throw new NotificationFormatError(`notification of ${data.length} bytes is longer than ${MAX_NOTIFICATION_BYTES}`, 'limit');
  if (data.length < DIGEST_BYTES + FIXED_HEADER_BYTES + 1) throw new NotificationFormatError(`notification of ${data.length} bytes is shorter than digest, header and a server identifier`, NOTIFICATION_CLAUSE);
  const b = Buffer.from(data.buffer, data.byteOffset, data.length);
  const digest = new Uint8Array(b.subarray(0, DIGEST_BYTES));
  const trigger = new Uint8Array(b.subarray(DIGEST_BYTES));
  const h = b.subarray(DIGEST_BYTES);
  const version = (h[0]! << 2) | (h[1]! >> 6);
  const uiMode = ((h[1]! >> 4) & 0x03) as UiMode;
  const initiator = ((h[1]! >> 3) & 0x01) as Initiator;
  if ((h[1]! & 0x07) !== 0 || h[2] !== 0 || h[3] !== 0 || h[4] !== 0) throw new NotificationFormatError('future-use bits are not zero', NOTIFICATION_CLAUSE, DIGEST_BYTES + 1);
  const sessionId = h.readUInt16BE(5);
  const length = h[7]!;
  if (length === 0) throw new NotificationFormatError('the server identifier is empty', NOTIFICATION_CLAUSE, DIGEST_BYTES + 7);
  if (FIXED_HEADER_BYTES + length > h.length) throw new NotificationFormatError(`the server identifier of ${length} bytes extends past the end`, NOTIFICATION_CLAUSE, DIGEST_BYTES + 7);
  let serverId: string;
  try {
    serverId = new TextDecoder('utf-8', { fatal: true }).decode(h.subarray(8, 8 + length));
  } catch {
    throw new NotificationFormatError('the server identifier is not UTF-8', NOTIFICATION_CLAUSE, DIGEST_BYTES + 8);
  }
  if (/\p{Cc}/u.test(serverId)) throw new NotificationFormatError('the server identifier has control characters', NOTIFICATION_CLAUSE, DIGEST_BYTES + 8);
  const vendor = h.subarray(8 + length);
  return { digest, trigger, version, uiMode, initiator, sessionId, serverId, ...(vendor.length > 0 ? { vendorSpecific: new Uint8Array(vendor) } : {}) };
}

/**
 * The device's check: the digest is the one these credentials give over the trigger as received
 * (constant time). A false answer means "ignore the notification" (DM Notification "Security").
 */
export function verifyNotification(n: DecodedNotification, credentials: ServerCredentials, variant: DigestVariant = 'standard'): boolean {
  if (variant === 'zero') return true;
  const expected = notificationDigest(n.serverId, credentials.password, credentials.nonce, n.trigger, variant);
  return n.digest.length === expected.length && timingSafeEqual(n.digest, expected);
}

/** The SessionID text a device puts in SyncHdr for the notification's 16-bit session id (hex, as DM clients write it). */
export function sessionIdText(sessionId: number): string {
  return sessionId.toString(16).toUpperCase();
}
