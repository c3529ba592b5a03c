/**
 * The §5.1.1 / §5.2 rows again, through the real instance: LwM2M operations in (Write, Block1,
 * Execute), resources 7 / 9 / 12 and Observe notifications out, exact wire integers in both
 * encodings.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { SimulatedInstaller, SoftwareManagement, type PersistedObject, type SoftwareManagementInstance } from '../../../src/lwm2m/objects/software-management/index.js';
import type { PkgState } from '../../../src/lwm2m/objects/software-management/model.js';
import { harness, makePackage, withTempDir, type Harness } from '../../unit/lwm2m/object9-support.js';
import { ENCODINGS, WIRE, type SpecResult } from './support.js';

type Enc = (typeof ENCODINGS)[number];

function readWire(i: SoftwareManagementInstance): { state: unknown; result: unknown; enabled: unknown } {
  const s = i.read(7);
  const r = i.read(9);
  const a = i.read(12);
  return { state: s.ok ? s.value.value : s.code, result: r.ok ? r.value.value : r.code, enabled: a.ok ? a.value.value : a.code };
}

function expectWire(enc: Enc, i: SoftwareManagementInstance, state: PkgState, result: SpecResult, enabled = false): void {
  assert.deepEqual(readWire(i), { state: WIRE[enc].state[state], result: WIRE[enc].result[result], enabled });
}

/** Notifications since `from`, as [transition, {rid: wire value}] pairs. */
function notes(h: Harness, from = 0): [string, Record<number, number | boolean | string>][] {
  return h.changes.slice(from).map((c) => [c.transition, Object.fromEntries(c.wire.map((w) => [w.rid, w.value]))]);
}

async function toDelivered(i: SoftwareManagementInstance): Promise<void> {
  assert.equal((await i.write(2, makePackage())).code, '2.04');
  await i.settled();
}

async function toInstalled(i: SoftwareManagementInstance): Promise<void> {
  await toDelivered(i);
  assert.equal((await i.execute(4)).code, '2.04');
  await i.settled();
}

for (const enc of ENCODINGS) {
  const S = WIRE[enc].state;
  const R = WIRE[enc].result;
  void describe(`Object 9 rows through the instance [${enc}]`, () => {
    void test(`§5.1.1 "PKG/URI Write" + "PKG Written" + "PKG Integrity OK" via Block1 writes: notifications 7/9 in order [${enc}]`, async () => {
      await withTempDir(async (dir) => {
        const h = harness(dir, { profile: enc });
        const i = await h.obj.create();
        expectWire(enc, i, 'INITIAL', 'INITIAL');
        const pkg = makePackage();
        assert.equal((await i.writePackage(pkg.subarray(0, 128), { num: 0, size: 128, more: true })).code, '2.31');
        expectWire(enc, i, 'DOWNLOAD_STARTED', 'DOWNLOADING');
        assert.equal((await i.writePackage(pkg.subarray(128), { num: 1, size: 128, more: false })).code, '2.04');
        await i.settled();
        expectWire(enc, i, 'DELIVERED', 'INITIAL');
        assert.deepEqual(notes(h), [
          ['pkg-uri-write', { 7: S.DOWNLOAD_STARTED, 9: R.DOWNLOADING }],
          ['pkg-written', { 7: S.DOWNLOADED, 9: R.INITIAL }],
          // PkgName / PkgVersion become known (and are notified) with Integrity OK.
          ['pkg-integrity-ok', { 0: 'app', 1: '1.0.0', 7: S.DELIVERED }],
        ]);
      });
    });

    void test(`§5.1.1 "PKG/URI Write" via Package URI, then pull download to DELIVERED [${enc}]`, async () => {
      await withTempDir(async (dir) => {
        const h = harness(dir, { profile: enc });
        h.fetcher.files.set('coap://repo/a', makePackage());
        const i = await h.obj.create();
        assert.equal((await i.write(3, { type: 'string', value: 'coap://repo/a' })).code, '2.04');
        await i.settled();
        expectWire(enc, i, 'DELIVERED', 'INITIAL');
        assert.deepEqual(notes(h)[0], ['pkg-uri-write', { 7: S.DOWNLOAD_STARTED, 9: R.DOWNLOADING }]);
      });
    });

    /** Set by the connection-lost case once the staging file was seen on disk mid-download. */
    let stagedDuringDownload = false;
    const downloadFailures: [string, SpecResult, (h: Harness, i: SoftwareManagementInstance) => Promise<string>][] = [
      ['quota', 'NOT_ENOUGH_STORAGE', async (_h, i) => (await i.write(2, makePackage({ files: [{ path: 'x', data: 'x'.repeat(3000) }] }))).code],
      ['foreign bytes', 'UNSUPPORTED_PACKAGE_TYPE', async (_h, i) => (await i.write(2, Buffer.from('GIF89a....'))).code],
      ['invalid URI', 'INVALID_URI', async (_h, i) => (await i.writePackageUri('::nope')).code],
      [
        'connection lost',
        'CONNECTION_LOST',
        async (h, i) => {
          h.fetcher.files.set('coap://repo/b', makePackage());
          h.fetcher.failAt = 100;
          const fetch = h.fetcher.fetch.bind(h.fetcher);
          h.fetcher.fetch = (uri, opts) =>
            fetch(uri, {
              ...opts,
              onData: async (c) => {
                const more = await opts.onData(c);
                stagedDuringDownload ||= existsSync(i.stagingPath);
                return more;
              },
            });
          const code = (await i.writePackageUri('coap://repo/b')).code;
          await i.settled();
          return code;
        },
      ],
    ];
    for (const [what, result, provoke] of downloadFailures) {
      void test(`§5.1.1 "PKG Download Failed" (${what}): INITIAL, Update Result ${R[result]}, package removed [${enc}]`, async () => {
        await withTempDir(async (dir) => {
          const h = harness(dir, { profile: enc, quotaBytes: 2048 });
          const i = await h.obj.create();
          stagedDuringDownload = false;
          await provoke(h, i);
          await i.settled();
          expectWire(enc, i, 'INITIAL', result);
          assert.deepEqual(notes(h).at(-1), ['pkg-download-failed', { 7: S.INITIAL, 9: R[result] }]);
          // §5.1.2.2: "(Faulty package is removed)": nothing of it is left on disk.
          assert.equal(existsSync(i.stagingPath), false, `staging file ${i.stagingPath} left behind`);
          assert.deepEqual(readdirSync(dir), [], 'files left in the data directory');
          if (what === 'connection lost') assert.ok(stagedDuringDownload, 'the first 100 bytes were on disk before the connection dropped (else this check could not fail)');
        });
      });
    }

    void test(`§5.1.1 "PKG Download Failed" (restart during a Block1 push): INITIAL, Update Result ${R.CONNECTION_LOST}, the partial package removed from disk [${enc}]`, async () => {
      await withTempDir(async (dir) => {
        const h = harness(dir, { profile: enc });
        const i = await h.obj.create();
        const pkg = makePackage();
        assert.equal((await i.writePackage(pkg.subarray(0, 128), { num: 0, size: 128, more: true })).code, '2.31');
        const snap = JSON.parse(JSON.stringify(h.obj.snapshot())) as PersistedObject;
        await i.dispose(); // the process dies mid-download
        assert.ok(existsSync(i.stagingPath), 'the partial package is on disk before the restart (else this test could not fail)');
        // Only the download-failed row's "delete package" effect removes it here: no staging writer is open.
        const restored = (await SoftwareManagement.restore(snap, h.deps)).object.get(0);
        assert.ok(restored);
        await restored.settled();
        expectWire(enc, restored, 'INITIAL', 'CONNECTION_LOST');
        assert.equal(existsSync(restored.stagingPath), false, 'faulty package left on disk');
        assert.deepEqual(readdirSync(dir), []);
      });
    });

    void test(`§5.1.1 "PKG Integrity KO": INITIAL, Update Result ${R.INTEGRITY_FAILURE} [${enc}]`, async () => {
      await withTempDir(async (dir) => {
        const h = harness(dir, { profile: enc });
        const i = await h.obj.create();
        const pkg = Buffer.from(makePackage());
        pkg[pkg.length - 2] = (pkg[pkg.length - 2] ?? 0) ^ 0x10;
        await i.write(2, pkg);
        await i.settled();
        expectWire(enc, i, 'INITIAL', 'INTEGRITY_FAILURE');
        assert.deepEqual(notes(h).at(-1), ['pkg-integrity-ko', { 7: S.INITIAL, 9: R.INTEGRITY_FAILURE }]);
      });
    });

    void test(`§5.1.1 "Install execution" success: INSTALLED, Update Result ${R.INSTALLED}, Activation State false [${enc}]`, async () => {
      await withTempDir(async (dir) => {
        const h = harness(dir, { profile: enc });
        const i = await h.obj.create();
        await toInstalled(i);
        expectWire(enc, i, 'INSTALLED', 'INSTALLED', false);
        assert.deepEqual(notes(h).at(-1), ['install-succeeded', { 7: S.INSTALLED, 9: R.INSTALLED }]);
      });
    });

    void test(`§5.1.1 "Install execution" failure: DELIVERED, Update Result ${R.INSTALL_FAILURE} [${enc}]`, async () => {
      await withTempDir(async (dir) => {
        const h = harness(dir, { profile: enc, installer: new SimulatedInstaller({ kind: 'fail', result: 'INSTALL_FAILURE' }) });
        const i = await h.obj.create();
        await toInstalled(i);
        expectWire(enc, i, 'DELIVERED', 'INSTALL_FAILURE');
        assert.deepEqual(notes(h).at(-1), ['install-failed', { 9: R.INSTALL_FAILURE }]);
      });
    });

    void test(`§5.1.1 "Uninstall execution" from INSTALLED (ACTIVE): INITIAL, 0, Activation State false [${enc}]`, async () => {
      await withTempDir(async (dir) => {
        const h = harness(dir, { profile: enc });
        const i = await h.obj.create();
        await toInstalled(i);
        assert.equal((await i.execute(10)).code, '2.04');
        const mark = h.changes.length;
        assert.equal((await i.execute(6)).code, '2.04');
        expectWire(enc, i, 'INITIAL', 'INITIAL', false);
        assert.deepEqual(notes(h, mark), [['uninstall-installed', { 0: '', 1: '', 7: S.INITIAL, 9: R.INITIAL, 12: false }]]);
      });
    });

    void test(`§5.1.1 "Uninstall execution" from DELIVERED: INITIAL, Update Result unchanged (${R.INSTALL_FAILURE}) [${enc}]`, async () => {
      await withTempDir(async (dir) => {
        const h = harness(dir, { profile: enc, installer: new SimulatedInstaller({ kind: 'fail', result: 'INSTALL_FAILURE' }) });
        const i = await h.obj.create();
        await toInstalled(i);
        const mark = h.changes.length;
        assert.equal((await i.execute(6)).code, '2.04');
        expectWire(enc, i, 'INITIAL', 'INSTALL_FAILURE');
        assert.deepEqual(notes(h, mark), [['uninstall-delivered', { 0: '', 1: '', 7: S.INITIAL }]]);
      });
    });

    void test(`§5.2 Activate / Deactivate: Activation State true / false, one notification each (rid 12) [${enc}]`, async () => {
      await withTempDir(async (dir) => {
        const h = harness(dir, { profile: enc });
        const i = await h.obj.create();
        await toInstalled(i);
        const mark = h.changes.length;
        assert.equal((await i.execute(10)).code, '2.04');
        expectWire(enc, i, 'INSTALLED', 'INSTALLED', true);
        assert.equal((await i.execute(10)).code, '2.04');
        assert.equal((await i.execute(11)).code, '2.04');
        expectWire(enc, i, 'INSTALLED', 'INSTALLED', false);
        assert.deepEqual(notes(h, mark), [
          ['activate', { 12: true }],
          ['deactivate', { 12: false }],
        ]);
      });
    });

    void test(`§5.1.3.1 / §5.1.3.2 / §5.2 Executes in the wrong state have no effect and send no notification; the 4.05 answer is Depot's choice (the spec says only "no effect") [${enc}]`, async () => {
      await withTempDir(async (dir) => {
        const h = harness(dir, { profile: enc });
        const i = await h.obj.create();
        for (const rid of [4, 6, 10, 11]) assert.equal((await i.execute(rid)).code, '4.05', `INITIAL rid ${rid}`);
        expectWire(enc, i, 'INITIAL', 'INITIAL');
        await toDelivered(i);
        const mark = h.changes.length;
        for (const rid of [10, 11]) assert.equal((await i.execute(rid)).code, '4.05', `DELIVERED rid ${rid}`);
        assert.equal((await i.write(2, makePackage())).code, '4.05');
        assert.equal((await i.writePackageUri('coap://repo/x')).code, '4.05');
        expectWire(enc, i, 'DELIVERED', 'INITIAL');
        assert.equal((await i.execute(4)).code, '2.04');
        await i.settled();
        assert.equal((await i.execute(4)).code, '4.05');
        assert.equal((await i.write(2, makePackage())).code, '4.05');
        expectWire(enc, i, 'INSTALLED', 'INSTALLED');
        assert.deepEqual(
          notes(h, mark).map(([t]) => t),
          ['install-succeeded'],
        );
      });
    });
  });
}
