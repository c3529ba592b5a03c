/**
 * Issue 12 (part 4): unfinished Block1 uploads to the LwM2M server's /rd over plain CoAP, with no
 * credentials, held memory without bound (100 uploads of 400 KiB grew the server by ~90 MB).
 * This is that attack at small scale over real UDP sockets from several source ports, against the
 * real LwM2M server and SQLite store: the CoAP server holds at most its bounds, refuses beyond
 * them with the codes RFC 7252/7959 give, and lets go of everything when the transfers expire
 * (an injected clock, moved by hand).
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBlock } from '../../src/coap/block.js';
import { decode, encode } from '../../src/coap/codec.js';
import { Code, MessageType, Method } from '../../src/coap/codes.js';
import type { CoapMessage, CoapOption } from '../../src/coap/message.js';
import { OptionNumber, encodeString, encodeUint, getUintOption } from '../../src/coap/options.js';
import { CoapServer } from '../../src/coap/server.js';
import { UdpTransport } from '../../src/coap/udp.js';
import { Lwm2mServer } from '../../src/lwm2m/server/server.js';
import { openSqliteStore } from '../../src/store/index.js';
import type { SqliteStore } from '../../src/store/index.js';
import { ManualClock } from '../../src/util/clock.js';

const HOST = '127.0.0.1';
const TRANSFER_TIMEOUT = 60_000;
const TOTAL_UPLOADS = 10;
const UPLOADS_PER_PEER = 4;

/** A device-side UDP socket speaking raw CoAP: one CON at a time, the reply matched by Message ID. */
class RawPeer {
  private messageId = 1;
  private readonly waiting = new Map<number, (reply: CoapMessage) => void>();

  private constructor(private readonly socket: Socket) {
    socket.on('message', (data) => {
      const reply = decode(data);
      this.waiting.get(reply.messageId)?.(reply);
      this.waiting.delete(reply.messageId);
    });
  }

  static async open(): Promise<RawPeer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, HOST, () => resolve()));
    return new RawPeer(socket);
  }

  request(port: number, code: number, options: CoapOption[], payload: Uint8Array): Promise<CoapMessage> {
    const messageId = this.messageId++;
    const bytes = encode({ type: MessageType.CON, code, messageId, token: Uint8Array.of(messageId), options, payload });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to message ${messageId} within 3 s`)), 3000);
      this.waiting.set(messageId, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.socket.send(bytes, port, HOST);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** POST /rd?ep=<name> carrying Block1 block `num` of 1 KiB blocks (RFC 7959 §2.5), More set unless `last`. */
function registerBlock(peer: RawPeer, port: number, endpoint: string, num: number, last = false, extra: CoapOption[] = []): Promise<CoapMessage> {
  const options: CoapOption[] = [
    { number: OptionNumber.UriPath, value: encodeString('rd') },
    { number: OptionNumber.UriQuery, value: encodeString(`ep=${endpoint}`) },
    { number: OptionNumber.Block1, value: encodeUint(encodeBlock({ num, more: !last, szx: 6 })) },
    ...extra,
  ];
  options.sort((a, b) => a.number - b.number);
  return peer.request(port, Method.POST, options, Buffer.alloc(1024, 0x20));
}

let dir: string;
let store: SqliteStore;
let clock: ManualClock;
let coap: CoapServer;
let lwm2m: Lwm2mServer;
let port: number;
const peers: RawPeer[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-coap-limits-'));
  store = openSqliteStore({ dataDir: dir });
  clock = new ManualClock();
  coap = new CoapServer({
    transport: await UdpTransport.bind({ host: HOST, port: 0 }),
    clock,
    blockTransferTimeout: TRANSFER_TIMEOUT,
    maxUploads: TOTAL_UPLOADS,
    // The per-peer bound and the body limit of /rd are the defaults.
  });
  lwm2m = new Lwm2mServer({ store, coap: { coap }, allowUnsecured: true, clock });
  // The registered raw device answers none of the server's requests; that failure is expected.
  lwm2m.on('error', () => undefined);
  port = coap.endpoint.transport.address().port;
  for (let i = 0; i < 4; i++) peers.push(await RawPeer.open());
});

after(async () => {
  for (const peer of peers) await peer.close();
  await lwm2m.close();
  await coap.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('RFC 7959 §2.5 / RFC 7252 §5.9.3.4: unfinished Block1 uploads to /rd from several ports are bounded per peer and in total, refused beyond with 5.03 and Max-Age, and released on expiry', async () => {
  const replies: CoapMessage[][] = [];
  // Six uploads from each of four ports, one block each, never finished.
  for (const [p, peer] of peers.entries()) {
    const ofPeer: CoapMessage[] = [];
    for (let u = 0; u < 6; u++) ofPeer.push(await registerBlock(peer, port, `attacker-${p}-${u}`, 0));
    replies.push(ofPeer);
  }
  const C = Code.Continue;
  const U = Code.ServiceUnavailable;
  // Four per port; the third port reaches the total of ten after two; the fourth gets none.
  assert.deepEqual(replies.map((ofPeer) => ofPeer.map((r) => r.code)), [
    [C, C, C, C, U, U],
    [C, C, C, C, U, U],
    [C, C, U, U, U, U],
    [U, U, U, U, U, U],
  ]);
  for (const refused of replies.flat().filter((r) => r.code === U)) {
    // §5.9.3.4: Max-Age says when to try again; a diagnostic payload says why.
    const maxAge = getUintOption(refused, OptionNumber.MaxAge);
    assert.ok(maxAge !== undefined && maxAge >= 1 && maxAge <= TRANSFER_TIMEOUT / 1000, `Max-Age ${maxAge}`);
    assert.match(Buffer.from(refused.payload).toString(), /unfinished block-wise uploads/);
  }
  assert.equal(coap.held.uploads, TOTAL_UPLOADS);
  assert.equal(coap.held.bufferedBytes, TOTAL_UPLOADS * 1024);

  // The uploads that were accepted grow by a block each: held bytes follow, nothing else is added.
  for (const [p, peer] of peers.slice(0, 3).entries()) {
    for (let u = 0; u < (p < 2 ? UPLOADS_PER_PEER : 2); u++) assert.equal((await registerBlock(peer, port, `attacker-${p}-${u}`, 1)).code, Code.Continue);
  }
  assert.equal(coap.held.uploads, TOTAL_UPLOADS);
  assert.equal(coap.held.bufferedBytes, TOTAL_UPLOADS * 2048);

  // A Register in one datagram is no Block1 transfer: a device still registers during the flood.
  const device = await RawPeer.open();
  peers.push(device);
  const registered = await device.request(port, Method.POST, [
    { number: OptionNumber.UriPath, value: encodeString('rd') },
    { number: OptionNumber.UriQuery, value: encodeString('ep=honest-device') },
  ], encodeString('</1/0>,</3/0>'));
  assert.equal(registered.code, Code.Created);

  // Expiry: a block short of the transfer timeout keeps them; the timeout drops them all.
  clock.advance(TRANSFER_TIMEOUT - 1);
  assert.equal(coap.held.uploads, TOTAL_UPLOADS);
  clock.advance(1);
  assert.deepEqual({ uploads: coap.held.uploads, bufferedBytes: coap.held.bufferedBytes }, { uploads: 0, bufferedBytes: 0 });

  // A continuation of an expired upload has nothing to continue (RFC 7959 §2.9.2: 4.08) and holds nothing.
  assert.equal((await registerBlock(peers[0]!, port, 'attacker-0-0', 2)).code, Code.RequestEntityIncomplete);
  // The port that was refused before may upload now.
  assert.equal((await registerBlock(peers[3]!, port, 'attacker-3-0', 0)).code, Code.Continue);
  assert.equal(coap.held.uploads, 1);
  clock.advance(TRANSFER_TIMEOUT);
  assert.equal(coap.held.uploads, 0);
});

test('RFC 7959 §2.9.3 / RFC 7252 §5.10.9: a Register body larger than /rd takes is refused with 4.13 and Size1 as soon as Size1 or the block number shows it', async () => {
  clock.advance(TRANSFER_TIMEOUT); // whatever the first test left has expired
  const peer = peers[0]!;
  // The tester's 400 KiB upload, announced with Size1 on block 0 (RFC 7959 §4).
  const announced = await registerBlock(peer, port, 'big-announced', 0, false, [{ number: OptionNumber.Size1, value: encodeUint(400 * 1024) }]);
  assert.equal(announced.code, Code.RequestEntityTooLarge);
  const limit = getUintOption(announced, OptionNumber.Size1);
  // A Register payload is a few KiB of links: /rd declares 16 KiB (Depot's choice), not the server's buffered default.
  assert.equal(limit, 16 * 1024, `/rd takes ${limit} bytes`);
  assert.match(Buffer.from(announced.payload).toString(), new RegExp(`exceeds ${limit} bytes`));
  assert.equal(coap.held.uploads, 0, 'nothing was opened');

  // Without Size1: the block whose end passes the limit is refused, and the transfer with it.
  const blocks = limit / 1024;
  for (let num = 0; num < blocks - 1; num++) assert.equal((await registerBlock(peer, port, 'big-unannounced', num)).code, Code.Continue, `block ${num}`);
  assert.equal(coap.held.bufferedBytes, (blocks - 1) * 1024);
  // Block blocks-1 ends exactly at the limit but says More: the body cannot fit.
  const crossing = await registerBlock(peer, port, 'big-unannounced', blocks - 1);
  assert.equal(crossing.code, Code.RequestEntityTooLarge);
  assert.equal(getUintOption(crossing, OptionNumber.Size1), limit);
  assert.deepEqual({ uploads: coap.held.uploads, bufferedBytes: coap.held.bufferedBytes }, { uploads: 0, bufferedBytes: 0 });

  // A block number far beyond the limit is refused at once, with no transfer in progress.
  const far = await registerBlock(peer, port, 'far', 1000);
  assert.equal(far.code, Code.RequestEntityTooLarge);
});
