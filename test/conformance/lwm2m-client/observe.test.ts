import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ContentFormat, Value, decodeRecords, formatPath } from '../../../src/lwm2m/index.js';
import type { ClientResponse } from '../../../src/coap/client.js';
import { setup, waitUntil } from './support.js';

const text = (r: ClientResponse): string => Buffer.from(r.payload).toString('utf8');

test('TS Core 1.1 §6.4.1 Observe: a Write by the server notifies the observer of the resource with the new value', async () => {
  const s = await setup();
  try {
    await waitUntil(() => s.client.state === 'registered');
    const seen: string[] = [];
    const obs = await s.driver.observe('/3/0/14', { onNotification: (r) => seen.push(text(r)) });
    assert.equal(obs.established, true);
    assert.equal(text(obs.first), '+00:00');
    assert.equal((await s.driver.request('PUT', '/3/0/14', { payload: '+05:30', contentFormat: ContentFormat.PlainText })).codeText, '2.04');
    await waitUntil(() => seen.length >= 1);
    assert.deepEqual(seen, ['+05:30']);
    await obs.cancel();
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.4.1 Observe: a device-side change notifies observers of the instance, not of unrelated resources', async () => {
  const s = await setup();
  try {
    await waitUntil(() => s.client.state === 'registered');
    const instance: ClientResponse[] = [];
    const other: ClientResponse[] = [];
    const o1 = await s.driver.observe('/3/0', { onNotification: (r) => instance.push(r) }, { accept: ContentFormat.SenmlCbor });
    const o2 = await s.driver.observe('/3/0/1', { onNotification: (r) => other.push(r) });
    s.client.device.set(0, 9, Value.integer(77));
    await waitUntil(() => instance.length >= 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(instance.length, 1);
    assert.equal(other.length, 0, 'Model Number did not change');
    assert.equal(instance[0]!.contentFormat, ContentFormat.SenmlCbor);
    const battery = decodeRecords(ContentFormat.SenmlCbor, instance[0]!.payload).find((r) => formatPath(r.path) === '/3/0/9');
    assert.equal(battery?.value.value, 77);
    await o1.cancel();
    await o2.cancel();
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.4.1 Observe with §6.3.4 Write-Attributes: pmin delays a notification, pmax forces one (ManualClock)', async () => {
  const s = await setup({ manualClock: true });
  const clock = s.clock!;
  try {
    await waitUntil(() => s.client.state === 'registered');
    assert.equal((await s.driver.request('PUT', '/3/0/14?pmin=10&pmax=60')).codeText, '2.04');
    const seen: { v: string; at: number }[] = [];
    const t0 = clock.now();
    const obs = await s.driver.observe('/3/0/14', { onNotification: (r) => seen.push({ v: text(r), at: clock.now() - t0 }) });
    assert.equal(obs.established, true);
    s.client.device.set(0, 14, Value.string('+01:00'));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(seen, [], 'held back by pmin');
    clock.advance(10_000);
    await waitUntil(() => seen.length === 1);
    assert.deepEqual(seen, [{ v: '+01:00', at: 10_000 }]);
    // No change: pmax (60 s after the last notification) sends the current value.
    clock.advance(59_999);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(seen.length, 1);
    clock.advance(1);
    await waitUntil(() => seen.length === 2);
    assert.deepEqual(seen[1], { v: '+01:00', at: 70_000 });
    await obs.cancel();
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.4 Send: POST /dp with SenML CBOR records of the requested paths', async () => {
  const s = await setup();
  try {
    await waitUntil(() => s.client.state === 'registered');
    const code = await s.client.send(['/3/0/0', '/4/0/2']);
    assert.equal(code, '2.04');
    const dp = await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/dp');
    assert.equal(dp.contentFormat, ContentFormat.SenmlCbor);
    const records = decodeRecords(ContentFormat.SenmlCbor, dp.payload);
    assert.deepEqual(records.map((r) => [formatPath(r.path), r.value.value]), [['/3/0/0', 'Acme Devices'], ['/4/0/2', -65]]);
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.4.1 Observe with §6.3.4 gt/lt/st: only crossings and steps of at least st are notified', async () => {
  const s = await setup();
  try {
    await waitUntil(() => s.client.state === 'registered');
    s.client.device.set(0, 9, Value.integer(50));
    assert.equal((await s.driver.request('PUT', '/3/0/9?st=5&lt=20')).codeText, '2.04');
    const seen: string[] = [];
    const obs = await s.driver.observe('/3/0/9', { onNotification: (r) => seen.push(text(r)) });
    assert.equal(text(obs.first), '50');
    for (const v of [52, 54, 56, 57, 60, 61, 22, 19, 18]) {
      s.client.device.set(0, 9, Value.integer(v));
      await new Promise((r) => setTimeout(r, 15));
    }
    await waitUntil(() => seen.length >= 4);
    await new Promise((r) => setTimeout(r, 30));
    // 56 (|56-50| >= 5), 61 (>= 5 from 56), 22 (step 39), 19 (crosses lt=20), 18 not (step 1, no crossing).
    assert.deepEqual(seen, ['56', '61', '22', '19']);
    await obs.cancel();
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.4.1 Observe-Composite (FETCH / with Observe): a change notifies with the current values of the paths', async () => {
  const s = await setup();
  try {
    await waitUntil(() => s.client.state === 'registered');
    const seen: string[] = [];
    const single: string[] = [];
    const body = Buffer.from(JSON.stringify([{ n: '/3/0/14' }, { n: '/4/0/2' }]));
    const obs = await s.driver.client.observe(s.driver.deviceUri('/'), { onNotification: (r) => seen.push(text(r)) }, { fetch: { payload: body, contentFormat: ContentFormat.SenmlJson }, accept: ContentFormat.SenmlJson });
    const o2 = await s.driver.observe('/3/0/1', { onNotification: (r) => single.push(text(r)) });
    assert.equal(obs.established, true);
    assert.deepEqual(JSON.parse(text(obs.first)), [{ n: '/3/0/14', vs: '+00:00' }, { n: '/4/0/2', v: -65 }]);
    s.client.device.set(0, 14, Value.string('+09:00'));
    await waitUntil(() => seen.length >= 1);
    assert.deepEqual(JSON.parse(seen[0]!), [{ n: '/3/0/14', vs: '+09:00' }, { n: '/4/0/2', v: -65 }]);
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(single, [], 'the single-path observer of /3/0/1 is not notified');
    await obs.cancel();
    await o2.cancel();
  } finally {
    await s.close();
  }
});
