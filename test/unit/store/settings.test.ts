import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { T0, openStore, storeError } from './helpers.js';

void test('settings: typed get/set/delete; unknown keys read as null', async () => {
  const { settings, db } = openStore();
  assert.equal(await settings.get('bootstrap.pin'), null);
  await settings.set('bootstrap.pin', '0042', T0);
  await settings.set('bootstrap.autoAccept', false, T0);
  await settings.set('lwm2m.defaultLifetimeSec', 86400, T0);
  await settings.set('pki.caDir', '/var/lib/depot/ca', T0);
  const pin: string | null = await settings.get('bootstrap.pin');
  assert.equal(pin, '0042');
  assert.equal(await settings.get('bootstrap.autoAccept'), false);
  assert.equal(await settings.get('lwm2m.defaultLifetimeSec'), 86400);
  assert.equal(await settings.get('pki.caDir'), '/var/lib/depot/ca');
  await settings.set('bootstrap.pin', '9999', T0 + 1);
  assert.equal(await settings.get('bootstrap.pin'), '9999');
  assert.deepEqual(db.prepare('SELECT key, value, updated_at FROM settings WHERE key = ?').get('bootstrap.pin'), {
    key: 'bootstrap.pin',
    value: '"9999"',
    updated_at: T0 + 1,
  });
  assert.equal(await settings.delete('bootstrap.pin'), true);
  assert.equal(await settings.delete('bootstrap.pin'), false);
  assert.equal(await settings.get('bootstrap.pin'), null);
  await assert.rejects(settings.set('pki.caDir', null as unknown as string, T0), storeError('INVALID_ARGUMENT', /^setting pki\.caDir needs a value/));
});
