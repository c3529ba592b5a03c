/**
 * Object 9 with its instances (one per software component), and its persisted form.
 */
import {
  SoftwareManagementInstance,
  removeStaging,
  type InstanceChange,
  type PersistedInstance,
  type RestoreReport,
  type SoftwareManagementDeps,
} from './instance.js';

export interface PersistedObject {
  readonly v: 1;
  readonly instances: readonly PersistedInstance[];
}

export class SoftwareManagement {
  readonly objectId = 9;
  private readonly instances = new Map<number, SoftwareManagementInstance>();
  private readonly listeners = new Set<(c: InstanceChange) => void>();
  private readonly persisted = new Map<number, PersistedInstance>();

  /**
   * `deps.persist` receives the whole object's persisted form (one document), so a store
   * can write it atomically.
   */
  constructor(private readonly deps: Omit<SoftwareManagementDeps, 'persist'> & { persist?: (o: PersistedObject) => void | Promise<void> }) {}

  private instanceDeps(): SoftwareManagementDeps {
    const { persist, ...rest } = this.deps;
    return {
      ...rest,
      persist: async (snap) => {
        this.persisted.set(snap.iid, snap);
        await persist?.(this.snapshot());
      },
    };
  }

  /** Creates an instance (the lowest free iid when none is given). */
  async create(iid?: number): Promise<SoftwareManagementInstance> {
    let id = iid ?? 0;
    if (iid === undefined) while (this.instances.has(id)) id++;
    if (this.instances.has(id)) throw new Error(`instance 9/${id} exists`);
    if (!Number.isInteger(id) || id < 0 || id > 65534) throw new Error(`bad instance id ${id}`);
    const inst = new SoftwareManagementInstance(id, this.instanceDeps());
    this.attach(inst);
    this.persisted.set(id, inst.snapshot());
    await this.deps.persist?.(this.snapshot());
    return inst;
  }

  private attach(inst: SoftwareManagementInstance): void {
    this.instances.set(inst.iid, inst);
    inst.onChange((c) => {
      for (const l of this.listeners) l(c);
    });
  }

  get(iid: number): SoftwareManagementInstance | undefined {
    return this.instances.get(iid);
  }

  list(): SoftwareManagementInstance[] {
    return [...this.instances.values()].sort((a, b) => a.iid - b.iid);
  }

  /** Deletes an instance: its background work stops and its staging file is removed. */
  async delete(iid: number): Promise<boolean> {
    const inst = this.instances.get(iid);
    if (!inst) return false;
    this.instances.delete(iid);
    await inst.dispose();
    await removeStaging(inst.stagingPath);
    this.persisted.delete(iid);
    await this.deps.persist?.(this.snapshot());
    return true;
  }

  onChange(listener: (c: InstanceChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The object's persisted form: the last persisted snapshot of each instance. */
  snapshot(): PersistedObject {
    // Persisted entries count too: during restore an instance saves its new state before it is
    // attached, and that save must not drop it (or its siblings) from the document.
    const iids = new Set([...this.instances.keys(), ...this.persisted.keys()]);
    const instances = [...iids]
      .sort((a, b) => a - b)
      .map((iid) => this.persisted.get(iid) ?? (this.instances.get(iid) as SoftwareManagementInstance).snapshot());
    return { v: 1, instances };
  }

  /** Rebuilds the object after a restart; see SoftwareManagementInstance.restore for each state. */
  static async restore(
    p: PersistedObject,
    deps: ConstructorParameters<typeof SoftwareManagement>[0],
  ): Promise<{ object: SoftwareManagement; reports: RestoreReport[] }> {
    const obj = new SoftwareManagement(deps);
    const reports: RestoreReport[] = [];
    // Every instance is in the document before any restore saves (saves write the whole document).
    for (const snap of p.instances) obj.persisted.set(snap.iid, snap);
    for (const snap of p.instances) {
      const { instance, report } = await SoftwareManagementInstance.restore(snap, obj.instanceDeps());
      obj.attach(instance);
      obj.persisted.set(snap.iid, instance.snapshot());
      reports.push(report);
    }
    return { object: obj, reports };
  }
}
