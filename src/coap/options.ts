import type { CoapMessage, CoapOption } from './message.js';

/** Option numbers (RFC 7252 §5.10, RFC 7641, RFC 7959, RFC 7967). */
export const OptionNumber = {
  IfMatch: 1,
  UriHost: 3,
  ETag: 4,
  IfNoneMatch: 5,
  Observe: 6,
  UriPort: 7,
  LocationPath: 8,
  UriPath: 11,
  ContentFormat: 12,
  MaxAge: 14,
  UriQuery: 15,
  Accept: 17,
  LocationQuery: 20,
  Block2: 23,
  Block1: 27,
  Size2: 28,
  ProxyUri: 35,
  ProxyScheme: 39,
  Size1: 60,
  NoResponse: 258,
} as const;

export type OptionFormat = 'empty' | 'opaque' | 'uint' | 'string';

export interface OptionDefinition {
  name: string;
  format: OptionFormat;
  minLength: number;
  maxLength: number;
  repeatable: boolean;
}

/** What Depot recognises; anything else is "unrecognized" in the sense of RFC 7252 §5.4.1. */
export const optionDefinitions: ReadonlyMap<number, OptionDefinition> = new Map<number, OptionDefinition>([
  [1, { name: 'If-Match', format: 'opaque', minLength: 0, maxLength: 8, repeatable: true }],
  [3, { name: 'Uri-Host', format: 'string', minLength: 1, maxLength: 255, repeatable: false }],
  [4, { name: 'ETag', format: 'opaque', minLength: 1, maxLength: 8, repeatable: true }],
  [5, { name: 'If-None-Match', format: 'empty', minLength: 0, maxLength: 0, repeatable: false }],
  [6, { name: 'Observe', format: 'uint', minLength: 0, maxLength: 3, repeatable: false }],
  [7, { name: 'Uri-Port', format: 'uint', minLength: 0, maxLength: 2, repeatable: false }],
  [8, { name: 'Location-Path', format: 'string', minLength: 0, maxLength: 255, repeatable: true }],
  [11, { name: 'Uri-Path', format: 'string', minLength: 0, maxLength: 255, repeatable: true }],
  [12, { name: 'Content-Format', format: 'uint', minLength: 0, maxLength: 2, repeatable: false }],
  [14, { name: 'Max-Age', format: 'uint', minLength: 0, maxLength: 4, repeatable: false }],
  [15, { name: 'Uri-Query', format: 'string', minLength: 0, maxLength: 255, repeatable: true }],
  [17, { name: 'Accept', format: 'uint', minLength: 0, maxLength: 2, repeatable: false }],
  [20, { name: 'Location-Query', format: 'string', minLength: 0, maxLength: 255, repeatable: true }],
  [23, { name: 'Block2', format: 'uint', minLength: 0, maxLength: 3, repeatable: false }],
  [27, { name: 'Block1', format: 'uint', minLength: 0, maxLength: 3, repeatable: false }],
  [28, { name: 'Size2', format: 'uint', minLength: 0, maxLength: 4, repeatable: false }],
  [35, { name: 'Proxy-Uri', format: 'string', minLength: 1, maxLength: 1034, repeatable: false }],
  [39, { name: 'Proxy-Scheme', format: 'string', minLength: 1, maxLength: 255, repeatable: false }],
  [60, { name: 'Size1', format: 'uint', minLength: 0, maxLength: 4, repeatable: false }],
  [258, { name: 'No-Response', format: 'uint', minLength: 0, maxLength: 1, repeatable: false }],
]);

/** Definitions indexed by option number for the common small numbers (a hot-path lookup). */
const definitionsByNumber: (OptionDefinition | undefined)[] = [];
for (const [n, def] of optionDefinitions) if (n < 512) definitionsByNumber[n] = def;

function definitionOf(n: number): OptionDefinition | undefined {
  return n < 512 ? definitionsByNumber[n] : optionDefinitions.get(n);
}

/** RFC 7252 §5.4.6: odd option numbers are critical. */
export const isCritical = (n: number): boolean => (n & 1) === 1;
/** RFC 7252 §5.4.6: bit 1 marks unsafe-to-forward options. */
export const isUnsafe = (n: number): boolean => (n & 2) === 2;
export const isNoCacheKey = (n: number): boolean => (n & 0x1e) === 0x1c;

export function optionName(n: number): string {
  return optionDefinitions.get(n)?.name ?? `Option${n}`;
}

// ---- value encodings (RFC 7252 §3.2) ----

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: false });

// Encoded values 0..255, shared: option values are never mutated once built.
const smallUints: Uint8Array[] = Array.from({ length: 256 }, (_, v) => (v === 0 ? new Uint8Array(0) : Uint8Array.of(v)));

/** uint: network byte order, shortest form (zero is the empty string). The result must not be modified. */
export function encodeUint(value: number): Uint8Array {
  if (value >= 0 && value < 0x100 && Number.isInteger(value)) return smallUints[value]!;
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`uint option value out of range: ${value}`);
  if (value < 0x10000) return Uint8Array.of(value >>> 8, value & 0xff);
  if (value < 0x1000000) return Uint8Array.of(value >>> 16, (value >>> 8) & 0xff, value & 0xff);
  return Uint8Array.of(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
}

export function decodeUint(bytes: Uint8Array): number {
  let v = 0;
  for (let i = 0; i < bytes.length; i++) v = v * 256 + bytes[i]!;
  return v;
}

export const encodeString = (s: string): Uint8Array => textEncoder.encode(s);
/** UTF-8 option value to string; short ASCII values (nearly all paths) skip the decoder. */
export function decodeString(b: Uint8Array): string {
  if (b.length > 32) return textDecoder.decode(b);
  let s = '';
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c >= 0x80) return textDecoder.decode(b);
    s += String.fromCharCode(c);
  }
  return s;
}

// ---- reading and writing options on a message ----

export function getOption(msg: Pick<CoapMessage, 'options'>, n: number): Uint8Array | undefined {
  for (const o of msg.options) if (o.number === n) return o.value;
  return undefined;
}

export function getOptions(msg: Pick<CoapMessage, 'options'>, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const o of msg.options) if (o.number === n) out.push(o.value);
  return out;
}

export function hasOption(msg: Pick<CoapMessage, 'options'>, n: number): boolean {
  return msg.options.some((o) => o.number === n);
}

export function getUintOption(msg: Pick<CoapMessage, 'options'>, n: number): number | undefined {
  const v = getOption(msg, n);
  return v === undefined ? undefined : decodeUint(v);
}

export function getStringOptions(msg: Pick<CoapMessage, 'options'>, n: number): string[] {
  return getOptions(msg, n).map(decodeString);
}

/** Replaces every instance of option n with the given values (kept in number order). */
export function setOption(msg: Pick<CoapMessage, 'options'>, n: number, ...values: Uint8Array[]): void {
  removeOption(msg, n);
  if (values.length === 0) return;
  let at = msg.options.findIndex((o) => o.number > n);
  if (at < 0) at = msg.options.length;
  msg.options.splice(at, 0, ...values.map((value): CoapOption => ({ number: n, value })));
}

export function setUintOption(msg: Pick<CoapMessage, 'options'>, n: number, value: number): void {
  setOption(msg, n, encodeUint(value));
}

export function removeOption(msg: Pick<CoapMessage, 'options'>, n: number): void {
  if (msg.options.some((o) => o.number === n)) msg.options = msg.options.filter((o) => o.number !== n);
}

/** The request's Uri-Path as "/a/b" (segments joined; "/" when there are none). */
export function uriPathOf(msg: Pick<CoapMessage, 'options'>): string {
  let path = '';
  for (const o of msg.options) if (o.number === OptionNumber.UriPath) path += '/' + decodeString(o.value);
  return path === '' ? '/' : path;
}

export interface OptionProblem {
  option: CoapOption;
  reason: 'unrecognized' | 'bad-length' | 'not-repeatable';
}

/**
 * Applies RFC 7252 §5.4.1/§5.4.3/§5.4.5: options Depot does not recognise, options
 * with a value length outside their range and supernumerary instances of
 * non-repeatable options are all "unrecognized". Elective ones are dropped from the
 * message (silently ignored); the first critical one is returned so the caller can
 * answer 4.02 (request) or reject (response).
 */
export function checkOptions(msg: CoapMessage): OptionProblem | undefined {
  let critical: OptionProblem | undefined;
  let drop: Set<CoapOption> | undefined;
  let previous = -1;
  for (const option of msg.options) {
    const def = definitionOf(option.number);
    let reason: OptionProblem['reason'] | undefined;
    if (!def) reason = 'unrecognized';
    else if (option.value.length < def.minLength || option.value.length > def.maxLength) reason = 'bad-length';
    else if (!def.repeatable && option.number === previous) reason = 'not-repeatable';
    previous = option.number;
    if (!reason) continue;
    if (isCritical(option.number)) {
      critical ??= { option, reason };
    } else {
      (drop ??= new Set()).add(option);
    }
  }
  if (drop) msg.options = msg.options.filter((o) => !drop.has(o));
  return critical;
}
