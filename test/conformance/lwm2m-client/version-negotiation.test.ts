/**
 * Register version and content-format negotiation of Depot's client, against the test driver
 * playing servers of each version (issue 13). No independent LwM2M 1.1-only server that answers
 * 4.12 / refuses a ct list installs from npm or Debian in CI (lwm2m-node-lib's server ignores
 * lwm2m= and ct), so the servers' answers are chosen here, on real UDP sockets.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Code } from '../../../src/coap/codes.js';
import type { CoapRequest } from '../../../src/coap/server.js';
import { ContentFormat } from '../../../src/lwm2m/index.js';
import { rootLink } from '../../../src/lwm2m/client/index.js';
import type { ClientEvent } from '../../../src/lwm2m/client/index.js';
import { setup, sleep, waitUntil } from './support.js';

function version(r: { query: string[] }): string | undefined {
  return r.query.find((q) => q.startsWith('lwm2m='))?.slice(6);
}

function rootOf(text: string): string {
  return text.split(',</')[0] as string;
}

/** A server that supports only `versions` (4.12 otherwise) and, like a LwM2M 1.1 server, only a single ct value (4.00 for a quoted list). */
function strictServer(versions: string[]) {
  return (request: CoapRequest) => {
    if (request.method !== 'POST' || request.path !== '/rd') return undefined;
    const v = request.queryParam('lwm2m') ?? '1.0';
    if (!versions.includes(v)) return { code: Code.PreconditionFailed, payload: `LwM2M ${v} is not supported` };
    if (/;ct="/.test(Buffer.from(request.payload).toString('utf8'))) return { code: Code.BadRequest, payload: 'ct takes one content format' };
    return undefined;
  };
}

test('TS Core 1.2 §6.2.1 Register: lwm2m=1.2 with the ct list form `ct="0 42 110 112 11542 11544"`', async () => {
  const s = await setup({ config: { lwm2mVersion: '1.2' } });
  try {
    const reg = await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd');
    assert.equal(version(reg), '1.2');
    assert.equal(rootOf(reg.text), '</>;rt="oma.lwm2m";ct="0 42 110 112 11542 11544"');
    await waitUntil(() => s.client.state === 'registered');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.2.1 Register: lwm2m=1.1 announces a single ct value; 1.0 (TS Core 1.0 §5.3.1) announces no ct beyond TLV', () => {
  const formats = [0, 42, 110, 112, 11542, 11544];
  assert.equal(rootLink(formats, '1.1', 'single'), '</>;rt="oma.lwm2m";ct=112');
  assert.equal(rootLink([11542], '1.1', 'single'), '</>;rt="oma.lwm2m";ct=11542');
  assert.equal(rootLink([110], '1.1', 'single'), '</>;rt="oma.lwm2m";ct=110');
  assert.equal(rootLink(formats, '1.0', 'none'), '</>;rt="oma.lwm2m"');
  // 1.0 defines no SenML: a list at 1.0 keeps only the formats 1.0 has.
  assert.equal(rootLink(formats, '1.0', 'list'), '</>;rt="oma.lwm2m";ct="0 42 11542"');
});

test('TS Core 1.1 §6.2.1 / 1.2 §6.2.1 Register: 4.12 Precondition Failed → registers again with the next lower version (1.2 → 1.1 → 1.0), ct per that version', async () => {
  const s = await setup({ start: false, config: { lwm2mVersion: '1.2' } });
  const events: ClientEvent[] = [];
  s.client.on((e) => events.push(e));
  s.driver.responders.push(strictServer(['1.0']));
  try {
    await s.client.start();
    await waitUntil(() => s.client.state === 'registered', 5000);
    const regs = s.driver.requests.filter((r) => r.method === 'POST' && r.path === '/rd');
    assert.deepEqual(regs.map(version), ['1.2', '1.1', '1.0']);
    assert.match(rootOf(regs[0]!.text), /ct="/);
    assert.equal(rootOf(regs[1]!.text), '</>;rt="oma.lwm2m";ct=112');
    assert.equal(rootOf(regs[2]!.text), '</>;rt="oma.lwm2m"');
    assert.equal(s.client.lwm2mVersion, '1.0');
    const downgrades = events.filter((e) => e.type === 'registrationDowngraded');
    assert.equal(downgrades.length, 2);
    assert.match((downgrades[0] as { reason: string }).reason, /4\.12.*LwM2M 1\.2 is not supported/);
  } finally {
    await s.close();
  }
});

test('Done-when: Depot\'s client (offering 1.2) registers with a LwM2M 1.1-only server that accepts a single ct', async () => {
  const s = await setup({ start: false, config: { lwm2mVersion: '1.2' } });
  s.driver.responders.push(strictServer(['1.1']));
  try {
    await s.client.start();
    await waitUntil(() => s.client.state === 'registered', 5000);
    const regs = s.driver.requests.filter((r) => r.method === 'POST' && r.path === '/rd');
    assert.deepEqual(regs.map(version), ['1.2', '1.1']);
    assert.equal(rootOf(regs[1]!.text), '</>;rt="oma.lwm2m";ct=112');
  } finally {
    await s.close();
  }
});

test('TS Core 1.2 §6.2.1 Register refused with 4.00 (a server that takes one ct value): not resent unchanged; logged, backed off, the single-format form next', async () => {
  const s = await setup({ start: false, config: { lwm2mVersion: '1.2', pinVersion: true } });
  const events: ClientEvent[] = [];
  s.client.on((e) => events.push(e));
  s.driver.responders.push(strictServer(['1.2']));
  try {
    await s.client.start();
    await waitUntil(() => s.client.state === 'registered', 5000);
    const regs = s.driver.requests.filter((r) => r.method === 'POST' && r.path === '/rd');
    assert.equal(regs.length, 2);
    assert.deepEqual(regs.map(version), ['1.2', '1.2']);
    assert.notEqual(regs[0]!.text, regs[1]!.text);
    assert.equal(rootOf(regs[1]!.text), '</>;rt="oma.lwm2m";ct=112');
    const failed = events.find((e) => e.type === 'registrationFailed') as Extract<ClientEvent, { type: 'registrationFailed' }>;
    assert.equal(failed.code, '4.00');
    assert.match(failed.reason, /4\.00.*ct takes one content format/);
    assert.ok(failed.retryInMs > 0);
    assert.ok(regs[1]!.at - regs[0]!.at >= 20, 'the retry backs off');
  } finally {
    await s.close();
  }
});

test('Depot\'s choice: a server that refuses every Register with 4.00 sees each form once, then backed-off retries, not a loop', async () => {
  const s = await setup({ start: false, config: { lwm2mVersion: '1.2', retry: { initialMs: 50, maxMs: 400 } } });
  s.driver.responders.push((r) => (r.method === 'POST' && r.path === '/rd' ? { code: Code.BadRequest, payload: 'no' } : undefined));
  try {
    await s.client.start();
    await sleep(700);
    const regs = s.driver.requests.filter((r) => r.method === 'POST' && r.path === '/rd');
    // 50, 100, 200, 400 ms (random 0 → full delay): at most 5 Registers in 700 ms.
    assert.ok(regs.length >= 3 && regs.length <= 5, `${regs.length} Registers`);
    assert.deepEqual([...new Set(regs.slice(0, 3).map((r) => rootOf(r.text)))], ['</>;rt="oma.lwm2m";ct="0 42 110 112 11542 11544"', '</>;rt="oma.lwm2m";ct=112', '</>;rt="oma.lwm2m"']);
  } finally {
    await s.close();
  }
});

test('Depot\'s choice: pinVersion makes 4.12 a failure retried with the same version', async () => {
  const s = await setup({ start: false, config: { lwm2mVersion: '1.1', pinVersion: true } });
  s.driver.responders.push(strictServer(['1.0']));
  try {
    await s.client.start();
    await sleep(300);
    const regs = s.driver.requests.filter((r) => r.method === 'POST' && r.path === '/rd');
    assert.ok(regs.length >= 2);
    assert.ok(regs.every((r) => version(r) === '1.1'));
    assert.notEqual(s.client.state, 'registered');
  } finally {
    await s.close();
  }
});

test('RFC 7252 §5.10.4 / §5.10.3: a client announcing only SenML JSON answers another Accept with 4.06, another Content-Format with 4.15, and reads without Accept in SenML JSON', async () => {
  const s = await setup({ config: { formats: [ContentFormat.SenmlJson] } });
  try {
    const reg = await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd');
    assert.equal(rootOf(reg.text), '</>;rt="oma.lwm2m";ct=110');
    await waitUntil(() => s.client.state === 'registered');
    assert.equal((await s.driver.request('GET', '/3/0', { accept: ContentFormat.SenmlCbor })).code, Code.NotAcceptable);
    assert.equal((await s.driver.request('GET', '/3/0', { accept: ContentFormat.Tlv })).code, Code.NotAcceptable);
    const plain = await s.driver.request('GET', '/3/0');
    assert.equal(plain.code, Code.Content);
    assert.equal(plain.contentFormat, ContentFormat.SenmlJson);
    assert.equal((await s.driver.request('GET', '/3/0/0', { accept: ContentFormat.PlainText })).code, Code.Content);
    const w = await s.driver.request('PUT', '/1/0/1', { payload: Uint8Array.of(0x08, 0x01, 0x00), contentFormat: ContentFormat.Tlv });
    assert.equal(w.code, Code.UnsupportedContentFormat);
  } finally {
    await s.close();
  }
});
