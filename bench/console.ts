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

async function time(label: string, fn: () => Promise<unknown>, runs = 5): Promise<void> {
  await fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  samples.sort((a, b) => a - b);
  console.log(`${label.padEnd(48)} median ${samples[Math.floor(runs / 2)]!.toFixed(1)} ms`);
}

console.log(`${count} devices`);
for (const sort of ['endpoint', 'manufacturer', 'model', 'lastSeen'] as DeviceSort[]) {
  await time(`page 1 sorted by ${sort}`, () => store.fleetSummary.devices({ sort, limit: 50, offset: 0 }));
}
await time('page 1000 (offset 50,000) by endpoint', () => store.fleetSummary.devices({ sort: 'endpoint', limit: 50, offset: 50_000 }));
await time('search "dev-0123" by endpoint', () => store.fleetSummary.devices({ q: 'dev-0123', sort: 'endpoint', limit: 50, offset: 0 }));
await time('search "Glob" sorted by lastSeen', () => store.fleetSummary.devices({ q: 'Glob', sort: 'lastSeen', limit: 50, offset: 0 }));
await time('fleet summary (dashboard)', () => store.fleetSummary.summary(now));
store.close();
rmSync(dir, { recursive: true, force: true });
