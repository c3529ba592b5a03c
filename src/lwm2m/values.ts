/**
 * The typed value model of LwM2M resources and the conversion rules per type.
 *
 * - integer / unsignedInteger / time: a JS number while it is a safe integer, a bigint beyond
 *   (integer: signed 64-bit, unsignedInteger: 0..2^64-1, time: signed 64-bit seconds since epoch).
 * - float: a JS number (IEEE 754 double; NaN and infinities allowed where the format can carry them).
 * - opaque: Uint8Array. objlnk: {objectId, instanceId}, each 0..65535 (65535:65535 is the null link).
 * - string / corelnk: JS strings (UTF-8 on the wire).
 */
import type { ValueType } from './model.js';
import { badRequest } from './errors.js';

export interface ObjLink {
  readonly objectId: number;
  readonly instanceId: number;
}

export type Lwm2mValue =
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'integer'; readonly value: number | bigint }
  | { readonly type: 'unsignedInteger'; readonly value: number | bigint }
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'opaque'; readonly value: Uint8Array }
  | { readonly type: 'time'; readonly value: number | bigint }
  | { readonly type: 'objlnk'; readonly value: ObjLink }
  | { readonly type: 'corelnk'; readonly value: string };

export type ValueOf<T extends ValueType> = Extract<Lwm2mValue, { type: T }>['value'];

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
export const UINT64_MAX = 2n ** 64n - 1n;

/** Number when it is a safe integer, bigint otherwise: the canonical form of integers. */
export function normalizeInteger(v: number | bigint): number | bigint {
  if (typeof v === 'number') return v;
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function integerInRange(v: number | bigint, min: bigint, max: bigint): boolean {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return false;
    if (Number.isSafeInteger(v)) return BigInt(v) >= min && BigInt(v) <= max;
    // an unsafe but integral double: compare exactly through BigInt
    return BigInt(v) >= min && BigInt(v) <= max;
  }
  return v >= min && v <= max;
}

export function isObjLinkId(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 65535;
}

/** Checks a value against its type's domain; returns a diagnostic or undefined when valid. */
export function checkValue(v: Lwm2mValue): string | undefined {
  switch (v.type) {
    case 'string':
    case 'corelnk':
      return typeof v.value === 'string' ? undefined : 'string value must be a string';
    case 'integer':
    case 'time':
      if (typeof v.value !== 'number' && typeof v.value !== 'bigint') return `${v.type} value must be a number or bigint`;
      return integerInRange(v.value, INT64_MIN, INT64_MAX) ? undefined : `${v.type} value ${String(v.value)} is not a signed 64-bit integer`;
    case 'unsignedInteger':
      if (typeof v.value !== 'number' && typeof v.value !== 'bigint') return 'unsignedInteger value must be a number or bigint';
      return integerInRange(v.value, 0n, UINT64_MAX) ? undefined : `unsignedInteger value ${String(v.value)} out of range 0..2^64-1`;
    case 'float':
      return typeof v.value === 'number' ? undefined : 'float value must be a number';
    case 'boolean':
      return typeof v.value === 'boolean' ? undefined : 'boolean value must be a boolean';
    case 'opaque':
      return v.value instanceof Uint8Array ? undefined : 'opaque value must be a Uint8Array';
    case 'objlnk':
      return typeof v.value === 'object' && v.value !== null && isObjLinkId(v.value.objectId) && isObjLinkId(v.value.instanceId)
        ? undefined
        : 'objlnk value must be {objectId, instanceId} with ids 0..65535';
    default:
      return `unknown value type ${String((v as unknown as { type: unknown }).type)}`;
  }
}

/** Throws 4.00 when the value is outside its type's domain. */
export function assertValue(v: Lwm2mValue): Lwm2mValue {
  const problem = checkValue(v);
  if (problem !== undefined) throw badRequest(problem);
  return v;
}

// ---- constructors ---------------------------------------------------------

export const Value = {
  string: (value: string): Lwm2mValue => ({ type: 'string', value }),
  integer: (value: number | bigint): Lwm2mValue => assertValue({ type: 'integer', value: normalizeInteger(value) }),
  unsignedInteger: (value: number | bigint): Lwm2mValue =>
    assertValue({ type: 'unsignedInteger', value: normalizeInteger(value) }),
  float: (value: number): Lwm2mValue => ({ type: 'float', value }),
  boolean: (value: boolean): Lwm2mValue => ({ type: 'boolean', value }),
  opaque: (value: Uint8Array): Lwm2mValue => ({ type: 'opaque', value }),
  /** Seconds since the epoch; a Date is truncated to whole seconds. */
  time: (value: number | bigint | Date): Lwm2mValue =>
    assertValue({
      type: 'time',
      value: value instanceof Date ? Math.floor(value.getTime() / 1000) : normalizeInteger(value),
    }),
  objlnk: (objectId: number, instanceId: number): Lwm2mValue => assertValue({ type: 'objlnk', value: { objectId, instanceId } }),
  corelnk: (value: string): Lwm2mValue => ({ type: 'corelnk', value }),
} as const;

/** A time value as a Date (milliseconds precision; throws 4.00 beyond Date's range). */
export function timeToDate(v: number | bigint): Date {
  const ms = Number(v) * 1000;
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) throw badRequest(`time ${String(v)} is outside the Date range`);
  return d;
}

// ---- equality (used by tests and by change detection) ---------------------

export function valuesEqual(a: Lwm2mValue, b: Lwm2mValue): boolean {
  if (a.type !== b.type) return false;
  switch (a.type) {
    case 'opaque': {
      const bv = b.value as Uint8Array;
      return a.value.length === bv.length && a.value.every((x, i) => x === bv[i]);
    }
    case 'objlnk': {
      const bv = b.value as ObjLink;
      return a.value.objectId === bv.objectId && a.value.instanceId === bv.instanceId;
    }
    case 'float':
      return Object.is(a.value, b.value) || a.value === b.value;
    case 'integer':
    case 'unsignedInteger':
    case 'time':
      return BigInt(a.value) === BigInt(b.value as number | bigint);
    default:
      return a.value === b.value;
  }
}

// ---- conversion between types ---------------------------------------------

/**
 * Converts a value decoded without a definition (e.g. SenML "v" as integer or float,
 * "vs" as string) to the type a definition asks for. Throws 4.00 when the value cannot
 * be represented in the target type (e.g. 1.5 as integer, -1 as unsignedInteger).
 */
export function convertValue(v: Lwm2mValue, target: ValueType): Lwm2mValue {
  if (v.type === target) return assertValue(v);
  const fail = (): never => {
    throw badRequest(`cannot convert ${v.type} value to ${target}`);
  };
  switch (target) {
    case 'integer':
    case 'unsignedInteger':
    case 'time': {
      let n: number | bigint;
      if (v.type === 'integer' || v.type === 'unsignedInteger' || v.type === 'time') n = v.value;
      else if (v.type === 'float' && Number.isInteger(v.value)) n = Number.isSafeInteger(v.value) ? v.value : BigInt(v.value);
      else return fail();
      return assertValue({ type: target, value: normalizeInteger(n) });
    }
    case 'float':
      if (v.type === 'integer' || v.type === 'unsignedInteger' || v.type === 'time') return { type: 'float', value: Number(v.value) };
      return fail();
    case 'string':
      if (v.type === 'corelnk') return { type: 'string', value: v.value };
      return fail();
    case 'corelnk':
      if (v.type === 'string') return { type: 'corelnk', value: v.value };
      return fail();
    case 'objlnk':
      if (v.type === 'string' || v.type === 'corelnk') return { type: 'objlnk', value: parseObjLink(v.value) };
      return fail();
    case 'opaque':
    case 'boolean':
      return fail();
    default:
      return fail();
  }
}

// ---- text forms (plain text format, SenML vlo, LwM2M CBOR objlnk) ----------

export function formatObjLink(link: ObjLink): string {
  return `${link.objectId}:${link.instanceId}`;
}

export function parseObjLink(text: string): ObjLink {
  const m = /^(0|[1-9][0-9]{0,4}):(0|[1-9][0-9]{0,4})$/.exec(text);
  if (m === null) throw badRequest(`invalid objlnk ${JSON.stringify(text.slice(0, 32))}`);
  const objectId = Number(m[1]);
  const instanceId = Number(m[2]);
  if (!isObjLinkId(objectId) || !isObjLinkId(instanceId)) throw badRequest(`objlnk id out of range: ${text}`);
  return { objectId, instanceId };
}

const INT_RE = /^-?(0|[1-9][0-9]*)$/;
const UINT_RE = /^(0|[1-9][0-9]*)$/;
const FLOAT_RE = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$/;

/** Parses a decimal integer of at most 20 digits (accepting "-0"); throws 4.00. */
export function parseDecimalInteger(text: string, unsigned: boolean): bigint {
  if (text.length > 21 || !(unsigned ? UINT_RE : INT_RE).test(text)) {
    throw badRequest(`invalid ${unsigned ? 'unsigned ' : ''}integer ${JSON.stringify(text.slice(0, 32))}`);
  }
  return BigInt(text);
}

/** The plain-text form of a value (TS Core 1.1 §7.4.1). Throws 4.06 for values text cannot carry. */
export function valueToText(v: Lwm2mValue): string {
  switch (v.type) {
    case 'string':
    case 'corelnk':
      return v.value;
    case 'integer':
    case 'unsignedInteger':
    case 'time':
      return BigInt(v.value).toString();
    case 'float':
      return formatFloat(v.value);
    case 'boolean':
      return v.value ? '1' : '0';
    case 'opaque':
      return Buffer.from(v.value.buffer, v.value.byteOffset, v.value.byteLength).toString('base64');
    case 'objlnk':
      return formatObjLink(v.value);
  }
}

/** Decimal notation of a float; NaN/Infinity are written as such (plain text has no rule for them). */
export function formatFloat(n: number): string {
  if (Object.is(n, -0)) return '-0.0';
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return `${n}.0`;
  return String(n);
}

/** Parses the plain-text form of a value of the given type. Throws 4.00 on malformed text. */
export function valueFromText(text: string, type: ValueType): Lwm2mValue {
  switch (type) {
    case 'string':
    case 'corelnk':
      return { type, value: text };
    case 'integer':
    case 'time':
      return assertValue({ type, value: normalizeInteger(parseDecimalInteger(text, false)) });
    case 'unsignedInteger':
      return assertValue({ type, value: normalizeInteger(parseDecimalInteger(text, true)) });
    case 'float': {
      if (text.length > 400 || !FLOAT_RE.test(text)) {
        if (text === 'NaN') return { type, value: NaN };
        if (text === 'Infinity' || text === '+Infinity') return { type, value: Infinity };
        if (text === '-Infinity') return { type, value: -Infinity };
        throw badRequest(`invalid float ${JSON.stringify(text.slice(0, 32))}`);
      }
      return { type, value: Number(text) };
    }
    case 'boolean':
      if (text === '1') return { type, value: true };
      if (text === '0') return { type, value: false };
      throw badRequest(`invalid boolean ${JSON.stringify(text.slice(0, 32))}: expected 0 or 1`);
    case 'opaque':
      return { type, value: decodeBase64(text, false) };
    case 'objlnk':
      return { type, value: parseObjLink(text) };
  }
}

// ---- strict base64 ---------------------------------------------------------

const B64_STD = /^[A-Za-z0-9+/]*={0,2}$/;
const B64_URL = /^[A-Za-z0-9_-]*={0,2}$/;

/**
 * Strict base64 decoding (Buffer's decoder silently skips garbage). With `allowUrl`,
 * the base64url alphabet (RFC 4648 §5) is accepted too, and padding is optional.
 */
export function decodeBase64(text: string, allowUrl: boolean): Uint8Array {
  const std = B64_STD.test(text);
  const url = allowUrl && B64_URL.test(text);
  if (!std && !url) throw badRequest('invalid base64');
  const unpadded = text.replace(/=+$/, '');
  const padding = text.length - unpadded.length;
  if (unpadded.length % 4 === 1) throw badRequest('invalid base64 length');
  if (padding > 0 && text.length % 4 !== 0) throw badRequest('invalid base64 padding');
  if (!allowUrl && text.length % 4 !== 0) throw badRequest('base64 must be padded');
  const buf = Buffer.from(unpadded, url && !std ? 'base64url' : 'base64');
  // reject non-canonical trailing bits so that decode(encode(x)) is the only spelling
  const canonical = buf.toString(url && !std ? 'base64url' : 'base64').replace(/=+$/, '');
  if (canonical !== unpadded) throw badRequest('non-canonical base64');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

export function encodeBase64(bytes: Uint8Array, url: boolean): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return url ? buf.toString('base64url') : buf.toString('base64');
}
