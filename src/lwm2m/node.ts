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
  // The checks of nodeToRecords, then every value in record order, without building the
  // records: one stack of ids stands for the path being checked, formatted only for an error.
  const ids: number[] = path.slice(0, -1);
  checkStructure(ids, node);
  checkValues(ids, node);
}

function checkStructure(ids: number[], n: Lwm2mNode): void {
  ids.push(n.id);
  if (ids.length > 4) throw badRequest('node tree deeper than a resource instance');
  switch (n.kind) {
    case 'object':
      checkChildren(n.instances, ids);
      for (const i of n.instances) checkStructure(ids, i);
      break;
    case 'instance':
      checkChildren(n.resources, ids);
      for (const r of n.resources) checkStructure(ids, r);
      break;
    case 'multiResource':
      checkChildren(n.instances, ids);
      for (const ri of n.instances) checkStructure(ids, ri);
      break;
    case 'resource':
      if (ids.length !== 3) throw badRequest(`resource node at depth ${ids.length}`);
      break;
    case 'resourceInstance':
      if (ids.length !== 4) throw badRequest(`resource instance node at depth ${ids.length}`);
      break;
  }
  ids.pop();
}

function checkValues(ids: number[], n: Lwm2mNode): void {
  ids.push(n.id);
  switch (n.kind) {
    case 'object':
    case 'multiResource':
      for (const child of n.instances) checkValues(ids, child);
      break;
    case 'instance':
      for (const r of n.resources) checkValues(ids, r);
      break;
    case 'resource':
    case 'resourceInstance': {
      const problem = checkValue(n.value);
      if (problem !== undefined) throw badRequest(`${formatPath(ids as unknown as Lwm2mPath)}: ${problem}`);
      break;
    }
  }
  ids.pop();
}

/** `where` is the parent's path, formatted only for an error. */
function checkChildren(children: readonly { id: number }[], where: readonly number[]): void {
  let last = -1;
  for (const c of children) {
    if (!isValidId(c.id)) throw badRequest(`invalid id ${String(c.id)} under ${formatPath(where as unknown as Lwm2mPath)}`);
    if (c.id <= last) throw badRequest(`ids under ${formatPath(where as unknown as Lwm2mPath)} must be unique and ascending`);
    last = c.id;
  }
}

/** `prefix` with `id` appended, as an array of exactly that length (paths are at most 4 ids deep). */
function withId(prefix: readonly number[], id: number): number[] {
  switch (prefix.length) {
    case 0:
      return [id];
    case 1:
      return [prefix[0]!, id];
    case 2:
      return [prefix[0]!, prefix[1]!, id];
    case 3:
      return [prefix[0]!, prefix[1]!, prefix[2]!, id];
    default:
      return [...prefix, id];
  }
}

/** Flattens a node into records in path order. The node's id must equal the path's last id. */
export function nodeToRecords(path: Lwm2mPath, node: Lwm2mNode): Lwm2mRecord[] {
  const out: Lwm2mRecord[] = [];
  const base = path.slice(0, -1);
  const walk = (prefix: readonly number[], n: Lwm2mNode): void => {
    const here = withId(prefix, n.id);
    if (here.length > 4) throw badRequest('node tree deeper than a resource instance');
    switch (n.kind) {
      case 'object':
        checkChildren(n.instances, here);
        for (const i of n.instances) walk(here, i);
        break;
      case 'instance':
        checkChildren(n.resources, here);
        for (const r of n.resources) walk(here, r);
        break;
      case 'multiResource':
        checkChildren(n.instances, here);
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
  for (const r of records) {
    if (!isPrefixOf(path, r.path)) throw badRequest(`record ${formatPath(r.path)} is outside ${formatPath(path)}`);
    if (r.path.length < 3) throw badRequest(`record ${formatPath(r.path)} does not address a resource`);
  }
  const sorted = latestByPath(records);
  const objectId = path[0];
  switch (path.length) {
    case 1: {
      const instances: InstanceNode[] = [];
      for (let at = 0; at < sorted.length; ) {
        const next = groupEnd(sorted, at, sorted.length, 1);
        instances.push(instanceNode(objectId, sorted, at, next, registry));
        at = next;
      }
      return { kind: 'object', id: objectId, instances };
    }
    case 2:
      return sorted.length === 0 ? { kind: 'instance', id: path[1], resources: [] } : instanceNode(objectId, sorted, 0, sorted.length, registry);
    case 3:
      if (sorted.length === 0) {
        if (registry?.resource(objectId, path[2])?.multiple === true) return { kind: 'multiResource', id: path[2], instances: [] };
        throw badRequest(`no value for ${formatPath(path)}`);
      }
      return resourceNode(objectId, sorted, 0, sorted.length, registry);
    default: {
      const record = sorted[0];
      if (record === undefined) throw badRequest(`no value for ${formatPath(path)}`);
      return { kind: 'resourceInstance', id: path[3], value: record.value };
    }
  }
}

/**
 * The records in path order, one per path. Duplicate paths are only allowed when they carry
 * times (a time series): the latest wins, the later record on a tie.
 */
function latestByPath(records: readonly Lwm2mRecord[]): readonly Lwm2mRecord[] {
  let ascending = true;
  for (let at = 1; at < records.length && ascending; at++) ascending = comparePaths(records[at - 1]!.path, records[at]!.path) < 0;
  // Strictly ascending (as devices send them) means sorted and free of duplicates already.
  if (ascending) return records;
  // A stable sort: the records of one path keep their order.
  const sorted = [...records].sort((a, b) => comparePaths(a.path, b.path));
  const out: Lwm2mRecord[] = [];
  for (const r of sorted) {
    const previous = out[out.length - 1];
    if (previous === undefined || comparePaths(previous.path, r.path) !== 0) {
      out.push(r);
      continue;
    }
    if (previous.time === undefined || r.time === undefined) throw badRequest(`duplicate value for ${formatPath(r.path)}`);
    if (r.time >= previous.time) out[out.length - 1] = r;
  }
  return out;
}

/** End of the run of records, from `start`, that share the id at `level` of their paths. */
function groupEnd(records: readonly Lwm2mRecord[], start: number, end: number, level: number): number {
  const id = records[start]!.path[level];
  let at = start + 1;
  while (at < end && records[at]!.path[level] === id) at++;
  return at;
}

/** The instance of the records [start, end): sorted, unique, all in one instance. */
function instanceNode(objectId: number, records: readonly Lwm2mRecord[], start: number, end: number, registry: ObjectRegistry | undefined): InstanceNode {
  const resources: ResourceNode[] = [];
  for (let at = start; at < end; ) {
    const next = groupEnd(records, at, end, 2);
    resources.push(resourceNode(objectId, records, at, next, registry));
    at = next;
  }
  return { kind: 'instance', id: records[start]!.path[1] as number, resources };
}

/** The resource of the records [start, end): sorted, unique, all of one resource. */
function resourceNode(objectId: number, records: readonly Lwm2mRecord[], start: number, end: number, registry: ObjectRegistry | undefined): ResourceNode {
  const first = records[start]!;
  const instanceId = first.path[1] as number;
  const resourceId = first.path[2] as number;
  if (first.path.length === 3) {
    // Sorted: the resource's own record comes first, resource instances after it.
    if (end - start > 1) throw badRequest(`resource /${objectId}/${instanceId}/${resourceId} given as single and multiple`);
    if (registry?.resource(objectId, resourceId)?.multiple === true) throw badRequest(`resource /${objectId}/${instanceId}/${resourceId} is multiple-instance but was given a single value`);
    return { kind: 'resource', id: resourceId, value: first.value };
  }
  if (registry?.resource(objectId, resourceId)?.multiple === false) throw badRequest(`resource /${objectId}/${instanceId}/${resourceId} is single-instance but was given resource instances`);
  const instances: ResourceInstanceNode[] = [];
  for (let at = start; at < end; at++) instances.push({ kind: 'resourceInstance', id: records[at]!.path[3] as number, value: records[at]!.value });
  return { kind: 'multiResource', id: resourceId, instances };
}
