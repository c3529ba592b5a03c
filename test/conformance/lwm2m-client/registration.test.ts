import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Code } from '../../../src/coap/codes.js';
import { ContentFormat } from '../../../src/lwm2m/index.js';
import { updateMarginMs } from '../../../src/lwm2m/client/index.js';
import { setup, sleep, waitUntil } from './support.js';

test('TS Core 1.1 §6.2.1 Register: POST /rd?ep&lt&lwm2m=1.1&b=U with the exact link-format object list', async () => {
  const s = await setup();
  try {
    const reg = await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd');
    assert.deepEqual(reg.query, ['ep=urn:dev:test-1', 'lt=300', 'lwm2m=1.1', 'b=U']);
    assert.equal(reg.contentFormat, ContentFormat.LinkFormat);
    assert.equal(reg.text, '</>;rt="oma.lwm2m";ct=112,</1>;ver=1.1,</1/0>,</3>;ver=1.1,</3/0>,</4>;ver=1.3,</4/0>');
    const event = await s.client.waitFor('registered', 5000).catch(() => undefined);
    // The event may have fired before waitFor; the location is what matters.
    assert.equal(s.client.location, '/rd/r1');
    assert.ok(event === undefined || event.location === '/rd/r1');
    assert.equal(s.client.state, 'registered');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.2.1 Register: queue mode adds the Q parameter', async () => {
  const s = await setup({ config: { queueMode: true, lifetime: 120 } });
  try {
    const reg = await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd');
    assert.deepEqual(reg.query, ['ep=urn:dev:test-1', 'lt=120', 'lwm2m=1.1', 'b=U', 'Q']);
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.2.2 Update: sent before the lifetime expires (ManualClock), as POST /rd/<id> without a body', async () => {
  const s = await setup({ manualClock: true });
  const clock = s.clock!;
  try {
    await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd');
    await waitUntil(() => s.client.state === 'registered');
    const registeredAt = clock.now();
    assert.equal(updateMarginMs(300), 93_000);
    // Nothing before the margin ...
    clock.advance(300_000 - 93_000 - 1);
    await sleep(50);
    assert.equal(s.driver.requests.filter((r) => r.path === '/rd/r1').length, 0);
    // ... then the Update, 93 s before the 300 s lifetime ends.
    clock.advance(1);
    const upd = await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd/r1');
    assert.equal(upd.clockAt! - registeredAt, 207_000);
    assert.ok(upd.clockAt! - registeredAt < 300_000);
    assert.deepEqual(upd.query, []);
    assert.equal(upd.payload.length, 0);
    await s.client.waitFor('updated', undefined);
    // And again one period later.
    clock.advance(207_000);
    const second = await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd/r1' && r !== upd);
    assert.equal(second.clockAt! - registeredAt, 414_000);
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.2.2 Update: a changed object list goes in the Update body; a new lifetime as lt', async () => {
  const s = await setup();
  try {
    await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd');
    await waitUntil(() => s.client.state === 'registered');
    // The server writes a new lifetime to /1/0/1 (TS Core 1.1 §6.3.3): the client sends lt.
    const w = await s.driver.request('PUT', '/1/0/1', { payload: '600', contentFormat: ContentFormat.PlainText });
    assert.equal(w.code, Code.Changed);
    const upd = await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd/r1');
    assert.deepEqual(upd.query, ['lt=600']);
    s.client.requestUpdate({ objectsChanged: true });
    const withBody = await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd/r1' && r.payload.length > 0);
    assert.equal(withBody.contentFormat, ContentFormat.LinkFormat);
    assert.match(withBody.text, /^<\/>;rt="oma.lwm2m";ct=112,<\/1>;ver=1.1,<\/1\/0>,<\/3>;ver=1.1,<\/3\/0>,<\/4>;ver=1.3,<\/4\/0>$/);
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.2.2 Update answered 4.04: the client registers again (POST /rd)', async () => {
  const s = await setup({ manualClock: true });
  const clock = s.clock!;
  try {
    await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd');
    await waitUntil(() => s.client.state === 'registered');
    s.driver.responders.push((req) => (req.method === 'POST' && req.path === '/rd/r1' ? { code: Code.NotFound } : undefined));
    const failed = s.client.waitFor('updateFailed');
    clock.advance(207_000);
    const ev = await failed;
    assert.equal(ev.code, '4.04');
    const second = await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd' && s.driver.requests.indexOf(r) > 0);
    assert.deepEqual(second.query, ['ep=urn:dev:test-1', 'lt=300', 'lwm2m=1.1', 'b=U']);
    await waitUntil(() => s.client.location === '/rd/r2');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.2.3 De-register: stop() sends DELETE /rd/<id> and reports it', async () => {
  const s = await setup();
  try {
    await waitUntil(() => s.client.state === 'registered');
    const events: string[] = [];
    s.client.on((e) => events.push(e.type));
    await s.client.stop();
    const del = await s.driver.waitFor((r) => r.method === 'DELETE');
    assert.equal(del.path, '/rd/r1');
    assert.ok(events.includes('deregistered'));
    assert.equal(s.client.state, 'stopped');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.2.3 De-register: stop() while the Register awaits its answer de-registers what the 2.01 created', async () => {
  const s = await setup({ start: false });
  try {
    let release!: () => void;
    s.driver.registerGate = new Promise<void>((resolve) => (release = resolve));
    await s.client.start();
    await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd');
    const events: string[] = [];
    s.client.on((e) => events.push(e.type));
    const stopped = s.client.stop();
    release();
    await stopped;
    const del = await s.driver.waitFor((r) => r.method === 'DELETE', 1000);
    assert.equal(del.path, '/rd/r1');
    assert.ok(events.includes('deregistered'));
    assert.ok(!events.includes('registered'), 'a client stopping does not report itself registered');
    assert.equal(s.client.state, 'stopped');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.2.1 Register refused (4.03): reported as an event, retried with back-off', async () => {
  const s = await setup({ start: false });
  try {
    let refusals = 2;
    s.driver.responders.push((req) => (req.path === '/rd' && refusals-- > 0 ? { code: Code.Forbidden } : undefined));
    const failures: { code?: string; retryInMs: number }[] = [];
    s.client.on((e) => {
      if (e.type === 'registrationFailed') failures.push({ ...(e.code ? { code: e.code } : {}), retryInMs: e.retryInMs });
    });
    await s.client.start();
    await waitUntil(() => s.client.state === 'registered', 5000);
    assert.deepEqual(failures, [
      { code: '4.03', retryInMs: 50 },
      { code: '4.03', retryInMs: 100 },
    ]);
    assert.equal(s.driver.requests.filter((r) => r.path === '/rd').length, 3);
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.2.1 Register: server unreachable → registrationFailed, then registered when it answers', async () => {
  const s = await setup({ start: false, config: { requestTimeoutMs: 200 } });
  try {
    let drop = true;
    // The driver ignores the first Register entirely by answering nothing useful: simulate with a 5.03.
    s.driver.responders.push((req) => (req.path === '/rd' && drop ? ((drop = false), { code: Code.ServiceUnavailable }) : undefined));
    const failed = s.client.waitFor('registrationFailed');
    await s.client.start();
    const ev = await failed;
    assert.equal(ev.code, '5.03');
    await waitUntil(() => s.client.state === 'registered', 5000);
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.3.5 Execute /1/0/8 (Registration Update Trigger): the client sends an Update', async () => {
  const s = await setup();
  try {
    await waitUntil(() => s.client.state === 'registered');
    const before = s.driver.requests.length;
    assert.equal((await s.driver.request('POST', '/1/0/8')).codeText, '2.04');
    const upd = await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd/r1', 3000, before);
    assert.deepEqual(upd.query, []);
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.2.1 queue mode (Q): after the awake time the client does not listen; an Update wakes it (ManualClock)', async () => {
  const s = await setup({ manualClock: true, config: { queueMode: true, queueModeAwakeMs: 1000 } });
  const clock = s.clock!;
  try {
    await waitUntil(() => s.client.state === 'registered');
    assert.equal((await s.driver.request('GET', '/3/0/0')).codeText, '2.05');
    const asleep = s.client.waitFor('sleeping');
    clock.advance(1000);
    await asleep;
    await assert.rejects(s.driver.request('GET', '/3/0/0', { timeout: 300 }));
    const before = s.driver.requests.length;
    s.client.requestUpdate();
    await s.driver.waitFor((r) => r.method === 'POST' && r.path === '/rd/r1', 3000, before);
    assert.equal((await s.driver.request('GET', '/3/0/1')).codeText, '2.05');
  } finally {
    await s.close();
  }
});
