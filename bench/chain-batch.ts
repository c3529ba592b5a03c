/**
 * Install chain job creation: N jobs one at a time (`ChainDriver.install`: one durable commit for
 * the job, one for its first attempt, one for its state) against waves through
 * `ChainDriver.installMany` (one transaction for the wave's jobs), on the real SQLite store
 * (synchronous FULL) with a fake method that answers `running` at once, so what is measured is
 * the chain and the store, not a protocol. Also the cost of the learned order (a model with a
 * record) per job.
 *
 *   node dist/bench/chain-batch.js [--jobs 10000] [--wave 1000]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ChainDriver } from '../src/fleet/chain-driver.js';
import { MethodLearning } from '../src/fleet/learning.js';
import type { InstallMethod, MethodStep } from '../src/fleet/methods/method.js';
import { openSqliteStore } from '../src/store/index.js';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '10000' }, wave: { type: 'string', default: '1000' } } });
const N = Number(values.jobs);
const WAVE = Number(values.wave);
const SHA = 'a'.repeat(64);

/** A benchmark stand-in method: begins at once, never ends. */
const instant: InstallMethod = {
  name: 'instant',
  preflight: () => Promise.resolve(undefined),
  begin: (): Promise<MethodStep> => Promise.resolve({ status: 'running', state: { n: 1 }, message: 'Running.' }),
  advance: (context): Promise<MethodStep> => Promise.resolve({ status: 'running', state: context.attempt.state, message: 'Running.' }),
  cancel: () => Promise.resolve(),
};

async function run(label: string, mode: 'one' | 'many', learned: boolean): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'depot-bench-chain-'));
  const store = openSqliteStore({ dataDir });
  try {
    const learning = learned ? new MethodLearning({ stats: store.methodStats, deviceFacts: store.deviceFacts, seed: 1 }) : undefined;
    if (learned) {
      for (let i = 0; i < N; i++) await store.deviceFacts.upsert(`dev-${i}`, { manufacturer: 'Bench', modelNumber: `M${i % 10}`, osVersion: '1' }, Date.now());
      for (let m = 0; m < 10; m++) await store.methodStats.record({ make: 'Bench', model: `M${m}`, osVersion: '1' }, 'instant', 'succeeded', null, null, Date.now());
    }
    const driver = new ChainDriver({ store, methods: [instant], tickMs: 0, ...(learning ? { learning } : {}) });
    const t0 = process.hrtime.bigint();
    if (mode === 'one') {
      for (let i = 0; i < N; i++) await driver.install(`dev-${i}`, SHA);
    } else {
      for (let w = 0; w < N; w += WAVE) await driver.installMany(Array.from({ length: Math.min(WAVE, N - w) }, (_, k) => ({ endpoint: `dev-${w + k}`, packageSha256: SHA })));
      await driver.close(); // the first steps of the last wave
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await driver.close();
    const size = statSync(join(dataDir, 'depot.sqlite')).size;
    console.log(`${label.padEnd(44)} ${N} jobs in ${seconds.toFixed(2)} s: ${Math.round(N / seconds)} jobs/s (${((seconds / N) * 1000).toFixed(3)} ms/job), store ${(size / 1e6).toFixed(1)} MB`);
  } finally {
    store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await run('install() one at a time, default order', 'one', false);
await run(`installMany() waves of ${WAVE}, default order`, 'many', false);
await run(`installMany() waves of ${WAVE}, learned order`, 'many', true);
