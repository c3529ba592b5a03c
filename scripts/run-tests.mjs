// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner.
// Node 20's --test takes paths, not globs, so the list is built here.
//
// Skipped tests fail the run: a test that skips itself (t.skip(), { skip }) passes silently in
// node's exit code, and CI would never notice that a check stopped running. A skip is allowed
// only when it is listed in ALLOWED_SKIPS below with its reason. The runner reports to the
// terminal (spec) and, as TAP, to a file that is read back to find the skips.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

/**
 * Skips that are allowed, each with why: `name` is the test's full name as TAP prints it (a
 * RegExp or an exact string). Empty: no test may skip.
 * @type {{ name: string | RegExp; reason: string }[]}
 */
const ALLOWED_SKIPS = [];

function find(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...find(path));
    else if (entry.name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

/** Test points of a TAP stream that carry a SKIP directive: their names and reasons. */
export function skippedTests(tap) {
  const out = [];
  for (const line of tap.split('\n')) {
    const m = /^\s*ok \d+ - (.*?) # SKIP\b\s*(.*)$/i.exec(line);
    if (m) out.push({ name: m[1].replace(/\\#/g, '#'), reason: m[2] ?? '' });
  }
  return out;
}

/** The runner's own totals (the last "# pass N" etc. lines of the TAP stream). */
function totals(tap) {
  const get = (key) => {
    const all = [...tap.matchAll(new RegExp(`^# ${key} (\\d+)$`, 'gm'))];
    return all.length > 0 ? Number(all.at(-1)[1]) : undefined;
  };
  return { tests: get('tests'), pass: get('pass'), fail: get('fail'), cancelled: get('cancelled'), skipped: get('skipped'), todo: get('todo') };
}

const allowed = (name) => ALLOWED_SKIPS.find((a) => (typeof a.name === 'string' ? a.name === name : a.name.test(name)));

const filter = process.argv.slice(2);
let files = find('dist/test').sort();
if (filter.length > 0) files = files.filter((f) => filter.some((part) => f.includes(part)));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const reportDir = mkdtempSync(join(tmpdir(), 'depot-tests-'));
const tapFile = join(reportDir, 'report.tap');
const result = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-concurrency=3',
    // A hung test must fail, not stall CI: no single test may take longer than this.
    '--test-timeout=120000',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    ...files,
  ],
  // And a file whose process never exits (an open handle) must not stall CI either.
  { stdio: 'inherit', timeout: 40 * 60_000, killSignal: 'SIGKILL' },
);
if (result.error) console.error(`test run aborted: ${result.error.message}`);

let tap = '';
try {
  tap = readFileSync(tapFile, 'utf8');
} catch {
  console.error(`no TAP report at ${tapFile}: skipped tests cannot be counted`);
}
rmSync(reportDir, { recursive: true, force: true });

const skips = skippedTests(tap);
const unexpected = skips.filter((s) => !allowed(s.name));
const t = totals(tap);
console.log('');
for (const s of skips) console.log(`${allowed(s.name) ? 'allowed skip' : 'SKIPPED (not allowed)'}: ${s.name}${s.reason ? ` — ${s.reason}` : ''}`);
if (unexpected.length > 0) {
  console.error(`${unexpected.length} test(s) skipped that are not in ALLOWED_SKIPS (scripts/run-tests.mjs): a skipped test is a check that did not run.`);
}
if (skips.length > 0) console.log(`${skips.length - unexpected.length} of ${skips.length} skipped test(s) are in ALLOWED_SKIPS`);
console.log(`summary: ${t.pass ?? '?'} passed, ${t.fail ?? '?'} failed, ${skips.length} skipped`);

const status = result.status ?? 1;
if (status !== 0) process.exit(status);
if (!tap) process.exit(1);
process.exit(unexpected.length > 0 ? 1 : 0);
