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
