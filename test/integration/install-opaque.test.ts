/**
 * Opaque vendor packages and install preflight (issue 13), end to end: `startDepotServer` on
 * loopback (CoAP + DTLS, SQLite, HTTP API) and simulated devices (depot sim's Simulator) whose
 * Object 9 integrity check expects a vendor header (behaviour vendorFormat: acmefw), not
 * Depot's signed package. Depot keeps the vendor's bytes as uploaded and relays them byte for
 * byte over each Package URI scheme (coap, coaps, http) and by push; the device decides.
 * Object 9 spec (../shared/spec/lwm2m-software-management-object.txt) §5.1.2.3: the device
 * checks integrity after the download; KO → INITIAL with Update Result Integrity failure.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDepotServer, type RunningDepotServer } from '../../src/app/server.js';
import { trustStore } from '../../src/pkg/index.js';
import { ContentFormat, Node, Value } from '../../src/lwm2m/index.js';
import { Simulator, buildVendorImage, devicePsk, parseProfile, type SimProfile } from '../../src/sim/index.js';
import { testKeys } from '../unit/lwm2m/object9-support.js';
import { apiCall, type ApiRequest } from '../support/api-client.js';

const TOKEN = 'opaque-test-token-0123456789';

interface JobJson {
  id: string;
  state: string;
  result: string | null;
  message: string | null;
  transitions: { to: string; detail: string | null }[];
}

const signingKey = generateKeyPairSync('ed25519');

async function rig(options: { pullVia?: 'http'; vendorDevice?: boolean; noObject9?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'depot-opaque-'));
  const server: RunningDepotServer = await startDepotServer({
    host: '127.0.0.1',
    coapPort: 0,
    coapsPort: 0,
    httpPort: 0,
    dataDir: join(dir, 'server'),
    allowUnsecured: true,
    apiToken: TOKEN,
    publicHost: '127.0.0.1',
    installs: { pollIntervalMs: 100, ...(options.pullVia ? { pullVia: options.pullVia } : {}), trust: trustStore({ vendor: signingKey.publicKey }) },
  });
  const a = server.api.server.address();
  const base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  const coapPort = server.coap.endpoint.transport.address().port;
  const coapsPort = server.coaps!.endpoint.transport.address().port;
  const model = options.noObject9
    ? { manufacturer: 'Acme', model: 'NoSwMgmt', firmwareVersion: '1', count: 1 }
    : { manufacturer: 'Acme', model: 'FW-9', firmwareVersion: '9.0', count: 1, behaviours: { installer: 'sim-good', ...(options.vendorDevice === false ? {} : { vendorFormat: 'acmefw' }) } };
  const profile: SimProfile = parseProfile({ models: [model], psk: { identity: '{ep}', deriveFrom: '00112233445566778899aabbccddeeff' } });
  profile.trust = { [testKeys().keyId]: testKeys().publicKey.export({ type: 'spki', format: 'pem' }) as string };
  const sims: Simulator[] = [];
  const device = async (prefix: string, secure: boolean): Promise<string> => {
    const endpoint = `${prefix}00001`;
    if (secure) {
      const psk = devicePsk(profile, endpoint)!;
      await server.store.credentials.bind(endpoint, { kind: 'psk', identity: psk.identity, key: psk.key }, Date.now());
    }
    const sim = new Simulator({
      server: secure ? `coaps://127.0.0.1:${coapsPort}` : `coap://127.0.0.1:${coapPort}`,
      count: 1,
      profile: secure ? profile : { models: profile.models, ...(profile.trust ? { trust: profile.trust } : {}) },
      endpointPrefix: prefix,
      host: '127.0.0.1',
      rampMs: 0,
      dataDir: join(dir, 'devices', prefix),
    });
    sims.push(sim);
    await sim.start();
    await sim.waitAllRegistered(15_000);
    return endpoint;
  };
  const call = (path: string, init: ApiRequest = {}) => apiCall(base, TOKEN, path, init);
  const upload = async (bytes: Uint8Array, query: string) => {
    const r = await fetch(`${base}/api/v1/packages?${query}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' }, body: bytes });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const waitForJob = async (id: string, ms = 30_000): Promise<JobJson> => {
    const until = Date.now() + ms;
    for (;;) {
      const job = (await call(`/api/v1/installs/${id}`)).body as unknown as JobJson;
      if (['succeeded', 'failed', 'cancelled'].includes(job.state)) return job;
      if (Date.now() > until) throw new Error(`job ${id} stuck in ${job.state}: ${JSON.stringify(job.transitions)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  };
  return {
    server,
    dir,
    device,
    call,
    upload,
    waitForJob,
    close: async () => {
      for (const s of sims) await s.stop();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const image = buildVendorImage({ name: 'acme-firmware', version: '9.1.0', body: randomBytes(20_000) });
const imageSha = createHash('sha256').update(image).digest('hex');
const meta = `format=opaque&name=acme-firmware&version=9.1.0&type=application%2Fx-acme-fw&manufacturer=Acme&model=FW-9&os=AcmeRTOS`;

/** The staged copy the device verified, to compare byte for byte with the upload. */
function stagedOn(dir: string, prefix: string): Buffer[] {
  const root = join(dir, 'devices', prefix);
  const out: Buffer[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.dpkg')) out.push(readFileSync(join(d, e.name)));
    }
  };
  walk(root);
  return out;
}

for (const scheme of ['coap', 'coaps', 'http', 'push'] as const) {
  test(`Done-when (Object 9 spec §5.1.2.3, Package URI ${scheme === 'push' ? '→ Package push §5.1.2.1' : `${scheme}://`}): an opaque vendor image reaches INSTALLED on a device whose check expects the vendor header, delivered byte for byte`, async () => {
    const r = await rig(scheme === 'http' ? { pullVia: 'http' } : {});
    try {
      const endpoint = await r.device(`op-${scheme}-`, scheme === 'coaps');
      const up = await r.upload(image, `${meta}&sha256=${imageSha}`);
      assert.equal(up.status, 201, JSON.stringify(up.body));
      assert.equal(up.body.sha256, imageSha);
      assert.equal(up.body.name, 'acme-firmware');
      assert.deepEqual((up.body.manifest as Record<string, unknown>).format, 'opaque');
      // Kept exactly as uploaded.
      assert.deepEqual(readFileSync(join(r.dir, 'server', 'packages', imageSha)), image);
      const created = await r.call(`/api/v1/devices/${endpoint}/installs`, { json: { package: imageSha, ...(scheme === 'push' ? { method: 'push' } : { method: 'pull' }) } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const job = await r.waitForJob(String(created.body.id));
      assert.equal(job.state, 'succeeded', JSON.stringify(job));
      assert.ok(job.transitions.some((t) => t.to === 'installed'));
      if (scheme !== 'push') assert.ok(job.transitions.some((t) => (t.detail ?? '').includes(`Package URI ${scheme}://`)), JSON.stringify(job.transitions));
      const staged = stagedOn(r.dir, `op-${scheme}-`);
      assert.ok(staged.length === 0 || staged.some((b) => b.equals(image)), 'any staged copy left is the upload, byte for byte');
    } finally {
      await r.close();
    }
  });
}

test('Done-when (Object 9 spec §5.1.2.3 PKG Integrity KO): a corrupted copy of the vendor image yields the device\'s Integrity failure, reported as such', async () => {
  const r = await rig();
  try {
    const endpoint = await r.device('op-bad-', false);
    const corrupted = Buffer.from(image);
    corrupted[corrupted.length - 100]! ^= 0xff;
    // No declared SHA-256: Depot cannot know; the device's check decides.
    const up = await r.upload(corrupted, meta);
    assert.equal(up.status, 201, JSON.stringify(up.body));
    const created = await r.call(`/api/v1/devices/${endpoint}/installs`, { json: { package: String(up.body.sha256), method: 'pull' } });
    const job = await r.waitForJob(String(created.body.id));
    assert.equal(job.state, 'failed');
    assert.match(String(job.result), /integrity/i);
    assert.match(String(job.message), /integrity/i);
  } finally {
    await r.close();
  }
});

test('Depot\'s choice (bad input): an opaque upload whose declared SHA-256 does not match is refused with 400 and nothing is kept', async () => {
  const r = await rig();
  try {
    const wrong = 'ab'.repeat(32);
    const up = await r.upload(image, `${meta}&sha256=${wrong}`);
    assert.equal(up.status, 400);
    assert.match(JSON.stringify(up.body), /differs from the declared/);
    assert.deepEqual(readdirSync(join(r.dir, 'server', 'packages')), []);
    assert.deepEqual(((await r.call('/api/v1/packages')).body.packages as unknown[]).length, 0);
    // Metadata is operator input too: control characters, missing fields.
    assert.equal((await r.upload(image, 'format=opaque&name=a%0Ab&version=1&type=x')).status, 400);
    assert.equal((await r.upload(image, 'format=opaque&name=a')).status, 400);
    assert.equal((await r.upload(image, 'name=a&version=1&type=x')).status, 400);
  } finally {
    await r.close();
  }
});

test('Depot\'s choice: an opaque upload with a signature is kept only when it verifies (Ed25519 over the file\'s SHA-256, a trusted key)', async () => {
  const r = await rig();
  try {
    const good = sign(null, Buffer.from(imageSha, 'hex'), signingKey.privateKey).toString('base64');
    const bad = sign(null, Buffer.alloc(32), signingKey.privateKey).toString('base64');
    const refused = await r.upload(image, `${meta}&keyId=vendor&signature=${encodeURIComponent(bad)}`);
    assert.ok(refused.status >= 400 && refused.status < 500, JSON.stringify(refused.body));
    assert.deepEqual(readdirSync(join(r.dir, 'server', 'packages')), []);
    const unknown = await r.upload(image, `${meta}&keyId=other&signature=${encodeURIComponent(good)}`);
    assert.ok(unknown.status >= 400 && unknown.status < 500);
    const ok = await r.upload(image, `${meta}&keyId=vendor&signature=${encodeURIComponent(good)}`);
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal(ok.body.keyId, 'vendor');
  } finally {
    await r.close();
  }
});

test('Depot\'s choice (preflight, from the registered object links of TS Core 1.1 §6.2.1): a device without </9> — the install does not start and says why, no request reaches the device', async () => {
  const r = await rig({ noObject9: true });
  try {
    const endpoint = await r.device('op-no9-', false);
    const up = await r.upload(image, meta);
    const created = await r.call(`/api/v1/devices/${endpoint}/installs`, { json: { package: String(up.body.sha256) } });
    const job = await r.waitForJob(String(created.body.id));
    assert.equal(job.state, 'failed');
    assert.match(String(job.message), /device has no Software Management object \(Object 9\)/);
    assert.ok(!job.transitions.some((t) => /Create|Read \/9/.test(t.detail ?? '')), JSON.stringify(job.transitions));
  } finally {
    await r.close();
  }
});

test('Object 9 numbering per device (seed 0–10 table vs registry 50–59 results, Object 9 spec §5.1 / OMA registry): once a device has shown its numbering it is recorded, kept in the store, and used for its later reports (the job and the listing)', async () => {
  const r = await rig();
  try {
    const endpoint = await r.device('op-seed-', false);
    assert.equal(await r.server.installs.numberingOf(endpoint), undefined);
    // An instance left DELIVERED (pushed, not installed): 3/0 reads as seed or registry.
    await r.server.lwm2m.create(endpoint, '/9', Node.object(9, [Node.instance(7, [])]), ContentFormat.Tlv);
    const other = buildVendorImage({ name: 'acme-modem', version: '1.0', body: randomBytes(3000) });
    const pushed = await r.server.lwm2m.write(endpoint, '/9/7/2', Node.resource(2, Value.opaque(other)), { contentFormat: ContentFormat.Opaque });
    assert.equal(pushed.status === 'done' && pushed.response.code, '2.04');
    type Listed = { instanceId: number; ambiguous: boolean; profile: string | null; state: string | null; updateState: number; updateResult: number };
    let before: Listed | undefined;
    for (let i = 0; i < 100 && before?.updateState !== 4; i++) {
      before = ((await r.call(`/api/v1/devices/${endpoint}/software`)).body.instances as Listed[]).find((x) => x.instanceId === 7);
      await new Promise((res) => setTimeout(res, 30));
    }
    // 4/0 reads only as seed (DELIVERED): the device has shown its numbering, and it is recorded.
    assert.equal(before?.ambiguous, false, JSON.stringify(before));
    assert.equal(await r.server.installs.numberingOf(endpoint), 'seed');
    const up = await r.upload(image, meta);
    const created = await r.call(`/api/v1/devices/${endpoint}/installs`, { json: { package: String(up.body.sha256), method: 'push' } });
    const job = await r.waitForJob(String(created.body.id));
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.equal(await r.server.installs.numberingOf(endpoint), 'seed');
    const after = ((await r.call(`/api/v1/devices/${endpoint}/software`)).body.instances as Listed[]).find((x) => x.instanceId === 7);
    assert.deepEqual([after?.updateState, after?.ambiguous, after?.profile, after?.state], [4, false, 'seed', 'DELIVERED']);
  } finally {
    await r.close();
  }
});
