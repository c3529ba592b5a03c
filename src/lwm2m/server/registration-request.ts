/**
 * Parsing of the Registration interface's requests (LwM2M TS Core 1.1 §6.2.1 Register,
 * §6.2.2 Update): query parameters and the CoRE link-format payload. Pure functions.
 */
import { LinkFormatError, linkAttr, parseLinkFormat } from '../../coap/linkformat.js';
import { printable } from '../../util/printable.js';

export class RegistrationRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistrationRequestError';
  }
}

export interface ObjectLink {
  objectId: number;
  instanceId?: number;
  /** Object version (ver attribute), when announced. */
  version?: string;
}

export interface RegisterParameters {
  endpoint: string;
  lifetimeSec: number;
  lwm2mVersion: string;
  binding: string;
  smsNumber: string | null;
  queueMode: boolean;
  objectLinks: string;
  objects: ObjectLink[];
  /** Alternate root path from `</path>;rt="oma.lwm2m"` (TS Core §6.2.1), "/" by default. */
  rootPath: string;
}

export interface UpdateParameters {
  lifetimeSec?: number;
  binding?: string;
  smsNumber?: string | null;
  queueMode?: boolean;
  objectLinks?: string;
  objects?: ObjectLink[];
}

export const DEFAULT_LIFETIME_SEC = 86_400;
/**
 * Largest Register, Update or Bootstrap-Request body Depot takes: object links run to a few
 * hundred bytes (some 1,500 `</oid/iid>` links would fit). For the CoAP resources' maxBodySize,
 * so a larger upload is refused with 4.13 before it is buffered (these paths need no credentials).
 */
export const MAX_REGISTRATION_BODY_BYTES = 16 * 1024;
/** Longest endpoint name, in UTF-8 bytes: every URN form TS Core suggests fits many times over. */
export const MAX_ENDPOINT_NAME_BYTES = 255;
/** Longest lifetime: the Lifetime resource (Object 1, resource 1) is an unsigned 32-bit integer. */
const MAX_LIFETIME_SEC = 0xffff_ffff;
const SUPPORTED_VERSIONS = new Set(['1.0', '1.1', '1.2']);
const BINDING = /^[UTSN]+Q?$/;
/** An MSISDN (E.164: at most 15 digits), with or without a leading "+". */
const MSISDN = /^\+?[0-9]{1,15}$/;

/**
 * What must not be in a device string that Depot stores, shows and logs: C0/C1 controls and DEL
 * (a NUL ended up in logs), line and paragraph separators, bidirectional overrides and isolates
 * (they make one name read as another), U+FFFD (what bytes that were not UTF-8 decode to), lone
 * surrogates, and the noncharacters U+FFFE/U+FFFF.
 */
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffd\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function forbiddenCharacter(text: string): string | null {
  const found = FORBIDDEN.exec(text);
  if (!found) return null;
  const code = found[0].charCodeAt(0);
  const what = code === 0xfffd ? 'U+FFFD (the bytes were not valid UTF-8)' : code >= 0xd800 && code <= 0xdfff ? 'a lone surrogate (not valid UTF-8)' : `the character U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return `contains ${what} at index ${found.index}`;
}

/**
 * Checks an Endpoint Client Name (TS Core 1.1 §6.2.1, Register's `ep`; §6.1.3 Bootstrap-Request's):
 * the specification makes it a string unique per server and suggests URN forms (urn:uuid:,
 * urn:imei:, urn:dev:ops: …) without a character set or length; Depot takes 1 to 255 UTF-8
 * bytes of printable Unicode. Returns null for a valid name, otherwise the reason (printable).
 */
export function validateEndpointName(name: string): string | null {
  if (name.length === 0) return 'the endpoint client name is empty';
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_ENDPOINT_NAME_BYTES) return `the endpoint client name is ${bytes} UTF-8 bytes, longer than ${MAX_ENDPOINT_NAME_BYTES}`;
  const bad = forbiddenCharacter(name);
  return bad ? `the endpoint client name ${bad}` : null;
}

function queryMap(query: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const q of query) {
    const eq = q.indexOf('=');
    const name = eq < 0 ? q : q.slice(0, eq);
    if (map.has(name)) throw new RegistrationRequestError(`query parameter "${printable(name, 40)}" appears twice`);
    map.set(name, eq < 0 ? '' : q.slice(eq + 1));
  }
  return map;
}

function lifetime(text: string): number {
  if (!/^\d{1,10}$/.test(text)) throw new RegistrationRequestError(`lifetime "lt=${printable(text, 40)}" is not a whole number of seconds`);
  const value = Number(text);
  if (value < 1) throw new RegistrationRequestError('lifetime must be at least 1 second');
  if (value > MAX_LIFETIME_SEC) throw new RegistrationRequestError(`lifetime ${value} s is above ${MAX_LIFETIME_SEC} (an unsigned 32-bit number of seconds)`);
  return value;
}

function binding(text: string): { binding: string; queue: boolean } {
  if (!BINDING.test(text)) throw new RegistrationRequestError(`binding "b=${printable(text, 40)}" is not valid (U, T, S, N, with a trailing Q for 1.0 queue mode)`);
  return { binding: text, queue: text.endsWith('Q') };
}

function smsNumber(text: string): string {
  if (!MSISDN.test(text)) throw new RegistrationRequestError(`SMS number "sms=${printable(text, 40)}" is not an MSISDN (up to 15 digits, optionally after "+")`);
  return text;
}

/** `Q` (TS Core 1.1 §6.2.1: queue mode) is a flag and carries no value. */
function queueFlag(q: Map<string, string>): boolean {
  if (!q.has('Q')) return false;
  if (q.get('Q') !== '') throw new RegistrationRequestError(`queue mode "Q" takes no value, got "Q=${printable(q.get('Q')!, 40)}"`);
  return true;
}

const SLASH = 0x2f;
const DIGIT_0 = 0x30;

/** End of the run of ASCII digits in `text` from `start`. */
function digitsEnd(text: string, start: number): number {
  let at = start;
  while (at < text.length) {
    const digit = text.charCodeAt(at) - DIGIT_0;
    if (digit < 0 || digit > 9) break;
    at++;
  }
  return at;
}

function digitsValue(text: string, start: number, end: number): number {
  let value = 0;
  for (let at = start; at < end; at++) value = value * 10 + text.charCodeAt(at) - DIGIT_0;
  return value;
}

/** "/objectId" or "/objectId/instanceId", ids of 1-5 digits; undefined for any other target. Scanned, not matched: one per link per Register. */
function objectLinkOf(target: string): ObjectLink | undefined {
  if (target.charCodeAt(0) !== SLASH) return undefined;
  const objectEnd = digitsEnd(target, 1);
  if (objectEnd === 1 || objectEnd > 6) return undefined;
  const link: ObjectLink = { objectId: digitsValue(target, 1, objectEnd) };
  if (objectEnd === target.length) return link;
  if (target.charCodeAt(objectEnd) !== SLASH) return undefined;
  const instanceEnd = digitsEnd(target, objectEnd + 1);
  if (instanceEnd === objectEnd + 1 || instanceEnd - objectEnd - 1 > 5 || instanceEnd !== target.length) return undefined;
  link.instanceId = digitsValue(target, objectEnd + 1, instanceEnd);
  return link;
}

/** Objects and instances announced in a link-format payload (TS Core §6.2.1, §5.2.4 of Transport). */
export function parseObjectLinks(text: string): { objects: ObjectLink[]; rootPath: string } {
  if (text.trim() === '') return { objects: [], rootPath: '/' };
  let links;
  try {
    links = parseLinkFormat(text, { allowWhitespace: true });
  } catch (error) {
    throw new RegistrationRequestError(`object links: ${printable(error instanceof LinkFormatError ? error.message : String(error))}`);
  }
  let rootPath = '/';
  const objects: ObjectLink[] = [];
  for (const link of links) {
    if (linkAttr(link, 'rt') === 'oma.lwm2m') {
      rootPath = link.target.replace(/\/+$/, '') || '/';
      continue;
    }
    // The root link itself, e.g. `</>;lwm2m=1.1` opening a Bootstrap-Discover answer (TS Core 1.1 §6.1.7.1).
    if (link.target === '/' || link.target === rootPath) continue;
    const relative = rootPath !== '/' && link.target.startsWith(rootPath + '/') ? link.target.slice(rootPath.length) : link.target;
    const object = objectLinkOf(relative);
    if (!object) throw new RegistrationRequestError(`object link "<${printable(link.target, 80)}>" is not </objectId> or </objectId/instanceId>`);
    if (object.objectId > 65534 || (object.instanceId ?? 0) > 65534) throw new RegistrationRequestError(`object link "<${printable(link.target, 80)}>" has an id above 65534`);
    const version = linkAttr(link, 'ver');
    if (version !== undefined) object.version = version;
    objects.push(object);
  }
  return { objects, rootPath };
}

/** Register: POST /rd?ep=…&lt=…&lwm2m=…&b=…[&sms=…][&Q] with object links. */
export function parseRegister(query: readonly string[], payload: string): RegisterParameters {
  const q = queryMap(query);
  const endpoint = q.get('ep');
  if (endpoint === undefined) throw new RegistrationRequestError('the endpoint client name (ep) is missing');
  const badName = validateEndpointName(endpoint);
  if (badName) throw new RegistrationRequestError(badName);
  const lwm2mVersion = q.get('lwm2m') ?? '1.0';
  if (!SUPPORTED_VERSIONS.has(lwm2mVersion)) throw new RegistrationRequestError(`LwM2M version "${printable(lwm2mVersion, 40)}" is not supported (1.0, 1.1, 1.2)`);
  const b = binding(q.get('b') ?? 'U');
  const lifetimeSec = q.has('lt') ? lifetime(q.get('lt')!) : DEFAULT_LIFETIME_SEC;
  const sms = q.has('sms') ? smsNumber(q.get('sms')!) : null;
  const queue = queueFlag(q);
  const { objects, rootPath } = parseObjectLinks(payload);
  return {
    endpoint,
    lifetimeSec,
    lwm2mVersion,
    binding: b.binding,
    smsNumber: sms,
    // 1.1 announces queue mode with a Q parameter; 1.0 with a Q at the end of the binding.
    queueMode: queue || b.queue,
    objectLinks: payload,
    objects,
    rootPath,
  };
}

/** Update: POST /rd/<id>[?lt=…][&b=…][&sms=…][&Q] with optional new object links. */
export function parseUpdate(query: readonly string[], payload: string | undefined): UpdateParameters {
  const q = queryMap(query);
  const out: UpdateParameters = {};
  if (q.has('lt')) out.lifetimeSec = lifetime(q.get('lt')!);
  const queue = queueFlag(q);
  if (q.has('b')) {
    const b = binding(q.get('b')!);
    out.binding = b.binding;
    out.queueMode = b.queue || queue;
  } else if (queue) {
    out.queueMode = true;
  }
  if (q.has('sms')) out.smsNumber = smsNumber(q.get('sms')!);
  if (payload !== undefined && payload.length > 0) {
    out.objectLinks = payload;
    out.objects = parseObjectLinks(payload).objects;
  }
  return out;
}
