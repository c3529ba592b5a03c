import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import type {
  ObjectRegistry} from '../../../src/lwm2m/index.js';
import {
  DeviceObject,
  DeviceResource,
  ObjectId,
  OBJECT_DEFINITIONS,
  SoftwareManagementObject,
  SoftwareManagementResource,
  SecurityObject,
  defaultRegistry
} from '../../../src/lwm2m/index.js';
import { TEMPERATURE_OBJECT } from './helpers.js';

test('definitions: generated file is up to date with registry.json', () => {
  const r = spawnSync(process.execPath, ['scripts/gen-lwm2m-objects.mjs', '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('definitions: objects 0,1,2,3,4,5,9 are present with registry fields', () => {
  assert.deepEqual(
    OBJECT_DEFINITIONS.map((o) => o.id),
    [0, 1, 2, 3, 4, 5, 9],
  );
  assert.equal(ObjectId.Device, 3);
  assert.equal(DeviceObject.multiple, false);
  assert.deepEqual(defaultRegistry.resource(3, 13), {
    id: 13,
    name: 'Current Time',
    operations: 'RW',
    multiple: false,
    mandatory: false,
    type: 'time',
  });
  assert.deepEqual(defaultRegistry.resource(3, 9), {
    id: 9,
    name: 'Battery Level',
    operations: 'R',
    multiple: false,
    mandatory: false,
    type: 'integer',
    range: '0..100',
    units: '/100',
  });
  assert.equal(defaultRegistry.resource(3, DeviceResource.Reboot)?.type, 'none');
  assert.equal(defaultRegistry.resource(3, DeviceResource.AvailablePowerSources)?.multiple, true);
  assert.equal(SecurityObject.resources.every((r) => r.operations === ''), true);
  assert.equal(defaultRegistry.resource(1, 1)?.type, 'unsignedInteger');
});

test('definitions: object 9 has resources 0..13 of the seed spec', () => {
  assert.deepEqual(
    SoftwareManagementObject.resources.map((r) => [r.id, r.name, r.operations, r.type]),
    [
      [0, 'PkgName', 'R', 'string'],
      [1, 'PkgVersion', 'R', 'string'],
      [2, 'Package', 'W', 'opaque'],
      [3, 'Package URI', 'W', 'string'],
      [4, 'Install', 'E', 'none'],
      [5, 'Checkpoint', 'R', 'objlnk'],
      [6, 'Uninstall', 'E', 'none'],
      [7, 'Update State', 'R', 'integer'],
      [8, 'Update Supported Objects', 'RW', 'boolean'],
      [9, 'Update Result', 'R', 'integer'],
      [10, 'Activate', 'E', 'none'],
      [11, 'Deactivate', 'E', 'none'],
      [12, 'Activation State', 'R', 'boolean'],
      [13, 'Package Settings', 'RW', 'objlnk'],
    ],
  );
  assert.equal(SoftwareManagementResource.UpdateResult, 9);
  assert.equal(SoftwareManagementObject.multiple, true);
});

test('definitions: unknown objects are absent; a registry can be extended', () => {
  assert.equal(defaultRegistry.object(3303), undefined);
  assert.equal(defaultRegistry.resource(3303, 5700), undefined);
  const r: ObjectRegistry = defaultRegistry.with([TEMPERATURE_OBJECT]);
  assert.equal(r.resource(3303, 5700)?.type, 'float');
  assert.equal(r.resource(3, 0)?.name, 'Manufacturer');
});
