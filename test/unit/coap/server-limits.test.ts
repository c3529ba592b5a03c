/**
 * What a CoAP server holds for a peer is bounded per peer and in total (issue 12): unfinished
 * Block1 uploads and the bytes they buffer, Block2 representations kept for follow-ups, observers.
 * Raw messages over the in-memory network, so each test controls every option it sends.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { encodeBlock } from '../../../src/coap/block.js';
import { decode, encode } from '../../../src/coap/codec.js';
import { Code, MessageType, Method } from '../../../src/coap/codes.js';
import type { CoapMessage, CoapOption } from '../../../src/coap/message.js';
import { OptionNumber, encodeString, encodeUint, getUintOption, hasOption } from '../../../src/coap/options.js';
import { CoapServer } from '../../../src/coap/server.js';
import type { CoapServerOptions } from '../../../src/coap/server.js';
import { ManualClock } from '../../../src/util/clock.js';
import { MemoryNetwork } from '../../support/memory-network.js';
import type { MemoryTransport } from '../../support/memory-network.js';
import { drain } from '../../support/pump.js';

function setup(options: Partial<CoapServerOptions> = {}) {
  const clock = new ManualClock();
  const net = new MemoryNetwork();
  const serverTransport = net.transport('10.0.0.2', 5683);
  const server = new CoapServer({ clock, random: () => 0, ...options, transport: serverTransport });
  let messageId = 0;
  /** Sends one CON from `from` and returns the server's answer to it. */
  const send = async (from: MemoryTransport, code: number, options: CoapOption[], payload: Uint8Array = new Uint8Array(0)): Promise<CoapMessage> => {
    const id = ++messageId;
    from.send(encode({ type: MessageType.CON, code, messageId: id, token: Uint8Array.of(id >> 8, id & 0xff), options: [...options].sort((a, b) => a.number - b.number), payload }), serverTransport.peer('10.0.0.2', 5683));
    await drain(net);
    const reply = net.sent(serverTransport, from).map(decode).find((m) => m.messageId === id);
    assert.ok(reply, `an answer to message ${id}`);
    return reply;
  };
  return { clock, net, server, send, client: (port: number) => net.transport('10.0.0.1', port) };
}

const path = (...segments: string[]): CoapOption[] => segments.map((s) => ({ number: OptionNumber.UriPath, value: encodeString(s) }));
const query = (q: string): CoapOption => ({ number: OptionNumber.UriQuery, value: encodeString(q) });
const block1 = (num: number, more: boolean, szx = 6): CoapOption => ({ number: OptionNumber.Block1, value: encodeUint(encodeBlock({ num, more, szx })) });
const block2 = (num: number, szx: number): CoapOption => ({ number: OptionNumber.Block2, value: encodeUint(encodeBlock({ num, more: false, szx })) });
const OBSERVE = { number: OptionNumber.Observe, value: new Uint8Array(0) };

test('RFC 7959 §2.9.3: a resource declares its own body limit; a single message or a Block1 transfer beyond it gets 4.13 with Size1', async () => {
  const s = setup();
  let handled = 0;
  s.server.resource('/small', { maxBodySize: 2048, post: () => (handled++, { code: Code.Changed }) });
  s.server.resource('/default', { post: () => (handled++, { code: Code.Changed }) });
  const peer = s.client(40000);
  const single = await s.send(peer, Method.POST, path('small'), new Uint8Array(2049));
  assert.equal(single.code, Code.RequestEntityTooLarge);
  assert.equal(getUintOption(single, OptionNumber.Size1), 2048);
  assert.equal((await s.send(peer, Method.POST, path('small'), new Uint8Array(2048))).code, Code.Changed);
  // Block 1 of 1 KiB with More ends at 2048: more follows, so it cannot fit.
  assert.equal((await s.send(peer, Method.POST, [...path('small'), block1(0, true)], new Uint8Array(1024))).code, Code.Continue);
  const crossing = await s.send(peer, Method.POST, [...path('small'), block1(1, true)], new Uint8Array(1024));
  assert.equal(crossing.code, Code.RequestEntityTooLarge);
  assert.equal(s.server.held.uploads, 0);
  // A resource without a limit of its own takes the buffered default, 128 KiB.
  const announced = await s.send(peer, Method.POST, [...path('default'), block1(0, true), { number: OptionNumber.Size1, value: encodeUint(128 * 1024 + 1) }], new Uint8Array(1024));
  assert.equal(announced.code, Code.RequestEntityTooLarge);
  assert.equal(getUintOption(announced, OptionNumber.Size1), 128 * 1024);
  assert.equal(handled, 1);
});

test('RFC 7252 §5.9.3.4: the bytes all unfinished buffered uploads hold are bounded; the upload that would pass the bound is dropped with 5.03 and Max-Age', async () => {
  const s = setup({ maxBufferedBytes: 3 * 1024, blockTransferTimeout: 30_000 });
  s.server.resource('/up', { post: () => ({ code: Code.Changed }) });
  const [a, b] = [s.client(40001), s.client(40002)];
  assert.equal((await s.send(a, Method.POST, [...path('up'), block1(0, true)], new Uint8Array(1024))).code, Code.Continue);
  assert.equal((await s.send(a, Method.POST, [...path('up'), block1(1, true)], new Uint8Array(1024))).code, Code.Continue);
  assert.equal((await s.send(b, Method.POST, [...path('up'), block1(0, true)], new Uint8Array(1024))).code, Code.Continue);
  assert.deepEqual(s.server.held, { uploads: 2, bufferedBytes: 3 * 1024, cachedBodies: 0, observers: 0 });
  const full = await s.send(b, Method.POST, [...path('up'), block1(1, true)], new Uint8Array(1024));
  assert.equal(full.code, Code.ServiceUnavailable);
  assert.equal(getUintOption(full, OptionNumber.MaxAge), 30, 'retry once every unfinished upload has finished or expired');
  assert.match(Buffer.from(full.payload).toString(), /too many unfinished uploads/);
  assert.deepEqual(s.server.held, { uploads: 1, bufferedBytes: 2 * 1024, cachedBodies: 0, observers: 0 });
  // The other upload is whole and finishes.
  assert.equal((await s.send(a, Method.POST, [...path('up'), block1(2, false)], new Uint8Array(10))).code, Code.Changed);
  assert.deepEqual(s.server.held, { uploads: 0, bufferedBytes: 0, cachedBodies: 0, observers: 0 });
});

test('RFC 7959 §2.5: a peer restarting its upload (block 0 again) reuses its slot; a finished upload frees it', async () => {
  const s = setup({ maxUploadsPerPeer: 1 });
  s.server.resource('/up', { post: () => ({ code: Code.Changed }) });
  const a = s.client(40003);
  for (let i = 0; i < 3; i++) assert.equal((await s.send(a, Method.POST, [...path('up'), block1(0, true)], new Uint8Array(1024))).code, Code.Continue);
  assert.equal(s.server.held.uploads, 1);
  assert.equal((await s.send(a, Method.POST, [...path('up'), query('other'), block1(0, true)], new Uint8Array(1024))).code, Code.ServiceUnavailable);
  assert.equal((await s.send(a, Method.POST, [...path('up'), block1(1, false)], new Uint8Array(1))).code, Code.Changed);
  assert.equal((await s.send(a, Method.POST, [...path('up'), query('other'), block1(0, true)], new Uint8Array(1024))).code, Code.Continue);
});

test('RFC 7959 §2.4: Block2 representations kept for follow-ups are bounded per peer and in total, the oldest going first; an evicted GET is made again', async () => {
  const s = setup({ maxCachedBodiesPerPeer: 3, maxCachedBodies: 5 });
  let built = 0;
  const body = new Uint8Array(100).fill(7);
  s.server.resource('/doc', { get: () => (built++, { code: Code.Content, payload: body }) });
  const [a, b] = [s.client(40004), s.client(40005)];
  // Each distinct query is a distinct representation (§2.4 keys follow-ups by URI).
  for (let i = 0; i < 6; i++) assert.equal((await s.send(a, Method.GET, [...path('doc'), query(`v=${i}`), block2(0, 0)])).code, Code.Content);
  assert.equal(s.server.held.cachedBodies, 3, 'per peer');
  for (let i = 0; i < 4; i++) await s.send(b, Method.GET, [...path('doc'), query(`v=${i}`), block2(0, 0)]);
  assert.equal(s.server.held.cachedBodies, 5, 'in total');
  // v=0 of peer a went first: its follow-up builds the representation again.
  const before = built;
  const followUp = await s.send(a, Method.GET, [...path('doc'), query('v=0'), block2(1, 0)]);
  assert.equal(followUp.code, Code.Content);
  assert.deepEqual(Buffer.from(followUp.payload), Buffer.from(body.subarray(16, 32)));
  assert.equal(built, before + 1);
  s.clock.advance(60_000);
  assert.equal(s.server.held.cachedBodies, 0, 'expired after the transfer timeout');
});

test('RFC 7641 §4.1: observers are bounded per peer and in total; beyond, the GET is served as usual without Observe', async () => {
  const s = setup({ maxObserversPerPeer: 2, maxObservers: 3 });
  s.server.resource('/r', { observable: true, prefix: true, get: (request) => ({ code: Code.Content, payload: request.path }) });
  const [a, b] = [s.client(40006), s.client(40007)];
  const answers: boolean[] = [];
  for (const p of ['x', 'y', 'z']) answers.push(hasOption(await s.send(a, Method.GET, [OBSERVE, ...path('r', p)]), OptionNumber.Observe));
  assert.deepEqual(answers, [true, true, false]);
  assert.equal(hasOption(await s.send(b, Method.GET, [OBSERVE, ...path('r', 'x')]), OptionNumber.Observe), true);
  const plain = await s.send(b, Method.GET, [OBSERVE, ...path('r', 'y')]);
  assert.equal(plain.code, Code.Content, 'still answered');
  assert.equal(hasOption(plain, OptionNumber.Observe), false, 'but not registered: the total is reached');
  assert.equal(s.server.held.observers, 3);
  assert.equal(s.server.observerCount(), 3);
  // Removing the resource ends its observations and frees their places.
  s.server.removeResource('/r');
  assert.equal(s.server.held.observers, 0);
});
