import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Simulator, parseProfile } from '../../../src/sim/index.js';
import { ManualClock } from '../../../src/util/clock.js';
import { Lwm2mServerTestDriver } from '../../conformance/lwm2m-client/server-test-driver.js';
import { waitUntil } from '../../conformance/lwm2m-client/support.js';

const profile = parseProfile({ models: [{ manufacturer: 'Acme', model: 'A', firmwareVersion: '1' }] });

test('simulator: start-up is spread over the ramp (ManualClock): 4 devices over 1 s start at 0, 250, 500, 750 ms', async () => {
  const driver = await Lwm2mServerTestDriver.start();
  const clock = new ManualClock();
  const sim = new Simulator({ server: driver.uri, count: 4, profile, host: '127.0.0.1', rampMs: 1000, clock });
  try {
    const started = sim.start();
    const registers = (): number => driver.requests.filter((r) => r.path === '/rd').length;
    await waitUntil(() => registers() === 1);
    clock.advance(249);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(registers(), 1);
    clock.advance(1);
    await waitUntil(() => registers() === 2);
    clock.advance(500);
    await waitUntil(() => registers() === 4);
    await started;
    // The driver has seen 4 Registers; the clients may still be reading the 2.01 answers.
    await waitUntil(() => sim.stats().registered === 4);
    assert.deepEqual(sim.stats(), { total: 4, started: 4, registered: 4, registrationFailures: 0 });
  } finally {
    await sim.stop();
    await driver.close();
  }
});

test('simulator: options are checked', () => {
  assert.throws(() => new Simulator({ count: 1, profile }), /needs --server or --bootstrap/);
  assert.throws(() => new Simulator({ server: 'coap://127.0.0.1:1', count: 0, profile }), /count must be a positive integer/);
});

test('simulator: stop() before the ramp has started every device cancels the rest', async () => {
  const driver = await Lwm2mServerTestDriver.start();
  const clock = new ManualClock();
  const sim = new Simulator({ server: driver.uri, count: 3, profile, host: '127.0.0.1', rampMs: 3000, clock });
  try {
    const started = sim.start();
    await waitUntil(() => driver.requests.filter((r) => r.path === '/rd').length === 1);
    await waitUntil(() => sim.stats().registered === 1);
    await sim.stop();
    clock.advance(5000);
    await started;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(driver.requests.filter((r) => r.path === '/rd').length, 1);
    assert.equal(driver.requests.filter((r) => r.method === 'DELETE').length, 1);
  } finally {
    await sim.stop();
    await driver.close();
  }
});

test('simulator: start delays are the ramp position plus jitter × random(); jitter alone spreads them at random', () => {
  const randoms = [0, 0.5, 0.999, 0.25];
  let i = 0;
  const sim = new Simulator({ server: 'coap://127.0.0.1:1', count: 4, profile, rampMs: 1000, jitterMs: 200, random: () => randoms[i++ % randoms.length]! });
  assert.deepEqual([0, 1, 2, 3].map((n) => sim.startDelay(n, 4)), [0, 350, 699, 800]);
  const noRamp = new Simulator({ server: 'coap://127.0.0.1:1', count: 1000, profile, rampMs: 0, jitterMs: 4000 });
  const delays = Array.from({ length: 1000 }, (_, n) => noRamp.startDelay(n, 1000));
  assert.ok(delays.every((d) => d >= 0 && d < 4000));
  // Spread, not in lockstep: every second of the 4 s gets a share.
  for (let s = 0; s < 4; s++) assert.ok(delays.filter((d) => Math.floor(d / 1000) === s).length > 150, `second ${s}`);
  // No jitter: the even ramp of before.
  const even = new Simulator({ server: 'coap://127.0.0.1:1', count: 4, profile, rampMs: 1000 });
  assert.deepEqual([0, 1, 2, 3].map((n) => even.startDelay(n, 4)), [0, 250, 500, 750]);
  assert.throws(() => new Simulator({ server: 'coap://127.0.0.1:1', count: 1, profile, jitterMs: -1 }), /jitterMs must be a non-negative number/);
});

test('simulator: with jitter the devices start at their jittered times (ManualClock)', async () => {
  const driver = await Lwm2mServerTestDriver.start();
  const clock = new ManualClock();
  const randoms = [0.9, 0.1];
  let i = 0;
  const sim = new Simulator({ server: driver.uri, count: 2, profile, host: '127.0.0.1', rampMs: 0, jitterMs: 1000, random: () => randoms[i++]!, clock });
  try {
    const started = sim.start();
    const registers = (): number => driver.requests.filter((r) => r.path === '/rd').length;
    await waitUntil(() => sim.devices.length === 2); // the start timers are set right after the clients are made
    clock.advance(99);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(registers(), 0);
    clock.advance(1); // 100 ms: the second device (random 0.1)
    await waitUntil(() => registers() === 1);
    clock.advance(799);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(registers(), 1);
    clock.advance(1); // 900 ms: the first
    await waitUntil(() => registers() === 2);
    await started;
  } finally {
    await sim.stop();
    await driver.close();
  }
});
