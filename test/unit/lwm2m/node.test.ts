import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Node, Value, defaultRegistry, recordsToNode, validateNode, type Lwm2mPath, type Lwm2mRecord } from '../../../src/lwm2m/index.js';
import { conformNode } from '../../../src/lwm2m/content/common.js';
import { assertCodecError } from './helpers.js';

const rec = (ids: number[], value: number, time?: number): Lwm2mRecord => {
  const path = ids as unknown as Lwm2mPath;
  return time === undefined ? { path, value: Value.integer(value) } : { path, value: Value.integer(value), time };
};

test('recordsToNode: records in any order build the node in id order, at every level', () => {
  const records = [rec([3, 1, 9], 7), rec([3, 0, 7, 1], 5000), rec([3, 0, 9], 100), rec([3, 0, 7, 0], 3800), rec([3, 0, 1], 1)];
  const instance0 = Node.instance(0, [
    Node.resource(1, Value.integer(1)),
    Node.multiResource(7, [[0, Value.integer(3800)], [1, Value.integer(5000)]]),
    Node.resource(9, Value.integer(100)),
  ]);
  assert.deepEqual(recordsToNode([3], records), Node.object(3, [instance0, Node.instance(1, [Node.resource(9, Value.integer(7))])]));
  assert.deepEqual(recordsToNode([3, 0], records.filter((r) => r.path[1] === 0)), instance0);
  assert.deepEqual(recordsToNode([3, 0, 7], [rec([3, 0, 7, 1], 5000), rec([3, 0, 7, 0], 3800)]), Node.multiResource(7, [[0, Value.integer(3800)], [1, Value.integer(5000)]]));
  assert.deepEqual(recordsToNode([3, 0, 7, 1], [rec([3, 0, 7, 1], 5000)]), Node.resourceInstance(1, Value.integer(5000)));
  // Nothing under an object or instance is an empty node; a multiple resource may be empty, a single one may not.
  assert.deepEqual(recordsToNode([3], []), Node.object(3, []));
  assert.deepEqual(recordsToNode([3, 0], []), Node.instance(0, []));
  assert.deepEqual(recordsToNode([3, 0, 7], [], defaultRegistry), Node.multiResource(7, []));
  assertCodecError(() => recordsToNode([3, 0, 9], [], defaultRegistry), '4.00', /no value for \/3\/0\/9/);
  assertCodecError(() => recordsToNode([3, 0, 7, 0], []), '4.00', /no value/);
});

test('recordsToNode: a time series keeps the latest value per path (the later record on a tie); other duplicates are 4.00', () => {
  const series = [rec([3, 0, 9], 1, 30), rec([3, 0, 10], 5), rec([3, 0, 9], 2, 10), rec([3, 0, 9], 3, 30), rec([3, 0, 9], 4, 20)];
  assert.deepEqual(recordsToNode([3, 0], series), Node.instance(0, [Node.resource(9, Value.integer(3)), Node.resource(10, Value.integer(5))]));
  assertCodecError(() => recordsToNode([3, 0], [rec([3, 0, 9], 1), rec([3, 0, 10], 1), rec([3, 0, 9], 2)]), '4.00', /duplicate value for \/3\/0\/9/);
  assertCodecError(() => recordsToNode([3, 0], [rec([3, 0, 9], 1, 5), rec([3, 0, 9], 2)]), '4.00', /duplicate value/);
});

test('recordsToNode: records outside the path, above resources, single and multiple at once, or against the registry are 4.00', () => {
  assertCodecError(() => recordsToNode([3, 0], [rec([3, 1, 9], 1)]), '4.00', /outside \/3\/0/);
  assertCodecError(() => recordsToNode([3], [{ path: [3, 0], value: Value.integer(1) } as unknown as Lwm2mRecord]), '4.00', /does not address a resource/);
  assertCodecError(() => recordsToNode([3, 0], [rec([3, 0, 7, 0], 1), rec([3, 0, 7], 2)]), '4.00', /resource \/3\/0\/7 given as single and multiple/);
  assertCodecError(() => recordsToNode([3, 0], [rec([3, 0, 9, 0], 1)], defaultRegistry), '4.00', /\/3\/0\/9 is single-instance/);
  assertCodecError(() => recordsToNode([3, 0], [rec([3, 0, 7], 1)], defaultRegistry), '4.00', /\/3\/0\/7 is multiple-instance/);
  assertCodecError(() => recordsToNode([], [rec([3, 0, 7], 1)]), '4.00', /root path/);
});

test('validateNode: structure is checked before values (as records would be built first), paths named in diagnostics', () => {
  const badValueFirst = Node.instance(0, [Node.resource(1, { type: 'integer', value: 1.5 } as never), Node.resource(1, Value.integer(2))]);
  assertCodecError(() => validateNode([3, 0], badValueFirst), '4.00', /ids under \/3\/0 must be unique and ascending/);
  assertCodecError(() => validateNode([3, 0], Node.instance(0, [Node.resource(2, Value.integer(2)), Node.resource(7, { type: 'integer', value: 1.5 } as never)])), '4.00', /^\/3\/0\/7: /);
  assertCodecError(() => validateNode([3, 0, 7], Node.multiResource(7, [[0, Value.integer(1)], [1, { type: 'boolean', value: 1 } as never]])), '4.00', /^\/3\/0\/7\/1: /);
  assertCodecError(() => validateNode([3, 0], Node.resource(0, Value.integer(1))), '4.00', /does not fit path/);
  validateNode([3], Node.object(3, [Node.instance(0, [Node.multiResource(7, [[0, Value.integer(1)]])])]));
});

test('conformNode: values take their resource\'s defined type; a node already conforming is returned as it is', () => {
  const conforming = Node.instance(0, [Node.resource(0, Value.string('Acme')), Node.resource(9, Value.integer(100))]);
  assert.equal(conformNode(defaultRegistry, [3, 0], conforming), conforming);
  const loose = Node.instance(0, [Node.resource(0, Value.string('Acme')), Node.resource(13, Value.integer(1367491215))]);
  const conformed = conformNode(defaultRegistry, [3, 0], loose) as typeof loose;
  assert.deepEqual(conformed, Node.instance(0, [Node.resource(0, Value.string('Acme')), Node.resource(13, Value.time(1367491215))]));
  assert.equal(conformed.resources[0], loose.resources[0], 'unchanged resources are shared');
  assertCodecError(() => conformNode(defaultRegistry, [3, 0], Node.instance(0, [Node.resource(0, Value.integer(1))])), '4.00', /^\/3\/0\/0: /);
});
