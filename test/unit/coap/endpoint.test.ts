import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { decode, encode, encodeEmpty } from '../../../src/coap/codec.js';
import { Code, Method, MessageType } from '../../../src/coap/codes.js';
import { CoapEndpoint } from '../../../src/coap/endpoint.js';
import type { Exchange , CoapRequestError } from '../../../src/coap/endpoint.js';
import type { CoapMessage } from '../../../src/coap/message.js';
import { OptionNumber, encodeString } from '../../../src/coap/options.js';
import { ManualClock } from '../../../src/util/clock.js';
import { MemoryNetwork } from '../../support/memory-network.js';

function setup(options: { random?: () => number; capacity?: number; nstart?: number } = {}) {
  const clock = new ManualClock();
  const net = new MemoryNetwork();
  const clientTransport = net.transport('10.0.0.1', 40000);
  const serverTransport = net.transport('10.0.0.2', 5683);
  const common = { clock, random: options.random ?? (() => 0), params: { nstart: options.nstart ?? 1 } };
  const client = new CoapEndpoint({ ...common, transport: clientTransport });
  const server = new CoapEndpoint({ ...common, transport: serverTransport, deduplicationCapacity: options.capacity ?? 1000 });
  const serverPeer = clientTransport.peer('10.0.0.2', 5683);
  const clientPeer = serverTransport.peer('10.0.0.1', 40000);
  return { clock, net, client, server, clientTransport, serverTransport, serverPeer, clientPeer };
}

function collect() {
  const responses: CoapMessage[] = [];
  const errors: CoapRequestError[] = [];
  return { responses, errors, listener: { onResponse: (m: CoapMessage) => responses.push(m), onError: (e: CoapRequestError) => errors.push(e) } };
}

const get = (path: string) => ({ code: Method.GET, options: [{ number: OptionNumber.UriPath, value: encodeString(path) }] });

test('RFC 7252 §4.2: a CON is retransmitted at ACK_TIMEOUT, doubling, then given up after MAX_RETRANSMIT', () => {
  const { clock, net, client, serverPeer, clientTransport, serverTransport } = setup({ random: () => 0 });
  net.filter = () => false; // the server never hears anything
  const c = collect();
  client.request(serverPeer, { ...get('x'), timeout: 1e9 }, c.listener);
  const sendTimes: number[] = [];
  let seen = 0;
  for (let t = 0; t <= 70_000; t += 500) {
    const n = net.sent(clientTransport, serverTransport).length;
    if (n > seen) sendTimes.push(clock.now());
    seen = n;
    clock.advance(500);
  }
  // initial send at 0, then retransmissions after 2, 4, 8, 16 s; give up 32 s after the last.
  assert.deepEqual(sendTimes, [0, 2000, 6000, 14000, 30000]);
  assert.equal(c.errors.length, 1);
  assert.equal(c.errors[0]!.reason, 'timeout');
  assert.equal(client.stats.retransmitted, 4);
});

test('RFC 7252 §4.2: the initial timeout is random between ACK_TIMEOUT and ACK_TIMEOUT * ACK_RANDOM_FACTOR', () => {
  const { clock, net, client, serverPeer, clientTransport, serverTransport } = setup({ random: () => 0.5 });
  net.filter = () => false;
  client.request(serverPeer, get('x'), collect().listener);
  clock.advance(2499);
  assert.equal(net.sent(clientTransport, serverTransport).length, 1);
  clock.advance(1);
  assert.equal(net.sent(clientTransport, serverTransport).length, 2);
});

test('RFC 7252 §5.2.1: a piggybacked response completes the request and stops retransmission', () => {
  const { clock, net, client, server, serverPeer } = setup();
  server.setRequestHandler((ex) => ex.respond({ code: Code.Content, payload: encodeString('hi') }));
  const c = collect();
  client.request(serverPeer, get('x'), c.listener);
  net.flush();
  assert.equal(c.responses.length, 1);
  assert.equal(c.responses[0]!.type, MessageType.ACK);
  assert.equal(Buffer.from(c.responses[0]!.payload).toString(), 'hi');
  const before = net.log.length;
  clock.advance(100_000);
  net.flush();
  assert.equal(net.log.length, before, 'nothing retransmitted after the ACK');
});

test('RFC 7252 §4.5: a duplicate CON gets the same response again without re-running the handler', () => {
  const { net, server, clientTransport, serverTransport, serverPeer } = setup();
  let calls = 0;
  server.setRequestHandler((ex) => ex.respond({ code: Code.Content, payload: encodeString(`call ${++calls}`) }));
  const request = encode({ type: MessageType.CON, code: Method.GET, messageId: 0x1234, token: Uint8Array.of(1, 2), options: [], payload: new Uint8Array(0) });
  clientTransport.send(request, serverPeer);
  clientTransport.send(request, serverPeer);
  net.flush();
  const replies = net.sent(serverTransport, clientTransport);
  assert.equal(calls, 1);
  assert.equal(replies.length, 2);
  assert.deepEqual(replies[0], replies[1]);
  assert.equal(server.stats.duplicates, 1);
});

test('RFC 7252 §4.5: a large reply to a safe request (GET) is not kept; its duplicate is processed again, while a large reply to PUT is replayed from memory', () => {
  const { net, server, clientTransport, serverTransport, serverPeer } = setup();
  let calls = 0;
  const big = new Uint8Array(1024).fill(7);
  server.setRequestHandler((ex) => {
    calls++;
    ex.respond({ code: ex.request.code === Method.GET ? Code.Content : Code.Changed, payload: big });
  });
  const get = encode({ type: MessageType.CON, code: Method.GET, messageId: 0x2000, token: Uint8Array.of(1), options: [], payload: new Uint8Array(0) });
  clientTransport.send(get, serverPeer);
  clientTransport.send(get, serverPeer);
  net.flush();
  assert.equal(calls, 2, 'the GET ran again for its duplicate');
  const replies = net.sent(serverTransport, clientTransport).map(decode);
  assert.deepEqual(replies.map((r) => [r.type, r.messageId, r.payload.length]), [[MessageType.ACK, 0x2000, 1024], [MessageType.ACK, 0x2000, 1024]]);
  const put = encode({ type: MessageType.CON, code: Method.PUT, messageId: 0x2001, token: Uint8Array.of(2), options: [], payload: Uint8Array.of(1) });
  clientTransport.send(put, serverPeer);
  clientTransport.send(put, serverPeer);
  net.flush();
  assert.equal(calls, 3, 'the PUT ran once: its duplicate got the kept reply');
  assert.equal(net.sent(serverTransport, clientTransport).length, 4);
});

test('RFC 7252 §4.5: a duplicate NON is ignored', () => {
  const { net, server, clientTransport, serverTransport, serverPeer } = setup();
  let calls = 0;
  server.setRequestHandler((ex) => ex.respond({ code: Code.Content, payload: encodeString(`${++calls}`) }));
  const request = encode({ type: MessageType.NON, code: Method.GET, messageId: 9, token: Uint8Array.of(1), options: [], payload: new Uint8Array(0) });
  clientTransport.send(request, serverPeer);
  clientTransport.send(request, serverPeer);
  net.flush();
  assert.equal(calls, 1);
  assert.equal(net.sent(serverTransport, clientTransport).length, 1);
  assert.equal(decode(net.sent(serverTransport, clientTransport)[0]!).type, MessageType.NON);
});

test('RFC 7252 §4.8.2: message IDs are forgotten after EXCHANGE_LIFETIME (247 s)', () => {
  const { clock, net, server, clientTransport, serverPeer } = setup();
  let calls = 0;
  server.setRequestHandler((ex) => {
    calls++;
    ex.respond({ code: Code.Content });
  });
  const request = encode({ type: MessageType.CON, code: Method.GET, messageId: 77, token: new Uint8Array(0), options: [], payload: new Uint8Array(0) });
  clientTransport.send(request, serverPeer);
  net.flush();
  clock.advance(246_000);
  clientTransport.send(request, serverPeer);
  net.flush();
  assert.equal(calls, 1, 'still a duplicate within the lifetime');
  clock.advance(2_000);
  assert.equal(server.deduplicationSize, 0, 'swept');
  clientTransport.send(request, serverPeer);
  net.flush();
  assert.equal(calls, 2, 'a new message after the lifetime');
});

test('deduplication memory is bounded: past capacity the oldest record goes first', () => {
  const { net, server, clientTransport, serverPeer } = setup({ capacity: 2 });
  const calls: number[] = [];
  server.setRequestHandler((ex) => {
    calls.push(ex.request.messageId);
    ex.respond({ code: Code.Content });
  });
  for (const mid of [1, 2, 3, 1, 3]) {
    clientTransport.send(encode({ type: MessageType.CON, code: Method.GET, messageId: mid, token: new Uint8Array(0), options: [], payload: new Uint8Array(0) }), serverPeer);
    net.flush();
  }
  // 1 was evicted by 3, so its repeat runs again; 3 is still remembered.
  assert.deepEqual(calls, [1, 2, 3, 1]);
  assert.equal(server.deduplicationSize, 2);
});

test('RFC 7252 §4.3: an empty CON (ping) is answered with RST', () => {
  const { net, clientTransport, serverTransport, serverPeer } = setup();
  clientTransport.send(encodeEmpty(MessageType.CON, 0xbeef), serverPeer);
  net.flush();
  const [reply] = net.sent(serverTransport, clientTransport);
  assert.deepEqual([...reply!], [0x70, 0x00, 0xbe, 0xef]);
});

test('CoAP ping from the client resolves on the RST', async () => {
  const { net, client, serverPeer } = setup();
  const pong = client.ping(serverPeer);
  net.flush();
  await pong;
});

test('RFC 7252 §4.2: a CON with a format error is rejected with RST; a NON is ignored', () => {
  const { net, clientTransport, serverTransport, serverPeer } = setup();
  clientTransport.send(Uint8Array.of(0x49, 0x01, 0x00, 0x05), serverPeer); // TKL 9
  clientTransport.send(Uint8Array.of(0x59, 0x01, 0x00, 0x06), serverPeer); // NON, TKL 9
  net.flush();
  const replies = net.sent(serverTransport, clientTransport).map(decode);
  assert.equal(replies.length, 1);
  assert.equal(replies[0]!.type, MessageType.RST);
  assert.equal(replies[0]!.messageId, 5);
});

test('RFC 7252 §5.4.1: an unrecognized critical option in a CON request gets 4.02; in a NON it is rejected silently', () => {
  const { net, server, clientTransport, serverTransport, serverPeer } = setup();
  let calls = 0;
  server.setRequestHandler((ex) => {
    calls++;
    ex.respond({ code: Code.Content });
  });
  const options = [{ number: 9, value: Uint8Array.of(1) }];
  clientTransport.send(encode({ type: MessageType.CON, code: Method.GET, messageId: 1, token: Uint8Array.of(7), options, payload: new Uint8Array(0) }), serverPeer);
  clientTransport.send(encode({ type: MessageType.NON, code: Method.GET, messageId: 2, token: Uint8Array.of(8), options, payload: new Uint8Array(0) }), serverPeer);
  net.flush();
  const replies = net.sent(serverTransport, clientTransport).map(decode);
  assert.equal(calls, 0);
  assert.equal(replies.length, 1);
  assert.equal(replies[0]!.code, Code.BadOption);
  assert.deepEqual([...replies[0]!.token], [7]);
});

test('RFC 7252 §5.4.1: an unrecognized elective option is ignored and the request served', () => {
  const { net, server, client, serverPeer } = setup();
  server.setRequestHandler((ex) => ex.respond({ code: Code.Content }));
  const c = collect();
  client.request(serverPeer, { code: Method.GET, options: [{ number: 2048, value: Uint8Array.of(1) }] }, c.listener);
  net.flush();
  assert.equal(c.responses[0]?.code, Code.Content);
});

test('RFC 7252 §5.8: an unknown method code gets 4.05', () => {
  const { net, clientTransport, serverTransport, serverPeer, server } = setup();
  server.setRequestHandler((ex) => ex.respond({ code: Code.Content }));
  clientTransport.send(encode({ type: MessageType.CON, code: 0x1f, messageId: 3, token: new Uint8Array(0), options: [], payload: new Uint8Array(0) }), serverPeer);
  net.flush();
  assert.equal(decode(net.sent(serverTransport, clientTransport)[0]!).code, Code.MethodNotAllowed);
});

test('RFC 7252 §4.2: a CON in a reserved code class (1.xx, 6.xx, 7.xx) is rejected with RST', () => {
  const { net, clientTransport, serverTransport, serverPeer } = setup();
  clientTransport.send(encode({ type: MessageType.CON, code: (6 << 5) | 1, messageId: 4, token: new Uint8Array(0), options: [], payload: new Uint8Array(0) }), serverPeer);
  net.flush();
  assert.equal(decode(net.sent(serverTransport, clientTransport)[0]!).type, MessageType.RST);
});

test('RFC 7252 §5.2.2: a slow handler gets an empty ACK first, then a CON separate response that the client acknowledges', () => {
  const { clock, net, client, server, serverPeer, clientTransport, serverTransport } = setup();
  let pending: Exchange | undefined;
  server.setRequestHandler((ex) => (pending = ex));
  const c = collect();
  client.request(serverPeer, get('slow'), c.listener);
  net.flush();
  assert.equal(net.sent(serverTransport, clientTransport).length, 0);
  clock.advance(500);
  net.flush();
  const ack = decode(net.sent(serverTransport, clientTransport)[0]!);
  assert.equal(ack.type, MessageType.ACK);
  assert.equal(ack.code, 0);
  // The client stops retransmitting after the empty ACK.
  clock.advance(10_000);
  net.flush();
  assert.equal(net.sent(clientTransport, serverTransport).length, 1);
  pending!.respond({ code: Code.Content, payload: encodeString('late') });
  net.flush();
  const separate = decode(net.sent(serverTransport, clientTransport)[1]!);
  assert.equal(separate.type, MessageType.CON);
  assert.equal(c.responses.length, 1);
  assert.equal(Buffer.from(c.responses[0]!.payload).toString(), 'late');
  const clientAck = decode(net.sent(clientTransport, serverTransport)[1]!);
  assert.equal(clientAck.type, MessageType.ACK);
  assert.equal(clientAck.messageId, separate.messageId);
  // The server got its ACK: no retransmission of the separate response.
  clock.advance(60_000);
  net.flush();
  assert.equal(net.sent(serverTransport, clientTransport).length, 2);
});

test('RFC 7252 §4.2: a CON response matching no request is rejected with RST', () => {
  const { net, clientTransport, serverTransport, clientPeer } = setup();
  serverTransport.send(encode({ type: MessageType.CON, code: Code.Content, messageId: 50, token: Uint8Array.of(9, 9), options: [], payload: new Uint8Array(0) }), clientPeer);
  net.flush();
  // The client endpoint exists (setup) and rejects the unknown token.
  const reply = decode(net.sent(clientTransport, serverTransport)[0]!);
  assert.equal(reply.type, MessageType.RST);
  assert.equal(reply.messageId, 50);
});

test('RFC 7252 §4.2: an RST in answer to a CON request fails it with reason "reset"', () => {
  const { net, client, serverPeer, clientTransport, serverTransport } = setup();
  const c = collect();
  net.filter = (d) => d.to !== serverTransport.key; // the request is lost on its way
  client.request(serverPeer, get('x'), c.listener);
  const sent = decode(net.sent(clientTransport, serverTransport)[0]!);
  net.filter = () => true;
  serverTransport.send(encodeEmpty(MessageType.RST, sent.messageId), serverTransport.peer('10.0.0.1', 40000));
  net.flush();
  assert.equal(c.errors[0]?.reason, 'reset');
});

test('RFC 7252 §4.7: NSTART=1 holds a second request until the first is answered', () => {
  const { net, client, server, serverPeer, clientTransport, serverTransport } = setup({ nstart: 1 });
  const held: Exchange[] = [];
  server.setRequestHandler((ex) => held.push(ex));
  const a = collect();
  const b = collect();
  client.request(serverPeer, get('a'), a.listener);
  client.request(serverPeer, get('b'), b.listener);
  assert.equal(net.sent(clientTransport, serverTransport).length, 1, 'second request queued');
  net.flush();
  held[0]!.respond({ code: Code.Content });
  net.flush();
  assert.equal(a.responses.length, 1);
  assert.equal(held.length, 2, 'second request sent after the first completed');
  held[1]!.respond({ code: Code.Content });
  net.flush();
  assert.equal(b.responses.length, 1);
});

test('a NON request without an answer times out', () => {
  const { clock, net, client, serverPeer } = setup();
  net.filter = () => false;
  const c = collect();
  client.request(serverPeer, { ...get('x'), confirmable: false, timeout: 5000 }, c.listener);
  clock.advance(4999);
  assert.equal(c.errors.length, 0);
  clock.advance(1);
  assert.equal(c.errors[0]?.reason, 'timeout');
  assert.equal(client.outstandingRequests, 0);
});

test('a handler that throws yields 5.00 and the endpoint keeps serving', () => {
  const { net, client, server, serverPeer } = setup();
  let n = 0;
  server.setRequestHandler((ex) => {
    if (n++ === 0) throw new Error('boom');
    ex.respond({ code: Code.Content });
  });
  const a = collect();
  const b = collect();
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  client.request(serverPeer, get('x'), a.listener);
  net.flush();
  client.request(serverPeer, get('y'), b.listener);
  net.flush();
  process.off('warning', onWarning);
  assert.equal(a.responses[0]?.code, Code.InternalServerError);
  assert.equal(b.responses[0]?.code, Code.Content);
});

test('endpoints share one token pool: a device that sends one request does not cost 8 KiB of random bytes', () => {
  const transport = { setReceiver() {}, setErrorListener() {} } as unknown as ConstructorParameters<typeof CoapEndpoint>[0]['transport'];
  const before = process.memoryUsage().arrayBuffers;
  const endpoints: CoapEndpoint[] = [];
  const tokens = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const endpoint = new CoapEndpoint({ transport, deduplicationCapacity: 1, clock: new ManualClock() });
    endpoints.push(endpoint);
    const token = endpoint.newToken();
    assert.equal(token.length, 8);
    tokens.add(Buffer.from(token).toString('hex'));
  }
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.equal(tokens.size, 2000, 'tokens are distinct');
  // A pool per endpoint kept 2,000 × 8 KiB = 16 MiB alive.
  assert.ok(grown < 2 * 1024 * 1024, `array buffers grew by ${grown} bytes for 2,000 endpoints`);
  assert.equal(endpoints.length, 2000);
});
