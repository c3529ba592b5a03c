/** Depot package format: staging writer, quota, integrity verification, archive safety. */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, readdir, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  PackageStagingWriter,
  buildArchive,
  encodeHeader,
  extractArchive,
  verifyPackageFile,
  verifyStaged,
  HEADER_FIXED,
  type Manifest,
} from '../../../src/pkg/index.js';
import { chunks, makePackage, otherKeys, testKeys, withTempDir } from './object9-support.js';

async function stage(dir: string, bytes: Buffer, chunkSize = 512, quotaBytes = 1 << 20) {
  const w = await PackageStagingWriter.create(join(dir, 'staging.dpkg'), { quotaBytes });
  for (const c of chunks(bytes, chunkSize)) {
    const r = await w.write(c);
    if (!r.ok) return { failure: r, writer: w };
  }
  return { staged: await w.finish(), writer: w };
}

void describe('object9 package: staging and integrity', () => {
  void test('a signed package written in Block1-sized chunks verifies OK', async () => {
    await withTempDir(async (dir) => {
      const pkg = makePackage({ name: 'app', version: '2.1' });
      for (const size of [1, 16, 1024]) {
        const r = await stage(dir, pkg, size);
        assert.ok(r.staged);
        assert.equal(r.staged.bytes, pkg.length);
        const v = await verifyStaged(r.staged, testKeys().trust);
        assert.equal(v.ok, true, v.ok ? '' : `${v.reason}: ${v.detail}`);
        if (v.ok) {
          assert.equal(v.manifest.name, 'app');
          assert.equal(v.manifest.version, '2.1');
          assert.deepEqual(
            v.entries.map((e) => e.path),
            ['bin/app', 'README'],
          );
        }
      }
    });
  });

  void test('corrupt payload byte -> integrity KO (hash-mismatch)', async () => {
    await withTempDir(async (dir) => {
      const pkg = Buffer.from(makePackage());
      pkg[pkg.length - 3] = (pkg[pkg.length - 3] ?? 0) ^ 0xff;
      const r = await stage(dir, pkg);
      assert.ok(r.staged);
      const v = await verifyStaged(r.staged, testKeys().trust);
      assert.deepEqual(v.ok ? 'ok' : v.reason, 'hash-mismatch');
    });
  });

  void test('package signed by an untrusted key -> bad-signature; unknown key id -> unknown-key', async () => {
    await withTempDir(async (dir) => {
      const r = await stage(dir, makePackage({ keys: otherKeys() }));
      assert.ok(r.staged);
      const v = await verifyStaged(r.staged, testKeys().trust);
      assert.deepEqual(v.ok ? 'ok' : v.reason, 'bad-signature');
      const v2 = await verifyStaged(r.staged, new Map());
      assert.deepEqual(v2.ok ? 'ok' : v2.reason, 'unknown-key');
    });
  });

  void test('manifest edited after signing (version bumped) -> bad-signature', async () => {
    await withTempDir(async (dir) => {
      const pkg = makePackage();
      const len = pkg.readUInt32BE(5);
      const manifest = JSON.parse(pkg.subarray(HEADER_FIXED, HEADER_FIXED + len).toString('utf8')) as Manifest;
      const forged = Buffer.concat([encodeHeader({ ...manifest, version: '9.9.9' }), pkg.subarray(HEADER_FIXED + len)]);
      const r = await stage(dir, forged);
      assert.ok(r.staged);
      const v = await verifyStaged(r.staged, testKeys().trust);
      assert.deepEqual(v.ok ? 'ok' : v.reason, 'bad-signature');
    });
  });

  void test('truncated package -> truncated; extra bytes -> size-mismatch', async () => {
    await withTempDir(async (dir) => {
      const pkg = makePackage();
      const t = await stage(dir, pkg.subarray(0, pkg.length - 10));
      assert.ok(t.staged);
      const v = await verifyStaged(t.staged, testKeys().trust);
      assert.deepEqual(v.ok ? 'ok' : v.reason, 'truncated');
      const x = await stage(dir, Buffer.concat([pkg, Buffer.from('junk')]));
      assert.ok(x.staged);
      const v2 = await verifyStaged(x.staged, testKeys().trust);
      assert.deepEqual(v2.ok ? 'ok' : v2.reason, 'size-mismatch');
      const h = await stage(dir, pkg.subarray(0, 6));
      assert.ok(h.staged);
      const v3 = await verifyStaged(h.staged, testKeys().trust);
      assert.deepEqual(v3.ok ? 'ok' : v3.reason, 'truncated');
    });
  });

  void test('foreign file -> UNSUPPORTED_PACKAGE_TYPE from the 4th byte, staging file removed', async () => {
    await withTempDir(async (dir) => {
      const w = await PackageStagingWriter.create(join(dir, 's'), { quotaBytes: 1000 });
      const r = await w.write(Buffer.from('PK\u0003\u0004 zip file'));
      assert.deepEqual(r.ok ? 'ok' : r.error, 'UNSUPPORTED_PACKAGE_TYPE');
      assert.deepEqual(await readdir(dir), []);
      const again = await w.write(Buffer.from('x'));
      assert.deepEqual(again.ok ? 'ok' : again.error, 'UNSUPPORTED_PACKAGE_TYPE');
    });
  });

  void test('quota exceeded by the bytes written -> NOT_ENOUGH_STORAGE, staging file removed', async () => {
    await withTempDir(async (dir) => {
      const big = makePackage({ files: [{ path: 'blob', data: 'x'.repeat(5000) }] });
      // A manifest that fits but whose declared size exceeds the quota fails as soon as it is read.
      const r = await stage(dir, big, 64, 2000);
      assert.ok(r.failure);
      assert.equal(r.failure.error, 'NOT_ENOUGH_STORAGE');
      assert.match(r.failure.detail, /declares/);
      assert.deepEqual(await readdir(dir), []);
      // Without a readable manifest size, the byte count itself trips the quota.
      const w = await PackageStagingWriter.create(join(dir, 's2'), { quotaBytes: 8 });
      const ok = await w.write(Buffer.from('DPKG'));
      assert.equal(ok.ok, true);
      const over = await w.write(Buffer.from([1, 0, 0, 0, 10, 0]));
      assert.deepEqual(over.ok ? 'ok' : over.error, 'NOT_ENOUGH_STORAGE');
      assert.deepEqual(await readdir(dir), []);
    });
  });

  void test('a RAM download budget exceeded -> OUT_OF_MEMORY (declared size first, else the bytes), staging file removed', async () => {
    await withTempDir(async (dir) => {
      const big = makePackage({ files: [{ path: 'blob', data: 'x'.repeat(5000) }] });
      const w = await PackageStagingWriter.create(join(dir, 's'), { quotaBytes: 1 << 20, memoryBytes: 2000 });
      const header = big.subarray(0, 512);
      const r = await w.write(header);
      assert.deepEqual(r.ok ? 'ok' : [r.error, /declares/.test(r.detail)], ['OUT_OF_MEMORY', true]);
      assert.deepEqual(await readdir(dir), []);
      // The byte count alone trips it when no size is readable yet.
      const w2 = await PackageStagingWriter.create(join(dir, 's2'), { quotaBytes: 1 << 20, memoryBytes: 6 });
      assert.equal((await w2.write(Buffer.from('DPKG'))).ok, true);
      const over = await w2.write(Buffer.from([1, 0, 0]));
      assert.deepEqual(over.ok ? 'ok' : over.error, 'OUT_OF_MEMORY');
      // A package within the budget stages normally.
      const small = makePackage();
      const fits = await PackageStagingWriter.create(join(dir, 's3'), { quotaBytes: 1 << 20, memoryBytes: small.length });
      assert.equal((await fits.write(small)).ok, true);
      assert.equal((await fits.finish()).bytes, small.length);
    });
  });

  void test('a package with lifecycle scripts on a device without a script runtime -> UNSUPPORTED_PACKAGE_TYPE as soon as the manifest is read', async () => {
    await withTempDir(async (dir) => {
      const scripted = makePackage({ files: [{ path: 'i.sh', data: 'true\n' }], scripts: { install: 'i.sh' } });
      const w = await PackageStagingWriter.create(join(dir, 's'), { quotaBytes: 1 << 20, runsScripts: false });
      const r = await w.write(scripted);
      assert.deepEqual(r.ok ? 'ok' : [r.error, /script runtime/.test(r.detail)], ['UNSUPPORTED_PACKAGE_TYPE', true]);
      assert.deepEqual(await readdir(dir), []);
      // Without scripts the same device accepts it; with a runtime the scripted one is fine.
      const plain = await PackageStagingWriter.create(join(dir, 'p'), { quotaBytes: 1 << 20, runsScripts: false });
      assert.equal((await plain.write(makePackage())).ok, true);
      await plain.abort();
      const runtime = await PackageStagingWriter.create(join(dir, 'q'), { quotaBytes: 1 << 20, runsScripts: true });
      assert.equal((await runtime.write(scripted)).ok, true);
      await runtime.abort();
    });
  });

  void test('staging batches writes (64 KiB at a time, not one write per block); finish() puts every byte in the file', async () => {
    await withTempDir(async (dir) => {
      const pkg = makePackage({ files: [{ path: 'blob', data: randomBytes(150_000) }] });
      const path = join(dir, 'batched.dpkg');
      const w = await PackageStagingWriter.create(path, { quotaBytes: 1 << 20 });
      const blocks = chunks(pkg, 1024);
      for (const b of blocks.slice(0, 10)) assert.equal((await w.write(b)).ok, true);
      assert.equal(w.bytesWritten, 10 * 1024);
      assert.equal((await stat(path)).size, 0, 'nothing written yet: below one batch');
      for (const b of blocks.slice(10, 70)) assert.equal((await w.write(b)).ok, true);
      assert.equal((await stat(path)).size % (64 * 1024), 0);
      assert.ok((await stat(path)).size >= 64 * 1024);
      for (const b of blocks.slice(70)) assert.equal((await w.write(b)).ok, true);
      assert.deepEqual(await w.flushed(), { ok: true, bytes: pkg.length });
      const staged = await w.finish();
      assert.equal(staged.bytes, pkg.length);
      assert.deepEqual(await readFile(path), pkg);
      assert.equal((await verifyStaged(staged, testKeys().trust)).ok, true);
    });
  });

  void test('the staging directory is created when missing', async () => {
    await withTempDir(async (dir) => {
      const w = await PackageStagingWriter.create(join(dir, 'a', 'b', 's.dpkg'), { quotaBytes: 100 });
      assert.equal((await w.write(Buffer.from('DPKG'))).ok, true);
      await w.abort();
      assert.deepEqual(await readdir(join(dir, 'a', 'b')), []);
    });
  });

  void test('resume: a partial staging file is re-hashed and completed', async () => {
    await withTempDir(async (dir) => {
      const pkg = makePackage();
      const path = join(dir, 'staging.dpkg');
      const cut = Math.floor(pkg.length / 2);
      await writeFile(path, pkg.subarray(0, cut));
      const w = await PackageStagingWriter.resume(path, { quotaBytes: 1 << 20 });
      assert.equal(w.bytesWritten, cut);
      assert.equal((await w.write(pkg.subarray(cut))).ok, true);
      const staged = await w.finish();
      const v = await verifyStaged(staged, testKeys().trust);
      assert.equal(v.ok, true);
      assert.deepEqual(await readFile(path), pkg);
      const again = await verifyPackageFile(path, testKeys().trust);
      assert.equal(again.ok, true);
    });
  });

  void test('manifest naming a script missing from the payload -> archive-invalid', async () => {
    await withTempDir(async (dir) => {
      const r = await stage(dir, makePackage({ scripts: { install: 'scripts/install.sh' } }));
      assert.ok(r.staged);
      const v = await verifyStaged(r.staged, testKeys().trust);
      assert.deepEqual(v.ok ? 'ok' : v.reason, 'archive-invalid');
    });
  });
});

void describe('object9 package: DARC archive', () => {
  void test('paths that could escape the extraction directory are refused when building', () => {
    for (const path of ['../x', '/etc/passwd', 'a/../../b', 'a//b', './a', 'a\\b', '']) {
      assert.throws(() => buildArchive([{ path, data: 'x' }]), /ArchiveError|path|segment|character/);
    }
    assert.throws(() => buildArchive([{ path: 'a' }, { path: 'a' }]), /duplicate/);
  });

  void test('extraction recreates files, directories and permissions', async () => {
    await withTempDir(async (dir) => {
      const archive = buildArchive([
        { path: 'etc', type: 'dir' },
        { path: 'etc/conf', data: 'k=v' },
        { path: 'bin/run', data: '#!/bin/sh\n', mode: 0o755 },
      ]);
      const file = join(dir, 'a.darc');
      await writeFile(file, Buffer.concat([Buffer.from('prefix'), archive]));
      const out = join(dir, 'out');
      await (await import('node:fs/promises')).mkdir(out);
      const entries = await extractArchive(file, 6, archive.length, out);
      assert.equal(entries.length, 3);
      assert.equal(await readFile(join(out, 'etc/conf'), 'utf8'), 'k=v');
      assert.equal((await stat(join(out, 'bin/run'))).mode & 0o777, 0o755);
    });
  });

  void test('a hand-crafted archive entry with ".." is refused on extraction', async () => {
    await withTempDir(async (dir) => {
      const good = buildArchive([{ path: 'ab/cd', data: 'x' }]);
      const evil = Buffer.from(good);
      evil.write('../cd', 4 + 3, 'utf8'); // same length as "ab/cd"
      const file = join(dir, 'evil.darc');
      await writeFile(file, evil);
      const out = join(dir, 'out');
      await (await import('node:fs/promises')).mkdir(out);
      await assert.rejects(extractArchive(file, 0, evil.length, out), /forbidden path segment/);
      assert.deepEqual(await readdir(out), []);
    });
  });
});
