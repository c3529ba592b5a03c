import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { createHmac } from 'node:crypto';
import { ProfileError, assignModels, devicePsk, parseProfile } from '../../../src/sim/index.js';

const base = { manufacturer: 'Acme', model: 'A', firmwareVersion: '1.0' };

test('sim profile: a valid profile keeps its fields', () => {
  const p = parseProfile({
    lifetime: 600,
    models: [{ ...base, osVersion: 'AcmeOS 5', deviceType: 'gateway', count: 2, behaviours: { installer: 'sim-good' } }, { manufacturer: 'Beta', model: 'B', firmwareVersion: '2', weight: 3, queueMode: true, awakeMs: 5000 }],
    psk: { identity: 'id-{ep}', key: '0011' },
  });
  assert.equal(p.lifetime, 600);
  assert.deepEqual(p.models[0], { ...base, osVersion: 'AcmeOS 5', deviceType: 'gateway', count: 2, behaviours: { installer: 'sim-good' } });
  assert.deepEqual(p.psk, { identity: 'id-{ep}', key: '0011' });
  assert.deepEqual(p.models[1], { manufacturer: 'Beta', model: 'B', firmwareVersion: '2', weight: 3, queueMode: true, awakeMs: 5000 });
});

test('sim profile: errors name the offending field', () => {
  const bad = (doc: unknown, message: RegExp): void => assert.throws(() => parseProfile(doc), (e: unknown) => e instanceof ProfileError && message.test(e.message));
  bad([], /JSON object/);
  bad({ models: [] }, /models must be a non-empty array/);
  bad({ models: [{ manufacturer: 'A', model: 'B' }] }, /models\[0\]\.firmwareVersion/);
  bad({ models: [{ ...base, count: 1.5 }] }, /models\[0\]\.count must be an integer/);
  bad({ models: [{ ...base, weight: -1 }] }, /models\[0\]\.weight/);
  bad({ models: [{ ...base, queueMode: 'yes' }] }, /models\[0\]\.queueMode must be true or false/);
  bad({ models: [{ ...base, behaviours: { installer: 'sim-nope' } }] }, /unknown behaviour sim-nope/);
  bad({ models: [base], psk: { identity: 'x' } }, /psk needs key or deriveFrom/);
  bad({ models: [base], psk: { key: 'xyz' } }, /psk.key must be hex/);
});

test('sim profile: counts are exact, weights share the rest, the order is interleaved', () => {
  const p = parseProfile({ models: [{ ...base, model: 'A', count: 2 }, { ...base, model: 'B', weight: 3 }, { ...base, model: 'C', weight: 1 }] });
  const a = assignModels(p, 10);
  assert.deepEqual(a, [1, 0, 1, 2, 1, 1, 0, 1, 2, 1]);
  assert.deepEqual([0, 1, 2].map((m) => a.filter((x) => x === m).length), [2, 6, 2]);
  // Fewer devices than counts: counts are served in order.
  assert.deepEqual(assignModels(p, 1), [0]);
  // Only counted models: extra devices cycle through them.
  const c = parseProfile({ models: [{ ...base, count: 1 }, { ...base, model: 'B', count: 1 }] });
  assert.deepEqual([0, 1].map((m) => assignModels(c, 5).filter((x) => x === m).length), [3, 2]);
});

test('sim profile: per-device PSK from a shared key or derived with HMAC-SHA256', () => {
  const shared = parseProfile({ models: [base], psk: { key: 'aabb' } });
  assert.deepEqual(devicePsk(shared, 'ep-1'), { identity: 'ep-1', key: Uint8Array.from([0xaa, 0xbb]) });
  const derived = parseProfile({ models: [base], psk: { identity: 'psk:{ep}', deriveFrom: '0102' } });
  const expected = createHmac('sha256', Buffer.from('0102', 'hex')).update('ep-7').digest().subarray(0, 16);
  assert.deepEqual(devicePsk(derived, 'ep-7'), { identity: 'psk:ep-7', key: Uint8Array.from(expected) });
  assert.equal(devicePsk(parseProfile({ models: [base] }), 'x'), undefined);
});

test('sim profile: lwm2mVersion, pinVersion and formats per model (a fleet mixing 1.0, 1.1 and 1.2 devices)', () => {
  const p = parseProfile({ models: [{ ...base, lwm2mVersion: '1.0' }, { ...base, lwm2mVersion: '1.2', pinVersion: true, formats: [110] }] });
  assert.deepEqual(p.models[0], { ...base, lwm2mVersion: '1.0' });
  assert.deepEqual(p.models[1], { ...base, lwm2mVersion: '1.2', pinVersion: true, formats: [110] });
  const bad = (doc: unknown, message: RegExp): void => assert.throws(() => parseProfile(doc), (e: unknown) => e instanceof ProfileError && message.test(e.message));
  bad({ models: [{ ...base, lwm2mVersion: '2.0' }] }, /models\[0\]\.lwm2mVersion must be "1.0", "1.1" or "1.2"/);
  bad({ models: [{ ...base, lwm2mVersion: 1.1 }] }, /lwm2mVersion/);
  bad({ models: [{ ...base, formats: [] }] }, /models\[0\]\.formats must be a non-empty array/);
  bad({ models: [{ ...base, formats: ['110'] }] }, /formats/);
  bad({ models: [{ ...base, formats: [70000] }] }, /formats/);
  bad({ models: [{ ...base, pinVersion: 'yes' }] }, /pinVersion must be true or false/);
});
