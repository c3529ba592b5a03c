/**
 * RFC 7959 block-wise transfers from the client's side against a scripted server that picks its
 * own (smaller) block size, and the Block option value format (§2.2). The Depot server never
 * answers with a smaller size than asked for, so these exchanges are only seen here.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { CoapClient } from '../../../src/coap/client.js';
import { decode, encode } from '../../../src/coap/codec.js';
import { Code, MessageType } from '../../../src/coap/codes.js';
import type { CoapMessage, CoapOption } from '../../../src/coap/message.js';
import { blockOffset, blockSize, decodeBlock, encodeBlock, MAX_SZX, szxFor, type BlockValue } from '../../../src/coap/block.js';
import { OptionNumber, encodeUint, getUintOption } from '../../../src/coap/options.js';
import { ManualClock } from '../../../src/util/clock.js';
import { MemoryNetwork } from '../../support/memory-network.js';
import { pump } from '../../support/pump.js';

const URI = 'coap://10.0.0.2:5683/big';

/** A body whose every byte tells its offset (so a block from the wrong place shows). */
const body = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 8)) & 0xff);

interface Policy {
  /** The largest SZX the server uses (it answers with min(asked, this)). */
  serverSzx: number;
  /** Larger SZX for the first `bigBlocks` answers (a server changing its mind mid-transfer). */
  firstSzx?: number;
  etag?: Uint8Array;
}

/**
 * A CoAP server written out by hand: answers every GET for the body with the block the request
 * asks for, at min(asked SZX, the server's SZX) — the block containing the asked-for offset,
 * numbered in the server's size (RFC 7959 §2.4: "A server MUST use the block size indicated or a
 * smaller size"). Records each request's Block2 (undefined when absent).
 */
function scriptedServer(content: Uint8Array, policy: Policy) {
  const clock = new ManualClock();
  const net = new MemoryNetwork();
  const server = net.transport('10.0.0.2', 5683);
  const clientTransport = net.transport('10.0.0.1', 40000);
  const asked: (BlockValue | undefined)[] = [];
  server.setReceiver((data, peer) => {
    const req = decode(data);
    if (req.type !== MessageType.CON) return;
    const raw = getUintOption(req, OptionNumber.Block2);
    const want = raw === undefined ? undefined : decodeBlock(raw);
    asked.push(want);
    const answered = asked.length;
    const cap = policy.firstSzx !== undefined && answered === 1 ? policy.firstSzx : policy.serverSzx;
    const szx = Math.min(want?.szx ?? MAX_SZX, cap);
    const offset = want ? blockOffset(want) : 0;
    const num = Math.floor(offset / blockSize(szx));
    const start = num * blockSize(szx);
    const end = Math.min(content.length, start + blockSize(szx));
    const options: CoapOption[] = [];
    if (policy.etag) options.push({ number: OptionNumber.ETag, value: policy.etag });
    options.push({ number: OptionNumber.Block2, value: encodeUint(encodeBlock({ num, more: end < content.length, szx })) });
    if (num === 0) options.push({ number: OptionNumber.Size2, value: encodeUint(content.length) });
    const reply: CoapMessage = { type: MessageType.ACK, code: Code.Content, messageId: req.messageId, token: req.token, options, payload: content.subarray(start, end) };
    server.send(encode(reply), peer);
  });
  const client = new CoapClient({ clock, random: () => 0, transportFactory: () => Promise.resolve(clientTransport) });
  return { net, client, asked };
}

void test('RFC 7959 §2.4: the client asks for 1024-byte blocks (SZX 6), the server answers with 256 (SZX 4): every later request is SZX 4, numbered in 256-byte blocks', async () => {
  const content = body(1000);
  const s = scriptedServer(content, { serverSzx: 4 });
  const response = await pump(s.net, s.client.get(URI, { blockSize: 1024 }));
  assert.deepEqual([...response.payload], [...content]);
  // §2.4: "Any further block-wise requests for blocks beyond the first one MUST indicate the same
  // block size that was used by the server in the response for the first request".
  assert.deepEqual(s.asked, [
    { num: 0, more: false, szx: 6 },
    { num: 1, more: false, szx: 4 },
    { num: 2, more: false, szx: 4 },
    { num: 3, more: false, szx: 4 },
  ]);
});

void test('RFC 7959 §2.4: late negotiation — a GET without Block2 answered with 32-byte blocks (SZX 1) continues with SZX 1 from block 1', async () => {
  const content = body(100);
  const s = scriptedServer(content, { serverSzx: 1 });
  const response = await pump(s.net, s.client.get(URI));
  assert.deepEqual([...response.payload], [...content]);
  assert.deepEqual(s.asked, [undefined, { num: 1, more: false, szx: 1 }, { num: 2, more: false, szx: 1 }, { num: 3, more: false, szx: 1 }]);
});

void test('RFC 7959 §2.4: a server that lowers the size after the first block (1024, then 256): the client follows and scales the block number (offset 1024 = block 4 of 256)', async () => {
  const content = body(2000);
  const s = scriptedServer(content, { firstSzx: 6, serverSzx: 4 });
  const response = await pump(s.net, s.client.get(URI, { blockSize: 1024 }));
  assert.deepEqual([...response.payload], [...content]);
  const asked = s.asked.map((b) => b && `${b.num}/${b.szx}`);
  // 2nd request: block 1 of 1024 is answered as block 4 of 256 (offset 1024); from then on 256-byte blocks.
  assert.deepEqual(asked, ['0/6', '1/6', '5/4', '6/4', '7/4']);
});

void test('RFC 7959 §2.4: getBlocks (streaming) follows a server answering SZX 4 to a request for SZX 6, with the block number scaled', async () => {
  const content = body(1000);
  const s = scriptedServer(content, { serverSzx: 4, etag: Uint8Array.of(1, 2) });
  const chunks: { offset: number; bytes: number[] }[] = [];
  const r = await pump(
    s.net,
    s.client.getBlocks(URI, {
      blockSize: 1024,
      onBlock: (chunk, offset) => {
        chunks.push({ offset, bytes: [...chunk] });
        return true;
      },
    }),
  );
  assert.equal(r.size, 1000);
  assert.deepEqual(
    s.asked.map((b) => b && `${b.num}/${b.szx}`),
    ['0/6', '1/4', '2/4', '3/4'],
  );
  assert.deepEqual(
    chunks.map((c) => c.offset),
    [0, 256, 512, 768],
  );
  assert.deepEqual(chunks.flatMap((c) => c.bytes), [...content]);
});

void test('RFC 7959 §2.4: getBlocks resuming at byte 640 with 256-byte blocks asks for block 2 of 256 and skips the 128 bytes before the offset', async () => {
  const content = body(1000);
  const s = scriptedServer(content, { serverSzx: 6 });
  const got: number[] = [];
  let first: number | undefined;
  await pump(
    s.net,
    s.client.getBlocks(URI, {
      offset: 640,
      blockSize: 256,
      onBlock: (chunk, offset) => {
        first ??= offset;
        got.push(...chunk);
        return true;
      },
    }),
  );
  assert.equal(first, 640);
  assert.deepEqual(got, [...content.subarray(640)]);
  assert.deepEqual(
    s.asked.map((b) => b && `${b.num}/${b.szx}`),
    ['2/4', '3/4'],
  );
});

// ---- §2.2 the option value ----------------------------------------------------------------

void test('RFC 7959 §2.2: Block value = NUM << 4 | M << 3 | SZX; block size 2^(SZX+4), 16 to 1024; SZX 7 is reserved', () => {
  assert.equal(encodeBlock({ num: 0, more: false, szx: 0 }), 0);
  assert.equal(encodeBlock({ num: 1, more: true, szx: 6 }), 0x1e);
  assert.equal(encodeBlock({ num: 0xfffff, more: true, szx: 2 }), 0xfffffa);
  assert.deepEqual(decodeBlock(0x1e), { num: 1, more: true, szx: 6 });
  assert.deepEqual(decodeBlock(0x16), { num: 1, more: false, szx: 6 });
  assert.deepEqual(decodeBlock(0xfffffa), { num: 0xfffff, more: true, szx: 2 });
  assert.deepEqual(decodeBlock(0x0f), undefined, 'SZX 7 is reserved');
  assert.deepEqual(decodeBlock(0x07), undefined);
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6].map(blockSize),
    [16, 32, 64, 128, 256, 512, 1024],
  );
  assert.equal(MAX_SZX, 6);
  assert.equal(blockOffset({ num: 3, more: false, szx: 4 }), 768);
  assert.equal(blockOffset({ num: 5, more: false, szx: 2 }), 320);
  assert.equal(blockOffset({ num: 0, more: true, szx: 6 }), 0);
});

void test('RFC 7959 §2.2: NUM is at most 20 bits (the option is at most 3 bytes)', () => {
  assert.throws(() => encodeBlock({ num: 0x100000, more: false, szx: 0 }), { name: 'RangeError', message: /block number/ });
  assert.throws(() => encodeBlock({ num: -1, more: false, szx: 0 }), RangeError);
  assert.equal(encodeBlock({ num: 0xfffff, more: false, szx: 0 }), 0xfffff0);
});

void test('block sizes: szxFor takes a power of two from 16 to 1024 (Depot\'s API; RFC 7959 §2.2 sizes)', () => {
  assert.deepEqual(
    [16, 32, 64, 128, 256, 512, 1024].map(szxFor),
    [0, 1, 2, 3, 4, 5, 6],
  );
  for (const bad of [8, 15, 17, 48, 1000, 2048, 1.5, 0, -16]) assert.throws(() => szxFor(bad), { name: 'RangeError', message: /power of two from 16 to 1024/ }, String(bad));
});
