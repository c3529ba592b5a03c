/**
 * The LwM2M data model: resource types, object and resource definitions.
 * Definitions themselves are generated (objects/definitions.ts) from one JSON source.
 */

/** Data types of LwM2M resources (TS Core Appendix C). 'none' is the type of executable resources. */
export type ResourceType =
  | 'string'
  | 'integer'
  | 'unsignedInteger'
  | 'float'
  | 'boolean'
  | 'opaque'
  | 'time'
  | 'objlnk'
  | 'corelnk'
  | 'none';

/** Value-carrying types, i.e. every ResourceType but 'none'. */
export type ValueType = Exclude<ResourceType, 'none'>;

/** Operations a resource allows. '' means none for LwM2M servers (Security object: bootstrap only). */
export type Operations = '' | 'R' | 'W' | 'RW' | 'E';

export interface ResourceDefinition {
  readonly id: number;
  readonly name: string;
  readonly operations: Operations;
  readonly multiple: boolean;
  readonly mandatory: boolean;
  readonly type: ResourceType;
  /** Range or enumeration as written in the registry, e.g. "0..100" or "0..255 bytes". */
  readonly range?: string;
  readonly units?: string;
}

export interface ObjectDefinition {
  readonly id: number;
  readonly name: string;
  readonly urn: string;
  /** Object version, e.g. "1.2". */
  readonly version: string;
  readonly lwm2mVersion: string;
  readonly multiple: boolean;
  readonly mandatory: boolean;
  readonly resources: readonly ResourceDefinition[];
}

export const VALUE_TYPES: readonly ValueType[] = [
  'string',
  'integer',
  'unsignedInteger',
  'float',
  'boolean',
  'opaque',
  'time',
  'objlnk',
  'corelnk',
];

export function isReadable(def: ResourceDefinition): boolean {
  return def.operations === 'R' || def.operations === 'RW';
}

export function isWritable(def: ResourceDefinition): boolean {
  return def.operations === 'W' || def.operations === 'RW';
}

export function isExecutable(def: ResourceDefinition): boolean {
  return def.operations === 'E';
}
