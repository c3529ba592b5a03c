/**
 * A definition-driven object whose values live in memory: the base of objects 0, 1, 3 and 4.
 * Access follows the resource definitions (R / W / RW / E); the Bootstrap-Server may write any
 * defined resource, and resources with no operations (Object 0) are only reachable by it.
 */
import type { ObjectDefinition, ResourceDefinition } from '../model.js';
import { isExecutable, isReadable, isWritable } from '../model.js';
import { Node } from '../node.js';
import type { InstanceNode, ResourceNode } from '../node.js';
import { convertValue, valuesEqual } from '../values.js';
import type { Lwm2mValue } from '../values.js';
import { Lwm2mCodecError } from '../errors.js';
import { ObjectError } from './object-api.js';
import type { AccessContext, ClientObject, ObjectChange, ObjectChangeListener, WriteMode } from './object-api.js';

/** A stored resource: a single value, or resource instances by id. */
export type StoredResource = Lwm2mValue | Map<number, Lwm2mValue>;

export type ExecuteHandler = (iid: number, args: string) => void | Promise<void>;

export interface BasicObjectOptions {
  definition: ObjectDefinition;
  /** Initial instances: iid -> rid -> value (an array for a multiple resource). */
  instances?: Iterable<readonly [number, Iterable<readonly [number, Lwm2mValue | readonly Lwm2mValue[]]>]>;
  /** Executable resources: rid -> handler (no handler: executing succeeds and does nothing). */
  execute?: Record<number, ExecuteHandler>;
  /** Whether DM servers may create/delete instances (default: the object is multiple-instance). */
  serverCreatable?: boolean;
  /** Values computed at read time (e.g. Current Time): rid -> getter. */
  dynamic?: Record<number, () => Lwm2mValue>;
  /** Version advertised in the registration when not 1.0 (default: none, i.e. 1.0). */
  version?: string;
}

export class BasicObject implements ClientObject {
  readonly id: number;
  readonly version: string | undefined;
  readonly definition: ObjectDefinition;
  private readonly data = new Map<number, Map<number, StoredResource>>();
  private readonly defs: Map<number, ResourceDefinition>;
  private readonly listeners = new Set<ObjectChangeListener>();
  private readonly handlers: Record<number, ExecuteHandler>;
  private readonly dynamic: Record<number, () => Lwm2mValue>;
  private readonly serverCreatable: boolean;

  constructor(options: BasicObjectOptions) {
    this.definition = options.definition;
    this.id = options.definition.id;
    this.version = options.version;
    this.defs = definitionMap(options.definition);
    this.handlers = options.execute ?? {};
    this.dynamic = options.dynamic ?? {};
    this.serverCreatable = options.serverCreatable ?? options.definition.multiple;
    for (const [iid, resources] of options.instances ?? []) {
      const m = new Map<number, StoredResource>();
      for (const [rid, v] of resources) m.set(rid, isValueArray(v) ? new Map(v.map((x, i) => [i, x])) : v);
      this.data.set(iid, m);
    }
  }

  // ---------------------------------------------------------------- device-side access

  /** The stored value (not for executable resources). */
  get(iid: number, rid: number): StoredResource | undefined {
    const dyn = this.dynamic[rid];
    if (dyn && this.data.has(iid)) return dyn();
    return this.data.get(iid)?.get(rid);
  }

  /** Sets a value from the device side; observers are told. Creates the instance if needed. */
  set(iid: number, rid: number, value: Lwm2mValue | readonly Lwm2mValue[] | undefined): void {
    let inst = this.data.get(iid);
    const created = !inst;
    if (!inst) this.data.set(iid, (inst = new Map<number, StoredResource>()));
    if (value === undefined) inst.delete(rid);
    else {
      const stored: StoredResource = isValueArray(value) ? new Map(value.map((x, i) => [i, x])) : this.typed(rid, value);
      const old = inst.get(rid);
      if (!created && old !== undefined && sameStored(old, stored)) return;
      inst.set(rid, stored);
    }
    this.emit(created ? { iid, instancesChanged: true } : { iid, rids: [rid] });
  }

  /** Replaces an instance's values wholesale (restoring persisted state); no access checks. */
  load(instances: Iterable<readonly [number, Map<number, StoredResource>]>): void {
    this.data.clear();
    for (const [iid, m] of instances) this.data.set(iid, new Map<number, StoredResource>(m));
    this.emit({ instancesChanged: true });
  }

  /** A copy of the stored instances (for persistence). */
  dump(): Map<number, Map<number, StoredResource>> {
    return new Map([...this.data].map(([iid, m]): [number, Map<number, StoredResource>] => [iid, new Map(m)]));
  }

  hasInstance(iid: number): boolean {
    return this.data.has(iid);
  }

  /** Removes an instance from the device side. */
  remove(iid: number): void {
    if (this.data.delete(iid)) this.emit({ iid, instancesChanged: true });
  }

  // ---------------------------------------------------------------- ClientObject

  instanceIds(): number[] {
    return [...this.data.keys()].sort((a, b) => a - b);
  }

  resourceIds(iid: number): number[] {
    const inst = this.instance(iid);
    const ids = new Set(inst.keys());
    for (const rid of Object.keys(this.dynamic)) ids.add(Number(rid));
    for (const def of this.defs.values()) if (isExecutable(def)) ids.add(def.id);
    return [...ids].sort((a, b) => a - b);
  }

  readResource(iid: number, rid: number, ctx: AccessContext): ResourceNode {
    const inst = this.instance(iid);
    const def = this.defs.get(rid);
    if (def && isExecutable(def)) throw new ObjectError('4.05', `/${this.id}/${iid}/${rid} is executable`);
    if (def && !ctx.bootstrap && !isReadable(def)) throw new ObjectError('4.05', `/${this.id}/${iid}/${rid} is not readable`);
    const dyn = this.dynamic[rid];
    const value = dyn ? dyn() : inst.get(rid);
    if (value === undefined) throw new ObjectError('4.04', `/${this.id}/${iid}/${rid} is not present`);
    return toNode(rid, value);
  }

  readInstance(iid: number, ctx: AccessContext): InstanceNode {
    const inst = this.instance(iid);
    const out: ResourceNode[] = [];
    const rids = new Set([...inst.keys(), ...Object.keys(this.dynamic).map(Number)]);
    for (const rid of rids) {
      const def = this.defs.get(rid);
      if (def && (isExecutable(def) || (!ctx.bootstrap && !isReadable(def)))) continue;
      const dyn = this.dynamic[rid];
      const value = dyn ? dyn() : inst.get(rid);
      if (value !== undefined) out.push(toNode(rid, value));
    }
    return Node.instance(iid, out);
  }

  write(iid: number, resources: readonly ResourceNode[], mode: WriteMode, ctx: AccessContext): void {
    const inst = this.instance(iid);
    // Check everything before changing anything: a Write is all or nothing.
    const staged = new Map<number, StoredResource>();
    for (const node of resources) {
      const def = this.defs.get(node.id);
      if (!def) {
        if (!ctx.bootstrap) throw new ObjectError('4.04', `/${this.id}/${iid}/${node.id} is not defined`);
      } else if (isExecutable(def) || (!ctx.bootstrap && !isWritable(def))) {
        throw new ObjectError('4.05', `/${this.id}/${iid}/${node.id} is not writable`);
      }
      staged.set(node.id, this.fromNode(node));
    }
    const changed: number[] = [];
    if (mode === 'replace' && !ctx.bootstrap) {
      // Replace at instance level: writable resources not given are removed (TS Core 1.1 §6.3.3).
      for (const rid of [...inst.keys()]) {
        const def = this.defs.get(rid);
        if (def && isWritable(def) && !staged.has(rid) && !def.mandatory) {
          inst.delete(rid);
          changed.push(rid);
        }
      }
    }
    for (const [rid, v] of staged) {
      const old = inst.get(rid);
      if (old === undefined || !sameStored(old, v)) changed.push(rid);
      inst.set(rid, v);
    }
    if (changed.length > 0) this.emit({ iid, rids: changed });
  }

  async execute(iid: number, rid: number, args: string, _ctx: AccessContext): Promise<void> {
    this.instance(iid);
    const def = this.defs.get(rid);
    if (!def) throw new ObjectError('4.04', `/${this.id}/${iid}/${rid} is not defined`);
    if (!isExecutable(def)) throw new ObjectError('4.05', `/${this.id}/${iid}/${rid} is not executable`);
    await this.handlers[rid]?.(iid, args);
  }

  create(iid: number | undefined, resources: readonly ResourceNode[], ctx: AccessContext): number {
    if (!ctx.bootstrap && !this.serverCreatable) throw new ObjectError('4.05', `object ${this.id} does not allow Create`);
    if (!this.definition.multiple && this.data.size > 0 && !(iid !== undefined && ctx.bootstrap && this.data.has(iid))) {
      throw new ObjectError('4.00', `object ${this.id} is single-instance`);
    }
    let id = iid ?? 0;
    if (iid === undefined) while (this.data.has(id)) id++;
    if (this.data.has(id)) throw new ObjectError('4.00', `/${this.id}/${id} exists`);
    const staged = new Map<number, StoredResource>();
    for (const node of resources) {
      const def = this.defs.get(node.id);
      if (!def && !ctx.bootstrap) throw new ObjectError('4.04', `/${this.id}/${id}/${node.id} is not defined`);
      if (def && isExecutable(def)) throw new ObjectError('4.00', `/${this.id}/${id}/${node.id} is executable`);
      staged.set(node.id, this.fromNode(node));
    }
    this.data.set(id, staged);
    this.emit({ iid: id, instancesChanged: true });
    return id;
  }

  delete(iid: number, ctx: AccessContext): void {
    this.instance(iid);
    if (!ctx.bootstrap && !this.serverCreatable) throw new ObjectError('4.05', `object ${this.id} does not allow Delete`);
    this.data.delete(iid);
    this.emit({ iid, instancesChanged: true });
  }

  subscribe(listener: ObjectChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---------------------------------------------------------------- helpers

  private instance(iid: number): Map<number, StoredResource> {
    const inst = this.data.get(iid);
    if (!inst) throw new ObjectError('4.04', `/${this.id}/${iid} does not exist`);
    return inst;
  }

  private typed(rid: number, value: Lwm2mValue): Lwm2mValue {
    const def = this.defs.get(rid);
    if (!def || def.type === 'none' || def.type === value.type) return value;
    try {
      return convertValue(value, def.type);
    } catch (e) {
      if (e instanceof Lwm2mCodecError) throw new ObjectError('4.00', `/${this.id}/*/${rid}: ${e.diagnostic}`);
      throw e;
    }
  }

  private fromNode(node: ResourceNode): StoredResource {
    const def = this.defs.get(node.id);
    if (node.kind === 'resource') {
      if (def?.multiple) throw new ObjectError('4.00', `resource ${node.id} is multiple-instance`);
      return this.typed(node.id, node.value);
    }
    if (def && !def.multiple) throw new ObjectError('4.00', `resource ${node.id} is single-instance`);
    return new Map(node.instances.map((ri) => [ri.id, this.typed(node.id, ri.value)]));
  }

  protected emit(change: ObjectChange): void {
    for (const l of this.listeners) l(change);
  }
}

/** Resource definitions by id, shared by every object built from the same definition (simulators build thousands). */
const DEFINITION_MAPS = new WeakMap<ObjectDefinition, Map<number, ResourceDefinition>>();

function definitionMap(def: ObjectDefinition): Map<number, ResourceDefinition> {
  let m = DEFINITION_MAPS.get(def);
  if (!m) DEFINITION_MAPS.set(def, (m = new Map(def.resources.map((r) => [r.id, r]))));
  return m;
}

function isValueArray(v: unknown): v is readonly Lwm2mValue[] {
  return Array.isArray(v);
}

export function toNode(rid: number, value: StoredResource): ResourceNode {
  if (value instanceof Map) return Node.multiResource(rid, [...value.entries()]);
  return Node.resource(rid, value);
}

function sameStored(a: StoredResource, b: StoredResource): boolean {
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map) || !(b instanceof Map) || a.size !== b.size) return false;
    for (const [k, v] of a) {
      const w = b.get(k);
      if (!w || !valuesEqual(v, w)) return false;
    }
    return true;
  }
  return valuesEqual(a, b);
}
