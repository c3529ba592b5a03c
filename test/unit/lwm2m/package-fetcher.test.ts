/** Streaming downloads for Object 9 pull: CoapClient.getBlocks (RFC 7959 §2.4) and the device's package fetcher (CoAP, HTTP Range). */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoapClient } from '../../../src/coap/client.js';
import { Code } from '../../../src/coap/codes.js';
import { CoapServer } from '../../../src/coap/server.js';
import { UdpTransport } from '../../../src/coap/udp.js';
import { DefaultPackageFetcher } from '../../../src/lwm2m/client/package-fetcher.js';
import { FetchError } from '../../../src/lwm2m/objects/software-management/index.js';

const body = randomBytes(5000);
let coap: CoapServer;
let http: Server;
let coapBase: string;
let httpBase: string;
const reads: number[] = [];
let honourRange = true;

before(async () => {
  coap = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }) });
  coap.resource('/pkg/good', { get: () => ({ code: Code.Content, payload: { size: body.length, read: (o: number, l: number) => (reads.push(o), body.subarray(o, o + l)) } }) });
  coapBase = `coap://127.0.0.1:${coap.endpoint.transport.address().port}`;
  http = createServer((req, res) => {
    if (req.url !== '/pkg/good') return void res.writeHead(404).end();
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && honourRange) {
      const from = Number(m[1]);
      res.writeHead(206, { 'content-range': `bytes ${from}-${body.length - 1}/${body.length}` }).end(body.subarray(from));
    } else {
      res.writeHead(200).end(body);
    }
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  httpBase = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});
after(async () => {
  await coap.close();
  http.close();
});

async function collect(fetcher: DefaultPackageFetcher, uri: string, offset: number): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  await fetcher.fetch(uri, { offset, signal: new AbortController().signal, onData: (c) => (chunks.push(Uint8Array.from(c)), Promise.resolve(true)) });
  return Buffer.concat(chunks);
}

test('RFC 7959 §2.4: getBlocks streams a body block by block, from any offset, reading only the blocks needed', async () => {
  const client = new CoapClient();
  try {
    const chunks: Uint8Array[] = [];
    reads.length = 0;
    const { size } = await client.getBlocks(`${coapBase}/pkg/good`, { offset: 1500, blockSize: 1024, onBlock: (c) => (chunks.push(c), true) });
    assert.equal(size, 5000);
    assert.deepEqual(Buffer.concat(chunks), body.subarray(1500));
    assert.equal(reads[0], 1024, 'resumed at the block holding offset 1500, not at 0');
    const first: Uint8Array[] = [];
    await client.getBlocks(`${coapBase}/pkg/good`, { blockSize: 256, onBlock: (c) => (first.push(c), false) });
    assert.equal(first.length, 1, 'onBlock returning false stops the transfer');
    assert.equal(first[0]!.length, 256);
  } finally {
    await client.close();
  }
});

test('the package fetcher downloads over CoAP from an offset; an unknown link is Invalid URI', async () => {
  const fetcher = new DefaultPackageFetcher();
  assert.deepEqual(await collect(fetcher, `${coapBase}/pkg/good`, 0), body);
  assert.deepEqual(await collect(fetcher, `${coapBase}/pkg/good`, 4000), body.subarray(4000));
  await assert.rejects(collect(fetcher, `${coapBase}/pkg/gone`, 0), (e: FetchError) => e instanceof FetchError && e.result === 'INVALID_URI');
  assert.equal(fetcher.supports('ftp://x/y'), false);
});

test('the package fetcher resumes over HTTP with Range, and copes with a server that ignores Range', async () => {
  const fetcher = new DefaultPackageFetcher();
  honourRange = true;
  assert.deepEqual(await collect(fetcher, `${httpBase}/pkg/good`, 3000), body.subarray(3000));
  honourRange = false;
  assert.deepEqual(await collect(fetcher, `${httpBase}/pkg/good`, 3000), body.subarray(3000));
  honourRange = true;
  await assert.rejects(collect(fetcher, `${httpBase}/pkg/gone`, 0), (e: FetchError) => e instanceof FetchError && e.result === 'INVALID_URI');
});

test('coaps:// is fetched over the DM session only: supported when the session client covers the URI, and that client is used (not closed)', async () => {
  const shared = new CoapClient();
  const asked: string[] = [];
  try {
    // The session stands for the device's DTLS session; here a plain client reaching the test server.
    const fetcher = new DefaultPackageFetcher({ session: (uri) => (asked.push(uri), uri.includes('/pkg/') ? shared : undefined) });
    assert.equal(new DefaultPackageFetcher().supports('coaps://depot/pkg/t'), false, 'no session, no credentials: Invalid URI');
    assert.equal(fetcher.supports('coaps://elsewhere/x'), false);
    assert.equal(fetcher.supports('coaps://depot/pkg/t'), true);
    // A coap:// URI on the session's server also goes over it.
    assert.deepEqual(await collect(fetcher, `${coapBase}/pkg/good`, 100), body.subarray(100));
    assert.ok(asked.includes(`${coapBase}/pkg/good`));
    // Still usable afterwards: the fetcher did not close the session's client.
    assert.equal((await shared.get(`${coapBase}/pkg/good`, { blockSize: 1024 })).payload.length, body.length);
  } finally {
    await shared.close();
  }
});
