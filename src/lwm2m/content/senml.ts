/**
 * SenML JSON (content format 110) and SenML CBOR (112): RFC 8428 with the LwM2M rules of
 * TS Core 1.1 §7.4.4/§7.4.5: the record name is the LwM2M path (bn + n), values are in
 * v (numbers, time), vs (string, corelnk), vb (boolean), vd (opaque, base64url in JSON,
 * byte string in CBOR) and vlo (objlnk "oid:iid"); bt + t give the record time.
 */
import type { Lwm2mPath } from '../path.js';
import { formatPath, parsePath } from '../path.js';
import type { Lwm2mNode, Lwm2mRecord } from '../node.js';
import { nodeToRecords, recordsToNode } from '../node.js';
import type { Lwm2mValue } from '../values.js';
import { decodeBase64, encodeBase64, formatObjLink, normalizeInteger, parseObjLink, UINT64_MAX, INT64_MAX, INT64_MIN, checkValue } from '../values.js';
import { badRequest, notAcceptable } from '../errors.js';
import type { DecodeOptions, EncodeOptions } from './common.js';
import { checkSize, decodeUtf8, limitsOf, registryOf, typeValue, utf8Encoder } from './common.js';
import { JsonNumber, parseJson, type JsonValue } from './json.js';
import { CborFloat, CborMap, CborWriter, decodeCbor, type CborItem } from './cbor.js';

/** A SenML record before base-field resolution, independent of JSON/CBOR. */
export interface SenmlPack {
  bn?: string;
  bt?: number;
  n?: string;
  t?: number;
  /** An integer is a number when it is a safe integer (as CBOR decodes it), a bigint otherwise. */
  v?: { readonly int: number | bigint } | { readonly float: number };
  vs?: string;
  vb?: boolean;
  vd?: Uint8Array;
  vlo?: string;
}

/** A resolved SenML entry: a path, and a value unless the record had none (Read-Composite requests). */
export interface SenmlEntry {
  readonly path: Lwm2mPath;
  readonly value?: Lwm2mValue;
  readonly time?: number;
}

const VALUE_FIELDS = ['v', 'vs', 'vb', 'vd', 'vlo'] as const;

function genericValue(r: SenmlPack): Lwm2mValue | undefined {
  let count = 0;
  for (const field of VALUE_FIELDS) if (r[field] !== undefined) count++;
  if (count > 1) throw badRequest(`SenML record has more than one value field (${VALUE_FIELDS.filter((f) => r[f] !== undefined).join(', ')})`);
  if (r.v !== undefined) {
    if ('float' in r.v) return { type: 'float', value: r.v.float };
    const i = r.v.int;
    if (typeof i === 'number') return { type: 'integer', value: i };
    if (i < INT64_MIN || i > UINT64_MAX) throw badRequest(`SenML integer ${i} beyond 64 bits`);
    return i > INT64_MAX ? { type: 'unsignedInteger', value: i } : { type: 'integer', value: normalizeInteger(i) };
  }
  if (r.vs !== undefined) return { type: 'string', value: r.vs };
  if (r.vb !== undefined) return { type: 'boolean', value: r.vb };
  if (r.vd !== undefined) return { type: 'opaque', value: r.vd };
  if (r.vlo !== undefined) return { type: 'objlnk', value: parseObjLink(r.vlo) };
  return undefined;
}

/** Resolves base name/time (RFC 8428 §4.5) and types values with the registry. */
export function resolveSenml(pack: readonly SenmlPack[], options?: DecodeOptions): SenmlEntry[] {
  const registry = registryOf(options);
  let bn = '';
  let bt: number | undefined;
  return pack.map((r) => {
    if (r.bn !== undefined) bn = r.bn;
    if (r.bt !== undefined) bt = r.bt;
    const name = bn + (r.n ?? '');
    if (name === '') throw badRequest('SenML record without a name');
    const path = parsePath(name);
    const time = r.t !== undefined || bt !== undefined ? (bt ?? 0) + (r.t ?? 0) : undefined;
    const generic = genericValue(r);
    if (generic === undefined) return time === undefined ? { path } : { path, time };
    if (path.length < 3) throw badRequest(`SenML value at ${name}, which is not a resource`);
    const value = typeValue(registry, path, generic);
    return time === undefined ? { path, value } : { path, value, time };
  });
}

/** The entries as records, once each is checked to carry a value (an entry with a value is a record). */
function entriesToRecords(entries: SenmlEntry[]): Lwm2mRecord[] {
  for (const e of entries) if (e.value === undefined) throw badRequest(`SenML record ${formatPath(e.path)} has no value`);
  return entries as Lwm2mRecord[];
}

/** Records to a SenML pack: `base` (if given) becomes bn of the first record, names are relative to it. */
export function toSenmlPack(records: readonly Lwm2mRecord[], base?: Lwm2mPath): SenmlPack[] {
  return records.map((rec, index) => {
    const out: SenmlPack = {};
    if (base === undefined) out.n = formatPath(rec.path);
    else {
      if (rec.path.length === base.length) {
        if (index === 0) out.bn = formatPath(base);
        else out.n = '';
      } else {
        if (index === 0) out.bn = base.length === 0 ? '/' : `${formatPath(base)}/`;
        out.n = relativeName(rec.path, base.length);
      }
    }
    if (rec.time !== undefined) out.t = rec.time;
    const problem = checkValue(rec.value);
    if (problem !== undefined) throw badRequest(`${formatPath(rec.path)}: ${problem}`);
    const v = rec.value;
    switch (v.type) {
      case 'integer':
      case 'unsignedInteger':
      case 'time':
        out.v = { int: v.value };
        break;
      case 'float':
        if (!Number.isFinite(v.value)) throw notAcceptable(`SenML cannot carry the float ${v.value} at ${formatPath(rec.path)}`);
        out.v = { float: v.value };
        break;
      case 'string':
      case 'corelnk':
        out.vs = v.value;
        break;
      case 'boolean':
        out.vb = v.value;
        break;
      case 'opaque':
        out.vd = v.value;
        break;
      case 'objlnk':
        out.vlo = formatObjLink(v.value);
        break;
    }
    return out;
  });
}

/** The ids of `path` from `from` on, joined by "/" (no sliced array: one name per record encoded). */
function relativeName(path: Lwm2mPath, from: number): string {
  let name = String(path[from]);
  for (let i = from + 1; i < path.length; i++) name += '/' + String(path[i]);
  return name;
}

// ---- JSON --------------------------------------------------------------------

function jsonNumber(v: JsonValue | undefined, field: string): number | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof JsonNumber)) throw badRequest(`SenML "${field}" must be a number`);
  const n = Number(v.raw);
  if (!Number.isFinite(n)) throw badRequest(`SenML "${field}" out of range`);
  return n;
}

function jsonString(v: JsonValue | undefined, field: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badRequest(`SenML "${field}" must be a string`);
  return v;
}

const JSON_KNOWN = new Set(['bn', 'bt', 'bu', 'bv', 'bs', 'bver', 'n', 'u', 'v', 'vs', 'vb', 'vd', 'vlo', 's', 't', 'ut']);

/** Parses SenML JSON into a pack (no resolution). */
export function parseSenmlJson(bytes: Uint8Array, options?: DecodeOptions): SenmlPack[] {
  const limits = limitsOf(options);
  checkSize(bytes, limits);
  const doc = parseJson(decodeUtf8(bytes, 'SenML JSON payload'), limits);
  if (!Array.isArray(doc)) throw badRequest('SenML JSON must be an array of records');
  return doc.map((rec) => {
    if (!(rec instanceof Map)) throw badRequest('SenML JSON record must be an object');
    for (const k of rec.keys()) {
      if (!JSON_KNOWN.has(k) && k.endsWith('_')) throw badRequest(`SenML must-understand field "${k.slice(0, 16)}" not supported`);
    }
    const out: SenmlPack = {};
    const bn = jsonString(rec.get('bn'), 'bn');
    if (bn !== undefined) out.bn = bn;
    const n = jsonString(rec.get('n'), 'n');
    if (n !== undefined) out.n = n;
    const bt = jsonNumber(rec.get('bt'), 'bt');
    if (bt !== undefined) out.bt = bt;
    const t = jsonNumber(rec.get('t'), 't');
    if (t !== undefined) out.t = t;
    const v = rec.get('v');
    if (v !== undefined) {
      if (!(v instanceof JsonNumber)) throw badRequest('SenML "v" must be a number');
      if (v.isInteger) out.v = { int: BigInt(v.raw) };
      else {
        const f = Number(v.raw);
        if (!Number.isFinite(f)) throw badRequest('SenML "v" out of range');
        out.v = { float: f };
      }
    }
    const vs = jsonString(rec.get('vs'), 'vs');
    if (vs !== undefined) out.vs = vs;
    const vb = rec.get('vb');
    if (vb !== undefined) {
      if (typeof vb !== 'boolean') throw badRequest('SenML "vb" must be a boolean');
      out.vb = vb;
    }
    const vd = jsonString(rec.get('vd'), 'vd');
    if (vd !== undefined) out.vd = decodeBase64(vd, true);
    const vlo = jsonString(rec.get('vlo'), 'vlo');
    if (vlo !== undefined) out.vlo = vlo;
    return out;
  });
}

function jsonFloat(n: number): string {
  if (Object.is(n, -0)) return '-0.0';
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return `${n}.0`;
  return String(n);
}

/** Serialises a pack as compact SenML JSON; key order bn, bt, n, t, then the value. */
export function formatSenmlJson(pack: readonly SenmlPack[]): Uint8Array {
  const parts = pack.map((r) => {
    const f: string[] = [];
    if (r.bn !== undefined) f.push(`"bn":${JSON.stringify(r.bn)}`);
    if (r.bt !== undefined) f.push(`"bt":${String(r.bt)}`);
    if (r.n !== undefined) f.push(`"n":${JSON.stringify(r.n)}`);
    if (r.t !== undefined) f.push(`"t":${String(r.t)}`);
    if (r.v !== undefined) f.push(`"v":${'int' in r.v ? r.v.int.toString() : jsonFloat(r.v.float)}`);
    if (r.vs !== undefined) f.push(`"vs":${JSON.stringify(r.vs)}`);
    if (r.vb !== undefined) f.push(`"vb":${r.vb}`);
    if (r.vd !== undefined) f.push(`"vd":${JSON.stringify(encodeBase64(r.vd, true))}`);
    if (r.vlo !== undefined) f.push(`"vlo":${JSON.stringify(r.vlo)}`);
    return `{${f.join(',')}}`;
  });
  return utf8Encoder.encode(`[${parts.join(',')}]`);
}

// ---- CBOR --------------------------------------------------------------------

/** RFC 8428 §6 CBOR labels; vlo has no registered label and is a text key. */
export const SENML_CBOR_LABELS = { bver: -1, bn: -2, bt: -3, bu: -4, bv: -5, bs: -6, n: 0, u: 1, v: 2, vs: 3, vb: 4, s: 5, t: 6, ut: 7, vd: 8 } as const;

/** The fields of one SenML CBOR record by name, as decoded. */
type SenmlCborFields = Partial<Record<keyof typeof SENML_CBOR_LABELS | 'vlo', CborItem>>;

/** Field name by CBOR label, for decoding. */
const SENML_FIELD_BY_LABEL: ReadonlyMap<number, keyof typeof SENML_CBOR_LABELS> = new Map(
  (Object.entries(SENML_CBOR_LABELS) as [keyof typeof SENML_CBOR_LABELS, number][]).map(([name, label]) => [label, name]),
);

function cborNumber(v: CborItem | undefined, field: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof CborFloat && Number.isFinite(v.value)) return v.value;
  throw badRequest(`SenML "${field}" must be a number`);
}

function cborString(v: CborItem | undefined, field: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badRequest(`SenML "${field}" must be a text string`);
  return v;
}

export function parseSenmlCbor(bytes: Uint8Array, options?: DecodeOptions): SenmlPack[] {
  const limits = limitsOf(options);
  checkSize(bytes, limits);
  const doc = decodeCbor(bytes, limits);
  if (!Array.isArray(doc)) throw badRequest('SenML CBOR must be an array of records');
  return doc.map((rec) => {
    if (!(rec instanceof CborMap)) throw badRequest('SenML CBOR record must be a map');
    const fields: SenmlCborFields = {};
    for (const [k, v] of rec.entries) {
      let name: keyof SenmlCborFields | undefined;
      if (typeof k === 'number') {
        name = SENML_FIELD_BY_LABEL.get(k);
        if (name === undefined) {
          if (k < -127 || k > 127) throw badRequest(`SenML CBOR label ${k} not supported`);
          continue; // unknown labels are ignored (RFC 8428 §4.4)
        }
      } else if (typeof k === 'string') {
        if (k.endsWith('_')) throw badRequest(`SenML must-understand field "${k.slice(0, 16)}" not supported`);
        if (k !== 'vlo') continue;
        name = k;
      } else throw badRequest('SenML CBOR keys must be integers or text');
      if (name in fields) throw badRequest(`SenML CBOR record repeats "${name}"`);
      fields[name] = v;
    }
    const out: SenmlPack = {};
    const bn = cborString(fields.bn, 'bn');
    if (bn !== undefined) out.bn = bn;
    const n = cborString(fields.n, 'n');
    if (n !== undefined) out.n = n;
    const bt = cborNumber(fields.bt, 'bt');
    if (bt !== undefined) out.bt = bt;
    const t = cborNumber(fields.t, 't');
    if (t !== undefined) out.t = t;
    const v = fields.v;
    if (v !== undefined) {
      if (typeof v === 'number' || typeof v === 'bigint') out.v = { int: v };
      else if (v instanceof CborFloat) {
        if (!Number.isFinite(v.value)) throw badRequest('SenML "v" must be finite');
        out.v = { float: v.value };
      } else throw badRequest('SenML "v" must be a number');
    }
    const vs = cborString(fields.vs, 'vs');
    if (vs !== undefined) out.vs = vs;
    const vb = fields.vb;
    if (vb !== undefined) {
      if (typeof vb !== 'boolean') throw badRequest('SenML "vb" must be a boolean');
      out.vb = vb;
    }
    const vd = fields.vd;
    if (vd !== undefined) {
      if (!(vd instanceof Uint8Array)) throw badRequest('SenML "vd" must be a byte string');
      out.vd = vd;
    }
    const vlo = cborString(fields.vlo, 'vlo');
    if (vlo !== undefined) out.vlo = vlo;
    return out;
  });
}

export function formatSenmlCbor(pack: readonly SenmlPack[]): Uint8Array {
  // Written field by field: no CborMap, pairs or CborFloat per record.
  const L = SENML_CBOR_LABELS;
  const w = new CborWriter();
  w.head(4, pack.length);
  for (const r of pack) {
    let fields = 0;
    for (const name of PACK_FIELDS) if (r[name] !== undefined) fields++;
    w.head(5, fields);
    if (r.bn !== undefined) labelled(w, L.bn).text(r.bn);
    if (r.bt !== undefined) cborNumberField(labelled(w, L.bt), r.bt);
    if (r.n !== undefined) labelled(w, L.n).text(r.n);
    if (r.t !== undefined) cborNumberField(labelled(w, L.t), r.t);
    if (r.v !== undefined) {
      labelled(w, L.v);
      if ('int' in r.v) w.item(r.v.int);
      else w.float(r.v.float);
    }
    if (r.vs !== undefined) labelled(w, L.vs).text(r.vs);
    if (r.vb !== undefined) labelled(w, L.vb).item(r.vb);
    if (r.vd !== undefined) labelled(w, L.vd).item(r.vd);
    if (r.vlo !== undefined) {
      w.text('vlo');
      w.text(r.vlo);
    }
  }
  return w.result();
}

/** The fields of a pack record, in the order they are written. */
const PACK_FIELDS = ['bn', 'bt', 'n', 't', 'v', 'vs', 'vb', 'vd', 'vlo'] as const;

function labelled(w: CborWriter, label: number): CborWriter {
  w.item(label);
  return w;
}

/** bt and t: an integer when whole, else a float. */
function cborNumberField(w: CborWriter, value: number): void {
  if (Number.isInteger(value)) w.item(value);
  else w.float(value);
}

// ---- node and record API -----------------------------------------------------

type Flavor = 'json' | 'cbor';

function parsePack(flavor: Flavor, bytes: Uint8Array, options?: DecodeOptions): SenmlPack[] {
  return flavor === 'json' ? parseSenmlJson(bytes, options) : parseSenmlCbor(bytes, options);
}

function formatPack(flavor: Flavor, pack: readonly SenmlPack[]): Uint8Array {
  return flavor === 'json' ? formatSenmlJson(pack) : formatSenmlCbor(pack);
}

function encodeNode(flavor: Flavor, path: Lwm2mPath, node: Lwm2mNode): Uint8Array {
  // What validateNode checks, on the records encoded (the node is walked once): nodeToRecords
  // checks kinds, ids and depth, then every value is checked before any is encoded.
  const records = nodeToRecords(path, node);
  for (const record of records) {
    const problem = checkValue(record.value);
    if (problem !== undefined) throw badRequest(`${formatPath(record.path)}: ${problem}`);
  }
  return formatPack(flavor, toSenmlPack(records, path));
}

function decodeNode(flavor: Flavor, path: Lwm2mPath, bytes: Uint8Array, options?: DecodeOptions): Lwm2mNode {
  const records = entriesToRecords(resolveSenml(parsePack(flavor, bytes, options), options));
  return recordsToNode(path, records, registryOf(options));
}

export const encodeSenmlJson = (path: Lwm2mPath, node: Lwm2mNode, _options?: EncodeOptions): Uint8Array => encodeNode('json', path, node);
export const decodeSenmlJson = (path: Lwm2mPath, bytes: Uint8Array, options?: DecodeOptions): Lwm2mNode =>
  decodeNode('json', path, bytes, options);
export const encodeSenmlCbor = (path: Lwm2mPath, node: Lwm2mNode, _options?: EncodeOptions): Uint8Array => encodeNode('cbor', path, node);
export const decodeSenmlCbor = (path: Lwm2mPath, bytes: Uint8Array, options?: DecodeOptions): Lwm2mNode =>
  decodeNode('cbor', path, bytes, options);

/** Records (Read-Composite, Send, notifications) as SenML; names are absolute paths. */
export function encodeSenmlRecords(flavor: Flavor, records: readonly Lwm2mRecord[]): Uint8Array {
  return formatPack(flavor, toSenmlPack(records));
}

/** SenML to records; every record must carry a value. */
export function decodeSenmlRecords(flavor: Flavor, bytes: Uint8Array, options?: DecodeOptions): Lwm2mRecord[] {
  return entriesToRecords(resolveSenml(parsePack(flavor, bytes, options), options));
}

/** SenML to entries, where records may lack values (Read-Composite / Observe-Composite request bodies). */
export function decodeSenmlEntries(flavor: Flavor, bytes: Uint8Array, options?: DecodeOptions): SenmlEntry[] {
  return resolveSenml(parsePack(flavor, bytes, options), options);
}

