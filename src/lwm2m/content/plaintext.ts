/**
 * Plain text, content format 0 (TS Core 1.1 §7.4.1), and opaque, content format 42 (§7.4.2).
 * Both carry exactly one value: a single resource or a resource instance.
 */
import type { Lwm2mPath } from '../path.js';
import { formatPath } from '../path.js';
import type { Lwm2mNode } from '../node.js';
import { Node, validateNode } from '../node.js';
import type { Lwm2mValue } from '../values.js';
import { valueFromText, valueToText } from '../values.js';
import { notAcceptable, unsupportedFormat } from '../errors.js';
import type { DecodeOptions, EncodeOptions } from './common.js';
import { checkSize, decodeUtf8, limitsOf, registryOf, resourceDef, utf8Encoder, valueTypeOf } from './common.js';

function singleValue(path: Lwm2mPath, node: Lwm2mNode, format: string): Lwm2mValue {
  validateNode(path, node);
  if (node.kind === 'resource' || node.kind === 'resourceInstance') return node.value;
  throw notAcceptable(`${format} carries one value; ${formatPath(path)} is a ${node.kind}`);
}

function valueNode(path: Lwm2mPath, value: Lwm2mValue): Lwm2mNode {
  return path.length === 3 ? Node.resource(path[2], value) : Node.resourceInstance(path[3] as number, value);
}

function checkSingleTarget(path: Lwm2mPath, options: DecodeOptions | undefined, format: string): void {
  if (path.length < 3) throw unsupportedFormat(`${format} cannot carry ${formatPath(path)}: only a single resource or resource instance`);
  const def = resourceDef(registryOf(options), path);
  if (path.length === 3 && def?.multiple === true) {
    throw unsupportedFormat(`${format} cannot carry the multiple resource ${formatPath(path)}`);
  }
}

export function encodePlainText(path: Lwm2mPath, node: Lwm2mNode, _options?: EncodeOptions): Uint8Array {
  return utf8Encoder.encode(valueToText(singleValue(path, node, 'plain text')));
}

/** Decodes plain text as the resource's type; an unknown resource gives a string. */
export function decodePlainText(path: Lwm2mPath, bytes: Uint8Array, options?: DecodeOptions): Lwm2mNode {
  checkSize(bytes, limitsOf(options));
  checkSingleTarget(path, options, 'plain text');
  const type = valueTypeOf(resourceDef(registryOf(options), path), path) ?? 'string';
  const text = decodeUtf8(bytes, 'plain text payload');
  return valueNode(path, valueFromText(text, type));
}

export function encodeOpaque(path: Lwm2mPath, node: Lwm2mNode, _options?: EncodeOptions): Uint8Array {
  const v = singleValue(path, node, 'opaque');
  if (v.type !== 'opaque') throw notAcceptable(`opaque format carries opaque values only; ${formatPath(path)} is ${v.type}`);
  return v.value;
}

/** Decodes opaque bytes; the resource must be opaque or unknown. */
export function decodeOpaque(path: Lwm2mPath, bytes: Uint8Array, options?: DecodeOptions): Lwm2mNode {
  checkSize(bytes, limitsOf(options));
  checkSingleTarget(path, options, 'opaque');
  const type = valueTypeOf(resourceDef(registryOf(options), path), path);
  if (type !== undefined && type !== 'opaque') throw unsupportedFormat(`${formatPath(path)} is ${type}, not opaque`);
  return valueNode(path, { type: 'opaque', value: new Uint8Array(bytes) });
}
