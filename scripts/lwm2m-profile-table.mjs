#!/usr/bin/env node
/**
 * Where the server's CPU goes per LwM2M request, from a `node --cpu-prof` profile of `depot serve`
 * under `npm run bench:lwm2m -- --ceiling --cpu-prof DIR` (issue 18; docs/throughput.md).
 *
 *   node scripts/lwm2m-profile-table.mjs PROFILE.cpuprofile REQUESTS [WINDOW_S]
 *
 * Only the last WINDOW_S seconds (default 5, the bench's measured window) before the last 0.2 s
 * are counted: start-up (module loading, schema compilation) and shutdown are left out. Each
 * sample goes to the first category (in the order below) one of its stack frames matches;
 * µs per request = busy time in the category / REQUESTS (e.g. the 2.01 answers in the window).
 */
import { readFileSync } from 'node:fs';

const CATEGORIES = [
  ['GC', (s) => s.leaf === '(garbage collector)'],
  ['inventory record (issue 16): find, insert/update, history', (s) => /sqlite\/inventory\.js|fleet\/inventory/.test(s.stack)],
  ['SQLite soft writes (registration, facts) and the group commit', (s) => /sqlite\/batch\.js/.test(s.stack)],
  ['SQLite reads (credentials, queued operations, facts, registration)', (s) => /\/store\/sqlite\//.test(s.stack)],
  ['the /3/0 read: exchange, decode, facts', (s) => /coap\/client\.js|learnFacts|toDeviceResponse|\/lwm2m\/content\//.test(s.stack)],
  ['UDP sends (node:dgram)', (s) => /(?:^| < )(?:doSend|send|_healthCheck|afterSend|sendHelper|\(anon\)) node:dgram/.test(s.stack)],
  ['CoAP receive, parse, dedup, route, answer', (s) => /\/coap\//.test(s.stack)],
  ['LwM2M logic, events, chain and inventory hooks', (s) => /\/lwm2m\/|\/fleet\/|\/app\//.test(s.stack)],
  ['timers, promises, other', () => true],
];

const [file, requestsArg, windowArg] = process.argv.slice(2);
if (!file || !requestsArg) {
  process.stderr.write('usage: node scripts/lwm2m-profile-table.mjs PROFILE.cpuprofile REQUESTS [WINDOW_S]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const frame = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url}`;
const stacks = new Map();
function stackOf(id) {
  let s = stacks.get(id);
  if (!s) {
    const frames = [];
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) frames.push(frame(byId.get(cur)));
    s = { leaf: byId.get(id).callFrame.functionName, stack: frames.join(' < ') };
    stacks.set(id, s);
  }
  return s;
}
const end = profile.endTime - 0.2e6;
const start = end - Number(windowArg ?? 5) * 1e6;
const totals = new Map(CATEGORIES.map(([name]) => [name, 0]));
let t = profile.startTime;
let busy = 0;
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i];
  if (t < start || t > end) continue;
  const us = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i];
  const s = stackOf(profile.samples[i]);
  if (s.leaf === '(idle)') continue;
  busy += us;
  const [name] = CATEGORIES.find(([, test]) => test(s));
  totals.set(name, totals.get(name) + us);
}
const requests = Number(requestsArg);
process.stdout.write('| where | µs per request | share |\n| --- | --- | --- |\n');
for (const [name, us] of [...totals].sort((a, b) => b[1] - a[1])) {
  if (us > 0) process.stdout.write(`| ${name} | ${(us / requests).toFixed(1)} | ${Math.round((100 * us) / busy)} % |\n`);
}
process.stdout.write(`| **total** | **${(busy / requests).toFixed(1)}** | |\n`);
