/**
 * Phone numbers (MSISDNs) Depot sends to: international E.164 only ("+" country code and
 * subscriber number, 8 to 15 digits in all, no leading 0), so that a number means the same
 * handset whichever SMSC link carries it. Spaces, hyphens, dots and parentheses between
 * digits are allowed in input and dropped ("+46 70-123 45 67" is "+46701234567"); anything
 * else (letters, national "070…" numbers, "00" prefixes, short codes) is refused with a
 * BAD_NUMBER error saying why. Every number from a device or a callback is untrusted.
 */
import { SmsError } from './errors.js';

const MAX_INPUT = 40;

/** The canonical "+<digits>" form of `input`, or a BAD_NUMBER SmsError. */
export function normalizeNumber(input: unknown, what = 'phone number'): string {
  if (typeof input !== 'string' || input.length === 0) throw new SmsError('BAD_NUMBER', `${what} is missing`);
  if (input.length > MAX_INPUT) throw new SmsError('BAD_NUMBER', `${what} is longer than ${MAX_INPUT} characters`);
  const shown = JSON.stringify(input);
  if (/[^0-9+ ().-]/.test(input)) throw new SmsError('BAD_NUMBER', `${what} ${shown} has characters other than digits, "+", spaces, hyphens, dots and parentheses`);
  const compact = input.replace(/[ ().-]/g, '');
  if (!compact.startsWith('+')) throw new SmsError('BAD_NUMBER', `${what} ${shown} is not in international format: write it as +<country code><number> (E.164)`);
  const digits = compact.slice(1);
  if (!/^\d+$/.test(digits)) throw new SmsError('BAD_NUMBER', `${what} ${shown} has a "+" that is not at the start`);
  if (digits.startsWith('0')) throw new SmsError('BAD_NUMBER', `${what} ${shown}: a country code never starts with 0`);
  if (digits.length < 8 || digits.length > 15) throw new SmsError('BAD_NUMBER', `${what} ${shown} has ${digits.length} digits; E.164 numbers have 8 to 15`);
  return `+${digits}`;
}

/**
 * A sender address as gateways take it: an E.164 number, a short code (3 to 8 digits) or an
 * alphanumeric sender (1 to 11 GSM letters, digits, spaces).
 */
export function normalizeSender(input: unknown): string {
  if (typeof input === 'string' && /^\d{3,8}$/.test(input)) return input;
  if (typeof input === 'string' && /^[A-Za-z0-9 ]{1,11}$/.test(input) && /[A-Za-z]/.test(input)) return input;
  return normalizeNumber(input, 'sender');
}

/** "+46701234567" → "+4670*****67": numbers in operator messages and logs. */
export function maskNumber(number: string): string {
  if (number.length <= 6) return number;
  return number.slice(0, 5) + '*'.repeat(number.length - 7) + number.slice(-2);
}
