/** The failed-authentication throttle's bookkeeping: keys per source, expiry, bounded memory. */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { AuthFailureThrottle, sourceKey } from '../../../src/api/auth.js';

test('sources are keyed by address: IPv4 (also IPv4-mapped) as is, IPv6 by its /64, whatever the spelling', () => {
  assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('::FFFF:192.0.2.7'), '192.0.2.7');
  const a = sourceKey('2001:db8:0:1::1');
  assert.equal(a, '2001:db8:0:1::/64');
  for (const same of ['2001:db8:0:1:ffff:1:2:3', '2001:0db8:0000:0001::abcd', '2001:DB8:0:1:0:0:0:9', '2001:db8:0:1::9%eth0']) assert.equal(sourceKey(same), a, same);
  assert.notEqual(sourceKey('2001:db8:0:2::1'), a);
  assert.equal(sourceKey('::1'), '0:0:0:0::/64');
  assert.equal(sourceKey('2001:db8::'), '2001:db8:0:0::/64');
  assert.equal(sourceKey('::ffff:0:1.2.3.4'), '0:0:0:0::/64');
  assert.equal(sourceKey(undefined), 'unknown');
});

test('a source is locked out at the Nth failure within the window, for the lockout time; failures further apart do not add up', () => {
  const throttle = new AuthFailureThrottle({ maxFailures: 3, windowMs: 1000, lockoutMs: 5000 });
  throttle.recordFailure('a', 0);
  throttle.recordFailure('a', 500);
  assert.equal(throttle.lockedFor('a', 600), 0);
  // The window started at 0; at 1000 a new one starts.
  throttle.recordFailure('a', 1000);
  assert.equal(throttle.lockedFor('a', 1000), 0);
  throttle.recordFailure('a', 1100);
  throttle.recordFailure('a', 1200);
  assert.equal(throttle.lockedFor('a', 1200), 5000);
  assert.equal(throttle.lockedFor('a', 6000), 200);
  assert.equal(throttle.lockedFor('b', 1200), 0, 'other sources are unaffected');
  // Expired state (lockout over, window past) is forgotten when looked at.
  assert.equal(throttle.lockedFor('a', 6200), 0);
  assert.equal(throttle.size, 0);
  throttle.recordFailure('c', 10_000);
  assert.equal(throttle.lockedFor('c', 10_999), 0);
  assert.equal(throttle.size, 1);
  assert.equal(throttle.lockedFor('c', 11_000), 0);
  assert.equal(throttle.size, 0);
});

test('memory stays bounded however many sources fail: the least recently failing are forgotten first', () => {
  const throttle = new AuthFailureThrottle({ maxFailures: 2, windowMs: 60_000, lockoutMs: 60_000, maxTrackedSources: 100 });
  throttle.recordFailure('attacker', 0);
  throttle.recordFailure('attacker', 1);
  assert.ok(throttle.lockedFor('attacker', 2) > 0);
  for (let i = 0; i < 50; i++) throttle.recordFailure(`10.0.0.${i}`, 2);
  assert.ok(throttle.lockedFor('attacker', 3) > 0, 'still remembered while there is room');
  for (let i = 0; i < 100_000; i++) throttle.recordFailure(`rotating-${i}`, 3);
  assert.equal(throttle.size, 100);
  // A source failing again moves to the back of the eviction order.
  throttle.recordFailure('busy', 4);
  for (let i = 0; i < 50; i++) throttle.recordFailure(`more-${i}`, 5);
  throttle.recordFailure('busy', 6);
  for (let i = 50; i < 149; i++) throttle.recordFailure(`more-${i}`, 7);
  assert.ok(throttle.lockedFor('busy', 8) > 0);
  assert.equal(throttle.lockedFor('more-0', 8), 0);
  assert.equal(throttle.size, 100);
});
