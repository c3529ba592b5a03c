import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { Lwm2mClient, loadClientState, saveClientState, updateMarginMs } from '../../../src/lwm2m/client/index.js';
import type { ClientEvent } from '../../../src/lwm2m/client/index.js';
import { ManualClock } from '../../../src/util/clock.js';

test('client engine: the Update margin is at least 93 s, at least 10 % and at most half of the lifetime', () => {
  assert.equal(updateMarginMs(60), 30_000);
  assert.equal(updateMarginMs(300), 93_000);
  assert.equal(updateMarginMs(3600), 360_000);
  assert.equal(updateMarginMs(86_400), 8_640_000);
});

test('client state file: written atomically with mode 0600, read back, corrupt files rejected', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'depot-client-state-'));
  try {
    const path = join(dir, 'state.json');
    assert.equal(await loadClientState(path), undefined);
    const state = { v: 1 as const, endpoint: 'ep-1', objects: { '0': { '0': { '5': { t: 'opaque' as const, v: 'AQI=' } } } } };
    await saveClientState(path, state);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await loadClientState(path), state);
    assert.deepEqual(await readdir(dir), ['state.json'], 'no temporary file left behind');
    await writeFile(path, JSON.stringify({ v: 2 }));
    await assert.rejects(loadClientState(path), /not a client state file/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('client engine: a server that never answers → registrationFailed after the CoAP exchange times out, then a retry (ManualClock)', async () => {
  // A bound socket that never answers: the Register is retransmitted and times out.
  const silent = createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  const received: number[] = [];
  silent.on('message', () => received.push(Date.now()));
  const clock = new ManualClock();
  const client = new Lwm2mClient({ endpoint: 'ep-silent', serverUri: `coap://127.0.0.1:${silent.address().port}`, host: '127.0.0.1', clock, retry: { initialMs: 1000, maxMs: 1000 }, random: () => 0 });
  const events: ClientEvent[] = [];
  client.on((e) => events.push(e));
  try {
    await client.start();
    await until(() => received.length === 1);
    // RFC 7252 §4.8.2: MAX_TRANSMIT_WAIT is 93 s; advance well past it.
    for (let t = 0; t < 100 && !events.some((e) => e.type === 'registrationFailed'); t++) {
      clock.advance(1000);
      await new Promise((r) => setImmediate(r));
    }
    const failed = events.find((e) => e.type === 'registrationFailed');
    assert.ok(failed && failed.type === 'registrationFailed');
    assert.match(failed.reason, /^Register failed: /);
    assert.equal(failed.retryInMs, 1000);
    assert.equal(received.length, 5, 'the CON and its 4 retransmissions');
    clock.advance(1000);
    await until(() => received.length === 6);
  } finally {
    await client.stop({ deregister: false });
    silent.close();
  }
});

test('client engine: start() without an endpoint name or server fails clearly', async () => {
  await assert.rejects(new Lwm2mClient({ serverUri: 'coap://127.0.0.1:1' }).start(), /no endpoint name/);
  await assert.rejects(new Lwm2mClient({ endpoint: 'x' }).start(), /no LwM2M server or Bootstrap-Server/);
});

test('client engine: the state file keeps the endpoint name; a restart without config.endpoint uses it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'depot-client-ep-'));
  try {
    const stateFile = join(dir, 's.json');
    const a = new Lwm2mClient({ endpoint: 'ep-keep', serverUri: 'coap://127.0.0.1:9', host: '127.0.0.1', stateFile, clock: new ManualClock() });
    await a.start();
    await a.stop({ deregister: false });
    const saved = JSON.parse(await readFile(stateFile, 'utf8')) as { endpoint: string };
    assert.equal(saved.endpoint, 'ep-keep');
    const b = new Lwm2mClient({ stateFile, host: '127.0.0.1', clock: new ManualClock() });
    await b.start();
    assert.equal(b.endpoint, 'ep-keep');
    await b.stop({ deregister: false });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 5));
  }
}
