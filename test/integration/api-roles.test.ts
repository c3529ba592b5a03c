/**
 * Roles over real sockets against `depot serve`'s own wiring (issue 17): every route the app
 * registered — read from the app, so routes other areas add later are covered without editing
 * this file — is tried with a viewer, an operator and an admin API token. A role below the
 * route's access gets 403 before the route runs; a role at or above it is never refused by
 * authorization. The default rule itself is checked for every route: only routes that say so
 * (config.role) differ from it, and those are listed here. Then: console sessions with CSRF
 * protection, token expiry and revocation, login throttling per account, the audit log.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { startApiTestServer, type ApiTestServer } from '../support/api-server.js';
import { defaultAccess, registeredRoutes, roleAllows, type Role } from '../../src/api/auth.js';
import { rawRequest } from '../support/api-client.js';

const TOKEN = 'roles-test-token-0b7e1a';
const DAY = 86_400_000;
let clock = Date.UTC(2026, 0, 1);
let testServer: ApiTestServer;
let base: string;
const tokens = {} as Record<Role, string>;

/** Routes whose access differs from the default rule on purpose, and why. */
const OVERRIDES: Record<string, string> = {
  'POST /api/v1/logout': 'viewer: anyone signed in may sign out',
  'POST /api/v1/session/password': 'viewer: anyone signed in may change their own password',
  'GET /api/v1/session': 'viewer (the default too): who am I',
  'HEAD /api/v1/session': 'viewer (the default too)',
};

async function call(path: string, init: { method?: string; token?: string; json?: unknown; headers?: Record<string, string> } = {}) {
  const response = await fetch(base + path, {
    method: init.method ?? (init.json === undefined ? 'GET' : 'POST'),
    headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
    ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
  });
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON (metrics, the console page)
  }
  return { status: response.status, body, headers: response.headers, text };
}

before(async () => {
  testServer = await startApiTestServer('roles', TOKEN, { authThrottle: { maxFailures: Number.MAX_SAFE_INTEGER }, now: () => clock });
  base = `http://127.0.0.1:${testServer.port}`;
  for (const role of ['viewer', 'operator', 'admin'] as const) {
    const made = await call('/api/v1/tokens', { token: TOKEN, json: { name: `${role}-token`, role } });
    assert.equal(made.status, 201, made.text);
    tokens[role] = made.body.token as string;
    assert.match(tokens[role], /^dpt_/);
  }
});

after(() => testServer.close());

const SAMPLE: Record<string, string> = { endpoint: 'sample-ep', instance: '0', sha256: 'a'.repeat(64), id: 'sample-id', token: 'sample-token', username: 'nobody-here', file: 'none.js' };
const fill = (url: string): string => url.replace(/:(\w+)/g, (_m, name: string) => SAMPLE[name] ?? 'sample');

test('every route needs what the default rule says (GET/HEAD viewer, other methods operator, admin areas admin), except the listed overrides', () => {
  const routes = registeredRoutes(testServer.server.api);
  assert.ok(routes.length > 40, `only ${routes.length} routes`);
  const differing = routes.filter((r) => !r.public && r.access !== defaultAccess(r.method, r.url)).map((r) => `${r.method} ${r.url}`);
  for (const key of differing) assert.ok(key in OVERRIDES, `${key} overrides the default rule without being listed here`);
  const find = (method: string, url: string) => routes.find((r) => r.method === method && r.url === url)?.access;
  assert.equal(find('GET', '/api/v1/devices'), 'viewer');
  assert.equal(find('POST', '/api/v1/packages'), 'operator');
  assert.equal(find('POST', '/api/v1/devices/:endpoint/installs'), 'operator');
  assert.equal(find('POST', '/api/v1/bootstrap/:endpoint/accept'), 'operator');
  assert.equal(find('GET', '/api/v1/users'), 'admin');
  assert.equal(find('POST', '/api/v1/tokens'), 'admin');
  assert.equal(find('GET', '/api/v1/audit'), 'admin');
  assert.equal(find('GET', '/metrics'), 'viewer');
  // Send certificate (docs/trust.md): operators and admins send, viewers read; the link itself is a capability.
  assert.equal(find('POST', '/api/v1/devices/:endpoint/certificate'), 'operator');
  assert.equal(find('POST', '/api/v1/certificates/send'), 'operator');
  assert.equal(find('GET', '/api/v1/certificates'), 'viewer');
  assert.equal(find('GET', '/api/v1/certificates/devices'), 'viewer');
  assert.equal(routes.find((r) => r.method === 'GET' && r.url === '/c/:token'), undefined, 'no CA here: no certificate links');
  // A route nobody here has seen gets the rule too.
  assert.equal(defaultAccess('POST', '/api/v1/campaigns/:id/pause'), 'operator');
  assert.equal(defaultAccess('DELETE', '/api/v1/sms/outbox/:id'), 'operator');
  assert.equal(defaultAccess('GET', '/api/v1/admin/anything'), 'admin');
  assert.equal(defaultAccess('GET', '/api/v1/inventory'), 'viewer');
});

test('each role is refused (403, before the route runs) every route above it, and reaches every route at or below it', async () => {
  const routes = registeredRoutes(testServer.server.api).filter((r) => !r.public);
  const problems: string[] = [];
  let refusals = 0;
  for (const route of routes) {
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      const answer = await rawRequest(testServer.port, route.method, fill(route.url), { headers: { authorization: `Bearer ${tokens[role]}` } });
      const allowed = roleAllows(role, route.access as Role);
      const what = `${role} ${route.method} ${route.url} (needs ${route.access}): ${answer.status} ${answer.body.slice(0, 160)}`;
      if (allowed) {
        if (answer.status === 401 || answer.status === 403) problems.push(`refused: ${what}`);
      } else {
        refusals++;
        const forbidden = answer.status === 403 && (route.method === 'HEAD' || (/"error":"FORBIDDEN"/.test(answer.body) && answer.headers['content-type']?.startsWith('application/problem+json') === true));
        if (!forbidden) problems.push(`not refused: ${what}`);
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(refusals > 20, `only ${refusals} refusals tried`);
});

test('the API refuses a viewer an operator action, and the refusal is in the audit log', async () => {
  const upload = await call('/api/v1/devices/sample-ep/installs', { token: tokens.viewer, json: { package: 'b'.repeat(64) } });
  assert.equal(upload.status, 403);
  assert.match(upload.body.detail as string, /needs the operator role; token:viewer-token has viewer/);
  const audit = await call('/api/v1/audit?limit=20', { token: tokens.admin });
  assert.equal(audit.status, 200);
  const entry = (audit.body.entries as { actor: string; action: string; outcome: string; target: string }[]).find((e) => e.actor === 'token:viewer-token' && e.action === 'POST /api/v1/devices/:endpoint/installs');
  assert.ok(entry, JSON.stringify(audit.body.entries));
  assert.equal(entry.outcome, '403');
  assert.equal(entry.target, JSON.stringify({ endpoint: 'sample-ep' }));
  // Viewers cannot read the audit log.
  assert.equal((await call('/api/v1/audit', { token: tokens.viewer })).status, 403);
});

test('users: an admin adds a user; the user signs in to a console session (HttpOnly, SameSite=Strict), unsafe requests need the CSRF token', async () => {
  const added = await call('/api/v1/users', { token: tokens.admin, json: { username: 'olga', role: 'operator', password: 'correct horse battery' } });
  assert.equal(added.status, 201, added.text);
  assert.equal((await call('/api/v1/users', { token: tokens.operator, json: { username: 'eve', role: 'admin', password: 'correct horse battery' } })).status, 403);
  const login = await call('/api/v1/login', { json: { username: 'olga', password: 'correct horse battery' } });
  assert.equal(login.status, 200, login.text);
  const setCookie = login.headers.get('set-cookie')!;
  assert.match(setCookie, /^depot_session=[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{32}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
  const cookie = setCookie.split(';')[0]!;
  const csrf = login.body.csrfToken as string;
  const me = await call('/api/v1/session', { headers: { cookie } });
  assert.deepEqual([me.status, me.body.role, me.body.username], [200, 'operator', 'olga']);
  // An unsafe request with the cookie alone (what a cross-site form could send) is refused.
  const noCsrf = await call('/api/v1/bootstrap/ep-x/accept', { method: 'POST', headers: { cookie } });
  assert.equal(noCsrf.status, 403);
  assert.equal(noCsrf.body.error, 'CSRF_TOKEN_REQUIRED');
  const wrongCsrf = await call('/api/v1/bootstrap/ep-x/accept', { method: 'POST', headers: { cookie, 'x-csrf-token': csrf.slice(1) + 'x' } });
  assert.equal(wrongCsrf.status, 403);
  const withCsrf = await call('/api/v1/bootstrap/ep-x/accept', { method: 'POST', headers: { cookie, 'x-csrf-token': csrf } });
  assert.notEqual(withCsrf.status, 403, withCsrf.text);
  // Operators are not admins.
  assert.equal((await call('/api/v1/users', { headers: { cookie } })).status, 403);
  // Demoting the user ends their sessions.
  assert.equal((await call('/api/v1/users/olga/update', { token: tokens.admin, json: { role: 'viewer' } })).status, 200);
  assert.equal((await call('/api/v1/session', { headers: { cookie } })).status, 401);
  // Sign out.
  const again = await call('/api/v1/login', { json: { username: 'olga', password: 'correct horse battery' } });
  const cookie2 = again.headers.get('set-cookie')!.split(';')[0]!;
  assert.equal((await call('/api/v1/logout', { method: 'POST', headers: { cookie: cookie2, 'x-csrf-token': again.body.csrfToken as string } })).status, 200);
  assert.equal((await call('/api/v1/session', { headers: { cookie: cookie2 } })).status, 401);
});

test('login is throttled per account: after 5 wrong passwords even the right one waits (429), other accounts are unaffected', async () => {
  await call('/api/v1/users', { token: tokens.admin, json: { username: 'target', role: 'viewer', password: 'right password 123' } });
  await call('/api/v1/users', { token: tokens.admin, json: { username: 'bystander', role: 'viewer', password: 'right password 456' } });
  for (let i = 0; i < 5; i++) assert.equal((await call('/api/v1/login', { json: { username: 'target', password: `wrong ${i} guess` } })).status, 401);
  const locked = await call('/api/v1/login', { json: { username: 'TARGET', password: 'right password 123' } });
  assert.equal(locked.status, 429);
  assert.ok(Number(locked.headers.get('retry-after')) > 0);
  assert.equal((await call('/api/v1/login', { json: { username: 'bystander', password: 'right password 456' } })).status, 200);
  clock += 16 * 60_000;
  assert.equal((await call('/api/v1/login', { json: { username: 'target', password: 'right password 123' } })).status, 200);
  // Unknown users are refused like wrong passwords.
  assert.equal((await call('/api/v1/login', { json: { username: 'ghost', password: 'whatever it is' } })).body.error, 'LOGIN_FAILED');
});

test('tokens: a login can issue an API token of the user\'s role; tokens expire and can be revoked; the list never shows secrets', async () => {
  const issued = await call('/api/v1/login', { json: { username: 'bystander', password: 'right password 456', token: { name: 'laptop', days: 1 } } });
  assert.equal(issued.status, 201, issued.text);
  const token = issued.body.token as string;
  assert.equal(issued.body.role, 'viewer');
  assert.equal((await call('/api/v1/devices', { token })).status, 200);
  assert.equal((await call('/api/v1/bootstrap/x/accept', { method: 'POST', token })).status, 403);
  const list = await call('/api/v1/tokens', { token: tokens.admin });
  assert.ok(!list.text.includes(token.slice(-32)), 'no token secret in the list');
  assert.ok((list.body.tokens as { name: string; username: string | null }[]).some((t) => t.name === 'laptop' && t.username === 'bystander'));
  clock += 2 * DAY;
  assert.equal((await call('/api/v1/devices', { token })).status, 401, 'expired');
  const fresh = await call('/api/v1/tokens', { token: tokens.admin, json: { name: 'to-revoke', role: 'operator' } });
  assert.equal((await call('/api/v1/devices', { token: fresh.body.token as string })).status, 200);
  assert.equal((await call(`/api/v1/tokens/${fresh.body.id as string}/revoke`, { method: 'POST', token: tokens.admin })).status, 200);
  assert.equal((await call('/api/v1/devices', { token: fresh.body.token as string })).status, 401, 'revoked');
});

test('the last admin cannot be removed or demoted', async () => {
  const users = await call('/api/v1/users', { token: tokens.admin });
  const admins = (users.body.users as { username: string; role: string }[]).filter((u) => u.role === 'admin');
  assert.equal(admins.length, 1);
  const demote = await call(`/api/v1/users/${admins[0]!.username}/update`, { token: tokens.admin, json: { role: 'operator' } });
  assert.equal(demote.status, 409);
  assert.equal((await call(`/api/v1/users/${admins[0]!.username}/remove`, { method: 'POST', token: tokens.admin })).status, 409);
});

test('/metrics needs a token (any role) and counts requests by route pattern', async () => {
  assert.equal((await call('/metrics')).status, 401);
  const metrics = await call('/metrics', { token: tokens.viewer });
  assert.equal(metrics.status, 200);
  assert.match(metrics.text, /depot_http_requests_total\{method="GET",route="\/api\/v1\/devices",status="200"\} \d+/);
  assert.match(metrics.text, /depot_api_refusals_total\{status="403"\} \d+/);
  assert.match(metrics.text, /depot_queue_depth\{queue="installs_open"\} 0/);
  assert.doesNotMatch(metrics.text, /sample-ep/, 'raw paths are never labels');
});
