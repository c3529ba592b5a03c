/**
 * LwM2M SMS wake-up: the Registration Update Trigger (Execute on /1/<Short Server ID>/8, TS
 * Core §E.2 / Transport §6.4 "SMS binding") as a CoAP message in one 8-bit SMS, which makes a
 * device in queue mode or offline contact its server with a registration Update.
 *
 * Lab scope: the trigger goes unprotected (the SMS binding's NoSec mode); a device acts on it
 * only by updating its registration with the server it already knows, so a forged trigger can
 * make it talk to Depot, not elsewhere. SMS secured packets (3GPP TS 31.115) or DTLS over SMS
 * are not built.
 */
import { randomBytes } from 'node:crypto';
import { decode, encode } from '../coap/codec.js';
import { Method, MessageType } from '../coap/codes.js';
import { OptionNumber, getStringOptions } from '../coap/options.js';
import { SmsError } from './errors.js';

/** The CoAP CON POST /1/<ssid>/8 (no payload). */
export function registrationUpdateTrigger(shortServerId: number, messageId = randomBytes(2).readUInt16BE(0), token: Uint8Array = randomBytes(4)): Uint8Array {
  if (!Number.isInteger(shortServerId) || shortServerId < 1 || shortServerId > 65534) throw new SmsError('BAD_MESSAGE', 'the Short Server ID must be 1..65534');
  const path = ['1', String(shortServerId), '8'].map((s) => ({ number: OptionNumber.UriPath, value: new Uint8Array(Buffer.from(s)) }));
  return encode({ type: MessageType.CON, code: Method.POST, messageId, token, options: path, payload: new Uint8Array(0) });
}

/** The Short Server ID a Registration Update Trigger SMS is for, or undefined when the data is something else. */
export function parseRegistrationUpdateTrigger(data: Uint8Array): number | undefined {
  try {
    const msg = decode(data);
    if (msg.code !== Method.POST) return undefined;
    const path = getStringOptions(msg, OptionNumber.UriPath);
    if (path.length !== 3 || path[0] !== '1' || path[2] !== '8' || !/^\d{1,5}$/.test(path[1]!)) return undefined;
    return Number(path[1]);
  } catch {
    return undefined;
  }
}
