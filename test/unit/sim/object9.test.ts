/**
 * The simulated devices' Object 9 hardware: each behaviour is the cause a real device would
 * have for one Update Result (seed spec §5.1.1: download errors end in INITIAL with 3–9).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseProfile, ProfileError } from '../../../src/sim/index.js';
import { SimulatedNetworkFetcher, parseObject9Behaviours, simulatedSoftwareManagement } from '../../../src/sim/object9.js';
import { FetchError, type PackageFetcher } from '../../../src/lwm2m/objects/software-management/index.js';
import { ManualClock, systemClock } from '../../../src/util/clock.js';
import { makePackage, testKeys } from '../lwm2m/object9-support.js';

const base = { manufacturer: 'Acme', model: 'A', firmwareVersion: '1.0' };

/** Serves `body` in 100-byte chunks from any offset, as a resumable downloader would. */
class BytesFetcher implements PackageFetcher {
  readonly offsets: number[] = [];
  constructor(private readonly body: Buffer) {}
  supports(): boolean {
    return true;
  }
  resumable(): boolean {
    return true;
  }
  async fetch(_uri: string, opts: Parameters<PackageFetcher['fetch']>[1]): Promise<void> {
    this.offsets.push(opts.offset);
    for (let i = opts.offset; i < this.body.length; i += 100) {
      if (!(await opts.onData(this.body.subarray(i, Math.min(i + 100, this.body.length))))) return;
    }
  }
}

test('sim object9: profile behaviours are validated field by field', () => {
  const ok = parseProfile({ models: [{ ...base, behaviours: { installer: 'sim-good', storageBytes: 4096, memoryBytes: 2048, scripts: false, pullSchemes: ['coap'], linkDropsAfterBytes: 10, flashFault: true, encoding: 'registry' } }] });
  assert.deepEqual(ok.models[0]!.behaviours, { installer: 'sim-good', storageBytes: 4096, memoryBytes: 2048, scripts: false, pullSchemes: ['coap'], linkDropsAfterBytes: 10, flashFault: true, encoding: 'registry' });
  const bad = (behaviours: unknown, message: RegExp): void =>
    assert.throws(() => parseProfile({ models: [{ ...base, behaviours }] }), (e: unknown) => e instanceof ProfileError && message.test(e.message));
  bad({ installer: 'sim-good', storageBytes: -1 }, /storageBytes must be a whole number/);
  bad({ installer: 'sim-good', memoryBytes: 1.5 }, /memoryBytes must be a whole number/);
  bad({ installer: 'sim-good', scripts: 'no' }, /scripts must be true or false/);
  bad({ installer: 'sim-good', pullSchemes: ['ftp'] }, /pullSchemes must be a list/);
  bad({ installer: 'sim-good', encoding: 'v2' }, /encoding must be "seed" or "registry"/);
  bad({ installer: 'sim-good', colour: 'red' }, /colour: unknown behaviour/);
  bad({ installer: 'sim-good', linkFlakyEveryBytes: 'often' }, /linkFlakyEveryBytes must be a whole number/);
  bad({ storageBytes: 10 }, /need an installer/);
  assert.deepEqual(parseObject9Behaviours({}, 'b'), {});
});

test('sim object9: the downloader refuses schemes the device does not speak', () => {
  const f = new SimulatedNetworkFetcher(new BytesFetcher(Buffer.alloc(1)), ['coap'], undefined);
  assert.equal(f.supports('coap://h/pkg/x'), true);
  assert.equal(f.supports('http://h/pkg/x'), false);
  assert.equal(f.supports('not a uri'), false);
});

test('sim object9: a lost link delivers exactly N bytes of a download, then Connection lost, and every later attempt at that URI fails at once', async () => {
  const body = Buffer.from(Array.from({ length: 1000 }, (_, i) => i & 0xff));
  const f = new SimulatedNetworkFetcher(new BytesFetcher(body), ['coap'], { lostAfterBytes: 250 });
  const got: Buffer[] = [];
  const ac = new AbortController();
  const collect = (offset: number) => f.fetch('coap://h/p', { offset, signal: ac.signal, onData: (c) => Promise.resolve((got.push(Buffer.from(c)), true)) });
  await assert.rejects(collect(0), (e: unknown) => e instanceof FetchError && e.result === 'CONNECTION_LOST' && /after 250 bytes/.test(e.message));
  assert.deepEqual(Buffer.concat(got), body.subarray(0, 250));
  await assert.rejects(collect(250), (e: unknown) => e instanceof FetchError && e.result === 'CONNECTION_LOST' && /no link/.test(e.message));
  assert.equal(Buffer.concat(got).length, 250, 'nothing more after the link is lost');
  // A link that does not drop passes everything through.
  const whole: Buffer[] = [];
  await new SimulatedNetworkFetcher(new BytesFetcher(body), ['coap']).fetch('coap://h/p', { offset: 0, signal: ac.signal, onData: (c) => Promise.resolve((whole.push(Buffer.from(c)), true)) });
  assert.deepEqual(Buffer.concat(whole), body);
});

test('sim object9: a flaky link drops every N bytes; Object 9 resumes each time from the staged bytes, still in DOWNLOAD STARTED (seed §5.1.2.2), and delivers', async () => {
  const pkg = makePackage({ files: [{ path: 'blob', data: 'y'.repeat(3000) }] });
  const dir = await mkdtemp(join(tmpdir(), 'depot-sim-o9-'));
  try {
    const inner = new BytesFetcher(pkg);
    const obj9 = await simulatedSoftwareManagement({ behaviours: { installer: 'sim-good', linkFlakyEveryBytes: 1000 }, deviceDir: dir, trust: testKeys().trust, clock: systemClock, fetcher: inner });
    const inst = await obj9.create(0);
    const states: string[] = [];
    obj9.onChange((c) => states.push(c.state.pkg));
    await inst.writePackageUri('coap://depot/pkg/t');
    await inst.settled();
    assert.equal(inst.state.pkg, 'DELIVERED');
    // One request per 1000 bytes, each from where the last stopped; no state change in between.
    assert.deepEqual(inner.offsets, Array.from({ length: Math.ceil(pkg.length / 1000) }, (_, i) => i * 1000));
    assert.deepEqual(states, ['DOWNLOAD_STARTED', 'DOWNLOADED', 'DELIVERED']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Pulls `pkg` into a fresh simulated Object 9 with `behaviours`; returns the final Update Result (seed numbering). */
async function pullWith(behaviours: Parameters<typeof simulatedSoftwareManagement>[0]['behaviours'], pkg: Buffer, uri = 'coap://depot/pkg/t'): Promise<{ result: number; state: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'depot-sim-o9-'));
  try {
    const obj9 = await simulatedSoftwareManagement({ behaviours, deviceDir: dir, trust: testKeys().trust, clock: systemClock, fetcher: new BytesFetcher(pkg) });
    const inst = await obj9.create(0);
    await inst.writePackageUri(uri);
    await inst.settled();
    const value = (rid: number): number => {
      const r = inst.read(rid);
      assert.ok(r.ok);
      return Number(r.value.value);
    };
    return { result: value(9), state: value(7) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('sim object9: each hardware limit ends the download in INITIAL with its own result (seed §5.1.1, results 3, 4, 5, 7, 8, 9)', async () => {
  const pkg = makePackage({ files: [{ path: 'blob', data: 'x'.repeat(4000) }] });
  const scripted = makePackage({ files: [{ path: 'i.sh', data: 'true\n' }], scripts: { install: 'i.sh' } });
  const INITIAL = 1;
  assert.deepEqual(await pullWith({ installer: 'sim-good', storageBytes: 1000 }, pkg), { state: INITIAL, result: 3 });
  assert.deepEqual(await pullWith({ installer: 'sim-good', memoryBytes: 1000 }, pkg), { state: INITIAL, result: 4 });
  assert.deepEqual(await pullWith({ installer: 'sim-good', linkDropsAfterBytes: 700 }, pkg), { state: INITIAL, result: 5 });
  assert.deepEqual(await pullWith({ installer: 'sim-good', scripts: false }, scripted), { state: INITIAL, result: 7 });
  assert.deepEqual(await pullWith({ installer: 'sim-good', pullSchemes: ['coap'] }, pkg, 'http://depot/pkg/t'), { state: INITIAL, result: 8 });
  assert.deepEqual(await pullWith({ installer: 'sim-good', flashFault: true }, pkg), { state: INITIAL, result: 9 });
  // The same package on a device without those limits is delivered (state 4 DELIVERED, result 0).
  assert.deepEqual(await pullWith({ installer: 'sim-good' }, pkg), { state: 4, result: 0 });
});

test('sim object9: a slow link (downloadBytesPerSecond) holds each chunk as long as the link takes to carry it (ManualClock)', async () => {
  assert.deepEqual(parseObject9Behaviours({ installer: 'sim-good', downloadBytesPerSecond: 1000 }, 'b'), { installer: 'sim-good', downloadBytesPerSecond: 1000 });
  assert.throws(() => parseObject9Behaviours({ installer: 'sim-good', downloadBytesPerSecond: 0 }, 'b'), /downloadBytesPerSecond must be a whole number of bytes, at least 1/);
  const clock = new ManualClock(0);
  const inner = new BytesFetcher(Buffer.alloc(300, 1));
  const slow = new SimulatedNetworkFetcher(inner, ['coap'], { bytesPerSecond: 1000, clock });
  const got: number[] = [];
  const done = slow.fetch('coap://depot/pkg/x', { offset: 0, signal: new AbortController().signal, onData: (chunk) => Promise.resolve(got.push(chunk.length) > 0) });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, [], 'nothing before the first 100 bytes have crossed the link');
  clock.advance(99);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, []);
  for (let i = 0; i < 3; i++) {
    clock.advance(100);
    await new Promise((r) => setImmediate(r));
  }
  await done;
  assert.deepEqual(got, [100, 100, 100], '300 bytes at 1000 B/s: 300 ms');
});
