/**
 * Errors and the OpenAPI document over real sockets against `depot serve`'s own wiring
 * (issue 17: "OpenAPI 3 at /api/openapi.json generated from the same schemas that validate
 * requests; errors as application/problem+json with clear messages"; RFC 9457 §3.1 members).
 *
 * Every route the app registered is in the document (read from the app, so a route another
 * area adds later is checked without editing this file). Then every operation of the document
 * is called with bad input — without credentials, with a parameter that breaks its schema, an
 * unknown query member, a body that is not JSON, a media type nobody takes, a method the path
 * does not have — and each answer must be a problem document: the problem+json media type,
 * type/title/status/detail/error, `status` equal to the HTTP status and a detail a person can read.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { STATUS_CODES } from 'node:http';
import { startApiTestServer, type ApiTestServer } from '../support/api-server.js';
import { registeredRoutes } from '../../src/api/auth.js';
import { rawRequest, type RawResponse } from '../support/api-client.js';

const TOKEN = 'problems-test-token-5c1d';
const AUTH = { authorization: `Bearer ${TOKEN}` };
let testServer: ApiTestServer;
let port: number;

interface Operation {
  parameters?: { name: string; in: 'path' | 'query'; schema: Record<string, unknown> }[];
  requestBody?: { content: Record<string, unknown> };
  security: unknown[];
  responses: Record<string, { content?: Record<string, unknown> }>;
  'x-depot-access': string;
}
let doc: { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } };

before(async () => {
  testServer = await startApiTestServer('problems', TOKEN, { authThrottle: { maxFailures: Number.MAX_SAFE_INTEGER } });
  port = testServer.port;
  const answer = await rawRequest(port, 'GET', '/api/openapi.json');
  assert.equal(answer.status, 200);
  doc = JSON.parse(answer.body) as typeof doc;
});

after(() => testServer.close());

/** Asserts the answer is a problem document with a status in `statuses`; returns its body. */
function assertProblem(answer: RawResponse, statuses: number[], what: string): Record<string, unknown> {
  assert.ok(statuses.includes(answer.status), `${what}: status ${answer.status} (wanted ${statuses.join(' or ')}): ${answer.body.slice(0, 200)}`);
  assert.match(answer.headers['content-type'] ?? '', /^application\/problem\+json/, `${what}: content type ${answer.headers['content-type']}`);
  const body = JSON.parse(answer.body) as Record<string, unknown>;
  assert.equal(body.type, 'about:blank', what);
  assert.equal(body.status, answer.status, what);
  assert.equal(body.title, STATUS_CODES[answer.status], what);
  assert.equal(typeof body.error, 'string', what);
  assert.match(body.error as string, /^[A-Z][A-Z0-9_]+$/, what);
  assert.equal(typeof body.detail, 'string', what);
  assert.ok((body.detail as string).length >= 10, `${what}: detail too short to help: ${String(body.detail)}`);
  assert.equal(body.message, body.detail, what);
  return body;
}

const fill = (url: string, value: string) => url.replace(/\{(\w+)\}/g, () => value);

test('every registered route (the table, metrics, the console, package links, this document) is in /api/openapi.json, with its access and parameters', () => {
  const routes = registeredRoutes(testServer.server.api).filter((r) => r.method !== 'HEAD');
  assert.ok(routes.length > 60, `only ${routes.length} routes`);
  const missing: string[] = [];
  for (const r of routes) {
    const operation = doc.paths[r.url.replace(/:(\w+)/g, '{$1}')]?.[r.method.toLowerCase()];
    if (!operation) {
      missing.push(`${r.method} ${r.url}`);
      continue;
    }
    assert.equal(operation['x-depot-access'], r.access, `${r.method} ${r.url}`);
    assert.equal(operation.security.length === 0, r.public, `${r.method} ${r.url}: security`);
    const pathParams = (operation.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort();
    assert.deepEqual(pathParams, [...r.url.matchAll(/:(\w+)/g)].map((m) => m[1]).sort(), `${r.method} ${r.url}: path parameters`);
  }
  assert.deepEqual(missing, []);
  // Sessions, login, logout, users, roles and tokens are there like the rest.
  for (const [method, path] of [['post', '/api/v1/login'], ['post', '/api/v1/logout'], ['get', '/api/v1/session'], ['get', '/api/v1/users'], ['post', '/api/v1/users'], ['get', '/api/v1/roles'], ['get', '/api/v1/tokens'], ['post', '/api/v1/tokens/{id}/revoke'], ['get', '/api/openapi.json'], ['get', '/metrics']] as const) {
    assert.ok(doc.paths[path]?.[method], `${method} ${path}`);
  }
});

test('the document shows the schemas that validate: the same parameter patterns and bodies, errors as the Problem schema', async () => {
  const device = doc.paths['/api/v1/devices/{endpoint}']!.get!;
  const endpoint = device.parameters!.find((p) => p.name === 'endpoint')!;
  assert.equal(endpoint.schema.maxLength, 255);
  assert.equal(typeof endpoint.schema.pattern, 'string');
  // The pattern the document shows is the one requests are checked against: a control byte breaks it.
  assert.ok(!new RegExp(endpoint.schema.pattern as string).test('a\u0001b'));
  assertProblem(await rawRequest(port, 'GET', '/api/v1/devices/a%01b', { headers: AUTH }), [400], 'control byte in a parameter');
  const users = doc.paths['/api/v1/users']!.post!;
  const schema = (users.requestBody!.content['application/json'] as { schema: { required: string[]; properties: Record<string, { enum?: string[] }> } }).schema;
  assert.deepEqual(schema.required, ['username', 'role', 'password']);
  assert.deepEqual(schema.properties.role!.enum, ['admin', 'operator', 'viewer']);
  // A body the document's schema refuses is refused by the route, naming what is wrong.
  const refused = assertProblem(await rawRequest(port, 'POST', '/api/v1/users', { headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ username: 'zed', role: 'root', password: 'long enough password' }) }), [400], 'bad role');
  assert.match(refused.detail as string, /role/);
  assert.ok(doc.components.schemas.Problem);
  assert.deepEqual(Object.keys(device.responses['404']!.content!), ['application/problem+json']);
});

test('every operation in the document answers bad input with a problem document', async () => {
  const failures: string[] = [];
  let calls = 0;
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const M = method.toUpperCase();
      const params = operation.parameters ?? [];
      const hasPath = params.some((p) => p.in === 'path');
      const hasQuery = params.some((p) => p.in === 'query');
      const content = Object.keys(operation.requestBody?.content ?? {});
      const good = fill(path, 'sample-1');
      const tries: { what: string; target: string; method: string; headers: Record<string, string>; body?: string; statuses: number[] }[] = [];
      if (operation.security.length > 0) tries.push({ what: 'no credentials', target: good, method: M, headers: {}, statuses: [401] });
      if (operation.security.length > 0) tries.push({ what: 'a wrong token', target: good, method: M, headers: { authorization: 'Bearer dpt_AAAAAAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB' }, statuses: [401] });
      // A parameter with a control byte: refused by its schema (routes outside the table check theirs: unknown, 404).
      if (hasPath) tries.push({ what: 'a control byte in a path parameter', target: fill(path, 'x%01y'), method: M, headers: AUTH, statuses: [400, 404] });
      if (hasQuery) tries.push({ what: 'an unknown query member', target: `${good}?no_such_member=1`, method: M, headers: AUTH, statuses: [400] });
      if (content.includes('application/json')) tries.push({ what: 'a body that is not JSON', target: good, method: M, headers: { ...AUTH, 'content-type': 'application/json' }, body: '{"unterminated": ', statuses: [400] });
      if (M === 'POST') tries.push({ what: 'a media type nobody takes', target: good, method: M, headers: { ...AUTH, 'content-type': 'application/x-no-such-type' }, body: 'x', statuses: [415] });
      // A method the path does not have: 405 with Allow.
      const other = ['PUT', 'DELETE', 'PATCH'].find((m) => !operations[m.toLowerCase()])!;
      tries.push({ what: `${other} (not a method of the path)`, target: good, method: other, headers: AUTH, statuses: [405] });
      for (const t of tries) {
        calls++;
        const answer = await rawRequest(port, t.method, t.target, { headers: t.headers, ...(t.body !== undefined ? { body: t.body } : {}) });
        try {
          assertProblem(answer, t.statuses, `${t.method} ${t.target}: ${t.what}`);
          if (answer.status === 405) assert.match(answer.headers.allow ?? '', new RegExp(`\\b${M}\\b`), `${t.method} ${t.target}: Allow ${answer.headers.allow}`);
          if (answer.status === 401) assert.match(answer.headers['www-authenticate'] ?? '', /^Bearer/);
        } catch (error) {
          failures.push(`${method} ${path}: ${(error as Error).message.split('\n')[0]}`);
        }
      }
    }
  }
  assert.deepEqual(failures, []);
  assert.ok(calls > 200, `only ${calls} calls`);
});

test('the framework answers problems too: unknown route, too large a body, a URL that does not decode, a package link that is no capability', async () => {
  const unknown = assertProblem(await rawRequest(port, 'GET', '/api/v1/no-such-thing', { headers: AUTH }), [404], 'unknown route');
  assert.equal(unknown.error, 'UNKNOWN_ROUTE');
  // Anonymous callers learn nothing about which routes exist.
  assertProblem(await rawRequest(port, 'GET', '/api/v1/no-such-thing'), [401], 'unknown route, anonymous');
  const big = assertProblem(await rawRequest(port, 'POST', '/api/v1/users', { headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ username: 'x', role: 'viewer', password: 'p'.repeat(200_000) }) }), [413], 'too large');
  assert.equal(big.error, 'PAYLOAD_TOO_LARGE');
  assertProblem(await rawRequest(port, 'GET', '/api/v1/devices/%E0%A4%A', { headers: AUTH }), [400], 'a URL that does not decode');
  const link = assertProblem(await rawRequest(port, 'GET', '/pkg/not-a-token'), [404], 'unknown package link');
  assert.equal(link.error, 'NOT_FOUND');
  const method = assertProblem(await rawRequest(port, 'DELETE', '/api/v1/devices', { headers: AUTH }), [405], 'DELETE on a list');
  assert.match(method.detail as string, /DELETE is not allowed on \/api\/v1\/devices; it takes GET, HEAD/);
});
