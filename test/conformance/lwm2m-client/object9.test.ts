import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { strict as assert } from 'node:assert';
import { ContentFormat } from '../../../src/lwm2m/index.js';
import { SoftwareManagementAdapter } from '../../../src/lwm2m/client/index.js';
import type { ClientResponse } from '../../../src/coap/client.js';
import { harness, makePackage } from '../../unit/lwm2m/object9-support.js';
import { setup, waitUntil } from './support.js';

const text = (r: ClientResponse): string => Buffer.from(r.payload).toString('utf8');

async function withObject9(fn: (s: Awaited<ReturnType<typeof setup>>) => Promise<void>): Promise<void> {
  const s = await setup({ start: false });
  const h = harness(s.dir);
  s.client.addObject(new SoftwareManagementAdapter(h.obj));
  try {
    await s.client.start();
    await waitUntil(() => s.client.state === 'registered');
    await fn(s);
  } finally {
    await s.close();
  }
}

test('TS Core 1.1 §6.3.6 Create on Object 9: 2.01 with Location-Path 9/0, and the registration Update lists /9/0', async () => {
  await withObject9(async (s) => {
    const reg = s.driver.requests.find((r) => r.path === '/rd');
    assert.match(reg!.text, /,<\/9>$/);
    const r = await s.driver.request('POST', '/9', { payload: new Uint8Array(0) });
    assert.equal(r.codeText, '2.01');
    const loc = r.options.filter((o) => o.number === 8).map((o) => Buffer.from(o.value).toString());
    assert.deepEqual(loc, ['9', '0']);
    const upd = await s.driver.waitFor((x) => x.method === 'POST' && x.path === '/rd/r1' && x.payload.length > 0);
    assert.match(upd.text, /,<\/9\/0>$/);
    // Create with an existing id → 4.00.
    assert.equal((await s.driver.request('POST', '/9', { payload: Buffer.from('0800', 'hex'), contentFormat: ContentFormat.Tlv })).codeText, '4.00');
  });
});

test('TS Core 1.1 §6.3.1/§6.3.3/§6.3.5 on Object 9: exact codes for reads, writes and executes by state', async () => {
  await withObject9(async (s) => {
    assert.equal((await s.driver.request('POST', '/9')).codeText, '2.01');
    const state = await s.driver.request('GET', '/9/0/7');
    assert.equal(state.codeText, '2.05');
    assert.equal(text(state), '1'); // seed profile: INITIAL
    assert.equal((await s.driver.request('GET', '/9/0/2')).codeText, '4.05'); // Package is write-only
    assert.equal((await s.driver.request('GET', '/9/0/4')).codeText, '4.05'); // Install is executable
    assert.equal((await s.driver.request('GET', '/9/0/5')).codeText, '4.04'); // Checkpoint not set
    assert.equal((await s.driver.request('GET', '/9/1/7')).codeText, '4.04');
    assert.equal((await s.driver.request('PUT', '/9/0/7', { payload: '3', contentFormat: ContentFormat.PlainText })).codeText, '4.05');
    assert.equal((await s.driver.request('POST', '/9/0/4')).codeText, '4.05'); // Install in INITIAL: no effect
    assert.equal((await s.driver.request('POST', '/9/0/6', { payload: '7' })).codeText, '4.00'); // Uninstall argument
    assert.equal((await s.driver.request('PUT', '/9/0/8', { payload: '1', contentFormat: ContentFormat.PlainText })).codeText, '2.04');
    assert.equal(text(await s.driver.request('GET', '/9/0/8')), '1');
    const disc = await s.driver.request('GET', '/9/0', { accept: ContentFormat.LinkFormat });
    assert.equal(text(disc), '</9/0>,</9/0/0>,</9/0/1>,</9/0/2>,</9/0/3>,</9/0/4>,</9/0/6>,</9/0/7>,</9/0/8>,</9/0/9>,</9/0/10>,</9/0/11>,</9/0/12>');
    assert.equal((await s.driver.request('DELETE', '/9/0')).codeText, '2.02');
    assert.equal((await s.driver.request('GET', '/9/0')).codeText, '4.04');
  });
});

test('TS Core 1.1 §6.3.3 block-wise Package write, §6.3.5 Install, §6.4.1 Update State notifications, registration Update for Update Supported Objects', async () => {
  await withObject9(async (s) => {
    assert.equal((await s.driver.request('POST', '/9')).codeText, '2.01');
    assert.equal((await s.driver.request('PUT', '/9/0/8', { payload: '1', contentFormat: ContentFormat.PlainText })).codeText, '2.04');
    const states: string[] = [];
    const obs = await s.driver.observe('/9/0/7', { onNotification: (r) => states.push(text(r)) });
    assert.equal(text(obs.first), '1');
    const pkg = makePackage({ name: 'app', version: '2.0.0', files: [{ path: 'bin/app', data: randomBytes(3000), mode: 0o755 }] });
    assert.ok(pkg.length > 1024, 'the package needs Block1');
    const w = await s.driver.request('PUT', '/9/0/2', { payload: pkg, contentFormat: ContentFormat.Opaque, blockSize: 512 });
    assert.equal(w.codeText, '2.04');
    await waitUntil(() => states.at(-1) === '4');
    assert.equal(text(await s.driver.request('GET', '/9/0/0')), 'app');
    assert.equal(text(await s.driver.request('GET', '/9/0/1')), '2.0.0');
    const before = s.driver.requests.length;
    assert.equal((await s.driver.request('POST', '/9/0/4')).codeText, '2.04');
    await waitUntil(() => states.at(-1) === '5');
    assert.deepEqual([...new Set(states)], ['2', '3', '4', '5']);
    // A second block-wise Package write once installed: no effect, 4.05 when the transfer ends.
    const again = await s.driver.request('PUT', '/9/0/2', { payload: pkg, contentFormat: ContentFormat.Opaque, blockSize: 512 });
    assert.equal(again.codeText, '4.05');
    assert.equal(text(await s.driver.request('GET', '/9/0/7')), '5');
    // Update Supported Objects was set: the install changes the object list → Update with a link body.
    const upd = await s.driver.waitFor((x) => x.method === 'POST' && x.path === '/rd/r1' && x.payload.length > 0, 5000, before);
    assert.equal(upd.contentFormat, ContentFormat.LinkFormat);
    await obs.cancel();
  });
});
