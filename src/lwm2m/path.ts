/**
 * LwM2M paths: "/", "/o", "/o/i", "/o/i/r", "/o/i/r/ri" (TS Core §6.1 / §7.2).
 * A path is an array of 0..4 ids, each 0..65534 (65535 is reserved, MAX_ID).
 */
import { badRequest } from './errors.js';

export type Lwm2mPath =
  | readonly []
  | readonly [objectId: number]
  | readonly [objectId: number, instanceId: number]
  | readonly [objectId: number, instanceId: number, resourceId: number]
  | readonly [objectId: number, instanceId: number, resourceId: number, resourceInstanceId: number];

/** 65535 is reserved (MAX_ID) and never a valid id in a path. */
export const MAX_ID = 65535;

export type PathLevel = 'root' | 'object' | 'instance' | 'resource' | 'resourceInstance';

const LEVELS: readonly PathLevel[] = ['root', 'object', 'instance', 'resource', 'resourceInstance'];

export function isValidId(id: unknown): id is number {
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < MAX_ID;
}

export function isValidPath(path: readonly unknown[]): path is Lwm2mPath {
  return path.length <= 4 && path.every(isValidId);
}

/** Builds a path from ids, throwing 4.00 if any id is out of range. */
export function makePath(...ids: number[]): Lwm2mPath {
  if (!isValidPath(ids)) throw badRequest(`invalid LwM2M path ids [${ids.join(',')}]`);
  return ids;
}

export function pathLevel(path: Lwm2mPath): PathLevel {
  return LEVELS[path.length] ?? 'root';
}

/**
 * Parses "/3/0/1". Accepts "/" (root) and one trailing slash ("/3/0/"); rejects empty
 * segments, leading zeros ("/03"), signs, non-digits, ids >= 65535 and more than 4 levels.
 */
export function parsePath(text: string): Lwm2mPath {
  if (typeof text !== 'string' || !text.startsWith('/')) throw badRequest(`path must start with "/": ${JSON.stringify(text)}`);
  if (text.length > 64) throw badRequest('path too long');
  if (text === '/') return [];
  // Scanned in place (no split, no regular expression): every Register and SenML record names paths.
  const end = text.endsWith('/') ? text.length - 1 : text.length;
  let levels = 1;
  for (let i = 1; i < end; i++) if (text.charCodeAt(i) === SLASH) levels++;
  if (levels > 4) throw badRequest(`path has more than 4 levels: ${text}`);
  // Sized up front: growing from [] by push would reserve room for 17 ids.
  const ids = new Array<number>(levels);
  let level = 0;
  let start = 1;
  for (let i = 1; i <= end; i++) {
    if (i < end && text.charCodeAt(i) !== SLASH) continue;
    ids[level++] = parseId(text, start, i);
    start = i + 1;
  }
  return ids as unknown as Lwm2mPath;
}

const SLASH = 0x2f;
const DIGIT_0 = 0x30;

/** The id text[start, end): "0" or 1-5 digits without a leading zero, below MAX_ID. */
function parseId(text: string, start: number, end: number): number {
  const length = end - start;
  let valid = length >= 1 && length <= 5 && !(length > 1 && text.charCodeAt(start) === DIGIT_0);
  let id = 0;
  for (let i = start; valid && i < end; i++) {
    const digit = text.charCodeAt(i) - DIGIT_0;
    if (digit < 0 || digit > 9) valid = false;
    else id = id * 10 + digit;
  }
  if (!valid) throw badRequest(`invalid path segment ${JSON.stringify(text.slice(start, end))} in ${text}`);
  if (id >= MAX_ID) throw badRequest(`path id ${id} out of range 0..65534 in ${text}`);
  return id;
}

export function formatPath(path: Lwm2mPath): string {
  return path.length === 0 ? '/' : `/${path.join('/')}`;
}

/** Total order: parents before children, then numerically by id (the order of TS examples). */
export function comparePaths(a: Lwm2mPath, b: Lwm2mPath): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function pathsEqual(a: Lwm2mPath, b: Lwm2mPath): boolean {
  return a.length === b.length && comparePaths(a, b) === 0;
}

/** True when `prefix` equals `path` or is one of its ancestors ("/" is a prefix of all). */
export function isPrefixOf(prefix: Lwm2mPath, path: Lwm2mPath): boolean {
  if (prefix.length > path.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== path[i]) return false;
  return true;
}

/** The parent path; the root has none. */
export function parentPath(path: Lwm2mPath): Lwm2mPath | undefined {
  if (path.length === 0) return undefined;
  return path.slice(0, -1) as unknown as Lwm2mPath;
}

/** Appends one id, checking range and depth. */
export function childPath(path: Lwm2mPath, id: number): Lwm2mPath {
  if (path.length >= 4) throw badRequest(`path ${formatPath(path)} has no children`);
  return makePath(...path, id);
}
