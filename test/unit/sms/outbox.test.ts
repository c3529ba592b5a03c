/**
 * The durable outbox over a real SQLite store, with the Kannel driver talking HTTP to a named
 * stand-in for smsbox's sendsms (StubSendsms: it answers as Kannel does, or not at all, which a
 * real Kannel cannot be made to do on cue). Behaviour through a real Kannel is in
 * test/interop/sms-kannel.test.ts.
 */
import { strict as assert } from 'node:assert';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { SmsError } from '../../../src/sms/errors.js';
import { KannelGateway, dlrUrl, parseDeliveryReport, parseMobileOriginated, parseRawQuery, percentDecode, percentEncode } from '../../../src/sms/kannel.js';
import { renderKannelConfig } from '../../../src/sms/kannel-config.js';
import { SmsOutbox, messageStateOf } from '../../../src/sms/outbox.js';
import { waitUntil } from '../../../src/sim/sms/kannel-lab.js';
import { openStore } from '../store/helpers.js';

/** smsbox's sendsms, as far as these tests need it: records requests, answers what the test says. */
class StubSendsms {
  readonly requests: URL[] = [];
  answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(202).end('0: Accepted for delivery');
  private readonly server: Server;
  private readonly hanging: ServerResponse[] = [];

  constructor() {
    this.server = createServer((req, res) => {
      this.requests.push(new URL(req.url!, 'http://x'));
      this.answer(req, res);
    });
  }

  hang(): void {
    this.answer = (_req, res) => void this.hanging.push(res);
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/cgi-bin/sendsms`;
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

const stubs: StubSendsms[] = [];
const outboxes: SmsOutbox[] = [];
after(async () => {
  for (const o of outboxes) await o.stop();
  for (const s of stubs) await s.close();
});

const SECRET = 'callback-secret-0123456789abcdef';

async function setup(options: { timeoutMs?: number; validityMs?: number } = {}) {
  const stub = new StubSendsms();
  stubs.push(stub);
  const url = await stub.listen();
  const store = openStore();
  const lines: string[] = [];
  const outbox = new SmsOutbox({
    repository: store.sms.outbox,
    gateway: new KannelGateway({ sendsmsUrl: url, username: 'depot', password: 'sendsms-password-xyz', timeoutMs: options.timeoutMs ?? 2000 }),
    callbackBase: 'http://127.0.0.1:9',
    callbackSecret: SECRET,
    backoff: { baseMs: 50, maxMs: 200 },
    log: (l) => lines.push(l),
    ...(options.validityMs ? { validityMs: options.validityMs } : {}),
  });
  outboxes.push(outbox);
  return { stub, store, outbox, lines };
}

void test('submit: one sendsms request per part with Kannel\'s parameters (udh with its length octet, coding, charset, dlr-mask, signed dlr-url); the password is never in a log line or stored message', async () => {
  const { stub, outbox, lines } = await setup();
  await outbox.start();
  const m = await outbox.sendBinary({ to: '+46700000001', data: new Uint8Array(200).fill(0xab), ports: { destination: 2948, source: 9200 }, jobStep: 'unit:bin:1' });
  await waitUntil('submitted', async () => (await outbox.get(m.id))?.state === 'submitted', 5000);
  assert.equal(stub.requests.length, 2);
  const q = stub.requests[0]!.searchParams;
  assert.deepEqual([q.get('username'), q.get('password'), q.get('to'), q.get('coding'), q.get('dlr-mask')], ['depot', 'sendsms-password-xyz', '+46700000001', '1', '31']);
  assert.deepEqual([...Buffer.from(percentDecode(/udh=([^&]*)/.exec(stub.requests[0]!.search)![1]!))].slice(0, 8), [0x0b, 0x05, 0x04, 0x0b, 0x84, 0x23, 0xf0, 0x00]);
  const dlr = new URL(q.get('dlr-url')!.replace(/%([dTA])/g, 'X$1'));
  assert.equal(dlr.pathname, '/sms/kannel/dlr');
  assert.equal(dlr.searchParams.get('ref'), `${m.id}.1`);
  const record = await outbox.get(m.id);
  assert.equal(record!.segments[0]!.reply, '0: Accepted for delivery');
  assert.ok(lines.every((l) => !l.includes('sendsms-password-xyz')));
  const text = await outbox.sendText({ to: '+46700000001', text: 'Grüße', jobStep: 'unit:text:1' });
  await waitUntil('text submitted', async () => (await outbox.get(text.id))?.state === 'submitted', 5000);
  const t = stub.requests[2]!.searchParams;
  assert.deepEqual([t.get('coding'), t.get('charset'), t.get('text')], ['0', 'UTF-8', 'Grüße']);
});

void test('gateway answers: 503 is retried with backoff and the error kept; a refusal fails the message at once; a timeout after the request makes the part unknown, never resent', async () => {
  const { stub, outbox } = await setup({ timeoutMs: 300 });
  let n = 0;
  stub.answer = (_req, res) => (n++ < 2 ? res.writeHead(503).end('Temporal failure, try again later.') : res.writeHead(202).end('0: Accepted for delivery'));
  await outbox.start();
  const a = await outbox.sendText({ to: '+46700000002', text: 'retry me', jobStep: 'unit:503' });
  await waitUntil('retried then submitted', async () => (await outbox.get(a.id))?.state === 'submitted', 5000);
  const ra = (await outbox.get(a.id))!;
  assert.equal(ra.attempts, 2);
  assert.match(ra.lastError!, /answered 503: Temporal failure/);
  stub.answer = (_req, res) => res.writeHead(403).end('Number(s) has/have been denied by white- and/or black-lists.');
  const b = await outbox.sendText({ to: '+46700000003', text: 'denied', jobStep: 'unit:403' });
  await waitUntil('failed', async () => (await outbox.get(b.id))?.state === 'failed', 5000);
  assert.match((await outbox.get(b.id))!.lastError!, /refused the SMS: 403 Number\(s\) has\/have been denied/);
  const before = stub.requests.length;
  stub.hang();
  const c = await outbox.sendText({ to: '+46700000004', text: 'lost answer', jobStep: 'unit:hang' });
  await waitUntil('unknown', async () => (await outbox.get(c.id))?.state === 'unknown', 5000);
  const rc = (await outbox.get(c.id))!;
  assert.match(rc.segments[0]!.reply!, /did not answer within 300 ms; the SMS may have been taken/);
  outbox.kick();
  await outbox.idle();
  assert.equal(stub.requests.length, before + 1, 'the part with an unknown outcome is not sent again');
  assert.equal(outbox.status().lastError, null);
});

void test('restart: a part left submitting is marked unknown and not resent; queued messages go out after the restart; a DLR still settles the unknown part', async () => {
  const { stub, store, outbox } = await setup();
  const m = await outbox.sendText({ to: '+46700000005', text: 'crash', jobStep: 'unit:crash' });
  const q = await outbox.sendText({ to: '+46700000005', text: 'after', jobStep: 'unit:after' });
  // As if Depot stopped between marking the part and hearing Kannel's answer.
  await store.sms.outbox.setSegmentState(m.id, 1, 'submitting', null, Date.now());
  await outbox.start();
  await waitUntil('queued one sent', async () => (await outbox.get(q.id))?.state === 'submitted', 5000);
  assert.equal((await outbox.get(m.id))!.state, 'unknown');
  assert.equal(stub.requests.length, 1);
  const settled = await outbox.handleDeliveryReport({ messageId: m.id, seq: 1, type: 1, text: null, at: Date.now() });
  assert.equal(settled.state, 'delivered');
});

void test('delivery reports: SMSC acceptance then delivery, in either order, end delivered; a failure report fails the message; reports for unknown parts are NOT_FOUND', async () => {
  const { outbox } = await setup();
  await outbox.start();
  const m = await outbox.sendBinary({ to: '+46700000006', data: new Uint8Array(300), jobStep: 'unit:dlr' });
  await waitUntil('submitted', async () => (await outbox.get(m.id))?.state === 'submitted', 5000);
  const at = Date.now();
  await outbox.handleDeliveryReport({ messageId: m.id, seq: 1, type: 1, text: null, at });
  await outbox.handleDeliveryReport({ messageId: m.id, seq: 1, type: 8, text: 'ACK', at });
  assert.equal((await outbox.get(m.id))!.state, 'submitted');
  await outbox.handleDeliveryReport({ messageId: m.id, seq: 2, type: 8, text: null, at });
  await outbox.handleDeliveryReport({ messageId: m.id, seq: 2, type: 1, text: null, at });
  await outbox.handleDeliveryReport({ messageId: m.id, seq: 3, type: 1, text: null, at });
  const done = (await outbox.get(m.id))!;
  assert.equal(done.state, 'delivered');
  assert.deepEqual(done.segments.map((s) => s.state), ['delivered', 'delivered', 'delivered']);
  const f = await outbox.sendText({ to: '+46700000006', text: 'x', jobStep: 'unit:dlr-fail' });
  await waitUntil('submitted', async () => (await outbox.get(f.id))?.state === 'submitted', 5000);
  assert.equal((await outbox.handleDeliveryReport({ messageId: f.id, seq: 1, type: 2, text: 'absent subscriber', at })).state, 'failed');
  await assert.rejects(outbox.handleDeliveryReport({ messageId: 'nope', seq: 1, type: 1, text: null, at }), (e: unknown) => e instanceof SmsError && e.code === 'NOT_FOUND');
  assert.equal(messageStateOf(['submitted', 'unknown']), 'unknown');
  assert.equal(messageStateOf(['pending', 'unknown']), 'queued');
});

void test('validity: a message the gateway never took fails when its validity ends, with the last gateway error; cancel stops what was not submitted', async () => {
  const { stub, outbox } = await setup({ validityMs: 300 });
  stub.answer = (_req, res) => res.writeHead(503).end('Temporal failure, try again later.');
  await outbox.start();
  const m = await outbox.sendText({ to: '+46700000007', text: 'never', jobStep: 'unit:expire' });
  await waitUntil('expired', async () => (await outbox.get(m.id))?.state === 'failed', 5000);
  assert.match((await outbox.get(m.id))!.lastError!, /not submitted within its validity; last error: .*503/);
  await outbox.stop();
  const c = await outbox.sendText({ to: '+46700000007', text: 'cancel me', jobStep: 'unit:cancel' });
  assert.equal((await outbox.cancel(c.id)).state, 'cancelled');
});

void test('concatenation references cycle per recipient 0..255', async () => {
  const store = openStore();
  const refs = [];
  for (let i = 0; i < 258; i++) refs.push(await store.sms.outbox.nextConcatRef('+46700000008'));
  assert.deepEqual(refs.slice(0, 3), [0, 1, 2]);
  assert.deepEqual(refs.slice(255), [255, 0, 1]);
  assert.equal(await store.sms.outbox.nextConcatRef('+46700000009'), 0);
});

void test('callback parsing: signed DLR URLs verify only for their part; MO queries keep binary data; broken escapes and wrong keys are refused', () => {
  const url = dlrUrl('http://depot:8080/', SECRET, 'abc', 2).replace('type=%d', 'type=1').replace('ts=%T', 'ts=1700000000').replace('reply=%A', 'reply=id%3A1+stat%3ADELIVRD');
  assert.match(url, /^http:\/\/depot:8080\/sms\/kannel\/dlr\?ref=abc\.2&sig=[A-Za-z0-9_-]{22}&/);
  const r = parseDeliveryReport(parseRawQuery(url), SECRET, 0);
  assert.deepEqual(r, { messageId: 'abc', seq: 2, type: 1, text: 'id:1 stat:DELIVRD', at: 1_700_000_000_000 });
  assert.throws(() => parseDeliveryReport(parseRawQuery(url.replace('ref=abc.2', 'ref=abc.3')), SECRET, 0), (e: unknown) => e instanceof SmsError && e.code === 'UNAUTHENTICATED');
  assert.throws(() => parseDeliveryReport(parseRawQuery(url), 'another-secret-0123456789', 0), (e: unknown) => e instanceof SmsError && e.code === 'UNAUTHENTICATED');
  assert.throws(() => parseRawQuery('/x?a=1&a=2'), /given twice/);
  assert.throws(() => parseRawQuery('/x?a=%G1'), /percent-encoding/);
  const mo = parseMobileOriginated(parseRawQuery(`/mo?key=${SECRET}&from=%2B46700000001&to=4242&coding=1&udh=%05%00%03%07%02%01&data=%00%FF%80&ts=1700000000`), SECRET, 0);
  assert.deepEqual([mo.from, mo.to, mo.coding, [...mo.udh!], [...mo.data]], ['+46700000001', '4242', 1, [5, 0, 3, 7, 2, 1], [0, 255, 128]]);
  assert.throws(() => parseMobileOriginated(parseRawQuery(`/mo?key=${SECRET}&from=%2B46700000001&to=4242&udh=%09%00&data=x`), SECRET, 0), /udh is not/);
  assert.equal(percentEncode(Uint8Array.of(0x41, 0x20, 0x2b, 0xff)), 'A%20%2B%FF');
});

void test('Kannel configuration: rendered from the repository template with every placeholder filled; values that could break out of a quoted string are refused', () => {
  const values = { adminPort: 13000, smsboxPort: 13001, sendsmsPort: 13013, fakeSmscPort: 10000, adminPassword: 'adminpw', sendsmsUsername: 'depot', sendsmsPassword: 'pw-123456', callbackBase: 'http://127.0.0.1:8080/', callbackSecret: SECRET, dir: '/var/lib/depot/kannel' };
  const text = renderKannelConfig(values);
  assert.doesNotMatch(text, /\{\{/);
  assert.match(text, /^group = smsc\nsmsc = fake\nsmsc-id = lab\nport = 10000$/m);
  assert.match(text, /^sendsms-port = 13013$/m);
  assert.match(text, /^password = "pw-123456"$/m);
  assert.match(text, new RegExp(`^get-url = "http://127\\.0\\.0\\.1:8080/sms/kannel/mo\\?key=${SECRET}&from=%p&to=%P&coding=%c&udh=%u&data=%b&ts=%T"$`, 'm'));
  assert.match(text, /^max-messages = 0$/m);
  // Without it Kannel refuses every SMS Depot sends without a sender ("Sender missing and no global set").
  assert.match(text, /^global-sender = "Depot"$/m);
  assert.match(renderKannelConfig({ ...values, globalSender: '+46700000000' }), /^global-sender = "\+46700000000"$/m);
  assert.throws(() => renderKannelConfig({ ...values, globalSender: 'bad"sender' }), /sender/);
  assert.throws(() => renderKannelConfig({ ...values, sendsmsPassword: 'x"\ngroup = core' }), /quotes/);
  assert.throws(() => renderKannelConfig({ ...values, callbackSecret: 'has%percent-signs-xx' }), /callback secret/);
  assert.throws(() => renderKannelConfig({ ...values, callbackBase: 'http://user:pw@host/' }), /without credentials/);
});

void test('rate limit: with the clock held, no more than the bucket (ratePerSecond) goes to the gateway; each second of clock lets that many more go', async () => {
  const stub = new StubSendsms();
  stubs.push(stub);
  const url = await stub.listen();
  const store = openStore();
  let clock = 1_000_000;
  const outbox = new SmsOutbox({ repository: store.sms.outbox, gateway: new KannelGateway({ sendsmsUrl: url, username: 'depot', password: 'pw-123456789' }), callbackBase: null, callbackSecret: SECRET, ratePerSecond: 2, now: () => clock, log: () => undefined });
  outboxes.push(outbox);
  for (let i = 0; i < 5; i++) await outbox.sendText({ to: '+46700000010', text: `wave ${i}`, jobStep: `unit:wave:${i}` });
  await outbox.start();
  await waitUntil('first two', () => stub.requests.length === 2, 5000);
  // The bucket waits on the (held) clock: nothing more goes, however long real time runs.
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(stub.requests.length, 2);
  clock += 1000;
  await waitUntil('two more', () => stub.requests.length === 4, 5000);
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(stub.requests.length, 4);
  clock += 1000;
  await waitUntil('the last', () => stub.requests.length === 5, 5000);
  assert.deepEqual(stub.requests.map((r) => r.searchParams.get('text')), ['wave 0', 'wave 1', 'wave 2', 'wave 3', 'wave 4']);
  await outbox.stop();
});

void test('pacing: messages of one pace group are scheduled one interval apart in the store (a wave\'s SMS do not flood the gateway); other groups and unpaced messages are not held; nothing goes before its time; bad pacing is refused', async () => {
  const stub = new StubSendsms();
  stubs.push(stub);
  const url = await stub.listen();
  const store = openStore();
  let now = Date.parse('2026-12-07T20:00:00.000Z');
  const outbox = new SmsOutbox({ repository: store.sms.outbox, gateway: new KannelGateway({ sendsmsUrl: url, username: 'depot', password: 'pw-0123456789' }), callbackBase: 'http://127.0.0.1:9', callbackSecret: SECRET, now: () => now, ratePerSecond: 1000, validityMs: 3_600_000 });
  outboxes.push(outbox);
  const pace = { group: 'campaign:c1:wave:1', perMinute: 30 };
  const a = await outbox.sendText({ to: '+46700000101', text: 'a', jobStep: 'pace:a', pace });
  const b = await outbox.sendText({ to: '+46700000102', text: 'b', jobStep: 'pace:b', pace });
  now += 500;
  const c = await outbox.sendText({ to: '+46700000103', text: 'c', jobStep: 'pace:c', pace });
  const other = await outbox.sendText({ to: '+46700000104', text: 'd', jobStep: 'pace:d', pace: { group: 'campaign:c1:wave:2', perMinute: 30 } });
  const unpaced = await outbox.sendText({ to: '+46700000105', text: 'e', jobStep: 'pace:e' });
  const t0 = a.scheduledAt!;
  // 30 per minute: one every 2 s, from the first; the group's next slot, not the time of asking.
  assert.deepEqual([a, b, c].map((m) => [m.paceGroup, m.scheduledAt! - t0, m.nextAttemptAt! - t0]), [['campaign:c1:wave:1', 0, 0], ['campaign:c1:wave:1', 2000, 2000], ['campaign:c1:wave:1', 4000, 4000]]);
  // Validity counts from the scheduled time.
  assert.equal(c.expiresAt - c.scheduledAt!, 3_600_000);
  assert.deepEqual([other.paceGroup, other.scheduledAt], ['campaign:c1:wave:2', now]);
  assert.deepEqual([unpaced.paceGroup, unpaced.scheduledAt], [null, null]);
  // The same job step again: the same message, no new slot.
  assert.equal((await outbox.sendText({ to: '+46700000102', text: 'b', jobStep: 'pace:b', pace })).scheduledAt, b.scheduledAt);
  await outbox.start();
  // Due now: a, the other group's and the unpaced one; b and c wait for their slots.
  await waitUntil('due messages submitted', () => stub.requests.length === 3, 5000);
  assert.deepEqual(stub.requests.map((r) => r.searchParams.get('to')).sort(), ['+46700000101', '+46700000104', '+46700000105']);
  assert.deepEqual([(await outbox.get(b.id))!.state, (await outbox.get(c.id))!.state], ['queued', 'queued']);
  now = t0 + 4000;
  (outbox as unknown as { kick(): void }).kick();
  await waitUntil('paced messages submitted at their time', () => stub.requests.length === 5, 5000);
  // Sent, the schedule stays on record.
  const sentC = (await outbox.get(c.id))!;
  assert.equal(sentC.state, 'submitted');
  assert.equal(sentC.scheduledAt! - t0, 4000);
  for (const bad of [{ group: 'g', perMinute: 0 }, { group: 'has space', perMinute: 1 }, { group: 'g', perMinute: 70_000 }]) {
    await assert.rejects(outbox.sendText({ to: '+46700000106', text: 'x', jobStep: `pace:bad:${bad.perMinute}:${bad.group.length}`, pace: bad }), (e: unknown) => e instanceof SmsError && e.code === 'BAD_MESSAGE');
  }
});
