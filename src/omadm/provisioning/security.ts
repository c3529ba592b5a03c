/**
 * Securing a provisioning document (OMA-WAP-ProvBoot-V1_1 §5 "Security"): the push's
 * Content-Type carries SEC (the method) and MAC, an HMAC-SHA1 over the document's WBXML bytes
 * written as 40 hexadecimal digits (upper case, as devices print it; compared without regard to case).
 *
 * Keys (ProvBoot §5.3):
 * - NETWPIN: the IMSI in the semi-octet form of the SIM's EF-IMSI (3GPP TS 51.011 §10.3.2,
 *   formerly GSM 11.11) without its length byte: the first nibble is the parity/identity type
 *   (1001 for an odd number of digits, 0001 for even), digits follow, an even count is padded
 *   with F, and each byte holds its two nibbles low first.
 * - USERPIN: the PIN's characters.
 * - USERNETWPIN: the NETWPIN key followed by the PIN's characters.
 * - USERPINMAC: the PIN is itself the MAC's carrier: its first half are digits the server chose,
 *   its second half the HMAC (keyed with the first half) reduced to one digit per byte (mod 10).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { PushSecurity } from '../push-port.js';

export const PROVSEC_CLAUSE = 'OMA-WAP-ProvBoot-V1_1 §5';

/** Printable PIN: digits only, 4 to 16 of them (what a phone keypad enters). */
export function checkPin(pin: string): string {
  if (!/^\d{4,16}$/.test(pin)) throw new RangeError('a PIN is 4 to 16 digits');
  return pin;
}

/** An IMSI: 6 to 15 digits (3GPP TS 23.003 §2.2). */
export function checkImsi(imsi: string): string {
  if (!/^\d{6,15}$/.test(imsi)) throw new RangeError('an IMSI is 6 to 15 digits');
  return imsi;
}

/** The IMSI as EF-IMSI semi-octets without the length byte. */
export function imsiSemiOctets(imsi: string): Uint8Array {
  checkImsi(imsi);
  const nibbles = [imsi.length % 2 === 1 ? 0x9 : 0x1, ...[...imsi].map((d) => Number(d))];
  if (nibbles.length % 2 === 1) nibbles.push(0xf);
  const out = new Uint8Array(nibbles.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = (nibbles[2 * i + 1]! << 4) | nibbles[2 * i]!;
  return out;
}

export interface SecurityInputs {
  readonly pin?: string;
  readonly imsi?: string;
}

/** The HMAC key of a method; a RangeError when the method needs what is not known (no IMSI, no PIN). */
export function provisioningKey(sec: Exclude<PushSecurity, 'USERPINMAC'>, inputs: SecurityInputs): Uint8Array {
  switch (sec) {
    case 'USERPIN':
      if (inputs.pin === undefined) throw new RangeError('USERPIN needs a PIN');
      return Buffer.from(checkPin(inputs.pin), 'ascii');
    case 'NETWPIN':
      if (inputs.imsi === undefined) throw new RangeError('NETWPIN needs the device\'s IMSI');
      return imsiSemiOctets(inputs.imsi);
    case 'USERNETWPIN':
      if (inputs.imsi === undefined || inputs.pin === undefined) throw new RangeError('USERNETWPIN needs the IMSI and a PIN');
      return Buffer.concat([imsiSemiOctets(inputs.imsi), Buffer.from(checkPin(inputs.pin), 'ascii')]);
  }
}

/** HMAC-SHA1 over the document, as 40 upper-case hex digits. */
export function provisioningMac(key: Uint8Array, document: Uint8Array): string {
  return createHmac('sha1', key).update(document).digest('hex').toUpperCase();
}

/** The device's check of SEC/MAC (constant time); false for anything malformed. */
export function verifyProvisioningMac(sec: PushSecurity, mac: string | undefined, document: Uint8Array, inputs: SecurityInputs): boolean {
  try {
    if (sec === 'USERPINMAC') return inputs.pin !== undefined && verifyUserPinMac(inputs.pin, document);
    if (mac === undefined || !/^[0-9A-Fa-f]{40}$/.test(mac)) return false;
    const expected = Buffer.from(provisioningMac(provisioningKey(sec, inputs), document), 'hex');
    return timingSafeEqual(expected, Buffer.from(mac, 'hex'));
  } catch {
    return false;
  }
}

/**
 * USERPINMAC's PIN for a document: `prefix` (even count of digits chosen by the server, at
 * least 5) followed by as many digits of the HMAC keyed with the prefix.
 */
export function userPinMac(prefix: string, document: Uint8Array): string {
  if (!/^\d{5,8}$/.test(prefix)) throw new RangeError('a USERPINMAC prefix is 5 to 8 digits');
  const mac = createHmac('sha1', Buffer.from(prefix, 'ascii')).update(document).digest();
  let digits = '';
  for (let i = 0; i < prefix.length; i++) digits += String(mac[i]! % 10);
  return prefix + digits;
}

function verifyUserPinMac(pin: string, document: Uint8Array): boolean {
  if (!/^\d+$/.test(pin) || pin.length % 2 === 1 || pin.length < 10) return false;
  const expected = userPinMac(pin.slice(0, pin.length / 2), document);
  return timingSafeEqual(Buffer.from(expected), Buffer.from(pin));
}
