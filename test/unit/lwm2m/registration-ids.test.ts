import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { RegistrationIds } from '../../../src/lwm2m/server/registration-ids.js';

test('registration ids: 12 base64url characters (time prefix, 48 random bits), none repeated across refills of the pool; ids made together share their prefix', () => {
  const ids = new RegistrationIds();
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = ids.next();
    assert.match(id, /^[A-Za-z0-9_-]{12}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 1000);
  // Made in the same 16 ms: the same 3-byte time prefix (4 characters), different random parts.
  const fixed = new RegistrationIds(() => 1_700_000_000_000);
  const a = fixed.next();
  const b = fixed.next();
  assert.equal(a.slice(0, 4), b.slice(0, 4));
  assert.notEqual(a, b);
  // 16 ms later: the next time unit, another prefix.
  assert.notEqual(new RegistrationIds(() => 1_700_000_000_016).next().slice(0, 4), a.slice(0, 4));
});
