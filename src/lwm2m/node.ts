/**
 * Value trees ("nodes") addressed by a path, and their flat form ("records").
 * A node's level matches its path: /o -> ObjectNode, /o/i -> InstanceNode,
 * /o/i/r -> ResourceNode (single or multiple), /o/i/r/ri -> ResourceInstanceNode.
 */
import type { Lwm2mPath } from './path.js';
import { comparePaths, formatPath, isPrefixOf, isValidId } from './path.js';
import type { Lwm2mValue } from './values.js';
import { checkValue } from './values.js';
import type { ObjectRegistry } from './objects/registry.js';
import { badRequest } from './errors.js';

export interface ResourceInstanceNode {
  readonly kind: 'resourceInstance';
  readonly id: number;
  readonly value: Lwm2mValue;
}

export interface SingleResourceNode {
  readonly kind: 'resource';
  readonly id: number;
  readonly value: Lwm2mValue;
}

export interface MultiResourceNode {
  readonly kind: 'multiResource';
  readonly id: number;
  /** Ordered by id, ids unique. */
  readonly instances: readonly ResourceInstanceNode[];
}

export type ResourceNode = SingleResourceNode | MultiResourceNode;

export interface InstanceNode {
  readonly kind: 'instance';
  readonly id: number;
  /** Ordered by id, ids unique. */
  readonly resources: readonly ResourceNode[];
}

export interface ObjectNode {
  readonly kind: 'object';
  readonly id: number;
  /** Ordered by id, ids unique. */
  readonly instances: readonly InstanceNode[];
}

export type Lwm2mNode = ObjectNode | InstanceNode | ResourceNode | ResourceInstanceNode;

/** One value at a full resource (3 ids) or resource-instance (4 ids) path, as in SenML. */
export interface Lwm2mRecord {
  readonly path: Lwm2mPath;
  readonly value: Lwm2mValue;
  /** Absolute or relative SenML time (bt + t), seconds, when the payload carried one. */
  readonly time?: number;
}

// ---- builders --------------------------------------------------------------

export const Node = {
  object: (id: number, instances: readonly InstanceNode[]): ObjectNode => ({ kind: 'object', id, instances: sortById(instances) }),
  instance: (id: number, resources: readonly ResourceNode[]): InstanceNode => ({ kind: 'instance', id, resources: sortById(resources) }),
  resource: (id: number, value: Lwm2mValue): SingleResourceNode => ({ kind: 'resource', id, value }),
  multiResource: (id: number, values: Iterable<readonly [number, Lwm2mValue]> | readonly Lwm2mValue[]): MultiResourceNode => {
    const list: ResourceInstanceNode[] = [];
    let i = 0;
    for (const entry of values as Iterable<readonly [number, Lwm2mValue] | Lwm2mValue>) {
      if (Array.isArray(entry)) {
        const [rid, value] = entry as readonly [number, Lwm2mValue];
        list.push({ kind: 'resourceInstance', id: rid, value });
      } else list.push({ kind: 'resourceInstance', id: i, value: entry as Lwm2mValue });
      i++;
    }
    return { kind: 'multiResource', id, instances: sortById(list) };
  },
  resourceInstance: (id: number, value: Lwm2mValue): ResourceInstanceNode => ({ kind: 'resourceInstance', id, value }),
} as const;

function sortById<T extends { id: number }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => a.id - b.id);
}

const KIND_AT_LEVEL: Record<number, readonly Lwm2mNode['kind'][]> = {
  1: ['object'],
  2: ['instance'],
  3: ['resource', 'multiResource'],
  4: ['resourceInstance'],
};

/**
 * Checks that `node` fits `path` (kind matches the level, ids match and are unique and
 * in range, values are in their type's domain); throws 4.00 with a diagnostic otherwise.
 */
export function validateNode(path: Lwm2mPath, node: Lwm2mNode): void {
  const kinds = KIND_AT_LEVEL[path.length];
  if (kinds === undefined || !kinds.includes(node.kind)) {
    throw badRequest(`a ${node.kind} node does not fit path ${formatPath(path)}`);
  }
  if (node.id !== path[path.length - 1]) throw badRequest(`node id ${node.id} does not match path ${formatPath(path)}`);
  for (const record of nodeToRecords(path, node)) {
    const problem = checkValue(record.value);
    if (problem !== undefined) throw badRequest(`${formatPath(record.path)}: ${problem}`);
  }
}

function checkChildren(children: readonly { id: number }[], where: string): void {
  let last = -1;
  for (const c of children) {
    if (!isValidId(c.id)) throw badRequest(`invalid id ${String(c.id)} under ${where}`);
    if (c.id <= last) throw badRequest(`ids under ${where} must be unique and ascending`);
    last = c.id;
  }
}

/** Flattens a node into records in path order. The node's id must equal the path's last id. */
export function nodeToRecords(path: Lwm2mPath, node: Lwm2mNode): Lwm2mRecord[] {
  const out: Lwm2mRecord[] = [];
  const base = path.slice(0, -1);
  const walk = (prefix: readonly number[], n: Lwm2mNode): void => {
    const here = [...prefix, n.id];
    if (here.length > 4) throw badRequest('node tree deeper than a resource instance');
    switch (n.kind) {
      case 'object':
        checkChildren(n.instances, formatPath(here as unknown as Lwm2mPath));
        for (const i of n.instances) walk(here, i);
        break;
      case 'instance':
        checkChildren(n.resources, formatPath(here as unknown as Lwm2mPath));
        for (const r of n.resources) walk(here, r);
        break;
      case 'multiResource':
        checkChildren(n.instances, formatPath(here as unknown as Lwm2mPath));
        for (const ri of n.instances) walk(here, ri);
        break;
      case 'resource':
        if (here.length !== 3) throw badRequest(`resource node at depth ${here.length}`);
        out.push({ path: here as unknown as Lwm2mPath, value: n.value });
        break;
      case 'resourceInstance':
        if (here.length !== 4) throw badRequest(`resource instance node at depth ${here.length}`);
        out.push({ path: here as unknown as Lwm2mPath, value: n.value });
        break;
    }
  };
  const kinds = KIND_AT_LEVEL[path.length];
  if (kinds === undefined || !kinds.includes(node.kind)) throw badRequest(`a ${node.kind} node does not fit path ${formatPath(path)}`);
  if (node.id !== path[path.length - 1]) throw badRequest(`node id ${node.id} does not match path ${formatPath(path)}`);
  walk(base, node);
  return out;
}

/**
 * Builds the node at `path` from records under it. Records at 4 levels make multi-instance
 * resources; a resource the registry defines as multiple is multi-instance even when empty.
 * Duplicate paths are rejected unless the records carry times (time series): then the
 * latest wins. Throws 4.00 for records outside `path` or a resource that is both single
 * and multiple.
 */
export function recordsToNode(path: Lwm2mPath, records: readonly Lwm2mRecord[], registry?: ObjectRegistry): Lwm2mNode {
  if (path.length === 0) throw badRequest('records at the root path make no single node; use the records');
  const latest = new Map<string, Lwm2mRecord>();
  for (const r of records) {
    if (!isPrefixOf(path, r.path)) throw badRequest(`record ${formatPath(r.path)} is outside ${formatPath(path)}`);
    if (r.path.length < 3) throw badRequest(`record ${formatPath(r.path)} does not address a resource`);
    const key = formatPath(r.path);
    const prev = latest.get(key);
    if (prev !== undefined) {
      if (prev.time === undefined || r.time === undefined) throw badRequest(`duplicate value for ${key}`);
      if (r.time < prev.time) continue;
    }
    latest.set(key, r);
  }
  const sorted = [...latest.values()].sort((a, b) => comparePaths(a.path, b.path));
  // object -> instance -> resource -> (single value | instances)
  type ResMap = Map<number, Lwm2mValue | Map<number, Lwm2mValue>>;
  const tree = new Map<number, Map<number, ResMap>>();
  for (const r of sorted) {
    const [o, i, res, ri] = r.path as readonly number[];
    let inst = tree.get(o as number);
    if (inst === undefined) tree.set(o as number, (inst = new Map<number, ResMap>()));
    let resources = inst.get(i as number);
    if (resources === undefined) inst.set(i as number, (resources = new Map() as ResMap));
    const existing = resources.get(res as number);
    if (ri === undefined) {
      if (existing !== undefined) throw badRequest(`resource ${formatPath(r.path)} given as single and multiple`);
      resources.set(res as number, r.value);
    } else {
      if (existing !== undefined && !(existing instanceof Map)) {
        throw badRequest(`resource ${formatPath(r.path.slice(0, 3) as unknown as Lwm2mPath)} given as single and multiple`);
      }
      const m = existing ?? new Map<number, Lwm2mValue>();
      m.set(ri, r.value);
      resources.set(res as number, m);
    }
  }
  const makeResource = (o: number, iid: number, id: number, v: Lwm2mValue | Map<number, Lwm2mValue>): ResourceNode => {
    if (v instanceof Map) {
      if (registry?.resource(o, id)?.multiple === false) {
        throw badRequest(`resource /${o}/${iid}/${id} is single-instance but was given resource instances`);
      }
      return Node.multiResource(id, [...v.entries()]);
    }
    if (registry?.resource(o, id)?.multiple === true) {
      throw badRequest(`resource /${o}/${iid}/${id} is multiple-instance but was given a single value`);
    }
    return Node.resource(id, v);
  };
  const makeInstance = (o: number, id: number, m: Map<number, Lwm2mValue | Map<number, Lwm2mValue>> | undefined): InstanceNode =>
    Node.instance(id, [...(m ?? new Map<number, Lwm2mValue | Map<number, Lwm2mValue>>()).entries()].map(([rid, v]) => makeResource(o, id, rid, v)));

  const [o, i, res, ri] = path as readonly number[];
  const objectId = o as number;
  switch (path.length) {
    case 1:
      return Node.object(objectId, [...(tree.get(objectId) ?? new Map<number, ResMap>()).entries()].map(([iid, m]) => makeInstance(objectId, iid, m)));
    case 2:
      return makeInstance(objectId, i as number, tree.get(objectId)?.get(i as number));
    case 3: {
      const v = tree.get(objectId)?.get(i as number)?.get(res as number);
      if (v === undefined) {
        if (registry?.resource(objectId, res as number)?.multiple === true) return Node.multiResource(res as number, []);
        throw badRequest(`no value for ${formatPath(path)}`);
      }
      return makeResource(objectId, i as number, res as number, v);
    }
    default: {
      const v = tree.get(objectId)?.get(i as number)?.get(res as number);
      const value = v instanceof Map ? v.get(ri as number) : undefined;
      if (value === undefined) throw badRequest(`no value for ${formatPath(path)}`);
      return Node.resourceInstance(ri as number, value);
    }
  }
}
