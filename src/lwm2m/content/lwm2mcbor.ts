/**
 * LwM2M CBOR, content format 11544 (TS Core 1.2 §7.4.7): nested CBOR maps keyed by path
 * components from the root, e.g. {3: {0: {0: "Open Mobile Alliance", 6: {0: 1, 1: 5}}}}.
 * A key may also be an array of components standing for several levels ({[3, 0]: {...}}).
 * Values: integers, floats, text (string, corelnk, objlnk as "oid:iid"), byte strings
 * (opaque), booleans; a time may be tagged with tag 1.
 *
 * The encoder writes one integer key per level from the root, without array keys.
 */
import type { Lwm2mPath } from '../path.js';
import { formatPath, isValidId } from '../path.js';
import type { Lwm2mNode, Lwm2mRecord } from '../node.js';
import { nodeToRecords, recordsToNode, validateNode } from '../node.js';
import type { Lwm2mValue } from '../values.js';
import { formatObjLink, normalizeInteger, checkValue } from '../values.js';
import { badRequest } from '../errors.js';
import type { DecodeOptions, EncodeOptions } from './common.js';
import { checkSize, limitsOf, registryOf, typeValue } from './common.js';
import { CborFloat, CborMap, CborTag, decodeCbor, encodeCbor, type CborItem } from './cbor.js';

function toCbor(v: Lwm2mValue): CborItem {
  switch (v.type) {
    case 'integer':
    case 'unsignedInteger':
    case 'time':
      return v.value;
    case 'float':
      return new CborFloat(v.value);
    case 'string':
    case 'corelnk':
      return v.value;
    case 'boolean':
      return v.value;
    case 'opaque':
      return v.value;
    case 'objlnk':
      return formatObjLink(v.value);
  }
}

/** Encodes records as one nested map from the root. */
export function encodeLwm2mCborRecords(records: readonly Lwm2mRecord[]): Uint8Array {
  type Tree = Map<number, Tree | CborItem>;
  const root: Tree = new Map();
  for (const r of records) {
    if (r.path.length < 3) throw badRequest(`record ${formatPath(r.path)} does not address a resource`);
    const problem = checkValue(r.value);
    if (problem !== undefined) throw badRequest(`${formatPath(r.path)}: ${problem}`);
    let t = root;
    const ids = r.path as readonly number[];
    for (let i = 0; i < ids.length - 1; i++) {
      const id = ids[i] as number;
      let next = t.get(id);
      if (next === undefined) t.set(id, (next = new Map()));
      if (!(next instanceof Map)) throw badRequest(`${formatPath(r.path)} is below a value`);
      t = next;
    }
    const last = ids[ids.length - 1] as number;
    if (t.has(last)) throw badRequest(`duplicate value for ${formatPath(r.path)}`);
    t.set(last, toCbor(r.value));
  }
  const build = (t: Tree): CborMap =>
    new CborMap([...t.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => [k, v instanceof Map ? build(v) : v] as const));
  return encodeCbor(build(root));
}

export function encodeLwm2mCbor(path: Lwm2mPath, node: Lwm2mNode, _options?: EncodeOptions): Uint8Array {
  validateNode(path, node);
  const records = nodeToRecords(path, node);
  if (records.length === 0) {
    // an empty object/instance/multiple resource: nested empty maps down to the path
    let item: CborItem = new CborMap([]);
    for (let i = path.length - 1; i >= 0; i--) item = new CborMap([[path[i], item]]);
    return encodeCbor(path.length === 0 ? new CborMap([]) : item);
  }
  return encodeLwm2mCborRecords(records);
}

function fromCbor(item: CborItem, where: string): Lwm2mValue {
  if (typeof item === 'number' || typeof item === 'bigint') {
    const big = BigInt(item);
    if (big > 2n ** 63n - 1n) return { type: 'unsignedInteger', value: normalizeInteger(big) };
    return { type: 'integer', value: normalizeInteger(big) };
  }
  if (item instanceof CborFloat) return { type: 'float', value: item.value };
  if (typeof item === 'string') return { type: 'string', value: item };
  if (item instanceof Uint8Array) return { type: 'opaque', value: item };
  if (typeof item === 'boolean') return { type: 'boolean', value: item };
  if (item instanceof CborTag && (item.tag === 1 || item.tag === 1n)) {
    const inner = item.value;
    if (typeof inner === 'number' || typeof inner === 'bigint') return { type: 'time', value: normalizeInteger(BigInt(inner)) };
    if (inner instanceof CborFloat && Number.isInteger(inner.value)) return { type: 'time', value: inner.value };
    throw badRequest(`${where}: tag 1 must wrap an integer time`);
  }
  throw badRequest(`${where}: unsupported CBOR value in LwM2M CBOR`);
}

/** Decodes LwM2M CBOR into records with absolute paths. */
export function decodeLwm2mCborRecords(bytes: Uint8Array, options?: DecodeOptions): Lwm2mRecord[] {
  const limits = limitsOf(options);
  checkSize(bytes, limits);
  const registry = registryOf(options);
  const root = decodeCbor(bytes, limits);
  if (!(root instanceof CborMap)) throw badRequest('LwM2M CBOR payload must be a map');
  const out: Lwm2mRecord[] = [];
  const seen = new Set<string>();
  const walk = (map: CborMap, prefix: readonly number[]): void => {
    for (const [k, v] of map.entries) {
      const keys: CborItem[] = Array.isArray(k) ? k : [k];
      if (keys.length === 0) throw badRequest(`empty path key under ${formatPath(prefix as unknown as Lwm2mPath)}`);
      const path = [...prefix];
      for (const id of keys) {
        if (!isValidId(id)) throw badRequest(`invalid path key under ${formatPath(prefix as unknown as Lwm2mPath)}`);
        path.push(id);
      }
      if (path.length > 4) throw badRequest(`path ${path.join('/')} deeper than a resource instance`);
      const here = path as unknown as Lwm2mPath;
      if (v instanceof CborMap) {
        if (path.length === 4) throw badRequest(`${formatPath(here)}: a resource instance cannot hold a map`);
        walk(v, path);
        continue;
      }
      if (path.length < 3) throw badRequest(`${formatPath(here)}: a value above resource level`);
      const key = formatPath(here);
      if (seen.has(key)) throw badRequest(`duplicate value for ${key}`);
      seen.add(key);
      out.push({ path: here, value: typeValue(registry, here, fromCbor(v, key)) });
    }
  };
  walk(root, []);
  return out;
}

export function decodeLwm2mCbor(path: Lwm2mPath, bytes: Uint8Array, options?: DecodeOptions): Lwm2mNode {
  const records = decodeLwm2mCborRecords(bytes, options);
  return recordsToNode(path, records, registryOf(options));
}

