/**
 * Content format per device (issue 13): `startDepotServer` on loopback (CoAP, SQLite, HTTP
 * API) and LwM2M clients that support only what they announce (Depot's client engine with
 * `formats`, refusing others with 4.06 / 4.15 as RFC 7252 §5.10.4 / §5.9.2.9 say). Reads,
 * writes and executes go through the API with no format given.
 *
 * Interop: the independent LwM2M clients CI installs (lwm2m-node-lib from npm, see
 * test/interop/lwm2m-node-lib.test.ts) register as LwM2M 1.0 without a ct and speak TLV/text,
 * which the version rule covers; no independent client from npm or Debian announces
 * `ct=110` / `ct=11542` only, so those devices are Depot's engine configured to be strict.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDepotServer, type RunningDepotServer } from '../../../src/app/server.js';
import { ContentFormat } from '../../../src/lwm2m/index.js';
import { Lwm2mClient } from '../../../src/lwm2m/client/index.js';
import type { Lwm2mClientConfig } from '../../../src/lwm2m/client/index.js';
import { announcedFormats, candidateFormats } from '../../../src/lwm2m/server/content-format.js';
import { apiCall, type ApiRequest } from '../../support/api-client.js';

const TOKEN = 'format-test-token-0123456789';

interface Rig {
  server: RunningDepotServer;
  call(path: string, init?: ApiRequest): Promise<{ status: number; body: Record<string, unknown> }>;
  device(endpoint: string, config: Partial<Lwm2mClientConfig>): Promise<Lwm2mClient>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

async function rig(): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'depot-format-'));
  const config = (coapPort: number) => ({ host: '127.0.0.1', coapPort, coapsPort: null, httpPort: 0, dataDir: join(dir, 'server'), allowUnsecured: true, apiToken: TOKEN, publicHost: '127.0.0.1' });
  let server = await startDepotServer(config(0));
  const coapPort = server.coap.endpoint.transport.address().port;
  const devices: Lwm2mClient[] = [];
  const base = () => {
    const a = server.api.server.address();
    return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  };
  return {
    get server() {
      return server;
    },
    call: (path, init = {}) => apiCall(base(), TOKEN, path, init),
    device: async (endpoint, cfg) => {
      const device = new Lwm2mClient({ endpoint, serverUri: `coap://127.0.0.1:${coapPort}`, host: '127.0.0.1', lifetime: 300, ...cfg });
      devices.push(device);
      const registered = device.waitFor('registered', 10_000);
      await device.start();
      await registered;
      return device;
    },
    restart: async () => {
      await server.close();
      server = await startDepotServer(config(coapPort));
    },
    close: async () => {
      for (const d of devices) await d.stop({ deregister: false }).catch(() => undefined);
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function response(r: { body: Record<string, unknown> }): Record<string, unknown> {
  return (r.body.response ?? {}) as Record<string, unknown>;
}

test('TS Core 1.1 §6.2.1 ct: the root link\'s single value, quoted list, several ct attributes, absent, unknown and malformed values', () => {
  assert.deepEqual(announcedFormats('</>;rt="oma.lwm2m";ct=110,</3/0>').formats, [110]);
  assert.deepEqual(announcedFormats('</>;rt="oma.lwm2m";ct=11542,</3/0>').formats, [11542]);
  assert.deepEqual(announcedFormats('</>;rt="oma.lwm2m";ct="0 42 110 112 11542 11544",</3/0>').formats, [0, 42, 110, 112, 11542, 11544]);
  assert.deepEqual(announcedFormats('</>;ct=110;ct=112,</3/0>').formats, [110, 112]);
  assert.deepEqual(announcedFormats('</1/0>,</3/0>').formats, []);
  const unknown = announcedFormats('</>;rt="oma.lwm2m";ct="60 110 abc 99999999",</3/0>');
  assert.deepEqual(unknown.formats, [110]);
  assert.match(unknown.problem ?? '', /"60".*"abc".*"99999999"/);
  // Not link format at all: nothing announced, the version's formats apply.
  assert.deepEqual(announcedFormats('</>;ct="110').formats, []);
});

test('TS Core 1.0 §6.4 / 1.1 §7.4 / 1.2 §7.4: candidates from ct, else the version\'s mandatory formats; learned first, refused never', () => {
  assert.deepEqual(candidateFormats('1.1', [110], undefined, false), [110]);
  assert.deepEqual(candidateFormats('1.1', [11542], undefined, true), [11542, 0]);
  assert.deepEqual(candidateFormats('1.2', [0, 42, 110, 112, 11542], undefined, false), [112, 110, 11542]);
  assert.deepEqual(candidateFormats('1.0', [], undefined, false), [11542]);
  assert.deepEqual(candidateFormats('1.1', [], undefined, false), [112, 11542, 110]);
  assert.deepEqual(candidateFormats('1.2', [], undefined, false), [112, 11544, 11542, 110]);
  assert.deepEqual(candidateFormats('1.1', [], { format: 110, refused: [112] }, false), [110, 11542]);
  assert.deepEqual(candidateFormats('1.1', [110], { refused: [110] }, false), []);
});

for (const [name, formats, ct] of [
  ['only SenML JSON (ct=110)', [ContentFormat.SenmlJson], '110'],
  ['only TLV (ct=11542)', [ContentFormat.Tlv], '11542'],
] as const) {
  test(`Done-when (TS Core 1.1 §6.2.1 ct, §6.3.1 Read, §6.3.3 Write, §6.3.5 Execute): a LwM2M 1.1 client announcing ${name} is read, written and executed through the API with no format given`, async () => {
    const r = await rig();
    try {
      const ep = `fmt-${ct}`;
      const device = await r.device(ep, { formats: [...formats] });
      let reboots = 0;
      device.on((e) => {
        if (e.type === 'reboot') reboots++;
      });
      const inst = await r.call(`/api/v1/devices/${ep}/read`, { json: { path: '/3/0' } });
      assert.equal(inst.status, 200, JSON.stringify(inst.body));
      assert.equal(response(inst).code, '2.05', JSON.stringify(inst.body));
      assert.equal(response(inst).contentFormat, formats[0]);
      const one = await r.call(`/api/v1/devices/${ep}/read`, { json: { path: '/3/0/0' } });
      assert.equal(response(one).code, '2.05', JSON.stringify(one.body));
      const w = await r.call(`/api/v1/devices/${ep}/write`, { json: { path: '/1/0/1', value: { type: 'integer', value: 600 } } });
      assert.equal(response(w).code, '2.04', JSON.stringify(w.body));
      const x = await r.call(`/api/v1/devices/${ep}/execute`, { json: { path: '/3/0/4' } });
      assert.equal(response(x).code, '2.04', JSON.stringify(x.body));
      await new Promise((res) => setTimeout(res, 50));
      assert.equal(reboots, 1);
    } finally {
      await r.close();
    }
  });
}

test('RFC 7252 §5.10.4 4.06 / §5.9.2.9 4.15: a 1.1 device that announced nothing and refuses SenML CBOR: one retry in the next format, remembered across a restart and a re-registration', async () => {
  const r = await rig();
  try {
    const ep = 'fmt-learn';
    const device = await r.device(ep, { formats: [ContentFormat.Tlv], announce: 'none' });
    const first = await r.call(`/api/v1/devices/${ep}/read`, { json: { path: '/3/0' } });
    assert.equal(response(first).code, '2.05', JSON.stringify(first.body));
    assert.equal(response(first).contentFormat, ContentFormat.Tlv);
    assert.deepEqual(await r.server.lwm2m.learnedFormatsOf(ep), { format: ContentFormat.Tlv, refused: [ContentFormat.SenmlCbor] });
    // The write goes straight out as TLV (no 4.15 first).
    const w = await r.call(`/api/v1/devices/${ep}/write`, { json: { path: '/1/0/1', value: { type: 'integer', value: 700 } } });
    assert.equal(response(w).code, '2.04', JSON.stringify(w.body));
    await r.restart();
    // Re-registration (the restarted server on the same port).
    await device.stop({ deregister: true });
    const again = await r.device(ep, { formats: [ContentFormat.Tlv], announce: 'none' });
    assert.ok(again);
    assert.deepEqual(await r.server.lwm2m.learnedFormatsOf(ep), { format: ContentFormat.Tlv, refused: [ContentFormat.SenmlCbor] });
    const after = await r.call(`/api/v1/devices/${ep}/read`, { json: { path: '/3/0' } });
    assert.equal(response(after).contentFormat, ContentFormat.Tlv);
  } finally {
    await r.close();
  }
});

test('Depot\'s choice (bad input): a device that answers every format 4.06 gets a clear error after a bounded number of tries, no loop', async () => {
  const r = await rig();
  try {
    const ep = 'fmt-none';
    // Announces a format Depot does not know (60) and accepts no structured format Depot can send.
    await r.device(ep, { formats: [60], announce: 'list', lwm2mVersion: '1.2' });
    const answers: Record<string, unknown>[] = [];
    for (let i = 0; i < 4; i++) answers.push((await r.call(`/api/v1/devices/${ep}/read`, { json: { path: '/3/0' } })).body);
    const last = answers.at(-1)!;
    assert.equal(last.error, 'ENCODING', JSON.stringify(answers));
    assert.match(String(last.message), /refused every content format Depot can use.*give a format explicitly/);
    // 1.2 without a usable ct: 4 candidates, 2 per request → the third request already knows.
    assert.match(JSON.stringify(answers[0]), /4\.06/);
    // The operator's explicit choice still goes out as asked.
    const explicit = await r.call(`/api/v1/devices/${ep}/read`, { json: { path: '/3/0/0', accept: ContentFormat.PlainText } });
    assert.equal(response(explicit).code, '2.05');
  } finally {
    await r.close();
  }
});

test('Depot\'s choice (facts, Object 3 of TS Core Appendix E.4): an empty Software Version (/3/0/19) is missing — the OS version falls back to the Firmware Version (/3/0/3) — and each fact says which resource it came from', async () => {
  const r = await rig();
  try {
    const learned = new Promise<void>((resolve) => r.server.lwm2m.once('factsLearned', () => resolve()));
    await r.device('facts-1', { device: { manufacturer: 'Acme', modelNumber: 'M-1', serialNumber: 'S1', firmwareVersion: 'fw 7.2', softwareVersion: '' } });
    await learned;
    const facts = await r.server.store.deviceFacts.get('facts-1');
    assert.equal(facts?.softwareVersion, null);
    assert.equal(facts?.osVersion, 'fw 7.2');
    assert.deepEqual((facts?.extra.sources as Record<string, string>).osVersion, '/3/0/3');
    assert.deepEqual((facts?.extra.sources as Record<string, string>).manufacturer, '/3/0/0');
  } finally {
    await r.close();
  }
});
