/**
 * OMA TLV, content format 11542 (OMA-TS-LightweightM2M-V1_0 §6.4.3).
 *
 * Type byte: bits 7-6 identifier kind (00 object instance, 01 resource instance,
 * 10 multiple resource, 11 resource with value), bit 5 identifier width (0: 8 bits,
 * 1: 16 bits), bits 4-3 length width (00: length in bits 2-0, 01: 8, 10: 16, 11: 24 bits).
 */
import type { Lwm2mPath } from '../path.js';
import { formatPath } from '../path.js';
import type { Lwm2mNode, ResourceNode, InstanceNode } from '../node.js';
import { Node, validateNode } from '../node.js';
import type { ValueType } from '../model.js';
import type { Lwm2mValue } from '../values.js';
import { normalizeInteger } from '../values.js';
import { badRequest, notAcceptable, unsupportedFormat, type CodecLimits } from '../errors.js';
import type { ObjectRegistry } from '../objects/registry.js';
import type { DecodeOptions, EncodeOptions } from './common.js';
import { checkSize, decodeUtf8, limitsOf, registryOf, resourceDef, utf8Encoder, valueTypeOf } from './common.js';

export type TlvKind = 'instance' | 'resourceInstance' | 'resource' | 'multiResource';

const KIND_BITS: Record<TlvKind, number> = { instance: 0, resourceInstance: 1, multiResource: 2, resource: 3 };
const KINDS: readonly TlvKind[] = ['instance', 'resourceInstance', 'multiResource', 'resource'];

export interface TlvEntry {
  readonly kind: TlvKind;
  readonly id: number;
  /** The raw value (leaf kinds) or the encoded children (container kinds). */
  readonly content: Uint8Array;
}

// ---- framing -----------------------------------------------------------------

export function writeTlv(kind: TlvKind, id: number, content: Uint8Array): Uint8Array {
  // 65535 is reserved (TS Core §7.4.3): the reader refuses it, so the writer must not produce it.
  if (!Number.isInteger(id) || id < 0 || id >= 0xffff) throw badRequest(`TLV identifier ${id} out of range`);
  const len = content.length;
  if (len >= 1 << 24) throw notAcceptable(`TLV value of ${len} bytes exceeds the 24-bit length field`);
  const head: number[] = [];
  let type = KIND_BITS[kind] << 6;
  if (id > 0xff) type |= 0x20;
  if (len < 8) type |= len;
  else if (len < 0x100) type |= 0x08;
  else if (len < 0x10000) type |= 0x10;
  else type |= 0x18;
  head.push(type);
  if (id > 0xff) head.push(id >> 8, id & 0xff);
  else head.push(id);
  if (len >= 8) {
    if (len >= 0x10000) head.push((len >> 16) & 0xff);
    if (len >= 0x100) head.push((len >> 8) & 0xff);
    head.push(len & 0xff);
  }
  const out = new Uint8Array(head.length + len);
  out.set(head, 0);
  out.set(content, head.length);
  return out;
}

/** Splits a byte sequence into TLV entries (one level). */
export function readTlvs(bytes: Uint8Array, limits: CodecLimits, counter: { n: number } = { n: 0 }): TlvEntry[] {
  const out: TlvEntry[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    if (++counter.n > limits.maxEntries) throw badRequest('TLV payload has too many entries');
    const start = pos;
    const type = bytes[pos++] as number;
    const kind = KINDS[type >> 6] as TlvKind;
    const idBytes = type & 0x20 ? 2 : 1;
    const lenType = (type >> 3) & 0x03;
    const lenBytes = lenType;
    if (pos + idBytes + lenBytes > bytes.length) throw badRequest(`TLV header truncated at offset ${start}`);
    let id = bytes[pos++] as number;
    if (idBytes === 2) id = (id << 8) | (bytes[pos++] as number);
    let len = type & 0x07;
    if (lenType !== 0) {
      if (len !== 0) throw badRequest(`TLV type byte at offset ${start} has length bits set with a length field`);
      for (let i = 0; i < lenBytes; i++) len = len * 256 + (bytes[pos++] as number);
    }
    if (len > bytes.length - pos) throw badRequest(`TLV value at offset ${start} (${len} bytes) runs past the payload`);
    if (id === 0xffff) throw badRequest(`TLV identifier 65535 is reserved (offset ${start})`);
    out.push({ kind, id, content: bytes.subarray(pos, pos + len) });
    pos += len;
  }
  return out;
}

// ---- values ------------------------------------------------------------------

function intBytes(v: bigint, unsigned: boolean): Uint8Array {
  for (const size of [1, 2, 4, 8]) {
    const bits = BigInt(size * 8);
    const fits = unsigned ? v >= 0n && v < 1n << bits : v >= -(1n << (bits - 1n)) && v < 1n << (bits - 1n);
    if (!fits) continue;
    const out = new Uint8Array(size);
    let x = BigInt.asUintN(size * 8, v);
    for (let i = size - 1; i >= 0; i--) {
      out[i] = Number(x & 0xffn);
      x >>= 8n;
    }
    return out;
  }
  throw notAcceptable(`integer ${v} does not fit 64 bits`);
}

/** The TLV value bytes of a value (TS 1.0 §6.4.3 / 1.1 Appendix C). */
export function encodeTlvValue(v: Lwm2mValue): Uint8Array {
  switch (v.type) {
    case 'string':
    case 'corelnk':
      return utf8Encoder.encode(v.value);
    case 'integer':
    case 'time':
      return intBytes(BigInt(v.value), false);
    case 'unsignedInteger':
      return intBytes(BigInt(v.value), true);
    case 'float': {
      // 4 bytes when the single-precision value is exact, else 8 (NaN takes 8)
      if (Math.fround(v.value) === v.value) {
        const b = new Uint8Array(4);
        new DataView(b.buffer).setFloat32(0, v.value);
        return b;
      }
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v.value);
      return b;
    }
    case 'boolean':
      return Uint8Array.of(v.value ? 1 : 0);
    case 'opaque':
      return v.value;
    case 'objlnk':
      return Uint8Array.of(v.value.objectId >> 8, v.value.objectId & 0xff, v.value.instanceId >> 8, v.value.instanceId & 0xff);
  }
}

/** Decodes TLV value bytes as the given type; unknown type (undefined) gives opaque. */
export function decodeTlvValue(bytes: Uint8Array, type: ValueType | undefined, where: string): Lwm2mValue {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (type) {
    case undefined:
    case 'opaque':
      return { type: 'opaque', value: new Uint8Array(bytes) };
    case 'string':
    case 'corelnk':
      return { type, value: decodeUtf8(bytes, `${where} value`) };
    case 'integer':
    case 'time':
    case 'unsignedInteger': {
      let v: bigint;
      switch (bytes.length) {
        case 1:
          v = BigInt(type === 'unsignedInteger' ? dv.getUint8(0) : dv.getInt8(0));
          break;
        case 2:
          v = BigInt(type === 'unsignedInteger' ? dv.getUint16(0) : dv.getInt16(0));
          break;
        case 4:
          v = BigInt(type === 'unsignedInteger' ? dv.getUint32(0) : dv.getInt32(0));
          break;
        case 8:
          v = type === 'unsignedInteger' ? dv.getBigUint64(0) : dv.getBigInt64(0);
          break;
        default:
          throw badRequest(`${where}: integer TLV value must be 1, 2, 4 or 8 bytes, not ${bytes.length}`);
      }
      return { type, value: normalizeInteger(v) };
    }
    case 'float':
      if (bytes.length === 4) return { type, value: dv.getFloat32(0) };
      if (bytes.length === 8) return { type, value: dv.getFloat64(0) };
      throw badRequest(`${where}: float TLV value must be 4 or 8 bytes, not ${bytes.length}`);
    case 'boolean':
      if (bytes.length !== 1 || (bytes[0] as number) > 1) throw badRequest(`${where}: boolean TLV value must be one byte 0 or 1`);
      return { type, value: bytes[0] === 1 };
    case 'objlnk':
      if (bytes.length !== 4) throw badRequest(`${where}: objlnk TLV value must be 4 bytes, not ${bytes.length}`);
      return { type, value: { objectId: dv.getUint16(0), instanceId: dv.getUint16(2) } };
  }
}

// ---- nodes -------------------------------------------------------------------

function encodeResource(r: ResourceNode): Uint8Array {
  if (r.kind === 'resource') return writeTlv('resource', r.id, encodeTlvValue(r.value));
  return writeTlv('multiResource', r.id, concat(r.instances.map((ri) => writeTlv('resourceInstance', ri.id, encodeTlvValue(ri.value)))));
}

function encodeInstanceContent(i: InstanceNode): Uint8Array {
  return concat(i.resources.map(encodeResource));
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Encodes a node. /o gives object-instance TLVs; /o/i gives the instance's resource TLVs
 * (as in the TS §6.4.3.1 examples); /o/i/r one resource TLV; /o/i/r/ri one resource-instance TLV.
 */
export function encodeTlv(path: Lwm2mPath, node: Lwm2mNode, _options?: EncodeOptions): Uint8Array {
  validateNode(path, node);
  switch (node.kind) {
    case 'object':
      return concat(node.instances.map((i) => writeTlv('instance', i.id, encodeInstanceContent(i))));
    case 'instance':
      return encodeInstanceContent(node);
    case 'resource':
    case 'multiResource':
      return encodeResource(node);
    case 'resourceInstance':
      return writeTlv('resourceInstance', node.id, encodeTlvValue(node.value));
  }
}

function decodeResource(
  registry: ObjectRegistry,
  objectId: number,
  instanceId: number,
  e: TlvEntry,
  limits: CodecLimits,
  counter: { n: number },
): ResourceNode {
  const path = [objectId, instanceId, e.id] as const;
  const where = formatPath(path);
  const def = resourceDef(registry, path);
  const type = valueTypeOf(def, path);
  if (e.kind === 'resource') {
    if (def?.multiple === true) throw badRequest(`${where} is a multiple resource but the TLV carries a single value`);
    return Node.resource(e.id, decodeTlvValue(e.content, type, where));
  }
  if (e.kind !== 'multiResource') throw badRequest(`${where}: expected a resource TLV, found ${e.kind}`);
  if (def !== undefined && !def.multiple) throw badRequest(`${where} is a single resource but the TLV carries multiple instances`);
  return Node.multiResource(e.id, decodeInstances(e.content, type, where, limits, counter));
}

function decodeInstances(
  content: Uint8Array,
  type: ValueType | undefined,
  where: string,
  limits: CodecLimits,
  counter: { n: number },
): Array<readonly [number, Lwm2mValue]> {
  const seen = new Set<number>();
  return readTlvs(content, limits, counter).map((ri) => {
    if (ri.kind !== 'resourceInstance') throw badRequest(`${where}: a multiple resource may only contain resource instances`);
    if (seen.has(ri.id)) throw badRequest(`${where}: duplicate resource instance ${ri.id}`);
    seen.add(ri.id);
    return [ri.id, decodeTlvValue(ri.content, type, `${where}/${ri.id}`)] as const;
  });
}

function decodeResources(
  registry: ObjectRegistry,
  objectId: number,
  instanceId: number,
  entries: readonly TlvEntry[],
  limits: CodecLimits,
  counter: { n: number },
): InstanceNode {
  const seen = new Set<number>();
  const resources = entries.map((e) => {
    if (seen.has(e.id)) throw badRequest(`/${objectId}/${instanceId}: duplicate resource ${e.id}`);
    seen.add(e.id);
    return decodeResource(registry, objectId, instanceId, e, limits, counter);
  });
  return Node.instance(instanceId, resources);
}

/** Decodes a TLV payload addressed to `path`; values are typed by the registry, opaque if unknown. */
export function decodeTlv(path: Lwm2mPath, bytes: Uint8Array, options?: DecodeOptions): Lwm2mNode {
  const limits = limitsOf(options);
  const registry = registryOf(options);
  checkSize(bytes, limits);
  const counter = { n: 0 };
  const top = readTlvs(bytes, limits, counter);
  const [objectId, instanceId, resourceId, riId] = path as readonly number[];
  switch (path.length) {
    case 0:
      throw unsupportedFormat('TLV cannot address the root path');
    case 1: {
      const seen = new Set<number>();
      const instances = top.map((e) => {
        if (e.kind !== 'instance') throw badRequest(`${formatPath(path)}: expected object instance TLVs, found ${e.kind}`);
        if (seen.has(e.id)) throw badRequest(`${formatPath(path)}: duplicate instance ${e.id}`);
        seen.add(e.id);
        return decodeResources(registry, objectId as number, e.id, readTlvs(e.content, limits, counter), limits, counter);
      });
      return Node.object(objectId as number, instances);
    }
    case 2: {
      // either the resources themselves, or one object-instance TLV wrapping them
      const first = top[0];
      if (top.length === 1 && first !== undefined && first.kind === 'instance') {
        if (first.id !== instanceId) throw badRequest(`TLV instance ${first.id} does not match path ${formatPath(path)}`);
        return decodeResources(registry, objectId as number, first.id, readTlvs(first.content, limits, counter), limits, counter);
      }
      return decodeResources(registry, objectId as number, instanceId as number, top, limits, counter);
    }
    case 3: {
      const first = top[0];
      if (top.length === 1 && first !== undefined && (first.kind === 'resource' || first.kind === 'multiResource')) {
        if (first.id !== resourceId) throw badRequest(`TLV resource ${first.id} does not match path ${formatPath(path)}`);
        return decodeResource(registry, objectId as number, instanceId as number, first, limits, counter);
      }
      // bare resource instances of a multiple resource (seen from some clients)
      const def = resourceDef(registry, path);
      if (top.every((e) => e.kind === 'resourceInstance') && def?.multiple !== false) {
        return Node.multiResource(resourceId as number, decodeInstances(bytes, valueTypeOf(def, path), formatPath(path), limits, { n: 0 }));
      }
      throw badRequest(`${formatPath(path)}: expected one resource TLV`);
    }
    default: {
      const first = top[0];
      if (top.length !== 1 || first === undefined || first.kind !== 'resourceInstance') {
        throw badRequest(`${formatPath(path)}: expected one resource instance TLV`);
      }
      if (first.id !== riId) throw badRequest(`TLV resource instance ${first.id} does not match path ${formatPath(path)}`);
      const def = resourceDef(registry, path);
      if (def !== undefined && !def.multiple) throw badRequest(`${formatPath(path)}: resource is not multiple`);
      return Node.resourceInstance(first.id, decodeTlvValue(first.content, valueTypeOf(def, path), formatPath(path)));
    }
  }
}
