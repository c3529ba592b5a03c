/** Object 9 instance model: resources 0–13, CoAP codes, Block1 push, pull, quota, integrity, installers. */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { ManualClock } from '../../../src/util/clock.js';
import { SimulatedInstaller, type SoftwareManagementInstance } from '../../../src/lwm2m/objects/software-management/index.js';
import { SoftwareManagementObject as Obj9Definition } from '../../../src/lwm2m/objects/definitions.js';
import { chunks, harness, makePackage, otherKeys, withTempDir } from './object9-support.js';

/** Waits (in real time, at most 5 s) until `check` holds: for background work of the instance. */
async function until(check: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const wire = (i: SoftwareManagementInstance): [number, number, boolean] => {
  const s = i.read(7);
  const r = i.read(9);
  const a = i.read(12);
  assert.ok(s.ok && r.ok && a.ok);
  return [s.value.value as number, r.value.value as number, a.value.value as boolean];
};

async function pushBlocks(inst: SoftwareManagementInstance, pkg: Buffer, size = 256): Promise<string[]> {
  const parts = chunks(pkg, size);
  const codes: string[] = [];
  for (let n = 0; n < parts.length; n++) {
    const r = await inst.writePackage(parts[n] ?? Buffer.alloc(0), { num: n, size, more: n < parts.length - 1 });
    codes.push(r.code);
    if (!r.ok) break;
  }
  return codes;
}

void describe('object9 instance: resources and CoAP codes', () => {
  void test('a fresh instance reads INITIAL / 0 / false, default Update Supported Objects false (seed and registry)', async () => {
    await withTempDir(async (dir) => {
      const seed = await harness(dir, { profile: 'seed' }).obj.create();
      assert.deepEqual(wire(seed), [1, 0, false]);
      const reg = await harness(dir, { profile: 'registry' }).obj.create();
      assert.deepEqual(wire(reg), [0, 0, false]);
      assert.deepEqual(seed.read(8), { ok: true, code: '2.05', value: { type: 'boolean', value: false } });
      assert.deepEqual(seed.read(0), { ok: true, code: '2.05', value: { type: 'string', value: '' } });
    });
  });

  void test('operation rules: R on W/E resources -> 4.05, W on R resources -> 4.05, E on non-E -> 4.05, unknown rid -> 4.04', async () => {
    await withTempDir(async (dir) => {
      const i = await harness(dir).obj.create();
      for (const rid of [2, 3, 4, 6, 10, 11]) assert.equal(i.read(rid).code, '4.05', `read ${rid}`);
      for (const rid of [0, 1, 5, 7, 9, 12, 4, 6]) assert.equal((await i.write(rid, { type: 'integer', value: 1 })).code, '4.05', `write ${rid}`);
      for (const rid of [0, 1, 2, 3, 5, 7, 8, 9, 12, 13]) assert.equal((await i.execute(rid)).code, '4.05', `execute ${rid}`);
      assert.equal(i.read(14).code, '4.04');
      assert.equal((await i.write(99, { type: 'boolean', value: true })).code, '4.04');
      assert.equal((await i.execute(99)).code, '4.04');
      assert.equal(i.read(5).code, '4.04'); // optional Checkpoint not set
      assert.equal((await i.write(8, { type: 'boolean', value: true })).code, '2.04');
      assert.deepEqual(i.read(8), { ok: true, code: '2.05', value: { type: 'boolean', value: true } });
      assert.equal((await i.write(13, { type: 'objlnk', value: { objectId: 3000, instanceId: 1 } })).code, '2.04');
      assert.deepEqual(i.read(13), { ok: true, code: '2.05', value: { type: 'objlnk', value: { objectId: 3000, instanceId: 1 } } });
      await i.setCheckpoint({ objectId: 3001, instanceId: 0 });
      assert.equal(i.read(5).code, '2.05');
    });
  });

  void test('operations agree with the object 9 definition in src/lwm2m/objects (R / W / E per resource)', async () => {
    await withTempDir(async (dir) => {
      const sample = {
        string: { type: 'string', value: 'coap://repo/x' },
        boolean: { type: 'boolean', value: true },
        objlnk: { type: 'objlnk', value: { objectId: 1, instanceId: 1 } },
        integer: { type: 'integer', value: 1 },
      } as const;
      assert.deepEqual(
        Obj9Definition.resources.map((r) => r.id),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
      );
      for (const def of Obj9Definition.resources) {
        const i = await harness(dir).obj.create();
        const read = i.read(def.id);
        assert.equal(read.code === '4.05', !def.operations.includes('R'), `read ${def.id} (${def.operations})`);
        if (read.ok) assert.equal(read.value.type, def.type, `type of ${def.id}`);
        const value = def.type === 'opaque' ? Buffer.from('junk') : (sample[def.type as keyof typeof sample] ?? sample.integer);
        const write = await i.write(def.id, value);
        assert.equal(write.code === '4.05', !def.operations.includes('W'), `write ${def.id} (${def.operations})`);
        if (def.operations !== 'E') assert.equal((await i.execute(def.id)).code, '4.05', `execute ${def.id}`);
        await i.dispose();
      }
      // Executables: each is allowed in some state of the happy path.
      const i = await harness(dir).obj.create();
      await i.write(2, makePackage());
      await i.settled();
      assert.equal((await i.execute(4)).code, '2.04');
      await i.settled();
      for (const rid of [10, 11, 6]) assert.equal((await i.execute(rid)).code, '2.04', `execute ${rid}`);
    });
  });

  for (const profile of ['seed', 'registry'] as const) {
    void test(`Block1 push: 2.31 per block, 2.04 at the end, then DELIVERED; Install -> INSTALLED; Activate; Uninstall [${profile}]`, async () => {
      await withTempDir(async (dir) => {
        const h = harness(dir, { profile });
        const i = await h.obj.create();
        const pkg = makePackage({ name: 'agent', version: '3.2.1' });
        const codes = await pushBlocks(i, pkg, 256);
        assert.deepEqual(codes, [...Array<string>(Math.ceil(pkg.length / 256) - 1).fill('2.31'), '2.04']);
        await i.settled();
        const W = profile === 'seed' ? { INITIAL: 1, DS: 2, DL: 3, DELIVERED: 4, INSTALLED: 5 } : { INITIAL: 0, DS: 1, DL: 2, DELIVERED: 3, INSTALLED: 4 };
        assert.deepEqual(wire(i), [W.DELIVERED, 0, false]);
        assert.deepEqual(i.read(0), { ok: true, code: '2.05', value: { type: 'string', value: 'agent' } });
        assert.deepEqual(i.read(1), { ok: true, code: '2.05', value: { type: 'string', value: '3.2.1' } });
        // Every state change was notified, with wire values.
        assert.deepEqual(
          h.changes.map((c) => c.transition),
          ['pkg-uri-write', 'pkg-written', 'pkg-integrity-ok'],
        );
        assert.deepEqual(h.changes[0]?.wire, [
          { rid: 7, value: W.DS },
          { rid: 9, value: 1 },
        ]);
        assert.equal((await i.execute(10)).code, '4.05'); // activation not alive yet
        assert.equal((await i.execute(4)).code, '2.04');
        await i.settled();
        assert.deepEqual(wire(i), [W.INSTALLED, 2, false]);
        assert.equal((await i.execute(4)).code, '4.05');
        assert.equal((await i.execute(10)).code, '2.04');
        assert.deepEqual(wire(i), [W.INSTALLED, 2, true]);
        assert.equal((await i.execute(11)).code, '2.04');
        assert.deepEqual(wire(i), [W.INSTALLED, 2, false]);
        assert.equal((await i.execute(6)).code, '2.04');
        assert.deepEqual(wire(i), [W.INITIAL, 0, false]);
        assert.deepEqual(i.read(0), { ok: true, code: '2.05', value: { type: 'string', value: '' } });
        assert.deepEqual(await readdir(dir), []);
        assert.deepEqual((h.installer as SimulatedInstaller).calls, ['install agent@3.2.1', 'activate agent', 'deactivate agent', 'uninstall agent']);
      });
    });
  }

  void test('Package write outside INITIAL -> 4.05 and no effect; out-of-order block -> 4.08', async () => {
    await withTempDir(async (dir) => {
      const i = await harness(dir).obj.create();
      const pkg = makePackage();
      assert.equal((await i.writePackage(pkg.subarray(0, 64), { num: 0, size: 64, more: true })).code, '2.31');
      assert.equal((await i.writePackage(pkg.subarray(128, 192), { num: 2, size: 64, more: true })).code, '4.08');
      assert.equal((await i.writePackage(pkg.subarray(0, 64), { num: 0, size: 64, more: true })).code, '4.05');
      assert.equal((await i.writePackageUri('coap://x/y')).code, '4.05');
      assert.deepEqual(wire(i), [2, 1, false]);
      await i.dispose();
    });
  });

  void test('quota: a package too big -> 4.13 with Size1, INITIAL + Not enough storage (3 seed / 50 registry), staging removed', async () => {
    for (const profile of ['seed', 'registry'] as const) {
      await withTempDir(async (dir) => {
        const i = await harness(dir, { profile, quotaBytes: 1500 }).obj.create();
        const pkg = makePackage({ files: [{ path: 'blob', data: 'z'.repeat(4000) }] });
        const codes = await pushBlocks(i, pkg, 512);
        assert.equal(codes.at(-1), '4.13');
        const last = await i.writePackage(Buffer.alloc(1), { num: 9, size: 512, more: false });
        assert.equal(last.code, '4.05');
        assert.deepEqual(wire(i), profile === 'seed' ? [1, 3, false] : [0, 50, false]);
        assert.deepEqual(await readdir(dir), []);
      });
    }
  });

  void test('corrupt package -> INITIAL + Integrity failure (6 seed / 53 registry), package removed', async () => {
    for (const profile of ['seed', 'registry'] as const) {
      await withTempDir(async (dir) => {
        const h = harness(dir, { profile });
        const i = await h.obj.create();
        const pkg = Buffer.from(makePackage());
        pkg[pkg.length - 2] = (pkg[pkg.length - 2] ?? 0) ^ 0x55;
        assert.equal((await i.write(2, pkg)).code, '2.04');
        await i.settled();
        assert.deepEqual(wire(i), profile === 'seed' ? [1, 6, false] : [0, 53, false]);
        assert.match(h.changes.at(-1)?.detail ?? '', /hash-mismatch/);
        assert.deepEqual(await readdir(dir), []);
      });
    }
  });

  void test('untrusted signer -> Integrity failure; foreign file -> 4.00 + Unsupported package type', async () => {
    await withTempDir(async (dir) => {
      const i = await harness(dir).obj.create();
      await i.write(2, makePackage({ keys: otherKeys() }));
      await i.settled();
      assert.deepEqual(wire(i), [1, 6, false]);
      const r = await i.write(2, Buffer.from('\x7fELF binary'));
      assert.equal(r.code, '4.00');
      assert.deepEqual(wire(i), [1, 7, false]);
    });
  });

  void test('Package URI: pull download to DELIVERED; invalid URI -> 4.00 + Invalid URI; connection lost -> Connection lost', async () => {
    await withTempDir(async (dir) => {
      const h = harness(dir, { profile: 'registry' });
      const i = await h.obj.create();
      h.fetcher.files.set('coap://repo/app', makePackage());
      assert.equal((await i.write(3, { type: 'string', value: 'not a uri' })).code, '4.00');
      assert.deepEqual(wire(i), [0, 56, false]);
      assert.equal((await i.writePackageUri('ftp://repo/app')).code, '4.00');
      assert.deepEqual(wire(i), [0, 56, false]);
      h.fetcher.failAt = 300;
      assert.equal((await i.writePackageUri('coap://repo/app')).code, '2.04');
      await i.settled();
      assert.deepEqual(wire(i), [0, 52, false]);
      assert.equal((await i.writePackageUri('coap://repo/missing')).code, '2.04');
      await i.settled();
      assert.deepEqual(wire(i), [0, 56, false]);
      assert.equal((await i.writePackageUri('coap://repo/app')).code, '2.04');
      await i.settled();
      assert.deepEqual(wire(i), [3, 0, false]);
    });
  });

  void test('seed §5.1.2.2: a dropped pull resumes from the staged bytes within DOWNLOAD STARTED; a source that stays down ends in Connection lost after the pauses; a non-resumable one at once', async () => {
    await withTempDir(async (dir) => {
      const clock = new ManualClock();
      const h = harness(dir, { resumeDelaysMs: [1000, 5000], clock });
      const pkg = makePackage({ files: [{ path: 'blob', data: 'z'.repeat(2000) }] });
      h.fetcher.files.set('coap://repo/app', pkg);
      const i = await h.obj.create();
      const states: string[] = [];
      h.obj.onChange((c) => states.push(c.state.pkg));
      // One drop at byte 500: the device waits 1 s, asks again from 500, and delivers.
      h.fetcher.failAt = 500;
      await i.writePackageUri('coap://repo/app');
      await until(() => h.fetcher.requests.length === 1 && clock.pending() > 0);
      assert.equal(i.state.pkg, 'DOWNLOAD_STARTED');
      clock.advance(1000);
      await i.settled();
      assert.deepEqual(h.fetcher.requests.map((r) => r.offset), [0, 500]);
      assert.equal(i.state.pkg, 'DELIVERED');
      assert.deepEqual(states, ['DOWNLOAD_STARTED', 'DOWNLOADED', 'DELIVERED']);
      // A source that stays down: pauses of 1 s and 5 s, then Connection lost (5), package removed.
      const j = await h.obj.create();
      h.fetcher.files.set('coap://repo/down', pkg);
      h.fetcher.failAt = 0;
      h.fetcher.failAlways = true;
      await j.writePackageUri('coap://repo/down');
      for (const pause of [1000, 5000]) {
        await until(() => clock.pending() > 0);
        assert.equal(j.state.pkg, 'DOWNLOAD_STARTED');
        clock.advance(pause);
      }
      await j.settled();
      assert.deepEqual([j.state.pkg, j.state.result], ['INITIAL', 'CONNECTION_LOST']);
      assert.equal(h.fetcher.requests.filter((r) => r.uri === 'coap://repo/down').length, 3);
      // Not resumable: no pause at all.
      h.fetcher.canResume = false;
      const k = await h.obj.create();
      await k.writePackageUri('coap://repo/down');
      await k.settled();
      assert.deepEqual([k.state.pkg, k.state.result], ['INITIAL', 'CONNECTION_LOST']);
    });
  });

  void test('seed §5.1.1 PKG Download Failed: a Block1 push that stops coming is abandoned after the idle timeout (Connection lost, staging file removed); a push that keeps coming is not', async () => {
    await withTempDir(async (dir) => {
      const clock = new ManualClock();
      const h = harness(dir, { clock });
      const pkg = makePackage({ files: [{ path: 'blob', data: 'p'.repeat(4000) }] });
      const blocks = chunks(pkg, 1024);
      const i = await h.obj.create();
      assert.equal((await i.writePackage(blocks[0]!, { num: 0, size: 1024, more: true })).code, '2.31');
      clock.advance(119_000);
      assert.equal((await i.writePackage(blocks[1]!, { num: 1, size: 1024, more: true })).code, '2.31');
      clock.advance(119_000);
      await i.settled();
      assert.equal(i.state.pkg, 'DOWNLOAD_STARTED', 'each block restarts the idle time');
      clock.advance(1_000);
      await i.settled();
      assert.deepEqual([i.state.pkg, i.state.result], ['INITIAL', 'CONNECTION_LOST']);
      assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.dpkg')), []);
      // A late block finds no transfer; a new push starts over and completes.
      assert.equal((await i.writePackage(blocks[2]!, { num: 2, size: 1024, more: true })).code, '4.05');
      for (const [n, b] of blocks.entries()) await i.writePackage(b, { num: n, size: 1024, more: n < blocks.length - 1 });
      await i.settled();
      assert.equal(i.state.pkg, 'DELIVERED');
      clock.advance(300_000);
      await i.settled();
      assert.equal(i.state.pkg, 'DELIVERED', 'no idle timeout after the last block');
    });
  });

  void test('installer failure keeps DELIVERED with the installer result; Install can be retried', async () => {
    await withTempDir(async (dir) => {
      const sim = new SimulatedInstaller({ kind: 'fail', result: 'INSTALL_FAILURE' });
      const i = await harness(dir, { installer: sim, profile: 'registry' }).obj.create();
      await i.write(2, makePackage());
      await i.settled();
      await i.execute(4);
      await i.settled();
      assert.deepEqual(wire(i), [3, 58, false]);
      sim.setBehaviour({ kind: 'fail', result: 'NOT_ENOUGH_STORAGE' });
      await i.execute(4);
      await i.settled();
      assert.deepEqual(wire(i), [3, 50, false]);
      sim.setBehaviour({ kind: 'succeed' });
      await i.execute(4);
      await i.settled();
      assert.deepEqual(wire(i), [4, 2, false]);
    });
  });

  void test('hanging installer: the install timeout fails the installation (DELIVERED + Installation failure)', async () => {
    await withTempDir(async (dir) => {
      const clock = new ManualClock();
      const i = await harness(dir, { installer: SimulatedInstaller.forModel('sim-hang'), installTimeoutMs: 5000, clock }).obj.create();
      await i.write(2, makePackage());
      await i.settled();
      await i.execute(4);
      assert.deepEqual(wire(i), [4, 0, false]);
      clock.advance(5000);
      await i.settled();
      assert.deepEqual(wire(i), [4, 10, false]);
      assert.equal(i.state.installing, false);
    });
  });

  void test('Uninstall during a hanging installation cancels it: INITIAL, result unchanged', async () => {
    await withTempDir(async (dir) => {
      const i = await harness(dir, { installer: SimulatedInstaller.forModel('sim-hang') }).obj.create();
      await i.write(2, makePackage());
      await i.settled();
      await i.execute(4);
      assert.equal((await i.execute(6)).code, '2.04');
      await i.settled();
      assert.deepEqual(wire(i), [1, 0, false]);
      assert.deepEqual(await readdir(dir), []);
    });
  });

  void test('Uninstall argument: only 0 or 1 accepted (4.00 otherwise); 1 = forUpdate reaches the installer', async () => {
    await withTempDir(async (dir) => {
      const h = harness(dir);
      const i = await h.obj.create();
      await i.write(2, makePackage());
      await i.settled();
      await i.execute(4);
      await i.settled();
      assert.equal((await i.execute(6, '7')).code, '4.00');
      assert.deepEqual(wire(i), [5, 2, false]);
      assert.equal((await i.execute(6, '1')).code, '2.04');
      assert.deepEqual(wire(i), [1, 0, false]);
      assert.ok((h.installer as SimulatedInstaller).calls.includes('uninstall app forUpdate'));
    });
  });

  void test('multiple instances are independent software components', async () => {
    await withTempDir(async (dir) => {
      const h = harness(dir);
      const a = await h.obj.create();
      const b = await h.obj.create();
      assert.deepEqual([a.iid, b.iid], [0, 1]);
      await a.write(2, makePackage({ name: 'a' }));
      await a.settled();
      assert.deepEqual(wire(a), [4, 0, false]);
      assert.deepEqual(wire(b), [1, 0, false]);
      assert.equal((await b.write(2, { type: 'opaque', value: makePackage({ name: 'b' }) })).code, '2.04');
      await b.settled();
      await b.execute(4);
      await b.settled();
      assert.deepEqual(wire(a), [4, 0, false]);
      assert.deepEqual(wire(b), [5, 2, false]);
      assert.deepEqual(
        h.obj.snapshot().instances.map((p) => [p.iid, p.state.pkg, p.pkgName]),
        [
          [0, 'DELIVERED', 'a'],
          [1, 'INSTALLED', 'b'],
        ],
      );
      assert.equal(await h.obj.delete(0), true);
      assert.deepEqual(
        h.obj.list().map((x) => x.iid),
        [1],
      );
    });
  });
});
