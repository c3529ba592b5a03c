import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Code } from '../../../src/coap/codes.js';
import { ContentFormat, decode, decodeRecords, formatPath } from '../../../src/lwm2m/index.js';
import type { InstanceNode } from '../../../src/lwm2m/index.js';
import { setup, waitUntil } from './support.js';

async function registered(): Promise<Awaited<ReturnType<typeof setup>>> {
  const s = await setup();
  await waitUntil(() => s.client.state === 'registered');
  return s;
}

function text(r: { payload: Uint8Array }): string {
  return Buffer.from(r.payload).toString('utf8');
}

test('TS Core 1.1 §6.3.1 Read: one resource without Accept answers plain text (Manufacturer)', async () => {
  const s = await registered();
  try {
    const r = await s.driver.request('GET', '/3/0/0');
    assert.equal(r.codeText, '2.05');
    assert.equal(r.contentFormat, ContentFormat.PlainText);
    assert.equal(text(r), 'Acme Devices');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.3.1 Read: the Device instance without Accept answers TLV with the configured facts', async () => {
  const s = await registered();
  try {
    const r = await s.driver.request('GET', '/3/0');
    assert.equal(r.codeText, '2.05');
    assert.equal(r.contentFormat, ContentFormat.Tlv);
    const node = decode(ContentFormat.Tlv, [3, 0], r.payload) as InstanceNode;
    const values = new Map(node.resources.map((res) => [res.id, res.kind === 'resource' ? res.value.value : res.instances.map((i) => i.value.value)]));
    assert.equal(values.get(0), 'Acme Devices');
    assert.equal(values.get(1), 'GW-200');
    assert.equal(values.get(2), 'SN-0001');
    assert.equal(values.get(3), '4.2.1');
    assert.equal(values.get(17), 'gateway');
    assert.equal(values.get(19), 'AcmeOS 5.10');
    assert.equal(values.get(16), 'U');
    assert.deepEqual(values.get(11), [0]);
    assert.equal(values.has(4), false, 'executable resources are not read');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.3.1 Read with Accept: SenML CBOR (112) and SenML JSON (110); unsupported Accept → 4.06', async () => {
  const s = await registered();
  try {
    const cbor = await s.driver.request('GET', '/3/0', { accept: ContentFormat.SenmlCbor });
    assert.equal(cbor.codeText, '2.05');
    assert.equal(cbor.contentFormat, ContentFormat.SenmlCbor);
    const records = decodeRecords(ContentFormat.SenmlCbor, cbor.payload);
    assert.deepEqual(
      records.filter((x) => [0, 1].includes(x.path[2] as number)).map((x) => [formatPath(x.path), x.value.value]),
      [['/3/0/0', 'Acme Devices'], ['/3/0/1', 'GW-200']],
    );
    const json = await s.driver.request('GET', '/3/0/1', { accept: ContentFormat.SenmlJson });
    assert.equal(json.contentFormat, ContentFormat.SenmlJson);
    assert.deepEqual(JSON.parse(text(json)), [{ bn: '/3/0/1', vs: 'GW-200' }]);
    const bad = await s.driver.request('GET', '/3/0', { accept: ContentFormat.Lwm2mJson });
    assert.equal(bad.codeText, '4.06');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.3.1 Read errors: 4.04 for missing object/instance/resource, 4.05 for an executable resource', async () => {
  const s = await registered();
  try {
    assert.equal((await s.driver.request('GET', '/42')).codeText, '4.04');
    assert.equal((await s.driver.request('GET', '/3/1')).codeText, '4.04');
    assert.equal((await s.driver.request('GET', '/3/0/7')).codeText, '4.04');
    assert.equal((await s.driver.request('GET', '/3/0/11/5')).codeText, '4.04');
    assert.equal((await s.driver.request('GET', '/3/0/4')).codeText, '4.05');
    assert.equal((await s.driver.request('GET', '/x/y')).codeText, '4.04');
    const ri = await s.driver.request('GET', '/3/0/11/0');
    assert.equal(ri.codeText, '2.05');
    assert.equal(text(ri), '0');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.3.1: the Security object is not accessible to a DM server (4.01)', async () => {
  const s = await registered();
  try {
    assert.equal((await s.driver.request('GET', '/0/0')).codeText, '4.01');
    assert.equal((await s.driver.request('PUT', '/0/0/0', { payload: 'coap://x', contentFormat: 0 })).codeText, '4.01');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.3.3 Write: 2.04 on a writable resource, 4.05 read-only, 4.04 undefined, 4.00 without Content-Format', async () => {
  const s = await registered();
  try {
    const ok = await s.driver.request('PUT', '/3/0/14', { payload: '+02:00', contentFormat: ContentFormat.PlainText });
    assert.equal(ok.codeText, '2.04');
    assert.equal(text(await s.driver.request('GET', '/3/0/14')), '+02:00');
    assert.equal((await s.driver.request('PUT', '/3/0/0', { payload: 'Evil', contentFormat: ContentFormat.PlainText })).codeText, '4.05');
    assert.equal(text(await s.driver.request('GET', '/3/0/0')), 'Acme Devices');
    assert.equal((await s.driver.request('PUT', '/3/0/99', { payload: 'x', contentFormat: ContentFormat.PlainText })).codeText, '4.04');
    assert.equal((await s.driver.request('PUT', '/3/0/14', { payload: '+01:00' })).codeText, '4.00');
    assert.equal((await s.driver.request('PUT', '/3/0/14', { payload: '+01:00', contentFormat: 9999 })).codeText, '4.15');
    // A block-wise (Block1) Write of an ordinary resource is reassembled and handled as one Write.
    const long = 'Europe/Amsterdam-' + 'x'.repeat(60);
    assert.equal((await s.driver.request('PUT', '/3/0/15', { payload: long, contentFormat: ContentFormat.PlainText, blockSize: 16 })).codeText, '2.04');
    assert.equal(text(await s.driver.request('GET', '/3/0/15')), long);
    // Lifetime on /1/0 (RW) via TLV partial update of the instance.
    const w = await s.driver.request('POST', '/1/0', { payload: Buffer.from('c1011e', 'hex'), contentFormat: ContentFormat.Tlv });
    assert.equal(w.codeText, '2.04');
    assert.equal(text(await s.driver.request('GET', '/1/0/1')), '30');
    // A Write to a read-only resource inside an instance payload changes nothing (all or nothing).
    const mixed = await s.driver.request('POST', '/1/0', { payload: Buffer.from('c1013cc10005', 'hex'), contentFormat: ContentFormat.Tlv });
    assert.equal(mixed.codeText, '4.05');
    assert.equal(text(await s.driver.request('GET', '/1/0/1')), '30');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.3.5 Execute: Reboot runs the hook (2.04); not executable → 4.05; missing → 4.04', async () => {
  const s = await registered();
  try {
    let reboots = 0;
    s.client.on((e) => {
      if (e.type === 'reboot') reboots++;
    });
    assert.equal((await s.driver.request('POST', '/3/0/4')).codeText, '2.04');
    assert.equal(reboots, 1);
    assert.equal((await s.driver.request('POST', '/3/0/5')).codeText, '2.04');
    assert.equal((await s.driver.request('POST', '/3/0/0')).codeText, '4.05');
    assert.equal((await s.driver.request('POST', '/3/0/999')).codeText, '4.04');
    assert.equal((await s.driver.request('POST', '/3/5/4')).codeText, '4.04');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.3.6/§6.3.7 Create and Delete: not allowed on the single-instance Device object (4.05)', async () => {
  const s = await registered();
  try {
    assert.equal((await s.driver.request('POST', '/3', { payload: Buffer.from('c10041', 'hex'), contentFormat: ContentFormat.Tlv })).codeText, '4.05');
    assert.equal((await s.driver.request('DELETE', '/3/0')).codeText, '4.05');
    assert.equal((await s.driver.request('DELETE', '/3')).codeText, '4.05');
    assert.equal((await s.driver.request('DELETE', '/3/0/0')).codeText, '4.05');
    assert.equal((await s.driver.request('DELETE', '/3/9')).codeText, '4.04');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.3.2 Discover and §6.3.4 Write-Attributes: exact link lists, attributes shown', async () => {
  const s = await registered();
  try {
    const d = await s.driver.request('GET', '/3/0', { accept: ContentFormat.LinkFormat });
    assert.equal(d.codeText, '2.05');
    assert.equal(d.contentFormat, ContentFormat.LinkFormat);
    assert.equal(text(d), '</3/0>,</3/0/0>,</3/0/1>,</3/0/2>,</3/0/3>,</3/0/4>,</3/0/5>,</3/0/11>;dim=1,</3/0/12>,</3/0/13>,</3/0/14>,</3/0/15>,</3/0/16>,</3/0/17>,</3/0/19>');
    const wa = await s.driver.request('PUT', '/3/0/13?pmin=10&pmax=60');
    assert.equal(wa.codeText, '2.04');
    assert.equal(text(await s.driver.request('GET', '/3/0/13', { accept: ContentFormat.LinkFormat })), '</3/0/13>;pmin=10;pmax=60');
    assert.equal((await s.driver.request('PUT', '/3/0/13?pmin=70&pmax=60')).codeText, '4.00');
    assert.equal((await s.driver.request('PUT', '/3/0/13?foo=1')).codeText, '4.00');
    assert.equal((await s.driver.request('PUT', '/3/0/99?pmin=1')).codeText, '4.04');
    const obj = await s.driver.request('GET', '/4', { accept: ContentFormat.LinkFormat });
    assert.equal(text(obj), '</4>;ver=1.3,</4/0>,</4/0/0>,</4/0/1>;dim=1,</4/0/2>,</4/0/3>,</4/0/4>;dim=1');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.3.1: Read of Connectivity Monitoring (/4/0) gives the basic values', async () => {
  const s = await registered();
  try {
    const r = await s.driver.request('GET', '/4/0', { accept: ContentFormat.SenmlJson });
    assert.deepEqual(JSON.parse(text(r)), [
      { bn: '/4/0/', n: '0', v: 41 },
      { n: '1/0', v: 41 },
      { n: '2', v: -65 },
      { n: '3', v: 100 },
      { n: '4/0', vs: '127.0.0.1' },
    ]);
  } finally {
    await s.close();
  }
});

export { Code };

test('TS Core 1.1 §6.3.8 Read-Composite (FETCH /) and §6.3.9 Write-Composite (iPATCH /) with SenML JSON', async () => {
  const s = await registered();
  try {
    const body = JSON.stringify([{ n: '/3/0/0' }, { n: '/3/0/1' }, { n: '/4/0/2' }, { n: '/3/0/7' }]);
    const r = await s.driver.request('FETCH', '/', { payload: body, contentFormat: ContentFormat.SenmlJson, accept: ContentFormat.SenmlJson });
    assert.equal(r.codeText, '2.05');
    assert.equal(r.contentFormat, ContentFormat.SenmlJson);
    assert.deepEqual(JSON.parse(text(r)), [{ n: '/3/0/0', vs: 'Acme Devices' }, { n: '/3/0/1', vs: 'GW-200' }, { n: '/4/0/2', v: -65 }]);
    const w = await s.driver.request('IPATCH', '/', { payload: JSON.stringify([{ n: '/3/0/14', vs: '+03:00' }, { n: '/1/0/1', v: 90 }]), contentFormat: ContentFormat.SenmlJson });
    assert.equal(w.codeText, '2.04');
    assert.equal(text(await s.driver.request('GET', '/3/0/14')), '+03:00');
    assert.equal(text(await s.driver.request('GET', '/1/0/1')), '90');
    const ro = await s.driver.request('IPATCH', '/', { payload: JSON.stringify([{ n: '/3/0/0', vs: 'X' }]), contentFormat: ContentFormat.SenmlJson });
    assert.equal(ro.codeText, '4.05');
    const missing = await s.driver.request('IPATCH', '/', { payload: JSON.stringify([{ n: '/3/0/14', vs: '+04:00' }, { n: '/3/1/14', vs: 'x' }]), contentFormat: ContentFormat.SenmlJson });
    assert.equal(missing.codeText, '4.04');
    assert.equal(text(await s.driver.request('GET', '/3/0/14')), '+03:00');
  } finally {
    await s.close();
  }
});
