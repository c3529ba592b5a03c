import { strict as assert } from 'node:assert';
import { Lwm2mCodecError } from '../../../src/lwm2m/index.js';
import type { CoapErrorCode } from '../../../src/lwm2m/index.js';
import type { ObjectDefinition } from '../../../src/lwm2m/model.js';

export const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Asserts that f throws a Lwm2mCodecError with the given CoAP code (and diagnostic match). */
export function assertCodecError(f: () => unknown, code: CoapErrorCode, diagnostic?: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof Lwm2mCodecError, `expected Lwm2mCodecError, got ${String(e)}`);
    assert.equal(e.code, code, `code of "${e.diagnostic}"`);
    if (diagnostic !== undefined) assert.match(e.diagnostic, diagnostic);
    return true;
  });
}

import { Node, Value, type InstanceNode } from '../../../src/lwm2m/index.js';

/** The Device object instance of the TS examples (TS 1.0 §6.4.3.1, TS 1.1 §7.4.4/§7.4.5). */
export const DEVICE_INSTANCE: InstanceNode = Node.instance(0, [
  Node.resource(0, Value.string('Open Mobile Alliance')),
  Node.resource(1, Value.string('Lightweight M2M Client')),
  Node.resource(2, Value.string('345000123')),
  Node.resource(3, Value.string('1.0')),
  Node.multiResource(6, [Value.integer(1), Value.integer(5)]),
  Node.multiResource(7, [Value.integer(3800), Value.integer(5000)]),
  Node.multiResource(8, [Value.integer(125), Value.integer(900)]),
  Node.resource(9, Value.integer(100)),
  Node.resource(10, Value.integer(15)),
  Node.multiResource(11, [Value.integer(0)]),
  Node.resource(13, Value.time(1367491215)),
  Node.resource(14, Value.string('+02:00')),
  Node.resource(16, Value.string('U')),
]);

/** TS 1.0 §6.4.3.1: Read /3/0 in TLV, as resource TLVs without the instance wrapper. */
export const DEVICE_TLV =
  'C800144F70656E204D6F62696C6520416C6C69616E6365' +
  'C801164C69676874776569676874204D324D20436C69656E74' +
  'C80209333435303030313233' +
  'C303312E30' +
  '8606410001410105' +
  '88070842000ED842011388' +
  '870841007D42010384' +
  'C10964' +
  'C10A0F' +
  '830B410000' +
  'C40D5182428F' +
  'C60E2B30323A3030' +
  'C11055';

/** An object outside the default registry (IPSO Temperature, 3303) with one float resource, for registry extension and typed-value tests. */
export const TEMPERATURE_OBJECT: ObjectDefinition = {
  id: 3303,
  name: 'Temperature',
  urn: 'urn:oma:lwm2m:ext:3303',
  version: '1.0',
  lwm2mVersion: '1.0',
  multiple: true,
  mandatory: false,
  resources: [{ id: 5700, name: 'Sensor Value', operations: 'R', multiple: false, mandatory: true, type: 'float' }],
};
