/**
 * Parsing of the Registration interface's requests (LwM2M TS Core 1.1 §6.2.1 Register,
 * §6.2.2 Update): query parameters and the CoRE link-format payload. Pure functions.
 */
import { LinkFormatError, linkAttr, parseLinkFormat } from '../../coap/linkformat.js';

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
const MAX_ENDPOINT_LENGTH = 255;
const SUPPORTED_VERSIONS = new Set(['1.0', '1.1', '1.2']);
const BINDING = /^[UTSN]+Q?$/;

function queryMap(query: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const q of query) {
    const eq = q.indexOf('=');
    const name = eq < 0 ? q : q.slice(0, eq);
    if (map.has(name)) throw new RegistrationRequestError(`query parameter "${name}" appears twice`);
    map.set(name, eq < 0 ? '' : q.slice(eq + 1));
  }
  return map;
}

function lifetime(text: string): number {
  if (!/^\d{1,10}$/.test(text)) throw new RegistrationRequestError(`lifetime "lt=${text}" is not a whole number of seconds`);
  const value = Number(text);
  if (value < 1) throw new RegistrationRequestError('lifetime must be at least 1 second');
  return value;
}

function binding(text: string): { binding: string; queue: boolean } {
  if (!BINDING.test(text)) throw new RegistrationRequestError(`binding "b=${text}" is not valid (U, T, S, N, with a trailing Q for 1.0 queue mode)`);
  return { binding: text, queue: text.endsWith('Q') };
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
    throw new RegistrationRequestError(`object links: ${error instanceof LinkFormatError ? error.message : String(error)}`);
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
    if (!object) throw new RegistrationRequestError(`object link "<${link.target}>" is not </objectId> or </objectId/instanceId>`);
    if (object.objectId > 65534 || (object.instanceId ?? 0) > 65534) throw new RegistrationRequestError(`object link "<${link.target}>" has an id above 65534`);
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
  if (!endpoint) throw new RegistrationRequestError('the endpoint client name (ep) is missing');
  if (endpoint.length > MAX_ENDPOINT_LENGTH) throw new RegistrationRequestError(`the endpoint client name is longer than ${MAX_ENDPOINT_LENGTH} characters`);
  const lwm2mVersion = q.get('lwm2m') ?? '1.0';
  if (!SUPPORTED_VERSIONS.has(lwm2mVersion)) throw new RegistrationRequestError(`LwM2M version "${lwm2mVersion}" is not supported (1.0, 1.1, 1.2)`);
  const b = binding(q.get('b') ?? 'U');
  const { objects, rootPath } = parseObjectLinks(payload);
  return {
    endpoint,
    lifetimeSec: q.has('lt') ? lifetime(q.get('lt')!) : DEFAULT_LIFETIME_SEC,
    lwm2mVersion,
    binding: b.binding,
    smsNumber: q.get('sms') ?? null,
    // 1.1 announces queue mode with a Q parameter; 1.0 with a Q at the end of the binding.
    queueMode: q.has('Q') || b.queue,
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
  if (q.has('b')) {
    const b = binding(q.get('b')!);
    out.binding = b.binding;
    out.queueMode = b.queue || q.has('Q');
  } else if (q.has('Q')) {
    out.queueMode = true;
  }
  if (q.has('sms')) out.smsNumber = q.get('sms')!;
  if (payload !== undefined && payload.length > 0) {
    out.objectLinks = payload;
    out.objects = parseObjectLinks(payload).objects;
  }
  return out;
}
