/**
 * Object 9 (Software Management) behind the client object API: a thin adapter over
 * SoftwareManagement (src/lwm2m/objects/software-management/, docs/object9.md).
 */
import { Node } from '../node.js';
import type { InstanceNode, ResourceNode } from '../node.js';
import type { Lwm2mValue } from '../values.js';
import type { ResourceValue, SoftwareManagement, SoftwareManagementInstance, WriteValue } from '../objects/software-management/index.js';
import { ObjectError } from './object-api.js';
import type { AccessContext, ClientObject, ObjectChange, ObjectChangeListener, UploadTarget, WriteMode } from './object-api.js';

/** Resources of an instance, readable or not (Discover). */
const RESOURCE_IDS = [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12];
const WRITABLE = new Set([2, 3, 8, 13]);

export class SoftwareManagementAdapter implements ClientObject {
  readonly id = 9;
  readonly version: string | undefined = undefined;

  private readonly listeners = new Set<ObjectChangeListener>();

  constructor(readonly object: SoftwareManagement) {
    object.onChange((c) => {
      const rids = c.wire.map((w) => w.rid);
      const uso = this.object.get(c.iid)?.read(8);
      // With Update Supported Objects set, an install or uninstall changes the device's objects.
      const objectsChanged = !!uso && uso.ok && uso.value.value === true && (c.transition === 'install-succeeded' || c.transition.startsWith('uninstall'));
      this.emit({ iid: c.iid, rids, ...(objectsChanged ? { objectsChanged: true } : {}) });
    });
  }

  private emit(change: ObjectChange): void {
    for (const l of this.listeners) l(change);
  }

  instanceIds(): number[] {
    return this.object.list().map((i) => i.iid);
  }

  resourceIds(iid: number): number[] {
    const inst = this.instance(iid);
    const ids = [...RESOURCE_IDS];
    if (inst.read(5).ok) ids.push(5);
    if (inst.read(13).ok) ids.push(13);
    return ids.sort((a, b) => a - b);
  }

  readResource(iid: number, rid: number, _ctx: AccessContext): ResourceNode {
    const r = this.instance(iid).read(rid);
    if (!r.ok) throw new ObjectError(r.code, r.reason);
    return Node.resource(rid, toLwm2m(r.value));
  }

  readInstance(iid: number, _ctx: AccessContext): InstanceNode {
    const all = this.instance(iid).readAll();
    return Node.instance(iid, [...all].map(([rid, v]) => Node.resource(rid, toLwm2m(v))));
  }

  async write(iid: number, resources: readonly ResourceNode[], _mode: WriteMode, _ctx: AccessContext): Promise<void> {
    const inst = this.instance(iid);
    for (const node of resources) {
      if (node.kind !== 'resource') throw new ObjectError(WRITABLE.has(node.id) || node.id <= 13 ? '4.00' : '4.04', `resource ${node.id} is single-instance`);
    }
    // Check access for every resource first so that a rejected Write changes nothing.
    for (const node of resources) {
      if (node.id > 13) throw new ObjectError('4.04', `no resource ${node.id} in object 9`);
      if (!WRITABLE.has(node.id)) throw new ObjectError('4.05', `resource ${node.id} is not writable`);
    }
    for (const node of resources) {
      if (node.kind !== 'resource') continue;
      const r = await inst.write(node.id, toWriteValue(node.value));
      if (!r.ok) throw new ObjectError(r.code, r.reason, r.size1);
    }
  }

  async execute(iid: number, rid: number, args: string, _ctx: AccessContext): Promise<void> {
    const r = await this.instance(iid).execute(rid, args);
    if (!r.ok) throw new ObjectError(r.code, r.reason);
  }

  async create(iid: number | undefined, resources: readonly ResourceNode[], ctx: AccessContext): Promise<number> {
    if (iid !== undefined && this.object.get(iid)) throw new ObjectError('4.00', `/9/${iid} exists`);
    const inst = await this.object.create(iid);
    if (resources.length > 0) await this.write(inst.iid, resources, 'update', ctx);
    this.emit({ iid: inst.iid, instancesChanged: true });
    return inst.iid;
  }

  async delete(iid: number, _ctx: AccessContext): Promise<void> {
    if (!(await this.object.delete(iid))) throw new ObjectError('4.04', `/9/${iid} does not exist`);
    this.emit({ iid, instancesChanged: true });
  }

  /** Package (rid 2) Block1 writes go to SoftwareManagementInstance.writePackage as they arrive. */
  openUpload(iid: number, rid: number, _ctx: AccessContext): UploadTarget | undefined {
    if (rid !== 2) return undefined;
    const inst = this.instance(iid);
    let held: { chunk: Uint8Array; num: number } | undefined;
    let size = 0;
    const put = async (chunk: Uint8Array, num: number, more: boolean): Promise<void> => {
      const r = await inst.writePackage(chunk, { num, size, more });
      if (!r.ok) throw new ObjectError(r.code, r.reason, r.size1);
    };
    // The last block is only known at end(): each chunk is handed over when the next one arrives.
    return {
      write: async (chunk, offset) => {
        if (size === 0) size = chunk.length;
        const previous = held;
        held = { chunk: Uint8Array.from(chunk), num: size > 0 ? Math.floor(offset / size) : 0 };
        if (previous) await put(previous.chunk, previous.num, true);
      },
      end: async () => {
        const last = held;
        held = undefined;
        if (last) await put(last.chunk, last.num, false);
      },
      abort: () => {
        held = undefined;
      },
    };
  }

  subscribe(listener: ObjectChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private instance(iid: number): SoftwareManagementInstance {
    const inst = this.object.get(iid);
    if (!inst) throw new ObjectError('4.04', `/9/${iid} does not exist`);
    return inst;
  }
}

function toLwm2m(v: ResourceValue): Lwm2mValue {
  return v;
}

function toWriteValue(v: Lwm2mValue): WriteValue {
  switch (v.type) {
    case 'opaque':
      return { type: 'opaque', value: v.value };
    case 'string':
      return { type: 'string', value: v.value };
    case 'boolean':
      return { type: 'boolean', value: v.value };
    case 'objlnk':
      return { type: 'objlnk', value: v.value };
    case 'integer':
    case 'unsignedInteger':
      return { type: 'integer', value: Number(v.value) };
    default:
      throw new ObjectError('4.00', `a ${v.type} value cannot be written to object 9`);
  }
}
