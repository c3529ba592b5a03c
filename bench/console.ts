/**
 * The console's device table and dashboard with 100,000 devices: time per page of
 * GET /api/v1/fleet/devices-equivalent queries (search, each sort, deep offsets) and of the
 * fleet summary, on a real store file. `npm run build && node dist/bench/console.js [count]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../src/store/index.js';
import type { DeviceSort } from '../src/store/sqlite/fleet-summary.js';

const count = Number(process.argv[2] ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), 'depot-bench-console-'));
const store = openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' });
const now = Date.now();
const makes = [['Acme', 'Rocket-1', 'AcmeOS 3.1'], ['Acme', 'Rocket-2', 'AcmeOS 4.0'], ['Globex', 'G-200', 'Zephyr 3.5'], ['Initech', 'Gateway-X', 'Linux 6.1']] as const;
const reg = store.db.prepare(`INSERT INTO registrations (id, endpoint, lifetime_sec, lwm2m_version, binding, queue_mode, object_links, transport_scheme, transport_address, transport_port, registered_at, last_update_at, expires_at)
  VALUES (?, ?, 300, '1.1', 'U', 0, '[]', 'coap', '127.0.0.1', ?, ?, ?, ?)`);
const facts = store.db.prepare('INSERT INTO device_facts (endpoint, manufacturer, model_number, firmware_version, os_version, updated_at) VALUES (?, ?, ?, ?, ?, ?)');
store.db.transaction(() => {
  for (let i = 0; i < count; i++) {
    const ep = `dev-${String(i).padStart(6, '0')}`;
    const m = makes[i % makes.length]!;
    reg.run(`r${i}`, ep, 1000 + (i % 60000), now - i * 1000, now - (i % 5000) * 1000, now + 300_000 - (i % 3) * 400_000);
    facts.run(ep, m[0], m[1], `1.${i % 10}.0`, m[2], now);
  }
})();
store.db.exec('ANALYZE');

async function time(label: string, fn: () => Promise<unknown>, runs = 5): Promise<number> {
  await fn();
  const samples: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    const c = process.cpuUsage();
    await fn();
    const used = process.cpuUsage(c);
    cpu.push((used.user + used.system) / 1000);
    samples.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  samples.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  console.log(`${label.padEnd(52)} median ${samples[Math.floor(runs / 2)]!.toFixed(1)} ms (CPU ${cpu[Math.floor(runs / 2)]!.toFixed(1)} ms)`);
  return cpu[Math.floor(runs / 2)]!;
}

console.log(`${count} devices`);
for (const sort of ['endpoint', 'manufacturer', 'model', 'lastSeen'] as DeviceSort[]) {
  await time(`page 1 sorted by ${sort}`, () => store.fleetSummary.devices({ sort, limit: 50, offset: 0 }));
}
await time('page 1000 (offset 50,000) by endpoint', () => store.fleetSummary.devices({ sort: 'endpoint', limit: 50, offset: 50_000 }));
await time('search "dev-0123" by endpoint', () => store.fleetSummary.devices({ q: 'dev-0123', sort: 'endpoint', limit: 50, offset: 0 }));
await time('search "Glob" sorted by lastSeen', () => store.fleetSummary.devices({ q: 'Glob', sort: 'lastSeen', limit: 50, offset: 0 }));
await time('fleet summary (dashboard)', () => store.fleetSummary.summary(now));

// The inventory (both protocols) by make and model: with migration 22's indexes on the expressions
// the filters compare, then with those indexes dropped (same run, same file).
const inv = store.db.prepare(`INSERT INTO inventory_devices (id, lwm2m_endpoint, make, model, os, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'seen', ?, ?)`);
store.db.transaction(() => {
  for (let i = 0; i < count; i++) {
    const m = i % 100 === 7 ? (['Rare', 'R-1', 'RareOS'] as const) : makes[i % makes.length]!;
    inv.run(`d${String(i).padStart(7, '0')}`, `dev-${String(i).padStart(6, '0')}`, m[0], m[1], m[2], now, now);
  }
})();
store.db.exec('ANALYZE');
const filters: [string, { make?: string; model?: string }][] = [
  ['inventory make=Rare (1 %), first page', { make: 'Rare' }],
  ['inventory make=Nobody (no device), the empty page', { make: 'Nobody' }],
  ['inventory model=r-1 (1 %), first page', { model: 'r-1' }],
  ['inventory make=Acme model=Rocket-2 (25 %), first page', { make: 'Acme', model: 'Rocket-2' }],
];
const indexed: number[] = [];
for (const [label, filter] of filters) indexed.push(await time(`${label}, indexed`, () => store.inventory.list({ ...filter, limit: 50 })));
store.db.exec('DROP INDEX inventory_devices_eff_make; DROP INDEX inventory_devices_eff_model; DROP INDEX inventory_devices_eff_make_model; ANALYZE');
for (const [i, [label, filter]] of filters.entries()) {
  const scanned = await time(`${label}, no index`, () => store.inventory.list({ ...filter, limit: 50 }));
  console.log(`  CPU ratio without/with the index: ${(scanned / Math.max(0.01, indexed[i]!)).toFixed(1)}x`);
}
store.close();
rmSync(dir, { recursive: true, force: true });
