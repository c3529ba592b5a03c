import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import type { DeviceFacts } from '../../../src/store/index.js';
import { T0, openStore, storeError } from './helpers.js';

const EMPTY = {
  manufacturer: null,
  modelNumber: null,
  serialNumber: null,
  firmwareVersion: null,
  deviceType: null,
  hardwareVersion: null,
  softwareVersion: null,
  osVersion: null,
};

void test('device facts: first upsert creates the record; later upserts merge (absent fields kept, null clears)', async () => {
  const { deviceFacts } = openStore();
  const first = await deviceFacts.upsert('dev-1', { manufacturer: 'ACME', modelNumber: 'R2', serialNumber: 'SN-1', extra: { '3/0/16': 'U', battery: 87 } }, T0);
  const expected: DeviceFacts = {
    ...EMPTY,
    endpoint: 'dev-1',
    manufacturer: 'ACME',
    modelNumber: 'R2',
    serialNumber: 'SN-1',
    extra: { '3/0/16': 'U', battery: 87 },
    updatedAt: T0,
  };
  assert.deepEqual(first, expected);
  assert.deepEqual(await deviceFacts.get('dev-1'), expected);

  const second = await deviceFacts.upsert(
    'dev-1',
    { firmwareVersion: '2.0.1', serialNumber: null, osVersion: 'Linux 6.1', extra: { battery: null, memory: { free: 10, total: 64 } } },
    T0 + 1000,
  );
  assert.deepEqual(second, {
    ...expected,
    serialNumber: null,
    firmwareVersion: '2.0.1',
    osVersion: 'Linux 6.1',
    extra: { '3/0/16': 'U', memory: { free: 10, total: 64 } },
    updatedAt: T0 + 1000,
  });
  assert.deepEqual(await deviceFacts.get('dev-1'), second);
  assert.equal(await deviceFacts.get('dev-2'), null);
});

void test('device facts: every typed field round-trips', async () => {
  const { deviceFacts } = openStore();
  const all = {
    manufacturer: 'm', modelNumber: 'mn', serialNumber: 'sn', firmwareVersion: 'fw', deviceType: 'dt',
    hardwareVersion: 'hw', softwareVersion: 'sw', osVersion: 'os',
  };
  await deviceFacts.upsert('d', all, T0);
  assert.deepEqual(await deviceFacts.get('d'), { ...all, endpoint: 'd', extra: {}, updatedAt: T0 });
});

void test('device facts: list pages in endpoint order and filters by manufacturer and model; delete', async () => {
  const { deviceFacts } = openStore();
  await deviceFacts.upsert('d3', { manufacturer: 'ACME', modelNumber: 'X' }, T0);
  await deviceFacts.upsert('d1', { manufacturer: 'ACME', modelNumber: 'Y' }, T0);
  await deviceFacts.upsert('d2', { manufacturer: 'Other', modelNumber: 'X' }, T0);
  await deviceFacts.upsert('d4', { manufacturer: 'ACME', modelNumber: 'X' }, T0);
  const p1 = await deviceFacts.list({ limit: 2 });
  assert.deepEqual(p1.items.map((f) => f.endpoint), ['d1', 'd2']);
  assert.equal(p1.next, 'd2');
  const p2 = await deviceFacts.list({ limit: 2, after: 'd2' });
  assert.deepEqual(p2.items.map((f) => f.endpoint), ['d3', 'd4']);
  assert.equal(p2.next, null);
  assert.deepEqual((await deviceFacts.list({ manufacturer: 'ACME' })).items.map((f) => f.endpoint), ['d1', 'd3', 'd4']);
  assert.deepEqual((await deviceFacts.list({ manufacturer: 'ACME', modelNumber: 'X' })).items.map((f) => f.endpoint), ['d3', 'd4']);
  assert.equal(await deviceFacts.delete('d3'), true);
  assert.equal(await deviceFacts.delete('d3'), false);
  assert.deepEqual((await deviceFacts.list({ modelNumber: 'X' })).items.map((f) => f.endpoint), ['d2', 'd4']);
});

void test('device facts: bad input is refused and leaves the record as it was', async () => {
  const { deviceFacts } = openStore();
  await deviceFacts.upsert('d', { manufacturer: 'ACME' }, T0);
  await assert.rejects(deviceFacts.upsert('d', { manufacturer: 5 as unknown as string }, T0 + 1), storeError('INVALID_ARGUMENT', /^manufacturer must be a string or null$/));
  await assert.rejects(deviceFacts.upsert('d', { extra: [] as unknown as Record<string, never> }, T0 + 1), storeError('INVALID_ARGUMENT', /^extra must be an object$/));
  await assert.rejects(deviceFacts.upsert('', {}, T0), storeError('INVALID_ARGUMENT'));
  assert.deepEqual(await deviceFacts.get('d'), { ...EMPTY, endpoint: 'd', manufacturer: 'ACME', extra: {}, updatedAt: T0 });
});
