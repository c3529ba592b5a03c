import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import {
  childPath,
  comparePaths,
  formatPath,
  isPrefixOf,
  isValidPath,
  makePath,
  parentPath,
  parsePath,
  pathLevel,
  type Lwm2mPath,
} from '../../../src/lwm2m/index.js';
import { assertCodecError } from './helpers.js';

test('path TS Core §6.1: parse and format every level /o/i/r/ri', () => {
  assert.deepEqual(parsePath('/'), []);
  assert.deepEqual(parsePath('/3'), [3]);
  assert.deepEqual(parsePath('/3/0'), [3, 0]);
  assert.deepEqual(parsePath('/3/0/13'), [3, 0, 13]);
  assert.deepEqual(parsePath('/3/0/6/1'), [3, 0, 6, 1]);
  assert.deepEqual(parsePath('/3/0/'), [3, 0]);
  assert.deepEqual(parsePath('/65534/65534/65534/65534'), [65534, 65534, 65534, 65534]);
  assert.equal(formatPath([]), '/');
  assert.equal(formatPath([3, 0, 6, 1]), '/3/0/6/1');
  assert.equal(pathLevel([]), 'root');
  assert.equal(pathLevel([1, 2, 3]), 'resource');
  assert.equal(pathLevel([1, 2, 3, 4]), 'resourceInstance');
});

test('path TS Core §6.1: rejects malformed paths and the reserved id 65535 with 4.00', () => {
  assert.deepEqual(parsePath('/0/10/100/65534/'), [0, 10, 100, 65534]);
  for (const bad of ['', '3/0', '//', '/3//0', '/03', '/00', '/-1', '/+1', '/1.0', '/a', '/3/0a', '/65535', '/1/65535', '/99999', '/123456', '/1/2/3/4/5', '/3/0//', ' /3', '/3 ']) {
    assertCodecError(() => parsePath(bad), '4.00');
  }
  assert.equal(isValidPath([3, 65535]), false);
  assert.equal(isValidPath([3, -1]), false);
  assert.equal(isValidPath([3, 1.5]), false);
  assert.equal(isValidPath([1, 2, 3, 4, 5]), false);
  assertCodecError(() => makePath(1, 65535), '4.00');
  assertCodecError(() => childPath([1, 2, 3, 4], 0), '4.00');
});

test('path TS Core §6.1: ordering puts parents first, then numeric order', () => {
  const paths: Lwm2mPath[] = [[3, 0, 10], [3, 0, 2], [3], [1, 0], [3, 0], [3, 0, 2, 1], [3, 0, 2, 0], []];
  const sorted = [...paths].sort(comparePaths).map(formatPath);
  assert.deepEqual(sorted, ['/', '/1/0', '/3', '/3/0', '/3/0/2', '/3/0/2/0', '/3/0/2/1', '/3/0/10']);
});

test('path TS Core §6.1: prefix tests', () => {
  assert.equal(isPrefixOf([], [3, 0]), true);
  assert.equal(isPrefixOf([3], [3, 0, 1]), true);
  assert.equal(isPrefixOf([3, 0, 1], [3, 0, 1]), true);
  assert.equal(isPrefixOf([3, 0, 1], [3, 0, 10]), false);
  assert.equal(isPrefixOf([3, 0, 1, 0], [3, 0, 1]), false);
  assert.deepEqual(parentPath([3, 0, 1]), [3, 0]);
  assert.equal(parentPath([]), undefined);
  assert.deepEqual(childPath([3, 0], 7), [3, 0, 7]);
});
