/**
 * Checks values against the Range/Enumeration text of their definition, as far as that text
 * is machine-readable: "a..b" for numbers (inclusive), "a..b" or "a..b bytes" for the byte
 * length of strings and opaque values, "n" or "n,m,..." for exact opaque lengths. Other text
 * (prose) is not checked.
 */
import type { ResourceDefinition } from './model.js';
import type { Lwm2mValue } from './values.js';
import { utf8Encoder } from './content/common.js';

const RANGE_RE = /^(-?[0-9]+)\s*\.\.\s*(-?[0-9]+)(\s*bytes)?$/;
const LENGTHS_RE = /^[0-9]+(\s*,\s*[0-9]+)*$/;

/** A diagnostic when `value` is outside `def.range`, else undefined. */
export function checkRange(def: ResourceDefinition, value: Lwm2mValue): string | undefined {
  const range = def.range?.trim();
  if (range === undefined || range === '') return undefined;
  const m = RANGE_RE.exec(range);
  switch (value.type) {
    case 'integer':
    case 'unsignedInteger':
    case 'time':
    case 'float': {
      if (m === null) return undefined;
      const lo = BigInt(m[1] as string);
      const hi = BigInt(m[2] as string);
      if (value.type === 'float') {
        return value.value >= Number(lo) && value.value <= Number(hi) ? undefined : `${def.name}: ${value.value} outside ${range}`;
      }
      const v = BigInt(value.value);
      return v >= lo && v <= hi ? undefined : `${def.name}: ${v} outside ${range}`;
    }
    case 'string':
    case 'corelnk':
    case 'opaque': {
      const length = value.type === 'opaque' ? value.value.length : utf8Encoder.encode(value.value).length;
      if (m !== null) {
        return length >= Number(m[1]) && length <= Number(m[2]) ? undefined : `${def.name}: length ${length} outside ${range}`;
      }
      if (value.type === 'opaque' && LENGTHS_RE.test(range)) {
        const allowed = range.split(',').map((s) => Number(s.trim()));
        return allowed.includes(length) ? undefined : `${def.name}: length ${length} not one of ${range}`;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}
