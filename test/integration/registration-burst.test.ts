/**
 * A fleet that reboots at once (issue 18): far more Registers in flight than the server takes,
 * from coapload's LwM2M registration mode (../shared/tools/coapload, -R) in another process,
 * against Depot's LwM2M server on real UDP and a real SQLite store, with admission control
 * (RFC 7252 §5.9.3.4: 5.03 Service Unavailable with Max-Age) at a small bound so that it acts.
 *
 * Outcomes, not speeds: no Register goes unanswered (coapload counts none lost), every answer
 * is 2.01 or 5.03, every 2.01 is in the store, and the devices that were told to come back
 * (or whose answer coapload no longer waited for) register when they do; in the end every
 * endpoint coapload named is registered exactly once. How many got 5.03 is reported.
 * The 100,000-device version is `npm run bench:lwm2m -- --burst 100000` (bench/lwm2m.ts).
 */
import { after, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Code, ContentFormat } from '../../src/coap/codes.js';
import { encodeRecords, Value } from '../../src/lwm2m/index.js';
import { decodeUint } from '../../src/coap/options.js';
import { CoapClient } from '../../src/coap/client.js';
import { CoapServer } from '../../src/coap/server.js';
import { UdpTransport } from '../../src/coap/udp.js';
import { Lwm2mServer } from '../../src/lwm2m/server/server.js';
import { openSqliteStore } from '../../src/store/index.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const COAPLOAD_DIR = resolve(REPO, '..', 'shared', 'tools', 'coapload');
/** Seconds of burst: coapload keeps CONCURRENCY Registers in flight for this long (each a new endpoint). */
const BURST_SECONDS = 3;
const CONCURRENCY = 1000;
const SOURCES = 256;
const MAX_AGE = 14;
const WORKERS = 64;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function coapload(): string {
  const made = spawnSync('make', ['-C', COAPLOAD_DIR], { stdio: ['ignore', 'ignore', 'pipe'] });
  assert.equal(made.status, 0, `make -C ${COAPLOAD_DIR} failed: ${made.stderr?.toString()}`);
  const binary = join(COAPLOAD_DIR, 'coapload');
  assert.ok(existsSync(binary), `no ${binary}`);
  return binary;
}

async function run(binary: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  return { stdout, stderr, code };
}

function field(text: string, name: string): number {
  const m = new RegExp(`\\b${name}=(\\d+)`).exec(text);
  assert.ok(m, `coapload reported no ${name}= in:\n${text}`);
  return Number(m[1]);
}

test('burst: more Registers in flight than the server takes: each is answered 2.01 or 5.03 (Max-Age), none lost, and every endpoint ends registered once', { timeout: 180_000 }, async (t) => {
  const binary = coapload();
  const dir = mkdtempSync(join(tmpdir(), 'depot-burst-'));
  dirs.push(dir);
  const store = openSqliteStore({ dataDir: dir });
  const coap = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0, receiveBufferSize: 4 * 1024 * 1024 }) });
  const lwm2m = new Lwm2mServer({ store, coap: { coap }, allowUnsecured: true, requestTimeout: 1000, maxPendingContacts: 500, maxRetryAfterSec: 2 });
  // coapload's sockets go away when it exits: reads of /3/0 still queued then fail (reported here, not a test failure).
  let readFailures = 0;
  lwm2m.on('error', () => readFailures++);
  const port = coap.endpoint.transport.address().port;
  // The devices that register again afterwards: 64 sockets (the server reads one device per address at a time), answering the read of /3/0.
  const devices: CoapServer[] = [];
  const clients: CoapClient[] = [];
  for (let i = 0; i < WORKERS; i++) {
    const device = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }) });
    device.resource('/3/0', { get: () => ({ code: Code.Content, contentFormat: ContentFormat.SenmlCbor, payload: encodeRecords(ContentFormat.SenmlCbor, [{ path: [3, 0, 0], value: Value.string('burst') }]) }) });
    devices.push(device);
    clients.push(new CoapClient({ endpoint: device.endpoint }));
  }
  try {
    const started = Date.now();
    // -t: a generous per-request timeout, so that a slow machine is not mistaken for a lost answer.
    const load = await run(binary, ['-h', '127.0.0.1', '-p', String(port), '-R', 'burst-', '-L', '3600', '-c', String(CONCURRENCY), '-s', String(SOURCES), '-d', String(BURST_SECONDS), '-w', '0', '-t', '30000']);
    assert.equal(load.code, 0, load.stderr);
    const summary = `${load.stdout}\n${load.stderr}`;
    const endpoints = field(summary, 'endpoints');
    const created = field(summary, 'reg_ok');
    const lost = field(summary, 'lost');
    const errors = field(summary, 'err');
    const codes = /err_codes=(\S+)/.exec(summary)?.[1] ?? '';
    const unavailable = Number(/5\.03=(\d+)/.exec(codes)?.[1] ?? 0);
    assert.equal(lost, 0, `no Register went unanswered: ${summary}`);
    assert.equal(errors, unavailable, `every answer other than 2.01 is 5.03 (err_codes=${codes})`);
    // The reads of /3/0 that were still queued drain (or fail: coapload has gone).
    for (let n = 0; n < 1200 && lwm2m.admissionStats().pendingContacts > 0; n++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(lwm2m.admissionStats().pendingContacts, 0, 'the contact backlog drained');
    t.diagnostic(`coapload: ${summary.trim().replace(/\n/g, ' | ')}`);
    // The server also answered the Registers that were in flight when coapload stopped counting.
    assert.ok(lwm2m.admissionStats().refused >= unavailable, 'the server counted at least the 5.03s coapload saw');

    const registered = new Set<string>();
    for (let after = ''; ; ) {
      const page = await store.registrations.list({ endpointPrefix: 'burst-', limit: 1000, after });
      for (const r of page.items) registered.add(r.endpoint);
      if (!page.next) break;
      after = page.next;
    }
    assert.ok(registered.size >= created, `every 2.01 is in the store (${registered.size} stored, ${created} answered 2.01)`);
    for (const name of registered) assert.ok(/^burst-\d+$/.test(name) && Number(name.slice(6)) < endpoints, `only endpoints coapload named: ${name}`);

    // The devices told to come back (and those whose 2.01 coapload did not wait for) register again,
    // after the Max-Age they were given.
    const missing = Array.from({ length: endpoints }, (_, i) => `burst-${i}`).filter((name) => !registered.has(name));
    let retried503 = 0;
    let next = 0;
    const worker = async (client: CoapClient): Promise<void> => {
      while (next < missing.length) {
        const name = missing[next++]!;
        for (let attempt = 0; ; attempt++) {
          assert.ok(attempt < 20, `${name} could not register in 20 attempts`);
          const r = await client.post(`coap://127.0.0.1:${port}/rd?ep=${name}&lt=3600&lwm2m=1.1&b=U`, '</1/0>,</3/0>', { contentFormat: ContentFormat.LinkFormat });
          if (r.codeText === '2.01') break;
          assert.equal(r.codeText, '5.03', `${name}: ${r.codeText} ${r.text()}`);
          retried503++;
          const maxAge = r.options.find((o) => o.number === MAX_AGE);
          assert.ok(maxAge, '5.03 carries Max-Age');
          await new Promise((res) => setTimeout(res, decodeUint(maxAge.value) * 1000));
        }
      }
    };
    await Promise.all(clients.map(worker));
    for (let n = 0; n < 1200 && lwm2m.admissionStats().pendingContacts > 0; n++) await new Promise((r) => setTimeout(r, 50));

    let count = 0;
    for (let after = ''; ; ) {
      const page = await store.registrations.list({ endpointPrefix: 'burst-', limit: 1000, after });
      count += page.items.length;
      if (!page.next) break;
      after = page.next;
    }
    assert.equal(count, endpoints, `every endpoint coapload named is registered, once: ${summary}`);
    t.diagnostic(
      `burst: ${endpoints} Registers offered in ${BURST_SECONDS} s with ${CONCURRENCY} in flight; ${created} answered 2.01, ${unavailable} answered 5.03 (come back later), ${lost} lost; ` +
        `${missing.length} registered afterwards (${retried503} more 5.03 on the way); ${readFailures} /3/0 reads failed after coapload left; all ${count} registered in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  } finally {
    for (const c of clients) await c.close();
    for (const d of devices) await d.close();
    await lwm2m.close();
    await coap.close();
    store.close();
  }
});
