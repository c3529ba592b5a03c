import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ContentFormat, Node, Value, encode } from '../../../src/lwm2m/index.js';
import { Lwm2mClient, accountOf } from '../../../src/lwm2m/client/index.js';
import type { Lwm2mClientConfig } from '../../../src/lwm2m/client/index.js';
import { Lwm2mServerTestDriver } from './server-test-driver.js';
import { DEVICE, setup, waitUntil } from './support.js';

const PSK_ID = 'dev-psk-1';
const PSK_KEY = Uint8Array.from(Buffer.from('00112233445566778899aabbccddeeff', 'hex'));

function securityTlv(iid: number, uri: string, psk?: { identity: string; key: Uint8Array }): Uint8Array {
  return encode(
    ContentFormat.Tlv,
    [0, iid],
    Node.instance(iid, [
      Node.resource(0, Value.string(uri)),
      Node.resource(1, Value.boolean(false)),
      Node.resource(2, Value.integer(psk ? 0 : 3)),
      Node.resource(3, Value.opaque(psk ? Buffer.from(psk.identity) : new Uint8Array(0))),
      Node.resource(4, Value.opaque(new Uint8Array(0))),
      Node.resource(5, Value.opaque(psk ? psk.key : new Uint8Array(0))),
      Node.resource(10, Value.integer(101)),
    ]),
  );
}

function serverTlv(iid: number, lifetime: number): Uint8Array {
  return encode(
    ContentFormat.Tlv,
    [1, iid],
    Node.instance(iid, [Node.resource(0, Value.integer(101)), Node.resource(1, Value.unsignedInteger(lifetime)), Node.resource(6, Value.boolean(false)), Node.resource(7, Value.string('U'))]),
  );
}

/** The Bootstrap-Server side of the sequence, played by the test driver. */
async function runBootstrap(bs: Lwm2mServerTestDriver, dmUri: string, psk?: { identity: string; key: Uint8Array }): Promise<string[]> {
  const codes: string[] = [];
  codes.push((await bs.request('DELETE', '/')).codeText);
  const disc = await bs.request('GET', '/', { accept: ContentFormat.LinkFormat });
  codes.push(disc.codeText);
  codes.push((await bs.request('PUT', '/0/1', { payload: securityTlv(1, dmUri, psk), contentFormat: ContentFormat.Tlv })).codeText);
  codes.push((await bs.request('PUT', '/1/0', { payload: serverTlv(0, 120), contentFormat: ContentFormat.Tlv })).codeText);
  codes.push((await bs.request('POST', '/bs')).codeText);
  return codes;
}

test('TS Core 1.1 §6.1 client-initiated bootstrap: Request, Delete, Discover, Write /0 and /1, Finish, then Register at the written URI', async () => {
  const dm = await Lwm2mServerTestDriver.start();
  const s = await setup({ start: false, config: { serverUri: undefined, bootstrapUri: 'coap://127.0.0.1:1' } });
  const bs = s.driver;
  // The client's bootstrap URI must point at the driver: rebuild the client.
  const client = new Lwm2mClient({ endpoint: 'urn:dev:bs-1', bootstrapUri: bs.uri, host: '127.0.0.1', device: DEVICE, stateFile: join(s.dir, 'bs.json'), retry: { initialMs: 50, maxMs: 100 }, random: () => 0 });
  try {
    await client.start();
    const req = await bs.waitFor((r) => r.method === 'POST' && r.path === '/bs');
    assert.deepEqual(req.query, ['ep=urn:dev:bs-1', 'pct=112']);
    const disc = await bs.request('GET', '/', { accept: ContentFormat.LinkFormat });
    assert.equal(Buffer.from(disc.payload).toString(), `</>;lwm2m=1.1,</0/0>;uri="${bs.uri}",</1>,</3/0>,</4/0>`);
    const codes = await runBootstrap(bs, dm.uri);
    assert.deepEqual(codes, ['2.02', '2.05', '2.04', '2.04', '2.04']);
    const reg = await dm.waitFor((r) => r.method === 'POST' && r.path === '/rd');
    assert.deepEqual(reg.query, ['ep=urn:dev:bs-1', 'lt=120', 'lwm2m=1.1', 'b=U']);
    await waitUntil(() => client.state === 'registered');
    // The Bootstrap-Server account survives Bootstrap-Delete; the new account is /0/1.
    assert.equal(accountOf(client.security, 0)?.bootstrap, true);
    assert.equal(accountOf(client.security, 1)?.uri, dm.uri);
    assert.equal(accountOf(client.security, 1)?.shortServerId, 101);
  } finally {
    await client.stop();
    await s.close();
    await dm.close();
  }
});

test('TS Core 1.1 §6.1 Bootstrap-Finish with no usable server account is answered 4.06', async () => {
  const s = await setup({ start: false });
  const bs = s.driver;
  const client = new Lwm2mClient({ endpoint: 'urn:dev:bs-2', bootstrapUri: bs.uri, host: '127.0.0.1', device: DEVICE, retry: { initialMs: 50, maxMs: 100 }, random: () => 0 });
  try {
    await client.start();
    await bs.waitFor((r) => r.method === 'POST' && r.path === '/bs');
    assert.equal((await bs.request('DELETE', '/')).codeText, '2.02');
    assert.equal((await bs.request('POST', '/bs')).codeText, '4.06');
    // Only the Security instance: still not enough.
    assert.equal((await bs.request('PUT', '/0/1', { payload: securityTlv(1, 'coap://127.0.0.1:9'), contentFormat: ContentFormat.Tlv })).codeText, '2.04');
    assert.equal((await bs.request('POST', '/bs')).codeText, '4.06');
  } finally {
    await client.stop();
    await s.close();
  }
});

test('TS Core 1.1 §6.1 + §6.2.1: bootstrapped PSK credentials persist (0600 state file); a restarted client registers over DTLS with them, without bootstrapping again', async () => {
  const dm = await Lwm2mServerTestDriver.start({ psk: new Map([[PSK_ID, PSK_KEY]]) });
  const s = await setup({ start: false });
  const bs = s.driver;
  const stateFile = join(s.dir, 'client-state.json');
  const config: Lwm2mClientConfig = { endpoint: 'urn:dev:psk-1', bootstrapUri: bs.uri, host: '127.0.0.1', device: DEVICE, stateFile, retry: { initialMs: 50, maxMs: 100 }, random: () => 0 };
  let client = new Lwm2mClient(config);
  try {
    await client.start();
    await bs.waitFor((r) => r.method === 'POST' && r.path === '/bs');
    assert.deepEqual(await runBootstrap(bs, dm.uri, { identity: PSK_ID, key: PSK_KEY }), ['2.02', '2.05', '2.04', '2.04', '2.04']);
    const reg = await dm.waitFor((r) => r.method === 'POST' && r.path === '/rd', 10_000);
    assert.deepEqual(reg.peer.identity, { kind: 'psk', identity: PSK_ID });
    await waitUntil(() => client.state === 'registered', 5000);
    await client.stop();
    assert.ok(dm.requests.some((r) => r.method === 'DELETE' && r.path === '/rd/r1'));

    const mode = (await stat(stateFile)).mode & 0o777;
    assert.equal(mode, 0o600);
    const saved = JSON.parse(await readFile(stateFile, 'utf8')) as { endpoint: string; objects: Record<string, Record<string, Record<string, { t: string; v: string }>>> };
    assert.equal(saved.endpoint, 'urn:dev:psk-1');
    assert.deepEqual(saved.objects['0']!['1']!['5'], { t: 'opaque', v: Buffer.from(PSK_KEY).toString('base64') });

    const bootstrapRequests = bs.requests.filter((r) => r.path === '/bs').length;
    client = new Lwm2mClient(config);
    await client.start();
    const again = await dm.waitFor((r) => r.method === 'POST' && r.path === '/rd' && r !== reg, 10_000);
    assert.deepEqual(again.query, ['ep=urn:dev:psk-1', 'lt=120', 'lwm2m=1.1', 'b=U']);
    assert.deepEqual(again.peer.identity, { kind: 'psk', identity: PSK_ID });
    assert.equal(bs.requests.filter((r) => r.path === '/bs').length, bootstrapRequests, 'no second Bootstrap-Request');
  } finally {
    await client.stop();
    await s.close();
    await dm.close();
  }
});

test('TS Core 1.1 §6.1: during bootstrap only the Bootstrap-Server gets bootstrap rights (another peer: DM rules, no Finish)', async () => {
  const other = await Lwm2mServerTestDriver.start();
  const s = await setup({ start: false });
  const bs = s.driver;
  const client = new Lwm2mClient({ endpoint: 'urn:dev:bs-3', bootstrapUri: bs.uri, host: '127.0.0.1', device: DEVICE, retry: { initialMs: 50, maxMs: 100 }, random: () => 0 });
  try {
    await client.start();
    await bs.waitFor((r) => r.method === 'POST' && r.path === '/bs');
    other.devicePeer = bs.devicePeer;
    assert.equal((await other.request('PUT', '/0/1', { payload: securityTlv(1, 'coap://127.0.0.1:9'), contentFormat: ContentFormat.Tlv })).codeText, '4.01');
    assert.equal((await other.request('DELETE', '/')).codeText, '4.05');
    assert.equal((await other.request('POST', '/bs')).codeText, '4.05');
    assert.equal((await bs.request('PUT', '/0/1', { payload: securityTlv(1, 'coap://127.0.0.1:9'), contentFormat: ContentFormat.Tlv })).codeText, '2.04');
  } finally {
    await client.stop();
    await s.close();
    await other.close();
  }
});

test('TS Core 1.1 §6.1 Bootstrap-Request refused (4.03): bootstrapFailed with the retry delay, then a new Bootstrap-Request', async () => {
  const s = await setup({ start: false });
  const bs = s.driver;
  let refusals = 1;
  bs.responders.push((req) => (req.path === '/bs' && req.method === 'POST' && refusals-- > 0 ? { code: 0x83 } : undefined));
  const client = new Lwm2mClient({ endpoint: 'urn:dev:bs-4', bootstrapUri: bs.uri, host: '127.0.0.1', device: DEVICE, retry: { initialMs: 50, maxMs: 100 }, random: () => 0 });
  try {
    const failed = client.waitFor('bootstrapFailed');
    await client.start();
    const ev = await failed;
    assert.equal(ev.reason, 'Bootstrap-Request answered 4.03');
    assert.equal(ev.retryInMs, 50);
    await waitUntil(() => bs.requests.filter((r) => r.path === '/bs').length === 2);
    assert.equal(client.state, 'bootstrapping');
  } finally {
    await client.stop();
    await s.close();
  }
});
