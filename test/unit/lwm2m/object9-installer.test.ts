/** DirectoryInstaller: atomic versioned installs, scripts with timeout, recovery; simulator models. */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PackageStagingWriter, verifyStaged, type ArchiveInput, type ScriptName, type VerifiedPackage } from '../../../src/pkg/index.js';
import { DirectoryInstaller, SIM_MODELS, SimulatedInstaller, DeviceRebootError } from '../../../src/lwm2m/objects/software-management/index.js';
import { makePackage, testKeys, withTempDir } from './object9-support.js';

let counter = 0;
async function verified(
  dir: string,
  opts: { name?: string; version: string; files?: ArchiveInput[]; scripts?: Partial<Record<ScriptName, string>> },
): Promise<VerifiedPackage> {
  const path = join(dir, `pkg-${counter++}.dpkg`);
  const w = await PackageStagingWriter.create(path, { quotaBytes: 1 << 20 });
  const r = await w.write(makePackage({ name: opts.name ?? 'app', ...opts }));
  assert.equal(r.ok, true);
  const v = await verifyStaged(await w.finish(), testKeys().trust);
  assert.ok(v.ok, v.ok ? '' : v.reason);
  return v;
}

const never = new AbortController().signal;

void describe('object9 installer: DirectoryInstaller', () => {
  void test('install unpacks into versions/<version> and commits current.json; the next version replaces it', async () => {
    await withTempDir(async (dir) => {
      const root = join(dir, 'sw');
      const inst = new DirectoryInstaller({ root });
      const v1 = await verified(dir, { version: '1.0', files: [{ path: 'bin/app', data: 'v1', mode: 0o755 }] });
      assert.deepEqual(await inst.install(v1, never), { ok: true });
      assert.equal(await readFile(join(root, 'app/versions/1.0/bin/app'), 'utf8'), 'v1');
      assert.equal((await inst.current('app'))?.version, '1.0');
      const v2 = await verified(dir, { version: '2.0', files: [{ path: 'bin/app', data: 'v2' }] });
      assert.deepEqual(await inst.install(v2, never), { ok: true });
      assert.equal((await inst.current('app'))?.version, '2.0');
      assert.deepEqual(await readdir(join(root, 'app/versions')), ['2.0']);
      assert.deepEqual((await readdir(join(root, 'app'))).sort(), ['current.json', 'versions']);
    });
  });

  void test('atomicity: a failing install script leaves the previous version intact and current', async () => {
    await withTempDir(async (dir) => {
      const root = join(dir, 'sw');
      const inst = new DirectoryInstaller({ root });
      await inst.install(await verified(dir, { version: '1.0', files: [{ path: 'data', data: 'old' }] }), never);
      const bad = await verified(dir, {
        version: '2.0',
        files: [
          { path: 'data', data: 'new' },
          { path: 'install.sh', data: 'echo "disk says no" >&2\nexit 3\n' },
        ],
        scripts: { install: 'install.sh' },
      });
      const r = await inst.install(bad, never);
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.result, 'INSTALL_FAILURE');
        assert.match(r.reason, /exited with 3: disk says no/);
      }
      assert.equal((await inst.current('app'))?.version, '1.0');
      assert.equal(await readFile(join(root, 'app/versions/1.0/data'), 'utf8'), 'old');
      assert.deepEqual(await readdir(join(root, 'app/versions')), ['1.0']);
      assert.deepEqual((await readdir(join(root, 'app'))).sort(), ['current.json', 'versions']);
    });
  });

  void test('install script that hangs is killed at the timeout -> installation failure, previous version intact', async () => {
    await withTempDir(async (dir) => {
      const root = join(dir, 'sw');
      const inst = new DirectoryInstaller({ root, scriptTimeoutMs: 300 });
      await inst.install(await verified(dir, { version: '1.0' }), never);
      const hang = await verified(dir, {
        version: '2.0',
        files: [{ path: 'install.sh', data: 'sleep 30 &\nwait\n' }],
        scripts: { install: 'install.sh' },
      });
      const t0 = Date.now();
      const r = await inst.install(hang, never);
      assert.ok(Date.now() - t0 < 5000, 'killed promptly');
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reason, /killed after 300 ms/);
      assert.equal((await inst.current('app'))?.version, '1.0');
    });
  });

  void test('install script runs in the staging dir with DEPOT_* variables; activate/deactivate/uninstall hooks run', async () => {
    await withTempDir(async (dir) => {
      const root = join(dir, 'sw');
      const log = join(dir, 'hooks.log');
      const inst = new DirectoryInstaller({ root });
      const pkg = await verified(dir, {
        version: '1.5',
        files: [
          { path: 'i.sh', data: `echo "install $DEPOT_PKG_NAME $DEPOT_PKG_VERSION $(basename "$DEPOT_INSTALL_DIR")" >> ${log}\ntest -f a.sh\n` },
          { path: 'a.sh', data: `echo activate >> ${log}\n` },
          { path: 'd.sh', data: `echo deactivate >> ${log}\n` },
          { path: 'u.sh', data: `echo uninstall >> ${log}\n` },
        ],
        scripts: { install: 'i.sh', activate: 'a.sh', deactivate: 'd.sh', uninstall: 'u.sh' },
      });
      assert.deepEqual(await inst.install(pkg, never), { ok: true });
      assert.deepEqual(await inst.activate('app'), { ok: true });
      assert.deepEqual(await inst.deactivate('app'), { ok: true });
      assert.deepEqual(await inst.uninstall('app', { forUpdate: false }), { ok: true });
      assert.equal(await readFile(log, 'utf8'), 'install app 1.5 1.5\nactivate\ndeactivate\nuninstall\n');
      assert.deepEqual(await readdir(root), []);
    });
  });

  void test('a relative root works: scripts run inside the staging dir and still find themselves', async () => {
    await withTempDir(async (dir) => {
      const before = process.cwd();
      process.chdir(dir);
      try {
        const inst = new DirectoryInstaller({ root: 'sw' });
        const pkg = await verified(dir, { version: '1.0', files: [{ path: 'install.sh', data: 'echo ran > marker\n' }], scripts: { install: 'install.sh' } });
        assert.deepEqual(await inst.install(pkg, never), { ok: true });
        assert.equal(await readFile(join(dir, 'sw/app/versions/1.0/marker'), 'utf8'), 'ran\n');
      } finally {
        process.chdir(before);
      }
    });
  });

  void test('uninstall forUpdate keeps the software in place', async () => {
    await withTempDir(async (dir) => {
      const root = join(dir, 'sw');
      const inst = new DirectoryInstaller({ root });
      await inst.install(await verified(dir, { version: '1' }), never);
      assert.deepEqual(await inst.uninstall('app', { forUpdate: true }), { ok: true });
      assert.equal((await inst.current('app'))?.version, '1');
    });
  });

  void test('recover after a crash: debris removed; committed version reported installed, uncommitted not', async () => {
    await withTempDir(async (dir) => {
      const root = join(dir, 'sw');
      const inst = new DirectoryInstaller({ root });
      await inst.install(await verified(dir, { version: '1' }), never);
      // Crash states: an extraction in progress and a renamed-but-uncommitted version 2.
      await mkdir(join(root, 'app/.staging-abc/bin'), { recursive: true });
      await mkdir(join(root, 'app/versions/2'), { recursive: true });
      await writeFile(join(root, 'app/current.json.tmp'), '{"version":"2"}');
      assert.equal(await inst.recover('app', '2'), 'not-installed');
      assert.deepEqual((await readdir(join(root, 'app'))).sort(), ['current.json', 'versions']);
      assert.deepEqual(await readdir(join(root, 'app/versions')), ['1']);
      assert.equal(await inst.recover('app', '1'), 'installed');
    });
  });

  void test('recover after a crash in the middle of re-installing the committed version puts the old tree back', async () => {
    await withTempDir(async (dir) => {
      const root = join(dir, 'sw');
      const inst = new DirectoryInstaller({ root });
      await inst.install(await verified(dir, { version: '1', files: [{ path: 'f', data: 'one' }] }), never);
      // The crash: versions/1 was moved aside, the new tree was not yet renamed into place.
      const { rename: mv } = await import('node:fs/promises');
      await mv(join(root, 'app/versions/1'), join(root, 'app/.old-1-123'));
      await mkdir(join(root, 'app/.staging-xyz'));
      assert.equal(await inst.recover('app', '1'), 'installed');
      assert.equal(await readFile(join(root, 'app/versions/1/f'), 'utf8'), 'one');
      assert.deepEqual((await readdir(join(root, 'app'))).sort(), ['current.json', 'versions']);
    });
  });

  void test('unsafe package names/versions are refused', async () => {
    await withTempDir(async (dir) => {
      const inst = new DirectoryInstaller({ root: join(dir, 'sw') });
      const r = await inst.install(await verified(dir, { name: 'a b', version: '1' }), never);
      assert.equal(r.ok, false);
      const r2 = await inst.install(await verified(dir, { name: 'ok', version: '../1' }), never);
      assert.equal(r2.ok, false);
    });
  });
});

void describe('object9 installer: simulator models', () => {
  void test('each model behaves as named', async () => {
    await withTempDir(async (dir) => {
      const pkg = await verified(dir, { version: '1' });
      assert.deepEqual(await SimulatedInstaller.forModel('sim-good').install(pkg, never), { ok: true });
      const broken = await SimulatedInstaller.forModel('sim-broken-installer').install(pkg, never);
      assert.deepEqual(broken.ok ? 'ok' : broken.result, 'INSTALL_FAILURE');
      const low = await SimulatedInstaller.forModel('sim-low-storage').install(pkg, never);
      assert.deepEqual(low.ok ? 'ok' : low.result, 'NOT_ENOUGH_STORAGE');
      const ac = new AbortController();
      const hanging = SimulatedInstaller.forModel('sim-hang').install(pkg, ac.signal);
      const raced = await Promise.race([hanging, new Promise((r) => setTimeout(() => r('still hanging'), 50))]);
      assert.equal(raced, 'still hanging');
      ac.abort();
      assert.equal((await hanging).ok, false);
      await assert.rejects(SimulatedInstaller.forModel('sim-reboot').install(pkg, never), DeviceRebootError);
      assert.throws(() => SimulatedInstaller.forModel('nope'), /unknown simulator model/);
      assert.ok(Object.keys(SIM_MODELS).length >= 5);
    });
  });
});
