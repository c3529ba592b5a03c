/**
 * The client's persisted state: the endpoint name and the Security (0) and Server (1)
 * instances, in one JSON file written atomically and durably (util/atomic-file) with mode
 * 0600, because it holds the PSK.
 */
import { readFile } from 'node:fs/promises';
import { replaceFileAtomic } from '../../util/atomic-file.js';
import { valueFromText, valueToText } from '../values.js';
import type { Lwm2mValue } from '../values.js';
import type { ValueType } from '../model.js';
import type { StoredResource } from './basic-object.js';

export interface PersistedValue {
  readonly t: ValueType;
  /** The plain-text form (opaque as base64). */
  readonly v: string;
}

export type PersistedResource = PersistedValue | { readonly m: Record<string, PersistedValue> };

export interface PersistedClientState {
  readonly v: 1;
  readonly endpoint: string;
  /** objectId -> iid -> rid -> value. */
  readonly objects: Record<string, Record<string, Record<string, PersistedResource>>>;
}

export type InstanceDump = Map<number, Map<number, StoredResource>>;

export function dumpToJson(dump: InstanceDump): Record<string, Record<string, PersistedResource>> {
  const out: Record<string, Record<string, PersistedResource>> = {};
  for (const [iid, resources] of dump) {
    const r: Record<string, PersistedResource> = {};
    for (const [rid, value] of resources) {
      if (value instanceof Map) {
        const m: Record<string, PersistedValue> = {};
        for (const [ri, v] of value) m[String(ri)] = toPersisted(v);
        r[String(rid)] = { m };
      } else r[String(rid)] = toPersisted(value);
    }
    out[String(iid)] = r;
  }
  return out;
}

export function dumpFromJson(json: Record<string, Record<string, PersistedResource>> | undefined): InstanceDump {
  const out: InstanceDump = new Map();
  for (const [iid, resources] of Object.entries(json ?? {})) {
    const m = new Map<number, StoredResource>();
    for (const [rid, value] of Object.entries(resources)) {
      if ('m' in value) m.set(Number(rid), new Map(Object.entries(value.m).map(([ri, v]) => [Number(ri), fromPersisted(v)])));
      else m.set(Number(rid), fromPersisted(value));
    }
    out.set(Number(iid), m);
  }
  return out;
}

function toPersisted(v: Lwm2mValue): PersistedValue {
  return { t: v.type, v: valueToText(v) };
}

function fromPersisted(p: PersistedValue): Lwm2mValue {
  return valueFromText(p.v, p.t);
}

/** Loads the state file; undefined when it does not exist. Throws on a corrupt file. */
export async function loadClientState(path: string): Promise<PersistedClientState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const parsed = JSON.parse(text) as PersistedClientState;
  if (parsed.v !== 1 || typeof parsed.endpoint !== 'string' || typeof parsed.objects !== 'object') throw new Error(`${path}: not a client state file`);
  return parsed;
}

/** Writes the state atomically and durably (fsync before and after the rename), mode 0600: it holds credentials. */
export async function saveClientState(path: string, state: PersistedClientState): Promise<void> {
  await replaceFileAtomic(path, JSON.stringify(state, null, 1) + '\n', 0o600);
}
