/** The package catalog, the install job repository and the /pkg/<token> endpoint (real files, SQLite and UDP). */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PackageCatalog, PackageError } from '../../../src/fleet/packages.js';
import { PackageEndpoint } from '../../../src/fleet/package-endpoint.js';
import { RESULT_ADVICE } from '../../../src/fleet/results.js';
import { UPDATE_RESULTS } from '../../../src/lwm2m/objects/software-management/model.js';
import { openSqliteStore } from '../../../src/store/index.js';
import { StoreError } from '../../../src/store/errors.js';
import type { InstallJobRepository } from '../../../src/store/types.js';
import { CoapServer } from '../../../src/coap/server.js';
import { CoapClient } from '../../../src/coap/client.js';
import { UdpTransport } from '../../../src/coap/udp.js';
import { makePackage, otherKeys, testKeys } from '../lwm2m/object9-support.js';

function temp(): string {
  return mkdtempSync(join(tmpdir(), 'depot-fleet-'));
}

test('catalog: add (bytes and file) stores <dataDir>/packages/<sha256> 0600 and the manifest; list, get, remove', async () => {
  const dir = temp();
  const store = openSqliteStore({ dataDir: dir });
  try {
    const catalog = new PackageCatalog({ dataDir: dir, repository: store.packages, now: () => 1000 });
    const pkg = makePackage({ name: 'app', version: '1.2.3' });
    const record = await catalog.addBytes(pkg);
    assert.equal(record.name, 'app');
    assert.equal(record.version, '1.2.3');
    assert.equal(record.size, pkg.length);
    assert.equal(record.addedAt, 1000);
    const path = catalog.pathOf(record.sha256);
    assert.deepEqual(readFileSync(path), pkg);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const file = join(dir, 'other.dpkg');
    const other = makePackage({ name: 'tool', version: '9' });
    writeFileSync(file, other);
    const second = await catalog.addFile(file);
    assert.equal(second.name, 'tool');
    // Adding the same bytes again keeps one record.
    assert.equal((await catalog.addBytes(pkg)).sha256, record.sha256);
    assert.equal((await catalog.list()).items.length, 2);
    assert.equal((await catalog.get(record.sha256))?.manifest['keyId'], 'depot-test');
    assert.equal(await catalog.remove(record.sha256), true);
    assert.equal(await catalog.get(record.sha256), null);
    assert.deepEqual(readdirSync(join(dir, 'packages')), [second.sha256]);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('catalog: corrupt files are refused with CORRUPT_PACKAGE and leave nothing behind; with a trust store, unknown keys are refused', async () => {
  const dir = temp();
  const store = openSqliteStore({ dataDir: dir });
  try {
    const catalog = new PackageCatalog({ dataDir: dir, repository: store.packages });
    const pkg = makePackage();
    const cases: [string, Buffer, RegExp][] = [
      ['foreign', randomBytes(200), /not a valid Depot package/],
      ['truncated', pkg.subarray(0, pkg.length - 10), /payload has/],
      ['flipped', Buffer.from(pkg.map((b, i) => (i === pkg.length - 1 ? b ^ 1 : b))), /SHA-256/],
      ['header only', pkg.subarray(0, 6), /header is incomplete/],
    ];
    for (const [name, bytes, message] of cases) {
      await assert.rejects(catalog.addBytes(bytes), (e: unknown) => e instanceof PackageError && e.code === 'CORRUPT_PACKAGE' && message.test(e.message), name);
    }
    assert.deepEqual(readdirSync(join(dir, 'packages')), []);
    assert.equal((await catalog.list()).items.length, 0);
    const strict = new PackageCatalog({ dataDir: dir, repository: store.packages, trust: testKeys().trust });
    await assert.rejects(strict.addBytes(makePackage({ keys: otherKeys() })), (e: unknown) => e instanceof PackageError && e.code === 'UNTRUSTED_PACKAGE');
    assert.equal((await strict.addBytes(pkg)).name, 'app');
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('install jobs: create, transitions checked against INSTALL_JOB_TRANSITIONS and logged in order with times', async () => {
  const dir = temp();
  const store = openSqliteStore({ dataDir: dir });
  try {
    const jobs = store.installJobs;
    const job = await jobs.create({ id: 'j1', kind: 'install', endpoint: 'dev', packageSha256: 'a'.repeat(64), method: 'pull', activate: false }, 10);
    assert.equal(job.state, 'queued');
    await jobs.transition('j1', 'downloading', 'uri written', { downloadToken: 'tok', tokenExpiresAt: 99, attempts: 1, instanceId: 0 }, 20);
    assert.equal((await jobs.getByToken('tok'))?.id, 'j1');
    await assert.rejects(jobs.transition('j1', 'activating', null, {}, 30), (e: unknown) => e instanceof StoreError && e.code === 'INVALID_TRANSITION');
    const done = await jobs.transition('j1', 'failed', 'integrity', { downloadToken: null, retry: 'no-retry', message: 'x' }, 40);
    assert.equal(done.finishedAt, 40);
    assert.equal(done.downloadToken, null);
    assert.equal(await jobs.getByToken('tok'), null);
    assert.deepEqual((await jobs.transitions('j1')).map((t) => [t.at, t.from, t.to]), [[10, null, 'queued'], [20, 'queued', 'downloading'], [40, 'downloading', 'failed']]);
    assert.deepEqual(await jobs.listOpen(), []);
    assert.equal((await jobs.listByEndpoint('dev')).items.length, 1);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('seed spec §5.1.2 Update Result: every value has an operator message and a retry decision', () => {
  for (const r of UPDATE_RESULTS) assert.ok(RESULT_ADVICE[r].message.length > 10, r);
  assert.equal(RESULT_ADVICE.CONNECTION_LOST.retry, 'retry-resume');
  assert.equal(RESULT_ADVICE.INTEGRITY_FAILURE.retry, 'no-retry');
  assert.equal(RESULT_ADVICE.INTEGRITY_FAILURE.automatic, false);
});

/** A catalog with one package, job 'j' downloading it under `token`, and /pkg mounted on a real UDP CoAP server (clock at 1000). */
async function pkgRig(payloadBytes: number, token: string, tokenExpiresAt: number, jobs?: (store: ReturnType<typeof openSqliteStore>) => Pick<InstallJobRepository, 'getByToken'>) {
  const dir = temp();
  const store = openSqliteStore({ dataDir: dir });
  const server = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }) });
  const client = new CoapClient();
  const catalog = new PackageCatalog({ dataDir: dir, repository: store.packages });
  const pkg = makePackage({ files: [{ path: 'blob', data: randomBytes(payloadBytes) }] });
  const record = await catalog.addBytes(pkg);
  const clock = { now: 1000 };
  const endpoint = new PackageEndpoint({ catalog, jobs: jobs ? jobs(store) : store.installJobs, now: () => clock.now });
  endpoint.mount(server);
  await store.installJobs.create({ id: 'j', kind: 'install', endpoint: 'dev', packageSha256: record.sha256, method: 'pull', activate: false }, 0);
  await store.installJobs.transition('j', 'downloading', null, { downloadToken: token, tokenExpiresAt }, 0);
  return {
    store, catalog, record, pkg, clock, endpoint, client,
    base: `coap://127.0.0.1:${server.endpoint.transport.address().port}/pkg/`,
    close: async () => {
      await endpoint.close();
      await client.close();
      await server.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('/pkg/<token>: served block-wise (RFC 7959 Block2) while the job downloads; unknown, expired or finished tokens get 4.04', async () => {
  const r = await pkgRig(6000, 'T0k3n', 5000);
  try {
    const got = await r.client.get(r.base + 'T0k3n', { blockSize: 256 });
    assert.equal(got.codeText, '2.05');
    assert.deepEqual(Buffer.from(got.payload), r.pkg);
    assert.deepEqual(r.endpoint.progressOf('j'), { served: r.pkg.length, size: r.pkg.length, at: 1000 });
    assert.equal((await r.client.get(r.base + 'nope')).codeText, '4.04');
    r.clock.now = 6000;
    assert.equal((await r.client.get(r.base + 'T0k3n')).codeText, '4.04');
    r.clock.now = 1000;
    await r.store.installJobs.transition('j', 'delivered', null, {}, 0);
    assert.equal((await r.client.get(r.base + 'T0k3n')).codeText, '4.04');
  } finally {
    await r.close();
  }
});

test('/pkg/<token>: one store lookup per token per second, not per block; withdraw() ends a cached token at once, a store-only change within a second', async () => {
  let lookups = 0;
  const r = await pkgRig(20_000, 'L00kup', 60_000, (store) => ({ getByToken: (token: string) => (lookups++, store.installJobs.getByToken(token)) }));
  try {
    const got = await r.client.get(r.base + 'L00kup', { blockSize: 256 });
    assert.deepEqual(Buffer.from(got.payload), r.pkg);
    assert.equal(lookups, 1, `${Math.ceil(r.pkg.length / 256)} blocks, one lookup`);
    // Withdrawn by the driver: refused at once.
    r.endpoint.withdraw('j');
    await r.store.installJobs.transition('j', 'delivered', null, { downloadToken: null, tokenExpiresAt: null }, 0);
    assert.equal((await r.client.get(r.base + 'L00kup')).codeText, '4.04');
    // A token changed only in the store is honoured from the cache for at most a second.
    await r.store.installJobs.transition('j', 'downloading', null, { downloadToken: 'N3w', tokenExpiresAt: 60_000 }, 0);
    assert.equal((await r.client.get(r.base + 'N3w', { blockSize: 1024 })).codeText, '2.05');
    await r.store.installJobs.transition('j', 'delivered', null, { downloadToken: null, tokenExpiresAt: null }, 0);
    assert.equal((await r.client.get(r.base + 'N3w', { blockSize: 1024 })).codeText, '2.05', 'still cached');
    r.clock.now += 1001;
    assert.equal((await r.client.get(r.base + 'N3w')).codeText, '4.04');
    // A pushed body comes from the same shared copy (fileSource): read once, then served from memory.
    const source = r.endpoint.fileSource('j', r.catalog.pathOf(r.record.sha256), r.record.size);
    assert.deepEqual(Buffer.from(await source.read(100, 50)), r.pkg.subarray(100, 150));
    const moved = r.catalog.pathOf(r.record.sha256) + '.aside';
    renameSync(r.catalog.pathOf(r.record.sha256), moved);
    assert.deepEqual(Buffer.from(await source.read(r.pkg.length - 10, 1024)), r.pkg.subarray(r.pkg.length - 10), 'no file access per block');
    renameSync(moved, r.catalog.pathOf(r.record.sha256));
  } finally {
    await r.close();
  }
});
