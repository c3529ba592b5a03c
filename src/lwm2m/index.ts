/** Public surface of the sans-IO LwM2M layer: model, paths, values, nodes, content formats. */
export * from './model.js';
export * from './errors.js';
export * from './path.js';
export * from './values.js';
export * from './node.js';
export { ObjectRegistry, defaultRegistry } from './objects/registry.js';
export * from './objects/definitions.js';
export * from './content/index.js';
export { encodeTlvValue, decodeTlvValue, readTlvs, writeTlv } from './content/tlv.js';
export type { TlvEntry, TlvKind } from './content/tlv.js';
export { decodeSenmlEntries } from './content/senml.js';
export type { SenmlEntry } from './content/senml.js';
export { decodeCbor, encodeCbor, CborFloat, CborMap, CborTag, CborSimple } from './content/cbor.js';
export type { CborItem } from './content/cbor.js';
export { checkRange } from './range.js';
// Format-specific codecs. Prefer encode()/decode(): these skip the conversion of values to their
// defined types on encode and the last-resort error guard on decode.
export { encodeTlv, decodeTlv } from './content/tlv.js';
export { encodePlainText, decodePlainText, encodeOpaque, decodeOpaque } from './content/plaintext.js';
export { encodeSenmlJson, decodeSenmlJson, encodeSenmlCbor, decodeSenmlCbor } from './content/senml.js';
export { encodeLwm2mCbor, decodeLwm2mCbor, encodeLwm2mCborRecords, decodeLwm2mCborRecords } from './content/lwm2mcbor.js';
