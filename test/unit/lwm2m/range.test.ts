import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Value, checkRange, defaultRegistry, type ResourceDefinition } from '../../../src/lwm2m/index.js';

const def = (o: number, r: number): ResourceDefinition => {
  const d = defaultRegistry.resource(o, r);
  assert.ok(d !== undefined);
  return d;
};

test('range OMA registry RangeEnumeration: numeric "a..b" ranges from the registry (3/9 Battery Level 0..100, 1/0 Short Server ID 1..65534)', () => {
  assert.equal(checkRange(def(3, 9), Value.integer(100)), undefined);
  assert.equal(checkRange(def(3, 9), Value.integer(101)), 'Battery Level: 101 outside 0..100');
  assert.equal(checkRange(def(3, 9), Value.integer(-1)), 'Battery Level: -1 outside 0..100');
  assert.equal(checkRange(def(1, 0), Value.integer(0)), 'Short Server ID: 0 outside 1..65534');
  assert.equal(checkRange(def(1, 0), Value.integer(65534)), undefined);
  assert.equal(checkRange(def(3, 10), Value.integer(2n ** 62n)), undefined);
});

test('range OMA registry RangeEnumeration: byte lengths of strings and opaque values (9/0 "0..255 bytes", 0/7 "6", 0/8 "16,32,48")', () => {
  assert.equal(checkRange(def(9, 0), Value.string('x'.repeat(255))), undefined);
  assert.equal(checkRange(def(9, 0), Value.string('é'.repeat(128))), 'PkgName: length 256 outside 0..255 bytes');
  assert.equal(checkRange(def(0, 7), Value.opaque(new Uint8Array(6))), undefined);
  assert.equal(checkRange(def(0, 7), Value.opaque(new Uint8Array(5))), 'SMS Binding Key Parameters: length 5 not one of 6');
  assert.equal(checkRange(def(0, 8), Value.opaque(new Uint8Array(32))), undefined);
  assert.equal(checkRange(def(0, 8), Value.opaque(new Uint8Array(33))), 'SMS Binding Secret Key(s): length 33 not one of 16,32,48');
  assert.equal(checkRange(def(3, 0), Value.string('no range')), undefined);
});
