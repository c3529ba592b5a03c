/**
 * Content-format dispatch: encode(format, path, node) and decode(format, path, bytes).
 * CoRE Link Format (40) lives in src/coap/linkformat.ts and is not handled here.
 */
import type { Lwm2mPath } from '../path.js';
import type { Lwm2mNode, Lwm2mRecord } from '../node.js';
import { Lwm2mCodecError, unsupportedFormat, notAcceptable } from '../errors.js';
import type { DecodeOptions, EncodeOptions } from './common.js';
import { conformNode, registryOf, typeValue } from './common.js';
import { validateNode } from '../node.js';
import { decodeOpaque, decodePlainText, encodeOpaque, encodePlainText } from './plaintext.js';
import { decodeTlv, encodeTlv } from './tlv.js';
import { decodeSenmlCbor, decodeSenmlJson, decodeSenmlRecords, encodeSenmlCbor, encodeSenmlJson, encodeSenmlRecords } from './senml.js';
import { decodeLwm2mCbor, decodeLwm2mCborRecords, encodeLwm2mCbor, encodeLwm2mCborRecords } from './lwm2mcbor.js';

export type { DecodeOptions, EncodeOptions } from './common.js';

/** CoAP Content-Format numbers used by LwM2M (IANA CoAP Content-Formats registry). */
export const ContentFormat = {
  PlainText: 0,
  LinkFormat: 40,
  Opaque: 42,
  SenmlJson: 110,
  SenmlCbor: 112,
  Tlv: 11542,
  /** LwM2M 1.0 JSON (11543) is not supported: SenML JSON replaced it in 1.1. */
  Lwm2mJson: 11543,
  Lwm2mCbor: 11544,
  /** Pre-registration numbers some LwM2M 1.0 clients still send. */
  LegacyPlainText: 1541,
  LegacyTlv: 1542,
  LegacyOpaque: 1544,
} as const;

export type ContentFormatNumber = (typeof ContentFormat)[keyof typeof ContentFormat];

type Encoder = (path: Lwm2mPath, node: Lwm2mNode, options?: EncodeOptions) => Uint8Array;
type Decoder = (path: Lwm2mPath, bytes: Uint8Array, options?: DecodeOptions) => Lwm2mNode;

const CODECS = new Map<number, { encode: Encoder; decode: Decoder }>([
  [ContentFormat.PlainText, { encode: encodePlainText, decode: decodePlainText }],
  [ContentFormat.LegacyPlainText, { encode: encodePlainText, decode: decodePlainText }],
  [ContentFormat.Opaque, { encode: encodeOpaque, decode: decodeOpaque }],
  [ContentFormat.LegacyOpaque, { encode: encodeOpaque, decode: decodeOpaque }],
  [ContentFormat.Tlv, { encode: encodeTlv, decode: decodeTlv }],
  [ContentFormat.LegacyTlv, { encode: encodeTlv, decode: decodeTlv }],
  [ContentFormat.SenmlJson, { encode: encodeSenmlJson, decode: decodeSenmlJson }],
  [ContentFormat.SenmlCbor, { encode: encodeSenmlCbor, decode: decodeSenmlCbor }],
  [ContentFormat.Lwm2mCbor, { encode: encodeLwm2mCbor, decode: decodeLwm2mCbor }],
]);

/** Content formats this module can decode (and encode). */
export function supportedFormats(): number[] {
  return [...CODECS.keys()].sort((a, b) => a - b);
}

export function isSupportedFormat(format: number): boolean {
  return CODECS.has(format);
}

/**
 * Encodes `node` (addressed by `path`) in `format`. Throws Lwm2mCodecError: 4.06 when the
 * format cannot represent the node (e.g. plain text for an object instance) or the format
 * is unknown (the peer's Accept cannot be met), 4.00 for an invalid node.
 */
export function encode(format: number, path: Lwm2mPath, node: Lwm2mNode, options?: EncodeOptions): Uint8Array {
  const codec = CODECS.get(format);
  if (codec === undefined) throw notAcceptable(`content format ${format} is not supported`);
  validateNode(path, node);
  return codec.encode(path, conformNode(registryOf(options), path, node), options);
}

/**
 * Decodes a payload addressed to `path`. Throws Lwm2mCodecError: 4.15 for an unknown format
 * or one that cannot carry this path, 4.00 for malformed payloads. Never throws anything else.
 */
export function decode(format: number, path: Lwm2mPath, bytes: Uint8Array, options?: DecodeOptions): Lwm2mNode {
  const codec = CODECS.get(format);
  if (codec === undefined) throw unsupportedFormat(`content format ${format} is not supported`);
  return guard(() => codec.decode(path, bytes, options));
}

const RECORD_FORMATS = new Set<number>([ContentFormat.SenmlJson, ContentFormat.SenmlCbor, ContentFormat.Lwm2mCbor]);

/** Encodes records with absolute paths (Read-Composite, Send, composite notifications). */
export function encodeRecords(format: number, records: readonly Lwm2mRecord[], options?: EncodeOptions): Uint8Array {
  if (!RECORD_FORMATS.has(format)) throw notAcceptable(`content format ${format} cannot carry composite records`);
  const registry = registryOf(options);
  records = records.map((r) => ({ ...r, value: typeValue(registry, r.path, r.value) }));
  if (format === ContentFormat.Lwm2mCbor) return encodeLwm2mCborRecords(records);
  return encodeSenmlRecords(format === ContentFormat.SenmlJson ? 'json' : 'cbor', records);
}

/** Decodes a composite payload into records with absolute paths. */
export function decodeRecords(format: number, bytes: Uint8Array, options?: DecodeOptions): Lwm2mRecord[] {
  if (!RECORD_FORMATS.has(format)) throw unsupportedFormat(`content format ${format} cannot carry composite records`);
  return guard(() =>
    format === ContentFormat.Lwm2mCbor
      ? decodeLwm2mCborRecords(bytes, options)
      : decodeSenmlRecords(format === ContentFormat.SenmlJson ? 'json' : 'cbor', bytes, options),
  );
}

/** Last line of defence: anything but a Lwm2mCodecError (a bug, or a stack overflow) becomes 4.00. */
function guard<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof Lwm2mCodecError) throw e;
    throw new Lwm2mCodecError('4.00', `malformed payload (${e instanceof Error ? e.name : 'error'})`, { cause: e });
  }
}
