/** Helpers shared by the content-format codecs. */
import type { Lwm2mPath } from '../path.js';
import { formatPath } from '../path.js';
import type { ResourceDefinition, ValueType } from '../model.js';
import type { ObjectRegistry } from '../objects/registry.js';
import type { Lwm2mNode } from '../node.js';
import { defaultRegistry } from '../objects/registry.js';
import { badRequest, tooLarge, type CodecLimits, DEFAULT_LIMITS } from '../errors.js';
import type { Lwm2mValue } from '../values.js';
import { convertValue } from '../values.js';

export interface DecodeOptions {
  /** Object definitions used to type values; unknown objects decode generically. */
  readonly registry?: ObjectRegistry;
  readonly limits?: CodecLimits;
}

export interface EncodeOptions {
  readonly registry?: ObjectRegistry;
}

export function registryOf(options?: DecodeOptions | EncodeOptions): ObjectRegistry {
  return options?.registry ?? defaultRegistry;
}

export function limitsOf(options?: DecodeOptions): CodecLimits {
  return options?.limits ?? DEFAULT_LIMITS;
}

export function checkSize(bytes: Uint8Array, limits: CodecLimits): void {
  if (!(bytes instanceof Uint8Array)) throw badRequest('payload must be bytes');
  if (bytes.length > limits.maxPayloadBytes) throw tooLarge(`payload larger than ${limits.maxPayloadBytes} bytes`);
}

/** The definition of the resource a path (of 3 or 4 ids) addresses, if known. */
export function resourceDef(registry: ObjectRegistry, path: Lwm2mPath): ResourceDefinition | undefined {
  if (path.length < 3) return undefined;
  return registry.resource(path[0] as number, path[2] as number);
}

/** The value type of a known resource, throwing 4.00 for executable resources (no value). */
export function valueTypeOf(def: ResourceDefinition | undefined, path: Lwm2mPath): ValueType | undefined {
  if (def === undefined) return undefined;
  if (def.type === 'none') throw badRequest(`${formatPath(path)} is executable and has no value`);
  return def.type;
}

/** Types a generically decoded value with the definition of its resource (if any). */
export function typeValue(registry: ObjectRegistry, path: Lwm2mPath, value: Lwm2mValue): Lwm2mValue {
  const type = valueTypeOf(resourceDef(registry, path), path);
  if (type === undefined || type === value.type) return value;
  try {
    return convertValue(value, type);
  } catch (e) {
    throw badRequest(`${formatPath(path)}: ${(e as Error & { diagnostic?: string }).diagnostic ?? String(e)}`);
  }
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return fatalUtf8.decode(bytes);
  } catch {
    throw badRequest(`${what} is not valid UTF-8`);
  }
}

export const utf8Encoder = new TextEncoder();

/**
 * Returns `node` with every value converted to the type its resource definition asks for
 * (integer to float or time, string to objlnk, ...), so that formats which are not
 * self-describing (TLV, plain text) write the defined representation. Unknown resources
 * are left as they are. Throws 4.00 for values that cannot be converted.
 */
export function conformNode(registry: ObjectRegistry, path: Lwm2mPath, node: Lwm2mNode): Lwm2mNode {
  // One stack of ids stands for the path of the node being conformed; nodes are copied only
  // where a value changes (a client's values usually have their defined types already).
  const ids: number[] = path.slice(0, -1);
  const walk = <N extends Lwm2mNode>(n: N): N => {
    ids.push(n.id);
    let out: Lwm2mNode = n;
    switch (n.kind) {
      case 'object': {
        const instances = conformChildren(n.instances, walk);
        if (instances !== n.instances) out = { ...n, instances };
        break;
      }
      case 'instance': {
        const resources = conformChildren(n.resources, walk);
        if (resources !== n.resources) out = { ...n, resources };
        break;
      }
      case 'multiResource': {
        const instances = conformChildren(n.instances, walk);
        if (instances !== n.instances) out = { ...n, instances };
        break;
      }
      case 'resource':
      case 'resourceInstance': {
        // typeValue reads the path (and formats it for a diagnostic) without keeping it.
        const value = typeValue(registry, ids as unknown as Lwm2mPath, n.value);
        if (value !== n.value) out = { ...n, value };
        break;
      }
    }
    ids.pop();
    return out as N;
  };
  return walk(node);
}

/** `children` conformed; the same array when none changed. */
function conformChildren<C extends Lwm2mNode>(children: readonly C[], conform: (child: C) => C): readonly C[] {
  let out: C[] | undefined;
  for (let i = 0; i < children.length; i++) {
    const child = children[i]!;
    const conformed = conform(child);
    if (conformed !== child) (out ??= children.slice(0, i)).push(conformed);
    else out?.push(child);
  }
  return out ?? children;
}
