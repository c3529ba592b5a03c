import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Simulator, devicePsk, parseProfile } from '../../../src/sim/index.js';
import { Lwm2mServerTestDriver } from './server-test-driver.js';
import { waitUntil } from './support.js';

const PROFILE = {
  lifetime: 600,
  models: [
    { manufacturer: 'Acme Devices', model: 'GW-200', firmwareVersion: '4.2.1', osVersion: 'AcmeOS 5.10', deviceType: 'gateway', count: 10 },
    { manufacturer: 'Beta Systems', model: 'BX-1', firmwareVersion: '1.0.3', osVersion: 'BetaOS 2', weight: 3 },
    { manufacturer: 'Gamma', model: 'G-9', firmwareVersion: '9.9', weight: 1 },
  ],
};

test('simulator (TS Core 1.1 §6.2.1/§6.2.3): 50 clients register with distinct endpoints and sockets, Object 3 from the profile, de-register on stop', async () => {
  const driver = await Lwm2mServerTestDriver.start();
  const sim = new Simulator({ server: driver.uri, count: 50, profile: parseProfile(PROFILE), endpointPrefix: 'sim-', host: '127.0.0.1', rampMs: 250 });
  try {
    await sim.start();
    await sim.waitAllRegistered(10_000);
    const regs = driver.requests.filter((r) => r.method === 'POST' && r.path === '/rd');
    assert.equal(regs.length, 50);
    const endpoints = regs.map((r) => r.query.find((q) => q.startsWith('ep='))!.slice(3));
    assert.equal(new Set(endpoints).size, 50);
    assert.deepEqual([...endpoints].sort().slice(0, 3), ['sim-00001', 'sim-00002', 'sim-00003']);
    assert.equal(new Set(regs.map((r) => r.peer.port)).size, 50, 'one socket per device');
    assert.ok(regs.every((r) => r.query.includes('lt=600')));
    // Read Manufacturer and Model Number from every device, at the address it registered from.
    const byModel = new Map<string, number>();
    for (const r of regs) {
      const base = `coap://127.0.0.1:${r.peer.port}`;
      const mfr = Buffer.from((await driver.client.get(`${base}/3/0/0`)).payload).toString();
      const model = Buffer.from((await driver.client.get(`${base}/3/0/1`)).payload).toString();
      const sw = Buffer.from((await driver.client.get(`${base}/3/0/3`)).payload).toString();
      byModel.set(`${mfr}/${model}/${sw}`, (byModel.get(`${mfr}/${model}/${sw}`) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries(byModel), { 'Acme Devices/GW-200/4.2.1': 10, 'Beta Systems/BX-1/1.0.3': 30, 'Gamma/G-9/9.9': 10 });
    const d1 = sim.devices[0]!;
    assert.equal(d1.endpoint, 'sim-00001');
    assert.deepEqual(sim.stats(), { total: 50, started: 50, registered: 50, registrationFailures: 0 });
    await sim.stop();
    const deletes = driver.requests.filter((r) => r.method === 'DELETE' && r.path.startsWith('/rd/'));
    assert.equal(deletes.length, 50);
    assert.equal(new Set(deletes.map((r) => r.path)).size, 50);
    assert.equal(sim.stats().registered, 0);
  } finally {
    await sim.stop();
    await driver.close();
  }
});

test('depot sim CLI (TS Core 1.1 §6.2.3 De-register): SIGINT de-registers every device and exits 0', async () => {
  const driver = await Lwm2mServerTestDriver.start();
  const dir = await mkdtemp(join(tmpdir(), 'depot-sim-cli-'));
  try {
    const profileFile = join(dir, 'profile.json');
    await writeFile(profileFile, JSON.stringify(PROFILE));
    const module = new URL('../../../src/cli/sim.js', import.meta.url).href;
    const args = ['--server', driver.uri, '--count', '5', '--profile', profileFile, '--endpoint-prefix', 'cli-', '--host', '127.0.0.1', '--ramp', '0'];
    const child = spawn(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(module)}); process.exitCode = await m.runSimCommand(${JSON.stringify(args)});`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitUntil(() => driver.requests.filter((r) => r.path === '/rd').length === 5, 10_000);
    await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 0, stderr);
    const deletes = driver.requests.filter((r) => r.method === 'DELETE');
    assert.equal(deletes.length, 5);
    assert.match(stderr, /stopped; 5 devices, 0 still registered/);
  } finally {
    await driver.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('simulator (TS Core 1.1 §6.2.1 Register over coaps, Security Mode 0 PSK): per-device keys derived from the profile secret', async () => {
  const profile = parseProfile({ ...PROFILE, psk: { identity: 'psk-{ep}', deriveFrom: '0f0e0d0c0b0a09080706050403020100' } });
  const keys = new Map<string, Uint8Array>();
  for (let i = 1; i <= 5; i++) {
    const ep = `dtls-${String(i).padStart(5, '0')}`;
    const psk = devicePsk(profile, ep)!;
    keys.set(psk.identity, psk.key);
  }
  const driver = await Lwm2mServerTestDriver.start({ psk: keys });
  const sim = new Simulator({ server: driver.uri, count: 5, profile, endpointPrefix: 'dtls-', host: '127.0.0.1', rampMs: 0 });
  try {
    await sim.start();
    await sim.waitAllRegistered(15_000);
    const regs = driver.requests.filter((r) => r.method === 'POST' && r.path === '/rd');
    assert.deepEqual(
      regs.map((r) => [r.query[0] ?? '', r.peer.identity] as const).sort((a, b) => a[0].localeCompare(b[0])),
      [1, 2, 3, 4, 5].map((i) => [`ep=dtls-0000${i}`, { kind: 'psk', identity: `psk-dtls-0000${i}` }]),
    );
    await sim.stop();
    assert.equal(driver.requests.filter((r) => r.method === 'DELETE').length, 5);
  } finally {
    await sim.stop();
    await driver.close();
  }
});

test('depot sim CLI without --profile runs the built-in demo fleet (as depot serve --sim), its installer models trusting the demo key in --data-dir', async () => {
  const driver = await Lwm2mServerTestDriver.start();
  const dir = await mkdtemp(join(tmpdir(), 'depot-sim-demo-'));
  try {
    const module = new URL('../../../src/cli/sim.js', import.meta.url).href;
    const args = ['--server', driver.uri, '--count', '5', '--data-dir', dir, '--host', '127.0.0.1', '--ramp', '0'];
    const child = spawn(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(module)}); process.exitCode = await m.runSimCommand(${JSON.stringify(args)});`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitUntil(() => driver.requests.filter((r) => r.path === '/rd').length === 5, 10_000);
    const links = driver.requests.filter((r) => r.path === '/rd').map((r) => r.text);
    assert.ok(links.every((l) => l.includes('</9')), 'the demo models have Object 9');
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 0, stderr);
    assert.match(stderr, /built-in demo fleet/);
    await stat(join(dir, 'demo-signing', 'depot-demo.pub.pem'));
  } finally {
    await driver.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('simulator: models pin their LwM2M version and formats (TS Core 1.0/1.1/1.2 §6.2.1: lwm2m= and the ct rules of each)', async () => {
  const profile = parseProfile({
    models: [
      { manufacturer: 'Old', model: 'V10', firmwareVersion: '1', lwm2mVersion: '1.0', count: 1 },
      { manufacturer: 'Mid', model: 'V11', firmwareVersion: '1', lwm2mVersion: '1.1', formats: [11542], count: 1 },
      { manufacturer: 'New', model: 'V12', firmwareVersion: '1', lwm2mVersion: '1.2', formats: [110, 11542], count: 1 },
    ],
  });
  const driver = await Lwm2mServerTestDriver.start();
  const sim = new Simulator({ server: driver.uri, count: 3, profile, endpointPrefix: 'mix-', host: '127.0.0.1', rampMs: 0 });
  try {
    await sim.start();
    await sim.waitAllRegistered(10_000);
    const regs = driver.requests.filter((r) => r.method === 'POST' && r.path === '/rd');
    const byVersion: Record<string, string> = Object.fromEntries(regs.map((r) => [r.query.find((q) => q.startsWith('lwm2m=')) ?? '', r.text.split(',</')[0] ?? '']));
    assert.deepEqual(byVersion, {
      'lwm2m=1.0': '</>;rt="oma.lwm2m"',
      'lwm2m=1.1': '</>;rt="oma.lwm2m";ct=11542',
      'lwm2m=1.2': '</>;rt="oma.lwm2m";ct="110 11542"',
    });
  } finally {
    await sim.stop();
    await driver.close();
  }
});

test('every depot <command> [subcommand] --help prints its usage on stdout, exit 0, nothing on stderr', async () => {
  const main = new URL('../../../src/cli/main.js', import.meta.url).pathname;
  for (const args of [['serve'], ['sim'], ['client'], ['coap'], ['coap', 'get'], ['ca'], ['ca', 'issue'], ['credentials'], ['install'], ['package'], ['package', 'build'], ['package', 'keygen'], ['package', 'inspect']]) {
    const result = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = spawn(process.execPath, [main, ...args, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) => resolve({ code, out, err }));
    });
    assert.equal(result.code, 0, `${args.join(' ')}: ${result.err}`);
    assert.equal(result.err, '', args.join(' '));
    assert.match(result.out, /usage/i, args.join(' '));
  }
});
