/** Password hashing (scrypt, RFC 7914) and the token/session secrets of auth.ts (issue 17). */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { DUMMY_PASSWORD_HASH, cookieValue, defaultAccess, hashPassword, newApiToken, newSession, roleAllows, verifyPassword } from '../../../src/api/auth.js';

test('hashPassword: scrypt N=2^15 r=8 p=1 with a fresh 16-byte salt; verifyPassword accepts the password only', async () => {
  const a = await hashPassword('correct horse battery');
  const b = await hashPassword('correct horse battery');
  assert.match(a, /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a, b, 'salted');
  assert.equal(await verifyPassword('correct horse battery', a), true);
  assert.equal(await verifyPassword('correct horse batterY', a), false);
  assert.equal(await verifyPassword('', a), false);
  // Unicode is compared in NFC: the same text typed two ways is one password.
  const cafe = await hashPassword('caf\u00e9-password');
  assert.equal(await verifyPassword('cafe\u0301-password', cafe), true);
});

test('verifyPassword: malformed or absurd-cost hashes match nothing (and cannot be made expensive)', async () => {
  for (const stored of ['', 'plain', 'bcrypt$x', 'scrypt$1$8$1$AAAA$AAAA', 'scrypt$4194304$8$1$AAAA$AAAA', 'scrypt$32768$64$1$AAAA$AAAA', 'scrypt$32768$8$1$AAAA']) {
    assert.equal(await verifyPassword('anything', stored), false, stored);
  }
  assert.equal(await verifyPassword('anything', DUMMY_PASSWORD_HASH), false);
});

test('tokens and sessions: 192-bit secrets in a fixed shape; only their SHA-256 is kept', () => {
  const t = newApiToken();
  assert.match(t.token, new RegExp(`^dpt_${t.id}_[A-Za-z0-9_-]{32}$`));
  assert.equal(t.secretHash.length, 32);
  assert.ok(!Buffer.from(t.secretHash).toString('utf8').includes(t.token.slice(-32)));
  const s = newSession();
  assert.match(s.cookie, new RegExp(`^${s.id}\\.[A-Za-z0-9_-]{32}$`));
  assert.notEqual(s.csrfToken, s.cookie.split('.')[1]);
  assert.equal(cookieValue(`a=1; depot_session=${s.cookie}; b=2`, 'depot_session'), s.cookie);
  assert.equal(cookieValue('xdepot_session=1', 'depot_session'), undefined);
});

test('the default rule and role order', () => {
  assert.equal(defaultAccess('GET', '/api/v1/devices'), 'viewer');
  assert.equal(defaultAccess('HEAD', '/api/v1/devices'), 'viewer');
  assert.equal(defaultAccess('POST', '/api/v1/devices/:endpoint/read'), 'operator');
  assert.equal(defaultAccess('PUT', '/api/v1/anything'), 'operator');
  assert.equal(defaultAccess('GET', '/api/v1/users'), 'admin');
  assert.equal(defaultAccess('GET', '/api/v1/tokens/:id'), 'admin');
  assert.equal(defaultAccess('GET', '/api/v1/admin'), 'admin');
  assert.equal(defaultAccess('GET', '/api/v1/audit'), 'admin');
  assert.equal(defaultAccess('GET', '/api/v1/usersettings'), 'viewer', 'a prefix of a word is not the admin area');
  assert.deepEqual(
    (['viewer', 'operator', 'admin'] as const).map((r) => [roleAllows(r, 'viewer'), roleAllows(r, 'operator'), roleAllows(r, 'admin')]),
    [[true, false, false], [true, true, false], [true, true, true]],
  );
});
