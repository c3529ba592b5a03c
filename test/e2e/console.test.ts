/**
 * The web console in a real browser (issue 17): Debian's Chromium driven by playwright-core
 * against a real `depot serve` process with a simulated fleet. An admin signs in, sees the
 * fleet, finds a device, uploads a package (with the progress bar), installs it on a device
 * and sees the job in the device's history; a viewer sees no operator buttons and the API
 * refuses the action when the viewer tries it anyway. A second admin session opens the inventory
 * and a device (explain selection), starts a campaign on the simulated fleet with the package in
 * two waves (the second approved in the page), watches it finish live (server-sent events), sees
 * the device's install chain history and pins and unpins a method in the learned table; the
 * viewer sees no campaign form or action and no pin, and the API refuses each one. Screenshots of the main pages are taken
 * each run (into docs/screenshots with DEPOT_UPDATE_SCREENSHOTS=1, else a temporary folder).
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { freeTcpPort } from '../support/udp-probe.js';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const ADMIN_PASSWORD = 'e2e-admin-password-42';
const VIEWER_PASSWORD = 'e2e-viewer-password-42';
const FLEET = 6;
let dir: string;
let serve: ChildProcess;
let base: string;
let sharedToken: string;
const shots = process.env.DEPOT_UPDATE_SCREENSHOTS === '1' ? join(process.cwd(), 'docs/screenshots') : undefined;
let shotDir: string;

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function apiJson(path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(base + path, { ...init, headers: { authorization: `Bearer ${sharedToken}`, 'content-type': 'application/json', ...init.headers } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-e2e-'));
  shotDir = shots ?? join(dir, 'screenshots');
  mkdirSync(shotDir, { recursive: true });
  const httpPort = await freeTcpPort();
  base = `http://127.0.0.1:${httpPort}`;
  serve = spawn(process.execPath, [CLI, 'serve', '--host', '127.0.0.1', '--http-port', String(httpPort), '--coap-port', '0', '--coaps-port', 'off', '--allow-unsecured', '--sim', String(FLEET), '--data-dir', join(dir, 'data'), '--log-level', 'warn'], {
    env: { ...process.env, DEPOT_ADMIN_PASSWORD: ADMIN_PASSWORD, DEPOT_API_TOKEN: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  serve.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  serve.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await waitFor('depot serve to be ready', () => (out.includes('depot: ready') ? true : serve.exitCode !== null ? Promise.reject(new Error(`depot serve exited: ${out}`)) : undefined));
  assert.match(out, /depot: first admin "admin" created with the password of DEPOT_ADMIN_PASSWORD/);
  assert.ok(!out.includes(ADMIN_PASSWORD), 'the password from the environment is not printed');
  sharedToken = readFileSync(join(dir, 'data', 'api-token'), 'utf8').trim();
  // The simulated fleet registers.
  await waitFor('the simulated fleet', async () => {
    const devices = await apiJson('/api/v1/fleet/devices?limit=100');
    return (devices.body.total as number) >= FLEET ? true : undefined;
  });
});

/** Debian's Chromium with a fresh profile directory of its own (one per browser, so sessions never mix). */
function launch(profile: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(join(dir, `chromium-${profile}`), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

after(async () => {
  if (serve && serve.exitCode === null) {
    const exited = new Promise((r) => serve.once('exit', r));
    serve.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
});

async function signIn(page: Page, username: string, password: string): Promise<void> {
  await page.goto(base + '/');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

async function shot(page: Page, name: string): Promise<void> {
  const file = join(shotDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  assert.ok(statSync(file).size > 5000, `${name}.png is not empty`);
}

function buildPackage(): string {
  const content = join(dir, 'hello');
  mkdirSync(content, { recursive: true });
  writeFileSync(join(content, 'hello.txt'), 'hello from the console test\n'.repeat(4000));
  // Incompressible bytes, so the upload takes long enough on the throttled link to show its progress bar.
  writeFileSync(join(content, 'noise.bin'), randomBytes(48 * 1024));
  const file = join(dir, 'hello-1.0.0.dpkg');
  const built = spawnSync(process.execPath, [CLI, 'package', 'build', content, '--name', 'hello', '--version', '1.0.0', '--key', join(dir, 'data', 'demo-signing', 'depot-demo.key.pem'), '--out', file], { encoding: 'utf8' });
  assert.equal(built.status, 0, built.stderr);
  return file;
}

test('an admin signs in, sees the fleet, uploads a package with a progress bar, installs it on a device and sees the job in its history', async () => {
  const context = await launch('admin');
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors: string[] = [];
  // Script errors (the 401 of the session probe before signing in is an expected answer, not one).
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  page.on('console', (m) => m.type() === 'error' && !/status of 401/.test(m.text()) && consoleErrors.push(m.text()));
  // The login page, the first thing a new user sees.
  await page.goto(base + '/');
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await shot(page, 'login');
  // A wrong password is refused with a message.
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'wrong username or password' }).waitFor();
  await signIn(page, 'admin', ADMIN_PASSWORD);
  // Dashboard: fleet counts and the make/model table.
  await page.getByTestId('devices-total').filter({ hasText: String(FLEET) }).waitFor();
  await page.getByRole('heading', { name: 'Fleet by make, model and OS' }).waitFor();
  await shot(page, 'dashboard');
  // Devices: the table, server-side search and sort.
  await page.getByRole('link', { name: 'LwM2M devices', exact: true }).click();
  await page.getByTestId('device-count').filter({ hasText: `of ${FLEET} devices` }).waitFor();
  const first = (await page.locator('tbody tr td:first-child a').first().textContent())!;
  await page.getByRole('button', { name: /^Endpoint/ }).click();
  await page.locator('th[aria-sort="descending"]').waitFor();
  await page.getByLabel('Search (start of endpoint, make or model)').fill(first);
  await page.getByTestId('device-count').filter({ hasText: /of 1 devices/ }).waitFor();
  await shot(page, 'devices');
  // Packages: upload with the progress bar. The browser's link is throttled (16 kB/s up, Chromium's
  // network emulation) so the bar is on screen while the bytes go; it shows bytes sent of the file's size.
  await page.getByRole('link', { name: 'Packages' }).click();
  const file = buildPackage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 16 * 1024 });
  await page.getByLabel('Depot package file').setInputFiles(file);
  await page.getByTestId('upload-button').click();
  const bar = page.locator('progress#upload-progress');
  await bar.waitFor();
  assert.equal(Number(await bar.getAttribute('max')), statSync(file).size);
  await page.getByText(new RegExp(`^Uploading [\\d.]+ k?B of ${(statSync(file).size / 1e3).toFixed(1)} kB$`)).waitFor();
  await shot(page, 'package-upload');
  await page.getByRole('status').filter({ hasText: 'Added hello 1.0.0' }).waitFor({ timeout: 60_000 });
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  assert.equal(await bar.count(), 0, 'the bar is gone once the upload is done');
  await page.getByTestId('packages').getByText('hello').waitFor();
  await shot(page, 'packages');
  // The package's page: targets, and which devices would get it (no targets: every device of the fleet).
  await page.getByTestId('packages').getByRole('link', { name: 'hello' }).click();
  await page.getByRole('heading', { name: 'Package hello 1.0.0' }).waitFor();
  await page.getByTestId('targets').waitFor();
  await page.getByTestId('would-get').click();
  await page.getByTestId('would-get-count').filter({ hasText: `${FLEET} of ${FLEET} devices judged would get it` }).waitFor();
  assert.equal(await page.getByTestId('would-get-devices').locator('tbody tr').count(), FLEET);
  await shot(page, 'package');
  // A device: facts, install, history.
  await page.goto(`${base}/#/devices/${encodeURIComponent(first)}`);
  await page.getByRole('heading', { name: 'Facts' }).waitFor();
  await page.getByLabel('Package', { exact: true }).selectOption({ label: 'hello 1.0.0' });
  await page.getByTestId('install-button').click();
  await page.getByRole('status').filter({ hasText: /Install job .* started/ }).waitFor();
  await page.getByTestId('history').getByText('install', { exact: false }).first().waitFor();
  // The job runs to its end on the simulated device; the history shows its final state.
  await waitFor('the install to finish', async () => {
    await page.reload();
    const state = await page.getByTestId('history').locator('tbody tr').first().locator('td').nth(3).textContent();
    return state === 'succeeded' || state === 'failed' ? state : undefined;
  }, 90_000).then((state) => assert.equal(state, 'succeeded'));
  await page.getByRole('button', { name: 'Read from the device' }).click();
  await page.getByRole('cell', { name: 'hello', exact: true }).waitFor();
  await shot(page, 'device');
  // Bootstrap queue and users pages render.
  await page.getByRole('link', { name: 'Bootstrap' }).click();
  await page.getByRole('heading', { name: 'Bootstrap queue' }).waitFor();
  await shot(page, 'bootstrap');
  // SMS and OMA DM: each part answers or says it is not enabled (this server runs neither SMS nor DM).
  const errorsBefore = consoleErrors.length;
  await page.getByRole('link', { name: 'SMS & OMA DM' }).click();
  await page.getByRole('heading', { name: 'SMS outbox' }).waitFor();
  const smsStatus = (await fetch(`${base}/api/v1/sms/outbox`, { headers: { authorization: `Bearer ${sharedToken}` } })).status;
  await (smsStatus === 404 ? page.getByTestId('sms-off') : page.getByText(/^Gateway:/)).waitFor();
  const dmStatus = (await fetch(`${base}/api/v1/omadm/bootstrap`, { headers: { authorization: `Bearer ${sharedToken}` } })).status;
  await (dmStatus === 404 ? page.getByTestId('omadm-off') : page.getByText(/^No OMA DM bootstraps\.$|^Phone number$/).first()).waitFor();
  // The browser logs the expected 404 of a part that is not enabled; nothing else may appear.
  consoleErrors.splice(errorsBefore, consoleErrors.length - errorsBefore, ...consoleErrors.slice(errorsBefore).filter((e) => !/status of 404/.test(e)));
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByLabel('Username', { exact: true }).fill('vera');
  await page.locator('#new-role').selectOption('viewer');
  await page.getByLabel('Password (10 characters or more)').fill(VIEWER_PASSWORD);
  await page.getByRole('button', { name: 'Add user' }).click();
  await page.getByRole('status').filter({ hasText: 'User vera added (viewer).' }).waitFor();
  await shot(page, 'users');
  assert.deepEqual(consoleErrors, []);
  await context.close();
});

test('an admin opens the inventory and a device, runs a campaign on the simulated fleet and watches it finish live, and reads the learned methods table', async () => {
  const context = await launch('admin-campaign');
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors: string[] = [];
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  page.on('console', (m) => m.type() === 'error' && !/status of 401/.test(m.text()) && consoleErrors.push(m.text()));
  await signIn(page, 'admin', ADMIN_PASSWORD);
  // Inventory: every device, then the server-side filter by make.
  await page.getByRole('link', { name: 'Inventory', exact: true }).click();
  await page.getByTestId('inventory-count').filter({ hasText: `devices 1–${FLEET}` }).waitFor();
  const acme = (await apiJson('/api/v1/inventory/devices?make=Acme&limit=1000')).body.devices as { id: string; identities: { lwm2mEndpoint: string } }[];
  assert.ok(acme.length > 0 && acme.length < FLEET, 'the demo fleet has Acme devices and others');
  await page.getByLabel('Make', { exact: true }).fill('acme');
  await page.getByTestId('inventory-count').filter({ hasText: `devices 1–${acme.length}` }).waitFor();
  assert.equal(await page.getByTestId('inventory').locator('tbody tr').count(), acme.length);
  assert.deepEqual(await page.getByTestId('inventory').locator('tbody tr td:nth-child(2)').allTextContents(), acme.map(() => 'Acme'));
  await page.getByLabel('Protocol').selectOption('omadm');
  await page.getByTestId('inventory-count').filter({ hasText: 'No devices match.' }).waitFor();
  await page.getByLabel('Protocol').selectOption('lwm2m');
  await page.getByTestId('inventory-count').filter({ hasText: `devices 1–${acme.length}` }).waitFor();
  await shot(page, 'inventory');
  // A device: identities, protocols with last contact, explain selection.
  const device = acme[0]!;
  await page.getByRole('link', { name: device.identities.lwm2mEndpoint, exact: true }).click();
  await page.getByRole('heading', { name: 'Identities' }).waitFor();
  await page.getByTestId('protocols').getByRole('cell', { name: 'LwM2M', exact: true }).waitFor();
  await page.getByRole('button', { name: 'Explain selection' }).click();
  await page.getByTestId('selection').getByText('Would get hello 1.0.0').waitFor();
  // A campaign on the whole simulated fleet with the package, in two waves, the second waiting
  // for approval: the page follows it by server-sent events (it is never reloaded here).
  await page.getByRole('link', { name: 'Campaigns', exact: true }).click();
  await page.getByLabel('Name', { exact: true }).fill('console rollout');
  await page.getByLabel('Package', { exact: true }).selectOption({ label: 'hello 1.0.0' });
  await page.getByLabel('Waves (cumulative %, e.g. 10, 50, 100)').fill('50, 100');
  await page.getByLabel('Wait for my approval before each wave after the first').check();
  await page.getByLabel('At most at once').fill('2');
  await page.getByLabel('Pause one model past failures (%)').fill('60');
  await page.getByTestId('create-campaign').click();
  await page.getByRole('heading', { name: 'Campaign console rollout' }).waitFor();
  const id = decodeURIComponent(new URL(page.url()).hash.replace('#/campaigns/', ''));
  assert.match(id, /^cmp_/);
  const campaignNow = async (error: Error) => {
    throw new Error(`${error.message}\ncampaign: ${JSON.stringify((await apiJson(`/api/v1/campaigns/${id}`)).body).slice(0, 3000)}`);
  };
  await page.getByTestId('campaign-state').filter({ hasText: 'awaiting-approval' }).waitFor({ timeout: 90_000 }).catch(campaignNow);
  assert.equal(await page.getByTestId('waves').locator('tbody tr').count(), 2);
  await page.getByRole('button', { name: 'Approve wave 2' }).click();
  await page.getByTestId('campaign-state').filter({ hasText: 'completed' }).waitFor({ timeout: 90_000 }).catch(campaignNow);
  const progress = (await apiJson(`/api/v1/campaigns/${id}`)).body as { totals: { succeeded: number; total: number }; campaign: { spec: { package: { sha256: string } } } };
  assert.equal(progress.totals.total, FLEET);
  assert.equal(progress.totals.succeeded, FLEET, 'every simulated device installs the package');
  await page.getByTestId('campaign-totals').filter({ hasText: `${FLEET} succeeded, 0 failed, 0 running, 0 pending of ${FLEET}` }).waitFor();
  await page.getByTestId('progress-chart').waitFor();
  assert.match((await page.getByTestId('progress-chart').getAttribute('aria-label'))!, new RegExp(`${FLEET} of ${FLEET} devices succeeded`));
  await page.getByTestId('members').locator('tbody tr').nth(FLEET - 1).waitFor();
  assert.deepEqual(await page.getByTestId('members').locator('tbody tr td:nth-child(4)').allTextContents(), Array(FLEET).fill('succeeded'));
  await page.getByTestId('campaign-methods').getByRole('rowheader', { name: 'object9' }).waitFor();
  // The form's rules reached the campaign; success by model and by method as charts.
  await page.getByText(/a model alone past 60 %.*at most 2 at once/).waitFor();
  assert.match((await page.getByTestId('models-chart').getAttribute('aria-label'))!, /^Success by model: .* succeeded, 0 failed/);
  assert.match((await page.getByTestId('methods-chart').getAttribute('aria-label'))!, new RegExp(`^Success by install method: object9 ${FLEET} succeeded, 0 failed$`));
  // The chart's history is the server's: a fresh page (no live samples) draws the same end state.
  const history = (await apiJson(`/api/v1/campaigns/${id}/history`)).body as { samples: { ended: number; succeeded: number; total: number }[] };
  assert.ok(history.samples.length >= 2, JSON.stringify(history));
  assert.deepEqual(history.samples.at(-1), { ...history.samples.at(-1)!, ended: FLEET, succeeded: FLEET, total: FLEET });
  await page.reload();
  await page.getByTestId('progress-chart').waitFor();
  assert.match((await page.getByTestId('progress-chart').getAttribute('aria-label'))!, new RegExp(`${FLEET} of ${FLEET} devices succeeded`));
  // Nothing failed, so there is nothing to retry; a completed campaign has no pause or cancel.
  assert.equal(await page.getByRole('button', { name: /Retry|Pause|Cancel campaign/ }).count(), 0);
  await shot(page, 'campaign');
  await page.getByRole('link', { name: '← Campaigns' }).click();
  await page.getByTestId('campaigns').getByRole('link', { name: 'console rollout' }).waitFor();
  await shot(page, 'campaigns');
  // The device's install chain history: the campaign's attempt with method, outcome and result.
  await page.goto(`${base}/#/inventory/${encodeURIComponent(device.id)}`);
  const chain = page.getByTestId('chain-history');
  await chain.waitFor();
  const attempt = chain.locator('tbody tr:has(td)').filter({ hasText: 'object9' }).first();
  assert.equal(await attempt.locator('td').nth(3).textContent(), 'succeeded');
  // The result code with its numbers on the wire and what it means.
  assert.equal(await attempt.locator('td').nth(4).textContent(), 'INSTALLED (seed 2, registry 2)The software was installed successfully.');
  await shot(page, 'inventory-device');
  // The learned table: the campaign's installs are counted; pin and unpin a method for a model.
  await page.getByRole('link', { name: 'Install methods' }).click();
  const acmeModel = page.getByTestId('method-model').filter({ has: page.getByRole('heading', { name: 'Acme Rocket-1' }) });
  await acmeModel.getByRole('rowheader', { name: 'object9' }).waitFor();
  const learned = (await apiJson('/api/v1/install-methods?make=Acme&model=Rocket-1')).body as { stats: { method: string; successes: number }[] };
  const object9 = learned.stats.find((s) => s.method === 'object9')!;
  assert.ok(object9.successes >= 1);
  assert.equal(await acmeModel.locator('tbody tr').filter({ hasText: 'object9' }).first().locator('td').nth(1).textContent(), String(object9.successes));
  await acmeModel.getByLabel('Method for Acme Rocket-1').selectOption('scomo');
  await acmeModel.getByRole('button', { name: 'Pin', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'scomo pinned (always first) for Acme Rocket-1.' }).waitFor();
  const rules = (await apiJson('/api/v1/install-methods?make=Acme&model=Rocket-1')).body.rules as { method: string; rule: string }[];
  assert.deepEqual(rules.map((r) => [r.method, r.rule]), [['scomo', 'pin']]);
  await shot(page, 'methods');
  await acmeModel.getByRole('button', { name: 'Remove pin of scomo' }).click();
  await page.getByRole('status').filter({ hasText: 'learning decides again' }).waitFor();
  assert.deepEqual((await apiJson('/api/v1/install-methods?make=Acme&model=Rocket-1')).body.rules, []);
  assert.deepEqual(consoleErrors, []);
  await context.close();
});

test("an operator opens a failed device's history: the failed job, its result code and what it means, every transition", async () => {
  // A vendor image relayed byte for byte that is no Depot package: the simulated device's integrity check refuses it.
  const upload = await fetch(`${base}/api/v1/packages?format=opaque&name=broken&version=1.0&type=application%2Fx-depot-test`, { method: 'POST', headers: { authorization: `Bearer ${sharedToken}`, 'content-type': 'application/octet-stream' }, body: randomBytes(4096) });
  assert.equal(upload.status, 201, await upload.clone().text());
  const broken = (await upload.json()) as { sha256: string };
  const endpoint = ((await apiJson('/api/v1/fleet/devices?limit=1&sort=endpoint&dir=desc')).body.devices as { endpoint: string }[])[0]!.endpoint;
  const started = await apiJson(`/api/v1/devices/${encodeURIComponent(endpoint)}/installs`, { method: 'POST', body: JSON.stringify({ package: broken.sha256, method: 'pull' }) });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  const jobId = started.body.id as string;
  const ended = await waitFor('the install to fail', async () => {
    const job = (await apiJson(`/api/v1/installs/${jobId}`)).body as { state: string; result: string | null };
    return ['failed', 'succeeded', 'cancelled'].includes(job.state) ? job : undefined;
  }, 90_000);
  assert.equal(ended.state, 'failed');
  assert.ok(ended.result, 'the device reported a result code');
  const meaning = ((await apiJson('/api/v1/result-codes')).body.results as { name: string; meaning: string }[]).find((r) => r.name === ended.result)!;
  assert.ok(meaning, `${ended.result} is a known result code`);

  const context = await launch('failed-history');
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors: string[] = [];
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.getByRole('link', { name: 'LwM2M devices', exact: true }).click();
  await page.getByRole('link', { name: endpoint, exact: true }).click();
  const row = page.getByTestId('history').locator('tbody tr').filter({ hasText: jobId });
  await row.waitFor();
  assert.equal(await row.locator('td').nth(3).textContent(), 'failed');
  assert.match((await row.locator('td').nth(4).textContent())!, new RegExp(`^${ended.result}`));
  assert.equal(await row.getByTestId('result-meaning').textContent().then((t) => t!.startsWith(meaning.meaning)), true);
  await shot(page, 'device-failed');
  await row.getByRole('link').click();
  await page.getByRole('heading', { name: 'Transitions' }).waitFor();
  const states = await page.locator('table tbody tr td:nth-child(3)').allTextContents();
  assert.equal(states.at(-1), 'failed', states.join(' → '));
  assert.ok(states.length >= 2);
  assert.deepEqual(consoleErrors, []);
  await context.close();
});

test('a viewer sees no operator actions, and the API refuses them when tried anyway', async () => {
  const context = await launch('viewer');
  const page = context.pages()[0] ?? (await context.newPage());
  await signIn(page, 'vera', VIEWER_PASSWORD);
  assert.equal(await page.getByTestId('role').textContent(), 'viewer');
  // Admin pages are not in the navigation.
  assert.equal(await page.getByRole('link', { name: 'Users' }).count(), 0);
  await page.getByRole('link', { name: 'Packages' }).click();
  await page.getByRole('heading', { name: 'Catalog' }).waitFor();
  assert.equal(await page.getByTestId('upload-button').count(), 0, 'no upload for a viewer');
  const devices = await apiJson('/api/v1/fleet/devices?limit=1');
  const endpoint = (devices.body.devices as { endpoint: string }[])[0]!.endpoint;
  await page.goto(`${base}/#/devices/${encodeURIComponent(endpoint)}`);
  await page.getByRole('heading', { name: 'Install history' }).waitFor();
  assert.equal(await page.getByTestId('install-button').count(), 0, 'no install button for a viewer');
  // The session's own CSRF token does not make a viewer an operator.
  const packages = await apiJson('/api/v1/packages');
  const sha256 = (packages.body.packages as { sha256: string }[])[0]!.sha256;
  const refused = await page.evaluate(
    async ({ endpoint, sha256 }) => {
      const session = (await (await fetch('/api/v1/session')).json()) as { csrfToken: string };
      const response = await fetch(`/api/v1/devices/${encodeURIComponent(endpoint)}/installs`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken }, body: JSON.stringify({ package: sha256 }) });
      return { status: response.status, type: response.headers.get('content-type'), body: (await response.json()) as { error: string } };
    },
    { endpoint, sha256 },
  );
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error, 'FORBIDDEN');
  assert.match(refused.type ?? '', /^application\/problem\+json/);
  // Campaigns: the list and a campaign's page, with no form and no action buttons.
  const campaigns = (await apiJson('/api/v1/campaigns?limit=1')).body.campaigns as { id: string }[];
  const campaignId = campaigns[0]!.id;
  await page.getByRole('link', { name: 'Campaigns', exact: true }).click();
  await page.getByRole('heading', { name: 'All campaigns' }).waitFor();
  assert.equal(await page.getByRole('heading', { name: 'Start a campaign' }).count(), 0, 'no campaign form for a viewer');
  await page.goto(`${base}/#/campaigns/${encodeURIComponent(campaignId)}`);
  await page.getByTestId('campaign-state').waitFor();
  assert.equal(await page.getByRole('group', { name: 'Campaign actions' }).count(), 0, 'no campaign actions for a viewer');
  assert.equal(await page.getByRole('button', { name: /Pause|Resume|Approve|Retry|Cancel/ }).count(), 0);
  await page.getByRole('link', { name: 'Install methods' }).click();
  await page.getByTestId('method-model').first().waitFor();
  assert.equal(await page.getByRole('button', { name: /^(Pin|Forbid)$/ }).count(), 0, 'no pin or forbid for a viewer');
  const campaignsBefore = ((await apiJson('/api/v1/campaigns?limit=1000')).body.campaigns as unknown[]).length;
  const tried = await page.evaluate(async ({ campaignId, sha256 }) => {
    const session = (await (await fetch('/api/v1/session')).json()) as { csrfToken: string };
    const post = async (path: string, body: unknown, method = 'POST') => (await fetch(path, { method, headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken }, body: JSON.stringify(body) })).status;
    return {
      create: await post('/api/v1/campaigns', { name: 'nope', target: { kind: 'filter', filter: {} }, package: { kind: 'fixed', sha256 } }),
      pause: await post(`/api/v1/campaigns/${campaignId}/pause`, {}),
      cancel: await post(`/api/v1/campaigns/${campaignId}/cancel`, {}),
      retry: await post(`/api/v1/campaigns/${campaignId}/retry-failed`, {}),
      pin: await post('/api/v1/install-methods/Acme/Rocket-1/scomo', { rule: 'pin' }, 'PUT'),
    };
  }, { campaignId, sha256 });
  assert.deepEqual(tried, { create: 403, pause: 403, cancel: 403, retry: 403, pin: 403 });
  const countCampaigns = async () => ((await apiJson('/api/v1/campaigns?limit=1000')).body.campaigns as unknown[]).length;
  assert.equal(await countCampaigns(), campaignsBefore, 'the refused create made no campaign');
  assert.deepEqual((await apiJson('/api/v1/install-methods?make=Acme&model=Rocket-1')).body.rules, [], 'the refused pin made no rule');
  await context.close();
});
