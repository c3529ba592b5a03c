import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { RegistrationIds } from '../../../src/lwm2m/server/registration-ids.js';

test('registration ids: 72 random bits in base64url, none repeated across refills of the pool', () => {
  const ids = new RegistrationIds();
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = ids.next();
    assert.match(id, /^[A-Za-z0-9_-]{12}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 1000);
});
