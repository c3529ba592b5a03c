/**
 * Who may be bootstrapped, over real UDP and real DTLS sockets with a real SQLite store.
 * LwM2M TS Core 1.1 §6.1 (Bootstrap interface) leaves the authentication of a Bootstrap-Request to
 * the transport (§7.1: the Bootstrap-Server account's security mode); where the spec is silent the
 * test says "Depot's choice". The reproduced attack: a claimant on plain CoAP sending an accepted
 * name's Bootstrap-Request got that device's DM key in clear and, by asking again, rotated the real
 * device out; a flood of random names filled the gate.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { CoapClient } from '../../../src/coap/client.js';
import { Code, ContentFormat } from '../../../src/coap/codes.js';
import { CoapServer } from '../../../src/coap/server.js';
import type { DatagramTransport } from '../../../src/coap/transport.js';
import { UdpTransport } from '../../../src/coap/udp.js';
import { DtlsTransport } from '../../../src/dtls/transport.js';
import { decode } from '../../../src/lwm2m/index.js';
import type { InstanceNode } from '../../../src/lwm2m/index.js';
import { BootstrapServer } from '../../../src/lwm2m/server/bootstrap.js';
import type { BootstrapServerOptions } from '../../../src/lwm2m/server/bootstrap.js';
import { openSqliteStore } from '../../../src/store/index.js';
import type { SqliteStore } from '../../../src/store/index.js';

/** Test driver: the bootstrap side of a device (answers Discover/Delete/Write/Finish), over UDP or DTLS. */
class BootstrapDevice {
  log: string[] = [];
  written = new Map<string, Uint8Array>();
  private constructor(
    readonly coap: CoapServer,
    readonly client: CoapClient,
  ) {}
  static async start(transport?: DatagramTransport): Promise<BootstrapDevice> {
    const coap = new CoapServer({ transport: transport ?? (await UdpTransport.bind({ host: '127.0.0.1', port: 0 })) });
    const d = new BootstrapDevice(coap, new CoapClient({ endpoint: coap.endpoint }));
    coap.resource('/0', { get: () => (d.log.push('discover /0'), { code: Code.Content, contentFormat: ContentFormat.LinkFormat, payload: '</0>,</0/0>' }) });
    coap.resource('/', { delete: () => (d.log.push('delete /'), { code: Code.Deleted }) });
    for (const path of ['/0', '/1']) {
      coap.resource(path, {
        prefix: true,
        put: (req) => (d.log.push(`write ${req.path}`), d.written.set(req.path, Uint8Array.from(req.payload)), { code: Code.Changed }),
      });
    }
    coap.resource('/bs', { post: () => (d.log.push('finish'), { code: Code.Changed }) });
    return d;
  }
  static psk(identity: string, key: string): Promise<BootstrapDevice> {
    return DtlsTransport.bind({ host: '127.0.0.1', port: 0, client: { psk: { identity, key: Buffer.from(key) } } }).then((t) => BootstrapDevice.start(t));
  }
  request(server: string, endpoint: string) {
    return this.client.post(`${server}/bs?ep=${encodeURIComponent(endpoint)}`, new Uint8Array(0), { timeout: 5000 });
  }
  /** The DM PSK written to /0/1 (resource 5). */
  writtenKey(): Buffer {
    const security = decode(ContentFormat.LwM2mTlv, [0, 1], this.written.get('/0/1')!) as InstanceNode;
    return Buffer.from((security.resources.find((r) => r.id === 5) as { value: { value: Uint8Array } }).value.value);
  }
  close() {
    return this.coap.close();
  }
}

const wall = { t: Date.UTC(2026, 11, 7, 12, 0, 0) };
const dirs: string[] = [];
const devices: BootstrapDevice[] = [];
let store: SqliteStore;
let coap: CoapServer;
let coaps: CoapServer;
let bootstrap: BootstrapServer;
let coapUri: string;
let coapsUri: string;
const audit: string[] = [];

async function device(make: Promise<BootstrapDevice>): Promise<BootstrapDevice> {
  const d = await make;
  devices.push(d);
  return d;
}

/** Waits until provisioning started by the last request ended (bootstrapped or failed). */
async function provisioned(): Promise<void> {
  await Promise.race([once(bootstrap, 'bootstrapped'), once(bootstrap, 'failed').then(([, reason]) => assert.fail(String(reason)))]);
}

function startBootstrap(extra: Partial<BootstrapServerOptions> = {}): BootstrapServer {
  return new BootstrapServer({
    store,
    coap: { coap, coaps },
    dmServer: { uri: 'coaps://dm.example:5684', shortServerId: 1, lifetimeSec: 300, binding: 'U' },
    requestTimeout: 5000,
    now: () => wall.t,
    audit: (line) => audit.push(line),
    ...extra,
  });
}

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-bs-sec-'));
  dirs.push(dir);
  store = openSqliteStore({ dataDir: dir });
  coap = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }) });
  const dtls = await DtlsTransport.bind({
    host: '127.0.0.1',
    port: 0,
    server: { pskLookup: async (identity) => (await store.credentials.findPsk(identity))?.key.reveal() ?? (await store.bootstrapCredentials.find('psk', identity))?.key?.reveal() },
  });
  coaps = new CoapServer({ transport: dtls });
  bootstrap = startBootstrap();
  coapUri = `coap://127.0.0.1:${coap.endpoint.transport.address().port}`;
  coapsUri = `coaps://127.0.0.1:${dtls.address().port}`;
});

after(async () => {
  for (const d of devices) await d.close();
  await bootstrap.close();
  await coap.close();
  await coaps.close();
  store.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('Depot\'s choice (TS Core §6.1, §7.1 leave it to the transport): without lab mode a Bootstrap-Request over plain CoAP is refused with 4.01 and nothing is written, not even for an accepted name', async () => {
  const real = await device(BootstrapDevice.psk('factory-victim', 'victim-factory-key'));
  await store.bootstrapCredentials.add({ kind: 'psk', identity: 'factory-victim', key: Buffer.from('victim-factory-key'), endpoint: 'victim' }, wall.t);
  assert.equal((await real.request(coapsUri, 'victim')).codeText, '2.04');
  await bootstrap.accept('victim', 'operator');
  const before = await store.bootstrap.get('victim');
  const claimant = await device(BootstrapDevice.start());
  const refused = once(bootstrap, 'refused');
  const response = await claimant.request(coapUri, 'victim');
  assert.equal(response.codeText, '4.01');
  assert.match(response.text(), /insecure-transport/);
  assert.deepEqual((await refused).slice(0, 2), ['victim', 'insecure-transport']);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(claimant.log, [], 'nothing written to the claimant');
  assert.equal(await store.credentials.findPsk('victim'), null, 'no DM key made');
  assert.deepEqual(await store.bootstrap.get('victim'), before, 'the record is untouched');
  // A new name over plain CoAP creates no record either.
  assert.equal((await claimant.request(coapUri, 'plain-new')).codeText, '4.01');
  assert.equal(await store.bootstrap.get('plain-new'), null);
  assert.ok(audit.some((l) => l.startsWith('refused "victim" (insecure-transport)')));
});

test('Depot\'s choice (TS Core §6.1.3 sets no form for ep): an endpoint name with control characters gets 4.00, before anything else (a longer one than 252 bytes cannot arrive: RFC 7252 §5.10 caps a Uri-Query option at 255)', async () => {
  const d = await device(BootstrapDevice.start());
  for (const name of ['evil\nname', 'evil\u001b[2Jname', 'evil\u0085name']) {
    const response = await d.request(coapUri, name);
    assert.equal(response.codeText, '4.00', JSON.stringify(name));
    assert.match(response.text(), /bad endpoint client name \(ep\): the endpoint client name contains/);
  }
  assert.equal(await store.bootstrap.get('evil\nname'), null);
});

test('TS Core §6.1 over DTLS: a per-device bootstrap credential bootstraps its own name and binds it; used for another name, or a DM credential used at /bs, is refused (4.03)', async () => {
  await store.bootstrapCredentials.add({ kind: 'psk', identity: 'factory-dev-a', key: Buffer.from('factory-key-a'), endpoint: 'dev-a' }, wall.t);
  await store.credentials.bind('dm-only', { kind: 'psk', identity: 'dm-only', key: Buffer.from('dm-key') }, wall.t);
  const a = await device(BootstrapDevice.psk('factory-dev-a', 'factory-key-a'));
  const other = await a.request(coapsUri, 'dev-b');
  assert.equal(other.codeText, '4.03');
  assert.match(other.text(), /credential-for-another-endpoint/);
  assert.equal(await store.bootstrap.get('dev-b'), null, 'a refusal creates no record');
  const dm = await device(BootstrapDevice.psk('dm-only', 'dm-key'));
  const dmResponse = await dm.request(coapsUri, 'dm-only');
  assert.equal(dmResponse.codeText, '4.03');
  assert.match(dmResponse.text(), /unknown-credential/);
  assert.equal((await a.request(coapsUri, 'dev-a')).codeText, '2.04');
  await bootstrap.accept('dev-a', 'operator');
  const done = provisioned();
  assert.equal((await a.request(coapsUri, 'dev-a')).codeText, '2.04');
  await done;
  assert.deepEqual(a.log, ['discover /0', 'delete /', 'write /0/1', 'write /1/0', 'finish']);
  const record = await store.bootstrap.get('dev-a');
  assert.equal(record?.boundIdentity, 'psk:factory-dev-a');
  assert.equal(record?.bootstrapCount, 1);
  assert.deepEqual(a.writtenKey(), Buffer.from((await store.credentials.findPsk('dev-a'))!.key.reveal()));
});

test('a batch credential binds each name on first use; another identity asking for a bound name is refused (4.03), counted on the record and logged', async () => {
  await store.bootstrapCredentials.add({ kind: 'psk', identity: 'batch-1', key: Buffer.from('batch-key-1') }, wall.t);
  await store.bootstrapCredentials.add({ kind: 'psk', identity: 'batch-2', key: Buffer.from('batch-key-2') }, wall.t);
  const first = await device(BootstrapDevice.psk('batch-1', 'batch-key-1'));
  await first.request(coapsUri, 'meter-17');
  await bootstrap.accept('meter-17', 'operator');
  const done = provisioned();
  assert.equal((await first.request(coapsUri, 'meter-17')).codeText, '2.04');
  await done;
  assert.equal((await store.bootstrap.get('meter-17'))?.boundIdentity, 'psk:batch-1');
  const second = await device(BootstrapDevice.psk('batch-2', 'batch-key-2'));
  const refused = once(bootstrap, 'refused');
  const response = await second.request(coapsUri, 'meter-17');
  assert.equal(response.codeText, '4.03');
  const [endpoint, reason, detail] = (await refused) as [string, string, string];
  assert.deepEqual([endpoint, reason], ['meter-17', 'identity-mismatch']);
  assert.match(detail, /bound to "psk:batch-1", the request came from "psk:batch-2"/);
  const record = await store.bootstrap.get('meter-17');
  assert.equal(record?.refusedCount, 1);
  assert.match(record.lastRefusal!, /^identity-mismatch: /);
  assert.equal(record?.lastRefusedAt, wall.t);
  assert.equal(record?.bootstrapCount, 1, 'not bootstrapped again');
  assert.deepEqual(second.log, []);
  assert.ok(audit.some((l) => l.startsWith('refused "meter-17" (identity-mismatch)')));
});

test('Depot\'s choice: re-bootstrap of a provisioned device is rate-limited (4.29), and after the interval writes the same DM key again unless the operator asked for rotation', async () => {
  await store.bootstrapCredentials.add({ kind: 'psk', identity: 'factory-dev-r', key: Buffer.from('factory-key-r'), endpoint: 'dev-r' }, wall.t);
  const d = await device(BootstrapDevice.psk('factory-dev-r', 'factory-key-r'));
  await d.request(coapsUri, 'dev-r');
  await bootstrap.accept('dev-r', 'operator');
  let done = provisioned();
  await d.request(coapsUri, 'dev-r');
  await done;
  const firstKey = d.writtenKey();
  d.log = [];
  // A replayed or duplicate request right after: refused, nothing written, the key stays.
  wall.t += 60_000;
  const limited = await d.request(coapsUri, 'dev-r');
  assert.equal(limited.codeText, '4.29');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(d.log, []);
  assert.match((await store.bootstrap.get('dev-r'))!.lastRefusal!, /^rate-limited: .*again in 540 s/);
  // After the interval: served, with the key the device already works with.
  wall.t += 10 * 60_000;
  done = provisioned();
  assert.equal((await d.request(coapsUri, 'dev-r')).codeText, '2.04');
  await done;
  assert.deepEqual(d.writtenKey(), firstKey, 'the working key was written again, not rotated');
  assert.deepEqual(Buffer.from((await store.credentials.findPsk('dev-r'))!.key.reveal()), firstKey);
  // Rotation only when asked for, and once.
  assert.equal((await bootstrap.requestKeyRotation('dev-r')).rotateKeyRequested, true);
  wall.t += 10 * 60_000;
  done = provisioned();
  await d.request(coapsUri, 'dev-r');
  await done;
  const rotated = d.writtenKey();
  assert.notDeepEqual(rotated, firstKey);
  assert.deepEqual(Buffer.from((await store.credentials.findPsk('dev-r'))!.key.reveal()), rotated);
  const record = await store.bootstrap.get('dev-r');
  assert.equal(record?.rotateKeyRequested, false);
  assert.equal(record?.bootstrapCount, 3);
});

test('Depot\'s choice: in lab mode a flood of 2,000 Bootstrap-Requests with random names from one source creates at most the per-source bound of records; the total is bounded; one record per name; undecided records expire', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-bs-flood-'));
  dirs.push(dir);
  const labStore = openSqliteStore({ dataDir: dir });
  const labCoap = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }) });
  const limits = { maxPerSource: 16, maxTotal: 40, ttlMs: 24 * 3600_000 };
  const labWall = { t: wall.t };
  const lab = new BootstrapServer({ store: labStore, coap: { coap: labCoap }, dmServer: { uri: 'coaps://dm.example:5684', shortServerId: 1, lifetimeSec: 300, binding: 'U' }, insecureBootstrap: true, pendingLimits: limits, now: () => labWall.t, audit: (line) => audit.push(line) });
  const labUri = `coap://127.0.0.1:${labCoap.endpoint.transport.address().port}`;
  const rows = () => labStore.db.prepare('SELECT count(*) FROM bootstrap_endpoints').pluck().get() as number;
  try {
    const attacker = await device(BootstrapDevice.start());
    const codes = new Map<string, number>();
    for (let sent = 0; sent < 2000; sent += 100) {
      const batch = Array.from({ length: 100 }, () => attacker.request(labUri, `rnd-${Math.random().toString(36).slice(2)}`));
      for (const r of await Promise.all(batch)) codes.set(r.codeText, (codes.get(r.codeText) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries(codes), { '2.04': 16, '4.29': 1984 });
    assert.equal(rows(), 16);
    assert.ok(audit.some((l) => l.includes('(source-limit)') && l.includes('[1024 refusals of this kind this minute]')), 'the flood is logged, backing off');
    assert.ok(audit.filter((l) => l.includes('(source-limit)')).length <= 11, 'one audit line per doubling, not per request');
    // A name already recorded is still counted (one record per name: attempts and last address).
    const known = (labStore.db.prepare('SELECT endpoint FROM bootstrap_endpoints LIMIT 1').pluck().get() as string);
    assert.equal((await attacker.request(labUri, known)).codeText, '2.04');
    assert.equal((await labStore.bootstrap.get(known))?.requestCount, 2);
    // Other sources share the total bound.
    for (const host of ['127.0.0.2', '127.0.0.3']) {
      const other = await device(UdpTransport.bind({ host, port: 0 }).then((t) => BootstrapDevice.start(t)));
      for (let i = 0; i < 16; i++) await other.request(labUri, `${host}-${i}`);
    }
    assert.equal(rows(), 40);
    assert.equal((await (devices[devices.length - 1]!).request(labUri, 'one-more')).codeText, '5.03');
    // A day without a request: the undecided records go; decided ones stay.
    await labStore.bootstrap.accept(known, 'operator', labWall.t);
    labWall.t += limits.ttlMs + 1;
    assert.equal((await attacker.request(labUri, 'after-a-day')).codeText, '2.04');
    assert.deepEqual(labStore.db.prepare('SELECT endpoint FROM bootstrap_endpoints ORDER BY endpoint').pluck().all(), ['after-a-day', known].sort());
  } finally {
    await lab.close();
    await labCoap.close();
    labStore.close();
  }
});
