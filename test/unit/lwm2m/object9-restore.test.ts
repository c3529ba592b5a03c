/** Object 9 persistence: the persisted form is JSON, and restore() in every state. */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readdir, writeFile, rm, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  SimulatedInstaller,
  SoftwareManagement,
  type PersistedInstance,
  type PersistedObject,
  type PkgState,
} from '../../../src/lwm2m/objects/software-management/index.js';
import { harness, makePackage, withTempDir, type Harness } from './object9-support.js';

/** The last persisted snapshot of instance 0 in state `pkg` (what a crash right then leaves). */
function lastIn(h: Harness, pkg: PkgState, installing?: boolean): PersistedObject {
  const found = [...h.saved]
    .reverse()
    .find((o) => o.instances[0]?.state.pkg === pkg && (installing === undefined || o.instances[0].state.installing === installing));
  assert.ok(found, `no snapshot in ${pkg}`);
  return JSON.parse(JSON.stringify(found)) as PersistedObject;
}

async function restore(h: Harness, p: PersistedObject, over: Partial<Harness['deps']> = {}) {
  const r = await SoftwareManagement.restore(p, { ...h.deps, ...over });
  const inst = r.object.get(0);
  assert.ok(inst);
  await inst.settled();
  return { inst, report: r.reports[0], object: r.object };
}

const view = (i: { state: { pkg: string; result: string; activation: string | null; installing: boolean } }) => [
  i.state.pkg,
  i.state.result,
  i.state.activation,
  i.state.installing,
];

void describe('object9 persistence and restore', () => {
  void test('the persisted form is plain JSON and round-trips unchanged', async () => {
    await withTempDir(async (dir) => {
      const h = harness(dir);
      const i = await h.obj.create(3);
      await i.write(8, { type: 'boolean', value: true });
      await i.write(13, { type: 'objlnk', value: { objectId: 30000, instanceId: 2 } });
      await i.write(2, makePackage({ name: 'n', version: 'v' }));
      await i.settled();
      const snap = h.obj.snapshot();
      const json = JSON.parse(JSON.stringify(snap)) as PersistedObject;
      assert.deepEqual(json, snap);
      const inst = json.instances[0] as PersistedInstance;
      assert.deepEqual([inst.iid, inst.state.pkg, inst.pkgName, inst.pkgVersion, inst.updateSupportedObjects], [3, 'DELIVERED', 'n', 'v', true]);
      assert.deepEqual(inst.packageSettings, { objectId: 30000, instanceId: 2 });
      const { object } = await SoftwareManagement.restore(json, h.deps);
      const r = object.get(3);
      assert.ok(r);
      assert.deepEqual(r.read(13), { ok: true, code: '2.05', value: { type: 'objlnk', value: { objectId: 30000, instanceId: 2 } } });
      assert.deepEqual(r.read(0), { ok: true, code: '2.05', value: { type: 'string', value: 'n' } });
    });
  });

  void test('restore INITIAL: unchanged (leftover staging file removed)', async () => {
    await withTempDir(async (dir) => {
      const h = harness(dir);
      await h.obj.create();
      await writeFile(join(dir, 'obj9-0.dpkg'), 'debris');
      const { inst, report } = await restore(h, h.obj.snapshot());
      assert.deepEqual(view(inst), ['INITIAL', 'INITIAL', null, false]);
      assert.equal(report?.action, 'none');
      assert.deepEqual(await readdir(dir), []);
    });
  });

  void test('restore DOWNLOAD STARTED (Block1 push): INITIAL + Connection lost, partial file removed', async () => {
    await withTempDir(async (dir) => {
      const h = harness(dir, { profile: 'registry' });
      const i = await h.obj.create();
      const pkg = makePackage();
      await i.writePackage(pkg.subarray(0, 100), { num: 0, size: 100, more: true });
      await i.writePackage(pkg.subarray(100, 200), { num: 1, size: 100, more: true });
      await i.dispose(); // the process dies
      const snap = lastIn(h, 'DOWNLOAD_STARTED');
      // Saved when the push began; block progress is not saved (a push cannot resume after a restart).
      assert.equal(snap.instances[0]?.source?.kind, 'push');
      const { inst, report } = await restore(h, snap);
      assert.deepEqual(view(inst), ['INITIAL', 'CONNECTION_LOST', null, false]);
      assert.deepEqual(inst.read(7), { ok: true, code: '2.05', value: { type: 'integer', value: 0 } });
      assert.deepEqual(inst.read(9), { ok: true, code: '2.05', value: { type: 'integer', value: 52 } });
      assert.match(report?.action ?? '', /Connection lost/);
      assert.deepEqual(await readdir(dir), []);
    });
  });

  void test('restore DOWNLOAD STARTED (pull, resumable source): download resumes from the partial file and completes', async () => {
    await withTempDir(async (dir) => {
      const h = harness(dir);
      const pkg = makePackage({ files: [{ path: 'data', data: 'd'.repeat(2000) }] });
      h.fetcher.files.set('coap://repo/p', pkg);
      h.fetcher.failAt = 400;
      h.fetcher.failWith = undefined;
      const i = await h.obj.create();
      // Simulate the crash: the fetch fails, but we restore from the snapshot taken while downloading
      // together with the partial staging file as it was at that moment.
      await i.writePackageUri('coap://repo/p');
      await i.settled();
      const snap = lastIn(h, 'DOWNLOAD_STARTED');
      await writeFile(join(dir, 'obj9-0.dpkg'), pkg.subarray(0, 400));
      const { inst, report } = await restore(h, snap);
      assert.match(report?.action ?? '', /resuming download at byte 400/);
      assert.deepEqual(h.fetcher.requests.at(-1), { uri: 'coap://repo/p', offset: 400 });
      assert.deepEqual(view(inst), ['DELIVERED', 'INITIAL', null, false]);
      assert.deepEqual(await readFile(join(dir, 'obj9-0.dpkg')), pkg);
    });
  });

  void test('restore DOWNLOAD STARTED (pull, source not resumable): INITIAL + Connection lost', async () => {
    await withTempDir(async (dir) => {
      const h = harness(dir);
      h.fetcher.files.set('coap://repo/p', makePackage());
      h.fetcher.failAt = 200;
      const i = await h.obj.create();
      await i.writePackageUri('coap://repo/p');
      await i.settled();
      const snap = lastIn(h, 'DOWNLOAD_STARTED');
      await writeFile(join(dir, 'obj9-0.dpkg'), Buffer.alloc(200));
      h.fetcher.canResume = false;
      const { inst } = await restore(h, snap);
      assert.deepEqual(view(inst), ['INITIAL', 'CONNECTION_LOST', null, false]);
      assert.deepEqual(await readdir(dir), []);
    });
  });

  void test('restore DOWNLOADED: integrity re-checked -> DELIVERED; corrupted meanwhile -> INITIAL + Integrity failure', async () => {
    await withTempDir(async (dir) => {
      const h = harness(dir);
      const i = await h.obj.create();
      const pkg = makePackage({ name: 'x', version: '1' });
      await i.write(2, pkg);
      await i.settled();
      const snap = lastIn(h, 'DOWNLOADED');
      const ok = await restore(h, snap);
      assert.deepEqual(view(ok.inst), ['DELIVERED', 'INITIAL', null, false]);
      assert.match(ok.report?.action ?? '', /OK/);
      assert.deepEqual(ok.inst.read(0), { ok: true, code: '2.05', value: { type: 'string', value: 'x' } });
      const bad = Buffer.from(pkg);
      bad[bad.length - 2] = (bad[bad.length - 2] ?? 0) ^ 1;
      await writeFile(join(dir, 'obj9-0.dpkg'), bad);
      const ko = await restore(h, snap);
      assert.deepEqual(view(ko.inst), ['INITIAL', 'INTEGRITY_FAILURE', null, false]);
      assert.deepEqual(await readdir(dir), []);
    });
  });

  void test('restore DELIVERED: stays DELIVERED and can install; package gone -> INITIAL + Integrity failure', async () => {
    await withTempDir(async (dir) => {
      const h = harness(dir);
      const i = await h.obj.create();
      await i.write(2, makePackage());
      await i.settled();
      const snap = lastIn(h, 'DELIVERED');
      const { inst } = await restore(h, snap);
      assert.deepEqual(view(inst), ['DELIVERED', 'INITIAL', null, false]);
      assert.equal((await inst.execute(4)).code, '2.04');
      await inst.settled();
      assert.deepEqual(view(inst), ['INSTALLED', 'INSTALLED', 'INACTIVE', false]);
      await rm(join(dir, 'obj9-0.dpkg'), { force: true });
      const gone = await restore(h, snap);
      assert.deepEqual(view(gone.inst), ['INITIAL', 'INTEGRITY_FAILURE', null, false]);
    });
  });

  void test('restore mid-install, reboot before the commit: DELIVERED + Installation failure, Install can be retried', async () => {
    await withTempDir(async (dir) => {
      const sim = SimulatedInstaller.forModel('sim-reboot');
      const h = harness(dir, { installer: sim, profile: 'registry' });
      const i = await h.obj.create();
      await i.write(2, makePackage({ name: 'svc', version: '2' }));
      await i.settled();
      await i.execute(4);
      await i.settled();
      assert.equal(i.isHalted, true);
      const snap = lastIn(h, 'DELIVERED', true);
      sim.setBehaviour({ kind: 'succeed' });
      const { inst, report } = await restore(h, snap);
      assert.deepEqual(view(inst), ['DELIVERED', 'INSTALL_FAILURE', null, false]);
      assert.match(report?.action ?? '', /interrupted/);
      assert.ok(sim.calls.includes('recover svc@2'));
      assert.equal((await inst.execute(4)).code, '2.04');
      await inst.settled();
      assert.deepEqual(view(inst), ['INSTALLED', 'INSTALLED', 'INACTIVE', false]);
    });
  });

  void test('restore saves what it changed without dropping any instance from the persisted document (a second crash right after finds them all)', async () => {
    await withTempDir(async (dir) => {
      const sim = SimulatedInstaller.forModel('sim-reboot');
      const h = harness(dir, { installer: sim });
      const i = await h.obj.create();
      await h.obj.create(5);
      await i.write(2, makePackage({ name: 'svc', version: '2' }));
      await i.settled();
      await i.execute(4);
      await i.settled();
      const snap = lastIn(h, 'DELIVERED', true);
      assert.deepEqual(snap.instances.map((x) => x.iid), [0, 5]);
      const before = h.saved.length;
      await restore(h, snap);
      assert.ok(h.saved.length > before, 'the restored state was saved');
      for (const doc of h.saved.slice(before)) assert.deepEqual(doc.instances.map((x) => x.iid), [0, 5]);
      const last = h.saved.at(-1)!;
      assert.deepEqual([last.instances[0]!.state.pkg, last.instances[0]!.state.result, last.instances[0]!.state.installing], ['DELIVERED', 'INSTALL_FAILURE', false]);
    });
  });

  void test('restore mid-install, reboot after the commit: INSTALLED (INACTIVE, Installed)', async () => {
    await withTempDir(async (dir) => {
      const sim = SimulatedInstaller.forModel('sim-reboot-after-commit');
      const h = harness(dir, { installer: sim });
      const i = await h.obj.create();
      await i.write(2, makePackage({ name: 'svc', version: '3' }));
      await i.settled();
      await i.execute(4);
      await i.settled();
      assert.equal(i.isHalted, true);
      const { inst } = await restore(h, lastIn(h, 'DELIVERED', true));
      assert.deepEqual(view(inst), ['INSTALLED', 'INSTALLED', 'INACTIVE', false]);
      assert.deepEqual(inst.read(7), { ok: true, code: '2.05', value: { type: 'integer', value: 5 } });
      assert.deepEqual(await readdir(dir), []);
    });
  });

  void test('restore INSTALLED keeps the activation state (ACTIVE and INACTIVE)', async () => {
    await withTempDir(async (dir) => {
      const h = harness(dir);
      const i = await h.obj.create();
      await i.write(2, makePackage());
      await i.settled();
      await i.execute(4);
      await i.settled();
      const inactive = await restore(h, h.obj.snapshot());
      assert.deepEqual(view(inactive.inst), ['INSTALLED', 'INSTALLED', 'INACTIVE', false]);
      await i.execute(10);
      const active = await restore(h, h.obj.snapshot());
      assert.deepEqual(view(active.inst), ['INSTALLED', 'INSTALLED', 'ACTIVE', false]);
      assert.deepEqual(active.inst.read(12), { ok: true, code: '2.05', value: { type: 'boolean', value: true } });
    });
  });

  void test('a persisted state the spec does not allow is reset to INITIAL', async () => {
    await withTempDir(async (dir) => {
      const h = harness(dir);
      await h.obj.create();
      const snap = h.obj.snapshot();
      const broken: PersistedObject = {
        v: 1,
        instances: [{ ...(snap.instances[0] as PersistedInstance), state: { pkg: 'INSTALLED', result: 'DOWNLOADING', activation: null, installing: false } }],
      };
      const { inst, report } = await restore(h, broken);
      assert.deepEqual(view(inst), ['INITIAL', 'INITIAL', null, false]);
      assert.match(report?.action ?? '', /invalid/);
    });
  });
});
