/**
 * The operator CLI against a running Depot (issue 17): `depot login` with a password on stdin
 * writes the config file (0600) with the URL and a new token, `depot users` and `depot tokens`
 * use it; a viewer's token gets exit code 4; a port in use is reported with the flag that
 * changes it. (Every command's --help: cli-help.test.ts.)
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApiTestServer, type ApiTestServer } from '../support/api-server.js';
import { runDepot } from '../support/cli.js';

const TOKEN = 'cli-accounts-token-71c2';
const PASSWORD = 'cli-admin-password-9';
let server: ApiTestServer;
let url: string;
let home: string;

function depot(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runDepot(args, { DEPOT_CONFIG: join(home, 'depot', 'config.json'), ...options.env }, options.input ?? '');
}

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'depot-cli-home-'));
  const previous = process.env.DEPOT_ADMIN_PASSWORD;
  process.env.DEPOT_ADMIN_PASSWORD = PASSWORD;
  server = await startApiTestServer('cli-accounts', TOKEN);
  if (previous === undefined) delete process.env.DEPOT_ADMIN_PASSWORD;
  else process.env.DEPOT_ADMIN_PASSWORD = previous;
  url = `http://127.0.0.1:${server.port}`;
});

after(async () => {
  await server.close();
  rmSync(home, { recursive: true, force: true });
});

test('depot login writes the URL and a new token to a 0600 config file; users and tokens work from it', async () => {
  const wrong = await depot(['login', '--url', url, '--username', 'admin', '--password-stdin'], { input: 'not-the-password\n' });
  assert.equal(wrong.code, 4, wrong.stderr);
  assert.match(wrong.stderr, /wrong username or password/);
  const login = await depot(['login', '--url', url, '--username', 'admin', '--password-stdin', '--name', 'test-laptop'], { input: PASSWORD + '\n' });
  assert.equal(login.code, 0, login.stderr);
  assert.match(login.stdout, /signed in to http:\/\/127\.0\.0\.1:\d+ as admin \(admin\)/);
  const file = join(home, 'depot', 'config.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const config = JSON.parse(readFileSync(file, 'utf8')) as { url: string; token: string };
  assert.equal(config.url, url);
  assert.match(config.token, /^dpt_/);
  assert.ok(!login.stdout.includes(config.token), 'the token is not printed');

  const added = await depot(['users', 'add', 'carl', '--role', 'viewer', '--password-stdin'], { input: 'carl-password-123\n' });
  assert.equal(added.code, 0, added.stderr);
  const list = await depot(['users', 'list', '--json']);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual((JSON.parse(list.stdout) as { users: { username: string; role: string }[] }).users.map((u) => [u.username, u.role]), [['admin', 'admin'], ['carl', 'viewer']]);
  const made = await depot(['tokens', 'create', 'prometheus', '--role', 'viewer', '--days', '30', '--json']);
  assert.equal(made.code, 0, made.stderr);
  const token = JSON.parse(made.stdout) as { id: string; token: string };
  const metrics = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token.token}` } });
  assert.equal(metrics.status, 200);
  const tokens = await depot(['tokens', 'list']);
  assert.match(tokens.stdout, /prometheus\s+viewer/);
  assert.match(tokens.stdout, /test-laptop\s+admin\s+admin/);
  // A viewer's token may not manage users: exit code 4, with the server's reason.
  const refused = await depot(['users', 'list', '--token', token.token, '--url', url]);
  assert.equal(refused.code, 4);
  assert.match(refused.stderr, /needs the admin role/);
  assert.equal((await depot(['tokens', 'revoke', token.id])).code, 0);
  assert.equal((await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token.token}` } })).status, 401);
  assert.equal((await depot(['users', 'set-role', 'carl', 'operator'])).code, 0);
  assert.equal((await depot(['users', 'remove', 'carl'])).code, 0);
  // Usage errors are exit code 2.
  assert.equal((await depot(['users', 'set-role', 'admin', 'boss'])).code, 2);
  assert.equal((await depot(['tokens', 'frobnicate'])).code, 2);
});

test('a port already in use is reported with the flag that changes it', async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as { port: number }).port;
  try {
    const r = await depot(['serve', '--host', '127.0.0.1', '--http-port', String(port), '--coap-port', '0', '--coaps-port', 'off', '--data-dir', join(home, 'busy-data')], { env: { DEPOT_ADMIN_PASSWORD: 'busy-port-password' } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`port ${port} is already in use \\(--http-port\\); choose another with --http-port <port>`));
  } finally {
    blocker.close();
  }
});
