// Mutation testing, one Stryker run per module of stryker.config.mjs, one after another, then a
// summary of the scores and survivors (scripts/mutation-report.mjs). Usage:
//   node scripts/mutation.mjs [module ...]      (default: record coap content object9)
// Options go to Stryker through the environment: STRYKER_BREAK=<score> fails a run below it;
// STRYKER_CONCURRENCY=<n> (default 1: the machine's two cores are shared); STRYKER_BIN=<stryker.js>.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const report = (name) => `reports/mutation/${name}.json`;

const modules = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['record', 'coap', 'content', 'object9'];
// STRYKER_BIN: another Stryker install (e.g. where node_modules is shared and may lose the dev dependencies).
const stryker = process.env.STRYKER_BIN ?? fileURLToPath(new URL('../node_modules/@stryker-mutator/core/bin/stryker.js', import.meta.url));
let failed = false;
const done = [];
for (const name of modules) {
  console.log(`\n=== mutation testing: ${name} ===`);
  rmSync(report(name), { force: true });
  const r = spawnSync(process.execPath, [stryker, 'run', '--concurrency', process.env.STRYKER_CONCURRENCY ?? '1'], {
    stdio: 'inherit',
    env: { ...process.env, STRYKER_MODULE: name },
  });
  if (r.status !== 0) {
    console.error(`mutation testing of ${name} failed (exit ${r.status ?? r.signal})`);
    failed = true;
  }
  if (existsSync(report(name))) done.push(name);
}
// Only this run's reports: each module's old one is removed before its run.
if (done.length > 0) spawnSync(process.execPath, [fileURLToPath(new URL('mutation-report.mjs', import.meta.url)), ...done], { stdio: 'inherit' });
process.exit(failed ? 1 : 0);
