/**
 * Kannel (https://www.kannel.org) as Depot's SMS gateway.
 *
 * Submit: smsbox's sendsms HTTP interface, one GET per SMS: `to`, `from`, `text` (the octets,
 * percent-encoded), `udh` (with its length octet), `coding` (0 GSM 7-bit with charset=UTF-8, 1
 * 8-bit data, 2 UCS-2 with charset=UTF-16BE), `dlr-mask` and `dlr-url`. Kannel answers 202
 * ("0: Accepted for delivery", "3: Queued for later delivery") when it took the message.
 *
 * Callbacks into Depot (public routes on the API port, src/api/sms.ts):
 * - delivery reports: the `dlr-url` of each SMS names the message and part and carries an
 *   HMAC of them under the callback secret, so a report can only be made for a message Depot
 *   sent, and a leaked URL only concerns that one SMS; Kannel fills in %d (type), %T (time)
 *   and %A (the SMSC's reply).
 * - MO messages: smsbox's sms-service `get-url`, with the callback secret as `key`.
 * The query strings are read from the raw URL (parseRawQuery), so binary `data`/`udh` survive.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { normalizeNumber, normalizeSender } from './address.js';
import { SmsError } from './errors.js';
import { DLR_ALL, type DeliveryReport, type MobileOriginated, type SmsGateway, type SubmitRequest, type SubmitResult } from './gateway.js';

/** Callback paths on the API port. */
export const DLR_PATH = '/sms/kannel/dlr';
export const MO_PATH = '/sms/kannel/mo';

/** Percent-encodes octets (unreserved characters stay as they are). */
export function percentEncode(data: Uint8Array): string {
  let out = '';
  for (const b of data) {
    if ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e) out += String.fromCharCode(b);
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** Percent-decodes to octets ("+" is a space, as in forms); BAD_CALLBACK on a broken escape. */
export function percentDecode(text: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25) {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new SmsError('BAD_CALLBACK', 'broken percent-encoding in the query');
      out.push(parseInt(hex, 16));
      i += 2;
    } else if (c === 0x2b) {
      out.push(0x20);
    } else if (c < 0x80) {
      out.push(c);
    } else {
      out.push(...Buffer.from(text[i]!, 'utf8'));
    }
  }
  return Uint8Array.from(out);
}

/** The query of a raw request URL as octets per name; a name given twice is refused. */
export function parseRawQuery(url: string, maxParams = 32): Map<string, Uint8Array> {
  const q = url.indexOf('?');
  const out = new Map<string, Uint8Array>();
  if (q < 0) return out;
  for (const pair of url.slice(q + 1).split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = Buffer.from(percentDecode(eq < 0 ? pair : pair.slice(0, eq))).toString('latin1');
    if (out.has(name)) throw new SmsError('BAD_CALLBACK', `query parameter "${name.slice(0, 40)}" given twice`);
    if (out.size >= maxParams) throw new SmsError('BAD_CALLBACK', 'too many query parameters');
    out.set(name, percentDecode(eq < 0 ? '' : pair.slice(eq + 1)));
  }
  return out;
}

function sign(secret: string, what: string): string {
  return createHmac('sha256', secret).update(what).digest().subarray(0, 16).toString('base64url');
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The dlr-url of one SMS: Depot's callback with the message id, part and their signature, and Kannel's %-escapes. */
export function dlrUrl(callbackBase: string, secret: string, messageId: string, seq: number): string {
  const ref = `${messageId}.${seq}`;
  return `${callbackBase.replace(/\/+$/, '')}${DLR_PATH}?ref=${ref}&sig=${sign(secret, `dlr:${ref}`)}&type=%d&ts=%T&reply=%A`;
}

/** The sms-service get-url for MO messages (goes into Kannel's configuration). */
export function moUrl(callbackBase: string, secret: string): string {
  return `${callbackBase.replace(/\/+$/, '')}${MO_PATH}?key=${percentEncode(Buffer.from(secret))}&from=%p&to=%P&coding=%c&udh=%u&data=%b&ts=%T`;
}

const text = (v: Uint8Array | undefined): string | undefined => (v === undefined ? undefined : Buffer.from(v).toString('utf8'));

function timeOf(v: Uint8Array | undefined, now: number): number {
  const t = text(v);
  if (t === undefined || t === '' || t === '%T') return now;
  if (!/^\d{1,12}$/.test(t)) throw new SmsError('BAD_CALLBACK', 'ts is not a Unix time');
  return Number(t) * 1000;
}

/** A delivery report from its callback query; UNAUTHENTICATED without a valid signature, BAD_CALLBACK when malformed. */
export function parseDeliveryReport(query: Map<string, Uint8Array>, secret: string, now: number): DeliveryReport {
  const ref = text(query.get('ref'));
  const sig = text(query.get('sig'));
  if (ref === undefined || sig === undefined) throw new SmsError('UNAUTHENTICATED', 'a delivery report needs ref and sig');
  if (!sameText(sign(secret, `dlr:${ref}`), sig)) throw new SmsError('UNAUTHENTICATED', 'the delivery report signature does not match');
  const m = /^([A-Za-z0-9_-]{1,64})\.(\d{1,3})$/.exec(ref);
  if (!m) throw new SmsError('BAD_CALLBACK', 'ref is not <message id>.<part>');
  const type = text(query.get('type'));
  if (type === undefined || !/^\d{1,2}$/.test(type) || ![1, 2, 4, 8, 16].includes(Number(type))) throw new SmsError('BAD_CALLBACK', 'type is not a delivery report type (1, 2, 4, 8 or 16)');
  const reply = text(query.get('reply'));
  const clean = reply === undefined || reply === '%A' ? null : reply.replace(/[\p{Cc}]/gu, ' ').slice(0, 160);
  return { messageId: m[1]!, seq: Number(m[2]), type: Number(type), text: clean, at: timeOf(query.get('ts'), now) };
}

/** A mobile-originated message from its callback query (see moUrl). */
export function parseMobileOriginated(query: Map<string, Uint8Array>, secret: string, now: number): MobileOriginated {
  const key = text(query.get('key'));
  if (key === undefined || !sameText(key, secret)) throw new SmsError('UNAUTHENTICATED', 'the MO callback key is missing or wrong');
  let from: string;
  try {
    from = normalizeNumber(text(query.get('from')), 'from');
  } catch (error) {
    throw new SmsError('BAD_CALLBACK', (error as Error).message);
  }
  let to: string;
  try {
    to = normalizeSender(text(query.get('to')));
  } catch (error) {
    throw new SmsError('BAD_CALLBACK', (error as Error).message.replace('sender', 'to'));
  }
  const codingText = text(query.get('coding')) ?? '0';
  if (!/^[0-2]$/.test(codingText)) throw new SmsError('BAD_CALLBACK', 'coding must be 0, 1 or 2');
  const data = query.get('data');
  if (data === undefined) throw new SmsError('BAD_CALLBACK', 'an MO message needs data');
  if (data.length > 1400) throw new SmsError('BAD_CALLBACK', 'MO data longer than any SMS');
  const udhBytes = query.get('udh');
  const udh = udhBytes && udhBytes.length > 0 ? udhBytes : null;
  if (udh && (udh.length > 140 || udh[0]! + 1 !== udh.length)) throw new SmsError('BAD_CALLBACK', 'udh is not a user data header');
  return { from, to, coding: Number(codingText) as 0 | 1 | 2, udh, data, at: timeOf(query.get('ts'), now) };
}

export interface KannelGatewayOptions {
  /** smsbox's sendsms URL, e.g. http://127.0.0.1:13013/cgi-bin/sendsms. */
  readonly sendsmsUrl: string;
  readonly username: string;
  /** The sendsms-user password (kept out of every message and log). */
  readonly password: string;
  /** Default sender. */
  readonly from?: string;
  /** Route through this smsc-id. */
  readonly smsc?: string;
  readonly dlrMask?: number;
  /** Per request, ms (default 10 s). */
  readonly timeoutMs?: number;
}

export class KannelGateway implements SmsGateway {
  readonly description: string;
  readonly #password: string;
  private readonly url: URL;

  constructor(private readonly options: KannelGatewayOptions) {
    this.url = new URL(options.sendsmsUrl);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new SmsError('NOT_CONFIGURED', 'the sendsms URL must be http or https');
    if (this.url.username || this.url.password || this.url.search) throw new SmsError('NOT_CONFIGURED', 'give the sendsms URL without credentials or query (the username and password are separate settings)');
    this.description = `Kannel sendsms at ${this.url.origin}${this.url.pathname}`;
    this.#password = options.password;
  }

  submit(request: SubmitRequest): Promise<SubmitResult> {
    const { segment } = request;
    const params: [string, string][] = [
      ['username', percentEncode(Buffer.from(this.options.username))],
      ['password', percentEncode(Buffer.from(this.#password))],
      ['to', percentEncode(Buffer.from(request.to))],
      ['text', percentEncode(segment.data)],
      ['coding', String(segment.coding)],
    ];
    const from = request.from ?? this.options.from;
    if (from) params.push(['from', percentEncode(Buffer.from(from))]);
    if (segment.coding === 0) params.push(['charset', 'UTF-8']);
    if (segment.coding === 2) params.push(['charset', 'UTF-16BE']);
    if (segment.udh) params.push(['udh', percentEncode(segment.udh)]);
    if (this.options.smsc) params.push(['smsc', percentEncode(Buffer.from(this.options.smsc))]);
    if (request.dlrUrl) params.push(['dlr-mask', String(this.options.dlrMask ?? DLR_ALL)], ['dlr-url', percentEncode(Buffer.from(request.dlrUrl))]);
    const path = `${this.url.pathname}?${params.map(([k, v]) => `${k}=${v}`).join('&')}`;
    return this.get(path);
  }

  private get(path: string): Promise<SubmitResult> {
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      let connected = false;
      let settled = false;
      const fail = (error: SmsError): void => {
        if (settled) return;
        settled = true;
        reject(error);
      };
      const req = send({ host: this.url.hostname, port: this.url.port || undefined, path, method: 'GET', agent: false, headers: { connection: 'close' }, timeout: timeoutMs }, (res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 2000) body += chunk;
        });
        res.on('error', () => fail(new SmsError('GATEWAY_AMBIGUOUS', `${this.description}: the answer broke off; the SMS may have been taken`)));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          const status = res.statusCode ?? 0;
          const said = body.replace(/[\p{Cc}]/gu, ' ').trim().slice(0, 200);
          if (status >= 200 && status < 300) resolve({ reply: said });
          else if (status >= 500 || status === 408 || status === 429) reject(new SmsError('GATEWAY_TEMPORARY', `${this.description} answered ${status}: ${said}`));
          else if (/authori[sz]ation failed/i.test(said)) reject(new SmsError('GATEWAY_TEMPORARY', `${this.description} refused Depot's sendsms username or password (${status} ${said}); check the sendsms-user in Kannel's configuration`));
          else reject(new SmsError('GATEWAY_REFUSED', `${this.description} refused the SMS: ${status} ${said}`));
        });
      });
      req.on('socket', (socket) => {
        socket.once('connect', () => (connected = true));
      });
      req.on('timeout', () => {
        req.destroy();
        fail(connected ? new SmsError('GATEWAY_AMBIGUOUS', `${this.description} did not answer within ${timeoutMs} ms; the SMS may have been taken`) : new SmsError('GATEWAY_TEMPORARY', `cannot connect to ${this.description} within ${timeoutMs} ms`));
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        fail(connected ? new SmsError('GATEWAY_AMBIGUOUS', `${this.description}: connection lost (${error.code ?? error.message}); the SMS may have been taken`) : new SmsError('GATEWAY_TEMPORARY', `cannot reach ${this.description}: ${error.code ?? error.message}`));
      });
      req.end();
    });
  }
}
