import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { CoapClient } from '../../../src/coap/client.js';
import type { ClientResponse , CoapClientError } from '../../../src/coap/client.js';
import { decode, encode } from '../../../src/coap/codec.js';
import { Code, ContentFormat, Method, MessageType } from '../../../src/coap/codes.js';
import { CoapServer } from '../../../src/coap/server.js';
import type { CoapServerOptions, UploadSink } from '../../../src/coap/server.js';
import { decodeBlock, encodeBlock } from '../../../src/coap/block.js';
import { OptionNumber, encodeString, encodeUint, getUintOption } from '../../../src/coap/options.js';
import { parseLinkFormat, linkAttr } from '../../../src/coap/linkformat.js';
import { isFresh } from '../../../src/coap/observe.js';
import { ManualClock } from '../../../src/util/clock.js';
import { MemoryNetwork } from '../../support/memory-network.js';
import { drain, pump } from '../../support/pump.js';

const URI = 'coap://10.0.0.2:5683';

function setup(serverOptions: Partial<CoapServerOptions> = {}) {
  const clock = new ManualClock();
  const net = new MemoryNetwork();
  const serverTransport = net.transport('10.0.0.2', 5683);
  const clientTransport = net.transport('10.0.0.1', 40000);
  const server = new CoapServer({ clock, random: () => 0, ...serverOptions, transport: serverTransport });
  const client = new CoapClient({ clock, random: () => 0, transportFactory: () => Promise.resolve(clientTransport) });
  return { clock, net, server, client, serverTransport, clientTransport };
}

/** Requests the client sent, decoded. */
const clientRequests = (s: ReturnType<typeof setup>) => s.net.sent(s.clientTransport, s.serverTransport).map(decode);
const serverReplies = (s: ReturnType<typeof setup>) => s.net.sent(s.serverTransport, s.clientTransport).map(decode);

test('unknown paths get 4.04 and unsupported methods 4.05 (RFC 7252 §5.9.2.5, §5.9.2.6)', async () => {
  const s = setup();
  s.server.resource('/only-get', { get: () => ({ code: Code.Content, payload: 'x' }) });
  assert.equal((await pump(s.net, s.client.get(`${URI}/nowhere`))).codeText, '4.04');
  assert.equal((await pump(s.net, s.client.delete(`${URI}/only-get`))).codeText, '4.05');
  assert.equal((await pump(s.net, s.client.get(`${URI}/only-get`))).text(), 'x');
});

test('a destination given in parts sends the options a URI would (RFC 7252 §6.4), without one to format and parse', async () => {
  const s = setup();
  s.server.resource('/a', { prefix: true, post: (request) => ({ code: Code.Changed, payload: `${request.path}?${request.query.join('&')}` }) });
  const parts = { scheme: 'coap' as const, address: '10.0.0.2', port: 5683, uriPath: ['a', 'b c', '%'], uriQuery: ['x=1&2', 'y'] };
  const response = await pump(s.net, s.client.request({ method: 'POST', uri: parts }));
  assert.equal(response.text(), '/a/b c/%?x=1&2&y');
  const viaUri = await pump(s.net, s.client.request({ method: 'POST', uri: `${URI}/a/b%20c/%25?x=1%262&y` }));
  assert.equal(viaUri.text(), response.text());
  const [fromParts, fromUri] = clientRequests(s).filter((m) => m.code === Method.POST);
  assert.deepEqual(fromParts!.options, fromUri!.options);
  // What no URI could carry is refused, as formatting one would.
  await assert.rejects(s.client.request({ uri: { ...parts, uriPath: ['a', '..'] } }), /must not be "\." or "\.\."/);
  await assert.rejects(s.client.request({ uri: { ...parts, uriQuery: ['\ud800'] } }), /lone surrogate/);
  await assert.rejects(s.client.request({ uri: { ...parts, address: 'device.example' } }), /not an IP address/);
  await assert.rejects(s.client.request({ uri: { ...parts, port: 70000 } }), /out of range/);
});

test('RFC 6690 §4: /.well-known/core lists resources with their attributes and filters by query', async () => {
  const s = setup();
  s.server.resource('/sensors/temp', { resourceTypes: ['temperature-c'], interfaces: ['sensor'], contentFormats: [0], observable: true, get: () => ({ code: Code.Content }) });
  s.server.resource('/fw', { resourceTypes: ['firmware'], get: () => ({ code: Code.Content }) });
  const all = await pump(s.net, s.client.get(`${URI}/.well-known/core`));
  assert.equal(all.contentFormat, ContentFormat.LinkFormat);
  const links = parseLinkFormat(all.text());
  assert.deepEqual(links.map((l) => l.target).sort(), ['/fw', '/sensors/temp']);
  const temp = links.find((l) => l.target === '/sensors/temp')!;
  assert.equal(linkAttr(temp, 'rt'), 'temperature-c');
  assert.equal(linkAttr(temp, 'if'), 'sensor');
  assert.equal(linkAttr(temp, 'ct'), '0');
  assert.equal(linkAttr(temp, 'obs'), '');
  const filtered = await pump(s.net, s.client.get(`${URI}/.well-known/core?rt=firm*`));
  assert.deepEqual(parseLinkFormat(filtered.text()).map((l) => l.target), ['/fw']);
});

test('RFC 6690 §4: /.well-known/core follows resources added and removed after it was first served (the document is cached)', async () => {
  const s = setup();
  s.server.resource('/a', { get: () => ({ code: Code.Content }) });
  const first = await pump(s.net, s.client.get(`${URI}/.well-known/core`));
  assert.deepEqual(parseLinkFormat(first.text()).map((l) => l.target), ['/a']);
  s.server.resource('/b', { title: 'B', get: () => ({ code: Code.Content }) });
  const second = await pump(s.net, s.client.get(`${URI}/.well-known/core`));
  assert.deepEqual(parseLinkFormat(second.text()).map((l) => l.target).sort(), ['/a', '/b']);
  s.server.removeResource('/a');
  const third = await pump(s.net, s.client.get(`${URI}/.well-known/core`));
  assert.deepEqual(parseLinkFormat(third.text()).map((l) => l.target), ['/b']);
  const filtered = await pump(s.net, s.client.get(`${URI}/.well-known/core?title=B`));
  assert.deepEqual(parseLinkFormat(filtered.text()).map((l) => l.target), ['/b']);
});

test('RFC 7959 §2.4: a large GET response is served in Block2 blocks with Size2 and reassembled exactly', async () => {
  const s = setup();
  const body = randomBytes(5000);
  s.server.resource('/big', { get: () => ({ code: Code.Content, contentFormat: ContentFormat.OctetStream, payload: body }) });
  const response = await pump(s.net, s.client.get(`${URI}/big`));
  assert.deepEqual(Buffer.from(response.payload), body);
  const replies = serverReplies(s);
  assert.equal(replies.length, 5); // ceil(5000 / 1024)
  assert.equal(getUintOption(replies[0]!, OptionNumber.Size2), 5000);
  assert.deepEqual(decodeBlock(getUintOption(replies[4]!, OptionNumber.Block2)!), { num: 4, more: false, szx: 6 });
});

test('RFC 7959 §2.4: the client can ask for smaller blocks (early negotiation)', async () => {
  const s = setup();
  const body = randomBytes(300);
  s.server.resource('/big', { get: () => ({ code: Code.Content, payload: body }) });
  const response = await pump(s.net, s.client.get(`${URI}/big`, { blockSize: 64 }));
  assert.deepEqual(Buffer.from(response.payload), body);
  assert.equal(serverReplies(s).length, 5); // ceil(300 / 64)
  assert.equal(serverReplies(s)[0]!.payload.length, 64);
});

test('RFC 7959 §2.4: a Block2 source is read block by block (nothing held whole)', async () => {
  const s = setup();
  const body = randomBytes(3000);
  const reads: [number, number][] = [];
  s.server.resource('/file', {
    get: () => ({
      code: Code.Content,
      payload: { size: body.length, read: (offset: number, length: number) => (reads.push([offset, length]), Promise.resolve(body.subarray(offset, offset + length))) },
    }),
  });
  const response = await pump(s.net, s.client.get(`${URI}/file`));
  assert.deepEqual(Buffer.from(response.payload), body);
  assert.deepEqual(reads, [[0, 1024], [1024, 1024], [2048, 952]]);
});

test('RFC 7959 §2.5: a large PUT goes in Block1 blocks, each answered 2.31 Continue, and the handler sees the exact body', async () => {
  const s = setup();
  const body = randomBytes(5000);
  let received: Buffer | undefined;
  s.server.resource('/upload', { put: (req) => ((received = Buffer.from(req.payload)), { code: Code.Changed }) });
  const response = await pump(s.net, s.client.put(`${URI}/upload`, body));
  assert.equal(response.codeText, '2.04');
  assert.deepEqual(received, body);
  const replies = serverReplies(s);
  assert.equal(replies.length, 5);
  for (const r of replies.slice(0, 4)) assert.equal(r.code, Code.Continue);
  assert.equal(getUintOption(clientRequests(s)[0]!, OptionNumber.Size1), 5000);
});

test('RFC 7959 §2.5: a Block1 body from a BlockSource is read one block at a time, in order, and arrives exact', async () => {
  const s = setup();
  const body = randomBytes(5000);
  const reads: [number, number][] = [];
  const source = { size: body.length, read: (offset: number, length: number) => (reads.push([offset, length]), Promise.resolve(body.subarray(offset, offset + length))) };
  let received: Buffer | undefined;
  s.server.resource('/upload', { put: (req) => ((received = Buffer.from(req.payload)), { code: Code.Changed }) });
  const response = await pump(s.net, s.client.request({ uri: `${URI}/upload`, method: 'PUT', payload: source }));
  assert.equal(response.codeText, '2.04');
  assert.deepEqual(received, body);
  assert.deepEqual(reads, [[0, 1024], [1024, 1024], [2048, 1024], [3072, 1024], [4096, 904]]);
  assert.equal(getUintOption(clientRequests(s)[0]!, OptionNumber.Size1), 5000);
});

test('RFC 7959 §2.3: the server may ask for smaller Block1 blocks and the client follows', async () => {
  const s = setup({ blockSize: 256 });
  const body = randomBytes(2000);
  let received: Buffer | undefined;
  s.server.resource('/upload', { post: (req) => ((received = Buffer.from(req.payload)), { code: Code.Created }) });
  const response = await pump(s.net, s.client.post(`${URI}/upload`, body));
  assert.equal(response.codeText, '2.01');
  assert.deepEqual(received, body);
  const sizes = clientRequests(s).map((r) => r.payload.length);
  assert.deepEqual(sizes, [1024, 256, 256, 256, 208]);
});

test('RFC 7959 §2.9.3/§4: a body announced larger than the limit (Size1) is refused at the first block with 4.13 and Size1', async () => {
  const s = setup({ maxBodySize: 4000 });
  let opened = 0;
  s.server.resource('/upload', { upload: () => (opened++, sinkCollecting([]).sink) });
  await assert.rejects(pump(s.net, s.client.put(`${URI}/upload`, randomBytes(5000))), (error: CoapClientError) => {
    assert.match(error.message, /limit 4000 bytes/);
    return true;
  });
  assert.equal(opened, 0);
  assert.equal(clientRequests(s).length, 1);
});

test('RFC 7959 §2.9.3: without Size1, the transfer is refused at the block that crosses the limit', async () => {
  const s = setup({ maxBodySize: 2100 });
  const chunks: Uint8Array[] = [];
  const { sink, aborted } = sinkCollecting(chunks);
  s.server.resource('/upload', { upload: () => sink });
  const replies: number[] = [];
  for (let num = 0; num < 3; num++) {
    s.clientTransport.send(encode({ type: MessageType.CON, code: Method.PUT, messageId: 100 + num, token: Uint8Array.of(num), options: [{ number: OptionNumber.UriPath, value: encodeString('upload') }, { number: OptionNumber.Block1, value: encodeUint(encodeBlock({ num, more: true, szx: 6 })) }], payload: randomBytes(1024) }), s.serverTransport.peer('10.0.0.2', 5683));
    await drain(s.net);
  }
  for (const r of serverReplies(s)) replies.push(r.code);
  assert.deepEqual(replies, [Code.Continue, Code.Continue, Code.RequestEntityTooLarge]);
  assert.equal(chunks.length, 2, 'the crossing block was not written');
  assert.deepEqual(aborted, ['body too large']);
  assert.equal(s.server.activeUploads, 0);
});

test('RFC 7959 §2.9.2: a block out of sequence gets 4.08 Request Entity Incomplete', async () => {
  const s = setup();
  s.server.resource('/upload', { put: () => ({ code: Code.Changed }) });
  s.clientTransport.send(encode({ type: MessageType.CON, code: Method.PUT, messageId: 1, token: Uint8Array.of(1), options: [{ number: OptionNumber.UriPath, value: encodeString('upload') }, { number: OptionNumber.Block1, value: encodeUint(encodeBlock({ num: 2, more: true, szx: 2 })) }], payload: randomBytes(64) }), s.serverTransport.peer('10.0.0.2', 5683));
  await drain(s.net);
  assert.equal(serverReplies(s)[0]!.code, Code.RequestEntityIncomplete);
});

test('an abandoned Block1 transfer is dropped after the transfer timeout and its sink aborted', async () => {
  const s = setup({ blockTransferTimeout: 30_000 });
  const { sink, aborted } = sinkCollecting([]);
  s.server.resource('/upload', { upload: () => sink });
  s.clientTransport.send(encode({ type: MessageType.CON, code: Method.PUT, messageId: 1, token: Uint8Array.of(1), options: [{ number: OptionNumber.UriPath, value: encodeString('upload') }, { number: OptionNumber.Block1, value: encodeUint(encodeBlock({ num: 0, more: true, szx: 6 })) }], payload: randomBytes(1024) }), s.serverTransport.peer('10.0.0.2', 5683));
  await drain(s.net);
  assert.equal(s.server.activeUploads, 1);
  s.clock.advance(29_999);
  assert.equal(s.server.activeUploads, 1);
  s.clock.advance(1);
  assert.equal(s.server.activeUploads, 0);
  assert.deepEqual(aborted, ['timed out']);
});

test('a streaming upload sink receives the blocks in order with their offsets', async () => {
  const s = setup();
  const chunks: Uint8Array[] = [];
  const offsets: number[] = [];
  s.server.resource('/pkg', {
    upload: () => ({
      write: (chunk, offset) => {
        chunks.push(Uint8Array.from(chunk));
        offsets.push(offset);
        return Promise.resolve();
      },
      end: () => ({ code: Code.Changed, payload: `got ${offsets.length} chunks` }),
      abort: () => undefined,
    }),
  });
  const body = randomBytes(3000);
  const response = await pump(s.net, s.client.put(`${URI}/pkg`, body));
  assert.equal(response.text(), 'got 3 chunks');
  assert.deepEqual(offsets, [0, 1024, 2048]);
  assert.deepEqual(Buffer.concat(chunks), body);
});

function sinkCollecting(chunks: Uint8Array[]): { sink: UploadSink; aborted: string[] } {
  const aborted: string[] = [];
  return { aborted, sink: { write: (c) => void chunks.push(Uint8Array.from(c)), end: () => ({ code: Code.Changed }), abort: (reason) => void aborted.push(reason) } };
}

test('RFC 7641 §3.1/§4.2: observe delivers the registration answer and one notification per change, in order', async () => {
  const s = setup();
  let value = 0;
  s.server.resource('/counter', { observable: true, get: () => ({ code: Code.Content, payload: String(value) }) });
  const seen: ClientResponse[] = [];
  const observation = await pump(s.net, s.client.observe(`${URI}/counter`, { onNotification: (r) => seen.push(r) }));
  assert.equal(observation.established, true);
  assert.equal(observation.first.text(), '0');
  assert.equal(s.server.observerCount('/counter'), 1);
  for (let i = 1; i <= 3; i++) {
    value = i;
    s.server.notifyChanged('/counter');
    await drain(s.net);
  }
  assert.deepEqual(seen.map((r) => r.text()), ['1', '2', '3']);
  const sequences = seen.map((r) => r.observe!);
  assert.ok(sequences[0]! > observation.first.observe! && sequences[1]! > sequences[0]! && sequences[2]! > sequences[1]!);
  await pump(s.net, observation.cancel());
  assert.equal(s.server.observerCount('/counter'), 0, 'GET with Observe=1 deregistered (§3.6)');
});

test('RFC 7641 §3.6: cancelling an observation whose server no longer answers ends after the observation\'s timeout, not after EXCHANGE_LIFETIME', async () => {
  const s = setup();
  s.server.resource('/r', { observable: true, get: () => ({ code: Code.Content, payload: 'v' }) });
  const ends: string[] = [];
  const observation = await pump(s.net, s.client.observe(`${URI}/r`, { onNotification: () => undefined, onEnd: (reason) => ends.push(reason) }, { timeout: 5000 }));
  s.net.filter = () => false; // the server is gone
  let done = false;
  const cancelled = observation.cancel().then(() => (done = true));
  await drain(s.net);
  s.clock.advance(4000);
  await drain(s.net);
  assert.equal(done, false, 'still waiting within the timeout');
  s.clock.advance(1500);
  await drain(s.net);
  await cancelled;
  assert.deepEqual(ends, ['cancelled']);
});

test('RFC 7641 §3.6: an RST in answer to a notification removes the observer', async () => {
  const s = setup();
  s.server.resource('/r', { observable: true, get: () => ({ code: Code.Content, payload: 'v' }) });
  // Register by hand: the client endpoint will know nothing of the token and reject notifications.
  s.clientTransport.send(encode({ type: MessageType.CON, code: Method.GET, messageId: 1, token: Uint8Array.of(0xab), options: [{ number: OptionNumber.Observe, value: new Uint8Array(0) }, { number: OptionNumber.UriPath, value: encodeString('r') }], payload: new Uint8Array(0) }), s.serverTransport.peer('10.0.0.2', 5683));
  await drain(s.net);
  assert.equal(s.server.observerCount('/r'), 1);
  // The client's own endpoint does not exist yet in this test; create it so it can answer.
  await pump(s.net, s.client.ping(URI));
  s.server.notifyChanged('/r');
  await drain(s.net);
  const last = clientRequests(s).at(-1)!;
  assert.equal(last.type, MessageType.RST);
  assert.equal(s.server.observerCount('/r'), 0);
});

test('RFC 7641 §4.5: an observer that does not acknowledge a CON notification is removed', async () => {
  const s = setup({ confirmableNotificationInterval: 0 });
  s.server.resource('/r', { observable: true, get: () => ({ code: Code.Content, payload: 'v' }) });
  await pump(s.net, s.client.observe(`${URI}/r`, { onNotification: () => undefined }));
  assert.equal(s.server.observerCount('/r'), 1);
  s.net.filter = (d) => d.to !== s.clientTransport.key; // the client went away
  s.server.notifyChanged('/r');
  const notification = serverReplies(s).at(-1)!;
  assert.equal(notification.type, MessageType.CON, 'CON because the interval is 0');
  s.clock.advance(100_000);
  assert.equal(s.server.observerCount('/r'), 0);
});

test('RFC 7641 §4.5: notifications are NON until the confirmable interval has passed, then one is CON', async () => {
  const s = setup({ confirmableNotificationInterval: 60_000 });
  s.server.resource('/r', { observable: true, get: () => ({ code: Code.Content, payload: 'v' }) });
  await pump(s.net, s.client.observe(`${URI}/r`, { onNotification: () => undefined }));
  s.server.notifyChanged('/r');
  await drain(s.net);
  assert.equal(serverReplies(s).at(-1)!.type, MessageType.NON);
  s.clock.advance(60_000);
  s.server.notifyChanged('/r');
  assert.equal(serverReplies(s).at(-1)!.type, MessageType.CON);
});

test('RFC 7641 §3.2: a non-2.xx notification ends the observation on both sides', async () => {
  const s = setup();
  let gone = false;
  s.server.resource('/r', { observable: true, get: () => (gone ? { code: Code.NotFound } : { code: Code.Content, payload: 'v' }) });
  const ends: string[] = [];
  await pump(s.net, s.client.observe(`${URI}/r`, { onNotification: () => undefined, onEnd: (reason) => ends.push(reason) }));
  gone = true;
  s.server.notifyChanged('/r');
  await drain(s.net);
  assert.equal(s.server.observerCount('/r'), 0);
  assert.match(ends[0] ?? '', /4\.04/);
});

test('RFC 7959 §3.4: a notification larger than a block carries block 0 and the client fetches the rest', async () => {
  const s = setup();
  let body = randomBytes(2500);
  s.server.resource('/big', { observable: true, get: () => ({ code: Code.Content, payload: body }) });
  const seen: Buffer[] = [];
  const observation = await pump(s.net, s.client.observe(`${URI}/big`, { onNotification: (r) => seen.push(Buffer.from(r.payload)) }));
  assert.deepEqual(Buffer.from(observation.first.payload), body);
  body = randomBytes(2500);
  s.server.notifyChanged('/big');
  await drain(s.net, 50);
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0], body);
});

test('RFC 7641 §3.4: notification freshness (sequence rule and 128-second rule)', () => {
  assert.equal(isFresh(10, 0, 11, 1), true);
  assert.equal(isFresh(11, 0, 10, 1), false, 'older number');
  assert.equal(isFresh(0xfffff0, 0, 5, 1), true, 'wrapped around 2^24');
  assert.equal(isFresh(5, 0, 0xfffff0, 1), false, 'a jump back of more than 2^23 the other way');
  assert.equal(isFresh(11, 0, 10, 128_001), true, 'more than 128 s later is fresh whatever the number');
  assert.equal(isFresh(11, 0, 10, 128_000), false);
});

test('RFC 7959 §2.5: a PUT with a single Block1 block (M=0) is served as an ordinary request and Block1 echoed', async () => {
  const s = setup();
  let got = '';
  s.server.resource('/x', { put: (req) => ((got = Buffer.from(req.payload).toString()), { code: Code.Changed }) });
  s.clientTransport.send(encode({ type: MessageType.CON, code: Method.PUT, messageId: 1, token: Uint8Array.of(1), options: [{ number: OptionNumber.UriPath, value: encodeString('x') }, { number: OptionNumber.Block1, value: encodeUint(encodeBlock({ num: 0, more: false, szx: 0 })) }], payload: encodeString('small') }), s.serverTransport.peer('10.0.0.2', 5683));
  await drain(s.net);
  assert.equal(got, 'small');
  const reply = serverReplies(s)[0]!;
  assert.equal(reply.code, Code.Changed);
  assert.deepEqual(decodeBlock(getUintOption(reply, OptionNumber.Block1)!), { num: 0, more: false, szx: 0 });
});

test('RFC 7252 §5.10.8.2: If-None-Match makes a PUT create-only (4.12 when the resource exists)', async () => {
  const s = setup();
  let value: string | undefined;
  s.server.resource('/doc', {
    get: () => (value === undefined ? { code: Code.NotFound } : { code: Code.Content, payload: value }),
    put: (req) => ((value = Buffer.from(req.payload).toString()), { code: Code.Changed }),
  });
  const ifNoneMatch = [{ number: OptionNumber.IfNoneMatch, value: new Uint8Array(0) }];
  assert.equal((await pump(s.net, s.client.put(`${URI}/doc`, 'first', { options: ifNoneMatch }))).codeText, '2.04');
  assert.equal((await pump(s.net, s.client.put(`${URI}/doc`, 'second', { options: ifNoneMatch }))).codeText, '4.12');
  assert.equal(value, 'first');
});

test('RFC 7252 §5.10.8.1: If-Match performs the request only for a matching ETag (or any representation when empty)', async () => {
  const s = setup();
  let version = 1;
  s.server.resource('/doc', {
    get: () => ({ code: Code.Content, etag: Uint8Array.of(version), payload: `v${version}` }),
    put: () => (version++, { code: Code.Changed }),
  });
  const ifMatch = (v: number[]) => [{ number: OptionNumber.IfMatch, value: Uint8Array.from(v) }];
  assert.equal((await pump(s.net, s.client.put(`${URI}/doc`, 'x', { options: ifMatch([1]) }))).codeText, '2.04');
  assert.equal((await pump(s.net, s.client.put(`${URI}/doc`, 'x', { options: ifMatch([1]) }))).codeText, '4.12', 'stale ETag');
  assert.equal((await pump(s.net, s.client.put(`${URI}/doc`, 'x', { options: ifMatch([]) }))).codeText, '2.04', 'empty value: any');
  assert.equal(version, 3);
});

test('RFC 7959 §2.7/§3.3: a POST whose answer needs Block2 is continued with follow-up POSTs without re-running the handler', async () => {
  const s = setup();
  const answer = randomBytes(3000);
  let calls = 0;
  s.server.resource('/rpc', { post: () => (calls++, { code: Code.Changed, payload: answer }) });
  const response = await pump(s.net, s.client.post(`${URI}/rpc`, 'go'));
  assert.deepEqual(Buffer.from(response.payload), answer);
  assert.equal(calls, 1);
  assert.deepEqual(clientRequests(s).map((r) => r.code), [Method.POST, Method.POST, Method.POST]);
});

test('RFC 7959 §2.4: every block of a block-wise body carries the same ETag, generated when the handler gave none', async () => {
  const s = setup();
  const body = randomBytes(2500);
  s.server.resource('/big', { get: () => ({ code: Code.Content, payload: body }) });
  await pump(s.net, s.client.get(`${URI}/big`));
  const etags = serverReplies(s).map((r) => r.options.filter((o) => o.number === OptionNumber.ETag).map((o) => Buffer.from(o.value).toString('hex')));
  assert.equal(etags.length, 3);
  assert.equal(etags[0]!.length, 1);
  assert.deepEqual(etags[1], etags[0]);
  assert.deepEqual(etags[2], etags[0]);
  // A small body needs no ETag.
  s.server.resource('/small', { get: () => ({ code: Code.Content, payload: 'x' }) });
  await pump(s.net, s.client.get(`${URI}/small`));
  assert.equal(serverReplies(s).at(-1)!.options.some((o) => o.number === OptionNumber.ETag), false);
});

test('observers of one resource are not observers of another (routes start without an observer map of their own)', async () => {
  const s = setup();
  s.server.resource('/r', { observable: true, get: () => ({ code: Code.Content, payload: 'v' }) });
  s.server.resource('/q', { observable: true, get: () => ({ code: Code.Content, payload: 'w' }) });
  await pump(s.net, s.client.observe(`${URI}/r`, { onNotification: () => undefined }));
  assert.equal(s.server.observerCount('/r'), 1);
  assert.equal(s.server.observerCount('/q'), 0);
  s.server.resource('/p', { observable: true, get: () => ({ code: Code.Content, payload: 'x' }) });
  assert.equal(s.server.observerCount('/p'), 0);
  assert.equal(s.server.observerCount(), 1);
});

test('RFC 7959 §2.4: Block2 in a POST is early negotiation too: the answer comes in the blocks asked for, and the follow-ups continue it', async () => {
  const s = setup();
  const body = randomBytes(100);
  s.server.resource('/op', { post: () => ({ code: Code.Changed, payload: body }) });
  const post = (messageId: number, num: number): void =>
    s.clientTransport.send(encode({ type: MessageType.CON, code: Method.POST, messageId, token: Uint8Array.of(messageId), options: [{ number: OptionNumber.UriPath, value: encodeString('op') }, { number: OptionNumber.Block2, value: encodeUint(encodeBlock({ num, more: false, szx: 1 })) }], payload: new Uint8Array(0) }), s.serverTransport.peer('10.0.0.2', 5683));
  post(1, 0);
  await drain(s.net);
  post(2, 1);
  await drain(s.net);
  const [first, second] = serverReplies(s);
  assert.deepEqual(decodeBlock(getUintOption(first!, OptionNumber.Block2)!), { num: 0, more: true, szx: 1 });
  assert.deepEqual(Buffer.from(first!.payload), body.subarray(0, 32));
  assert.equal(getUintOption(first!, OptionNumber.Size2), 100);
  assert.deepEqual(Buffer.from(second!.payload), body.subarray(32, 64));
});
