/**
 * The direct phase of bench/campaign.ts runs Object 9 installs in a campaign's shape: the
 * campaign's wave sizes, at most `concurrency` jobs open, the next wave only once the current
 * one reached the success threshold (as CampaignEngine.advance does). No timing here.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { DirectWaves } from '../../../bench/support/direct-waves.js';
import { waveSizes } from '../../../src/fleet/campaigns.js';

void test('direct waves: the campaign\'s wave sizes; the next wave waits for the threshold share of the current one to succeed', () => {
  const w = new DirectWaves(1000, [1, 10, 50, 100], 1000, 0.9);
  assert.deepEqual(w.bounds, [10, 100, 500, 1000]);
  assert.deepEqual(w.bounds.map((b, i) => b - (w.bounds[i - 1] ?? 0)), waveSizes(1000, [1, 10, 50, 100].map((percent) => ({ percent }))));
  const succeeded = new Set<number>();
  const succeededIn = (from: number, to: number): number => [...succeeded].filter((d) => d >= from && d < to).length;
  assert.equal(w.take(0, succeededIn), 10, 'wave 1 at once');
  assert.equal(w.take(10, succeededIn), 0, 'nothing more until wave 1 succeeds');
  for (let d = 0; d < 8; d++) succeeded.add(d);
  assert.equal(w.take(2, succeededIn), 0, '8 of 10 is below 90 %');
  succeeded.add(8);
  assert.equal(w.take(1, succeededIn), 90, '9 of 10: wave 2');
  assert.equal(w.next, 100);
  assert.equal(w.currentWave, 1);
});

void test('direct waves: the concurrency bound holds within a wave; empty waves are passed; threshold 0 admits at once', () => {
  const w = new DirectWaves(100, [50, 100], 20, 0.9);
  assert.equal(w.take(0, () => 0), 20);
  assert.equal(w.take(20, () => 0), 0, 'full');
  assert.equal(w.take(5, () => 0), 15, 'room for 15');
  assert.equal(w.take(0, () => 0), 15, 'the rest of wave 1 (50)');
  assert.equal(w.take(0, () => 44), 0, '44 of 50 < 45');
  assert.equal(w.take(0, () => 45), 20, 'wave 2, bounded');
  // 3 devices, waves 1/2/100 %: ceil gives sizes 1, 0, 2; the empty wave is passed.
  const small = new DirectWaves(3, [1, 2, 100], 10, 1);
  assert.equal(small.take(0, () => 0), 1);
  assert.equal(small.take(0, () => 1), 2);
  assert.equal(small.next, 3);
  const eager = new DirectWaves(10, [50, 100], 10, 0);
  assert.equal(eager.take(0, () => 0), 5);
  assert.equal(eager.take(5, () => 0), 5, 'threshold 0: the next wave needs no success');
});
