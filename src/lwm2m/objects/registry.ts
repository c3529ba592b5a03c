/** Lookup of object and resource definitions; unknown objects are simply absent. */
import type { ObjectDefinition, ResourceDefinition } from '../model.js';
import { OBJECT_DEFINITIONS } from './definitions.js';

export class ObjectRegistry {
  readonly #objects = new Map<number, ObjectDefinition>();
  readonly #resources = new Map<number, Map<number, ResourceDefinition>>();

  constructor(definitions: Iterable<ObjectDefinition> = []) {
    for (const def of definitions) {
      this.#objects.set(def.id, def);
      this.#resources.set(def.id, new Map(def.resources.map((r) => [r.id, r])));
    }
  }

  object(objectId: number): ObjectDefinition | undefined {
    return this.#objects.get(objectId);
  }

  resource(objectId: number, resourceId: number): ResourceDefinition | undefined {
    return this.#resources.get(objectId)?.get(resourceId);
  }

  has(objectId: number): boolean {
    return this.#objects.has(objectId);
  }

  /** All definitions, ordered by object id. */
  all(): ObjectDefinition[] {
    return [...this.#objects.values()].sort((a, b) => a.id - b.id);
  }

  /** A new registry with `definitions` added (replacing objects of the same id). */
  with(definitions: Iterable<ObjectDefinition>): ObjectRegistry {
    return new ObjectRegistry([...this.#objects.values(), ...definitions]);
  }
}

/** Registry of the objects generated from registry.json (0, 1, 2, 3, 4, 5, 9). */
export const defaultRegistry = new ObjectRegistry(OBJECT_DEFINITIONS);
