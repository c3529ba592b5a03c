/**
 * A fleet whose server went away comes back spread out, not in one burst: the client's
 * re-registration after a failed Update (TS Core 1.1 §6.2.2) waits a random part of the first
 * back-off, and each retry delay is drawn below its (capped) doubling value, so devices at the
 * cap do not retry in lockstep either.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Code } from '../../../src/coap/codes.js';
import { setup, sleep, waitUntil } from './support.js';

test('TS Core 1.1 §6.2.2: after a failed Update the client registers again after random × the first back-off (ManualClock)', async () => {
  const s = await setup({ manualClock: true, start: false, config: { retry: { initialMs: 10_000, maxMs: 60_000 }, random: () => 0.5 } });
  try {
    await s.client.start();
    await waitUntil(() => s.client.state === 'registered');
    s.driver.responders.push((req) => (req.method === 'POST' && req.path.startsWith('/rd/') ? { code: Code.NotFound } : undefined));
    const failed = s.client.waitFor('updateFailed');
    s.client.requestUpdate();
    await failed;
    const registers = (): number => s.driver.requests.filter((r) => r.method === 'POST' && r.path === '/rd').length;
    await sleep(100);
    assert.equal(registers(), 1, 'no Register at once');
    s.clock!.advance(4_999);
    await sleep(100);
    assert.equal(registers(), 1, 'not before 0.5 × 10 s');
    s.clock!.advance(1);
    await waitUntil(() => registers() === 2);
    await waitUntil(() => s.client.state === 'registered');
  } finally {
    await s.close();
  }
});

test('TS Core 1.1 §6.2.1: retry delays are drawn from [d/2, d] of the doubling delay d, never above the cap', async () => {
  const s = await setup({ start: false, config: { retry: { initialMs: 50, maxMs: 100 }, random: () => 0.999 } });
  try {
    let refusals = 3;
    s.driver.responders.push((req) => (req.path === '/rd' && refusals-- > 0 ? { code: Code.Forbidden } : undefined));
    const delays: number[] = [];
    s.client.on((e) => {
      if (e.type === 'registrationFailed') delays.push(e.retryInMs);
    });
    await s.client.start();
    await waitUntil(() => s.client.state === 'registered', 5000);
    assert.deepEqual(delays, [25, 50, 50]);
  } finally {
    await s.close();
  }
});
