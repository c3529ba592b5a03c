/**
 * The HTTP API under random input, over real sockets against `depot serve`'s own wiring: random
 * request targets (built from the registered routes, mutated, percent-encoded at random, with
 * random segments, queries and fragments) and random bodies (JSON, broken JSON, bytes) with every
 * content type. Two properties: a request without the token never reaches a non-public route
 * (no 2xx, no answer other than 401 / 400 / 404 / 429 / 413 / 431), and with the token nothing is
 * a server error (5xx; 501 "not available" and 504 "device did not answer" are answers, not crashes).
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import type { RunningDepotServer } from '../../../src/app/server.js';
import { startApiTestServer, type ApiTestServer } from '../../support/api-server.js';
import { registeredRoutes } from '../../../src/api/auth.js';
import { rawRequest } from '../../support/api-client.js';
import { fuzzParameters } from './settings.js';

const TOKEN = 'fuzz-token-0b7c1e95';
let testServer: ApiTestServer;
let server: RunningDepotServer;
let port: number;
let routes: { method: string; url: string; public: boolean }[];

before(async () => {
  // Thousands of refusals from one address here: the throttle has tests of its own.
  testServer = await startApiTestServer('http-fuzz', TOKEN, { authThrottle: { maxFailures: Number.MAX_SAFE_INTEGER } });
  ({ server, port } = testServer);
  routes = registeredRoutes(server.api).map((r) => ({ ...r }));
  assert.ok(routes.length > 10, 'the routes were read from the app');
});

after(() => testServer.close());

/** Characters a path may carry raw in a request line (no space, no control bytes). */
const PATH_CHARS = 'abcdefghijklmnopqrstuvwxyzAPIV0123456789-._~!$&\'()*+,;=:@/%?#';

const encodeSome = (text: string, mask: number[]): string =>
  [...text].map((c, i) => (mask[i % mask.length]! % 3 === 0 && c !== '/' ? `%${c.charCodeAt(0).toString(16).padStart(2, '0')}` : c)).join('');

/** A request target derived from a registered route (of `pool`), then spelled and mutated at random. */
const targetArb = (pool: () => { method: string; url: string; public: boolean }[]) => fc
  .record({
    route: fc.nat(),
    params: fc.array(fc.string({ unit: fc.constantFrom(...PATH_CHARS), maxLength: 24 }), { minLength: 4, maxLength: 4 }),
    mask: fc.array(fc.nat(), { minLength: 1, maxLength: 16 }),
    tail: fc.string({ unit: fc.constantFrom(...PATH_CHARS), maxLength: 16 }),
    form: fc.constantFrom('origin', 'absolute', 'double-slash', 'dot-segments', 'upper'),
  })
  .map(({ route, params, mask, tail, form }) => {
    const candidates = pool();
    const r = candidates[route % candidates.length]!;
    let i = 0;
    let path = r.url.replace(/:(\w+)/g, () => encodeURIComponent(params[i++ % params.length] || 'x'));
    path = encodeSome(path, mask) + tail;
    if (form === 'absolute') path = `http://127.0.0.1:${port}${path}`;
    if (form === 'double-slash') path = path.replace('/', '//');
    if (form === 'dot-segments') path = `/api/./v1/../${path.replace(/^\//, '')}`;
    if (form === 'upper') path = path.toUpperCase();
    return { route: r, target: path };
  });

const bodyArb = fc.oneof(
  fc.constant(undefined),
  fc.json().map((j) => ({ type: 'application/json', bytes: Buffer.from(j) })),
  fc.string({ maxLength: 200 }).map((s) => ({ type: 'application/json', bytes: Buffer.from(`{"path":${s}`) })),
  fc.uint8Array({ maxLength: 512 }).map((b) => ({ type: 'application/octet-stream', bytes: Buffer.from(b) })),
  fc.uint8Array({ maxLength: 256 }).map((b) => ({ type: 'text/plain', bytes: Buffer.from(b) })),
);

test('fuzz: without the token, no random spelling of any route and no body reaches a protected route', async () => {
  await fc.assert(
    // Targets from protected routes only: a mutation of one cannot spell a public route's prefix.
    fc.asyncProperty(targetArb(() => routes.filter((r) => !r.public)), bodyArb, fc.constantFrom('GET', 'POST'), async ({ target }, body, method) => {
      const response = await rawRequest(port, method, target, {
        headers: { authorization: 'Bearer wrong-token', ...(body ? { 'content-type': body.type } : {}) },
        ...(body ? { body: body.bytes } : {}),
      });
      assert.ok([400, 401, 404, 413, 429, 431].includes(response.status), `${method} ${JSON.stringify(target)} answered ${response.status} without the token`);
      assert.ok(response.status >= 400, `${method} ${JSON.stringify(target)} was served without the token`);
    }),
    fuzzParameters(150, 0.05),
  );
});

test('fuzz: with the token, random targets and bodies never make a server error', async () => {
  await fc.assert(
    fc.asyncProperty(targetArb(() => routes), bodyArb, fc.constantFrom('GET', 'POST'), async ({ target }, body, method) => {
      const response = await rawRequest(port, method, target, {
        headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': body.type } : {}) },
        ...(body ? { body: body.bytes } : {}),
      });
      assert.ok(response.status < 500 || response.status === 501 || response.status === 504, `${method} ${JSON.stringify(target)} answered ${response.status}: ${response.body.slice(0, 200)}`);
    }),
    fuzzParameters(150, 0.05),
  );
});
