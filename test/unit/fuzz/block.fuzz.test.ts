/**
 * Block-wise transfers in random order (RFC 7959): Block1 blocks with any number, More flag and
 * size — in order, out of order, repeated, with gaps, changing size mid-transfer, announced with
 * Size1 or not — and Block2 requests for any block, from two peers, with exact duplicates
 * (RFC 7252 §4.5) and time passing in between. Sans-IO over the in-memory network with a manual
 * clock, so a run is a few milliseconds.
 *
 * Every byte a client sends is a function of its offset in the body, so a body assembled from
 * blocks in the wrong place cannot go unnoticed: whatever a handler or sink receives must read
 * back as that function, from offset 0, in order.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { blockSize, decodeBlock } from '../../../src/coap/block.js';
import { decode, encode } from '../../../src/coap/codec.js';
import { Code, MessageType, Method } from '../../../src/coap/codes.js';
import type { CoapMessage, CoapOption } from '../../../src/coap/message.js';
import { OptionNumber, encodeString, encodeUint, getUintOption } from '../../../src/coap/options.js';
import { CoapServer } from '../../../src/coap/server.js';
import { ManualClock } from '../../../src/util/clock.js';
import { MemoryNetwork } from '../../support/memory-network.js';
import type { MemoryTransport } from '../../support/memory-network.js';
import { drain } from '../../support/pump.js';
import { fuzzParameters } from './settings.js';

const BODY_LIMIT = 6000;
const TRANSFER_TIMEOUT = 60_000;
const LIMITS = { maxUploads: 3, maxUploadsPerPeer: 2, maxBufferedBytes: 8 * 1024, maxCachedBodies: 3, maxCachedBodiesPerPeer: 2 };
const DOC_SIZE = 3000;

/** The byte at `offset` of every body in these tests. */
const byteAt = (offset: number): number => (offset * 7 + 3) & 0xff;
const bodyFrom = (offset: number, length: number): Uint8Array => Uint8Array.from({ length }, (_, i) => byteAt(offset + i));
function assertPattern(body: Uint8Array, from: number, what: string): void {
  for (let i = 0; i < body.length; i++) if (body[i] !== byteAt(from + i)) assert.fail(`${what}: byte ${from + i} is ${body[i]}, expected ${byteAt(from + i)}`);
}

type Step =
  | { kind: 'block1'; peer: number; method: 'POST' | 'PUT'; path: 'buf' | 'stream'; variant: number; num: number; more: boolean; szx: number; length: 'exact' | 'short' | 'long'; size1: number | undefined }
  | { kind: 'block2'; peer: number; method: 'GET' | 'POST'; num: number; szx: number }
  | { kind: 'duplicate'; back: number }
  | { kind: 'wait'; ms: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('block1' as const),
      peer: fc.integer({ min: 0, max: 1 }),
      method: fc.constantFrom('POST' as const, 'PUT' as const),
      path: fc.constantFrom('buf' as const, 'stream' as const),
      variant: fc.integer({ min: 0, max: 2 }),
      num: fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 4, arbitrary: fc.integer({ min: 1, max: 8 }) }, { weight: 1, arbitrary: fc.integer({ min: 9, max: 0xfffff }) }),
      more: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      szx: fc.integer({ min: 2, max: 6 }),
      length: fc.oneof({ weight: 6, arbitrary: fc.constant('exact' as const) }, { weight: 1, arbitrary: fc.constantFrom('short' as const, 'long' as const) }),
      size1: fc.option(fc.constantFrom(1000, 5000, BODY_LIMIT, BODY_LIMIT + 1, 100_000), { nil: undefined, freq: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('block2' as const), peer: fc.integer({ min: 0, max: 1 }), method: fc.constantFrom('GET' as const, 'POST' as const), num: fc.integer({ min: 0, max: 6 }), szx: fc.integer({ min: 0, max: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), back: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.constantFrom(1000, TRANSFER_TIMEOUT / 2, TRANSFER_TIMEOUT) }) },
);

const BLOCK1_ANSWERS = new Set([Code.Continue, Code.Changed, Code.Created, Code.BadRequest, Code.RequestEntityIncomplete, Code.RequestEntityTooLarge, Code.ServiceUnavailable]);

async function runSteps(steps: Step[]): Promise<void> {
  const clock = new ManualClock();
  const net = new MemoryNetwork();
  const serverTransport = net.transport('10.0.0.2', 5683);
  const server = new CoapServer({ clock, random: () => 0, transport: serverTransport, blockTransferTimeout: TRANSFER_TIMEOUT, ...LIMITS });
  const peers = [net.transport('10.0.0.1', 40000), net.transport('10.0.0.3', 40000)];
  const complete = (request: { payload: Uint8Array }): { code: number } => {
    assert.ok(request.payload.length <= BODY_LIMIT, `a ${request.payload.length}-byte body passed the ${BODY_LIMIT}-byte limit`);
    assertPattern(request.payload, 0, 'buffered body');
    return { code: Code.Changed };
  };
  server.resource('/buf', { maxBodySize: BODY_LIMIT, post: complete, put: complete });
  const sinks = { opened: 0, ended: 0, aborted: 0 };
  server.resource('/stream', {
    maxBodySize: BODY_LIMIT,
    upload: () => {
      sinks.opened++;
      let next = 0;
      let done = false;
      return {
        write: (chunk, offset) => {
          assert.equal(done, false, 'a write after the sink was ended or aborted');
          assert.equal(offset, next, 'sink writes are in order, without gaps (RFC 7959 §2.5)');
          assertPattern(chunk, offset, 'streamed chunk');
          next += chunk.length;
          assert.ok(next <= BODY_LIMIT);
        },
        end: () => ((done = true), sinks.ended++, { code: Code.Created }),
        abort: () => void ((done = true), sinks.aborted++),
      };
    },
  });
  server.resource('/doc', { get: () => ({ code: Code.Content, payload: bodyFrom(0, DOC_SIZE) }), post: () => ({ code: Code.Changed, payload: bodyFrom(0, DOC_SIZE - 500) }) });

  let messageId = 0;
  const sent: { from: MemoryTransport; bytes: Uint8Array; messageId: number }[] = [];
  /** The reply to message `id` from `from`, which must be exactly one. */
  const replyTo = (from: MemoryTransport, id: number): CoapMessage => {
    const replies = net.sent(serverTransport, from).map(decode).filter((m) => m.messageId === id && m.type === MessageType.ACK);
    assert.ok(replies.length >= 1, `no answer to message ${id}`);
    return replies.at(-1)!;
  };
  const send = async (from: MemoryTransport, bytes: Uint8Array, id: number): Promise<CoapMessage> => {
    from.send(bytes, serverTransport.peer('10.0.0.2', 5683));
    await drain(net, 4);
    return replyTo(from, id);
  };

  for (const step of steps) {
    if (step.kind === 'wait') {
      clock.advance(step.ms);
      continue;
    }
    if (step.kind === 'duplicate') {
      const earlier = sent.at(-step.back);
      if (!earlier) continue;
      const first = replyTo(earlier.from, earlier.messageId);
      const again = await send(earlier.from, earlier.bytes, earlier.messageId);
      if (decode(earlier.bytes).code === Method.GET) {
        // §4.5: a duplicate of a safe request may be processed again (Depot does, rather than keep a
        // large answer): the same block of the same body, though a fresh ETag is allowed.
        assert.equal(again.code, first.code);
        assert.deepEqual(Buffer.from(again.payload), Buffer.from(first.payload));
      } else {
        // §4.5: within EXCHANGE_LIFETIME, a duplicate CON gets the same answer and is not processed again.
        assert.deepEqual(encode(again), encode(first), 'a duplicate got a different answer');
      }
      continue;
    }
    const from = peers[step.peer]!;
    const id = ++messageId & 0xffff;
    const options: CoapOption[] = [];
    let payload: Uint8Array = new Uint8Array(0);
    let method: number;
    if (step.kind === 'block1') {
      method = step.method === 'POST' ? Method.POST : Method.PUT;
      const size = blockSize(step.szx);
      const length = step.length === 'exact' ? size : step.length === 'short' ? size - 1 : size + 1;
      payload = bodyFrom(step.num * size, length);
      options.push({ number: OptionNumber.UriPath, value: encodeString(step.path) });
      if (step.variant > 0) options.push({ number: OptionNumber.UriQuery, value: encodeString(`v=${step.variant}`) });
      options.push({ number: OptionNumber.Block1, value: encodeUint(step.num * 16 + (step.more ? 8 : 0) + step.szx) });
      if (step.size1 !== undefined) options.push({ number: OptionNumber.Size1, value: encodeUint(step.size1) });
    } else {
      method = step.method === 'GET' ? Method.GET : Method.POST;
      options.push({ number: OptionNumber.UriPath, value: encodeString('doc') }, { number: OptionNumber.Block2, value: encodeUint(step.num * 16 + step.szx) });
    }
    const bytes = encode({ type: MessageType.CON, code: method, messageId: id, token: Uint8Array.of(id & 0xff), options, payload });
    sent.push({ from, bytes, messageId: id });
    const reply = await send(from, bytes, id);

    if (step.kind === 'block1') {
      assert.ok(BLOCK1_ANSWERS.has(reply.code), `Block1 answered ${reply.code >> 5}.${reply.code & 31}`);
      if (reply.code === Code.Continue) {
        // RFC 7959 §2.3: 2.31 echoes the block number; the server may only ask for smaller blocks.
        const echo = decodeBlock(getUintOption(reply, OptionNumber.Block1)!)!;
        assert.equal(echo.num, step.num);
        assert.ok(echo.szx <= step.szx);
      }
      if (reply.code === Code.RequestEntityTooLarge) assert.equal(getUintOption(reply, OptionNumber.Size1), BODY_LIMIT, 'RFC 7959 §2.9.3: 4.13 carries the limit in Size1');
      if (reply.code === Code.ServiceUnavailable) assert.ok(getUintOption(reply, OptionNumber.MaxAge)! >= 1, 'RFC 7252 §5.9.3.4: 5.03 carries Max-Age');
    } else if (reply.code === Code.Content || reply.code === Code.Changed) {
      const size = blockSize(step.szx);
      const block = decodeBlock(getUintOption(reply, OptionNumber.Block2)!)!;
      assert.equal(block.num, step.num);
      assertPattern(reply.payload, step.num * size, 'Block2 payload');
      assert.ok(reply.payload.length <= size);
    } else {
      // A block past the end (4.02), or a POST follow-up with nothing kept (4.08, RFC 7959 §2.7).
      assert.ok(reply.code === Code.BadOption || reply.code === Code.RequestEntityIncomplete, `Block2 answered ${reply.code >> 5}.${reply.code & 31}`);
    }
    const held = server.held;
    assert.ok(held.uploads <= LIMITS.maxUploads && held.bufferedBytes <= LIMITS.maxBufferedBytes && held.cachedBodies <= LIMITS.maxCachedBodies, JSON.stringify(held));
  }
  clock.advance(TRANSFER_TIMEOUT);
  assert.deepEqual(server.held, { uploads: 0, bufferedBytes: 0, cachedBodies: 0, observers: 0 });
  assert.equal(sinks.opened, sinks.ended + sinks.aborted, 'every streaming sink was ended or aborted');
  await server.close();
}

test('RFC 7959 §2.3-§2.9: Block1/Block2 in random order, duplicated, with gaps and size changes: bodies arrive exact or not at all, answers follow the RFC, state stays bounded and expires', async () => {
  await fc.assert(fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 30 }), runSteps), fuzzParameters(150, 0.05));
});

test('RFC 7959 §2.5: a whole upload in order, with a size change and a repeated block midway, arrives exact', async () => {
  const block = (num: number, szx: number, more = true): Step => ({ kind: 'block1', peer: 0, method: 'POST', path: 'stream', variant: 0, num, more, szx, length: 'exact', size1: undefined });
  // 1 KiB blocks 0-1, then 512-byte blocks from offset 2048 (num 4), a duplicate, then the last block.
  await runSteps([block(0, 6), block(1, 6), block(4, 5), { kind: 'duplicate', back: 1 }, block(5, 5, false)]);
});
