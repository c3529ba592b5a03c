/**
 * Fuzzing a running CoAP server over real UDP (RFC 7252 §4.2/§4.3: a message that cannot be
 * processed is rejected or ignored, never fatal): random bytes and random well-framed messages
 * (any type, code, token, options — Block1/Block2/Size1/Observe among them — and payload) from
 * several source ports. After each run, a CoAP ping from every port must still be answered
 * (RFC 7252 §4.3), nothing may have escaped the endpoint as an exception, and what the server
 * holds must be within its bounds; at the end, expiry must release all of it.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import fc from 'fast-check';
import { Code, ContentFormat } from '../../../src/coap/codes.js';
import { OptionNumber, encodeUint } from '../../../src/coap/options.js';
import { CoapServer } from '../../../src/coap/server.js';
import { UdpTransport } from '../../../src/coap/udp.js';
import { ManualClock } from '../../../src/util/clock.js';
import { fuzzParameters } from './settings.js';

const HOST = '127.0.0.1';
const LIMITS = {
  maxUploads: 6,
  maxUploadsPerPeer: 2,
  maxBufferedBytes: 6 * 1024,
  maxCachedBodies: 4,
  maxCachedBodiesPerPeer: 2,
  maxObservers: 4,
  maxObserversPerPeer: 2,
  deduplicationCapacity: 400,
  deduplicationCapacityPerPeer: 150,
  deduplicationLargeReplyBudget: 8 * 1024,
};
const TRANSFER_TIMEOUT = 60_000;

interface RawOption {
  number: number;
  value: Uint8Array;
}

interface RawMessage {
  type: number;
  code: number;
  messageId: number;
  token: Uint8Array;
  options: RawOption[];
  payload: Uint8Array;
}

/**
 * RFC 7252 §3 framing written here rather than with the codec under test, so that what the codec
 * would refuse to build (repeated or oversized options, unknown critical ones) is still sent.
 */
function frame(m: RawMessage): Buffer {
  const parts: Uint8Array[] = [Uint8Array.of(0x40 | (m.type << 4) | m.token.length, m.code, m.messageId >> 8, m.messageId & 0xff), m.token];
  const nibble = (v: number): [number, number[]] => (v < 13 ? [v, []] : v < 269 ? [13, [v - 13]] : [14, [(v - 269) >> 8, (v - 269) & 0xff]]);
  let previous = 0;
  for (const option of [...m.options].sort((a, b) => a.number - b.number)) {
    const [delta, deltaExt] = nibble(option.number - previous);
    const [length, lengthExt] = nibble(option.value.length);
    previous = option.number;
    parts.push(Uint8Array.of((delta << 4) | length, ...deltaExt, ...lengthExt), option.value);
  }
  if (m.payload.length > 0) parts.push(Uint8Array.of(0xff), m.payload);
  return Buffer.concat(parts);
}

const text = (s: string): Uint8Array => Buffer.from(s);
const blockValue = fc.oneof(
  fc.record({ num: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 0xfffff })), more: fc.boolean(), szx: fc.integer({ min: 0, max: 7 }) }).map((b) => encodeUint(b.num * 16 + (b.more ? 8 : 0) + b.szx)),
  fc.uint8Array({ maxLength: 4 }),
);
const optionArb: fc.Arbitrary<RawOption[]> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('rd', 'up', 'big', 'obs', 'slow', 'throws', '.well-known', 'core', 'nowhere').map((s) => [{ number: OptionNumber.UriPath, value: text(s) }]) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map((s) => [{ number: OptionNumber.UriQuery, value: text(s) }]) },
  { weight: 3, arbitrary: blockValue.map((value) => [{ number: OptionNumber.Block1, value }]) },
  { weight: 2, arbitrary: blockValue.map((value) => [{ number: OptionNumber.Block2, value }]) },
  { weight: 1, arbitrary: fc.oneof(fc.nat({ max: 70_000 }).map(encodeUint), fc.uint8Array({ maxLength: 5 })).map((value) => [{ number: OptionNumber.Size1, value }]) },
  { weight: 2, arbitrary: fc.constantFrom(new Uint8Array(0), Uint8Array.of(1), Uint8Array.of(0, 0, 0, 0)).map((value) => [{ number: OptionNumber.Observe, value }]) },
  { weight: 1, arbitrary: fc.record({ number: fc.integer({ min: 0, max: 65_000 }), value: fc.uint8Array({ maxLength: 20 }) }).map((o) => [o]) },
  { weight: 1, arbitrary: fc.constantFrom(OptionNumber.IfMatch, OptionNumber.IfNoneMatch, OptionNumber.ProxyUri, OptionNumber.Accept, OptionNumber.ContentFormat).chain((number) => fc.uint8Array({ maxLength: 4 }).map((value) => [{ number, value }])) },
);
const payloadArb = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.integer({ min: 0, max: 1100 }).map((n) => new Uint8Array(n).fill(0x61)),
      // Whole blocks, so that Block1 transfers get going.
      fc.integer({ min: 0, max: 6 }).map((szx) => new Uint8Array(16 << szx).fill(0x62)),
    );
/** Anything that frames: any type, code, token and options. */
const noisyArb: fc.Arbitrary<Uint8Array> = fc
  .record({
    type: fc.integer({ min: 0, max: 3 }),
    code: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 7 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
    messageId: fc.integer({ min: 0, max: 0xffff }),
    token: fc.uint8Array({ maxLength: 8 }),
    options: fc.array(optionArb, { maxLength: 6 }).map((os) => os.flat()),
    payload: payloadArb,
  })
  .map(frame);
/**
 * A request a server would take up: a method on one of its resources, perhaps Block1 from a
 * small set of numbers and sizes (so transfers start, continue, skip, repeat and change size),
 * Block2, Size1, Observe. Message IDs from a small range, so duplicates happen (§4.5).
 */
const plausibleArb: fc.Arbitrary<Uint8Array> = fc
  .record({
    type: fc.constantFrom(0, 0, 0, 1),
    code: fc.constantFrom(1, 2, 2, 2, 3, 3, 5),
    messageId: fc.integer({ min: 0, max: 40 }),
    token: fc.uint8Array({ minLength: 1, maxLength: 2 }),
    path: fc.constantFrom('rd', 'rd', 'up', 'up', 'big', 'obs', 'slow', 'throws'),
    query: fc.option(fc.constantFrom('ep=a', 'ep=b', 'x'), { nil: undefined }),
    block1: fc.option(fc.record({ num: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 20 }) }), more: fc.boolean(), szx: fc.constantFrom(4, 5, 6) }), { nil: undefined, freq: 2 }),
    block2: fc.option(fc.record({ num: fc.integer({ min: 0, max: 4 }), szx: fc.integer({ min: 0, max: 6 }) }), { nil: undefined }),
    size1: fc.option(fc.constantFrom(100, 5000, 10_000), { nil: undefined, freq: 4 }),
    observe: fc.option(fc.constantFrom(0, 1), { nil: undefined }),
  })
  .chain((r) =>
    (r.block1 ? fc.constantFrom(16 << r.block1.szx, 16 << r.block1.szx, 7) : payloadArb.map((p) => p.length)).map((length) => {
      const options: RawOption[] = [{ number: OptionNumber.UriPath, value: text(r.path) }];
      if (r.query !== undefined) options.push({ number: OptionNumber.UriQuery, value: text(r.query) });
      if (r.block1) options.push({ number: OptionNumber.Block1, value: encodeUint(r.block1.num * 16 + (r.block1.more ? 8 : 0) + r.block1.szx) });
      if (r.block2) options.push({ number: OptionNumber.Block2, value: encodeUint(r.block2.num * 16 + r.block2.szx) });
      if (r.size1 !== undefined) options.push({ number: OptionNumber.Size1, value: encodeUint(r.size1) });
      if (r.observe !== undefined) options.push({ number: OptionNumber.Observe, value: encodeUint(r.observe) });
      return frame({ type: r.type, code: r.code, messageId: r.messageId, token: r.token, options, payload: new Uint8Array(length).fill(0x63) });
    }),
  );
const messageArb = fc.oneof({ weight: 2, arbitrary: noisyArb }, { weight: 5, arbitrary: plausibleArb });
const datagramArb = fc.oneof({ weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) }, { weight: 6, arbitrary: messageArb });
/** A datagram and the source port (one of three sockets) it comes from. */
const sendArb = fc.record({ from: fc.integer({ min: 0, max: 2 }), datagram: datagramArb });

let clock: ManualClock;
let server: CoapServer;
let port: number;
const sockets: Socket[] = [];
const warnings: string[] = [];
/** Codes of the server's answers ("2.31" …), to see that the runs reach the states that matter. */
const answered = new Map<string, number>();
const onWarning = (warning: Error): void => void warnings.push(warning.message);

before(async () => {
  clock = new ManualClock();
  server = new CoapServer({ transport: await UdpTransport.bind({ host: HOST, port: 0 }), clock, blockTransferTimeout: TRANSFER_TIMEOUT, ...LIMITS });
  port = server.endpoint.transport.address().port;
  server.resource('/rd', { maxBodySize: 4096, post: (request) => ({ code: Code.Created, locationPath: ['rd', String(request.payload.length)] }) });
  server.resource('/up', {
    maxBodySize: 8192,
    upload: () => ({ write: () => undefined, end: () => ({ code: Code.Changed }), abort: () => undefined }),
  });
  const big = new Uint8Array(3000).fill(0x62);
  server.resource('/big', { get: () => ({ code: Code.Content, contentFormat: ContentFormat.OctetStream, payload: big }), post: (request) => ({ code: Code.Changed, payload: big.subarray(0, 1500 + (request.payload.length % 100)) }) });
  server.resource('/obs', { observable: true, get: () => ({ code: Code.Content, payload: 'state' }) });
  server.resource('/slow', { post: (request) => Promise.resolve({ code: Code.Changed, payload: `${request.payload.length}` }) });
  // A handler failing with a device's bytes in its message: the warning must print them escaped.
  server.resource('/throws', { get: (request) => { throw new Error(`cannot serve ${Buffer.from(request.query.join('&')).toString('latin1')}\x00\r\n`); } });
  for (let i = 0; i < 3; i++) {
    const socket = createSocket('udp4');
    socket.on('message', (data) => {
      if (data.length < 4) return;
      const code = `${data[1]! >> 5}.${String(data[1]! & 31).padStart(2, '0')}`;
      answered.set(code, (answered.get(code) ?? 0) + 1);
    });
    await new Promise<void>((resolve) => socket.bind(0, HOST, () => resolve()));
    sockets.push(socket);
  }
  process.on('warning', onWarning);
});

after(async () => {
  process.off('warning', onWarning);
  for (const socket of sockets) await new Promise<void>((resolve) => socket.close(() => resolve()));
  await server.close();
});

let pingId = 0;
/** RFC 7252 §4.3: an empty CON is answered with RST. Datagrams from one socket arrive in order on loopback, so the answer also means every earlier one was handled. */
function ping(socket: Socket): Promise<void> {
  const messageId = pingId++ & 0xffff;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('message', listener);
      reject(new Error('the server stopped answering pings'));
    }, 3000);
    const listener = (data: Buffer): void => {
      if (data.length === 4 && data[0] === 0x70 && data.readUInt16BE(2) === messageId) {
        clearTimeout(timer);
        socket.off('message', listener);
        resolve();
      }
    };
    socket.on('message', listener);
    socket.send(Uint8Array.of(0x40, 0, messageId >> 8, messageId & 0xff), port, HOST);
  });
}

function assertWithinBounds(): void {
  const held = server.held;
  assert.ok(held.uploads <= LIMITS.maxUploads, `${held.uploads} uploads`);
  assert.ok(held.bufferedBytes <= LIMITS.maxBufferedBytes, `${held.bufferedBytes} buffered bytes`);
  assert.ok(held.cachedBodies <= LIMITS.maxCachedBodies, `${held.cachedBodies} cached bodies`);
  assert.ok(held.observers <= LIMITS.maxObservers, `${held.observers} observers`);
  assert.ok(server.endpoint.deduplicationSize <= LIMITS.deduplicationCapacity, `${server.endpoint.deduplicationSize} dedup records`);
  assert.ok(server.endpoint.deduplicationLargeReplyBytes <= LIMITS.deduplicationLargeReplyBudget, `${server.endpoint.deduplicationLargeReplyBytes} large reply bytes`);
}

function assertNothingEscaped(): void {
  const escaped = warnings.filter((w) => w.includes('error while handling a message'));
  assert.deepEqual(escaped, [], 'an exception escaped into the CoAP endpoint');
  // eslint-disable-next-line no-control-regex
  for (const w of warnings) assert.doesNotMatch(w, /[\x00-\x1f\x7f]/, 'a logged device string was not escaped');
}

test('RFC 7252 §4.2/§4.3: random datagrams over UDP from three ports: the server answers pings after each run, nothing escapes, what it holds stays bounded and expires', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(sendArb, { minLength: 1, maxLength: 16 }), async (sends) => {
      for (const { from, datagram } of sends) sockets[from]!.send(datagram, port, HOST);
      await Promise.all(sockets.map(ping));
      // Let asynchronous handlers (/slow) and their answers finish.
      await new Promise<void>((resolve) => setImmediate(resolve));
      assertNothingEscaped();
      assertWithinBounds();
      // Some runs move time on: transfers, caches and dedup records expire between runs too.
      if (sends.length % 4 === 0) clock.advance(TRANSFER_TIMEOUT / 2);
    }),
    fuzzParameters(150, 0.2),
  );
  t.diagnostic(`answers: ${JSON.stringify(Object.fromEntries([...answered].sort()))}`);
  // The runs got past the framing: transfers were continued, refused as too large and as incomplete.
  for (const code of ['2.31', '4.13', '4.08', '4.02', '2.05']) assert.ok(answered.has(code), `no ${code} answer in the whole run`);
  // RFC 7252 §4.8.2: after EXCHANGE_LIFETIME, no message is remembered; after the transfer timeout, no transfer.
  clock.advance(300_000);
  assertNothingEscaped();
  const held = server.held;
  assert.deepEqual({ uploads: held.uploads, bufferedBytes: held.bufferedBytes, cachedBodies: held.cachedBodies }, { uploads: 0, bufferedBytes: 0, cachedBodies: 0 });
  assert.equal(server.endpoint.deduplicationSize, 0);
  assert.equal(server.endpoint.deduplicationLargeReplyBytes, 0);
  assert.ok(server.endpoint.peerCount <= sockets.length, `${server.endpoint.peerCount} peers remembered`);
});
