/** JSON forms of LwM2M value trees for the HTTP API (opaque as base64, 64-bit integers as strings). */
import type { Lwm2mNode, ResourceInstanceNode, ResourceNode } from '../lwm2m/node.js';
import type { Lwm2mValue } from '../lwm2m/values.js';
import { Value } from '../lwm2m/values.js';

export type JsonValue = { type: Lwm2mValue['type']; value: string | number | boolean | { objectId: number; instanceId: number } };

export function valueToJson(v: Lwm2mValue): JsonValue {
  switch (v.type) {
    case 'opaque':
      return { type: 'opaque', value: Buffer.from(v.value).toString('base64') };
    case 'integer':
    case 'unsignedInteger':
    case 'time':
      return { type: v.type, value: typeof v.value === 'bigint' ? v.value.toString() : v.value };
    default:
      return { type: v.type, value: v.value };
  }
}

export class JsonValueError extends Error {}

export function valueFromJson(j: { type?: unknown; value?: unknown }): Lwm2mValue {
  const { type, value } = j;
  const need = (ok: boolean, what: string): void => {
    if (!ok) throw new JsonValueError(`a ${String(type)} value must be ${what}`);
  };
  switch (type) {
    case 'string':
    case 'corelnk':
      need(typeof value === 'string', 'a string');
      return type === 'string' ? Value.string(value as string) : Value.corelnk(value as string);
    case 'integer':
    case 'unsignedInteger':
    case 'time': {
      need(typeof value === 'number' || (typeof value === 'string' && /^-?\d+$/.test(value)), 'an integer (or a decimal string)');
      const n = typeof value === 'string' ? BigInt(value) : (value as number);
      need(typeof n === 'bigint' || Number.isInteger(n), 'an integer');
      return type === 'integer' ? Value.integer(n) : type === 'unsignedInteger' ? Value.unsignedInteger(n) : Value.time(n);
    }
    case 'float':
      need(typeof value === 'number', 'a number');
      return Value.float(value as number);
    case 'boolean':
      need(typeof value === 'boolean', 'true or false');
      return Value.boolean(value as boolean);
    case 'opaque':
      need(typeof value === 'string', 'base64 text');
      return Value.opaque(Buffer.from(value as string, 'base64'));
    case 'objlnk': {
      const link = value as { objectId?: unknown; instanceId?: unknown } | null;
      need(typeof link === 'object' && link !== null && typeof link.objectId === 'number' && typeof link.instanceId === 'number', '{ objectId, instanceId }');
      return Value.objlnk(link!.objectId as number, link!.instanceId as number);
    }
    default:
      throw new JsonValueError(`unknown value type "${String(type)}"`);
  }
}

type JsonNode =
  | { kind: 'object'; id: number; instances: JsonNode[] }
  | { kind: 'instance'; id: number; resources: JsonNode[] }
  | { kind: 'resource'; id: number; value: JsonValue }
  | { kind: 'multiResource'; id: number; instances: JsonNode[] }
  | { kind: 'resourceInstance'; id: number; value: JsonValue };

export function nodeToJson(node: Lwm2mNode): JsonNode {
  switch (node.kind) {
    case 'object':
      return { kind: 'object', id: node.id, instances: node.instances.map(nodeToJson) };
    case 'instance':
      return { kind: 'instance', id: node.id, resources: node.resources.map((r: ResourceNode) => nodeToJson(r)) };
    case 'multiResource':
      return { kind: 'multiResource', id: node.id, instances: node.instances.map((r: ResourceInstanceNode) => nodeToJson(r)) };
    case 'resource':
    case 'resourceInstance':
      return { kind: node.kind, id: node.id, value: valueToJson(node.value) };
  }
}
