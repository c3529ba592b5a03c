/**
 * Structured logs (issue 17): a real Depot with its log captured; operators sign in, make
 * tokens, add a PSK bootstrap credential and an OMA DM account, fetch a package link; the
 * captured output has one JSON line per request and none of the secrets used (passwords, API
 * tokens, session cookies, CSRF tokens, PSKs, DM passwords, download tokens).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startDepotServer } from '../../src/app/server.js';
import { scrub, scrubText } from '../../src/observability/logger.js';

test('logs: one JSON line per API request, and no secret ever lands in them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-logs-'));
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const SHARED = 'shared-token-9d8c7b6a5f4e';
  const ADMIN_PASSWORD = 'first-admin-pass-55aa';
  const previous = process.env.DEPOT_ADMIN_PASSWORD;
  process.env.DEPOT_ADMIN_PASSWORD = ADMIN_PASSWORD;
  const server = await startDepotServer({ host: '127.0.0.1', coapPort: 0, coapsPort: null, httpPort: 0, dataDir: dir, allowUnsecured: true, apiToken: SHARED, log: { level: 'debug', destination } });
  if (previous === undefined) delete process.env.DEPOT_ADMIN_PASSWORD;
  else process.env.DEPOT_ADMIN_PASSWORD = previous;
  try {
    assert.deepEqual(server.firstAdmin, { username: 'admin', fromEnv: true });
    const base = `http://127.0.0.1:${(server.api.server.address() as AddressInfo).port}`;
    const post = (path: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${SHARED}` }) =>
      fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const login = await post('/api/v1/login', { username: 'admin', password: ADMIN_PASSWORD }, {});
    assert.equal(login.status, 200);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const csrf = ((await login.json()) as { csrfToken: string }).csrfToken;
    const made = (await (await post('/api/v1/tokens', { name: 'ci', role: 'operator' })).json()) as { token: string };
    const PSK = '00112233445566778899aabbccddeeff';
    assert.equal((await post('/api/v1/bootstrap-credentials', { kind: 'psk', identity: 'factory-batch-7', keyHex: PSK }, { cookie, 'x-csrf-token': csrf })).status, 201);
    const DM_PASSWORD = 'dm-client-password-77';
    assert.equal((await post('/api/v1/omadm/accounts', { deviceId: 'IMEI:490154203237518', clientPassword: DM_PASSWORD }, { authorization: `Bearer ${made.token}` })).status, 201);
    const USER_PASSWORD = 'new-user-password-31';
    assert.equal((await post('/api/v1/users', { username: 'vic', role: 'viewer', password: USER_PASSWORD })).status, 201);
    await post('/api/v1/login', { username: 'vic', password: 'a-wrong-password-x' }, {});
    const DOWNLOAD_TOKEN = 'AbCdEfGhIjKlMnOpQrStUv';
    await fetch(`${base}/pkg/${DOWNLOAD_TOKEN}`);
    await fetch(`${base}/api/v1/devices?after=${SHARED}`, { headers: { authorization: `Bearer ${made.token}x` } });
    await new Promise((r) => setTimeout(r, 50));
    const requests = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'api request');
    assert.ok(requests.length >= 8, `${requests.length} request lines`);
    for (const r of requests) {
      assert.equal(typeof r.level, 'string');
      assert.equal(typeof r.time, 'string');
      assert.equal(typeof r.route, 'string');
      assert.equal(typeof r.status, 'number');
    }
    assert.ok(requests.some((r) => r.route === "/pkg/:token" && r.status === 404), `the route pattern, not the path: ${JSON.stringify(requests.map((r) => [r.route, r.status]))}`);
    assert.ok(requests.some((r) => r.actor === 'user:admin' && r.route === '/api/v1/bootstrap-credentials'));
    const text = lines.join('\n');
    const secrets = { SHARED, ADMIN_PASSWORD, cookie: cookie.split('=')[1]!, csrf, apiToken: made.token, apiTokenSecret: made.token.slice(-32), PSK, DM_PASSWORD, USER_PASSWORD, wrong: 'a-wrong-password-x', DOWNLOAD_TOKEN };
    for (const [name, secret] of Object.entries(secrets)) assert.ok(!text.includes(secret), `${name} appears in the logs`);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('scrub: secret-named keys are replaced at any depth, token-shaped text is masked', () => {
  assert.deepEqual(scrub({ a: { password: 'x', nested: [{ keyHex: 'ff', psk: 'k', pin: '1234' }] }, msg: 'GET /pkg/abc123 with Bearer xyz and dpt_aaaa_bbbb' }), {
    a: { password: '[redacted]', nested: [{ keyHex: '[redacted]', psk: '[redacted]', pin: '[redacted]' }] },
    msg: 'GET /pkg/[redacted] with Bearer [redacted] and dpt_[redacted]',
  });
  assert.equal(scrubText('cookie depot_session=abc.def; x'), 'cookie depot_session=[redacted]; x');
});
