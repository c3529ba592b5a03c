/**
 * API authorization over real sockets against `depot serve`'s own wiring: every route the app
 * registered (read from the app, not a list kept here) is refused without the token and with a
 * wrong one, whatever spelling of its path reaches the router; public routes stay reachable;
 * failed authentications are throttled per source address.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import type { RunningDepotServer } from '../../src/app/server.js';
import { startApiTestServer, type ApiTestServer } from '../support/api-server.js';
import { registeredRoutes, type SeenRoute } from '../../src/api/auth.js';
import { rawRequest, type RawResponse } from '../support/api-client.js';

const TOKEN = 'authz-test-token-6f1d2c';
const WRONG = 'authz-test-token-6f1d2d';

let testServer: ApiTestServer;
let server: RunningDepotServer;
let port: number;

before(async () => {
  // Thousands of refusals from one address here: the throttle has tests of its own.
  testServer = await startApiTestServer('authz', TOKEN, { authThrottle: { maxFailures: Number.MAX_SAFE_INTEGER } });
  ({ server, port } = testServer);
});

after(() => testServer.close());

/** A value for each path parameter, so the path reaches the route. */
const SAMPLE_PARAMS: Record<string, string> = { endpoint: 'sample-ep', instance: '0', sha256: 'a'.repeat(64), id: 'sample-job', token: 'sample-token' };
const fill = (url: string): string => url.replace(/:(\w+)/g, (_m, name: string) => SAMPLE_PARAMS[name] ?? 'sample');

const hex = (c: string, upper: boolean): string => {
  const h = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${upper ? h.toUpperCase() : h}`;
};

/** Spellings of `path` that a router, a proxy or a normaliser might take for the same route. */
function spellings(path: string): string[] {
  const segments = path.split('/').slice(1);
  const at = (s: number, value: string): string => '/' + segments.map((seg, i) => (i === s ? value : seg)).join('/');
  const out = new Set<string>([path]);
  // Each character of the first two segments percent-encoded, upper and lower case hex.
  for (const s of [0, 1]) {
    const seg = segments[s] ?? '';
    for (let i = 0; i < seg.length; i++) for (const upper of [true, false]) out.add(at(s, seg.slice(0, i) + hex(seg[i]!, upper) + seg.slice(i + 1)));
  }
  // Every segment wholly encoded, one at a time, and all at once.
  segments.forEach((seg, s) => out.add(at(s, [...seg].map((c) => hex(c, true)).join(''))));
  out.add('/' + segments.map((seg) => [...seg].map((c) => hex(c, false)).join('')).join('/'));
  // Encoded, doubled and dot-segment slashes at each separator.
  for (let s = 0; s < segments.length; s++) {
    const before = '/' + segments.slice(0, s).join('/');
    const rest = segments.slice(s).join('/');
    const head = s === 0 ? '' : before;
    out.add(`${head}//${rest}`);
    out.add(`${head}/./${rest}`);
    out.add(`${head}/%2e/${rest}`);
    if (s > 0) {
      out.add(`${head}%2F${rest}`);
      out.add(`${head}%2f${rest}`);
      out.add(`${head}/x/../${rest}`);
      out.add(`${head}/x/%2e%2e/${rest}`);
    }
  }
  out.add(`/api/v1/../v1/${segments.slice(2).join('/')}`);
  out.add(`/api/../api/${segments.slice(1).join('/')}`);
  // Case.
  out.add(path.toUpperCase());
  out.add(at(0, segments[0]!.toUpperCase()));
  out.add(at(1, (segments[1] ?? '').toUpperCase()));
  // Suffixes.
  for (const suffix of ['?', '#', '?x=1', '#x', '/', ';', ';x=1', '%20', '%00', '?%2F']) out.add(path + suffix);
  // Absolute form (RFC 9112 §3.2.2), which the raw request.url keeps as it is.
  for (const origin of [`http://127.0.0.1:${port}`, `HTTP://127.0.0.1:${port}`, 'http://other.example']) {
    out.add(origin + path);
    out.add(origin + at(0, `%61${segments[0]!.slice(1)}`));
  }
  return [...out];
}

/** Runs `jobs` with at most `width` of them at a time. */
async function inParallel<T>(jobs: (() => Promise<T>)[], width: number): Promise<T[]> {
  const results: T[] = new Array<T>(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < jobs.length) {
        const i = next++;
        results[i] = await jobs[i]!();
      }
    }),
  );
  return results;
}

const errorOf = (r: RawResponse): string | undefined => {
  try {
    return (JSON.parse(r.body) as { error?: string }).error;
  } catch {
    return undefined;
  }
};

test('every registered route is listed, and all but health, the OpenAPI document, the package download, the login and the console page need the token', () => {
  const routes = registeredRoutes(server.api);
  assert.ok(routes.length >= 20, `only ${routes.length} routes seen`);
  const publicRoutes = routes.filter((r) => r.public).map((r) => `${r.method} ${r.url}`).sort();
  assert.deepEqual(publicRoutes, [
    'GET /',
    'GET /api/health',
    'GET /api/openapi.json',
    'GET /console/:file',
    'GET /pkg/:token',
    'HEAD /',
    'HEAD /api/health',
    'HEAD /api/openapi.json',
    'HEAD /console/:file',
    'HEAD /pkg/:token',
    'POST /api/v1/login',
  ]);
  assert.ok(routes.some((r) => r.method === 'POST' && r.url === '/api/v1/packages'));
  assert.ok(routes.some((r) => r.method === 'HEAD' && r.url === '/api/v1/devices'), 'HEAD routes exposed for GET routes are seen (and protected) too');
});

test('each protected route, however its path is spelled (percent-encoding, case, slashes, dot segments, suffixes, absolute form), is refused without a token and with a wrong one', async () => {
  const protectedRoutes = registeredRoutes(server.api).filter((r) => !r.public);
  const jobs: (() => Promise<string | undefined>)[] = [];
  for (const route of protectedRoutes) {
    for (const target of spellings(fill(route.url))) {
      for (const authorization of [undefined, `Bearer ${WRONG}`, TOKEN]) {
        jobs.push(async () => {
          const answer = await rawRequest(port, route.method, target, { headers: authorization ? { authorization } : {} });
          const what = `${route.method} ${target} (${authorization ? 'wrong credentials' : 'no credentials'}): ${answer.status} ${answer.body.slice(0, 120)}`;
          // 401, or 400 where the URL is not even valid; never an answer from a route.
          // (HEAD answers have no body to check.)
          const body = (code: string) => route.method === 'HEAD' || errorOf(answer) === code;
          if (answer.status === 401) return answer.headers['www-authenticate'] === 'Bearer realm="depot"' && body('UNAUTHORIZED') ? undefined : what;
          return answer.status === 400 && body('BAD_REQUEST') ? undefined : what;
        });
      }
    }
  }
  // Answers a route served (2xx) first in the report: they are the bypasses.
  const failures = (await inParallel(jobs, 8)).filter((f) => f !== undefined).sort((a, b) => Number(/: 2\d\d /.test(b)) - Number(/: 2\d\d /.test(a)));
  assert.ok(jobs.length > 3000, `only ${jobs.length} requests`);
  assert.deepEqual(failures.slice(0, 40), [], `${failures.length} of ${jobs.length} requests were not refused`);
});

test('with the token, the plain path of each protected route reaches that route (the refusals above are not 404s in disguise)', async () => {
  const protectedRoutes = registeredRoutes(server.api).filter((r) => !r.public);
  const answers = await inParallel(
    protectedRoutes.map((route) => async () => ({ route, answer: await rawRequest(port, route.method, fill(route.url), { headers: { authorization: `Bearer ${TOKEN}` } }) })),
    4,
  );
  for (const { route, answer } of answers) {
    assert.notEqual(answer.status, 401, `${route.method} ${route.url}`);
    assert.notEqual(answer.status, 429, `${route.method} ${route.url}`);
    if (route.method !== 'HEAD') assert.notEqual(errorOf(answer), 'UNKNOWN_ROUTE', `${route.method} ${route.url}: ${answer.body}`);
  }
  assert.equal(answers.find((a) => a.route.method === 'GET' && a.route.url === '/api/v1/devices')!.answer.status, 200);
  // And an absolute-form request with the token is routed like the plain one.
  assert.equal((await rawRequest(port, 'GET', `http://127.0.0.1:${port}/api/v1/devices`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
});

test('unknown paths: 401 without the token (no way to tell routes from non-routes), a 404 that names nothing with it', async () => {
  for (const target of ['/nope', '/api/v1/nope', '/api/v2/devices', '/api/v1/devices/x/y/z', '/%2e%2e/etc/passwd']) {
    const anonymous = await rawRequest(port, 'GET', target);
    assert.equal(anonymous.status, 401, target);
    const known = await rawRequest(port, 'GET', target, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(known.status, 404, target);
    // A problem document that does not echo the path.
    assert.match(known.headers['content-type'] ?? '', /^application\/problem\+json/);
    assert.deepEqual(JSON.parse(known.body), { type: 'about:blank', title: 'Not Found', status: 404, error: 'UNKNOWN_ROUTE', detail: 'no such API route (every route is in /api/openapi.json)', message: 'no such API route (every route is in /api/openapi.json)' });
  }
  const wrongMethod = await rawRequest(port, 'DELETE', '/api/v1/devices');
  assert.equal(wrongMethod.status, 401);
});

test('public routes answer without credentials (and with wrong ones)', async () => {
  const publicRoutes: SeenRoute[] = registeredRoutes(server.api).filter((r) => r.public);
  for (const route of publicRoutes) {
    for (const headers of [{}, { authorization: `Bearer ${WRONG}` }] as Record<string, string>[]) {
      const answer = await rawRequest(port, route.method, fill(route.url), { headers });
      assert.ok(answer.status !== 401 && answer.status !== 429, `${route.method} ${route.url}: ${answer.status}`);
    }
  }
  const health = await rawRequest(port, 'GET', '/api/health');
  assert.equal(health.status, 200);
  assert.deepEqual(JSON.parse(health.body), { status: 'ok' });
  const openapi = await rawRequest(port, 'GET', '/api/openapi.json');
  assert.equal(openapi.status, 200);
  const doc = JSON.parse(openapi.body) as { paths: Record<string, Record<string, { security: unknown }>> };
  assert.deepEqual(doc.paths['/api/health']!.get!.security, []);
  assert.deepEqual(doc.paths['/api/v1/packages']!.post!.security, [{ bearer: [] }, { session: [] }]);
  const download = await rawRequest(port, 'GET', '/pkg/not-a-real-token');
  assert.equal(download.status, 404);
  assert.equal(errorOf(download), 'NOT_FOUND');
});

test('behind a configured reverse proxy, the throttle counts the client X-Forwarded-For names; other peers cannot claim an address', async () => {
  const proxied = await startApiTestServer('proxy', TOKEN, { trustedProxies: ['127.0.0.1'], authThrottle: { maxFailures: 3, windowMs: 60_000, lockoutMs: 120_000 } });
  try {
    const via = (from: string, client: string, authorization: string) => rawRequest(proxied.port, 'GET', '/api/v1/devices', { localAddress: from, headers: { authorization, 'x-forwarded-for': client } });
    for (let i = 0; i < 3; i++) assert.equal((await via('127.0.0.1', '203.0.113.7', `Bearer ${WRONG}`)).status, 401);
    assert.equal((await via('127.0.0.1', '203.0.113.7', `Bearer ${TOKEN}`)).status, 429, 'the client behind the proxy is locked out');
    assert.equal((await via('127.0.0.1', '203.0.113.8', `Bearer ${TOKEN}`)).status, 200, 'another client behind the same proxy is not');
    // A peer that is not the proxy is counted by its own address, whatever it claims.
    assert.equal((await via('127.0.0.2', '203.0.113.8', `Bearer ${WRONG}`)).status, 401);
    for (let i = 0; i < 2; i++) await via('127.0.0.2', '203.0.113.8', `Bearer ${WRONG}`);
    assert.equal((await via('127.0.0.2', '203.0.113.10', `Bearer ${TOKEN}`)).status, 429, 'a forged X-Forwarded-For from a non-proxy changes nothing');
    assert.equal((await via('127.0.0.1', '203.0.113.8', `Bearer ${TOKEN}`)).status, 200, 'the spoofed claim did not lock the real client out');
  } finally {
    await proxied.close();
  }
});

test('failed authentications are throttled per source address: 429 with retry-after, token not evaluated; other addresses, public routes and, later, the same address are unaffected', async () => {
  let clock = 1_000_000;
  const throttled = await startApiTestServer('throttle', TOKEN, { now: () => clock, authThrottle: { maxFailures: 5, windowMs: 60_000, lockoutMs: 120_000 } });
  try {
    const p = throttled.port;
    const get = (from: string, authorization?: string, target = '/api/v1/devices') => rawRequest(p, 'GET', target, { localAddress: from, headers: authorization ? { authorization } : {} });
    const good = `Bearer ${TOKEN}`;
    const bad = `Bearer ${WRONG}`;

    // Successes are never throttled.
    for (let i = 0; i < 30; i++) assert.equal((await get('127.0.0.1', good)).status, 200);
    // Failures spread over more than the window do not add up.
    for (let i = 0; i < 4; i++) assert.equal((await get('127.0.0.1', bad)).status, 401);
    clock += 60_000;
    for (let i = 0; i < 4; i++) assert.equal((await get('127.0.0.1', i % 2 ? bad : undefined)).status, 401);
    // The fifth within the window locks the address out; every request (each from a new source port) counts.
    assert.equal((await get('127.0.0.1', bad, '/api/v1/nope')).status, 401);
    const locked = await get('127.0.0.1', bad);
    assert.equal(locked.status, 429);
    assert.equal(locked.headers['retry-after'], '120');
    assert.equal(errorOf(locked), 'TOO_MANY_FAILED_AUTHENTICATIONS');
    // The right token is not even looked at: guessing on from there tells nothing.
    assert.equal((await get('127.0.0.1', good)).status, 429);
    assert.equal((await rawRequest(p, 'POST', '/api/v1/packages', { localAddress: '127.0.0.1', headers: { authorization: good } })).status, 429);
    // Public routes are not behind the throttle.
    assert.equal((await get('127.0.0.1', undefined, '/api/health')).status, 200);
    // Without a configured proxy, X-Forwarded-For is the client's claim and changes nothing.
    assert.equal((await rawRequest(p, 'GET', '/api/v1/devices', { localAddress: '127.0.0.1', headers: { authorization: good, 'x-forwarded-for': '203.0.113.9' } })).status, 429);
    // Another address is unaffected, and has its own count.
    assert.equal((await get('127.0.0.2', good)).status, 200);
    assert.equal((await get('127.0.0.2', bad)).status, 401);
    // The lockout ends.
    clock += 60_000;
    const later = await get('127.0.0.1', good);
    assert.equal(later.status, 429);
    assert.equal(later.headers['retry-after'], '60');
    clock += 60_000;
    assert.equal((await get('127.0.0.1', good)).status, 200);
    assert.equal((await get('127.0.0.1', bad)).status, 401, 'a fresh count after the lockout');
  } finally {
    await throttled.close();
  }
});
