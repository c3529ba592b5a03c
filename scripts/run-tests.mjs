// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner.
// Node 20's --test takes paths, not globs, so the list is built here.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...find(path));
    else if (entry.name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = find('dist/test').sort();
if (filter.length > 0) files = files.filter((f) => filter.some((part) => f.includes(part)));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  // A hung test must fail, not stall CI: no single test may take longer than this.
  ['--test', '--test-concurrency=3', '--test-timeout=120000', '--test-reporter=spec', ...files],
  // And a file whose process never exits (an open handle) must not stall CI either.
  { stdio: 'inherit', timeout: 40 * 60_000, killSignal: 'SIGKILL' },
);
if (result.error) console.error(`test run aborted: ${result.error.message}`);
process.exit(result.status ?? 1);
