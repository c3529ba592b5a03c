/**
 * Benchmark target (d): the single-core ceiling for a Node CoAP server. A bare node:dgram
 * socket that reads only the header and token (RFC 7252 §3) and answers every CON with a
 * piggybacked ACK 2.05, Content-Format text/plain, "Hello, world" (a NON gets a NON).
 * No options are parsed, no deduplication, no routing: the cost of the socket and the event loop.
 * Usage: node dist/bench/servers/raw-dgram.js PORT  — prints "ready PORT" once bound.
 */
import { createSocket } from 'node:dgram';
import { BENCH_PAYLOAD, serveUntilStdinCloses } from './common.js';

const port = Number(process.argv[2] ?? 0);
const socket = createSocket('udp4');
// The same 4 MiB receive buffer as Depot's server gets.
await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', () => resolve()));
socket.setRecvBufferSize(4 * 1024 * 1024);
let nextMessageId = 0;
socket.on('message', (data, rinfo) => {
  if (data.length < 4) return;
  const first = data[0]!;
  const type = (first >> 4) & 0x3;
  const tokenLength = first & 0xf;
  if ((first >> 6) !== 1 || tokenLength > 8 || data.length < 4 + tokenLength || data[1] === 0 || type > 1) return;
  const reply = Buffer.allocUnsafe(4 + tokenLength + 2 + 1 + BENCH_PAYLOAD.length);
  reply[0] = 0x40 | ((type === 0 ? 2 : 1) << 4) | tokenLength; // ACK for CON, NON for NON
  reply[1] = 0x45; // 2.05 Content
  if (type === 0) {
    reply[2] = data[2]!;
    reply[3] = data[3]!;
  } else {
    reply.writeUInt16BE(nextMessageId, 2);
    nextMessageId = (nextMessageId + 1) & 0xffff;
  }
  data.copy(reply, 4, 4, 4 + tokenLength);
  let at = 4 + tokenLength;
  reply[at++] = 0xc1; // option 12 (Content-Format), length 1
  reply[at++] = 0x00; // text/plain
  reply[at++] = 0xff;
  reply.set(BENCH_PAYLOAD, at);
  socket.send(reply, rinfo.port, rinfo.address);
});
serveUntilStdinCloses(socket.address().port, () => new Promise<void>((resolve) => socket.close(() => resolve())));
